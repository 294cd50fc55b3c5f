//! One record a line (Graphite plaintext, JSON, bare numbers) from a
//! stream, as a [`Framing`]: lines are numbered from the stream's start, a
//! line longer than the bound is dropped up to its line feed and counted,
//! and a cut at a line feed is always a record's end.

use std::sync::Arc;

use vane_core::prelude::*;

use super::listen::LineDecoder;
use super::parts::Framing;

/// A stream's bytes not yet decoded, and where it stands.
pub(super) struct Lines {
    buf: Vec<u8>,
    /// Lines read (or cut off into parts) so far.
    line: u64,
    max: usize,
    /// An overlong line is being dropped up to its line feed.
    skipping: bool,
    dec: Arc<LineDecoder>,
}

/// Whole lines cut from a stream, with the number of the first.
pub(super) struct LinesPart {
    bytes: Vec<u8>,
    first: u64,
    /// Its line feeds: room for as many events, and no more, is made once.
    lines: usize,
    max: usize,
    dec: Arc<LineDecoder>,
}

/// What a part came to: its events and its bad lines.
pub(super) struct LinesDone {
    events: Vec<Event>,
    bad: Vec<(u64, String)>,
}

impl Lines {
    pub(super) fn new(dec: Arc<LineDecoder>, max_line: usize) -> Lines {
        Lines { buf: Vec::new(), line: 0, max: max_line.max(1), skipping: false, dec }
    }
}

/// Decodes one line (without its line feed).
pub(super) fn line_event(dec: &LineDecoder, line: &[u8], now: i64) -> Result<Option<Event>, String> {
    match std::str::from_utf8(line) {
        Err(_) => Err("not UTF-8".to_owned()),
        Ok(text) => dec.decode(text, now).map_err(|why| why.0),
    }
}

fn too_long(max: usize) -> String {
    format!("longer than max_line ({max} bytes)")
}

/// How the lines of one read are decoded.
struct Reader<'a> {
    dec: &'a LineDecoder,
    max: usize,
    now: i64,
}

impl Reader<'_> {
    /// Decodes the whole lines of `bytes`, the first numbered `first`; with
    /// `skipping`, the first line is the end of an overlong one. Returns
    /// the bytes read and the next line's number.
    fn whole_lines(
        &self,
        bytes: &[u8],
        mut skipping: bool,
        first: u64,
        out: &mut Vec<Event>,
        bad: &mut dyn FnMut(u64, String),
    ) -> (usize, u64) {
        let (mut start, mut n) = (0, first);
        while let Some(pos) = memchr::memchr(b'\n', &bytes[start..]) {
            let line = &bytes[start..start + pos];
            start += pos + 1;
            if std::mem::take(&mut skipping) || line.len() > self.max {
                bad(n, too_long(self.max));
            } else {
                match line_event(self.dec, line, self.now) {
                    Ok(Some(e)) => out.push(e),
                    Ok(None) => {}
                    Err(why) => bad(n, why),
                }
            }
            n += 1;
        }
        (start, n)
    }
}

impl Framing for Lines {
    type Part = LinesPart;
    type Done = LinesDone;

    fn buffer(&mut self) -> &mut Vec<u8> {
        &mut self.buf
    }

    fn split_off(&mut self, min: usize) -> Option<LinesPart> {
        if self.skipping || self.buf.len() < min {
            return None;
        }
        let end = memchr::memrchr(b'\n', &self.buf)? + 1;
        let rest = self.buf.split_off(end);
        let bytes = std::mem::replace(&mut self.buf, rest);
        let first = self.line + 1;
        let lines = memchr::memchr_iter(b'\n', &bytes).count();
        self.line += lines as u64;
        Some(LinesPart { bytes, first, lines, max: self.max, dec: self.dec.clone() })
    }

