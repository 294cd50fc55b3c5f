//! InfluxDB 1.x line protocol: encode events to lines and decode lines to events.
//!
//! `measurement[,tag=value…] field=value[,field=value…] [timestamp]`
//!
//! Escaping follows InfluxDB 1.x: commas and spaces in measurements; commas,
//! equals signs and spaces in tag keys, tag values and field keys; double quotes
//! and backslashes in string field values. A backslash in a name is written as
//! `\\` only where it would otherwise start an escape (before an escapable
//! character or at the end), so ordinary names look exactly as InfluxDB writes
//! them and every name still decodes to what was encoded. A line feed cannot
//! appear in a name or tag; the encoder writes it as a space.
//!
//! The event's own attributes travel under reserved names: the tags `host`,
//! `kind` (omitted for gauges) and `state`, and the fields `description`
//! (string) and `ttl` (float seconds). The decoder lifts them back, so
//! `decode(encode(event)) == event` for every event whose own tag and field
//! names avoid those five.

use std::fmt::{self, Write as _};

use crate::event::{Event, Kind, State, Value};

/// Timestamp precision of a line-protocol stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Precision {
    #[default]
    Nanoseconds,
    Microseconds,
    Milliseconds,
    Seconds,
    Minutes,
    Hours,
}

impl Precision {
    /// Nanoseconds per unit.
    pub fn factor(self) -> i64 {
        match self {
            Precision::Nanoseconds => 1,
            Precision::Microseconds => 1_000,
            Precision::Milliseconds => 1_000_000,
            Precision::Seconds => 1_000_000_000,
            Precision::Minutes => 60_000_000_000,
            Precision::Hours => 3_600_000_000_000,
        }
    }

    /// Parses InfluxDB's names: `ns`/`n`, `u`/`us`/`µ`, `ms`, `s`, `m`, `h`.
    pub fn parse(s: &str) -> Option<Precision> {
        Some(match s {
            "n" | "ns" => Precision::Nanoseconds,
            "u" | "us" | "µ" | "µs" => Precision::Microseconds,
            "ms" => Precision::Milliseconds,
            "s" => Precision::Seconds,
            "m" => Precision::Minutes,
            "h" => Precision::Hours,
            _ => return None,
        })
    }
}

/// Reserved names carrying the event's own attributes.
pub mod reserved {
    pub const HOST: &str = "host";
    pub const KIND: &str = "kind";
    pub const STATE: &str = "state";
    pub const DESCRIPTION: &str = "description";
    pub const TTL: &str = "ttl";
}

// ---------------------------------------------------------------- encoding

/// Which characters a name must escape, by position in the line.
#[derive(Clone, Copy)]
enum Ctx {
    Measurement,
    Key,
}

fn needs_escape(ctx: Ctx, c: char) -> bool {
    match ctx {
        Ctx::Measurement => c == ',' || c == ' ',
        Ctx::Key => c == ',' || c == ' ' || c == '=',
    }
}

