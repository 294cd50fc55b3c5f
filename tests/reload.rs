//! Reloading a running agent (SIGHUP, `vane reload`) through the real
//! binary: a numbered stream through ten reloads, a broken config refused,
//! a buffer kept across a reload while its backend (a real InfluxDB) is
//! down, and an unchanged source's schedule left alone.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use vane_test_support::http::http_post;
use vane_test_support::influx::Influx;
use vane_test_support::{Vane, events_in, free_port, signal, stop, wait_for_file, wait_for_log, wait_until, write};

const VANE: Vane = Vane(env!("CARGO_BIN_EXE_vane"));

/// Waits until the log says the `n`th reload was applied.
fn applied(log: &Path, n: usize) {
    wait_for_file(log, Duration::from_secs(30), |t| t.matches("reload: applied").count() >= n);
}

/// Reloads through `vane reload -c CONFIG` (which checks the config first).
fn reload_command(cfg: &Path) {
    let out = VANE.output(&["reload", "-c", cfg.to_str().unwrap()]);
    assert!(out.status.success(), "vane reload: {}", String::from_utf8_lossy(&out.stderr));
}

/// Posts `n=FROM..FROM+PER` as one batch, point `n` stamped `n` ns after
/// a fixed time (so a database keeps every one); true when answered 204.
fn post(port: u16, from: u64, per: u64) -> bool {
    let body: String =
        (from..from + per).map(|n| format!("stream n={n}i {}\n", 1_700_000_000_000_000_000 + n)).collect();
    http_post(port, "/write", "", body.as_bytes()) == 204
}

/// The config of the stream test at reload `k`: the listener (never
/// changed) through engine `e` (changed every time) into `out`; on odd
/// reloads a second source and sink beside them, removed again on even ones.
fn stream_config(dir: &Path, port: u16, k: usize) -> PathBuf {
    let d = dir.display();
    let mut text = format!(
        "agent: {{ data_dir: {d}/data }}\n\
         sources:\n\
         \x20 - {{ id: influx, plugin: influxdb_listener, next: e, config: {{ listen: \"127.0.0.1:{port}\" }} }}\n"
    );
    if k % 2 == 1 {
        text += "  - { id: extra, plugin: internal, interval: 100ms, next: side }\n";
    }
    text += &format!(
        "engines:\n\
         \x20 - {{ id: e, plugin: transform, next: out, config: {{ add_tags: {{ reload: \"{k}\" }} }} }}\n\
         sinks:\n\
         \x20 - {{ id: out, plugin: file, batch_wait: 10ms, config: {{ path: {d}/out.lp, rotate_size: 4GiB }} }}\n"
    );
    if k % 2 == 1 {
        text += &format!("  - {{ id: side, plugin: file, config: {{ path: {d}/side{k}.lp }} }}\n");
    }
    write(dir, "v.yaml", &text)
}

/// The agent on the stream test's first config: its port, config, log.
fn start_stream(dir: &Path) -> (u16, PathBuf, PathBuf, vane_test_support::Agent) {
    let port = free_port();
    let cfg = stream_config(dir, port, 0);
    let log = dir.join("log");
    let agent = VANE.start_ready(&cfg, &log, "influxdb_listener on http://");
    (port, cfg, log, agent)
}

