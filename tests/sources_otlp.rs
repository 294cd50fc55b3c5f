//! The `otlp` source through the real binary, fed by the OpenTelemetry
//! Python SDK's own exporters (PyPI, in target/venvs/otel, made by
//! scripts/install-test-deps.sh) over OTLP/HTTP and OTLP/gRPC, and by
//! OTLP/JSON bodies; what cannot be read is refused with its status.

use std::path::Path;
use std::time::Duration;

use vane_core::event::{Event, Kind, Value};
use vane_test_support::python::{python, script};
use vane_test_support::{Vane, events_in, free_port, stop, to_out, wait_for_log, wait_until};

const VANE: Vane = Vane(env!("CARGO_BIN_EXE_vane"));

fn export(protocol: &str, endpoint: &str, extra: &[&str]) {
    let out = python("otel").arg(script("otlp_export.py")).args([protocol, endpoint]).args(extra).output().unwrap();
    assert!(
        out.status.success(),
        "the SDK's {protocol} export failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn agent(d: &Path, http: u16, grpc: u16) -> (vane_test_support::Agent, std::path::PathBuf) {
    let cfg = to_out(
        d,
        "agent: { host: agent-host }\n",
        &format!(
            "\
             \x20 - {{ id: oh, plugin: otlp, next: out, tags: {{ via: http }}, config: {{ listen: \"127.0.0.1:{http}\" }} }}\n\
             \x20 - {{ id: og, plugin: otlp, next: out, tags: {{ via: grpc }}, config: {{ listen: \"127.0.0.1:{grpc}\" }} }}\n"
        ),
        "",
    );
    let log = d.join("log");
    let a = VANE.start_ready(&cfg, &log, &format!("otlp on http://127.0.0.1:{http}"));
    wait_for_log(&log, &format!("otlp on http://127.0.0.1:{grpc}"));
    (a, log)
}

fn one<'a>(evs: &'a [Event], via: &str, name: &str, le: Option<&str>) -> &'a Event {
    let found: Vec<&Event> = evs
        .iter()
        .filter(|e| e.name == name && e.get_tag("via") == Some(via) && (le.is_none() || e.get_tag("le") == le))
        .collect();
    assert_eq!(found.len(), 1, "one {name} {le:?} via {via} in {evs:#?}");
    found[0]
}

#[test]
fn the_python_sdk_exports_over_http_and_grpc() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (http, grpc) = (free_port(), free_port());
    let (agent, _log) = agent(d, http, grpc);
    // The exporters wait for the answer, which vane gives once the file
    // sink stored the points: their success means the events are there.
    export("http", &format!("http://127.0.0.1:{http}/v1/metrics"), &[]);
    export("grpc", &format!("127.0.0.1:{grpc}"), &["delta"]);
    // Stored means in the file sink's buffer; the file has them soon after.
    // Each export's points come in order, the last histogram's max last.
    let out = d.join("out.lp");
    wait_until(Duration::from_secs(10), "both exports in the file", || {
        let evs = events_in(&out);
        ["http", "grpc"].iter().all(|via| evs.iter().any(|e| e.name == "sizes_max" && e.get_tag("via") == Some(via)))
    });
    let evs = events_in(&out);
    for via in ["http", "grpc"] {
        let orders = one(&evs, via, "orders", None);
        assert_eq!(orders.get_field("value"), Some(&Value::Int(7)));
        // A cumulative counter is a counter; the delta one a delta.
        assert_eq!(orders.kind, if via == "http" { Kind::Counter } else { Kind::Delta });
        // host.name is the host; the resource's and the point's attributes are tags.
        assert_eq!(orders.host, "web-07");
        assert_eq!(orders.get_tag("service.name"), Some("shop"));
        assert_eq!(orders.get_tag("region"), Some("eu"));
        assert_eq!(orders.get_tag("telemetry.sdk.language"), Some("python"));
        assert!(orders.get_tag("host.name").is_none());
        let queue = one(&evs, via, "queue", None);
        assert_eq!((queue.get_field("value"), queue.kind), (Some(&Value::Int(3)), Kind::Gauge));
        let t = one(&evs, via, "temperature", None);
        assert_eq!((t.get_field("value"), t.kind), (Some(&Value::Float(21.5)), Kind::Gauge));
        // The histogram, as a scrape of it reads: 0.5, 3 and 7 recorded.
        let count = one(&evs, via, "latency_count", None);
        assert_eq!(count.get_field("value"), Some(&Value::Uint(3)));
        assert_eq!(one(&evs, via, "latency_sum", None).get_field("value"), Some(&Value::Float(10.5)));
        assert_eq!(one(&evs, via, "latency_min", None).get_field("value"), Some(&Value::Float(0.5)));
        assert_eq!(one(&evs, via, "latency_max", None).get_field("value"), Some(&Value::Float(7.0)));
        for (le, n) in [("0", 0), ("5", 2), ("10", 3), ("+Inf", 3)] {
            let b = one(&evs, via, "latency_bucket", Some(le));
            assert_eq!(b.get_field("value"), Some(&Value::Uint(n)), "le {le}");
            assert_eq!(b.kind, Kind::Counter, "the SDK's histograms are cumulative");
        }
        assert!(orders.time > 1_700_000_000_000_000_000, "the point's own time");
        // The exponential histogram of 1, 2 and 4: cumulative buckets by upper
        // bound, the count reached by a bound of at least 4 and not below 2.
        assert_eq!(one(&evs, via, "sizes_count", None).get_field("value"), Some(&Value::Uint(3)));
        assert_eq!(one(&evs, via, "sizes_sum", None).get_field("value"), Some(&Value::Float(7.0)));
        let mut buckets: Vec<(f64, u64)> = evs
            .iter()
            .filter(|e| e.name == "sizes_bucket" && e.get_tag("via") == Some(via))
            .map(|e| {
                let le = e.get_tag("le").unwrap();
                let n = match e.get_field("value") {
                    Some(Value::Uint(n)) => *n,
                    v => panic!("{v:?}"),
                };
                (if le == "+Inf" { f64::INFINITY } else { le.parse().unwrap() }, n)
            })
            .collect();
        buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
        assert!(buckets.windows(2).all(|w| w[0].1 <= w[1].1), "cumulative: {buckets:?}");
        assert_eq!(buckets.last(), Some(&(f64::INFINITY, 3)));
        let full = buckets.iter().find(|b| b.1 == 3).unwrap().0;
        assert!((4.0..8.0).contains(&full), "4 is counted by a bound in [4, 8): {buckets:?}");
        assert!(buckets.iter().filter(|b| b.0 < 2.0).all(|b| b.1 <= 1), "{buckets:?}");
    }
    stop(agent);
}

