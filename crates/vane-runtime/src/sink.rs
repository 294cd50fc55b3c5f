//! Running a sink job: two halves around the sink's buffer. The intake
//! gathers events into batches (`batch_size`, `batch_bytes`, `batch_wait`,
//! or the latest of each series per `submission_interval`) and stores them,
//! applying `when_full`; the delivery builds and prepares the sink, then
//! sends the oldest batch until it succeeds and only then removes it.
//!
//! A failure is honoured as its [`SinkAction`] says: `Retry` waits with the
//! runtime's backoff (100 ms doubling to 30 s) and tries again, until
//! `retry_for` if set; `GiveUp` gives the batch up, counted; `Stop` stops
//! the sink: a disk buffer keeps what it holds for the next start, and what
//! a memory buffer held or the intake receives from then on is dropped and
//! counted (acknowledgements fail). A panic is a retry.
//!
//! The buffer is shared with the agent ([`SharedStore`]): when a reload
//! rebuilds the sink, its `handoff` is set, and once its queue has closed
//! (everything it received is stored) the delivery stops after the batch in
//! hand, which it delivers or gives back, and its successor goes on from
//! the same buffer.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use tokio::sync::{Notify, oneshot, watch};
use tokio::time::Instant;
use vane_core::ack::{Ack, Batch};
use vane_core::context::Context;
use vane_core::error::{BuildAction, BuildError, SinkAction, SinkError};
use vane_core::event::Event;
use vane_core::instance::DynSink;

use crate::buffer::{Pushed, Store, WhenFull};
use crate::buffer_io::{BufferIo, SharedStore};
use crate::config::SinkJob;
use crate::guard::{Backoff, CatchUnwind, catch};
use crate::queue::Rx;

/// Builds an instance of one sink job.
pub type BuildSink = Arc<dyn Fn(&Context) -> Result<Box<dyn DynSink>, BuildError> + Send + Sync>;

/// One sink's task, and what it needs.
pub struct SinkTask {
    pub job: Arc<SinkJob>,
    pub ctx: Context,
    pub build: BuildSink,
    pub store: SharedStore,
    /// Told once the sink has tried to prepare its backend (the agent's readiness).
    pub prepared: oneshot::Sender<()>,
    /// Set when a reload rebuilds the sink: once its queue has closed, it
    /// stops delivering and leaves what its buffer holds to its successor.
    pub handoff: watch::Receiver<bool>,
}

/// The buffer the halves share, and their signals.
struct Shared {
    store: BufferIo,
    /// Something was stored.
    data: Notify,
    /// Something was removed.
    space: Notify,
    /// The intake's queue closed and everything it had is stored.
    closed: AtomicBool,
    /// Set with `closed`, for waiting on it.
    ended: watch::Sender<bool>,
    /// The sink stopped for good: the intake drops what arrives.
    stopped: AtomicBool,
}

impl SinkTask {
    /// Runs until the sink's queue closes and its buffer is empty (or the
    /// sink stopped). `first` is the instance built at start-up.
    pub async fn run(self, first: Option<Box<dyn DynSink>>, rx: Rx) {
        let shared = Shared {
            store: BufferIo::shared(self.store, self.ctx.clone()),
            data: Notify::new(),
            space: Notify::new(),
            closed: AtomicBool::new(false),
            ended: watch::channel(false).0,
            stopped: AtomicBool::new(false),
        };
        let delivery =
            Delivery { job: &self.job, ctx: &self.ctx, shared: &shared, build: &self.build, handoff: self.handoff };
        tokio::join!(intake(&self.job, &self.ctx, &shared, rx), delivery.run(first, self.prepared));
    }
}

/// Reports the buffer's levels and what it skipped.
fn report(ctx: &Context, s: &mut dyn Store) {
    let stats = ctx.stats();
    stats.buffer_events.store(s.events(), Relaxed);
    stats.buffer_bytes.store(s.bytes(), Relaxed);
    let (records, bytes) = s.take_skipped();
    if records > 0 {
        stats.buffer_skipped.fetch_add(records, Relaxed);
        ctx.report_error(format!("buffer: skipped {records} corrupt or torn records ({bytes} bytes)"));
    }
}