fn write_name(out: &mut String, s: &str, ctx: Ctx) {
    let mut chars = s.chars().peekable();
    let mut first = true;
    while let Some(c) = chars.next() {
        let c = if c == '\n' { ' ' } else { c };
        match c {
            '\\' => {
                let next = chars.peek().copied();
                match next {
                    None => out.push_str("\\\\"),
                    Some(n)
                        if n == '\\'
                            || needs_escape(ctx, n)
                            || n == '\n'
                            || (n == '#' && matches!(ctx, Ctx::Measurement)) =>
                    {
                        out.push_str("\\\\")
                    }
                    Some(_) => out.push('\\'),
                }
            }
            '#' if first && matches!(ctx, Ctx::Measurement) => out.push_str("\\#"),
            c if needs_escape(ctx, c) => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
        first = false;
    }
}

fn write_string_value(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
}

fn write_float(out: &mut String, v: f64) {
    // Debug gives the shortest representation that parses back to the same
    // value, with an exponent for very large or small magnitudes.
    let _ = write!(out, "{v:?}");
}

/// Encodes one event as one line (with its trailing newline) into `out`.
///
/// Returns false and writes nothing when the event cannot be a valid point:
/// an empty name, or no field left after dropping non-finite floats (InfluxDB
/// rejects NaN and infinities) and empty keys.
pub fn encode_into(out: &mut String, ev: &Event, precision: Precision) -> bool {
    encode_into_with(out, ev, precision, true)
}

/// As [`encode_into`]; with `unsigned` false, unsigned fields are written as
/// integers (`5i`), as InfluxDB 1.x builds without unsigned support require
/// (values above `i64::MAX` are clamped to it).
pub fn encode_into_with(out: &mut String, ev: &Event, precision: Precision, unsigned: bool) -> bool {
    let encodable = |(k, v): &&(String, Value)| !k.is_empty() && !matches!(v, Value::Float(f) if !f.is_finite());
    let has_extra = ev.description.is_some() || ev.ttl.is_some_and(f64::is_finite);
    if ev.name.is_empty() || (!has_extra && !ev.fields.iter().any(|f| encodable(&f))) {
        return false;
    }
    write_name(out, &ev.name, Ctx::Measurement);
    let tag = |out: &mut String, k: &str, v: &str| {
        if !k.is_empty() && !v.is_empty() {
            out.push(',');
            write_name(out, k, Ctx::Key);
            out.push('=');
            write_name(out, v, Ctx::Key);
        }
    };
    tag(out, reserved::HOST, &ev.host);
    for (k, v) in &ev.tags {
        // A `host` tag beside the event's host (a scraped label, a column)
        // would repeat the key, which no reader takes: the event's own wins.
        if k != reserved::HOST || ev.host.is_empty() {
            tag(out, k, v);
        }
    }
    if ev.kind != Kind::Gauge {
        tag(out, reserved::KIND, ev.kind.as_str());
    }
    if let Some(s) = ev.state {
        tag(out, reserved::STATE, s.as_str());
    }
    let mut sep = ' ';
    for (k, v) in ev.fields.iter().filter(|f| encodable(f)) {
        out.push(sep);
        sep = ',';
        write_name(out, k, Ctx::Key);
        out.push('=');
        match v {
            Value::Uint(u) if !unsigned => {
                let _ = write!(out, "{}i", (*u).min(i64::MAX as u64));
            }
            v => write_value(out, v),
        }
    }
    if let Some(d) = &ev.description {
        out.push(sep);
        sep = ',';
        out.push_str(reserved::DESCRIPTION);
        out.push('=');
        write_string_value(out, d);
    }
    if let Some(t) = ev.ttl.filter(|t| t.is_finite()) {
        out.push(sep);
        out.push_str(reserved::TTL);
        out.push('=');
        write_float(out, t);
    }
    if ev.time != 0 {
        let _ = write!(out, " {}", ev.time.div_euclid(precision.factor()));
    }
    out.push('\n');
    true
}

fn write_value(out: &mut String, v: &Value) {
    match v {
        Value::Float(f) => write_float(out, *f),
        Value::Int(i) => {
            let _ = write!(out, "{i}i");
        }
        Value::Uint(u) => {
            let _ = write!(out, "{u}u");
        }
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Str(s) => write_string_value(out, s),
    }
}

/// Encodes one event as a line without the trailing newline (empty if not encodable).
pub fn encode(ev: &Event, precision: Precision) -> String {
    let mut s = String::with_capacity(64);
    if encode_into(&mut s, ev, precision) {
        s.pop();
    }
    s
}

// ---------------------------------------------------------------- decoding

/// A line that could not be decoded, with its 1-based line and column.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("line {line}, column {column}: {message}")]
pub struct ParseError {
    pub line: usize,
    pub column: usize,
    pub message: String,
}

/// Decodes a buffer of lines; an iterator of events and errors, one per line.
///
/// Blank lines and `#` comments are skipped. A bad line yields one error and
/// decoding goes on with the next line. Points without a timestamp get
/// `default_time` (0 leaves them for the runtime to stamp).
pub fn decode(input: &str, precision: Precision, default_time: i64) -> Decoder<'_> {
    Decoder { src: input, pos: 0, line: 1, precision, default_time }
}

