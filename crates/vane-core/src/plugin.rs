//! The plugin roles — source, long-running source (service), engine, sink —
//! and how each is built from its config. Read this file to write a plugin.
//!
//! Each role's trait has one or two required methods; everything else has a
//! default. Every plugin also implements [`Build`], which turns its typed
//! config into an instance (the
//! runtime calls it again to rebuild an instance that panicked or asked to
//! restart); a plugin that is its own config derives `Deserialize` and needs
//! no `build`.
//! Each call's error names what the runtime then does ([`crate::error`]).

use std::future::Future;

use serde::de::DeserializeOwned;

use crate::context::Context;
use crate::error::{BuildError, EngineError, ServiceError, SinkError, SourceError};
use crate::event::Event;

/// How a plugin instance is made from its config.
///
/// ```
/// use vane_core::prelude::*;
///
/// #[derive(serde::Deserialize)]
/// struct Config { greeting: String }
///
/// struct Hello { bit: bool, greeting: String }
///
/// impl Build for Hello {
///     type Config = Config;
///     fn build(c: Config, _: &Context) -> Result<Self, BuildError> {
///         Ok(Hello { bit: false, greeting: c.greeting })
///     }
/// }
///
/// impl Source for Hello {
///     async fn poll(&mut self, ctx: &Context) -> Result<Vec<Event>> {
///         self.bit = !self.bit;
///         Ok(vec![ctx.event(State::Ok, self.greeting.clone(), self.bit as i64)])
///     }
/// }
/// ```
pub trait Build: Sized + Send + 'static {
    /// The plugin's `config:` block, read with positions; unknown keys are errors.
    type Config: DeserializeOwned + Send;

    fn build(config: Self::Config, ctx: &Context) -> Result<Self, BuildError>;
}

/// A plugin that is its own config is read from its `config:` block and has
/// nothing more to build: derive `Deserialize` (a unit struct for a plugin
/// without config; state it keeps between calls is `#[serde(skip)]`).
impl<T: DeserializeOwned + Send + 'static> Build for T {
    type Config = T;

    fn build(config: T, _: &Context) -> Result<T, BuildError> {
        Ok(config)
    }
}

/// A polled source: the runtime calls [`Source::poll`] every interval.
///
/// Return the events of this poll, or emit them at any time with
/// [`Context::emit`]; both may be used.
///
/// ```
/// use vane_core::prelude::*;
///
/// #[derive(serde::Deserialize)]
/// struct HelloWorld;
///
/// impl Source for HelloWorld {
///     async fn poll(&mut self, ctx: &Context) -> Result<Vec<Event>> {
///         Ok(vec![ctx.event(State::Ok, "Hello world!", 0)])
///     }
/// }
/// ```
pub trait Source: Send + 'static {
    fn poll(&mut self, ctx: &Context) -> impl Future<Output = Result<Vec<Event>, SourceError>> + Send;
}

/// A long-running source: a listener, a subscription, a child process.
///
/// `run` is called once and should return `Ok` when [`Context::stopping`]
/// fires.
pub trait Service: Send + Sized + 'static {
    fn run(self, ctx: Context) -> impl Future<Output = Result<(), ServiceError>> + Send;
}

/// An engine: a per-event task and an optional beat task.
///
/// `process` passes (push the event), changes, drops (push nothing) or
/// multiplies (push several) each event. `beat` runs on the engine's `beat`
/// interval, and once more when its input ends, and may push events of its
/// own (summaries, expirations).
pub trait Engine: Send + 'static {
    fn process(&mut self, event: Event, out: &mut Vec<Event>, ctx: &Context) -> Result<(), EngineError>;

    fn beat(&mut self, _out: &mut Vec<Event>, _ctx: &Context) -> Result<(), EngineError> {
        Ok(())
    }

    /// The beat interval to use when the job sets none (engines whose beat
    /// is essential, like windows that must close on time).
    fn default_beat(&self) -> Option<std::time::Duration> {
        None
    }

    /// True when its beat works on what this instance keeps (windows, the
    /// latest event per series): then every worker of the engine beats, the
    /// agent's (`workers: N`) and a bus-backed engine's alike. False (the
    /// default) when the beat stands for the engine as a whole (Canopsis's
    /// beat task): it runs once per interval, on one worker.
    fn beat_each_worker(&self) -> bool {
        false
    }

    /// True when its calls may take long (a script, a blocking library):
    /// the runtime then makes them off the threads that run async tasks.
    fn blocking(&self) -> bool {
        false
    }
}

/// A sink: delivers batches of events to a backend.
pub trait Sink: Send + 'static {
    /// Called once before the first batch (create a database, open a file).
    fn prepare(&mut self, _ctx: &Context) -> impl Future<Output = Result<(), SinkError>> + Send {
        async { Ok(()) }
    }

    fn send(&mut self, batch: &[Event], ctx: &Context) -> impl Future<Output = Result<(), SinkError>> + Send;

    /// Called once at shutdown, after the last batch.
    fn flush(&mut self, _ctx: &Context) -> impl Future<Output = Result<(), SinkError>> + Send {
        async { Ok(()) }
    }
}

/// A long-running source made of a function of its config and its context
/// (Tourbillon's `def myplugin(agent)`; [`crate::registry::Registry::service_fn`]).
pub struct FnService(
    pub(crate) Box<dyn FnOnce(Context) -> crate::future::BoxFuture<'static, Result<(), ServiceError>> + Send>,
);

impl Service for FnService {
    async fn run(self, ctx: Context) -> Result<(), ServiceError> {
        (self.0)(ctx).await
    }
}

/// An engine's per-event task as a function (Canopsis's `work`): the event
/// changed, or `None` to drop it.
pub type Work = fn(Event, &Context) -> Result<Option<Event>, EngineError>;

/// An engine's beat task as a function (Canopsis's `beat`): events of its own.
pub type Beat = fn(&Context) -> Result<Vec<Event>, EngineError>;

/// An engine made of two functions ([`crate::registry::Registry::engine_fn`]).
pub struct FnEngine {
    pub(crate) work: Work,
    pub(crate) beat: Option<Beat>,
}

impl Engine for FnEngine {
    fn process(&mut self, event: Event, out: &mut Vec<Event>, ctx: &Context) -> Result<(), EngineError> {
        out.extend((self.work)(event, ctx)?);
        Ok(())
    }

    fn beat(&mut self, out: &mut Vec<Event>, ctx: &Context) -> Result<(), EngineError> {
        if let Some(beat) = self.beat {
            out.extend(beat(ctx)?);
        }
        Ok(())
    }
}
