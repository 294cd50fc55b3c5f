#!/usr/bin/env bash
# Line protocol over TCP into a blackhole sink, through the release binary.
# Sends LINES pre-generated lines over one connection with socat and waits
# until the sink has taken every one (the `internal` source's figures).
# Reports events/s end to end, CPU seconds per million events (from
# /proc/PID/stat) and peak RSS; then, as the reference, the rate of simply
# moving the same bytes through a loopback TCP socket into /dev/null.
#
#   bench/ingest.sh [LINES=5000000]
set -euo pipefail
n=${1:-5000000}
. "$(dirname "$0")/common.sh"
release
port=$(free_port)

ingest_lines "$n" "$work/lines.lp"
bytes=$(stat -c %s "$work/lines.lp")

ingest_config "$work/vane.yaml" "$port"
"$vane" --log-level warn run -c "$work/vane.yaml" &
pid=$!
pids+=("$pid")
wait_port "$port"
c0=$(cpu "$pid"); t0=$(date +%s.%N)
socat -u "$work/lines.lp" "TCP:127.0.0.1:$port"
until [ "$(delivered)" = "$n" ]; do sleep 0.02; done
t1=$(date +%s.%N); c1=$(cpu "$pid")
hwm=$(awk '/VmHWM/ {print $2}' "/proc/$pid/status")
kill -TERM "$pid"; wait "$pid" || true

# The reference: the same bytes through loopback TCP into /dev/null.
socat -u "TCP-LISTEN:$port,bind=127.0.0.1,reuseaddr" /dev/null &
sink=$!
until (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null; do sleep 0.05; done
wait "$sink" || true  # the probe above was its one connection
socat -u "TCP-LISTEN:$port,bind=127.0.0.1,reuseaddr" /dev/null &
sink=$!
until ss -ltn | grep -q ":$port "; do sleep 0.02; done
r0=$(date +%s.%N)
socat -u "$work/lines.lp" "TCP:127.0.0.1:$port"
wait "$sink"
r1=$(date +%s.%N)

awk -v n="$n" -v bytes="$bytes" -v t0="$t0" -v t1="$t1" -v c0="$c0" -v c1="$c1" \
    -v tck="$tck" -v hwm="$hwm" -v r0="$r0" -v r1="$r1" 'BEGIN {
  wall = t1 - t0; cpu = (c1 - c0) / tck; ref = r1 - r0
  printf "lines: %d (%.0f MiB), one TCP connection\n", n, bytes / 1048576
  printf "vane: %.2f s, %.0f events/s, %.0f MiB/s; cpu %.2f s = %.2f s per million events; peak rss %.1f MiB\n",
    wall, n / wall, bytes / 1048576 / wall, cpu, cpu / (n / 1e6), hwm / 1024
  printf "loopback reference (socat to /dev/null): %.2f s, %.0f lines/s, %.0f MiB/s\n", ref, n / ref, bytes / 1048576 / ref
  printf "vane / reference: %.0f%%\n", 100 * ref / wall
}'
