//! Credentials in URLs never leave vane: the agent runs at trace level with
//! secrets in an `http` check's URL (userinfo and `?api_key=`), in the
//! influxdb sink's URL (userinfo, against a real InfluxDB with
//! authentication) and in the http sink's query; the test then greps the
//! whole log, the agent's HTTP pages and every sink's output for them.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::process::Stdio;
use std::time::Duration;

use vane_test_support::http::http_get;
use vane_test_support::influx::Influx;
use vane_test_support::{Vane, free_port, stop, wait_until, write};

const VANE: Vane = Vane(env!("CARGO_BIN_EXE_vane"));

const SECRETS: [&str; 5] = ["PW-check-1", "KEY-check-2", "PW-influx-3", "KEY-hook-4", "PW-gone-5"];

/// A page that answers 200 to everything.
fn web() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for mut s in l.incoming().flatten() {
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf);
            let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\nok\n");
        }
    });
    port
}

#[test]
fn no_secret_of_a_url_reaches_a_log_a_page_or_a_sink() {
    let dir = tempfile::tempdir().unwrap();
    let influx = Influx::start_with_auth("vane", SECRETS[2]);
    let (page, http, closed) = (web(), free_port(), free_port());
    let out = dir.path().join("out.lp");
    let cfg = write(
        dir.path(),
        "v.yaml",
        &format!(
            "agent: {{ http: \"127.0.0.1:{http}\", data_dir: {d} }}\nsources:\n\
             \x20 - {{ id: page, plugin: http, interval: 200ms, config: {{ url: \"http://me:{s0}@127.0.0.1:{page}/x?api_key={s1}&q=1\" }} }}\n\
             \x20 - {{ id: gone, plugin: http, interval: 200ms, config: {{ url: \"http://me:{s4}@127.0.0.1:{closed}/\" }} }}\n\
             sinks:\n\
             \x20 - {{ id: influx, plugin: influxdb, batch_wait: 50ms, config: {{ url: \"http://vane:{s2}@{addr}\", database: m, username: vane, password: \"{s2}\" }} }}\n\
             \x20 - {{ id: dead, plugin: influxdb, batch_wait: 50ms, config: {{ url: \"http://vane:{s2}@127.0.0.1:{closed}\", database: m }} }}\n\
             \x20 - {{ id: hook, plugin: http, batch_wait: 50ms, config: {{ url: \"http://127.0.0.1:{closed}/in?api_key={s3}\" }} }}\n\
             \x20 - {{ id: prom, plugin: prometheus, batch_wait: 10ms }}\n\
             \x20 - {{ id: out, plugin: file, batch_wait: 10ms, config: {{ path: {o} }} }}\n",
            d = dir.path().display(),
            o = out.display(),
            addr = influx.addr,
            s0 = SECRETS[0],
            s1 = SECRETS[1],
            s2 = SECRETS[2],
            s3 = SECRETS[3],
            s4 = SECRETS[4],
        ),
    );
    let log = dir.path().join("log");
    let agent = VANE
        .command(&["--log-level", "trace", "run", "-c", cfg.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let agent = vane_test_support::proc::Killed(agent);
    // Checks ran, points reached InfluxDB, the dead sinks failed and retried.
    wait_until(Duration::from_secs(60), "checks, points and failed sends", || {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        influx.query("SELECT count(up) FROM m..http").contains("\"count\"")
            && text.matches("send failed").count() >= 2
            && std::fs::read_to_string(&out).unwrap_or_default().contains("http,")
    });
    let metrics = || http_get(&format!("127.0.0.1:{http}"), "/metrics");
    wait_until(Duration::from_secs(10), "the checks on /metrics", || metrics().contains("url=\"http://me:"));
    let metrics = metrics();
    assert!(metrics.contains("url=\"http://me:REDACTED@127.0.0.1"), "{metrics}");
    let stored = influx.query("SELECT * FROM m..http");
    assert_eq!(stop(agent), Some(0));
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("REDACTED"), "the log shows where a secret was");
    let lines = std::fs::read_to_string(&out).unwrap();
    for (what, body) in [("the log", &text), ("/metrics", &metrics), ("the file sink", &lines), ("InfluxDB", &stored)] {
        for s in SECRETS {
            assert!(!body.contains(s), "{s} in {what}");
        }
    }
}
