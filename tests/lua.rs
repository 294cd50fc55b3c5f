//! Scripts that misbehave, through the binary: `ctx.exec` of a child that
//! floods a stream, or fills the one read last.

use std::path::Path;
use std::time::{Duration, Instant};

use vane_test_support::{Vane, text, write};

const VANE: Vane = Vane(env!("CARGO_BIN_EXE_vane"));

/// A config with one `lua` source running `script` (with `extra` settings).
fn lua_source(dir: &Path, script: &str, extra: &str) -> std::path::PathBuf {
    write(dir, "s.lua", script);
    write(
        dir,
        "v.yaml",
        &format!(
            "sources:\n  - {{ id: s, plugin: lua, config: {{ script: {}, {extra} }} }}\nsinks:\n  - {{ id: out, plugin: stdout }}\n",
            dir.join("s.lua").display()
        ),
    )
}

#[test]
fn exec_reads_both_streams_at_once_and_a_flood_fails_the_call() {
    let dir = tempfile::tempdir().unwrap();
    // 1 MiB to stderr before anything on stdout.
    let cfg = lua_source(
        dir.path(),
        "function collect(ctx)\n\
           local r = ctx.exec({ 'sh', '-c', 'head -c 1048576 /dev/zero >&2; echo done' }, 20)\n\
           return { name = 'x', fields = { err = #r.stderr, out = #r.stdout } }\n\
         end\n",
        "memory: 16MiB",
    );
    let t = Instant::now();
    let evs = VANE.poll(&cfg, "s");
    assert!(t.elapsed() < Duration::from_secs(10), "took {:?}", t.elapsed());
    assert_eq!(evs[0].get_field("err").and_then(|v| v.as_f64()), Some(1048576.0));
    assert_eq!(evs[0].get_field("out").and_then(|v| v.as_f64()), Some(5.0));
    // A child writing without end fails the call at the script's memory.
    let cfg = lua_source(
        dir.path(),
        "function collect(ctx)\n  local r = ctx.exec({ 'cat', '/dev/zero' }, 20)\n  return { name = 'x', fields = { n = #r.stdout } }\nend\n",
        "memory: 16MiB",
    );
    let t = Instant::now();
    let out = VANE.output(&["test", "s", "-c", cfg.to_str().unwrap()]);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(err.contains("cat wrote more than 16777216 bytes to stdout"), "{err}");
    assert!(t.elapsed() < Duration::from_secs(10), "took {:?}", t.elapsed());
}

