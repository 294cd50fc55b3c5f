//! The agent's HTTP port (`agent.http`): `/health`, and the GET routes
//! plugins add through `Context::serve` (the prometheus sink's `/metrics`).
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

use http_body_util::Full;
use hyper::body::Bytes;
use vane_core::http::{HttpHandler, HttpResponse};
use vane_core::lifecycle::Lifecycle;
use vane_core::runtime::Routes;
use vane_core::stats::JobStats;

use crate::buffer_io::stalled_for;

/// How long a buffer operation runs before `/health` calls its sink stalled.
pub const STALLED: Duration = Duration::from_secs(5);

/// The routes served (plugins add to it), and the sinks `/health` watches.
#[derive(Default)]
pub struct RouteTable {
    routes: Mutex<HashMap<String, HttpHandler>>,
    sinks: Vec<(String, Arc<JobStats>)>,
}

impl Routes for RouteTable {
    fn add(&self, path: &str, handler: HttpHandler) -> bool {
        let mut t = self.routes.lock().expect("not poisoned");
        if t.contains_key(path) || path == "/health" {
            return false;
        }
        t.insert(path.to_owned(), handler);
        true
    }
}

impl RouteTable {
    /// A table whose `/health` watches `sinks` (id and figures).
    pub fn new(sinks: Vec<(String, Arc<JobStats>)>) -> RouteTable {
        RouteTable { routes: Mutex::default(), sinks }
    }

    fn health(&self) -> String {
        let mut stalled = String::new();
        for (id, stats) in &self.sinks {
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

    fn answer(&self, path: &str) -> HttpResponse {
        if path == "/health" {
            return HttpResponse { status: 200, content_type: "application/json".into(), body: self.health() };
        }
        let handler = self.routes.lock().expect("not poisoned").get(path).cloned();
        match handler {
            Some(h) => h(),
            None => HttpResponse { status: 404, content_type: "text/plain".into(), body: format!("no route {path}\n") },
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
    tracing::info!("HTTP on {}", listener.local_addr()?);
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
                    let r = table.answer(req.uri().path());
                    async move {
                        let resp = hyper::Response::builder()
                            .status(r.status)
                            .header("Content-Type", r.content_type)
                            .body(Full::new(Bytes::from(r.body)))
                            .expect("a valid response");
                        Ok::<_, Infallible>(resp)
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
