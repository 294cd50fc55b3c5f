//! Host metrics for Linux, read from /proc and statvfs: cpu, memory, swap,
//! disk, diskio, net, load, processes and system.

use std::collections::HashMap;

use procfs::{Current, CurrentSI};
use serde::Deserialize;
use vane_core::prelude::*;

fn proc_err(what: &str, e: procfs::ProcError) -> SourceError {
    SourceError::retry(format!("cannot read {what}: {e}"))
}

fn pct(part: f64, whole: f64) -> f64 {
    if whole > 0.0 { 100.0 * part / whole } else { 0.0 }
}

// ------------------------------------------------------------------ cpu

/// Settings of the `cpu` source.
#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct CpuConfig {
    /// Report each core (tag `cpu=cpuN`). Default: true.
    #[serde(default = "crate::defaults::yes")]
    pub percpu: bool,
    /// Report the total over all cores (tag `cpu=cpu-total`). Default: true.
    #[serde(default = "crate::defaults::yes")]
    pub totalcpu: bool,
}

/// CPU times per core and in total: cumulative seconds as counters
/// (`cpu_time`) and the share of the last interval as gauges (`cpu`,
/// percent). Shares need two samples an interval apart: the first poll
/// reports the counters only.
pub struct Cpu {
    cfg: CpuConfig,
    last: Option<Vec<[f64; 10]>>,
}

fn cpu_times(c: &procfs::CpuTime, tps: f64) -> [f64; 10] {
    let o = |v: Option<u64>| v.unwrap_or(0) as f64 / tps;
    [
        c.user as f64 / tps,
        c.nice as f64 / tps,
        c.system as f64 / tps,
        c.idle as f64 / tps,
        o(c.iowait),
        o(c.irq),
        o(c.softirq),
        o(c.steal),
        o(c.guest),
        o(c.guest_nice),
    ]
}

const CPU_FIELDS: [&str; 10] =
    ["user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal", "guest", "guest_nice"];

fn read_cpu() -> Result<Vec<[f64; 10]>> {
    let ks = procfs::KernelStats::current().map_err(|e| proc_err("/proc/stat", e))?;
    let tps = procfs::ticks_per_second() as f64;
    let mut v = vec![cpu_times(&ks.total, tps)];
    v.extend(ks.cpu_time.iter().map(|c| cpu_times(c, tps)));
    Ok(v)
}

impl Source for Cpu {
    async fn poll(&mut self, _: &Context) -> Result<Vec<Event>> {
        let now = read_cpu()?;
        // None the first time: no window to share out yet.
        let prev = self.last.replace(now.clone()).unwrap_or_default();
        let mut out = Vec::new();
        for (i, t) in now.iter().enumerate() {
            let name = if i == 0 {
                if !self.cfg.totalcpu {
                    continue;
                }
                "cpu-total".to_owned()
            } else {
                if !self.cfg.percpu {
                    continue;
                }
                format!("cpu{}", i - 1)
            };
            let mut times = Event::new("cpu_time").tag("cpu", name.clone()).kind(Kind::Counter);
            for (f, v) in CPU_FIELDS.iter().zip(t) {
                times = times.field(*f, *v);
            }
            out.push(times);
            if let Some(p) = prev.get(i) {
                // guest time is already counted in user time.
                let d: Vec<f64> = t.iter().zip(p).map(|(a, b)| (a - b).max(0.0)).collect();
                let total: f64 = d[..8].iter().sum();
                let mut usage = Event::new("cpu").tag("cpu", name);
                for (f, v) in CPU_FIELDS.iter().zip(&d) {
                    usage = usage.field(format!("usage_{f}"), pct(*v, total));
                }
                usage = usage.field("usage_active", pct(total - d[3] - d[4], total));
                out.push(usage);
            }
        }
        Ok(out)
    }
}

impl Build for Cpu {
    type Config = CpuConfig;

    fn build(cfg: CpuConfig, _: &Context) -> Result<Self, BuildError> {
        Ok(Cpu { cfg, last: None })
    }
}

// ------------------------------------------------------------------ memory and swap

/// Memory in bytes: total, available, used, free, buffers, cached, and percentages.
#[derive(Deserialize)]
pub struct Memory;

impl Source for Memory {
    async fn poll(&mut self, _: &Context) -> Result<Vec<Event>> {
        let m = procfs::Meminfo::current().map_err(|e| proc_err("/proc/meminfo", e))?;
        let available = m.mem_available.unwrap_or(m.mem_free + m.buffers + m.cached);
        let used = m.mem_total.saturating_sub(available);
        Ok(vec![
            Event::new("mem")
                .field("total", m.mem_total)
                .field("available", available)
                .field("used", used)
                .field("free", m.mem_free)
                .field("buffers", m.buffers)
                .field("cached", m.cached)
                .field("used_percent", pct(used as f64, m.mem_total as f64))
                .field("available_percent", pct(available as f64, m.mem_total as f64)),
        ])
    }
}

