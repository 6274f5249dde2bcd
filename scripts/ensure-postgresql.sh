#!/usr/bin/env bash
# Installs Debian's postgresql package when its server programs are missing. Idempotent.
# sharebus land's tests and benchmark start their own server (as the postgres user, on a free
# port, in a temporary directory); the package's own cluster and service play no part.
set -euo pipefail
if compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null && compgen -G "/usr/lib/postgresql/*/bin/pg_ctl" >/dev/null; then
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "sharebus: PostgreSQL is missing and this is not a Debian-like system; install the postgresql server" >&2
  exit 1
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null 2>&1 || { echo "sharebus: installing postgresql needs root (or sudo)" >&2; exit 1; }
  SUDO="sudo"
fi
echo "sharebus: installing PostgreSQL (Debian package 'postgresql')"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get -o DPkg::Lock::Timeout=600 update -qq
$SUDO apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends postgresql >/dev/null
compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null
