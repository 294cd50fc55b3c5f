//! Each seed example run through the custom build `vane-seeds`, as a user
//! would: `test` for polled sources, `engine` for engines, `run` for the
//! long-running ones. Rust and Lua versions are checked alike.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use vane_core::event::{Event, State, Value};
use vane_test_support::influx::Influx;
use vane_test_support::{Vane, events, stop, wait_for_file};

const VANE: Vane = Vane(env!("CARGO_BIN_EXE_vane-seeds"));
const LUA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/lua");

fn config(dir: &Path, body: &str) -> PathBuf {
    vane_test_support::write(dir, "vane.yaml", body)
}

fn value(e: &Event) -> f64 {
    e.get_field("value").and_then(Value::as_f64).unwrap()
}

fn wait_for(path: &Path, cond: impl Fn(&str) -> bool) -> String {
    wait_for_file(path, Duration::from_secs(20), cond)
}

#[test]
fn duct_hello_world_flip_flop_and_process_count_in_rust_and_lua() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(
        dir.path(),
        &format!(
            "jobs:\n\
             \x20 - {{ id: hello, plugin: org.duct.hello_world }}\n\
             \x20 - {{ id: flip, plugin: org.duct.flip_flop }}\n\
             \x20 - {{ id: flip_lua, plugin: lua, config: {{ script: {LUA}/duct_hello.lua }} }}\n\
             \x20 - {{ id: procs, plugin: org.duct.process_count }}\n\
             \x20 - {{ id: procs_lua, plugin: lua, config: {{ script: {LUA}/duct_process_count.lua }} }}\n\
             sinks:\n  - {{ id: out, plugin: stdout }}\n"
        ),
    );
    let h = VANE.poll(&cfg, "hello");
    assert_eq!((h[0].name.as_str(), value(&h[0]), h[0].state), ("hello", 0.0, Some(State::Ok)));
    assert_eq!(h[0].description.as_deref(), Some("Hello world!"));
    for job in ["flip", "flip_lua"] {
        // One poll per run: the first poll of a fresh instance gives 0.
        let e = VANE.poll(&cfg, job);
        assert_eq!(value(&e[0]), 0.0, "{job}");
        assert_eq!(e[0].description.as_deref(), Some("Hello world!"));
    }
    let ps = std::process::Command::new("/bin/ps").arg("-e").output().unwrap();
    let expected = String::from_utf8_lossy(&ps.stdout).trim().lines().count() as f64 - 1.0;
    for job in ["procs", "procs_lua"] {
        let e = VANE.poll(&cfg, job);
        let n = value(&e[0]);
        // Processes come and go between the two counts.
        assert!((n - expected).abs() <= 5.0, "{job}: {n} against {expected}");
        assert!(e[0].description.as_deref().unwrap().starts_with("Process count "));
    }
}

#[test]
fn duct_flip_flop_keeps_its_state_between_polls() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.lp");
    let cfg = config(
        dir.path(),
        &format!(
            "jobs:\n\
             \x20 - {{ id: rust, plugin: org.duct.flip_flop, interval: 20ms }}\n\
             \x20 - {{ id: lua, plugin: lua, interval: 20ms, config: {{ script: {LUA}/duct_hello.lua }}, tags: {{ lang: lua }} }}\n\
             sinks:\n  - {{ id: out, plugin: file, batch_wait: 10ms, config: {{ path: {} }} }}\n",
            out.display()
        ),
    );
    let child = VANE.start(&cfg);
    let t = wait_for(&out, |t| {
        t.lines().filter(|l| l.contains("lang=lua")).count() >= 4
            && t.lines().filter(|l| !l.contains("lang=lua")).count() >= 4
    });
    assert_eq!(stop(child), Some(0));
    for lua in [false, true] {
        let vals: Vec<f64> =
            events(t.as_bytes()).iter().filter(|e| (e.get_tag("lang") == Some("lua")) == lua).map(value).collect();
        let expect: Vec<f64> = (0..vals.len()).map(|i| (i % 2) as f64).collect();
        assert_eq!(vals, expect, "lua: {lua}");
    }
}