/// Swap in bytes: total, used, free and used percentage.
#[derive(Deserialize)]
pub struct Swap;

impl Source for Swap {
    async fn poll(&mut self, _: &Context) -> Result<Vec<Event>> {
        let m = procfs::Meminfo::current().map_err(|e| proc_err("/proc/meminfo", e))?;
        let used = m.swap_total.saturating_sub(m.swap_free);
        Ok(vec![
            Event::new("swap")
                .field("total", m.swap_total)
                .field("used", used)
                .field("free", m.swap_free)
                .field("used_percent", pct(used as f64, m.swap_total as f64)),
        ])
    }
}

// ------------------------------------------------------------------ load and system

/// Load averages over 1, 5 and 15 minutes, and the number of CPUs.
#[derive(Deserialize)]
pub struct Load;

/// /proc/loadavg has two decimals; procfs hands them over as f32.
fn two_places(v: f32) -> f64 {
    (v as f64 * 100.0).round() / 100.0
}

fn n_cpus() -> u64 {
    std::thread::available_parallelism().map_or(1, |n| n.get() as u64)
}

impl Source for Load {
    async fn poll(&mut self, _: &Context) -> Result<Vec<Event>> {
        let l = procfs::LoadAverage::current().map_err(|e| proc_err("/proc/loadavg", e))?;
        Ok(vec![
            Event::new("system_load")
                .field("load1", two_places(l.one))
                .field("load5", two_places(l.five))
                .field("load15", two_places(l.fifteen))
                .field("n_cpus", n_cpus()),
        ])
    }
}

/// Uptime, boot time, logged-in users and CPUs.
#[derive(Deserialize)]
pub struct System;

/// Users logged in, from utmp records of type USER_PROCESS.
fn count_users() -> u64 {
    const RECORD: usize = 384; // sizeof(struct utmp) on Linux with glibc
    const USER_PROCESS: i16 = 7;
    let Ok(b) = std::fs::read("/var/run/utmp") else {
        return 0;
    };
    b.chunks_exact(RECORD).filter(|r| i16::from_ne_bytes([r[0], r[1]]) == USER_PROCESS).count() as u64
}

impl Source for System {
    async fn poll(&mut self, _: &Context) -> Result<Vec<Event>> {
        let up = procfs::Uptime::current().map_err(|e| proc_err("/proc/uptime", e))?;
        let boot = procfs::boot_time_secs().map_err(|e| proc_err("/proc/stat", e))?;
        Ok(vec![
            Event::new("system")
                .field("uptime", up.uptime)
                .field("boot_time", boot)
                .field("n_users", count_users())
                .field("n_cpus", n_cpus()),
        ])
    }
}

// ------------------------------------------------------------------ processes

/// Processes counted by state (running, sleeping, blocked, zombies …) and threads.
#[derive(Deserialize)]
pub struct Processes;

impl Source for Processes {
    async fn poll(&mut self, _: &Context) -> Result<Vec<Event>> {
        let counts = tokio::task::spawn_blocking(|| -> Result<[u64; 9]> {
            // running, sleeping, blocked, zombies, stopped, idle, dead, unknown, threads
            let mut c = [0u64; 9];
            let all = procfs::process::all_processes().map_err(|e| proc_err("/proc", e))?;
            for p in all.flatten() {
                // Processes may exit while we look: skip those.
                let Ok(st) = p.stat() else { continue };
                let i = match st.state {
                    'R' => 0,
                    'S' => 1,
                    'D' => 2,
                    'Z' => 3,
                    'T' | 't' => 4,
                    'I' => 5,
                    'X' | 'x' => 6,
                    _ => 7,
                };
                c[i] += 1;
                c[8] += st.num_threads.max(0) as u64;
            }
            Ok(c)
        })
        .await
        .map_err(|e| SourceError::retry(format!("process scan failed: {e}")))??;
        let total: u64 = counts[..8].iter().sum();
        Ok(vec![
            Event::new("processes")
                .field("running", counts[0])
                .field("sleeping", counts[1])
                .field("blocked", counts[2])
                .field("zombies", counts[3])
                .field("stopped", counts[4])
                .field("idle", counts[5])
                .field("dead", counts[6])
                .field("unknown", counts[7])
                .field("total", total)
                .field("total_threads", counts[8]),
        ])
    }
}

// ------------------------------------------------------------------ disk

