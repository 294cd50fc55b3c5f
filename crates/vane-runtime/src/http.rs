//! The agent's HTTP port (`agent.http`): `/health`, and the GET routes
//! plugins add through `Context::serve` (the prometheus sink's `/metrics`,
//! the board sink's pages). A route ending in `/` answers the paths below
//! it; a streamed body (server-sent events) is sent chunk by chunk.
//! It binds to loopback unless told otherwise, like every listener.
//!
//! `/health` answers 200 while the agent runs: `{"status":"ok"}`, or
//! `{"status":"degraded","stalled":[…]}` naming each sink whose buffer
//! operation (a write to a full or frozen disk) has run for more than
//! [`STALLED`], with how long.

use std::collections::HashMap;
use std::convert::Infallible;
use std::fmt::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use std::pin::Pin;
use std::task::{Context, Poll};

use hyper::body::{Bytes, Frame};
use vane_core::http::{Body, HttpHandler, HttpRequest, HttpResponse};
use vane_core::lifecycle::Lifecycle;
use vane_core::runtime::Routes;
use vane_core::stats::JobStats;

use crate::buffer_io::stalled_for;

/// How long a buffer operation runs before `/health` calls its sink stalled.
pub const STALLED: Duration = Duration::from_secs(5);

/// The routes served (plugins add to it, each route the job's that added
/// it), and the sinks `/health` watches.
#[derive(Default)]
pub struct RouteTable {
    routes: Mutex<HashMap<String, (String, HttpHandler)>>,
    sinks: Mutex<Vec<(String, Arc<JobStats>)>>,
}

impl Routes for RouteTable {
    fn add(&self, job: &str, path: &str, handler: HttpHandler) -> bool {
        let mut t = self.routes.lock().expect("not poisoned");
        if t.contains_key(path) || path == "/health" {
            return false;
        }
        t.insert(path.to_owned(), (job.to_owned(), handler));
        true
    }
}

impl RouteTable {
    /// A table whose `/health` watches `sinks` (id and figures).
    pub fn new(sinks: Vec<(String, Arc<JobStats>)>) -> RouteTable {
        RouteTable { routes: Mutex::default(), sinks: Mutex::new(sinks) }
    }

    /// The sinks of the config a reload applied.
    pub fn set_sinks(&self, sinks: Vec<(String, Arc<JobStats>)>) {
        *self.sinks.lock().expect("not poisoned") = sinks;
    }

    /// Frees the routes `job` added: it is rebuilt or removed.
    pub fn release(&self, job: &str) {
        self.routes.lock().expect("not poisoned").retain(|_, (owner, _)| owner != job);
    }

    fn health(&self) -> String {
        let mut stalled = String::new();
        for (id, stats) in self.sinks.lock().expect("not poisoned").iter() {
            let d = stalled_for(stats);
            if d > STALLED {
                let sep = if stalled.is_empty() { "" } else { "," };
                let id = id.replace('\\', "\\\\").replace('"', "\\\"");
                let _ = write!(stalled, "{sep}{{\"sink\":\"{id}\",\"buffer_stalled_seconds\":{:.1}}}", d.as_secs_f64());
            }
        }
        if stalled.is_empty() {
            "{\"status\":\"ok\"}\n".into()
        } else {
            format!("{{\"status\":\"degraded\",\"stalled\":[{stalled}]}}\n")
        }
    }

    fn answer(&self, req: &HttpRequest) -> HttpResponse {
        if req.path == "/health" {
            return HttpResponse::json(self.health());
        }
        let handler = {
            let t = self.routes.lock().expect("not poisoned");
            t.get(&req.path).map(|(_, h)| h.clone()).or_else(|| {
                // The longest route ending in `/` that the path is under.
                t.iter()
                    .filter(|(p, _)| p.ends_with('/') && req.path.starts_with(p.as_str()))
                    .max_by_key(|(p, _)| p.len())
                    .map(|(_, (_, h))| h.clone())
            })
        };
        match handler {
            Some(h) => h(req),
            None => HttpResponse::not_found(format_args!("no route {}", req.path)),
        }
    }
}

/// A response body: whole, or chunks from a handler's stream.
enum Out {
    Whole(Option<Bytes>),
    Stream(tokio::sync::mpsc::Receiver<String>),
}

impl hyper::body::Body for Out {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        match &mut *self {
            Out::Whole(b) => Poll::Ready(b.take().map(|b| Ok(Frame::data(b)))),
            Out::Stream(rx) => rx.poll_recv(cx).map(|c| c.map(|c| Ok(Frame::data(Bytes::from(c))))),
        }
    }
}

/// Connections the port serves at once (the one idle longest makes room
/// for a new one), and the time a request's headers may take.
pub const MAX_CONNECTIONS: usize = 64;
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// Binds `addr` (an error if it cannot) and serves until the agent stops.
pub async fn serve(
    addr: std::net::SocketAddr,
    table: Arc<RouteTable>,
    life: Lifecycle,
) -> std::io::Result<tokio::task::JoinHandle<()>> {
    let limits = vane_core::conns::Limits { max_connections: MAX_CONNECTIONS, max_per_client: 0 };
    let listener = vane_core::conns::Listener::bind(addr, limits).await?;
    tracing::info!("HTTP on http://{}/", listener.local_addr()?);
    Ok(tokio::spawn(async move {
        let mut notice = |n: vane_core::conns::Notice| tracing::warn!("agent.http: {n:?}");
        loop {
            let sock = tokio::select! {
                (s, _) = listener.accept(&mut notice) => s,
                _ = life.stopping() => return,
            };
            let table = table.clone();
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                    let req = HttpRequest::new(req.uri().path(), req.uri().query().unwrap_or(""));
                    let r = table.answer(&req);
                    async move {
                        let (body, stream) = match r.body {
                            Body::Text(t) => (Out::Whole(Some(Bytes::from(t))), false),
                            Body::Static(b) => (Out::Whole(Some(Bytes::from_static(b))), false),
                            Body::Stream(rx) => (Out::Stream(rx), true),
                        };
                        let mut resp =
                            hyper::Response::builder().status(r.status).header("Content-Type", r.content_type);
                        if stream {
                            resp = resp.header("Cache-Control", "no-cache");
                        }
                        Ok::<_, Infallible>(resp.body(body).expect("a valid response"))
                    }
                });
                let io = hyper_util::rt::TokioIo::new(sock);
                let _ = hyper::server::conn::http1::Builder::new()
                    .timer(hyper_util::rt::TokioTimer::new())
                    .header_read_timeout(HEADER_TIMEOUT)
                    .serve_connection(io, svc)
                    .await;
            });
        }
    }))
}
