#!/bin/sh
# Install Debian's Prometheus and Alertmanager (the agent's /metrics scrape test and the reference side of bench/alert_latency.py) when missing.
# Needs root (or sudo) and apt; does nothing if both binaries are already on PATH.
set -e
if command -v prometheus >/dev/null 2>&1 && command -v prometheus-alertmanager >/dev/null 2>&1; then
  exit 0
fi
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends prometheus prometheus-alertmanager
