# Sourced by the scripts here: the Python tiffin runs on, and apt installs.
# Debian's own /usr/bin/python3 when there is one (every OS user can run it, and it is the
# oldest Python tiffin supports, 3.11.2 on Debian 12), else the first python3 on PATH.

apt_install() {  # apt_install PKG...: install the packages not yet installed (Debian only)
  local need=() pkg
  command -v dpkg-query >/dev/null || return 0
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" || need+=("$pkg")
  done
  [ ${#need[@]} -gt 0 ] || return 0
  local sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}"
}

if [ -x /usr/bin/python3 ]; then PY=/usr/bin/python3; else PY=$(command -v python3); fi
"$PY" -c 'import ensurepip, venv' 2>/dev/null || apt_install python3-venv

make_venv() {  # make_venv DIR: a venv of $PY at DIR, made anew if another Python made it
  if [ -x "$1/bin/python" ] && [ "$(readlink -f "$1/bin/python")" != "$(readlink -f "$PY")" ]; then
    echo "$1 was made from $(readlink -f "$1/bin/python"); making it anew from $PY" >&2
    rm -rf "$1"
  fi
  [ -x "$1/bin/python" ] || "$PY" -m venv "$1"
}
