#!/usr/bin/env bash
# The message bus end to end against the plain client loops: see bench/amqp.py.
#
#   bench/amqp.sh [N=50000] [ROUNDS=3]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
dpkg -s rabbitmq-server python3-pika >/dev/null 2>&1 || { echo "needs rabbitmq-server and python3-pika (scripts/install-test-deps.sh)"; exit 1; }
cargo build --release --quiet --manifest-path "$root/Cargo.toml"
cargo build --release --quiet --manifest-path "$root/Cargo.toml" -p vane-plugins --example amqp_loop
exec /usr/bin/python3 "$root/bench/amqp.py" "$@"
