//! The `amqp` sink and source against a real RabbitMQ, with RabbitMQ's
//! Python client (pika) publishing and reading beside vane: what vane
//! publishes is what a client reads, what a client publishes reaches vane's
//! sinks once, unreadable messages are dead-lettered with their reason, and
//! a broker restart or a killed consumer loses nothing.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::net::TcpStream;
use std::path::Path;
use std::time::Duration;

use serde_json::json;
use vane_test_support::rabbitmq::Rabbit;
use vane_test_support::{Vane, events_in, free_port, generated, signal, stop, wait_for_log, wait_until, write};

const VANE: Vane = Vane(env!("CARGO_BIN_EXE_vane"));

/// How often each number `1..=n` appears among the `seq` fields of the
/// events in `path`, and what else was there.
fn counts(path: &Path) -> BTreeMap<i64, u32> {
    let mut c = BTreeMap::new();
    // Whole lines only: the sink may be writing the last one.
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let whole = &text[..text.rfind('\n').map_or(0, |i| i + 1)];
    for e in vane_test_support::events(whole.as_bytes()) {
        let n = e.get_field("seq").and_then(|v| v.as_f64()).expect("a seq field") as i64;
        *c.entry(n).or_insert(0) += 1;
    }
    c
}

/// The sorted `seq` fields of messages pika read, each one vane JSON event.
fn sorted_seqs(messages: &[serde_json::Value]) -> Vec<i64> {
    let body =
        |m: &serde_json::Value| serde_json::from_str::<serde_json::Value>(m["body"].as_str().unwrap().trim()).unwrap();
    let mut seqs: Vec<i64> = messages.iter().map(|m| body(m)["fields"]["seq"].as_i64().unwrap()).collect();
    seqs.sort_unstable();
    seqs
}

fn every_number_once(path: &Path, n: i64) -> bool {
    let c = counts(path);
    c.len() as i64 == n && c.keys().copied().eq(1..=n) && c.values().all(|&k| k == 1)
}

/// Every number `1..=n` at least once; the number of duplicates.
fn every_number(path: &Path, n: i64) -> Option<u32> {
    let c = counts(path);
    (c.len() as i64 == n && c.keys().copied().eq(1..=n)).then(|| c.values().map(|k| k - 1).sum())
}

#[test]
fn what_vane_publishes_pika_reads_as_published() {
    let rabbit = Rabbit::start();
    rabbit.bind("seen", "vane", "metrics.#");
    let dir = tempfile::tempdir().unwrap();
    let n = 500;
    let cfg = generated(
        dir.path(),
        "agent: { host: h1 }\n",
        &format!("for (i = 1; i <= {n}; i++) printf \"job,src=gen seq=%di\\n\", i"),
        &format!(
            "  - {{ id: bus, plugin: amqp, batch_wait: 20ms, config: {{ url: \"{}\", routing_key: \"metrics.{{host}}.{{name}}\" }} }}\n",
            rabbit.url()
        ),
    );
    let agent = VANE.start(&cfg);
    wait_until(Duration::from_secs(60), "every event in the queue", || rabbit.ready("seen") >= n);
    let got = rabbit.drain("seen", Duration::from_millis(500));
    assert_eq!(got.len() as u64, n, "one message an event");
    for m in &got {
        assert_eq!(m["content_type"], "application/x-ndjson", "{m}");
        assert_eq!(m["headers"]["vane-format"], serde_json::Value::Null, "the content type says it: {m}");
        assert_eq!(m["delivery_mode"], 2, "persistent: {m}");
        assert_eq!(m["routing_key"], "metrics.h1.job", "{m}");
        let body: serde_json::Value = serde_json::from_str(m["body"].as_str().unwrap().trim()).unwrap();
        assert_eq!((&body["name"], &body["host"], &body["tags"]["src"]), (&json!("job"), &json!("h1"), &json!("gen")));
    }
    assert_eq!(sorted_seqs(&got), (1..=n as i64).collect::<Vec<_>>());
    assert_eq!(stop(agent), Some(0));
}

/// A config consuming queue `in` (bound to exchange `vane`, `extra` added to
/// the source's settings) into `out.lp`, with `sink` added to the file
/// sink's (`buffer: …, `); the config's, the output's and the log's paths.
#[test]
fn over_amqps_vane_trusts_the_brokers_certificate_only_when_told() {
    let rabbit = Rabbit::start_tls();
    let dir = tempfile::tempdir().unwrap();
    rabbit.bind("secure", "vane", "#");
    let config = |ca: &str| {
        format!(
            "sources:\n  - {{ id: gen, plugin: hello, interval: 100ms }}\n\
             sinks:\n  - {{ id: bus, plugin: amqp, batch_wait: 20ms, config: {{ url: \"{}\", format: influx{ca} }} }}\n",
            rabbit.tls_url()
        )
    };
    // Not trusted: refused, said, retried.
    let log = dir.path().join("untrusted.log");
    let agent = VANE.start_logged(&write(dir.path(), "untrusted.yaml", &config("")), &log);
    wait_for_log(&log, "invalid peer certificate");
    assert_eq!(rabbit.ready("secure"), 0);
    assert_eq!(stop(agent), Some(0));
    let trusted = config(&format!(", ca: \"{}\"", rabbit.ca().display()));
    let log = dir.path().join("trusted.log");
    let agent = VANE.start_logged(&write(dir.path(), "trusted.yaml", &trusted), &log);
    wait_until(Duration::from_secs(30), "messages over amqps", || rabbit.ready("secure") >= 3);
    assert_eq!(stop(agent), Some(0));
    let got = rabbit.drain("secure", Duration::from_millis(300));
    let evs = vane_test_support::events(got[0]["body"].as_str().unwrap().as_bytes());
    assert!(!evs.is_empty(), "{got:?}");
}

