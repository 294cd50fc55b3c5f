//! Bytes to events, one record at a time, with the position of every error.
//!
//! A record is one point; it ends at a line feed that is not inside a string
//! field value. A record that cannot be read yields one error and decoding
//! goes on after the line feed where reading stopped, so a bad record costs
//! only itself. [`decode_stream`] reads a buffer that more bytes may follow:
//! it stops before a record that the buffer may not hold whole.

use super::{Precision, is_control, number, reserved};
use crate::event::{Event, Kind, NO_TIME, State, Text, Value};

/// A record that could not be decoded, with its 1-based line and column.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("line {line}, column {column}: {message}")]
pub struct ParseError {
    pub line: usize,
    pub column: usize,
    pub message: String,
}

/// Decodes a whole buffer; an iterator of events and errors, one per record.
///
/// Blank lines and `#` comments are skipped. Points without a timestamp get
/// `default_time` ([`NO_TIME`] leaves them for the runtime to stamp).
pub fn decode<B: AsRef<[u8]> + ?Sized>(input: &B, precision: Precision, default_time: i64) -> Decoder<'_> {
    Decoder::new(input.as_ref(), precision, default_time, 1, true)
}

/// Decodes the start of a stream: stops before a record that is not yet
/// ended by a line feed. [`Decoder::consumed`] tells how many bytes were
/// read; the rest goes before the stream's next bytes. Lines are numbered
/// from `first_line`.
pub fn decode_stream(input: &[u8], precision: Precision, default_time: i64, first_line: usize) -> Decoder<'_> {
    Decoder::new(input, precision, default_time, first_line, false)
}

/// Decodes a single record (no trailing newline needed).
pub fn decode_line(line: &str, precision: Precision) -> Result<Event, ParseError> {
    match decode(line, precision, NO_TIME).next() {
        Some(r) => r,
        None => Err(ParseError { line: 1, column: 1, message: "empty line".into() }),
    }
}

/// Iterator returned by [`decode`] and [`decode_stream`].
pub struct Decoder<'a> {
    b: &'a [u8],
    pos: usize,
    line: usize,
    precision: Precision,
    default_time: i64,
    /// Whether the buffer holds the whole input.
    complete: bool,
    /// Whether a record starting with `{` is a JSON event on one line.
    json: bool,
    /// Longest record read; longer ones are errors.
    max: usize,
}

/// Where a record ended: before byte N (past its line feed), or at the
/// end of the buffer.
enum End {
    At(usize),
    Buffer,
}

impl<'a> Decoder<'a> {
    pub(super) fn new(b: &'a [u8], precision: Precision, default_time: i64, line: usize, complete: bool) -> Self {
        Decoder { b, pos: 0, line, precision, default_time, complete, json: false, max: usize::MAX }
    }

    /// Reports records longer than `max` bytes as errors instead of reading them.
    pub fn max_record(mut self, max: usize) -> Self {
        self.max = max;
        self
    }

    /// Also reads lines starting with `{` as JSON events (`vane engine`'s
    /// input takes both; no measurement of line protocol starts so in practice).
    pub fn with_json_lines(mut self) -> Self {
        self.json = true;
        self
    }

    /// Bytes read so far: whole records, blank lines and comments.
    pub fn consumed(&self) -> usize {
        self.pos
    }

    /// The number of the line the next record starts on.
    pub fn line(&self) -> usize {
        self.line
    }

    /// Skips blank lines and comments; the start of the next record (its
    /// line's start and its first byte), or `None` at the end of what can
    /// be read.
    fn next_record(&mut self) -> Option<(usize, usize)> {
        let b = self.b;
        let mut i = self.pos;
        loop {
            let line_start = i;
            while i < b.len() && b[i] == b' ' {
                i += 1;
            }
            let rest_is_partial = |d: &mut Self| {
                // What is left may be the start of a record still arriving.
                d.pos = if d.complete { b.len() } else { line_start };
                None
            };
            match b.get(i) {
                None => return rest_is_partial(self),
                Some(b'\n') => {
                    i += 1;
                    self.line += 1;
                }
                Some(b'\r') if b.get(i + 1) == Some(&b'\n') => {
                    i += 2;
                    self.line += 1;
                }
                Some(b'\r') if i + 1 == b.len() => return rest_is_partial(self),
                Some(b'#') => {
                    let mut j = i + 1;
                    while j < b.len() && !is_control(b[j]) {
                        j += 1;
                    }
                    match (b.get(j), b.get(j + 1)) {
                        (None, _) | (Some(b'\r'), None) => return rest_is_partial(self),
                        (Some(b'\n'), _) => i = j + 1,
                        (Some(b'\r'), Some(b'\n')) => i = j + 2,
                        // A control character in the comment: the line is
                        // an error, read as a record.
                        _ => return Some((line_start, i)),
                    }
                    self.line += 1;
                }
                Some(_) => return Some((line_start, i)),
            }
            self.pos = i;
        }
    }

