//! Where a job's events go, and the one place events are prepared: stamped
//! with time and host, given the job's tags, judged by its levels, then
//! copied to each of the job's targets.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, RwLock};

use vane_core::BoxFuture;
use vane_core::ack::{Ack, Batch};
use vane_core::event::{Event, Text, now_ns};
use vane_core::runtime::Outlet;
use vane_core::stats::JobStats;

use crate::config::Job;
use crate::levels::Levels;
use crate::queue::Tx;

/// How one job's events are prepared before they leave it.
pub struct Prepare {
    host: Arc<str>,
    tags: Vec<(Text, Text)>,
    levels: Option<Arc<Levels>>,
    stats: Arc<JobStats>,
}

impl Prepare {
    /// The preparation of `job`'s events on an agent of host `host`.
    pub fn new<S>(job: &Job<S>, host: Arc<str>, stats: Arc<JobStats>) -> Prepare {
        Prepare {
            host,
            tags: job.tags.iter().map(|(k, v)| (k.as_str().into(), v.as_str().into())).collect(),
            levels: job.levels.clone(),
            stats,
        }
    }

    /// Only stamping: for events that enter from outside any job.
    pub fn stamp_only(host: Arc<str>, stats: Arc<JobStats>) -> Prepare {
        Prepare { host, tags: Vec::new(), levels: None, stats }
    }

    /// Stamps time and host where unset, adds the job's tags where absent,
    /// judges levels.
    pub fn apply(&self, events: &mut [Event]) {
        let now = now_ns();
        for e in events {
            e.stamp(now, &self.host);
            for (k, v) in &self.tags {
                if e.get_tag(k).is_none() {
                    e.tags.push((k.clone(), v.clone()));
                }
            }
            if let Some(levels) = &self.levels {
                levels.apply(e, &self.stats);
            }
        }
    }
}

/// One job's way out: its events prepared, then copied to each target.
/// The targets change when a reload adds, rebuilds or removes an engine or
/// sink the job sends to; the job itself goes on.
pub struct Route {
    prepare: Prepare,
    targets: RwLock<Arc<[Tx]>>,
    stats: Arc<JobStats>,
}

impl Route {
    pub fn new(prepare: Prepare, targets: Vec<Tx>, stats: Arc<JobStats>) -> Route {
        Route { prepare, targets: RwLock::new(targets.into()), stats }
    }

    /// Sends to `targets` from now on; a batch on its way goes where it was going.
    pub fn retarget(&self, targets: Vec<Tx>) {
        *self.targets.write().expect("not poisoned") = targets.into();
    }

    fn targets(&self) -> Arc<[Tx]> {
        self.targets.read().expect("not poisoned").clone()
    }

    /// Prepares and delivers events with their acknowledgements; waits while
    /// a target is full. With no target (or a closed one, at shutdown) they
    /// are dropped, counted, and their acknowledgements fail.
    pub async fn deliver(&self, mut events: Vec<Event>, acks: Vec<Ack>) {
        self.prepare.apply(&mut events);
        let n = events.len() as u64;
        let targets = self.targets();
        let last = targets.len().saturating_sub(1);
        let mut events = Some(events);
        for (i, t) in targets.iter().enumerate() {
            let events = if i == last { events.take().unwrap_or_default() } else { events.clone().unwrap_or_default() };
            let batch = Batch { events, acks: acks.clone() };
            if let Err(b) = t.send(batch).await {
                self.stats.events_dropped.fetch_add(n, Relaxed);
                b.acks.iter().for_each(Ack::fail);
            }
        }
        if targets.is_empty() {
            self.stats.events_dropped.fetch_add(n, Relaxed);
            acks.iter().for_each(Ack::fail);
        }
    }
}

impl Outlet for Route {
    fn send(&self, events: Vec<Event>) -> BoxFuture<'_, ()> {
        Box::pin(self.deliver(events, Vec::new()))
    }

    fn send_batch(&self, batch: Batch) -> BoxFuture<'_, ()> {
        Box::pin(self.deliver(batch.events, batch.acks))
    }

    fn try_send(&self, mut events: Vec<Event>) -> Option<Vec<Event>> {
        let targets = self.targets();
        let [target] = &*targets else {
            return Some(events);
        };
        // Room first, so that events are prepared once whatever happens.
        let Some(slot) = target.try_reserve(events.len()) else {
            return Some(events);
        };
        self.prepare.apply(&mut events);
        slot.send(Batch::from(events));
        None
    }
}
