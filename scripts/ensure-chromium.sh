#!/usr/bin/env bash
# Installs Debian's chromium, chromium-driver and a CJK font when any is missing. Idempotent.
# The browser tests (tests/support/browser.py) drive this chromium headless through selenium;
# nothing downloads a browser of its own.
set -euo pipefail
# A CJK font too: the pages and the report carry Chinese labels, which would otherwise render as boxes.
have() { command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1 && fc-list 2>/dev/null | grep -qi "wenquanyi zen hei"; }
have && exit 0
"$(dirname "$0")/apt-install.sh" "Chromium, its driver and a CJK font" chromium chromium-driver fonts-wqy-zenhei
have
