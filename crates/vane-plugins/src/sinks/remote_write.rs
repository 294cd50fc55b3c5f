//! The `prometheus_remote_write` sink: Prometheus's remote-write protocol
//! (protobuf `WriteRequest`, snappy-compressed, version 0.1.0) to any
//! receiver, Prometheus itself with `--web.enable-remote-write-receiver`.
//!
//! Labels: the metric name is the event's name, then `_FIELD` unless the
//! field is `value`; every tag is a label, and the host is the label
//! `host`. Names are sanitised the Prometheus way: characters outside
//! `[a-zA-Z0-9_]` (and `:` in metric names) become `_`, and a leading digit
//! gets a `_` before it. Strings are skipped; booleans are 0 or 1. Samples
//! of a series are sent in time order. A 400 (out-of-order or duplicate
//! samples) is not retried: the batch is given up and counted.

use std::collections::BTreeMap;

use serde::Deserialize;
use vane_core::prelude::*;

use crate::remote_write::{Label, Sample, TimeSeries, WriteRequest, sanitize};

/// Settings of the `prometheus_remote_write` sink.
#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct RemoteWriteConfig {
    /// The receiver, e.g. http://127.0.0.1:9090/api/v1/write.
    pub url: vane_core::url::Url,
    pub bearer_token: Option<String>,
    /// Per request. Default: 10s.
    #[serde(default = "crate::defaults::ten_seconds")]
    pub timeout: vane_core::Duration,
}

pub struct RemoteWrite {
    cfg: RemoteWriteConfig,
    client: reqwest::Client,
}

/// Series (sorted labels) to samples, for a batch.
fn series(batch: &[Event]) -> Vec<TimeSeries> {
    let mut by: BTreeMap<Vec<(String, String)>, Vec<Sample>> = BTreeMap::new();
    for e in batch {
        for (field, v) in &e.fields {
            let value = match v {
                Value::Str(_) => continue,
                v => v.as_f64().unwrap_or(0.0),
            };
            let name = if field == "value" { e.name.to_string() } else { format!("{}_{field}", e.name) };
            let mut labels: BTreeMap<String, String> = BTreeMap::new();
            labels.insert("__name__".into(), sanitize(&name, true));
            if !e.host.is_empty() {
                labels.insert("host".into(), e.host.to_string());
            }
            for (k, v) in &e.tags {
                labels.entry(sanitize(k, false)).or_insert_with(|| v.to_string());
            }
            by.entry(labels.into_iter().collect())
                .or_default()
                .push(Sample { value, timestamp: e.time.div_euclid(1_000_000) });
        }
    }
    by.into_iter()
        .map(|(labels, mut samples)| {
            samples.sort_by_key(|s| s.timestamp);
            TimeSeries { labels: labels.into_iter().map(|(name, value)| Label { name, value }).collect(), samples }
        })
        .collect()
}

impl Sink for RemoteWrite {
    async fn send(&mut self, batch: &[Event], _: &Context) -> Result<(), SinkError> {
        use prost::Message as _;
        let req = WriteRequest { timeseries: series(batch), metadata: Vec::new() };
        if req.timeseries.is_empty() {
            return Ok(());
        }
        let body = snap::raw::Encoder::new()
            .compress_vec(&req.encode_to_vec())
            .map_err(|e| SinkError::give_up(format!("snappy: {e}")))?;
        let mut r = self
            .client
            .post(self.cfg.url.expose())
            .header("Content-Encoding", "snappy")
            .header("Content-Type", "application/x-protobuf")
            .header("X-Prometheus-Remote-Write-Version", "0.1.0")
            .body(body);
        if let Some(t) = &self.cfg.bearer_token {
            r = r.bearer_auth(t);
        }
        let resp = r.send().await.map_err(|e| SinkError::retry(format!("{}: {}", self.cfg.url, e.without_url())))?;
        let status = resp.status().as_u16();
        let text = crate::http_client::error_text(resp).await;
        match status {
            200..=299 => Ok(()),
            400 => Err(SinkError::give_up(format!("{} refused the samples: {}", self.cfg.url, text.trim()))),
            _ => Err(SinkError::retry(format!("{} answered {status}: {}", self.cfg.url, text.trim()))),
        }
    }
}

impl Build for RemoteWrite {
    type Config = RemoteWriteConfig;

    fn build(cfg: RemoteWriteConfig, _: &Context) -> Result<Self, BuildError> {
        let client = crate::http_client::with_timeout(cfg.timeout)?;
        Ok(RemoteWrite { cfg, client })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_labels_and_order() {
        let batch = vec![
            Event::gauge("disk", 2.0).host("h").tag("path", "/").field("free", 5i64).at(2_000_000),
            Event::gauge("disk", 1.0).host("h").tag("path", "/").field("note", "skip").at(1_000_000),
        ];
        let ts = series(&batch);
        assert_eq!(ts.len(), 2);
        let names: Vec<&str> = ts.iter().map(|t| t.labels[0].value.as_str()).collect();
        assert_eq!(names, vec!["disk", "disk_free"]);
        assert_eq!(ts[0].labels.iter().map(|l| l.name.as_str()).collect::<Vec<_>>(), vec!["__name__", "host", "path"]);
        assert_eq!(ts[0].samples.iter().map(|s| s.timestamp).collect::<Vec<_>>(), vec![1, 2]);
    }
}
