//! What every listener that takes events over HTTP shares: the accept loop
//! (connection limits, TLS, timeouts), the token check, reading a body
//! within its limit and the intake budget (gzip and snappy inflated), and
//! handing decoded events on a chunk at a time with the end-to-end
//! acknowledgement. `influxdb_listener`, `prometheus_remote_write` and
//! `otlp` are this plus their protocol: what they decode and how they
//! answer.

use std::convert::Infallible;
use std::future::Future;
use std::io::Read;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::Poll;

use http_body_util::{BodyExt, Limited};
use hyper::body::{Bytes, Frame, Incoming, SizeHint};
use hyper::{HeaderMap, Request, Response, StatusCode};
use serde::Deserialize;
use vane_core::conns::Listener;
use vane_core::intake;
use vane_core::listen::{Listen, Scheme};
use vane_core::prelude::*;
use vane_core::size::ByteSize;

use super::listen::Connections;

/// A certificate chain and its key, PEM files.
#[derive(Deserialize, Debug, Clone)]
#[serde(deny_unknown_fields)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// What every HTTP listener takes besides its address and connections.
#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct HttpSettings {
    /// When set, requests must carry it (bearer/token header or basic-auth password).
    pub token: Option<String>,
    /// Serve HTTPS with this certificate and key.
    pub tls: Option<TlsFiles>,
    /// Largest body, after inflating; larger ones are refused (413). Default: 32MiB.
    #[serde(default = "crate::defaults::thirty_two_mib")]
    pub max_body: ByteSize,
}

/// A listener's settings: its own, the HTTP ones, its connections'.
pub type Config<S> = vane_core::node::Flat<S, vane_core::node::Flat<HttpSettings, Connections>>;

/// A response body: bytes, then trailers if any (gRPC answers in them).
#[derive(Debug, Default)]
pub struct Answer {
    data: Option<Bytes>,
    trailers: Option<HeaderMap>,
}

impl Answer {
    pub fn new(data: impl Into<Bytes>) -> Self {
        Answer { data: Some(data.into()).filter(|d: &Bytes| !d.is_empty()), trailers: None }
    }

    pub fn with_trailers(mut self, trailers: HeaderMap) -> Self {
        self.trailers = Some(trailers);
        self
    }
}

impl hyper::body::Body for Answer {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if let Some(d) = self.data.take() {
            return Poll::Ready(Some(Ok(Frame::data(d))));
        }
        Poll::Ready(self.trailers.take().map(|t| Ok(Frame::trailers(t))))
    }

    fn is_end_stream(&self) -> bool {
        self.data.is_none() && self.trailers.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        match (&self.data, &self.trailers) {
            (d, None) => SizeHint::with_exact(d.as_ref().map_or(0, |d| d.len() as u64)),
            _ => SizeHint::default(),
        }
    }
}

pub type Reply = Response<Answer>;

/// A protocol served over HTTP: one request in, one answer out.
pub trait Handler: Send + Sync + 'static {
    fn handle(self: &Arc<Self>, req: Request<Incoming>) -> impl Future<Output = Reply> + Send;
}

/// Checks, when the source is built, what would keep it from serving: a
/// listen address that is not TCP, a certificate or key that does not load.
pub fn check(listen: &Listen, http: &HttpSettings) -> Result<(), BuildError> {
    listen.only(Scheme::Tcp).map_err(|e| BuildError::stop(format!("listen: {e}")))?;
    http.tls.as_ref().map(load_tls).transpose().map_err(BuildError::stop)?;
    Ok(())
}

/// The certificate and key loaded, for serving HTTPS.
fn load_tls(t: &TlsFiles) -> std::result::Result<tokio_rustls::TlsAcceptor, String> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&t.cert)
        .and_then(|i| i.collect())
        .map_err(|e| format!("tls.cert {}: {e}", t.cert.display()))?;
    if certs.is_empty() {
        return Err(format!("tls.cert {}: no certificate in it", t.cert.display()));
    }
    let key = PrivateKeyDer::from_pem_file(&t.key).map_err(|e| format!("tls.key {}: {e}", t.key.display()))?;
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| format!("tls: {e}"))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}

