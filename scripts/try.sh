#!/usr/bin/env bash
# Install tiffin in a venv and take a real backup with no server: a folder and a SQLite file
# into a local folder, then list what was stored and restore the folder.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
make_venv .venv
.venv/bin/pip install -q --disable-pip-version-check -e .
demo=$(mktemp -d /tmp/tiffin-demo.XXXXXX)
mkdir -p "$demo/data/photos"
echo "hello from tiffin" > "$demo/data/notes.txt"
head -c 100000 /dev/urandom > "$demo/data/photos/cat.jpg"
.venv/bin/python -c "import sqlite3; c=sqlite3.connect('$demo/app.db'); c.execute('create table t(x)'); c.executemany('insert into t values (?)', [(i,) for i in range(1000)]); c.commit()"
.venv/bin/tiffin backup data local "$demo/backups" --dir "$demo/data"
.venv/bin/tiffin backup sqlite "file://$demo/backups" --file "$demo/app.db" --compress zstd
ls -l "$demo/backups"
.venv/bin/tiffin list local "$demo/backups"
.venv/bin/tiffin verify local "$demo/backups" --all
name=$(cd "$demo/backups" && ls *.sqlite.zst)
.venv/bin/tiffin restore local "$demo/backups" "$name" --into sqlite --file "$demo/restored.db"
.venv/bin/tiffin restore local "$demo/backups" "$(cd "$demo/backups" && ls *.data.tar.gz)" \
  --into dir --dir "$demo/restored"
diff -r "$demo/data" "$demo/restored/data" && echo "restored folder: identical"
echo "restored rows: $(.venv/bin/python -c "import sqlite3; print(sqlite3.connect('$demo/restored.db').execute('select count(*) from t').fetchone()[0])")"
