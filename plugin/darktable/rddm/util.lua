--[[
  rddm/util.lua: the darktable-independent logic of the rddm plugin (tested with lupa).

  POSIX quoting, the `rddm client` command lines, a small JSON reader for the client's progress
  file, file-name checks, and the history filter: a darktable style (.dtstyle XML) of the RAW's
  history without the steps rddm replaced, and the same history as an XMP sidecar for darktable-cli.
]]

local M = {}

-- The modules rddm replaces: the restored DNG is demosaicked, denoised and has no raw levels.
M.REPLACED_MODULES = {
  rawprepare = true, -- black/white levels of the RAW; the DNG has its own
  demosaic = true,
  rawdenoise = true,
  denoiseprofile = true,
  hotpixels = true,
  cacorrect = true, -- raw chromatic aberration correction
}

-- Files that are not camera RAWs (rddm reads Bayer mosaics only).
M.NOT_RAW_EXTENSIONS = {
  jpg = true, jpeg = true, jpe = true, png = true, tif = true, tiff = true, webp = true, heic = true,
  heif = true, avif = true, exr = true, pfm = true, hdr = true, gif = true, bmp = true, jxl = true,
  pgm = true, ppm = true, pnm = true, j2k = true, jp2 = true, xcf = true, psd = true, svg = true,
}

