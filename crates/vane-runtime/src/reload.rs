//! Applying a new config to a running agent as a difference
//! ([`Plan`](crate::config::diff::Plan)): what is kept goes on untouched
//! (a source keeps its state, schedule and sockets; an engine its windows;
//! a sink its buffer and connections), and only what changed is rebuilt.
//!
//! In order: sources removed or changed stop (so a changed listener frees
//! its port); engines and sinks added or changed get new queues, and every
//! kept job's route is pointed at the queues of the new config; the old
//! queues are let go, so the engines and sinks they fed drain what they
//! hold and end, exactly as at shutdown: an engine's last beat sends its
//! open windows on, a sink delivers its queue into its buffer. A changed
//! sink is handed over: once its queue is drained it stops delivering, and
//! its successor starts on the same buffer (or, when the buffer's settings
//! changed, on a new one that takes over what the old held). New engines
//! and sinks start, then new sources. Each stage that waits gets the
//! shutdown timeout; what is still running after it is aborted, and said.

use std::collections::HashMap;
use std::sync::Arc;

use tokio::task::JoinSet;

use crate::agent::{Agent, Running, SinkUnit, join_all};
use crate::buffer::{Kind, Memory, Store};
use crate::buffer_io::SharedStore;
use crate::config::Config;
use crate::config::diff::{Plan, same_buffer};

impl Running {
    /// Applies `new`: logs what is added, changed, removed and kept, by
    /// id, and does it. A job that cannot be built for good is reported
    /// and left out; everything else goes on.
    pub(crate) async fn reload(&mut self, agent: &Arc<Agent>, new: Config) {
        let plan = Plan::new(&self.config, &new);
        for (role, c) in [("sources", &plan.sources), ("engines", &plan.engines), ("sinks", &plan.sinks)] {
            tracing::info!("reload: {role}: {}", c.describe());
        }
        for key in &plan.at_restart {
            tracing::warn!("reload: agent.{key} changed: it takes effect at the next start");
        }
        crate::notify::reloading();
        let grace = new.shutdown_timeout;
        let new = Arc::new(new);

        // Sources that go or change stop first.
        let mut stopping = JoinSet::new();
        for id in plan.sources.removed.iter().chain(&plan.sources.changed) {
            if let Some(u) = self.sources.remove(id) {
                u.life.stop();
                stopping.spawn(join_all(u.tasks));
            }
        }
        wait(&mut stopping, grace, "sources").await;
        let gone = plan.sources.removed.iter().chain(&plan.sources.changed);
        for id in gone.chain(&plan.engines.removed).chain(&plan.engines.changed) {
            // Routes a job served on the agent's HTTP port go with it.
            if let Some(t) = &agent.routes {
                t.release(id);
            }
        }

        // New queues for engines and sinks added or changed; the old ones
        // stay only with the jobs that drain into them.
        self.config = new.clone();
        let mut rxs = HashMap::new();
        let fresh = plan.engines.added.iter().chain(&plan.engines.changed);
        for id in fresh.chain(&plan.sinks.added).chain(&plan.sinks.changed) {
            rxs.insert(id.clone(), self.new_queue(agent, id));
        }
        for id in plan.engines.removed.iter().chain(&plan.sinks.removed) {
            self.txs.remove(id);
            agent.introspection.remove_queue(id);
        }
        for job in &new.sources {
            if let Some(u) = self.sources.get(&job.id) {
                u.route.retarget(self.targets(job));
            }
        }
        for job in &new.engines {
            if let Some(u) = self.engines.get(&job.id)
                && plan.engines.kept.contains(&job.id)
            {
                u.route.retarget(self.targets(job));
            }
        }

        // Engines that go or change drain with their old routes.
        let mut draining = JoinSet::new();
        for id in plan.engines.removed.iter().chain(&plan.engines.changed) {
            if let Some(u) = self.engines.remove(id) {
                // Drained, then stopped: the tasks it added end with it.
                draining.spawn(async move {
                    join_all(u.tasks).await;
                    u.life.stop();
                });
            }
        }
        let mut old_sinks: Vec<(SinkUnit, bool)> = Vec::new();
        for id in &plan.sinks.removed {
            if let Some(u) = self.sinks.remove(id) {
                old_sinks.push((u, false));
            }
        }
        for id in &plan.sinks.changed {
            if let Some(u) = self.sinks.remove(id) {
                u.handoff.send_replace(true);
                old_sinks.push((u, true));
            }
        }

        // New engines, then new sources (the sinks they reach may still be
        // taking over their buffers: their queues hold what comes meanwhile).
        for job in &new.engines {
            let Some(rx) = rxs.remove(&job.id) else { continue };
            match agent.start_engine(job, self, rx) {
                Ok(u) => {
                    self.engines.insert(job.id.clone(), u);
                }
                Err(e) => tracing::error!("reload: {e}"),
            }
        }
        for job in new.sinks.iter().filter(|j| plan.sinks.added.contains(&j.id)) {
            let rx = rxs.remove(&job.id).expect("a queue per sink");
            self.start_sink(agent, job.id.clone(), rx, agent.open_store(job));
        }
        for job in &new.sources {
            if self.sources.contains_key(&job.id) {
                continue;
            }
            let u = agent.start_source(job, self);
            self.sources.insert(job.id.clone(), u);
        }

        // Changed sinks hand over their buffers; removed ones flush.
        for (u, handed) in old_sinks {
            let id = u.job.id.clone();
            let SinkUnit { job: old, life, store, handoff, mut tasks } = u;
            if !drained(&mut tasks, grace).await {
                tracing::warn!(
                    job = %id,
                    "reload: the sink did not finish within {grace:?}: stopped (a batch its intake held, waiting for room, is dropped; its buffer is kept)"
                );
                tasks.abort_all();
                join_all(tasks).await;
            }
            // The tasks it added end with it.
            life.stop();
            drop(handoff);
            if let Some(t) = &agent.routes {
                t.release(&id);
            }
            if !handed {
                continue;
            }
            let job = new.sinks.iter().find(|j| j.id == id).expect("a changed sink is in the new config");
            let store = if same_buffer(&old, job) { store } else { take_over(agent, store, job) };
            let rx = rxs.remove(&id).expect("a queue per sink");
            self.start_sink(agent, id, rx, store);
        }
        wait(&mut draining, grace, "engines").await;
        agent.publish_jobs(&new);
        crate::notify::notify(&format!("READY=1\nSTATUS=running {} jobs", new.jobs().count()));
        tracing::info!(jobs = new.jobs().count(), "reload: applied");
    }

