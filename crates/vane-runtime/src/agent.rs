//! Assembling and running the agent: queues for engines and sinks, routes,
//! supervisors for every job, readiness, and an orderly shutdown (sources
//! stop, engines drain, sinks flush).

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::task::{AbortHandle, JoinSet};
use vane_core::context::{Context, ContextParts, Introspect, JobStats, LifecycleControl};
use vane_core::event::Event;
use vane_core::registry::{BuildError, Instance, Registry};

use crate::config::{Config, Job, Section};
use crate::introspect::Introspection;
use crate::pipeline::{Route, Rx, Tx, run_engine, run_sink};
use crate::schedule::{Factory, TaskSpawner, supervise};

/// Why the agent could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("{0}")]
    Registry(String),
    #[error("{kind} `{id}` cannot start: {reason}")]
    Build {
        kind: &'static str,
        id: String,
        reason: String,
    },
}

/// What shutdown left behind.
#[derive(Debug, Default)]
pub struct Report {
    /// Tasks that did not finish within the shutdown timeout and were aborted.
    pub aborted: usize,
}

struct Shared {
    config: Arc<Config>,
    registry: Arc<Registry>,
    life: LifecycleControl,
    host: Arc<str>,
    stats: HashMap<String, Arc<JobStats>>,
    introspect: Arc<dyn Introspect>,
    all_tasks: Arc<Mutex<Vec<AbortHandle>>>,
    routes: Option<Arc<crate::http::RouteTable>>,
}

impl Shared {
    fn context(&self, job: &Job, route: Arc<Route>) -> (Context, Arc<TaskSpawner>) {
        let spawner = Arc::new(TaskSpawner::new(self.all_tasks.clone()));
        let ctx = Context::new(ContextParts {
            job: job.id.clone(),
            plugin: job.plugin.clone(),
            host: self.host.to_string(),
            data_dir: self.config.data_dir.clone(),
            config: job.config.clone(),
            stats: self.stats[&job.id].clone(),
            lifecycle: self.life.lifecycle(),
            outlet: route,
            spawner: spawner.clone(),
            introspect: Some(self.introspect.clone()),
            routes: self
                .routes
                .clone()
                .map(|r| r as Arc<dyn vane_core::context::Routes>),
        });
        (ctx, spawner)
    }
}

fn section_name(s: Section) -> &'static str {
    match s {
        Section::Jobs => "job",
        Section::Engines => "engine",
        Section::Sinks => "sink",
    }
}

