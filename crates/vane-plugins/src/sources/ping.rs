//! The `ping` source: ICMP echo to each host, reporting packets sent and
//! received, loss and round-trip times (min, avg, max, stddev, in ms).
//!
//! It uses an unprivileged ICMP datagram socket where the kernel allows it
//! (`net.ipv4.ping_group_range` includes the agent's group) and a raw
//! socket otherwise (root, or `CAP_NET_RAW`). IPv4 only.

use std::net::{Ipv4Addr, SocketAddr, ToSocketAddrs};
use std::time::Instant;

use serde::Deserialize;
use vane_core::prelude::*;

fn three() -> u32 {
    3
}

fn two_hundred_ms() -> Duration {
    Duration(std::time::Duration::from_millis(200))
}

/// Settings of the `ping` source.
#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct PingConfig {
    /// Host names or IPv4 addresses.
    pub hosts: Vec<String>,
    /// Echo requests per host and poll. Default: 3.
    #[serde(default = "three")]
    pub count: u32,
    /// Between two requests. Default: 200ms.
    #[serde(default = "two_hundred_ms")]
    pub ping_interval: Duration,
    /// How long to wait for the replies after the last request. Default: 1s.
    #[serde(default = "crate::defaults::one_second")]
    pub timeout: Duration,
}

pub struct Ping {
    cfg: PingConfig,
}

impl Source for Ping {
    async fn poll(&mut self, _: &Context) -> Result<Vec<Event>> {
        let mut tasks = Vec::new();
        for (i, host) in self.cfg.hosts.iter().enumerate() {
            let (host, count) = (host.clone(), self.cfg.count);
            let (every, wait) = (self.cfg.ping_interval.get(), self.cfg.timeout.get());
            // Each host its own identifier, so concurrent raw sockets tell replies apart.
            let ident = (std::process::id() as u16).wrapping_add(i as u16 * 7919);
            tasks.push(tokio::task::spawn_blocking(move || {
                let r = ping_host(&host, count, every, wait, ident);
                (host, r)
            }));
        }
        let mut out = Vec::new();
        for t in tasks {
            let (host, r) = t.await.map_err(|e| format!("ping task: {e}"))?;
            let mut e = Event::new("ping").tag("url", host);
            match r {
                Ok(rtts) => {
                    let s = Stats::of(self.cfg.count, &rtts);
                    e = e
                        .field("sent", i64::from(s.sent))
                        .field("received", i64::from(s.received))
                        .field("loss_percent", s.loss);
                    if let Some((min, avg, max, sd)) = s.rtt {
                        e = e
                            .field("rtt_min_ms", min)
                            .field("rtt_avg_ms", avg)
                            .field("rtt_max_ms", max)
                            .field("rtt_stddev_ms", sd);
                    }
                    e = e.field("up", i64::from(s.received > 0));
                    e.state = Some(if s.received > 0 { State::Ok } else { State::Critical });
                }
                Err(why) => {
                    e = e.field("up", 0i64);
                    e.state = Some(State::Critical);
                    e.description = Some(why);
                }
            }
            out.push(e);
        }
        Ok(out)
    }
}

impl Build for Ping {
    type Config = PingConfig;

    fn build(cfg: PingConfig, _: &Context) -> Result<Self, BuildError> {
        if cfg.hosts.is_empty() {
            return Err(BuildError::stop("hosts: name at least one"));
        }
        if cfg.count == 0 {
            return Err(BuildError::stop("count: must be at least 1"));
        }
        Ok(Ping { cfg })
    }
}

/// What a run of echoes came to.
#[derive(Debug, PartialEq)]
pub struct Stats {
    pub sent: u32,
    pub received: u32,
    pub loss: f64,
    /// min, avg, max, population standard deviation, in ms.
    pub rtt: Option<(f64, f64, f64, f64)>,
}

impl Stats {
    pub fn of(sent: u32, rtts_ms: &[f64]) -> Stats {
        let n = rtts_ms.len();
        let received = n as u32;
        let loss = 100.0 * f64::from(sent - received.min(sent)) / f64::from(sent.max(1));
        let rtt = (n > 0).then(|| {
            let min = rtts_ms.iter().copied().fold(f64::INFINITY, f64::min);
            let max = rtts_ms.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let avg = rtts_ms.iter().sum::<f64>() / n as f64;
            let var = rtts_ms.iter().map(|r| (r - avg).powi(2)).sum::<f64>() / n as f64;
            (min, avg, max, var.sqrt())
        });
        Stats { sent, received, loss, rtt }
    }
}

