//! The `procstat` source through the real binary, watching processes this
//! test starts: chosen by a pattern, by a pid file, and by a pid file that
//! does not exist (a process that is gone).

use std::process::Command;

use std::time::Duration;
use vane_test_support::proc::Killed as Kill;

use vane_core::event::{State, Value};
use vane_test_support::{Vane, events_in, stop, to_out, wait_until};

const VANE: Vane = Vane(env!("CARGO_BIN_EXE_vane"));

#[test]
fn processes_by_pattern_and_pid_file_and_a_missing_one() {
    let dir = tempfile::tempdir().unwrap();
    let marker = format!("{}.{}", 3000 + std::process::id() % 1000, std::process::id());
    let _sleepers: Vec<Kill> = (0..2).map(|_| Kill(Command::new("sleep").arg(&marker).spawn().unwrap())).collect();
    let busy = Kill(Command::new("sh").args(["-c", "while :; do :; done"]).spawn().unwrap());
    let pid_file = dir.path().join("busy.pid");
    std::fs::write(&pid_file, format!("{}\n", busy.0.id())).unwrap();
    let cfg = to_out(
        dir.path(),
        "",
        &format!(
            "\
             \x20 - {{ id: sleepers, plugin: procstat, interval: 300ms, next: out, config: {{ pattern: \"^sleep {marker}$\" }} }}\n\
             \x20 - {{ id: busy, plugin: procstat, interval: 300ms, next: out, config: {{ pid_file: {p} }} }}\n\
             \x20 - {{ id: gone, plugin: procstat, interval: 300ms, next: out, critical: \"pids == 0\", config: {{ pid_file: {d}/none.pid }} }}\n",
            p = pid_file.display(),
            d = dir.path().display()
        ),
        "",
    );
    let agent = VANE.start(&cfg);
    let out = dir.path().join("out.lp");
    let busy_pid = busy.0.id().to_string();
    wait_until(Duration::from_secs(30), "the busy process's CPU usage", || {
        events_in(&out).iter().any(|e| e.get_tag("pid") == Some(&busy_pid) && e.get_field("cpu_usage").is_some())
    });
    stop(agent);
    let evs = events_in(&out);
    let lookup = |sel: &str| {
        evs.iter()
            .rev()
            .find(|e| e.name == "procstat_lookup" && e.get_tag("selector").is_some_and(|s| s.contains(sel)))
            .unwrap_or_else(|| panic!("a lookup for {sel}"))
    };
    assert_eq!(lookup(&marker).get_field("pids"), Some(&Value::Int(2)));
    assert_eq!(lookup("busy.pid").get_field("pids"), Some(&Value::Int(1)));
    let gone = lookup("none.pid");
    assert_eq!((gone.get_field("pids"), gone.state), (Some(&Value::Int(0)), Some(State::Critical)));
    let b =
        evs.iter().rev().find(|e| e.get_tag("pid") == Some(&busy_pid) && e.get_field("cpu_usage").is_some()).unwrap();
    assert_eq!(b.get_tag("process_name"), Some("sh"));
    let num = |f: &str| b.get_field(f).and_then(Value::as_f64).unwrap_or_else(|| panic!("{f}"));
    assert!(num("cpu_usage") > 10.0, "a busy loop: {}", num("cpu_usage"));
    assert!(num("cpu_time") > 0.0);
    assert!(num("memory_rss") > 0.0 && num("memory_vms") >= num("memory_rss"));
    assert_eq!(num("threads"), 1.0);
    assert!(num("fds") >= 3.0, "stdin, stdout, stderr at least");
    let sleepers: std::collections::HashSet<_> = evs
        .iter()
        .filter(|e| e.name == "procstat" && e.get_tag("selector").is_some_and(|s| s.contains(&marker)))
        .filter_map(|e| e.get_tag("pid"))
        .collect();
    assert_eq!(sleepers.len(), 2);
}
