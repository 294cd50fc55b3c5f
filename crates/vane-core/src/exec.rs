//! Running external programs without a shell, in their own process group,
//! with a timeout that kills the whole group.

use std::collections::BTreeMap;
use std::io;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

/// A program to run: an argument list, never a shell line.
#[derive(Clone, Debug)]
pub struct Command {
    pub program: String,
    pub args: Vec<String>,
    pub env: BTreeMap<String, String>,
    pub cwd: Option<PathBuf>,
    pub timeout: Duration,
    pub stdin: Option<Vec<u8>>,
    /// Stop reading each stream after this many bytes (the rest is discarded).
    pub max_output: usize,
}

impl Command {
    pub fn new(program: impl Into<String>) -> Command {
        Command {
            program: program.into(),
            args: Vec::new(),
            env: BTreeMap::new(),
            cwd: None,
            timeout: Duration::from_secs(10),
            stdin: None,
            max_output: 16 << 20,
        }
    }

    /// From an argument list whose first item is the program.
    pub fn from_argv(argv: &[String]) -> io::Result<Command> {
        let (p, rest) =
            argv.split_first().ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "empty command"))?;
        Ok(Command::new(p.clone()).args(rest.iter().cloned()))
    }

    pub fn arg(mut self, a: impl Into<String>) -> Command {
        self.args.push(a.into());
        self
    }

    pub fn args(mut self, a: impl IntoIterator<Item = impl Into<String>>) -> Command {
        self.args.extend(a.into_iter().map(Into::into));
        self
    }

    pub fn env(mut self, k: impl Into<String>, v: impl Into<String>) -> Command {
        self.env.insert(k.into(), v.into());
        self
    }

    pub fn timeout(mut self, d: Duration) -> Command {
        self.timeout = d;
        self
    }
}

/// What a finished program left.
#[derive(Clone, Debug, Default)]
pub struct Output {
    /// Exit code; `None` when a signal ended it.
    pub code: Option<i32>,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

/// Runs `cmd` to completion or until its timeout.
///
/// On timeout the process group is sent SIGKILL and an error of kind
/// `TimedOut` is returned; grandchildren that kept the pipes open die too.
pub async fn run(cmd: &Command) -> io::Result<Output> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let mut c = tokio::process::Command::new(&cmd.program);
    c.args(&cmd.args)
        .envs(&cmd.env)
        .stdin(if cmd.stdin.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    if let Some(d) = &cmd.cwd {
        c.current_dir(d);
    }
    let mut child = c.spawn().map_err(|e| io::Error::new(e.kind(), format!("cannot run {}: {e}", cmd.program)))?;
    let pgid = child.id().map(|p| p as libc::pid_t);
    let mut stdin = child.stdin.take();
    let input = cmd.stdin.clone();
    let mut out = child.stdout.take().expect("piped");
    let mut err = child.stderr.take().expect("piped");
    let limit = cmd.max_output as u64;
    let work = async {
        let feed = async {
            if let (Some(mut s), Some(data)) = (stdin.take(), input) {
                let _ = s.write_all(&data).await;
            }
        };
        let mut o = Vec::new();
        let mut e = Vec::new();
        let read_o = async {
            let _ = (&mut out).take(limit).read_to_end(&mut o).await;
            // Drain the rest so the child never blocks on a full pipe.
            let _ = tokio::io::copy(&mut out, &mut tokio::io::sink()).await;
        };
        let read_e = async {
            let _ = (&mut err).take(limit).read_to_end(&mut e).await;
            let _ = tokio::io::copy(&mut err, &mut tokio::io::sink()).await;
        };
        let ((), (), ()) = tokio::join!(feed, read_o, read_e);
        let status = child.wait().await?;
        io::Result::Ok(Output { code: status.code(), stdout: o, stderr: e })
    };
    match tokio::time::timeout(cmd.timeout, work).await {
        Ok(r) => r,
        Err(_) => {
            if let Some(pg) = pgid {
                // SAFETY: killpg only sends a signal; pg is the group we created.
                unsafe {
                    libc::killpg(pg, libc::SIGKILL);
                }
            }
            Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!(
                    "{} timed out after {}; its process group was killed",
                    cmd.program,
                    crate::duration::Duration(cmd.timeout)
                ),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn captures_output_and_exit_code() {
        let out = run(&Command::new("sh").args(["-c", "echo hi; echo err >&2; exit 3"])).await.unwrap();
        assert_eq!(out.code, Some(3));
        assert_eq!(out.stdout, b"hi\n");
        assert_eq!(out.stderr, b"err\n");
    }

    #[tokio::test]
    async fn feeds_stdin_and_no_shell_is_involved() {
        let mut c = Command::new("cat");
        c.stdin = Some(b"a;b $(x)".to_vec());
        assert_eq!(run(&c).await.unwrap().stdout, b"a;b $(x)");
        let out = run(&Command::new("echo").arg("$HOME;ls")).await.unwrap();
        assert_eq!(out.stdout, b"$HOME;ls\n");
    }

    #[tokio::test]
    async fn timeout_kills_the_whole_group() {
        let dir = std::env::temp_dir().join(format!("vane-exec-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let pidfile = dir.join("grandchild.pid");
        // The grandchild would outlive a kill of the shell alone.
        let script = format!("sleep 30 & echo $! > {}; wait", pidfile.display());
        let err = run(&Command::new("sh").args(["-c", &script]).timeout(Duration::from_millis(300))).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        let pid: i32 = std::fs::read_to_string(&pidfile).unwrap().trim().parse().unwrap();
        // Killed processes may linger as zombies until reaped: check the state.
        let mut gone = false;
        for _ in 0..100 {
            let st = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            let state = st.rsplit(") ").next().and_then(|s| s.chars().next());
            if st.is_empty() || state == Some('Z') {
                gone = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(gone, "grandchild {pid} still running");
        let _ = std::fs::remove_dir_all(dir);
    }

    #[tokio::test]
    async fn missing_program_is_a_clear_error() {
        let err = run(&Command::new("/nonexistent/prog")).await.unwrap_err();
        assert!(err.to_string().contains("cannot run /nonexistent/prog"));
    }
}
