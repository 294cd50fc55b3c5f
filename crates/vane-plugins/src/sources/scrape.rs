//! The `prometheus` source: scrapes a `/metrics` endpoint each poll and
//! turns every sample into an event (see `vane_core::formats::prometheus`
//! for the mapping: labels become tags, the value the field `value`,
//! counters and histogram/summary series are of kind counter).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::Ordering;

use serde::Deserialize;
use vane_core::prelude::*;

/// Settings of the `prometheus` source.
#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct ScrapeConfig {
    /// The endpoint, e.g. `http://127.0.0.1:9100/metrics`.
    pub url: vane_core::url::Url,
    /// Default: 10s.
    #[serde(default = "crate::defaults::ten_seconds")]
    pub timeout: Duration,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    pub bearer_token: Option<String>,
    /// A PEM file of certificates to trust besides the system's.
    pub ca: Option<PathBuf>,
    /// Default: true.
    #[serde(default = "crate::defaults::yes")]
    pub tls_verify: bool,
    /// Only samples whose names start with one of these (all when empty).
    #[serde(default)]
    pub include: Vec<String>,
    /// Largest page read; a larger one fails the poll. Default: 32MiB.
    #[serde(default = "crate::defaults::thirty_two_mib")]
    pub max_body: vane_core::ByteSize,
}

pub struct Scrape {
    cfg: ScrapeConfig,
    client: reqwest::Client,
}

impl Source for Scrape {
    async fn poll(&mut self, ctx: &Context) -> Result<Vec<Event>> {
        let mut req = self.client.get(self.cfg.url.expose()).header("Accept", "text/plain;version=0.0.4");
        for (k, v) in &self.cfg.headers {
            req = req.header(k, v);
        }
        if let Some(t) = &self.cfg.bearer_token {
            req = req.bearer_auth(t);
        }
        let resp = req.send().await.map_err(|e| format!("{}: {}", self.cfg.url, e.without_url()))?;
        let status = resp.status();
        if !status.is_success() {
            return Err(format!("{}: status {status}", self.cfg.url).into());
        }
        let (body, more) = crate::http_client::body_up_to(resp, self.cfg.max_body.0 as usize)
            .await
            .map_err(|e| format!("{}: {}", self.cfg.url, e.without_url()))?;
        if more {
            return Err(format!("{}: the page is larger than max_body ({})", self.cfg.url, self.cfg.max_body).into());
        }
        let text = String::from_utf8_lossy(&body);
        let now = super::listen::now_ns();
        let (mut events, bad) = vane_core::formats::prometheus::parse(&text, now);
        if !bad.is_empty() {
            ctx.stats().bad_lines.fetch_add(bad.len() as u64, Ordering::Relaxed);
            let b = &bad[0];
            ctx.warn(format!("{}: {} bad lines, the first: line {}: {}", self.cfg.url, bad.len(), b.line, b.message));
        }
        if !self.cfg.include.is_empty() {
            events.retain(|e| self.cfg.include.iter().any(|p| e.name.starts_with(p.as_str())));
        }
        Ok(events)
    }
}

impl Build for Scrape {
    type Config = ScrapeConfig;

    fn build(cfg: ScrapeConfig, _: &Context) -> Result<Self, BuildError> {
        let builder = crate::http_client::builder(cfg.timeout.get(), cfg.ca.as_deref(), cfg.tls_verify)?;
        let client = crate::http_client::build(builder)?;
        Ok(Scrape { cfg, client })
    }
}
