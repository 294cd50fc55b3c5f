//! A lease: which one of an engine's workers runs its beat. Workers of a
//! bus-backed engine run in many processes; the bus plugin that feeds them
//! can also offer a lease, held by one of them at a time, so that a beat
//! that is not per worker ([`crate::plugin::Engine::beat_each_worker`])
//! runs once per interval across them all.

use std::sync::Arc;

use crate::context::Context;
use crate::error::BuildError;
use crate::node::Node;

/// Whether this process holds a lease now. Cheap: asked at every beat.
pub trait Lease: Send + Sync + 'static {
    fn held(&self) -> bool;
}

/// Takes part in the lease called `name`, reaching the bus with `config`
/// (the bus plugin's own config, as its source gets it). It keeps trying
/// until `ctx` stops, and lets the lease go when it stops.
pub type LeaseFn = fn(name: &str, config: &Node, ctx: &Context) -> Result<Arc<dyn Lease>, BuildError>;
