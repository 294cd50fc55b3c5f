//! The `http` and `tcp` checks through the real binary, against real
//! servers on loopback: Python's http.server and `openssl s_server` (HTTPS
//! with a certificate made for the test, valid 30 days).

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use vane_core::event::{Event, State, Value};
use vane_test_support::proc::{Killed as Server, self_signed};
use vane_test_support::{Vane, events_in, free_port, stop, to_out, wait_until};

const VANE: Vane = Vane(env!("CARGO_BIN_EXE_vane"));

fn wait_port(port: u16) {
    wait_until(Duration::from_secs(20), "the server's port", || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
}

fn python_http(dir: &Path) -> (Server, u16) {
    let port = free_port();
    let child = Command::new("/usr/bin/python3")
        .args(["-m", "http.server", "--bind", "127.0.0.1", &port.to_string()])
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("python3 runs");
    wait_port(port);
    (Server(child), port)
}

fn openssl_https(dir: &Path) -> (Server, u16, String) {
    let (cert, key) = self_signed(dir);
    let port = free_port();
    let child = Command::new("openssl")
        .args(["s_server", "-www", "-quiet", "-accept"])
        .arg(format!("127.0.0.1:{port}"))
        .arg("-cert")
        .arg(&cert)
        .arg("-key")
        .arg(&key)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_port(port);
    (Server(child), port, cert.display().to_string())
}

fn last<'a>(evs: &'a [Event], tag: &str, value: &str) -> &'a Event {
    evs.iter().rev().find(|e| e.get_tag(tag) == Some(value)).unwrap_or_else(|| panic!("no event with {tag}={value}"))
}

fn num(e: &Event, f: &str) -> f64 {
    e.get_field(f).and_then(Value::as_f64).unwrap_or_else(|| panic!("{f} in {e:?}"))
}

