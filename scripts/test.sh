#!/usr/bin/env bash
# Install everything the tests need on a fresh Debian machine, then run the whole suite.
# Safe to run again: apt and pip skip what is already there.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

apt_install mariadb-server mariadb-client postgresql postgresql-client openssh-server \
  openssh-client cron pigz zstd sqlite3 python3-venv \
  mariadb-backup pgbackrest mydumper prometheus prometheus-pushgateway \
  prometheus-node-exporter chromium

make_venv .venv
.venv/bin/pip install -q --disable-pip-version-check -e '.[test]'

export PATH="$PWD/.venv/bin:$PATH"

# The tests' servers and files go to a tmpfs when /dev/shm is one with room and exec allowed:
# nothing there needs to outlive the run, and initdb, the servers and every restore's fsyncs
# then cost no disk writes. Set TIFFIN_TEST_TMP (to /tmp, say) to choose the folder.
base=()
if [ -z "${TIFFIN_TEST_TMP:-}" ] && [ "$(stat -f -c %T /dev/shm 2>/dev/null)" = tmpfs ] \
  && ! findmnt -n -o OPTIONS -T /dev/shm | grep -qw noexec \
  && [ "$(df --output=avail -k /dev/shm | tail -n 1)" -gt $((8 * 1024 * 1024)) ]; then
  TIFFIN_TEST_TMP=$(mktemp -d /dev/shm/tiffin-tests.XXXXXX)
  trap 'rm -rf "$TIFFIN_TEST_TMP"' EXIT
  chmod 1777 "$TIFFIN_TEST_TMP"  # as /tmp: other users' servers make folders in it
  export TIFFIN_TEST_TMP TMPDIR=$TIFFIN_TEST_TMP
  base=(--basetemp="$TIFFIN_TEST_TMP/pytest")
fi
# Four workers on two cores: most of a test's time is spent waiting (process starts, servers,
# time-outs), so 4 workers took 147 s where 2 took 238 s, for the same CPU.
.venv/bin/pytest -n 4 --dist worksteal -q "${base[@]}" "$@"
