#!/usr/bin/env bash
# Instructions a line of line protocol costs to decode, counted by
# valgrind's callgrind in the `decode_parts` example (the ingest benchmark's
# lines, decoded in parts as a fast connection's are, their events dropped
# after): the same count on every run, whatever else the machine does, so
# a change of a few percent shows where timings on a shared machine cannot.
#
#   bench/instructions.sh [REV…]   (default: HEAD and the working tree)
#
# Each REV (a commit, or `.` for the working tree) is built in a scratch
# worktree with the example as it is now (it uses only the public API),
# into a target directory of its own (target/instructions-N); then each
# is counted on LINES lines (default 200,000).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
revs=("$@")
[ ${#revs[@]} -gt 0 ] || revs=(HEAD .)
lines=${LINES:-200000}
command -v valgrind >/dev/null || { echo "valgrind is needed (apt-get install valgrind)" >&2; exit 1; }
work=$(mktemp -d)
trap 'cd "$root"; for w in "$work"/tree-*; do [ -d "$w" ] && git worktree remove --force "$w"; done; rm -rf "$work"' EXIT
example=crates/vane-core/examples/decode_parts.rs
i=0
for rev in "${revs[@]}"; do
  i=$((i + 1))
  if [ "$rev" = . ]; then
    src=$root
  else
    src=$work/tree-$i
    git -C "$root" worktree add --detach -q "$src" "$rev"
    mkdir -p "$src/$(dirname "$example")"
    cp "$root/$example" "$src/$example"
    # The example runs on the binary's allocator, a dev-dependency older
    # commits lack.
    grep -q '^mimalloc' "$src/crates/vane-core/Cargo.toml" ||
      sed -i '/^\[dev-dependencies\]/a mimalloc = { version = "0.1.52", default-features = false }' \
        "$src/crates/vane-core/Cargo.toml"
  fi
  (cd "$src" && CARGO_TARGET_DIR="$root/target/instructions-$i" cargo build -q --release -p vane-core --example decode_parts)
  cp "$root/target/instructions-$i/release/examples/decode_parts" "$work/bin-$i"
done
i=0
for rev in "${revs[@]}"; do
  i=$((i + 1))
  ir=$(valgrind --tool=callgrind --toggle-collect='*decode_all*' --callgrind-out-file="$work/out-$i" \
    "$work/bin-$i" "$lines" 2>&1 | awk '/Collected :/ { print $4 }')
  label=$rev; [ "$rev" = . ] && label="working tree"
  awk -v r="$label" -v ir="$ir" -v n="$lines" 'BEGIN { printf "%-14s %13d instructions, %6.0f a line\n", r, ir, ir / n }'
done
