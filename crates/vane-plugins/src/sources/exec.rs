//! External programs as sources. `exec` runs a command on every poll (an
//! argument list, never a shell; on timeout its whole process group is
//! killed) and reads its output in one of the text formats, Nagios plugins
//! included. `execd` keeps one child running and reads events from its
//! standard output as they come, restarting it with a backoff when it exits.
//!
//! Bad output never stops a job: each bad line is logged with its number,
//! counted (`bad_lines`), and the good lines around it are kept.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use serde::Deserialize;
use tokio::io::AsyncBufReadExt;
use vane_core::ByteSize;
use vane_core::event::now_ns;
use vane_core::formats::{self, Bad, Format};
use vane_core::lineproto::{Precision, Records};
use vane_core::lines::{LimitedLines, Line};
use vane_core::prelude::*;

/// Settings of the `exec` source.
#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct ExecConfig {
    /// Program and arguments: `[/usr/lib/nagios/plugins/check_load, -w, "5", -c, "10"]`.
    pub command: Vec<String>,
    /// influx, json, prometheus, graphite or nagios. Default: influx.
    #[serde(default = "influx")]
    pub format: Format,
    /// Kill the program's process group after this long. Default: 10s.
    #[serde(default = "crate::defaults::ten_seconds")]
    pub timeout: vane_core::Duration,
    /// Extra environment variables.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Working directory.
    pub cwd: Option<PathBuf>,
    /// Name of Nagios check events. Default: the program's file name.
    pub name: Option<String>,
}

fn influx() -> Format {
    Format::Influx
}

pub struct Exec {
    cmd: Command,
    format: Format,
    name: String,
}

fn program_name(argv: &[String]) -> String {
    argv.first().map(|p| p.rsplit('/').next().unwrap_or(p).to_owned()).unwrap_or_default()
}

fn command(argv: &[String], env: &BTreeMap<String, String>, cwd: &Option<PathBuf>) -> Result<Command, BuildError> {
    let mut c = Command::from_argv(argv).map_err(BuildError::stop)?;
    c.env = env.clone();
    c.cwd = cwd.clone();
    Ok(c)
}

/// Logs and counts bad lines.
fn report_bad(ctx: &Context, what: &str, bad: &[Bad]) {
    if bad.is_empty() {
        return;
    }
    ctx.stats().bad_lines.fetch_add(bad.len() as u64, Relaxed);
    for b in bad {
        ctx.warn(format!("{what}: line {}: {}", b.line, b.message));
    }
}

impl Source for Exec {
    async fn poll(&mut self, ctx: &Context) -> Result<Vec<Event>> {
        let out = ctx.exec(&self.cmd).await?;
        let (events, bad) = formats::decode_text(self.format, &out.stdout, out.code, &self.name, now_ns());
        report_bad(ctx, &self.cmd.program, &bad);
        if self.format != Format::Nagios && out.code != Some(0) {
            let err = String::from_utf8_lossy(&out.stderr);
            ctx.report_error(format!(
                "{} exited with {}: {}",
                self.cmd.program,
                out.code.map_or("a signal".to_owned(), |c| format!("status {c}")),
                err.lines().next().unwrap_or("").trim()
            ));
        }
        Ok(events)
    }
}

impl Build for Exec {
    type Config = ExecConfig;

    fn build(c: ExecConfig, _: &Context) -> Result<Self, BuildError> {
        let mut cmd = command(&c.command, &c.env, &c.cwd)?;
        cmd.timeout = c.timeout.get();
        Ok(Exec { name: c.name.unwrap_or_else(|| program_name(&c.command)), cmd, format: c.format })
    }
}

/// Settings of the `execd` source.
#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct ExecdConfig {
    /// Program and arguments.
    pub command: Vec<String>,
    /// influx, json, graphite, or prometheus (blocks end at an empty line). Default: influx.
    #[serde(default = "influx")]
    pub format: Format,
    /// Extra environment variables.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Working directory.
    pub cwd: Option<PathBuf>,
    /// Longest line read; longer ones are skipped and counted. Default: 1MiB.
    #[serde(default = "crate::defaults::one_mib")]
    pub max_line: ByteSize,
    /// Time between SIGTERM and SIGKILL when the agent stops. Default: 5s.
    #[serde(default = "crate::defaults::five_seconds")]
    pub stop_timeout: vane_core::Duration,
}

/// What execd reads of its program's output: line protocol record by record
/// (a record may hold line feeds inside its strings), other formats line by
/// line.
enum Output {
    Records(tokio::process::ChildStdout, Records),
    Lines(LimitedLines<tokio::process::ChildStdout>),
}

