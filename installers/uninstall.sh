#!/bin/sh
# Remove what installers/install.sh added, as listed in its manifest: the virtual environment, the
# command links, the plugin files, the luarc line and the plugin's darktablerc preference. Your
# images, restored files and darktable library are never touched.
#
#   installers/uninstall.sh [--prefix DIR]
set -eu

say() { printf '%s\n' "rddm uninstall: $*"; }
fail() { printf '%s\n' "rddm uninstall: error: $*" >&2; exit 1; }

prefix="${XDG_DATA_HOME:-$HOME/.local/share}/rddm"
while [ $# -gt 0 ]; do
  case "$1" in
    --prefix) [ $# -ge 2 ] || fail "--prefix needs a folder"; prefix=$2; shift 2 ;;
    -h|--help) sed -n '2,7p' "$0"; exit 0 ;;
    *) fail "unknown option $1 (see --help)" ;;
  esac
done
manifest="$prefix/install-manifest.txt"
[ -f "$manifest" ] || fail "no rddm installation in $prefix (no $manifest)"

# Stop an engine of this installation first (it runs from the venv).
venv=$(sed -n 's/^venv //p' "$manifest")
[ -x "$venv/bin/rddm" ] && "$venv/bin/rddm" engine stop >/dev/null 2>&1 || true

while IFS= read -r line; do
  kind=${line%% *}
  path=${line#* }
  case "$kind" in
    link) [ -L "$path" ] && rm -f "$path" && say "removed $path" ;;
    file) [ -f "$path" ] && rm -f "$path" && say "removed $path" ;;
    dir) rmdir "$path" 2>/dev/null && say "removed $path" ;;
    luarc-created)
      if [ -f "$path" ] && [ "$(grep -vx 'require "rddm"' "$path" | grep -c .)" = 0 ]; then
        rm -f "$path" && say "removed $path"
      else
        grep -vx 'require "rddm"' "$path" >"$path.rddm-tmp" && mv "$path.rddm-tmp" "$path"
      fi ;;
    luarc-line)
      grep -vx 'require "rddm"' "$path" >"$path.rddm-tmp" || true
      mv "$path.rddm-tmp" "$path"
      rm -f "$path.rddm-backup"
      say "removed the rddm line from $path" ;;
    darktablerc|darktablerc-created)
      if [ -f "$path" ]; then
        grep -v '^lua/rddm/' "$path" >"$path.rddm-tmp" || true
        mv "$path.rddm-tmp" "$path"
        if [ "$kind" = darktablerc-created ] && [ ! -s "$path" ]; then rm -f "$path"; fi
      fi ;;
    venv) ;;
  esac
done <"$manifest"

case "$venv" in
  "$prefix"/*) rm -rf "$venv" && say "removed $venv" ;;
esac
rm -f "$manifest"
rmdir "$prefix" 2>/dev/null || true
say "done"
