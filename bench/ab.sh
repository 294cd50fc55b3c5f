#!/usr/bin/env bash
# Two vane binaries side by side, A B A B … for ROUNDS rounds, on one
# scenario, each run fed LINES pre-generated lines over one connection:
#   relay  (default) Graphite TCP -> Graphite TCP (bench/relay.sh's
#          configuration, vane alone) into a counting destination;
#   ingest line protocol over TCP into a blackhole (bench/ingest.sh's),
#          done when the internal source counts every event out.
# Prints, per run, lines/s end to end, CPU seconds per million lines (from
# /proc/PID/stat) and peak RSS (VmHWM); every line must arrive. For
# comparing a change with the commit before it on a noisy machine, where
# figures from different hours do not compare.
#
#   [AB=relay|ingest] bench/ab.sh OLD_VANE NEW_VANE [LINES=6000000] [ROUNDS=3]
set -euo pipefail
a=$1; b=$2; n=${3:-6000000}; rounds=${4:-3}
. "$(dirname "$0")/common.sh"
scenario=${AB:-relay}
case $scenario in
  relay) awk -v n="$n" 'BEGIN { for (i = 0; i < n; i++)
    printf "servers.web%d.cpu%d.user %d.5 %d\n", i % 100, i % 8, i % 1000, 1700000000 + int(i / 1000) }' > "$work/lines" ;;
  ingest) ingest_lines "$n" "$work/lines" ;;
  *) echo "AB is relay or ingest, not $scenario" >&2; exit 2 ;;
esac

run() { # VANE LABEL
  local in out pid dest c0 c1 t0 t1 hwm
  in=$(free_port); out=$(free_port)
  rm -rf "$work/data" "$work/stats.lp"
  if [ "$scenario" = relay ]; then
    cat > "$work/vane.yaml" <<YAML
agent: { host: bench, data_dir: $work/data }
jobs:
  - { id: in, plugin: socket, next: out, config: { listen: "tcp://127.0.0.1:$in", format: graphite } }
sinks:
  - { id: out, plugin: graphite, batch_wait: 10ms, config: { address: "127.0.0.1:$out", template: "{path}" } }
YAML
    rm -f "$work/ready"
    python3 "$root/bench/count_lines.py" "$out" "$n" 30 "$work/ready" > "$work/dest.out" &
    dest=$!
    until [ -e "$work/ready" ]; do sleep 0.02; done
  else
    ingest_config "$work/vane.yaml" "$in"
  fi
  "$1" --log-level warn run -c "$work/vane.yaml" > "$work/vane.log" 2>&1 &
  pid=$!
  wait_port "$in"
  c0=$(awk '{print $14 + $15}' "/proc/$pid/stat"); t0=$(date +%s.%N)
  socat -u "$work/lines" "TCP:127.0.0.1:$in"
  if [ "$scenario" = relay ]; then
    wait "$dest" || true
  else
    local deadline=$((SECONDS + 120))
    until [ "$(delivered)" = "$n" ] || [ $SECONDS -ge $deadline ]; do sleep 0.02; done
    if [ "$(delivered)" = "$n" ]; then echo "complete $n"; else echo "delivered $(delivered)"; fi > "$work/dest.out"
  fi
  t1=$(date +%s.%N); c1=$(awk '{print $14 + $15}' "/proc/$pid/stat")
  hwm=$(awk '/VmHWM/ {print $2}' "/proc/$pid/status")
  kill -TERM "$pid"; wait "$pid" 2>/dev/null || true
  if ! grep -q "^complete $n" "$work/dest.out"; then
    echo "$2: not every line arrived: $(cat "$work/dest.out")"
    return
  fi
  awk -v l="$2" -v t0="$t0" -v t1="$t1" -v c0="$c0" -v c1="$c1" -v tck="$tck" -v hwm="$hwm" -v n="$n" \
    'BEGIN { printf "%-4s %6.2f M lines/s %7.3f CPU-s per M lines %7.1f MiB peak RSS\n", l, n / (t1 - t0) / 1e6, (c1 - c0) / tck / (n / 1e6), hwm / 1024 }'
}

echo "$scenario, lines: $n per run, $rounds rounds; A=$a B=$b; $(nproc) cores, $(uname -r), $(date -u +%F)"
for ((i = 1; i <= rounds; i++)); do
  run "$a" A
  run "$b" B
done
