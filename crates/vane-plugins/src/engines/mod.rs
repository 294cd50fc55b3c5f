//! Built-in engines.

pub mod aggregate;
pub mod coalesce;
pub mod expire;
pub mod filter;
pub mod rate;
pub mod state;
pub mod transform;
