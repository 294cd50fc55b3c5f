//! One AMQP 0.9.1 connection and its channel: the URL (`amqp://` or
//! `amqps://`, credentials in it, secrets from `${ENV}`), a heartbeat, a
//! timeout, a CA bundle to trust for amqps, and a connection name the broker's management shows: `vane`,
//! the agent's host and the job.

use lapin::options::ConfirmSelectOptions;
use lapin::tcp::OwnedTLSConfig;
use lapin::types::ShortString;
use lapin::{Channel, Connection, ConnectionProperties};
use serde::Deserialize;
use vane_core::prelude::*;
use vane_core::url::Url;

fn default_url() -> Url {
    Url::new("amqp://guest:guest@127.0.0.1:5672/%2f")
}

/// How to reach the broker: the part of the config the sink and source share.
#[derive(Deserialize, Debug, Clone)]
#[serde(deny_unknown_fields)]
pub struct Broker {
    /// `amqp[s]://USER:PASSWORD@HOST:PORT/VHOST`. Default: guest on
    /// 127.0.0.1:5672, vhost `/`.
    #[serde(default = "default_url")]
    pub url: Url,
    /// Heartbeat interval asked of the broker; 0s turns heartbeats off. Default: 30s.
    #[serde(default = "crate::defaults::thirty_seconds")]
    pub heartbeat: Duration,
    /// Longest wait to connect, and for the broker to confirm a batch. Default: 30s.
    #[serde(default = "crate::defaults::thirty_seconds")]
    pub timeout: Duration,
    /// A CA bundle (PEM) to trust besides the system's, for amqps.
    pub ca: Option<std::path::PathBuf>,
}

/// An open connection and the channel the plugin uses on it.
pub struct Link {
    /// Kept for as long as the channel: dropping it closes the connection.
    pub conn: Connection,
    pub channel: Channel,
}

impl Broker {
    /// The URL as lapin reads it, with the heartbeat added unless the URL sets one.
    fn uri(&self) -> String {
        let raw = self.url.expose();
        if raw.contains("heartbeat=") {
            return raw.to_owned();
        }
        let sep = if raw.contains('?') { '&' } else { '?' };
        format!("{raw}{sep}heartbeat={}", self.heartbeat.get().as_secs())
    }

    /// Refuses a URL lapin cannot read, or a CA bundle that does not read,
    /// at build time.
    pub fn check(&self) -> Result<(), BuildError> {
        self.uri().parse::<lapin::uri::AMQPUri>().map_err(|e| BuildError::stop(format!("url {}: {e}", self.url)))?;
        self.tls().map(drop).map_err(BuildError::stop)
    }

    /// The TLS settings: the CA bundle, read at each connect (a renewed one
    /// is taken without a restart).
    fn tls(&self) -> Result<OwnedTLSConfig, String> {
        let Some(ca) = &self.ca else { return Ok(OwnedTLSConfig::default()) };
        let pem = std::fs::read_to_string(ca).map_err(|e| format!("ca {}: {e}", ca.display()))?;
        if !pem.contains("-----BEGIN CERTIFICATE-----") {
            return Err(format!("ca {}: no PEM certificate in it", ca.display()));
        }
        Ok(OwnedTLSConfig { identity: None, cert_chain: Some(pem) })
    }

    /// Connects and opens a channel, with publisher confirms on.
    pub async fn open(&self, ctx: &Context) -> Result<Link, String> {
        let name = format!("vane {} {}", ctx.host(), ctx.job());
        let props = ConnectionProperties::default().with_connection_name(name.into());
        let at = &self.url;
        let limit = self.timeout.get();
        let tls = self.tls().map_err(|e| format!("AMQP broker at {at}: {e}"))?;
        let opened = async {
            let runtime = lapin::runtime::default_runtime()?;
            let conn = Connection::connect_with_config(&self.uri(), props, tls, runtime).await?;
            let channel = conn.create_channel().await?;
            channel.confirm_select(ConfirmSelectOptions::default()).await?;
            Ok::<_, lapin::Error>(Link { conn, channel })
        };
        match tokio::time::timeout(limit, opened).await {
            Ok(Ok(link)) => Ok(link),
            Ok(Err(e)) => Err(format!("AMQP broker at {at}: {e}")),
            Err(_) => Err(format!("AMQP broker at {at}: no connection within {limit:?}")),
        }
    }
}

/// A name the protocol can carry (at most 255 bytes), or why not.
pub fn short(what: &str, s: &str) -> Result<ShortString, String> {
    ShortString::try_new(s).map_err(|_| format!("{what} {s:?} is longer than AMQP's 255 bytes"))
}

/// `s` cut to at most 255 bytes, at a character boundary.
pub fn clipped(s: &str) -> ShortString {
    let mut end = s.len().min(255);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    ShortString::try_new(&s[..end]).expect("at most 255 bytes")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn broker(url: &str) -> Broker {
        Broker { url: Url::new(url), heartbeat: Duration::from_secs(30), timeout: Duration::from_secs(30), ca: None }
    }

    #[test]
    fn the_heartbeat_joins_the_url_unless_it_has_one() {
        assert_eq!(broker("amqp://127.0.0.1:5672/%2f").uri(), "amqp://127.0.0.1:5672/%2f?heartbeat=30");
        assert_eq!(broker("amqp://h/v?frame_max=8192").uri(), "amqp://h/v?frame_max=8192&heartbeat=30");
        assert_eq!(broker("amqp://h/v?heartbeat=5").uri(), "amqp://h/v?heartbeat=5");
        assert!(broker("amqp://u:secret@127.0.0.1:5672/%2f").check().is_ok());
        let err = broker("http://127.0.0.1/").check().unwrap_err().to_string();
        assert!(err.contains("url") && !err.contains("secret"), "{err}");
    }

    #[test]
    fn long_names_are_refused_or_clipped_on_a_character() {
        assert!(short("routing key", &"k".repeat(256)).unwrap_err().contains("255 bytes"));
        let s = format!("{}é", "a".repeat(254));
        assert_eq!(clipped(&s).as_str().len(), 254);
    }
}
