//! Assembling and running the agent, in named steps: a queue for every
//! engine and sink, a route and a context for every job, sinks and engines
//! built and started, a supervisor for every source, readiness, and an
//! orderly shutdown (sources stop, engines drain, sinks flush).

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::task::JoinSet;
use vane_core::context::Context;
use vane_core::error::{BuildAction, BuildError};
use vane_core::instance::{DynEngine, Instance};
use vane_core::lease::Lease;
use vane_core::registry::{Registry, RegistryError, Role};
use vane_core::runtime::{Introspect, LifecycleControl, Outlet, Parts};
use vane_core::stats::JobStats;

use crate::buffer::Store;
use crate::config::{Config, EngineJob, Job, SinkJob};
use crate::engine::{BuildEngine, EngineTask, Share, partition};
use crate::introspect::Introspection;
use crate::queue::{Rx, Tx, queue};
use crate::route::{Prepare, Route};
use crate::sink::{BuildSink, SinkTask};
use crate::source::{Factory, supervise};
use crate::tasks::{AllTasks, TaskSpawner};

/// Why the agent could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("{0}")]
    Registry(#[from] RegistryError),
    #[error("{role} `{id}` cannot start: {reason}")]
    Build { role: Role, id: String, reason: String },
    #[error("cannot listen on {addr} (agent.http): {source}")]
    Http { addr: vane_core::listen::Listen, source: std::io::Error },
}

/// What shutdown left behind.
#[derive(Debug, Default)]
pub struct Report {
    /// Tasks that did not finish within the shutdown timeout and were aborted.
    pub aborted: usize,
    /// Every job's counters, as they ended.
    pub stats: HashMap<String, Arc<JobStats>>,
}

/// Runs the agent until `stop` resolves, then shuts down in order.
pub async fn run(
    config: Config,
    registry: Arc<Registry>,
    stop: impl Future<Output = ()>,
) -> Result<Report, StartError> {
    registry.finish()?;
    // Bus-backed engines run in workers; here they are what is published to.
    let agent = Arc::new(Agent::new(config.publishing(), registry));
    tracing::info!(jobs = agent.stats.len(), "starting");
    let mut queues = agent.queues();
    let http = agent.serve_http().await?;
    let (sinks, prepared) = agent.start_sinks(&mut queues)?;
    let engines = agent.start_engines(&mut queues)?;
    let sources = agent.start_sources(&queues);
    // Only routes and engine tasks hold senders from here on, so queues
    // close as their feeders end.
    drop(queues);
    tokio::pin!(stop);
    if agent.wait_ready(prepared, &mut stop).await {
        stop.await;
    }
    Ok(agent.shutdown(sources, engines, sinks, http).await)
}

/// Every engine's and sink's queue, until the routes hold them.
struct Queues {
    txs: HashMap<String, Tx>,
    rxs: HashMap<String, Rx>,
}

/// What every job of a running agent shares.
struct Agent {
    config: Arc<Config>,
    registry: Arc<Registry>,
    life: LifecycleControl,
    host: Arc<str>,
    stats: HashMap<String, Arc<JobStats>>,
    introspection: Arc<Introspection>,
    all_tasks: AllTasks,
    routes: Option<Arc<crate::http::RouteTable>>,
    boards: Arc<vane_core::board::Desk>,
}

impl Agent {
    fn new(config: Config, registry: Arc<Registry>) -> Agent {
        let stats: HashMap<String, Arc<JobStats>> =
            config.jobs().map(|(id, _, _)| (id.to_owned(), Arc::new(JobStats::default()))).collect();
        let jobs = config
            .jobs()
            .map(|(id, plugin, role)| (id.to_owned(), plugin.to_owned(), role.as_str(), stats[id].clone()))
            .collect();
        let routes = config.agent.http.as_ref().map(|_| {
            let sinks = config.sinks.iter().map(|j| (j.id.clone(), stats[&j.id].clone())).collect();
            Arc::new(crate::http::RouteTable::new(sinks))
        });
        Agent {
            host: Arc::from(config.host.as_str()),
            introspection: Arc::new(Introspection::new(jobs)),
            stats,
            routes,
            boards: Arc::default(),
            config: Arc::new(config),
            registry,
            life: LifecycleControl::default(),
            all_tasks: AllTasks::default(),
        }
    }

