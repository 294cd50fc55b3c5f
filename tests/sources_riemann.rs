//! The `riemann` source through the real binary, fed by Riemann's own C
//! client (`riemann-client` from Debian's riemann-c-client, installed by
//! scripts/install-test-deps.sh) over TCP and UDP.

use std::process::Command;
use std::time::Duration;

use vane_core::event::{State, Value};
use vane_test_support::{
    Vane, events_in, figure_in, free_port, stop, stopped_with, to_out, wait_for_log, wait_until, write,
};

const VANE: Vane = Vane(env!("CARGO_BIN_EXE_vane"));

fn riemann_client(args: &[&str]) -> std::process::Output {
    Command::new("riemann-client")
        .args(args)
        .output()
        .expect("riemann-client runs (scripts/install-test-deps.sh installs riemann-c-client)")
}

#[test]
fn riemanns_own_client_sends_to_vane_over_tcp_and_udp() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (tcp, udp) = (free_port(), free_port());
    let cfg = to_out(
        d,
        "agent: { host: h1 }\n",
        &format!(
            "\
             \x20 - {{ id: rt, plugin: riemann, next: out, config: {{ listen: \"tcp://127.0.0.1:{tcp}\" }} }}\n\
             \x20 - {{ id: ru, plugin: riemann, next: out, config: {{ listen: \"udp://127.0.0.1:{udp}\" }} }}\n\
             \x20 - {{ id: me, plugin: internal, interval: 100ms, next: stats }}\n"
        ),
        &format!(
            "\
             \x20 - {{ id: stats, plugin: file, batch_wait: 10ms, config: {{ path: {d}/stats.lp }} }}\n",
            d = d.display()
        ),
    );
    let log = d.join("log");
    let agent = VANE.start_ready(&cfg, &log, &format!("riemann on tcp://127.0.0.1:{tcp}"));
    wait_for_log(&log, &format!("riemann on udp://127.0.0.1:{udp}"));
    let (tcp_port, udp_port) = (tcp.to_string(), udp.to_string());
    // Over TCP the client waits for the answer: success means vane said ok,
    // which it does once the file sink stored the event.
    let out = riemann_client(&[
        "send",
        "-S",
        "disk /",
        "-h",
        "web-01",
        "-s",
        "warning",
        "-D",
        "nearly full",
        "-a",
        "mount=/",
        "-t",
        "prod",
        "-t",
        "disk",
        "-d",
        "91.5",
        "-L",
        "60",
        "127.0.0.1",
        &tcp_port,
    ]);
    assert!(out.status.success(), "{out:?}");
    let out = riemann_client(&["send", "-S", "queue", "-i", "-7", "-s", "flapping", "127.0.0.1", &tcp_port]);
    assert!(out.status.success(), "{out:?}");
    let out = riemann_client(&["send", "-U", "-S", "over udp", "-f", "2.5", "127.0.0.1", &udp_port]);
    assert!(out.status.success(), "{out:?}");
    // A query is answered with an error: vane takes events only.
    let out = riemann_client(&["query", "service = \"disk /\"", "127.0.0.1", &tcp_port]);
    assert!(!out.status.success(), "{out:?}");
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(said.contains("queries are not supported"), "{said}");
    let path = d.join("out.lp");
    wait_until(Duration::from_secs(10), "3 events", || events_in(&path).len() >= 3);
    // Bytes that are not a Riemann message: counted, answered, closed.
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", tcp)).unwrap();
    s.write_all(&[0, 0, 0, 3, 0xff, 0xff, 0xff]).unwrap();
    let mut answer = Vec::new();
    s.read_to_end(&mut answer).unwrap();
    assert!(String::from_utf8_lossy(&answer).contains("not a Riemann message"), "{answer:?}");
    let stats = d.join("stats.lp");
    wait_until(Duration::from_secs(10), "a bad message counted", || figure_in(&stats, "rt", "bad_lines") >= 1.0);
    stop(agent);
    let mut evs = events_in(&path);
    evs.sort_by(|a, b| a.name.cmp(&b.name));
    assert_eq!(evs.len(), 3, "{evs:?}");
    let disk = &evs[0];
    assert_eq!((disk.name.as_str(), disk.host.as_str()), ("disk /", "web-01"));
    assert_eq!(disk.state, Some(State::Warning));
    assert_eq!(disk.description.as_deref(), Some("nearly full"));
    assert_eq!(disk.ttl, Some(60.0));
    assert_eq!(disk.get_tag("mount"), Some("/"));
    assert_eq!(disk.get_tag("tags"), Some("prod,disk"));
    assert_eq!(disk.get_field("value"), Some(&Value::Float(91.5)));
    let udp_ev = &evs[1];
    assert_eq!((udp_ev.name.as_str(), udp_ev.host.as_str()), ("over udp", "h1"));
    assert_eq!(udp_ev.get_field("value"), Some(&Value::Float(2.5)));
    let queue = &evs[2];
    assert_eq!(queue.get_field("value"), Some(&Value::Int(-7)));
    assert_eq!((queue.state, queue.get_tag("state")), (None, Some("flapping")));
    // Events the client did not time are the agent's: recent.
    let now = vane_core::event::now_ns();
    assert!(evs.iter().all(|e| (now - e.time).abs() < 60_000_000_000), "{evs:?}");
}

