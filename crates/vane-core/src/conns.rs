//! The connections a TCP listener serves, the same way for every listener
//! (the `socket`, `influxdb_listener` and `lua_lines` sources, the agent's
//! HTTP port, the prometheus sink's own): at most `max_connections` at once,
//! and when that many are open the one idle longest (for over a second) is
//! closed to make room, so that idle clients cannot lock real ones out; at
//! most `max_per_client` from one address, if set; and an accept loop that
//! backs off (10 ms doubling to 1 s) when the process runs out of file
//! descriptors instead of spinning. A connection's stream is a [`Tracked`]:
//! reading from it marks it active, and it ends when it is evicted.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::task::{Context as TaskContext, Poll, Waker};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

/// A listener's limits.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub max_connections: usize,
    /// Connections from one client address; 0 for no limit.
    pub max_per_client: usize,
}

/// A connection idle for less than this is never evicted: when every
/// connection is busy, a new one is refused instead.
const EVICTABLE: Duration = Duration::from_secs(1);

/// What the listener knows of one open connection.
struct Entry {
    peer: IpAddr,
    /// Last read, in ms since the listener started.
    active: AtomicU64,
    evicted: AtomicBool,
    waker: Mutex<Option<Waker>>,
}

impl Entry {
    fn evict(&self) {
        self.evicted.store(true, Relaxed);
        if let Some(w) = self.waker.lock().expect("not poisoned").take() {
            w.wake();
        }
    }
}

#[derive(Default)]
struct Table {
    next: u64,
    open: HashMap<u64, Arc<Entry>>,
    per_client: HashMap<IpAddr, usize>,
}

/// Why a connection was not admitted (for the listener's warning).
#[derive(Debug, PartialEq, Eq)]
pub enum Refused {
    /// `max_connections` open, none idle enough to close.
    Full(usize),
    /// `max_per_client` open from this address.
    PerClient(usize),
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refused::Full(n) => write!(f, "{n} connections open, none idle: refused"),
            Refused::PerClient(n) => write!(f, "{n} connections from this address already: refused"),
        }
    }
}

/// What an accept loop reports.
#[derive(Debug)]
pub enum Notice {
    /// A new connection was refused.
    Refused(SocketAddr, Refused),
    /// The idle connection of this peer was closed to make room.
    Evicted(SocketAddr),
    /// Accepting failed (out of descriptors…); the loop waits this long.
    Failed(io::Error, Duration),
}

/// A bound listener with its connections.
pub struct Listener {
    tcp: TcpListener,
    limits: Limits,
    started: Instant,
    table: Arc<Mutex<Table>>,
    /// Peers of the open connections, for eviction reports.
    peers: Arc<Mutex<HashMap<u64, SocketAddr>>>,
}

impl Listener {
    pub async fn bind(addr: SocketAddr, limits: Limits) -> io::Result<Listener> {
        let tcp = TcpListener::bind(addr).await?;
        Ok(Listener {
            tcp,
            limits: Limits { max_connections: limits.max_connections.max(1), ..limits },
            started: Instant::now(),
            table: Arc::default(),
            peers: Arc::default(),
        })
    }

    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.tcp.local_addr()
    }

    fn now_ms(started: Instant) -> u64 {
        started.elapsed().as_millis() as u64
    }

    /// The next connection admitted. `report` hears of every refusal,
    /// eviction and accept failure (the loop goes on after each).
    pub async fn accept(&self, report: &mut (dyn FnMut(Notice) + Send)) -> (Tracked<TcpStream>, SocketAddr) {
        let mut wait = Duration::from_millis(10);
        loop {
            let (sock, peer) = match self.tcp.accept().await {
                Ok(a) => a,
                Err(e) => {
                    // EMFILE, ENFILE, ENOBUFS, ENOMEM: nothing to gain by
                    // trying again at once; a connection ending frees one.
                    report(Notice::Failed(e, wait));
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(Duration::from_secs(1));
                    continue;
                }
            };
            wait = Duration::from_millis(10);
            match self.admit(peer) {
                Ok((conn, evicted)) => {
                    if let Some(p) = evicted {
                        report(Notice::Evicted(p));
                    }
                    return (Tracked { inner: sock, conn }, peer);
                }
                Err(why) => report(Notice::Refused(peer, why)),
            }
        }
    }

    fn admit(&self, peer: SocketAddr) -> Result<(Conn, Option<SocketAddr>), Refused> {
        let mut t = self.table.lock().expect("not poisoned");
        let from_peer = t.per_client.get(&peer.ip()).copied().unwrap_or(0);
        if self.limits.max_per_client > 0 && from_peer >= self.limits.max_per_client {
            return Err(Refused::PerClient(from_peer));
        }
        let mut evicted = None;
        if t.open.len() >= self.limits.max_connections {
            let now = Listener::now_ms(self.started);
            let idlest = t
                .open
                .iter()
                .filter(|(_, e)| !e.evicted.load(Relaxed))
                .min_by_key(|(_, e)| e.active.load(Relaxed))
                .map(|(id, e)| (*id, e.clone()));
            match idlest {
                Some((id, e)) if now.saturating_sub(e.active.load(Relaxed)) >= EVICTABLE.as_millis() as u64 => {
                    e.evict();
                    evicted = self.peers.lock().expect("not poisoned").get(&id).copied();
                }
                _ => return Err(Refused::Full(t.open.len())),
            }
        }
        let id = t.next;
        t.next += 1;
        let entry = Arc::new(Entry {
            peer: peer.ip(),
            active: AtomicU64::new(Listener::now_ms(self.started)),
            evicted: AtomicBool::new(false),
            waker: Mutex::new(None),
        });
        t.open.insert(id, entry.clone());
        *t.per_client.entry(peer.ip()).or_default() += 1;
        self.peers.lock().expect("not poisoned").insert(id, peer);
        let conn = Conn { id, entry, started: self.started, table: self.table.clone(), peers: self.peers.clone() };
        Ok((conn, evicted))
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.table.lock().expect("not poisoned").open.len()
    }
}

