//! Boards: the local history they are drawn from (`history.rs`) and the
//! `board` sink that keeps it (`sink.rs`).

pub mod history;
pub mod sink;
