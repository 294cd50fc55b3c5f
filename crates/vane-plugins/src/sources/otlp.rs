//! The `otlp` source: an OpenTelemetry metrics receiver. One port serves
//! OTLP/HTTP (`POST /v1/metrics`, protobuf or JSON bodies, gzip too) and
//! OTLP/gRPC (`opentelemetry.proto.collector.metrics.v1.MetricsService/Export`
//! over HTTP/2, in the clear with prior knowledge or over TLS). How
//! metrics become events: [`crate::otlp::events`].
//!
//! The answer waits until every sink the events reach has stored them.
//! Points that cannot be events are counted and answered as a partial
//! success (`rejected_data_points` and the first one's error), the others
//! kept. A body that does not decode is refused (HTTP 400, gRPC
//! INVALID_ARGUMENT) and not retried by the sender; a full buffer that
//! dropped the events, or a spent memory budget, is answered HTTP 503 with
//! `Retry-After` or gRPC UNAVAILABLE, which senders retry.

use std::sync::Arc;

use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use prost::Message as _;
use serde::Deserialize;
use vane_core::listen::Listen;
use vane_core::node::Flat;
use vane_core::prelude::*;

use super::http_intake::{self as intake, Answer, Encoding, HttpSettings, Refusal, Reply};
use super::listen::Connections;
use crate::otlp::proto::{
    ExportMetricsPartialSuccess, ExportMetricsServiceRequest, ExportMetricsServiceResponse, Status,
};
use crate::otlp::{events, grpc, json};

fn default_listen() -> Listen {
    Listen::local(4318)
}

/// What `otlp` takes besides the HTTP settings and its connections' limits.
#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct OtlpSettings {
    /// Where to listen, for HTTP and gRPC alike. Default: 127.0.0.1:4318.
    #[serde(default = "default_listen")]
    pub listen: Listen,
}

/// Settings of the `otlp` source.
pub type OtlpSourceConfig = intake::Config<OtlpSettings>;

pub struct OtlpSource {
    cfg: OtlpSettings,
    http: HttpSettings,
    conns: Connections,
    ctx: Context,
}

const HTTP_PATH: &str = "/v1/metrics";
const GRPC_PATH: &str = "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export";

impl Build for OtlpSource {
    type Config = OtlpSourceConfig;

    fn build(Flat(cfg, Flat(http, conns)): OtlpSourceConfig, ctx: &Context) -> Result<Self, BuildError> {
        intake::check(&cfg.listen, &http)?;
        Ok(OtlpSource { cfg, http, conns, ctx: ctx.clone() })
    }
}

impl Service for OtlpSource {
    async fn run(self, ctx: Context) -> Result<(), ServiceError> {
        let this = Arc::new(self);
        intake::serve("otlp", &this.cfg.listen, &this.http, &this.conns, this.clone(), &ctx).await
    }
}

/// How a request is encoded, and so its answer.
#[derive(Clone, Copy, PartialEq, Debug)]
enum Wire {
    Protobuf,
    Json,
    Grpc,
}

impl intake::Handler for OtlpSource {
    async fn handle(self: &Arc<Self>, req: Request<Incoming>) -> Reply {
        let grpc = req.uri().path() == GRPC_PATH
            || req
                .headers()
                .get(hyper::header::CONTENT_TYPE)
                .is_some_and(|v| v.as_bytes().starts_with(b"application/grpc"));
        let wire = if grpc {
            Wire::Grpc
        } else if req
            .headers()
            .get(hyper::header::CONTENT_TYPE)
            .is_some_and(|v| v.as_bytes().starts_with(b"application/json"))
        {
            Wire::Json
        } else {
            Wire::Protobuf
        };
        let r = self.export(req, wire).await;
        if let Err(r) = &r
            && r.is_busy()
        {
            intake::warn_busy(&self.ctx);
        }
        answer(wire, r)
    }
}

