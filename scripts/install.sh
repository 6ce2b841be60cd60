#!/usr/bin/env bash
# Install tiffin for every OS user: a venv of Debian's own Python in PREFIX (default
# /opt/tiffin) and the command linked into BINDIR (default /usr/local/bin), all readable and
# runnable by any user (PostgreSQL's archive_command runs as `postgres`, cron jobs as their
# owner). Run as root, or with sudo. Run it again to upgrade.
#   bash scripts/install.sh [PREFIX [BINDIR]]
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
prefix=${1:-/opt/tiffin}
bindir=${2:-/usr/local/bin}
. "$src/scripts/lib.sh"

umask 022
make_venv "$prefix"
# From a clean copy of the package: setuptools keeps a build/ folder in the source tree, and
# modules moved or removed since the last build would be installed again from it.
copy=$(mktemp -d)
trap 'rm -rf "$copy"' EXIT
cp -r "$src/pyproject.toml" "$src/README.md" "$src/tiffin" "$copy/"
find "$copy" -name __pycache__ -prune -exec rm -rf {} +
"$prefix/bin/pip" install -q --disable-pip-version-check --upgrade "$copy"
# The command itself: PostgreSQL starts wal-push and wal-fetch once per WAL file, so they start
# isolated and without the site module, from the venv's own packages (6 ms less a call, a third
# of one that a helper's work ahead answers); every other command loads site as usual. -I also
# keeps PYTHONPATH and the like of whoever runs it from choosing the code that runs.
site=$("$prefix/bin/python" -I -c 'import sysconfig; print(repr(sysconfig.get_path("purelib")))')
launcher="$prefix/bin/tiffin"
if [[ "$prefix/bin/python" =~ ^[A-Za-z0-9/._+@:,=-]+$ ]] && [ ${#prefix} -lt 100 ]; then
  start="#!$prefix/bin/python -IS"
else  # a shebang line ends at its first blank and after 127 bytes: through sh, as pip does
  start=$(printf '%s\n' '#!/bin/sh' \
    "'''exec' \"\$(dirname -- \"\$(readlink -f -- \"\$0\")\")/python\" -IS \"\$0\" \"\$@\"" \
    "' '''")
fi
cat > "$launcher.new" <<LAUNCHER
$start
# Written by tiffin's scripts/install.sh: see there.
import sys
if sys.argv[1:2] in (["wal-push"], ["wal-fetch"]):
    sys.path.append($site)
else:
    import site
    site.main()
from tiffin.entry import run
run()
LAUNCHER
chmod 755 "$launcher.new"
mv -f "$launcher.new" "$launcher"
chmod -R a+rX "$prefix"
mkdir -p "$bindir"
ln -sfn "$prefix/bin/tiffin" "$bindir/tiffin"
echo "tiffin $("$bindir/tiffin" --version 2>/dev/null | awk '{print $NF}') installed in $prefix on $("$prefix/bin/python" -V 2>&1); command: $bindir/tiffin"
