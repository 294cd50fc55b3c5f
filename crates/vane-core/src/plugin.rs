//! The three plugin roles — source, engine, sink — and the error a plugin returns.
//!
//! Each trait has one or two required methods; everything else has a default.
//! `build` turns the plugin's typed config into an instance; the runtime calls
//! it again to restart an instance that panicked or failed.

use std::fmt;
use std::future::Future;
use std::pin::Pin;

use serde::de::DeserializeOwned;

use crate::context::Context;
use crate::event::Event;

/// What the runtime should do after a plugin error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Log it, count it, try again at the next interval (the default).
    Retry,
    /// Tear the instance down and build a new one after a backoff.
    Restart,
    /// Stop this job for good (the rest of the agent goes on).
    Stop,
}

/// A plugin error: any error, plus what the runtime should do about it.
///
/// Any `std::error::Error`, `String` or `&str` converts with `?` or `.into()`
/// and means [`Action::Retry`].
pub struct Error {
    inner: Box<dyn std::error::Error + Send + Sync>,
    action: Action,
}

impl Error {
    pub fn retry(e: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Error {
        Error {
            inner: e.into(),
            action: Action::Retry,
        }
    }

    /// The instance is broken: rebuild it after a backoff.
    pub fn restart(e: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Error {
        Error {
            inner: e.into(),
            action: Action::Restart,
        }
    }

    /// The job cannot work at all (bad credentials, missing hardware).
    pub fn stop(e: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Error {
        Error {
            inner: e.into(),
            action: Action::Stop,
        }
    }

    pub fn action(&self) -> Action {
        self.action
    }
}

impl<E: Into<Box<dyn std::error::Error + Send + Sync>>> From<E> for Error {
    fn from(e: E) -> Error {
        Error::retry(e)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.inner, f)?;
        let mut src = self.inner.source();
        while let Some(s) = src {
            write!(f, ": {s}")?;
            src = s.source();
        }
        Ok(())
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self} ({:?})", self.action)
    }
}

/// The result of a plugin call.
pub type Result<T = (), E = Error> = std::result::Result<T, E>;

/// A boxed future, as the runtime stores plugin calls.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A polled source: the runtime calls [`Source::poll`] every interval.
///
/// Return the events of this poll, or emit them at any time with
/// [`Context::emit`]; both may be used.
///
/// ```
/// use vane_core::prelude::*;
///
/// #[derive(serde::Deserialize)]
/// struct Config { #[serde(default)] greeting: String }
///
/// struct Hello { bit: bool, greeting: String }
///
/// impl Source for Hello {
///     type Config = Config;
///     fn build(c: Config, _: &Context) -> Result<Self> {
///         Ok(Hello { bit: false, greeting: c.greeting })
///     }
///     async fn poll(&mut self, _: &Context) -> Result<Vec<Event>> {
///         self.bit = !self.bit;
///         Ok(vec![Event::gauge("hello", if self.bit { 0.0 } else { 1.0 })
///             .description(self.greeting.clone())])
///     }
/// }
/// ```
pub trait Source: Send + Sized + 'static {
    type Config: DeserializeOwned + Send;

    fn build(config: Self::Config, ctx: &Context) -> Result<Self>;

    fn poll(&mut self, ctx: &Context) -> impl Future<Output = Result<Vec<Event>>> + Send;
}

/// A long-running source: a listener, a subscription, a child process.
///
/// `run` is called once and should return when [`Context::stopping`] fires.
/// Returning an error restarts it after a backoff.
pub trait Service: Send + Sized + 'static {
    type Config: DeserializeOwned + Send;

    fn build(config: Self::Config, ctx: &Context) -> Result<Self>;

    fn run(self, ctx: Context) -> impl Future<Output = Result<()>> + Send;
}

/// An engine: a per-event task and an optional beat task.
///
/// `process` passes (push the event), changes, drops (push nothing) or
/// multiplies (push several) each event. `beat` runs on the engine's `beat`
/// interval and may push events of its own (summaries, expirations).
pub trait Engine: Send + Sized + 'static {
    type Config: DeserializeOwned + Send;

    fn build(config: Self::Config, ctx: &Context) -> Result<Self>;

    fn process(&mut self, event: Event, out: &mut Vec<Event>) -> Result<()>;

    fn beat(&mut self, _out: &mut Vec<Event>) -> Result<()> {
        Ok(())
    }

    /// The beat interval to use when the job sets none (engines whose beat
    /// is essential, like windows that must close on time).
    fn default_beat(&self) -> Option<std::time::Duration> {
        None
    }
}