    fn decode_part(part: LinesPart, now: i64) -> LinesDone {
        let mut done = LinesDone { events: Vec::with_capacity(part.lines), bad: Vec::new() };
        let mut bad = |n, why| done.bad.push((n, why));
        let reader = Reader { dec: &part.dec, max: part.max, now };
        reader.whole_lines(&part.bytes, false, part.first, &mut done.events, &mut bad);
        done
    }

    fn cut_short(_: &LinesDone) -> bool {
        // A line ends at its line feed, wherever it is.
        false
    }

    fn into_bytes(_: LinesDone) -> Vec<u8> {
        Vec::new()
    }

    fn take_part(&mut self, done: LinesDone, _: Vec<Vec<u8>>, bad: &mut dyn FnMut(u64, String)) -> Vec<Event> {
        for (n, why) in done.bad {
            bad(n, why);
        }
        done.events
    }

    fn decode_here(&mut self, end: bool, now: i64, out: &mut Vec<Event>, bad: &mut dyn FnMut(u64, String)) {
        let skipping = std::mem::take(&mut self.skipping);
        let reader = Reader { dec: &self.dec, max: self.max, now };
        let (used, next) = reader.whole_lines(&self.buf, skipping, self.line + 1, out, bad);
        self.skipping = skipping && used == 0;
        self.line = next - 1;
        self.buf.drain(..used);
        if self.buf.len() > self.max {
            // Too long already: forget it; its end is reported when it comes.
            self.skipping = true;
            self.buf.clear();
        }
        if end && (self.skipping || !self.buf.is_empty()) {
            self.line += 1;
            if std::mem::take(&mut self.skipping) {
                bad(self.line, too_long(self.max));
            } else {
                match line_event(&self.dec, &self.buf, now) {
                    Ok(Some(e)) => out.push(e),
                    Ok(None) => {}
                    Err(why) => bad(self.line, why),
                }
            }
            self.buf.clear();
        }
    }

    fn lines_read(&self) -> u64 {
        self.line
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::listen::{LineFormat, line_decoder};
    use vane_core::testing::Harness;

    fn lines(max: usize) -> Lines {
        let h = Harness::new("t");
        let dec = line_decoder(LineFormat::Number, None, &[], Some("n".into()), "value".into(), h.context()).unwrap();
        Lines::new(Arc::new(dec), max)
    }

    /// Reads `chunks` in turn, cutting a part whenever `min` bytes wait,
    /// and decoding the rest here; the values and bad line numbers seen.
    fn run(chunks: &[&[u8]], max: usize, min: usize) -> (Vec<f64>, Vec<(u64, String)>) {
        let mut l = lines(max);
        let (mut out, mut bad) = (Vec::new(), Vec::new());
        let mut b = |n, why: String| bad.push((n, why));
        for c in chunks {
            l.buffer().extend_from_slice(c);
            while let Some(p) = l.split_off(min) {
                let d = Lines::decode_part(p, 0);
                out.extend(l.take_part(d, Vec::new(), &mut b));
            }
            l.decode_here(false, 0, &mut out, &mut b);
        }
        l.decode_here(true, 0, &mut out, &mut b);
        (out.iter().filter_map(|e| e.get_field("value")?.as_f64()).collect(), bad)
    }

    #[test]
    fn lines_are_numbered_whether_cut_into_parts_or_not() {
        let chunks: &[&[u8]] = &[b"1\n2\nx", b"y\n4\n", b"123456789012", b"345\n6\n7"];
        for min in [1, 4, 1000] {
            let (values, bad) = run(chunks, 10, min);
            assert_eq!(values, [1.0, 2.0, 4.0, 6.0, 7.0], "parts of {min}");
            let numbers: Vec<u64> = bad.iter().map(|(n, _)| *n).collect();
            assert_eq!(numbers, [3, 5], "parts of {min}: {bad:?}");
            assert!(bad[1].1.contains("longer than max_line"), "{bad:?}");
        }
    }
}
