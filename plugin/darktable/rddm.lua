--[[
  rddm.lua - restore RAW files with rddm (RAW-domain diffusion restoration) from darktable

  Copyright (C) 2026 the rddm authors. Apache-2.0.

  A lighttable module "RDDM restore": pick a strength, click "restore selected". rddm restores each
  RAW straight from its sensor data (demosaic, denoise and detail in one model) into a linear DNG,
  which is imported, grouped with its RAW, tagged, and given the RAW's edit without the steps rddm
  replaced (raw black/white levels, demosaic, raw denoise, denoise (profiled), hot pixels, raw
  chromatic aberrations). darktable's own demosaic and denoise never run on it.

  ADDITIONAL SOFTWARE NEEDED
    rddm (installers/install.sh puts `rddm` and `rddm-preview` in ~/.local/bin). The plugin runs
    `rddm client restore ...`, which starts the rddm engine when none is running.

  USAGE
    require "rddm" in luarc (the installer adds it). Lighttable > right panel > RDDM restore.
    Preferences > Lua options: the rddm executable, the engine state folder, the group leader.
    Shortcut: "rddm: restore selected images" (assign it in preferences > shortcuts > lua).
    Export: the storage "RDDM restored" restores each exported image's RAW and renders the
    restored DNG with the image's edit through darktable-cli.

  FOR OTHER SCRIPTS
    local rddm = require "rddm"
    local restored, errors = rddm.restore_images(images, { strength = 0.5, format = "dng" })

  BUGS
    Windows is not supported yet (the commands are POSIX shell).
]]

local dt = require "darktable"
local util = require "rddm/util"

local MODULE = "rddm"
local API_MAJOR = 9

local script_data = {}
script_data.metadata = {
  name = "rddm",
  purpose = "restore RAW files with RAW-domain diffusion (rddm)",
  author = "the rddm authors",
  help = "https://github.com/rddm/rddm",
}
script_data.destroy = nil
script_data.destroy_method = "hide"
script_data.restart = nil
script_data.show = nil

local gettext = dt.gettext
local function _(text)
  if gettext and gettext.dgettext then
    return gettext.dgettext(MODULE, text)
  end
  return text
end

local FORMATS = { "dng", "tiff", "jpeg" }
local FORMAT_LABELS = { "DNG", "TIFF", "JPEG" }
local PLACES = { "next", "subfolder" }
local SUBFOLDER = "rddm"

-- settings --------------------------------------------------------------------------------------

local function pref(name, kind, default)
  local value = dt.preferences.read(MODULE, name, kind)
  if kind == "string" and (value == nil or value == "") then
    return default
  end
  if kind == "integer" and (value == nil or (value == 0 and default ~= 0 and
      not dt.preferences.read(MODULE, name .. "_set", "bool"))) then
    return default
  end
  return value
end

local function save_pref(name, kind, value)
  dt.preferences.write(MODULE, name, kind, value)
  if kind == "integer" then
    dt.preferences.write(MODULE, name .. "_set", "bool", true)
  end
end

local function file_exists(path)
  local file = io.open(path, "rb")
  if file then
    file:close()
    return true
  end
  return false
end

local function read_file(path)
  local file = io.open(path, "rb")
  if not file then
    return nil
  end
  local text = file:read("a")
  file:close()
  return text
end

local function write_file(path, text)
  local file = assert(io.open(path, "wb"))
  file:write(text)
  file:close()
end

--- The output of a shell command (through a file: io.popen is not in every Lua build).
local function shell_output(command)
  local path = os.tmpname()
  dt.control.execute("( " .. command .. " ) >" .. util.quote(path) .. " 2>/dev/null")
  local text = read_file(path) or ""
  os.remove(path)
  return (text:gsub("%s+$", ""))
end

--- The `rddm` executable: the preference, else `rddm` on PATH or in ~/.local/bin; nil if none.
local function find_executable(preference, name)
  local chosen = dt.preferences.read(MODULE, preference, "file")
  if chosen and chosen ~= "" then
    return file_exists(chosen) and chosen or nil, chosen
  end
  local found = shell_output("command -v " .. util.quote(name) .. " 2>/dev/null")
  if found ~= "" then
    return found
  end
  local home = os.getenv("HOME") or ""
  local fallback = home .. "/.local/bin/" .. name
  if file_exists(fallback) then
    return fallback
  end
  return nil
end

