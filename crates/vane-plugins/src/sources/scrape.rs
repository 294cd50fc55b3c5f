//! The `prometheus` source: scrapes a `/metrics` endpoint each poll and
//! turns every sample into an event (see `vane_core::formats::prometheus`
//! for the mapping: labels become tags, the value the field `value`,
//! counters and histogram/summary series are of kind counter).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::Ordering;

use serde::Deserialize;
use vane_core::prelude::*;

fn ten_seconds() -> Duration {
    Duration(std::time::Duration::from_secs(10))
}

fn yes() -> bool {
    true
}

/// Settings of the `prometheus` source.
#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct ScrapeConfig {
    /// The endpoint, e.g. `http://127.0.0.1:9100/metrics`.
    pub url: String,
    /// Default: 10s.
    #[serde(default = "ten_seconds")]
    pub timeout: Duration,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    #[serde(default)]
    pub bearer_token: Option<String>,
    /// A PEM file of certificates to trust besides the system's.
    #[serde(default)]
    pub ca: Option<PathBuf>,
    /// Default: true.
    #[serde(default = "yes")]
    pub tls_verify: bool,
    /// Only samples whose names start with one of these (all when empty).
    #[serde(default)]
    pub include: Vec<String>,
}

pub struct Scrape {
    cfg: ScrapeConfig,
    client: reqwest::Client,
}

/// An HTTP client with the TLS settings the pollers share.
pub fn client(
    timeout: std::time::Duration,
    ca: Option<&PathBuf>,
    tls_verify: bool,
) -> Result<reqwest::ClientBuilder, BuildError> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut b = reqwest::Client::builder().timeout(timeout).tls_danger_accept_invalid_certs(!tls_verify);
    if let Some(ca) = ca {
        let pem = std::fs::read(ca).map_err(|e| BuildError::stop(format!("ca {}: {e}", ca.display())))?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem)
            .map_err(|e| BuildError::stop(format!("ca {}: {e}", ca.display())))?;
        b = b.tls_certs_merge(certs);
    }
    Ok(b)
}

impl Source for Scrape {
    async fn poll(&mut self, ctx: &Context) -> Result<Vec<Event>> {
        let mut req = self.client.get(&self.cfg.url).header("Accept", "text/plain;version=0.0.4");
        for (k, v) in &self.cfg.headers {
            req = req.header(k, v);
        }
        if let Some(t) = &self.cfg.bearer_token {
            req = req.bearer_auth(t);
        }
        let resp = req.send().await?;
        let status = resp.status();
        if !status.is_success() {
            return Err(format!("{}: status {status}", self.cfg.url).into());
        }
        let text = resp.text().await?;
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
        let client = client(cfg.timeout.get(), cfg.ca.as_ref(), cfg.tls_verify)?
            .build()
            .map_err(|e| BuildError::stop(format!("cannot make an HTTP client: {e}")))?;
        Ok(Scrape { cfg, client })
    }
}
