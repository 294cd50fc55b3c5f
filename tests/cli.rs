//! Integration tests that run the real `vane` binary as a user would.

use std::io::{BufRead, BufReader};
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use vane_test_support::{
    Vane, drain, figure, figures_to, signal, text, to_out, wait_exit, wait_for_file, wait_log, write,
};

const VANE: Vane = Vane(env!("CARGO_BIN_EXE_vane"));

fn vane(args: &[&str]) -> Output {
    VANE.output(args)
}

/// The largest value of a field of the `vane_job` events of one job.
fn counter(text: &str, job: &str, field: &str) -> u64 {
    figure(text, job, field) as u64
}

#[test]
fn version_and_plugins_list() {
    let out = vane(&["--version"]);
    assert!(out.status.success());
    assert!(text(&out.stdout).starts_with("vane "));
    let out = vane(&["plugins"]);
    let s = text(&out.stdout);
    for name in [
        "cpu",
        "memory",
        "swap",
        "disk",
        "diskio",
        "net",
        "load",
        "processes",
        "system",
        "internal",
        "stdout",
        "file",
        "transform",
        "otlp",
        "prometheus_remote_write",
        "riemann",
    ] {
        assert!(s.lines().any(|l| l.split_whitespace().next() == Some(name)), "{name} missing from:\n{s}");
    }
    // One column each for names, roles and descriptions, whatever a name's length.
    let role_at = |l: &str| {
        let gap = l.find(' ').unwrap();
        gap + l[gap..].find(|c| c != ' ').unwrap()
    };
    let starts: Vec<usize> = s.lines().filter(|l| !l.trim_start().starts_with("config:")).map(role_at).collect();
    assert!(starts.windows(2).all(|w| w[0] == w[1]), "{s}");
    assert!(s.contains("config: path, format, precision, rotate_size, keep"));
}

#[test]
fn a_single_cpu_poll_reports_counters_and_no_usage_from_a_meaningless_window() {
    let out = vane(&["test", "cpu"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let evs = vane_test_support::events(&out.stdout);
    assert!(!evs.is_empty() && evs.iter().all(|e| e.name == "cpu_time"), "{}", text(&out.stdout));
}

#[test]
fn run_without_config_serves_the_host_board_with_host_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let addr = format!("127.0.0.1:{}", vane_test_support::free_port());
    let log = dir.path().join("log");
    let child = VANE
        .command(&["run"])
        .env("VANE_HTTP", &addr)
        .env("STATE_DIRECTORY", dir.path())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let agent = vane_test_support::proc::Killed(child);
    // It says where its board is.
    wait_for_file(&log, Duration::from_secs(30), |t| t.contains(&format!("HTTP on http://{addr}/")));
    let board = || {
        let r = vane_test_support::http::http_get(&addr, "/api/board/host");
        r.split_once("\r\n\r\n").and_then(|(_, b)| serde_json::from_str::<serde_json::Value>(b).ok())
    };
    let filled = |b: &serde_json::Value, tag: &str| {
        b["widgets"]
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w["tag"] == tag && w["data"].as_object().is_some_and(|d| !d.is_empty()))
    };
    // The first CPU figure needs two polls (10 s apart).
    vane_test_support::wait_until(Duration::from_secs(40), "the host board filled", || {
        board().is_some_and(|b| ["cpu_now", "memory_now", "load", "disks"].iter().all(|t| filled(&b, t)))
    });
    // Its history is kept in the data folder the environment names.
    assert!(dir.path().join("board/boards/host.json").is_file());
    assert_eq!(vane_test_support::stop(agent), Some(0));
}