/// POSTs `body` and returns the status and the answer's body.
fn post(port: u16, path: &str, headers: &[&str], body: &[u8]) -> (u16, String) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    let mut head =
        format!("POST {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: {}\r\n", body.len());
    for h in headers {
        head.push_str(h);
        head.push_str("\r\n");
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(body).unwrap();
    let mut r = Vec::new();
    s.read_to_end(&mut r).unwrap();
    let r = String::from_utf8_lossy(&r).into_owned();
    let status = r.get(9..12).and_then(|c| c.parse().ok()).unwrap_or(0);
    (status, r.split("\r\n\r\n").nth(1).unwrap_or_default().to_owned())
}

#[test]
fn json_bodies_partial_success_and_refusals() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (http, grpc) = (free_port(), free_port());
    let (agent, log) = agent(d, http, grpc);
    let json = ["Content-Type: application/json"];
    let body = br#"{"resourceMetrics":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"billing"}}]},
      "scopeMetrics":[{"metrics":[
        {"name":"jobs","sum":{"aggregationTemporality":2,"isMonotonic":true,"dataPoints":[{"asInt":"42","timeUnixNano":"1700000000000000000"}]}},
        {"name":"nodata"},
        {"name":"load","gauge":{"dataPoints":[{"asDouble":0.75,"timeUnixNano":"1700000000000000000"},{"timeUnixNano":"1"}]}}]}]}]}"#;
    let (status, answer) = post(http, "/v1/metrics", &json, body);
    assert_eq!(status, 200, "{answer}");
    let a: serde_json::Value = serde_json::from_str(&answer).unwrap();
    assert_eq!(a["partialSuccess"]["rejectedDataPoints"], "2", "{answer}");
    assert_eq!(a["partialSuccess"]["errorMessage"], "metric nodata: no data (gauge, sum, histogram or summary)");
    let out = d.join("out.lp");
    wait_until(Duration::from_secs(10), "the two points in the file", || events_in(&out).len() >= 2);
    let evs = events_in(&out);
    assert_eq!(evs.len(), 2, "{evs:?}");
    // No host.name: service.name is the host.
    assert_eq!((evs[0].name.as_str(), evs[0].host.as_str(), evs[0].kind), ("jobs", "billing", Kind::Counter));
    assert_eq!(evs[0].time, 1_700_000_000_000_000_000);
    assert_eq!(evs[1].get_field("value"), Some(&Value::Float(0.75)));
    // Refused whole, in the request's encoding.
    let (status, answer) = post(http, "/v1/metrics", &json, br#"{"resourceMetrics":{}}"#);
    assert_eq!(status, 400);
    assert!(answer.contains("resourceMetrics: expected an array"), "{answer}");
    let (status, _) = post(http, "/v1/metrics", &["Content-Type: application/x-protobuf"], b"\xff\xff\xff");
    assert_eq!(status, 400);
    assert_eq!(post(http, "/v1/metrics", &["Content-Type: text/plain"], b"x").0, 415);
    assert_eq!(post(http, "/v1/traces", &json, b"{}").0, 404);
    wait_for_log(&log, "an OTLP body that does not decode");
    stop(agent);
    assert_eq!(events_in(&d.join("out.lp")).len(), 2, "nothing else arrived");
}
