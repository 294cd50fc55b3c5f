#!/usr/bin/env bash
# Counts the lines of every seed example (Rust and Lua) and writes the
# README's table of them against the originals in the seeds' guides.
set -euo pipefail
cd "$(dirname "$0")/.."
VANE_WRITE_README=1 cargo test -q -p vane-seeds --test lines the_readme_shows_the_counts