/// Decodes a single line (no trailing newline needed).
pub fn decode_line(line: &str, precision: Precision) -> Result<Event, ParseError> {
    match decode(line, precision, 0).next() {
        Some(r) => r,
        None => Err(ParseError { line: 1, column: 1, message: "empty line".into() }),
    }
}

/// Iterator returned by [`decode`].
pub struct Decoder<'a> {
    src: &'a str,
    pos: usize,
    line: usize,
    precision: Precision,
    default_time: i64,
}

struct Fail {
    at: usize,
    message: String,
}

fn fail<T>(at: usize, message: impl fmt::Display) -> Result<T, Fail> {
    Err(Fail { at, message: message.to_string() })
}

impl Iterator for Decoder<'_> {
    type Item = Result<Event, ParseError>;

    fn next(&mut self) -> Option<Self::Item> {
        let b = self.src.as_bytes();
        loop {
            if self.pos >= b.len() {
                return None;
            }
            let start = self.pos;
            // Leading white space, blank lines and comments.
            let mut i = start;
            while i < b.len() && (b[i] == b' ' || b[i] == b'\t') {
                i += 1;
            }
            if i >= b.len() {
                self.pos = b.len();
                return None;
            }
            let blank_cr = b[i] == b'\r' && b.get(i + 1).is_none_or(|&c| c == b'\n');
            if b[i] == b'\n' || b[i] == b'#' || blank_cr {
                let end = memchr(b'\n', b, i).unwrap_or(b.len());
                self.pos = end + 1;
                self.line += 1;
                continue;
            }
            let line_no = self.line;
            let mut p = LineParser { b, src: self.src, i, newlines: 0 };
            return Some(match p.line(self.precision, self.default_time) {
                Ok(ev) => {
                    self.pos = p.i + 1;
                    self.line += p.newlines + 1;
                    Ok(ev)
                }
                Err(f) => {
                    // Column within the line where the error was found.
                    let line_start = self.src[..f.at.min(b.len())].rfind('\n').map_or(0, |n| n + 1).max(start);
                    let nl_before = self.src[start..line_start].matches('\n').count();
                    let column = self.src[line_start..f.at.min(b.len())].chars().count() + 1;
                    let end = memchr(b'\n', b, f.at.min(b.len())).unwrap_or(b.len());
                    self.line += self.src[start..end].matches('\n').count() + 1;
                    self.pos = end + 1;
                    Err(ParseError { line: line_no + nl_before, column, message: f.message })
                }
            });
        }
    }
}

fn memchr(needle: u8, b: &[u8], from: usize) -> Option<usize> {
    b[from..].iter().position(|&c| c == needle).map(|p| p + from)
}

struct LineParser<'a> {
    b: &'a [u8],
    src: &'a str,
    i: usize,
    newlines: usize,
}

