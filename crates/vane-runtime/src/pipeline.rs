//! Moving events: routes from a job to its `next` queues, the engine loop and
//! the sink loop with batching and bounded retries.

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use vane_core::context::{Context, JobStats, Lifecycle, Outlet};
use vane_core::event::{Event, State, now_ns};
use vane_core::plugin::{BoxFuture, DynEngine, DynSink};

use crate::config::{Job, Levels};
use crate::guard::{Backoff, CatchUnwind, catch};

/// A queue's sending side: batches of events.
pub type Tx = mpsc::Sender<Vec<Event>>;
pub type Rx = mpsc::Receiver<Vec<Event>>;

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

    async fn deliver(&self, mut events: Vec<Event>) {
        self.prepare(&mut events);
        let n = events.len() as u64;
        let last = self.targets.len().saturating_sub(1);
        let mut events = Some(events);
        for (i, t) in self.targets.iter().enumerate() {
            let batch = if i == last {
                events.take().unwrap_or_default()
            } else {
                events.clone().unwrap_or_default()
            };
            if t.send(batch).await.is_err() {
                // Only at shutdown, once the target has stopped.
                self.stats.events_dropped.fetch_add(n, Relaxed);
            }
        }
        if self.targets.is_empty() {
            self.stats.events_dropped.fetch_add(n, Relaxed);
        }
    }
}

/// Sets an event's state from the levels; a missing name makes it
/// `unknown` (counted). A matching level explains itself in the description.
pub fn apply_levels(levels: &Levels, e: &mut Event, stats: &JobStats) {
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
        Box::pin(self.deliver(events))
    }

    fn try_send(&self, mut events: Vec<Event>) -> Option<Vec<Event>> {
        let [target] = self.targets.as_slice() else {
            return Some(events);
        };
        match target.try_reserve() {
            Ok(permit) => {
                self.prepare(&mut events);
                permit.send(events);
                None
            }
            Err(_) => Some(events),
        }
    }
}

/// Splits an engine's queue over its workers by series, so each series
/// keeps its order; ends (closing the workers' queues) when its queue closes.
pub async fn partition(mut rx: Rx, workers: Vec<Tx>) {
    let n = workers.len() as u64;
    let mut got: Vec<Vec<Event>> = Vec::with_capacity(64);
    let mut parts: Vec<Vec<Event>> = vec![Vec::new(); workers.len()];
    while rx.recv_many(&mut got, 64).await > 0 {
        for ev in got.drain(..).flatten() {
            parts[(ev.series_hash() % n) as usize].push(ev);
        }
        for (w, part) in workers.iter().zip(parts.iter_mut()) {
            if !part.is_empty() {
                let _ = w.send(std::mem::take(part)).await;
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
    let mut got: Vec<Vec<Event>> = Vec::with_capacity(64);
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
                let batch: Vec<Event> = got.drain(..).flatten().collect();
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
        if !out.is_empty() {
            ctx.emit_all(std::mem::take(&mut out)).await;
        }
    }
}

/// Runs a sink until its queue closes: prepare, then batches by size and
/// wait, each sent with bounded retries; what cannot be sent is counted.
pub async fn run_sink(
    job: Arc<Job>,
    mut sink: Box<dyn DynSink>,
    ctx: Context,
    mut rx: Rx,
    prepared: oneshot::Sender<()>,
) {
    let stats = ctx.stats_arc().clone();
    let life = ctx.lifecycle().clone();
    prepare(&mut *sink, &ctx, &life, prepared).await;
    let mut batch: Vec<Event> = Vec::with_capacity(job.batch_size);
    let mut deadline: Option<Instant> = None;
    let mut got: Vec<Vec<Event>> = Vec::with_capacity(256);
    loop {
        tokio::select! {
            // Take every waiting batch at once: one wake-up for a burst of polls.
            n = rx.recv_many(&mut got, 256) => {
                if n == 0 {
                    break;
                }
                for evs in got.drain(..) {
                    stats.events_in.fetch_add(evs.len() as u64, Relaxed);
                    if batch.is_empty() {
                        deadline = Some(Instant::now() + job.batch_wait);
                    }
                    batch.extend(evs);
                    if batch.len() >= job.batch_size {
                        send_batch(&mut *sink, &ctx, &mut batch, &life).await;
                        deadline = None;
                    }
                }
            }
            _ = async { tokio::time::sleep_until(deadline.expect("guarded")).await }, if deadline.is_some() => {
                send_batch(&mut *sink, &ctx, &mut batch, &life).await;
                deadline = None;
            }
        }
    }
    if !batch.is_empty() {
        send_batch(&mut *sink, &ctx, &mut batch, &life).await;
    }
    match CatchUnwind(sink.flush(&ctx)).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => ctx.report_error(format!("flush: {e}")),
        Err(p) => ctx.report_error(format!("sink panicked in flush: {p}")),
    }
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

const SEND_ATTEMPTS: u32 = 4;

async fn send_batch(
    sink: &mut dyn DynSink,
    ctx: &Context,
    batch: &mut Vec<Event>,
    life: &Lifecycle,
) {
    let stats = ctx.stats_arc().clone();
    let n = batch.len() as u64;
    let mut wait = Duration::from_millis(100);
    for attempt in 1..=SEND_ATTEMPTS {
        let r = CatchUnwind(sink.send(batch, ctx)).await;
        let err = match r {
            Ok(Ok(())) => {
                stats.events_out.fetch_add(n, Relaxed);
                batch.clear();
                return;
            }
            Ok(Err(e)) => e.to_string(),
            Err(p) => {
                stats.panics.fetch_add(1, Relaxed);
                format!("panicked: {p}")
            }
        };
        stats.poll_errors.fetch_add(1, Relaxed);
        if attempt == SEND_ATTEMPTS || life.is_stopping() {
            stats.events_dropped.fetch_add(n, Relaxed);
            ctx.report_error(format!(
                "send failed {attempt} times, {n} events dropped: {err}"
            ));
            break;
        }
        ctx.warn(format!(
            "send failed (attempt {attempt} of {SEND_ATTEMPTS}), retrying in {}ms: {err}",
            wait.as_millis()
        ));
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = life.stopping() => {}
        }
        wait *= 4;
    }
    batch.clear();
}