/// A sink: delivers batches of events to a backend.
pub trait Sink: Send + Sized + 'static {
    type Config: DeserializeOwned + Send;

    fn build(config: Self::Config, ctx: &Context) -> Result<Self>;

    /// Called once before the first batch (create a database, open a file).
    fn prepare(&mut self, _ctx: &Context) -> impl Future<Output = Result<()>> + Send {
        async { Ok(()) }
    }

    fn send(&mut self, batch: &[Event], ctx: &Context) -> impl Future<Output = Result<()>> + Send;

    /// Called once at shutdown, after the last batch.
    fn flush(&mut self, _ctx: &Context) -> impl Future<Output = Result<()>> + Send {
        async { Ok(()) }
    }
}

// ------------------------------------------------- type-erased forms for the runtime

/// A [`Source`] behind a pointer.
pub trait DynSource: Send {
    fn poll<'a>(&'a mut self, ctx: &'a Context) -> BoxFuture<'a, Result<Vec<Event>>>;
}

impl<T: Source> DynSource for T {
    fn poll<'a>(&'a mut self, ctx: &'a Context) -> BoxFuture<'a, Result<Vec<Event>>> {
        Box::pin(Source::poll(self, ctx))
    }
}

/// A [`Service`] behind a pointer.
pub trait DynService: Send {
    fn run(self: Box<Self>, ctx: Context) -> BoxFuture<'static, Result<()>>;
}

impl<T: Service> DynService for T {
    fn run(self: Box<Self>, ctx: Context) -> BoxFuture<'static, Result<()>> {
        Box::pin(Service::run(*self, ctx))
    }
}

/// An [`Engine`] behind a pointer.
pub trait DynEngine: Send {
    fn process(&mut self, event: Event, out: &mut Vec<Event>) -> Result<()>;
    fn beat(&mut self, out: &mut Vec<Event>) -> Result<()>;
    fn default_beat(&self) -> Option<std::time::Duration>;
}

impl<T: Engine> DynEngine for T {
    fn process(&mut self, event: Event, out: &mut Vec<Event>) -> Result<()> {
        Engine::process(self, event, out)
    }
    fn beat(&mut self, out: &mut Vec<Event>) -> Result<()> {
        Engine::beat(self, out)
    }
    fn default_beat(&self) -> Option<std::time::Duration> {
        Engine::default_beat(self)
    }
}

/// A [`Sink`] behind a pointer.
pub trait DynSink: Send {
    fn prepare<'a>(&'a mut self, ctx: &'a Context) -> BoxFuture<'a, Result<()>>;
    fn send<'a>(&'a mut self, batch: &'a [Event], ctx: &'a Context) -> BoxFuture<'a, Result<()>>;
    fn flush<'a>(&'a mut self, ctx: &'a Context) -> BoxFuture<'a, Result<()>>;
}

impl<T: Sink> DynSink for T {
    fn prepare<'a>(&'a mut self, ctx: &'a Context) -> BoxFuture<'a, Result<()>> {
        Box::pin(Sink::prepare(self, ctx))
    }
    fn send<'a>(&'a mut self, batch: &'a [Event], ctx: &'a Context) -> BoxFuture<'a, Result<()>> {
        Box::pin(Sink::send(self, batch, ctx))
    }
    fn flush<'a>(&'a mut self, ctx: &'a Context) -> BoxFuture<'a, Result<()>> {
        Box::pin(Sink::flush(self, ctx))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_convert_and_keep_their_action() {
        let e: Error = "boom".into();
        assert_eq!(e.action(), Action::Retry);
        let io = std::io::Error::other("disk");
        let e: Error = io.into();
        assert_eq!(e.to_string(), "disk");
        assert_eq!(Error::stop("no").action(), Action::Stop);
    }
}
