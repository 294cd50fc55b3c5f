//! Running the real `vane` binary in tests: write a config, start the
//! agent, signal it, wait for a condition.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const VANE: &str = env!("CARGO_BIN_EXE_vane");

pub fn write(dir: &Path, name: &str, body: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, body).unwrap();
    p
}

/// A running agent: killed when dropped (the tests' one guard), so a test
/// that fails half-way leaves no agent behind; `stop` ends it the way an
/// operator would.
pub type Agent = super::proc::Killed;

/// `vane run -c CONFIG` with its output discarded.
pub fn start(config: &Path) -> Agent {
    start_with(config, &[])
}

/// The same, with extra environment variables.
pub fn start_with(config: &Path, env: &[(&str, &str)]) -> Agent {
    super::proc::Killed(
        Command::new(VANE)
            .args(["run", "-c", config.to_str().unwrap()])
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    )
}

/// `vane run -c CONFIG` with its log written to `log`.
pub fn start_logged(config: &Path, log: &Path) -> Agent {
    super::proc::Killed(
        Command::new(VANE)
            .args(["run", "-c", config.to_str().unwrap()])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(log).unwrap())
            .spawn()
            .unwrap(),
    )
}

/// Waits until the agent's log contains `text` (a listener saying it is bound).
pub fn wait_for_log(log: &Path, text: &str) {
    wait_until(Duration::from_secs(30), text, || {
        std::fs::read_to_string(log).unwrap_or_default().contains(text)
    });
}

/// A loopback port free at the time of the call.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The events of a line-protocol file written by a `file` sink.
pub fn events_in(path: &Path) -> Vec<vane_core::event::Event> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| vane_core::lineproto::decode_line(l, Default::default()).unwrap())
        .collect()
}

pub fn signal(child: &Child, sig: i32) {
    // SAFETY: kill only sends a signal to a process this test started.
    unsafe { kill(child.id() as i32, sig) };
}

/// SIGTERM, then waits; the exit code.
pub fn stop(mut agent: Agent) -> Option<i32> {
    signal(&agent, 15);
    // Once waited for, the guard's kill is a no-op (std knows it exited).
    agent.wait().ok()?.code()
}

/// Polls `cond` until it holds; fails the test after `limit`.
pub fn wait_until(limit: Duration, what: &str, cond: impl Fn() -> bool) {
    let deadline = Instant::now() + limit;
    while !cond() {
        assert!(Instant::now() < deadline, "not within {limit:?}: {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A field of the latest `vane_job` event of `job` in a line-protocol
/// file written by the `internal` source (0 until there is one).
pub fn figure(stats: &Path, job: &str, field: &str) -> f64 {
    std::fs::read_to_string(stats)
        .unwrap_or_default()
        .lines()
        .rfind(|l| l.starts_with("vane_job,") && l.contains(&format!(",job={job},")))
        .and_then(|l| vane_core::lineproto::decode_line(l, Default::default()).ok())
        .and_then(|e| e.get_field(field)?.as_f64())
        .unwrap_or(0.0)
}

unsafe extern "C" {
    fn kill(pid: i32, sig: i32) -> i32;
}
