//! The same bytes of line protocol decode to the same events, and lose the
//! same bad records, on every input path of the real binary: standard
//! input (`vane engine`), TCP, UDP, HTTP (`curl`), `exec` and `execd`.

use std::io::Write;
use std::time::Duration;

use vane_core::event::Event;
use vane_test_support::{Vane, events, events_in, figure_in, free_port, stop, wait_for_log, wait_until, write};

const VANE: Vane = Vane(env!("CARGO_BIN_EXE_vane"));

/// Records that read differently when a path splits lines, trims them or
/// gives up on bytes that are not UTF-8; six are good, four are not.
const INPUT: &[u8] = b"a,t=1 v=1i 1000\n\
b s=\"two\nlines\",n=2 2000\n\
c,host=h v=2 0\n\
\xffbad v=1 2500\n\
d v=3 3000\r\n\
\x0be v=1 4000\n\
f,b=2,c=3,b=1 v=1i 5000\n\
# a comment\n\
g,k=v v=+1 6000\n\
i\\ j,k=two\\\\ words v=1 7000\n\
k s=\"q\\\"uote\\\\\" 8000\n";

fn good() -> Vec<Event> {
    let mut e = vec![
        Event::new("a").tag("t", "1").field("v", 1i64).at(1000),
        Event::new("b").field("s", "two\nlines").field("n", 2.0).at(2000),
        Event::new("c").host("h").field("v", 2.0).at(0),
        Event::new("d").field("v", 3.0).at(3000),
        Event::new("i j").tag("k", "two\\ words").field("v", 1.0).at(7000),
        Event::new("k").field("s", "q\"uote\\").at(8000),
    ];
    for e in &mut e {
        if e.host.is_empty() {
            e.host = "h1".into();
        }
    }
    e
}

fn sorted(mut evs: Vec<Event>) -> Vec<Event> {
    evs.sort_by_key(|e| e.time);
    evs
}

#[test]
fn every_input_path_reads_the_same_records() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let input = d.join("input.lp");
    std::fs::write(&input, INPUT).unwrap();
    let (tcp, udp, http) = (free_port(), free_port(), free_port());
    let sink = |id: &str| {
        format!("  - {{ id: {id}, plugin: file, batch_wait: 10ms, config: {{ path: {}/{id}.lp }} }}\n", d.display())
    };
    let cfg = write(
        d,
        "vane.yaml",
        &format!(
            "agent: {{ host: h1 }}\n\
             jobs:\n\
             \x20 - {{ id: tcp, plugin: socket, next: tcp_out, config: {{ listen: \"tcp://127.0.0.1:{tcp}\" }} }}\n\
             \x20 - {{ id: udp, plugin: socket, next: udp_out, config: {{ listen: \"udp://127.0.0.1:{udp}\" }} }}\n\
             \x20 - {{ id: http, plugin: influxdb_listener, next: http_out, config: {{ listen: \"127.0.0.1:{http}\" }} }}\n\
             \x20 - {{ id: exec, plugin: exec, interval: 1h, next: exec_out, config: {{ command: [cat, {f}] }} }}\n\
             \x20 - {{ id: execd, plugin: execd, next: execd_out, config: {{ command: [sh, -c, \"cat {f}; exec sleep 600\"] }} }}\n\
             \x20 - {{ id: me, plugin: internal, interval: 100ms, next: stats }}\n\
             sinks:\n{}{}{}{}{}{}",
            sink("tcp_out"),
            sink("udp_out"),
            sink("http_out"),
            sink("exec_out"),
            sink("execd_out"),
            sink("stats"),
            f = input.display()
        ),
    );
    let log = d.join("log");
    let agent = VANE.start_ready(&cfg, &log, &format!("listening on tcp://127.0.0.1:{tcp}"));
    wait_for_log(&log, &format!("listening on udp://127.0.0.1:{udp}"));
    wait_for_log(&log, "influxdb_listener on http://");
    // TCP in small pieces, so that records and strings are cut anywhere.
    let mut s = std::net::TcpStream::connect(("127.0.0.1", tcp)).unwrap();
    for piece in INPUT.chunks(7) {
        s.write_all(piece).unwrap();
        s.flush().unwrap();
        std::thread::sleep(Duration::from_millis(2));
    }
    drop(s);
    std::net::UdpSocket::bind("127.0.0.1:0").unwrap().send_to(INPUT, ("127.0.0.1", udp)).unwrap();
    let url = format!("http://127.0.0.1:{http}/write");
    let curl = std::process::Command::new("curl")
        .args(["-s", "-o", "/dev/null", "-w", "%{http_code}", "--data-binary", &format!("@{}", input.display()), &url])
        .output()
        .expect("curl runs (scripts/install-test-deps.sh installs it)");
    assert_eq!(String::from_utf8_lossy(&curl.stdout), "400", "a partial write");
    let want = sorted(good());
    let stats = d.join("stats.lp");
    for job in ["tcp", "udp", "http", "exec", "execd"] {
        let out = d.join(format!("{job}_out.lp"));
        wait_until(Duration::from_secs(20), &format!("{job}: 6 events"), || events_in(&out).len() >= 6);
        wait_until(Duration::from_secs(20), &format!("{job}: 4 bad records"), || {
            figure_in(&stats, job, "bad_lines") >= 4.0
        });
    }
    // Standard input, through an engine that passes events on.
    let alone = write(
        d,
        "engine.yaml",
        "agent: { host: h1 }\nengines:\n  - { id: pass, plugin: transform }\nsinks:\n  - { id: out, plugin: stdout }\n",
    );
    let out = VANE.engine(&alone, "pass", INPUT);
    assert!(out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad_lines=4"), "{err}");
    let stdin_events = sorted(events(&out.stdout));
    stop(agent);
    assert_eq!(stdin_events, want, "standard input");
    for job in ["tcp", "udp", "http", "exec", "execd"] {
        let got = sorted(events_in(&d.join(format!("{job}_out.lp"))));
        assert_eq!(got, want, "{job}");
        assert_eq!(figure_in(&stats, job, "bad_lines"), 4.0, "{job}");
    }
    // Each bad record is named by its line: the invalid byte, the vertical
    // tab, the repeated tag key and the plus sign.
    for (n, what) in [
        (5, "column 1: invalid UTF-8"),
        (7, "column 1: expected a measurement"),
        (8, "column 11: duplicate tag key `b`"),
        (10, "column 9: invalid value \"+1\""),
    ] {
        assert!(err.contains(&format!("input line {n}: {what}")), "line {n}: {err}");
    }
    let log = std::fs::read_to_string(&log).unwrap();
    for job in ["tcp", "udp", "exec", "execd"] {
        let named =
            log.lines().filter(|l| l.ends_with(&format!("job={job}")) && l.contains("line 10: column 9")).count();
        assert_eq!(named, 1, "{job}: {log}");
    }
}
