//! The `riemann` sink: Riemann's protobuf protocol over TCP. Each batch is
//! one `Msg` with a 4-byte big-endian length in front; the batch counts as
//! delivered when the server answers `ok`. One Riemann event per numeric
//! field: the service is the event's name (then a space and the field,
//! unless the field is `value`); host, state, description, ttl and time
//! (seconds and microseconds) carry over; the metric goes in `metric_sint64`
//! for integers and `metric_d` otherwise; tags become attributes.
//!
//! Message fields follow Riemann's published `proto.proto`.

use serde::Deserialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use vane_core::prelude::*;

#[derive(Clone, PartialEq, prost::Message)]
pub struct Msg {
    #[prost(bool, optional, tag = "2")]
    pub ok: Option<bool>,
    #[prost(string, optional, tag = "3")]
    pub error: Option<String>,
    #[prost(message, repeated, tag = "6")]
    pub events: Vec<RiemannEvent>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct RiemannEvent {
    #[prost(int64, optional, tag = "1")]
    pub time: Option<i64>,
    #[prost(string, optional, tag = "2")]
    pub state: Option<String>,
    #[prost(string, optional, tag = "3")]
    pub service: Option<String>,
    #[prost(string, optional, tag = "4")]
    pub host: Option<String>,
    #[prost(string, optional, tag = "5")]
    pub description: Option<String>,
    #[prost(string, repeated, tag = "7")]
    pub tags: Vec<String>,
    #[prost(float, optional, tag = "8")]
    pub ttl: Option<f32>,
    #[prost(message, repeated, tag = "9")]
    pub attributes: Vec<Attribute>,
    #[prost(int64, optional, tag = "10")]
    pub time_micros: Option<i64>,
    #[prost(sint64, optional, tag = "13")]
    pub metric_sint64: Option<i64>,
    #[prost(double, optional, tag = "14")]
    pub metric_d: Option<f64>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Attribute {
    #[prost(string, required, tag = "1")]
    pub key: String,
    #[prost(string, optional, tag = "2")]
    pub value: Option<String>,
}

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

/// A batch as Riemann events.
pub fn to_riemann(batch: &[Event], tags: &[String]) -> Vec<RiemannEvent> {
    let mut out = Vec::new();
    for e in batch {
        for (field, v) in &e.fields {
            let (sint, d) = match v {
                Value::Str(_) => continue,
                Value::Int(i) => (Some(*i), None),
                Value::Uint(u) => match i64::try_from(*u) {
                    Ok(i) => (Some(i), None),
                    Err(_) => (None, Some(*u as f64)),
                },
                v => (None, v.as_f64()),
            };
            let service = if field == "value" { e.name.clone() } else { format!("{} {field}", e.name) };
            out.push(RiemannEvent {
                time: Some(e.time.div_euclid(1_000_000_000)),
                time_micros: Some(e.time.div_euclid(1_000)),
                state: e.state.map(|s| s.as_str().to_owned()),
                service: Some(service),
                host: (!e.host.is_empty()).then(|| e.host.clone()),
                description: e.description.clone(),
                tags: tags.to_vec(),
                ttl: e.ttl.map(|t| t as f32),
                attributes: e.tags.iter().map(|(k, v)| Attribute { key: k.clone(), value: Some(v.clone()) }).collect(),
                metric_sint64: sint,
                metric_d: d,
            });
        }
    }
    out
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
        let msg = Msg { ok: None, error: None, events: to_riemann(batch, &self.cfg.tags) };
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
