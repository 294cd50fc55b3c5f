//! Listen addresses in configs, checked when the config is read (so `vane
//! check` refuses what could never bind): `[tcp://|udp://]HOST:PORT`,
//! where HOST is an IP address (`[…]` for IPv6) or `localhost`. An empty
//! host is refused rather than guessed: `127.0.0.1` listens on this machine
//! only, `0.0.0.0` on every interface, and which is meant must be said.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::str::FromStr;

use serde::Deserialize;

use crate::invalid::Invalid;

/// The protocol an address names, when it names one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scheme {
    Tcp,
    Udp,
}

/// A listen address: an optional scheme and a socket address.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct Listen {
    pub scheme: Option<Scheme>,
    pub addr: SocketAddr,
}

/// A listen address that must be TCP (`tcp://` or no scheme), refused at
/// load otherwise: an HTTP port given `udp://`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(try_from = "Listen")]
pub struct TcpListen(pub Listen);

impl TryFrom<Listen> for TcpListen {
    type Error = Invalid;
    fn try_from(l: Listen) -> Result<TcpListen, Invalid> {
        l.only(Scheme::Tcp)?;
        Ok(TcpListen(l))
    }
}

impl Listen {
    /// The address on loopback at `port`.
    pub fn local(port: u16) -> Listen {
        Listen { scheme: None, addr: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port) }
    }

    /// Refuses a scheme other than `want` (a TCP listener given `udp://`).
    pub fn only(&self, want: Scheme) -> Result<SocketAddr, Invalid> {
        match self.scheme {
            Some(s) if s != want => Err(Invalid(format!("{self}: this listener takes {} only", scheme_name(want)))),
            _ => Ok(self.addr),
        }
    }
}

fn scheme_name(s: Scheme) -> &'static str {
    match s {
        Scheme::Tcp => "tcp",
        Scheme::Udp => "udp",
    }
}

impl FromStr for Listen {
    type Err = Invalid;

    fn from_str(s: &str) -> Result<Listen, Invalid> {
        let bad = |why: &str| Invalid(format!("listen address {s:?}: {why}"));
        let (scheme, rest) = match s.split_once("://") {
            Some(("tcp", r)) => (Some(Scheme::Tcp), r),
            Some(("udp", r)) => (Some(Scheme::Udp), r),
            Some((p, _)) => return Err(bad(&format!("unknown protocol {p:?} (tcp:// or udp://)"))),
            None => (None, s),
        };
        let (host, port) = rest.rsplit_once(':').ok_or_else(|| bad("expected HOST:PORT"))?;
        let port: u16 = port.parse().map_err(|_| bad("the port is not a number from 0 to 65535"))?;
        let ip: IpAddr = match host {
            "" => return Err(bad("no host: write 127.0.0.1 for this machine only, or 0.0.0.0 for every interface")),
            "localhost" => IpAddr::V4(Ipv4Addr::LOCALHOST),
            h if h.starts_with('[') && h.ends_with(']') => {
                h[1..h.len() - 1].parse().map_err(|_| bad("not an IPv6 address between the brackets"))?
            }
            h => h.parse().map_err(|_| bad("the host must be an IP address or localhost"))?,
        };
        Ok(Listen { scheme, addr: SocketAddr::new(ip, port) })
    }
}

crate::invalid::read_from_text!(Listen);

impl fmt::Display for Listen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.scheme {
            Some(s) => write!(f, "{}://{}", scheme_name(s), self.addr),
            None => write!(f, "{}", self.addr),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_can_bind_and_refuses_the_rest_saying_why() {
        let ok = |s: &str| s.parse::<Listen>().unwrap().to_string();
        assert_eq!(ok("tcp://127.0.0.1:8094"), "tcp://127.0.0.1:8094");
        assert_eq!(ok("udp://0.0.0.0:8125"), "udp://0.0.0.0:8125");
        assert_eq!(ok("localhost:80"), "127.0.0.1:80");
        assert_eq!(ok("[::1]:9000"), "[::1]:9000");
        let err = |s: &str| s.parse::<Listen>().unwrap_err().0;
        assert!(err("tcp://:23502").contains("no host"));
        assert!(err("sctp://1.2.3.4:1").contains("unknown protocol"));
        assert!(err("127.0.0.1").contains("HOST:PORT"));
        assert!(err("127.0.0.1:99999").contains("port"));
        assert!(err("example.com:80").contains("IP address or localhost"));
        assert!(err("[zz]:1").contains("IPv6"));
        let udp: Listen = "udp://127.0.0.1:1".parse().unwrap();
        assert!(udp.only(Scheme::Tcp).unwrap_err().contains("tcp only"));
        assert!(udp.only(Scheme::Udp).is_ok());
    }
}
