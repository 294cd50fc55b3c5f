//! The listeners through the real binary, fed by real clients: `nc` and
//! `socat` for TCP (Debian's netcat-openbsd and socat, installed by
//! scripts/install-test-deps.sh), datagrams for UDP and statsd.

use std::io::{Read, Write};
use std::net::{TcpStream, UdpSocket};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use vane_core::event::Value;
use vane_test_support::{Vane, events_in, figure_in, free_port, stop, to_out, wait_for_log, wait_until};

const VANE: Vane = Vane(env!("CARGO_BIN_EXE_vane"));

fn config(dir: &Path, source: &str) -> std::path::PathBuf {
    to_out(
        dir,
        "",
        &format!(
            "\
             \x20 - {source}\n\
             \x20 - {{ id: me, plugin: internal, interval: 100ms, next: stats }}\n"
        ),
        &format!(
            "\
             \x20 - {{ id: stats, plugin: file, batch_wait: 10ms, config: {{ path: {d}/stats.lp }} }}\n",
            d = dir.display()
        ),
    )
}

/// Pipes `input` into a client program; waits for it to end.
fn client(cmd: &[&str], input: &[u8]) {
    let mut c = Command::new(cmd[0])
        .args(&cmd[1..])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("{} runs (scripts/install-test-deps.sh installs it): {e}", cmd[0]));
    c.stdin.take().unwrap().write_all(input).unwrap();
    assert!(c.wait().unwrap().success(), "{cmd:?} failed");
}

#[test]
fn line_protocol_over_tcp_from_nc_arrives_whole_and_bad_lines_are_counted() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let cfg = config(
        dir.path(),
        &format!(
            "{{ id: lp, plugin: socket, next: out, config: {{ listen: \"tcp://127.0.0.1:{port}\", max_line: 1KiB }} }}"
        ),
    );
    let log = dir.path().join("log");
    let agent = VANE.start_ready(&cfg, &log, &format!("listening on tcp://127.0.0.1:{port}"));
    let mut input = String::new();
    for i in 0..10_000u64 {
        input.push_str(&format!("m,host=h{} v={i}i,f=0.5 {}\n", i % 7, 1_700_000_000_000_000_000u64 + i));
        match i {
            100 => input.push_str("m,host=x v=\n"),                    // no value
            200 => input.push_str(&format!("{}\n", "y".repeat(5000))), // longer than max_line
            201 => input.push_str("broken line\n"),
            _ => {}
        }
    }
    input.push_str("m v=10000i"); // the last line has no newline
    client(&["nc", "-N", "127.0.0.1", &port.to_string()], input.as_bytes());
    let out = dir.path().join("out.lp");
    wait_until(Duration::from_secs(30), "10,001 events in the file", || events_in(&out).len() >= 10_001);
    let stats = dir.path().join("stats.lp");
    wait_until(Duration::from_secs(10), "3 bad lines counted", || figure_in(&stats, "lp", "bad_lines") >= 3.0);
    stop(agent);
    let evs = events_in(&out);
    assert_eq!(evs.len(), 10_001);
    let sum: i64 = evs
        .iter()
        .map(|e| match e.get_field("v") {
            Some(Value::Int(v)) => *v,
            other => panic!("{other:?}"),
        })
        .sum();
    assert_eq!(sum, (0..=10_000).sum::<i64>());
    assert_eq!(figure_in(&stats, "lp", "bad_lines"), 3.0);
    let log = std::fs::read_to_string(&log).unwrap();
    // Line numbers count every line the connection sent.
    assert!(log.contains("line 102: column"), "{log}");
    assert!(log.contains("line 203: column 1: record longer than 1024 bytes; skipped"), "{log}");
    assert!(log.contains("line 205: column"), "{log}");
}

