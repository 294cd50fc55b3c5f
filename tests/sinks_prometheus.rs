//! The prometheus_remote_write sink into a real Prometheus (Debian's
//! package, installed by scripts/install-test-deps.sh), queried back with
//! PromQL: exact sample counts and sums per series.

use vane_test_support::http::http_get;
use vane_test_support::{Vane, free_port, stop, write};

use std::time::{Duration, Instant};

use vane_test_support::prometheus::Prometheus;

const VANE: Vane = Vane(env!("CARGO_BIN_EXE_vane"));

/// A config of an execd job printing `lines` (then idle) into a
/// `prometheus` sink, `sink` added to its settings; `agent` is what the
/// agent block holds.
fn printing_to_scrape(dir: &std::path::Path, agent: &str, lines: &[&str], sink: &str) -> std::path::PathBuf {
    let echo: String = lines.iter().map(|l| format!("echo '{l}'; ")).collect();
    let body = format!(
        "agent: {{ {agent} }}\njobs:\n  - {{ id: gen, plugin: execd, config: {{ command: [sh, -c, \"{echo}exec sleep 3600\"] }} }}\n\
         sinks:\n  - {{ id: scrape, plugin: prometheus, batch_wait: 10ms{sink} }}\n"
    );
    write(dir, "v.yaml", &body)
}

#[test]
fn samples_arrive_in_prometheus_with_their_labels() {
    let prom = Prometheus::start();
    let dir = tempfile::tempdir().unwrap();
    // 300 samples of two series, 100 ms apart, ending a minute ago.
    let start_ms = vane_core::event::now_ns() / 1_000_000 - 90_000;
    let program = format!(
        "for (i = 0; i < 300; i++) printf \"http.requests,dc=par-1,code=%d count=%di,ok=true %d%03d000000\\n\", 200 + (i % 2) * 300, i, int(({start_ms} + i * 100) / 1000), ({start_ms} + i * 100) % 1000"
    );
    let sink = format!(
        "  - {{ id: prom, plugin: prometheus_remote_write, batch_size: 100, batch_wait: 50ms, config: {{ url: \"http://{}/api/v1/write\" }} }}\n",
        prom.addr
    );
    let cfg = vane_test_support::generated(dir.path(), "agent: { host: web-01 }\n", &program, &sink);
    let agent = VANE.start(&cfg);
    let q200 = "count_over_time(http_requests_count{code=\"200\",dc=\"par-1\",host=\"web-01\"}[10m])";
    let deadline = Instant::now() + Duration::from_secs(60);
    while prom.value(q200) != Some(150.0) {
        assert!(Instant::now() < deadline, "150 samples of code 200: {:?}", prom.value(q200));
        std::thread::sleep(Duration::from_millis(200));
    }
    stop(agent);
    // Even i went to code 200, odd i to code 500: sums 0+2+…+298 and 1+3+…+299.
    assert_eq!(prom.value("sum_over_time(http_requests_count{code=\"200\"}[10m])"), Some(22_350.0));
    assert_eq!(prom.value("sum_over_time(http_requests_count{code=\"500\"}[10m])"), Some(22_500.0));
    assert_eq!(prom.value("sum(count_over_time(http_requests_ok[10m]))"), Some(300.0));
}

#[test]
fn a_real_prometheus_scrapes_the_latest_values() {
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    // Two readings of room a: only the latest (21.5) is served.
    let lines = [
        "temp,room=a value=20.0",
        "temp,room=a value=21.5",
        "temp,room=b value=18i",
        "reqs,kind=counter,path=/x value=42u",
    ];
    let cfg = printing_to_scrape(
        dir.path(),
        "host: web-01",
        &lines,
        &format!(", config: {{ listen: \"127.0.0.1:{port}\" }}"),
    );
    let agent = VANE.start(&cfg);
    let get = || http_get(&format!("127.0.0.1:{port}"), "/metrics").split("\r\n\r\n").nth(1).unwrap_or("").to_owned();
    let deadline = Instant::now() + Duration::from_secs(30);
    let text = loop {
        let t = get();
        if t.contains("reqs{") {
            break t;
        }
        assert!(Instant::now() < deadline, "/metrics never served the series: {t}");
        std::thread::sleep(Duration::from_millis(50));
    };
    let (samples, bad) = vane_core::formats::prometheus::parse(&text, 0);
    assert!(bad.is_empty(), "{bad:?}\n{text}");
    let find = |name: &str, k: &str, v: &str| {
        samples
            .iter()
            .find(|e| e.name == name && e.get_tag(k) == Some(v))
            .map(|e| (e.get_field("value").unwrap().as_f64().unwrap(), e.kind))
    };
    use vane_core::event::Kind;
    assert_eq!(find("temp", "room", "a"), Some((21.5, Kind::Gauge)));
    assert_eq!(find("temp", "room", "b"), Some((18.0, Kind::Gauge)));
    assert_eq!(find("reqs", "path", "/x"), Some((42.0, Kind::Counter)));
    assert_eq!(samples.len(), 3, "{text}");
    // A real Prometheus scrapes it.
    let prom = Prometheus::scraping(&format!("127.0.0.1:{port}"));
    let deadline = Instant::now() + Duration::from_secs(60);
    while prom.value("temp{room=\"a\",host=\"web-01\"}") != Some(21.5) {
        assert!(Instant::now() < deadline, "Prometheus never scraped temp");
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(prom.value("reqs{path=\"/x\"}"), Some(42.0));
    stop(agent);
}

#[test]
fn the_agents_http_port_serves_health_and_the_sinks_metrics() {
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let head = format!("host: web-01, http: \"127.0.0.1:{port}\"");
    let cfg = printing_to_scrape(dir.path(), &head, &["temp,room=a value=21.5"], "");
    let agent = VANE.start(&cfg);
    let get = |path: &str| http_get(&format!("127.0.0.1:{port}"), path);
    let deadline = Instant::now() + Duration::from_secs(30);
    while !get("/metrics").contains("temp{host=\"web-01\",room=\"a\"} 21.5") {
        assert!(Instant::now() < deadline, "/metrics on the agent's port: {}", get("/metrics"));
        std::thread::sleep(Duration::from_millis(50));
    }
    let health = get("/health");
    assert!(health.starts_with("HTTP/1.0 200") && health.ends_with("{\"status\":\"ok\"}\n"), "{health}");
    assert!(get("/nope").starts_with("HTTP/1.0 404"));
    assert_eq!(stop(agent), Some(0));
}