/// Runaway scripts of every kind the probe found, beside a source that is
/// slow but legal and a healthy one, on one worker thread: each runaway
/// poll is stopped (by its instruction budget or its time limit) and
/// reported, the healthy source and `/health` go on,
/// and SIGTERM ends the agent within its shutdown timeout.
#[test]
fn runaway_scripts_are_stopped_and_slow_ones_starve_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let runaways = [
        ("pcall", "while true do pcall(function() while true do end end) end", "exceeded (a runaway script?)"),
        (
            "xpcall",
            "while true do xpcall(function() while true do end end, function() while true do end end) end",
            "exceeded (a runaway script?)",
        ),
        (
            "coroutine",
            "while true do pcall(coroutine.wrap(function() while true do end end)) end",
            "exceeded (a runaway script?)",
        ),
        (
            "gc",
            "setmetatable({}, { __gc = function() while true do end end })",
            "__gc and __close metamethods are not allowed",
        ),
        ("pattern", "string.find(string.rep('a', 60), string.rep('(.-)', 12) .. 'b')", "exceeded (a runaway script?)"),
        ("rep", "while true do local s = string.rep('x', 16 << 20) end", "exceeded (a runaway script?)"),
    ];
    let mut jobs = String::new();
    for (id, body, _) in runaways {
        let script = write(dir.path(), &format!("{id}.lua"), &format!("function collect(ctx)\n{body}\nend\n"));
        jobs += &format!("  - {{ id: {id}, plugin: lua, interval: 1s, config: {{ script: {} }} }}\n", script.display());
    }
    // Legal, but holds its thread for 1.5 s of every second.
    let slow = write(
        dir.path(),
        "slow.lua",
        "function collect(ctx)\n  local t = os.clock()\n  while os.clock() - t < 1.5 do end\n  return { name = 'slow', fields = { v = 1 } }\nend\n",
    );
    jobs += &format!(
        "  - {{ id: slow, plugin: lua, interval: 1s, config: {{ script: {}, instructions: 100000000000, timeout: 10s }} }}\n",
        slow.display()
    );
    let port = vane_test_support::free_port();
    let out = dir.path().join("out.lp");
    let cfg = write(
        dir.path(),
        "v.yaml",
        &format!(
            "agent: {{ threads: 1, http: 127.0.0.1:{port}, shutdown_timeout: 3s }}\n\
             sources:\n{jobs}  - {{ id: beat, plugin: hello, interval: 100ms }}\n\
             sinks:\n  - {{ id: out, plugin: file, batch_wait: 100ms, config: {{ path: {} }} }}\n",
            out.display()
        ),
    );
    let log = dir.path().join("log");
    let mut agent = VANE.start_ready(&cfg, &log, "vane is running");
    for (id, _, why) in runaways {
        let want = format!("job={id}");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            let lines: Vec<&str> = text.lines().filter(|l| l.contains(&want)).collect();
            if lines.iter().any(|l| l.contains(why)) {
                break;
            }
            assert!(Instant::now() < deadline, "{id}: no {why:?} within 30 s; its lines: {lines:#?}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    // Meanwhile the healthy source went on, and the port answered at once.
    let beats = |t: &str| t.lines().filter(|l| l.starts_with("hello")).count();
    let before = beats(&std::fs::read_to_string(&out).unwrap_or_default());
    for _ in 0..5 {
        let t = Instant::now();
        let body = vane_test_support::http::http_get(&format!("127.0.0.1:{port}"), "/health");
        assert!(body.contains("\"status\""), "{body}");
        assert!(t.elapsed() < Duration::from_millis(500), "/health took {:?}", t.elapsed());
    }
    vane_test_support::wait_until(Duration::from_secs(5), "beats go on", || {
        beats(&std::fs::read_to_string(&out).unwrap_or_default()) >= before + 10
    });
    vane_test_support::wait_until(Duration::from_secs(10), "the slow source's events", || {
        std::fs::read_to_string(&out).unwrap_or_default().lines().any(|l| l.starts_with("slow"))
    });
    vane_test_support::signal(&agent, libc::SIGTERM);
    let (_, took) = vane_test_support::wait_exit(&mut agent, Duration::from_secs(30));
    assert!(took < Duration::from_secs(8), "shutdown took {took:?}");
}

/// An engine script that never returns, with limits set far beyond the
/// shutdown timeout: SIGTERM still ends the agent within the timeouts of
/// its stages (the call is left behind), not when the script's 60 s are up.
#[test]
fn shutdown_does_not_wait_for_a_runaway_engine() {
    let dir = tempfile::tempdir().unwrap();
    let script = write(dir.path(), "e.lua", "function process(e)\n  ctx.log('spinning')\n  while true do end\nend\n");
    let cfg = write(
        dir.path(),
        "v.yaml",
        &format!(
            "agent: {{ shutdown_timeout: 1s }}\n\
             sources:\n  - {{ id: beat, plugin: hello, interval: 100ms, next: spin }}\n\
             engines:\n  - {{ id: spin, plugin: lua, next: out, config: {{ script: {}, instructions: 1000000000000, timeout: 60s }} }}\n\
             sinks:\n  - {{ id: out, plugin: stdout }}\n",
            script.display()
        ),
    );
    let log = dir.path().join("log");
    let mut agent = VANE.start_ready(&cfg, &log, "vane is running");
    vane_test_support::wait_for_log(&log, "spinning");
    vane_test_support::signal(&agent, libc::SIGTERM);
    let (_, took) = vane_test_support::wait_exit(&mut agent, Duration::from_secs(30));
    assert!(took < Duration::from_secs(10), "shutdown took {took:?}");
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("did not finish within the shutdown timeout"), "{text}");
}