fn listener_config(d: &std::path::Path, tcp: u16, udp: u16, extra: &str) -> std::path::PathBuf {
    write(
        d,
        "vane.yaml",
        &format!(
            "agent: {{ host: h1 }}\n\
             jobs:\n\
             \x20 - {{ id: rt, plugin: riemann, next: out, config: {{ listen: \"tcp://127.0.0.1:{tcp}\" }} }}\n\
             \x20 - {{ id: ru, plugin: riemann, next: out, config: {{ listen: \"udp://127.0.0.1:{udp}\" }} }}\n\
             {extra}\
             sinks:\n\
             \x20 - {{ id: out, plugin: file, batch_wait: 10ms, config: {{ path: {d}/out.lp }} }}\n",
            d = d.display()
        ),
    )
}

#[test]
fn pythons_riemann_client_sends_to_vane() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (tcp, udp) = (free_port(), free_port());
    let log = d.join("log");
    let agent = VANE.start_logged(&listener_config(d, tcp, udp, ""), &log);
    wait_for_log(&log, &format!("riemann on udp://127.0.0.1:{udp}"));
    let send = |transport: &str, port: u16, args: &[&str]| {
        let out = vane_test_support::python::program("riemann", "riemann-client")
            .args(["-H", "127.0.0.1", "-P", &port.to_string(), "-T", transport, "send"])
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
    };
    // Python's client sends the metric as metric_f, and its own time.
    send(
        "tcp",
        tcp,
        &[
            "-s",
            "api latency",
            "-h",
            "app-02",
            "-S",
            "critical",
            "-d",
            "slow",
            "-t",
            "eu",
            "-l",
            "30",
            "-a",
            "team=web",
            "-m",
            "0.25",
            "-T",
            "1700000000",
        ],
    );
    send("udp", udp, &["-s", "heartbeat", "-h", "app-03", "-m", "1"]);
    let path = d.join("out.lp");
    let evs = stopped_with(agent, &path, 2, Duration::from_secs(10));
    let e = evs.iter().find(|e| e.name == "api latency").unwrap();
    assert_eq!(
        (e.host.as_str(), e.state, e.description.as_deref(), e.ttl, e.time),
        ("app-02", Some(State::Critical), Some("slow"), Some(30.0), 1_700_000_000_000_000_000)
    );
    assert_eq!((e.get_tag("team"), e.get_tag("tags")), (Some("web"), Some("eu")));
    assert_eq!(e.get_field("value"), Some(&Value::Float(0.25)));
    let h = evs.iter().find(|e| e.name == "heartbeat").unwrap();
    assert_eq!((h.host.as_str(), h.get_field("value")), ("app-03", Some(&Value::Float(1.0))));
}

#[test]
fn ducted_with_its_riemann_output_delivers_to_vane() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (tcp, udp) = (free_port(), free_port());
    let log = d.join("log");
    let agent = VANE.start_logged(&listener_config(d, tcp, udp, ""), &log);
    wait_for_log(&log, &format!("riemann on tcp://127.0.0.1:{tcp}"));
    let conf = write(
        d,
        "duct.yml",
        &format!(
            "interval: 0.5\nttl: 60.0\nstagger: 0.0\n\
             outputs:\n  - output: duct.outputs.riemann.RiemannTCP\n    server: 127.0.0.1\n    port: {tcp}\n    interval: 0.2\n\
             sources:\n  - service: load\n    source: duct.sources.linux.basic.LoadAverage\n    interval: 0.5\n    hostname: duct-host\n"
        ),
    );
    let _ductd = vane_test_support::proc::Killed(
        vane_test_support::python::program("otel", "ductd")
            .arg("-c")
            .arg(&conf)
            .current_dir(d)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let path = d.join("out.lp");
    wait_until(Duration::from_secs(60), "ducted's load events", || {
        events_in(&path).iter().filter(|e| e.name == "load").count() >= 2
    });
    stop(agent);
    let evs: Vec<_> = events_in(&path).into_iter().filter(|e| e.name == "load").collect();
    let e = &evs[0];
    assert_eq!((e.host.as_str(), e.state, e.ttl), ("duct-host", Some(State::Ok), Some(60.0)));
    let proc_load: f64 = std::fs::read_to_string("/proc/loadavg").unwrap().split(' ').next().unwrap().parse().unwrap();
    let sent = e.get_field("value").and_then(Value::as_f64).unwrap();
    assert!((sent - proc_load).abs() < 1.0, "ducted sent the kernel's load: {sent} vs {proc_load}");
}