#[test]
fn http_and_tcp_checks_against_real_servers() {
    let dir = tempfile::tempdir().unwrap();
    let site = dir.path().join("site");
    std::fs::create_dir(&site).unwrap();
    std::fs::write(site.join("index.html"), "<h1>vane ok</h1>\n").unwrap();
    let (_web, web) = python_http(&site);
    let (_tls, tls, ca) = openssl_https(dir.path());
    let closed = free_port();
    let cfg = to_out(
        dir.path(),
        "agent: { interval: 200ms }\n",
        &format!(
            "\
             \x20 - {{ id: page, plugin: http, next: out, config: {{ url: \"http://127.0.0.1:{web}/index.html\", body_regex: \"vane (ok|fine)\" }} }}\n\
             \x20 - {{ id: gone, plugin: http, next: out, config: {{ url: \"http://127.0.0.1:{web}/missing\" }} }}\n\
             \x20 - {{ id: wrong, plugin: http, next: out, config: {{ url: \"http://127.0.0.1:{web}/index.html\", body_regex: \"^nope\" }} }}\n\
             \x20 - {{ id: cert, plugin: http, next: out, warning: \"cert_days < 60\", config: {{ url: \"https://localhost:{tls}/\", ca: {ca} }} }}\n\
             \x20 - {{ id: untrusted, plugin: http, next: out, config: {{ url: \"https://localhost:{tls}/\" }} }}\n\
             \x20 - {{ id: port, plugin: tcp, next: out, config: {{ address: \"127.0.0.1:{web}\", send: \"GET / HTTP/1.0\\r\\n\\r\\n\", expect: \"200 OK\" }} }}\n\
             \x20 - {{ id: shut, plugin: tcp, next: out, critical: \"up == 0\", config: {{ address: \"127.0.0.1:{closed}\" }} }}\n"
        ),
        "",
    );
    let agent = VANE.start(&cfg);
    let out = dir.path().join("out.lp");
    let wanted = ["page", "gone", "wrong", "cert", "untrusted"];
    wait_until(Duration::from_secs(30), "every check reported", || {
        let evs = events_in(&out);
        let urls: Vec<&str> = evs.iter().filter_map(|e| e.get_tag("url")).collect();
        let addrs = evs.iter().filter(|e| e.get_tag("address").is_some()).count();
        urls.len() >= wanted.len() * 2 && addrs >= 4
    });
    stop(agent);
    let evs = events_in(&out);
    let page = last(&evs, "url", &format!("http://127.0.0.1:{web}/index.html"));
    let page = if page.get_field("body_match") == Some(&Value::Bool(true)) {
        page
    } else {
        evs.iter().find(|e| e.name == "http" && e.get_field("body_match") == Some(&Value::Bool(true))).unwrap()
    };
    assert_eq!((num(page, "status"), num(page, "up"), num(page, "size")), (200.0, 1.0, 17.0));
    assert!(num(page, "time") > 0.0);
    assert_eq!(page.state, Some(State::Ok));
    let wrong = evs
        .iter()
        .find(|e| e.get_field("body_match") == Some(&Value::Bool(false)))
        .expect("the regex that does not match");
    assert_eq!((num(wrong, "up"), wrong.state), (0.0, Some(State::Critical)));
    let gone = last(&evs, "url", &format!("http://127.0.0.1:{web}/missing"));
    assert_eq!((num(gone, "status"), num(gone, "up")), (404.0, 0.0));
    assert_eq!(gone.state, Some(State::Critical));
    let cert = evs
        .iter()
        .rev()
        .find(|e| e.get_tag("url") == Some(&format!("https://localhost:{tls}/")) && e.get_field("cert_days").is_some())
        .expect("the trusted HTTPS check");
    let days = num(cert, "cert_days");
    assert!((29.0..=30.0).contains(&days), "{days}");
    assert_eq!((num(cert, "status"), cert.state), (200.0, Some(State::Warning)));
    let untrusted = evs
        .iter()
        .find(|e| e.get_tag("url") == Some(&format!("https://localhost:{tls}/")) && e.get_field("cert_days").is_none())
        .expect("the check without the CA");
    assert_eq!(num(untrusted, "up"), 0.0);
    assert!(untrusted.description.as_deref().unwrap_or("").contains("certificate"), "{untrusted:?}");
    let port = last(&evs, "address", &format!("127.0.0.1:{web}"));
    assert_eq!((num(port, "up"), port.get_field("matched")), (1.0, Some(&Value::Bool(true))));
    assert!(num(port, "connect_time") <= num(port, "response_time"));
    let shut = last(&evs, "address", &format!("127.0.0.1:{closed}"));
    assert_eq!((num(shut, "up"), shut.state), (0.0, Some(State::Critical)));
    assert!(shut.description.as_deref().unwrap_or("").contains("refused"), "{shut:?}");
}

#[test]
fn ping_reaches_loopback_and_names_an_unknown_host() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = to_out(
        dir.path(),
        "",
        "\
             \x20 - { id: p, plugin: ping, interval: 1h, next: out, config: { hosts: [127.0.0.1, localhost, no-such-host.invalid], count: 4, ping_interval: 50ms } }\n",
        "",
    );
    let agent = VANE.start(&cfg);
    let out = dir.path().join("out.lp");
    wait_until(Duration::from_secs(30), "three ping events", || events_in(&out).len() >= 3);
    stop(agent);
    let evs = events_in(&out);
    for host in ["127.0.0.1", "localhost"] {
        let e = last(&evs, "url", host);
        assert_eq!(
            (num(e, "sent"), num(e, "received"), num(e, "loss_percent"), num(e, "up")),
            (4.0, 4.0, 0.0, 1.0),
            "{e:?}"
        );
        let (min, avg, max) = (num(e, "rtt_min_ms"), num(e, "rtt_avg_ms"), num(e, "rtt_max_ms"));
        assert!(0.0 < min && min <= avg && avg <= max && max < 1000.0, "{e:?}");
        assert!(num(e, "rtt_stddev_ms") >= 0.0);
        assert_eq!(e.state, Some(State::Ok));
    }
    let bad = last(&evs, "url", "no-such-host.invalid");
    assert_eq!((num(bad, "up"), bad.state), (0.0, Some(State::Critical)));
    assert!(bad.description.as_deref().unwrap_or("").starts_with("no-such-host.invalid: "), "{bad:?}");
}
