#!/usr/bin/env bash
# OTLP ingest through the release binary: the OpenTelemetry Python SDK's
# own exporters (target/venvs/otel, made by scripts/install-test-deps.sh)
# send REQUESTS exports of 10,000 data points each, over OTLP/HTTP and then
# OTLP/gRPC, to one `otlp` source feeding a blackhole. Reports the SDK's
# send rate (the floor: vane answers each export before the next is sent),
# vane's CPU seconds per million points (from /proc/PID/stat) and what one
# core of that would take, and the loopback's rate for the same bytes as
# the ceiling. Then the same for Riemann over TCP, vane's riemann source
# answering ducted's messages.
#
#   bench/otlp.sh [REQUESTS=100]
set -euo pipefail
requests=${1:-100}
points=10000
root=$(cd "$(dirname "$0")/.." && pwd)
py="$root/target/venvs/otel/bin/python"
[ -x "$py" ] || { echo "run scripts/install-test-deps.sh first (target/venvs/otel)" >&2; exit 1; }
. "$root/bench/common.sh"
release
port=$(free_port)

cat > "$work/vane.yaml" <<YAML
agent: { host: bench, data_dir: $work }
jobs:
  - { id: otlp, plugin: otlp, next: bh, config: { listen: "127.0.0.1:$port", max_body: 64MiB } }
sinks:
  - { id: bh, plugin: blackhole }
YAML
"$vane" --log-level warn run -c "$work/vane.yaml" &
pid=$!
pids+=("$pid")
until (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null; do sleep 0.05; done

echo "| protocol | points | SDK send rate (floor) | vane CPU s per M points | one core of vane at that cost | request size |"
echo "|---|---|---|---|---|---|"
for protocol in http grpc; do
  endpoint="127.0.0.1:$port"
  [ "$protocol" = http ] && endpoint="http://127.0.0.1:$port/v1/metrics"
  c0=$(cpu "$pid")
  read -r sent secs size < <("$py" "$root/bench/otlp_send.py" "$protocol" "$endpoint" "$requests" "$points")
  c1=$(cpu "$pid")
  awk -v p="$protocol" -v n="$sent" -v s="$secs" -v c="$((c1 - c0))" -v t="$tck" -v b="$size" 'BEGIN {
    per = c / t / (n / 1e6)
    printf "| OTLP/%s | %d | %.0f points/s | %.2f | %.0f points/s | %.0f KiB |\n", p, n, n / s, per, 1e6 / per, b / 1024 }'
done
hwm=$(awk '/VmHWM/ {print $2}' "/proc/$pid/status")
kill -TERM "$pid"; wait "$pid" || true
echo
echo "vane's peak RSS: $((hwm / 1024)) MiB"

# The ceiling: bytes through loopback TCP into /dev/null, as points of the
# size the SDK's requests have.
head -c $((size * 20)) /dev/urandom > "$work/blob"
lport=$(free_port)
socat -u "TCP-LISTEN:$lport,bind=127.0.0.1,reuseaddr" /dev/null &
sink=$!
until ss -ltn | grep -q ":$lport "; do sleep 0.02; done
r0=$(date +%s.%N)
for _ in 1 2 3 4 5; do cat "$work/blob"; done | socat -u - "TCP:127.0.0.1:$lport"
wait "$sink" || true
r1=$(date +%s.%N)
awk -v b="$((size * 100))" -v n="$((points * 100))" -v t0="$r0" -v t1="$r1" 'BEGIN {
  printf "\nloopback: %.0f MiB/s, the bytes of %.0f points/s\n", b / (t1 - t0) / 1048576, n / (t1 - t0) }'

# Riemann over TCP: messages of 1,000 events made with ducted's protobuf
# classes, each answered before the next, into vane's riemann source and a
# blackhole.
rport=$(free_port)
cat > "$work/riemann.yaml" <<YAML
agent: { host: bench, data_dir: $work/r }
jobs:
  - { id: rin, plugin: riemann, next: bh, config: { listen: "tcp://127.0.0.1:$rport", max_message: 64MiB } }
sinks:
  - { id: bh, plugin: blackhole }
YAML
mkdir -p "$work/r"
"$vane" --log-level warn run -c "$work/riemann.yaml" &
pid=$!
pids+=("$pid")
until (exec 3<>/dev/tcp/127.0.0.1/$rport) 2>/dev/null; do sleep 0.05; done
n=$((requests * points))
"$py" - "$rport" "$n" > "$work/riemann.out" <<'PY'
import socket, struct, sys, time

port, n = int(sys.argv[1]), int(sys.argv[2])
from duct.ihateprotobuf import proto_pb2  # ducted's Riemann messages
batch = 1000
msg = proto_pb2.Msg()
for i in range(batch):
    e = msg.events.add()
    e.host = f"web-{i % 100}"; e.service = f"disk {i % 10}"; e.state = "ok"; e.metric_d = i * 0.5; e.ttl = 60
    e.time = int(time.time())
body = msg.SerializeToString()
frame = struct.pack("!I", len(body)) + body
s = socket.create_connection(("127.0.0.1", port))
t0 = time.monotonic()
for _ in range(n // batch):
    s.sendall(frame)
    head = s.recv(4, socket.MSG_WAITALL)
    s.recv(struct.unpack("!I", head)[0], socket.MSG_WAITALL)
print(n, f"{time.monotonic() - t0:.3f}")
PY
read -r sent secs < "$work/riemann.out"
c1=$(cpu "$pid")
kill -TERM "$pid"; wait "$pid" || true
awk -v n="$sent" -v s="$secs" -v c="$c1" -v t="$tck" 'BEGIN {
  per = c / t / (n / 1e6)
  printf "\nRiemann TCP, 1,000 events a message, each answered before the next: %.0f events/s; vane %.2f CPU s per M events (start-up included), %.0f events/s a core\n", n / s, per, 1e6 / per }'
