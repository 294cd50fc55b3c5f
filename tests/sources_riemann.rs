//! The `riemann` source through the real binary, fed by Riemann's own C
//! client (`riemann-client` from Debian's riemann-c-client, installed by
//! scripts/install-test-deps.sh) over TCP and UDP.

use std::process::Command;
use std::time::Duration;

use vane_core::event::{State, Value};
use vane_test_support::{Vane, events_in, figure_in, free_port, stop, wait_for_log, wait_until, write};

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
    let cfg = write(
        d,
        "vane.yaml",
        &format!(
            "agent: {{ host: h1 }}\n\
             jobs:\n\
             \x20 - {{ id: rt, plugin: riemann, next: out, config: {{ listen: \"tcp://127.0.0.1:{tcp}\" }} }}\n\
             \x20 - {{ id: ru, plugin: riemann, next: out, config: {{ listen: \"udp://127.0.0.1:{udp}\" }} }}\n\
             \x20 - {{ id: me, plugin: internal, interval: 100ms, next: stats }}\n\
             sinks:\n\
             \x20 - {{ id: out, plugin: file, batch_wait: 10ms, config: {{ path: {d}/out.lp }} }}\n\
             \x20 - {{ id: stats, plugin: file, batch_wait: 10ms, config: {{ path: {d}/stats.lp }} }}\n",
            d = d.display()
        ),
    );
    let log = d.join("log");
    let agent = VANE.start_logged(&cfg, &log);
    wait_for_log(&log, &format!("riemann on tcp://127.0.0.1:{tcp}"));
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