local function settings(options)
  options = options or {}
  local rddm, chosen = find_executable("executable", "rddm")
  local format = options.format or FORMATS[pref("format", "integer", 1)] or "dng"
  local strength = options.strength
  if strength == nil then
    strength = pref("strength", "integer", 50) / 100
  end
  return {
    rddm = rddm,
    chosen = chosen,
    strength = strength,
    format = format,
    place = options.place or PLACES[pref("place", "integer", 1)] or "next",
    state_dir = options.state_dir or pref("state_dir", "string", nil),
    model = options.model or pref("model", "string", nil),
    leader = options.leader or pref("leader", "string", "original"),
  }
end

--- A new private folder for one run's files, or nil when none can be made.
local function temp_dir()
  local base = os.tmpname()
  os.remove(base)
  dt.control.execute("mkdir -m 700 -p " .. util.quote(base))
  local probe = io.open(base .. "/.probe", "wb")
  if not probe then
    return nil
  end
  probe:close()
  os.remove(base .. "/.probe")
  return base
end

-- Give up on a client that shows no sign of life for this long (engine start, queue and a tile
-- all take far less).
local SILENCE_LIMIT_S = 600

local function remove_dir(path)
  if path and path:match("^/tmp/") then
    dt.control.execute("rm -rf " .. util.quote(path))
  end
end

local function message(text)
  dt.print(text)
  dt.print_log("rddm: " .. text)
end

-- the restored image in the library ------------------------------------------------------------

local function find_style(name)
  for _k, style in ipairs(dt.styles) do
    if style.name == name then
      return style
    end
  end
  return nil
end

--- darktable keeps a copy of each created style in <config>/styles, even after deleting the style.
local function forget_style_file(name)
  local config = dt.configuration.config_dir
  if config then
    os.remove(config .. "/styles/" .. name .. ".dtstyle")
  end
end

--- The RAW's history without the steps rddm replaced, as a filtered .dtstyle in `work`:
--- returns (style file, kept plugins) or nil when the RAW has no history.
local function filtered_history(raw, work)
  local name = string.format("rddm-%d-%d-%d", raw.id, os.time(), math.random(1, 1000000))
  local style = dt.styles.create(raw, name, "rddm: the RAW's edit")
  if not style then
    return nil
  end
  local count = #style
  if count > 0 then
    dt.styles.export(style, work, true)
  end
  dt.styles.delete(style)
  forget_style_file(name)
  if count == 0 then
    return nil
  end
  local xml = read_file(work .. "/" .. name .. ".dtstyle")
  if not xml then
    return nil
  end
  local filtered, kept = util.filter_style(xml, name .. "-restored")
  local path = work .. "/" .. name .. "-restored.dtstyle"
  write_file(path, filtered)
  return path, kept, name .. "-restored"
end

--- Apply the RAW's edit (without the replaced steps) to the restored image.
local function copy_history(raw, restored)
  local work = temp_dir()
  if not work then
    dt.print_log("rddm: could not copy the edit: no temporary folder")
    return
  end
  local ok, problem = pcall(function()
    local path, kept, name = filtered_history(raw, work)
    if not path or #kept == 0 then
      return
    end
    dt.styles.import(path)
    local style = find_style(name)
    if style then
      dt.styles.apply(style, restored)
      dt.styles.delete(style)
    end
    forget_style_file(name)
  end)
  remove_dir(work)
  if not ok then
    dt.print_log("rddm: could not copy the edit: " .. tostring(problem))
  end
end

local LABELS = { "red", "blue", "green", "yellow", "purple" }
local METADATA = { "title", "description", "creator", "publisher", "rights", "notes" }

local function copy_facts(raw, restored, strength)
  pcall(function()
    restored.rating = raw.rating
  end)
  for _k, label in ipairs(LABELS) do
    pcall(function()
      restored[label] = raw[label]
    end)
  end
  for _k, field in ipairs(METADATA) do
    pcall(function()
      local value = raw[field]
      if value ~= nil and value ~= "" then
        restored[field] = value
      end
    end)
  end
  for _k, tag in ipairs(dt.tags.get_tags(raw)) do
    if not tag.name:match("^darktable|") then
      dt.tags.attach(tag, restored)
    end
  end
  dt.tags.attach(dt.tags.create("rddm|restored"), restored)
  dt.tags.attach(dt.tags.create("rddm|strength|" .. math.floor(strength * 100 + 0.5)), restored)
