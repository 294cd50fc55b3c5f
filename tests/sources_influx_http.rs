//! The `influxdb_listener` through the real binary, written to by real
//! clients: InfluxDB's Python client (Debian's python3-influxdb) and curl,
//! over HTTP and HTTPS (a self-signed certificate made with openssl).

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use vane_core::event::Value;
use vane_test_support::{Vane, events_in, free_port, stop, stopped_with, to_out, wait_until, write};

const VANE: Vane = Vane(env!("CARGO_BIN_EXE_vane"));

fn config(dir: &Path, extra: &str) -> (std::path::PathBuf, u16) {
    let port = free_port();
    let cfg = to_out(
        dir,
        "",
        &format!(
            "\
             \x20 - {{ id: in, plugin: influxdb_listener, next: out, config: {{ listen: \"127.0.0.1:{port}\", token: s3cret, db_tag: db, max_body: 64KiB {extra} }} }}\n"
        ),
        "",
    );
    (cfg, port)
}

/// curl's status code and body.
fn curl(args: &[&str]) -> (u16, String) {
    let out = Command::new("curl")
        .args(["-s", "-w", "\n%{http_code}"])
        .args(args)
        .output()
        .expect("curl runs (scripts/install-test-deps.sh installs it)");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap();
    (code.trim().parse().unwrap_or(0), body.to_owned())
}

#[test]
fn influxdbs_python_client_writes_to_vane_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let (cfg, port) = config(dir.path(), "");
    let log = dir.path().join("log");
    let agent = VANE.start_ready(&cfg, &log, "influxdb_listener on http://");
    // The client creates its database, then writes 2,000 points in batches
    // of 500, once plain and once gzipped, as any InfluxDB 1.x user would.
    let script = format!(
        "from influxdb import InfluxDBClient\n\
         for gz in (False, True):\n\
         \x20   c = InfluxDBClient('127.0.0.1', {port}, 'u', 's3cret', 'telemetry', gzip=gz)\n\
         \x20   assert c.ping()\n\
         \x20   c.create_database('telemetry')\n\
         \x20   pts = [{{'measurement': 'cpu', 'tags': {{'host': 'h%d' % (i % 5), 'gz': str(gz)}}, 'time': 1700000000000000000 + i, 'fields': {{'n': i, 'x': 0.5}}}} for i in range(1000)]\n\
         \x20   assert c.write_points(pts, batch_size=500)\n\
         \x20   assert c.write(['mem used=7i'], params={{'db': 'telemetry'}}, protocol='line')\n"
    );
    let out = Command::new("/usr/bin/python3").args(["-c", &script]).output().expect("python3 runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let path = dir.path().join("out.lp");
    let evs = stopped_with(agent, &path, 2002, Duration::from_secs(20));
    let cpu: Vec<_> = evs.iter().filter(|e| e.name == "cpu").collect();
    assert_eq!(cpu.len(), 2000);
    let sum: i64 = cpu
        .iter()
        .map(|e| match e.get_field("n") {
            Some(Value::Int(n)) => *n,
            f => panic!("{f:?}"),
        })
        .sum();
    assert_eq!(sum, 2 * (0..1000).sum::<i64>());
    assert!(cpu.iter().all(|e| e.get_tag("db") == Some("telemetry")));
    assert_eq!(cpu.iter().filter(|e| e.get_tag("gz") == Some("True")).count(), 1000);
    assert_eq!(cpu[0].time, 1_700_000_000_000_000_000);
}

