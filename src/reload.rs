//! Reloading the running agent: SIGHUP makes it read its config again (and
//! `conf.d/`); a config with errors is refused whole, its errors logged as
//! `vane check` prints them, and the agent goes on as it was. `vane run`
//! writes its pid to `DATA_DIR/vane.pid`, which `vane reload` signals.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc;
use vane_core::registry::Registry;
use vane_runtime::Config;

/// Where the agent of `config` keeps its pid.
pub fn pid_file(config: &Config) -> PathBuf {
    config.data_dir.join("vane.pid")
}

/// The running agent's pid file, removed at exit ([`PidFile::remove`]).
pub struct PidFile(Option<PathBuf>);

impl PidFile {
    /// Writes this process's pid for `vane reload`; a warning when it cannot.
    pub fn write(config: &Config) -> PidFile {
        let path = pid_file(config);
        let written = std::fs::create_dir_all(&config.data_dir)
            .and_then(|()| std::fs::write(&path, format!("{}\n", std::process::id())));
        match written {
            Ok(()) => PidFile(Some(path)),
            Err(e) => {
                tracing::warn!("cannot write {}: {e}; `vane reload` will not find this agent", path.display());
                PidFile(None)
            }
        }
    }
}

impl PidFile {
    /// Removes the file, on a thread of its own: the data folder's disk may
    /// not answer (a frozen disk), and the agent must exit all the same.
    pub fn remove(self) {
        if let Some(p) = self.0 {
            std::thread::spawn(move || std::fs::remove_file(p));
        }
    }
}

/// The name a process runs as (`/proc/PID/comm`).
fn name_of(pid: &str) -> Option<String> {
    std::fs::read_to_string(format!("/proc/{pid}/comm")).ok().map(|n| n.trim().to_owned())
}

/// Reads the config again at every SIGHUP and sends it on when valid.
pub fn on_hangup(path: Option<PathBuf>, registry: Arc<Registry>) -> anyhow::Result<mpsc::Receiver<Config>> {
    use anyhow::Context as _;
    let mut hup = signal(SignalKind::hangup()).context("installing the SIGHUP handler")?;
    let (tx, rx) = mpsc::channel(1);
    tokio::spawn(async move {
        while hup.recv().await.is_some() {
            let shown = path.as_deref().unwrap_or(Path::new("<built-in config>")).display().to_string();
            tracing::info!("reload: reading {shown}");
            let read = match &path {
                Some(p) => vane_runtime::load(p, &registry),
                None => vane_runtime::default_config(&registry),
            };
            match read {
                Ok(c) => {
                    if tx.send(c).await.is_err() {
                        return;
                    }
                }
                Err(errors) => {
                    for e in &errors {
                        if e.mark.is_some() {
                            tracing::error!("reload refused: {e}");
                        } else {
                            tracing::error!("reload refused: {shown}: {e}");
                        }
                    }
                    tracing::error!(
                        "reload refused: {} error{} in the configuration; the agent goes on with the config it has",
                        errors.len(),
                        if errors.len() == 1 { "" } else { "s" }
                    );
                }
            }
        }
    });
    Ok(rx)
}

/// `vane reload`: sends SIGHUP to the agent whose pid file `config` names.
pub fn signal_running(config: &Config) -> ExitCode {
    let path = pid_file(config);
    let pid = match std::fs::read_to_string(&path) {
        Ok(text) => match text.trim().parse::<i32>() {
            Ok(pid) if pid > 0 => pid,
            _ => {
                eprintln!("error: {}: not a pid: {:?}", path.display(), text.trim());
                return ExitCode::from(1);
            }
        },
        Err(e) => {
            eprintln!("error: {}: {e} (is the agent running with this config?)", path.display());
            return ExitCode::from(1);
        }
    };
    // A pid file left by an agent that died may name another process by
    // now: SIGHUP would end most of them.
    let (theirs, ours) = (name_of(&pid.to_string()), name_of("self"));
    if theirs != ours {
        eprintln!(
            "error: {}: pid {pid} is {}, not {}: the agent is not running (a stale pid file)",
            path.display(),
            theirs.map_or("no process".to_owned(), |n| format!("`{n}`")),
            ours.unwrap_or_default()
        );
        return ExitCode::from(1);
    }
    // SAFETY: kill has no memory preconditions; it only sends a signal.
    if unsafe { libc::kill(pid, libc::SIGHUP) } != 0 {
        let e = std::io::Error::last_os_error();
        eprintln!("error: signalling pid {pid} (from {}): {e}", path.display());
        return ExitCode::from(1);
    }
    println!("reload: signalled pid {pid}; the agent's log says what it applied");
    ExitCode::SUCCESS
}
