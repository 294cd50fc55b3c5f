//! The `prometheus_remote_write` source through the real binary: a real
//! Prometheus (Debian's, installed by scripts/install-test-deps.sh)
//! scraping a real node_exporter writes to vane, and what arrives agrees
//! with PromQL on that Prometheus; vane's own remote-write sink writes to
//! it; bodies that are not remote write are refused with their status.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use vane_core::event::{Kind, Value};
use vane_test_support::http::{http_post, urlencode};
use vane_test_support::prometheus::{Prometheus, node_exporter};
use vane_test_support::{Vane, events_in, free_port, stop, to_out, wait_for_log, wait_until};

const VANE: Vane = Vane(env!("CARGO_BIN_EXE_vane"));

/// The samples of a range-vector query: (labels, [(ms, value)]) per series.
fn matrix(prom: &Prometheus, promql: &str, at: f64) -> Vec<(serde_json::Value, Vec<(i64, f64)>)> {
    let r = prom.get(&format!("/api/v1/query?query={}&time={at}", urlencode(promql)));
    let body = r.split("\r\n\r\n").nth(1).unwrap_or_default();
    let v: serde_json::Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {r}"));
    v["data"]["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let points = s["values"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| ((p[0].as_f64().unwrap() * 1000.0).round() as i64, p[1].as_str().unwrap().parse().unwrap()))
                .collect();
            (s["metric"].clone(), points)
        })
        .collect()
}

#[test]
fn prometheus_writes_what_it_scrapes_and_promql_agrees() {
    let ne_port = free_port();
    let _ne = node_exporter(ne_port);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let port = free_port();
    let cfg = to_out(
        d,
        "",
        &format!(
            "\
             \x20 - {{ id: rw, plugin: prometheus_remote_write, next: out, config: {{ listen: \"127.0.0.1:{port}\" }} }}\n"
        ),
        "",
    );
    let log = d.join("log");
    let agent = VANE.start_ready(&cfg, &log, &format!("prometheus_remote_write on http://127.0.0.1:{port}"));
    let prom = Prometheus::with_config(&format!(
        "global:\n  scrape_interval: 1s\n\
         scrape_configs:\n  - job_name: node\n    static_configs:\n      - targets: [\"127.0.0.1:{ne_port}\"]\n\
         remote_write:\n  - url: http://127.0.0.1:{port}/api/v1/write\n    \
         metadata_config: {{ send_interval: 1s }}\n    queue_config: {{ batch_send_deadline: 1s }}\n"
    ));
    let out = d.join("out.lp");
    // The metadata tells counters from gauges: once it has come, node's
    // CPU seconds arrive as counters.
    wait_until(Duration::from_secs(60), "node_cpu_seconds_total as a counter", || {
        events_in(&out).iter().any(|e| e.name == "node_cpu_seconds_total" && e.kind == Kind::Counter)
    });
    // Everything Prometheus holds of node_load1 up to now, sample for
    // sample, reaches vane.
    let now = || SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs_f64();
    wait_until(Duration::from_secs(60), "five scrapes held by Prometheus", || {
        matrix(&prom, "node_load1[10m]", now()).first().is_some_and(|s| s.1.len() >= 5)
    });
    let now = now();
    let held = matrix(&prom, "node_load1[10m]", now);
    assert_eq!(held.len(), 1, "{held:?}");
    let want = held[0].1.clone();
    let last = want.last().unwrap().0;
    let load = |evs: &[vane_core::event::Event]| -> Vec<(i64, f64)> {
        evs.iter()
            .filter(|e| e.name == "node_load1" && e.time / 1_000_000 <= last)
            .map(|e| (e.time / 1_000_000, e.get_field("value").and_then(Value::as_f64).unwrap()))
            .collect()
    };
    wait_until(Duration::from_secs(60), "every node_load1 sample Prometheus holds", || {
        load(&events_in(&out)).len() >= want.len()
    });
    let evs = events_in(&out);
    assert_eq!(load(&evs), want, "the same samples, once each, in order");
    // Labels are tags, the same series as PromQL counts.
    let e = evs.iter().find(|e| e.name == "node_load1").unwrap();
    assert_eq!(e.get_tag("job"), Some("node"));
    assert_eq!(e.get_tag("instance"), Some(format!("127.0.0.1:{ne_port}").as_str()));
    assert_eq!(e.kind, Kind::Gauge);
    let cpu_series = matrix(&prom, "node_cpu_seconds_total[10m]", now).len();
    let mut seen: Vec<_> = evs
        .iter()
        .filter(|e| e.name == "node_cpu_seconds_total")
        .map(|e| (e.get_tag("cpu").unwrap().to_owned(), e.get_tag("mode").unwrap().to_owned()))
        .collect();
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), cpu_series);
    drop(prom);
    stop(agent);
}

#[test]
fn vanes_sink_writes_to_vanes_receiver_and_bad_bodies_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (lp, rw) = (free_port(), free_port());
    let cfg = to_out(
        d,
        "",
        &format!(
            "\
             \x20 - {{ id: in, plugin: influxdb_listener, next: send, config: {{ listen: \"127.0.0.1:{lp}\" }} }}\n\
             \x20 - {{ id: rw, plugin: prometheus_remote_write, next: out, config: {{ listen: \"127.0.0.1:{rw}\", path: /receive, token: s3cret }} }}\n"
        ),
        &format!(
            "\
             \x20 - {{ id: send, plugin: prometheus_remote_write, batch_wait: 10ms, config: {{ url: \"http://127.0.0.1:{rw}/receive\", bearer_token: s3cret }} }}\n"
        ),
    );
    let log = d.join("log");
    let agent = VANE.start_ready(&cfg, &log, &format!("prometheus_remote_write on http://127.0.0.1:{rw}"));
    let body = b"disk,host=web-02,path=/ free=5i,used=2.5,note=\"skipped\" 1700000000123000000\n";
    assert_eq!(http_post(lp, "/write", "", body), 204);
    let out = d.join("out.lp");
    wait_until(Duration::from_secs(10), "both samples", || events_in(&out).len() >= 2);
    let evs = events_in(&out);
    assert_eq!(evs.len(), 2, "{evs:?}");
    for (name, value) in [("disk_free", 5.0), ("disk_used", 2.5)] {
        let e = evs.iter().find(|e| e.name == name).unwrap_or_else(|| panic!("{name} in {evs:?}"));
        assert_eq!(e.host, "web-02");
        assert_eq!(e.tags, vec![("path".into(), "/".into())]);
        assert_eq!(e.get_field("value"), Some(&Value::Float(value)));
        // Remote write carries milliseconds.
        assert_eq!(e.time, 1_700_000_000_123_000_000);
    }
    let auth = "Authorization: Bearer s3cret\r\n";
    // Not snappy: 415. Snappy but not a WriteRequest: 400. No token: 401.
    assert_eq!(http_post(rw, "/receive", auth, b"garbage"), 415);
    assert_eq!(http_post(rw, "/receive", &format!("{auth}Content-Encoding: gzip\r\n"), b"x"), 415);
    let junk = snap::raw::Encoder::new().compress_vec(b"\xff\xff\xff\xff").unwrap();
    assert_eq!(http_post(rw, "/receive", &format!("{auth}Content-Encoding: snappy\r\n"), &junk), 400);
    assert_eq!(http_post(rw, "/receive", "Content-Encoding: snappy\r\n", &junk), 401);
    assert_eq!(http_post(rw, "/elsewhere", auth, b""), 404);
    wait_for_log(&log, "a remote-write body that does not decode");
    stop(agent);
    assert_eq!(events_in(&out).len(), 2, "nothing else arrived");
}
