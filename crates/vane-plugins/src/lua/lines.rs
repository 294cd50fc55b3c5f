//! The `lua_lines` source: a TCP listener whose lines a script's
//! `line(text)` turns into events. The socket is vane's (scripts have none);
//! the meaning of each line is the script's.

use std::sync::atomic::Ordering;

use serde::Deserialize;
use vane_core::ByteSize;
use vane_core::conns::{Limits, Listener};
use vane_core::listen::{Listen, Scheme};
use vane_core::node::Flat;
use vane_core::prelude::*;

use super::state::Vm;
use super::{LuaConfig, ScriptError};
use crate::sources::listen::Connections;

/// Settings of the `lua_lines` source: the script's (as the `lua` source
/// and engine take them), and the listener's.
pub type LuaLinesConfig = Flat<LuaConfig, Flat<ListenerConfig, Connections>>;

/// The listener of `lua_lines`.
#[derive(Deserialize, Debug)]
pub struct ListenerConfig {
    /// Where to listen. Default: 127.0.0.1:8000.
    #[serde(default = "default_listen")]
    pub listen: Listen,
    /// Longest line; longer ones are skipped and counted. Default: 64KiB.
    #[serde(default = "crate::defaults::sixty_four_kib")]
    pub max_line: ByteSize,
}

fn default_listen() -> Listen {
    Listen::local(8000)
}

/// A listener whose lines a Lua script turns into events: the socket is
/// vane's (scripts have none), the meaning of each line is the script's.
pub struct LuaLines {
    vm: Vm,
    line: mlua::Function,
    listen: std::net::SocketAddr,
    max_line: usize,
    limits: Limits,
    read_timeout: std::time::Duration,
}

impl Service for LuaLines {
    async fn run(self, ctx: Context) -> Result<(), ServiceError> {
        let listener = Listener::bind(self.listen, self.limits)
            .await
            .map_err(|e| ServiceError::restart(format!("cannot listen on {}: {e}", self.listen)))?;
        ctx.info(format!("listening on {}", listener.local_addr()?));
        // Connections read lines; this task alone owns the Lua state.
        let (tx, mut rx) = tokio::sync::mpsc::channel::<String>(1024);
        let (max, idle) = (self.max_line, self.read_timeout);
        let mut notice = crate::sources::listen::noticing(&ctx);
        let mut texts = Vec::with_capacity(256);
        loop {
            tokio::select! {
                (sock, peer) = listener.accept(&mut notice) => {
                    let (tx, ctx) = (tx.clone(), ctx.clone());
                    tokio::spawn(async move {
                        let mut lines = vane_core::lines::LimitedLines::new(sock, max);
                        let mut n = 0;
                        while let Ok(Ok(Some(l))) = tokio::time::timeout(idle, lines.next_line()).await {
                            n += 1;
                            match l {
                                vane_core::lines::Line::Text(t) => {
                                    if tx.send(t).await.is_err() {
                                        return;
                                    }
                                }
                                _ => {
                                    ctx.stats().bad_lines.fetch_add(1, Ordering::Relaxed);
                                    ctx.warn(format!("{peer}: line {n} is too long or not text; skipped"));
                                }
                            }
                        }
                    });
                }
                n = rx.recv_many(&mut texts, 256) => {
                    if n == 0 {
                        return Ok(());
                    }
                    // The batch's calls run off the async workers at once.
                    let evs = vane_core::blocking::run(|| self.lines(&mut texts, &ctx))?;
                    ctx.emit_all(evs).await;
                }
                _ = ctx.stopping() => return Ok(()),
            }
        }
    }
}

impl LuaLines {
    /// The script's `line` for each text: the events made, each failure
    /// reported.
    fn lines(&self, texts: &mut Vec<String>, ctx: &Context) -> Result<Vec<Event>, ScriptError> {
        let mut evs = Vec::new();
        for text in texts.drain(..) {
            let arg = self.vm.state.lua.create_string(text.trim_end_matches('\r'))?;
            match self.vm.call(&self.line, "line", arg) {
                Ok(e) => evs.extend(e),
                Err(e) => ctx.report_error(e),
            }
        }
        Ok(evs)
    }
}

impl Build for LuaLines {
    type Config = LuaLinesConfig;

    fn build(Flat(script, Flat(listener, conns)): LuaLinesConfig, ctx: &Context) -> Result<Self, BuildError> {
        let vm = Vm::new(&script, ctx, false)?;
        let listen = listener.listen.only(Scheme::Tcp).map_err(|e| BuildError::stop(format!("listen: {e}")))?;
        Ok(LuaLines {
            line: vm.require("line")?,
            vm,
            listen,
            max_line: listener.max_line.0 as usize,
            limits: conns.limits(),
            read_timeout: conns.read_timeout.get(),
        })
    }
}