fn consumer(
    dir: &Path,
    rabbit: &Rabbit,
    extra: &str,
    sink: &str,
) -> (std::path::PathBuf, std::path::PathBuf, std::path::PathBuf) {
    let out = dir.join("out.lp");
    let cfg = write(
        dir,
        "v.yaml",
        &format!(
            "agent: {{ data_dir: {} }}\nsources:\n  - {{ id: bus, plugin: amqp, next: out, config: {{ url: \"{}\", queue: in{extra} }} }}\n\
             sinks:\n  - {{ id: out, plugin: file, batch_wait: 20ms, {sink}config: {{ path: {} }} }}\n",
            dir.join("data").display(),
            rabbit.url(),
            out.display()
        ),
    );
    (cfg, out, dir.join("log"))
}

#[test]
fn what_pika_publishes_reaches_the_sink_once_in_every_format() {
    let rabbit = Rabbit::start();
    let dir = tempfile::tempdir().unwrap();
    let (cfg, out, log) = consumer(dir.path(), &rabbit, "", "");
    let agent = VANE.start_ready(&cfg, &log, "consuming \"in\"");
    let n = 3000;
    let messages: Vec<_> = (1..=n)
        .map(|i| match i % 3 {
            // Named by the header, by the content type, and by nothing (the source's default, json).
            0 => json!({ "exchange": "vane", "key": "a.b", "body": format!("job,via=lp seq={i}i\n"), "headers": { "vane-format": "influx" } }),
            1 => json!({ "exchange": "vane", "key": "c", "content_type": "application/json",
                         "body": format!("{{\"name\":\"job\",\"fields\":{{\"seq\":{i}}}}}") }),
            _ => json!({ "exchange": "vane", "key": "d", "body": format!("{{\"name\":\"job\",\"fields\":{{\"seq\":{i}}}}}\n") }),
        })
        .collect();
    rabbit.publish(&messages);
    wait_until(Duration::from_secs(60), "every message in the file", || every_number_once(&out, n));
    // Every delivery was acknowledged.
    wait_until(Duration::from_secs(10), "the queue empty", || rabbit.ready("in") == 0);
    assert_eq!(stop(agent), Some(0));
    assert!(every_number_once(&out, n), "nothing more after the stop");
    let lp = events_in(&out).into_iter().filter(|e| e.get_tag("via") == Some("lp")).count();
    assert_eq!(lp, (n / 3) as usize);
}

#[test]
fn an_unreadable_message_is_dead_lettered_with_its_reason_and_the_stream_goes_on() {
    let rabbit = Rabbit::start();
    let dir = tempfile::tempdir().unwrap();
    let (cfg, out, log) = consumer(dir.path(), &rabbit, "", "");
    let agent = VANE.start_ready(&cfg, &log, "consuming \"in\"");
    let good = |i: i64| json!({ "exchange": "vane", "key": "k", "body": format!("job seq={i}i\n"), "headers": { "vane-format": "influx" } });
    rabbit.publish(&[
        good(1),
        json!({ "exchange": "vane", "key": "k", "body": "{\"name\": \"job\", \"fields\": " }),
        json!({ "exchange": "vane", "key": "k", "body": "job seq=3i\njob seq=\n", "headers": { "vane-format": "influx" } }),
        json!({ "exchange": "vane", "key": "k", "body": "{\"name\": \"job\", \"fields\": {\"seq\": [1]}}" }),
        good(2),
    ]);
    wait_until(Duration::from_secs(30), "the good messages in the file", || every_number_once(&out, 2));
    wait_until(Duration::from_secs(30), "three dead letters", || rabbit.ready("vane.dead") >= 3);
    let dead = rabbit.drain("vane.dead", Duration::from_millis(300));
    assert_eq!(dead.len(), 3, "{dead:?}");
    let reasons: Vec<&str> = dead.iter().map(|m| m["headers"]["x-vane-reason"].as_str().unwrap()).collect();
    assert!(reasons[0].contains("line 1"), "{reasons:?}");
    assert!(reasons[1].starts_with("line 2:"), "the bad line of the second, by number: {reasons:?}");
    assert!(dead.iter().all(|m| m["headers"]["x-vane-queue"] == "in"), "{dead:?}");
    // The message itself is kept as it came.
    assert_eq!(dead[1]["body"], "job seq=3i\njob seq=\n");
    assert_eq!(rabbit.ready("in"), 0, "acknowledged, not redelivered");
    assert_eq!(stop(agent), Some(0));
    let text = std::fs::read_to_string(&log).unwrap();
    assert_eq!(text.matches("dead-lettered").count(), 3, "{text}");
}

