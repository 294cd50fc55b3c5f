//! Counters kept for every job, read by the `internal` source, and the one
//! place a job's warnings and errors are logged: counted, and rate-limited
//! so one job cannot flood the log.

use std::fmt::Display;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

/// Counters kept for every job.
#[derive(Debug, Default)]
pub struct JobStats {
    pub polls: AtomicU64,
    pub poll_errors: AtomicU64,
    pub poll_timeouts: AtomicU64,
    pub overruns: AtomicU64,
    pub panics: AtomicU64,
    pub restarts: AtomicU64,
    pub events_in: AtomicU64,
    pub events_out: AtomicU64,
    pub events_dropped: AtomicU64,
    pub errors: AtomicU64,
    pub warnings: AtomicU64,
    /// Sink delivery: attempts, failed attempts, batches given up.
    pub send_attempts: AtomicU64,
    pub send_failures: AtomicU64,
    pub send_giveups: AtomicU64,
    /// What a sink's buffer holds now, and corrupt records it skipped.
    pub buffer_events: AtomicU64,
    pub buffer_bytes: AtomicU64,
    pub buffer_skipped: AtomicU64,
    /// When the buffer operation under way began (ms since the Unix epoch;
    /// 0 when none is): how long a stalled disk has held the sink.
    pub buffer_busy_since: AtomicU64,
    /// Lines of input that could not be read (bad output, bad protocol lines).
    pub bad_lines: AtomicU64,
    /// Messages that were not for this job (a notification no meter names),
    /// taken and let go.
    pub ignored: AtomicU64,
    /// Events whose level expressions named something the event lacks.
    pub levels_unknown: AtomicU64,
    pub poll_ns_total: AtomicU64,
    pub poll_ns_last: AtomicU64,
    /// Time an engine spent in its `process` and `beat` calls.
    pub work_ns_total: AtomicU64,
    /// Shared by every instance of the job, across restarts.
    pub log_limit: LogLimit,
    /// Gauges of the plugin's own (a board's series and memory), by name.
    pub figures: Figures,
}

/// A plugin's own gauges (`Context::set_figure`), reported by the
/// `internal` source as the fields of a `vane_plugin` event.
#[derive(Debug, Default)]
pub struct Figures(std::sync::Mutex<Vec<(&'static str, u64)>>);

impl Figures {
    pub fn set(&self, name: &'static str, value: u64) {
        let mut f = self.0.lock().expect("not poisoned");
        match f.iter_mut().find(|(n, _)| *n == name) {
            Some(slot) => slot.1 = value,
            None => f.push((name, value)),
        }
    }

    /// Every figure set, in the order first set.
    pub fn all(&self) -> Vec<(&'static str, u64)> {
        self.0.lock().expect("not poisoned").clone()
    }
}

impl JobStats {
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Relaxed);
    }

    /// Logs a warning of job `job`, counted.
    pub fn warn(&self, job: &str, msg: impl Display) {
        Self::add(&self.warnings, 1);
        if self.admit(job) {
            tracing::warn!(job = %job, "{}", clip(msg.to_string()));
        }
    }

    /// Logs an error of job `job`, counted; it never stops the job.
    pub fn report_error(&self, job: &str, err: impl Display) {
        Self::add(&self.errors, 1);
        if self.admit(job) {
            tracing::error!(job = %job, "{}", clip(err.to_string()));
        }
    }

    fn admit(&self, job: &str) -> bool {
        let (log, left_out) = self.log_limit.admit();
        if left_out > 0 {
            tracing::warn!(
                job = %job,
                "{left_out} more warnings and errors in the last minute were not logged \
                 (the internal source counts them all)"
            );
        }
        log
    }
}

/// The longest message a job logs, in bytes; the rest is cut, saying so.
pub const MAX_LOG_LINE: usize = 4 << 10;

/// `msg` cut to [`MAX_LOG_LINE`] bytes (at a character boundary).
pub fn clip(mut msg: String) -> String {
    if msg.len() > MAX_LOG_LINE {
        let mut at = MAX_LOG_LINE;
        while !msg.is_char_boundary(at) {
            at -= 1;
        }
        let cut = msg.len() - at;
        msg.truncate(at);
        msg.push_str(&format!("… ({cut} more bytes not logged)"));
    }
    msg
}

/// Keeps one job's warnings and errors from flooding the log: at most
/// [`LogLimit::PER_MINUTE`] lines a minute, then one line saying how many
/// were left out. Counting is not affected.
#[derive(Debug, Default)]
pub struct LogLimit {
    state: std::sync::Mutex<(Option<Instant>, u32, u64)>,
}

impl LogLimit {
    pub const PER_MINUTE: u32 = 10;

    /// Whether to log this line; the second value is the number of lines
    /// left out in the window that just ended.
    fn admit(&self) -> (bool, u64) {
        let now = Instant::now();
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let (start, count, dropped) = &mut *st;
        let mut ended = 0;
        if start.is_none_or(|s| now.duration_since(s) >= Duration::from_secs(60)) {
            *start = Some(now);
            *count = 0;
            ended = std::mem::take(dropped);
        }
        *count += 1;
        if *count <= Self::PER_MINUTE {
            (true, ended)
        } else {
            *dropped += 1;
            (false, ended)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_limit_admits_ten_a_minute() {
        let l = LogLimit::default();
        let admitted = (0..25).filter(|_| l.admit().0).count();
        assert_eq!(admitted, LogLimit::PER_MINUTE as usize);
        // Pretend the window is over: the next line reports what was left out.
        l.state.lock().unwrap().0 = Some(Instant::now() - Duration::from_secs(61));
        assert_eq!(l.admit(), (true, 15));
    }

    #[test]
    fn long_messages_are_cut_at_a_character() {
        assert_eq!(clip("short".into()), "short");
        let long = format!("{}é{}", "x".repeat(MAX_LOG_LINE - 1), "y".repeat(10_000));
        let c = clip(long);
        assert!(c.len() < MAX_LOG_LINE + 40, "{}", c.len());
        assert!(c.ends_with("… (10002 more bytes not logged)"), "{}", &c[c.len() - 40..]);
    }

    #[test]
    fn errors_are_counted_even_when_not_logged() {
        let s = JobStats::default();
        for _ in 0..30 {
            s.report_error("j", "boom");
        }
        assert_eq!(s.errors.load(Relaxed), 30);
    }
}
