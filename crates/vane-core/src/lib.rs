//! vane's plugin SDK: the event model, its encodings, the plugin traits, the
//! registry and the context every plugin gets. Plugin authors depend on this
//! crate alone; it holds no scheduler and no I/O of its own.
//!
//! ```
//! use vane_core::prelude::*;
//!
//! #[derive(serde::Deserialize)]
//! struct Random;
//!
//! impl Source for Random {
//!     async fn poll(&mut self, _: &Context) -> Result<Vec<Event>> {
//!         Ok(vec![Event::gauge("random", 4.0)])
//!     }
//! }
//!
//! let mut registry = Registry::new();
//! registry.source::<Random>("com.example.random", "a fair dice roll");
//! assert!(registry.finish().is_ok());
//! ```

pub mod ack;
pub mod binary;
pub mod blocking;
pub mod board;
pub mod conns;
pub mod context;
pub mod duration;
pub mod error;
pub mod event;
pub mod exec;
pub mod expr;
pub mod formats;
pub mod future;
pub mod http;
pub mod instance;
pub mod intake;
pub mod invalid;
pub mod json;
pub mod lease;
pub mod lifecycle;
pub mod lineproto;
pub mod lines;
pub mod listen;
pub mod node;
pub mod path_template;
pub mod plugin;
pub mod random;
pub mod record;
pub mod regex;
pub mod registry;
pub mod runtime;
pub mod size;
pub mod stats;
pub mod testing;
pub mod url;

pub use duration::Duration;
pub use invalid::Invalid;
pub use size::ByteSize;

pub use future::BoxFuture;

/// Everything a plugin needs, in one import.
pub mod prelude {
    pub use crate::context::Context;
    pub use crate::duration::Duration;
    pub use crate::error::{
        BuildAction, BuildError, EngineAction, EngineError, Result, ServiceAction, ServiceError, SinkAction, SinkError,
        SourceAction, SourceError,
    };
    pub use crate::event::{Event, Kind, State, Text, Value};
    pub use crate::exec::Command;
    pub use crate::plugin::{Build, Engine, Service, Sink, Source};
    pub use crate::registry::Registry;
}