#[test]
fn a_consumer_killed_mid_stream_loses_nothing() {
    let rabbit = Rabbit::start();
    let dir = tempfile::tempdir().unwrap();
    // Events are acknowledged once stored: to outlive a kill -9 they must
    // be stored on disk.
    let (cfg, out, log) = consumer(dir.path(), &rabbit, ", prefetch: 200", "buffer: { kind: disk }, ");
    // The queue is there, full, before anyone consumes it.
    let first = VANE.start_ready(&cfg, &log, "consuming \"in\"");
    drop(first);
    let n = 10_000;
    let messages: Vec<_> =
        (1..=n).map(|i| json!({ "exchange": "vane", "key": "k", "body": format!("{{\"name\":\"job\",\"fields\":{{\"seq\":{i}}}}}") })).collect();
    rabbit.publish(&messages);
    let agent = VANE.start_logged(&cfg, &dir.path().join("log2"));
    wait_until(Duration::from_secs(60), "part of the stream stored", || counts(&out).len() >= 2000);
    signal(&agent, libc::SIGKILL);
    drop(agent);
    assert!(rabbit.ready("in") > 0, "killed before the end of the stream");
    // A consumer started again gets what the killed one had not acknowledged.
    let again = VANE.start_logged(&cfg, &dir.path().join("log3"));
    wait_until(Duration::from_secs(120), "every number in the file", || every_number(&out, n).is_some());
    let dups = every_number(&out, n).unwrap();
    // What was stored but not acknowledged (the prefetch window), and what
    // the file had but the disk buffer had not yet let go (a batch).
    assert!(dups <= 200 + 1000, "only what was in flight comes twice: {dups}");
    assert_eq!(stop(again), Some(0));
}

#[test]
fn a_broker_restart_mid_stream_loses_nothing_confirmed_or_acknowledged() {
    let mut rabbit = Rabbit::start();
    let dir = tempfile::tempdir().unwrap();
    let (port, out) = (free_port(), dir.path().join("out.lp"));
    let log = dir.path().join("log");
    let url = rabbit.url();
    let cfg = write(
        dir.path(),
        "v.yaml",
        &format!(
            "agent: {{ data_dir: {} }}\nsources:\n\
             \x20 - {{ id: lp, plugin: socket, next: bus, config: {{ listen: \"tcp://127.0.0.1:{port}\" }} }}\n\
             \x20 - {{ id: from_bus, plugin: amqp, next: out, config: {{ url: \"{url}\", queue: in }} }}\n\
             sinks:\n\
             \x20 - {{ id: bus, plugin: amqp, batch_wait: 20ms, buffer: {{ kind: disk }}, config: {{ url: \"{url}\", timeout: 5s }} }}\n\
             \x20 - {{ id: out, plugin: file, batch_wait: 20ms, config: {{ path: {} }} }}\n",
            dir.path().join("data").display(),
            out.display()
        ),
    );
    let agent = VANE.start_ready(&cfg, &log, "listening on tcp://");
    wait_for_log(&log, "consuming \"in\"");
    let n = 3000;
    let mut conn = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let mut send = |from: i64, to: i64| {
        for i in from..=to {
            conn.write_all(format!("job,src=tcp seq={i}i\n").as_bytes()).unwrap();
            if i % 100 == 0 {
                std::thread::sleep(Duration::from_millis(5));
            }
        }
    };
    send(1, 1000);
    wait_until(Duration::from_secs(60), "the first thousand through the broker", || every_number(&out, 1000).is_some());
    rabbit.pause();
    // While the broker is down the events wait in the sink's disk buffer.
    send(1001, 2000);
    rabbit.resume();
    send(2001, n);
    wait_until(Duration::from_secs(180), "every number after the restart", || every_number(&out, n).is_some());
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("job=bus") && text.contains("job=from_bus"), "both reported the broker gone:\n{text}");
    assert_eq!(stop(agent), Some(0));
}

#[test]
fn a_message_no_queue_takes_is_retried_until_one_does() {
    let rabbit = Rabbit::start();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log");
    let cfg = generated(
        dir.path(),
        "",
        "for (i = 1; i <= 10; i++) printf \"job seq=%di\\n\", i",
        &format!(
            "  - {{ id: bus, plugin: amqp, batch_wait: 20ms, config: {{ url: \"{}\", exchange: lonely, routing_key: \"k.{{name}}\" }} }}\n",
            rabbit.url()
        ),
    );
    let agent = VANE.start_ready(&cfg, &log, "10 of 10 messages refused (returned: 312 NO_ROUTE)");
    rabbit.bind("late", "lonely", "k.*");
    wait_until(Duration::from_secs(60), "the batch delivered once a queue takes it", || rabbit.ready("late") >= 10);
    let got = rabbit.drain("late", Duration::from_millis(300));
    assert_eq!(sorted_seqs(&got), (1..=10).collect::<Vec<_>>());
    assert_eq!(stop(agent), Some(0));
}

#[test]
fn refused_messages_can_go_to_the_dead_letter_file() {
    let rabbit = Rabbit::start();
    let dir = tempfile::tempdir().unwrap();
    let dead = dir.path().join("dead.lp");
    let cfg = generated(
        dir.path(),
        "",
        "for (i = 1; i <= 5; i++) printf \"job seq=%di\\n\", i",
        &format!(
            "  - {{ id: bus, plugin: amqp, batch_wait: 20ms, config: {{ url: \"{}\", exchange: nowhere, on_refused: dead_letter, dead_letter: {} }} }}\n",
            rabbit.url(),
            dead.display()
        ),
    );
    let log = dir.path().join("log");
    let agent = VANE.start_logged(&cfg, &log);
    let text =
        vane_test_support::wait_for_file(&dead, Duration::from_secs(60), |t| t.matches("job,host=").count() >= 5);
    assert!(text.lines().next().unwrap().contains("rejected: returned: 312 NO_ROUTE"), "{text}");
    let seqs: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).map(|l| l.split(' ').nth(1).unwrap()).collect();
    assert_eq!(seqs, ["seq=1i", "seq=2i", "seq=3i", "seq=4i", "seq=5i"]);
    assert_eq!(stop(agent), Some(0));
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(!text.contains("BasicReturnMessage"), "the client's own noise stays out of the log:\n{text}");
}

