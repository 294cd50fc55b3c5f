//! Running source jobs: polled ones on their interval with a per-poll
//! timeout, long-running ones until the agent stops. Each job's supervisor
//! builds its instance, honours what a failure asks for ([`SourceAction`],
//! [`ServiceAction`], [`BuildAction`]) and rebuilds after a backoff; a
//! panic counts as a restart. A failure never touches another job.

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

use tokio::time::Instant;
use vane_core::context::Context;
use vane_core::error::{BuildAction, BuildError, ServiceAction, SourceAction};
use vane_core::instance::{DynService, DynSource, Instance};
use vane_core::lifecycle::Lifecycle;

use crate::config::SourceJob;
use crate::guard::{Backoff, CatchUnwind, catch};
use crate::tasks::TaskSpawner;
use crate::ticks::Ticks;

/// Makes a fresh context (with its own task spawner) and builds an instance in it.
pub struct Factory {
    pub context: Box<dyn Fn() -> (Context, Arc<TaskSpawner>) + Send + Sync>,
    pub build: BuildFn,
}

/// Builds an instance of a job's plugin in a context.
pub type BuildFn = Box<dyn Fn(&Context) -> Result<Instance, BuildError> + Send + Sync>;

/// What the supervisor does once an instance is done.
enum Next {
    Stop,
    Restart,
}

/// Builds an instance, absorbing a panic (a panic is a build to retry).
pub fn build(make: impl FnOnce() -> Result<Instance, BuildError>, ctx: &Context) -> Result<Instance, BuildError> {
    catch(make).unwrap_or_else(|p| {
        ctx.stats().panics.fetch_add(1, Relaxed);
        Err(BuildError::retry(format!("panicked while building: {p}")))
    })
}

/// Supervises a source job (polled or long-running) until the agent stops.
pub async fn supervise(job: Arc<SourceJob>, factory: Factory, lifecycle: Lifecycle) {
    lifecycle.ready().await;
    let mut backoff = Backoff::default();
    loop {
        if lifecycle.is_stopping() {
            return;
        }
        let (ctx, spawner) = (factory.context)();
        let next = match build(|| (factory.build)(&ctx), &ctx) {
            Ok(Instance::Source(src)) => run_polled(&job, src, &ctx, &mut backoff).await,
            Ok(Instance::Service(svc)) => {
                let began = Instant::now();
                let next = run_service(svc, &ctx).await;
                ran_well(&mut backoff, began.elapsed());
                next
            }
            Ok(other) => {
                ctx.report_error(format!("a {} is not a source; this job stays stopped", other.role()));
                Next::Stop
            }
            Err(e) if e.action() == BuildAction::Stop => {
                ctx.report_error(format!("cannot start: {e}; this job stays stopped"));
                Next::Stop
            }
            Err(e) => {
                ctx.report_error(format!("cannot start: {e}"));
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

/// How long a service must have run before its failure counts as a new
/// one: then the next restart waits the first wait again (a listener up for
/// months whose broker restarts reconnects after 1 s, not after 60).
const RAN_WELL: std::time::Duration = std::time::Duration::from_secs(60);

fn ran_well(backoff: &mut Backoff, ran: std::time::Duration) {
    if ran >= RAN_WELL {
        backoff.reset();
    }
}

async fn run_polled(job: &SourceJob, mut src: Box<dyn DynSource>, ctx: &Context, backoff: &mut Backoff) -> Next {
    let stats = ctx.stats();
    let (interval, timeout) = (job.spec.interval, job.spec.timeout);
    let mut ticks = Ticks::new(interval, ctx.lifecycle());
    while ticks.next().await {
        let started = Instant::now();
        stats.polls.fetch_add(1, Relaxed);
        let Some(r) = ticks.or_stop(tokio::time::timeout(timeout, CatchUnwind(src.poll(ctx)))).await else {
            break;
        };
        let took = started.elapsed();
        stats.poll_ns_last.store(took.as_nanos() as u64, Relaxed);
        stats.poll_ns_total.fetch_add(took.as_nanos() as u64, Relaxed);
        if took > interval {
            let missed = (took.as_nanos() / interval.as_nanos().max(1)) as u64;
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
                    SourceAction::Retry => {}
                    SourceAction::Restart => return Next::Restart,
                    SourceAction::Stop => {
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
                ctx.report_error(format!("poll timed out after {}", vane_core::Duration(timeout)));
            }
        }
    }
    Next::Stop
}

async fn run_service(svc: Box<dyn DynService>, ctx: &Context) -> Next {
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
            match e.action() {
                ServiceAction::Stop => {
                    ctx.report_error("this job stops for good (the plugin asked to)");
                    Next::Stop
                }
                ServiceAction::Restart => Next::Restart,
            }
        }
        Err(p) => {
            ctx.stats().panics.fetch_add(1, Relaxed);
            ctx.report_error(format!("panicked: {p}"));
            Next::Restart
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_service_that_ran_well_restarts_after_the_first_wait_again() {
        let mut b = Backoff::default();
        for _ in 0..6 {
            b.next_wait();
        }
        ran_well(&mut b, Duration::from_secs(5));
        assert!(b.next_wait() > Duration::from_secs(40), "a quick failure keeps the grown wait");
        ran_well(&mut b, RAN_WELL);
        assert!(b.next_wait() <= Duration::from_millis(1200), "after running well, the first wait");
    }
}