end

local function in_group(raw, restored)
  for _k, member in ipairs(raw:get_group_members()) do
    if member.id == restored.id then
      return true
    end
  end
  return false
end

--- Import a restored file and put it in the RAW's group with the RAW's edit, rating and tags.
local function import_restored(raw, path, options)
  if not file_exists(path) then -- dt.database.import of a missing file ends darktable 4.2
    return nil, util.basename(path) .. ": the restored file is missing"
  end
  local ok, restored = pcall(dt.database.import, path)
  if not ok or not restored then
    return nil, util.basename(path) .. ": darktable could not import it (" .. tostring(restored) .. ")"
  end
  copy_history(raw, restored)
  copy_facts(raw, restored, options.strength)
  -- darktable's first load of a new image (its thumbnail) writes back the image as it was when
  -- the load began, undoing a rating or group set meanwhile (seen in 2 of 5 runs): set them,
  -- wait, check, and set them again until they hold.
  for attempt = 1, 15 do
    pcall(function()
      restored.rating = raw.rating
    end)
    restored:group_with(raw)
    if options.leader == "restored" then
      restored:make_group_leader()
    else
      raw:make_group_leader()
    end
    dt.control.sleep(300)
    if restored.rating == raw.rating and in_group(raw, restored) then
      break
    end
  end
  return restored
end

-- running rddm ---------------------------------------------------------------------------------

--- Run `rddm client restore` on `files` in the background and follow its progress file.
-- on_record(record) gets each progress line; cancelled() is asked between polls.
-- Returns the exit status (0 all restored, 1 some failed, 2 nothing done, 127 no rddm) and stderr.
local function run_client(files, options, on_record, cancelled)
  local work = temp_dir()
  if not work then
    return 2, "error: cannot create a temporary folder in " .. (os.getenv("TMPDIR") or "/tmp")
  end
  local progress_file, rc_file, err_file = work .. "/progress.jsonl", work .. "/rc", work .. "/stderr"
  local command = util.restore_command(files, {
    rddm = options.rddm,
    strength = options.strength,
    format = options.format,
    out_dir = options.out_dir,
    state_dir = options.state_dir,
    model = options.model,
    progress_file = progress_file,
  })
  dt.print_log("rddm: " .. command)
  dt.control.execute(util.background(command, rc_file, err_file))
  local offset, rest, job_id, cancel_sent, rc = 0, "", nil, false, nil
  local last_change = os.time()
  while true do
    local status = read_file(rc_file)
    if status and status:match("%d") then
      rc = tonumber(status:match("%d+"))
    end
    local text = read_file(progress_file)
    if text and #text > offset then
      local records
      records, rest = util.progress_records(rest .. text:sub(offset + 1))
      offset = #text
      last_change = os.time()
      for _k, record in ipairs(records) do
        job_id = job_id or record.job
        on_record(record)
      end
    end
    if rc then
      break
    end
    if os.time() - last_change > SILENCE_LIMIT_S then
      if job_id then
        dt.control.execute(util.cancel_command(options, job_id))
      end
      remove_dir(work)
      return 2, "error: rddm stopped answering (no progress for " .. SILENCE_LIMIT_S .. " s)"
    end
    if not cancel_sent and job_id and (cancelled() or dt.control.ending) then
      dt.control.execute(util.cancel_command(options, job_id))
      cancel_sent = true
    end
    dt.control.sleep(200)
  end
  local stderr = read_file(err_file) or ""
  remove_dir(work)
  return rc, stderr
end

local function last_error_line(stderr)
  local last = nil
  for line in stderr:gmatch("[^\n]+") do
    if line:match("^error:") then
      last = line:gsub("^error:%s*", "")
    end
  end
  return last
end

local function image_path(image)
  return image.path .. "/" .. image.filename
end

