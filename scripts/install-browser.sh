#!/usr/bin/env bash
# Installs Debian's headless Chromium and ChromeDriver for the console's browser test
# (crates/concord/tests/it/console.rs) when they are missing: packages `chromium` and
# `chromium-driver` from the machine's Debian repositories (~110 MB download, once).
set -euo pipefail
if [[ -x /usr/bin/chromium && -x /usr/bin/chromedriver ]]; then
  exit 0
fi
echo "install-browser: installing Debian's chromium and chromium-driver"
as_root=()
if [[ $(id -u) -ne 0 ]]; then
  command -v sudo > /dev/null || {
    echo "install-browser: not root and no sudo: run apt-get install chromium chromium-driver" >&2
    exit 1
  }
  as_root=(sudo)
fi
export DEBIAN_FRONTEND=noninteractive
"${as_root[@]}" apt-get update -qq
"${as_root[@]}" apt-get install -y -qq --no-install-recommends chromium chromium-driver > /dev/null
/usr/bin/chromium --version
