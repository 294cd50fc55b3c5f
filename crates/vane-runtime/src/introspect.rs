//! The agent's own figures as events, for the `internal` source: per job
//! counters, queue depths, and the process's memory and uptime.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tokio::sync::mpsc::WeakSender;
use vane_core::event::{Event, Kind};
use vane_core::runtime::Introspect;
use vane_core::stats::JobStats;

use crate::queue::{Queued, Tx};

/// What the agent reports about itself.
pub struct Introspection {
    pub started: Instant,
    /// Each job's id, plugin, role and counters.
    pub jobs: Vec<(String, String, &'static str, Arc<JobStats>)>,
    /// Each queue's id, a sender that does not keep it open, and its capacity.
    pub queues: Mutex<Vec<(String, WeakSender<Queued>, usize)>>,
}

impl Introspection {
    /// Reports the depth of `id`'s queue.
    pub fn add_queue(&self, id: &str, tx: &Tx) {
        let q = (id.to_owned(), tx.downgrade(), tx.max_capacity());
        self.queues.lock().expect("not poisoned").push(q);
    }
}

fn get(a: &AtomicU64) -> u64 {
    a.load(Relaxed)
}

/// Resident set size of this process in bytes, from /proc/self/statm.
pub fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    pages * page.max(4096) as u64
}

impl Introspect for Introspection {
    fn report(&self, now: i64) -> Vec<Event> {
        let queues = self.queues.lock().expect("not poisoned");
        let mut out = Vec::with_capacity(self.jobs.len() + queues.len() + 1);
        for (id, plugin, role, s) in &self.jobs {
            out.push(
                Event::new("vane_job")
                    .at(now)
                    .kind(Kind::Counter)
                    .tag("job", id.as_str())
                    .tag("plugin", plugin.as_str())
                    .tag("role", *role)
                    .field("polls", get(&s.polls))
                    .field("poll_errors", get(&s.poll_errors))
                    .field("poll_timeouts", get(&s.poll_timeouts))
                    .field("overruns", get(&s.overruns))
                    .field("panics", get(&s.panics))
                    .field("restarts", get(&s.restarts))
                    .field("events_in", get(&s.events_in))
                    .field("events_out", get(&s.events_out))
                    .field("events_dropped", get(&s.events_dropped))
                    .field("errors", get(&s.errors))
                    .field("warnings", get(&s.warnings))
                    .field("levels_unknown", get(&s.levels_unknown))
                    .field("bad_lines", get(&s.bad_lines))
                    .field("ignored", get(&s.ignored))
                    .field("send_attempts", get(&s.send_attempts))
                    .field("send_failures", get(&s.send_failures))
                    .field("send_giveups", get(&s.send_giveups))
                    .field("buffer_events", get(&s.buffer_events))
                    .field("buffer_bytes", get(&s.buffer_bytes))
                    .field("buffer_skipped", get(&s.buffer_skipped))
                    .field("buffer_stalled_seconds", crate::buffer_io::stalled_for(s).as_secs_f64())
                    .field("poll_seconds_total", get(&s.poll_ns_total) as f64 / 1e9)
                    .field("poll_seconds_last", get(&s.poll_ns_last) as f64 / 1e9),
            );
        }
        for (id, weak, cap) in queues.iter() {
            let depth = weak.upgrade().map(|tx| cap - tx.capacity()).unwrap_or(0);
            out.push(
                Event::new("vane_queue")
                    .at(now)
                    .tag("queue", id.as_str())
                    .field("depth", depth as u64)
                    .field("capacity", *cap as u64),
            );
        }
        out.push(
            Event::new("vane_agent")
                .at(now)
                .field("rss_bytes", rss_bytes())
                .field("uptime_seconds", self.started.elapsed().as_secs_f64())
                .field("jobs", self.jobs.len() as u64),
        );
        out
    }
}