enum Read {
    Line(Line),
    Records(Vec<std::result::Result<Event, vane_core::lineproto::ParseError>>),
    End,
}

impl Output {
    async fn next(&mut self) -> std::io::Result<Read> {
        use tokio::io::AsyncReadExt;
        match self {
            Output::Lines(lines) => Ok(lines.next_line().await?.map_or(Read::End, Read::Line)),
            Output::Records(out, records) => {
                let end = out.read_buf(records.buffer()).await? == 0;
                let mut got = Vec::new();
                records.decode(end, now_ns(), |r| got.push(r));
                Ok(if end && got.is_empty() { Read::End } else { Read::Records(got) })
            }
        }
    }
}

pub struct Execd {
    cfg: ExecdConfig,
    cmd: Command,
}

fn signal_group(pgid: u32, sig: i32) {
    // SAFETY: killpg only sends a signal to the group the child leads.
    unsafe {
        libc::killpg(pgid as libc::pid_t, sig);
    }
}

impl Execd {
    /// Runs the child once until it exits or the agent stops.
    async fn run_once(&self, ctx: &Context) -> Result<Option<std::process::ExitStatus>, ServiceError> {
        let mut c = tokio::process::Command::new(&self.cmd.program);
        c.args(&self.cmd.args)
            .envs(&self.cmd.env)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true);
        if let Some(d) = &self.cmd.cwd {
            c.current_dir(d);
        }
        let mut child =
            c.spawn().map_err(|e| ServiceError::restart(format!("cannot run {}: {e}", self.cmd.program)))?;
        let pgid = child.id().unwrap_or(0);
        let stdout = child.stdout.take().expect("piped");
        let stderr = child.stderr.take().expect("piped");
        let log_ctx = ctx.clone();
        let program = self.cmd.program.clone();
        let stderr_task = tokio::spawn(async move {
            let mut lines = tokio::io::BufReader::new(stderr).lines();
            while let Ok(Some(l)) = lines.next_line().await {
                log_ctx.info(format!("{program}: {l}"));
            }
        });
        let max = self.cfg.max_line.0 as usize;
        let mut output = if self.cfg.format == Format::Influx {
            Output::Records(stdout, Records::new(Precision::Nanoseconds, max))
        } else {
            Output::Lines(LimitedLines::new(stdout, max))
        };
        let mut n = 0usize;
        let mut block = String::new();
        let stop = ctx.stopping();
        tokio::pin!(stop);
        let status = loop {
            tokio::select! {
                biased;
                _ = &mut stop => {
                    if pgid != 0 {
                        signal_group(pgid, libc::SIGTERM);
                    }
                    let waited = tokio::time::timeout(self.cfg.stop_timeout.get(), child.wait()).await;
                    if waited.is_err() && pgid != 0 {
                        ctx.warn(format!("{} ignored SIGTERM; killing it", self.cmd.program));
                        signal_group(pgid, libc::SIGKILL);
                        let _ = child.wait().await;
                    }
                    break None;
                }
                read = output.next() => {
                    let line = match read {
                        Ok(Read::Line(l)) => l,
                        Ok(Read::Records(rs)) => {
                            let mut evs = Vec::with_capacity(rs.len());
                            for r in rs {
                                match r {
                                    Ok(e) => evs.push(e),
                                    Err(e) => report_bad(ctx, &self.cmd.program, &[Bad { line: e.line, message: format!("column {}: {}", e.column, e.message) }]),
                                }
                            }
                            ctx.emit_all(evs).await;
                            continue;
                        }
                        Ok(Read::End) | Err(_) => break Some(child.wait().await?),
                    };
                    n += 1;
                    let text = match line {
                        Line::Text(t) => t,
                        Line::TooLong { bytes } => {
                            report_bad(ctx, &self.cmd.program, &[Bad { line: n, message: format!("line of {bytes} bytes is longer than max_line; skipped") }]);
                            continue;
                        }
                        Line::NotText => {
                            report_bad(ctx, &self.cmd.program, &[Bad { line: n, message: "not UTF-8 text; skipped".into() }]);
                            continue;
                        }
                    };
                    if self.cfg.format == Format::Prometheus {
                        // A block ends at an empty line.
                        if text.trim().is_empty() || text.trim() == "# EOF" {
                            let (evs, bad) = formats::decode_text(Format::Prometheus, block.as_bytes(), None, "", now_ns());
                            block.clear();
                            report_bad(ctx, &self.cmd.program, &bad);
                            ctx.emit_all(evs).await;
                        } else {
                            block.push_str(&text);
                            block.push('\n');
                        }
                        continue;
                    }
                    match formats::decode_line(self.cfg.format, &text, now_ns()) {
                        Ok(Some(ev)) => ctx.emit(ev).await,
                        Ok(None) => {}
                        Err(message) => report_bad(ctx, &self.cmd.program, &[Bad { line: n, message: message.0 }]),
                    }
                }
            }
        };
        let _ = stderr_task.await;
        Ok(status)
    }
}

