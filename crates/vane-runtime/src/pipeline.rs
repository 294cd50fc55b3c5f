//! Moving events: routes from a job to its `next` queues, the engine loop and
//! the sink loop with batching and bounded retries.

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::AtomicBool;

use tokio::sync::{Notify, mpsc, oneshot};
use tokio::time::Instant;
use vane_core::context::{Ack, Batch, Context, JobStats, Lifecycle, Outlet};
use vane_core::event::{Event, State, now_ns};
use vane_core::plugin::{Action, BoxFuture, DynEngine, DynSink};

use crate::buffer::{Pushed, Store};
use crate::config::{Job, Levels};
use crate::guard::{Backoff, CatchUnwind, catch};

/// A queue's sending side: batches of events.
///
/// A queue holds at most `queue_size` batches and at most [`QUEUE_EVENTS`]
/// events: a listener's batches are large, a poller's small, and either
/// bound alone would let the other kind fill memory.
#[derive(Clone)]
pub struct Tx {
    inner: mpsc::Sender<Batch>,
    budget: Arc<tokio::sync::Semaphore>,
}

pub type Rx = mpsc::Receiver<Batch>;

/// Events one queue holds at most (a batch larger than this takes it all).
pub const QUEUE_EVENTS: usize = 100_000;

/// A queue of at most `batches` batches and [`QUEUE_EVENTS`] events.
pub fn queue(batches: usize) -> (Tx, Rx) {
    let (inner, rx) = mpsc::channel(batches);
    let budget = Arc::new(tokio::sync::Semaphore::new(QUEUE_EVENTS));
    (Tx { inner, budget }, rx)
}

impl Tx {
    fn room(&self, b: &Batch) -> u32 {
        b.events.len().min(QUEUE_EVENTS) as u32
    }

    /// Sends a batch, waiting for room; gives it back if the queue is closed.
    pub async fn send(&self, mut b: Batch) -> Result<(), Batch> {
        let permit = self.budget.clone().acquire_many_owned(self.room(&b)).await;
        b.budget = permit.ok();
        self.inner.send(b).await.map_err(|e| e.0)
    }

    pub fn downgrade(&self) -> mpsc::WeakSender<Batch> {
        self.inner.downgrade()
    }

    pub fn max_capacity(&self) -> usize {
        self.inner.max_capacity()
    }
}

/// Where one job's events go: stamped, tagged, then copied to each target.
pub struct Route {
    pub host: Arc<str>,
    pub tags: Vec<(String, String)>,
    pub levels: Option<Arc<Levels>>,
    pub targets: Vec<Tx>,
    pub stats: Arc<JobStats>,
}

impl Route {
    /// Stamps time and host, adds the job's tags, judges levels.
    fn prepare(&self, events: &mut [Event]) {
        let now = now_ns();
        for e in events {
            e.stamp(now, &self.host);
            for (k, v) in &self.tags {
                if e.get_tag(k).is_none() {
                    e.tags.push((k.clone(), v.clone()));
                }
            }
            if let Some(levels) = &self.levels {
                apply_levels(levels, e, &self.stats);
            }
        }
    }

    async fn deliver(&self, mut events: Vec<Event>, acks: Vec<Ack>) {
        self.prepare(&mut events);
        let n = events.len() as u64;
        let last = self.targets.len().saturating_sub(1);
        let mut events = Some(events);
        for (i, t) in self.targets.iter().enumerate() {
            let batch = Batch {
                events: if i == last {
                    events.take().unwrap_or_default()
                } else {
                    events.clone().unwrap_or_default()
                },
                acks: acks.clone(),
                budget: None,
            };
            if let Err(b) = t.send(batch).await {
                // Only at shutdown, once the target has stopped.
                self.stats.events_dropped.fetch_add(n, Relaxed);
                b.acks.iter().for_each(Ack::fail);
            }
        }
        if self.targets.is_empty() {
            self.stats.events_dropped.fetch_add(n, Relaxed);
            acks.iter().for_each(Ack::fail);
        }
    }
}