/// Serves `handler` on `listen` until the job stops: HTTP/1.1, and HTTP/2
/// (with prior knowledge, or by ALPN over TLS) for gRPC.
pub async fn serve<H: Handler>(
    name: &str,
    listen: &Listen,
    http: &HttpSettings,
    conns: &Connections,
    handler: Arc<H>,
    ctx: &Context,
) -> Result<(), ServiceError> {
    let tls = http.tls.as_ref().map(load_tls).transpose().map_err(ServiceError::stop)?;
    let listener = Listener::bind(listen.addr, conns.limits())
        .await
        .map_err(|e| ServiceError::restart(format!("cannot listen on {listen}: {e}")))?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    ctx.info(format!("{name} on {scheme}://{}", listener.local_addr()?));
    let timeout = conns.read_timeout.get();
    let mut running = tokio::task::JoinSet::new();
    let mut notice = super::listen::noticing(ctx);
    loop {
        let (sock, peer) = tokio::select! {
            a = listener.accept(&mut notice) => a,
            Some(_) = running.join_next(), if !running.is_empty() => continue,
            _ = ctx.stopping() => break,
        };
        let (handler, tls, ctx) = (handler.clone(), tls.clone(), ctx.clone());
        running.spawn(async move {
            let svc = hyper::service::service_fn(move |req| {
                let handler = handler.clone();
                async move { Ok::<_, Infallible>(handler.handle(req).await) }
            });
            let mut http = hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new());
            http.http1().timer(hyper_util::rt::TokioTimer::new()).header_read_timeout(timeout);
            http.http2().timer(hyper_util::rt::TokioTimer::new());
            let r = match tls {
                Some(acceptor) => match tokio::time::timeout(timeout, acceptor.accept(sock)).await {
                    Ok(Ok(s)) => http.serve_connection(hyper_util::rt::TokioIo::new(s), svc).await,
                    Ok(Err(e)) => {
                        ctx.debug(format!("{peer}: TLS: {e}"));
                        Ok(())
                    }
                    Err(_) => Ok(()),
                },
                None => http.serve_connection(hyper_util::rt::TokioIo::new(sock), svc).await,
            };
            if let Err(e) = r {
                ctx.debug(format!("{peer}: {e}"));
            }
        });
    }
    running.shutdown().await;
    Ok(())
}

/// The token a request carries: `Authorization: Bearer|Token T`, or the
/// password of HTTP basic auth.
pub fn given_token(req: &Request<Incoming>) -> Option<String> {
    let v = req.headers().get(hyper::header::AUTHORIZATION)?.to_str().ok()?;
    if let Some(t) = v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("Token ")) {
        return Some(t.trim().to_owned());
    }
    let raw = base64_decode(v.strip_prefix("Basic ")?.trim())?;
    Some(String::from_utf8(raw).ok()?.split_once(':')?.1.to_owned())
}

/// Whether `given` is the configured token (always, when none is).
pub fn authorized(token: Option<&str>, given: Option<&str>) -> bool {
    match token {
        None => true,
        Some(t) => given.is_some_and(|g| constant_time_eq(g.as_bytes(), t.as_bytes())),
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Base64 as basic auth writes it (RFC 7617: the standard alphabet, padded).
fn base64_decode(s: &str) -> Option<Vec<u8>> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.decode(s).ok()
}

/// Why a request was not taken: its status and what to tell the client.
#[derive(Debug, PartialEq)]
pub struct Refusal {
    pub status: StatusCode,
    pub message: String,
}

impl Refusal {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Refusal { status, message: message.into() }
    }

    /// 503: the intake budget stayed spent; the client should retry.
    pub fn busy() -> Self {
        Refusal::new(StatusCode::SERVICE_UNAVAILABLE, "busy: the listener holds as much as it may; retry later")
    }

    pub fn is_busy(&self) -> bool {
        self.status == StatusCode::SERVICE_UNAVAILABLE
    }
}

/// A body read whole, inflated, and the intake budget's room it holds.
pub struct Body {
    pub bytes: Bytes,
    rooms: Vec<intake::Room>,
}

impl Body {
    /// A gzip part of the body (a gRPC message) inflated, at most `max`
    /// bytes, its room held with the body's.
    pub async fn gunzip(&mut self, part: &[u8], max: usize) -> Result<Bytes, Refusal> {
        gunzip(part, max, &mut self.rooms).await
    }
}

/// How a body is compressed, from its `Content-Encoding`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Encoding {
    Identity,
    Gzip,
    /// Snappy's block format (Prometheus remote write).
    Snappy,
}

impl Encoding {
    /// The request's encoding, if it is one of `allowed`.
    pub fn of(req: &Request<Incoming>, allowed: &[Encoding]) -> Result<Encoding, Refusal> {
        let Some(v) = req.headers().get(hyper::header::CONTENT_ENCODING) else {
            return Ok(Encoding::Identity);
        };
        let e = match v.to_str().map(|s| s.trim().to_ascii_lowercase()).as_deref() {
            Ok("" | "identity") => Some(Encoding::Identity),
            Ok("gzip") => Some(Encoding::Gzip),
            Ok("snappy") => Some(Encoding::Snappy),
            _ => None,
        };
        match e {
            Some(e) if e == Encoding::Identity || allowed.contains(&e) => Ok(e),
            _ => Err(Refusal::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                format!("Content-Encoding {:?} is not taken here", String::from_utf8_lossy(v.as_bytes())),
            )),
        }
    }
}

