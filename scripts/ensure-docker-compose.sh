#!/usr/bin/env bash
# Installs Debian's docker-compose package when it is missing. Idempotent. It is used only to check
# docker-compose.yml (`docker-compose config`, tests/unit/test_docker_compose.py): no Docker engine
# is needed or started.
set -euo pipefail
have() { command -v docker-compose >/dev/null 2>&1; }
have && exit 0
"$(dirname "$0")/apt-install.sh" "docker-compose" docker-compose
have
