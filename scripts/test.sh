#!/usr/bin/env bash
# The whole test suite, as CI runs it: installs what the tests need, then
# checks formatting and lints and runs every unit, property and integration test.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-test-deps.sh
cargo fmt --all --check
cargo clippy --workspace --all-targets --locked -- -D warnings
# The host-metrics build (no protocols, Lua, SQL or bus) keeps compiling.
cargo check --locked --bin vane --no-default-features --features host
# The fuzz targets (a workspace of their own) keep compiling as the crates
# change; libFuzzer itself is built only by `cargo fuzz`.
cargo check --locked --manifest-path fuzz/Cargo.toml --target-dir target --no-default-features --bins
log=$(mktemp)
trap 'rm -f "$log"' EXIT
cargo test --workspace --locked 2>&1 | tee "$log"
# One closing line for the whole suite (cargo prints one per test binary).
awk '/^test result:/ { p += $4; f += $6 } END { printf "total: %d passed, %d failed\n", p, f }' "$log"
