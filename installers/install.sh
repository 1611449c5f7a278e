#!/bin/sh
# rddm installer for Linux and macOS: a virtual environment with rddm, the `rddm` and `rddm-preview`
# commands in your bin folder, and the darktable plugin in darktable's config folder.
#
#   installers/install.sh [--prefix DIR] [--darktable-config DIR] [--cpu|--cuda] [--from PATH] [--no-plugin]
#
# Re-running upgrades in place. installers/uninstall.sh removes exactly what this added (it reads
# the manifest this writes). Environment: RDDM_TORCH (the torch requirement, default torch==2.13.0
# on the CPU, torch on CUDA), RDDM_PIP_ARGS (extra pip arguments, e.g. an --index-url).
set -eu

say() { printf '%s\n' "rddm install: $*"; }
fail() { printf '%s\n' "rddm install: error: $*" >&2; exit 1; }

here=$(cd "$(dirname "$0")" && pwd)
data_home=${XDG_DATA_HOME:-$HOME/.local/share}
prefix="$data_home/rddm"
dt_config="${XDG_CONFIG_HOME:-$HOME/.config}/darktable"
bin_dir=${XDG_BIN_HOME:-$HOME/.local/bin}
source_dir=$(dirname "$here")
device=auto
plugin=yes

while [ $# -gt 0 ]; do
  case "$1" in
    --prefix) [ $# -ge 2 ] || fail "--prefix needs a folder"; prefix=$2; shift 2 ;;
    --darktable-config) [ $# -ge 2 ] || fail "--darktable-config needs a folder"; dt_config=$2; shift 2 ;;
    --from) [ $# -ge 2 ] || fail "--from needs a path"; source_dir=$2; shift 2 ;;
    --cpu) device=cpu; shift ;;
    --cuda) device=cuda; shift ;;
    --no-plugin) plugin=no; shift ;;
    -h|--help) sed -n '2,11p' "$0"; exit 0 ;;
    *) fail "unknown option $1 (see --help)" ;;
  esac
done

case "$prefix" in /*) ;; *) prefix=$(pwd)/$prefix ;; esac
case "$source_dir" in /*) ;; *) source_dir=$(cd "$source_dir" 2>/dev/null && pwd) || fail "--from: no such folder" ;; esac
[ -f "$source_dir/pyproject.toml" ] || fail "$source_dir is not an rddm source folder (no pyproject.toml)"

# Python >= 3.10
python=${PYTHON:-}
if [ -z "$python" ]; then
  for candidate in python3 python3.13 python3.12 python3.11 python3.10; do
    if command -v "$candidate" >/dev/null 2>&1 && "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 10))' 2>/dev/null; then
      python=$candidate; break
    fi
  done
fi
[ -n "$python" ] || fail "Python 3.10 or later is needed (install python3 and python3-venv)"
"$python" -c 'import venv, ensurepip' 2>/dev/null || fail "$python cannot make virtual environments (install python3-venv)"

# darktable and its Lua API (the plugin needs 9.x: darktable 4.2 and later)
if [ "$plugin" = yes ]; then
  if command -v darktable >/dev/null 2>&1; then
    api=$(darktable --version 2>/dev/null </dev/null | sed -n 's/.*API version \([0-9][0-9.]*\).*/\1/p' | head -n 1)
    case "$api" in
      9.*) say "darktable with Lua API $api" ;;
      "") say "warning: darktable says nothing of Lua support; installing the plugin anyway" ;;
      *) fail "darktable's Lua API is $api; the plugin needs 9.x (darktable 4.2 or later), or use --no-plugin" ;;
    esac
  else
    say "darktable is not installed: installing without the plugin (re-run after installing darktable)"
    plugin=no
  fi
fi

# room and permissions
parent=$prefix
while [ ! -d "$parent" ]; do parent=$(dirname "$parent"); done
[ -w "$parent" ] || fail "no write permission in $parent (choose another --prefix)"
free_kb=$(df -Pk "$parent" | awk 'NR == 2 { print $4 }')
if [ -n "$free_kb" ] && [ "$free_kb" -lt 3000000 ]; then
  fail "less than 3 GB free in $parent (PyTorch alone takes about 1 GB on the CPU, more with CUDA)"
fi

if [ "$device" = auto ]; then
  if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then device=cuda; else device=cpu; fi
fi
if [ "$device" = cuda ]; then torch=${RDDM_TORCH:-torch}; else torch=${RDDM_TORCH:-torch==2.13.0}; fi

