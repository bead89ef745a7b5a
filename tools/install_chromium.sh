#!/usr/bin/env bash
# Headless Chromium for the docs-site browser test (tests/test_docs_site.py): Debian's `chromium` package.
# Idempotent: does nothing when a chromium is already on PATH. Needs root (CI runs as root) or sudo.
set -euo pipefail
# fonts-wqy-microhei (5 MB): a CJK font, so the Chinese text of the drills shows in screenshots instead of boxes;
# fonts-noto-color-emoji (10 MB): the emoji in the text (🤗 for Hugging Face) instead of a box.
have_font() { command -v fc-list >/dev/null 2>&1 && [ -n "$(fc-list :lang=zh)" ] && fc-list | grep -qi emoji; }
for b in chromium chromium-browser; do
    if command -v "$b" >/dev/null 2>&1 && have_font; then echo "chromium: $(command -v "$b") already installed"; exit 0; fi
done
if ! command -v apt-get >/dev/null 2>&1; then
    echo "install_chromium.sh: no apt-get here; install Chromium yourself and put it on PATH (or set CHROMIUM=/path/to/chrome)" >&2
    exit 1
fi
SUDO=""
if [ "$(id -u)" != 0 ]; then
    if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
        echo "install_chromium.sh: run as root or install sudo: apt-get install -y chromium" >&2; exit 1; fi
fi
echo "chromium: installing Debian's chromium, a CJK font and an emoji font (apt-get, about 1-2 minutes)"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core fonts-wqy-microhei fonts-noto-color-emoji >/dev/null
command -v chromium