impl OtlpSource {
    async fn export(&self, req: Request<Incoming>, wire: Wire) -> Result<ExportMetricsServiceResponse, Refusal> {
        let path = if wire == Wire::Grpc { GRPC_PATH } else { HTTP_PATH };
        if req.uri().path() != path {
            return Err(Refusal::new(
                StatusCode::NOT_FOUND,
                format!("not found: OTLP metrics go to {HTTP_PATH} (HTTP) or {GRPC_PATH} (gRPC)"),
            ));
        }
        if req.method() != hyper::Method::POST {
            return Err(Refusal::new(StatusCode::METHOD_NOT_ALLOWED, "use POST"));
        }
        if wire == Wire::Protobuf
            && let Some(ct) = req.headers().get(hyper::header::CONTENT_TYPE)
            && !ct.as_bytes().starts_with(b"application/x-protobuf")
            && !ct.as_bytes().starts_with(b"application/protobuf")
        {
            return Err(Refusal::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                format!(
                    "Content-Type {:?}: OTLP/HTTP takes application/x-protobuf or application/json",
                    String::from_utf8_lossy(ct.as_bytes())
                ),
            ));
        }
        if !intake::authorized(self.http.token.as_deref(), intake::given_token(&req).as_deref()) {
            self.ctx.warn("a request without the right token was refused");
            return Err(Refusal::new(StatusCode::UNAUTHORIZED, "authorization failed"));
        }
        let max = self.http.max_body.0 as usize;
        let grpc_gzip = wire == Wire::Grpc
            && req.headers().get("grpc-encoding").is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"gzip"));
        let encoding = if wire == Wire::Grpc { Encoding::Identity } else { Encoding::of(&req, &[Encoding::Gzip])? };
        // A gRPC body is its message behind a 5-byte prefix.
        let limit = if wire == Wire::Grpc { max + 5 } else { max };
        let mut body = intake::read_body(req, encoding, limit, self.conns.read_timeout.get()).await?;
        let bad = |e: String| {
            self.ctx.stats().bad_lines.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            self.ctx.warn(format!("an OTLP body that does not decode: {e}"));
            Refusal::new(StatusCode::BAD_REQUEST, e)
        };
        let request = match wire {
            Wire::Json => json::request(&body.bytes).map_err(bad)?,
            Wire::Protobuf => {
                ExportMetricsServiceRequest::decode(body.bytes.as_ref()).map_err(|e| bad(e.to_string()))?
            }
            Wire::Grpc => {
                let bytes = body.bytes.clone();
                let (compressed, msg) = grpc::message(&bytes).map_err(bad)?;
                let msg = match (compressed, grpc_gzip) {
                    (false, _) => bytes.slice_ref(msg),
                    (true, true) => body.gunzip(msg, max).await?,
                    (true, false) => return Err(bad("a compressed message without grpc-encoding: gzip".into())),
                };
                ExportMetricsServiceRequest::decode(msg.as_ref()).map_err(|e| bad(e.to_string()))?
            }
        };
        let handed = intake::hand_on(&self.ctx, events::events(request)).await?;
        if !handed.stored {
            return Err(Refusal::new(StatusCode::SERVICE_UNAVAILABLE, intake::NOT_STORED));
        }
        Ok(ExportMetricsServiceResponse {
            partial_success: handed.first.map(|first| ExportMetricsPartialSuccess {
                rejected_data_points: handed.bad as i64,
                error_message: first,
            }),
        })
    }
}

/// The answer, in the request's own encoding.
fn answer(wire: Wire, r: Result<ExportMetricsServiceResponse, Refusal>) -> Reply {
    let busy = r.as_ref().is_err_and(Refusal::is_busy);
    let mut reply = match (wire, r) {
        (Wire::Grpc, r) => {
            let (body, status, message) = match r {
                Ok(ok) => (grpc::frame(&ok.encode_to_vec()), grpc::OK, String::new()),
                Err(e) => (Vec::new(), rpc_code(e.status), e.message),
            };
            Response::builder()
                .status(StatusCode::OK)
                .header("Content-Type", "application/grpc")
                .body(Answer::new(body).with_trailers(grpc::trailers(status, &message)))
                .expect("a valid response")
        }
        (Wire::Json, r) => {
            let (status, body) = match r {
                Ok(ok) => (
                    StatusCode::OK,
                    match ok.partial_success {
                        None => serde_json::json!({}),
                        Some(p) => serde_json::json!({ "partialSuccess": {
                            "rejectedDataPoints": p.rejected_data_points.to_string(),
                            "errorMessage": p.error_message,
                        }}),
                    },
                ),
                Err(e) => (e.status, serde_json::json!({ "code": rpc_code(e.status), "message": e.message })),
            };
            Response::builder()
                .status(status)
                .header("Content-Type", "application/json")
                .body(Answer::new(body.to_string()))
                .expect("a valid response")
        }
        (Wire::Protobuf, r) => {
            let (status, body) = match r {
                Ok(ok) => (StatusCode::OK, ok.encode_to_vec()),
                Err(e) => (
                    e.status,
                    Status { code: rpc_code(e.status) as i32, message: e.message, details: Vec::new() }.encode_to_vec(),
                ),
            };
            Response::builder()
                .status(status)
                .header("Content-Type", "application/x-protobuf")
                .body(Answer::new(body))
                .expect("a valid response")
        }
    };
    if busy && wire != Wire::Grpc {
        reply.headers_mut().insert(hyper::header::RETRY_AFTER, hyper::header::HeaderValue::from_static("1"));
    }
    reply
}

/// The `google.rpc.Code` of an HTTP status: gRPC's status, and the code of
/// OTLP/HTTP's `Status` body.
fn rpc_code(status: StatusCode) -> u32 {
    match status.as_u16() {
        400 | 415 => grpc::INVALID_ARGUMENT,
        401 => grpc::UNAUTHENTICATED,
        404 | 405 => grpc::UNIMPLEMENTED,
        413 => grpc::RESOURCE_EXHAUSTED,
        408 | 503 => grpc::UNAVAILABLE,
        _ => grpc::INTERNAL,
    }
}