#[test]
fn canopsis_events_cross_both_ways_field_by_field() {
    let rabbit = Rabbit::start();
    rabbit.bind("seen", "canopsis.events", "#");
    let dir = tempfile::tempdir().unwrap();
    let (out, log) = (dir.path().join("out.lp"), dir.path().join("log"));
    let script = vane_test_support::generator(
        dir.path(),
        "print \"disk,state=critical,mount=/srv used=91i,description=\\\"91% used\\\"\"",
    );
    let cfg = write(
        dir.path(),
        "v.yaml",
        &format!(
            "agent: {{ host: h2 }}\nsources:\n\
             \x20 - {{ id: checks, plugin: execd, next: to_canopsis, config: {{ command: [sh, {}] }} }}\n\
             \x20 - {{ id: from_canopsis, plugin: amqp, next: out, config: {{ url: \"{url}\", queue: canopsis_in, format: canopsis, \
                      bindings: [{{ exchange: canopsis.events, routing_key: \"nagios.#\" }}] }} }}\n\
             sinks:\n\
             \x20 - {{ id: to_canopsis, plugin: amqp, batch_wait: 20ms, config: {{ url: \"{url}\", format: canopsis }} }}\n\
             \x20 - {{ id: out, plugin: file, batch_wait: 20ms, config: {{ path: {} }} }}\n",
            script.display(),
            out.display(),
            url = rabbit.url(),
        ),
    );
    let agent = VANE.start_ready(&cfg, &log, "consuming \"canopsis_in\"");
    // Canopsis's own event, as a Nagios connector sends it.
    let check = json!({
        "connector": "nagios", "connector_name": "n1", "event_type": "check", "source_type": "resource",
        "component": "db1", "resource": "disk", "state": 2, "state_type": 1, "output": "DISK CRITICAL - 3% free",
        "timestamp": 1_700_000_000,
        "perf_data_array": [{ "metric": "free", "value": 3.0, "unit": "%", "min": 0.0, "max": 100.0, "type": "GAUGE" }]
    });
    rabbit.publish(&[json!({ "exchange": "canopsis.events", "key": "nagios.n1.check.resource.db1.disk",
                             "content_type": "application/json", "body": check.to_string() })]);
    let text = vane_test_support::wait_for_file(&out, Duration::from_secs(30), |t| t.contains("disk,host=db1"));
    let e = vane_test_support::events(text.as_bytes()).into_iter().find(|e| e.host == "db1").unwrap();
    assert_eq!((e.name.as_str(), e.state), ("disk", Some(vane_core::event::State::Critical)));
    assert_eq!(e.description.as_deref(), Some("DISK CRITICAL - 3% free"));
    assert_eq!((e.get_tag("connector"), e.get_tag("connector_name")), (Some("nagios"), Some("n1")));
    assert_eq!(e.get_field("free").and_then(|v| v.as_f64()), Some(3.0));
    assert_eq!(e.time, 1_700_000_000_000_000_000);
    // vane's own check, as Canopsis reads it.
    wait_until(Duration::from_secs(30), "vane's check on the exchange", || rabbit.ready("seen") >= 2);
    let seen = rabbit.drain("seen", Duration::from_millis(300));
    let ours = seen.iter().find(|m| m["routing_key"] == "vane.vane.check.resource.h2.disk").expect("vane's check");
    let c: serde_json::Value = serde_json::from_str(ours["body"].as_str().unwrap()).unwrap();
    assert_eq!(ours["content_type"], "application/json");
    for (k, v) in [
        ("connector", json!("vane")),
        ("connector_name", json!("vane")),
        ("event_type", json!("check")),
        ("source_type", json!("resource")),
        ("component", json!("h2")),
        ("resource", json!("disk")),
        ("state", json!(2)),
        ("state_type", json!(1)),
        ("output", json!("91% used")),
    ] {
        assert_eq!(c[k], v, "{k} in {c}");
    }
    assert_eq!(c["perf_data_array"], json!([{ "metric": "used", "value": 91.0, "type": "GAUGE" }]));
    assert!(c["timestamp"].as_f64().unwrap() > 1.7e9, "{c}");
    assert_eq!(stop(agent), Some(0));
}

/// A nova notification about instance `i-N`.
fn nova(event_type: &str, n: u32) -> serde_json::Value {
    json!({
        "event_type": event_type, "publisher_id": "compute.node-3", "priority": "INFO",
        "timestamp": "2026-12-01 10:00:00.500000", "message_id": format!("m-{n}"),
        "payload": { "instance_id": format!("i-{n}"), "user_id": "u-1", "tenant_id": "p-1",
                     "memory_mb": 512, "vcpus": 1, "root_gb": 1, "ephemeral_gb": 0, "state": "active" }
    })
}

