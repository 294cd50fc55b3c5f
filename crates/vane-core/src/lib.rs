//! vane's plugin SDK: the event model, its encodings, the plugin traits, the
//! registry and the context every plugin gets. Plugin authors depend on this
//! crate alone; it holds no scheduler and no I/O of its own.
//!
//! ```
//! use vane_core::prelude::*;
//!
//! #[derive(serde::Deserialize, Default)]
//! struct Config {}
//!
//! struct Random;
//!
//! impl Source for Random {
//!     type Config = Config;
//!     fn build(_: Config, _: &Context) -> Result<Self> { Ok(Random) }
//!     async fn poll(&mut self, _: &Context) -> Result<Vec<Event>> {
//!         Ok(vec![Event::gauge("random", 4.0)])
//!     }
//! }
//!
//! let mut registry = Registry::new();
//! registry.source::<Random>("com.example.random", "a fair dice roll");
//! assert!(registry.finish().is_ok());
//! ```

pub mod binary;
pub mod config;
pub mod context;
pub mod duration;
pub mod event;
pub mod exec;
pub mod expr;
pub mod formats;
pub mod json;
pub mod lineproto;
pub mod lines;
pub mod plugin;
pub mod registry;
pub mod size;
pub mod testing;

pub use duration::Duration;
pub use size::ByteSize;

/// Everything a plugin needs, in one import.
pub mod prelude {
    pub use crate::context::Context;
    pub use crate::duration::Duration;
    pub use crate::event::{Event, Kind, State, Value};
    pub use crate::exec::Command;
    pub use crate::plugin::{Engine, Error, Result, Service, Sink, Source};
    pub use crate::registry::Registry;
}
