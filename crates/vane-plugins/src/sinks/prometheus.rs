//! The `prometheus` sink: serves `/metrics` in the Prometheus text
//! exposition format for a Prometheus to scrape — on the agent's HTTP port
//! (`agent.http`) unless `listen` names a port of its own. It keeps the latest value
//! of every series routed to it and stops serving a series not updated
//! within `staleness`. Names and labels follow the remote-write sink's
//! mapping (`NAME` for field `value`, else `NAME_FIELD`; tags and `host` as
//! labels); counters are typed `counter`, the rest `gauge`.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use http_body_util::Full;
use hyper::body::Bytes;
use serde::Deserialize;
use vane_core::listen::Listen;
use vane_core::prelude::*;

use crate::remote_write::sanitize;

/// Settings of the `prometheus` sink.
#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct PrometheusConfig {
    /// A port of its own for `/metrics`. Default: the agent's HTTP port
    /// (`agent.http`), or 127.0.0.1:9273 when the agent has none.
    pub listen: Option<Listen>,
    /// Series not updated for this long are no longer served. Default: 5m.
    #[serde(default = "crate::defaults::five_minutes")]
    pub staleness: vane_core::Duration,
}

/// metric name → (label set → (value, counter, last update))
type Latest = BTreeMap<String, BTreeMap<Vec<(String, String)>, (f64, bool, Instant)>>;

pub struct Prometheus {
    cfg: PrometheusConfig,
    latest: Arc<Mutex<Latest>>,
    server: Option<tokio::task::JoinHandle<()>>,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        if let Some(s) = self.server.take() {
            s.abort();
        }
    }
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// The exposition of everything fresh.
pub fn render(latest: &Latest, staleness: std::time::Duration) -> String {
    let mut out = String::new();
    for (name, series) in latest {
        let fresh: Vec<_> = series.iter().filter(|(_, (_, _, t))| t.elapsed() <= staleness).collect();
        let Some((_, (_, counter, _))) = fresh.first() else {
            continue;
        };
        let _ = writeln!(out, "# TYPE {name} {}", if *counter { "counter" } else { "gauge" });
        for (labels, (v, _, _)) in fresh {
            out.push_str(name);
            if !labels.is_empty() {
                out.push('{');
                for (i, (k, lv)) in labels.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    let _ = write!(out, "{k}=\"{}\"", escape(lv));
                }
                out.push('}');
            }
            let v = if v.is_nan() {
                "NaN".to_owned()
            } else if v.is_infinite() {
                if *v > 0.0 { "+Inf".into() } else { "-Inf".into() }
            } else {
                format!("{v}")
            };
            let _ = writeln!(out, " {v}");
        }
    }
    out
}

impl Sink for Prometheus {
    async fn prepare(&mut self, ctx: &Context) -> Result<(), SinkError> {
        let staleness = self.cfg.staleness.get();
        if self.cfg.listen.is_none() {
            let latest = self.latest.clone();
            let handler: vane_core::http::HttpHandler = Arc::new(move |_| {
                let body = render(&latest.lock().expect("not poisoned"), staleness);
                vane_core::http::HttpResponse::text(200, "text/plain; version=0.0.4", body)
            });
            match ctx.serve("/metrics", handler) {
                Some(true) => {
                    ctx.info("serving /metrics on the agent's HTTP port");
                    return Ok(());
                }
                Some(false) => {
                    return Err(SinkError::stop(
                        "/metrics is already served on the agent's HTTP port (give this sink a `listen` of its own)",
                    ));
                }
                None => {}
            }
        }
        let addr = self.cfg.listen.map_or(Listen::local(9273).addr, |l| l.addr);
        let limits = vane_core::conns::Limits { max_connections: 64, max_per_client: 0 };
        let listener = vane_core::conns::Listener::bind(addr, limits)
            .await
            .map_err(|e| SinkError::retry(format!("cannot listen on {addr}: {e}")))?;
        ctx.info(format!("serving /metrics on {}", listener.local_addr()?));
        let (latest, ctx) = (self.latest.clone(), ctx.clone());
        self.server = Some(tokio::spawn(async move {
            let mut notice = crate::sources::listen::noticing(&ctx);
            loop {
                let (sock, _) = listener.accept(&mut notice).await;
                let latest = latest.clone();
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                        let latest = latest.clone();
                        async move {
                            let (status, body) = if req.uri().path() == "/metrics" {
                                let text = render(&latest.lock().expect("not poisoned"), staleness);
                                (200, text)
                            } else {
                                (404, "not found: try /metrics\n".to_owned())
                            };
                            let resp = hyper::Response::builder()
                                .status(status)
                                .header("Content-Type", "text/plain; version=0.0.4")
                                .body(Full::new(Bytes::from(body)))
                                .expect("a valid response");
                            Ok::<_, Infallible>(resp)
                        }
                    });
                    let io = hyper_util::rt::TokioIo::new(sock);
                    let _ = hyper::server::conn::http1::Builder::new()
                        .timer(hyper_util::rt::TokioTimer::new())
                        .header_read_timeout(std::time::Duration::from_secs(10))
                        .serve_connection(io, svc)
                        .await;
                });
            }
        }));
        Ok(())
    }

    async fn send(&mut self, batch: &[Event], _: &Context) -> Result<(), SinkError> {
        let now = Instant::now();
        let mut latest = self.latest.lock().expect("not poisoned");
        for e in batch {
            for (field, v) in &e.fields {
                let value = match v {
                    Value::Str(_) => continue,
                    v => v.as_f64().unwrap_or(0.0),
                };
                let name =
                    sanitize(&if field == "value" { e.name.to_string() } else { format!("{}_{field}", e.name) }, true);
                let mut labels: BTreeMap<String, String> = BTreeMap::new();
                if !e.host.is_empty() {
                    labels.insert("host".into(), e.host.to_string());
                }
                for (k, v) in &e.tags {
                    labels.entry(sanitize(k, false)).or_insert_with(|| v.to_string());
                }
                latest
                    .entry(name)
                    .or_default()
                    .insert(labels.into_iter().collect(), (value, e.kind == Kind::Counter, now));
            }
        }
        Ok(())
    }
}

impl Build for Prometheus {
    type Config = PrometheusConfig;

    fn build(cfg: PrometheusConfig, _: &Context) -> Result<Self, BuildError> {
        Ok(Prometheus { cfg, latest: Arc::new(Mutex::new(BTreeMap::new())), server: None })
    }
}