/// One admitted connection; it leaves the listener's table when dropped.
struct Conn {
    id: u64,
    entry: Arc<Entry>,
    started: Instant,
    table: Arc<Mutex<Table>>,
    peers: Arc<Mutex<HashMap<u64, SocketAddr>>>,
}

impl Drop for Conn {
    fn drop(&mut self) {
        let mut t = self.table.lock().expect("not poisoned");
        t.open.remove(&self.id);
        if let Some(n) = t.per_client.get_mut(&self.entry.peer) {
            *n -= 1;
            if *n == 0 {
                t.per_client.remove(&self.entry.peer);
            }
        }
        self.peers.lock().expect("not poisoned").remove(&self.id);
    }
}

/// A connection's stream: reads mark it active; once evicted, reads fail
/// with `ConnectionAborted`, so whoever serves it lets it go.
pub struct Tracked<S> {
    inner: S,
    conn: Conn,
}

impl<S> Tracked<S> {
    /// Whether the listener closed it to make room.
    pub fn evicted(&self) -> bool {
        self.conn.entry.evicted.load(Relaxed)
    }

    fn aborted() -> io::Error {
        io::Error::new(io::ErrorKind::ConnectionAborted, "closed to make room for a new connection")
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Tracked<S> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut TaskContext<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let e = &this.conn.entry;
        if e.evicted.load(Relaxed) {
            return Poll::Ready(Err(Self::aborted()));
        }
        let before = buf.filled().len();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(r) => {
                if buf.filled().len() > before {
                    e.active.store(Listener::now_ms(this.conn.started), Relaxed);
                }
                Poll::Ready(r)
            }
            Poll::Pending => {
                *e.waker.lock().expect("not poisoned") = Some(cx.waker().clone());
                // Evicted between the check and the registration.
                if e.evicted.load(Relaxed) {
                    return Poll::Ready(Err(Self::aborted()));
                }
                Poll::Pending
            }
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Tracked<S> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut TaskContext<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

/// Raises this process's soft limit of open files to its hard limit (as
/// most servers do: the usual soft 1,024 is soon spent by a busy listener);
/// the limits before and after.
pub fn raise_open_files() -> io::Result<(u64, u64)> {
    let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit and setrlimit read and write the struct given.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return Err(io::Error::last_os_error());
        }
        let before = lim.rlim_cur;
        if lim.rlim_cur < lim.rlim_max {
            lim.rlim_cur = lim.rlim_max;
            if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                return Err(io::Error::last_os_error());
            }
        }
        Ok((before, lim.rlim_cur))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    async fn listener(max: usize, per_client: usize) -> (Listener, SocketAddr) {
        let l =
            Listener::bind("127.0.0.1:0".parse().unwrap(), Limits { max_connections: max, max_per_client: per_client })
                .await
                .unwrap();
        let a = l.local_addr().unwrap();
        (l, a)
    }

    #[tokio::test]
    async fn when_full_the_longest_idle_makes_room_and_a_busy_table_refuses() {
        let (l, addr) = listener(2, 0).await;
        let mut events = Vec::new();
        let _c1 = TcpStream::connect(addr).await.unwrap();
        let (s1, _) = l.accept(&mut |e| events.push(format!("{e:?}"))).await;
        let _c2 = TcpStream::connect(addr).await.unwrap();
        let (s2, _) = l.accept(&mut |e| events.push(format!("{e:?}"))).await;
        // Both fresh: a third is refused until one has been idle a second.
        let _c3 = TcpStream::connect(addr).await.unwrap();
        let _c4 = TcpStream::connect(addr).await.unwrap();
        tokio::time::sleep(EVICTABLE + Duration::from_millis(100)).await;
        let (_s4, _) = l.accept(&mut |e| events.push(format!("{e:?}"))).await;
        assert!(events[0].starts_with("Evicted"), "{events:?}");
        // The one evicted is s1 or s2 (equally idle); its reads now fail.
        let (mut victim, kept) = if s1.evicted() { (s1, s2) } else { (s2, s1) };
        assert!(victim.evicted() && !kept.evicted());
        let mut b = [0u8; 1];
        assert_eq!(victim.read(&mut b).await.unwrap_err().kind(), io::ErrorKind::ConnectionAborted);
        drop(victim);
        assert_eq!(l.open(), 2);
    }

    #[tokio::test]
    async fn a_client_over_its_limit_is_refused() {
        let (l, addr) = listener(10, 1).await;
        let mut refused = 0;
        let _c1 = TcpStream::connect(addr).await.unwrap();
        let (_s1, _) = l.accept(&mut |_| {}).await;
        let _c2 = TcpStream::connect(addr).await.unwrap();
        let got = tokio::time::timeout(
            Duration::from_millis(300),
            l.accept(&mut |e| {
                assert!(matches!(e, Notice::Refused(_, Refused::PerClient(1))), "{e:?}");
                refused += 1;
            }),
        )
        .await;
        assert!(got.is_err(), "the second connection from 127.0.0.1 was admitted");
        assert_eq!(refused, 1);
    }

    #[test]
    fn the_open_files_limit_is_raised_to_the_hard_one() {
        let (_, after) = raise_open_files().unwrap();
        let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
        // SAFETY: getrlimit writes the struct given.
        assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) }, 0);
        assert_eq!((after, lim.rlim_cur), (lim.rlim_max, lim.rlim_max));
    }
}
