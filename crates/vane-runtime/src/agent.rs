//! Assembling and running the agent, in named steps: a queue for every
//! engine and sink, a route and a context for every job, sinks and engines
//! built and started, a supervisor for every source, readiness, reloads
//! ([`crate::reload`]), and an orderly shutdown (sources stop, engines
//! drain, sinks flush). Each job runs as a unit of its own (its tasks, its
//! route, its lifecycle), so that a reload can stop or replace it alone.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinSet;
use vane_core::context::Context;
use vane_core::error::{BuildAction, BuildError};
use vane_core::instance::{DynEngine, Instance};
use vane_core::lease::Lease;
use vane_core::lifecycle::Lifecycle;
use vane_core::registry::{Registry, RegistryError, Role};
use vane_core::runtime::{Introspect, LifecycleControl, Outlet, Parts};
use vane_core::stats::JobStats;

use crate::buffer::Store;
use crate::buffer_io::SharedStore;
use crate::config::{Config, EngineJob, Job, SinkJob, SourceJob};
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
    let (_none, reloads) = mpsc::channel(1);
    run_reloading(config, registry, stop, reloads).await
}

/// Runs the agent until `stop` resolves, applying each config `reloads`
/// brings (valid ones: the caller checks them) as a difference
/// ([`crate::reload`]), then shuts down in order.
pub async fn run_reloading(
    config: Config,
    registry: Arc<Registry>,
    stop: impl Future<Output = ()>,
    mut reloads: mpsc::Receiver<Config>,
) -> Result<Report, StartError> {
    registry.finish()?;
    // Bus-backed engines run in workers; here they are what is published to.
    let config = Arc::new(config.publishing());
    let agent = Arc::new(Agent::new(&config, registry));
    tracing::info!(jobs = config.jobs().count(), "starting");
    let http = agent.serve_http(&config).await?;
    let (mut running, prepared) = Running::start(&agent, config)?;
    tokio::pin!(stop);
    if agent.wait_ready(&running, prepared, &mut stop).await {
        loop {
            tokio::select! {
                _ = &mut stop => break,
                Some(c) = reloads.recv() => running.reload(&agent, c.publishing()).await,
            }
        }
    }
    Ok(agent.shutdown(running, http).await)
}

/// What every job of a running agent shares; what a reload does not change.
pub(crate) struct Agent {
    registry: Arc<Registry>,
    /// The agent's own lifecycle: ready, then stopping (each job has its own too).
    life: LifecycleControl,
    host: Arc<str>,
    data_dir: std::path::PathBuf,
    stats: Mutex<HashMap<String, Arc<JobStats>>>,
    pub introspection: Arc<Introspection>,
    all_tasks: AllTasks,
    pub routes: Option<Arc<crate::http::RouteTable>>,
    boards: Arc<vane_core::board::Desk>,
}

/// One source job running: its supervisor, its route, its own lifecycle.
pub(crate) struct SourceUnit {
    pub life: LifecycleControl,
    pub route: Arc<Route>,
    pub tasks: JoinSet<()>,
}

/// One engine job running: its workers (and their dispatcher), one route.
pub(crate) struct EngineUnit {
    pub life: LifecycleControl,
    pub route: Arc<Route>,
    pub tasks: JoinSet<()>,
}

/// One sink job running: its task, its buffer, the signal that hands it over.
pub(crate) struct SinkUnit {
    pub job: Arc<SinkJob>,
    pub life: LifecycleControl,
    pub store: SharedStore,
    pub handoff: watch::Sender<bool>,
    pub tasks: JoinSet<()>,
}

/// The jobs of the config applied last, running.
pub(crate) struct Running {
    pub config: Arc<Config>,
    /// Each engine's and sink's queue: what routes send to.
    pub txs: HashMap<String, Tx>,
    pub sources: HashMap<String, SourceUnit>,
    pub engines: HashMap<String, EngineUnit>,
    pub sinks: HashMap<String, SinkUnit>,
}