/// Sets an event's state from the levels; a missing name makes it
/// `unknown` (counted). A matching level explains itself in the description.
pub fn apply_levels(levels: &Levels, e: &mut Event, stats: &JobStats) {
    // A source's own critical verdict (a check that could not reach its
    // service) stands: its event lacks the fields levels would judge.
    if e.state == Some(State::Critical) {
        return;
    }
    let (state, missing) = levels.judge(e);
    if let Some(why) = missing {
        stats.levels_unknown.fetch_add(1, Relaxed);
        e.description.get_or_insert(format!("unknown: {why}"));
    } else if e.description.is_none() {
        let expr = match state {
            State::Critical => levels.critical.as_ref(),
            State::Warning => levels.warning.as_ref(),
            _ => None,
        };
        if let Some(x) = expr {
            e.description = Some(format!("{state}: {}", x.source()));
        }
    }
    e.state = Some(state);
}

impl Outlet for Route {
    fn send(&self, events: Vec<Event>) -> BoxFuture<'_, ()> {
        Box::pin(self.deliver(events, Vec::new()))
    }

    fn send_batch(&self, batch: Batch) -> BoxFuture<'_, ()> {
        Box::pin(self.deliver(batch.events, batch.acks))
    }

    fn try_send(&self, mut events: Vec<Event>) -> Option<Vec<Event>> {
        let [target] = self.targets.as_slice() else {
            return Some(events);
        };
        // Room first, so that events are prepared once whatever happens.
        let n = events.len().min(QUEUE_EVENTS) as u32;
        let Ok(room) = target.budget.clone().try_acquire_many_owned(n) else {
            return Some(events);
        };
        let Ok(slot) = target.inner.try_reserve() else {
            return Some(events);
        };
        self.prepare(&mut events);
        slot.send(Batch {
            events,
            acks: Vec::new(),
            budget: Some(room),
        });
        None
    }
}

/// Splits an engine's queue over its workers by series, so each series
/// keeps its order; ends (closing the workers' queues) when its queue closes.
pub async fn partition(mut rx: Rx, workers: Vec<Tx>) {
    let n = workers.len() as u64;
    let mut got: Vec<Batch> = Vec::with_capacity(64);
    let mut parts: Vec<Vec<Event>> = vec![Vec::new(); workers.len()];
    while rx.recv_many(&mut got, 64).await > 0 {
        let mut acks = Vec::new();
        for b in got.drain(..) {
            for ev in b.events {
                parts[(ev.series_hash() % n) as usize].push(ev);
            }
            acks.extend(b.acks);
        }
        // Acknowledgements follow every worker's share.
        for (w, part) in workers.iter().zip(parts.iter_mut()) {
            if !part.is_empty() || !acks.is_empty() {
                let _ = w
                    .send(Batch {
                        events: std::mem::take(part),
                        acks: acks.clone(),
                        budget: None,
                    })
                    .await;
            }
        }
    }
}