    /// The line and column of byte `at` of a record starting at `start`.
    fn locate(&self, start: usize, at: usize) -> (usize, usize) {
        let span = &self.b[start..at];
        let newlines = memchr::memchr_iter(b'\n', span).count();
        let line_start = memchr::memrchr(b'\n', span).map_or(0, |n| n + 1);
        // Columns count characters: every byte but UTF-8 continuations.
        let column = span[line_start..].iter().filter(|&&c| (c & 0xC0) != 0x80).count() + 1;
        (self.line + newlines, column)
    }

    /// Where a record that failed ends: past the line feed after the point
    /// where reading stopped. A record that failed after its fields with
    /// no timestamp ends earlier, at a lone `\r` before that line feed, as
    /// the reference's does (the `\r` then starts a record, which fails).
    fn failed_end(&self, f: &Fail) -> End {
        let from = f.resume.min(self.b.len());
        let rest = &self.b[from..];
        let found = if f.stops_at_cr { memchr::memchr2(b'\r', b'\n', rest) } else { memchr::memchr(b'\n', rest) };
        match found {
            None => End::Buffer,
            Some(n) if rest[n] == b'\n' => End::At(from + n + 1),
            Some(n) => match rest.get(n + 1) {
                Some(b'\n') => End::At(from + n + 2),
                None if !self.complete => End::Buffer,
                _ => End::At(from + n),
            },
        }
    }

    /// Moves past a record that ended at `end`, which spanned `lines` line
    /// feeds (counted when not known); false when it may go on past the
    /// buffer and must be read again with what follows.
    fn finish(&mut self, line_start: usize, end: End, lines: Option<usize>) -> bool {
        let end = match end {
            End::At(e) => e,
            End::Buffer if !self.complete => {
                self.pos = line_start;
                return false;
            }
            End::Buffer => self.b.len(),
        };
        self.line += lines.unwrap_or_else(|| memchr::memchr_iter(b'\n', &self.b[line_start..end]).count());
        self.pos = end;
        true
    }

    /// What a record that ended came to: itself, or an error if it was too long.
    fn checked(&self, line: usize, start: usize, read: Result<(), ParseError>) -> Result<(), ParseError> {
        let record = &self.b[start..self.pos];
        if record.len() - usize::from(record.ends_with(b"\n")) <= self.max {
            return read;
        }
        Err(ParseError { line, column: 1, message: format!("record longer than {} bytes; skipped", self.max) })
    }
}

impl Iterator for Decoder<'_> {
    type Item = Result<Event, ParseError>;

    fn next(&mut self) -> Option<Self::Item> {
        let mut ev = Event::default();
        Some(self.next_into(&mut ev)?.map(|()| ev))
    }
}

impl Decoder<'_> {
    /// The next record, read into `ev` (a default event, which a bad
    /// record leaves half made): where events are kept in a vector, they
    /// are made in their place instead of moved there. `None` at the end of
    /// what can be read.
    #[inline]
    pub fn next_into(&mut self, ev: &mut Event) -> Option<Result<(), ParseError>> {
        let (line_start, start) = self.next_record()?;
        let line = self.line;
        let read = self.read_record(line_start, start, ev)?;
        Some(self.checked(line, start, read))
    }

    /// The record from `start`, read into `ev`; `None` when it is not whole
    /// in the buffer.
    fn read_record(&mut self, line_start: usize, start: usize, ev: &mut Event) -> Option<Result<(), ParseError>> {
        if self.json && self.b[start] == b'{' {
            return self.json_line(line_start, start, ev);
        }
        let mut p = Record { b: self.b, i: start, ended: false, broke: None, breaks: 0 };
        match p.point(ev, self.precision, self.default_time) {
            Ok(()) => {
                let end = if p.ended { End::At(p.i) } else { End::Buffer };
                let read = match p.broke {
                    None => Ok(()),
                    Some((at, message)) => {
                        let (line, column) = self.locate(line_start, at);
                        Err(ParseError { line, column, message })
                    }
                };
                // Its line feeds: those inside strings, and the one it ended at.
                let lines = Some(p.breaks + usize::from(p.ended && self.b[p.i - 1] == b'\n'));
                self.finish(line_start, end, lines).then_some(read)
            }
            Err(f) => {
                let end = self.failed_end(&f);
                let (line, column) = self.locate(line_start, f.at.min(self.b.len()));
                self.finish(line_start, end, None).then_some(Err(ParseError { line, column, message: f.message }))
            }
        }
    }

    /// A JSON event, to its line's end.
    fn json_line(&mut self, line_start: usize, start: usize, ev: &mut Event) -> Option<Result<(), ParseError>> {
        let (end, text_end) = match memchr::memchr(b'\n', &self.b[start..]) {
            Some(n) => (End::At(start + n + 1), start + n),
            None => (End::Buffer, self.b.len()),
        };
        let line = self.line;
        let read = match std::str::from_utf8(&self.b[start..text_end]) {
            Err(_) => Err("invalid UTF-8".to_owned()),
            Ok(text) => crate::json::decode(text.trim_end()).map_err(|e| e.to_string()),
        };
        let default_time = self.default_time;
        let read = read
            .map(|mut e| {
                if e.time == NO_TIME {
                    e.time = default_time;
                }
                *ev = e;
            })
            .map_err(|message| ParseError { line, column: 1, message });
        self.finish(line_start, end, None).then_some(read)
    }
}