/// Runs the agent until `stop` resolves, then shuts down in order.
pub async fn run(
    config: Config,
    registry: Arc<Registry>,
    stop: impl Future<Output = ()>,
) -> Result<Report, StartError> {
    registry
        .finish()
        .map_err(|p| StartError::Registry(p.join("; ")))?;
    let config = Arc::new(config);
    tracing::info!(jobs = config.jobs.len(), "starting");
    let mut txs: HashMap<String, Tx> = HashMap::new();
    let mut rxs: HashMap<String, Rx> = HashMap::new();
    for j in config.jobs.iter().filter(|j| j.section != Section::Jobs) {
        let (tx, rx) = crate::pipeline::queue(config.queue_size);
        txs.insert(j.id.clone(), tx);
        rxs.insert(j.id.clone(), rx);
    }
    let stats: HashMap<String, Arc<JobStats>> = config
        .jobs
        .iter()
        .map(|j| (j.id.clone(), Arc::new(JobStats::default())))
        .collect();
    let introspect = Arc::new(Introspection {
        started: std::time::Instant::now(),
        jobs: config
            .jobs
            .iter()
            .map(|j| {
                (
                    j.id.clone(),
                    j.plugin.clone(),
                    section_name(j.section),
                    stats[&j.id].clone(),
                )
            })
            .collect(),
        queues: config
            .jobs
            .iter()
            .filter(|j| j.section != Section::Jobs)
            .map(|j| Introspection::queue(&j.id, &txs[&j.id]))
            .collect(),
    });
    let shared = Arc::new(Shared {
        config: config.clone(),
        registry,
        life: LifecycleControl::default(),
        host: Arc::from(config.host.as_str()),
        stats,
        introspect,
        all_tasks: Arc::new(Mutex::new(Vec::new())),
        routes: config
            .agent
            .http
            .as_ref()
            .map(|_| Arc::new(crate::http::RouteTable::default())),
    });
    let http = match (&config.agent.http, &shared.routes) {
        (Some(addr), Some(table)) => Some(
            crate::http::serve(addr, table.clone(), shared.life.lifecycle())
                .await
                .map_err(|e| StartError::Build {
                    kind: "agent",
                    id: "http".into(),
                    reason: format!("cannot listen on {addr}: {e}"),
                })?,
        ),
        _ => None,
    };
    let sink_ids: Vec<&str> = config
        .jobs
        .iter()
        .filter(|j| j.section == Section::Sinks)
        .map(|j| j.id.as_str())
        .collect();
    let route_for = |job: &Job| -> Arc<Route> {
        let targets = if job.section == Section::Sinks {
            Vec::new()
        } else if job.next.is_empty() {
            sink_ids.iter().map(|id| txs[*id].clone()).collect()
        } else {
            job.next.iter().map(|id| txs[id].clone()).collect()
        };
        Arc::new(Route {
            host: shared.host.clone(),
            tags: job.tags.clone(),
            levels: job.levels.clone(),
            targets,
            stats: shared.stats[&job.id].clone(),
        })
    };

    let mut sinks = JoinSet::new();
    let mut prepared = Vec::new();
    let mut engines = JoinSet::new();
    let mut sources = JoinSet::new();
    let mut pending_builds = Vec::new();
    for job in &config.jobs {
        let job_arc = Arc::new(job.clone());
        let plugin = shared
            .registry
            .find(&job.plugin, job.section.family())
            .expect("validated plugin");
        match job.section {
            Section::Sinks | Section::Engines => {
                let rx = rxs.remove(&job.id).expect("queue made above");
                let workers = if job.section == Section::Engines {
                    job.workers
                } else {
                    1
                };
                if workers > 1 {
                    // One queue per worker; a dispatcher splits events by series.
                    let (txs, wrxs): (Vec<Tx>, Vec<Rx>) = (0..workers)
                        .map(|_| crate::pipeline::queue(config.queue_size))
                        .unzip();
                    engines.spawn(crate::pipeline::partition(rx, txs));
                    for wrx in wrxs {
                        let (ctx, _spawner) = shared.context(job, route_for(job));
                        let inst = build_now(plugin, job, &ctx)?;
                        pending_builds.push((job_arc.clone(), ctx, inst, wrx));
                    }
                    continue;
                }
                let (ctx, _spawner) = shared.context(job, route_for(job));
                let inst = build_now(plugin, job, &ctx)?;
                pending_builds.push((job_arc, ctx, inst, rx));
            }
            Section::Jobs => {
                let route = route_for(job);
                let sh = shared.clone();
                let j2 = job_arc.clone();
                let factory = Factory {
                    context: Box::new(move || sh.context(&j2, route.clone())),
                    build: {
                        let sh = shared.clone();
                        let j3 = job_arc.clone();
                        Box::new(move |ctx: &Context| -> Result<Instance, BuildError> {
                            let p = sh
                                .registry
                                .find(&j3.plugin, j3.section.family())
                                .expect("validated plugin");
                            p.build(&j3.config, &j3.path, ctx)
                        })
                    },
                };
                sources.spawn(supervise(job_arc, factory, shared.life.lifecycle()));
            }
        }
    }
    for (job, ctx, inst, rx) in pending_builds {
        match inst {
            Instance::Sink(s) => {
                let (tx, rx_prep) = oneshot::channel();
                prepared.push(rx_prep);
                let store = open_store(&config, &job)?;
                sinks.spawn(run_sink(job, s, ctx, rx, tx, store));
            }
            Instance::Engine(e) => {
                let sh = shared.clone();
                let j2 = job.clone();
                let rebuild = move |ctx: &Context| {
                    let p = sh.registry.find(&j2.plugin, j2.section.family())?;
                    match crate::guard::catch(|| p.build(&j2.config, &j2.path, ctx)) {
                        Ok(Ok(Instance::Engine(e))) => Some(e),
                        _ => None,
                    }
                };
                engines.spawn(run_engine(job, e, rebuild, ctx, rx));
            }
            _ => unreachable!("validated role"),
        }
    }
    // Only routes hold senders from here on, so queues close as their feeders end.
    drop(txs);

    // Ready once every sink has tried to prepare its backend (bounded wait).
    let ready_wait = async {
        for p in prepared {
            let _ = p.await;
        }
    };
    tokio::pin!(stop);
    let stopped_early = tokio::select! {
        _ = tokio::time::timeout(Duration::from_secs(10), ready_wait) => false,
        _ = &mut stop => true,
    };
    shared.life.set_ready();
    tracing::info!(
        jobs = config.jobs.len(),
        host = %config.host,
        "vane is running"
    );
    if !stopped_early {
        stop.await;
    }
    tracing::info!("stopping: sources stop, engines drain, sinks flush");
    shared.life.stop();
    let grace = config.shutdown_timeout;
    let mut report = Report::default();
    report.aborted += drain(&mut sources, grace).await;
    for h in shared.all_tasks.lock().expect("not poisoned").drain(..) {
        h.abort();
    }
    drop(shared);
    report.aborted += drain(&mut engines, grace).await;
    report.aborted += drain(&mut sinks, grace).await;
    if let Some(h) = http {
        h.abort();
    }
    if report.aborted > 0 {
        tracing::warn!(
            aborted = report.aborted,
            "some tasks did not finish within the shutdown timeout"
        );
    }
    Ok(report)
}