    fn start_sink(&mut self, agent: &Arc<Agent>, id: String, rx: crate::queue::Rx, store: SharedStore) {
        let job = self.config.sinks.iter().find(|j| j.id == id).expect("the sink is in the config").clone();
        match agent.start_sink(&job, rx, store) {
            Ok((u, _)) => {
                self.sinks.insert(id, u);
            }
            Err(e) => tracing::error!("reload: {e}"),
        }
    }
}

/// A changed sink's new buffer, holding what the old one held: a disk
/// buffer is closed and opened again with its new settings (what it holds
/// stays on disk); otherwise each batch moves across.
fn take_over(agent: &Agent, old: SharedStore, job: &crate::config::SinkJob) -> SharedStore {
    let mut held = old.lock().expect("not poisoned");
    let was_disk = held.durable();
    // The old buffer is closed before the new one opens its folder.
    let mut old: Box<dyn Store> = std::mem::replace(&mut *held, Box::new(Memory::new(0, Default::default())));
    drop(held);
    if was_disk && job.spec.buffer.kind == Kind::Disk {
        drop(old);
        return agent.open_store(job);
    }
    let moved = agent.open_store(job);
    let mut new = moved.lock().expect("not poisoned");
    let (mut batches, mut lost) = (0u64, 0u64);
    loop {
        match old.take() {
            Ok(Some(b)) => {
                let n = b.len() as u64;
                let _ = old.ack(Vec::new());
                match new.push(b) {
                    Ok(crate::buffer::Pushed::Stored) => batches += 1,
                    _ => lost += n,
                }
            }
            Ok(None) => break,
            Err(e) => {
                tracing::error!(job = %job.id, "reload: reading the old buffer: {e}");
                break;
            }
        }
    }
    let _ = new.sync();
    if lost > 0 {
        tracing::error!(job = %job.id, "reload: the new buffer did not take {lost} events of the old one: dropped");
        agent.stats(&job.id).events_dropped.fetch_add(lost, std::sync::atomic::Ordering::Relaxed);
    }
    tracing::info!(job = %job.id, batches, "reload: the sink's new buffer took over what the old one held");
    drop(new);
    moved
}

/// Whether a set finished within `grace`.
async fn drained(set: &mut JoinSet<()>, grace: std::time::Duration) -> bool {
    tokio::time::timeout(grace, async { while set.join_next().await.is_some() {} }).await.is_ok()
}

/// Waits for a stage, aborting (and saying so) what outlives `grace`.
async fn wait(set: &mut JoinSet<()>, grace: std::time::Duration, what: &str) {
    if !drained(set, grace).await {
        tracing::warn!("reload: {} {what} did not finish within {grace:?}: aborted", set.len());
        set.abort_all();
        while set.join_next().await.is_some() {}
    }
}
