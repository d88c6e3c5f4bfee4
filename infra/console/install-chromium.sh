#!/bin/sh
# Headless Chromium from Debian, for the console's browser test (tests/console/). Idempotent.
command -v chromium >/dev/null 2>&1 && exit 0
command -v apt-get >/dev/null 2>&1 || { echo "no apt-get: install Chromium yourself"; exit 1; }
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "installing Chromium (Debian package) for the console's browser test"
$SUDO apt-get update -q && $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium
