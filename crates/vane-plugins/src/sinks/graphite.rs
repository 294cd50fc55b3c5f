//! The `graphite` sink: Graphite's plaintext protocol over TCP, one line per
//! numeric field: `PATH VALUE TIMESTAMP`. The path comes from a template:
//! `{host}`, `{name}`, `{field}`, `{tags}` (every tag value, in order,
//! dot-separated), `{tag.KEY}`, and `{path}` (the name with its dots kept as
//! levels, for relaying Graphite paths); empty parts leave no empty segment.
//! Dots and spaces inside values become `_` so they do not add levels.
//! Strings are skipped, booleans are 0 or 1. A batch counts as delivered
//! once written to the connection (the protocol has no acknowledgement).
//! Connecting and writing a batch each get `timeout`: a peer that stops
//! reading fails the send (retried on a new connection), it never stalls
//! the sink unseen.

use serde::Deserialize;
use tokio::io::AsyncWriteExt;
use vane_core::formats::graphite;
use vane_core::path_template::PathTemplate;
use vane_core::prelude::*;

/// Settings of the `graphite` sink.
#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct GraphiteConfig {
    /// host:port of a carbon (or relay) plaintext listener. Default: 127.0.0.1:2003.
    #[serde(default = "default_address")]
    pub address: String,
    /// Default: `{host}.{name}.{tags}.{field}`.
    #[serde(default = "default_template")]
    pub template: String,
    /// Put before every path (`servers.`). Default: none.
    #[serde(default)]
    pub prefix: String,
    /// Longest wait to connect, and to write one batch. Default: 10s.
    #[serde(default = "crate::defaults::ten_seconds")]
    pub timeout: vane_core::Duration,
}

fn default_address() -> String {
    "127.0.0.1:2003".into()
}

fn default_template() -> String {
    "{host}.{name}.{tags}.{field}".into()
}

pub struct Graphite {
    cfg: GraphiteConfig,
    template: PathTemplate,
    conn: Option<tokio::net::TcpStream>,
    buf: String,
}

impl Sink for Graphite {
    async fn send(&mut self, batch: &[Event], _: &Context) -> Result<(), SinkError> {
        self.buf.clear();
        for e in batch {
            let secs = e.time.div_euclid(1_000_000_000);
            for (k, v) in &e.fields {
                let x = match v {
                    Value::Str(_) => continue,
                    v => v.as_f64().unwrap_or(0.0),
                };
                if !x.is_finite() {
                    continue;
                }
                self.template.render(&mut self.buf, &self.cfg.prefix, e, k);
                graphite::write_rest(&mut self.buf, x, secs);
            }
        }
        let (limit, at) = (self.cfg.timeout.get(), &self.cfg.address);
        let timed_out = || SinkError::retry(format!("graphite at {at}: timed out after {limit:?}"));
        if self.conn.is_none() {
            let c = tokio::time::timeout(limit, tokio::net::TcpStream::connect(at))
                .await
                .map_err(|_| timed_out())?
                .map_err(|e| SinkError::retry(format!("graphite at {at}: {e}")))?;
            self.conn = Some(c);
        }
        let conn = self.conn.as_mut().expect("connected above");
        let failed = match tokio::time::timeout(limit, conn.write_all(self.buf.as_bytes())).await {
            Ok(Ok(())) => return Ok(()),
            Ok(Err(e)) => SinkError::retry(format!("graphite at {at}: {e}")),
            Err(_) => timed_out(),
        };
        // What the peer got of this batch is sent again on a new connection.
        self.conn = None;
        Err(failed)
    }

    async fn flush(&mut self, _: &Context) -> Result<(), SinkError> {
        let limit = self.cfg.timeout.get();
        if let Some(c) = self.conn.as_mut() {
            let closed = async {
                c.flush().await?;
                c.shutdown().await
            };
            tokio::time::timeout(limit, closed)
                .await
                .map_err(|_| SinkError::retry("graphite: closing timed out"))??;
        }
        Ok(())
    }
}

impl Build for Graphite {
    type Config = GraphiteConfig;

    fn build(cfg: GraphiteConfig, _: &Context) -> Result<Self, BuildError> {
        Ok(Graphite { template: PathTemplate::parse(&cfg.template), cfg, conn: None, buf: String::new() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vane_core::path_template::path;

    #[test]
    fn templates_build_paths() {
        let e = Event::gauge("cpu load", 1.0).host("web-01.example.com").tag("dc", "par1").tag("cpu", "cpu0");
        let t = default_template();
        assert_eq!(path(&t, "", &e, "value"), "web-01_example_com.cpu_load.par1.cpu0.value");
        assert_eq!(path("{name}.{tag.cpu}.{tag.missing}.{field}", "servers.", &e, "v"), "servers.cpu_load.cpu0.v");
        let bare = Event::gauge("up", 1.0);
        assert_eq!(path(&t, "", &bare, "value"), "up.value");
        let relayed = Event::gauge("servers.web 1.load", 1.0);
        assert_eq!(path("{path}", "", &relayed, "value"), "servers.web_1.load");
    }
}
