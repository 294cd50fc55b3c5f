//! External programs through the real binary: the Nagios checks of Debian's
//! monitoring-plugins (installed by scripts/install-test-deps.sh; a missing
//! check fails these tests) and a long-running `execd` child.

use std::io::{Read, Write};
use std::net::TcpListener;

use std::time::{Duration, Instant};

use vane_core::event::{Event, State};
use vane_test_support::{Vane, figures_to, to_out, write};

const VANE: Vane = Vane(env!("CARGO_BIN_EXE_vane"));
const PLUGINS: &str = "/usr/lib/nagios/plugins";

fn check_job(id: &str, argv: &[&str]) -> String {
    let args: Vec<String> = argv.iter().map(|a| format!("\"{a}\"")).collect();
    format!(
        "  - {{ id: {id}, plugin: exec, config: {{ format: nagios, command: [\"{PLUGINS}/{}\", {}] }} }}\n",
        argv[0],
        args[1..].join(", ")
    )
}

fn f(e: &Event, k: &str) -> f64 {
    e.get_field(k).unwrap_or_else(|| panic!("no field {k} in {e:?}")).as_f64().unwrap()
}

/// A loopback HTTP server answering `n` requests with 200 and a body.
fn http_server(n: usize) -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for s in l.incoming().take(n) {
            let mut s = s.unwrap();
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf);
            let body = "vane test page\n";
            let _ = write!(
                s,
                "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    port
}

#[test]
fn real_nagios_checks_become_events_with_states_and_perfdata() {
    let dir = tempfile::tempdir().unwrap();
    let tcp = TcpListener::bind("127.0.0.1:0").unwrap();
    let tcp_port = tcp.local_addr().unwrap().port();
    let closed_port = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let http_port = http_server(1);
    let mut cfg = String::from("jobs:\n");
    cfg += &check_job("load", &["check_load", "-w", "1000,1000,1000", "-c", "2000,2000,2000"]);
    cfg += &check_job("disk", &["check_disk", "-w", "0%", "-c", "0%", "-p", "/"]);
    cfg += &check_job("procs", &["check_procs", "-w", "100000", "-c", "200000"]);
    cfg += &check_job("users", &["check_users", "-w", "1000", "-c", "2000"]);
    cfg += &check_job("tcp", &["check_tcp", "-H", "127.0.0.1", "-p", &tcp_port.to_string()]);
    cfg += &check_job("tcp_closed", &["check_tcp", "-H", "127.0.0.1", "-p", &closed_port.to_string()]);
    cfg += &check_job("http", &["check_http", "-H", "127.0.0.1", "-p", &http_port.to_string(), "-s", "vane test page"]);
    for (code, text) in [(0, "all good"), (1, "getting warm"), (2, "on fire"), (3, "no idea")] {
        cfg += &check_job(&format!("dummy{code}"), &["check_dummy", &code.to_string(), text]);
    }
    cfg += "sinks:\n  - { id: out, plugin: stdout }\n";
    let p = write(dir.path(), "v.yaml", &cfg);

    let load = VANE.poll(&p, "load");
    assert_eq!(load[0].name, "check_load");
    assert_eq!(load[0].state, Some(State::Ok));
    assert!(load[0].description.as_deref().unwrap().starts_with("LOAD OK"));
    assert!(f(&load[0], "load1") >= 0.0);
    assert_eq!(f(&load[0], "load1_warn"), 1000.0);

    let disk = VANE.poll(&p, "disk");
    assert_eq!(disk[0].state, Some(State::Ok));
    // check_disk reports bytes used of `/` with its size as the maximum.
    let used = f(&disk[0], "/");
    assert!(used > 0.0 && used <= f(&disk[0], "/_max"), "{:?}", disk[0]);

    let procs = VANE.poll(&p, "procs");
    assert!(f(&procs[0], "procs") >= 1.0);
    let users = VANE.poll(&p, "users");
    assert_eq!(users[0].state, Some(State::Ok));
    assert!(f(&users[0], "users") >= 0.0);

    let tcp_ev = VANE.poll(&p, "tcp");
    assert_eq!(tcp_ev[0].state, Some(State::Ok), "{:?}", tcp_ev[0]);
    assert!(f(&tcp_ev[0], "time") < 5.0);
    let closed = VANE.poll(&p, "tcp_closed");
    assert_eq!(closed[0].state, Some(State::Critical));

    let http = VANE.poll(&p, "http");
    assert_eq!(http[0].state, Some(State::Ok), "{:?}", http[0]);
    assert!(f(&http[0], "size") > 0.0);
    assert!(f(&http[0], "time") >= 0.0);
    drop(tcp);

    for (code, st, text) in [
        (0, State::Ok, "OK: all good"),
        (1, State::Warning, "WARNING: getting warm"),
        (2, State::Critical, "CRITICAL: on fire"),
        (3, State::Unknown, "UNKNOWN: no idea"),
    ] {
        let ev = VANE.poll(&p, &format!("dummy{code}"));
        assert_eq!(ev[0].state, Some(st));
        assert_eq!(ev[0].description.as_deref(), Some(text));
    }
}

