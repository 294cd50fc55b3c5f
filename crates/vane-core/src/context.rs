//! What every plugin instance gets from the runtime: its identity and config,
//! emitting events, logging and error reporting counted per job, the agent's
//! lifecycle, running programs and adding tasks of its own.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use tokio::sync::watch;

use crate::config::Node;
use crate::event::Event;
use crate::exec::{Command, Output};
use crate::plugin::{BoxFuture, Result};

/// Where emitted events go (the runtime's router; a buffer in tests).
pub trait Outlet: Send + Sync + 'static {
    /// Hands events on; waits while the next queue is full.
    fn send(&self, events: Vec<Event>) -> BoxFuture<'_, ()>;

    /// Hands events on if that needs no waiting; gives them back otherwise.
    fn try_send(&self, events: Vec<Event>) -> Option<Vec<Event>> {
        Some(events)
    }

    /// Hands events on with acknowledgements that follow them to the sinks.
    /// An outlet that does not track them lets them go (acknowledged) at once.
    fn send_batch(&self, batch: Batch) -> BoxFuture<'_, ()> {
        drop(batch.acks);
        self.send(batch.events)
    }
}

/// Events on their way, with the acknowledgements that travel with them.
#[derive(Default)]
pub struct Batch {
    pub events: Vec<Event>,
    pub acks: Vec<Ack>,
    /// The room the events take in the queue they are on; given back when
    /// the receiver takes them (the runtime's bound on queued events).
    pub budget: Option<tokio::sync::OwnedSemaphorePermit>,
}

impl From<Vec<Event>> for Batch {
    fn from(events: Vec<Event>) -> Batch {
        Batch {
            events,
            ..Batch::default()
        }
    }
}

/// An end-to-end acknowledgement: every copy of it follows the events to a
/// sink, which lets it go once it has stored them (and, for a disk buffer,
/// synced them). When the last copy goes, the emitter learns whether all
/// went well ([`Ack::fail`] was not called on any copy).
#[derive(Clone)]
pub struct Ack(Arc<AckInner>);

struct AckInner {
    failed: std::sync::atomic::AtomicBool,
    done: std::sync::Mutex<Option<tokio::sync::oneshot::Sender<bool>>>,
}

impl Drop for AckInner {
    fn drop(&mut self) {
        if let Some(tx) = self.done.lock().map(|mut d| d.take()).unwrap_or(None) {
            let _ = tx.send(!self.failed.load(Relaxed));
        }
    }
}

impl Ack {
    /// An acknowledgement and where its outcome arrives.
    pub fn new() -> (Ack, tokio::sync::oneshot::Receiver<bool>) {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let inner = AckInner {
            failed: std::sync::atomic::AtomicBool::new(false),
            done: std::sync::Mutex::new(Some(tx)),
        };
        (Ack(Arc::new(inner)), rx)
    }

    /// The events were not stored (dropped by a full buffer, or nowhere to go).
    pub fn fail(&self) {
        self.0.failed.store(true, Relaxed);
    }
}

/// A task added by a plugin, called on its own interval.
pub type Task = Box<dyn FnMut(Context) -> BoxFuture<'static, Result<()>> + Send>;

/// Runs the tasks plugins add (the runtime's scheduler).
pub trait Spawner: Send + Sync + 'static {
    fn spawn_task(&self, ctx: Context, name: String, every: Duration, task: Task);
}

/// What an HTTP route answers.
#[derive(Clone, Debug)]
pub struct HttpResponse {
    pub status: u16,
    pub content_type: String,
    pub body: String,
}

/// A GET route on the agent's HTTP port.
pub type HttpHandler = Arc<dyn Fn() -> HttpResponse + Send + Sync>;

/// The agent's HTTP port (`agent.http`), as plugins see it.
pub trait Routes: Send + Sync + 'static {
    /// Serves `path`; false when the path is taken.
    fn add(&self, path: &str, handler: HttpHandler) -> bool;
}

/// The agent's own figures, for the `internal` source.
pub trait Introspect: Send + Sync + 'static {
    fn report(&self, now_ns: i64) -> Vec<Event>;
}

/// Counters kept for every job; read by the `internal` source.
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
    /// Lines of input that could not be read (bad output, bad protocol lines).
    pub bad_lines: AtomicU64,
    /// Events whose level expressions named something the event lacks.
    pub levels_unknown: AtomicU64,
    pub poll_ns_total: AtomicU64,
    pub poll_ns_last: AtomicU64,
    /// Shared by every instance of the job, across restarts.
    pub log_limit: LogLimit,
}

impl JobStats {
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Relaxed);
    }
}