#[test]
fn nova_notifications_give_ceilometers_samples() {
    let rabbit = Rabbit::start();
    let dir = tempfile::tempdir().unwrap();
    let (out, log, stats) = (dir.path().join("out.lp"), dir.path().join("log"), dir.path().join("stats.lp"));
    // The seed's InstanceNotifications, ported to meters, as shipped.
    std::fs::create_dir(dir.path().join("conf.d")).unwrap();
    std::fs::copy(
        concat!(env!("CARGO_MANIFEST_DIR"), "/examples/seeds/conf.d/ceilometer_instance_notifications.yaml"),
        dir.path().join("conf.d/notifications.yaml"),
    )
    .unwrap();
    let (me, stats_sink) = vane_test_support::figures_to(&stats);
    let cfg = write(
        dir.path(),
        "v.yaml",
        &format!(
            "sources:\n{me}sinks:\n  - {{ id: out, plugin: file, batch_wait: 20ms, config: {{ path: {} }} }}\n{stats_sink}",
            out.display()
        ),
    );
    let agent = VANE.start_logged_with(&cfg, &log, &[("AMQP_URL", &rabbit.url())]);
    wait_for_log(&log, "consuming \"vane.notifications.nova\"");
    let envelope = |v: serde_json::Value| json!({ "oslo.version": "2.0", "oslo.message": v.to_string() }).to_string();
    let publish = |body: String| json!({ "exchange": "nova", "key": "notifications.info", "body": body });
    rabbit.publish(&[
        publish(envelope(nova("compute.instance.create.end", 1))),
        publish(nova("compute.instance.exists", 2).to_string()),
        publish(envelope(nova("compute.instance.delete.start", 3))),
        publish(envelope(nova("compute.instance.update", 4))),
        publish("{\"oslo.version\": \"2.0\", \"oslo.message\": \"{not json\"}".into()),
    ]);
    let text = vane_test_support::wait_for_file(&out, Duration::from_secs(30), |t| t.matches("i-3").count() >= 5);
    let mut got: Vec<String> = vane_test_support::events(text.as_bytes())
        .iter()
        .filter(|e| e.get_tag("event_type").is_some())
        .map(|e| {
            assert_eq!(
                (e.host.as_str(), e.get_tag("user_id"), e.get_tag("project_id")),
                ("node-3", Some("u-1"), Some("p-1"))
            );
            assert_eq!(e.time, 1_796_119_200_500_000_000, "the notification's time");
            format!(
                "{} {} {} {} {}",
                e.get_tag("event_type").unwrap(),
                e.get_tag("resource_id").unwrap(),
                e.name,
                e.get_tag("unit").unwrap(),
                e.get_field("value").unwrap().as_f64().unwrap()
            )
        })
        .collect();
    got.sort();
    let mut want = Vec::new();
    for (t, n) in
        [("compute.instance.create.end", 1), ("compute.instance.exists", 2), ("compute.instance.delete.start", 3)]
    {
        for (name, unit, v) in [
            ("instance", "instance", 1),
            ("memory", "MB", 512),
            ("vcpus", "vcpu", 1),
            ("root_disk_size", "GB", 1),
            ("ephemeral_disk_size", "GB", 0),
        ] {
            want.push(format!("{t} i-{n} {name} {unit} {v}"));
        }
    }
    want.sort();
    assert_eq!(got, want);
    // The update is not ours: counted and let go; the malformed one is dead-lettered.
    wait_until(Duration::from_secs(30), "the update counted", || {
        vane_test_support::figure_in(&stats, "instance_notifications", "ignored") == 1.0
    });
    wait_until(Duration::from_secs(30), "one dead letter", || rabbit.ready("vane.dead") == 1);
    let dead = rabbit.drain("vane.dead", Duration::from_millis(300));
    assert!(dead[0]["headers"]["x-vane-reason"].as_str().unwrap().contains("oslo.message is not JSON"), "{dead:?}");
    assert_eq!(rabbit.ready("vane.notifications.nova"), 0);
    assert_eq!(vane_test_support::figure_in(&stats, "instance_notifications", "bad_lines"), 1.0);
    assert_eq!(stop(agent), Some(0));
}

#[test]
fn a_lua_script_reads_the_notifications_no_meter_names() {
    let rabbit = Rabbit::start();
    let dir = tempfile::tempdir().unwrap();
    let (out, log, stats) = (dir.path().join("out.lp"), dir.path().join("log"), dir.path().join("stats.lp"));
    write(
        dir.path(),
        "images.lua",
        "function notification(msg)\n\
           if not msg.event_type:find('^image%.') then return nil end\n\
           if not msg.payload.size then error('image without a size') end\n\
           return { name = 'image.size', fields = { value = msg.payload.size }, tags = { resource_id = msg.payload.id } }\n\
         end\n",
    );
    let (me, stats_sink) = vane_test_support::figures_to(&stats);
    let cfg = write(
        dir.path(),
        "v.yaml",
        &format!(
            "sources:\n{me}\
             \x20 - {{ id: notes, plugin: amqp, config: {{ url: \"{}\", queue: notes, queue_type: classic, \
                    bindings: [{{ exchange: openstack, routing_key: notifications.info }}], lua: {{ script: images.lua }}, \
                    meters: [{{ event_type: compute.instance.exists, name: instance, volume: 1, resource_id: $.payload.instance_id }}] }} }}\n\
             sinks:\n  - {{ id: out, plugin: file, batch_wait: 20ms, config: {{ path: {} }} }}\n{stats_sink}",
            rabbit.url(),
            out.display()
        ),
    );
    let agent = VANE.start_ready(&cfg, &log, "consuming \"notes\"");
    let publish =
        |v: serde_json::Value| json!({ "exchange": "openstack", "key": "notifications.info", "body": v.to_string() });
    rabbit.publish(&[
        publish(nova("compute.instance.exists", 1)),
        publish(json!({ "event_type": "image.upload", "payload": { "id": "img-1", "size": 4096 } })),
        publish(json!({ "event_type": "volume.create.end", "payload": {} })),
        publish(json!({ "event_type": "image.delete", "payload": { "id": "img-2" } })),
    ]);
    let text =
        vane_test_support::wait_for_file(&out, Duration::from_secs(30), |t| t.contains("img-1") && t.contains("i-1"));
    let evs = vane_test_support::events(text.as_bytes());
    let image = evs.iter().find(|e| e.name == "image.size").unwrap();
    assert_eq!(
        (image.get_tag("resource_id"), image.get_field("value").and_then(|v| v.as_f64())),
        (Some("img-1"), Some(4096.0))
    );
    let instance = evs.iter().find(|e| e.name == "instance").unwrap();
    assert_eq!(instance.get_tag("resource_id"), Some("i-1"), "the meter took what it names");
    // Neither took the volume's: counted, let go; the script refused the image without a size.
    wait_until(Duration::from_secs(30), "one ignored", || {
        vane_test_support::figure_in(&stats, "notes", "ignored") == 1.0
    });
    wait_until(Duration::from_secs(30), "one dead letter", || rabbit.ready("vane.dead") == 1);
    let dead = rabbit.drain("vane.dead", Duration::from_millis(300));
    let reason = dead[0]["headers"]["x-vane-reason"].as_str().unwrap();
    assert!(reason.contains("image without a size") && reason.contains("images.lua"), "{dead:?}");
    assert_eq!(rabbit.ready("notes"), 0);
    assert_eq!(stop(agent), Some(0));
}

