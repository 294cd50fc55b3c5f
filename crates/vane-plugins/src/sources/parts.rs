//! A connection's bytes decoded on several threads with the connection's
//! order kept, for any framing of records (line protocol's, or one line a
//! record).
//!
//! While the connection brings bytes faster than one thread decodes them,
//! its buffer is cut into parts of whole records, each decoded on a
//! blocking thread while the next bytes are read; results are taken in the
//! order the parts were cut. A part starts where a record starts. Where a
//! record may hold line feeds (line protocol's strings), a cut may fall
//! inside one, and then the part's last record is not whole: that record's
//! bytes, and those of every part cut after it (whose results are dropped,
//! as they began inside it), go back to the buffer, and the connection
//! decodes on its own task for a while. A trickle of bytes (less than
//! [`SMALL`] once no more are waiting) is decoded on the connection's task
//! as it arrives.

use std::collections::VecDeque;
use std::net::SocketAddr;

use tokio::task::JoinHandle;
use vane_core::lineproto::{Decoded, Part, Records};
use vane_core::prelude::*;

use super::listen::{bad_line, now_ns, read_some};

/// Bytes a part holds at least while more bytes are waiting (less in
/// tests, so that a test's stream makes many parts).
pub(super) const PART: usize = if cfg!(test) { 16 << 10 } else { 256 << 10 };

/// Bytes a part holds at least once no more are waiting; less is decoded
/// on the connection's task.
const SMALL: usize = if cfg!(test) { 2 << 10 } else { 32 << 10 };

/// Reads after a part that did not end where a record ends, during which
/// the connection is decoded on its own task.
const CALM: usize = 16;

/// Parts decoded at once for one connection.
fn in_flight() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get()).clamp(2, 8)
}

/// How a stream's bytes are cut into records, decoded, and numbered.
pub(super) trait Framing: Send {
    /// Whole records cut from the front of the buffer.
    type Part: Send + 'static;
    /// What a part came to.
    type Done: Send + 'static;

    /// Where the next bytes read go (appended).
    fn buffer(&mut self) -> &mut Vec<u8>;
    /// The whole records at the front once the buffer holds at least `min`
    /// bytes; `None` otherwise, or while an overlong record is dropped.
    fn split_off(&mut self, min: usize) -> Option<Self::Part>;
    /// Decodes a part, on any thread; points without a timestamp get `now`.
    fn decode_part(part: Self::Part, now: i64) -> Self::Done;
    /// Whether the part's last record went on past its end.
    fn cut_short(done: &Self::Done) -> bool;
    /// A part's bytes, for a part whose result does not count.
    fn into_bytes(done: Self::Done) -> Vec<u8>;
    /// Takes a part in stream order, with the bytes of the parts cut after
    /// it when it was cut short: its events, its bad records given to `bad`
    /// with their line numbers in the stream.
    fn take_part(&mut self, done: Self::Done, later: Vec<Vec<u8>>, bad: &mut dyn FnMut(u64, String)) -> Vec<Event>;
    /// Decodes here the records the buffer holds whole; with `end`, the rest too.
    fn decode_here(&mut self, end: bool, now: i64, out: &mut Vec<Event>, bad: &mut dyn FnMut(u64, String));
    /// Lines read so far.
    fn lines_read(&self) -> u64;
}

impl Framing for Records {
    type Part = Part;
    type Done = Decoded;

    fn buffer(&mut self) -> &mut Vec<u8> {
        Records::buffer(self)
    }

    fn split_off(&mut self, min: usize) -> Option<Part> {
        self.split_off_part(min)
    }

    fn decode_part(part: Part, now: i64) -> Decoded {
        part.decode(now)
    }

    fn cut_short(done: &Decoded) -> bool {
        done.cut_short()
    }

    fn into_bytes(done: Decoded) -> Vec<u8> {
        done.into_bytes()
    }

    fn take_part(&mut self, mut d: Decoded, later: Vec<Vec<u8>>, bad: &mut dyn FnMut(u64, String)) -> Vec<Event> {
        self.take(&mut d, later);
        for e in &d.errors {
            bad(e.line as u64, format!("column {}: {}", e.column, e.message));
        }
        d.events
    }

    fn decode_here(&mut self, end: bool, now: i64, out: &mut Vec<Event>, bad: &mut dyn FnMut(u64, String)) {
        self.decode(end, now, |r| match r {
            Ok(e) => out.push(e),
            Err(e) => bad(e.line as u64, format!("column {}: {}", e.column, e.message)),
        });
    }

    fn lines_read(&self) -> u64 {
        Records::lines_read(self) as u64
    }
}

/// Where a stream's records go once decoded, in the stream's order.
pub(super) trait Out: Send {
    /// The time points without one get, for records decoded now.
    fn now(&self) -> i64;
    /// Takes the next events; false ends the stream there (what is read
    /// and not taken yet is dropped).
    fn take(&mut self, events: Vec<Event>) -> impl Future<Output = bool> + Send;
    /// A bad record, by its line number in the stream.
    fn bad(&mut self, line: u64, why: String);
}

/// A connection's events sent on as they come, each bad line logged with
/// the peer's address.
pub(super) struct Emit<'a> {
    pub ctx: &'a Context,
    pub peer: SocketAddr,
}

impl Out for Emit<'_> {
    fn now(&self) -> i64 {
        now_ns()
    }

    async fn take(&mut self, events: Vec<Event>) -> bool {
        self.ctx.emit_all(events).await;
        true
    }

    fn bad(&mut self, line: u64, why: String) {
        bad_line(self.ctx, &self.peer, line, &why)
    }
}

