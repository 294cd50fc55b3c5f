#!/usr/bin/env bash
# Graphite relay throughput: plaintext over TCP in, plaintext over TCP out
# to a counting destination (bench/count_lines.py), for vane and for
# carbon-c-relay (Debian's package), alternately (A B A B …). Each is fed
# the same pre-generated LINES as fast as it takes them, over one
# connection; the run ends when every line has reached the destination.
# Figures per run: seconds, lines/s end to end, CPU seconds of the relay
# process (from /proc/PID/stat) per million lines, its peak RSS (VmHWM).
#
#   bench/relay.sh [LINES=10000000] [PAIRS=3]
set -euo pipefail
n=${1:-10000000}
pairs=${2:-3}
command -v carbon-c-relay >/dev/null || { echo "carbon-c-relay is not installed (apt-get install carbon-c-relay)"; exit 1; }
. "$(dirname "$0")/common.sh"
release

awk -v n="$n" 'BEGIN { for (i = 0; i < n; i++)
  printf "servers.web%d.cpu%d.user %d.5 %d\n", i % 100, i % 8, i % 1000, 1700000000 + int(i / 1000) }' > "$work/lines"

start_vane() { # IN OUT
  cat > "$work/vane.yaml" <<YAML
agent: { host: bench, data_dir: $work }
jobs:
  - { id: in, plugin: socket, next: out, config: { listen: "tcp://127.0.0.1:$1", format: graphite } }
sinks:
  - { id: out, plugin: graphite, batch_wait: 10ms, config: { address: "127.0.0.1:$2", template: "{path}" } }
YAML
  # Its output must not hold the caller's $(…) open.
  "$vane" --log-level warn run -c "$work/vane.yaml" >"$work/vane.log" 2>&1 &
  echo $!
}
start_relay() { # IN OUT
  cat > "$work/relay.conf" <<CONF
listen
    type linemode
        127.0.0.1:$1 proto tcp
    ;
cluster out
    forward
        127.0.0.1:$2
    ;
match *
    send to out
    stop
    ;
CONF
  rm -f "$work/relay.log"
  carbon-c-relay -s -f "$work/relay.conf" -l "$work/relay.log" -q 1000000 >/dev/null 2>&1 &
  local p=$!
  # It must not be probed before it says it is ready.
  until grep -q "startup sequence complete" "$work/relay.log" 2>/dev/null; do sleep 0.05; done
  echo $p
}

run() { # TOOL -> "seconds cpu hwm_kib"
  local in out pid dest c0 c1 t0 t1 hwm
  in=$(free_port); out=$(free_port)
  rm -f "$work/ready"
  python3 "$root/bench/count_lines.py" "$out" "$n" 30 "$work/ready" > "$work/dest.out" &
  dest=$!
  until [ -e "$work/ready" ]; do sleep 0.02; done
  if [ "$1" = vane ]; then pid=$(start_vane "$in" "$out"); else pid=$(start_relay "$in" "$out"); fi
  pids+=("$pid")
  [ "$1" = vane ] && wait_port "$in"
  c0=$(awk '{print $14 + $15}' "/proc/$pid/stat"); t0=$(date +%s.%N)
  socat -u "$work/lines" "TCP:127.0.0.1:$in"
  wait "$dest" || true
  t1=$(date +%s.%N); c1=$(awk '{print $14 + $15}' "/proc/$pid/stat")
  hwm=$(awk '/VmHWM/ {print $2}' "/proc/$pid/status")
  kill -TERM "$pid"; wait "$pid" 2>/dev/null || true
  if ! grep -q "^complete $n" "$work/dest.out"; then
    echo "$1: not every line arrived: $(cat "$work/dest.out")" >&2
    echo "fail"
    return
  fi
  awk -v t0="$t0" -v t1="$t1" -v c0="$c0" -v c1="$c1" -v tck="$tck" -v hwm="$hwm" \
    'BEGIN { printf "%.3f %.3f %d\n", t1 - t0, (c1 - c0) / tck, hwm }'
}

echo "lines: $n per run, $pairs pairs; $(nproc) cores, $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo), $(uname -r), $(date -u +%F)"
printf "%-16s %8s %12s %14s %10s\n" tool seconds lines/s "cpu s/M lines" "rss MiB"
for ((i = 1; i <= pairs; i++)); do
  for tool in vane carbon-c-relay; do
    r=$(run "$tool")
    if [ "$r" = fail ]; then printf "%-16s %s\n" "$tool" "lines lost: see above"; continue; fi
    read -r secs cpu hwm <<<"$r"
    echo "$tool $secs $cpu $hwm" >> "$work/results"
    awk -v t="$tool" -v s="$secs" -v c="$cpu" -v h="$hwm" -v n="$n" \
      'BEGIN { printf "%-16s %8.2f %12.0f %14.2f %10.1f\n", t, s, n / s, c / (n / 1e6), h / 1024 }'
  done
done
python3 - "$work/results" "$n" <<'PY'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1])]
n = int(sys.argv[2])
by = {}
for t, s, c, h in rows:
    by.setdefault(t, []).append((float(s), float(c), int(h)))
if len(by) == 2:
    v, r = by["vane"], by["carbon-c-relay"]
    ratios = [b[0] / a[0] for a, b in zip(v, r)]
    print("median lines/s: vane %.0f, carbon-c-relay %.0f; vane/relay throughput per pair: %s, median %.2f" % (
        n / statistics.median(x[0] for x in v), n / statistics.median(x[0] for x in r),
        " ".join("%.2f" % x for x in ratios), statistics.median(ratios)))
    print("median cpu s per million lines: vane %.2f, carbon-c-relay %.2f; median peak rss MiB: vane %.1f, carbon-c-relay %.1f" % (
        statistics.median(x[1] for x in v) / (n / 1e6), statistics.median(x[1] for x in r) / (n / 1e6),
        statistics.median(x[2] for x in v) / 1024, statistics.median(x[2] for x in r) / 1024))
PY
