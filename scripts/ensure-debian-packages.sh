#!/usr/bin/env bash
# Installs Debian packages whose command is missing: ensure-debian-packages.sh COMMAND:PACKAGE ...
# (e.g. wrk:wrk chromedriver:chromium-driver). A package without a command is named by a file it
# installs, as an absolute path (/usr/share/postgresql/15/extension/pgautofailover.control:
# postgresql-15-auto-failover). Needs root to install; says what is missing if not.
set -euo pipefail
missing=()
for pair in "$@"; do
  wanted="${pair%%:*}"
  if [[ "$wanted" == /* ]]; then
    [ -e "$wanted" ] || missing+=("${pair#*:}")
  else
    command -v "$wanted" >/dev/null || missing+=("${pair#*:}")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ]; then
  echo "missing Debian packages: ${missing[*]} (install them with apt-get)" >&2
  exit 1
fi
echo "Installing ${missing[*]} with apt-get" >&2
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
