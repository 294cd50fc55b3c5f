//! A harness to run one plugin without an agent: for plugin unit tests and
//! for `vane test JOB`.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::config::{Mark, Node};
use crate::context::{
    Context, ContextParts, Introspect, JobStats, LifecycleControl, Outlet, Spawner, Task,
};
use crate::event::{Event, now_ns};
use crate::plugin::{BoxFuture, Result};

#[derive(Default)]
struct Collect(Mutex<Vec<Event>>);

impl Outlet for Collect {
    fn send(&self, events: Vec<Event>) -> BoxFuture<'_, ()> {
        self.0.lock().expect("not poisoned").extend(events);
        Box::pin(async {})
    }
}

type Added = Mutex<Vec<(String, Duration, Context, Task)>>;

#[derive(Default)]
struct Keep(Added);

impl Spawner for Keep {
    fn spawn_task(&self, ctx: Context, name: String, every: Duration, task: Task) {
        self.0
            .lock()
            .expect("not poisoned")
            .push((name, every, ctx, task));
    }
}

/// One job's context with an outlet that keeps what it is given.
pub struct Harness {
    ctx: Context,
    out: Arc<Collect>,
    tasks: Arc<Keep>,
    life: LifecycleControl,
}

impl Harness {
    /// A ready harness for a job called `job` on host `test-host`.
    pub fn new(job: &str) -> Harness {
        Harness::with(
            job,
            "test-host",
            std::env::temp_dir(),
            Node::null(Mark::default()),
            None,
        )
    }

    pub fn with(
        job: &str,
        host: &str,
        data_dir: PathBuf,
        config: Node,
        introspect: Option<Arc<dyn Introspect>>,
    ) -> Harness {
        let out = Arc::new(Collect::default());
        let tasks = Arc::new(Keep::default());
        let life = LifecycleControl::default();
        life.set_ready();
        let ctx = Context::new(ContextParts {
            job: job.into(),
            plugin: job.into(),
            host: host.into(),
            data_dir,
            config,
            stats: Arc::new(JobStats::default()),
            lifecycle: life.lifecycle(),
            outlet: out.clone(),
            spawner: tasks.clone(),
            introspect,
            routes: None,
        });
        Harness {
            ctx,
            out,
            tasks,
            life,
        }
    }

    pub fn context(&self) -> &Context {
        &self.ctx
    }

    /// Signals the agent's stop to the plugin.
    pub fn stop(&self) {
        self.life.stop();
    }

    /// Runs every task the plugin added, once each, reporting their errors.
    pub async fn run_tasks_once(&self) {
        let mut added = std::mem::take(&mut *self.tasks.0.lock().expect("not poisoned"));
        for (name, _, ctx, task) in added.iter_mut() {
            if let Err(e) = task(ctx.clone()).await {
                ctx.report_error(format!("task {name}: {e}"));
            }
        }
        self.tasks.0.lock().expect("not poisoned").extend(added);
    }

    /// Events emitted so far, stamped with the time and host as the agent does.
    pub fn take_emitted(&self) -> Vec<Event> {
        let mut v = std::mem::take(&mut *self.out.0.lock().expect("not poisoned"));
        let now = now_ns();
        for e in &mut v {
            e.stamp(now, self.ctx.host());
        }
        v
    }

    /// Polls a source once: the events it returned, then those it emitted.
    pub async fn poll<S: crate::plugin::DynSource + ?Sized>(
        &self,
        source: &mut S,
    ) -> Result<Vec<Event>> {
        let mut got = source.poll(&self.ctx).await?;
        let now = now_ns();
        for e in &mut got {
            e.stamp(now, self.ctx.host());
        }
        got.extend(self.take_emitted());
        Ok(got)
    }
}
