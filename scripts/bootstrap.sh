#!/usr/bin/env bash
# Idempotent set-up for a fresh machine: virtualenv, pinned Python packages, Kafka jars, and the Debian
# packages the tests use (Prometheus, PostgreSQL, Chromium).
# Re-running reuses what is there: packages are reinstalled only when pyproject.toml or
# constraints.txt change, and jars are resolved only when missing from the user's cache.
set -euo pipefail
cd "$(dirname "$0")/.."

need() { command -v "$1" >/dev/null 2>&1 || { echo "sharebus: '$1' is required but not on PATH ($2)" >&2; exit 1; }; }
need python3 "Python >= 3.11"
need java "Java 17 runs the Kafka broker"
need mvn "Maven resolves the Kafka jars from Maven Central"
python3 - <<'PY' || { echo "sharebus: Python >= 3.11 is required" >&2; exit 1; }
import sys
sys.exit(0 if sys.version_info >= (3, 11) else 1)
PY

VENV=.venv
if [ ! -x "$VENV/bin/python" ]; then
  echo "sharebus: creating $VENV"
  python3 -m venv "$VENV"
fi
stamp="$VENV/.sharebus-installed"
want=$(cat pyproject.toml constraints.txt | sha256sum | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "sharebus: installing Python packages (pinned by constraints.txt)"
  "$VENV/bin/python" -m pip install -q --upgrade pip
  "$VENV/bin/python" -m pip install -q -c constraints.txt -e ".[dev]"
  echo "$want" > "$stamp"
fi

# The router's per-record modules as C extensions (mypyc; sharebus_core/native.py lists them): built when one
# is missing or older than its source, and any extension of a module no longer listed removed.
if ! "$VENV/bin/python" -c 'import sys; from sharebus_core import native; sys.exit(native.check() is not None)'; then
  echo "sharebus: compiling the router's per-record modules (mypyc)"
  "$VENV/bin/python" - <<'PY'
from sharebus_core import native
for path in native.orphans():
    path.unlink()
PY
  mkdir -p build
  if ! SHAREBUS_COMPILE=1 "$VENV/bin/python" setup.py -q build_ext --inplace --force > build/native.log 2>&1; then
    tail -40 build/native.log >&2
    echo "sharebus: compiling failed (gcc and Python's headers are needed); the whole log: build/native.log" >&2
    exit 1
  fi
  "$VENV/bin/python" -c 'import sys; from sharebus_core import native; m = native.check(); m and print(m, file=sys.stderr); sys.exit(m is not None)'
fi

# Kafka jars from Maven Central into ~/.cache/sharebus (no-op when already there).
"$VENV/bin/python" -m sharebus_broker fetch >/dev/null

# Prometheus and promtool (Debian's package) for the observability tests and `make run`.
scripts/ensure-prometheus.sh

# PostgreSQL's server (Debian's package) for sharebus land's tests and benchmark.
scripts/ensure-postgresql.sh

# Chromium and chromedriver (Debian's packages) for the browser tests of the web pages.
scripts/ensure-chromium.sh

# docker-compose (Debian's package) to check docker-compose.yml (`docker-compose config`); no engine needed.
scripts/ensure-docker-compose.sh