#[test]
fn line_protocol_on_stdout_is_one_config_line_away() {
    let dir = tempfile::tempdir().unwrap();
    let config = text(&vane(&["config"]).stdout);
    let line = "  # - { id: stdout, plugin: stdout, config: { format: influx } }";
    assert!(config.contains(line), "{config}");
    let config = config.replace(line, &line.replacen("# ", "", 1));
    let path = write(dir.path(), "vane.yaml", &config);
    let mut child = VANE
        .command(&["run", "-c", path.to_str().unwrap()])
        .env("VANE_HTTP", format!("127.0.0.1:{}", vane_test_support::free_port()))
        .env("STATE_DIRECTORY", dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut want: Vec<&str> =
        vec!["cpu", "cpu_time", "mem", "swap", "disk", "net", "system_load", "processes", "system"];
    let mut lines = BufReader::new(stdout).lines();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !want.is_empty() && Instant::now() < deadline {
        let Some(Ok(line)) = lines.next() else { break };
        let ev = vane_core::lineproto::decode_line(&line, vane_core::lineproto::Precision::Nanoseconds)
            .unwrap_or_else(|e| panic!("not line protocol: {line}: {e}"));
        assert!(!ev.host.is_empty(), "host stamped: {line}");
        assert!(ev.time > 1_600_000_000_000_000_000, "time stamped: {line}");
        want.retain(|w| *w != ev.name);
    }
    signal(&child, libc::SIGTERM);
    let (code, _) = wait_exit(&mut child, Duration::from_secs(10));
    assert!(want.is_empty(), "never saw: {want:?}");
    assert_eq!(code, 0);
}

#[test]
fn check_accepts_a_good_config_with_conf_d() {
    let dir = tempfile::tempdir().unwrap();
    let main = write(
        dir.path(),
        "vane.yaml",
        "jobs:\n  - { id: hello, plugin: hello }\nsinks:\n  - { id: out, plugin: stdout }\n",
    );
    write(dir.path(), "conf.d/extra.yaml", "jobs:\n  - { id: cpu, plugin: cpu, interval: 5s, next: out }\n");
    let out = vane(&["check", "-c", main.to_str().unwrap()]);
    assert_eq!(text(&out.stderr), "");
    assert!(out.status.success());
    assert!(text(&out.stdout).contains("ok (2 sources, 0 engines, 1 sinks, 2 files)"));
}

#[test]
fn check_names_file_line_column_and_key_path() {
    let dir = tempfile::tempdir().unwrap();
    let main = write(
        dir.path(),
        "vane.yaml",
        "agent:\n  host: web-01\njobs:\n  - id: d\n    plugin: disk\n    config:\n      mount_point: [/]\n  - { id: x, plugin: cpuu }\nsinks:\n  - id: out\n    plugin: file\n    config: { path: /tmp/x, format: xml }\n",
    );
    write(dir.path(), "conf.d/more.yaml", "jobs:\n  - { id: d, plugin: load, next: nowhere }\n");
    let out = vane(&["check", "-c", main.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let f = main.display().to_string();
    let m = dir.path().join("conf.d/more.yaml").display().to_string();
    let expected = [
        format!(
            "{f}:7:7: jobs[0].config.mount_point: unknown key `mount_point`, expected one of `mount_points`, `ignore_fs`"
        ),
        format!("{f}:8:22: jobs[1].plugin: unknown plugin `cpuu` (did you mean `cpu`?); `vane plugins` lists them"),
        format!("{f}:12:37: sinks[0].config.format: unknown value \"xml\", expected one of `influx`, `json`"),
        format!("{m}:2:11: jobs[0].id: duplicate id `d`, first used at {f}:4:9"),
        "4 errors in the configuration".to_owned(),
    ];
    assert_eq!(text(&out.stderr).lines().collect::<Vec<_>>(), expected);
}

#[test]
fn check_reports_unreadable_files_and_yaml_errors() {
    let out = vane(&["check", "-c", "/nonexistent/vane.yaml"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("cannot read config file /nonexistent/vane.yaml"));
    let dir = tempfile::tempdir().unwrap();
    let p = write(dir.path(), "v.yaml", "jobs: [ {id: a\n");
    let out = vane(&["check", "-c", p.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(err.starts_with(&format!("{}:2:1: invalid YAML", p.display())), "{err}");
}

#[test]
fn test_polls_one_job_once() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(
        dir.path(),
        "v.yaml",
        "agent: { host: box1 }\njobs:\n  - { id: greet, plugin: hello, tags: { team: ops } }\nsinks:\n  - { id: out, plugin: stdout }\n",
    );
    let out = vane(&["test", "greet", "-c", p.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let s = text(&out.stdout);
    let lines: Vec<&str> = s.lines().collect();
    assert_eq!(lines.len(), 1, "{s}");
    assert!(lines[0].starts_with("hello,host=box1,team=ops,state=ok value=0.0,description=\"Hello world!\" "), "{s}");
    let out = vane(&["test", "out", "-c", p.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("`out` is a sink, not a source"));
    let out = vane(&["test", "nope", "-c", p.to_str().unwrap()]);
    assert!(text(&out.stderr).contains("no source with id `nope`; sources: greet"));
    // The built-in config's jobs can be tested without a file.
    let out = vane(&["test", "load"]);
    assert!(text(&out.stdout).starts_with("system_load,host="));
}

#[test]
fn panicking_hung_and_failing_jobs_do_not_stop_the_others() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.lp");
    let stats = dir.path().join("stats.lp");
    let (me, stats_sink) = figures_to(&stats);
    let jobs = "  - { id: ok, plugin: hello, interval: 50ms, next: out }\n\
                \x20 - { id: boom, plugin: chaos, interval: 50ms, config: { mode: panic, after: 1 }, next: out }\n\
                \x20 - { id: stuck, plugin: chaos, interval: 50ms, timeout: 200ms, config: { mode: hang }, next: out }\n\
                \x20 - { id: crash, plugin: chaos, config: { mode: crash }, next: out }\n\
                \x20 - { id: err, plugin: chaos, interval: 50ms, config: { mode: error }, next: out }\n"
        .to_owned();
    let head = format!("agent: {{ data_dir: {} }}\n", dir.path().display());
    let p = to_out(dir.path(), &head, &(jobs + &me), &stats_sink);
    let mut child = VANE.start(&p);
    // The panicking job is restarted after a backoff of about a second and
    // panics again; meanwhile the healthy job keeps its pace.
    let t = wait_for_file(&stats, Duration::from_secs(20), |t| {
        counter(t, "boom", "restarts") >= 1
            && counter(t, "boom", "panics") >= 2
            && counter(t, "stuck", "poll_timeouts") >= 3
            && counter(t, "crash", "panics") >= 1
            && counter(t, "err", "poll_errors") >= 5
    });
    let hello_polls = counter(&t, "ok", "polls");
    signal(&child, libc::SIGTERM);
    let (code, took) = wait_exit(&mut child, Duration::from_secs(10));
    assert_eq!(code, 0);
    assert!(took < Duration::from_secs(5), "stopped in {took:?}");
    let lines = std::fs::read_to_string(&out).unwrap();
    let hellos = lines.lines().filter(|l| l.starts_with("hello,")).count() as u64;
    // Every poll of the healthy job reached the sink, through all of it.
    assert!(hellos >= hello_polls && hello_polls >= 20, "{hellos} lines, {hello_polls} polls");
    let booms = lines.lines().filter(|l| l.starts_with("chaos,")).count();
    assert!(booms >= 2, "the panicking job worked between panics: {booms}");
}

#[test]
fn sigint_stops_cleanly_and_flushes() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.json");
    let stats = dir.path().join("stats.lp");
    let p = write(
        dir.path(),
        "v.yaml",
        &format!(
            "jobs:\n\
             \x20 - {{ id: h, plugin: hello, interval: 20ms, next: out }}\n\
             \x20 - {{ id: slow, plugin: chaos, interval: 1h, timeout: 1h, config: {{ mode: hang }}, next: out }}\n\
             \x20 - {{ id: me, plugin: internal, interval: 50ms, next: stats }}\n\
             sinks:\n\
             \x20 - {{ id: out, plugin: file, batch_wait: 1h, batch_size: 100000, config: {{ path: {o}, format: json }} }}\n\
             \x20 - {{ id: stats, plugin: file, batch_wait: 10ms, config: {{ path: {s} }} }}\n",
            o = out.display(),
            s = stats.display()
        ),
    );
    // Nothing reaches `out` before shutdown (huge batches); the internal
    // source tells how many polls the job has made meanwhile.
    let (mut child, log) = VANE.start_piped(&p);
    drain(log);
    let t = wait_for_file(&stats, Duration::from_secs(20), |t| counter(t, "h", "polls") >= 5);
    let polled = counter(&t, "h", "polls");
    signal(&child, libc::SIGINT);
    let (code, took) = wait_exit(&mut child, Duration::from_secs(10));
    assert_eq!(code, 0);
    assert!(took < Duration::from_secs(3), "took {took:?}");
    // The sink flushed its partial batch on the way out.
    let t = std::fs::read_to_string(&out).unwrap();
    let n = t.lines().count() as u64;
    assert!(n >= polled, "{n} events flushed, {polled} polls made before the signal");
    for l in t.lines() {
        let e = vane_core::json::decode(l).unwrap();
        assert_eq!(e.name, "hello");
    }
}

#[test]
fn a_second_signal_exits_at_once() {
    let dir = tempfile::tempdir().unwrap();
    // Opening a FIFO for writing blocks until a reader comes: the sink hangs.
    let fifo = dir.path().join("fifo");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: c is a valid path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let p = write(
        dir.path(),
        "v.yaml",
        &format!(
            "agent: {{ shutdown_timeout: 1m }}\njobs:\n  - {{ id: h, plugin: hello, interval: 20ms }}\nsinks:\n  - {{ id: out, plugin: file, config: {{ path: {} }} }}\n",
            fifo.display()
        ),
    );
    // The signal handlers are in place once the agent says it is starting.
    let (mut child, mut log) = VANE.start_piped(&p);
    wait_log(&mut log, "starting");
    signal(&child, libc::SIGTERM);
    // The shutdown is under way, and stuck on the sink.
    wait_log(&mut log, "stopping");
    drain(log);
    signal(&child, libc::SIGTERM);
    let (code, took) = wait_exit(&mut child, Duration::from_secs(5));
    assert_eq!(code, 130);
    assert!(took < Duration::from_secs(3), "took {took:?}");
}

#[test]
fn a_chain_source_rate_state_sink_alerts_through_the_real_binary() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("alerts.lp");
    // chaos counts its polls: 1, 2, 3 … every 50 ms, a rate of about 20/s.
    let p = write(
        dir.path(),
        "v.yaml",
        &format!(
            "jobs:\n\
             \x20 - {{ id: polls, plugin: chaos, interval: 50ms, next: r }}\n\
             engines:\n\
             \x20 - {{ id: r, plugin: rate, next: st, critical: \"value > 5\", warning: \"value > 1\" }}\n\
             \x20 - {{ id: st, plugin: state, beat: 200ms, config: {{ pass: false }} }}\n\
             sinks:\n\
             \x20 - {{ id: out, plugin: file, batch_wait: 10ms, config: {{ path: {} }} }}\n",
            out.display()
        ),
    );
    let check = vane(&["check", "-c", p.to_str().unwrap()]);
    assert!(check.status.success(), "{}", text(&check.stderr));
    let (mut child, log) = VANE.start_piped(&p);
    drain(log);
    let t =
        wait_for_file(&out, Duration::from_secs(20), |t| t.lines().filter(|l| l.contains("alert=repeat")).count() >= 2);
    signal(&child, libc::SIGTERM);
    assert_eq!(wait_exit(&mut child, Duration::from_secs(10)).0, 0);
    let alerts: Vec<vane_core::event::Event> =
        t.lines().map(|l| vane_core::lineproto::decode_line(l, Default::default()).unwrap()).collect();
    let first = &alerts[0];
    assert_eq!(first.name, "chaos");
    assert_eq!(first.get_tag("alert"), Some("transition"));
    assert_eq!(first.state, Some(vane_core::event::State::Critical));
    assert_eq!(first.get_field("previous_state").unwrap().as_str(), Some("ok"));
    let rate = first.get_field("value").unwrap().as_f64().unwrap();
    assert!((5.0..=40.0).contains(&rate), "rate {rate}/s");
    assert_eq!(first.description.as_deref(), Some("critical: value > 5"));
    // Only one transition: the rate stays critical; the rest are repeats.
    let transitions = alerts.iter().filter(|e| e.get_tag("alert") == Some("transition")).count();
    assert_eq!(transitions, 1);
}

#[test]
fn engine_runs_alone_on_standard_input() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(
        dir.path(),
        "v.yaml",
        "agent: { host: h1 }\n\
         jobs:\n  - { id: src, plugin: hello, next: r }\n\
         engines:\n  - { id: r, plugin: rate, config: { mode: delta } }\n\
         sinks:\n  - { id: out, plugin: stdout }\n",
    );
    let input = "bytes,kind=counter value=100u 1000000000\n\
                 not line protocol\n\
                 {\"name\":\"bytes\",\"kind\":\"counter\",\"fields\":{\"value\":250},\"time\":2000000000}\n\
                 bytes,kind=counter value=40u 3000000000\n";
    let out = VANE.engine(&p, "r", input);
    assert!(out.status.success());
    // 100 -> 250 is 150; 250 -> 40 is a reset: 40.
    assert_eq!(
        text(&out.stdout),
        "bytes,host=h1,kind=delta value=150.0 2000000000\nbytes,host=h1,kind=delta value=40.0 3000000000\n"
    );
    let err = text(&out.stderr);
    assert!(err.contains("input line 2: column 9: expected '=' after field key \"line\""), "{err}");
    assert!(err.contains("events_in=3 events_out=2 bad_lines=1"), "{err}");
    let out = vane(&["engine", "nope", "-c", p.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("no engine with id `nope`; engines: r"));
}

#[test]
fn an_engine_nothing_feeds_runs_alone_with_its_levels_and_a_last_beat() {
    let dir = tempfile::tempdir().unwrap();
    // Fed from elsewhere (a bus, later): `vane check` refuses it, `vane engine` runs it.
    let p = write(
        dir.path(),
        "v.yaml",
        "agent: { host: h2 }\n\
         engines:\n  - { id: win, plugin: aggregate, config: { period: 1h, stats: [count, max] }, critical: \"value_max > 5\", tags: { via: win } }\n\
         sinks:\n  - { id: out, plugin: stdout }\n",
    );
    let check = vane(&["check", "-c", p.to_str().unwrap()]);
    assert!(text(&check.stderr).contains("engine `win` is never fed"), "{}", text(&check.stderr));
    let out = VANE.engine(&p, "win", "lat value=3 1000000000\nlat value=7 2000000000\n");
    assert!(out.status.success(), "{}", text(&out.stderr));
    // The window closes at the end of input: the last beat; levels and tags as in the agent.
    let evs = vane_test_support::events(&out.stdout);
    assert_eq!(evs.len(), 1, "{}", text(&out.stdout));
    assert_eq!(
        (
            evs[0].get_field("value_count").and_then(|v| v.as_f64()),
            evs[0].get_field("value_max").and_then(|v| v.as_f64())
        ),
        (Some(2.0), Some(7.0))
    );
    assert_eq!(evs[0].state, Some(vane_core::event::State::Critical));
    assert_eq!((evs[0].get_tag("via"), evs[0].host.as_str()), (Some("win"), "h2"));
}

#[test]
fn the_readme_configuration_is_valid() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let start = readme.find("### Configuration\n\n```yaml\n").expect("the README shows a config");
    let body = &readme[start..];
    let body = &body[body.find("```yaml\n").unwrap() + 8..];
    let yaml = &body[..body.find("```").unwrap()];
    let dir = tempfile::tempdir().unwrap();
    let p = write(dir.path(), "vane.yaml", yaml);
    let out = vane(&["check", "-c", p.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
}

#[test]
fn log_lines_for_machines_are_one_json_object_or_logfmt_line_each() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write(
        dir.path(),
        "v.yaml",
        "sources:\n  - { id: hi, plugin: hello, interval: 1h }\nsinks:\n  - { id: b, plugin: blackhole }\n",
    );
    for format in ["json", "logfmt"] {
        let log = dir.path().join(format!("{format}.log"));
        let child = VANE
            .command(&["--log-format", format, "run", "-c", cfg.to_str().unwrap()])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let agent = vane_test_support::proc::Killed(child);
        vane_test_support::wait_for_log(&log, "vane is running");
        assert_eq!(vane_test_support::stop(agent), Some(0));
        let text = std::fs::read_to_string(&log).unwrap();
        assert!(text.lines().count() >= 3, "{text}");
        for line in text.lines() {
            if format == "json" {
                let v: serde_json::Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
                assert!(v["time"].is_string() && v["level"].is_string() && v["msg"].is_string(), "{line}");
            } else {
                assert!(line.starts_with("time=") && line.contains(" level=") && line.contains(" msg="), "{line}");
            }
        }
        let running = text.lines().find(|l| l.contains("vane is running")).unwrap();
        assert!(running.contains("jobs"), "its fields too: {running}");
    }
}