impl Running {
    /// Starts every job of `config`: a queue for every engine and sink,
    /// sinks, engines, then sources. A job that cannot be built for good
    /// stops the start.
    fn start(agent: &Arc<Agent>, config: Arc<Config>) -> Result<(Running, Vec<oneshot::Receiver<()>>), StartError> {
        let mut r = Running {
            config: config.clone(),
            txs: HashMap::new(),
            sources: HashMap::new(),
            engines: HashMap::new(),
            sinks: HashMap::new(),
        };
        let mut rxs = HashMap::new();
        for id in config.engines.iter().map(|j| &j.id).chain(config.sinks.iter().map(|j| &j.id)) {
            rxs.insert(id.clone(), r.new_queue(agent, id));
        }
        let mut prepared = Vec::new();
        for job in &config.sinks {
            let store = agent.open_store(job);
            let (unit, ready) = agent.start_sink(job, rxs.remove(&job.id).expect("a queue per sink"), store)?;
            prepared.push(ready);
            r.sinks.insert(job.id.clone(), unit);
        }
        for job in &config.engines {
            let unit = agent.start_engine(job, &r, rxs.remove(&job.id).expect("a queue per engine"))?;
            r.engines.insert(job.id.clone(), unit);
        }
        for job in &config.sources {
            r.sources.insert(job.id.clone(), agent.start_source(job, &r));
        }
        Ok((r, prepared))
    }

    /// A queue for engine or sink `id`, its depth reported by `internal`.
    pub(crate) fn new_queue(&mut self, agent: &Agent, id: &str) -> Rx {
        let (tx, rx) = queue(self.config.queue_size);
        agent.introspection.add_queue(id, &tx);
        self.txs.insert(id.to_owned(), tx);
        rx
    }

    /// Where a job of the applied config sends: its `next`, or every sink.
    pub(crate) fn targets<S>(&self, job: &Job<S>) -> Vec<Tx> {
        if job.next.is_empty() {
            self.config.sinks.iter().map(|s| self.txs[&s.id].clone()).collect()
        } else {
            job.next.iter().map(|id| self.txs[id].clone()).collect()
        }
    }

    /// Every job's lifecycle.
    fn lives(&self) -> impl Iterator<Item = &LifecycleControl> {
        let sources = self.sources.values().map(|u| &u.life);
        let engines = self.engines.values().map(|u| &u.life);
        sources.chain(engines).chain(self.sinks.values().map(|u| &u.life))
    }
}

impl Agent {
    fn new(config: &Config, registry: Arc<Registry>) -> Agent {
        let stats: HashMap<String, Arc<JobStats>> =
            config.jobs().map(|(id, _, _)| (id.to_owned(), Arc::new(JobStats::default()))).collect();
        let routes = config.agent.http.as_ref().map(|_| Arc::new(crate::http::RouteTable::default()));
        let agent = Agent {
            host: Arc::from(config.host.as_str()),
            data_dir: config.data_dir.clone(),
            introspection: Arc::new(Introspection::new(Vec::new())),
            stats: Mutex::new(stats),
            routes,
            boards: Arc::default(),
            registry,
            life: LifecycleControl::default(),
            all_tasks: AllTasks::default(),
        };
        agent.publish_jobs(config);
        agent
    }

    /// The counters of job `id`, kept across reloads while the id stays.
    pub(crate) fn stats(&self, id: &str) -> Arc<JobStats> {
        self.stats.lock().expect("not poisoned").entry(id.to_owned()).or_default().clone()
    }

    /// Tells `internal` and `/health` which jobs there are; forgets the
    /// counters of jobs the config no longer has.
    pub(crate) fn publish_jobs(&self, config: &Config) {
        let mut stats = self.stats.lock().expect("not poisoned");
        stats.retain(|id, _| config.role_of(id).is_some());
        let mut stat = |id: &str| stats.entry(id.to_owned()).or_default().clone();
        let jobs = config
            .jobs()
            .map(|(id, plugin, role)| (id.to_owned(), plugin.to_owned(), role.as_str(), stat(id)))
            .collect();
        self.introspection.set_jobs(jobs);
        if let Some(t) = &self.routes {
            t.set_sinks(config.sinks.iter().map(|j| (j.id.clone(), stat(&j.id))).collect());
        }
    }

    /// The agent's HTTP port, when `agent.http` is set.
    async fn serve_http(&self, config: &Config) -> Result<Option<tokio::task::JoinHandle<()>>, StartError> {
        let (Some(addr), Some(table)) = (&config.agent.http, &self.routes) else {
            return Ok(None);
        };
        crate::http::serve(addr.0.addr, table.clone(), self.life.lifecycle())
            .await
            .map(Some)
            .map_err(|source| StartError::Http { addr: addr.0, source })
    }