    /// A queue for every engine and sink, their depths reported by `internal`.
    fn queues(&self) -> Queues {
        let mut q = Queues { txs: HashMap::new(), rxs: HashMap::new() };
        let ids = self.config.engines.iter().map(|j| &j.id).chain(self.config.sinks.iter().map(|j| &j.id));
        for id in ids {
            let (tx, rx) = queue(self.config.queue_size);
            self.introspection.add_queue(id, &tx);
            q.txs.insert(id.clone(), tx);
            q.rxs.insert(id.clone(), rx);
        }
        q
    }

    /// The agent's HTTP port, when `agent.http` is set.
    async fn serve_http(&self) -> Result<Option<tokio::task::JoinHandle<()>>, StartError> {
        let (Some(addr), Some(table)) = (&self.config.agent.http, &self.routes) else {
            return Ok(None);
        };
        crate::http::serve(addr.0.addr, table.clone(), self.life.lifecycle())
            .await
            .map(Some)
            .map_err(|source| StartError::Http { addr: addr.0, source })
    }

    /// A job's route: its `next`, or every sink; a sink's goes nowhere.
    fn route<S>(&self, job: &Job<S>, queues: &Queues, role: Role) -> Arc<Route> {
        let targets = match role {
            Role::Sink => Vec::new(),
            _ if job.next.is_empty() => self.config.sinks.iter().map(|s| queues.txs[&s.id].clone()).collect(),
            _ => job.next.iter().map(|id| queues.txs[id].clone()).collect(),
        };
        let stats = self.stats[&job.id].clone();
        Arc::new(Route { prepare: Prepare::new(job, self.host.clone(), stats.clone()), targets, stats })
    }

    /// A fresh context for an instance of `job`, with its own task spawner.
    fn context<S>(&self, job: &Job<S>, outlet: Arc<dyn Outlet>) -> (Context, Arc<TaskSpawner>) {
        let stats = self.stats[&job.id].clone();
        let spawner = Arc::new(TaskSpawner::new(
            Arc::from(job.id.as_str()),
            stats.clone(),
            self.life.lifecycle(),
            self.all_tasks.clone(),
        ));
        let ctx = Context::from(Parts {
            job: job.id.clone(),
            plugin: job.plugin.clone(),
            host: self.host.to_string(),
            data_dir: self.config.data_dir.clone(),
            config: job.config.clone(),
            stats,
            lifecycle: self.life.lifecycle(),
            outlet,
            spawner: spawner.clone(),
            introspect: Some(self.introspection.clone() as Arc<dyn Introspect>),
            routes: self.routes.clone().map(|r| r as Arc<dyn vane_core::runtime::Routes>),
            boards: self.boards.clone(),
        });
        (ctx, spawner)
    }

    /// Builds an instance of `job` in `ctx` through the registry.
    fn build<S>(&self, job: &Job<S>, role: Role, ctx: &Context) -> Result<Instance, BuildError> {
        let plugin = self.registry.find(&job.plugin, role).expect("validated plugin");
        crate::source::build(|| plugin.build(&job.config, &job.path, ctx), ctx)
    }

    /// The first instance of an engine or sink, at start-up: `None` to be
    /// built later (a retryable failure); an error stops the agent starting.
    fn build_first<S, T>(
        &self,
        job: &Job<S>,
        role: Role,
        ctx: &Context,
        take: fn(Instance) -> Option<T>,
    ) -> Result<Option<T>, StartError> {
        match self.build(job, role, ctx) {
            Ok(inst) => Ok(Some(take(inst).expect("validated role"))),
            Err(e) if e.action() == BuildAction::Stop => {
                Err(StartError::Build { role, id: job.id.clone(), reason: e.to_string() })
            }
            Err(e) => {
                ctx.report_error(format!("cannot be built yet: {e}; retrying"));
                Ok(None)
            }
        }
    }