/// Reads a stream until it ends, idles past `idle`, the agent stops, or
/// `out` takes no more, decoding it by `framing`.
pub(super) async fn serve<F: Framing>(
    mut sock: impl tokio::io::AsyncRead + Unpin,
    peer: &(dyn std::fmt::Display + Sync),
    ctx: &Context,
    idle: std::time::Duration,
    mut framing: F,
    mut out: impl Out,
) {
    let mut parts: VecDeque<JoinHandle<F::Done>> = VecDeque::new();
    let (most, mut calm, mut eof) = (in_flight(), 0usize, false);
    // The last read filled the buffer's room: more bytes are likely waiting.
    let mut busy = false;
    let mut here = Vec::new();
    loop {
        if calm == 0 {
            while parts.len() < most {
                let Some(part) = framing.split_off(if busy { PART } else { SMALL }) else { break };
                let now = out.now();
                parts.push_back(tokio::task::spawn_blocking(move || F::decode_part(part, now)));
            }
        }
        if parts.is_empty() && (eof || !busy || calm > 0) {
            // Nothing decoding elsewhere, and no more bytes waiting (or the
            // connection is calm): what is here is decoded here.
            framing.decode_here(eof, out.now(), &mut here, &mut |n, why| out.bad(n, why));
            if !here.is_empty() {
                // The next read likely brings as many: no growing from empty.
                let cap = here.len();
                if !out.take(std::mem::replace(&mut here, Vec::with_capacity(cap))).await {
                    return;
                }
            }
            if eof {
                return;
            }
        }
        let readable = !eof && parts.len() < most;
        tokio::select! {
            end = read_some(&mut sock, framing.buffer(), peer, ctx, idle), if readable => {
                eof = end;
                let b = framing.buffer();
                busy = b.len() == b.capacity();
                calm = calm.saturating_sub(1);
            }
            done = oldest(&mut parts), if !parts.is_empty() => {
                let Ok(d) = done else {
                    // A part's decoding panicked: what it held is lost, said as one bad line.
                    out.bad(framing.lines_read() + 1, "a part of the stream could not be decoded".to_owned());
                    continue;
                };
                let mut later = Vec::new();
                if F::cut_short(&d) {
                    for h in parts.drain(..) {
                        if let Ok(l) = h.await {
                            later.push(F::into_bytes(l));
                        }
                    }
                    calm = CALM;
                }
                let events = framing.take_part(d, later, &mut |n, why| out.bad(n, why));
                if !events.is_empty() && !out.take(events).await {
                    return;
                }
            }
        }
    }
}

/// The part cut first, once decoded.
async fn oldest<T>(parts: &mut VecDeque<JoinHandle<T>>) -> Result<T, tokio::task::JoinError> {
    match parts.front_mut() {
        Some(h) => {
            let r = h.await;
            parts.pop_front();
            r
        }
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use crate::sources::through_socket::through_socket;

    /// Many parts' worth of Graphite lines, some bad: all in order, the bad counted.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_fast_graphite_connection_is_decoded_in_parts_in_order() {
        let (n, mut text) = (40_000u64, Vec::new());
        for i in 0..n {
            let line = if i % 997 == 0 { format!("bad.{i}\n") } else { format!("m.h{}.seq {i} 1700000000\n", i % 3) };
            text.extend_from_slice(line.as_bytes());
        }
        let sent: Vec<f64> = (0..n).filter(|i| i % 997 != 0).map(|i| i as f64).collect();
        let (h, got) = through_socket("format: graphite", text, sent.len()).await;
        let values: Vec<f64> = got.iter().filter_map(|e| e.get_field("value")?.as_f64()).collect();
        assert!(values == sent, "events out of order or lost: {} of {}", values.len(), sent.len());
        assert_eq!(h.stats().bad_lines.load(std::sync::atomic::Ordering::Relaxed), n.div_ceil(997));
    }

    /// Many parts' worth of records over one connection, some bad, some with
    /// line feeds in their strings (so that cuts fall inside records): every
    /// good one arrives once, in the order sent, and every bad one is counted.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_fast_connection_is_decoded_in_parts_in_order() {
        let (n, mut text, mut bad) = (60_000u64, Vec::new(), 0u64);
        for i in 0..n {
            let line = match i {
                _ if i % 997 == 0 => {
                    bad += 1;
                    format!("bad{i} v=\n")
                }
                _ if i % 7 == 0 => format!("m,host=h{} seq={i}i,s=\"a\nb\nc\" {i}\n", i % 3),
                _ => format!("m,host=h{} seq={i}i,pad=\"{}\" {i}\n", i % 3, "x".repeat((i % 50) as usize)),
            };
            text.extend_from_slice(line.as_bytes());
        }
        assert!(text.len() > 8 * super::PART, "{} bytes", text.len());
        let (h, got) = through_socket("", text, (n - bad) as usize).await;
        let seqs: Vec<i64> =
            got.iter().filter_map(|e| e.get_field("seq").and_then(|v| v.as_f64())).map(|f| f as i64).collect();
        let sent: Vec<i64> = (0..n as i64).filter(|i| i % 997 != 0).collect();
        assert_eq!(seqs.len(), sent.len());
        assert!(seqs == sent, "events out of order or lost");
        assert!(
            got.iter()
                .filter(|e| e.get_field("s").is_some())
                .all(|e| e.get_field("s").and_then(|v| v.as_str()) == Some("a\nb\nc"))
        );
        assert_eq!(h.stats().bad_lines.load(std::sync::atomic::Ordering::Relaxed), bad);
    }
}
