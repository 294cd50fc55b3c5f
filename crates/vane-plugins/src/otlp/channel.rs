//! A gRPC channel for unary calls: one HTTP/2 connection (in the clear
//! with prior knowledge for `http://`, TLS with ALPN `h2` for `https://`),
//! made when first needed and made again after any error; a call's status
//! is read from the answer's trailers (or its headers, for a
//! trailers-only answer).

use std::sync::Arc;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::client::conn::http2::SendRequest;

use super::grpc;

/// Where a channel goes.
pub struct Channel {
    authority: String,
    host: String,
    port: u16,
    tls: Option<tokio_rustls::TlsConnector>,
    conn: Option<SendRequest<Full<Bytes>>>,
}

/// How a call ended, when it did not end OK.
#[derive(Debug)]
pub enum Failure {
    /// The connection failed or the call timed out: worth trying again.
    Transport(String),
    /// The server answered with this gRPC status and message, and the
    /// delay it asked for before a retry, if it did (RetryInfo).
    Status(u32, String, Option<std::time::Duration>),
}

impl Channel {
    /// A channel to `url`'s host and port (`http://` or `https://`); TLS
    /// trusts the system's roots and, when given, a CA bundle's.
    pub fn new(url: &str, ca: Option<&std::path::Path>) -> Result<Channel, String> {
        let uri: hyper::Uri = url.parse().map_err(|e| format!("not a URL: {e}"))?;
        let host = uri.host().ok_or("the url has no host")?.trim_matches(['[', ']']).to_owned();
        let (tls, default_port) = match uri.scheme_str() {
            Some("http") => (None, 80),
            Some("https") => (Some(connector(ca)?), 443),
            s => {
                return Err(format!(
                    "gRPC goes over http:// or https://, not {}",
                    s.unwrap_or("a URL without a scheme")
                ));
            }
        };
        let port = uri.port_u16().unwrap_or(default_port);
        Ok(Channel { authority: format!("{host}:{port}"), host, port, tls, conn: None })
    }

    async fn connect(&mut self) -> Result<SendRequest<Full<Bytes>>, String> {
        if let Some(c) = &self.conn
            && !c.is_closed()
        {
            return Ok(c.clone());
        }
        let tcp = tokio::net::TcpStream::connect((self.host.as_str(), self.port))
            .await
            .map_err(|e| format!("cannot connect to {}: {e}", self.authority))?;
        let _ = tcp.set_nodelay(true);
        let exec = hyper_util::rt::TokioExecutor::new();
        let (send, conn) = match &self.tls {
            None => {
                let (s, c) = hyper::client::conn::http2::handshake(exec, hyper_util::rt::TokioIo::new(tcp))
                    .await
                    .map_err(|e| format!("HTTP/2 with {}: {e}", self.authority))?;
                (s, tokio::spawn(async move { c.await.map_err(|e| e.to_string()) }))
            }
            Some(tls) => {
                let name = rustls::pki_types::ServerName::try_from(self.host.clone()).map_err(|e| e.to_string())?;
                let stream = tls.connect(name, tcp).await.map_err(|e| format!("TLS with {}: {e}", self.authority))?;
                let (s, c) = hyper::client::conn::http2::handshake(exec, hyper_util::rt::TokioIo::new(stream))
                    .await
                    .map_err(|e| format!("HTTP/2 with {}: {e}", self.authority))?;
                (s, tokio::spawn(async move { c.await.map_err(|e| e.to_string()) }))
            }
        };
        drop(conn);
        self.conn = Some(send.clone());
        Ok(send)
    }

    /// Calls `path` with `msg` (framed here) and extra headers; the
    /// answer's message, or why not. A transport failure drops the
    /// connection, to be made again by the next call.
    pub async fn call(
        &mut self,
        path: &str,
        msg: &[u8],
        headers: &[(&str, String)],
        timeout: std::time::Duration,
    ) -> Result<Bytes, Failure> {
        let r = tokio::time::timeout(timeout, self.call_once(path, msg, headers)).await;
        match r {
            Ok(Ok(b)) => Ok(b),
            Ok(Err(Failure::Transport(e))) => {
                self.conn = None;
                Err(Failure::Transport(e))
            }
            Ok(Err(f)) => Err(f),
            Err(_) => {
                self.conn = None;
                Err(Failure::Transport(format!("no answer from {} within {timeout:?}", self.authority)))
            }
        }
    }

    async fn call_once(&mut self, path: &str, msg: &[u8], headers: &[(&str, String)]) -> Result<Bytes, Failure> {
        let mut send = self.connect().await.map_err(Failure::Transport)?;
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        let mut req = hyper::Request::post(format!("{scheme}://{}{path}", self.authority))
            .header("content-type", "application/grpc")
            .header("te", "trailers")
            .header("user-agent", concat!("vane/", env!("CARGO_PKG_VERSION")));
        for (k, v) in headers {
            req = req.header(*k, v);
        }
        let req = req.body(Full::new(Bytes::from(grpc::frame(msg)))).map_err(|e| Failure::Transport(e.to_string()))?;
        send.ready().await.map_err(|e| Failure::Transport(format!("{}: {e}", self.authority)))?;
        let resp = send.send_request(req).await.map_err(|e| Failure::Transport(format!("{}: {e}", self.authority)))?;
        let http = resp.status();
        let head = resp.headers().clone();
        let collected =
            resp.into_body().collect().await.map_err(|e| Failure::Transport(format!("{}: {e}", self.authority)))?;
        let trailers = collected.trailers().cloned().unwrap_or_default();
        let body = collected.to_bytes();
        let status = trailers.get("grpc-status").or_else(|| head.get("grpc-status"));
        let message = trailers.get("grpc-message").or_else(|| head.get("grpc-message"));
        let message = message.map(|m| percent_decoded(m.as_bytes())).unwrap_or_default();
        match status.and_then(|s| s.to_str().ok()?.parse::<u32>().ok()) {
            Some(grpc::OK) => {
                let (_, m) = grpc::message(&body).map_err(|e| Failure::Status(grpc::INTERNAL, e, None))?;
                Ok(body.slice_ref(m))
            }
            Some(code) => {
                let details = trailers.get("grpc-status-details-bin").or_else(|| head.get("grpc-status-details-bin"));
                Err(Failure::Status(code, message, details.and_then(|d| grpc::retry_delay(d.as_bytes()))))
            }
            None => Err(Failure::Transport(format!("{} answered HTTP {http} without a gRPC status", self.authority))),
        }
    }
}

fn percent_decoded(b: &[u8]) -> String {
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && let Some(v) = std::str::from_utf8(&b[i + 1..i + 3]).ok().and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn connector(ca: Option<&std::path::Path>) -> Result<tokio_rustls::TlsConnector, String> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_native_certs::load_native_certs().certs {
        let _ = roots.add(cert);
    }
    if let Some(ca) = ca {
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(ca)
            .and_then(|i| i.collect())
            .map_err(|e| format!("ca {}: {e}", ca.display()))?;
        for c in certs {
            roots.add(c).map_err(|e| format!("ca {}: {e}", ca.display()))?;
        }
    }
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(tokio_rustls::TlsConnector::from(Arc::new(config)))
}

#[cfg(test)]
mod tests {
    #[test]
    fn messages_are_percent_decoded() {
        assert_eq!(super::percent_decoded(b"bad 100%25 %C3%A9 %zz"), "bad 100% é %zz");
    }
}