    fn start_sinks(
        self: &Arc<Self>,
        queues: &mut Queues,
    ) -> Result<(JoinSet<()>, Vec<oneshot::Receiver<()>>), StartError> {
        let (mut set, mut prepared) = (JoinSet::new(), Vec::new());
        for job in &self.config.sinks {
            let (ctx, _) = self.context(job, self.route(job, queues, Role::Sink));
            let first = self.build_first(job, Role::Sink, &ctx, |i| match i {
                Instance::Sink(s) => Some(s),
                _ => None,
            })?;
            let (tx, rx) = oneshot::channel();
            prepared.push(rx);
            let (agent, job2) = (self.clone(), Arc::new(job.clone()));
            let build: BuildSink = Arc::new(move |ctx: &Context| match agent.build(&job2, Role::Sink, ctx)? {
                Instance::Sink(s) => Ok(s),
                other => Err(BuildError::stop(format!("a {} is not a sink", other.role()))),
            });
            let store = self.open_store(job, &ctx);
            let task = SinkTask { job: Arc::new(job.clone()), ctx, build, store, prepared: tx };
            set.spawn(task.run(first, queues.rxs.remove(&job.id).expect("a queue per sink")));
        }
        Ok((set, prepared))
    }

    fn start_engines(self: &Arc<Self>, queues: &mut Queues) -> Result<JoinSet<()>, StartError> {
        let mut set = JoinSet::new();
        for job in &self.config.engines {
            let rx = queues.rxs.remove(&job.id).expect("a queue per engine");
            // With workers, one queue each; a dispatcher splits events by series.
            let inputs = if job.spec.workers > 1 {
                let (txs, rxs): (Vec<Tx>, Vec<Rx>) =
                    (0..job.spec.workers).map(|_| queue(self.config.queue_size)).unzip();
                set.spawn(partition(rx, txs));
                rxs
            } else {
                vec![rx]
            };
            for (index, rx) in inputs.into_iter().enumerate() {
                let route = self.route(job, queues, Role::Engine);
                let (ctx, _) = self.context(job, route.clone());
                let first = self.build_first(job, Role::Engine, &ctx, |i| match i {
                    Instance::Engine(e) => Some(e),
                    _ => None,
                })?;
                let lease = self.lease(job, first.as_deref(), &ctx)?;
                let task = EngineTask { share: Share { index, lease }, ..self.engine_task(job, ctx, route) };
                set.spawn(task.run(first, rx));
            }
        }
        Ok(set)
    }

    /// The lease a bus worker takes part in, when its engine beats once
    /// across its workers (an engine not built yet may: it takes part).
    fn lease(
        &self,
        job: &EngineJob,
        first: Option<&dyn DynEngine>,
        ctx: &Context,
    ) -> Result<Option<Arc<dyn Lease>>, StartError> {
        let Some(spec) = &job.spec.lease else { return Ok(None) };
        if first.is_some_and(|e| e.beat_each_worker() || job.spec.beat.or_else(|| e.default_beat()).is_none()) {
            return Ok(None);
        }
        let failed = |reason: String| StartError::Build { role: Role::Engine, id: job.id.clone(), reason };
        let hold = self.registry.find_lease(&spec.plugin).ok_or_else(|| {
            failed(format!("plugin `{}` offers no lease: its workers cannot share one beat", spec.plugin))
        })?;
        hold(&spec.name, &spec.config, ctx).map(Some).map_err(|e| failed(e.to_string()))
    }

    fn engine_task(self: &Arc<Self>, job: &EngineJob, ctx: Context, route: Arc<Route>) -> EngineTask {
        let (agent, job2) = (self.clone(), Arc::new(job.clone()));
        let build: BuildEngine = Arc::new(move |ctx: &Context| match agent.build(&job2, Role::Engine, ctx)? {
            Instance::Engine(e) => Ok(e),
            other => Err(BuildError::stop(format!("a {} is not an engine", other.role()))),
        });
        EngineTask { job: Arc::new(job.clone()), ctx, route, build, share: Share::default() }
    }

    fn start_sources(self: &Arc<Self>, queues: &Queues) -> JoinSet<()> {
        let mut set = JoinSet::new();
        for job in &self.config.sources {
            let route = self.route(job, queues, Role::Source);
            let job = Arc::new(job.clone());
            let (a1, a2, j1, j2) = (self.clone(), self.clone(), job.clone(), job.clone());
            let factory = Factory {
                context: Box::new(move || a1.context(&j1, route.clone())),
                build: Box::new(move |ctx: &Context| a2.build(&j2, Role::Source, ctx)),
            };
            set.spawn(supervise(job, factory, self.life.lifecycle()));
        }
        set
    }

