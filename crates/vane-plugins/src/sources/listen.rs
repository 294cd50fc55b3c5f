//! Listeners: the `socket` source (lines over TCP or UDP in line protocol,
//! Graphite plaintext, JSON or bare numbers) and the `statsd` source.
//!
//! Every listener binds to 127.0.0.1 unless told otherwise, bounds line
//! length, connections and idle time, and counts a bad line (with its
//! number, logged) without dropping the connection.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use serde::Deserialize;
use tokio::io::AsyncReadExt;
use tokio::net::UdpSocket;
use vane_core::Invalid;
use vane_core::conns::{Limits, Listener, Notice};
use vane_core::formats::graphite::Templates;
use vane_core::lineproto::{self, Precision};
use vane_core::listen::{Listen, Scheme};
use vane_core::prelude::*;
use vane_core::size::ByteSize;

use super::lines::line_event;
use super::parts::Emit;

/// How each line reads.
#[derive(Deserialize, Debug, Clone, Copy, Default, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LineFormat {
    /// InfluxDB line protocol.
    #[default]
    Influx,
    /// Graphite plaintext: `path value [timestamp]`, with templates.
    Graphite,
    /// One JSON event a line.
    Json,
    /// A bare number: the value of the event `name`, field `field`
    /// (Duct's NumberProxy).
    Number,
}

/// Turns one line into an event, by a format.
pub struct LineDecoder {
    format: LineFormat,
    precision: Precision,
    templates: Templates,
    name: String,
    field: String,
}

impl LineDecoder {
    /// Decodes a line (without its newline); `None` for blank lines and comments.
    pub fn decode(&self, line: &str, now: i64) -> std::result::Result<Option<Event>, Invalid> {
        let line = line.strip_suffix('\r').unwrap_or(line);
        match self.format {
            LineFormat::Influx => match lineproto::decode(line, self.precision, now).next() {
                None => Ok(None),
                Some(Ok(e)) => Ok(Some(e)),
                Some(Err(e)) => Err(Invalid(format!("column {}: {}", e.column, e.message))),
            },
            _ if line.trim().is_empty() || line.trim_start().starts_with('#') => Ok(None),
            LineFormat::Graphite => self.templates.parse_line(line, now).map(Some),
            LineFormat::Json => vane_core::json::decode(line.trim())
                .map(|mut e| {
                    if e.time == vane_core::event::NO_TIME {
                        e.time = now;
                    }
                    Some(e)
                })
                .map_err(|e| Invalid(e.to_string())),
            LineFormat::Number => {
                let t = line.trim();
                let v: f64 = t.parse().map_err(|_| Invalid(format!("{t:?} is not a number")))?;
                Ok(Some(Event::new(self.name.clone()).field(self.field.clone(), v).at(now)))
            }
        }
    }
}

fn default_field() -> String {
    "value".into()
}

/// What every TCP listener takes about its connections.
#[derive(Deserialize, Debug, Clone)]
#[serde(deny_unknown_fields)]
pub struct Connections {
    /// Connections served at once; when full, the one idle longest is
    /// closed for a new one (or the new one refused, counted, when all are
    /// busy). Default: 256.
    #[serde(default = "crate::defaults::max_connections")]
    pub max_connections: usize,
    /// Connections from one client address; more are refused. Default: no limit.
    #[serde(default)]
    pub max_per_client: usize,
    /// A connection silent this long (from its start, or since its last
    /// read; over HTTP, the time for a request's headers and body) is
    /// closed. Default: 30s.
    #[serde(default = "crate::defaults::thirty_seconds")]
    pub read_timeout: Duration,
}

impl Connections {
    pub fn limits(&self) -> Limits {
        Limits { max_connections: self.max_connections, max_per_client: self.max_per_client }
    }
}

/// Settings of the `socket` source: its own and its connections'.
pub type SocketConfig = vane_core::node::Flat<SocketSettings, Connections>;

