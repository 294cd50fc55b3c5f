//! Built plugin instances behind pointers, as the runtime and the harness
//! hold them: the registry builds an [`Instance`] of the right role.

use crate::context::Context;
use crate::error::{EngineError, ServiceError, SinkError, SourceError};
use crate::event::Event;
use crate::future::BoxFuture;
use crate::plugin::{Engine, Service, Sink, Source};

/// A built plugin instance.
pub enum Instance {
    Source(Box<dyn DynSource>),
    Service(Box<dyn DynService>),
    Engine(Box<dyn DynEngine>),
    Sink(Box<dyn DynSink>),
}

impl Instance {
    /// The role's name, for messages.
    pub fn role(&self) -> &'static str {
        match self {
            Instance::Source(_) => "source",
            Instance::Service(_) => "long-running source",
            Instance::Engine(_) => "engine",
            Instance::Sink(_) => "sink",
        }
    }
}

/// A [`Source`] behind a pointer.
pub trait DynSource: Send {
    fn poll<'a>(&'a mut self, ctx: &'a Context) -> BoxFuture<'a, Result<Vec<Event>, SourceError>>;
}

impl<T: Source> DynSource for T {
    fn poll<'a>(&'a mut self, ctx: &'a Context) -> BoxFuture<'a, Result<Vec<Event>, SourceError>> {
        Box::pin(Source::poll(self, ctx))
    }
}

/// A [`Service`] behind a pointer.
pub trait DynService: Send {
    fn run(self: Box<Self>, ctx: Context) -> BoxFuture<'static, Result<(), ServiceError>>;
}

impl<T: Service> DynService for T {
    fn run(self: Box<Self>, ctx: Context) -> BoxFuture<'static, Result<(), ServiceError>> {
        Box::pin(Service::run(*self, ctx))
    }
}

/// An [`Engine`] behind a pointer.
pub trait DynEngine: Send {
    fn process(&mut self, event: Event, out: &mut Vec<Event>, ctx: &Context) -> Result<(), EngineError>;
    fn beat(&mut self, out: &mut Vec<Event>, ctx: &Context) -> Result<(), EngineError>;
    fn default_beat(&self) -> Option<std::time::Duration>;
    fn beat_each_worker(&self) -> bool;
    fn blocking(&self) -> bool;
}

impl<T: Engine> DynEngine for T {
    fn process(&mut self, event: Event, out: &mut Vec<Event>, ctx: &Context) -> Result<(), EngineError> {
        Engine::process(self, event, out, ctx)
    }
    fn beat(&mut self, out: &mut Vec<Event>, ctx: &Context) -> Result<(), EngineError> {
        Engine::beat(self, out, ctx)
    }
    fn default_beat(&self) -> Option<std::time::Duration> {
        Engine::default_beat(self)
    }
    fn beat_each_worker(&self) -> bool {
        Engine::beat_each_worker(self)
    }
    fn blocking(&self) -> bool {
        Engine::blocking(self)
    }
}

/// A [`Sink`] behind a pointer.
pub trait DynSink: Send {
    fn prepare<'a>(&'a mut self, ctx: &'a Context) -> BoxFuture<'a, Result<(), SinkError>>;
    fn send<'a>(&'a mut self, batch: &'a [Event], ctx: &'a Context) -> BoxFuture<'a, Result<(), SinkError>>;
    fn flush<'a>(&'a mut self, ctx: &'a Context) -> BoxFuture<'a, Result<(), SinkError>>;
}

impl<T: Sink> DynSink for T {
    fn prepare<'a>(&'a mut self, ctx: &'a Context) -> BoxFuture<'a, Result<(), SinkError>> {
        Box::pin(Sink::prepare(self, ctx))
    }
    fn send<'a>(&'a mut self, batch: &'a [Event], ctx: &'a Context) -> BoxFuture<'a, Result<(), SinkError>> {
        Box::pin(Sink::send(self, batch, ctx))
    }
    fn flush<'a>(&'a mut self, ctx: &'a Context) -> BoxFuture<'a, Result<(), SinkError>> {
        Box::pin(Sink::flush(self, ctx))
    }
}