/// The agent's lifecycle as a plugin sees it.
#[derive(Clone, Debug)]
pub struct Lifecycle {
    ready: watch::Receiver<bool>,
    stop: watch::Receiver<bool>,
}

/// The runtime's side of [`Lifecycle`].
#[derive(Debug)]
pub struct LifecycleControl {
    ready: watch::Sender<bool>,
    stop: watch::Sender<bool>,
}

impl Default for LifecycleControl {
    fn default() -> Self {
        LifecycleControl {
            ready: watch::channel(false).0,
            stop: watch::channel(false).0,
        }
    }
}

impl LifecycleControl {
    pub fn lifecycle(&self) -> Lifecycle {
        Lifecycle {
            ready: self.ready.subscribe(),
            stop: self.stop.subscribe(),
        }
    }

    pub fn set_ready(&self) {
        self.ready.send_replace(true);
    }

    pub fn stop(&self) {
        self.stop.send_replace(true);
    }

    pub fn is_stopping(&self) -> bool {
        *self.stop.borrow()
    }
}

impl Lifecycle {
    /// Resolves once every job is built and every sink prepared.
    pub async fn ready(&self) {
        let mut r = self.ready.clone();
        let _ = r.wait_for(|v| *v).await;
    }

    /// Resolves when the agent starts stopping.
    pub async fn stopping(&self) {
        let mut s = self.stop.clone();
        let _ = s.wait_for(|v| *v).await;
    }

    pub fn is_stopping(&self) -> bool {
        *self.stop.borrow()
    }
}

/// Keeps one job's warnings and errors from flooding the log: at most
/// [`LogLimit::PER_MINUTE`] lines a minute, then one line saying how many
/// were left out. Counting is not affected.
#[derive(Debug, Default)]
pub struct LogLimit {
    state: std::sync::Mutex<(Option<std::time::Instant>, u32, u64)>,
}

impl LogLimit {
    pub const PER_MINUTE: u32 = 10;