async fn intake(job: &SinkJob, ctx: &Context, shared: &Shared, mut rx: Rx) {
    let stats = ctx.stats();
    let spec = &job.spec;
    let mut batch: Vec<Event> = Vec::with_capacity(spec.batch_size);
    let mut batch_bytes = 0u64;
    let mut deadline: Option<Instant> = None;
    let mut got = Vec::with_capacity(256);
    // submission_interval: the latest event per series, in first-seen order.
    let mut latest: HashMap<String, usize> = HashMap::new();
    let mut submission = spec.submission_interval.map(|d| {
        let mut t = tokio::time::interval_at(Instant::now() + d, d);
        t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        t
    });
    let store = |batch: Vec<Event>| store_batch(shared, ctx, batch, spec.buffer.when_full);
    loop {
        tokio::select! {
            // Take every waiting batch at once: one wake-up for a burst of polls.
            n = rx.recv_many(&mut got, 256) => {
                if n == 0 {
                    break;
                }
                if shared.stopped.load(Relaxed) {
                    for q in got.drain(..) {
                        stats.events_in.fetch_add(q.batch.events.len() as u64, Relaxed);
                        stats.events_dropped.fetch_add(q.batch.events.len() as u64, Relaxed);
                        q.batch.acks.iter().for_each(Ack::fail);
                    }
                    continue;
                }
                if submission.is_some() {
                    // Coalescing replaces events: acknowledged on receipt.
                    for ev in got.drain(..).flat_map(|q| q.batch.events) {
                        stats.events_in.fetch_add(1, Relaxed);
                        match latest.get(&ev.series_key()) {
                            Some(&i) => batch[i] = ev,
                            None => {
                                latest.insert(ev.series_key(), batch.len());
                                batch.push(ev);
                            }
                        }
                    }
                    continue;
                }
                // The acknowledgements of this burst, and whether all of
                // their events were stored: one sync answers them all.
                let (mut waiting, mut stored) = (Vec::new(), true);
                for q in got.drain(..) {
                    let Batch { events, acks } = q.batch;
                    stats.events_in.fetch_add(events.len() as u64, Relaxed);
                    if batch.is_empty() {
                        deadline = Some(Instant::now() + spec.batch_wait);
                        batch_bytes = 0;
                    }
                    let before = batch.len();
                    if batch.is_empty() {
                        // A listener's batch is as large as a sink's: kept
                        // whole, not copied event by event.
                        batch = events;
                    } else {
                        batch.extend(events);
                    }
                    waiting.extend(acks);
                    // The bytes are counted only while the count is short:
                    // a full batch is stored whatever its size.
                    let full = batch.len() >= spec.batch_size || {
                        batch_bytes += crate::buffer::size_of(&batch[before..]);
                        batch_bytes >= spec.batch_bytes
                    };
                    if full {
                        stored &= store(std::mem::take(&mut batch)).await;
                        deadline = None;
                    }
                }
                if !waiting.is_empty() {
                    // Acknowledged events are stored now, not at batch_wait.
                    if !batch.is_empty() {
                        stored &= store(std::mem::take(&mut batch)).await;
                        deadline = None;
                    }
                    let synced = shared.store.run(|s| s.sync()).await;
                    if let Err(e) = &synced {
                        ctx.report_error(format!("buffer: sync failed: {e}"));
                    }
                    if !stored || synced.is_err() {
                        waiting.iter().for_each(Ack::fail);
                    }
                }
            }
            _ = async { tokio::time::sleep_until(deadline.expect("guarded")).await }, if deadline.is_some() => {
                store(std::mem::take(&mut batch)).await;
                deadline = None;
            }
            _ = async { submission.as_mut().expect("guarded").tick().await }, if submission.is_some() => {
                latest.clear();
                if !batch.is_empty() {
                    store(std::mem::take(&mut batch)).await;
                }
            }
        }
    }
    if !batch.is_empty() {
        store(batch).await;
    }
    shared.closed.store(true, Relaxed);
    shared.ended.send_replace(true);
    shared.data.notify_one();
}

