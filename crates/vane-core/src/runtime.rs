//! The runtime's side of a [`Context`](crate::context::Context): what an
//! agent (or the test harness) provides to the plugins it runs. Plugin
//! authors never need this module; runtimes implement its traits and build
//! contexts from [`Parts`].

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::ack::Batch;
use crate::error::SourceError;
use crate::event::Event;
use crate::future::BoxFuture;
use crate::http::HttpHandler;
use crate::lifecycle::Lifecycle;
use crate::node::Node;
use crate::stats::JobStats;

/// Where emitted events go (the runtime's route; a buffer in tests).
pub trait Outlet: Send + Sync + 'static {
    /// Hands events on; waits while the next queue is full.
    fn send(&self, events: Vec<Event>) -> BoxFuture<'_, ()>;

    /// Hands events on if that needs no waiting; gives them back otherwise.
    fn try_send(&self, events: Vec<Event>) -> Option<Vec<Event>> {
        Some(events)
    }

    /// Hands events on with acknowledgements that follow them to the sinks.
    /// An outlet that does not track them lets them go (acknowledged) at once.
    fn send_batch(&self, batch: Batch) -> BoxFuture<'_, ()> {
        drop(batch.acks);
        self.send(batch.events)
    }
}

/// One run of a task a plugin added (`Context::add_task`).
pub type Task = Box<dyn FnMut() -> BoxFuture<'static, Result<(), SourceError>> + Send>;

/// Runs the tasks plugins add, each on its own interval (the runtime's
/// scheduler). One spawner serves one instance, so a restart ends its tasks.
pub trait Spawner: Send + Sync + 'static {
    fn spawn_task(&self, name: String, every: Duration, task: Task);
}

/// The agent's HTTP port (`agent.http`), as plugins see it.
pub trait Routes: Send + Sync + 'static {
    /// Serves `path` for `job` (freed when a reload rebuilds or removes
    /// it); false when the path is taken.
    fn add(&self, job: &str, path: &str, handler: HttpHandler) -> bool;
}

/// The agent's own figures, for the `internal` source.
pub trait Introspect: Send + Sync + 'static {
    fn report(&self, now_ns: i64) -> Vec<Event>;
}

/// The runtime's side of [`Lifecycle`]: it says when the agent is ready and
/// when it stops.
#[derive(Debug)]
pub struct LifecycleControl {
    ready: watch::Sender<bool>,
    stop: watch::Sender<bool>,
}

impl Default for LifecycleControl {
    fn default() -> Self {
        LifecycleControl { ready: watch::channel(false).0, stop: watch::channel(false).0 }
    }
}

impl LifecycleControl {
    pub fn lifecycle(&self) -> Lifecycle {
        Lifecycle { ready: self.ready.subscribe(), stop: self.stop.subscribe() }
    }

    pub fn set_ready(&self) {
        self.ready.send_replace(true);
    }

    pub fn stop(&self) {
        self.stop.send_replace(true);
    }

    pub fn is_stopping(&self) -> bool {
        *self.stop.borrow()
    }
}

/// Everything a [`Context`](crate::context::Context) is built from
/// (`Context::from(parts)`).
pub struct Parts {
    pub job: String,
    pub plugin: String,
    pub host: String,
    pub data_dir: PathBuf,
    pub config: Node,
    pub stats: Arc<JobStats>,
    pub lifecycle: Lifecycle,
    pub outlet: Arc<dyn Outlet>,
    pub spawner: Arc<dyn Spawner>,
    pub introspect: Option<Arc<dyn Introspect>>,
    /// The agent's HTTP port, when `agent.http` is set.
    pub routes: Option<Arc<dyn Routes>>,
    /// Where the `board` sink offers boards to every job (one per agent).
    pub boards: Arc<crate::board::Desk>,
}