mkdir -p "$prefix" "$bin_dir"
manifest="$prefix/install-manifest.txt"
venv="$prefix/venv"
say "virtual environment in $venv ($device, $torch)"
[ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
# shellcheck disable=SC2086
"$venv/bin/python" -m pip install --quiet --upgrade pip ${RDDM_PIP_ARGS:-} || fail "pip could not upgrade itself"
# shellcheck disable=SC2086
"$venv/bin/python" -m pip install --quiet "$torch" ${RDDM_PIP_ARGS:-} || fail "could not install $torch"
# shellcheck disable=SC2086
"$venv/bin/python" -m pip install --quiet --upgrade "$source_dir[model,engine,ui]" ${RDDM_PIP_ARGS:-} \
  || fail "could not install rddm from $source_dir"

{
  echo "# rddm install manifest: what installers/uninstall.sh removes"
  echo "venv $venv"
} >"$manifest.new"

for command in rddm rddm-preview; do
  link="$bin_dir/$command"
  if [ -e "$link" ] && [ ! -L "$link" ]; then
    say "warning: $link exists and is not rddm's link: left alone"
    continue
  fi
  ln -sfn "$venv/bin/$command" "$link"
  echo "link $link" >>"$manifest.new"
done

if [ "$plugin" = yes ]; then
  lua_created=no
  if [ ! -d "$dt_config/lua" ] || grep -qx "dir $dt_config/lua" "$manifest" 2>/dev/null; then lua_created=yes; fi
  mkdir -p "$dt_config/lua/rddm"
  cp "$source_dir/plugin/darktable/rddm.lua" "$dt_config/lua/rddm.lua"
  cp "$source_dir/plugin/darktable/rddm/util.lua" "$dt_config/lua/rddm/util.lua"
  echo "file $dt_config/lua/rddm.lua" >>"$manifest.new"
  echo "file $dt_config/lua/rddm/util.lua" >>"$manifest.new"
  echo "dir $dt_config/lua/rddm" >>"$manifest.new"
  [ "$lua_created" = yes ] && echo "dir $dt_config/lua" >>"$manifest.new"
  luarc="$dt_config/luarc"
  if [ ! -f "$luarc" ]; then
    printf '%s\n' 'require "rddm"' >"$luarc"
    echo "luarc-created $luarc" >>"$manifest.new"
  elif ! grep -qx 'require "rddm"' "$luarc"; then
    [ -f "$luarc.rddm-backup" ] || cp "$luarc" "$luarc.rddm-backup"
    printf '%s\n' 'require "rddm"' >>"$luarc"
    echo "luarc-line $luarc" >>"$manifest.new"
  elif grep -q "^luarc-" "$manifest" 2>/dev/null; then
    grep "^luarc-" "$manifest" >>"$manifest.new"  # added by an earlier run: still ours
  fi
  # The plugin's preference for the engine's command (darktablerc: lua/rddm/executable).
  rc="$dt_config/darktablerc"
  if [ ! -f "$rc" ] || grep -q "^darktablerc-created " "$manifest" 2>/dev/null; then
    echo "darktablerc-created $rc" >>"$manifest.new"
  fi
  if [ -f "$rc" ] && grep -q '^lua/rddm/executable=' "$rc"; then
    sed "s|^lua/rddm/executable=.*|lua/rddm/executable=$bin_dir/rddm|" "$rc" >"$rc.rddm-tmp" && mv "$rc.rddm-tmp" "$rc"
  else
    printf '%s\n' "lua/rddm/executable=$bin_dir/rddm" >>"$rc"
  fi
  echo "darktablerc $rc" >>"$manifest.new"
fi
mv "$manifest.new" "$manifest"

say "installed rddm $("$venv/bin/rddm" --version | sed 's/^rddm //') in $prefix"
say "commands: $bin_dir/rddm, $bin_dir/rddm-preview"
[ "$plugin" = yes ] && say "darktable plugin: $dt_config/lua/rddm.lua (luarc: require \"rddm\")"
case ":$PATH:" in *":$bin_dir:"*) ;; *) say "add $bin_dir to your PATH to run rddm from a terminal" ;; esac
say "self-check (rddm doctor):"
if [ "$plugin" = yes ]; then
  "$venv/bin/rddm" doctor --darktable-config "$dt_config" || say "the self-check found problems (above)"
else
  "$venv/bin/rddm" doctor --darktable-config "$dt_config" || true
fi