#[test]
fn graphite_over_tcp_from_socat_and_over_udp_uses_templates() {
    let dir = tempfile::tempdir().unwrap();
    let (tcp, udp) = (free_port(), free_port());
    let tpl = "templates: [\"servers.* _.host.name.field region=eu\", \"name*\"]";
    let cfg = to_out(
        dir.path(),
        "",
        &format!(
            "\
             \x20 - {{ id: gt, plugin: socket, next: out, config: {{ listen: \"tcp://127.0.0.1:{tcp}\", format: graphite, {tpl} }} }}\n\
             \x20 - {{ id: gu, plugin: socket, next: out, config: {{ listen: \"udp://127.0.0.1:{udp}\", format: graphite, {tpl} }} }}\n"
        ),
        "",
    );
    let log = dir.path().join("log");
    let agent = VANE.start_ready(&cfg, &log, &format!("listening on tcp://127.0.0.1:{tcp}"));
    wait_for_log(&log, &format!("listening on udp://127.0.0.1:{udp}"));
    let mut input = String::new();
    for i in 0..1000 {
        input.push_str(&format!("servers.web{}.cpu.user {i} 1700000000\n", i % 3));
    }
    client(&["socat", "-u", "STDIN", &format!("TCP:127.0.0.1:{tcp}")], input.as_bytes());
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    // A datagram may carry several lines.
    sock.send_to(b"app.requests.count 5 1700000000\nservers.db1.disk.free 7 1700000000\n", ("127.0.0.1", udp)).unwrap();
    let out = dir.path().join("out.lp");
    wait_until(Duration::from_secs(30), "1,002 events", || events_in(&out).len() >= 1002);
    stop(agent);
    let evs = events_in(&out);
    assert_eq!(evs.len(), 1002);
    let cpu: Vec<_> = evs.iter().filter(|e| e.name == "cpu").collect();
    assert_eq!(cpu.len(), 1000);
    let sum: f64 = cpu.iter().map(|e| e.get_field("user").unwrap().as_f64().unwrap()).sum();
    assert_eq!(sum, (0..1000).sum::<i32>() as f64);
    assert!(cpu.iter().all(|e| e.get_tag("region") == Some("eu") && e.host.starts_with("web")));
    assert_eq!(cpu[0].time, 1_700_000_000_000_000_000);
    let app = evs.iter().find(|e| e.name == "app.requests.count").unwrap();
    assert_eq!(app.get_field("value"), Some(&Value::Float(5.0)));
    let disk = evs.iter().find(|e| e.name == "disk").unwrap();
    assert_eq!((disk.host.as_str(), disk.get_field("free")), ("db1", Some(&Value::Float(7.0))));
}

#[test]
fn statsd_aggregates_counters_gauges_timers_and_sets() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    // One flush, at shutdown: the figures below are those of one interval.
    let cfg = config(
        dir.path(),
        &format!("{{ id: sd, plugin: statsd, next: out, config: {{ listen: \"127.0.0.1:{port}\", flush: 1h }} }}"),
    );
    let log = dir.path().join("log");
    let agent = VANE.start_ready(&cfg, &log, &format!("statsd listening on udp://127.0.0.1:{port}"));
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    let send = |p: &str| {
        sock.send_to(p.as_bytes(), ("127.0.0.1", port)).unwrap();
    };
    for _ in 0..10 {
        send("hits:1|c|#env:prod");
    }
    send("hits:1|c|@0.1|#env:prod"); // sampled: counts as 10
    send("temp:20|g\ntemp:+5|g\ntemp:-3|g"); // a multi-metric packet
    let timers: Vec<String> = (1..=100).map(|i| format!("lat:{i}|ms")).collect();
    for chunk in timers.chunks(10) {
        send(&chunk.join("\n"));
    }
    send("users:alice|s\nusers:bob|s\nusers:alice|s\nnonsense\nbad:1|q");
    let stats = dir.path().join("stats.lp");
    wait_until(Duration::from_secs(10), "2 bad lines counted", || figure_in(&stats, "sd", "bad_lines") >= 2.0);
    stop(agent);
    let evs = events_in(&dir.path().join("out.lp"));
    let get = |name: &str, field: &str| {
        evs.iter()
            .find(|e| e.name == name)
            .and_then(|e| e.get_field(field))
            .and_then(Value::as_f64)
            .unwrap_or_else(|| panic!("{name} {field} in {evs:?}"))
    };
    assert_eq!(get("hits", "value"), 20.0);
    assert_eq!(evs.iter().find(|e| e.name == "hits").unwrap().get_tag("env"), Some("prod"));
    assert_eq!(get("temp", "value"), 22.0);
    assert_eq!(
        ["count", "min", "max", "mean", "p50", "p90", "p99"].map(|f| get("lat", f)),
        [100.0, 1.0, 100.0, 50.5, 50.0, 90.0, 99.0]
    );
    assert_eq!(get("users", "value"), 2.0);
    let log = std::fs::read_to_string(&log).unwrap();
    assert!(log.contains("line 4: expected `name:value|type`"), "{log}");
    assert!(log.contains("line 5: unknown metric type \"q\""), "{log}");
}