#[test]
fn a_numbered_stream_loses_nothing_acknowledged_through_ten_reloads() {
    let dir = tempfile::tempdir().unwrap();
    let (port, cfg, log, agent) = start_stream(dir.path());
    // A client posting numbered batches of 5 at a steady pace throughout,
    // keeping the numbers answered 204.
    let (acked, done) = (Arc::new(Mutex::new(Vec::<u64>::new())), Arc::new(AtomicBool::new(false)));
    let client = {
        let (acked, done) = (acked.clone(), done.clone());
        std::thread::spawn(move || {
            let mut n = 0;
            while !done.load(Ordering::Relaxed) {
                if post(port, n, 5) {
                    acked.lock().unwrap().extend(n..n + 5);
                }
                n += 5;
                std::thread::sleep(Duration::from_millis(2));
            }
        })
    };
    let acked_now = || acked.lock().unwrap().len();
    for k in 1..=10 {
        let before = acked_now();
        wait_until(Duration::from_secs(20), "the stream goes on", || acked_now() >= before + 50);
        stream_config(dir.path(), port, k);
        if k % 2 == 0 {
            reload_command(&cfg);
        } else {
            signal(&agent, libc::SIGHUP);
        }
        applied(&log, k);
    }
    let before = acked_now();
    wait_until(Duration::from_secs(20), "the stream goes on after the last reload", || acked_now() >= before + 200);
    done.store(true, Ordering::Relaxed);
    client.join().unwrap();
    assert_eq!(stop(agent), Some(0), "the agent stops cleanly");

    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("reload: engines: added: none; changed: e; removed: none; kept: none"), "{text}");
    assert!(text.contains("reload: sources: added: extra; changed: none; removed: none; kept: influx"), "{text}");
    assert!(text.contains("reload: sources: added: none; changed: none; removed: extra; kept: influx"), "{text}");
    let mut seen: HashMap<u64, usize> = HashMap::new();
    let mut reloads = std::collections::BTreeSet::new();
    for e in events_in(&dir.path().join("out.lp")) {
        let n = e.get_field("n").and_then(|v| v.as_f64()).expect("a numbered point") as u64;
        *seen.entry(n).or_default() += 1;
        reloads.insert(e.get_tag("reload").unwrap_or("none").to_owned());
    }
    let acked = acked.lock().unwrap();
    assert!(acked.len() > 1000, "{} points acknowledged", acked.len());
    let missing: Vec<_> = acked.iter().filter(|n| !seen.contains_key(n)).take(10).collect();
    assert!(missing.is_empty(), "acknowledged but not delivered: {missing:?}");
    let twice: Vec<_> = seen.iter().filter(|(_, c)| **c > 1).take(10).collect();
    assert!(twice.is_empty(), "delivered more than once: {twice:?}");
    // Every version of the engine saw part of the stream.
    assert_eq!(reloads.len(), 11, "{reloads:?}");
    // The sources added on odd reloads ran into their sinks.
    assert!(!events_in(&dir.path().join("side1.lp")).is_empty());
}

#[test]
fn a_broken_config_is_refused_whole_and_the_agent_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let (port, cfg, log, agent) = start_stream(dir.path());
    assert!(post(port, 0, 5));
    // A key no sink has (column 5 of the line found below); and a valid
    // change elsewhere that must not be applied either.
    let good = std::fs::read_to_string(&cfg).unwrap();
    let broken = good.replace("reload: \"0\"", "reload: \"1\"")
        + "  - id: more\n    plugin: file\n    batchsize: 5\n    config: { path: /dev/null }\n";
    std::fs::write(&cfg, &broken).unwrap();
    let line = broken.lines().position(|l| l.contains("batchsize")).unwrap() + 1;
    // `vane reload` checks first: it prints the error and signals nothing.
    let out = VANE.output(&["reload", "-c", cfg.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains(&format!("v.yaml:{line}:5: sinks[1].batchsize: unknown key `batchsize`")), "{err}");
    // SIGHUP reads it, refuses it whole, and names the place the same way.
    signal(&agent, libc::SIGHUP);
    wait_for_log(&log, "reload refused: 1 error");
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains(&format!("v.yaml:{line}:5: sinks[1].batchsize: unknown key `batchsize`")), "{text}");
    assert!(!text.contains("reload: applied"), "{text}");
    // The old config goes on: the engine still tags `reload=0`.
    assert!(post(port, 5, 5));
    let out = dir.path().join("out.lp");
    wait_until(Duration::from_secs(10), "10 points", || events_in(&out).len() >= 10);
    assert_eq!(stop(agent), Some(0));
    let evs = events_in(&out);
    assert_eq!(evs.len(), 10);
    assert!(evs.iter().all(|e| e.get_tag("reload") == Some("0")), "{evs:?}");
}

