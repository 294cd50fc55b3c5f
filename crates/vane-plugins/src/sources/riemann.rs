//! The `riemann` source: a Riemann server's door. Over TCP each `Msg` comes
//! with a 4-byte big-endian length in front and is answered `ok` only once
//! every sink stored its events (an error answer otherwise, so the client
//! sends again); over UDP a datagram is one `Msg`, unanswered. Queries are
//! answered with an error. Duct, ducted and any Riemann client point at it
//! unchanged.
//!
//! How a Riemann event becomes a vane event: [`crate::riemann::event`].

use std::net::SocketAddr;
use std::sync::atomic::Ordering::Relaxed;

use prost::Message as _;
use serde::Deserialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use vane_core::ByteSize;
use vane_core::listen::{Listen, Scheme};
use vane_core::prelude::*;

use super::listen::Connections;
use crate::riemann::{Msg, event};

/// Settings of the `riemann` source besides its connections' limits.
#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct RiemannSettings {
    /// `tcp://HOST:PORT` or `udp://HOST:PORT`. Default: tcp://127.0.0.1:5555.
    #[serde(default = "default_listen")]
    pub listen: Listen,
    /// Largest message taken; a TCP client sending a larger one is answered
    /// with an error and closed. Default: 1MiB.
    #[serde(default = "crate::defaults::one_mib")]
    pub max_message: ByteSize,
}

fn default_listen() -> Listen {
    Listen::local(5555)
}

/// Settings of the `riemann` source.
pub type RiemannSourceConfig = vane_core::node::Flat<RiemannSettings, Connections>;

/// Riemann's protocol over TCP or UDP.
pub struct RiemannSource {
    addr: SocketAddr,
    udp: bool,
    max: usize,
    conns: Connections,
}

impl Build for RiemannSource {
    type Config = RiemannSourceConfig;

    fn build(vane_core::node::Flat(c, conns): RiemannSourceConfig, _: &Context) -> Result<Self, BuildError> {
        Ok(RiemannSource {
            addr: c.listen.addr,
            udp: c.listen.scheme == Some(Scheme::Udp),
            max: (c.max_message.0 as usize).max(1),
            conns,
        })
    }
}

impl Service for RiemannSource {
    async fn run(self, ctx: Context) -> Result<(), ServiceError> {
        if self.udp { self.run_udp(ctx).await } else { self.run_tcp(ctx).await }
    }
}

/// The events of a message, each bad one counted and logged.
fn events_of(msg: Msg, ctx: &Context, peer: &SocketAddr) -> Vec<Event> {
    let mut out = Vec::with_capacity(msg.events.len());
    for e in msg.events {
        match event(e) {
            Ok(ev) => out.push(ev),
            Err(why) => {
                ctx.stats().bad_lines.fetch_add(1, Relaxed);
                ctx.warn(format!("{peer}: {why}; skipped"));
            }
        }
    }
    out
}

fn answer(ok: bool, error: Option<String>) -> Vec<u8> {
    let body = Msg { ok: Some(ok), error, ..Msg::default() }.encode_to_vec();
    let mut out = (body.len() as u32).to_be_bytes().to_vec();
    out.extend_from_slice(&body);
    out
}

impl RiemannSource {
    async fn run_tcp(self, ctx: Context) -> Result<(), ServiceError> {
        let (max, idle) = (self.max, self.conns.read_timeout.get());
        super::listen::serve_tcp("riemann on", self.addr, self.conns.limits(), &ctx, |sock, peer| {
            let ctx = ctx.clone();
            async move {
                if let Err(e) = serve(sock, peer, &ctx, max, idle).await {
                    ctx.debug(format!("{peer}: {e}"));
                }
            }
        })
        .await
    }

    async fn run_udp(self, ctx: Context) -> Result<(), ServiceError> {
        let sock = tokio::net::UdpSocket::bind(self.addr)
            .await
            .map_err(|e| ServiceError::restart(format!("cannot listen on udp://{}: {e}", self.addr)))?;
        ctx.info(format!("riemann on udp://{}", sock.local_addr()?));
        let mut buf = vec![0u8; self.max.min(65_536)];
        loop {
            let (n, peer) = tokio::select! {
                r = sock.recv_from(&mut buf) => r?,
                _ = ctx.stopping() => return Ok(()),
            };
            match Msg::decode(&buf[..n]) {
                Ok(msg) => ctx.emit_all(events_of(msg, &ctx, &peer)).await,
                Err(e) => {
                    ctx.stats().bad_lines.fetch_add(1, Relaxed);
                    ctx.warn(format!("{peer}: a datagram that is not a Riemann message ({e}); skipped"));
                }
            }
        }
    }
}

/// One TCP connection: messages in, answers out, until the client closes,
/// idles, sends what cannot be read, or the agent stops.
async fn serve(
    mut sock: impl tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    peer: SocketAddr,
    ctx: &Context,
    max: usize,
    idle: std::time::Duration,
) -> std::io::Result<()> {
    let mut body = Vec::new();
    loop {
        let mut len = [0u8; 4];
        tokio::select! {
            r = tokio::time::timeout(idle, sock.read_exact(&mut len)) => match r {
                Err(_) | Ok(Err(_)) => return Ok(()),
                Ok(Ok(_)) => {}
            },
            _ = ctx.stopping() => return Ok(()),
        }
        let n = u32::from_be_bytes(len) as usize;
        if n > max {
            ctx.stats().bad_lines.fetch_add(1, Relaxed);
            ctx.warn(format!("{peer}: a message of {n} bytes, more than max_message ({max}); closed"));
            let why = format!("message of {n} bytes is larger than {max}");
            return sock.write_all(&answer(false, Some(why))).await;
        }
        body.resize(n, 0);
        match tokio::time::timeout(idle, sock.read_exact(&mut body)).await {
            Err(_) | Ok(Err(_)) => return Ok(()),
            Ok(Ok(_)) => {}
        }
        let msg = match Msg::decode(body.as_slice()) {
            Ok(m) => m,
            Err(e) => {
                ctx.stats().bad_lines.fetch_add(1, Relaxed);
                ctx.warn(format!("{peer}: not a Riemann message ({e}); closed"));
                return sock.write_all(&answer(false, Some(format!("not a Riemann message: {e}")))).await;
            }
        };
        if msg.query.is_some() {
            sock.write_all(&answer(false, Some("vane takes events; queries are not supported".into()))).await?;
            continue;
        }
        let events = events_of(msg, ctx, &peer);
        let stored = events.is_empty() || ctx.emit_acked(events).await;
        let reply = if stored { answer(true, None) } else { answer(false, Some("not stored; send again".into())) };
        sock.write_all(&reply).await?;
    }
}