impl Service for Execd {
    async fn run(self, ctx: Context) -> Result<(), ServiceError> {
        ctx.ready().await;
        let mut wait = Duration::from_millis(500);
        loop {
            let started = std::time::Instant::now();
            match self.run_once(&ctx).await {
                Ok(None) => return Ok(()),
                Ok(Some(st)) => ctx.report_error(format!("{} exited ({st}); restarting", self.cmd.program)),
                Err(e) => ctx.report_error(e),
            }
            if started.elapsed() > Duration::from_secs(60) {
                wait = Duration::from_millis(500);
            }
            ctx.stats().restarts.fetch_add(1, Relaxed);
            if !ctx.sleep(wait).await {
                return Ok(());
            }
            wait = (wait * 2).min(Duration::from_secs(60));
        }
    }
}

impl Build for Execd {
    type Config = ExecdConfig;

    fn build(cfg: ExecdConfig, _: &Context) -> Result<Self, BuildError> {
        if cfg.format == Format::Nagios {
            return Err(BuildError::stop(
                "execd reads a stream; nagios output comes from one run: use the exec source",
            ));
        }
        let cmd = command(&cfg.command, &cfg.env, &cfg.cwd)?;
        Ok(Execd { cfg, cmd })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vane_core::testing::Harness;

    fn exec(argv: &[&str], format: Format) -> Exec {
        let h = Harness::new("x");
        let cfg = ExecConfig {
            command: argv.iter().map(|s| s.to_string()).collect(),
            format,
            timeout: vane_core::Duration::from_millis(500),
            env: BTreeMap::from([("GREETING".to_owned(), "hi there".to_owned())]),
            cwd: None,
            name: None,
        };
        Exec::build(cfg, h.context()).unwrap()
    }

    #[tokio::test]
    async fn reads_line_protocol_and_keeps_good_lines_around_bad_ones() {
        let h = Harness::new("x");
        let mut e = exec(&["sh", "-c", "echo 'a v=1i'; echo 'oops'; echo 'b msg=\"'\"$GREETING\"'\"'"], Format::Influx);
        let evs = h.poll(&mut e).await.unwrap();
        let names: Vec<&str> = evs.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, vec!["a", "b"]);
        assert_eq!(evs[1].get_field("msg").unwrap().as_str(), Some("hi there"));
        assert_eq!(h.context().stats().bad_lines.load(Relaxed), 1);
    }

    #[tokio::test]
    async fn a_timeout_fails_the_poll() {
        let h = Harness::new("x");
        let mut e = exec(&["sleep", "5"], Format::Influx);
        let started = std::time::Instant::now();
        let err = h.poll(&mut e).await.unwrap_err();
        assert!(err.to_string().contains("timed out after 500ms"), "{err}");
        assert!(started.elapsed() < Duration::from_secs(3));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_child_ignoring_sigterm_is_killed_when_the_agent_stops() {
        let dir = tempfile::tempdir().unwrap();
        let pidfile = dir.path().join("pid");
        let script =
            format!("trap '' TERM; echo $$ > {}; echo 'up v=1i'; while true; do sleep 0.05; done", pidfile.display());
        let h = Harness::new("d");
        let cfg = ExecdConfig {
            command: vec!["sh".into(), "-c".into(), script],
            format: Format::Influx,
            env: BTreeMap::new(),
            cwd: None,
            max_line: ByteSize(1024),
            stop_timeout: vane_core::Duration::from_millis(200),
        };
        let d = Execd::build(cfg, h.context()).unwrap();
        let ctx = h.context().clone();
        let task = tokio::spawn(async move { d.run(ctx).await });
        // The child announces itself with its first event.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while h.take_emitted().is_empty() {
            assert!(std::time::Instant::now() < deadline, "the child never wrote");
            tokio::task::yield_now().await;
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let pid: i32 = std::fs::read_to_string(&pidfile).unwrap().trim().parse().unwrap();
        h.stop();
        tokio::time::timeout(Duration::from_secs(5), task).await.expect("run returns after SIGKILL").unwrap().unwrap();
        let st = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let state = st.rsplit(") ").next().and_then(|s| s.chars().next());
        assert!(st.is_empty() || state == Some('Z'), "child {pid} survived: {st}");
    }
}
