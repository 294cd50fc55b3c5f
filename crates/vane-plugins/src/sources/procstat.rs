//! The `procstat` source: CPU, memory, file descriptors and threads of the
//! processes chosen by name, by a pattern on the command line, or by a pid
//! file; plus one `procstat_lookup` event with how many were found, so a
//! level can alert when a process is gone (`critical: "pids == 0"`).

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Instant;

use serde::Deserialize;
use vane_core::prelude::*;

/// Settings of the `procstat` source (at least one way to choose).
#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct ProcstatConfig {
    /// The process name as the kernel knows it (`comm`, 15 bytes at most).
    pub name: Option<String>,
    /// A regular expression matched against the whole command line.
    pub pattern: Option<vane_core::regex::Regex>,
    /// A file holding the pid.
    pub pid_file: Option<PathBuf>,
}

pub struct Procstat {
    cfg: ProcstatConfig,
    /// Per pid: CPU seconds at the previous poll and when.
    last: HashMap<i32, (f64, Instant)>,
    tps: f64,
    page: u64,
}

fn selector(c: &ProcstatConfig) -> String {
    if let Some(n) = &c.name {
        format!("name={n}")
    } else if let Some(p) = &c.pattern {
        format!("pattern={p}")
    } else if let Some(f) = &c.pid_file {
        format!("pid_file={}", f.display())
    } else {
        String::new()
    }
}

impl Source for Procstat {
    async fn poll(&mut self, _: &Context) -> Result<Vec<Event>> {
        let pids = self.find()?;
        let sel = selector(&self.cfg);
        let now = Instant::now();
        let mut out = Vec::new();
        let mut seen = HashMap::new();
        for p in pids {
            // A process may end between listing and reading: it is simply not reported.
            let Ok(stat) = p.stat() else { continue };
            let cpu = (stat.utime + stat.stime) as f64 / self.tps;
            let mut e = Event::new("procstat")
                .tag("selector", sel.clone())
                .tag("process_name", stat.comm.clone())
                .tag("pid", p.pid.to_string())
                .field("cpu_time", cpu)
                .field("memory_rss", (stat.rss * self.page) as i64)
                .field("memory_vms", stat.vsize as i64)
                .field("threads", stat.num_threads);
            if let Some((prev, at)) = self.last.get(&p.pid) {
                let secs = now.duration_since(*at).as_secs_f64();
                if secs > 0.0 {
                    e = e.field("cpu_usage", 100.0 * (cpu - prev).max(0.0) / secs);
                }
            }
            if let Ok(n) = p.fd_count() {
                e = e.field("fds", n as i64);
            }
            if let Ok(io) = p.io() {
                e = e.field("read_bytes", io.read_bytes as i64).field("write_bytes", io.write_bytes as i64);
            }
            seen.insert(p.pid, (cpu, now));
            out.push(e);
        }
        let found = out.len() as i64;
        self.last = seen;
        out.push(Event::new("procstat_lookup").tag("selector", sel).field("pids", found));
        Ok(out)
    }
}

impl Build for Procstat {
    type Config = ProcstatConfig;

    fn build(cfg: ProcstatConfig, _: &Context) -> Result<Self, BuildError> {
        let chosen = [cfg.name.is_some(), cfg.pattern.is_some(), cfg.pid_file.is_some()];
        if chosen.iter().filter(|c| **c).count() != 1 {
            return Err(BuildError::stop("set exactly one of `name`, `pattern` and `pid_file`"));
        }
        Ok(Procstat { cfg, last: HashMap::new(), tps: procfs::ticks_per_second() as f64, page: procfs::page_size() })
    }
}

impl Procstat {
    fn find(&self) -> Result<Vec<procfs::process::Process>> {
        if let Some(f) = &self.cfg.pid_file {
            let text = match std::fs::read_to_string(f) {
                Ok(t) => t,
                // No pid file: the process is not running.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(vec![]),
                Err(e) => return Err(format!("{}: {e}", f.display()).into()),
            };
            let pid: i32 =
                text.trim().parse().map_err(|_| format!("{}: {:?} is not a pid", f.display(), text.trim()))?;
            return Ok(procfs::process::Process::new(pid).ok().into_iter().collect());
        }
        let all = procfs::process::all_processes().map_err(|e| format!("/proc: {e}"))?;
        let me = std::process::id() as i32;
        Ok(all
            .filter_map(|p| p.ok())
            .filter(|p| p.pid != me)
            .filter(|p| {
                if let Some(n) = &self.cfg.name {
                    p.stat().is_ok_and(|s| &s.comm == n)
                } else if let Some(re) = &self.cfg.pattern {
                    p.cmdline().is_ok_and(|c| !c.is_empty() && re.is_match(&c.join(" ")))
                } else {
                    false
                }
            })
            .collect())
    }
}
