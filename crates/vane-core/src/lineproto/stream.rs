//! Line protocol from a byte stream (a TCP connection, a pipe, standard
//! input): records decoded as their bytes arrive, whatever the chunks, with
//! a bound on a record's length.

use super::{ParseError, Precision, decode::Decoder};
use crate::event::Event;

/// The bytes of a stream not yet decoded, and where the stream stands.
pub struct Records {
    buf: Vec<u8>,
    line: usize,
    max: usize,
    precision: Precision,
    /// An overlong record is being dropped up to its line's end.
    skipping: bool,
    json: bool,
}

impl Records {
    /// A stream whose records may be at most `max_record` bytes.
    pub fn new(precision: Precision, max_record: usize) -> Records {
        Records {
            buf: Vec::with_capacity(64 << 10),
            line: 1,
            max: max_record.max(1),
            precision,
            skipping: false,
            json: false,
        }
    }

    /// Also reads lines starting with `{` as JSON events.
    pub fn with_json_lines(mut self) -> Records {
        self.json = true;
        self
    }

    /// Where the next bytes read go (append to it).
    pub fn buffer(&mut self) -> &mut Vec<u8> {
        &mut self.buf
    }

    /// Lines the decoded records spanned (blank lines and comments too).
    pub fn lines_read(&self) -> usize {
        self.line - 1
    }

    /// Appends bytes read from the stream.
    pub fn extend(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// Decodes every record the buffer holds whole; with `end` (the stream
    /// ended) the rest too. Points without a timestamp get `default_time`.
    /// A record longer than the bound is reported once and dropped up to
    /// the next line feed.
    pub fn decode(&mut self, end: bool, default_time: i64, mut each: impl FnMut(Result<Event, ParseError>)) {
        loop {
            if self.skipping {
                match memchr::memchr(b'\n', &self.buf) {
                    Some(n) => {
                        self.buf.drain(..=n);
                        self.line += 1;
                        self.skipping = false;
                    }
                    None => {
                        self.buf.clear();
                        return;
                    }
                }
            }
            let mut d = Decoder::new(&self.buf, self.precision, default_time, self.line, end).max_record(self.max);
            if self.json {
                d = d.with_json_lines();
            }
            d.by_ref().for_each(&mut each);
            let used = d.consumed();
            self.line = d.line();
            // A last line without its line feed is a line read too.
            if end && used > 0 && self.buf[used - 1] != b'\n' {
                self.line += 1;
            }
            self.buf.drain(..used);
            if self.buf.len() <= self.max || end {
                return;
            }
            each(Err(ParseError {
                line: self.line,
                column: 1,
                message: format!("record longer than {} bytes; skipped", self.max),
            }));
            self.skipping = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(chunks: &[&[u8]], max: usize) -> Vec<Result<String, (usize, String)>> {
        let mut r = Records::new(Precision::Nanoseconds, max);
        let mut out = Vec::new();
        let mut push = |x: Result<Event, ParseError>| out.push(x.map(|e| e.name).map_err(|e| (e.line, e.message)));
        for c in chunks {
            r.extend(c);
            r.decode(false, 0, &mut push);
        }
        r.decode(true, 0, &mut push);
        out
    }

    #[test]
    fn records_come_whole_whatever_the_chunks() {
        let got = run(&[b"a v=1\nb s=\"x", b"\ny\"\nc", b" v=2"], 100);
        assert_eq!(got, [Ok("a".into()), Ok("b".into()), Ok("c".into())]);
    }

    #[test]
    fn every_line_read_is_counted_the_last_without_its_line_feed_too() {
        for (input, lines) in [(&b"a v=1\nb v=2"[..], 2), (b"a v=1\nb v=2\n", 2), (b"", 0), (b"# c\n\nx", 3)] {
            let mut r = Records::new(Precision::Nanoseconds, 100);
            r.extend(input);
            r.decode(true, 0, |_| {});
            assert_eq!(r.lines_read(), lines, "{:?}", String::from_utf8_lossy(input));
        }
    }

    #[test]
    fn an_overlong_record_costs_only_itself() {
        let long = format!("x v=\"{}\"\n", "y".repeat(50));
        let got = run(&[b"a v=1\n", &long.as_bytes()[..30], &long.as_bytes()[30..], b"b v=1\n"], 20);
        assert_eq!(got.len(), 3, "{got:?}");
        assert_eq!(got[0], Ok("a".into()));
        assert!(matches!(&got[1], Err((2, m)) if m.contains("longer than 20")), "{got:?}");
        assert_eq!(got[2], Ok("b".into()));
    }
}
