//! The agent's own figures as events, for the `internal` source: per job
//! counters, each engine's pace, queue depths, and the process's memory
//! and uptime.

use std::collections::HashMap;
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
    /// Each job's id, plugin, role and counters (a reload changes them).
    pub jobs: Mutex<Vec<Job>>,
    /// Each queue's id, a sender that does not keep it open, and its capacity.
    pub queues: Mutex<Vec<(String, WeakSender<Queued>, usize)>>,
    /// Each engine's events in and work time at the last report.
    pub last: Mutex<HashMap<String, Mark>>,
}

/// A job's id, plugin, role and counters.
pub type Job = (String, String, &'static str, Arc<JobStats>);

/// An engine's counters when last reported.
#[derive(Clone, Copy)]
pub struct Mark {
    at: Instant,
    events_in: u64,
    work_ns: u64,
}

impl Introspection {
    pub fn new(jobs: Vec<Job>) -> Introspection {
        Introspection {
            started: Instant::now(),
            jobs: Mutex::new(jobs),
            queues: Mutex::default(),
            last: Mutex::default(),
        }
    }

    /// The jobs of the config a reload applied.
    pub fn set_jobs(&self, jobs: Vec<Job>) {
        *self.jobs.lock().expect("not poisoned") = jobs;
    }

    /// An engine's pace since the last report (Canopsis's engine figures):
    /// events a second, and seconds of work an event.
    fn pace(&self, id: &str, s: &JobStats, now: Instant) -> Event {
        let mark = Mark { at: now, events_in: get(&s.events_in), work_ns: get(&s.work_ns_total) };
        let mut last = self.last.lock().expect("not poisoned");
        let before = last.insert(id.to_owned(), mark).unwrap_or(Mark { at: self.started, events_in: 0, work_ns: 0 });
        let events = mark.events_in.saturating_sub(before.events_in);
        let secs = now.duration_since(before.at).as_secs_f64();
        let work = mark.work_ns.saturating_sub(before.work_ns) as f64 / 1e9;
        Event::new("vane_engine")
            .tag("job", id)
            .field("events_per_second", if secs > 0.0 { events as f64 / secs } else { 0.0 })
            .field("seconds_per_event", if events > 0 { work / events as f64 } else { 0.0 })
    }
}

impl Introspection {
    /// Reports the depth of `id`'s queue (in place of the one it had before a reload).
    pub fn add_queue(&self, id: &str, tx: &Tx) {
        let q = (id.to_owned(), tx.downgrade(), tx.max_capacity());
        let mut queues = self.queues.lock().expect("not poisoned");
        queues.retain(|(i, ..)| i != id);
        queues.push(q);
    }

    /// Stops reporting `id`'s queue: a reload removed its job.
    pub fn remove_queue(&self, id: &str) {
        self.queues.lock().expect("not poisoned").retain(|(i, ..)| i != id);
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
        let jobs = self.jobs.lock().expect("not poisoned");
        let mut out = Vec::with_capacity(jobs.len() + queues.len() + 1);
        for (id, plugin, role, s) in jobs.iter() {
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
                    .field("poll_seconds_last", get(&s.poll_ns_last) as f64 / 1e9)
                    .field("work_seconds_total", get(&s.work_ns_total) as f64 / 1e9),
            );
        }
        for (id, plugin, _, s) in jobs.iter() {
            let figures = s.figures.all();
            if figures.is_empty() {
                continue;
            }
            let mut e = Event::new("vane_plugin").at(now).tag("job", id.as_str()).tag("plugin", plugin.as_str());
            for (name, v) in figures {
                e = e.field(name, v);
            }
            out.push(e);
        }
        let at = Instant::now();
        for (id, _, role, s) in jobs.iter() {
            if *role == "engine" {
                out.push(self.pace(id, s, at).at(now));
            }
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
                .field("jobs", jobs.len() as u64),
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_engines_pace_is_since_the_last_report() {
        let s = Arc::new(JobStats::default());
        let i = Introspection::new(vec![
            ("e".into(), "p".into(), "engine", s.clone()),
            ("s".into(), "p".into(), "source", Arc::default()),
        ]);
        let pace = |evs: Vec<Event>| {
            let e = evs.into_iter().find(|e| e.name == "vane_engine").expect("engines report their pace");
            assert_eq!(e.get_tag("job"), Some("e"));
            let f = |k| e.get_field(k).and_then(|v| v.as_f64()).unwrap();
            (f("events_per_second"), f("seconds_per_event"))
        };
        s.events_in.store(100, Relaxed);
        s.work_ns_total.store(1_000_000_000, Relaxed);
        let (rate, per) = pace(i.report(0));
        assert!(rate > 0.0 && (per - 0.01).abs() < 1e-9, "{rate} {per}");
        // Since then: 50 more events in half a second of work.
        s.events_in.store(150, Relaxed);
        s.work_ns_total.store(1_500_000_000, Relaxed);
        let (_, per) = pace(i.report(0));
        assert!((per - 0.01).abs() < 1e-9, "{per}");
        assert_eq!(pace(i.report(0)), (0.0, 0.0), "nothing since");
        assert_eq!(i.report(0).iter().filter(|e| e.name == "vane_engine").count(), 1, "only engines");
    }
}