/// Opens a sink's buffer; a disk buffer lives in `data_dir/buffers/ID`.
fn open_store(config: &Config, job: &Job) -> Result<Box<dyn crate::buffer::Store>, StartError> {
    use crate::buffer::{Disk, Kind, Memory};
    let b = &job.buffer;
    Ok(match b.kind {
        Kind::Memory => Box::new(Memory::new(b.max_bytes(), b.when_full)),
        Kind::Disk => {
            let safe: String = job
                .id
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                        c
                    } else {
                        '_'
                    }
                })
                .collect();
            let dir = config.data_dir.join("buffers").join(safe);
            let d =
                Disk::open(&dir, b.max_bytes(), b.when_full).map_err(|e| StartError::Build {
                    kind: "sink",
                    id: job.id.clone(),
                    reason: format!("cannot open its disk buffer in {}: {e}", dir.display()),
                })?;
            Box::new(d)
        }
    })
}

/// Builds an engine or sink at start-up; failing that, the agent does not start.
fn build_now(
    plugin: &vane_core::registry::Plugin,
    job: &Job,
    ctx: &Context,
) -> Result<Instance, StartError> {
    crate::guard::catch(|| plugin.build(&job.config, &job.path, ctx))
        .map_err(|p| format!("panicked while building: {p}"))
        .and_then(|r| r.map_err(|e| e.to_string()))
        .map_err(|reason| StartError::Build {
            kind: section_name(job.section),
            id: job.id.clone(),
            reason,
        })
}

/// Waits for a set of tasks up to `grace`, then aborts what is left.
async fn drain(set: &mut JoinSet<()>, grace: Duration) -> usize {
    let all = async { while set.join_next().await.is_some() {} };
    if tokio::time::timeout(grace, all).await.is_ok() {
        return 0;
    }
    let left = set.len();
    set.abort_all();
    while set.join_next().await.is_some() {}
    left
}