--- POSIX shell quoting: 'text', with ' written as '\''. Safe for spaces, $, `, ", \ and UTF-8.
function M.quote(text)
  return "'" .. tostring(text):gsub("'", "'\\''") .. "'"
end

function M.basename(path)
  return (tostring(path):match("([^/]+)$")) or tostring(path)
end

function M.extension(path)
  local ext = M.basename(path):match("%.([^.]+)$")
  return ext and ext:lower() or ""
end

--- Why a file is not sent to the engine, or nil when it may be a RAW (the engine decides the rest).
function M.skip_reason(filename)
  local ext = M.extension(filename)
  if M.NOT_RAW_EXTENSIONS[ext] then
    return "not a camera RAW (" .. ext .. ")"
  end
  if M.basename(filename):match("_rddm[_%d]*%.dng$") then
    return "already restored by rddm"
  end
  return nil
end

--- A strength 0..1 as the engine's argument, clamped, with 2 decimals.
function M.strength_arg(strength)
  local value = tonumber(strength) or 0.5
  value = math.max(0, math.min(1, value))
  return string.format("%.2f", value)
end

--- `rddm client restore` for `files` (absolute paths), as one shell command line.
-- opts: rddm (executable), strength (0..1), format ("dng"|"tiff"|"jpeg"), out_dir (or nil),
-- state_dir (or nil), progress_file, model (or nil).
function M.restore_command(files, opts)
  local parts = { M.quote(opts.rddm), "client", "restore" }
  for _, file in ipairs(files) do
    parts[#parts + 1] = M.quote(file)
  end
  parts[#parts + 1] = "--strength " .. M.strength_arg(opts.strength)
  parts[#parts + 1] = "--format " .. M.quote(opts.format or "dng")
  if opts.out_dir then
    parts[#parts + 1] = "--out " .. M.quote(opts.out_dir)
  end
  if opts.state_dir and opts.state_dir ~= "" then
    parts[#parts + 1] = "--state-dir " .. M.quote(opts.state_dir)
  end
  if opts.model and opts.model ~= "" then
    parts[#parts + 1] = "--model " .. M.quote(opts.model)
  end
  parts[#parts + 1] = "--progress-file " .. M.quote(opts.progress_file)
  return table.concat(parts, " ")
end

--- Run `command` in the background; its exit status lands in `rc_file`, its stderr in `err_file`.
function M.background(command, rc_file, err_file)
  return "( " .. command .. " >/dev/null 2>" .. M.quote(err_file) .. "; echo $? >" .. M.quote(rc_file)
    .. " ) </dev/null >/dev/null 2>&1 &"
end

function M.cancel_command(opts, job_id)
  local command = M.quote(opts.rddm) .. " client cancel " .. M.quote(job_id)
  if opts.state_dir and opts.state_dir ~= "" then
    command = command .. " --state-dir " .. M.quote(opts.state_dir)
  end
  return command .. " >/dev/null 2>&1"
end

-- JSON ----------------------------------------------------------------------------------------

local function decode_error(text, position, what)
  error(string.format("bad JSON at %d: %s", position, what), 0)
end

local escapes = { ['"'] = '"', ["\\"] = "\\", ["/"] = "/", b = "\b", f = "\f", n = "\n", r = "\r", t = "\t" }

local function utf8_char(code)
  return utf8.char(code)
end

local decode_value

local function skip_space(text, position)
  return text:find("[^ \t\r\n]", position) or #text + 1
end

local function decode_string(text, position)
  local parts, i = {}, position + 1
  while true do
    local c = text:sub(i, i)
    if c == "" then
      decode_error(text, i, "unterminated string")
    elseif c == '"' then
      return table.concat(parts), i + 1
    elseif c == "\\" then
      local e = text:sub(i + 1, i + 1)
      if e == "u" then
        local code = tonumber(text:sub(i + 2, i + 5), 16) or decode_error(text, i, "bad \\u escape")
        if code >= 0xD800 and code <= 0xDBFF and text:sub(i + 6, i + 7) == "\\u" then
          local low = tonumber(text:sub(i + 8, i + 11), 16) or 0
          code = 0x10000 + (code - 0xD800) * 0x400 + (low - 0xDC00)
          i = i + 6
        end
        parts[#parts + 1] = utf8_char(code)
        i = i + 6
      elseif escapes[e] then
        parts[#parts + 1] = escapes[e]
        i = i + 2
      else
        decode_error(text, i, "bad escape")
      end
    else
      local j = text:find('["\\]', i) or #text + 1
      parts[#parts + 1] = text:sub(i, j - 1)
      i = j
    end
  end
end

function decode_value(text, position)
  position = skip_space(text, position)
  local c = text:sub(position, position)
  if c == "{" then
    local object = {}
    position = skip_space(text, position + 1)
    if text:sub(position, position) == "}" then
      return object, position + 1
    end
    while true do
      local key
      position = skip_space(text, position)
      if text:sub(position, position) ~= '"' then
        decode_error(text, position, "expected a key")
      end
      key, position = decode_string(text, position)
      position = skip_space(text, position)
      if text:sub(position, position) ~= ":" then
        decode_error(text, position, "expected ':'")
      end
      object[key], position = decode_value(text, position + 1)
      position = skip_space(text, position)
      local d = text:sub(position, position)
      if d == "}" then
        return object, position + 1
      elseif d ~= "," then
        decode_error(text, position, "expected ',' or '}'")
      end
      position = position + 1
    end
  elseif c == "[" then
    local array = {}
    position = skip_space(text, position + 1)
    if text:sub(position, position) == "]" then
      return array, position + 1
    end
    while true do
      array[#array + 1], position = decode_value(text, position)
      position = skip_space(text, position)
      local d = text:sub(position, position)
      if d == "]" then
        return array, position + 1
      elseif d ~= "," then
        decode_error(text, position, "expected ',' or ']'")
      end
      position = position + 1
    end
  elseif c == '"' then
    return decode_string(text, position)
  elseif text:sub(position, position + 3) == "true" then
    return true, position + 4
  elseif text:sub(position, position + 4) == "false" then
    return false, position + 5
  elseif text:sub(position, position + 3) == "null" then
    return nil, position + 4
  end
  local number = text:match("^-?%d+%.?%d*[eE]?[-+]?%d*", position)
  if number and number ~= "" and tonumber(number) then
    return tonumber(number), position + #number
  end
  decode_error(text, position, "unexpected '" .. c .. "'")
end

--- Decode one JSON document; raises "bad JSON at N: ..." on malformed input.
function M.json_decode(text)
  local value, position = decode_value(text, 1)
  if skip_space(text, position) <= #text then
    decode_error(text, position, "trailing characters")
  end
  return value
end

--- Complete lines of a progress file read so far: (records, rest). `rest` is a trailing partial
-- line to keep for the next read; malformed lines are skipped.
function M.progress_records(text)
  local records, start = {}, 1
  while true do
    local newline = text:find("\n", start, true)
    if not newline then
      break
    end
    local line = text:sub(start, newline - 1)
    if line:match("%S") then
      local ok, record = pcall(M.json_decode, line)
      if ok and type(record) == "table" then
        records[#records + 1] = record
      end
    end
    start = newline + 1
  end
  return records, text:sub(start)
end

-- History ------------------------------------------------------------------------------------

--- The .dtstyle XML without the plugins rddm replaced, renamed to `new_name`; and the list of
-- kept plugins as tables {operation, num, module, op_params, enabled, blendop_params,
-- blendop_version, multi_priority, multi_name}.
function M.filter_style(xml, new_name, replaced)
  replaced = replaced or M.REPLACED_MODULES
  local kept = {}
  local filtered = xml:gsub("<plugin>(.-)</plugin>", function(body)
    local operation = body:match("<operation>(.-)</operation>")
    if operation and replaced[operation] then
      return ""
    end
    local item = {}
    for _, field in ipairs({ "num", "module", "operation", "op_params", "enabled", "blendop_params",
      "blendop_version", "multi_priority", "multi_name" }) do
      item[field] = body:match("<" .. field .. ">(.-)</" .. field .. ">") or ""
    end
    kept[#kept + 1] = item
    return "<plugin>" .. body .. "</plugin>"
  end)
  if new_name then
    filtered = filtered:gsub("<name>.-</name>", "<name>" .. new_name .. "</name>", 1)
  end
  table.sort(kept, function(a, b)
    return (tonumber(a.num) or 0) < (tonumber(b.num) or 0)
  end)
  return filtered, kept
end

local function xml_attribute(text)
  return (tostring(text):gsub("&", "&amp;"):gsub('"', "&quot;"):gsub("<", "&lt;"):gsub(">", "&gt;"))
end

--- An XMP sidecar holding `plugins` (from filter_style) as darktable's history, for darktable-cli.
function M.history_xmp(plugins)
  local items = {}
  for index, item in ipairs(plugins) do
    items[#items + 1] = string.format(
      '     <rdf:li darktable:num="%d" darktable:operation="%s" darktable:enabled="%s"'
        .. ' darktable:modversion="%s" darktable:params="%s" darktable:multi_name="%s"'
        .. ' darktable:multi_priority="%s" darktable:blendop_version="%s" darktable:blendop_params="%s"/>',
      index - 1, xml_attribute(item.operation), xml_attribute(item.enabled), xml_attribute(item.module),
      xml_attribute(item.op_params), xml_attribute(item.multi_name), xml_attribute(item.multi_priority),
      xml_attribute(item.blendop_version), xml_attribute(item.blendop_params))
  end
  return table.concat({
    '<?xml version="1.0" encoding="UTF-8"?>',
    '<x:xmpmeta xmlns:x="adobe:ns:meta/" x:xmptk="XMP Core 4.4.0-Exiv2">',
    ' <rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">',
    '  <rdf:Description rdf:about="" xmlns:darktable="http://darktable.sf.net/"',
    '    darktable:xmp_version="4" darktable:history_end="' .. #plugins .. '">',
    "   <darktable:history>",
    "    <rdf:Seq>",
    table.concat(items, "\n"),
    "    </rdf:Seq>",
    "   </darktable:history>",
    "  </rdf:Description>",
    " </rdf:RDF>",
    "</x:xmpmeta>",
    "",
  }, "\n")
end

--- `darktable-cli` rendering `input` with `xmp` into `output` (a fresh config dir, no library).
function M.render_command(darktable_cli, input, xmp, output, config_dir)
  return table.concat({
    M.quote(darktable_cli), M.quote(input), M.quote(xmp), M.quote(output),
    "--core", "--configdir", M.quote(config_dir), "--library", ":memory:",
    "--conf", "write_sidecar_files=never",
  }, " ")
end

return M