    /// Whether to log this line; the second value is the number of lines
    /// left out in the window that just ended.
    fn admit(&self) -> (bool, u64) {
        let now = std::time::Instant::now();
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

/// Everything a [`Context`] is built from.
pub struct ContextParts {
    pub job: String,
    pub plugin: String,
    pub host: String,
    pub data_dir: PathBuf,
    pub config: Node,
    pub stats: Arc<JobStats>,
    pub lifecycle: Lifecycle,
    pub outlet: Arc<dyn Outlet>,
    pub spawner: Arc<dyn Spawner>,
    pub introspect: Option<Arc<dyn Introspect>>,
    /// The agent's HTTP port, when `agent.http` is set.
    pub routes: Option<Arc<dyn Routes>>,
}

/// A plugin instance's handle on the agent. Cheap to clone.
#[derive(Clone)]
pub struct Context {
    inner: Arc<ContextParts>,
}

impl Context {
    pub fn new(parts: ContextParts) -> Context {
        Context {
            inner: Arc::new(parts),
        }
    }

    /// The job's unique id.
    pub fn job(&self) -> &str {
        &self.inner.job
    }

    /// The plugin's registered name.
    pub fn plugin(&self) -> &str {
        &self.inner.plugin
    }

    /// The agent's host name (events without a host get it).
    pub fn host(&self) -> &str {
        &self.inner.host
    }

    /// A folder this job may keep state in (`agent.data_dir/JOB`); not created until used.
    pub fn data_dir(&self) -> PathBuf {
        self.inner.data_dir.join(&self.inner.job)
    }

    /// The agent's data folder.
    pub fn agent_data_dir(&self) -> &Path {
        &self.inner.data_dir
    }

    /// The job's raw `config:` block, for plugins that read it themselves.
    pub fn config(&self) -> &Node {
        &self.inner.config
    }

    pub fn stats(&self) -> &JobStats {
        &self.inner.stats
    }

    /// The shared counters, for the runtime.
    pub fn stats_arc(&self) -> &Arc<JobStats> {
        &self.inner.stats
    }

    pub fn lifecycle(&self) -> &Lifecycle {
        &self.inner.lifecycle
    }

    /// Sends one event on, at any time (not only when polled).
    pub async fn emit(&self, event: Event) {
        self.emit_all(vec![event]).await
    }

    /// Sends events on; waits while the next queue is full.
    pub async fn emit_all(&self, events: Vec<Event>) {
        if events.is_empty() {
            return;
        }
        JobStats::add(&self.inner.stats.events_out, events.len() as u64);
        if let Some(events) = self.inner.outlet.try_send(events) {
            self.inner.outlet.send(events).await
        }
    }

    /// Sends events on and waits until every sink they reach has stored
    /// them: in its disk buffer, synced, or in its memory buffer. False when
    /// some were dropped on the way (a full buffer with `when_full: drop_*`,
    /// no sink at all). For listeners whose protocol has an answer (HTTP).
    pub async fn emit_acked(&self, events: Vec<Event>) -> bool {
        let (ack, done) = Ack::new();
        JobStats::add(&self.inner.stats.events_out, events.len() as u64);
        self.inner
            .outlet
            .send_batch(Batch {
                events,
                acks: vec![ack],
                budget: None,
            })
            .await;
        done.await.unwrap_or(false)
    }

    /// Sends events on with the acknowledgements they carry (the runtime's
    /// engines pass on what they were given).
    pub async fn forward(&self, events: Vec<Event>, acks: Vec<Ack>) {
        if acks.is_empty() {
            return self.emit_all(events).await;
        }
        JobStats::add(&self.inner.stats.events_out, events.len() as u64);
        self.inner
            .outlet
            .send_batch(Batch {
                events,
                acks,
                budget: None,
            })
            .await
    }

    /// Waits until the agent is ready (every job built, sinks prepared).
    pub async fn ready(&self) {
        self.inner.lifecycle.ready().await
    }

    /// Resolves when the agent starts stopping; loops should end then.
    pub async fn stopping(&self) {
        self.inner.lifecycle.stopping().await
    }

    pub fn is_stopping(&self) -> bool {
        self.inner.lifecycle.is_stopping()
    }

    /// Sleeps, or returns early when the agent stops. True while running:
    /// `while ctx.sleep(every).await { … }`.
    pub async fn sleep(&self, d: Duration) -> bool {
        if self.is_stopping() {
            return false;
        }
        tokio::select! {
            _ = tokio::time::sleep(d) => !self.is_stopping(),
            _ = self.stopping() => false,
        }
    }

    pub fn debug(&self, msg: impl AsRef<str>) {
        tracing::debug!(job = %self.inner.job, "{}", msg.as_ref());
    }

    pub fn info(&self, msg: impl AsRef<str>) {
        tracing::info!(job = %self.inner.job, "{}", msg.as_ref());
    }

    /// Logs a warning, counted for the job.
    pub fn warn(&self, msg: impl AsRef<str>) {
        JobStats::add(&self.inner.stats.warnings, 1);
        if self.admit() {
            tracing::warn!(job = %self.inner.job, "{}", msg.as_ref());
        }
    }

    /// Reports an error: logged and counted for the job; never stops it.
    pub fn report_error(&self, err: impl std::fmt::Display) {
        JobStats::add(&self.inner.stats.errors, 1);
        if self.admit() {
            tracing::error!(job = %self.inner.job, "{err}");
        }
    }

    fn admit(&self) -> bool {
        let (log, left_out) = self.inner.stats.log_limit.admit();
        if left_out > 0 {
            tracing::warn!(
                job = %self.inner.job,
                "{left_out} more warnings and errors in the last minute were not logged \
                 (the internal source counts them all)"
            );
        }
        log
    }

    /// Runs a program without a shell; on timeout its whole process group is killed.
    pub async fn exec(&self, cmd: &Command) -> std::io::Result<Output> {
        crate::exec::run(cmd).await
    }

    /// Adds a task called every `every`, concurrently with the job's other tasks.
    ///
    /// Tasks stop when the agent stops or the instance is restarted. Their
    /// errors are reported and counted like poll errors.
    pub fn add_task<F, Fut>(&self, name: impl Into<String>, every: Duration, mut f: F)
    where
        F: FnMut(Context) -> Fut + Send + 'static,
        Fut: Future<Output = Result<()>> + Send + 'static,
    {
        let task: Task = Box::new(move |ctx| Box::pin(f(ctx)));
        self.inner
            .spawner
            .spawn_task(self.clone(), name.into(), every, task);
    }

    /// The agent's own figures, when the runtime offers them.
    pub fn introspect(&self) -> Option<&Arc<dyn Introspect>> {
        self.inner.introspect.as_ref()
    }

    /// Serves a GET route on the agent's HTTP port. `None` when the agent
    /// has no HTTP port (`agent.http` unset); `Some(false)` when taken.
    pub fn serve(&self, path: &str, handler: HttpHandler) -> Option<bool> {
        self.inner.routes.as_ref().map(|r| r.add(path, handler))
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
        l.state.lock().unwrap().0 = Some(std::time::Instant::now() - Duration::from_secs(61));
        assert_eq!(l.admit(), (true, 15));
    }

    #[tokio::test]
    async fn errors_are_counted_even_when_not_logged() {
        let h = crate::testing::Harness::new("j");
        for _ in 0..30 {
            h.context().report_error("boom");
        }
        assert_eq!(h.context().stats().errors.load(Relaxed), 30);
    }
}