/// `vane engine ENGINE --worker -c CONFIG` as worker `role` (its `ROLE`),
/// its log in `dir/ROLE.log`, once it consumes the engine's queue.
fn start_worker(dir: &Path, cfg: &Path, engine: &str, role: &str) -> vane_test_support::proc::Killed {
    let log = dir.join(format!("{role}.log"));
    let child = VANE
        .command(&["engine", engine, "--worker", "-c", cfg.to_str().unwrap()])
        .env("ROLE", role)
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    wait_for_log(&log, &format!("consuming \"vane.engine.{engine}\""));
    vane_test_support::proc::Killed(child)
}

/// One config for the whole fleet: agents publish to engine `count`, run by
/// workers (`vane engine count --worker`) that write `out-ROLE.lp`, each
/// process with its own data folder; `ROLE` comes from the environment.
fn fleet(dir: &Path, rabbit: &Rabbit, n: u32) -> std::path::PathBuf {
    fleet_with(dir, rabbit, n, "")
}

/// [`fleet`] with more settings of the engine's queue (`, key: value`).
fn fleet_with(dir: &Path, rabbit: &Rabbit, n: u32, queue: &str) -> std::path::PathBuf {
    let script = write(
        dir,
        "gen.sh",
        &format!(
            "exec awk 'BEGIN {{ for (i = 1; i <= {n}; i++) printf \"job,src=%s seq=%di\\n\", ENVIRON[\"ROLE\"], i; fflush(); system(\"sleep 3600\") }}'\n"
        ),
    );
    write(
        dir,
        "fleet.yaml",
        &format!(
            "agent: {{ data_dir: \"{d}/data-${{ROLE}}\" }}\n\
             sources:\n  - {{ id: gen, plugin: execd, next: count, config: {{ command: [sh, {}] }} }}\n\
             engines:\n  - {{ id: count, plugin: transform, next: out, config: {{ add_tags: {{ worker: \"${{ROLE}}\" }} }}, \
                          via: {{ plugin: amqp, config: {{ url: \"{}\"{queue} }}, consume: {{ prefetch: 200 }} }} }}\n\
             sinks:\n  - {{ id: out, plugin: file, batch_wait: 20ms, buffer: {{ kind: disk }}, config: {{ path: \"{d}/out-${{ROLE}}.lp\" }} }}\n",
            script.display(),
            rabbit.url(),
            d = dir.display(),
        ),
    )
}

/// Per (src, seq): how many times it arrived, over every worker's file; and
/// how many events each worker wrote.
fn fleet_counts(dir: &Path, workers: &[&str]) -> (BTreeMap<(String, i64), u32>, Vec<usize>) {
    let mut c = BTreeMap::new();
    let mut per = Vec::new();
    for w in workers {
        let text = std::fs::read_to_string(dir.join(format!("out-{w}.lp"))).unwrap_or_default();
        let whole = &text[..text.rfind('\n').map_or(0, |i| i + 1)];
        let evs = vane_test_support::events(whole.as_bytes());
        per.push(evs.len());
        for e in evs {
            assert_eq!(e.get_tag("worker"), Some(*w), "the worker that wrote it processed it");
            let seq = e.get_field("seq").and_then(|v| v.as_f64()).unwrap() as i64;
            *c.entry((e.get_tag("src").unwrap().to_owned(), seq)).or_insert(0) += 1;
        }
    }
    (c, per)
}

