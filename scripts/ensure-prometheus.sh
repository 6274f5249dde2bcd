#!/usr/bin/env bash
# Installs Debian's prometheus package (prometheus + promtool) when either is missing. Idempotent.
# The package's own service is irrelevant: sharebus starts its own Prometheus with its own config,
# port and data directory (sharebus_monitor.prometheus), never the system one.
set -euo pipefail
if command -v prometheus >/dev/null 2>&1 && command -v promtool >/dev/null 2>&1; then
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "sharebus: Prometheus is missing and this is not a Debian-like system; install prometheus and promtool" >&2
  exit 1
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null 2>&1 || { echo "sharebus: installing prometheus needs root (or sudo)" >&2; exit 1; }
  SUDO="sudo"
fi
echo "sharebus: installing Prometheus (Debian package 'prometheus')"
export DEBIAN_FRONTEND=noninteractive
# Another apt run on the same machine holds the lock for a while; wait for it rather than fail.
$SUDO apt-get -o DPkg::Lock::Timeout=600 update -qq
$SUDO apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends prometheus >/dev/null
command -v prometheus >/dev/null && command -v promtool >/dev/null
