//! Ceilometer's compute-agent examples. `CPUPollster`: for each process on
//! the host, a cumulative `cpu` counter (seconds) and an `instance` gauge of
//! 1, tagged with resource, user and project ids. `InstanceNotifications`:
//! declares the event types it wants and turns each such notification into
//! samples; here notifications arrive as JSON lines in a file (the message
//! bus comes later).

use std::os::unix::fs::MetadataExt;

use serde::Deserialize;
use tokio::io::AsyncBufReadExt;
use vane_core::prelude::*;

/// Settings of `CPUPollster`.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct CpuPollsterConfig {
    /// Project id put on every sample. Default: `default`.
    pub project_id: Option<String>,
    /// Only processes with these names (`comm`). Default: all.
    #[serde(default)]
    pub names: Vec<String>,
}

/// Per-process cpu time, as Ceilometer's CPUPollster does per instance.
pub struct CpuPollster {
    project: String,
    names: Vec<String>,
}

/// (name, utime + stime in ticks) from /proc/PID/stat.
fn proc_cpu(stat: &str) -> Option<(String, u64)> {
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let name = stat[open + 1..close].to_owned();
    let rest: Vec<&str> = stat[close + 2..].split_whitespace().collect();
    // After the name: state is field 3; utime and stime are fields 14 and 15.
    let utime: u64 = rest.get(11)?.parse().ok()?;
    let stime: u64 = rest.get(12)?.parse().ok()?;
    Some((name, utime + stime))
}

impl Source for CpuPollster {
    async fn poll(&mut self, _: &Context) -> Result<Vec<Event>> {
        // SAFETY: sysconf has no preconditions.
        let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
        let mut out = Vec::new();
        for entry in std::fs::read_dir("/proc")?.flatten() {
            let pid = entry.file_name().to_string_lossy().into_owned();
            if !pid.bytes().all(|b| b.is_ascii_digit()) {
                continue;
            }
            // Processes come and go while we look: skip the ones gone.
            let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
                continue;
            };
            let Some((name, cpu)) = proc_cpu(&stat) else {
                continue;
            };
            if !self.names.is_empty() && !self.names.contains(&name) {
                continue;
            }
            let uid = entry.metadata().map(|m| m.uid()).unwrap_or(0);
            let tag = |e: Event| {
                e.tag("resource_id", format!("{name}-{pid}"))
                    .tag("user_id", uid.to_string())
                    .tag("project_id", self.project.clone())
            };
            out.push(tag(Event::counter("cpu", cpu as f64 / ticks)));
            out.push(tag(Event::gauge("instance", 1i64)));
        }
        Ok(out)
    }
}

impl Build for CpuPollster {
    type Config = CpuPollsterConfig;

    fn build(c: CpuPollsterConfig, _: &Context) -> Result<Self, BuildError> {
        Ok(CpuPollster { project: c.project_id.unwrap_or_else(|| "default".into()), names: c.names })
    }
}

/// Settings of `InstanceNotifications`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotificationsConfig {
    /// A file of JSON notifications, one a line (read from its start, then followed).
    pub path: std::path::PathBuf,
}

/// Turns instance notifications into samples.
pub struct InstanceNotifications {
    path: std::path::PathBuf,
}

impl InstanceNotifications {
    /// The notifications this plugin wants.
    pub const EVENT_TYPES: [&'static str; 3] =
        ["compute.instance.create.end", "compute.instance.exists", "compute.instance.delete.start"];

    /// Samples for one notification; none when its type is not wanted.
    pub fn process_notification(n: &serde_json::Value) -> std::result::Result<Vec<Event>, vane_core::Invalid> {
        let kind = n["event_type"].as_str().ok_or(vane_core::Invalid::from("no event_type"))?;
        if !Self::EVENT_TYPES.contains(&kind) {
            return Ok(vec![]);
        }
        let p = &n["payload"];
        let id = |k: &str| p[k].as_str().map(str::to_owned).ok_or(vane_core::Invalid(format!("payload has no {k}")));
        let (resource, user, project) = (id("instance_id")?, id("user_id")?, id("tenant_id")?);
        let tag = |e: Event| {
            e.tag("resource_id", resource.clone())
                .tag("user_id", user.clone())
                .tag("project_id", project.clone())
                .tag("event_type", kind)
        };
        let mut out = vec![tag(Event::gauge("instance", 1i64))];
        for (field, name) in [("memory_mb", "memory"), ("vcpus", "vcpus"), ("root_gb", "disk.root.size")] {
            if let Some(v) = p[field].as_f64() {
                out.push(tag(Event::gauge(name, v)));
            }
        }
        Ok(out)
    }
}

impl Service for InstanceNotifications {
    async fn run(self, ctx: Context) -> Result<(), ServiceError> {
        let f = tokio::fs::File::open(&self.path).await?;
        let mut lines = tokio::io::BufReader::new(f).lines();
        let mut n = 0;
        loop {
            let line = tokio::select! {
                l = lines.next_line() => l?,
                _ = ctx.stopping() => return Ok(()),
            };
            let Some(line) = line else {
                // At the end: wait for more to be written.
                if !ctx.sleep(std::time::Duration::from_millis(200)).await {
                    return Ok(());
                }
                continue;
            };
            n += 1;
            let parsed = serde_json::from_str(&line).map_err(|e| vane_core::Invalid(e.to_string()));
            match parsed.and_then(|v| Self::process_notification(&v)) {
                Ok(evs) => ctx.emit_all(evs).await,
                Err(e) => ctx.warn(format!("{} line {n}: {e}", self.path.display())),
            }
        }
    }
}

impl Build for InstanceNotifications {
    type Config = NotificationsConfig;

    fn build(c: NotificationsConfig, _: &Context) -> Result<Self, BuildError> {
        Ok(InstanceNotifications { path: c.path })
    }
}
