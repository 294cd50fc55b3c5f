//! The agent's HTTP port (`agent.http`): `/health`, and the GET routes
//! plugins add through `Context::serve` (the prometheus sink's `/metrics`).
//! It binds to loopback unless told otherwise, like every listener.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use http_body_util::Full;
use hyper::body::Bytes;
use vane_core::http::{HttpHandler, HttpResponse};
use vane_core::lifecycle::Lifecycle;
use vane_core::runtime::Routes;

/// The routes served; plugins add to it.
#[derive(Default)]
pub struct RouteTable(Mutex<HashMap<String, HttpHandler>>);

impl Routes for RouteTable {
    fn add(&self, path: &str, handler: HttpHandler) -> bool {
        let mut t = self.0.lock().expect("not poisoned");
        if t.contains_key(path) || path == "/health" {
            return false;
        }
        t.insert(path.to_owned(), handler);
        true
    }
}

impl RouteTable {
    fn answer(&self, path: &str) -> HttpResponse {
        if path == "/health" {
            return HttpResponse {
                status: 200,
                content_type: "application/json".into(),
                body: "{\"status\":\"ok\"}\n".into(),
            };
        }
        let handler = self.0.lock().expect("not poisoned").get(path).cloned();
        match handler {
            Some(h) => h(),
            None => HttpResponse { status: 404, content_type: "text/plain".into(), body: format!("no route {path}\n") },
        }
    }
}

/// Binds `addr` (an error if it cannot) and serves until the agent stops.
pub async fn serve(
    addr: &str,
    table: Arc<RouteTable>,
    life: Lifecycle,
) -> std::io::Result<tokio::task::JoinHandle<()>> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    tracing::info!("HTTP on {}", listener.local_addr()?);
    Ok(tokio::spawn(async move {
        loop {
            let sock = tokio::select! {
                a = listener.accept() => match a {
                    Ok((s, _)) => s,
                    Err(_) => continue,
                },
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
                let _ = hyper::server::conn::http1::Builder::new().serve_connection(io, svc).await;
            });
        }
    }))
}