impl<'a> LineParser<'a> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    /// Reads a name up to an unescaped stop byte; returns the raw slice.
    fn raw_name(&mut self, stops: &[u8]) -> (&'a str, bool) {
        let start = self.i;
        let mut escaped = false;
        while let Some(c) = self.peek() {
            if c == b'\\' && self.i + 1 < self.b.len() && self.b[self.i + 1] != b'\n' {
                escaped = true;
                self.i += 2;
                continue;
            }
            if c == b'\n' || stops.contains(&c) {
                break;
            }
            self.i += 1;
        }
        (&self.src[start..self.i], escaped)
    }

    fn line(&mut self, precision: Precision, default_time: i64) -> Result<Event, Fail> {
        let m_start = self.i;
        let (raw, esc) = self.raw_name(b", ");
        if raw.is_empty() {
            return fail(m_start, "missing measurement");
        }
        let mut ev = Event::new(unescape(raw, esc, b", #"));
        let mut kind = None;
        let mut state = None;
        let mut host = None;
        while self.peek() == Some(b',') {
            self.i += 1;
            let at = self.i;
            let (k, kesc) = self.raw_name(b",= ");
            if k.is_empty() {
                return fail(at, "missing tag key");
            }
            if self.peek() != Some(b'=') {
                return fail(self.i, format!("missing '=' after tag key {:?}", k));
            }
            self.i += 1;
            let vat = self.i;
            let (v, vesc) = self.raw_name(b",= ");
            if v.is_empty() {
                return fail(vat, "missing tag value");
            }
            if self.peek() == Some(b'=') {
                return fail(self.i, "unescaped '=' in tag value");
            }
            let k = unescape(k, kesc, b",= ");
            let v = unescape(v, vesc, b",= ");
            // The first valid reserved tag is the event's attribute; a second
            // one would be ambiguous.
            let dup = || fail(at, format!("duplicate tag `{k}`"));
            match k.as_str() {
                reserved::HOST if host.is_some() => return dup(),
                reserved::HOST => host = Some(v),
                reserved::KIND if Kind::parse(&v).is_some() => {
                    if kind.is_some() {
                        return dup();
                    }
                    kind = Kind::parse(&v)
                }
                reserved::STATE if State::parse(&v).is_some() => {
                    if state.is_some() {
                        return dup();
                    }
                    state = State::parse(&v)
                }
                _ => ev.tags.push((k, v)),
            }
        }
        if self.peek() != Some(b' ') {
            return fail(self.i, "missing fields");
        }
        while self.peek() == Some(b' ') {
            self.i += 1;
        }
        loop {
            let at = self.i;
            let (k, kesc) = self.raw_name(b",= ");
            if k.is_empty() {
                return fail(at, "missing field key");
            }
            if self.peek() != Some(b'=') {
                return fail(self.i, format!("missing '=' after field key {:?}", k));
            }
            self.i += 1;
            let value = self.field_value()?;
            let k = unescape(k, kesc, b",= ");
            let dup = || fail(at, format!("duplicate field `{k}`"));
            match (k.as_str(), value) {
                (reserved::DESCRIPTION, Value::Str(_)) if ev.description.is_some() => {
                    return dup();
                }
                (reserved::DESCRIPTION, Value::Str(s)) => ev.description = Some(s),
                (reserved::TTL, Value::Float(_)) if ev.ttl.is_some() => return dup(),
                (reserved::TTL, Value::Float(f)) => ev.ttl = Some(f),
                (_, value) => ev.fields.push((k, value)),
            }
            if self.peek() == Some(b',') {
                self.i += 1;
                continue;
            }
            break;
        }
        let mut time = default_time;
        if self.peek() == Some(b' ') {
            while self.peek() == Some(b' ') {
                self.i += 1;
            }
            let at = self.i;
            while let Some(c) = self.peek() {
                if c == b' ' || c == b'\n' || c == b'\r' {
                    break;
                }
                self.i += 1;
            }
            let tok = &self.src[at..self.i];
            if !tok.is_empty() {
                let t: i64 = tok.parse().or_else(|_| fail(at, format!("invalid timestamp {tok:?}")))?;
                time = t
                    .checked_mul(precision.factor())
                    .ok_or(())
                    .or_else(|_| fail(at, format!("timestamp {tok} out of range")))?;
            }
            while self.peek() == Some(b' ') {
                self.i += 1;
            }
        }
        if self.peek() == Some(b'\r') {
            self.i += 1;
        }
        match self.peek() {
            None | Some(b'\n') => {}
            Some(_) => return fail(self.i, "unexpected text after the point"),
        }
        ev.time = time;
        ev.host = host.unwrap_or_default();
        ev.kind = kind.unwrap_or_default();
        ev.state = state;
        Ok(ev)
    }

    fn field_value(&mut self) -> Result<Value, Fail> {
        let at = self.i;
        if self.peek() == Some(b'"') {
            self.i += 1;
            let start = self.i;
            let mut escaped = false;
            loop {
                match self.peek() {
                    None => return fail(at, "unterminated string value"),
                    Some(b'\\') if self.i + 1 < self.b.len() => {
                        escaped = true;
                        if self.b[self.i + 1] == b'\n' {
                            self.newlines += 1;
                        }
                        self.i += 2;
                    }
                    Some(b'"') => break,
                    Some(c) => {
                        if c == b'\n' {
                            self.newlines += 1;
                        }
                        self.i += 1;
                    }
                }
            }
            let raw = &self.src[start..self.i];
            self.i += 1;
            return Ok(Value::Str(unescape(raw, escaped, b"\"\\")));
        }
        while let Some(c) = self.peek() {
            if c == b',' || c == b' ' || c == b'\n' || c == b'\r' {
                break;
            }
            self.i += 1;
        }
        let tok = &self.src[at..self.i];
        if tok.is_empty() {
            return fail(at, "missing field value");
        }
        parse_scalar(tok)
            .ok_or(())
            .or_else(|_| fail(at, format!("invalid field value {tok:?}: not a number, boolean or string")))
    }
}

