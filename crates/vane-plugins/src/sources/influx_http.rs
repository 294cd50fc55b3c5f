//! The `influxdb_listener` source: a drop-in for InfluxDB 1.x's write API.
//!
//! `POST /write?db=&rp=&precision=` takes line protocol (gzip bodies too)
//! and answers 204, or 400 naming the first bad line (the good lines of the
//! body are kept, as InfluxDB keeps them on a partial write). `GET|HEAD
//! /ping` answers 204, and `/query` accepts the `CREATE DATABASE` and
//! `CREATE RETENTION POLICY` statements clients send before writing, so
//! InfluxDB clients and Telegraf's `influxdb` output work unchanged.
//! A 204 is sent once every sink the events reach has stored them (synced
//! to disk for sinks with a disk buffer); 503 if a full buffer dropped them.
//! A `token` makes every request need `Authorization: Bearer|Token TOKEN`
//! (or HTTP basic auth with the token as password, or InfluxDB 1.x's `p`
//! parameter); `tls` serves HTTPS.

use std::sync::Arc;

use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use serde::Deserialize;
use vane_core::lineproto::{self, Precision};
use vane_core::listen::Listen;
use vane_core::node::Flat;
use vane_core::prelude::*;

use super::http_intake::{self as intake, Answer, Encoding, Handing, HttpSettings, Refusal, Reply};
use super::listen::{Connections, now_ns};
use super::parts::Out;

fn default_listen() -> Listen {
    Listen::local(8186)
}

/// Settings of the `influxdb_listener` source: its own, the HTTP ones, its connections'.
pub type InfluxListenerConfig = intake::Config<InfluxListenerSettings>;

/// What `influxdb_listener` takes besides the HTTP settings and its connections' limits.
#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct InfluxListenerSettings {
    /// Where to listen. Default: 127.0.0.1:8186.
    #[serde(default = "default_listen")]
    pub listen: Listen,
    /// Adds the request's `db` as this tag.
    pub db_tag: Option<String>,
}

pub struct InfluxListener {
    cfg: InfluxListenerSettings,
    http: HttpSettings,
    conns: Connections,
    ctx: Context,
}

impl Service for InfluxListener {
    async fn run(self, ctx: Context) -> Result<(), ServiceError> {
        let this = Arc::new(self);
        intake::serve("influxdb_listener", &this.cfg.listen, &this.http, &this.conns, this.clone(), &ctx).await
    }
}

impl Build for InfluxListener {
    type Config = InfluxListenerConfig;

    fn build(Flat(cfg, Flat(http, conns)): InfluxListenerConfig, ctx: &Context) -> Result<Self, BuildError> {
        intake::check(&cfg.listen, &http)?;
        Ok(InfluxListener { cfg, http, conns, ctx: ctx.clone() })
    }
}

impl intake::Handler for InfluxListener {
    async fn handle(self: &Arc<Self>, req: Request<Incoming>) -> Reply {
        match self.write(req).await {
            Ok(r) => r,
            Err(r) => {
                if r.is_busy() {
                    intake::warn_busy(&self.ctx);
                }
                refused(r)
            }
        }
    }
}

fn reply(status: StatusCode, error: Option<&str>) -> Reply {
    let body = match error {
        Some(e) => serde_json::json!({ "error": e }).to_string(),
        None if status == StatusCode::OK => r#"{"results":[{"statement_id":0}]}"#.to_owned(),
        None => String::new(),
    };
    let mut r = Response::builder()
        .status(status)
        .header("X-Influxdb-Version", "1.8-vane")
        .header("Content-Type", "application/json");
    if let Some(e) = error {
        r = r.header("X-Influxdb-Error", e);
    }
    r.body(Answer::new(body)).expect("a valid response")
}

fn refused(r: Refusal) -> Reply {
    let mut reply = reply(r.status, Some(&r.message));
    if r.is_busy() {
        reply.headers_mut().insert(hyper::header::RETRY_AFTER, hyper::header::HeaderValue::from_static("1"));
    }
    reply
}

use vane_core::http::form_pairs;

fn query_params(req: &Request<Incoming>) -> Vec<(String, String)> {
    req.uri().query().map(|q| form_pairs(q.as_bytes())).unwrap_or_default()
}