#[test]
fn agents_feed_an_engines_workers_through_the_bus_and_a_killed_worker_loses_nothing() {
    let rabbit = Rabbit::start();
    let dir = tempfile::tempdir().unwrap();
    let n = 20_000;
    let cfg = fleet(dir.path(), &rabbit, n);
    let c = cfg.to_str().unwrap();
    let worker = |role: &str| start_worker(dir.path(), Path::new(c), "count", role);
    let workers = ["w1", "w2", "w3"];
    let mut running: Vec<_> = workers.iter().map(|w| worker(w)).collect();
    let agents: Vec<_> = ["a1", "a2"]
        .iter()
        .map(|a| VANE.start_logged_with(&cfg, &dir.path().join(format!("{a}.log")), &[("ROLE", a)]))
        .collect();
    // Mid-stream, one worker is killed: what it had not acknowledged goes to the others.
    wait_until(Duration::from_secs(120), "a part of the stream through the workers", || {
        fleet_counts(dir.path(), &workers).0.len() >= 5000
    });
    let killed = running.remove(0);
    signal(&killed, libc::SIGKILL);
    drop(killed);
    // What it had acknowledged sits in its disk buffer: it goes out when the
    // worker starts again on the same data folder, as a supervisor restarts it.
    running.push(worker("w1"));
    wait_until(Duration::from_secs(240), "every event of both agents", || {
        fleet_counts(dir.path(), &workers).0.len() == 2 * n as usize
    });
    let (counts, per) = fleet_counts(dir.path(), &workers);
    for a in ["a1", "a2"] {
        for i in 1..=n as i64 {
            assert!(counts.contains_key(&(a.to_owned(), i)), "{a} {i} arrived");
        }
    }
    let dups: u32 = counts.values().map(|k| k - 1).sum();
    // Only what the killed worker had stored but not acknowledged (its
    // prefetch window) and its disk buffer had not let go (a batch).
    assert!(dups <= 200 + 1000, "{dups} duplicates");
    assert!(per.iter().filter(|&&k| k > 0).count() >= 2, "competing consumers shared the queue: {per:?}");
    for a in agents {
        assert_eq!(stop(a), Some(0));
    }
    // The running workers drain the queue (a batch an agent published again
    // after a lost confirm is a duplicate still on its way; and RabbitMQ's
    // counts lag a little behind).
    wait_until(Duration::from_secs(60), "the workers drained the queue", || rabbit.ready("vane.engine.count") == 0);
    for w in running {
        assert_eq!(stop(w), Some(0));
    }
}

/// Every `beat` event the workers wrote, as (time, worker).
fn beats(dir: &Path, workers: &[&str]) -> Vec<(i64, String)> {
    let mut all = Vec::new();
    for w in workers {
        let text = std::fs::read_to_string(dir.join(format!("beats-{w}.lp"))).unwrap_or_default();
        let whole = &text[..text.rfind('\n').map_or(0, |i| i + 1)];
        all.extend(
            vane_test_support::events(whole.as_bytes())
                .into_iter()
                .filter(|e| e.name == "beat")
                .map(|e| (e.time, e.host.to_string())),
        );
    }
    all.sort();
    all
}

#[test]
fn an_engines_beat_runs_once_per_interval_across_its_workers_and_moves_when_its_worker_dies() {
    let rabbit = Rabbit::start();
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "tick.lua",
        "beat_once = true\nfunction process(e) return e end\nfunction beat() return { name = 'beat', fields = { n = 1 } } end\n",
    );
    let cfg = write(
        dir.path(),
        "beat.yaml",
        &format!(
            "agent: {{ host: \"${{ROLE}}\", data_dir: \"{d}/data-${{ROLE}}\" }}\n\
             sources:\n  - {{ id: me, plugin: internal, interval: 1s, next: out }}\n\
             engines:\n  - {{ id: tick, plugin: lua, beat: 1s, next: out, config: {{ script: tick.lua }}, \
                          via: {{ plugin: amqp, config: {{ url: \"{}\" }} }} }}\n\
             sinks:\n  - {{ id: out, plugin: file, batch_wait: 20ms, config: {{ path: \"{d}/beats-${{ROLE}}.lp\" }} }}\n",
            rabbit.url(),
            d = dir.path().display(),
        ),
    );
    let worker = |role: &str| (role.to_owned(), start_worker(dir.path(), &cfg, "tick", role));
    let workers = ["w1", "w2", "w3"];
    let mut running: Vec<_> = workers.iter().map(|w| worker(w)).collect();
    wait_until(Duration::from_secs(60), "six beats", || beats(dir.path(), &workers).len() >= 6);
    let first = beats(dir.path(), &workers);
    let hosts: std::collections::BTreeSet<&str> = first.iter().map(|(_, h)| h.as_str()).collect();
    assert_eq!(hosts.len(), 1, "one worker of three beats: {first:?}");
    // Once per interval: three workers beating on their own would be a third of it apart.
    for w in first.windows(2) {
        assert!(w[1].0 - w[0].0 >= 800_000_000, "two beats in one interval: {first:?}");
    }
    let leader = first[0].1.clone();
    let log = std::fs::read_to_string(dir.path().join(format!("{leader}.log"))).unwrap();
    assert!(log.contains("holds the lease \"vane.engine.tick.beat\""), "{log}");
    // Its worker dies: the broker lets the lease go with its connection, another takes it.
    let at = running.iter().position(|(r, _)| *r == leader).unwrap();
    let (_, killed) = running.remove(at);
    signal(&killed, libc::SIGKILL);
    drop(killed);
    let before = first.len();
    wait_until(Duration::from_secs(60), "three beats by another worker", || {
        beats(dir.path(), &workers).iter().filter(|(_, h)| *h != leader).count() >= 3
    });
    let after: Vec<(i64, String)> = beats(dir.path(), &workers).into_iter().filter(|(_, h)| *h != leader).collect();
    let hosts: std::collections::BTreeSet<&str> = after.iter().map(|(_, h)| h.as_str()).collect();
    assert_eq!(hosts.len(), 1, "one of the two left beats: {after:?} (before: {before})");
    for w in after.windows(2) {
        assert!(w[1].0 - w[0].0 >= 800_000_000, "two beats in one interval: {after:?}");
    }
    // Each worker reports its own figures, its engine's pace among them.
    for (role, _) in &running {
        let text = std::fs::read_to_string(dir.path().join(format!("beats-{role}.lp"))).unwrap();
        let paces = vane_test_support::events(text.as_bytes())
            .into_iter()
            .filter(|e| e.name == "vane_engine" && e.get_tag("job") == Some("tick") && e.host == *role)
            .count();
        assert!(paces >= 1, "{role} reports its pace: {text}");
    }
    for (_, w) in running {
        assert_eq!(stop(w), Some(0));
    }
}

