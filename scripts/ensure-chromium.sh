#!/usr/bin/env bash
# Installs Debian's chromium and chromium-driver when either is missing. Idempotent.
# The browser tests (tests/support/browser.py) drive this chromium headless through selenium;
# nothing downloads a browser of its own.
set -euo pipefail
have() { command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; }
have && exit 0
"$(dirname "$0")/apt-install.sh" "Chromium and its driver" chromium chromium-driver
have
