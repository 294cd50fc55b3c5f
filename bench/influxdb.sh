#!/usr/bin/env bash
# InfluxDB sink throughput: N events into a real InfluxDB 1.x on loopback
# through vane (execd reading a file -> influxdb sink, batches of 5,000),
# against the same batches POSTed to /write with curl one after another
# (the server's own limit for this client pattern).
#
#   bench/influxdb.sh [N=500000]
set -euo pipefail
n=${1:-500000}
. "$(dirname "$0")/common.sh"
release
port=$(free_port)
rpc=$(free_port)
cat > "$work/influxdb.conf" <<CONF
reporting-disabled = true
bind-address = "127.0.0.1:$rpc"
[meta]
  dir = "$work/meta"
[data]
  dir = "$work/data"
  wal-dir = "$work/wal"
  query-log-enabled = false
[http]
  bind-address = "127.0.0.1:$port"
  log-enabled = false
CONF
influxd -config "$work/influxdb.conf" >/dev/null 2>&1 &
influx_pid=$!
pids+=("$influx_pid")
until curl -sf "http://127.0.0.1:$port/ping" >/dev/null; do sleep 0.1; done
secs=$(( $(date +%s) - 3600 ))
awk -v n="$n" -v s="$secs" 'BEGIN { for (i = 0; i < n; i++) printf "cpu,host=web%02d,cpu=cpu%d usage_user=%d.5,usage_system=1.25,n=%di %d%09d\n", i % 50, i % 8, i % 100, i, s, i }' > "$work/lines"
count() { curl -s "http://127.0.0.1:$port/query" --data-urlencode "q=SELECT count(n) FROM $1..cpu" | grep -o '[0-9]*\]\]' | tr -d ']' || echo 0; }

curl -s "http://127.0.0.1:$port/query" --data-urlencode "q=CREATE DATABASE bench_curl" >/dev/null
split -l 5000 "$work/lines" "$work/batch."
t0=$(date +%s.%N)
for f in "$work"/batch.*; do
  curl -sf -o /dev/null "http://127.0.0.1:$port/write?db=bench_curl&precision=ns" --data-binary @"$f"
done
t1=$(date +%s.%N)
curl_rate=$(awk -v n="$n" -v a="$t0" -v b="$t1" 'BEGIN { printf "%.0f", n / (b - a) }')
echo "curl: $n events in $(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.2f", b-a}') s = $curl_rate events/s (count $(count bench_curl))"

cat > "$work/vane.yaml" <<CONF
agent: { data_dir: $work/vane-data, queue_size: 4096 }
jobs:
  - { id: feed, plugin: execd, config: { command: [sh, -c, "cat $work/lines; exec sleep 3600"], max_line: 4KiB } }
sinks:
  - id: influx
    plugin: influxdb
    batch_size: 5000
    batch_wait: 100ms
    config: { url: "http://127.0.0.1:$port", database: bench_vane }
CONF
t0=$(date +%s.%N)
"$vane" --log-level warn run -c "$work/vane.yaml" &
vane_pid=$!
pids+=("$vane_pid")
until [ "$(count bench_vane)" = "$n" ]; do sleep 0.05; done
t1=$(date +%s.%N)
kill -TERM $vane_pid; wait $vane_pid || true
vane_rate=$(awk -v n="$n" -v a="$t0" -v b="$t1" 'BEGIN { printf "%.0f", n / (b - a) }')
echo "vane: $n events in $(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.2f", b-a}') s = $vane_rate events/s (start-up included)"
awk -v v="$vane_rate" -v c="$curl_rate" 'BEGIN { printf "vane / curl: %.0f%%\n", 100 * v / c }'
