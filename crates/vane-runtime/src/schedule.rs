//! Running sources: polled jobs on their interval with a per-poll timeout,
//! long-running services, and the tasks plugins add. A panic or failure in
//! one is counted, logged and answered with a rebuild after a backoff; it
//! never touches another job.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::task::AbortHandle;
use tokio::time::{Instant, MissedTickBehavior};
use vane_core::context::{Context, Spawner, Task};
use vane_core::plugin::Action;
use vane_core::registry::{BuildError, Instance};

use crate::config::Job;
use crate::guard::{Backoff, CatchUnwind, catch};

/// Makes a fresh context (with its own task spawner) and builds an instance in it.
pub struct Factory {
    pub context: Box<dyn Fn() -> (Context, Arc<TaskSpawner>) + Send + Sync>,
    pub build: BuildFn,
}

/// Builds an instance of a job's plugin in a context.
pub type BuildFn = Box<dyn Fn(&Context) -> Result<Instance, BuildError> + Send + Sync>;

/// The runtime's [`Spawner`]: one per instance, so a restart ends the
/// instance's tasks; every handle is also kept agent-wide for shutdown.
pub struct TaskSpawner {
    own: Mutex<Vec<AbortHandle>>,
    all: Arc<Mutex<Vec<AbortHandle>>>,
}

impl TaskSpawner {
    pub fn new(all: Arc<Mutex<Vec<AbortHandle>>>) -> TaskSpawner {
        TaskSpawner {
            own: Mutex::new(Vec::new()),
            all,
        }
    }

    /// Ends every task this instance added.
    pub fn abort_all(&self) {
        for h in self.own.lock().expect("not poisoned").drain(..) {
            h.abort();
        }
    }
}

impl Spawner for TaskSpawner {
    fn spawn_task(&self, ctx: Context, name: String, every: Duration, mut task: Task) {
        let every = every.max(Duration::from_millis(1));
        let h = tokio::spawn(async move {
            ctx.ready().await;
            let mut ticker = tokio::time::interval(every);
            ticker.set_missed_tick_behavior(MissedTickBehavior::Skip);
            let stats = ctx.stats_arc().clone();
            let stop = ctx.stopping();
            tokio::pin!(stop);
            loop {
                tokio::select! {
                    biased;
                    _ = &mut stop => break,
                    _ = ticker.tick() => {}
                }
                stats.polls.fetch_add(1, Relaxed);
                match tokio::time::timeout(every, CatchUnwind(task(ctx.clone()))).await {
                    Ok(Ok(Ok(()))) => {}
                    Ok(Ok(Err(e))) => {
                        stats.poll_errors.fetch_add(1, Relaxed);
                        ctx.report_error(format!("task {name}: {e}"));
                    }
                    Ok(Err(p)) => {
                        stats.panics.fetch_add(1, Relaxed);
                        ctx.report_error(format!("task {name} panicked: {p}"));
                    }
                    Err(_) => {
                        stats.poll_timeouts.fetch_add(1, Relaxed);
                        ctx.report_error(format!(
                            "task {name} timed out after {}",
                            vane_core::Duration(every)
                        ));
                    }
                }
            }
        });
        let a = h.abort_handle();
        self.own.lock().expect("not poisoned").push(a.clone());
        self.all.lock().expect("not poisoned").push(a);
    }
}

enum Next {
    Stop,
    Restart,
}

/// Builds an instance, absorbing panics; the error says what to do next.
fn build(factory: &Factory, ctx: &Context) -> Result<Instance, (String, Action)> {
    match catch(|| (factory.build)(ctx)) {
        Ok(Ok(i)) => Ok(i),
        Ok(Err(BuildError::Config(e))) => Err((e.to_string(), Action::Stop)),
        Ok(Err(BuildError::Plugin(e))) => {
            let a = match e.action() {
                Action::Stop => Action::Stop,
                _ => Action::Restart,
            };
            Err((e.to_string(), a))
        }
        Err(p) => {
            ctx.stats().panics.fetch_add(1, Relaxed);
            Err((format!("panicked while building: {p}"), Action::Restart))
        }
    }
}

