#!/usr/bin/env bash
# vane against its peers, side by side: installs the peers (Debian packages,
# and ducted from PyPI into bench/.venv), builds vane in release mode, runs
# the scenarios (all, or those named) and writes their tables into
# bench/RESULTS.md. See bench/run.py for the scenarios and how they measure.
#
#   bench/run.sh [hostmetrics|sources|relay|ingest|influxdb|idle|board|page …]
#
# `board` and `page` open pages in the Chromium and Selenium that
# scripts/install-test-deps.sh installs.
#
# Shorter runs for a quick look (the tables say what was used):
#   BENCH_PAIRS=1 BENCH_SECONDS=10 BENCH_SOURCES=1000 BENCH_LINES=1000000 bench/run.sh
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)

packages=(collectd-core netdata-core netdata-web prometheus-node-exporter carbon-c-relay influxdb socat curl python3-venv)
missing=()
for p in "${packages[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if ((${#missing[@]})); then
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -q
  # A peer that fails to install is reported by the harness, not here.
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${missing[@]}" || true
fi
venv="$root/bench/.venv"
if [ ! -x "$venv/bin/ductd" ]; then
  /usr/bin/python3 -m venv "$venv" && "$venv/bin/pip" install -q ducted || echo "ducted could not be installed"
fi
export DUCTD="$venv/bin/ductd"
cargo build --release --quiet --manifest-path "$root/Cargo.toml"
exec /usr/bin/python3 "$root/bench/run.py" "$@"
