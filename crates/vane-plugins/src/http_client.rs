//! The HTTP client every plugin that speaks HTTP builds the same way:
//! rustls with the `ring` provider, a timeout, an optional CA bundle, and
//! certificate verification unless switched off.

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