#[test]
fn vanes_riemann_sink_delivers_to_vanes_riemann_source_intact() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (tcp, udp, lp) = (free_port(), free_port(), free_port());
    let extra = format!(
        "\x20 - {{ id: in, plugin: influxdb_listener, next: send, config: {{ listen: \"127.0.0.1:{lp}\" }} }}\n"
    );
    let cfg = listener_config(d, tcp, udp, &extra);
    let text = std::fs::read_to_string(&cfg).unwrap().replace(
        "sinks:\n",
        &format!("sinks:\n  - {{ id: send, plugin: riemann, batch_wait: 10ms, config: {{ address: \"127.0.0.1:{tcp}\", tags: [fleet] }} }}\n"),
    );
    std::fs::write(&cfg, text).unwrap();
    let log = d.join("log");
    let agent = VANE.start_ready(&cfg, &log, &format!("influxdb_listener on http://127.0.0.1:{lp}"));
    let body =
        b"disk,host=db-1,state=warning,mount=/var value=91.5,description=\"nearly full\",ttl=30 1700000000123456000\n\
                 jobs,host=db-1 value=-4i 1700000000000000000\n";
    assert_eq!(vane_test_support::http::http_post(lp, "/write", "", body), 204);
    let path = d.join("out.lp");
    let evs = stopped_with(agent, &path, 2, Duration::from_secs(10));
    let disk = evs.iter().find(|e| e.name == "disk").unwrap();
    // Microseconds carry over (time_micros).
    assert_eq!(
        (disk.host.as_str(), disk.state, disk.description.as_deref(), disk.ttl, disk.time),
        ("db-1", Some(State::Warning), Some("nearly full"), Some(30.0), 1_700_000_000_123_456_000)
    );
    assert_eq!((disk.get_tag("mount"), disk.get_tag("tags")), (Some("/var"), Some("fleet")));
    assert_eq!(disk.get_field("value"), Some(&Value::Float(91.5)));
    let jobs = evs.iter().find(|e| e.name == "jobs").unwrap();
    assert_eq!(jobs.get_field("value"), Some(&Value::Int(-4)));
}

#[test]
fn an_ok_waits_until_stored_and_a_dropped_message_is_answered_with_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (tcp, dead) = (free_port(), free_port()); // nothing listens on `dead`
    let cfg = write(
        d,
        "vane.yaml",
        &format!(
            "jobs:\n\
             \x20 - {{ id: rt, plugin: riemann, next: small, config: {{ listen: \"tcp://127.0.0.1:{tcp}\" }} }}\n\
             sinks:\n\
             \x20 - {{ id: small, plugin: graphite, buffer: {{ max_size: 1KiB, when_full: drop_newest }}, config: {{ address: \"127.0.0.1:{dead}\" }} }}\n"
        ),
    );
    let log = d.join("log");
    let agent = VANE.start_ready(&cfg, &log, &format!("riemann on tcp://127.0.0.1:{tcp}"));
    let port = tcp.to_string();
    let long = "x".repeat(300);
    // The buffer holds a few; then the sink drops what comes, and the
    // client hears that its event was not stored.
    let mut sent = 0;
    loop {
        let out = riemann_client(&["send", "-S", "filler", "-D", &long, "-d", "1", "127.0.0.1", &port]);
        sent += 1;
        if !out.status.success() {
            let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
            assert!(said.contains("not stored"), "{said}");
            break;
        }
        assert!(sent < 30, "every one of {sent} events answered ok");
    }
    assert!(sent > 1, "the first fits the buffer");
    stop(agent);
}
