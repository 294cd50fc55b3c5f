//! The `prometheus` source scraping real exporters on loopback: Debian's
//! prometheus-node-exporter (installed by scripts/install-test-deps.sh) and
//! a real Prometheus's own /metrics (for histograms).

use std::time::Duration;

use vane_core::event::{Kind, Value};
use vane_test_support::prometheus::{Prometheus, node_exporter};
use vane_test_support::{Vane, events_in, free_port, stop, to_out, wait_until};

const VANE: Vane = Vane(env!("CARGO_BIN_EXE_vane"));

#[test]
fn node_exporter_and_prometheus_samples_become_events() {
    let port = free_port();
    let _ne = node_exporter(port);
    let addr = format!("127.0.0.1:{port}");
    let prom = Prometheus::start();
    let dir = tempfile::tempdir().unwrap();
    let cfg = to_out(
        dir.path(),
        "",
        &format!(
            "\
             \x20 - {{ id: node, plugin: prometheus, interval: 1h, next: out, config: {{ url: \"http://{addr}/metrics\", include: [node_, go_gc_duration] }} }}\n\
             \x20 - {{ id: prom, plugin: prometheus, interval: 1h, next: out, config: {{ url: \"http://{p}/metrics\", include: [prometheus_http_request_duration_seconds] }} }}\n",
            p = prom.addr
        ),
        "",
    );
    let agent = VANE.start(&cfg);
    let out = dir.path().join("out.lp");
    wait_until(Duration::from_secs(30), "both scrapes", || {
        let evs = events_in(&out);
        evs.iter().any(|e| e.name == "node_load1") && evs.iter().any(|e| e.name.starts_with("prometheus_http"))
    });
    stop(agent);
    let evs = events_in(&out);
    assert!(evs.iter().all(|e| {
        e.name.starts_with("node_")
            || e.name.starts_with("go_gc_duration")
            || e.name.starts_with("prometheus_http_request_duration_seconds")
    }));
    // A gauge, and the load it reports is the kernel's (within a scrape's drift).
    let load = evs.iter().find(|e| e.name == "node_load1").unwrap();
    assert_eq!(load.kind, Kind::Gauge);
    let proc_load: f64 = std::fs::read_to_string("/proc/loadavg").unwrap().split(' ').next().unwrap().parse().unwrap();
    assert!((load.get_field("value").unwrap().as_f64().unwrap() - proc_load).abs() < 1.0);
    // A counter with labels: one series per CPU and mode.
    let cpus = std::thread::available_parallelism().unwrap().get();
    let idle: Vec<_> =
        evs.iter().filter(|e| e.name == "node_cpu_seconds_total" && e.get_tag("mode") == Some("idle")).collect();
    assert_eq!(idle.len(), cpus);
    assert!(idle.iter().all(|e| e.kind == Kind::Counter && e.get_tag("cpu").is_some()));
    // A summary: quantiles as gauges with a `quantile` tag, _sum and _count as counters.
    let q = evs.iter().find(|e| e.name == "go_gc_duration_seconds" && e.get_tag("quantile") == Some("0.5"));
    assert!(q.is_some(), "the summary's median");
    let count = evs.iter().find(|e| e.name == "go_gc_duration_seconds_count").unwrap();
    assert_eq!(count.kind, Kind::Counter);
    // A histogram: buckets with `le`, ending in +Inf, whose count equals _count.
    let inf = evs
        .iter()
        .find(|e| e.name == "prometheus_http_request_duration_seconds_bucket" && e.get_tag("le") == Some("+Inf"))
        .expect("a +Inf bucket");
    let handler = inf.get_tag("handler").unwrap();
    let hcount = evs
        .iter()
        .find(|e| e.name == "prometheus_http_request_duration_seconds_count" && e.get_tag("handler") == Some(handler))
        .unwrap();
    assert_eq!(inf.get_field("value"), hcount.get_field("value"));
    assert_eq!(inf.kind, Kind::Counter);
    assert!(matches!(inf.get_field("value"), Some(Value::Float(_))));
}
