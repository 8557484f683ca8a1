#!/usr/bin/env bash
# Installs Debian's Chromium and its WebDriver (packages chromium and chromium-driver) if they are
# missing; the browser test drives them headless. Prints the chromedriver path on its last line.
set -euo pipefail

if [[ ! -x /usr/bin/chromium || ! -x /usr/bin/chromedriver ]]; then
  echo "installing chromium and chromium-driver from Debian's packages" >&2
  if [[ $(id -u) -ne 0 ]]; then echo "need root to apt-get install chromium chromium-driver" >&2; exit 1; fi
  # One `apt-get update` per machine: skip it when the package lists are already there.
  if ! ls /var/lib/apt/lists/*_Packages >/dev/null 2>&1; then apt-get update -qq >&2; fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >&2 || {
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >&2
  }
fi
/usr/bin/chromium --version >&2
echo /usr/bin/chromedriver