/// A request's body, at most `max` bytes once inflated, received within
/// `timeout`, its room in the intake budget reserved before it is read.
pub async fn read_body(
    req: Request<Incoming>,
    encoding: Encoding,
    max: usize,
    timeout: std::time::Duration,
) -> Result<Body, Refusal> {
    let too_large = || Refusal::new(StatusCode::PAYLOAD_TOO_LARGE, format!("body larger than max_body ({max} bytes)"));
    let length = req.headers().get(hyper::header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if length.is_some_and(|n| n > max as u64) {
        return Err(too_large());
    }
    let mut rooms = Vec::new();
    rooms.push(intake::reserve(length.map_or(max, |n| n as usize).min(max)).await.ok_or_else(Refusal::busy)?);
    let raw = match tokio::time::timeout(timeout, Limited::new(req.into_body(), max).collect()).await {
        Err(_) => return Err(Refusal::new(StatusCode::REQUEST_TIMEOUT, "body not received in time")),
        Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => return Err(too_large()),
        Ok(Err(e)) => return Err(Refusal::new(StatusCode::BAD_REQUEST, format!("reading the body: {e}"))),
        Ok(Ok(b)) => b.to_bytes(),
    };
    let bytes = match encoding {
        // Some clients mark an empty body as compressed.
        _ if raw.is_empty() => raw,
        Encoding::Identity => raw,
        Encoding::Gzip => gunzip(&raw, max, &mut rooms).await?,
        Encoding::Snappy => unsnap(&raw, max, &mut rooms).await?,
    };
    Ok(Body { bytes, rooms })
}

/// A gzip body inflated, at most `max` bytes, each MiB of it reserved in
/// the intake budget first (kept in `rooms`).
async fn gunzip(body: &[u8], max: usize, rooms: &mut Vec<intake::Room>) -> Result<Bytes, Refusal> {
    const STEP: usize = 1 << 20;
    let mut z = flate2::read::GzDecoder::new(body);
    let mut out = Vec::new();
    loop {
        rooms.push(intake::reserve(STEP).await.ok_or_else(Refusal::busy)?);
        // Read one byte past the limit to tell a body that is too large.
        let want = (max + 1 - out.len()).min(STEP) as u64;
        match (&mut z).take(want).read_to_end(&mut out) {
            Ok(_) if out.len() > max => {
                return Err(Refusal::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    format!("body larger than max_body ({max} bytes) once gunzipped"),
                ));
            }
            Ok(0) => return Ok(Bytes::from(out)),
            Ok(_) => {}
            Err(e) => return Err(Refusal::new(StatusCode::BAD_REQUEST, format!("bad gzip body: {e}"))),
        }
    }
}

/// A snappy block inflated: its length is in its header, checked against
/// `max` and reserved before inflating.
async fn unsnap(body: &[u8], max: usize, rooms: &mut Vec<intake::Room>) -> Result<Bytes, Refusal> {
    let bad = |e: snap::Error| Refusal::new(StatusCode::BAD_REQUEST, format!("bad snappy body: {e}"));
    let len = snap::raw::decompress_len(body).map_err(bad)?;
    if len > max {
        return Err(Refusal::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("body larger than max_body ({max} bytes) once inflated"),
        ));
    }
    rooms.push(intake::reserve(len).await.ok_or_else(Refusal::busy)?);
    snap::raw::Decoder::new().decompress_vec(body).map(Bytes::from).map_err(bad)
}

/// Events are decoded and handed on this many at a time.
pub const CHUNK: usize = 4096;

/// What became of a request's events.
#[derive(Debug, Default)]
pub struct Handed {
    /// Events handed on.
    pub events: u64,
    /// Records that could not be read, counted in the job's bad lines.
    pub bad: u64,
    /// The first bad record's error.
    pub first: Option<String>,
    /// Whether every sink the events reached stored them.
    pub stored: bool,
}

/// Chunks of one request in flight at once: handed on, not yet stored.
const DEPTH: usize = 4;

/// Whether a chunk handed on was stored, once every sink it reaches has it.
type Stored = Pin<Box<dyn Future<Output = bool> + Send>>;

/// A request's events on their way: handed on a chunk at a time, each
/// chunk's room in the intake budget reserved before it is decoded and
/// held until every sink it reaches has stored it. A few chunks are in
/// flight at once, so that decoding the next overlaps storing the last.
pub struct Handing<'a> {
    ctx: &'a Context,
    pending: std::collections::VecDeque<(intake::Room, Stored)>,
    handed: Handed,
    busy: bool,
}

impl<'a> Handing<'a> {
    pub fn new(ctx: &'a Context) -> Self {
        Handing { ctx, pending: Default::default(), handed: Handed { stored: true, ..Handed::default() }, busy: false }
    }