/// Runs an engine until its queue closes: every event through `process`,
/// `beat` on its interval, output to the engine's route.
pub async fn run_engine(
    job: Arc<Job>,
    mut engine: Box<dyn DynEngine>,
    rebuild: impl Fn(&Context) -> Option<Box<dyn DynEngine>> + Send,
    ctx: Context,
    mut rx: Rx,
) {
    let stats = ctx.stats_arc().clone();
    let mut beat = job.beat.or_else(|| engine.default_beat()).map(|b| {
        let mut t = tokio::time::interval_at(Instant::now() + b, b);
        t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        t
    });
    let mut out = Vec::new();
    let mut got: Vec<Batch> = Vec::with_capacity(64);
    let mut acks: Vec<Ack> = Vec::new();
    loop {
        let more = tokio::select! {
            n = rx.recv_many(&mut got, 64) => {
                if n == 0 {
                    break;
                }
                true
            }
            _ = async { beat.as_mut().expect("guarded").tick().await }, if beat.is_some() => false,
        };
        match more {
            true => {
                let mut batch: Vec<Event> = Vec::new();
                for b in got.drain(..) {
                    batch.extend(b.events);
                    acks.extend(b.acks);
                }
                stats.events_in.fetch_add(batch.len() as u64, Relaxed);
                for ev in batch {
                    match catch(|| engine.process(ev, &mut out)) {
                        Ok(Ok(())) => {}
                        Ok(Err(e)) => ctx.report_error(format!("process: {e}")),
                        Err(p) => {
                            stats.panics.fetch_add(1, Relaxed);
                            stats.events_dropped.fetch_add(1, Relaxed);
                            ctx.report_error(format!(
                                "engine panicked on an event (event dropped, engine rebuilt): {p}"
                            ));
                            if let Some(e) = rebuild(&ctx) {
                                engine = e;
                                stats.restarts.fetch_add(1, Relaxed);
                            }
                        }
                    }
                }
            }
            false => match catch(|| engine.beat(&mut out)) {
                Ok(Ok(())) => {}
                Ok(Err(e)) => ctx.report_error(format!("beat: {e}")),
                Err(p) => {
                    stats.panics.fetch_add(1, Relaxed);
                    ctx.report_error(format!("engine panicked in beat (rebuilt): {p}"));
                    if let Some(e) = rebuild(&ctx) {
                        engine = e;
                        stats.restarts.fetch_add(1, Relaxed);
                    }
                }
            },
        }
        if !out.is_empty() || !acks.is_empty() {
            // What this engine made of acknowledged events carries their acks on.
            ctx.forward(std::mem::take(&mut out), std::mem::take(&mut acks))
                .await;
        }
    }
}