/// What the `socket` source takes besides its connections' limits.
#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct SocketSettings {
    /// `tcp://HOST:PORT` or `udp://HOST:PORT` (a bare `HOST:PORT` is TCP).
    pub listen: Listen,
    /// `influx`, `graphite`, `json` or `number`. Default: influx.
    #[serde(default)]
    pub format: LineFormat,
    /// Timestamp precision of line protocol: ns, us, ms, s. Default: ns.
    pub precision: Option<String>,
    /// Graphite templates, tried in order: `[FILTER ]TEMPLATE[ TAG=VALUE,…]`.
    #[serde(default)]
    pub templates: Vec<String>,
    /// The event name of `number` lines. Default: the job's id.
    pub name: Option<String>,
    /// The field of `number` lines. Default: value.
    #[serde(default = "default_field")]
    pub field: String,
    /// Longest line (and largest datagram read); longer ones are skipped and
    /// counted. Default: 64KiB.
    #[serde(default = "crate::defaults::sixty_four_kib")]
    pub max_line: ByteSize,
}

enum Proto {
    Tcp,
    Udp,
}

/// Builds a line decoder from the settings the listeners share.
pub fn line_decoder(
    format: LineFormat,
    precision: Option<&str>,
    templates: &[String],
    name: Option<String>,
    field: String,
    ctx: &Context,
) -> Result<LineDecoder, BuildError> {
    let precision = match precision {
        None => Precision::Nanoseconds,
        Some(p) => {
            Precision::parse(p).ok_or_else(|| BuildError::stop(format!("precision: unknown {p:?} (ns, us, ms, s)")))?
        }
    };
    let templates = Templates::parse(templates).map_err(BuildError::stop)?;
    Ok(LineDecoder { format, precision, templates, name: name.unwrap_or_else(|| ctx.job().to_owned()), field })
}

/// Lines over TCP or UDP, each decoded into an event.
pub struct Socket {
    proto: Proto,
    addr: SocketAddr,
    decoder: Arc<LineDecoder>,
    max_line: usize,
    limits: Limits,
    read_timeout: std::time::Duration,
}

impl Service for Socket {
    async fn run(self, ctx: Context) -> Result<(), ServiceError> {
        match self.proto {
            Proto::Tcp => self.run_tcp(ctx).await,
            Proto::Udp => self.run_udp(ctx).await,
        }
    }
}

impl Build for Socket {
    type Config = SocketConfig;

    fn build(vane_core::node::Flat(c, conns): SocketConfig, ctx: &Context) -> Result<Self, BuildError> {
        let proto = if c.listen.scheme == Some(Scheme::Udp) { Proto::Udp } else { Proto::Tcp };
        Ok(Socket {
            proto,
            addr: c.listen.addr,
            decoder: Arc::new(line_decoder(c.format, c.precision.as_deref(), &c.templates, c.name, c.field, ctx)?),
            max_line: (c.max_line.0 as usize).max(1),
            limits: conns.limits(),
            read_timeout: conns.read_timeout.get(),
        })
    }
}

/// Reports what a listener's accept loop met, as warnings and errors of the job.
pub fn noticing(ctx: &Context) -> impl FnMut(Notice) + Send + '_ {
    move |n| match n {
        Notice::Refused(peer, why) => ctx.warn(format!("{peer}: {why}")),
        Notice::Evicted(peer) => ctx.warn(format!("{peer}: the connection idle longest, closed to make room")),
        Notice::Failed(e, wait) => ctx.report_error(format!("accept: {e}; waiting {wait:?}")),
    }
}

