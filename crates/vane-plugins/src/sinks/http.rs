//! The `http` sink: each batch POSTed as JSON to a URL, for any webhook or
//! API: an array of events (`json`) or one event a line (`ndjson`), with
//! headers and a bearer token. 2xx is delivered; 408, 429, 5xx and
//! connection errors are retried; any other 4xx gives the batch up (counted).

use std::collections::BTreeMap;

use serde::Deserialize;
use vane_core::prelude::*;

/// How a batch is written.
#[derive(Deserialize, Debug, Clone, Copy, Default, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Body {
    /// A JSON array of events.
    #[default]
    Json,
    /// One JSON event a line.
    Ndjson,
}

/// Settings of the `http` sink.
#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    pub url: vane_core::url::Url,
    /// json or ndjson. Default: json.
    #[serde(default)]
    pub body: Body,
    /// Extra headers.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Sent as `Authorization: Bearer …` (write `${TOKEN}` to keep it out of the file).
    pub bearer_token: Option<String>,
    /// Per request. Default: 10s.
    #[serde(default = "crate::defaults::ten_seconds")]
    pub timeout: vane_core::Duration,
}

pub struct Http {
    cfg: HttpConfig,
    client: reqwest::Client,
}

impl Sink for Http {
    async fn send(&mut self, batch: &[Event], _: &Context) -> Result<(), SinkError> {
        let (body, ctype) = match self.cfg.body {
            Body::Json => (serde_json::to_string(batch)?, "application/json"),
            Body::Ndjson => {
                let mut s = String::new();
                for e in batch {
                    s.push_str(&vane_core::json::encode(e));
                    s.push('\n');
                }
                (s, "application/x-ndjson")
            }
        };
        let mut req = self.client.post(self.cfg.url.expose()).header("Content-Type", ctype).body(body);
        for (k, v) in &self.cfg.headers {
            req = req.header(k, v);
        }
        if let Some(t) = &self.cfg.bearer_token {
            req = req.bearer_auth(t);
        }
        let resp = req.send().await.map_err(|e| SinkError::retry(format!("{}: {}", self.cfg.url, e.without_url())))?;
        let status = resp.status().as_u16();
        match status {
            200..=299 => Ok(()),
            408 | 429 | 500..=599 => Err(SinkError::retry(format!("{} answered {status}", self.cfg.url))),
            _ => {
                let text = crate::http_client::error_text(resp).await;
                Err(SinkError::give_up(format!("{} refused the batch ({status}): {}", self.cfg.url, text.trim())))
            }
        }
    }
}

impl Build for Http {
    type Config = HttpConfig;

    fn build(cfg: HttpConfig, _: &Context) -> Result<Self, BuildError> {
        let client = crate::http_client::with_timeout(cfg.timeout)?;
        Ok(Http { cfg, client })
    }
}
