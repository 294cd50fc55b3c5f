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