--- Restore `images` (darktable images) with `options` {strength 0..1, format, place, leader}.
-- Returns the imported restored images and a list of one-line error messages.
local function restore_images(images, options)
  local settings_now = settings(options)
  local restored, errors = {}, {}
  if not settings_now.rddm then
    local text = settings_now.chosen
        and string.format(_("rddm: %s does not exist (preferences > lua options)"), settings_now.chosen)
      or _("rddm is not installed: install it, or set its path in preferences > lua options")
    message(text)
    return restored, { text }
  end
  -- candidates, grouped by output folder
  local groups, order, by_path = {}, {}, {}
  for _k, image in ipairs(images) do
    local path = image_path(image)
    local reason = util.skip_reason(image.filename)
    if not reason and not file_exists(path) then
      reason = "the file is missing"
    end
    if reason then
      errors[#errors + 1] = image.filename .. ": " .. reason
    elseif not by_path[path] then
      by_path[path] = image
      local out_dir = settings_now.place == "subfolder" and (image.path .. "/" .. SUBFOLDER) or ""
      if not groups[out_dir] then
        groups[out_dir] = {}
        order[#order + 1] = out_dir
      end
      table.insert(groups[out_dir], path)
    end
  end
  local total = 0
  for _k, files in pairs(groups) do
    total = total + #files
  end
  if total == 0 then
    message(#errors > 0 and ("rddm: " .. errors[1]) or _("rddm: select RAW images to restore"))
    return restored, errors
  end

  local has_gui = dt.configuration.has_gui
  local cancelled = false
  local overall = nil
  if has_gui then
    overall = dt.gui.create_job(string.format(_("rddm: restoring %d images"), total), true, function(job)
      cancelled = true
    end)
  end
  local finished = 0
  for _k, out_dir in ipairs(order) do
    if cancelled then
      break
    end
    local files = groups[out_dir]
    if out_dir ~= "" then
      dt.control.execute("mkdir -p " .. util.quote(out_dir))
    end
    local per_file = {}
    local run_options = {}
    for key, value in pairs(settings_now) do
      run_options[key] = value
    end
    run_options.out_dir = out_dir ~= "" and out_dir or nil
    local function on_record(record)
      local file = record.file
      if has_gui and file and not per_file[file] and record.state == "running" then
        per_file[file] = dt.gui.create_job(util.basename(file), true, function(job)
          cancelled = true
        end)
      end
      if has_gui and file and per_file[file] and record.file_progress then
        per_file[file].percent = math.min(1, math.max(0, record.file_progress))
      end
      if record.output or record.error then
        finished = finished + 1
        if per_file[file] then
          per_file[file].valid = false
          per_file[file] = nil
        end
        if overall then
          overall.percent = finished / total
        end
      end
      if record.output then
        local image, problem = import_restored(by_path[file], record.output, run_options)
        if image then
          restored[#restored + 1] = image
        else
          errors[#errors + 1] = problem
        end
      elseif record.error then
        errors[#errors + 1] = record.error
      end
    end
    local rc, stderr = run_client(files, run_options, on_record, function()
      return cancelled
    end)
    for _k, job in pairs(per_file) do
      job.valid = false
    end
    if rc == 127 or rc == 126 then
      errors[#errors + 1] = string.format(_("rddm could not be run (%s)"), settings_now.rddm)
    elseif rc ~= 0 and rc ~= 1 then
      errors[#errors + 1] = last_error_line(stderr) or string.format(_("rddm failed (exit status %d)"), rc or -1)
    elseif rc == 1 and cancelled then
      errors[#errors + 1] = _("cancelled")
    end
  end
  if overall then
    overall.valid = false
  end
  if #errors == 0 then
    message(string.format(_("rddm: restored %d of %d images"), #restored, total))
  else
    message(string.format(_("rddm: restored %d of %d images; %s"), #restored, total, errors[#errors]))
  end
  return restored, errors
end

-- the preview panel ------------------------------------------------------------------------------

local function open_preview(images)
  local image = images[1]
  if not image then
    message(_("rddm: select a RAW image to preview"))
    return
  end
  local current = settings()
  local preview = find_executable("preview_executable", "rddm-preview")
  if not preview and current.rddm then
    local sibling = current.rddm:gsub("rddm$", "rddm-preview")
    preview = file_exists(sibling) and sibling or nil
  end
  if not preview then
    message(_("rddm: the preview panel (rddm-preview) is not installed"))
    return
  end
  local work = temp_dir()
  if not work then
    message(_("rddm: cannot create a temporary folder"))
    return
  end
  -- --apply: the panel's Apply button prints {"strength": 0..1, "format": ...} and exits 0.
  local command = util.quote(preview) .. " " .. util.quote(image_path(image)) .. " --apply --strength "
    .. math.floor(current.strength * 100 + 0.5)
  if current.state_dir then
    command = "RDDM_STATE_DIR=" .. util.quote(current.state_dir) .. " " .. command
  end
  local rc_file = work .. "/rc"
  dt.control.execute("( " .. command .. " >" .. util.quote(work .. "/out") .. " 2>"
    .. util.quote(work .. "/err") .. "; echo $? >" .. util.quote(rc_file) .. " ) </dev/null &")
  while not (read_file(rc_file) or ""):match("%d") and not dt.control.ending do
    dt.control.sleep(250)
  end
  local choice = nil
  for line in (read_file(work .. "/out") or ""):gmatch("[^\n]+") do
    local ok, value = pcall(util.json_decode, line)
    if ok and type(value) == "table" and value.strength then
      choice = value
    end
  end
  remove_dir(work)
  if choice then
    restore_images({ image }, { strength = tonumber(choice.strength), format = choice.format })
  end
end

-- export target --------------------------------------------------------------------------------

local export_folder = nil

local function darktable_cli()
  local found = shell_output("command -v darktable-cli 2>/dev/null")
  return found ~= "" and found or nil
end

local function export_store(storage, image, format, filename, number, total, high_quality, extra)
  local current = settings()
  os.remove(filename) -- darktable's render of the RAW: the restored render replaces it
  local cli = darktable_cli()
  if not current.rddm or not cli then
    extra.errors[#extra.errors + 1] = image.filename .. ": " .. (cli and "rddm" or "darktable-cli") .. " not found"
    return
  end
  local work = temp_dir()
  if not work then
    extra.errors[#extra.errors + 1] = image.filename .. ": cannot create a temporary folder"
    return
  end
  local dng = nil
  current.format, current.out_dir = "dng", work
  local rc, stderr = run_client({ image_path(image) }, current, function(record)
    if record.output then
      dng = record.output
    elseif record.error then
      extra.errors[#extra.errors + 1] = record.error
    end
  end, function()
    return false
  end)
  if dng then
    local folder = extra.folder ~= "" and extra.folder or (image.path .. "/" .. SUBFOLDER)
    dt.control.execute("mkdir -p " .. util.quote(folder))
    local extension = filename:match("%.([^./]+)$") or "jpg"
    local stem = image.filename:gsub("%.[^.]+$", "")
    local output = folder .. "/" .. stem .. "_rddm." .. extension
    local index = 1
    while file_exists(output) do
      output = string.format("%s/%s_rddm_%d.%s", folder, stem, index, extension)
      index = index + 1
    end
    local _path, kept = filtered_history(image, work)
    local xmp = work .. "/history.xmp"
    write_file(xmp, util.history_xmp(kept or {}))
    local status = dt.control.execute(util.render_command(cli, dng, xmp, output, work .. "/config")
      .. " >/dev/null 2>&1")
    if status ~= 0 or not file_exists(output) then
      extra.errors[#extra.errors + 1] = image.filename .. ": darktable-cli could not render the restored DNG"
    else
      extra.written[#extra.written + 1] = output
    end
  elseif rc ~= 0 and #extra.errors == 0 then
    extra.errors[#extra.errors + 1] = image.filename .. ": " .. (last_error_line(stderr) or "rddm failed")
  end
  remove_dir(work)
end

local function export_initialize(storage, format, images, high_quality, extra)
  extra.errors, extra.written = {}, {}
  extra.folder = export_folder and export_folder.text or ""
  return images
end

local function export_finalize(storage, image_table, extra)
  if #extra.errors > 0 then
    message(string.format(_("rddm: exported %d restored images; %s"), #extra.written, extra.errors[#extra.errors]))
  else
    message(string.format(_("rddm: exported %d restored images"), #extra.written))
  end
end

-- the lighttable module ------------------------------------------------------------------------

local module = { widgets = {}, registered = false, event = false }

local function selected_or_hovered()
  local images = dt.gui.action_images or dt.gui.selection()
  if type(images) ~= "table" or #images == 0 then
    images = dt.gui.selection()
  end
  return images
end

--- The slider has no change callback in API 9.0: its value is remembered when it is used.
local function remember_strength()
  if module.widgets.strength then
    save_pref("strength", "integer", math.floor(module.widgets.strength.value + 0.5))
  end
end

local function build_widgets()
  local strength = dt.new_widget("slider") {
    label = _("strength"),
    tooltip = _("0: faithful to the sensor data, 100: the model's full restoration"),
    soft_min = 0, soft_max = 100, hard_min = 0, hard_max = 100, step = 1, digits = 0,
  }
  -- Set after the limits: in the constructor table the fields apply in no fixed order.
  strength.value = pref("strength", "integer", 50)
  local format = dt.new_widget("combobox") {
    label = _("format"),
    tooltip = _("DNG keeps the linear sensor data for editing in darktable"),
    selected = pref("format", "integer", 1),
    changed_callback = function(self)
      save_pref("format", "integer", self.selected)
    end,
    table.unpack(FORMAT_LABELS),
  }
  local place = dt.new_widget("combobox") {
    label = _("save to"),
    selected = pref("place", "integer", 1),
    changed_callback = function(self)
      save_pref("place", "integer", self.selected)
    end,
    _("next to the RAW"), _("subfolder rddm"),
  }
  local restore = dt.new_widget("button") {
    label = _("restore selected"),
    tooltip = _("restore the selected RAWs, import and group the results"),
    clicked_callback = function()
      remember_strength()
      restore_images(selected_or_hovered(), {})
    end,
  }
  local preview = dt.new_widget("button") {
    label = _("preview..."),
    tooltip = _("compare strengths on a 1:1 crop of the first selected RAW"),
    clicked_callback = function()
      remember_strength()
      open_preview(selected_or_hovered())
    end,
  }
  module.widgets = { strength = strength, format = format, place = place, restore = restore, preview = preview }
  return dt.new_widget("box") { orientation = "vertical", strength, format, place, restore, preview }
end

local function register_module()
  if module.registered then
    return
  end
  dt.register_lib(MODULE, _("RDDM restore"), true, false, {
    [dt.gui.views.lighttable] = { "DT_UI_CONTAINER_PANEL_RIGHT_CENTER", 100 },
  }, build_widgets(), nil, nil)
  module.registered = true
end

local function install_gui()
  dt.preferences.register(MODULE, "executable", "file", _("rddm: executable"),
    _("the rddm command (empty: found on PATH or in ~/.local/bin)"), "")
  dt.preferences.register(MODULE, "preview_executable", "file", _("rddm: preview panel executable"),
    _("the rddm-preview command (empty: next to rddm or on PATH)"), "")
  dt.preferences.register(MODULE, "state_dir", "string", _("rddm: engine state folder"),
    _("where the engine writes its address and token (empty: the default)"), "")
  dt.preferences.register(MODULE, "leader", "enum", _("rddm: group leader"),
    _("which image leads the group of a RAW and its restored versions"), "original", "original", "restored")
  if dt.gui.current_view().id == "lighttable" then
    register_module()
  else
    dt.register_event("rddm_view", "view-changed", function(event, old_view, new_view)
      if new_view.name == "lighttable" or new_view.id == "lighttable" then
        register_module()
      end
    end)
    module.event = true
  end
  dt.register_event("rddm_shortcut", "shortcut", function(event, shortcut)
    remember_strength()
    restore_images(selected_or_hovered(), {})
  end, _("rddm: restore selected images"))
  export_folder = dt.new_widget("entry") {
    tooltip = _("folder of the exported files (empty: a subfolder rddm next to each RAW)"),
    placeholder = _("folder (empty: <RAW folder>/rddm)"),
    text = "",
  }
  dt.register_storage("rddm_export", _("RDDM restored"), export_store, export_finalize, nil, export_initialize,
    dt.new_widget("box") { orientation = "vertical", dt.new_widget("label") { label = _("export folder") }, export_folder })
end

local function destroy()
  if module.event then
    dt.destroy_event("rddm_view", "view-changed")
  end
  dt.destroy_event("rddm_shortcut", "shortcut")
  dt.destroy_storage("rddm_export")
  dt.gui.libs[MODULE].visible = false
end

local function restart()
  dt.gui.libs[MODULE].visible = true
end

-- start --------------------------------------------------------------------------------------

local major = dt.configuration.api_version_major
if major ~= API_MAJOR then
  dt.print_error(string.format("rddm: needs darktable's Lua API 9.x, this darktable has %s",
    dt.configuration.api_version_string))
  return script_data
end

if dt.configuration.has_gui then
  install_gui()
  script_data.destroy = destroy
  script_data.restart = restart
  script_data.show = restart
end

script_data.restore_images = restore_images
script_data.preview_images = open_preview
script_data.widgets = function()
  return module.widgets
end
script_data.util = util
return script_data