/// Pushes a tag or field; the first makes room for four at once, as the
/// vector's growth would, without going through its growth path.
#[inline]
fn push<T>(v: &mut Vec<T>, x: T) {
    if v.capacity() == 0 {
        *v = Vec::with_capacity(4);
    }
    v.push(x);
}

/// Why a record failed: where (reported) and where reading stopped (from
/// there the decoder looks for the record's end).
struct Fail {
    at: usize,
    resume: usize,
    message: String,
    /// The record ends at a lone `\r` too (see [`Decoder::failed_end`]).
    stops_at_cr: bool,
}

/// Reads one record from byte `i`.
struct Record<'a> {
    b: &'a [u8],
    i: usize,
    /// Whether the record's line feed was read.
    ended: bool,
    /// Line feeds read inside string values.
    breaks: usize,
    /// A rule of vane's own the record broke (a repeated tag key, a second
    /// `description`): its position and message. Such a record is still
    /// read to its end, as the grammar allows it, and then refused.
    broke: Option<(usize, String)>,
}

/// Which bytes end a name, and which escapes it knows.
#[derive(Clone, Copy)]
enum Name {
    Measurement,
    Key,
}

/// Bytes that end or escape a name, by kind: a backslash, and the stops.
const fn specials(stops: &[u8]) -> [bool; 256] {
    let mut t = [false; 256];
    let mut c = 0;
    while c < 256 {
        // Bytes past ASCII stop the tight loop too, so that a name found
        // all ASCII there needs no second pass to be known UTF-8.
        t[c] = c < 0x20 || c >= 0x7f || c == b'\\' as usize;
        c += 1;
    }
    let mut i = 0;
    while i < stops.len() {
        t[stops[i] as usize] = true;
        i += 1;
    }
    t
}

static MEASUREMENT_SPECIAL: [bool; 256] = specials(b", ");
static KEY_SPECIAL: [bool; 256] = specials(b",= ");

impl Name {
    /// What ends a name (besides a backslash, which escapes or is itself).
    fn special(self) -> &'static [bool; 256] {
        match self {
            Name::Measurement => &MEASUREMENT_SPECIAL,
            Name::Key => &KEY_SPECIAL,
        }
    }

    fn escape(self, c: u8) -> bool {
        match self {
            Name::Measurement => c == b',' || c == b' ',
            Name::Key => c == b',' || c == b'=' || c == b' ',
        }
    }
}

fn utf8(bytes: Vec<u8>) -> Option<String> {
    String::from_utf8(bytes).ok()
}