/// The `seq` numbers of `src` in a worker's file, in the order written.
fn seqs_of(dir: &Path, worker: &str, src: &str) -> Vec<i64> {
    let text = std::fs::read_to_string(dir.join(format!("out-{worker}.lp"))).unwrap_or_default();
    let whole = &text[..text.rfind('\n').map_or(0, |i| i + 1)];
    vane_test_support::events(whole.as_bytes())
        .iter()
        .filter(|e| e.get_tag("src") == Some(src))
        .map(|e| e.get_field("seq").and_then(|v| v.as_f64()).unwrap() as i64)
        .collect()
}

#[test]
fn with_a_single_active_consumer_one_worker_at_a_time_keeps_the_queues_order() {
    let rabbit = Rabbit::start();
    let dir = tempfile::tempdir().unwrap();
    let n = 20_000;
    let cfg = fleet_with(dir.path(), &rabbit, n, ", single_active_consumer: true");
    let worker = |role: &str| start_worker(dir.path(), &cfg, "count", role);
    let first = worker("w1");
    let second = worker("w2");
    let agent = VANE.start_logged_with(&cfg, &dir.path().join("a1.log"), &[("ROLE", "a1")]);
    wait_until(Duration::from_secs(120), "a part of the stream", || seqs_of(dir.path(), "w1", "a1").len() >= 5000);
    assert!(seqs_of(dir.path(), "w2", "a1").is_empty(), "the waiting worker took nothing while the first worked");
    signal(&first, libc::SIGKILL);
    drop(first);
    wait_until(Duration::from_secs(240), "the rest through the second worker", || {
        seqs_of(dir.path(), "w2", "a1").last() == Some(&(n as i64))
    });
    // What the first had acknowledged but not yet written sits in its disk
    // buffer: it goes out when the first starts again, now the one waiting.
    let first = worker("w1");
    let two = seqs_of(dir.path(), "w2", "a1");
    wait_until(Duration::from_secs(60), "the first worker's buffer written", || {
        seqs_of(dir.path(), "w1", "a1").last().is_some_and(|&l| l + 1 >= two[0])
    });
    // A batch the killed worker had written but not yet let go of in its
    // buffer is written again at its start (at least once): the order is
    // that of each number's first arrival.
    let firsts = |v: Vec<i64>| {
        let mut seen = std::collections::HashSet::new();
        v.into_iter().filter(|x| seen.insert(*x)).collect::<Vec<i64>>()
    };
    let (one, two) = (firsts(seqs_of(dir.path(), "w1", "a1")), firsts(two));
    let jumps: Vec<_> = one.windows(2).filter(|p| p[1] != p[0] + 1).collect();
    assert!(jumps.is_empty(), "the first worker took the queue in order: {jumps:?}");
    // The second takes first what the first had not acknowledged (its
    // acknowledgements complete out of order, so some in between are the
    // first's), then the rest: in order too.
    let back: Vec<_> = two.windows(2).filter(|p| p[1] <= p[0]).collect();
    assert!(back.is_empty(), "the second worker took the queue in order: {back:?}");
    let all: std::collections::HashSet<i64> = one.iter().chain(&two).copied().collect();
    assert!((1..=n as i64).all(|i| all.contains(&i)), "nothing is missing");
    // The second took over at or before where the first ended (what the
    // first had not acknowledged comes again): nothing is missing.
    assert_eq!(one[0], 1);
    assert!(two[0] <= one.last().unwrap() + 1, "{} after {}", two[0], one.last().unwrap());
    assert_eq!(stop(agent), Some(0));
    assert_eq!(stop(second), Some(0));
    assert_eq!(stop(first), Some(0));
}

#[test]
fn vane_check_validates_the_fleet_and_a_worker_needs_a_bus_backed_engine() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write(
        dir.path(),
        "v.yaml",
        "engines:\n  - { id: e, plugin: transform, via: { plugin: file } }\n  - { id: f, plugin: transform, via: { plugin: amqp, config: { prefetch: 0, bogus: 1 } } }\n\
         sources:\n  - { id: s, plugin: hello, next: [e, f] }\nsinks:\n  - { id: out, plugin: stdout }\n",
    );
    let out = VANE.output(&["check", "-c", cfg.to_str().unwrap()]);
    let err = vane_test_support::text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains(&format!("{}:2:", cfg.display())) && err.contains("both a sink and a source"), "{err}");
    assert!(err.contains(&format!("{}:3:", cfg.display())) && err.contains("bogus"), "{err}");
    let ok = write(
        dir.path(),
        "ok.yaml",
        "engines:\n  - { id: e, plugin: transform, via: { plugin: amqp } }\n  - { id: local, plugin: transform }\n\
         sources:\n  - { id: s, plugin: hello, next: [e, local] }\nsinks:\n  - { id: out, plugin: stdout }\n",
    );
    assert!(VANE.output(&["check", "-c", ok.to_str().unwrap()]).status.success());
    let out = VANE.output(&["engine", "local", "--worker", "-c", ok.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(vane_test_support::text(&out.stderr).contains("has no `via`"));
}
