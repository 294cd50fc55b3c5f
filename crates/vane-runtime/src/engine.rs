//! The one engine loop: batches from an engine's queue through `process`,
//! `beat` on its interval and once more when the input ends, output along
//! the engine's route. The agent, `vane engine` and a bus worker all feed
//! this loop; only where its queue is filled from differs.
//!
//! An engine's failure is honoured as its [`EngineAction`] says: `Skip`
//! drops what the failing call made (an event that failed is dropped and
//! counted), `Restart` does the same and rebuilds the engine; a panic is a
//! restart. A rebuild that fails is retried after a backoff while events
//! wait in the queue; one that says `Stop` leaves the engine stopped, and
//! what reaches it from then on is dropped, counted, and its
//! acknowledgements fail.
//!
//! A beat that stands for the whole engine runs on one of its workers
//! ([`Share`]); one that works on an instance's own state runs on each.

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

use tokio::time::{Instant, MissedTickBehavior};
use vane_core::ack::{Ack, Batch};
use vane_core::context::Context;
use vane_core::error::{BuildAction, BuildError, EngineAction};
use vane_core::event::Event;
use vane_core::instance::DynEngine;
use vane_core::lease::Lease;

use crate::config::EngineJob;
use crate::guard::{Backoff, catch};
use crate::queue::{Rx, Tx};
use crate::route::Route;

/// Builds an instance of one engine job.
pub type BuildEngine = Arc<dyn Fn(&Context) -> Result<Box<dyn DynEngine>, BuildError> + Send + Sync>;

/// One engine instance's loop, and what it needs.
pub struct EngineTask {
    pub job: Arc<EngineJob>,
    pub ctx: Context,
    /// Where its output goes.
    pub route: Arc<Route>,
    /// Builds the engine again after a restart.
    pub build: BuildEngine,
    /// Which of the engine's workers it is, for beats of the whole engine.
    pub share: Share,
}

/// An instance's place among its engine's workers. A beat that stands for
/// the whole engine (not [`DynEngine::beat_each_worker`]) runs on the first
/// worker of a process, and, for a bus-backed engine's workers, only in the
/// process that holds the engine's lease.
#[derive(Default)]
pub struct Share {
    /// Its index among the agent's workers of the engine (`workers: N`).
    pub index: usize,
    pub lease: Option<Arc<dyn Lease>>,
}

impl Share {
    fn beats(&self, e: &dyn DynEngine) -> bool {
        e.beat_each_worker() || (self.index == 0 && self.lease.as_ref().is_none_or(|l| l.held()))
    }
}

enum Call {
    Process(Event),
    Beat,
}

impl EngineTask {
    /// Runs until `rx` closes. `first` is the instance built at start-up;
    /// without one the loop builds it (with a backoff).
    pub async fn run(self, first: Option<Box<dyn DynEngine>>, mut rx: Rx) {
        let mut engine = match first {
            Some(e) => Some(e),
            None => self.rebuild().await,
        };
        let every = self.job.spec.beat.or_else(|| engine.as_ref()?.default_beat());
        let mut beat = every.map(|b| {
            let mut t = tokio::time::interval_at(Instant::now() + b, b);
            t.set_missed_tick_behavior(MissedTickBehavior::Skip);
            t
        });
        let mut out = Vec::new();
        let mut got = Vec::with_capacity(64);
        let mut acks: Vec<Ack> = Vec::new();
        loop {
            let input = tokio::select! {
                n = rx.recv_many(&mut got, 64) => {
                    if n == 0 {
                        break;
                    }
                    true
                }
                _ = async { beat.as_mut().expect("guarded").tick().await }, if beat.is_some() => false,
            };
            let began = std::time::Instant::now();
            if input {
                let mut events = Vec::new();
                for q in got.drain(..) {
                    let Batch { events: evs, acks: a } = q.batch;
                    events.extend(evs);
                    acks.extend(a);
                }
                self.ctx.stats().events_in.fetch_add(events.len() as u64, Relaxed);
                if engine.is_none() {
                    self.ctx.stats().events_dropped.fetch_add(events.len() as u64, Relaxed);
                    acks.iter().for_each(Ack::fail);
                }
                self.process_all(&mut engine, events, &mut out).await;
            } else {
                self.step(&mut engine, Call::Beat, &mut out).await;
            }
            self.ctx.stats().work_ns_total.fetch_add(began.elapsed().as_nanos() as u64, Relaxed);
            self.pass_on(&mut out, &mut acks).await;
        }
        // The input ended: a last beat, so that open windows go out.
        if beat.is_some() {
            self.step(&mut engine, Call::Beat, &mut out).await;
            self.pass_on(&mut out, &mut acks).await;
        }
    }

    /// What the engine made of acknowledged events carries their acks on.
    async fn pass_on(&self, out: &mut Vec<Event>, acks: &mut Vec<Ack>) {
        if out.is_empty() && acks.is_empty() {
            return;
        }
        self.ctx.stats().events_out.fetch_add(out.len() as u64, Relaxed);
        self.route.deliver(std::mem::take(out), std::mem::take(acks)).await;
    }