#[test]
fn statsd_bounds_its_series_and_forgets_idle_gauges() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let cfg = config(
        dir.path(),
        &format!(
            "{{ id: sd, plugin: statsd, next: out, config: {{ listen: \"127.0.0.1:{port}\", flush: 100ms, gauge_expiry: 300ms, max_series: 1000 }} }}"
        ),
    );
    let log = dir.path().join("log");
    let agent = VANE.start_ready(&cfg, &log, &format!("statsd listening on udp://127.0.0.1:{port}"));
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    let send_names = |prefix: &str, n: usize| {
        let names: Vec<String> = (0..n).map(|i| format!("{prefix}{i}:1|g")).collect();
        for chunk in names.chunks(50) {
            sock.send_to(chunk.join("\n").as_bytes(), ("127.0.0.1", port)).unwrap();
        }
    };
    // 5,000 gauge names at once: 1,000 are held, the rest dropped, counted.
    send_names("a", 5_000);
    let stats = dir.path().join("stats.lp");
    wait_until(Duration::from_secs(10), "names past max_series dropped", || {
        figure_in(&stats, "sd", "events_dropped") >= 1.0
    });
    // Idle, they are forgotten: all of 500 new names are held again (sent
    // until they are; before the old ones expire, they are dropped).
    let out = dir.path().join("out.lp");
    let names_b = || {
        let mut b: Vec<String> =
            events_in(&out).into_iter().filter(|e| e.name.starts_with('b')).map(|e| e.name.to_string()).collect();
        b.sort();
        b.dedup();
        b.len()
    };
    wait_until(Duration::from_secs(10), "all new names held after the old expired", || {
        send_names("b", 500);
        names_b() >= 500
    });
    let held_a = events_in(&out).iter().filter(|e| e.name.starts_with('a')).count();
    assert!(held_a <= 1000, "{held_a} of the first names were held");
    stop(agent);
}

#[test]
fn line_protocol_over_udp_one_datagram_many_lines() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let cfg = config(
        dir.path(),
        &format!(
            "{{ id: lu, plugin: socket, next: out, config: {{ listen: \"udp://127.0.0.1:{port}\", precision: s }} }}"
        ),
    );
    let log = dir.path().join("log");
    let agent = VANE.start_ready(&cfg, &log, &format!("listening on udp://127.0.0.1:{port}"));
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    for d in 0..10 {
        let lines: String = (0..50).map(|i| format!("u,d={d} v={i}i 1700000000\n")).collect();
        sock.send_to(format!("{lines}bad line\n").as_bytes(), ("127.0.0.1", port)).unwrap();
    }
    let out = dir.path().join("out.lp");
    wait_until(Duration::from_secs(20), "500 events", || events_in(&out).len() >= 500);
    let stats = dir.path().join("stats.lp");
    wait_until(Duration::from_secs(10), "10 bad lines", || figure_in(&stats, "lu", "bad_lines") >= 10.0);
    stop(agent);
    let evs = events_in(&out);
    assert_eq!(evs.len(), 500);
    assert!(evs.iter().all(|e| e.time == 1_700_000_000_000_000_000));
    // The bad line is the 51st of its datagram.
    assert!(std::fs::read_to_string(&log).unwrap().contains("line 51: column"));
}

#[test]
fn connections_past_the_limit_are_refused_and_idle_ones_closed() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let cfg = config(
        dir.path(),
        &format!(
            "{{ id: lp, plugin: socket, next: out, config: {{ listen: \"127.0.0.1:{port}\", max_connections: 2, read_timeout: 2s }} }}"
        ),
    );
    let log = dir.path().join("log");
    let agent = VANE.start_ready(&cfg, &log, &format!("listening on tcp://127.0.0.1:{port}"));
    let a = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let mut b = TcpStream::connect(("127.0.0.1", port)).unwrap();
    b.write_all(b"m v=1\n").unwrap();
    // Both slots are taken by connections active within the last second:
    // none can be evicted, so the third connection is closed at once.
    let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    assert_eq!(c.read(&mut [0u8; 1]).unwrap_or(0), 0, "refused");
    wait_for_log(&log, "2 connections open, none idle: refused");
    let out = dir.path().join("out.lp");
    wait_until(Duration::from_secs(10), "the first event", || events_in(&out).len() == 1);
    // Idle past read_timeout: the agent closes them, and the slots are free again.
    let mut a = a;
    a.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    assert_eq!(a.read(&mut [0u8; 1]).unwrap_or(0), 0, "closed when idle");
    let mut d = TcpStream::connect(("127.0.0.1", port)).unwrap();
    d.write_all(b"m v=2\n").unwrap();
    wait_until(Duration::from_secs(10), "the second event", || events_in(&out).len() == 2);
    stop(agent);
}
