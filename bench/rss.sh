#!/usr/bin/env bash
# Idle footprint of vane binaries, alternately: each does collectd's work
# (the built-in config's host sources every 10 s, written to a file; before
# the built-in config served a board, it was this) for SECS seconds,
# then its RSS (and anonymous / file-backed parts) from /proc/PID/status and
# the resident KiB of its largest mappings from /proc/PID/smaps.
# The "Footprint experiments" of bench/RESULTS.md come from it.
#
#   bench/rss.sh [--secs N] [--rounds N] BINARY...
set -euo pipefail
secs=15
rounds=3
while (($#)); do
  case "$1" in
    --secs) secs="$2"; shift 2 ;;
    --rounds) rounds="$2"; shift 2 ;;
    *) break ;;
  esac
done
(($#)) || { echo "usage: $0 [--secs N] [--rounds N] BINARY..." >&2; exit 2; }
for ((r = 1; r <= rounds; r++)); do
  for bin in "$@"; do
    home=$(mktemp -d)
    {
      echo "agent: { data_dir: $home }"
      echo "sources:"
      for j in cpu memory swap disk diskio net load processes system; do echo "  - { id: $j, plugin: $j }"; done
      echo "sinks:"
      echo "  - { id: out, plugin: file, config: { path: $home/out.lp } }"
    } >"$home/vane.yaml"
    HOME=$home "$bin" run -c "$home/vane.yaml" >/dev/null 2>"$home/log" &
    pid=$!
    sleep "$secs"
    kb() { awk -v k="$1:" '$1 == k { print $2 }' "/proc/$pid/status"; }
    echo "round $r $bin: size $(stat -c %s "$bin") B, RSS $(kb VmRSS) KiB (anon $(kb RssAnon), file $(kb RssFile))"
    awk '/^[0-9a-f]+-[0-9a-f]+ / { name = ($6 == "" ? "[anon]" : $6) " " $2; next }
         /^Rss:/ { rss[name] += $2 }
         END { for (n in rss) printf "  %7d KiB %s\n", rss[n], n }' "/proc/$pid/smaps" | sort -rn | head -6
    kill "$pid"
    wait "$pid" 2>/dev/null || true
    rm -rf "$home"
  done
done
