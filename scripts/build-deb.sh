#!/usr/bin/env bash
# Builds vane's Debian package from this checkout, without cargo-deb: the
# release binary as /usr/bin/vane, the built-in config as the conffile
# /etc/vane/vane.yaml, an empty /etc/vane/conf.d, the systemd unit, the
# README; the maintainer scripts make the `vane` user and start the service
# where systemd runs.
#
#   scripts/build-deb.sh [--binary PATH] [--out DIR] [--compression xz|gzip|none]
#
# --binary packages a binary built already (the tests package the one they
# built); --out is where the .deb goes (default: target/deb); --compression
# is dpkg-deb's (default: xz). Prints the package's path.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
binary=""
out="$root/target/deb"
compression=xz
while (($#)); do
  case "$1" in
    --binary) binary="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    --compression) compression="$2"; shift 2 ;;
    *) echo "usage: $0 [--binary PATH] [--out DIR] [--compression xz|gzip|none]" >&2; exit 2 ;;
  esac
done
if [ -z "$binary" ]; then
  (cd "$root" && cargo build --release --locked --bin vane >&2)
  binary="$root/target/release/vane"
fi
version="$(sed -n 's/^version = "\(.*\)"/\1/p' "$root/Cargo.toml" | head -1)"
arch="$(dpkg --print-architecture)"
stage="$(mktemp -d)"
trap 'rm -rf "$stage"' EXIT
pkg="$stage/vane"
install -D -m 0755 "$binary" "$pkg/usr/bin/vane"
mkdir -p "$pkg/etc/vane/conf.d"
# The conffile is the built-in config, as `vane` prints it.
"$binary" config >"$pkg/etc/vane/vane.yaml"
install -D -m 0644 "$root/packaging/vane.service" "$pkg/lib/systemd/system/vane.service"
install -D -m 0644 "$root/README.md" "$pkg/usr/share/doc/vane/README.md"
cat >"$pkg/usr/share/doc/vane/copyright" <<COPYRIGHT
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: vane
Files: *
License: Apache-2.0
 On Debian systems the full text of the Apache License 2.0 is in
 /usr/share/common-licenses/Apache-2.0.
COPYRIGHT
mkdir -p "$pkg/DEBIAN"
install -m 0755 "$root/packaging/deb/postinst" "$root/packaging/deb/prerm" "$root/packaging/deb/postrm" "$pkg/DEBIAN/"
echo /etc/vane/vane.yaml >"$pkg/DEBIAN/conffiles"
size="$(du -sk --exclude=DEBIAN "$pkg" | cut -f1)"
cat >"$pkg/DEBIAN/control" <<CONTROL
Package: vane
Version: $version
Architecture: $arch
Maintainer: vane developers <vane@localhost>
Installed-Size: $size
Depends: libc6, adduser
Section: admin
Priority: optional
Description: monitoring agent and event processor
 One small binary runs on every host: sources that poll or listen, engines
 that process chains of events, sinks that deliver them (InfluxDB,
 Prometheus, Riemann, Graphite, RabbitMQ, OTLP, HTTP, files), with disk
 buffers and end-to-end acknowledgements. Plugins in Rust, Lua or any
 language as an external program.
CONTROL
mkdir -p "$out"
deb="$out/vane_${version}_${arch}.deb"
dpkg-deb --root-owner-group -Z"$compression" --build "$pkg" "$deb" >&2
echo "$deb"