/// Accepts TCP connections on `addr` within `limits` until the job stops,
/// each served by `serve` on a task of its own; logs `"{label} tcp://ADDR"`
/// once listening. On stopping, connections end at their next read, and
/// what they read is handed on before this returns.
pub async fn serve_tcp<F, Fut>(
    label: &str,
    addr: SocketAddr,
    limits: Limits,
    ctx: &Context,
    serve: F,
) -> Result<(), ServiceError>
where
    F: Fn(vane_core::conns::Tracked<tokio::net::TcpStream>, SocketAddr) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let listener = Listener::bind(addr, limits)
        .await
        .map_err(|e| ServiceError::restart(format!("cannot listen on tcp://{addr}: {e}")))?;
    ctx.info(format!("{label} tcp://{}", listener.local_addr()?));
    let mut conns = tokio::task::JoinSet::new();
    let mut notice = noticing(ctx);
    loop {
        tokio::select! {
            (sock, peer) = listener.accept(&mut notice) => {
                conns.spawn(serve(sock, peer));
            }
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
            _ = ctx.stopping() => break,
        }
    }
    while conns.join_next().await.is_some() {}
    Ok(())
}

pub(crate) fn now_ns() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos() as i64).unwrap_or(0)
}

/// Counts and logs a bad line.
pub(super) fn bad_line(ctx: &Context, peer: &dyn std::fmt::Display, n: u64, why: &str) {
    ctx.stats().bad_lines.fetch_add(1, Ordering::Relaxed);
    ctx.warn(format!("{peer}: line {n}: {why}; skipped"));
}

impl Socket {
    async fn run_tcp(self, ctx: Context) -> Result<(), ServiceError> {
        let (max, idle) = (self.max_line, self.read_timeout);
        serve_tcp("listening on", self.addr, self.limits, &ctx, |sock, peer| {
            let (dec, ctx) = (self.decoder.clone(), ctx.clone());
            async move { serve_lines(sock, peer, &dec, &ctx, max, idle).await }
        })
        .await
    }

    async fn run_udp(self, ctx: Context) -> Result<(), ServiceError> {
        let sock = UdpSocket::bind(self.addr)
            .await
            .map_err(|e| ServiceError::restart(format!("cannot listen on udp://{}: {e}", self.addr)))?;
        ctx.info(format!("listening on udp://{}", sock.local_addr()?));
        let mut buf = vec![0u8; self.max_line.min(65_536)];
        let mut out = Vec::new();
        loop {
            let (n, peer) = tokio::select! {
                r = sock.recv_from(&mut buf) => r?,
                _ = ctx.stopping() => return Ok(()),
            };
            let now = now_ns();
            if self.decoder.format == LineFormat::Influx {
                // A datagram holds whole records.
                for r in lineproto::decode(&buf[..n], self.decoder.precision, now) {
                    match r {
                        Ok(e) => out.push(e),
                        Err(e) => bad_line(&ctx, &peer, e.line as u64, &format!("column {}: {}", e.column, e.message)),
                    }
                }
            } else {
                for (i, line) in buf[..n].split(|b| *b == b'\n').enumerate() {
                    if line.is_empty() {
                        continue;
                    }
                    match line_event(&self.decoder, line, now) {
                        Ok(Some(e)) => out.push(e),
                        Ok(None) => {}
                        Err(why) => bad_line(&ctx, &peer, i as u64 + 1, &why),
                    }
                }
            }
            if !out.is_empty() {
                ctx.emit_all(std::mem::take(&mut out)).await;
            }
        }
    }
}

/// Reads once from a connection into `buf`; true when it is over: ended,
/// failed, idle past `idle`, or the agent stops.
pub(super) async fn read_some(
    sock: &mut (impl tokio::io::AsyncRead + Unpin),
    buf: &mut Vec<u8>,
    peer: &(dyn std::fmt::Display + Sync),
    ctx: &Context,
    idle: std::time::Duration,
) -> bool {
    const READ: usize = 64 << 10;
    if buf.capacity() - buf.len() < READ / 2 {
        buf.reserve(READ);
    }
    tokio::select! {
        r = tokio::time::timeout(idle, sock.read_buf(buf)) => match r {
            Err(_) => {
                ctx.debug(format!("{peer}: idle for {idle:?}; closed"));
                true
            }
            Ok(Err(e)) => {
                ctx.debug(format!("{peer}: {e}"));
                true
            }
            Ok(Ok(n)) => n == 0,
        },
        _ = ctx.stopping() => true,
    }
}

