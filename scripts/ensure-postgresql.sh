#!/usr/bin/env bash
# Installs Debian's postgresql package when its server programs are missing. Idempotent.
# sharebus land's tests and benchmark start their own server (as the postgres user, on a free
# port, in a temporary directory); the package's own cluster and service play no part.
set -euo pipefail
have() { compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null && compgen -G "/usr/lib/postgresql/*/bin/pg_ctl" >/dev/null; }
have && exit 0
"$(dirname "$0")/apt-install.sh" PostgreSQL postgresql
have