fn parse_scalar(tok: &str) -> Option<Value> {
    match tok {
        "t" | "T" | "true" | "True" | "TRUE" => return Some(Value::Bool(true)),
        "f" | "F" | "false" | "False" | "FALSE" => return Some(Value::Bool(false)),
        _ => {}
    }
    let bytes = tok.as_bytes();
    let last = *bytes.last()?;
    if last == b'i' {
        return tok[..tok.len() - 1].parse().ok().map(Value::Int);
    }
    if last == b'u' {
        return tok[..tok.len() - 1].parse().ok().map(Value::Uint);
    }
    // Only digits, sign, point and exponent: rejects "inf", "NaN" and friends.
    if !bytes.iter().all(|c| c.is_ascii_digit() || matches!(c, b'-' | b'+' | b'.' | b'e' | b'E')) {
        return None;
    }
    tok.parse::<f64>().ok().filter(|f| f.is_finite()).map(Value::Float)
}

/// Removes escapes for the given characters (and `\\`); other backslashes stay.
fn unescape(raw: &str, escaped: bool, set: &[u8]) -> String {
    if !escaped {
        return raw.to_owned();
    }
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars().peekable();
    while let Some(c) = chars.next() {
        if let Some(&n) = chars.peek().filter(|_| c == '\\')
            && (n == '\\' || (n.is_ascii() && set.contains(&(n as u8))))
        {
            out.push(n);
            chars.next();
            continue;
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_host_tag_beside_the_events_host_is_not_repeated() {
        let e = Event::new("m").host("h1").tag("host", "h2").field("v", 1i64);
        let line = encode(&e, Precision::Nanoseconds);
        assert_eq!(line, "m,host=h1 v=1i");
        assert!(decode_line(&line, Precision::Nanoseconds).is_ok());
        let e = Event::new("m").tag("host", "h2").field("v", 1i64);
        assert_eq!(encode(&e, Precision::Nanoseconds), "m,host=h2 v=1i");
    }

    fn dec(s: &str) -> Event {
        decode_line(s, Precision::Nanoseconds).unwrap()
    }

    #[test]
    fn encodes_per_spec() {
        let e = Event::new("cpu load,x")
            .tag("region name", "us=west")
            .field("v", 1.0)
            .field("n", -3i64)
            .field("u", 7u64)
            .field("ok", true)
            .field("msg", "say \"hi\" \\o/")
            .at(1_500_000_000_123_456_789);
        assert_eq!(
            encode(&e, Precision::Nanoseconds),
            r#"cpu\ load\,x,region\ name=us\=west v=1.0,n=-3i,u=7u,ok=true,msg="say \"hi\" \\o/" 1500000000123456789"#
        );
        assert_eq!(
            encode(&e, Precision::Seconds),
            r#"cpu\ load\,x,region\ name=us\=west v=1.0,n=-3i,u=7u,ok=true,msg="say \"hi\" \\o/" 1500000000"#
        );
    }

    #[test]
    fn reserved_attributes_travel_as_tags_and_fields() {
        let e = Event::counter("disk", 5u64).host("web-01").state(State::Warning).description("nearly full").ttl(30.0);
        let line = encode(&e, Precision::Nanoseconds);
        assert_eq!(line, r#"disk,host=web-01,kind=counter,state=warning value=5u,description="nearly full",ttl=30.0"#);
        assert_eq!(dec(&line), e);
    }

    #[test]
    fn backslashes_round_trip() {
        for name in ["a\\", "a\\b", "a\\,b", "\\\\", "x\\ y", "#hash"] {
            let e = Event::new(name).tag(name, name).field(name, 1i64);
            let line = encode(&e, Precision::Nanoseconds);
            assert_eq!(dec(&line), e, "{line}");
        }
        // An ordinary backslash is written as InfluxDB writes it.
        assert_eq!(encode(&Event::new("a\\b").field("v", 1i64), Precision::Nanoseconds), "a\\b v=1i");
    }

    #[test]
    fn drops_what_influx_cannot_store() {
        assert_eq!(encode(&Event::gauge("x", f64::NAN), Precision::Nanoseconds), "");
        let e = Event::gauge("x", f64::INFINITY).field("y", 2i64);
        assert_eq!(encode(&e, Precision::Nanoseconds), "x y=2i");
    }

    #[test]
    fn decodes_variants() {
        let e = dec("m,t=1 a=1,b=-2i,c=3u,d=T,e=f,f=\"s\",g=1e3,h=.5  -10");
        assert_eq!(e.time, -10);
        let vals: Vec<_> = e.fields.iter().map(|(_, v)| v.clone()).collect();
        assert_eq!(
            vals,
            vec![
                Value::Float(1.0),
                Value::Int(-2),
                Value::Uint(3),
                Value::Bool(true),
                Value::Bool(false),
                Value::Str("s".into()),
                Value::Float(1000.0),
                Value::Float(0.5),
            ]
        );
        let e = decode_line("m v=1 5", Precision::Milliseconds).unwrap();
        assert_eq!(e.time, 5_000_000);
    }

    #[test]
    fn errors_name_line_and_column() {
        let input = "ok v=1\n\n# comment\nbad,t v=1\nm v=nope\nm v=1 12x\nm\nm v=\"open\nlast v=2";
        let out: Vec<_> = decode(input, Precision::Nanoseconds, 0).collect();
        let errs: Vec<_> = out.iter().filter_map(|r| r.as_ref().err()).map(|e| (e.line, e.column)).collect();
        assert_eq!(errs, vec![(4, 6), (5, 5), (6, 7), (7, 2), (8, 5)]);
        assert_eq!(out[0].as_ref().unwrap().name, "ok");
        assert!(out[1].as_ref().unwrap_err().message.contains("tag key"));
        assert!(out[2].as_ref().unwrap_err().message.contains("nope"));
    }

    #[test]
    fn newline_inside_string_counts_lines() {
        let input = "a s=\"x\ny\"\nb,t= v=1";
        let out: Vec<_> = decode(input, Precision::Nanoseconds, 0).collect();
        assert_eq!(out[0].as_ref().unwrap().get_field("s").unwrap().as_str(), Some("x\ny"));
        let err = out[1].as_ref().unwrap_err();
        assert_eq!((err.line, err.column), (3, 5));
    }

    #[test]
    fn carriage_returns_in_names_survive_a_round_trip() {
        // Found by the fuzz target: a name the decoder accepts must encode back.
        let e = dec("\r\r\r\u{1}V= ;=7");
        assert_eq!(e.name, "\r\r\r\u{1}V=");
        assert_eq!(dec(&encode(&e, Precision::Nanoseconds)), e);
    }

    #[test]
    fn a_second_reserved_attribute_is_an_error() {
        for (line, col) in [
            ("m,state=ok,state=warning v=1", 12),
            ("m,host=a,host=b v=1", 10),
            ("m description=\"a\",description=\"b\"", 19),
        ] {
            let e = decode_line(line, Precision::Nanoseconds).unwrap_err();
            assert_eq!(e.column, col, "{line}: {e}");
            assert!(e.message.starts_with("duplicate"), "{e}");
        }
        // Invalid values are ordinary tags and fields.
        let e = dec("m,kind=banana,kind=delta v=1,ttl=5i");
        assert_eq!(e.kind, Kind::Delta);
        assert_eq!(e.tags, vec![("kind".to_owned(), "banana".to_owned())]);
        assert_eq!(e.get_field("ttl"), Some(&Value::Int(5)));
        assert_eq!(dec(&encode(&e, Precision::Nanoseconds)), e);
    }

    #[test]
    fn default_time_fills_missing_timestamp() {
        let e: Vec<_> = decode("a v=1\nb v=1 9", Precision::Nanoseconds, 42).map(Result::unwrap).collect();
        assert_eq!((e[0].time, e[1].time), (42, 9));
    }

    mod prop {
        use super::*;
        use proptest::prelude::*;

        fn ident() -> impl Strategy<Value = String> {
            "[^\n\t][^\n]{0,10}"
        }

        fn key() -> impl Strategy<Value = String> {
            ident().prop_filter("reserved", |k| {
                ![reserved::HOST, reserved::KIND, reserved::STATE, reserved::DESCRIPTION, reserved::TTL]
                    .contains(&k.as_str())
            })
        }

        fn value() -> impl Strategy<Value = Value> {
            prop_oneof![
                any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(Value::Float),
                any::<i64>().prop_map(Value::Int),
                any::<u64>().prop_map(Value::Uint),
                any::<bool>().prop_map(Value::Bool),
                ".{0,12}".prop_map(Value::Str),
            ]
        }

        prop_compose! {
            fn event()(
                name in ident(),
                time in any::<i64>(),
                host in prop_oneof![Just(String::new()), ident()],
                tags in proptest::collection::vec((key(), ident()), 0..4),
                fields in proptest::collection::vec((key(), value()), 1..5),
                kind in prop_oneof![Just(Kind::Gauge), Just(Kind::Counter), Just(Kind::Delta)],
                state in proptest::option::of(prop_oneof![
                    Just(State::Ok), Just(State::Warning), Just(State::Critical), Just(State::Unknown)
                ]),
                description in proptest::option::of(".{0,12}"),
                ttl in proptest::option::of(any::<f64>().prop_filter("finite", |f| f.is_finite())),
            ) -> Event {
                Event { name, time, host, tags, fields, kind, state, description, ttl }
            }
        }

        proptest! {
            #[test]
            fn encode_then_decode_round_trips(ev in event()) {
                let mut buf = String::new();
                prop_assert!(encode_into(&mut buf, &ev, Precision::Nanoseconds));
                let back: Vec<_> = decode(&buf, Precision::Nanoseconds, 0).collect();
                prop_assert_eq!(back.len(), 1);
                prop_assert_eq!(back[0].as_ref().unwrap(), &ev);
            }

            #[test]
            fn many_lines_round_trip(evs in proptest::collection::vec(event(), 1..8)) {
                let mut buf = String::new();
                for e in &evs {
                    encode_into(&mut buf, e, Precision::Nanoseconds);
                }
                let back: Vec<Event> = decode(&buf, Precision::Nanoseconds, 0)
                    .collect::<std::result::Result<_, _>>()
                    .unwrap();
                prop_assert_eq!(back, evs);
            }

            #[test]
            fn decoding_garbage_never_panics(s in "\\PC{0,64}") {
                for r in decode(&s, Precision::Nanoseconds, 0) {
                    if let Err(e) = r {
                        prop_assert!(e.line >= 1 && e.column >= 1);
                    }
                }
            }
        }
    }
}