impl InfluxListener {
    async fn write(&self, req: Request<Incoming>) -> Result<Reply, Refusal> {
        let params = query_params(&req);
        let path = req.uri().path().to_owned();
        match (req.method().as_str(), path.as_str()) {
            ("GET" | "HEAD", "/ping") => return Ok(reply(StatusCode::NO_CONTENT, None)),
            (_, "/ping") => return Err(Refusal::new(StatusCode::METHOD_NOT_ALLOWED, "use GET or HEAD")),
            (_, "/write" | "/query") => {}
            _ => return Err(Refusal::new(StatusCode::NOT_FOUND, "not found: vane serves /write, /query and /ping")),
        }
        // InfluxDB 1.x's own way: the password as the `p` parameter.
        let given = intake::given_token(&req).or_else(|| params.iter().find(|(k, _)| k == "p").map(|(_, v)| v.clone()));
        if !intake::authorized(self.http.token.as_deref(), given.as_deref()) {
            self.ctx.warn("a request without the right token was refused");
            return Err(Refusal::new(StatusCode::UNAUTHORIZED, "authorization failed"));
        }
        let method = req.method().clone();
        let encoding = Encoding::of(&req, &[Encoding::Gzip])?;
        let body =
            intake::read_body(req, encoding, self.http.max_body.0 as usize, self.conns.read_timeout.get()).await?;
        if path == "/query" {
            let mut all = params;
            if method == hyper::Method::POST {
                all.extend(form_pairs(&body.bytes));
            }
            let q = all.iter().find(|(k, _)| k == "q").map(|(_, v)| v.trim().to_ascii_uppercase());
            return match q {
                Some(q) if q.starts_with("CREATE DATABASE") || q.starts_with("CREATE RETENTION POLICY") => {
                    Ok(reply(StatusCode::OK, None))
                }
                _ => Err(Refusal::new(
                    StatusCode::BAD_REQUEST,
                    "vane's influxdb_listener takes writes; of queries only CREATE DATABASE and CREATE RETENTION POLICY",
                )),
            };
        }
        if method != hyper::Method::POST {
            return Err(Refusal::new(StatusCode::METHOD_NOT_ALLOWED, "use POST"));
        }
        let param = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        let precision = match param("precision").unwrap_or("ns") {
            "n" | "ns" | "" => Precision::Nanoseconds,
            "u" | "us" => Precision::Microseconds,
            "ms" => Precision::Milliseconds,
            "s" => Precision::Seconds,
            p => return Err(Refusal::new(StatusCode::BAD_REQUEST, format!("unknown precision {p:?}"))),
        };
        let db = match (&self.cfg.db_tag, param("db")) {
            (Some(tag), Some(db)) => Some((Text::from(tag.as_str()), Text::from(db))),
            _ => None,
        };
        let mut handing = Handing::new(&self.ctx);
        // Decoded in parts on several threads, as a fast connection is; one
        // time for the request's points without one, as InfluxDB gives.
        let records = lineproto::Records::new(precision, body.bytes.len());
        let out = Body { handing: &mut handing, now: now_ns(), db };
        super::parts::serve(&body.bytes[..], &"a request", &self.ctx, self.conns.read_timeout.get(), records, out)
            .await;
        let handed = handing.finish().await?;
        if !handed.stored {
            return Err(Refusal::new(StatusCode::SERVICE_UNAVAILABLE, intake::NOT_STORED));
        }
        Ok(match handed.first {
            None => reply(StatusCode::NO_CONTENT, None),
            Some(first) => {
                reply(StatusCode::BAD_REQUEST, Some(&format!("partial write: {first} (dropped={})", handed.bad)))
            }
        })
    }
}

/// Where a body's events go as its parts are decoded: on, with the `db` tag.
struct Body<'h, 'a> {
    handing: &'h mut Handing<'a>,
    now: i64,
    db: Option<(Text, Text)>,
}

impl Out for Body<'_, '_> {
    fn now(&self) -> i64 {
        self.now
    }

    async fn take(&mut self, mut events: Vec<Event>) -> bool {
        let Some(room) = self.handing.room(events.len()).await else { return false };
        if let Some(db) = &self.db {
            events.iter_mut().for_each(|e| e.tags.push(db.clone()));
        }
        self.handing.send(room, events).await;
        true
    }

    fn bad(&mut self, line: u64, why: String) {
        self.handing.bad(format!("line {line}, {why}"));
    }
}

/// The events of a body, lazily, each bad record as its error (naming its
/// line and column).
pub fn decode(
    body: &[u8],
    precision: Precision,
    now: i64,
) -> impl Iterator<Item = std::result::Result<Event, String>> + Send + '_ {
    lineproto::decode(body, precision, now).map(|r| r.map_err(|e| e.to_string()))
}