impl<'a> Record<'a> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    fn fail<T>(&self, at: usize, message: impl Into<String>) -> Result<T, Fail> {
        Err(Fail { at, resume: self.i, message: message.into(), stops_at_cr: false })
    }

    /// A printable description of the byte at the read position.
    fn found(&self) -> String {
        match self.peek() {
            None => "the end of the input".into(),
            Some(c) => format!("{:?}", c as char),
        }
    }

    /// Reads a name up to a byte that ends it, unescaping its escapes.
    #[inline]
    fn name(&mut self, kind: Name) -> Result<Text, Fail> {
        let rest = &self.b[self.i..];
        let n = rest.iter().position(|&c| kind.special()[c as usize]).unwrap_or(rest.len());
        match rest.get(n) {
            // An escape or a byte past ASCII: read again, the long way.
            Some(&c) if c == b'\\' || c >= 0x80 => self.name_escaped(kind),
            _ => {
                self.i += n;
                // SAFETY: no byte before `n` is special, so each is ASCII,
                // and ASCII is UTF-8.
                Ok(Text::from(unsafe { std::str::from_utf8_unchecked(&rest[..n]) }))
            }
        }
    }

    /// [`Record::name`] for a name with escapes or bytes past ASCII.
    #[inline(never)]
    fn name_escaped(&mut self, kind: Name) -> Result<Text, Fail> {
        let start = self.i;
        let special = kind.special();
        let mut out: Option<Vec<u8>> = None;
        let mut from = start;
        let mut ascii = true;
        loop {
            // Ordinary bytes, the most of any name, in a tight loop.
            let rest = &self.b[self.i..];
            self.i += rest.iter().position(|&c| special[c as usize]).unwrap_or(rest.len());
            match self.peek() {
                Some(c) if c >= 0x80 => {
                    ascii = false;
                    self.i += 1;
                }
                Some(b'\\') => match self.b.get(self.i + 1) {
                    Some(&n) if kind.escape(n) => {
                        let o = out.get_or_insert_with(Vec::new);
                        o.extend_from_slice(&self.b[from..self.i]);
                        o.push(n);
                        self.i += 2;
                        from = self.i;
                    }
                    // Any other backslash is itself.
                    _ => self.i += 1,
                },
                _ => break,
            }
        }
        // Unescaped (the most), the name is the input's bytes, held inline
        // by the event when short: no allocation.
        let unescaped;
        let bytes = match out {
            None => &self.b[start..self.i],
            Some(mut o) => {
                o.extend_from_slice(&self.b[from..self.i]);
                unescaped = o;
                &unescaped[..]
            }
        };
        if ascii {
            // SAFETY: every byte is ASCII (the loop above stopped at any
            // other, and escapes put back only ASCII), and ASCII is UTF-8.
            return Ok(Text::from(unsafe { std::str::from_utf8_unchecked(bytes) }));
        }
        match std::str::from_utf8(bytes) {
            Ok(s) => Ok(Text::from(s)),
            Err(_) => self.fail(start, "invalid UTF-8"),
        }
    }

    /// After a measurement or tag value: a comma must start another tag.
    fn tag_comma(&mut self) -> Result<(), Fail> {
        if self.peek() == Some(b',') {
            self.i += 1;
            if matches!(self.peek(), None | Some(b' ' | b'\r' | b'\n')) {
                return self.fail(self.i, format!("expected a tag key after the comma, found {}", self.found()));
            }
        }
        Ok(())
    }

    /// Consumes a line ending (`\n`, `\r\n`, or `\r` or nothing at the end
    /// of the input) if one is next.
    fn line_end(&mut self) -> bool {
        match (self.peek(), self.b.get(self.i + 1)) {
            (None, _) => true,
            (Some(b'\n'), _) => {
                self.i += 1;
                self.ended = true;
                true
            }
            (Some(b'\r'), None) => {
                self.i += 1;
                true
            }
            (Some(b'\r'), Some(b'\n')) => {
                self.i += 2;
                self.ended = true;
                true
            }
            _ => false,
        }
    }

    fn skip_spaces(&mut self) {
        while self.peek() == Some(b' ') {
            self.i += 1;
        }
    }

    /// Bytes up to the next field separator, white space or line end.
    fn token(&mut self, allowed: impl Fn(u8) -> bool) -> &'a [u8] {
        let start = self.i;
        let rest = &self.b[start..];
        self.i += rest.iter().position(|&c| !allowed(c)).unwrap_or(rest.len());
        &self.b[start..self.i]
    }

    fn point(&mut self, ev: &mut Event, precision: Precision, default_time: i64) -> Result<(), Fail> {
        let at = self.i;
        let name = self.name(Name::Measurement)?;
        if name.is_empty() {
            return self.fail(at, format!("expected a measurement, found {}", self.found()));
        }
        if name.starts_with('#') {
            return self.fail(at, "invalid character in a comment line");
        }
        ev.name = name;
        self.tag_comma()?;
        self.tags(ev)?;
        self.fields(ev)?;
        ev.time = self.time(precision)?.unwrap_or(default_time);
        Ok(())
    }

    /// A tag or field key and the `=` after it; `what` names the key in an
    /// error, `expected` says what may stand where it is missing.
    #[inline]
    fn key(&mut self, what: &str, expected: &str) -> Result<Text, Fail> {
        let at = self.i;
        let key = self.name(Name::Key)?;
        if key.is_empty() {
            return self.fail(at, format!("expected {expected}, found {}", self.found()));
        }
        if self.peek() != Some(b'=') {
            return self.fail(self.i, format!("expected '=' after {what} {key:?}, found {}", self.found()));
        }
        self.i += 1;
        Ok(key)
    }

    fn tags(&mut self, ev: &mut Event) -> Result<(), Fail> {
        let (mut host, mut kind, mut state) = (false, false, false);
        loop {
            if self.peek() == Some(b' ') {
                self.skip_spaces();
                return Ok(());
            }
            let at = self.i;
            let key = self.key("tag key", "a tag key or fields")?;
            let vat = self.i;
            let value = self.name(Name::Key)?;
            if value.is_empty() {
                return self.fail(vat, format!("expected a value for tag {key:?}, found {}", self.found()));
            }
            let seen = match key.as_str() {
                reserved::HOST => std::mem::replace(&mut host, true),
                reserved::KIND => std::mem::replace(&mut kind, true),
                reserved::STATE => std::mem::replace(&mut state, true),
                _ => ev.tags.iter().any(|(k, _)| *k == key),
            };
            if seen {
                self.broke.get_or_insert((at, format!("duplicate tag key `{key}`")));
                self.tag_comma()?;
                continue;
            }
            match key.as_str() {
                reserved::HOST => ev.host = value,
                reserved::KIND if Kind::parse(&value).is_some() => ev.kind = Kind::parse(&value).unwrap_or_default(),
                reserved::STATE if State::parse(&value).is_some() => ev.state = State::parse(&value),
                _ => push(&mut ev.tags, (key, value)),
            }
            self.tag_comma()?;
        }
    }

    fn fields(&mut self, ev: &mut Event) -> Result<(), Fail> {
        loop {
            let at = self.i;
            let key = self.key("field key", "a field key")?;
            let value = self.field_value(&key)?;
            match (key.as_str(), value) {
                (reserved::DESCRIPTION, Value::Str(_)) if ev.description.is_some() => {
                    self.broke.get_or_insert((at, format!("duplicate field `{key}`")));
                }
                (reserved::DESCRIPTION, Value::Str(s)) => ev.description = Some(s),
                (reserved::TTL, Value::Float(_)) if ev.ttl.is_some() => {
                    self.broke.get_or_insert((at, format!("duplicate field `{key}`")));
                }
                (reserved::TTL, Value::Float(f)) => ev.ttl = Some(f),
                (_, value) => push(&mut ev.fields, (key, value)),
            }
            match self.peek() {
                Some(b',') => self.i += 1,
                None | Some(b' ' | b'\r' | b'\n') => return Ok(()),
                Some(_) => {
                    return self.fail(self.i, format!("unexpected {} after a field value", self.found()));
                }
            }
        }
    }

    fn field_value(&mut self, key: &str) -> Result<Value, Fail> {
        let at = self.i;
        let plain = |c: u8| !matches!(c, b',' | b' ' | b'\r' | b'\n');
        match self.peek() {
            Some(b'"') => self.string(key),
            Some(b't' | b'T' | b'f' | b'F') => {
                let tok = self.token(plain);
                match tok {
                    b"t" | b"T" | b"true" | b"True" | b"TRUE" => Ok(Value::Bool(true)),
                    b"f" | b"F" | b"false" | b"False" | b"FALSE" => Ok(Value::Bool(false)),
                    _ => {
                        let tok = String::from_utf8_lossy(tok).into_owned();
                        self.fail(at, format!("invalid boolean {tok:?} for field {key:?}"))
                    }
                }
            }
            Some(b'-' | b'0'..=b'9' | b'.') => {
                let tok = self.token(plain);
                number::field(tok).or_else(|why| {
                    let tok = String::from_utf8_lossy(tok).into_owned();
                    self.fail(at, format!("invalid number {tok:?} for field {key:?}: {why}"))
                })
            }
            None | Some(b' ' | b',' | b'\r' | b'\n') => self.fail(at, format!("missing value for field {key:?}")),
            Some(_) => {
                let tok = String::from_utf8_lossy(self.token(plain)).into_owned();
                self.fail(at, format!("invalid value {tok:?} for field {key:?}: not a number, boolean or string"))
            }
        }
    }

    /// A string value from its opening quote; may hold line feeds.
    fn string(&mut self, key: &str) -> Result<Value, Fail> {
        let at = self.i;
        self.i += 1;
        let mut out = Vec::new();
        let mut from = self.i;
        loop {
            // Up to the next byte that means something here.
            self.i += memchr::memchr3(b'"', b'\\', b'\n', &self.b[self.i..]).unwrap_or(self.b.len() - self.i);
            match self.peek() {
                None => {
                    return self.fail(at, format!("missing the closing quote of field {key:?}"));
                }
                Some(b'"') => break,
                Some(b'\n') => {
                    self.breaks += 1;
                    self.i += 1;
                }
                Some(b'\\') => {
                    let un = match self.b.get(self.i + 1) {
                        Some(b'\\') => Some(b'\\'),
                        Some(b'"') => Some(b'"'),
                        Some(b'n') => Some(b'\n'),
                        Some(b'r') => Some(b'\r'),
                        Some(b't') => Some(b'\t'),
                        _ => None,
                    };
                    match un {
                        Some(c) => {
                            out.extend_from_slice(&self.b[from..self.i]);
                            out.push(c);
                            self.i += 2;
                            from = self.i;
                        }
                        None => self.i += 1,
                    }
                }
                Some(_) => self.i += 1,
            }
        }
        out.extend_from_slice(&self.b[from..self.i]);
        self.i += 1;
        match utf8(out) {
            Some(s) => Ok(Value::Str(s)),
            None => self.fail(at, format!("invalid UTF-8 in field {key:?}")),
        }
    }

    /// After the fields: an optional timestamp, then the line's end.
    fn time(&mut self, precision: Precision) -> Result<Option<i64>, Fail> {
        self.skip_spaces();
        if self.line_end() {
            return Ok(None);
        }
        let at = self.i;
        // A minus and digits, the digits eight at a time; then whatever else
        // of minus signs and digits follows, refused below.
        self.i += usize::from(self.peek() == Some(b'-'));
        self.i += number::digit_run(&self.b[self.i..]);
        self.token(|c| c == b'-' || c.is_ascii_digit());
        let tok = &self.b[at..self.i];
        let time = match tok {
            [] => None,
            tok => {
                // Only ASCII digits and minus signs: valid UTF-8.
                let text = || String::from_utf8_lossy(tok);
                let t = match number::integer(tok) {
                    Ok(t) => t,
                    Err(_) => return self.fail(at, format!("invalid timestamp {:?}", text())),
                };
                // The earliest instant is NO_TIME, "no timestamp": refused.
                match t.checked_mul(precision.factor()).filter(|&t| t != NO_TIME) {
                    Some(t) => Some(t),
                    None => return self.fail(at, format!("timestamp {} out of range", text())),
                }
            }
        };
        let fail = |r: &Self, at: usize, message: &str| {
            r.fail(at, message).map_err(|f| Fail { stops_at_cr: time.is_none(), ..f })
        };
        match self.peek() {
            None | Some(b' ' | b'\r' | b'\n') => {}
            Some(_) => {
                self.i += 1;
                return fail(self, at, "invalid timestamp");
            }
        }
        self.skip_spaces();
        if !self.line_end() {
            return fail(self, self.i, "unexpected text after the timestamp");
        }
        Ok(time)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dec(s: &[u8]) -> Result<Event, ParseError> {
        decode(s, Precision::Nanoseconds, NO_TIME).next().unwrap_or_else(|| panic!("nothing in {s:?}"))
    }

    fn ok(s: &[u8]) -> Event {
        dec(s).unwrap_or_else(|e| panic!("{:?}: {e}", String::from_utf8_lossy(s)))
    }

    fn rejected(s: &[u8]) -> bool {
        dec(s).is_err()
    }

    #[test]
    fn only_comma_equals_and_space_are_escapes_in_names() {
        let e = ok(br"cpu,host=two\\ words value=42");
        assert_eq!(e.host, r"two\ words");
        let e = ok(br"cpu,host=two\\\ words value=42");
        assert_eq!(e.host, r"two\\ words");
        let e = ok(br"u,\\n=t e=1");
        assert_eq!(e.tags, vec![(r"\\n".into(), "t".into())]);
        let e = ok(br"cpu va\lue=42");
        assert_eq!(e.fields[0].0, r"va\lue");
        // `=` is not escaped in a measurement: the backslash stays.
        let e = ok(br"a\=b\,c\ d,t\=k=v\,w f\ k=1");
        assert_eq!((e.name.as_str(), &e.tags[0]), (r"a\=b,c d", &("t=k".into(), "v,w".into())));
        assert_eq!(e.fields[0].0, "f k");
        assert_eq!(ok(br"\#m v=1").name, r"\#m");
    }

    #[test]
    fn string_values_know_five_escapes() {
        let e = ok(br#"m s="\t\r\n\v\\\"x""#);
        assert_eq!(e.get_field("s").and_then(Value::as_str), Some("\t\r\n\\v\\\"x"));
        assert!(rejected(br#"m s="open\""#));
    }

    #[test]
    fn control_characters_are_rejected_outside_strings() {
        for bad in
            [&b"m x\x01y=1"[..], b"m,x\x01y=v v=1", b"\tm v=1", b"m\x7f v=1", b"m,t=v\x00 v=1", b"# bad\x01 comment"]
        {
            assert!(rejected(bad), "{:?}", String::from_utf8_lossy(bad));
        }
        assert_eq!(ok(b"m s=\"a\x01\tb\"").get_field("s").and_then(Value::as_str), Some("a\x01\tb"));
        // Leading spaces are fine, and so is a comment with a tab? No: the
        // reference refuses any control character in a comment.
        assert_eq!(ok(b"   m v=1").name, "m");
        assert!(decode(b"# a fine comment\n  # another\r\n", Precision::Nanoseconds, 0).next().is_none());
    }

    #[test]
    fn a_tag_key_appears_once() {
        let e = dec(b"cpu,b=2,c=3,b=1 value=1i").unwrap_err();
        assert_eq!((e.column, e.message.as_str()), (13, "duplicate tag key `b`"));
        for line in [&b"m,state=ok,state=warning v=1"[..], b"m,host=a,host=b v=1", b"m,kind=banana,kind=delta v=1"] {
            assert!(dec(line).unwrap_err().message.starts_with("duplicate tag key"));
        }
        // A repeated key is refused once the record is read to its end.
        let out: Vec<_> = decode(b"m,a=1,a=2 s=\"x\ny\"\nn v=1", Precision::Nanoseconds, 0).collect();
        assert!(matches!(&out[..], [Err(e), Ok(n)] if e.line == 1 && n.name == "n"), "{out:?}");
        let e = dec(br#"m description="a",description="b""#).unwrap_err();
        assert_eq!((e.column, e.message.as_str()), (19, "duplicate field `description`"));
        // A kind or state that is not one is an ordinary tag; a ttl that is
        // not a float an ordinary field.
        let e = ok(b"m,kind=banana,state=meh v=1,ttl=5i");
        assert_eq!((e.kind, e.state), (Kind::Gauge, None));
        assert_eq!(e.tags.len(), 2);
        assert_eq!(e.get_field("ttl"), Some(&Value::Int(5)));
    }

    #[test]
    fn zero_is_the_epoch_and_only_a_missing_timestamp_is_unset() {
        assert_eq!(ok(b"cpu value=42 0").time, 0);
        assert_eq!(ok(b"cpu value=42").time, NO_TIME);
        assert_eq!(
            decode(b"a v=1\nb v=1 9", Precision::Nanoseconds, 42).map(|r| r.unwrap().time).collect::<Vec<_>>(),
            [42, 9]
        );
        assert_eq!(decode("m v=1 5", Precision::Milliseconds, 0).next().unwrap().unwrap().time, 5_000_000);
        assert!(decode("m v=1 9223372036854775", Precision::Milliseconds, 0).next().unwrap().is_err());
        assert_eq!(ok(b"m v=1 -9223372036854775807").time, -9_223_372_036_854_775_807);
        assert!(rejected(b"m v=1 -9223372036854775808"));
    }

    #[test]
    fn number_forms_follow_the_reference() {
        let value = |v: &str| dec(format!("m v={v}").as_bytes()).ok().map(|e| e.fields[0].1.clone());
        for (v, want) in [
            ("1", Some(Value::Float(1.0))),
            ("-0", Some(Value::Float(-0.0))),
            ("00012", Some(Value::Float(12.0))),
            ("1.", Some(Value::Float(1.0))),
            (".5", Some(Value::Float(0.5))),
            ("-.5e+3", Some(Value::Float(-500.0))),
            ("0.e1", Some(Value::Float(0.0))),
            ("1E5", Some(Value::Float(1e5))),
            ("1e-400", Some(Value::Float(0.0))),
            ("01i", Some(Value::Int(1))),
            ("-0i", Some(Value::Int(0))),
            ("-9223372036854775808i", Some(Value::Int(i64::MIN))),
            ("18446744073709551615u", Some(Value::Uint(u64::MAX))),
            ("0u", Some(Value::Uint(0))),
            ("t", Some(Value::Bool(true))),
            ("FALSE", Some(Value::Bool(false))),
        ] {
            assert_eq!(value(v), want, "{v}");
        }
        for v in [
            "+1",
            "+1i",
            "+1u",
            "1e400",
            "inf",
            "-inf",
            "nan",
            "-Infinity",
            ".",
            "1e",
            "1e+",
            ".e1",
            "-",
            "-i",
            "1.5i",
            "9223372036854775808i",
            "18446744073709551616u",
            "-0u",
            "1.0u",
            "1ei",
            "0x10",
            "0x1p3",
            "1_000",
            "tRue",
            "t1",
            "1+2",
            "--1",
        ] {
            assert_eq!(value(v), None, "{v}");
        }
        assert!(rejected(b"m v=1 +5"));
        assert!(rejected(b"m v=1 1-2"));
        assert!(rejected(b"m v=1 5x"));
    }

    #[test]
    fn line_ends_and_carriage_returns() {
        let evs: Vec<_> = decode(b"a v=1\r\nb v=2 5\r\nc v=3\r", Precision::Nanoseconds, 0).collect();
        assert!(evs.iter().all(Result::is_ok), "{evs:?}");
        assert!(rejected(b"m v=1\rx"));
        assert!(rejected(b"m v=1 5\rx"));
        assert!(rejected(b"\rm v=1"));
        assert!(rejected(b"m,t=v\r v=1"));
    }

    #[test]
    fn a_bad_record_costs_only_itself() {
        let input = b"ok v=1\n\n# comment\nbad,t v=1\nm v=nope\nm v=1 12x\nm\nm v=\"open\nlast v=2";
        let out: Vec<_> = decode(input, Precision::Nanoseconds, 0).collect();
        let errs: Vec<_> = out.iter().filter_map(|r| r.as_ref().err()).map(|e| (e.line, e.column)).collect();
        assert_eq!(errs, vec![(4, 6), (5, 5), (6, 7), (7, 2), (8, 5)]);
        assert_eq!(out[0].as_ref().unwrap().name, "ok");
        assert!(out[1].as_ref().unwrap_err().message.contains("'='"));
        assert!(out[2].as_ref().unwrap_err().message.contains("nope"));
        // Invalid UTF-8 costs its own record.
        let out: Vec<_> = decode(b"a v=1\nb\xff v=1\nc s=\"\xfe\"\nd v=2", Precision::Nanoseconds, 0).collect();
        let names: Vec<_> = out.iter().map(|r| r.as_ref().map(|e| e.name.clone()).map_err(|e| e.line)).collect();
        assert_eq!(names, [Ok("a".into()), Err(2), Err(3), Ok("d".into())]);
    }

    #[test]
    fn a_record_spans_lines_inside_a_string() {
        let input = b"a s=\"x\ny\"\nb,t= v=1\nc s=\"1\n2\",v=x\nd v=1";
        let out: Vec<_> = decode(input, Precision::Nanoseconds, 0).collect();
        assert_eq!(out[0].as_ref().unwrap().get_field("s").unwrap().as_str(), Some("x\ny"));
        let err = out[1].as_ref().unwrap_err();
        assert_eq!((err.line, err.column), (3, 5));
        let err = out[2].as_ref().unwrap_err();
        assert_eq!((err.line, err.column), (5, 6));
        assert_eq!(out[3].as_ref().unwrap().name, "d");
        assert_eq!(out.len(), 4);
    }

    #[test]
    fn a_stream_stops_before_a_record_it_may_not_hold_whole() {
        let chunks: [&[u8]; 6] = [b"a v=1\nb s=\"x", b"\ny\" 5\n# comm", b"ent\nc v=", b"2\r", b"\n  ", b"d v=3\n"];
        let (mut buf, mut line, mut got) = (Vec::new(), 1, Vec::new());
        for c in chunks {
            buf.extend_from_slice(c);
            let mut d = decode_stream(&buf, Precision::Nanoseconds, 0, line);
            got.extend(d.by_ref().map(|r| r.unwrap().name));
            let used = d.consumed();
            line = d.line();
            buf.drain(..used);
        }
        assert_eq!(got, ["a", "b", "c", "d"]);
        assert!(buf.is_empty());
        assert_eq!(line, 7);
        // At the end of the stream, what is left is decoded whole.
        let mut d = decode_stream(b"e v=1", Precision::Nanoseconds, 0, 1);
        assert!(d.next().is_none());
        assert_eq!(d.consumed(), 0);
    }
}