/// Polls one source once, as `vane test JOB` does: the events it returned or
/// emitted (its added tasks run once each), stamped and tagged.
pub async fn test_job(
    config: &Config,
    registry: &Registry,
    id: &str,
) -> Result<Vec<Event>, String> {
    let job = config.job(id).ok_or_else(|| {
        let ids: Vec<&str> = config
            .jobs
            .iter()
            .filter(|j| j.section == Section::Jobs)
            .map(|j| j.id.as_str())
            .collect();
        format!("no job with id `{id}`; jobs: {}", ids.join(", "))
    })?;
    if job.section != Section::Jobs {
        return Err(format!(
            "`{id}` is {}, not a job; `vane test` polls sources",
            if job.section == Section::Engines {
                "an engine"
            } else {
                "a sink"
            }
        ));
    }
    let plugin = registry
        .find(&job.plugin, job.section.family())
        .ok_or("unknown plugin")?;
    let introspect: Arc<dyn Introspect> = Arc::new(Introspection {
        started: std::time::Instant::now(),
        jobs: vec![],
        queues: vec![],
    });
    let h = vane_core::testing::Harness::with(
        &job.id,
        &config.host,
        config.data_dir.clone(),
        job.config.clone(),
        Some(introspect),
    );
    let inst = plugin
        .build(&job.config, &job.path, h.context())
        .map_err(|e| e.to_string())?;
    let mut events = match inst {
        Instance::Source(mut s) => {
            let poll = tokio::time::timeout(job.timeout, h.poll(&mut *s));
            poll.await
                .map_err(|_| format!("poll timed out after {}", vane_core::Duration(job.timeout)))?
                .map_err(|e| format!("poll failed: {e}"))?
        }
        Instance::Service(_) => {
            return Err(format!(
                "`{id}` uses `{}`, a long-running source; `vane test` polls polled sources only",
                job.plugin
            ));
        }
        _ => return Err("not a source".into()),
    };
    h.run_tasks_once().await;
    events.extend(h.take_emitted());
    for e in &mut events {
        for (k, v) in &job.tags {
            if e.get_tag(k).is_none() {
                e.tags.push((k.clone(), v.clone()));
            }
        }
        if let Some(l) = &job.levels {
            crate::pipeline::apply_levels(l, e, h.context().stats());
        }
    }
    Ok(events)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;
    use std::sync::LazyLock;
    use std::time::Duration;
    use tokio::sync::Notify;
    use vane_core::prelude::*;

    type Bins = HashMap<String, Vec<Event>>;
    static BINS: LazyLock<Mutex<Bins>> = LazyLock::new(Default::default);
    static ARRIVED: Notify = Notify::const_new();

    /// Emits 1, 2, 3 … one per poll.
    struct Seq(u64);
    impl Source for Seq {
        type Config = ();
        fn build(_: (), _: &Context) -> vane_core::plugin::Result<Self> {
            Ok(Seq(0))
        }
        async fn poll(&mut self, _: &Context) -> vane_core::plugin::Result<Vec<Event>> {
            self.0 += 1;
            Ok(vec![Event::counter("seq", self.0)])
        }
    }

    /// Doubles every event; beats a `beat` event.
    struct Dup;
    impl Engine for Dup {
        type Config = ();
        fn build(_: (), _: &Context) -> vane_core::plugin::Result<Self> {
            Ok(Dup)
        }
        fn process(&mut self, e: Event, out: &mut Vec<Event>) -> vane_core::plugin::Result<()> {
            out.push(e.clone().tag("copy", "1"));
            out.push(e.tag("copy", "2"));
            Ok(())
        }
        fn beat(&mut self, out: &mut Vec<Event>) -> vane_core::plugin::Result<()> {
            out.push(Event::gauge("beat", 1.0));
            Ok(())
        }
    }

    /// A long-running source in Tourbillon's shape: wait until ready, then
    /// loop while the agent runs.
    struct Loop;
    impl Service for Loop {
        type Config = ();
        fn build(_: (), _: &Context) -> vane_core::plugin::Result<Self> {
            Ok(Loop)
        }
        async fn run(self, ctx: Context) -> vane_core::plugin::Result<()> {
            ctx.ready().await;
            let mut n = 0u64;
            loop {
                n += 1;
                ctx.emit(Event::counter("svc", n)).await;
                if !ctx.sleep(Duration::from_millis(10)).await {
                    return Ok(());
                }
            }
        }
    }

    /// Fills two flows from two tasks on their own intervals (Telemetry's shape).
    struct Flows;
    impl Source for Flows {
        type Config = ();
        fn build(_: (), ctx: &Context) -> vane_core::plugin::Result<Self> {
            for (name, ms) in [("task_fast", 10), ("task_slow", 30)] {
                ctx.add_task(name, Duration::from_millis(ms), move |ctx| async move {
                    ctx.emit(Event::gauge(name, 1.0)).await;
                    Ok(())
                });
            }
            Ok(Flows)
        }
        async fn poll(&mut self, _: &Context) -> vane_core::plugin::Result<Vec<Event>> {
            Ok(vec![])
        }
    }

    /// Collects into the global bin its config names.
    struct Col(String);
    #[derive(serde::Deserialize)]
    struct ColConfig {
        bin: String,
    }
    impl Sink for Col {
        type Config = ColConfig;
        fn build(c: ColConfig, _: &Context) -> vane_core::plugin::Result<Self> {
            Ok(Col(c.bin))
        }
        async fn send(&mut self, b: &[Event], _: &Context) -> vane_core::plugin::Result<()> {
            BINS.lock()
                .unwrap()
                .entry(self.0.clone())
                .or_default()
                .extend_from_slice(b);
            ARRIVED.notify_waiters();
            Ok(())
        }
    }

    /// Emits n for eight series (tag s=0..7) per poll.
    struct Many(u64);
    impl Source for Many {
        type Config = ();
        fn build(_: (), _: &Context) -> vane_core::plugin::Result<Self> {
            Ok(Many(0))
        }
        async fn poll(&mut self, _: &Context) -> vane_core::plugin::Result<Vec<Event>> {
            self.0 += 1;
            Ok((0..8)
                .map(|s| Event::counter("many", self.0).tag("s", s.to_string()))
                .collect())
        }
    }

    static WORKER_IDS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

    /// Tags each event with the instance that processed it.
    struct Who(usize);
    impl Engine for Who {
        type Config = ();
        fn build(_: (), _: &Context) -> vane_core::plugin::Result<Self> {
            Ok(Who(
                WORKER_IDS.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
            ))
        }
        fn process(&mut self, e: Event, out: &mut Vec<Event>) -> vane_core::plugin::Result<()> {
            out.push(e.tag("worker", self.0.to_string()));
            Ok(())
        }
    }

    /// A sink that fails while its gate (named in its config) is closed.
    static GATES: LazyLock<Mutex<HashMap<String, bool>>> = LazyLock::new(Default::default);

    /// First event of each batch a closed gate was asked to send.
    static ATTEMPTED: LazyLock<Mutex<HashMap<String, std::collections::HashSet<i64>>>> =
        LazyLock::new(Default::default);

    fn gate(name: &str, open: bool) {
        GATES.lock().unwrap().insert(name.to_owned(), open);
    }

    struct Gate(String);
    #[derive(serde::Deserialize)]
    struct GateConfig {
        gate: String,
    }
    impl Sink for Gate {
        type Config = GateConfig;
        fn build(c: GateConfig, _: &Context) -> vane_core::plugin::Result<Self> {
            Ok(Gate(c.gate))
        }
        async fn send(&mut self, b: &[Event], _: &Context) -> vane_core::plugin::Result<()> {
            if !GATES.lock().unwrap().get(&self.0).copied().unwrap_or(false) {
                let first = b
                    .first()
                    .and_then(|e| e.get_field("value"))
                    .and_then(|v| v.as_f64());
                ATTEMPTED
                    .lock()
                    .unwrap()
                    .entry(self.0.clone())
                    .or_default()
                    .insert(first.unwrap_or(-1.0) as i64);
                return Err("the backend is down".into());
            }
            BINS.lock()
                .unwrap()
                .entry(self.0.clone())
                .or_default()
                .extend_from_slice(b);
            ARRIVED.notify_waiters();
            Ok(())
        }
    }

    static POLLED: LazyLock<Mutex<HashMap<String, u64>>> = LazyLock::new(Default::default);

    /// Counts 1, 2, 3 … and remembers how far it got, per job.
    struct Numbered(u64);
    impl Source for Numbered {
        type Config = ();
        fn build(_: (), _: &Context) -> vane_core::plugin::Result<Self> {
            Ok(Numbered(0))
        }
        async fn poll(&mut self, ctx: &Context) -> vane_core::plugin::Result<Vec<Event>> {
            self.0 += 1;
            POLLED.lock().unwrap().insert(ctx.job().to_owned(), self.0);
            ARRIVED.notify_waiters();
            Ok(vec![Event::counter("n", self.0)])
        }
    }

    fn polled(job: &str) -> u64 {
        POLLED.lock().unwrap().get(job).copied().unwrap_or(0)
    }

    fn numbers(bin_name: &str) -> Vec<u64> {
        bin(bin_name)
            .iter()
            .filter(|e| e.name == "n")
            .map(|e| e.get_field("value").unwrap().as_f64().unwrap() as u64)
            .collect()
    }

    fn registry() -> Registry {
        let mut r = Registry::new();
        r.source::<Numbered>("t.numbered", "")
            .sink::<Gate>("t.gate", "");
        r.source::<Many>("t.many", "").engine::<Who>("t.who", "");
        r.source::<Seq>("t.seq", "")
            .source::<Flows>("t.flows", "")
            .service::<Loop>("t.loop", "")
            .engine::<Dup>("t.dup", "")
            .sink::<Col>("t.col", "");
        r
    }

    fn bin(name: &str) -> Vec<Event> {
        BINS.lock().unwrap().get(name).cloned().unwrap_or_default()
    }

    fn count(events: &[Event], name: &str) -> usize {
        events.iter().filter(|e| e.name == name).count()
    }

    /// Resolves once `cond` holds; the sinks notify on every batch.
    async fn until(cond: impl Fn() -> bool) {
        loop {
            let notified = ARRIVED.notified();
            if cond() {
                return;
            }
            notified.await;
        }
    }

    fn config(r: &Registry, text: &str) -> Config {
        crate::config::from_texts(&[(PathBuf::from("m"), "m".into(), text.into())], r, &|_| {
            None
        })
        .unwrap()
    }

    async fn run_until(text: &str, cond: impl Fn() -> bool) -> Report {
        let r = registry();
        let cfg = config(&r, text);
        tokio::time::timeout(Duration::from_secs(20), run(cfg, Arc::new(r), until(cond)))
            .await
            .expect("the condition holds within 20s")
            .unwrap()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn events_flow_through_engines_in_order_with_beats() {
        let text = "agent: { host: h9, data_dir: /tmp }\n\
            jobs:\n  - { id: s, plugin: t.seq, interval: 10ms, next: d, tags: { src: s } }\n\
            engines:\n  - { id: d, plugin: t.dup, beat: 20ms }\n\
            sinks:\n  - { id: c, plugin: t.col, batch_wait: 5ms, config: { bin: chain } }\n";
        let report = run_until(text, || {
            let c = bin("chain");
            count(&c, "seq") >= 40 && count(&c, "beat") >= 2
        })
        .await;
        assert_eq!(report.aborted, 0);
        let c = bin("chain");
        for copy in ["1", "2"] {
            let ns: Vec<f64> = c
                .iter()
                .filter(|e| e.name == "seq" && e.get_tag("copy") == Some(copy))
                .map(|e| e.get_field("value").unwrap().as_f64().unwrap())
                .collect();
            assert!(ns.len() >= 20, "copy {copy}: {}", ns.len());
            assert!(
                ns.windows(2).all(|w| w[1] == w[0] + 1.0),
                "order kept: {ns:?}"
            );
        }
        let seq = c.iter().find(|e| e.name == "seq").unwrap();
        assert_eq!(seq.host, "h9");
        assert_eq!(seq.get_tag("src"), Some("s"));
        assert!(seq.time > 0);
        assert_eq!(seq.kind, Kind::Counter);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn services_and_tasks_feed_every_sink_and_stop_cleanly() {
        let text = "jobs:\n\
            \x20 - { id: svc, plugin: t.loop }\n\
            \x20 - { id: flows, plugin: t.flows, interval: 1h }\n\
            sinks:\n\
            \x20 - { id: a, plugin: t.col, batch_wait: 5ms, config: { bin: fan-a } }\n\
            \x20 - { id: b, plugin: t.col, batch_wait: 5ms, config: { bin: fan-b } }\n";
        let enough = |b: &[Event]| {
            count(b, "svc") >= 5 && count(b, "task_fast") >= 6 && count(b, "task_slow") >= 2
        };
        let report = run_until(text, || enough(&bin("fan-a")) && enough(&bin("fan-b"))).await;
        // The service saw the stop and returned; nothing had to be aborted.
        assert_eq!(report.aborted, 0);
        let (a, b) = (bin("fan-a"), bin("fan-b"));
        // Both sinks got the same events: a job without `next` feeds every sink.
        let names = |v: &[Event]| {
            let mut n: Vec<(String, String)> = v
                .iter()
                .map(|e| (e.name.clone(), format!("{:?}", e.fields)))
                .collect();
            n.sort();
            n
        };
        assert_eq!(names(&a), names(&b));
        let svc: Vec<f64> = a
            .iter()
            .filter(|e| e.name == "svc")
            .map(|e| e.get_field("value").unwrap().as_f64().unwrap())
            .collect();
        assert!(svc.windows(2).all(|w| w[1] == w[0] + 1.0), "{svc:?}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn workers_split_series_and_keep_their_order() {
        let text = "jobs:\n  - { id: m, plugin: t.many, interval: 5ms, next: w }\n\
            engines:\n  - { id: w, plugin: t.who, workers: 3 }\n\
            sinks:\n  - { id: c, plugin: t.col, batch_wait: 5ms, config: { bin: workers } }\n";
        let report = run_until(text, || count(&bin("workers"), "many") >= 8 * 30).await;
        assert_eq!(report.aborted, 0);
        let evs = bin("workers");
        let mut by_series: HashMap<String, (String, Vec<f64>)> = HashMap::new();
        for e in evs.iter().filter(|e| e.name == "many") {
            let s = e.get_tag("s").unwrap().to_owned();
            let w = e.get_tag("worker").unwrap().to_owned();
            let entry = by_series.entry(s.clone()).or_insert((w.clone(), vec![]));
            assert_eq!(entry.0, w, "series {s} moved between workers");
            entry
                .1
                .push(e.get_field("value").unwrap().as_f64().unwrap());
        }
        assert_eq!(by_series.len(), 8);
        for (s, (_, ns)) in &by_series {
            assert!(
                ns.windows(2).all(|w| w[1] == w[0] + 1.0),
                "series {s} out of order: {ns:?}"
            );
        }
        let workers: std::collections::HashSet<&String> =
            by_series.values().map(|(w, _)| w).collect();
        assert!(workers.len() > 1, "eight series all went to one worker");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failing_backend_is_retried_until_every_event_arrives_in_order() {
        gate("flaky", false);
        let text = "jobs:\n  - { id: flaky_src, plugin: t.numbered, interval: 10ms }\n\
            sinks:\n  - { id: out, plugin: t.gate, batch_wait: 5ms, config: { gate: flaky } }\n";
        // Open the gate once 20 polls have piled up in the buffer.
        let opener = tokio::spawn(async {
            until(|| polled("flaky_src") >= 20).await;
            gate("flaky", true);
        });
        let report = run_until(text, || numbers("flaky").len() >= 40).await;
        opener.await.unwrap();
        assert_eq!(report.aborted, 0);
        let got = numbers("flaky");
        assert_eq!(
            got,
            (1..=got.len() as u64).collect::<Vec<_>>(),
            "nothing lost, in order"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_dead_sink_does_not_slow_a_healthy_one() {
        gate("dead", false);
        gate("healthy", true);
        let text = "agent: { shutdown_timeout: 200ms }\n\
            jobs:\n  - { id: both_src, plugin: t.numbered, interval: 5ms }\n\
            sinks:\n\
            \x20 - { id: dead, plugin: t.gate, batch_wait: 5ms, config: { gate: dead } }\n\
            \x20 - { id: healthy, plugin: t.gate, batch_wait: 5ms, config: { gate: healthy } }\n";
        let report = run_until(text, || numbers("healthy").len() >= 100).await;
        let got = numbers("healthy");
        assert_eq!(got, (1..=got.len() as u64).collect::<Vec<_>>());
        // The healthy sink kept up with the source all along.
        assert!(
            got.len() as u64 + 10 >= polled("both_src"),
            "{} of {}",
            got.len(),
            polled("both_src")
        );
        assert!(numbers("dead").is_empty());
        // The dead sink was still retrying when the agent stopped.
        assert_eq!(report.aborted, 1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_disk_buffer_delivers_after_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().display();
        gate("disk", false);
        let first = format!(
            "agent: {{ data_dir: {d}, shutdown_timeout: 100ms }}\n\
             jobs:\n  - {{ id: disk_src, plugin: t.numbered, interval: 5ms }}\n\
             sinks:\n  - {{ id: keep, plugin: t.gate, batch_wait: 5ms, buffer: {{ kind: disk, fsync: 10ms }}, config: {{ gate: disk }} }}\n"
        );
        run_until(&first, || polled("disk_src") >= 50).await;
        let made = polled("disk_src");
        assert!(numbers("disk").is_empty(), "the backend was down");
        // Started again with the backend up and no source: the buffer drains.
        gate("disk", true);
        let second = format!(
            "agent: {{ data_dir: {d} }}\n\
             sinks:\n  - {{ id: keep, plugin: t.gate, batch_wait: 5ms, buffer: {{ kind: disk }}, config: {{ gate: disk }} }}\n"
        );
        run_until(&second, || numbers("disk").len() as u64 >= made).await;
        let got = numbers("disk");
        assert_eq!(
            got,
            (1..=made).collect::<Vec<_>>(),
            "every event made before the stop"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn submission_interval_sends_the_latest_of_each_series_once_per_interval() {
        let text = "jobs:\n  - { id: m, plugin: t.many, interval: 5ms }\n\
            sinks:\n  - { id: c, plugin: t.col, submission_interval: 100ms, config: { bin: submit } }\n";
        run_until(text, || count(&bin("submit"), "many") >= 8 * 5).await;
        let evs = bin("submit");
        for s in 0..8 {
            let vals: Vec<f64> = evs
                .iter()
                .filter(|e| e.get_tag("s") == Some(&s.to_string()))
                .map(|e| e.get_field("value").unwrap().as_f64().unwrap())
                .collect();
            assert!(vals.len() >= 5, "series {s}: {vals:?}");
            // Each submission carries a later value than the one before:
            // about 20 polls happen per 100 ms, only the latest goes out.
            assert!(vals.windows(2).all(|w| w[1] > w[0]), "series {s}: {vals:?}");
            let last = *vals.last().unwrap();
            assert!(
                (vals.len() as f64) < last / 2.0,
                "coalesced: {} sent of {last} made",
                vals.len()
            );
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn retry_for_bounds_how_long_a_batch_is_retried() {
        gate("never", false);
        gate("bounded_ok", true);
        let text = "agent: { shutdown_timeout: 200ms }\n\
            jobs:\n  - { id: bounded_src, plugin: t.numbered, interval: 20ms }\n\
            sinks:\n\
            \x20 - { id: never, plugin: t.gate, batch_wait: 5ms, retry_for: 300ms, config: { gate: never } }\n\
            \x20 - { id: ok, plugin: t.gate, batch_wait: 5ms, config: { gate: bounded_ok } }\n";
        // The failing sink gives each batch up after 300 ms and moves on to
        // the next; unbounded, it would retry its first batch forever.
        run_until(text, || {
            ATTEMPTED
                .lock()
                .unwrap()
                .get("never")
                .is_some_and(|a| a.len() >= 3)
        })
        .await;
        assert!(numbers("never").is_empty());
        assert!(!numbers("bounded_ok").is_empty());
    }
}
