//! A harness to test any plugin without an agent, the same way for every
//! role: build it from a YAML snippet (through a registry, or by type), then
//! poll a source, run a service until a condition holds, feed an engine
//! events and fire its beat, or send batches to a sink.
//!
//! ```
//! use vane_core::prelude::*;
//! use vane_core::testing::Harness;
//!
//! #[derive(serde::Deserialize)]
//! struct HelloWorld;
//! impl Source for HelloWorld {
//!     async fn poll(&mut self, ctx: &Context) -> Result<Vec<Event>> {
//!         Ok(vec![ctx.event(State::Ok, "Hello world!", 0)])
//!     }
//! }
//!
//! # tokio_test(async {
//! let (h, mut hello) = Harness::build::<HelloWorld>("hello", "").unwrap();
//! let events = h.poll(&mut hello).await.unwrap();
//! assert_eq!(events[0].description.as_deref(), Some("Hello world!"));
//! # });
//! # fn tokio_test(f: impl std::future::Future<Output = ()>) {
//! #     tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(f)
//! # }
//! ```

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;

use crate::context::Context;
use crate::error::{BuildError, EngineError, ServiceError, SinkError, SourceError};
use crate::event::{Event, now_ns};
use crate::future::BoxFuture;
use crate::instance::{DynEngine, DynService, DynSink, DynSource, Instance};
use crate::node::{Mark, Node, from_node, yaml};
use crate::plugin::Build;
use crate::registry::{Registry, Role};
use crate::runtime::{Introspect, LifecycleControl, Outlet, Parts, Spawner, Task};
use crate::stats::JobStats;

#[derive(Default)]
struct Collect {
    events: Mutex<Vec<Event>>,
    arrived: Notify,
}

impl Outlet for Collect {
    fn send(&self, events: Vec<Event>) -> BoxFuture<'_, ()> {
        self.events.lock().expect("not poisoned").extend(events);
        self.arrived.notify_waiters();
        Box::pin(async {})
    }
}

#[derive(Default)]
struct Keep(Mutex<Vec<(String, Task)>>);

impl Spawner for Keep {
    fn spawn_task(&self, name: String, _every: Duration, task: Task) {
        self.0.lock().expect("not poisoned").push((name, task));
    }
}

/// One job's context with an outlet that keeps what it is given, and the
/// calls that drive a plugin of any role.
pub struct Harness {
    ctx: Context,
    out: Arc<Collect>,
    tasks: Arc<Keep>,
    life: LifecycleControl,
}

/// A config snippet as a node, named `<test>` in positions.
fn snippet(text: &str) -> Result<Node, BuildError> {
    if text.trim().is_empty() {
        return Ok(Node::null(Mark::default()));
    }
    yaml::parse("<test>", text, &|_| None).map_err(BuildError::stop)
}

impl Harness {
    /// A ready harness for a job called `job` on host `test-host`.
    pub fn new(job: &str) -> Harness {
        Harness::with(job, "test-host", std::env::temp_dir(), Node::null(Mark::default()), None)
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
        let ctx = Context::from(Parts {
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
            boards: Arc::default(),
        });
        Harness { ctx, out, tasks, life }
    }

    /// Builds a plugin by type from its `config:` block (YAML; `""` for none),
    /// in a harness of job `job`.
    pub fn build<T: Build>(job: &str, config: &str) -> Result<(Harness, T), BuildError> {
        let node = snippet(config)?;
        let h = Harness::with(job, "test-host", std::env::temp_dir(), node.clone(), None);
        let typed = from_node::<T::Config>(&node, "config").map_err(BuildError::stop)?;
        let plugin = T::build(typed, &h.ctx)?;
        Ok((h, plugin))
    }

    /// Builds the registered plugin `name` of `role` from its `config:` block,
    /// in a harness whose job is called after the plugin.
    pub fn plugin(
        registry: &Registry,
        role: Role,
        name: &str,
        config: &str,
    ) -> Result<(Harness, Instance), BuildError> {
        let p = registry
            .find(name, role)
            .ok_or_else(|| BuildError::stop(format!("no {role} plugin `{name}` is registered")))?;
        let node = snippet(config)?;
        let h = Harness::with(name, "test-host", std::env::temp_dir(), node.clone(), None);
        let inst = p.build(&node, "config", &h.ctx)?;
        Ok((h, inst))
    }

    /// A registered polled source.
    pub fn source(registry: &Registry, name: &str, config: &str) -> Result<(Harness, Box<dyn DynSource>), BuildError> {
        match Harness::plugin(registry, Role::Source, name, config)? {
            (h, Instance::Source(s)) => Ok((h, s)),
            (_, i) => Err(BuildError::stop(format!("`{name}` is a {}, not a polled source", i.role()))),
        }
    }

