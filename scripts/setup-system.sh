#!/usr/bin/env bash
# System packages the test suite needs beyond pip: Debian's chromium for the browser tests of the
# artifact pages (tests/render/). Installs only what is missing; the browser comes from Debian's
# archive through apt-get, never from a download of its own.
set -euo pipefail

PACKAGES=(chromium fonts-dejavu-core fonts-noto-color-emoji)
if [ -x /usr/bin/chromium ] && [ -f /usr/share/fonts/truetype/noto/NotoColorEmoji.ttf ]; then
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "scripts/setup-system.sh: /usr/bin/chromium is missing; run it as root (it uses apt-get)" >&2
    exit 2
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends "${PACKAGES[@]}"
