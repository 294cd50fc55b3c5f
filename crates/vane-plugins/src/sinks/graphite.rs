//! The `graphite` sink: Graphite's plaintext protocol over TCP, one line per
//! numeric field: `PATH VALUE TIMESTAMP`. The path comes from a template:
//! `{host}`, `{name}`, `{field}`, `{tags}` (every tag value, in order,
//! dot-separated) and `{tag.KEY}`; empty parts leave no empty path segment.
//! Dots and spaces inside values become `_` so they do not add levels.
//! Strings are skipped, booleans are 0 or 1. A batch counts as delivered
//! once written to the connection (the protocol has no acknowledgement).

use serde::Deserialize;
use tokio::io::AsyncWriteExt;
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
}

fn default_address() -> String {
    "127.0.0.1:2003".into()
}

fn default_template() -> String {
    "{host}.{name}.{tags}.{field}".into()
}

pub struct Graphite {
    cfg: GraphiteConfig,
    conn: Option<tokio::net::TcpStream>,
    buf: String,
}

fn clean(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c == '.' || c.is_whitespace() {
                '_'
            } else {
                c
            }
        })
        .collect()
}

/// The path of one field of an event.
pub fn path(template: &str, prefix: &str, e: &Event, field: &str) -> String {
    // Split on dots outside braces: `{tag.cpu}` is one part.
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0, 0);
    for (i, c) in template.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            '.' if depth == 0 => {
                parts.push(&template[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&template[start..]);
    let mut out: Vec<String> = Vec::new();
    for part in parts {
        let value = match part {
            "{host}" => clean(&e.host),
            "{name}" => clean(&e.name),
            "{field}" => clean(field),
            "{tags}" => e
                .tags
                .iter()
                .map(|(_, v)| clean(v))
                .filter(|v| !v.is_empty())
                .collect::<Vec<_>>()
                .join("."),
            p if p.starts_with("{tag.") && p.ends_with('}') => {
                e.get_tag(&p[5..p.len() - 1]).map(clean).unwrap_or_default()
            }
            literal => literal.to_owned(),
        };
        if !value.is_empty() {
            out.push(value);
        }
    }
    format!("{prefix}{}", out.join("."))
}

impl Sink for Graphite {
    type Config = GraphiteConfig;

    fn build(cfg: GraphiteConfig, _: &Context) -> Result<Self> {
        Ok(Graphite {
            cfg,
            conn: None,
            buf: String::new(),
        })
    }

    async fn send(&mut self, batch: &[Event], _: &Context) -> Result<()> {
        use std::fmt::Write as _;
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
                let p = path(&self.cfg.template, &self.cfg.prefix, e, k);
                let _ = writeln!(self.buf, "{p} {x} {secs}");
            }
        }
        if self.conn.is_none() {
            let c = tokio::net::TcpStream::connect(&self.cfg.address)
                .await
                .map_err(|e| Error::retry(format!("graphite at {}: {e}", self.cfg.address)))?;
            self.conn = Some(c);
        }
        let conn = self.conn.as_mut().expect("connected above");
        if let Err(e) = conn.write_all(self.buf.as_bytes()).await {
            self.conn = None;
            return Err(Error::retry(format!(
                "graphite at {}: {e}",
                self.cfg.address
            )));
        }
        Ok(())
    }

    async fn flush(&mut self, _: &Context) -> Result<()> {
        if let Some(c) = self.conn.as_mut() {
            c.flush().await?;
            c.shutdown().await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_build_paths() {
        let e = Event::gauge("cpu load", 1.0)
            .host("web-01.example.com")
            .tag("dc", "par1")
            .tag("cpu", "cpu0");
        let t = default_template();
        assert_eq!(
            path(&t, "", &e, "value"),
            "web-01_example_com.cpu_load.par1.cpu0.value"
        );
        assert_eq!(
            path(
                "{name}.{tag.cpu}.{tag.missing}.{field}",
                "servers.",
                &e,
                "v"
            ),
            "servers.cpu_load.cpu0.v"
        );
        let bare = Event::gauge("up", 1.0);
        assert_eq!(path(&t, "", &bare, "value"), "up.value");
    }
}
