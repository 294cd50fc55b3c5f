//! Service checks polled on the job's interval: `http` and `tcp`.
//!
//! A check always yields one event, also when the service is down: `up` is
//! 1 or 0 and the state is ok or critical, so that `warning`/`critical`
//! levels on the job can refine it (`critical: "up == 0 || time > 2"`).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

use serde::Deserialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use vane_core::prelude::*;

fn get() -> String {
    "GET".into()
}

/// Settings of the `http` check.
#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct HttpCheckConfig {
    /// Printed and tagged with its secrets redacted (`vane_core::url`).
    pub url: vane_core::url::Url,
    /// Default: GET.
    #[serde(default = "get")]
    pub method: String,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// A request body.
    pub body: Option<String>,
    /// Default: 10s.
    #[serde(default = "crate::defaults::ten_seconds")]
    pub timeout: Duration,
    /// Statuses that count as up. Default: any below 400.
    #[serde(default)]
    pub expect_status: Vec<u16>,
    /// A regular expression the body must match (field `body_match`; the
    /// check is down when it does not).
    pub body_regex: Option<vane_core::regex::Regex>,
    #[serde(default)]
    pub follow_redirects: bool,
    /// A PEM file of certificates to trust besides the system's.
    pub ca: Option<PathBuf>,
    /// Check the server's certificate. Default: true.
    #[serde(default = "crate::defaults::yes")]
    pub tls_verify: bool,
    /// The event's name. Default: http.
    pub name: Option<String>,
    /// Most of the body read (for `body_regex` and `size`); the rest is not
    /// read, and the event says `truncated`. Default: 1MiB.
    #[serde(default = "crate::defaults::one_mib")]
    pub max_body: vane_core::ByteSize,
}

/// `http`: status, response time, size, body match and certificate days left.
pub struct HttpCheck {
    cfg: HttpCheckConfig,
    client: reqwest::Client,
    method: reqwest::Method,
}

impl Source for HttpCheck {
    async fn poll(&mut self, _: &Context) -> Result<Vec<Event>> {
        let mut e = Event::new(self.cfg.name.clone().unwrap_or_else(|| "http".into())).tag("url", self.cfg.url.shown());
        let mut req = self.client.request(self.method.clone(), self.cfg.url.expose());
        for (k, v) in &self.cfg.headers {
            req = req.header(k, v);
        }
        if let Some(b) = &self.cfg.body {
            req = req.body(b.clone());
        }
        let start = Instant::now();
        let result = async {
            let resp = req.send().await?;
            let status = resp.status().as_u16();
            let cert =
                resp.extensions().get::<reqwest::tls::TlsInfo>().and_then(|t| t.peer_certificate()).and_then(not_after);
            let body = crate::http_client::body_up_to(resp, self.cfg.max_body.0 as usize).await?;
            Ok::<_, reqwest::Error>((status, cert, body))
        }
        .await;
        let secs = start.elapsed().as_secs_f64();
        match result {
            Ok((status, cert, (body, truncated))) => {
                let mut up = if self.cfg.expect_status.is_empty() {
                    status < 400
                } else {
                    self.cfg.expect_status.contains(&status)
                };
                e = e.field("status", i64::from(status)).field("time", secs).field("size", body.len() as i64);
                if truncated {
                    e = e.field("truncated", true);
                }
                if let Some(re) = &self.cfg.body_regex {
                    let matched = re.is_match(&String::from_utf8_lossy(&body));
                    up &= matched;
                    e = e.field("body_match", matched);
                }
                if let Some(expires) = cert {
                    let now = std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map(|d| d.as_secs() as i64)
                        .unwrap_or(0);
                    e = e.field("cert_days", (expires - now) as f64 / 86_400.0);
                }
                e = e.field("up", i64::from(up));
                e.state = Some(if up { State::Ok } else { State::Critical });
                if !up {
                    e.description = Some(format!("status {status}"));
                }
            }
            Err(err) => {
                let err = err.without_url();
                let mut why = err.to_string();
                let mut src = std::error::Error::source(&err);
                while let Some(s) = src {
                    why = format!("{why}: {s}");
                    src = s.source();
                }
                e = e.field("up", 0i64).field("status", 0i64).field("time", secs);
                e.state = Some(State::Critical);
                e.description = Some(why);
            }
        }
        Ok(vec![e])
    }
}

impl Build for HttpCheck {
    type Config = HttpCheckConfig;

    fn build(cfg: HttpCheckConfig, _: &Context) -> Result<Self, BuildError> {
        let method = reqwest::Method::from_bytes(cfg.method.to_ascii_uppercase().as_bytes())
            .map_err(|_| BuildError::stop(format!("method: {:?} is not an HTTP method", cfg.method)))?;
        let redirects = if cfg.follow_redirects {
            reqwest::redirect::Policy::limited(10)
        } else {
            reqwest::redirect::Policy::none()
        };
        let builder = crate::http_client::builder(cfg.timeout.get(), cfg.ca.as_deref(), cfg.tls_verify)?;
        let client = crate::http_client::build(builder.tls_info(true).redirect(redirects))?;
        Ok(HttpCheck { cfg, client, method })
    }
}