#[test]
fn what_a_sink_buffered_while_its_backend_was_down_is_delivered_after_a_reload() {
    let mut influx = Influx::start();
    influx.pause();
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = |batch: usize, extra: &str| {
        write(
            dir.path(),
            "v.yaml",
            &format!(
                "sources:\n\
                 \x20 - {{ id: in, plugin: influxdb_listener, next: db, config: {{ listen: \"127.0.0.1:{port}\" }} }}\n\
                 {extra}\
                 sinks:\n\
                 \x20 - {{ id: db, plugin: influxdb, batch_size: {batch}, batch_wait: 50ms, config: {{ url: \"http://{}\", database: kept }} }}\n",
                influx.addr
            ),
        )
    };
    let cfg = config(5000, "");
    let log = dir.path().join("log");
    let agent = VANE.start_ready(&cfg, &log, "influxdb_listener on http://");
    // Stored in the sink's memory buffer: acknowledged, not delivered.
    for b in 0..20 {
        assert!(post(port, b * 5, 5), "batch {b} acknowledged");
    }
    wait_for_log(&log, "retrying");
    // The sink changes (and a source is added): it is rebuilt, its buffer kept.
    config(4000, "  - { id: figures, plugin: internal, interval: 1s, next: db }\n");
    signal(&agent, libc::SIGHUP);
    applied(&log, 1);
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("reload: sinks: added: none; changed: db; removed: none; kept: none"), "{text}");
    assert!(post(port, 100, 5));
    influx.resume();
    wait_until(Duration::from_secs(60), "105 points in InfluxDB", || {
        influx.number("SELECT count(n) FROM kept..stream") >= 105.0
    });
    assert_eq!(influx.number("SELECT sum(n) FROM kept..stream"), (0..105).sum::<u64>() as f64);
    assert_eq!(stop(agent), Some(0));
}

#[test]
fn a_watched_config_reloads_when_a_file_changes_and_refuses_a_broken_edit() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display();
    let main = |extra: &str| {
        format!(
            "agent: {{ data_dir: {d}/data, watch: true }}\n\
             sources:\n\
             \x20 - {{ id: tick, plugin: hello, interval: 100ms, next: out }}\n\
             sinks:\n\
             \x20 - {{ id: out, plugin: file, batch_wait: 10ms, config: {{ path: {d}/out.lp }} }}\n{extra}"
        )
    };
    let cfg = write(dir.path(), "v.yaml", &main(""));
    let log = dir.path().join("log");
    let agent = VANE.start_logged(&cfg, &log);
    wait_until(Duration::from_secs(20), "the first events", || !events_in(&dir.path().join("out.lp")).is_empty());
    // A file added to conf.d: no signal, the watch reads it.
    let more = format!(
        "sources:\n  - {{ id: more, plugin: hello, interval: 100ms, next: more_out }}\n\
         sinks:\n  - {{ id: more_out, plugin: file, batch_wait: 10ms, config: {{ path: {d}/more.lp }} }}\n"
    );
    write(&dir.path().join("conf.d"), "more.yaml", &more);
    applied(&log, 1);
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("a config file changed (agent.watch)"), "{text}");
    assert!(text.contains("reload: sources: added: more; changed: none; removed: none; kept: tick"), "{text}");
    wait_until(Duration::from_secs(10), "the added job's events", || {
        !events_in(&dir.path().join("more.lp")).is_empty()
    });
    // A broken edit of the main file is refused, its place named, and the
    // agent goes on with what it has.
    let broken = main("  - { id: bad, plugin: file, batchsize: 5, config: { path: /dev/null } }\n");
    std::fs::write(&cfg, &broken).unwrap();
    let line = broken.lines().position(|l| l.contains("batchsize")).unwrap() + 1;
    wait_for_log(&log, "reload refused: 1 error");
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains(&format!("v.yaml:{line}:")) && text.contains("unknown key `batchsize`"), "{text}");
    assert_eq!(text.matches("reload: applied").count(), 1, "{text}");
    let n = events_in(&dir.path().join("more.lp")).len();
    wait_until(Duration::from_secs(10), "the kept jobs going on", || events_in(&dir.path().join("more.lp")).len() > n);
    // Removing the conf.d file is a change too: its job stops.
    std::fs::remove_file(dir.path().join("conf.d/more.yaml")).unwrap();
    std::fs::write(&cfg, main("")).unwrap();
    applied(&log, 2);
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("reload: sources: added: none; changed: none; removed: more; kept: tick"), "{text}");
    assert_eq!(stop(agent), Some(0));
}