/// Settings of the `disk` source.
#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct Disk {
    /// Only these mount points. Default: every mount not ignored below.
    #[serde(default)]
    pub mount_points: Vec<String>,
    /// File system types to skip. Default: the pseudo file systems.
    #[serde(default = "default_ignore_fs")]
    pub ignore_fs: Vec<String>,
}

fn default_ignore_fs() -> Vec<String> {
    [
        "tmpfs",
        "devtmpfs",
        "devfs",
        "iso9660",
        "overlay",
        "aufs",
        "squashfs",
        "proc",
        "sysfs",
        "cgroup",
        "cgroup2",
        "devpts",
        "mqueue",
        "debugfs",
        "tracefs",
        "securityfs",
        "pstore",
        "bpf",
        "autofs",
        "hugetlbfs",
        "fusectl",
        "configfs",
        "binfmt_misc",
        "nsfs",
        "rpc_pipefs",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

fn statvfs(path: &str) -> std::io::Result<libc::statvfs> {
    let c = std::ffi::CString::new(path)
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidInput, "NUL in path"))?;
    let mut s: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: c is a valid C string and s a writable statvfs.
    if unsafe { libc::statvfs(c.as_ptr(), &mut s) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(s)
}

impl Source for Disk {
    async fn poll(&mut self, ctx: &Context) -> Result<Vec<Event>> {
        let mounts = procfs::mounts().map_err(|e| proc_err("/proc/mounts", e))?;
        let mut seen = std::collections::HashSet::new();
        let wanted: Vec<(String, String, String)> = mounts
            .into_iter()
            .filter(|m| !self.ignore_fs.contains(&m.fs_vfstype))
            .filter(|m| self.mount_points.is_empty() || self.mount_points.contains(&m.fs_file))
            .filter(|m| seen.insert(m.fs_file.clone()))
            .map(|m| (m.fs_file, m.fs_spec, m.fs_vfstype))
            .collect();
        // statvfs can hang on a dead network mount: keep it off the scheduler.
        let results = tokio::task::spawn_blocking(move || {
            wanted
                .into_iter()
                .map(|(path, dev, fs)| {
                    let r = statvfs(&path);
                    (path, dev, fs, r)
                })
                .collect::<Vec<_>>()
        })
        .await
        .map_err(|e| SourceError::retry(format!("disk scan failed: {e}")))?;
        let mut out = Vec::new();
        for (path, dev, fs, r) in results {
            let s = match r {
                Ok(s) => s,
                Err(e) => {
                    ctx.warn(format!("statvfs {path}: {e}"));
                    continue;
                }
            };
            let f = s.f_frsize as u64;
            let total = s.f_blocks as u64 * f;
            let free = s.f_bavail as u64 * f;
            let used = total.saturating_sub(s.f_bfree as u64 * f);
            let itotal = s.f_files as u64;
            let ifree = s.f_ffree as u64;
            if total == 0 {
                continue;
            }
            let device = dev.rsplit('/').next().unwrap_or(&dev).to_owned();
            out.push(
                Event::new("disk")
                    .tag("path", path)
                    .tag("device", device)
                    .tag("fstype", fs)
                    .field("total", total)
                    .field("free", free)
                    .field("used", used)
                    .field("used_percent", pct(used as f64, (used + free) as f64))
                    .field("inodes_total", itotal)
                    .field("inodes_free", ifree)
                    .field("inodes_used", itotal.saturating_sub(ifree)),
            );
        }
        Ok(out)
    }
}

// ------------------------------------------------------------------ diskio

/// Settings of the `diskio` source.
#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
pub struct Diskio {
    /// Only these devices (names as in /proc/diskstats). Default: all but loop and ram devices.
    #[serde(default)]
    pub devices: Vec<String>,
}

impl Source for Diskio {
    async fn poll(&mut self, _: &Context) -> Result<Vec<Event>> {
        let stats = procfs::diskstats().map_err(|e| proc_err("/proc/diskstats", e))?;
        Ok(stats
            .into_iter()
            .filter(|d| {
                if self.devices.is_empty() {
                    !d.name.starts_with("loop") && !d.name.starts_with("ram")
                } else {
                    self.devices.contains(&d.name)
                }
            })
            .map(|d| {
                Event::new("diskio")
                    .kind(Kind::Counter)
                    .tag("name", d.name)
                    .field("reads", d.reads)
                    .field("writes", d.writes)
                    .field("read_bytes", d.sectors_read * 512)
                    .field("write_bytes", d.sectors_written * 512)
                    .field("read_time_ms", d.time_reading)
                    .field("write_time_ms", d.time_writing)
                    .field("io_time_ms", d.time_in_progress)
                    .field("weighted_io_time_ms", d.weighted_time_in_progress)
                    .field("iops_in_progress", d.in_progress)
            })
            .collect())
    }
}

// ------------------------------------------------------------------ net

/// Settings of the `net` source.
#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
pub struct Net {
    /// Only these interfaces. Default: all.
    #[serde(default)]
    pub interfaces: Vec<String>,
}

impl Source for Net {
    async fn poll(&mut self, _: &Context) -> Result<Vec<Event>> {
        let devs: HashMap<String, procfs::net::DeviceStatus> =
            procfs::net::dev_status().map_err(|e| proc_err("/proc/net/dev", e))?;
        let mut names: Vec<&String> =
            devs.keys().filter(|n| self.interfaces.is_empty() || self.interfaces.contains(n)).collect();
        names.sort();
        Ok(names
            .into_iter()
            .map(|n| {
                let d = &devs[n];
                Event::new("net")
                    .kind(Kind::Counter)
                    .tag("interface", n.as_str())
                    .field("bytes_recv", d.recv_bytes)
                    .field("bytes_sent", d.sent_bytes)
                    .field("packets_recv", d.recv_packets)
                    .field("packets_sent", d.sent_packets)
                    .field("err_in", d.recv_errs)
                    .field("err_out", d.sent_errs)
                    .field("drop_in", d.recv_drop)
                    .field("drop_out", d.sent_drop)
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vane_core::testing::Harness;

    async fn poll<S: Source + Build>(cfg: S::Config) -> Vec<Event> {
        let h = Harness::new("t");
        let mut s = S::build(cfg, h.context()).unwrap();
        h.poll(&mut s).await.unwrap()
    }

    fn f(e: &Event, k: &str) -> f64 {
        e.get_field(k).and_then(Value::as_f64).unwrap_or_else(|| panic!("no field {k}"))
    }

    #[tokio::test]
    async fn cpu_reports_counters_and_percentages_per_core_and_total() {
        let h = Harness::new("t");
        let mut cpu = Cpu::build(CpuConfig { percpu: true, totalcpu: true }, h.context()).unwrap();
        let first = h.poll(&mut cpu).await.unwrap();
        let cores = n_cpus() as usize;
        assert_eq!(first.len(), cores + 1, "the first poll has counters only");
        assert!(first.iter().all(|e| e.name == "cpu_time"));
        // A window of a second: ~100 ticks a core, a meaningful share.
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        let ev = h.poll(&mut cpu).await.unwrap();
        let times: Vec<_> = ev.iter().filter(|e| e.name == "cpu_time").collect();
        let usage: Vec<_> = ev.iter().filter(|e| e.name == "cpu").collect();
        assert_eq!(times.len(), cores + 1);
        assert_eq!(usage.len(), cores + 1);
        assert!(times.iter().all(|e| e.kind == Kind::Counter));
        assert_eq!(usage[0].get_tag("cpu"), Some("cpu-total"));
        let active = f(usage[0], "usage_active");
        assert!((0.0..=100.0).contains(&active), "{active}");
        let sum: f64 = ["user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal"]
            .iter()
            .map(|k| f(usage[0], &format!("usage_{k}")))
            .sum();
        assert!(sum == 0.0 || (sum - 100.0).abs() < 0.01, "{sum}");
    }

    #[tokio::test]
    async fn memory_is_consistent() {
        let ev = poll::<Memory>(Memory).await;
        let m = &ev[0];
        assert!(f(m, "total") > 0.0);
        assert!(f(m, "used") + f(m, "available") <= f(m, "total") + 1.0);
        assert!(f(m, "used_percent") <= 100.0);
    }

    #[tokio::test]
    async fn load_system_and_processes_report() {
        let l = poll::<Load>(Load).await;
        assert!(f(&l[0], "load1") >= 0.0);
        let s = poll::<System>(System).await;
        assert!(f(&s[0], "uptime") > 0.0);
        assert!(f(&s[0], "boot_time") > 1e9);
        let p = poll::<Processes>(Processes).await;
        // This test's own process is running.
        assert!(f(&p[0], "total") >= 1.0);
        assert!(f(&p[0], "total_threads") >= f(&p[0], "total"));
    }

    #[tokio::test]
    async fn disk_net_and_diskio_honour_filters() {
        let d = poll::<Disk>(Disk { mount_points: vec!["/".into()], ignore_fs: vec![] }).await;
        assert_eq!(d.len(), 1, "{d:?}");
        assert_eq!(d[0].get_tag("path"), Some("/"));
        assert!(f(&d[0], "total") >= f(&d[0], "used"));
        let n = poll::<Net>(Net { interfaces: vec!["lo".into()] }).await;
        assert_eq!(n.len(), 1);
        assert_eq!(n[0].get_tag("interface"), Some("lo"));
        let io = poll::<Diskio>(Diskio::default()).await;
        assert!(io.iter().all(|e| !e.get_tag("name").unwrap().starts_with("loop")));
    }
}
