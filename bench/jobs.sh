#!/usr/bin/env bash
# Whole-process benchmark: N trivial jobs (`hello`, Duct's flip-flop source),
# each polled every second for DURATION seconds, written as line protocol to
# standard output (counted, then discarded).
# Reports CPU seconds (user+sys, from /proc/PID/stat, start-up excluded),
# the share of one core, peak RSS (VmHWM) and events produced vs expected.
#
#   bench/jobs.sh [N=10000] [DURATION=60]
set -euo pipefail
n=${1:-10000}
duration=${2:-60}
. "$(dirname "$0")/common.sh"
release

{
  echo "agent: { host: bench, data_dir: $work }"
  echo "jobs:"
  for ((i = 0; i < n; i++)); do
    echo "  - { id: j$i, plugin: hello, interval: 1s }"
  done
  echo "sinks:"
  echo "  - { id: out, plugin: stdout }"
} > "$work/vane.yaml"

"$vane" check -c "$work/vane.yaml" >/dev/null
"$vane" --log-level warn run -c "$work/vane.yaml" > >(wc -l > "$work/lines") &
pid=$!
pids+=("$pid")
sleep 5  # start-up and the first burst of polls are not counted
c0=$(cpu "$pid"); t0=$(date +%s.%N)
sleep "$duration"
c1=$(cpu "$pid"); t1=$(date +%s.%N)
hwm=$(awk '/VmHWM/ {print $2}' "/proc/$pid/status")
rss=$(awk '/VmRSS/ {print $2}' "/proc/$pid/status")
kill -TERM "$pid"
wait "$pid" || true
sleep 0.5
lines=$(cat "$work/lines")
awk -v c0="$c0" -v c1="$c1" -v t0="$t0" -v t1="$t1" -v tck="$tck" -v n="$n" \
    -v hwm="$hwm" -v rss="$rss" -v lines="$lines" -v d="$duration" 'BEGIN {
  cpu = (c1 - c0) / tck; wall = t1 - t0
  printf "jobs: %d, interval 1s, measured over %.1f s\n", n, wall
  printf "cpu: %.2f s user+sys = %.2f%% of one core\n", cpu, 100 * cpu / wall
  printf "peak rss: %.1f MiB (rss at end %.1f MiB)\n", hwm / 1024, rss / 1024
  printf "events written: %d in %.0f s run, about %.0f/s (expected %d/s)\n", lines, d + 5, lines / (d + 5), n
}'