#[test]
fn execd_streams_restarts_and_is_stopped_with_the_agent() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.lp");
    let pids = dir.path().join("pids");
    // Each run: one good line, a bad one, an endless one, another good one;
    // then it exits and is started again.
    let script = write(
        dir.path(),
        "child.sh",
        &format!(
            "echo $$ >> {pids}\n\
             echo \"run,pid=$$ n=1i\"\n\
             echo 'this is not line protocol'\n\
             head -c 3000000 /dev/zero | tr '\\0' x; echo\n\
             echo \"run,pid=$$ n=2i\"\n\
             echo 'to stderr' >&2\n\
             exec sleep 0.3\n",
            pids = pids.display()
        ),
    );
    let stats = dir.path().join("stats.lp");
    let (me, stats_sink) = figures_to(&stats);
    let child = format!(
        "  - {{ id: child, plugin: execd, next: out, config: {{ command: [sh, {}], stop_timeout: 1s }} }}\n",
        script.display()
    );
    let p = to_out(dir.path(), "", &(child + &me), &stats_sink);
    let (mut child, log) = VANE.start_piped(&p);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for l in log.map_while(Result::ok) {
            let _ = tx.send(l);
        }
    });
    let bad_lines = || -> f64 { vane_test_support::figure_in(&stats, "child", "bad_lines") };
    let deadline = Instant::now() + Duration::from_secs(30);
    // Two runs of the child delivered both good lines each, and the two bad
    // lines of each run were counted.
    loop {
        let t = std::fs::read_to_string(&out).unwrap_or_default();
        let runs: std::collections::HashSet<&str> = t
            .lines()
            .filter(|l| l.contains(" n=2i"))
            .filter_map(|l| l.split(",pid=").nth(1)?.split(' ').next())
            .collect();
        if runs.len() >= 2 && bad_lines() >= 4.0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the child was not restarted, or bad lines not counted ({}):\n{t}",
            bad_lines()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // SAFETY: signals the agent we started.
    vane_test_support::signal(&child, libc::SIGTERM);
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0));
    let logs: Vec<String> = rx.try_iter().collect();
    assert!(logs.iter().any(|l| l.contains("to stderr")), "child stderr is logged");
    assert!(
        logs.iter().any(|l| l.contains("line 3: column 1: record longer than 1048576 bytes; skipped")),
        "{logs:#?}"
    );
    // No child outlives the agent.
    for pid in std::fs::read_to_string(&pids).unwrap().lines() {
        let st = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let state = st.rsplit(") ").next().and_then(|s| s.chars().next());
        assert!(st.is_empty() || state == Some('Z'), "child {pid} still runs: {st}");
    }
}
