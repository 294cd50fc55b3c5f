//! The `influxdb` sink: InfluxDB 1.x's HTTP API. Before the first batch it
//! creates its database and retention policy when they are missing (and
//! leaves existing ones alone, as Tourbillon's agent does). Batches go to
//! `/write` as line protocol, gzipped if asked; unsigned fields are written
//! as integers, which every 1.x build accepts.
//!
//! Answers: 204 is delivered. 400 (bad points, a field type conflict) is
//! not retried: the batch's lines go to a dead-letter file with the
//! server's reason, and are counted. 429 and 5xx (after `Retry-After`, if
//! given) and connection errors are retried by the runtime; so are 401, 403
//! and 404 (credentials or a database fixed by hand let delivery resume).

use std::io::Write as _;
use std::path::PathBuf;

use serde::Deserialize;
use vane_core::lineproto::{self, Precision};
use vane_core::prelude::*;

use super::OutPrecision;
use super::dead_letter::DeadLetter;

/// The retention policy to make sure of.
#[derive(Deserialize, Debug, Clone)]
#[serde(deny_unknown_fields)]
pub struct Retention {
    pub name: String,
    /// An InfluxQL duration: `14d`, `52w`, `INF`.
    pub duration: String,
    #[serde(default = "crate::defaults::one")]
    pub replication: u32,
    /// Make it the database's default policy. Default: false.
    #[serde(default)]
    pub default: bool,
}

/// Settings of the `influxdb` sink.
#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct InfluxConfig {
    /// Default: http://127.0.0.1:8086.
    #[serde(default = "default_url")]
    pub url: vane_core::url::Url,
    pub database: String,
    /// Created when missing; writes go to it.
    pub retention: Option<Retention>,
    /// Timestamp precision sent. Default: ns.
    #[serde(default)]
    pub precision: OutPrecision,
    pub username: Option<String>,
    pub password: Option<String>,
    /// Gzip the bodies. Default: false.
    #[serde(default)]
    pub gzip: bool,
    /// Per request. Default: 10s.
    #[serde(default = "crate::defaults::ten_seconds")]
    pub timeout: vane_core::Duration,
    /// Where rejected lines go. Default: DATA_DIR/deadletter/JOB.lp.
    pub dead_letter: Option<PathBuf>,
}

fn default_url() -> vane_core::url::Url {
    vane_core::url::Url::new("http://127.0.0.1:8086")
}

pub struct InfluxDb {
    cfg: InfluxConfig,
    client: reqwest::Client,
    dead_letter: DeadLetter,
    body: String,
}

fn precision_param(p: OutPrecision) -> &'static str {
    match p {
        OutPrecision::Ns => "ns",
        OutPrecision::Us => "u",
        OutPrecision::Ms => "ms",
        OutPrecision::S => "s",
    }
}

impl InfluxDb {
    fn request(&self, path: &str) -> reqwest::RequestBuilder {
        let url = format!("{}{path}", self.cfg.url.expose().trim_end_matches('/'));
        let mut r = self.client.post(url);
        if let Some(u) = &self.cfg.username {
            r = r.basic_auth(u, self.cfg.password.as_deref());
        }
        r
    }

    /// Runs one InfluxQL statement; the server's JSON answer.
    async fn query(&self, q: &str) -> Result<serde_json::Value, SinkError> {
        let resp = self
            .request("/query")
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(format!("q={}", urlencode(q)))
            .send()
            .await
            .map_err(|e| SinkError::retry(format!("InfluxDB at {}: {}", self.cfg.url, e.without_url())))?;
        let status = resp.status();
        let text = crate::http_client::error_text(resp).await;
        let v: serde_json::Value = serde_json::from_str(&text).unwrap_or(serde_json::Value::Null);
        let err = v["error"].as_str().or(v["results"][0]["error"].as_str());
        if !status.is_success() || err.is_some() {
            return Err(SinkError::retry(format!(
                "InfluxDB refused `{q}`: {} {}",
                status.as_u16(),
                err.unwrap_or(text.trim())
            )));
        }
        Ok(v)
    }
}

impl Sink for InfluxDb {
    async fn prepare(&mut self, ctx: &Context) -> Result<(), SinkError> {
        let db = self.cfg.database.replace('"', "\\\"");
        self.query(&format!("CREATE DATABASE \"{db}\"")).await?;
        if let Some(rp) = self.cfg.retention.clone() {
            let have = self.query(&format!("SHOW RETENTION POLICIES ON \"{db}\"")).await?;
            let exists = have["results"][0]["series"][0]["values"]
                .as_array()
                .is_some_and(|rows| rows.iter().any(|r| r[0].as_str() == Some(rp.name.as_str())));
            if exists {
                ctx.info(format!("retention policy {} exists; left as it is", rp.name));
            } else {
                self.query(&format!(
                    "CREATE RETENTION POLICY \"{}\" ON \"{db}\" DURATION {} REPLICATION {}{}",
                    rp.name.replace('"', "\\\""),
                    rp.duration,
                    rp.replication,
                    if rp.default { " DEFAULT" } else { "" }
                ))
                .await?;
            }
        }
        Ok(())
    }

    async fn send(&mut self, batch: &[Event], ctx: &Context) -> Result<(), SinkError> {
        self.body.clear();
        let precision: Precision = self.cfg.precision.into();
        for e in batch {
            lineproto::encode_into_with(&mut self.body, e, precision, false);
        }
        if self.body.is_empty() {
            return Ok(());
        }
        let mut path =
            format!("/write?db={}&precision={}", urlencode(&self.cfg.database), precision_param(self.cfg.precision));
        if let Some(rp) = &self.cfg.retention {
            path.push_str(&format!("&rp={}", urlencode(&rp.name)));
        }
        let mut req = self.request(&path);
        req = if self.cfg.gzip {
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            gz.write_all(self.body.as_bytes())?;
            req.header("Content-Encoding", "gzip").body(gz.finish()?)
        } else {
            req.body(self.body.clone())
        };
        let resp = req
            .send()
            .await
            .map_err(|e| SinkError::retry(format!("InfluxDB at {}: {}", self.cfg.url, e.without_url())))?;
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let text = crate::http_client::error_text(resp).await;
        match status {
            200..=299 => Ok(()),
            400 => {
                let reason: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
                let reason = reason["error"].as_str().unwrap_or(text.trim()).to_owned();
                ctx.report_error(format!(
                    "InfluxDB rejected a batch of {} lines (kept in {}): {reason}",
                    batch.len(),
                    self.dead_letter.path().display()
                ));
                let body = std::mem::take(&mut self.body);
                self.dead_letter.keep(&body, &reason, ctx)?;
                self.body = body;
                Ok(())
            }
            _ => {
                if status == 429 || status == 503 {
                    crate::http_client::honour_retry_after(&headers).await;
                }
                Err(SinkError::retry(format!("InfluxDB answered {status}: {}", text.trim())))
            }
        }
    }
}

impl Build for InfluxDb {
    type Config = InfluxConfig;

    fn build(cfg: InfluxConfig, ctx: &Context) -> Result<Self, BuildError> {
        let client = crate::http_client::with_timeout(cfg.timeout)?;
        let dead_letter = DeadLetter::new(cfg.dead_letter.clone(), ctx);
        Ok(InfluxDb { cfg, client, dead_letter, body: String::new() })
    }
}

/// A query value %-encoded (unreserved characters as they are).
pub fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}
