//! Defaults that come from outside the config: the built-in config of
//! `vane run` without `-c`, the machine's host name, the data folder.

use std::path::PathBuf;

/// The built-in config of `vane run` without `-c`: host metrics every 10 s,
/// kept in the local history and shown on the host board.
pub const DEFAULT_CONFIG: &str = "\
# vane's built-in config: host metrics every 10 s, kept in the local history
# (under agent.data_dir) and shown on the host board, served on the agent's
# HTTP port: http://127.0.0.1:8686/ unless VANE_HTTP names another address.
agent:
  http: ${VANE_HTTP:-127.0.0.1:8686}
sources:
  - { id: cpu, plugin: cpu }
  - { id: memory, plugin: memory }
  - { id: swap, plugin: swap }
  - { id: disk, plugin: disk }
  - { id: diskio, plugin: diskio }
  - { id: net, plugin: net }
  - { id: load, plugin: load }
  - { id: processes, plugin: processes }
  - { id: system, plugin: system }
  - { id: internal, plugin: internal }
sinks:
  - { id: board, plugin: board }
  # Every event on standard output as InfluxDB line protocol too: uncomment.
  # - { id: stdout, plugin: stdout, config: { format: influx } }
";

/// The machine's host name.
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_owned())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

/// The folder the service manager made for the agent (systemd's
/// `StateDirectory=`), else `/var/lib/vane` as root, else the user's state
/// folder.
pub fn data_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("STATE_DIRECTORY").filter(|d| !d.is_empty()) {
        // Several are separated by colons; the first is the agent's.
        let d = PathBuf::from(d);
        let first = d.to_str().and_then(|s| s.split(':').next()).map(PathBuf::from);
        return first.unwrap_or(d);
    }
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        return PathBuf::from("/var/lib/vane");
    }
    std::env::var_os("XDG_STATE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/state")))
        .unwrap_or_else(std::env::temp_dir)
        .join("vane")
}