    /// A registered long-running source.
    pub fn service(
        registry: &Registry,
        name: &str,
        config: &str,
    ) -> Result<(Harness, Box<dyn DynService>), BuildError> {
        match Harness::plugin(registry, Role::Source, name, config)? {
            (h, Instance::Service(s)) => Ok((h, s)),
            (_, i) => Err(BuildError::stop(format!("`{name}` is a {}, not a long-running one", i.role()))),
        }
    }

    /// A registered engine.
    pub fn engine(registry: &Registry, name: &str, config: &str) -> Result<(Harness, Box<dyn DynEngine>), BuildError> {
        match Harness::plugin(registry, Role::Engine, name, config)? {
            (h, Instance::Engine(e)) => Ok((h, e)),
            (_, i) => Err(BuildError::stop(format!("`{name}` is a {}", i.role()))),
        }
    }

    /// A registered sink.
    pub fn sink(registry: &Registry, name: &str, config: &str) -> Result<(Harness, Box<dyn DynSink>), BuildError> {
        match Harness::plugin(registry, Role::Sink, name, config)? {
            (h, Instance::Sink(s)) => Ok((h, s)),
            (_, i) => Err(BuildError::stop(format!("`{name}` is a {}", i.role()))),
        }
    }

    pub fn context(&self) -> &Context {
        &self.ctx
    }

    /// The job's counters.
    pub fn stats(&self) -> &JobStats {
        self.ctx.stats()
    }

    /// Signals the agent's stop to the plugin.
    pub fn stop(&self) {
        self.life.stop();
    }

    /// Runs every task the plugin added, once each, reporting their errors.
    pub async fn run_tasks_once(&self) {
        let mut added = std::mem::take(&mut *self.tasks.0.lock().expect("not poisoned"));
        for (name, task) in added.iter_mut() {
            if let Err(e) = task().await {
                self.ctx.report_error(format!("task {name}: {e}"));
            }
        }
        self.tasks.0.lock().expect("not poisoned").extend(added);
    }

    /// Events emitted so far, stamped with the time and host as the agent does.
    pub fn take_emitted(&self) -> Vec<Event> {
        let mut v = std::mem::take(&mut *self.out.events.lock().expect("not poisoned"));
        stamp(&mut v, self.ctx.host());
        v
    }

    /// Polls a source once: the events it returned, then those it emitted.
    pub async fn poll<S: DynSource + ?Sized>(&self, source: &mut S) -> Result<Vec<Event>, SourceError> {
        let mut got = source.poll(&self.ctx).await?;
        stamp(&mut got, self.ctx.host());
        got.extend(self.take_emitted());
        Ok(got)
    }

    /// Runs a long-running source until what it emitted satisfies `done`
    /// (checked each time it emits), then signals the stop and waits for it
    /// to return. Fails when `done` does not hold within `limit`, or when the
    /// service ends with an error first.
    pub async fn run_until<S: DynService + ?Sized>(
        &self,
        service: Box<S>,
        limit: Duration,
        done: impl Fn(&[Event]) -> bool,
    ) -> Result<Vec<Event>, ServiceError> {
        let mut run = tokio::spawn(service.run(self.ctx.clone()));
        let waited = tokio::time::timeout(limit, async {
            loop {
                let arrived = self.out.arrived.notified();
                if done(&self.out.events.lock().expect("not poisoned")) {
                    return Ok(());
                }
                tokio::select! {
                    _ = arrived => {}
                    ended = &mut run => return Err(ended),
                }
            }
        })
        .await;
        match waited {
            Ok(Ok(())) => {}
            Ok(Err(ended)) => {
                let why = match ended {
                    Ok(Ok(())) => ServiceError::stop("the service returned before the condition held"),
                    Ok(Err(e)) => e,
                    Err(p) => ServiceError::restart(format!("the service panicked: {p}")),
                };
                return Err(why);
            }
            Err(_) => {
                self.stop();
                run.abort();
                return Err(ServiceError::stop(format!("the condition did not hold within {limit:?}")));
            }
        }
        self.stop();
        match tokio::time::timeout(limit, run).await {
            Ok(Ok(Ok(()))) => Ok(self.take_emitted()),
            Ok(Ok(Err(e))) => Err(e),
            Ok(Err(p)) => Err(ServiceError::restart(format!("the service panicked: {p}"))),
            Err(_) => Err(ServiceError::stop("the service did not stop when told to")),
        }
    }

