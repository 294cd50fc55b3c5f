//! Running the real `vane` binary (or a custom build of it) in tests: write
//! a config, start the agent, signal it, wait for what it writes.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use vane_core::event::Event;

/// A running agent: killed when dropped (the tests' one guard), so a test
/// that fails half-way leaves no agent behind; `stop` ends it the way an
/// operator would.
pub type Agent = super::proc::Killed;

/// The agent's log, line by line, when it is read through a pipe.
pub type Log = std::io::Lines<BufReader<std::process::ChildStderr>>;

/// A vane binary: `Vane(env!("CARGO_BIN_EXE_vane"))`.
#[derive(Clone, Copy)]
pub struct Vane(pub &'static str);

impl Vane {
    /// A command for the binary, without the caller's log settings.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(self.0);
        c.args(args).env_remove("RUST_LOG");
        c
    }

    /// Runs the binary to its end.
    pub fn output(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("vane runs")
    }

    /// `vane test JOB -c CONFIG`: the events it printed (the test fails if it failed).
    pub fn poll(&self, config: &Path, job: &str) -> Vec<Event> {
        let out = self.output(&["test", job, "-c", config.to_str().unwrap()]);
        assert!(out.status.success(), "vane test {job}: {}", text(&out.stderr));
        events(&out.stdout)
    }

    /// `vane run -c CONFIG` with its output discarded.
    pub fn start(&self, config: &Path) -> Agent {
        self.start_with(config, &[])
    }

    /// The same, with extra environment variables.
    pub fn start_with(&self, config: &Path, env: &[(&str, &str)]) -> Agent {
        let child = self
            .command(&["run", "-c", config.to_str().unwrap()])
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        super::proc::Killed(child)
    }

    /// `vane run -c CONFIG` with its log written to `log`.
    pub fn start_logged(&self, config: &Path, log: &Path) -> Agent {
        self.start_logged_with(config, log, &[])
    }

    /// `vane run -c CONFIG` with its log written to `log`, once the log
    /// says `ready` (a listener's address, "vane is running"; 30 s at most).
    pub fn start_ready(&self, config: &Path, log: &Path, ready: &str) -> Agent {
        let agent = self.start_logged(config, log);
        wait_for_log(log, ready);
        agent
    }

    /// The same, with extra environment variables.
    pub fn start_logged_with(&self, config: &Path, log: &Path, env: &[(&str, &str)]) -> Agent {
        let child = self
            .command(&["run", "-c", config.to_str().unwrap()])
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(log).unwrap())
            .spawn()
            .unwrap();
        super::proc::Killed(child)
    }

    /// `vane run -c CONFIG` with its log on a pipe.
    pub fn start_piped(&self, config: &Path) -> (Agent, Log) {
        let mut child = self
            .command(&["run", "-c", config.to_str().unwrap()])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let log = BufReader::new(child.stderr.take().unwrap()).lines();
        (super::proc::Killed(child), log)
    }

    /// `vane engine ID -c CONFIG` fed `input`: what it printed, and its log.
    pub fn engine(&self, config: &Path, id: &str, input: impl AsRef<[u8]>) -> Output {
        use std::io::Write;
        let mut child = self
            .command(&["engine", id, "-c", config.to_str().unwrap()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(input.as_ref()).unwrap();
        child.wait_with_output().unwrap()
    }
}

/// Reads the log until a line contains `needle`.
pub fn wait_log(log: &mut Log, needle: &str) {
    let found = log.any(|l| l.is_ok_and(|l| l.contains(needle)));
    assert!(found, "vane never logged {needle:?}");
}

/// Keeps reading the log in the background so the agent never blocks on it.
pub fn drain(log: Log) {
    std::thread::spawn(move || log.for_each(drop));
}

/// Writes a file (and the folders it is in).
pub fn write(dir: &Path, name: &str, body: &str) -> PathBuf {
    let p = dir.join(name);
    if let Some(parent) = p.parent() {
        std::fs::create_dir_all(parent).unwrap();
    }
    std::fs::write(&p, body).unwrap();
    p
}

pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Events in line protocol (a record may span lines inside its strings).
pub fn events(lines: &[u8]) -> Vec<Event> {
    vane_core::lineproto::decode(lines, Default::default(), vane_core::event::NO_TIME).map(Result::unwrap).collect()
}

/// The events of a line-protocol file written by a `file` sink.
pub fn events_in(path: &Path) -> Vec<Event> {
    events(&std::fs::read(path).unwrap_or_default())
}

/// Waits until the agent's log file contains `text` (a listener saying it is bound).
pub fn wait_for_log(log: &Path, text: &str) {
    wait_for_file(log, Duration::from_secs(30), |t| t.contains(text));
}

/// A config `dir/vane.yaml` of `jobs` (YAML list items, sending to `out`)
/// and the usual `out` sink, a file sink writing `dir/out.lp` at once,
/// then `sinks` (more list items); `head` before the sections (`agent: …`).
pub fn to_out(dir: &Path, head: &str, jobs: &str, sinks: &str) -> PathBuf {
    let out = dir.join("out.lp");
    let out = format!("  - {{ id: out, plugin: file, batch_wait: 10ms, config: {{ path: {} }} }}\n", out.display());
    write(dir, "vane.yaml", &format!("{head}jobs:\n{jobs}sinks:\n{out}{sinks}"))
}

/// A config in `dir`: `influxdb_listener` (job `influx`) on `port` into a
/// `file` sink (job `out`) writing `dir/out.lp` without rotating, with
/// `sink` added to the sink's settings (`buffer: …, `) and `head` before the
/// sections (`agent: …`). The config's path and the output's.
pub fn influx_to_file(dir: &Path, port: u16, head: &str, sink: &str) -> (PathBuf, PathBuf) {
    let out = dir.join("out.lp");
    let cfg = write(
        dir,
        "v.yaml",
        &format!(
            "{head}sources:\n  - {{ id: influx, plugin: influxdb_listener, config: {{ listen: \"127.0.0.1:{port}\" }} }}\n\
             sinks:\n  - {{ id: out, plugin: file, {sink}config: {{ path: {}, rotate_size: 4GiB }} }}\n",
            out.display()
        ),
    );
    (cfg, out)
}

/// A loopback port free (for TCP and UDP) at the time of the call, drawn
/// at random below the kernel's ephemeral range (32768 and up here): a port
/// the kernel hands out for `bind(0)` or as a client's source port can be
/// taken by another test's connection before this test's agent binds it.
pub fn free_port() -> u16 {
    use std::hash::{BuildHasher, Hasher};
    // RabbitMQ's distribution and management ports, which its tests start.
    const TAKEN: [u16; 2] = [15672, 25672];
    loop {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u32(std::process::id());
        let port = 10_000 + (h.finish() % 22_000) as u16;
        if TAKEN.contains(&port) {
            continue;
        }
        let tcp = std::net::TcpListener::bind(("127.0.0.1", port));
        let udp = std::net::UdpSocket::bind(("127.0.0.1", port));
        if tcp.is_ok() && udp.is_ok() {
            return port;
        }
    }
}

pub fn signal(child: &Child, sig: i32) {
    // SAFETY: kill only sends a signal to a process this test started.
    let r = unsafe { libc::kill(child.id() as i32, sig) };
    assert_eq!(r, 0, "signal sent");
}

/// Waits up to `limit` until `path` holds `n` events, stops the agent
/// (which must exit 0) and returns the events: exactly `n`.
pub fn stopped_with(agent: Agent, path: &Path, n: usize, limit: Duration) -> Vec<Event> {
    wait_until(limit, &format!("{n} events in {}", path.display()), || events_in(path).len() >= n);
    assert_eq!(stop(agent), Some(0), "the agent stops cleanly");
    let evs = events_in(path);
    assert_eq!(evs.len(), n, "{evs:?}");
    evs
}

/// SIGTERM, then waits; the exit code.
pub fn stop(mut agent: Agent) -> Option<i32> {
    signal(&agent, libc::SIGTERM);
    // Once waited for, the guard's kill is a no-op (std knows it exited).
    agent.wait().ok()?.code()
}

/// Waits for the child to exit, up to `limit`; fails the test otherwise.
pub fn wait_exit(child: &mut Child, limit: Duration) -> (i32, Duration) {
    let start = Instant::now();
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            return (st.code().unwrap_or(-1), start.elapsed());
        }
        assert!(start.elapsed() < limit, "vane did not exit within {limit:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Polls `cond` until it holds; fails the test after `limit`.
pub fn wait_until(limit: Duration, what: &str, cond: impl Fn() -> bool) {
    let deadline = Instant::now() + limit;
    while !cond() {
        assert!(Instant::now() < deadline, "not within {limit:?}: {what}");
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// Waits until `cond` holds on the file's text (the agent writing is the
/// signal); the text.
pub fn wait_for_file(path: &Path, limit: Duration, cond: impl Fn(&str) -> bool) -> String {
    let what = format!("a condition on {}", path.display());
    wait_until(limit, &what, || cond(&std::fs::read_to_string(path).unwrap_or_default()));
    std::fs::read_to_string(path).unwrap_or_default()
}

/// A field of the latest `vane_job` event of `job` in line protocol written
/// by the `internal` source (0 until there is one).
pub fn figure(text: &str, job: &str, field: &str) -> f64 {
    text.lines()
        .rfind(|l| l.starts_with("vane_job,") && l.contains(&format!(",job={job},")))
        .and_then(|l| vane_core::lineproto::decode_line(l, Default::default()).ok())
        .and_then(|e| e.get_field(field)?.as_f64())
        .unwrap_or(0.0)
}

/// [`figure`] in a file the `internal` source writes to.
pub fn figure_in(path: &Path, job: &str, field: &str) -> f64 {
    figure(&std::fs::read_to_string(path).unwrap_or_default(), job, field)
}

/// A program for an `execd` job: `awk 'BEGIN { PROGRAM }'` prints the events,
/// then it sleeps, so the job does not end and restart.
pub fn generator(dir: &Path, program: &str) -> PathBuf {
    write(dir, "gen.sh", &format!("exec awk 'BEGIN {{ {program}; fflush(); system(\"sleep 3600\") }}'\n"))
}

/// Config lines for the agent's own figures: the `internal` source every
/// 100 ms (`sources:` entry) and a file sink `stats` writing them to `path`
/// (`sinks:` entry); read them with [`figure_in`].
pub fn figures_to(path: &Path) -> (String, String) {
    (
        "  - { id: me, plugin: internal, interval: 100ms, next: stats }\n".to_owned(),
        format!("  - {{ id: stats, plugin: file, batch_wait: 10ms, config: {{ path: {} }} }}\n", path.display()),
    )
}

/// A config `dir/v.yaml`: `head` (the `agent:` block), then `sources` and
/// `sinks` (YAML list items) with the agent's own figures written to
/// `dir/stats.lp` ([`figures_to`], read with [`figure_in`]).
pub fn with_figures(dir: &Path, head: &str, sources: &str, sinks: &str) -> PathBuf {
    let (me, stats) = figures_to(&dir.join("stats.lp"));
    write(dir, "v.yaml", &format!("{head}sources:\n{sources}{me}sinks:\n{sinks}{stats}"))
}

/// A config (after `head`, the `agent:` block) of one `execd` job running
/// the awk `program` ([`generator`]) into `sinks` (YAML list items).
pub fn generated(dir: &Path, head: &str, program: &str, sinks: &str) -> PathBuf {
    let script = generator(dir, program);
    let body = format!(
        "{head}sources:\n  - {{ id: gen, plugin: execd, config: {{ command: [sh, {}] }} }}\nsinks:\n{sinks}",
        script.display()
    );
    write(dir, "v.yaml", &body)
}