#[test]
fn duct_number_proxy_listens_and_emits_numbers_in_rust_and_lua() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.lp");
    let (rust, lua) = (vane_test_support::free_port(), vane_test_support::free_port());
    let cfg = config(
        dir.path(),
        &format!(
            "jobs:\n\
             \x20 - {{ id: rust, plugin: org.duct.number_proxy, config: {{ listen: \"127.0.0.1:{rust}\" }}, tags: {{ lang: rust }} }}\n\
             \x20 - {{ id: lua, plugin: lua_lines, config: {{ listen: \"127.0.0.1:{lua}\", script: {LUA}/duct_number_proxy.lua }}, tags: {{ lang: lua }} }}\n\
             sinks:\n  - {{ id: out, plugin: file, batch_wait: 10ms, config: {{ path: {} }} }}\n",
            out.display()
        ),
    );
    let child = VANE.start(&cfg);
    for port in [rust, lua] {
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut sock = loop {
            match std::net::TcpStream::connect(("127.0.0.1", port)) {
                Ok(s) => break s,
                Err(e) => {
                    assert!(Instant::now() < deadline, "the proxy never listened: {e}");
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
        };
        sock.write_all(b"1.5\nnot a number\n42\n-7e1\n").unwrap();
    }
    let t = wait_for(&out, |t| t.lines().count() >= 6);
    assert_eq!(stop(child), Some(0));
    for lang in ["rust", "lua"] {
        let vals: Vec<f64> =
            events(t.as_bytes()).iter().filter(|e| e.get_tag("lang") == Some(lang)).map(value).collect();
        assert_eq!(vals, vec![1.5, 42.0, -70.0], "{lang}");
    }
}

#[test]
fn canopsis_work_and_beat_in_rust_and_lua() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(
        dir.path(),
        &format!(
            "jobs:\n  - {{ id: src, plugin: org.duct.hello_world, next: [rust, lua] }}\n\
             engines:\n\
             \x20 - {{ id: rust, plugin: org.canopsis.awesome, beat: 1h }}\n\
             \x20 - {{ id: lua, plugin: lua, beat: 1h, config: {{ script: {LUA}/canopsis_awesome.lua }} }}\n\
             sinks:\n  - {{ id: out, plugin: stdout }}\n"
        ),
    );
    for engine in ["rust", "lua"] {
        let out = VANE.engine(&cfg, engine, "a v=1 1\nb v=2 2\nc v=3 3\n");
        let evs = events(&out.stdout);
        let names: Vec<&str> = evs.iter().map(|e| e.name.as_str()).collect();
        // Three events marked by the work task, then the beat's summary at the end of input.
        assert_eq!(names, vec!["a", "b", "c", "awesome_seen"], "{engine}");
        assert!(evs[..3].iter().all(|e| e.get_tag("awesome") == Some("yes")));
        assert_eq!(value(&evs[3]), 3.0, "{engine}");
    }
}

#[test]
fn ceilometer_cpu_pollster_and_instance_notifications() {
    let dir = tempfile::tempdir().unwrap();
    let notes = dir.path().join("notifications.jsonl");
    std::fs::write(
        &notes,
        "{\"event_type\":\"compute.instance.create.end\",\"payload\":{\"instance_id\":\"i-1\",\"user_id\":\"u-1\",\"tenant_id\":\"p-1\",\"memory_mb\":512,\"vcpus\":2,\"root_gb\":10}}\n\
         {\"event_type\":\"compute.instance.update\",\"payload\":{\"instance_id\":\"i-1\"}}\n\
         not json\n\
         {\"event_type\":\"compute.instance.delete.start\",\"payload\":{\"instance_id\":\"i-1\",\"user_id\":\"u-1\",\"tenant_id\":\"p-1\"}}\n",
    )
    .unwrap();
    let out = dir.path().join("out.lp");
    let cfg = config(
        dir.path(),
        &format!(
            "jobs:\n\
             \x20 - {{ id: cpu, plugin: org.openstack.ceilometer.cpu, config: {{ project_id: p-9 }} }}\n\
             \x20 - {{ id: notes, plugin: org.openstack.ceilometer.instance_notifications, config: {{ path: {} }} }}\n\
             sinks:\n  - {{ id: out, plugin: file, batch_wait: 10ms, config: {{ path: {} }} }}\n",
            notes.display(),
            out.display()
        ),
    );
    let cpu = VANE.poll(&cfg, "cpu");
    let counters: Vec<&Event> = cpu.iter().filter(|e| e.name == "cpu").collect();
    let instances: Vec<&Event> = cpu.iter().filter(|e| e.name == "instance").collect();
    assert!(!counters.is_empty() && counters.len() == instances.len());
    assert!(counters.iter().all(|e| e.kind == vane_core::event::Kind::Counter));
    assert!(instances.iter().all(|e| value(e) == 1.0 && e.get_tag("project_id") == Some("p-9")));
    // Our own process is among them, with our uid.
    let me = format!("-{}", std::process::id());
    assert!(
        counters.iter().any(|e| e.get_tag("resource_id").unwrap().ends_with(&me)),
        "this test's own process is listed"
    );
    let child = VANE.start(&cfg);
    let t =
        wait_for(&out, |t| t.lines().filter(|l| l.contains("event_type=compute.instance.delete.start")).count() >= 1);
    assert_eq!(stop(child), Some(0));
    let samples: Vec<Event> = events(t.as_bytes()).into_iter().filter(|e| e.get_tag("event_type").is_some()).collect();
    let got: Vec<(String, String, f64)> =
        samples.iter().map(|e| (e.get_tag("event_type").unwrap().to_owned(), e.name.to_string(), value(e))).collect();
    let want = [
        ("compute.instance.create.end", "instance", 1.0),
        ("compute.instance.create.end", "memory", 512.0),
        ("compute.instance.create.end", "vcpus", 2.0),
        ("compute.instance.create.end", "disk.root.size", 10.0),
        ("compute.instance.delete.start", "instance", 1.0),
    ];
    assert_eq!(got, want.map(|(a, b, c)| (a.to_owned(), b.to_owned(), c)));
    assert!(samples.iter().all(|e| e.get_tag("resource_id") == Some("i-1")
        && e.get_tag("user_id") == Some("u-1")
        && e.get_tag("project_id") == Some("p-1")));
}

