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
.venv/bin/pytest -n 2 --dist loadgroup -q "$@"
