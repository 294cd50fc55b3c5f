//! The HTTP client every plugin that speaks HTTP builds the same way:
//! rustls with the `ring` provider, a timeout, an optional CA bundle, and
//! certificate verification unless switched off; and the one way they read
//! an answer's body: never more than a bound (a backend answering with
//! hundreds of MiB must not take the agent's memory, nor its log).

use std::path::Path;

use vane_core::prelude::*;

/// A client builder with the TLS settings the plugins share.
pub fn builder(
    timeout: std::time::Duration,
    ca: Option<&Path>,
    tls_verify: bool,
) -> Result<reqwest::ClientBuilder, BuildError> {
    // One crypto provider for the process; a second install is harmless.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut b = reqwest::Client::builder().timeout(timeout).tls_danger_accept_invalid_certs(!tls_verify);
    if let Some(ca) = ca {
        let pem = std::fs::read(ca).map_err(|e| BuildError::stop(format!("ca {}: {e}", ca.display())))?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem)
            .map_err(|e| BuildError::stop(format!("ca {}: {e}", ca.display())))?;
        b = b.tls_certs_merge(certs);
    }
    Ok(b)
}

/// A client from a builder, or why not.
pub fn build(b: reqwest::ClientBuilder) -> Result<reqwest::Client, BuildError> {
    b.build().map_err(|e| BuildError::stop(format!("cannot make an HTTP client: {e}")))
}

/// A client with the system's roots and a timeout.
pub fn with_timeout(timeout: Duration) -> Result<reqwest::Client, BuildError> {
    build(builder(timeout.get(), None, true)?)
}

/// How much of an error answer is kept, for the log and the dead letters.
pub const ERROR_BODY: usize = 2 << 10;

/// A body, at most `max` bytes of it; and whether there was more (not read).
pub async fn body_up_to(mut resp: reqwest::Response, max: usize) -> Result<(Vec<u8>, bool), reqwest::Error> {
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await? {
        let room = max - body.len();
        if chunk.len() > room {
            body.extend_from_slice(&chunk[..room]);
            return Ok((body, true));
        }
        body.extend_from_slice(&chunk);
    }
    Ok((body, false))
}

/// The start of an error answer's body, as text: its first [`ERROR_BODY`]
/// bytes, trimmed, saying when the rest was left unread.
pub async fn error_text(resp: reqwest::Response) -> String {
    match body_up_to(resp, ERROR_BODY).await {
        Ok((b, more)) => {
            let text = String::from_utf8_lossy(&b);
            let text = text.trim();
            if more { format!("{text}… (cut at {} KiB)", ERROR_BODY >> 10) } else { text.to_owned() }
        }
        Err(e) => format!("(the answer's body could not be read: {e})"),
    }
}

/// Waits as long as a throttling answer's `Retry-After` (in seconds) asks,
/// at most a minute, before the retry the runtime's backoff then makes.
pub async fn honour_retry_after(headers: &reqwest::header::HeaderMap) {
    let secs = headers.get("Retry-After").and_then(|v| v.to_str().ok()).and_then(|v| v.trim().parse::<u64>().ok());
    if let Some(secs) = secs {
        tokio::time::sleep(std::time::Duration::from_secs(secs.min(60))).await;
    }
}
