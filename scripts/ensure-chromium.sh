#!/usr/bin/env bash
# The admin console's browser tests drive Debian's headless Chromium; install it where missing.
set -euo pipefail
if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "chromium and chromedriver are missing: install Debian's chromium and chromium-driver" >&2
  exit 1
fi
echo "Installing chromium and chromium-driver with apt-get" >&2
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null
