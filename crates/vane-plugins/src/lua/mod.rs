//! Lua 5.4 plugins: a source script defines `collect(ctx)`, an engine script
//! `process(event)` and optionally `beat()`, a `lua_lines` script
//! `line(text)`, an `amqp` source's script `notification(msg)`
//! ([`notification`]). Each returns nothing, one event or a list of events;
//! `ctx.emit(event)` sends more at any time.
//!
//! An event a script makes is a table `{name=, time=, host=, tags={},
//! fields={}, kind=, state=, description=, ttl=}`. The event an engine's
//! `process` receives has the same keys but is the event itself, read and
//! written in place ([`event`]): returning it passes it on as changed, with
//! its tags' and fields' order and types kept. The global `ctx` offers
//! `config` (the job's `settings`), `job`, `host`, `log`, `warn`,
//! `report_error`, `emit`, and `exec(argv, timeout_seconds)`, which runs a
//! program without a shell and returns `{code=, stdout=, stderr=}` (it
//! blocks its worker thread while the program runs).
//!
//! Sources running the same script (with the same `instructions` and
//! `memory`) share a Lua state, up to 64 jobs a state, so that thousands of
//! them stay cheap: each job has its own globals (`_G` included), but the
//! libraries' tables (`string`, `math`…) are the state's, its memory limit
//! is `memory` times the jobs it holds, and the jobs' calls take turns.
//! Engines and `lua_lines` have a state each.
//!
//! Scripts are sandboxed ([`state`]): only the table, string, math, utf8 and
//! coroutine libraries and a harmless part of `os`; no `io`, `require`,
//! `dofile`, `loadfile`, and `load` reads text only, never bytecode. Every
//! call gets an instruction budget and the state a memory limit; a script
//! that runs away is stopped, counted and reported, and the agent goes on.
//! Errors name the script's file and line.

mod board;
mod budget;
pub mod convert;
pub mod engine;
pub mod event;
mod exec;
pub mod lines;
#[cfg(feature = "amqp")]
pub mod notification;
pub mod pattern;
mod sandbox;
pub mod source;
pub mod state;
mod strlib;

use std::path::PathBuf;

use serde::Deserialize;
use vane_core::ByteSize;

pub use engine::LuaEngine;
pub use lines::{ListenerConfig, LuaLines, LuaLinesConfig};
pub use source::LuaSource;

/// Settings of the `lua` source and engine.
#[derive(Deserialize, Debug, Clone)]
#[serde(deny_unknown_fields)]
pub struct LuaConfig {
    /// The script, relative to the config file it is named in.
    pub script: PathBuf,
    /// Anything: given to the script as `ctx.config`.
    pub settings: Option<serde_json::Value>,
    /// Lua instructions one call may run. Default: 10000000.
    #[serde(default = "ten_million")]
    pub instructions: u64,
    /// Memory the script's state may use. Default: 64MiB.
    #[serde(default = "sixty_four_mib")]
    pub memory: ByteSize,
    /// Wall-clock time one call may take. Default: 5s.
    #[serde(default = "five_seconds")]
    pub timeout: vane_core::Duration,
}

/// A script's failure, with its file and line where Lua knows them.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ScriptError(pub String);

impl From<mlua::Error> for ScriptError {
    fn from(e: mlua::Error) -> ScriptError {
        // Keep the message and its position; drop the stack traceback. An
        // error raised by vane's side of a call (reading an event, say)
        // takes its position from the script's innermost frame.
        let (text, at) = match &e {
            mlua::Error::CallbackError { cause, traceback } => {
                let at = traceback
                    .lines()
                    .map(str::trim)
                    .find(|l| !l.starts_with('[') && l.contains(": in "))
                    .and_then(|l| l.split(": in ").next());
                (cause.to_string(), at)
            }
            other => (other.to_string(), None),
        };
        let text = text.lines().next().unwrap_or("").trim();
        let text = text.strip_prefix("runtime error: ").unwrap_or(text);
        match at {
            Some(at) if !text.starts_with(at) => ScriptError(format!("{at}: {text}")),
            _ => ScriptError(text.to_owned()),
        }
    }
}

fn ten_million() -> u64 {
    10_000_000
}

fn five_seconds() -> vane_core::Duration {
    vane_core::Duration::from_secs(5)
}

fn sixty_four_mib() -> ByteSize {
    ByteSize(64 << 20)
}

#[cfg(test)]
pub(crate) mod testing {
    use super::*;
    use vane_core::plugin::Build;
    use vane_core::testing::Harness;

    /// A `lua` source job named `job` running the script of `cfg`.
    pub fn source(cfg: &LuaConfig, job: &str) -> (Harness, LuaSource) {
        let h = Harness::new(job);
        let s = LuaSource::build(cfg.clone(), h.context()).unwrap();
        (h, s)
    }

    /// A script in a folder of its own, and a config running it.
    pub fn script(body: &str) -> (tempfile::TempDir, LuaConfig) {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s.lua");
        std::fs::write(&p, body).unwrap();
        let cfg = LuaConfig {
            script: p,
            settings: Some(serde_json::json!({"prefix": "p_", "n": 3})),
            instructions: 100_000,
            memory: ByteSize(4 << 20),
            timeout: five_seconds(),
        };
        (dir, cfg)
    }
}
