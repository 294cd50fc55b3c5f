//! The http sink through the real binary, against a loopback HTTP server
//! of this test that answers 503 to the first request and 200 after: every
//! event arrives once the retry succeeds, with the bearer token from the
//! environment.

use vane_test_support::{Vane, stop};

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::mpsc;
use std::time::Duration;

const VANE: Vane = Vane(env!("CARGO_BIN_EXE_vane"));

#[test]
fn batches_arrive_as_json_after_a_retry_with_the_token() {
    let server = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = server.local_addr().unwrap().port();
    let (tx, rx) = mpsc::channel::<(String, Vec<serde_json::Value>)>();
    std::thread::spawn(move || {
        for (i, conn) in server.incoming().enumerate() {
            let mut conn = conn.unwrap();
            let mut r = BufReader::new(conn.try_clone().unwrap());
            let mut auth = String::new();
            let mut len = 0usize;
            loop {
                let mut line = String::new();
                if r.read_line(&mut line).unwrap() == 0 {
                    break;
                }
                let l = line.trim_end();
                if l.is_empty() {
                    break;
                }
                let lower = l.to_ascii_lowercase();
                if let Some(v) = lower.strip_prefix("content-length:") {
                    len = v.trim().parse().unwrap();
                }
                if lower.starts_with("authorization:") {
                    auth = l["authorization:".len()..].trim().to_owned();
                }
            }
            let mut body = vec![0u8; len];
            r.read_exact(&mut body).unwrap();
            let status = if i == 0 { "503 Service Unavailable" } else { "200 OK" };
            let _ = write!(conn, "HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
            if i > 0 {
                let events: Vec<serde_json::Value> = serde_json::from_slice(&body).unwrap();
                let _ = tx.send((auth, events));
            }
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("v.yaml");
    std::fs::write(
        &cfg,
        format!(
            "jobs:\n  - {{ id: gen, plugin: execd, config: {{ command: [sh, -c, \"for i in 1 2 3 4 5; do echo m v=$${{i}}i; done; exec sleep 3600\"] }} }}\n\
             sinks:\n  - {{ id: hook, plugin: http, batch_wait: 200ms, config: {{ url: \"http://127.0.0.1:{port}/ingest\", bearer_token: \"${{HOOK_TOKEN}}\", headers: {{ X-Source: vane }} }} }}\n"
        ),
    )
    .unwrap();
    let agent = VANE.start_with(&cfg, &[("HOOK_TOKEN", "s3cret")]);
    let mut values = Vec::new();
    while values.len() < 5 {
        let (auth, events) = rx.recv_timeout(Duration::from_secs(30)).expect("the batch arrives after the retry");
        assert_eq!(auth, "Bearer s3cret");
        for e in events {
            assert_eq!(e["name"], "m");
            values.push(e["fields"]["v"].as_i64().unwrap());
        }
    }
    stop(agent);
    values.sort();
    assert_eq!(values, vec![1, 2, 3, 4, 5]);
}