    /// A job's route to `targets`.
    pub(crate) fn route<S>(&self, job: &Job<S>, targets: Vec<Tx>) -> Arc<Route> {
        let stats = self.stats(&job.id);
        Arc::new(Route::new(Prepare::new(job, self.host.clone(), stats.clone()), targets, stats))
    }

    /// A fresh context for an instance of `job`, with its own task spawner.
    fn context<S>(&self, job: &Job<S>, life: &Lifecycle, outlet: Arc<dyn Outlet>) -> (Context, Arc<TaskSpawner>) {
        let stats = self.stats(&job.id);
        let spawner =
            Arc::new(TaskSpawner::new(Arc::from(job.id.as_str()), stats.clone(), life.clone(), self.all_tasks.clone()));
        let ctx = Context::from(Parts {
            job: job.id.clone(),
            plugin: job.plugin.clone(),
            host: self.host.to_string(),
            data_dir: self.data_dir.clone(),
            config: job.config.clone(),
            stats,
            lifecycle: life.clone(),
            outlet,
            spawner: spawner.clone(),
            introspect: Some(self.introspection.clone() as Arc<dyn Introspect>),
            routes: self.routes.clone().map(|r| r as Arc<dyn vane_core::runtime::Routes>),
            boards: self.boards.clone(),
        });
        (ctx, spawner)
    }

    /// A job's own lifecycle: ready with the agent (at once when the agent
    /// is ready already: a job a reload adds), stopped with it or alone.
    fn job_life(&self) -> LifecycleControl {
        let life = LifecycleControl::default();
        if self.life.lifecycle().is_ready() {
            life.set_ready();
        }
        life
    }

    /// Builds an instance of `job` in `ctx` through the registry.
    fn build<S>(&self, job: &Job<S>, role: Role, ctx: &Context) -> Result<Instance, BuildError> {
        let plugin = self.registry.find(&job.plugin, role).expect("validated plugin");
        crate::source::build(|| plugin.build(&job.config, &job.path, ctx), ctx)
    }

    /// The first instance of an engine or sink: `None` to be built later
    /// (a retryable failure); an error when it never will be.
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

    /// Starts sink `job` on its queue and buffer.
    pub(crate) fn start_sink(
        self: &Arc<Self>,
        job: &SinkJob,
        rx: Rx,
        store: SharedStore,
    ) -> Result<(SinkUnit, oneshot::Receiver<()>), StartError> {
        let life = self.job_life();
        let (ctx, _) = self.context(job, &life.lifecycle(), self.route(job, Vec::new()));
        let first = self.build_first(job, Role::Sink, &ctx, |i| match i {
            Instance::Sink(s) => Some(s),
            _ => None,
        })?;
        let (tx, ready) = oneshot::channel();
        let (agent, job) = (self.clone(), Arc::new(job.clone()));
        let job2 = job.clone();
        let build: BuildSink = Arc::new(move |ctx: &Context| match agent.build(&job2, Role::Sink, ctx)? {
            Instance::Sink(s) => Ok(s),
            other => Err(BuildError::stop(format!("a {} is not a sink", other.role()))),
        });
        let handoff = watch::channel(false).0;
        let task =
            SinkTask { job: job.clone(), ctx, build, store: store.clone(), prepared: tx, handoff: handoff.subscribe() };
        let mut tasks = JoinSet::new();
        tasks.spawn(task.run(first, rx));
        Ok((SinkUnit { job, life, store, handoff, tasks }, ready))
    }

