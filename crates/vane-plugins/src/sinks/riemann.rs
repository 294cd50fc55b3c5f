//! The `riemann` sink: Riemann's protobuf protocol over TCP. Each batch is
//! one `Msg` with a 4-byte big-endian length in front; the batch counts as
//! delivered when the server answers `ok`. The messages, and how events
//! become Riemann events, are in [`crate::riemann`].

use serde::Deserialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use vane_core::prelude::*;

use crate::riemann::{Msg, to_riemann};

/// Settings of the `riemann` sink.
#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct RiemannConfig {
    /// host:port of Riemann's TCP server. Default: 127.0.0.1:5555.
    #[serde(default = "default_address")]
    pub address: String,
    /// Riemann tags put on every event.
    #[serde(default)]
    pub tags: Vec<String>,
    /// How long to wait for the server's answer. Default: 10s.
    #[serde(default = "crate::defaults::ten_seconds")]
    pub timeout: vane_core::Duration,
}

fn default_address() -> String {
    "127.0.0.1:5555".into()
}

pub struct Riemann {
    cfg: RiemannConfig,
    conn: Option<tokio::net::TcpStream>,
}

impl Riemann {
    async fn exchange(&mut self, body: &[u8]) -> std::io::Result<Msg> {
        if self.conn.is_none() {
            self.conn = Some(tokio::net::TcpStream::connect(&self.cfg.address).await?);
        }
        let c = self.conn.as_mut().expect("connected above");
        c.write_all(&(body.len() as u32).to_be_bytes()).await?;
        c.write_all(body).await?;
        let mut len = [0u8; 4];
        c.read_exact(&mut len).await?;
        let n = u32::from_be_bytes(len) as usize;
        if n > 64 << 20 {
            return Err(std::io::Error::other(format!("an answer of {n} bytes")));
        }
        let mut buf = vec![0u8; n];
        c.read_exact(&mut buf).await?;
        <Msg as prost::Message>::decode(buf.as_slice()).map_err(std::io::Error::other)
    }
}

impl Sink for Riemann {
    async fn send(&mut self, batch: &[Event], _: &Context) -> Result<(), SinkError> {
        use prost::Message as _;
        let msg = Msg { events: to_riemann(batch, &self.cfg.tags), ..Msg::default() };
        if msg.events.is_empty() {
            return Ok(());
        }
        let body = msg.encode_to_vec();
        let answer = tokio::time::timeout(self.cfg.timeout.get(), self.exchange(&body)).await;
        match answer {
            Ok(Ok(m)) if m.ok == Some(true) => Ok(()),
            Ok(Ok(m)) => {
                self.conn = None;
                Err(SinkError::retry(format!(
                    "riemann at {} refused the batch: {}",
                    self.cfg.address,
                    m.error.unwrap_or_default()
                )))
            }
            Ok(Err(e)) => {
                self.conn = None;
                Err(SinkError::retry(format!("riemann at {}: {e}", self.cfg.address)))
            }
            Err(_) => {
                self.conn = None;
                Err(SinkError::retry(format!("riemann at {}: no answer in time", self.cfg.address)))
            }
        }
    }
}

impl Build for Riemann {
    type Config = RiemannConfig;

    fn build(cfg: RiemannConfig, _: &Context) -> Result<Self, BuildError> {
        Ok(Riemann { cfg, conn: None })
    }
}
