//! What every plugin instance gets from the runtime, as verbs: its identity
//! and config, emitting events, logging and error reporting counted per
//! job, the agent's lifecycle, running programs, adding tasks of its own and
//! serving a route. How a runtime provides them is in [`crate::runtime`].

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::ack::{Ack, Batch};
use crate::board::{Board, BoardError, Boards};
use crate::error::SourceError;
use crate::event::{Event, State, Value};
use crate::exec::{Command, Output};
use crate::http::HttpHandler;
use crate::lifecycle::Lifecycle;
use crate::node::Node;
use crate::runtime::{Introspect, Parts, Task};
use crate::stats::JobStats;

/// A plugin instance's handle on the agent. Cheap to clone.
#[derive(Clone)]
pub struct Context {
    inner: Arc<Parts>,
}

impl From<Parts> for Context {
    fn from(parts: Parts) -> Context {
        Context { inner: Arc::new(parts) }
    }
}

impl Context {
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

    /// The job's counters (a listener counts its bad lines here).
    pub fn stats(&self) -> &JobStats {
        &self.inner.stats
    }

    pub fn lifecycle(&self) -> &Lifecycle {
        &self.inner.lifecycle
    }

    /// A check result named after the job: a gauge `value` with a state and
    /// a description (Duct's `createEvent(state, description, metric)`).
    /// The job's levels, when it has some, judge it again on its way out.
    pub fn event(&self, state: State, description: impl Into<String>, metric: impl Into<Value>) -> Event {
        Event::gauge(self.job(), metric).state(state).description(description)
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
        self.emit_tracked(events).await.await
    }

    /// Sends events on (waiting only while the next queue is full) and
    /// returns what [`Context::emit_acked`] would wait for: true once every
    /// sink they reach has stored them. For sources that keep many
    /// deliveries in flight (a message bus with a prefetch window).
    pub async fn emit_tracked(&self, events: Vec<Event>) -> impl Future<Output = bool> + Send + 'static {
        let (ack, done) = Ack::new();
        JobStats::add(&self.inner.stats.events_out, events.len() as u64);
        self.inner.outlet.send_batch(Batch { events, acks: vec![ack] }).await;
        async move { done.await.unwrap_or(false) }
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
        tracing::debug!(job = %self.inner.job, "{}", crate::stats::clip(msg.as_ref().to_owned()));
    }

    pub fn info(&self, msg: impl AsRef<str>) {
        tracing::info!(job = %self.inner.job, "{}", crate::stats::clip(msg.as_ref().to_owned()));
    }

    /// Logs a warning, counted for the job.
    pub fn warn(&self, msg: impl AsRef<str>) {
        self.inner.stats.warn(&self.inner.job, msg.as_ref());
    }

    /// Sets a gauge of the job's own (`history_series`, `memory_bytes`…),
    /// reported by the `internal` source in a `vane_plugin` event.
    pub fn set_figure(&self, name: &'static str, value: u64) {
        self.inner.stats.figures.set(name, value);
    }

    /// Reports an error: logged and counted for the job; never stops it.
    pub fn report_error(&self, err: impl std::fmt::Display) {
        self.inner.stats.report_error(&self.inner.job, err);
    }

    /// Runs a program without a shell; on timeout its whole process group is killed.
    pub async fn exec(&self, cmd: &Command) -> std::io::Result<Output> {
        crate::exec::run(cmd).await
    }

    /// Adds a task called every `every`, concurrently with the job's other tasks.
    ///
    /// Tasks start once the agent is ready and stop when it stops or the
    /// instance is restarted. Their errors are reported and counted like
    /// poll errors; a run that takes longer than `every` is cut short.
    pub fn add_task<F, Fut>(&self, name: impl Into<String>, every: Duration, mut f: F)
    where
        F: FnMut(Context) -> Fut + Send + 'static,
        Fut: Future<Output = Result<(), SourceError>> + Send + 'static,
    {
        let ctx = self.clone();
        let task: Task = Box::new(move || Box::pin(f(ctx.clone())));
        self.inner.spawner.spawn_task(name.into(), every, task);
    }

    /// The agent's own figures, when the runtime offers them.
    pub fn introspect(&self) -> Option<&Arc<dyn Introspect>> {
        self.inner.introspect.as_ref()
    }

    /// Serves a GET route on the agent's HTTP port. `None` when the agent
    /// has no HTTP port (`agent.http` unset); `Some(false)` when taken.
    pub fn serve(&self, path: &str, handler: HttpHandler) -> Option<bool> {
        self.inner.routes.as_ref().map(|r| r.add(&self.inner.job, path, handler))
    }

    /// Gets board `name` or creates it from `template` (YAML, as read from
    /// `origin`, e.g. the plugin's name), its flows tagged `prefix` + the
    /// template's tags; the job owns it. An error when the config has no
    /// `board` sink, or the template does not read.
    pub fn board(&self, name: &str, prefix: &str, template: &str, origin: &str) -> Result<Board, BoardError> {
        let desk = self.inner.boards.clone();
        let board = desk.open(name, prefix, template, origin, self.job())?;
        Ok(board.through(desk))
    }

    /// Posts `data` to flow `flow` (its full tag, prefix included) of
    /// whichever board has it; returns at once. False when none has it.
    pub fn post_flow(&self, flow: &str, data: serde_json::Value) -> bool {
        self.inner.boards.get().is_some_and(|b| b.post(flow, data))
    }

    /// Offers boards to every job (the `board` sink does); false when
    /// another job offered first.
    pub fn offer_boards(&self, boards: Arc<dyn Boards>) -> bool {
        self.inner.boards.offer(self.job(), boards)
    }
}