    /// Starts engine `job` on its queue: one worker, or `workers` with a
    /// dispatcher splitting events by series.
    pub(crate) fn start_engine(
        self: &Arc<Self>,
        job: &EngineJob,
        running: &Running,
        rx: Rx,
    ) -> Result<EngineUnit, StartError> {
        let (life, mut tasks) = (self.job_life(), JoinSet::new());
        let route = self.route(job, running.targets(job));
        let inputs = if job.spec.workers > 1 {
            let (txs, rxs): (Vec<Tx>, Vec<Rx>) =
                (0..job.spec.workers).map(|_| queue(running.config.queue_size)).unzip();
            tasks.spawn(partition(rx, txs));
            rxs
        } else {
            vec![rx]
        };
        for (index, rx) in inputs.into_iter().enumerate() {
            let (ctx, _) = self.context(job, &life.lifecycle(), route.clone());
            let first = self.build_first(job, Role::Engine, &ctx, |i| match i {
                Instance::Engine(e) => Some(e),
                _ => None,
            })?;
            let lease = self.lease(job, first.as_deref(), &ctx)?;
            let task = EngineTask { share: Share { index, lease }, ..self.engine_task(job, ctx, route.clone()) };
            tasks.spawn(task.run(first, rx));
        }
        Ok(EngineUnit { life, route, tasks })
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

    /// Starts source `job`'s supervisor.
    pub(crate) fn start_source(self: &Arc<Self>, job: &SourceJob, running: &Running) -> SourceUnit {
        let (life, mut tasks) = (self.job_life(), JoinSet::new());
        let route = self.route(job, running.targets(job));
        let job = Arc::new(job.clone());
        let (a1, a2, j1, j2, r1, l1) =
            (self.clone(), self.clone(), job.clone(), job.clone(), route.clone(), life.lifecycle());
        let factory = Factory {
            context: Box::new(move || a1.context(&j1, &l1, r1.clone())),
            build: Box::new(move |ctx: &Context| a2.build(&j2, Role::Source, ctx)),
        };
        tasks.spawn(supervise(job, factory, life.lifecycle()));
        SourceUnit { life, route, tasks }
    }

    /// Opens a sink's buffer (see [`crate::buffer::dir`] for where a disk
    /// buffer lives). One that cannot be opened is reported, and the sink
    /// starts with it [`Opening`](crate::buffer::Opening).
    pub(crate) fn open_store(&self, job: &SinkJob) -> SharedStore {
        use crate::buffer::{Kind, Memory, Opening};
        let b = &job.spec.buffer;
        let store: Box<dyn Store> = match b.kind {
            Kind::Memory => Box::new(Memory::new(b.max_bytes(), b.when_full)),
            Kind::Disk => {
                let o = Opening::new(crate::buffer::dir(&self.data_dir, &job.id), b.max_bytes(), b.when_full);
                if let Some(e) = o.error() {
                    self.stats(&job.id).report_error(
                        &job.id,
                        format!("{e}; the other sinks start, this one tries again (when_full applies meanwhile)"),
                    );
                }
                Box::new(o)
            }
        };
        Arc::new(Mutex::new(store))
    }

    /// Ready once every sink has tried to prepare its backend (at most 10 s);
    /// false when `stop` came first.
    async fn wait_ready(
        &self,
        running: &Running,
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
        running.lives().for_each(LifecycleControl::set_ready);
        let jobs = running.config.jobs().count();
        tracing::info!(jobs, host = %self.host, "vane is running");
        crate::notify::notify(&format!("READY=1\nSTATUS=running {jobs} jobs"));
        !stopped
    }

    /// Sources stop, engines drain, sinks flush; each stage gets the
    /// shutdown timeout before what is left of it is aborted.
    async fn shutdown(self: Arc<Self>, running: Running, http: Option<tokio::task::JoinHandle<()>>) -> Report {
        tracing::info!("stopping: sources stop, engines drain, sinks flush");
        crate::notify::notify("STOPPING=1\nSTATUS=stopping: sources stop, engines drain, sinks flush");
        self.life.stop();
        running.lives().for_each(LifecycleControl::stop);
        let grace = running.config.shutdown_timeout;
        let mut report = Report { stats: self.stats.lock().expect("not poisoned").clone(), ..Report::default() };
        let Running { sources, engines, sinks, txs, config } = running;
        drop(txs);
        let mut set = JoinSet::new();
        for (_, u) in sources {
            set.spawn(join_all(u.tasks));
        }
        report.aborted += drain(&mut set, grace).await;
        for h in self.all_tasks.lock().expect("not poisoned").drain(..) {
            h.abort();
        }
        // What routes the sources held is gone; engines drain their queues.
        let mut set = JoinSet::new();
        for (_, u) in engines {
            drop(u.route);
            set.spawn(join_all(u.tasks));
        }
        report.aborted += drain(&mut set, grace).await;
        let mut set = JoinSet::new();
        for (_, u) in sinks {
            set.spawn(join_all(u.tasks));
        }
        report.aborted += drain(&mut set, grace).await;
        for j in &config.sinks {
            let stalled = crate::buffer_io::stalled_for(&self.stats(&j.id));
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

/// Waits for every task of a set; aborting the future aborts them (the set is dropped).
pub(crate) async fn join_all(mut set: JoinSet<()>) {
    while set.join_next().await.is_some() {}
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