    /// Every event of a batch into the engine, in order: off the async
    /// workers when the engine says its calls may take long, rebuilding it
    /// when a failure asks for it. What is left when it cannot be rebuilt
    /// is dropped and counted.
    async fn process_all(&self, engine: &mut Option<Box<dyn DynEngine>>, events: Vec<Event>, out: &mut Vec<Event>) {
        if engine.is_none() {
            return; // counted as dropped with its batch
        }
        let mut events = events.into_iter();
        while let Some(e) = engine.as_mut() {
            let blocking = e.blocking();
            let mut all = || events.by_ref().any(|ev| self.call(&mut **e, Call::Process(ev), out));
            let restart = if blocking { vane_core::blocking::run(all) } else { all() };
            if !restart {
                return;
            }
            self.restart(engine).await;
        }
        self.ctx.stats().events_dropped.fetch_add(events.len() as u64, Relaxed);
    }

    /// One call into the engine, its failure honoured.
    async fn step(&self, engine: &mut Option<Box<dyn DynEngine>>, call: Call, out: &mut Vec<Event>) {
        let Some(e) = engine.as_mut() else {
            return;
        };
        if matches!(call, Call::Beat) && !self.share.beats(&**e) {
            return;
        }
        let restart = if e.blocking() {
            vane_core::blocking::run(|| self.call(&mut **e, call, out))
        } else {
            self.call(&mut **e, call, out)
        };
        if restart {
            self.restart(engine).await;
        }
    }

    /// One call into the engine; a failure is reported and counted, and
    /// the answer says whether the engine must be rebuilt.
    fn call(&self, e: &mut dyn DynEngine, call: Call, out: &mut Vec<Event>) -> bool {
        let stats = self.ctx.stats();
        let before = out.len();
        let (what, dropped) = match call {
            Call::Process(_) => ("process", 1),
            Call::Beat => ("beat", 0),
        };
        let r = catch(|| match call {
            Call::Process(ev) => e.process(ev, out, &self.ctx),
            Call::Beat => e.beat(out, &self.ctx),
        });
        let (restart, why) = match r {
            Ok(Ok(())) => return false,
            Ok(Err(err)) => (err.action() == EngineAction::Restart, err.to_string()),
            Err(p) => {
                stats.panics.fetch_add(1, Relaxed);
                (true, format!("panicked: {p}"))
            }
        };
        out.truncate(before);
        stats.events_dropped.fetch_add(dropped, Relaxed);
        let then = if restart { "; the engine is rebuilt" } else { "" };
        let lost = if dropped > 0 { "the event is dropped" } else { "its output is dropped" };
        self.ctx.report_error(format!("{what} failed ({lost}{then}): {why}"));
        restart
    }

    async fn restart(&self, engine: &mut Option<Box<dyn DynEngine>>) {
        *engine = self.rebuild().await;
        self.ctx.stats().restarts.fetch_add(1, Relaxed);
    }

    /// A new instance; after a backoff while building fails, `None` when it
    /// says it never will (or the agent stops meanwhile).
    async fn rebuild(&self) -> Option<Box<dyn DynEngine>> {
        let mut backoff = Backoff::default();
        loop {
            let why = match catch(|| (self.build)(&self.ctx)) {
                Ok(Ok(e)) => return Some(e),
                Ok(Err(e)) if e.action() == BuildAction::Stop => {
                    self.ctx.report_error(format!(
                        "cannot be built: {e}; the engine stays stopped (what reaches it is dropped and counted)"
                    ));
                    return None;
                }
                Ok(Err(e)) => e.to_string(),
                Err(p) => {
                    self.ctx.stats().panics.fetch_add(1, Relaxed);
                    format!("panicked while building: {p}")
                }
            };
            let wait = backoff.next_wait();
            self.ctx.report_error(format!("cannot be built: {why}; retrying in {:.1}s", wait.as_secs_f64()));
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = self.ctx.stopping() => return None,
            }
        }
    }
}

/// Splits an engine's queue over its workers by series, so each series
/// keeps its order; ends (closing the workers' queues) when its queue closes.
pub async fn partition(mut rx: Rx, workers: Vec<Tx>) {
    let n = workers.len() as u64;
    let mut got = Vec::with_capacity(64);
    let mut parts: Vec<Vec<Event>> = vec![Vec::new(); workers.len()];
    while rx.recv_many(&mut got, 64).await > 0 {
        let mut acks = Vec::new();
        for q in got.drain(..) {
            for ev in q.batch.events {
                parts[(ev.series_hash() % n) as usize].push(ev);
            }
            acks.extend(q.batch.acks);
        }
        // Acknowledgements follow every worker's share.
        for (w, part) in workers.iter().zip(parts.iter_mut()) {
            if !part.is_empty() || !acks.is_empty() {
                let batch = Batch { events: std::mem::take(part), acks: acks.clone() };
                let _ = w.send(batch).await;
            }
        }
    }
}
