#!/bin/sh
# Install Debian's prometheus (used by the agent's /metrics scrape test) when missing.
# Needs root (or sudo) and apt; does nothing if the binary is already on PATH.
set -e
command -v prometheus >/dev/null 2>&1 && exit 0
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends prometheus