fn checksum(b: &[u8]) -> u16 {
    let mut sum = 0u32;
    for c in b.chunks(2) {
        let w = if c.len() == 2 { u16::from_be_bytes([c[0], c[1]]) } else { u16::from(c[0]) << 8 };
        sum += u32::from(w);
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// An echo request: type 8, code 0, then our identifier, sequence and payload.
fn echo_request(ident: u16, seq: u16) -> [u8; 24] {
    let mut p = [0u8; 24];
    p[0] = 8;
    p[4..6].copy_from_slice(&ident.to_be_bytes());
    p[6..8].copy_from_slice(&seq.to_be_bytes());
    p[8..16].copy_from_slice(b"vane-png");
    p[16..24].copy_from_slice(&u64::from(ident).to_be_bytes());
    let c = checksum(&p);
    p[2..4].copy_from_slice(&c.to_be_bytes());
    p
}

struct Sock(i32, bool);

impl Drop for Sock {
    fn drop(&mut self) {
        // SAFETY: the descriptor is ours and closed once.
        unsafe { libc::close(self.0) };
    }
}

fn open() -> std::result::Result<Sock, String> {
    // SAFETY: plain socket(2) calls; the result is checked.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM, libc::IPPROTO_ICMP) };
    if fd >= 0 {
        return Ok(Sock(fd, false));
    }
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_RAW, libc::IPPROTO_ICMP) };
    if fd >= 0 {
        return Ok(Sock(fd, true));
    }
    Err(format!(
        "cannot open an ICMP socket ({}): allow the agent's group in net.ipv4.ping_group_range, or give it CAP_NET_RAW",
        std::io::Error::last_os_error()
    ))
}

fn ping_host(
    host: &str,
    count: u32,
    every: std::time::Duration,
    wait: std::time::Duration,
    ident: u16,
) -> std::result::Result<Vec<f64>, String> {
    let addr: Ipv4Addr = (host, 0)
        .to_socket_addrs()
        .map_err(|e| format!("{host}: {e}"))?
        .find_map(|a| match a {
            SocketAddr::V4(v4) => Some(*v4.ip()),
            SocketAddr::V6(_) => None,
        })
        .ok_or_else(|| format!("{host}: no IPv4 address"))?;
    let sock = open()?;
    let dest = libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: 0,
        sin_addr: libc::in_addr { s_addr: u32::from(addr).to_be() },
        sin_zero: [0; 8],
    };
    let mut sent_at: Vec<Option<Instant>> = vec![None; count as usize];
    let mut rtts = Vec::new();
    let mut got = vec![false; count as usize];
    let start = Instant::now();
    let mut next = 0u32;
    let mut buf = [0u8; 2048];
    loop {
        let now = Instant::now();
        if next < count && now >= start + every * next {
            let p = echo_request(ident, next as u16);
            // SAFETY: p and dest outlive the call; lengths are theirs.
            let n = unsafe {
                libc::sendto(
                    sock.0,
                    p.as_ptr().cast(),
                    p.len(),
                    0,
                    (&raw const dest).cast(),
                    std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
                )
            };
            if n < 0 {
                return Err(format!("{host}: {}", std::io::Error::last_os_error()));
            }
            sent_at[next as usize] = Some(Instant::now());
            next += 1;
            continue;
        }
        let deadline = if next < count { start + every * next } else { start + every * (count - 1) + wait };
        if now >= deadline {
            if next >= count {
                break;
            }
            continue;
        }
        if rtts.len() == count as usize {
            break;
        }
        let left = deadline - now;
        let tv = libc::timeval {
            tv_sec: left.as_secs() as libc::time_t,
            tv_usec: left.subsec_micros().max(1) as libc::suseconds_t,
        };
        // SAFETY: tv is a valid timeval for SO_RCVTIMEO.
        unsafe {
            libc::setsockopt(
                sock.0,
                libc::SOL_SOCKET,
                libc::SO_RCVTIMEO,
                (&raw const tv).cast(),
                std::mem::size_of::<libc::timeval>() as libc::socklen_t,
            )
        };
        // SAFETY: buf is writable for its length.
        let n = unsafe { libc::recv(sock.0, buf.as_mut_ptr().cast(), buf.len(), 0) };
        if n <= 0 {
            continue; // timed out or interrupted: the loop checks the time
        }
        let mut b = &buf[..n as usize];
        if sock.1 {
            // A raw socket hands over the IP header too.
            let ihl = usize::from(b[0] & 0x0f) * 4;
            if b.len() < ihl {
                continue;
            }
            b = &b[ihl..];
        }
        if b.len() < 16 || b[0] != 0 || &b[8..16] != b"vane-png" {
            continue; // not our echo reply
        }
        if sock.1 && u16::from_be_bytes([b[4], b[5]]) != ident {
            continue; // another pinger's reply
        }
        let seq = usize::from(u16::from_be_bytes([b[6], b[7]]));
        if let Some(Some(at)) = sent_at.get(seq)
            && !got[seq]
        {
            got[seq] = true;
            rtts.push(at.elapsed().as_secs_f64() * 1000.0);
        }
    }
    Ok(rtts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_of_replies() {
        let s = Stats::of(4, &[1.0, 3.0]);
        assert_eq!((s.sent, s.received, s.loss), (4, 2, 50.0));
        assert_eq!(s.rtt, Some((1.0, 2.0, 3.0, 1.0)));
        assert_eq!(Stats::of(3, &[]).loss, 100.0);
        assert_eq!(Stats::of(3, &[]).rtt, None);
    }

    #[test]
    fn echo_requests_carry_a_valid_checksum() {
        let p = echo_request(0x1234, 7);
        assert_eq!(checksum(&p), 0, "a packet with its checksum sums to zero");
        assert_eq!((p[0], &p[4..8]), (8, &[0x12, 0x34, 0, 7][..]));
    }
}
