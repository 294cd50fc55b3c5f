//! Backends that answer with far too much, through the binary, as an
//! outside probe found them: an InfluxDB answering 500 with 200 MiB, an
//! `http` check of a 1.5 GiB page. The server here is a hostile peer that
//! streams zeros; what is asserted is vane's memory and its log.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::time::Duration;

use vane_test_support::{Vane, events_in, figure_in, figures_to, wait_until, write};

const VANE: Vane = Vane(env!("CARGO_BIN_EXE_vane"));

/// Answers every request with `status` and a body of `size` zero bytes,
/// streamed until the client hangs up.
fn flooding_server(status: &'static str, size: u64) -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { continue };
            std::thread::spawn(move || {
                let mut buf = [0u8; 65536];
                let _ = s.read(&mut buf);
                let head = format!("HTTP/1.1 {status}\r\nContent-Type: text/plain\r\nContent-Length: {size}\r\n\r\n");
                if s.write_all(head.as_bytes()).is_err() {
                    return;
                }
                let zeros = [b'0'; 65536];
                let mut left = size;
                while left > 0 {
                    let n = left.min(zeros.len() as u64) as usize;
                    if s.write_all(&zeros[..n]).is_err() {
                        return;
                    }
                    left -= n as u64;
                }
            });
        }
    });
    port
}

/// The peak resident memory of a process, in bytes (VmHWM).
fn peak_rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap();
    kb << 10
}

#[test]
fn a_huge_error_answer_is_read_and_logged_only_in_part() {
    let dir = tempfile::tempdir().unwrap();
    let port = flooding_server("500 Internal Server Error", 200 << 20);
    let stats = dir.path().join("stats.lp");
    let (me, to_stats) = figures_to(&stats);
    let cfg = write(
        dir.path(),
        "v.yaml",
        &format!(
            "sources:\n  - {{ id: l, plugin: load, interval: 100ms, next: influx }}\n{me}sinks:\n\
             \x20 - {{ id: influx, plugin: influxdb, batch_wait: 10ms, config: {{ url: \"http://127.0.0.1:{port}\", database: m }} }}\n{to_stats}"
        ),
    );
    let log = dir.path().join("log");
    let agent = VANE.start_logged(&cfg, &log);
    // Several answers read (each of 200 MiB if read whole): preparing the
    // database fails, and is retried.
    wait_until(Duration::from_secs(60), "four failures", || figure_in(&stats, "influx", "errors") >= 4.0);
    let rss = peak_rss(agent.id());
    let logged = std::fs::metadata(&log).unwrap().len();
    let text = std::fs::read_to_string(&log).unwrap();
    drop(agent);
    assert!(rss < 100 << 20, "peak RSS {} MiB", rss >> 20);
    assert!(logged < 256 << 10, "{logged} bytes of log");
    assert!(text.contains("(cut at 2 KiB)"), "{}", &text[..text.len().min(2000)]);
    assert!(text.lines().all(|l| l.len() < 8 << 10), "a log line over 8 KiB");
}

#[test]
fn an_http_check_of_a_huge_page_reads_max_body_of_it() {
    let dir = tempfile::tempdir().unwrap();
    let port = flooding_server("200 OK", 1536 << 20);
    let out = dir.path().join("out.lp");
    let cfg = write(
        dir.path(),
        "v.yaml",
        &format!(
            "sources:\n  - {{ id: page, plugin: http, interval: 1s, config: {{ url: \"http://127.0.0.1:{port}/\" }} }}\n\
             sinks:\n  - {{ id: out, plugin: file, batch_wait: 10ms, config: {{ path: {} }} }}\n",
            out.display()
        ),
    );
    let agent = VANE.start(&cfg);
    wait_until(Duration::from_secs(60), "two checks", || events_in(&out).len() >= 2);
    let rss = peak_rss(agent.id());
    drop(agent);
    let evs = events_in(&out);
    assert_eq!(evs[0].get_field("size").and_then(|v| v.as_f64()), Some((1 << 20) as f64));
    assert_eq!(evs[0].get_field("truncated"), Some(&vane_core::event::Value::Bool(true)));
    assert_eq!(evs[0].get_field("up").and_then(|v| v.as_f64()), Some(1.0));
    assert!(rss < 100 << 20, "peak RSS {} MiB", rss >> 20);
}
