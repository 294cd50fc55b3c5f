//! The `otlp` sink: vane's events as OTLP metrics to any OTLP receiver (the
//! OpenTelemetry Collector, a vendor's endpoint, vane's `otlp` source),
//! over OTLP/HTTP (protobuf, `POST` to the url, gzip if asked) or
//! OTLP/gRPC (`MetricsService/Export` on the url's host and port). How
//! events become metrics: [`crate::otlp::metrics`].
//!
//! Retries as the OTLP specification has them: HTTP 429, 502, 503, 504
//! (after `Retry-After`, when sent) and gRPC CANCELLED, DEADLINE_EXCEEDED,
//! ABORTED, OUT_OF_RANGE, UNAVAILABLE, DATA_LOSS (after the delay of a
//! `RetryInfo` in the status details, when sent), RESOURCE_EXHAUSTED with a
//! `RetryInfo`, and connection failures, are retried; any other refusal gives the batch up (counted), as the
//! receiver said it can never take it. Points a receiver rejects in a
//! partial success are logged with its reason.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::PathBuf;

use prost::Message as _;
use serde::Deserialize;
use vane_core::prelude::*;

use crate::otlp::channel::{Channel, Failure};
use crate::otlp::proto::{ExportMetricsPartialSuccess, ExportMetricsServiceResponse};
use crate::otlp::{grpc, metrics};

/// How the metrics travel.
#[derive(Deserialize, Debug, Clone, Copy, Default, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// OTLP/HTTP with protobuf bodies.
    #[default]
    Http,
    /// OTLP/gRPC.
    Grpc,
}

/// Settings of the `otlp` sink.
#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct OtlpSinkConfig {
    /// http: the full URL, e.g. http://127.0.0.1:4318/v1/metrics; grpc:
    /// the receiver's http:// or https:// address, e.g. http://127.0.0.1:4317.
    pub url: vane_core::url::Url,
    /// http or grpc. Default: http.
    #[serde(default)]
    pub protocol: Protocol,
    /// Sent as `Authorization: Bearer …`.
    pub bearer_token: Option<String>,
    /// Extra headers (gRPC: metadata).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Resource attributes of every metric, beside `host.name` (the event's host).
    #[serde(default)]
    pub resource: BTreeMap<String, String>,
    /// Compress bodies (HTTP) or messages (gRPC) with gzip. Default: false.
    #[serde(default)]
    pub gzip: bool,
    /// A CA bundle (PEM) to trust besides the system's, for https.
    pub ca: Option<PathBuf>,
    /// Per request. Default: 10s.
    #[serde(default = "crate::defaults::ten_seconds")]
    pub timeout: vane_core::Duration,
}

enum Transport {
    Http(reqwest::Client),
    Grpc(Channel),
}

pub struct Otlp {
    cfg: OtlpSinkConfig,
    resource: Vec<(String, String)>,
    transport: Transport,
}

const EXPORT: &str = "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export";

impl Build for Otlp {
    type Config = OtlpSinkConfig;

    fn build(cfg: OtlpSinkConfig, _: &Context) -> Result<Self, BuildError> {
        let transport = match cfg.protocol {
            Protocol::Http => Transport::Http(crate::http_client::build(crate::http_client::builder(
                cfg.timeout.get(),
                cfg.ca.as_deref(),
                true,
            )?)?),
            Protocol::Grpc => Transport::Grpc(
                Channel::new(cfg.url.expose(), cfg.ca.as_deref())
                    .map_err(|e| BuildError::stop(format!("url {}: {e}", cfg.url)))?,
            ),
        };
        let resource = cfg.resource.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        Ok(Otlp { cfg, resource, transport })
    }
}

fn gzip(b: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut z = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    z.write_all(b)?;
    z.finish()
}

impl Sink for Otlp {
    async fn send(&mut self, batch: &[Event], ctx: &Context) -> Result<(), SinkError> {
        let req = metrics::request(batch, &self.resource);
        if req.resource_metrics.is_empty() {
            return Ok(());
        }
        let body = req.encode_to_vec();
        let url = &self.cfg.url;
        let answer = match &mut self.transport {
            Transport::Http(client) => {
                let mut r = client.post(url.expose()).header("Content-Type", "application/x-protobuf");
                r = if self.cfg.gzip { r.header("Content-Encoding", "gzip").body(gzip(&body)?) } else { r.body(body) };
                if let Some(t) = &self.cfg.bearer_token {
                    r = r.bearer_auth(t);
                }
                for (k, v) in &self.cfg.headers {
                    r = r.header(k, v);
                }
                let resp = r.send().await.map_err(|e| SinkError::retry(format!("{url}: {}", e.without_url())))?;
                let status = resp.status().as_u16();
                if !(200..300).contains(&status) {
                    let headers = resp.headers().clone();
                    let (b, _) =
                        crate::http_client::body_up_to(resp, crate::http_client::ERROR_BODY).await.unwrap_or_default();
                    let why = format!("{url} answered {status}: {}", status_text(&b));
                    return match status {
                        429 | 502 | 503 | 504 => {
                            crate::http_client::honour_retry_after(&headers).await;
                            Err(SinkError::retry(why))
                        }
                        _ => Err(SinkError::give_up(why)),
                    };
                }
                let (b, _) = crate::http_client::body_up_to(resp, 1 << 20)
                    .await
                    .map_err(|e| SinkError::retry(format!("{url}: reading the answer: {e}")))?;
                b
            }
            Transport::Grpc(channel) => {
                let mut headers: Vec<(&str, String)> =
                    self.cfg.headers.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
                if let Some(t) = &self.cfg.bearer_token {
                    headers.push(("authorization", format!("Bearer {t}")));
                }
                let msg = if self.cfg.gzip {
                    headers.push(("grpc-encoding", "gzip".into()));
                    gzip(&body)?
                } else {
                    body
                };
                match channel.call(EXPORT, &msg, &headers, self.cfg.timeout.get()).await {
                    Ok(b) => b.to_vec(),
                    Err(Failure::Transport(e)) => return Err(SinkError::retry(e)),
                    Err(Failure::Status(code, message, delay)) => {
                        let why = format!("{url} answered gRPC status {code}: {message}");
                        // RESOURCE_EXHAUSTED is retried only when the server says when.
                        let retryable = matches!(code, 1 | 4 | 10 | 11 | grpc::UNAVAILABLE | 15)
                            || (code == grpc::RESOURCE_EXHAUSTED && delay.is_some());
                        if !retryable {
                            return Err(SinkError::give_up(why));
                        }
                        if let Some(d) = delay {
                            tokio::time::sleep(d.min(std::time::Duration::from_secs(60))).await;
                        }
                        return Err(SinkError::retry(why));
                    }
                }
            }
        };
        // An empty answer is a full success.
        if let Ok(ExportMetricsServiceResponse { partial_success: Some(p) }) =
            ExportMetricsServiceResponse::decode(answer.as_slice())
            && p != ExportMetricsPartialSuccess::default()
        {
            ctx.warn(format!("{url} rejected {} data points: {}", p.rejected_data_points, p.error_message));
        }
        Ok(())
    }
}

/// The message of a `google.rpc.Status` body, or the body as text.
fn status_text(body: &[u8]) -> String {
    crate::otlp::proto::Status::decode(body)
        .ok()
        .filter(|s| !s.message.is_empty() && s.code != 0)
        .map_or_else(|| String::from_utf8_lossy(body).trim().to_owned(), |s| s.message)
}