/// Runs a sink until its queue closes and its buffer is empty.
///
/// Two halves share the sink's buffer: the intake gathers events into
/// batches (`batch_size`, `batch_wait`) and stores them (applying
/// `when_full`); the delivery sends the oldest batch until it succeeds,
/// waiting between attempts with exponential backoff and jitter, and only
/// then removes it. An error whose action is `Stop` gives the batch up
/// (counted); any other is retried. Attempts, failures, give-ups, drops and
/// buffer levels are counted on the sink's job.
pub async fn run_sink(
    job: Arc<Job>,
    mut sink: Box<dyn DynSink>,
    ctx: Context,
    mut rx: Rx,
    prepared: oneshot::Sender<()>,
    store: Box<dyn Store>,
) {
    let stats = ctx.stats_arc().clone();
    let life = ctx.lifecycle().clone();
    let store = Arc::new(Mutex::new(store));
    let data = Arc::new(Notify::new());
    let space = Arc::new(Notify::new());
    let closed = Arc::new(AtomicBool::new(false));
    let report = |s: &mut dyn Store| {
        stats.buffer_events.store(s.events(), Relaxed);
        stats.buffer_bytes.store(s.bytes(), Relaxed);
        let (records, bytes) = s.take_skipped();
        if records > 0 {
            stats.buffer_skipped.fetch_add(records, Relaxed);
            ctx.report_error(format!(
                "buffer: skipped {records} corrupt or torn records ({bytes} bytes)"
            ));
        }
    };

    let intake = async {
        let mut batch: Vec<Event> = Vec::with_capacity(job.batch_size);
        let mut batch_bytes = 0u64;
        let mut deadline: Option<Instant> = None;
        let mut got: Vec<Batch> = Vec::with_capacity(256);
        // submission_interval: the latest event per series, in first-seen order.
        let mut latest: HashMap<String, usize> = HashMap::new();
        let mut submission = job.submission_interval.map(|d| {
            let mut t = tokio::time::interval_at(Instant::now() + d, d);
            t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            t
        });
        loop {
            tokio::select! {
                // Take every waiting batch at once: one wake-up for a burst of polls.
                n = rx.recv_many(&mut got, 256) => {
                    if n == 0 {
                        break;
                    }
                    if submission.is_some() {
                        // Coalescing replaces events: acknowledged on receipt.
                        for ev in got.drain(..).flat_map(|b| b.events) {
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
                    for Batch { events: evs, acks, .. } in got.drain(..) {
                        stats.events_in.fetch_add(evs.len() as u64, Relaxed);
                        if batch.is_empty() {
                            deadline = Some(Instant::now() + job.batch_wait);
                            batch_bytes = 0;
                        }
                        batch_bytes += crate::buffer::size_of(&evs);
                        batch.extend(evs);
                        let mut stored = true;
                        if batch.len() >= job.batch_size || batch_bytes >= job.batch_bytes
                            || (!acks.is_empty() && !batch.is_empty())
                        {
                            // Acknowledged events are stored now, not at batch_wait.
                            stored = store_batch(&store, &data, &space, &ctx, std::mem::take(&mut batch), job.buffer.when_full).await;
                            deadline = None;
                        }
                        if !acks.is_empty() {
                            let synced = store.lock().expect("not poisoned").sync();
                            if let Err(e) = &synced {
                                ctx.report_error(format!("buffer: sync failed: {e}"));
                            }
                            if !stored || synced.is_err() {
                                acks.iter().for_each(Ack::fail);
                            }
                        }
                    }
                }
                _ = async { tokio::time::sleep_until(deadline.expect("guarded")).await }, if deadline.is_some() => {
                    store_batch(&store, &data, &space, &ctx, std::mem::take(&mut batch), job.buffer.when_full).await;
                    deadline = None;
                }
                _ = async { submission.as_mut().expect("guarded").tick().await }, if submission.is_some() => {
                    latest.clear();
                    if !batch.is_empty() {
                        store_batch(&store, &data, &space, &ctx, std::mem::take(&mut batch), job.buffer.when_full).await;
                    }
                }
            }
        }
        if !batch.is_empty() {
            store_batch(&store, &data, &space, &ctx, batch, job.buffer.when_full).await;
        }
        closed.store(true, Relaxed);
        data.notify_one();
    };

    let deliver = async {
        prepare(&mut *sink, &ctx, &life, prepared).await;
        let fsync = job
            .buffer
            .fsync
            .map(|d| d.get())
            .unwrap_or(Duration::from_secs(1));
        let mut last_sync = Instant::now();
        let mut backoff = Duration::from_millis(100);
        let mut failing_since: Option<Instant> = None;
        let mut seed = 0x2545_f491_4f6c_dd1du64 ^ (Instant::now().elapsed().as_nanos() as u64);
        loop {
            let wait = data.notified();
            let next = {
                let mut s = store.lock().expect("not poisoned");
                let b = s.take();
                if last_sync.elapsed() >= fsync {
                    if let Err(e) = s.sync() {
                        ctx.report_error(format!("buffer: sync failed: {e}"));
                    }
                    last_sync = Instant::now();
                }
                report(&mut **s);
                b
            };
            let batch = match next {
                Ok(Some(b)) => b,
                Ok(None) if closed.load(Relaxed) => break,
                Ok(None) => {
                    tokio::select! {
                        _ = wait => {}
                        _ = tokio::time::sleep(fsync) => {}
                    }
                    continue;
                }
                Err(e) => {
                    ctx.report_error(format!("buffer: cannot read: {e}"));
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            };
            stats.send_attempts.fetch_add(1, Relaxed);
            let n = batch.len() as u64;
            let since = *failing_since.get_or_insert_with(Instant::now);
            let give_up = match CatchUnwind(sink.send(&batch, &ctx)).await {
                Ok(Ok(())) => {
                    stats.events_out.fetch_add(n, Relaxed);
                    backoff = Duration::from_millis(100);
                    failing_since = None;
                    false
                }
                Ok(Err(e)) if job.retry_for.is_some_and(|d| since.elapsed() >= d) => {
                    stats.send_failures.fetch_add(1, Relaxed);
                    failing_since = None;
                    ctx.report_error(format!(
                        "send failing for longer than retry_for, {n} events given up: {e}"
                    ));
                    true
                }
                Ok(Err(e)) if e.action() == Action::Stop => {
                    stats.send_failures.fetch_add(1, Relaxed);
                    ctx.report_error(format!("send failed for good, {n} events given up: {e}"));
                    true
                }
                failed => {
                    stats.send_failures.fetch_add(1, Relaxed);
                    let why = match failed {
                        Ok(Err(e)) => e.to_string(),
                        Err(p) => {
                            stats.panics.fetch_add(1, Relaxed);
                            format!("panicked: {p}")
                        }
                        Ok(Ok(())) => unreachable!("matched above"),
                    };
                    // Exponential backoff with ±20% jitter, at most 30 s.
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    let wait = backoff.mul_f64(0.8 + (seed % 400) as f64 / 1000.0);
                    ctx.warn(format!(
                        "send failed, retrying in {}ms ({} events buffered): {why}",
                        wait.as_millis(),
                        stats.buffer_events.load(Relaxed)
                    ));
                    store.lock().expect("not poisoned").give_back(batch);
                    tokio::time::sleep(wait).await;
                    backoff = (backoff * 2).min(Duration::from_secs(30));
                    continue;
                }
            };
            if give_up {
                failing_since = None;
                stats.send_giveups.fetch_add(1, Relaxed);
                stats.events_dropped.fetch_add(n, Relaxed);
            }
            let mut s = store.lock().expect("not poisoned");
            if let Err(e) = s.ack(batch) {
                ctx.report_error(format!("buffer: cannot acknowledge: {e}"));
            }
            report(&mut **s);
            drop(s);
            space.notify_waiters();
        }
        if let Err(e) = store.lock().expect("not poisoned").sync() {
            ctx.report_error(format!("buffer: sync failed: {e}"));
        }
        match CatchUnwind(sink.flush(&ctx)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => ctx.report_error(format!("flush: {e}")),
            Err(p) => ctx.report_error(format!("sink panicked in flush: {p}")),
        }
    };
    tokio::join!(intake, deliver);
}

/// Stores a batch, waiting for room when the buffer blocks.
/// Stores a batch (waiting for room under `when_full: block`); false when
/// it was dropped or could not be stored.
async fn store_batch(
    store: &Mutex<Box<dyn Store>>,
    data: &Notify,
    space: &Notify,
    ctx: &Context,
    mut batch: Vec<Event>,
    when_full: crate::buffer::WhenFull,
) -> bool {
    let mut stored = true;
    loop {
        let wait = space.notified();
        let r = {
            let mut s = store.lock().expect("not poisoned");
            let r = s.push(batch);
            ctx.stats().buffer_events.store(s.events(), Relaxed);
            ctx.stats().buffer_bytes.store(s.bytes(), Relaxed);
            r
        };
        match r {
            Ok(Pushed::Stored) => break,
            Ok(Pushed::Dropped(n)) => {
                ctx.stats().events_dropped.fetch_add(n, Relaxed);
                ctx.warn(format!("buffer full: {n} events dropped"));
                // drop_oldest made room by dropping older events and kept these.
                stored = when_full != crate::buffer::WhenFull::DropNewest;
                break;
            }
            Ok(Pushed::Full(b)) => {
                batch = b;
                wait.await;
            }
            Err(e) => {
                ctx.report_error(format!("buffer: cannot store a batch: {e}"));
                return false;
            }
        }
    }
    data.notify_one();
    stored
}

async fn prepare(
    sink: &mut dyn DynSink,
    ctx: &Context,
    life: &Lifecycle,
    prepared: oneshot::Sender<()>,
) {
    let mut backoff = Backoff::default();
    let mut prepared = Some(prepared);
    loop {
        let r = CatchUnwind(sink.prepare(ctx)).await;
        let err = match r {
            Ok(Ok(())) => break,
            Ok(Err(e)) => e.to_string(),
            Err(p) => format!("panicked: {p}"),
        };
        let wait = backoff.next_wait();
        ctx.report_error(format!(
            "prepare failed: {err}; retrying in {:.1}s",
            wait.as_secs_f64()
        ));
        // The agent does not wait for a backend that is down.
        if let Some(p) = prepared.take() {
            let _ = p.send(());
        }
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = life.stopping() => break,
        }
    }
    if let Some(p) = prepared.take() {
        let _ = p.send(());
    }
}