    /// Opens a sink's buffer (see [`crate::buffer::dir`] for where a disk
    /// buffer lives). One that cannot be opened is reported, and the sink
    /// starts with it [`Opening`](crate::buffer::Opening).
    fn open_store(&self, job: &SinkJob, ctx: &Context) -> Box<dyn Store> {
        use crate::buffer::{Kind, Memory, Opening};
        let b = &job.spec.buffer;
        match b.kind {
            Kind::Memory => Box::new(Memory::new(b.max_bytes(), b.when_full)),
            Kind::Disk => {
                let o = Opening::new(crate::buffer::dir(&self.config.data_dir, &job.id), b.max_bytes(), b.when_full);
                if let Some(e) = o.error() {
                    ctx.report_error(format!(
                        "{e}; the other sinks start, this one tries again (when_full applies meanwhile)"
                    ));
                }
                Box::new(o)
            }
        }
    }

    /// Ready once every sink has tried to prepare its backend (at most 10 s);
    /// false when `stop` came first.
    async fn wait_ready(
        &self,
        prepared: Vec<oneshot::Receiver<()>>,
        stop: &mut (impl Future<Output = ()> + Unpin),
    ) -> bool {
        let all = async {
            for p in prepared {
                let _ = p.await;
            }
        };
        let stopped = tokio::select! {
            _ = tokio::time::timeout(Duration::from_secs(10), all) => false,
            _ = stop => true,
        };
        self.life.set_ready();
        tracing::info!(jobs = self.stats.len(), host = %self.host, "vane is running");
        crate::notify::notify(&format!("READY=1\nSTATUS=running {} jobs", self.stats.len()));
        !stopped
    }

    /// Sources stop, engines drain, sinks flush; each stage gets the
    /// shutdown timeout before what is left of it is aborted.
    async fn shutdown(
        self: Arc<Self>,
        mut sources: JoinSet<()>,
        mut engines: JoinSet<()>,
        mut sinks: JoinSet<()>,
        http: Option<tokio::task::JoinHandle<()>>,
    ) -> Report {
        tracing::info!("stopping: sources stop, engines drain, sinks flush");
        crate::notify::notify("STOPPING=1\nSTATUS=stopping: sources stop, engines drain, sinks flush");
        self.life.stop();
        let grace = self.config.shutdown_timeout;
        let mut report = Report { stats: self.stats.clone(), ..Report::default() };
        report.aborted += drain(&mut sources, grace).await;
        for h in self.all_tasks.lock().expect("not poisoned").drain(..) {
            h.abort();
        }
        report.aborted += drain(&mut engines, grace).await;
        report.aborted += drain(&mut sinks, grace).await;
        for j in &self.config.sinks {
            let stalled = crate::buffer_io::stalled_for(&self.stats[&j.id]);
            if !stalled.is_zero() {
                tracing::error!(
                    job = %j.id,
                    "its buffer's disk has not answered for {:.1}s: what it had not synced is left to the next start",
                    stalled.as_secs_f64()
                );
            }
        }
        if let Some(h) = http {
            h.abort();
        }
        if report.aborted > 0 {
            tracing::warn!(aborted = report.aborted, "some tasks did not finish within the shutdown timeout");
        }
        report
    }
}

/// Waits for a set of tasks up to `grace`, then aborts what is left. A
/// task that cannot be aborted (a blocking call that does not return) is
/// waited for one more second, then left behind: the process exits anyway.
async fn drain(set: &mut JoinSet<()>, grace: Duration) -> usize {
    let all = async { while set.join_next().await.is_some() {} };
    if tokio::time::timeout(grace, all).await.is_ok() {
        return 0;
    }
    let left = set.len();
    set.abort_all();
    let aborted = async { while set.join_next().await.is_some() {} };
    let _ = tokio::time::timeout(Duration::from_secs(1), aborted).await;
    left
}

#[cfg(test)]
#[path = "agent_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "outcome_tests.rs"]
mod outcome_tests;