/// Reads a stream until it ends, idles past `idle`, or the agent stops:
/// line protocol record by record, other formats line by line.
pub async fn serve_lines(
    sock: impl tokio::io::AsyncRead + Unpin,
    peer: std::net::SocketAddr,
    dec: &Arc<LineDecoder>,
    ctx: &Context,
    max_line: usize,
    idle: std::time::Duration,
) {
    if dec.format == LineFormat::Influx {
        let records = lineproto::Records::new(dec.precision, max_line);
        super::parts::serve(sock, &peer, ctx, idle, records, Emit { ctx, peer }).await
    } else {
        let lines = super::lines::Lines::new(dec.clone(), max_line);
        super::parts::serve(sock, &peer, ctx, idle, lines, Emit { ctx, peer }).await
    }
}

fn default_statsd_listen() -> Listen {
    Listen::local(8125)
}

fn default_percentiles() -> Vec<f64> {
    vec![50.0, 90.0, 99.0]
}

/// Settings of the `statsd` source.
#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct StatsdConfig {
    /// UDP address (`udp://` or a bare HOST:PORT). Default: 127.0.0.1:8125.
    #[serde(default = "default_statsd_listen")]
    pub listen: Listen,
    /// How often the aggregates are sent. Default: 10s.
    #[serde(default = "crate::defaults::ten_seconds")]
    pub flush: Duration,
    /// Timer percentiles, as `pN` fields. Default: 50, 90, 99.
    #[serde(default = "default_percentiles")]
    pub percentiles: Vec<f64>,
    /// A gauge not updated for this long is forgotten (statsd's
    /// `deleteGauges`, after a while); `0s` keeps gauges for ever. Default: 10m.
    #[serde(default = "crate::defaults::ten_minutes")]
    pub gauge_expiry: Duration,
    /// Most series (names with their tags) held between flushes; samples of
    /// new ones past it are dropped and counted. Default: 100000.
    #[serde(default = "default_max_series")]
    pub max_series: usize,
}

fn default_max_series() -> usize {
    100_000
}

/// statsd over UDP, aggregated and sent every `flush`.
pub struct Statsd {
    cfg: StatsdConfig,
}

impl Service for Statsd {
    async fn run(self, ctx: Context) -> Result<(), ServiceError> {
        use vane_core::formats::statsd::Aggregator;
        let sock = UdpSocket::bind(self.cfg.listen.addr)
            .await
            .map_err(|e| ServiceError::restart(format!("cannot listen on udp://{}: {e}", self.cfg.listen.addr)))?;
        ctx.info(format!("statsd listening on udp://{}", sock.local_addr()?));
        let (flush, expiry) = (self.cfg.flush.get(), self.cfg.gauge_expiry.get());
        let flushes =
            (!expiry.is_zero()).then(|| expiry.as_nanos().div_ceil(flush.as_nanos()).min(u32::MAX as u128) as u32);
        let mut agg = Aggregator::bounded(self.cfg.percentiles.clone(), self.cfg.max_series, flushes);
        let mut tick = tokio::time::interval(self.cfg.flush.get());
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        let mut buf = vec![0u8; 65_536];
        loop {
            tokio::select! {
                r = sock.recv_from(&mut buf) => {
                    let (n, peer) = r?;
                    add_packet(&mut agg, &buf[..n], &ctx, &peer);
                }
                _ = tick.tick() => ctx.emit_all(agg.flush(now_ns())).await,
                _ = ctx.stopping() => {
                    // What already arrived belongs to the last flush.
                    while let Ok((n, peer)) = sock.try_recv_from(&mut buf) {
                        add_packet(&mut agg, &buf[..n], &ctx, &peer);
                    }
                    ctx.emit_all(agg.flush(now_ns())).await;
                    return Ok(());
                }
            }
        }
    }
}

impl Build for Statsd {
    type Config = StatsdConfig;

