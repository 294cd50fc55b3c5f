//! The graphite sink through a real carbon-c-relay (Debian's package,
//! installed by scripts/install-test-deps.sh): vane writes to the relay,
//! the relay forwards to a listener of this test, which counts every line.

use vane_test_support::{Vane, free_port, signal, stop};

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const VANE: Vane = Vane(env!("CARGO_BIN_EXE_vane"));

#[test]
fn every_value_reaches_graphite_through_a_real_relay() {
    let dir = tempfile::tempdir().unwrap();
    // The relay's destination: this test.
    let dest = TcpListener::bind("127.0.0.1:0").unwrap();
    let dest_port = dest.local_addr().unwrap().port();
    let relay_port = free_port();
    let conf = dir.path().join("relay.conf");
    std::fs::write(
        &conf,
        format!(
            "listen\n    type linemode\n        127.0.0.1:{relay_port} proto tcp\n    ;\n\
             cluster out\n    forward\n        127.0.0.1:{dest_port}\n    ;\n\
             match *\n    send to out\n    stop\n    ;\n"
        ),
    )
    .unwrap();
    let log = dir.path().join("relay.log");
    let mut relay = Command::new("carbon-c-relay")
        .args(["-f", conf.to_str().unwrap(), "-s", "-l", log.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("carbon-c-relay runs (scripts/install-test-deps.sh installs it)");
    // The relay must not be probed before it says it is ready.
    let deadline = Instant::now() + Duration::from_secs(20);
    while !std::fs::read_to_string(&log).unwrap_or_default().contains("startup sequence complete") {
        assert!(Instant::now() < deadline, "carbon-c-relay did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    // 5,000 events with two fields each, and one string field to skip.
    let n = 5_000;
    let program = format!(
        "for (i = 0; i < {n}; i++) printf \"load,dc=par1 one=%d.5,two=%di,note=\\\"x\\\" %d000000000\\n\", i, i, 1700000000 + i"
    );
    let sink = format!(
        "  - {{ id: g, plugin: graphite, batch_size: 1000, batch_wait: 50ms, config: {{ address: \"127.0.0.1:{relay_port}\", prefix: \"vane.\" }} }}\n"
    );
    let cfg = vane_test_support::generated(dir.path(), "agent: { host: web-01 }\n", &program, &sink);
    let agent = VANE.start(&cfg);
    let (sock, _) = dest.accept().unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut lines = BufReader::new(sock).lines();
    let mut sums = (0.0, 0.0);
    let mut count = 0;
    while count < 2 * n {
        let l = lines.next().expect("the relay forwards every line").unwrap();
        let mut w = l.split(' ');
        let (path, value, time) = (w.next().unwrap(), w.next().unwrap(), w.next().unwrap());
        let v: f64 = value.parse().unwrap();
        let t: i64 = time.parse().unwrap();
        match path {
            "vane.web-01.load.par1.one" => sums.0 += v,
            "vane.web-01.load.par1.two" => sums.1 += v,
            other => panic!("unexpected path {other}"),
        }
        assert!((1_700_000_000..1_700_000_000 + n as i64).contains(&t));
        count += 1;
    }
    stop(agent);
    signal(&relay, 15);
    let _ = relay.wait();
    let n = n as f64;
    assert_eq!(sums.0, n * (n - 1.0) / 2.0 + n * 0.5);
    assert_eq!(sums.1, n * (n - 1.0) / 2.0);
}

#[test]
fn a_peer_that_stops_reading_fails_the_send_on_time_and_it_is_retried() {
    let dir = tempfile::tempdir().unwrap();
    // Accepts and holds every connection, never reading from one.
    let dead = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = dead.local_addr().unwrap().port();
    let (tx, accepted) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for s in dead.incoming() {
            held.push(s);
            let _ = tx.send(());
        }
    });
    // ~16 MB of lines: more than the socket buffers hold.
    let program =
        "for (i = 0; i < 200000; i++) printf \"load,dc=par1 one=%d.5,two=%di %d000000000\\n\", i, i, 1700000000 + i";
    let sink = format!(
        "  - {{ id: g, plugin: graphite, batch_size: 5000, batch_wait: 50ms, config: {{ address: \"127.0.0.1:{port}\", timeout: 1s }} }}\n"
    );
    let cfg = vane_test_support::generated(dir.path(), "", program, &sink);
    let log = dir.path().join("log");
    let agent = VANE.start_logged(&cfg, &log);
    accepted.recv_timeout(Duration::from_secs(30)).expect("a first connection");
    // The stalled write times out, is reported, and is tried again anew.
    accepted.recv_timeout(Duration::from_secs(30)).expect("a second connection, for the retry");
    let text = vane_test_support::wait_for_file(&log, Duration::from_secs(10), |t| t.contains("timed out after 1s"));
    assert!(text.contains("send failed, retrying"), "{text}");
    drop(agent);
}