    /// Room for `events` more events; none (and the request is refused as
    /// busy) when the budget stays spent.
    pub async fn room(&mut self, events: usize) -> Option<intake::Room> {
        let room = intake::reserve_events(events).await;
        self.busy |= room.is_none();
        room
    }

    /// Hands a chunk on in its room; waits while too many are in flight.
    pub async fn send(&mut self, room: intake::Room, chunk: Vec<Event>) {
        if chunk.is_empty() {
            return;
        }
        self.handed.events += chunk.len() as u64;
        let stored = self.ctx.emit_tracked(chunk).await;
        self.pending.push_back((room, Box::pin(stored)));
        while self.pending.len() > DEPTH {
            self.settle_oldest().await;
        }
    }

    async fn settle_oldest(&mut self) {
        if let Some((room, stored)) = self.pending.pop_front() {
            self.handed.stored &= stored.await;
            drop(room);
        }
    }

    /// A record that could not be read: counted, the first one kept.
    pub fn bad(&mut self, error: String) {
        self.handed.bad += 1;
        self.handed.first.get_or_insert(error);
    }

    /// Once every chunk handed on is stored: what became of the request's
    /// events. Refused (503) when the budget stayed spent: what was handed
    /// on stays handed on, and the client's retry may bring those events
    /// twice (at least once).
    pub async fn finish(mut self) -> Result<Handed, Refusal> {
        while !self.pending.is_empty() {
            self.settle_oldest().await;
        }
        let h = self.handed;
        if h.bad > 0 {
            self.ctx.stats().bad_lines.fetch_add(h.bad, Ordering::Relaxed);
            self.ctx.warn(format!(
                "{} bad records in a request, the first: {}",
                h.bad,
                h.first.as_deref().unwrap_or("")
            ));
        }
        if self.busy { Err(Refusal::busy()) } else { Ok(h) }
    }
}

/// Hands `events` on a chunk at a time (see [`Handing`]), so that a body
/// never lies in memory as events all at once; returns once every sink
/// they reach has stored them (a disk buffer: synced), so that an answer of
/// success means they survive a crash. Bad records are counted and the
/// first one is kept, to be named in the answer.
pub async fn hand_on<I>(ctx: &Context, events: I) -> Result<Handed, Refusal>
where
    I: Iterator<Item = std::result::Result<Event, String>>,
{
    let mut handing = Handing::new(ctx);
    let mut events = events.peekable();
    while events.peek().is_some() {
        let Some(room) = handing.room(CHUNK).await else { break };
        let mut chunk = Vec::with_capacity(CHUNK.min(events.size_hint().0.max(16)));
        for r in events.by_ref().take(CHUNK) {
            match r {
                Ok(e) => chunk.push(e),
                Err(msg) => handing.bad(msg),
            }
        }
        handing.send(room, chunk).await;
    }
    handing.finish().await
}

/// Logs that a request was refused for the intake budget.
pub fn warn_busy(ctx: &Context) {
    ctx.warn("a request was refused: the listeners' memory budget is spent (503)");
}

/// Text of a stored-or-not outcome, for answers.
pub const NOT_STORED: &str = "not stored: a sink's buffer is full and dropped them; retry later";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_compare_and_basic_auth_decodes() {
        assert_eq!(base64_decode("dTpzM2NyZXQ=").unwrap(), b"u:s3cret");
        assert!(base64_decode("*").is_none());
        assert!(constant_time_eq(b"abc", b"abc") && !constant_time_eq(b"abc", b"abd"));
        assert!(authorized(None, None));
        assert!(authorized(Some("t"), Some("t")));
        assert!(!authorized(Some("t"), None) && !authorized(Some("t"), Some("u")));
    }

    #[tokio::test]
    async fn snappy_bodies_are_checked_against_the_limit_before_inflating() {
        let raw = vec![b'x'; 10_000];
        let z = snap::raw::Encoder::new().compress_vec(&raw).unwrap();
        let mut rooms = Vec::new();
        assert_eq!(unsnap(&z, 10_000, &mut rooms).await.unwrap(), raw);
        assert_eq!(unsnap(&z, 9_999, &mut rooms).await.unwrap_err().status, StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(unsnap(b"\xff\xff", 100, &mut rooms).await.unwrap_err().status, StatusCode::BAD_REQUEST);
    }

    #[test]
    fn answers_end_with_their_trailers() {
        use hyper::body::Body as _;
        let a = Answer::new("");
        assert!(a.is_end_stream());
        let mut t = HeaderMap::new();
        t.insert("grpc-status", "0".parse().unwrap());
        let a = Answer::new("x").with_trailers(t);
        assert!(!a.is_end_stream());
    }
}