    fn build(cfg: StatsdConfig, _: &Context) -> Result<Self, BuildError> {
        cfg.listen.only(Scheme::Udp).map_err(|e| BuildError::stop(format!("listen: {e}")))?;
        if let Some(p) = cfg.percentiles.iter().find(|p| !(**p > 0.0 && **p <= 100.0)) {
            return Err(BuildError::stop(format!("percentiles: {p} is not in (0, 100]")));
        }
        if cfg.flush.get().is_zero() {
            return Err(BuildError::stop("flush: must be more than 0"));
        }
        Ok(Statsd { cfg })
    }
}

/// Adds the lines of one statsd packet; bad ones are counted with their number.
fn add_packet(
    agg: &mut vane_core::formats::statsd::Aggregator,
    packet: &[u8],
    ctx: &Context,
    peer: &std::net::SocketAddr,
) {
    for (i, line) in packet.split(|b| *b == b'\n').enumerate() {
        if line.is_empty() || line == b"\r" {
            continue;
        }
        let parsed = std::str::from_utf8(line)
            .map_err(|_| Invalid::from("not UTF-8"))
            .and_then(vane_core::formats::statsd::parse_line);
        match parsed {
            Ok(s) => {
                if !agg.add(&s) {
                    ctx.stats().events_dropped.fetch_add(1, Ordering::Relaxed);
                    ctx.warn(format!("{peer}: line {}: more than max_series series; dropped", i + 1));
                }
            }
            Err(why) => bad_line(ctx, peer, i as u64 + 1, &why.0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vane_core::testing::Harness;

    fn decoder(format: LineFormat) -> LineDecoder {
        let h = Harness::new("np");
        line_decoder(format, Some("s"), &["servers.* _.host.name".to_owned()], None, "value".into(), h.context())
            .unwrap()
    }

    #[test]
    fn each_format_reads_a_line() {
        let n = decoder(LineFormat::Number);
        let e = n.decode(" 42.5\r", 7).unwrap().unwrap();
        assert_eq!((e.name.as_str(), e.time), ("np", 7));
        assert_eq!(e.get_field("value"), Some(&Value::Float(42.5)));
        assert!(n.decode("forty", 7).unwrap_err().contains("not a number"));
        assert_eq!(n.decode("  ", 7).unwrap(), None);

        let j = decoder(LineFormat::Json);
        let e = j.decode(r#"{"name":"m","fields":{"v":1}}"#, 9).unwrap().unwrap();
        assert_eq!((e.name.as_str(), e.time), ("m", 9));
        assert!(j.decode("{", 9).is_err());

        let i = decoder(LineFormat::Influx);
        let e = i.decode("m v=1 1700000000", 0).unwrap().unwrap();
        assert_eq!(e.time, 1_700_000_000_000_000_000, "precision s");
        assert!(i.decode("m v=", 0).unwrap_err().starts_with("column "));
        assert_eq!(i.decode("# comment", 0).unwrap(), None);

        let g = decoder(LineFormat::Graphite);
        let e = g.decode("servers.db1.load 3 1700000000", 0).unwrap().unwrap();
        assert_eq!((e.host.as_str(), e.name.as_str()), ("db1", "load"));
    }

    #[test]
    fn bad_settings_stop_the_job() {
        let h = Harness::new("x");
        let bad = |p: Option<&str>, t: &[String]| {
            line_decoder(LineFormat::Influx, p, t, None, "value".into(), h.context()).err()
        };
        assert!(bad(Some("weeks"), &[]).unwrap().to_string().contains("precision"));
        assert!(bad(None, &["a*.b".to_owned()]).unwrap().to_string().contains("templates[0]"));
    }

    #[tokio::test]
    async fn a_socket_takes_lines_over_tcp_and_counts_the_bad_ones() {
        let text = b"1\n2.5\nthree\n4\n".to_vec();
        let (h, got) = crate::sources::through_socket::through_socket("format: number\nname: n", text, 3).await;
        let values: Vec<f64> = got.iter().filter_map(|e| e.get_field("value")?.as_f64()).collect();
        assert_eq!(values, [1.0, 2.5, 4.0]);
        assert_eq!(h.stats().bad_lines.load(std::sync::atomic::Ordering::Relaxed), 1);
    }
}