#[test]
fn an_unchanged_sources_schedule_does_not_move_at_a_reload() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display();
    let config = |sources: &str, sinks: &str| {
        write(
            dir.path(),
            "v.yaml",
            &format!(
                "sources:\n\
                 \x20 - {{ id: tick, plugin: internal, interval: 1s, next: ticks }}\n\
                 {sources}\
                 sinks:\n\
                 \x20 - {{ id: ticks, plugin: file, batch_wait: 10ms, config: {{ path: {d}/ticks.lp }} }}\n\
                 {sinks}"
            ),
        )
    };
    let cfg = config("", "");
    let log = dir.path().join("log");
    let agent = VANE.start_logged(&cfg, &log);
    let ticks = dir.path().join("ticks.lp");
    let polls =
        || -> Vec<i64> { events_in(&ticks).iter().filter(|e| e.name == "vane_agent").map(|e| e.time).collect() };
    wait_until(Duration::from_secs(20), "two polls", || polls().len() >= 2);
    // Half a second after a poll: a restarted source would poll at once,
    // half an interval off its schedule.
    let n = polls().len();
    wait_until(Duration::from_secs(5), "the next poll", || polls().len() > n);
    std::thread::sleep(Duration::from_millis(500));
    config(
        "  - { id: other, plugin: internal, interval: 1s, next: other_out }\n",
        &format!("  - {{ id: other_out, plugin: file, config: {{ path: {d}/other.lp }} }}\n"),
    );
    signal(&agent, libc::SIGHUP);
    applied(&log, 1);
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("reload: sources: added: other; changed: none; removed: none; kept: tick"), "{text}");
    let m = polls().len();
    wait_until(Duration::from_secs(10), "three polls after the reload", || polls().len() >= m + 3);
    assert_eq!(stop(agent), Some(0));
    let t = polls();
    for w in t.windows(2) {
        let gap = (w[1] - w[0]) as f64 / 1e9;
        assert!((0.8..1.2).contains(&gap), "polls {gap:.3}s apart, not 1s: {t:?}");
    }
}

#[test]
fn a_board_sink_changed_at_a_reload_serves_its_new_boards_and_keeps_its_history() {
    let dir = tempfile::tempdir().unwrap();
    let addr = format!("127.0.0.1:{}", free_port());
    let d = dir.path().display();
    let config = |boards: &str| {
        write(
            dir.path(),
            "v.yaml",
            &format!(
                "agent: {{ data_dir: {d}/data, http: \"{addr}\" }}\n\
                 sources:\n\
                 \x20 - {{ id: figures, plugin: internal, interval: 200ms, next: board }}\n\
                 sinks:\n\
                 \x20 - {{ id: board, plugin: board, config: {{ boards: [ {{ name: Host, template: \"builtin:host\" }}{boards} ] }} }}\n"
            ),
        )
    };
    let cfg = config("");
    let log = dir.path().join("log");
    let agent = VANE.start_ready(&cfg, &log, "vane is running");
    let get = |path: &str| vane_test_support::http::http_get(&addr, path);
    wait_until(Duration::from_secs(20), "the agent's figures kept", || {
        get("/api/series?name=vane_agent").contains("rss_bytes")
    });
    config(", { name: Second, template: \"builtin:host\", prefix: \"b.\" }");
    signal(&agent, libc::SIGHUP);
    applied(&log, 1);
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("reload: sinks: added: none; changed: board; removed: none; kept: none"), "{text}");
    wait_until(Duration::from_secs(10), "the new board listed", || get("/api/boards").contains("\"Second\""));
    let boards = get("/api/boards");
    assert!(boards.contains("\"Host\""), "{boards}");
    // The history the old sink kept is the new one's.
    assert!(get("/api/series?name=vane_agent").contains("rss_bytes"));
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(!text.contains("cannot start") && !text.contains("ERROR"), "{text}");
    assert_eq!(stop(agent), Some(0));
}

#[test]
fn reload_without_a_running_agent_says_so_and_signals_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display();
    let cfg = write(
        dir.path(),
        "v.yaml",
        &format!(
            "agent: {{ data_dir: {d}/data }}\nsinks:\n  - {{ id: out, plugin: file, config: {{ path: {d}/out.lp }} }}\n"
        ),
    );
    let out = VANE.output(&["reload", "-c", cfg.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("vane.pid") && err.contains("is the agent running"), "{err}");
    // A pid file an agent left behind, naming a process that is not vane
    // (this test): refused, and this process gets no SIGHUP.
    write(dir.path(), "data/vane.pid", &format!("{}\n", std::process::id()));
    let out = VANE.output(&["reload", "-c", cfg.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("a stale pid file"), "{err}");
}
