//! Boards: the local history they are drawn from (`history.rs`), the
//! check states (`checks.rs`), templates (`template.rs`) and the bindings
//! of their widgets to the history (`bind.rs`), the boards the agent
//! provides (`set.rs`), their pages and queries (`web.rs`, `query.rs`),
//! and the `board` sink that holds them all (`sink.rs`).

pub mod bind;
pub mod checks;
pub mod history;
pub mod query;
pub mod set;
pub mod sink;
pub mod template;
pub mod web;