/// Stores a batch (waiting for room under `when_full: block`); false when
/// it was dropped or could not be stored.
async fn store_batch(shared: &Shared, ctx: &Context, mut batch: Vec<Event>, when_full: WhenFull) -> bool {
    let mut stored = true;
    loop {
        if shared.stopped.load(Relaxed) {
            ctx.stats().events_dropped.fetch_add(batch.len() as u64, Relaxed);
            return false;
        }
        let wait = shared.space.notified();
        let n = batch.len() as u64;
        let c = ctx.clone();
        let r = shared
            .store
            .run(move |s| {
                let r = s.push(batch);
                c.stats().buffer_events.store(s.events(), Relaxed);
                c.stats().buffer_bytes.store(s.bytes(), Relaxed);
                r
            })
            .await;
        match r {
            Ok(Pushed::Stored) => break,
            Ok(Pushed::Dropped(n)) => {
                ctx.stats().events_dropped.fetch_add(n, Relaxed);
                ctx.warn(format!("buffer full: {n} events dropped"));
                // drop_oldest made room by dropping older events and kept these.
                stored = when_full != WhenFull::DropNewest;
                break;
            }
            Ok(Pushed::Full(b)) => {
                batch = b;
                wait.await;
            }
            // The disk did not take it: as a full buffer would, hold it (and
            // everything behind it) until it does, or drop it, counted.
            Ok(Pushed::Failed(b, why)) if when_full == WhenFull::Block => {
                ctx.report_error(format!("buffer: cannot store a batch ({why}); holding it and trying again"));
                batch = b;
                tokio::select! {
                    _ = wait => {}
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
            }
            Ok(Pushed::Failed(b, why)) => {
                ctx.stats().events_dropped.fetch_add(b.len() as u64, Relaxed);
                ctx.report_error(format!("buffer: cannot store a batch ({why}): {} events dropped", b.len()));
                return false;
            }
            Err(e) => {
                ctx.stats().events_dropped.fetch_add(n, Relaxed);
                ctx.report_error(format!("buffer: cannot store a batch: {e}: {n} events dropped"));
                return false;
            }
        }
    }
    shared.data.notify_one();
    stored
}

/// How a try of building or preparing a sink failed.
enum Failure {
    /// To be tried again after a backoff; why.
    Again(String),
    /// For good: the sink stops; why.
    Stop(String),
}

/// Why tries ended without a result.
#[derive(Debug, PartialEq, Eq)]
enum Ended {
    /// The sink stopped for good.
    Stopped,
    /// The agent is stopping, or a reload handed the sink over.
    Stopping,
}

/// The delivery half.
struct Delivery<'a> {
    job: &'a SinkJob,
    ctx: &'a Context,
    shared: &'a Shared,
    build: &'a BuildSink,
    handoff: watch::Receiver<bool>,
}