/// The `notAfter` of a DER X.509 certificate, in seconds since the epoch.
pub fn not_after(der: &[u8]) -> Option<i64> {
    // One TLV: (tag, contents, rest).
    fn tlv(b: &[u8]) -> Option<(u8, &[u8], &[u8])> {
        let (&tag, b) = b.split_first()?;
        let (&l, mut b) = b.split_first()?;
        let len = if l < 0x80 {
            usize::from(l)
        } else {
            let n = usize::from(l & 0x7f);
            if n == 0 || n > 4 || b.len() < n {
                return None;
            }
            let v = b[..n].iter().fold(0usize, |a, x| (a << 8) | usize::from(*x));
            b = &b[n..];
            v
        };
        (b.len() >= len).then(|| (tag, &b[..len], &b[len..]))
    }
    let (_, cert, _) = tlv(der)?;
    let (_, tbs, _) = tlv(cert)?;
    let (tag, _, mut rest) = tlv(tbs)?;
    if tag == 0xa0 {
        // An explicit version came first; the serial number is next.
        rest = tlv(rest)?.2;
    }
    let rest = tlv(rest)?.2; // signature algorithm
    let rest = tlv(rest)?.2; // issuer
    let (_, validity, _) = tlv(rest)?;
    let (_, _, after) = tlv(validity)?; // skips notBefore
    let (tag, time, _) = tlv(after)?;
    let t = std::str::from_utf8(time).ok()?;
    let (year, rest) = match tag {
        0x17 => {
            let yy: i64 = t.get(..2)?.parse().ok()?;
            (if yy < 50 { 2000 + yy } else { 1900 + yy }, t.get(2..)?)
        }
        0x18 => (t.get(..4)?.parse().ok()?, t.get(4..)?),
        _ => return None,
    };
    let num = |i: usize| -> Option<i64> { rest.get(i..i + 2)?.parse().ok() };
    let (mo, d, h, mi, s) = (num(0)?, num(2)?, num(4)?, num(6)?, num(8)?);
    Some(days_from_civil(year, mo, d) * 86_400 + h * 3600 + mi * 60 + s)
}

/// Days since 1970-01-01 of a proleptic Gregorian date.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Settings of the `tcp` check.
#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct TcpCheck {
    /// `HOST:PORT`.
    pub address: String,
    /// Default: 10s, for connecting and for the whole exchange.
    #[serde(default = "crate::defaults::ten_seconds")]
    pub timeout: Duration,
    /// Text sent once connected.
    pub send: Option<String>,
    /// Text the answer must contain (field `matched`; down when it does not).
    pub expect: Option<String>,
    /// The event's name. Default: tcp.
    pub name: Option<String>,
}

impl Source for TcpCheck {
    async fn poll(&mut self, _: &Context) -> Result<Vec<Event>> {
        let mut e = Event::new(self.name.clone().unwrap_or_else(|| "tcp".into())).tag("address", self.address.clone());
        let limit = self.timeout.get();
        let start = Instant::now();
        let connected = tokio::time::timeout(limit, tokio::net::TcpStream::connect(&self.address)).await;
        let mut sock = match connected {
            Ok(Ok(s)) => s,
            Ok(Err(err)) => return Ok(vec![down(e, err.to_string())]),
            Err(_) => return Ok(vec![down(e, format!("no connection within {limit:?}"))]),
        };
        e = e.field("connect_time", start.elapsed().as_secs_f64());
        let mut up = true;
        if self.send.is_some() || self.expect.is_some() {
            let exchange = async {
                if let Some(s) = &self.send {
                    sock.write_all(s.as_bytes()).await?;
                }
                let Some(want) = &self.expect else {
                    return Ok::<_, std::io::Error>(true);
                };
                let mut got = Vec::new();
                let mut buf = [0u8; 4096];
                loop {
                    let n = sock.read(&mut buf).await?;
                    if n == 0 {
                        return Ok(false);
                    }
                    got.extend_from_slice(&buf[..n]);
                    if String::from_utf8_lossy(&got).contains(want.as_str()) {
                        return Ok(true);
                    }
                    if got.len() > 1 << 20 {
                        return Ok(false);
                    }
                }
            };
            let remaining = limit.saturating_sub(start.elapsed());
            let matched = match tokio::time::timeout(remaining, exchange).await {
                Ok(Ok(m)) => m,
                Ok(Err(err)) => return Ok(vec![down(e, err.to_string())]),
                Err(_) => false,
            };
            e = e.field("response_time", start.elapsed().as_secs_f64());
            if self.expect.is_some() {
                e = e.field("matched", matched);
                up = matched;
                if !matched {
                    e.description = Some("the expected answer did not come".into());
                }
            }
        }
        e = e.field("up", i64::from(up));
        e.state = Some(if up { State::Ok } else { State::Critical });
        Ok(vec![e])
    }
}

fn down(e: Event, why: String) -> Event {
    let mut e = e.field("up", 0i64);
    e.state = Some(State::Critical);
    e.description = Some(why);
    e
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_days_match_known_dates() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(days_from_civil(2026, 11, 22), 20_779);
    }

    #[test]
    fn not_after_refuses_garbage() {
        assert_eq!(not_after(&[]), None);
        assert_eq!(not_after(&[0x30, 0x82, 0xff]), None);
        assert_eq!(not_after(&[0x30, 0x03, 0x30, 0x01, 0x00]), None);
    }
}