/// Supervises a job (polled or long-running) until the agent stops.
pub async fn supervise(job: Arc<Job>, factory: Factory, lifecycle: vane_core::context::Lifecycle) {
    lifecycle.ready().await;
    let mut backoff = Backoff::default();
    loop {
        if lifecycle.is_stopping() {
            return;
        }
        let (ctx, spawner) = (factory.context)();
        let next = match build(&factory, &ctx) {
            Ok(Instance::Source(src)) => run_polled(&job, src, &ctx, &mut backoff).await,
            Ok(Instance::Service(svc)) => run_service(svc, &ctx).await,
            Ok(_) => {
                ctx.report_error("not a source plugin");
                Next::Stop
            }
            Err((msg, Action::Stop)) => {
                ctx.report_error(format!("cannot start: {msg}; this job stays stopped"));
                Next::Stop
            }
            Err((msg, _)) => {
                ctx.report_error(format!("cannot start: {msg}"));
                Next::Restart
            }
        };
        spawner.abort_all();
        match next {
            Next::Stop => return,
            Next::Restart => {
                if lifecycle.is_stopping() {
                    return;
                }
                let wait = backoff.next_wait();
                ctx.warn(format!("restarting in {:.1}s", wait.as_secs_f64()));
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = lifecycle.stopping() => return,
                }
                ctx.stats().restarts.fetch_add(1, Relaxed);
            }
        }
    }
}

async fn run_polled(
    job: &Job,
    mut src: Box<dyn vane_core::plugin::DynSource>,
    ctx: &Context,
    backoff: &mut Backoff,
) -> Next {
    let stats = ctx.stats_arc().clone();
    let mut ticker = tokio::time::interval(job.interval);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Skip);
    // One stop future for the instance's life: re-creating it on every poll
    // costs more than the poll itself for trivial sources.
    let stop = ctx.stopping();
    tokio::pin!(stop);
    loop {
        tokio::select! {
            biased;
            _ = &mut stop => return Next::Stop,
            _ = ticker.tick() => {}
        }
        let started = Instant::now();
        stats.polls.fetch_add(1, Relaxed);
        let r = tokio::select! {
            biased;
            _ = &mut stop => return Next::Stop,
            r = tokio::time::timeout(job.timeout, CatchUnwind(src.poll(ctx))) => r,
        };
        let took = started.elapsed();
        stats.poll_ns_last.store(took.as_nanos() as u64, Relaxed);
        stats
            .poll_ns_total
            .fetch_add(took.as_nanos() as u64, Relaxed);
        if took > job.interval {
            let missed = (took.as_nanos() / job.interval.as_nanos().max(1)) as u64;
            stats.overruns.fetch_add(missed, Relaxed);
        }
        match r {
            Ok(Ok(Ok(events))) => {
                backoff.reset();
                ctx.emit_all(events).await;
            }
            Ok(Ok(Err(e))) => {
                stats.poll_errors.fetch_add(1, Relaxed);
                ctx.report_error(format!("poll failed: {e}"));
                match e.action() {
                    Action::Retry => {}
                    Action::Restart => return Next::Restart,
                    Action::Stop => {
                        ctx.report_error("this job stops for good (the plugin asked to)");
                        return Next::Stop;
                    }
                }
            }
            Ok(Err(panic)) => {
                stats.panics.fetch_add(1, Relaxed);
                ctx.report_error(format!("poll panicked: {panic}"));
                return Next::Restart;
            }
            Err(_) => {
                stats.poll_timeouts.fetch_add(1, Relaxed);
                ctx.report_error(format!(
                    "poll timed out after {}",
                    vane_core::Duration(job.timeout)
                ));
            }
        }
    }
}

async fn run_service(svc: Box<dyn vane_core::plugin::DynService>, ctx: &Context) -> Next {
    match CatchUnwind(svc.run(ctx.clone())).await {
        Ok(Ok(())) => {
            if !ctx.is_stopping() {
                ctx.info("finished");
            }
            Next::Stop
        }
        Ok(Err(e)) => {
            ctx.stats().poll_errors.fetch_add(1, Relaxed);
            ctx.report_error(format!("failed: {e}"));
            if e.action() == Action::Stop {
                Next::Stop
            } else {
                Next::Restart
            }
        }
        Err(p) => {
            ctx.stats().panics.fetch_add(1, Relaxed);
            ctx.report_error(format!("panicked: {p}"));
            Next::Restart
        }
    }
}