#[test]
fn bad_lines_tokens_sizes_and_gzip_get_influxdbs_answers() {
    let dir = tempfile::tempdir().unwrap();
    let (cfg, port) = config(dir.path(), "");
    let log = dir.path().join("log");
    let agent = VANE.start_ready(&cfg, &log, "influxdb_listener on http://");
    let url = format!("http://127.0.0.1:{port}/write?db=x&precision=s");
    let auth = "Authorization: Token s3cret";
    // A partial write: the good lines are kept, the first bad one is named.
    let (code, body) = curl(&["-H", auth, "--data-binary", "a v=1 1700000000\nb v=\nc v=3 1700000000\nd x", &url]);
    assert_eq!(code, 400, "{body}");
    assert!(body.contains(r#"line 2, column 5: missing value for field \"v\""#), "{body}");
    assert!(body.contains("dropped=2"), "{body}");
    // No token, a wrong one: 401, nothing taken.
    assert_eq!(curl(&["--data-binary", "z v=1", &url]).0, 401);
    assert_eq!(curl(&["-H", "Authorization: Bearer nope", "--data-binary", "z v=1", &url]).0, 401);
    // Basic auth with the token as password, as InfluxDB clients send it.
    assert_eq!(curl(&["-u", "anyone:s3cret", "--data-binary", "e v=5 1700000000", &url]).0, 204);
    // A body past max_body (64KiB): 413, before or after gunzipping.
    let big = dir.path().join("big.lp");
    std::fs::write(&big, "y v=1\n".repeat(20_000)).unwrap();
    let at_big = format!("@{}", big.display());
    assert_eq!(curl(&["-H", auth, "--data-binary", &at_big, &url]).0, 413);
    assert!(Command::new("gzip").arg("-k").arg(&big).status().unwrap().success());
    let at_gz = format!("@{}.gz", big.display());
    let (code, body) = curl(&["-H", auth, "-H", "Content-Encoding: gzip", "--data-binary", &at_gz, &url]);
    assert_eq!(code, 413, "{body}");
    assert!(body.contains("once gunzipped"), "{body}");
    // A gzipped body within bounds.
    let small = dir.path().join("small.lp");
    std::fs::write(&small, "g v=6 1700000000\n").unwrap();
    assert!(Command::new("gzip").arg(&small).status().unwrap().success());
    let at_small = format!("@{}.gz", small.display());
    assert_eq!(curl(&["-H", auth, "-H", "Content-Encoding: gzip", "--data-binary", &at_small, &url]).0, 204);
    assert_eq!(curl(&["-H", auth, "-H", "Content-Encoding: gzip", "--data-binary", "not gzip", &url]).0, 400);
    assert_eq!(curl(&["-I", &format!("http://127.0.0.1:{port}/ping")]).0, 204);
    // What Telegraf's influxdb output sends before writing: the statement as a form body.
    let query = format!("http://127.0.0.1:{port}/query");
    let (code, body) = curl(&["-H", auth, "--data-urlencode", "q=CREATE DATABASE \"telegraf\"", &query]);
    assert_eq!((code, body.as_str()), (200, r#"{"results":[{"statement_id":0}]}"#));
    let (code, body) = curl(&["-H", auth, "--data-urlencode", "q=SELECT * FROM cpu", &query]);
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("takes writes"), "{body}");
    let path = dir.path().join("out.lp");
    wait_until(Duration::from_secs(10), "4 events", || events_in(&path).len() >= 4);
    stop(agent);
    let mut names: Vec<String> = events_in(&path).into_iter().map(|e| e.name.to_string()).collect();
    names.sort();
    assert_eq!(names, ["a", "c", "e", "g"]);
}

#[test]
fn https_with_a_certificate_from_openssl() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = vane_test_support::proc::self_signed(dir.path());
    let tls = format!(", tls: {{ cert: {}, key: {} }}", cert.display(), key.display());
    let (cfg, port) = config(dir.path(), &tls);
    let log = dir.path().join("log");
    let agent = VANE.start_ready(&cfg, &log, "influxdb_listener on https://");
    let url = format!("https://127.0.0.1:{port}/write?db=x");
    let ca = cert.display().to_string();
    let (code, body) = curl(&["--cacert", &ca, "-H", "Authorization: Bearer s3cret", "--data-binary", "t v=1", &url]);
    assert_eq!(code, 204, "{body}");
    // Plain HTTP on the TLS port gets nowhere.
    assert_ne!(
        curl(&["-H", "Authorization: Bearer s3cret", "--data-binary", "t v=2", &url.replace("https", "http")]).0,
        204
    );
    let path = dir.path().join("out.lp");
    wait_until(Duration::from_secs(10), "the event", || events_in(&path).len() == 1);
    stop(agent);
}

/// The 204 waits for the sinks: with a disk buffer, what was answered 204
/// survives a SIGKILL right after, and a full buffer that drops gets 503.
#[test]
fn a_204_means_the_points_are_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let dead = free_port(); // nothing listens there: the sink cannot deliver
    let data = dir.path().join("data");
    let first = write(
        dir.path(),
        "first.yaml",
        &format!(
            "agent: {{ data_dir: {data} }}\n\
             jobs:\n\
             \x20 - {{ id: in, plugin: influxdb_listener, next: [tag, small], config: {{ listen: \"127.0.0.1:{port}\" }} }}\n\
             engines:\n\
             \x20 - {{ id: tag, plugin: transform, next: out, config: {{ add_tags: {{ via: engine }} }} }}\n\
             sinks:\n\
             \x20 - {{ id: out, plugin: graphite, batch_wait: 1h, buffer: {{ kind: disk, fsync: 1h }}, config: {{ address: \"127.0.0.1:{dead}\" }} }}\n\
             \x20 - {{ id: small, plugin: graphite, buffer: {{ max_size: 1KiB, when_full: drop_newest }}, config: {{ address: \"127.0.0.1:{dead}\" }} }}\n",
            data = data.display()
        ),
    );
    let log = dir.path().join("log");
    let mut agent = VANE.start_ready(&first, &log, "influxdb_listener on http://");
    let body: String = (0..1000).map(|i| format!("m n={i}i 1700000000000000000\n")).collect();
    let url = format!("http://127.0.0.1:{port}/write?db=x");
    let (code, text) = curl(&["--data-binary", &body, &url]);
    // The first request fits the small buffer (a first batch is always kept).
    assert_eq!(code, 204, "{text}");
    // Soon one does not (the batch out for delivery may have made room for
    // one more): the small sink drops it, and the client is told.
    let mut sent = 1;
    loop {
        let (code, text) = curl(&["--data-binary", &body, &url]);
        sent += 1;
        if code == 503 {
            assert!(text.contains("buffer is full"), "{text}");
            break;
        }
        assert_eq!(code, 204, "{text}");
        assert!(sent < 4, "no 503 after {sent} requests");
    }
    // No fsync interval would have synced yet (1h): only the acknowledgement did.
    agent.kill().unwrap();
    agent.wait().unwrap();
    // The same sink id, now delivering to a file: the buffer is handed over.
    let second = write(
        dir.path(),
        "second.yaml",
        &format!(
            "agent: {{ data_dir: {data} }}\n\
             sinks:\n\
             \x20 - {{ id: out, plugin: file, buffer: {{ kind: disk }}, config: {{ path: {d}/out.lp }} }}\n",
            data = data.display(),
            d = dir.path().display()
        ),
    );
    let agent = VANE.start_logged(&second, &dir.path().join("log2"));
    let out = dir.path().join("out.lp");
    // Every request reached the disk-buffered sink (only the small one dropped one).
    wait_until(Duration::from_secs(20), "every point from the disk buffer", || events_in(&out).len() >= sent * 1000);
    stop(agent);
    let evs = events_in(&out);
    assert_eq!(evs.len(), sent * 1000);
    assert!(evs.iter().all(|e| e.get_tag("via") == Some("engine")));
    let sum: i64 = evs
        .iter()
        .map(|e| match e.get_field("n") {
            Some(Value::Int(n)) => *n,
            f => panic!("{f:?}"),
        })
        .sum();
    assert_eq!(sum, sent as i64 * (0..1000).sum::<i64>());
}
