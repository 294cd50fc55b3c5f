# Sourced by the bench scripts, after `set -euo pipefail`: what each needs
# first. Sets `root` (the repository), `work` (a scratch folder, removed on
# exit after every process in `pids` is ended) and `tck` (clock ticks a
# second); defines `free_port`, `wait_port PORT`, `cpu PID` (its CPU
# ticks, user and system) and `release` (builds the release binary and
# sets `vane` to it).
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
tck=$(getconf CLK_TCK)
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { until (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; do sleep 0.05; done; }
cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; }
release() {
  cargo build --release --quiet --manifest-path "$root/Cargo.toml"
  vane="$root/target/release/vane"
}

# The ingest benchmark's lines, N of them into FILE: line protocol, 8
# series a host, 100 hosts, three fields, explicit timestamps.
ingest_lines() { # N FILE
  awk -v n="$1" 'BEGIN { for (i = 0; i < n; i++)
    printf "cpu,host=web%d,cpu=cpu%d usage_user=%d.5,usage_system=3.25,n=%di 17000000%010d\n",
      i % 100, i % 8, i % 100, i, i }' > "$2"
}

# The ingest benchmark's agent, into FILE: a line listener on PORT into a
# blackhole (`bh`), the agent's own figures into $work/stats.lp, read by
# `delivered`.
ingest_config() { # FILE PORT
  cat > "$1" <<YAML
agent: { host: bench, data_dir: $work/data }
jobs:
  - { id: lp, plugin: socket, next: bh, config: { listen: "tcp://127.0.0.1:$2" } }
  - { id: me, plugin: internal, interval: 100ms, next: stats }
sinks:
  - { id: bh, plugin: blackhole, batch_wait: 10ms }
  - { id: stats, plugin: file, batch_wait: 10ms, config: { path: $work/stats.lp } }
YAML
}

# The blackhole's events out, as the internal source last wrote them.
delivered() {
  grep '^vane_job,.*,job=bh,' "$work/stats.lp" 2>/dev/null | tail -1 |
    sed -n 's/.*[ ,]events_out=\([0-9]*\)u.*/\1/p'
}
