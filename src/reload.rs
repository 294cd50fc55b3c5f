//! Reloading the running agent: SIGHUP makes it read its config again (and
//! `conf.d/`); a config with errors is refused whole, its errors logged as
//! `vane check` prints them, and the agent goes on as it was. `vane run`
//! writes its pid to `DATA_DIR/vane.pid`, which `vane reload` signals.
//! With `agent.watch: true` a change to the config's files reloads too.

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

/// How often `agent.watch` looks at the config's files.
const WATCH_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// A file's modification time, size and inode.
type Stat = (std::time::SystemTime, u64, u64);

/// What the config's files are now: the main file and each `conf.d/*.yaml`
/// beside it, by name, with their modification time, size and inode. Two
/// equal fingerprints mean no file was written, added or removed between.
fn fingerprint(path: &Path) -> Vec<(PathBuf, Option<Stat>)> {
    use std::os::unix::fs::MetadataExt;
    let stat =
        |p: &Path| std::fs::metadata(p).ok().map(|m| (m.modified().unwrap_or(std::time::UNIX_EPOCH), m.len(), m.ino()));
    let mut files = vec![(path.to_path_buf(), stat(path))];
    // A folder that cannot be listed counts as empty here: the reload that
    // change brings fails on it and logs why.
    for p in vane_runtime::config::confd_files(path).unwrap_or_default() {
        let s = stat(&p);
        files.push((p, s));
    }
    files
}

/// Reads the config again at every SIGHUP and, with `agent.watch`, when its
/// files change (and then stay unchanged for a second, so that a file read
/// while an editor writes it is not taken half-written), and sends it on
/// when valid.
pub fn on_hangup(
    path: Option<PathBuf>,
    registry: Arc<Registry>,
    watch: bool,
) -> anyhow::Result<mpsc::Receiver<Config>> {
    use anyhow::Context as _;
    let mut hup = signal(SignalKind::hangup()).context("installing the SIGHUP handler")?;
    let (tx, rx) = mpsc::channel(1);
    tokio::spawn(async move {
        let shown = path.as_deref().unwrap_or(Path::new("<built-in config>")).display().to_string();
        let mut watch = watch && path.is_some();
        // What the files were when last read, and at the last look.
        let (mut read_as, mut last) = (path.as_deref().map(fingerprint), None);
        let mut tick = tokio::time::interval(WATCH_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                got = hup.recv() => {
                    if got.is_none() {
                        return;
                    }
                    tracing::info!("reload: reading {shown}");
                }
                _ = tick.tick(), if watch => {
                    let Some(p) = &path else { continue };
                    let now = fingerprint(p);
                    let settled = last.as_ref() == Some(&now);
                    last = Some(now);
                    if !settled || read_as == last {
                        continue;
                    }
                    tracing::info!("reload: a config file changed (agent.watch); reading {shown}");
                }
            }
            read_as = path.as_deref().map(fingerprint);
            let read = match &path {
                Some(p) => vane_runtime::load(p, &registry),
                None => vane_runtime::default_config(&registry),
            };
            match read {
                Ok(c) => {
                    watch = c.agent.watch.unwrap_or(false) && path.is_some();
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
