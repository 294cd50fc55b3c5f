//! Line protocol from one connection, decoded on several threads with the
//! connection's order kept.
//!
//! While the connection brings bytes faster than one thread decodes them,
//! its buffer is cut into parts of whole lines, each decoded on a blocking
//! thread while the next bytes are read; results are taken in the order
//! the parts were cut. A part starts where a record starts; a line feed it
//! ends at may be inside a string, and then its last record is not whole:
//! that record's bytes, and those of every part cut after it (whose results
//! are dropped, as they began inside it), go back to the buffer, and the
//! connection decodes on its own task for a while. A trickle of bytes (less
//! than [`SMALL`] once no more are waiting) is decoded on the connection's
//! task as it arrives.

use std::collections::VecDeque;
use std::net::SocketAddr;

use tokio::task::JoinHandle;
use vane_core::lineproto::{Decoded, Precision, Records};
use vane_core::prelude::*;

use super::listen::{bad_line, hand_on, now_ns, read_some};

/// Bytes a part holds at least while more bytes are waiting (less in
/// tests, so that a test's stream makes many parts).
const PART: usize = if cfg!(test) { 16 << 10 } else { 256 << 10 };

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

/// Reads line protocol from a stream until it ends, idles past `idle`, or
/// the agent stops: a record may hold line feeds inside its strings and may
/// arrive over several reads.
pub(super) async fn serve_records(
    mut sock: impl tokio::io::AsyncRead + Unpin,
    peer: SocketAddr,
    precision: Precision,
    ctx: &Context,
    max_record: usize,
    idle: std::time::Duration,
) {
    let mut records = Records::new(precision, max_record);
    let mut parts: VecDeque<JoinHandle<Decoded>> = VecDeque::new();
    let (most, mut calm, mut eof) = (in_flight(), 0usize, false);
    // The last read filled the buffer's room: more bytes are likely waiting.
    let mut busy = false;
    let mut out = Vec::new();
    loop {
        if calm == 0 {
            while parts.len() < most {
                let Some(part) = records.split_off_part(if busy { PART } else { SMALL }) else { break };
                let now = now_ns();
                parts.push_back(tokio::task::spawn_blocking(move || part.decode(now)));
            }
        }
        if parts.is_empty() && (eof || !busy || calm > 0) {
            // Nothing decoding elsewhere, and no more bytes waiting (or the
            // connection is calm): what is here is decoded here.
            records.decode(eof, now_ns(), |r| match r {
                Ok(e) => out.push(e),
                Err(e) => bad_line(ctx, &peer, e.line as u64, &format!("column {}: {}", e.column, e.message)),
            });
            hand_on(ctx, &mut out, true).await;
            if eof {
                return;
            }
        }
        let readable = !eof && parts.len() < most;
        tokio::select! {
            end = read_some(&mut sock, records.buffer(), peer, ctx, idle), if readable => {
                eof = end;
                let b = records.buffer();
                busy = b.len() == b.capacity();
                calm = calm.saturating_sub(1);
            }
            done = oldest(&mut parts), if !parts.is_empty() => {
                let Ok(mut d) = done else {
                    // A part's decoding panicked: what it held is lost, said as one bad line.
                    bad_line(ctx, &peer, records.lines_read() as u64 + 1, "a part of the stream could not be decoded");
                    continue;
                };
                let cut_short = d.cut_short();
                let mut later = Vec::new();
                if cut_short {
                    for h in parts.drain(..) {
                        if let Ok(l) = h.await {
                            later.push(l.into_bytes());
                        }
                    }
                    calm = CALM;
                }
                records.take(&mut d, later);
                for e in &d.errors {
                    bad_line(ctx, &peer, e.line as u64, &format!("column {}: {}", e.column, e.message));
                }
                if !d.events.is_empty() {
                    ctx.emit_all(std::mem::take(&mut d.events)).await;
                }
            }
        }
    }
}

/// The part cut first, once decoded.
async fn oldest(parts: &mut VecDeque<JoinHandle<Decoded>>) -> Result<Decoded, tokio::task::JoinError> {
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
    use vane_core::testing::Harness;

    /// Many parts' worth of records over one connection, some bad, some with
    /// line feeds in their strings (so that cuts fall inside records): every
    /// good one arrives once, in the order sent, and every bad one is counted.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_fast_connection_is_decoded_in_parts_in_order() {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let config = format!("listen: tcp://127.0.0.1:{port}");
        let (h, socket) = Harness::service(&crate::registry(), "socket", &config).unwrap();
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
        let client = std::thread::spawn(move || {
            use std::io::Write;
            loop {
                if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) {
                    return s.write_all(&text).unwrap();
                }
                std::thread::yield_now();
            }
        });
        let want = (n - bad) as usize;
        let got = h.run_until(socket, std::time::Duration::from_secs(60), |e| e.len() >= want).await.unwrap();
        client.join().unwrap();
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