    /// Feeds an engine events, one `process` call each: what it pushed, then
    /// what it emitted.
    pub fn process<E: DynEngine + ?Sized>(
        &self,
        engine: &mut E,
        events: Vec<Event>,
    ) -> Result<Vec<Event>, EngineError> {
        let mut out = Vec::new();
        for e in events {
            engine.process(e, &mut out, &self.ctx)?;
        }
        out.extend(self.take_emitted());
        Ok(out)
    }

    /// Fires an engine's beat once: what it pushed, then what it emitted.
    pub fn beat<E: DynEngine + ?Sized>(&self, engine: &mut E) -> Result<Vec<Event>, EngineError> {
        let mut out = Vec::new();
        engine.beat(&mut out, &self.ctx)?;
        out.extend(self.take_emitted());
        Ok(out)
    }

    /// Prepares a sink (`prepare`), as the agent does before its first batch.
    pub async fn prepare<S: DynSink + ?Sized>(&self, sink: &mut S) -> Result<(), SinkError> {
        sink.prepare(&self.ctx).await
    }

    /// Sends one batch to a sink.
    pub async fn send<S: DynSink + ?Sized>(&self, sink: &mut S, batch: &[Event]) -> Result<(), SinkError> {
        sink.send(batch, &self.ctx).await
    }

    /// Flushes a sink, as the agent does at shutdown.
    pub async fn flush<S: DynSink + ?Sized>(&self, sink: &mut S) -> Result<(), SinkError> {
        sink.flush(&self.ctx).await
    }
}

fn stamp(events: &mut [Event], host: &str) {
    let now = now_ns();
    for e in events {
        e.stamp(now, host);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prelude::*;
    use std::time::Duration;

    #[derive(serde::Deserialize)]
    struct Doubler;
    impl Engine for Doubler {
        fn process(&mut self, e: Event, out: &mut Vec<Event>, _: &Context) -> Result<(), EngineError> {
            out.push(e.clone());
            out.push(e);
            Ok(())
        }
        fn beat(&mut self, out: &mut Vec<Event>, ctx: &Context) -> Result<(), EngineError> {
            out.push(Event::gauge(ctx.job(), 1));
            Ok(())
        }
    }

    #[derive(serde::Deserialize)]
    struct Ticker;
    impl Service for Ticker {
        async fn run(self, ctx: Context) -> Result<(), ServiceError> {
            let mut n = 0;
            while ctx.sleep(Duration::from_millis(1)).await {
                n += 1;
                ctx.emit(Event::counter("tick", n)).await;
            }
            Ok(())
        }
    }

    #[derive(serde::Deserialize)]
    struct Keeper {
        #[serde(skip)]
        kept: Vec<Event>,
    }
    impl Sink for Keeper {
        async fn send(&mut self, b: &[Event], _: &Context) -> Result<(), SinkError> {
            if b.is_empty() {
                return Err(SinkError::give_up("an empty batch"));
            }
            self.kept.extend_from_slice(b);
            Ok(())
        }
    }

    fn registry() -> Registry {
        let mut r = Registry::new();
        r.engine::<Doubler>("double", "").service::<Ticker>("ticker", "").sink::<Keeper>("keep", "");
        r
    }

    #[tokio::test]
    async fn drives_every_role() {
        let r = registry();
        let (h, mut e) = Harness::engine(&r, "double", "").unwrap();
        assert_eq!(h.process(&mut *e, vec![Event::gauge("x", 1)]).unwrap().len(), 2);
        assert_eq!(h.beat(&mut *e).unwrap()[0].name, "double");

        let (h, svc) = Harness::service(&r, "ticker", "").unwrap();
        let got = h.run_until(svc, Duration::from_secs(5), |e| e.len() >= 3).await.unwrap();
        assert!(got.len() >= 3 && got[0].host == "test-host", "{got:?}");

        let (h, mut s) = Harness::build::<Keeper>("k", "").unwrap();
        h.send(&mut s, &[Event::gauge("y", 2)]).await.unwrap();
        let err = h.send(&mut s, &[]).await.unwrap_err();
        assert_eq!(err.action(), SinkAction::GiveUp);
        assert_eq!(s.kept.len(), 1);
    }

    #[test]
    fn a_plugin_without_config_refuses_one_and_a_wrong_role_is_named() {
        let r = registry();
        let err = Harness::engine(&r, "double", "x: 1").err().unwrap();
        assert_eq!(err.action(), BuildAction::Stop);
        assert!(err.to_string().contains("<test>:1:1"), "{err}");
        let err = Harness::source(&r, "keep", "").err().unwrap();
        assert!(err.to_string().contains("no source plugin `keep`"), "{err}");
    }
}
