#!/bin/sh
# Until the first release there is one initial migration, regenerated from storage/models.py.
# (After the first release: `alembic revision --autogenerate -m "..."` makes a new one instead.)
set -e
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
rm -f migrations/versions/0001_initial.py
KIOSK_DATABASE_URL="sqlite:///$tmp/empty.db" .venv/bin/alembic revision --autogenerate \
  --rev-id 0001 -m "initial" >/dev/null
.venv/bin/ruff format -q migrations/versions/0001_initial.py
.venv/bin/ruff check -q --fix migrations/versions/0001_initial.py || true
rm -rf "$tmp"
echo "regenerated migrations/versions/0001_initial.py"