impl Delivery<'_> {
    /// Resolves once a reload handed the sink over and its queue closed:
    /// it delivers no more, its buffer goes to its successor.
    async fn handed_over(&self) {
        let mut h = self.handoff.clone();
        if h.wait_for(|v| *v).await.is_err() {
            return std::future::pending().await;
        }
        let _ = self.shared.ended.subscribe().wait_for(|v| *v).await;
    }

    fn is_handed_over(&self) -> bool {
        *self.handoff.borrow() && self.shared.closed.load(Relaxed)
    }

    async fn run(&self, first: Option<Box<dyn DynSink>>, prepared: oneshot::Sender<()>) {
        let mut prepared = Some(prepared);
        let sink = match first {
            Some(s) => Some(s),
            None => self.build_sink(&mut prepared).await,
        };
        let delivered = match sink {
            Some(mut s) => {
                let go_on = self.prepare(&mut *s, &mut prepared).await;
                if go_on {
                    self.deliver(&mut *s).await;
                }
                Some(s)
            }
            None => None,
        };
        drop(prepared);
        if let Err(e) = self.shared.store.run(|s| s.sync()).await {
            self.ctx.report_error(format!("buffer: sync failed: {e}"));
        }
        if self.shared.stopped.load(Relaxed) {
            self.stop().await;
        }
        if let Some(mut s) = delivered {
            match CatchUnwind(s.flush(self.ctx)).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => self.ctx.report_error(format!("flush: {e}")),
                Err(p) => self.ctx.report_error(format!("sink panicked in flush: {p}")),
            }
        }
    }

    /// The sink stopped for good: a memory buffer's events are dropped and
    /// counted (a disk buffer keeps them for the next start).
    async fn stop(&self) {
        self.shared.stopped.store(true, Relaxed);
        let ctx = self.ctx.clone();
        self.shared
            .store
            .run(move |s| {
                if s.durable() {
                    return;
                }
                while let Ok(Some(b)) = s.take() {
                    ctx.stats().events_dropped.fetch_add(b.len() as u64, Relaxed);
                    let _ = s.ack(b);
                }
                report(&ctx, s);
            })
            .await;
        self.shared.space.notify_waiters();
    }

    /// Builds the sink when start-up could not; `None` when it never will.
    async fn build_sink(&self, prepared: &mut Option<oneshot::Sender<()>>) -> Option<Box<dyn DynSink>> {
        let mut backoff = Backoff::default();
        loop {
            let failure = match catch(|| (self.build)(self.ctx)) {
                Ok(Ok(s)) => return Some(s),
                Ok(Err(e)) if e.action() == BuildAction::Stop => Failure::Stop(e.to_string()),
                Ok(Err(e)) => Failure::Again(e.to_string()),
                Err(p) => Failure::Again(format!("panicked while building: {p}")),
            };
            self.after("cannot be built", failure, &mut backoff, prepared).await.ok()?;
        }
    }

    /// Prepares the backend; false when the sink stopped instead (a sink
    /// still failing when the agent stops goes on to deliver what it can).
    async fn prepare(&self, sink: &mut dyn DynSink, prepared: &mut Option<oneshot::Sender<()>>) -> bool {
        let mut backoff = Backoff::default();
        let ready = loop {
            let failure = match CatchUnwind(sink.prepare(self.ctx)).await {
                Ok(Ok(())) => break Ok(()),
                Ok(Err(e)) if e.action() == SinkAction::GiveUp => {
                    self.ctx.report_error(format!("prepare failed: {e}; going on without it"));
                    break Ok(());
                }
                Ok(Err(e)) if e.action() == SinkAction::Stop => Failure::Stop(e.to_string()),
                Ok(Err(e)) => Failure::Again(e.to_string()),
                Err(p) => Failure::Again(format!("panicked: {p}")),
            };
            if let Err(ended) = self.after("prepare failed", failure, &mut backoff, prepared).await {
                break Err(ended);
            }
        };
        if let Some(p) = prepared.take() {
            let _ = p.send(());
        }
        ready != Err(Ended::Stopped)
    }

    /// After a failed try of `what` (building, preparing): stops the sink,
    /// or reports the failure, lets the agent go on without waiting for this
    /// sink and waits out the backoff; `Ok` when it is to be tried again.
    async fn after(
        &self,
        what: &str,
        failure: Failure,
        backoff: &mut Backoff,
        prepared: &mut Option<oneshot::Sender<()>>,
    ) -> Result<(), Ended> {
        let why = match failure {
            Failure::Stop(why) => {
                self.ctx.report_error(format!("{what}: {why}; the sink stops"));
                self.stop().await;
                return Err(Ended::Stopped);
            }
            Failure::Again(why) => why,
        };
        let wait = backoff.next_wait();
        self.ctx.report_error(format!("{what}: {why}; retrying in {:.1}s", wait.as_secs_f64()));
        if let Some(p) = prepared.take() {
            let _ = p.send(());
        }
        tokio::select! {
            _ = tokio::time::sleep(wait) => Ok(()),
            _ = self.ctx.stopping() => Err(Ended::Stopping),
            _ = self.handed_over() => Err(Ended::Stopping),
        }
    }

    /// Sends batches until the intake is closed and the buffer empty, or the
    /// sink stops.
    async fn deliver(&self, sink: &mut dyn DynSink) {
        let (stats, shared) = (self.ctx.stats(), self.shared);
        let fsync = self.job.spec.buffer.fsync.map_or(Duration::from_secs(1), |d| d.get());
        let mut last_sync = Instant::now();
        let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(30));
        let mut failing_since: Option<Instant> = None;
        loop {
            if self.is_handed_over() {
                return;
            }
            let wait = shared.data.notified();
            let due = last_sync.elapsed() >= fsync;
            let ctx = self.ctx.clone();
            let next = shared
                .store
                .run(move |s| {
                    let b = s.take();
                    if due && let Err(e) = s.sync() {
                        ctx.report_error(format!("buffer: sync failed: {e}"));
                    }
                    report(&ctx, s);
                    b
                })
                .await;
            if due {
                last_sync = Instant::now();
            }
            let batch = match next {
                Ok(Some(b)) => b,
                Ok(None) if shared.closed.load(Relaxed) => return,
                Ok(None) => {
                    tokio::select! {
                        _ = wait => {}
                        _ = tokio::time::sleep(fsync) => {}
                        _ = self.handed_over() => {}
                    }
                    continue;
                }
                Err(e) => {
                    self.ctx.report_error(format!("buffer: cannot read: {e}"));
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            };
            stats.send_attempts.fetch_add(1, Relaxed);
            let n = batch.len() as u64;
            let since = *failing_since.get_or_insert_with(Instant::now);
            let failure: Option<SinkError> = match CatchUnwind(sink.send(&batch, self.ctx)).await {
                Ok(Ok(())) => None,
                Ok(Err(e)) => Some(e),
                Err(p) => {
                    stats.panics.fetch_add(1, Relaxed);
                    Some(SinkError::retry(format!("panicked: {p}")))
                }
            };
            let mut stop = false;
            match failure {
                None => {
                    stats.events_out.fetch_add(n, Relaxed);
                    backoff.reset();
                    failing_since = None;
                }
                Some(e) => {
                    stats.send_failures.fetch_add(1, Relaxed);
                    let expired = self.job.spec.retry_for.is_some_and(|d| since.elapsed() >= d);
                    match e.action() {
                        SinkAction::Retry if !expired => {
                            let wait = backoff.next_wait();
                            self.ctx.warn(format!(
                                "send failed, retrying in {}ms ({} events buffered): {e}",
                                wait.as_millis(),
                                stats.buffer_events.load(Relaxed)
                            ));
                            shared.store.run(move |s| s.give_back(batch)).await;
                            tokio::select! {
                                _ = tokio::time::sleep(wait) => {}
                                _ = self.handed_over() => {}
                            }
                            continue;
                        }
                        SinkAction::Retry => self
                            .ctx
                            .report_error(format!("send failing for longer than retry_for, {n} events given up: {e}")),
                        SinkAction::GiveUp => {
                            self.ctx.report_error(format!("send failed for good, {n} events given up: {e}"))
                        }
                        SinkAction::Stop => {
                            self.ctx.report_error(format!("send failed, the sink stops; {n} events given up: {e}"));
                            stop = true;
                        }
                    }
                    failing_since = None;
                    stats.send_giveups.fetch_add(1, Relaxed);
                    stats.events_dropped.fetch_add(n, Relaxed);
                }
            }
            let ctx = self.ctx.clone();
            shared
                .store
                .run(move |s| {
                    if let Err(e) = s.ack(batch) {
                        ctx.report_error(format!("buffer: cannot acknowledge: {e}"));
                    }
                    report(&ctx, s);
                })
                .await;
            shared.space.notify_waiters();
            if stop {
                self.stop().await;
                return;
            }
        }
    }
}
