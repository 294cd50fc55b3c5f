#!/usr/bin/env bash
# Installs what vane's test suite needs on a Debian machine with Rust:
# the rustfmt and clippy components, and the Debian packages the tests start
# or call (the Nagios checks from monitoring-plugins; later suites add their
# servers here).
set -euo pipefail

packages=(
  monitoring-plugins-basic   # check_load, check_disk, check_procs, check_users, check_tcp, check_http, check_dummy
  influxdb                   # 1.6, for the influxdb sink and the Tourbillon example
  carbon-c-relay             # a real Graphite relay in front of the graphite sink test
  prometheus                 # 2.42, the remote-write receiver for its sink test
  prometheus-node-exporter   # 1.5, scraped by the prometheus source test
  postgresql                 # 15, queried by the sql source test
  netcat-openbsd             # nc: a real client for the TCP listeners
  socat                      # another one
  python3-influxdb           # InfluxDB's Python client, against the influxdb_listener
  curl                       # HTTP requests in the listener tests
  openssl                    # a self-signed certificate for the TLS tests
  util-linux                 # mount, fsfreeze: the small and frozen disks of tests/disks.rs
  e2fsprogs                  # mkfs.ext4: the image that test freezes
  rabbitmq-server            # 3.10, the broker of the amqp sink and source tests
  python3-pika               # RabbitMQ's Python client, publishing and consuming beside vane
  riemann-c-client           # riemann-client: Riemann's C client, against the riemann source
  python3-venv               # the virtual environments of the PyPI clients below
  systemd                    # systemd-analyze verify: the Debian package's unit
  chromium                   # a real browser on the board pages (headless)
  chromium-driver            # chromedriver, which Selenium drives it through
  fonts-liberation           # readable screenshots
)

if command -v rustup >/dev/null; then
  for c in rustfmt clippy; do
    if ! rustup component list --installed 2>/dev/null | grep -q "^$c"; then
      rustup component add "$c"
    fi
  done
fi

missing=()
for p in "${packages[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if ((${#missing[@]})); then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -q
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# Clients from PyPI, each set in its own virtual environment under
# target/venvs (Python's riemann-client pins an old protobuf that would
# break the OpenTelemetry packages). The tests run target/venvs/NAME/bin/python.
root="$(cd "$(dirname "$0")/.." && pwd)"
venv() {
  local name="$1"
  shift
  local dir="$root/target/venvs/$name"
  if [ ! -f "$dir/.installed" ] || [ "$(cat "$dir/.installed")" != "$*" ]; then
    rm -rf "$dir"
    /usr/bin/python3 -m venv "$dir"
    "$dir/bin/pip" install -q --disable-pip-version-check "$@"
    echo "$*" >"$dir/.installed"
  fi
}
# The OpenTelemetry SDK exporting to the otlp source; opentelemetry-proto
# decoding what the otlp sink sends; ducted with its Riemann output.
venv otel "opentelemetry-sdk==1.45.*" "opentelemetry-exporter-otlp-proto-http==1.45.*" \
  "opentelemetry-exporter-otlp-proto-grpc==1.45.*" "opentelemetry-proto==1.45.*" "ducted==2.2.*"
# Riemann's Python client, against the riemann source.
venv riemann "riemann-client==6.1.*"
# Selenium, driving Debian's Chromium through its chromedriver on the board pages.
venv browser "selenium==4.*"