#[test]
fn telemetry_random_fills_its_board_from_tasks_coalesced_per_submission() {
    use std::io::{BufRead, Write};
    let dir = tempfile::tempdir().unwrap();
    let http = format!("127.0.0.1:{}", vane_test_support::free_port());
    let cfg = config(
        dir.path(),
        &format!(
            "agent: {{ http: \"{http}\", data_dir: {} }}\n\
             jobs:\n  - {{ id: random, plugin: com.telemetryapp.random, config: {{ board: Random Board, prefix: random_3_ }} }}\n\
             sinks:\n  - {{ id: board, plugin: board, config: {{ boards: [] }} }}\n",
            dir.path().join("data").display()
        ),
    );
    let child = VANE.start(&cfg);
    // The board's events as a page reads them: the board, then one message per submission.
    let sock = std::cell::RefCell::new(None);
    vane_test_support::wait_until(std::time::Duration::from_secs(20), "the agent's HTTP port", || {
        *sock.borrow_mut() = std::net::TcpStream::connect(&http).ok();
        sock.borrow().is_some()
    });
    let mut sock = sock.into_inner().unwrap();
    write!(sock, "GET /api/board/random-board/events HTTP/1.0\r\n\r\n").unwrap();
    let started = std::time::Instant::now();
    let (mut z_updates, mut flows) = (0, std::collections::BTreeSet::new());
    for line in std::io::BufReader::new(sock).lines() {
        let line = line.unwrap();
        let Some(data) = line.strip_prefix("data: ") else { continue };
        let v: serde_json::Value = serde_json::from_str(data).unwrap();
        if let Some(ws) = v["widgets"].as_array() {
            assert_eq!(v["prefix"], "random_3_");
            assert_eq!(
                ws.iter().map(|w| w["flow"].as_str().unwrap()).collect::<Vec<_>>(),
                ["random_3_value_x", "random_3_value_y", "random_3_value_z"]
            );
            continue;
        }
        for (tag, f) in v["flows"].as_object().unwrap() {
            assert!(f["data"]["value"].is_number(), "{v}");
            flows.insert(tag.clone());
        }
        z_updates += usize::from(v["flows"].get("value_z").is_some());
        if flows.len() == 3 && z_updates >= 3 {
            break;
        }
    }
    // value_z is posted every 250 ms, but shown once per 1 s submission:
    // three updates take two seconds (posted as they come, under one).
    assert!(started.elapsed() >= std::time::Duration::from_millis(1500), "{:?}", started.elapsed());
    assert_eq!(stop(child), Some(0));
    // The flows' data outlives the agent.
    let saved = std::fs::read_to_string(dir.path().join("data/board/boards/random-board.json")).unwrap();
    assert!(saved.contains("\"value_z\""), "{saved}");
}

#[test]
fn tourbillon_waits_for_its_database_and_policy_then_loops_until_stopped() {
    let influx = Influx::start();
    let dir = tempfile::tempdir().unwrap();
    // The plugin's own file in conf.d, as Tourbillon reads `myplugin.conf`:
    // its job, and the sink that creates its database and policy.
    vane_test_support::write(
        dir.path(),
        "conf.d/tourbillon.yaml",
        &format!(
            "sources:\n  - {{ id: tourbillon, plugin: org.tourbillon.example, config: 50ms, next: influx }}\n\
             sinks:\n  - id: influx\n    plugin: influxdb\n    batch_wait: 10ms\n    config:\n      url: http://{}\n      database: metrics\n      retention: {{ name: two_weeks, duration: 14d, default: true }}\n",
            influx.addr
        ),
    );
    let cfg = config(dir.path(), "agent: { shutdown_timeout: 2s }\n");
    // The database exists already with another policy: it must be left alone.
    assert!(influx.query("CREATE DATABASE metrics").contains("results"));
    let child = VANE.start(&cfg);
    let deadline = Instant::now() + Duration::from_secs(20);
    while influx.number("SELECT count(value) FROM metrics.two_weeks.tourbillon_loop") < 3.0 {
        assert!(Instant::now() < deadline, "the loops never arrived in InfluxDB");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(stop(child), Some(0));
    let rps = influx.query("SHOW RETENTION POLICIES ON metrics");
    // name, duration, shard group duration, replicas, default
    assert!(rps.contains("[\"two_weeks\",\"336h0m0s\",\"24h0m0s\",1,true]"), "{rps}");
    assert!(rps.contains("[\"autogen\",\"0s\",\"168h0m0s\",1,false]"), "{rps}");
}
