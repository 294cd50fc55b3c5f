//! Built-in engines.

pub mod transform;
