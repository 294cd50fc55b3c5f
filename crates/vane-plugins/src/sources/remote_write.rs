//! The `prometheus_remote_write` source: a receiver of Prometheus remote
//! write 1.0. `POST` a snappy-compressed protobuf `WriteRequest` to `path`
//! (default `/api/v1/write`); every sample becomes an event (the mapping:
//! [`crate::remote_write`]). The answer is 204 once every sink the events
//! reach has stored them; 400 for a body that does not decode, or naming
//! the first series that cannot be events (the others are kept, and a
//! sender does not retry a 400); 415 for a body not snappy-compressed; 503,
//! which senders retry, when a full buffer dropped the events or the
//! listeners' memory budget is spent. `token` and `tls` as every HTTP
//! listener.

use std::sync::{Arc, Mutex};

use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use prost::Message as _;
use serde::Deserialize;
use vane_core::listen::Listen;
use vane_core::node::Flat;
use vane_core::prelude::*;

use super::http_intake::{self as intake, Answer, Encoding, HttpSettings, Refusal, Reply};
use super::listen::Connections;
use crate::remote_write::{Types, WriteRequest, events};

fn default_listen() -> Listen {
    Listen::local(9201)
}

fn default_path() -> String {
    "/api/v1/write".into()
}

/// What `prometheus_remote_write` takes besides the HTTP settings and its connections' limits.
#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct RemoteWriteSettings {
    /// Where to listen. Default: 127.0.0.1:9201.
    #[serde(default = "default_listen")]
    pub listen: Listen,
    /// The path written to. Default: /api/v1/write.
    #[serde(default = "default_path")]
    pub path: String,
}

/// Settings of the `prometheus_remote_write` source.
pub type RemoteWriteSourceConfig = intake::Config<RemoteWriteSettings>;

pub struct RemoteWriteSource {
    cfg: RemoteWriteSettings,
    http: HttpSettings,
    conns: Connections,
    types: Mutex<Types>,
    ctx: Context,
}

impl Build for RemoteWriteSource {
    type Config = RemoteWriteSourceConfig;

    fn build(Flat(cfg, Flat(http, conns)): RemoteWriteSourceConfig, ctx: &Context) -> Result<Self, BuildError> {
        intake::check(&cfg.listen, &http)?;
        if !cfg.path.starts_with('/') {
            return Err(BuildError::stop(format!("path {:?} must start with /", cfg.path)));
        }
        Ok(RemoteWriteSource { cfg, http, conns, types: Mutex::default(), ctx: ctx.clone() })
    }
}

impl Service for RemoteWriteSource {
    async fn run(self, ctx: Context) -> Result<(), ServiceError> {
        let this = Arc::new(self);
        intake::serve("prometheus_remote_write", &this.cfg.listen, &this.http, &this.conns, this.clone(), &ctx).await
    }
}

impl intake::Handler for RemoteWriteSource {
    async fn handle(self: &Arc<Self>, req: Request<Incoming>) -> Reply {
        match self.write(req).await {
            Ok(()) => answer(StatusCode::NO_CONTENT, String::new()),
            Err(r) => {
                if r.is_busy() {
                    intake::warn_busy(&self.ctx);
                }
                let busy = r.is_busy();
                let mut a = answer(r.status, r.message);
                if busy {
                    a.headers_mut().insert(hyper::header::RETRY_AFTER, hyper::header::HeaderValue::from_static("1"));
                }
                a
            }
        }
    }
}

fn answer(status: StatusCode, text: String) -> Reply {
    let text = if text.is_empty() { text } else { text + "\n" };
    Response::builder()
        .status(status)
        .header("Content-Type", "text/plain; charset=utf-8")
        .body(Answer::new(text))
        .expect("a valid response")
}

impl RemoteWriteSource {
    async fn write(&self, req: Request<Incoming>) -> Result<(), Refusal> {
        if req.uri().path() != self.cfg.path {
            return Err(Refusal::new(
                StatusCode::NOT_FOUND,
                format!("not found: remote write goes to {}", self.cfg.path),
            ));
        }
        if req.method() != hyper::Method::POST {
            return Err(Refusal::new(StatusCode::METHOD_NOT_ALLOWED, "use POST"));
        }
        if !intake::authorized(self.http.token.as_deref(), intake::given_token(&req).as_deref()) {
            self.ctx.warn("a request without the right token was refused");
            return Err(Refusal::new(StatusCode::UNAUTHORIZED, "authorization failed"));
        }
        if Encoding::of(&req, &[Encoding::Snappy])? != Encoding::Snappy {
            return Err(Refusal::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "remote write bodies are snappy-compressed (Content-Encoding: snappy)",
            ));
        }
        let body =
            intake::read_body(req, Encoding::Snappy, self.http.max_body.0 as usize, self.conns.read_timeout.get())
                .await?;
        let wr = WriteRequest::decode(body.bytes.as_ref()).map_err(|e| {
            self.ctx.stats().bad_lines.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            self.ctx.warn(format!("a remote-write body that does not decode: {e}"));
            Refusal::new(StatusCode::BAD_REQUEST, format!("not a remote-write WriteRequest: {e}"))
        })?;
        let samples = {
            let mut types = self.types.lock().unwrap_or_else(|p| p.into_inner());
            types.learn(&wr.metadata);
            events(wr.timeseries, &types)
        };
        let handed = intake::hand_on(&self.ctx, samples).await?;
        if !handed.stored {
            return Err(Refusal::new(StatusCode::SERVICE_UNAVAILABLE, intake::NOT_STORED));
        }
        match handed.first {
            None => Ok(()),
            Some(first) => Err(Refusal::new(
                StatusCode::BAD_REQUEST,
                format!("{} refused, the first: {first}; the rest are stored", handed.bad),
            )),
        }
    }
}
