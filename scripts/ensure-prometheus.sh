#!/usr/bin/env bash
# Installs Debian's prometheus package (prometheus + promtool) when either is missing. Idempotent.
# The package's own service is irrelevant: sharebus starts its own Prometheus with its own config,
# port and data directory (sharebus_monitor.prometheus), never the system one.
set -euo pipefail
have() { command -v prometheus >/dev/null 2>&1 && command -v promtool >/dev/null 2>&1; }
have && exit 0
"$(dirname "$0")/apt-install.sh" Prometheus prometheus
have