/// The events of a body, the number of bad lines and the first one's error.
pub fn decode_body(body: &[u8], precision: Precision, now: i64) -> (Vec<Event>, u64, Option<String>) {
    let (mut events, mut bad, mut first) = (Vec::new(), 0, None);
    for r in decode(body, precision, now) {
        match r {
            Ok(e) => events.push(e),
            Err(msg) => {
                bad += 1;
                first.get_or_insert(msg);
            }
        }
    }
    (events, bad, first)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_decode_with_the_first_bad_line_named() {
        let (evs, bad, first) = decode_body(b"a v=1\nb v=\nc v=3 10\n\xff\xfe\nd v=4", Precision::Seconds, 7);
        assert_eq!(evs.len(), 3);
        assert_eq!(evs[1].time, 10_000_000_000);
        assert_eq!(evs[0].time, 7);
        assert_eq!(bad, 2);
        assert_eq!(first.unwrap(), "line 2, column 5: missing value for field \"v\"");
        let (evs, bad, first) = decode_body(b"x v=1i\nm", Precision::Nanoseconds, 0);
        assert_eq!((evs.len(), bad), (1, 1));
        assert!(first.unwrap().starts_with("line 2, column"));
    }

    /// POSTs `body` to `path` on `port` over one HTTP/1.1 connection; the
    /// answer's status and body.
    fn post(port: u16, path: &str, body: &[u8]) -> (u16, String) {
        use std::io::{Read, Write};
        let mut s = loop {
            if let Ok(s) = std::net::TcpStream::connect(("127.0.0.1", port)) {
                break s;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        };
        let head =
            format!("POST {path} HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len());
        s.write_all(head.as_bytes()).unwrap();
        s.write_all(body).unwrap();
        let mut answer = String::new();
        s.read_to_string(&mut answer).unwrap();
        let status = answer[9..12].parse().unwrap();
        (status, answer.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default())
    }

    /// A body of many parts, some records bad, some with line feeds in their
    /// strings: every good point arrives once, in order, with the one time of
    /// the request and the db tag; the answer names the first bad line by its
    /// line in the body.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_large_body_is_decoded_in_parts_in_order() {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let config = format!("listen: 127.0.0.1:{port}\ndb_tag: db");
        let (h, listener) =
            vane_core::testing::Harness::service(&crate::registry(), "influxdb_listener", &config).unwrap();
        let (n, mut body, mut bad, mut first_bad_line) = (40_000u64, Vec::new(), 0u64, None);
        for i in 0..n {
            let line = match i {
                _ if i % 4999 == 4998 => {
                    bad += 1;
                    let at = body.iter().filter(|&&b| b == b'\n').count() + 1;
                    first_bad_line.get_or_insert(at);
                    format!("bad{i} v=\n")
                }
                _ if i % 7 == 0 => format!("m seq={i}i,s=\"a\nb\nc\"\n"),
                _ => format!("m seq={i}i,pad=\"{}\"\n", "x".repeat((i % 50) as usize)),
            };
            body.extend_from_slice(line.as_bytes());
        }
        assert!(body.len() > 16 * super::super::parts::PART, "{} bytes", body.len());
        let client = std::thread::spawn(move || post(port, "/write?db=telegraf", &body));
        let want = (n - bad) as usize;
        let got = h.run_until(listener, std::time::Duration::from_secs(60), |e| e.len() >= want).await.unwrap();
        let (status, answer) = client.join().unwrap();
        assert_eq!(status, 400, "{answer}");
        let first = format!("partial write: line {}, column ", first_bad_line.unwrap());
        assert!(answer.contains(&first) && answer.contains(&format!("dropped={bad}")), "{answer}");
        let seqs: Vec<i64> = got.iter().filter_map(|e| e.get_field("seq")?.as_f64()).map(|f| f as i64).collect();
        let sent: Vec<i64> = (0..n as i64).filter(|i| i % 4999 != 4998).collect();
        assert!(seqs == sent, "points out of order or lost: {} of {}", seqs.len(), sent.len());
        assert!(got.iter().all(|e| e.time == got[0].time && e.tags.iter().any(|(k, v)| k == "db" && v == "telegraf")));
        assert_eq!(h.stats().bad_lines.load(std::sync::atomic::Ordering::Relaxed), bad);
    }

    #[test]
    fn forms_decode() {
        assert_eq!(
            form_pairs(b"q=CREATE+DATABASE+%22x%22&db=a%2Fb&e"),
            vec![
                ("q".into(), "CREATE DATABASE \"x\"".into()),
                ("db".into(), "a/b".into()),
                ("e".into(), String::new())
            ]
        );
        assert_eq!(form_pairs(b"a=%zz%4"), vec![("a".into(), "%zz%4".into())]);
    }
}
