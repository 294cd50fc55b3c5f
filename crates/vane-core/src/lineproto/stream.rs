//! Line protocol from a byte stream (a TCP connection, a pipe, standard
//! input): records decoded as their bytes arrive, whatever the chunks, with
//! a bound on a record's length.

use super::{ParseError, Precision, decode::Decoder};
use crate::event::Event;

/// Whole lines cut from a stream, decoded on any thread
/// ([`Records::split_off_part`]).
pub struct Part {
    bytes: Vec<u8>,
    precision: Precision,
    max: usize,
}

/// What a part came to.
#[derive(Debug, Default)]
pub struct Decoded {
    /// Its records, in order.
    pub events: Vec<Event>,
    /// Its bad records, numbered from the part's first line until
    /// [`Records::take`] numbers them from the stream's.
    pub errors: Vec<ParseError>,
    /// Line feeds in what was decoded.
    lines: usize,
    /// The bytes from the first record the part did not hold whole: empty
    /// when the part ended where a record ends.
    rest: Vec<u8>,
    /// The part's bytes, for a part whose result does not count.
    bytes: Vec<u8>,
}

impl Part {
    /// Decodes the part; points without a timestamp get `default_time`.
    pub fn decode(self, default_time: i64) -> Decoded {
        let mut d = Decoder::new(&self.bytes, self.precision, default_time, 1, false).max_record(self.max);
        // Room for a record a line feed, made once: at most that many records
        // (a string may hold line feeds), and no guess at their length.
        let records = memchr::memchr_iter(b'\n', &self.bytes).count() + 1;
        let (mut events, mut errors) = (Vec::with_capacity(records), Vec::new());
        // Each record is read in its place at the vector's end.
        loop {
            events.push(Event::default());
            let ev = events.last_mut().expect("just pushed");
            match d.next_into(ev) {
                Some(Ok(())) => {}
                Some(Err(e)) => {
                    events.pop();
                    errors.push(e);
                }
                None => {
                    events.pop();
                    break;
                }
            }
        }
        let (used, lines) = (d.consumed(), d.line() - 1);
        let rest = self.bytes[used..].to_vec();
        Decoded { events, errors, lines, rest, bytes: self.bytes }
    }
}

impl Decoded {
    /// Whether the part's last record went on past its end, so that the
    /// parts cut after it began inside that record.
    pub fn cut_short(&self) -> bool {
        !self.rest.is_empty()
    }

    /// The part's bytes, for a part cut after one that did not end where a
    /// record ends (see [`Records::take`]).
    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }
}

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

    /// The whole lines at the front of the buffer, once it holds at least
    /// `min` bytes, to be decoded elsewhere as a [`Part`]; `None` while an
    /// overlong record is being dropped. The part starts where a record
    /// starts; whether it also ends where one ends (a line feed may be inside
    /// a string) its decoding tells ([`Decoded::rest`]).
    pub fn split_off_part(&mut self, min: usize) -> Option<Part> {
        if self.skipping || self.buf.len() < min {
            return None;
        }
        let end = memchr::memrchr(b'\n', &self.buf)? + 1;
        let rest = self.buf.split_off(end);
        let bytes = std::mem::replace(&mut self.buf, rest);
        Some(Part { bytes, precision: self.precision, max: self.max })
    }

    /// Takes a part's result in stream order: its lines are counted, its
    /// errors numbered from the stream's line. What it did not decode
    /// whole (a record that went on past its end) goes back before the
    /// buffer, behind `later` (the bytes of parts cut after it, whose
    /// results do not count: they started inside that record).
    pub fn take(&mut self, d: &mut Decoded, later: impl IntoIterator<Item = Vec<u8>>) {
        for e in &mut d.errors {
            e.line += self.line - 1;
        }
        self.line += d.lines;
        if d.rest.is_empty() {
            return;
        }
        let mut front = std::mem::take(&mut d.rest);
        for bytes in later {
            front.extend_from_slice(&bytes);
        }
        front.extend_from_slice(&self.buf);
        self.buf = front;
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
        let mut push =
            |x: Result<Event, ParseError>| out.push(x.map(|e| e.name.into()).map_err(|e| (e.line, e.message)));
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

    /// Decodes `input` cut into parts of at least `min` bytes, each part
    /// decoded in turn but taken only after the next is cut, as a connection
    /// with two parts in flight does; then the rest as one stream.
    fn in_parts(input: &[u8], min: usize, chunk: usize) -> (Vec<String>, Vec<usize>) {
        let mut r = Records::new(Precision::Nanoseconds, 1 << 20);
        let (mut names, mut lines) = (Vec::new(), Vec::new());
        let mut take = |d: &mut Decoded| {
            names.extend(d.events.iter().map(|e| e.name.to_string()));
            lines.extend(d.errors.iter().map(|e| e.line));
        };
        let mut flight: std::collections::VecDeque<Decoded> = Default::default();
        for c in input.chunks(chunk) {
            r.extend(c);
            while let Some(p) = r.split_off_part(min) {
                flight.push_back(p.decode(0));
            }
            if flight.len() >= 2 {
                let mut d = flight.pop_front().unwrap();
                let later: Vec<_> =
                    if d.cut_short() { flight.drain(..).map(Decoded::into_bytes).collect() } else { Vec::new() };
                r.take(&mut d, later);
                take(&mut d);
            }
        }
        while let Some(mut d) = flight.pop_front() {
            let later: Vec<_> =
                if d.cut_short() { flight.drain(..).map(Decoded::into_bytes).collect() } else { Vec::new() };
            r.take(&mut d, later);
            take(&mut d);
        }
        let mut rest = Vec::new();
        r.decode(true, 0, |x| match x {
            Ok(e) => rest.push(e.name.into()),
            Err(e) => lines.push(e.line),
        });
        names.extend(rest);
        (names, lines)
    }

    #[test]
    fn parts_keep_the_order_and_the_line_numbers_of_one_stream() {
        // Every fifth record is bad, every seventh holds line feeds in a
        // string, so cuts fall inside records too.
        let mut input = Vec::new();
        let (mut want, mut bad) = (Vec::new(), Vec::new());
        let mut line = 1;
        for i in 0..2000 {
            if i % 5 == 0 {
                input.extend_from_slice(format!("bad{i} v=\n").as_bytes());
                bad.push(line);
                line += 1;
            } else if i % 7 == 0 {
                input.extend_from_slice(format!("s{i} v=\"a\nb\nc\"\n").as_bytes());
                want.push(format!("s{i}"));
                line += 3;
            } else {
                input.extend_from_slice(format!("m{i} v={i}i\n").as_bytes());
                want.push(format!("m{i}"));
                line += 1;
            }
        }
        for (min, chunk) in [(64, 50), (100, 333), (1, 7), (4096, 4096), (1 << 20, 1000)] {
            let (names, lines) = in_parts(&input, min, chunk);
            assert_eq!(names, want, "parts of {min}, reads of {chunk}");
            assert_eq!(lines, bad, "parts of {min}, reads of {chunk}");
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
