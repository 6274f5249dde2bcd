#!/usr/bin/env bash
# Installs Debian packages for the ensure-*.sh scripts: apt-get as root (or through sudo), waiting
# for another apt run's lock rather than failing. Usage: apt-install.sh "<what, for messages>" pkg...
set -euo pipefail
what="$1"; shift
if ! command -v apt-get >/dev/null 2>&1; then
  echo "sharebus: $what is missing and this is not a Debian-like system; install: $*" >&2
  exit 1
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null 2>&1 || { echo "sharebus: installing $what needs root (or sudo)" >&2; exit 1; }
  SUDO="sudo"
fi
echo "sharebus: installing $what (Debian packages: $*)"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get -o DPkg::Lock::Timeout=600 update -qq
$SUDO apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "$@" >/dev/null
