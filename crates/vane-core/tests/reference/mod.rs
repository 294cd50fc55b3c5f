//! A deliberately simple reading of line protocol, written from the grammar
//! (InfluxDB's EBNF, with the reference decoder's string escapes and its
//! rule that a bad record ends at the line feed after the point where
//! reading stopped), to check vane's decoder against. It allocates freely,
//! reads the whole input at once and shares no code with the decoder.
//!
//! Used by `tests/lineproto.rs` and by the fuzz target `lineproto_differential`.

#![allow(dead_code, reason = "each user of the reference calls only part of it")]

use vane_core::event::{Event, Kind, State, Value};

/// A point as the grammar reads it, before vane's own conventions.
#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    pub measurement: String,
    pub tags: Vec<(String, String)>,
    pub fields: Vec<(String, Value)>,
    pub time: Option<i64>,
}

/// In a string field value, what follows a backslash and what the pair
/// stands for; a backslash before anything else is itself.
const STRING_ESCAPES: [(u8, u8); 5] = [(b'\\', b'\\'), (b'"', b'"'), (b'n', b'\n'), (b'r', b'\r'), (b't', b'\t')];

fn control(c: u8) -> bool {
    c < 0x20 || c == 0x7f
}

struct Cursor<'a> {
    b: &'a [u8],
    i: usize,
}

impl Cursor<'_> {
    fn at(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    fn next_is(&self, c: u8) -> bool {
        self.at() == Some(c)
    }

    fn eat(&mut self, c: u8) -> bool {
        let yes = self.next_is(c);
        if yes {
            self.i += 1;
        }
        yes
    }

    fn spaces(&mut self) {
        while self.eat(b' ') {}
    }

    /// At the end of the input, or past a line's end (`\n`, `\r\n`, or a
    /// `\r` that ends the input).
    fn end_of_line(&mut self) -> bool {
        let rest = &self.b[self.i..];
        let n = if rest.is_empty() {
            0
        } else if rest.starts_with(b"\n") || rest == b"\r" {
            1
        } else if rest.starts_with(b"\r\n") {
            2
        } else {
            return false;
        };
        self.i += n;
        true
    }

    fn skip_past_line_feed(&mut self) {
        while let Some(c) = self.at() {
            self.i += 1;
            if c == b'\n' {
                return;
            }
        }
    }

    /// As the reference decoder after a point with no timestamp fails at
    /// its end: up to a line feed, or to a lone `\r`, which is left to
    /// start the next record.
    fn skip_to_line_end(&mut self) {
        while let Some(c) = self.at() {
            if c == b'\r' && self.b.get(self.i + 1) != Some(&b'\n') {
                return;
            }
            self.i += 1;
            if c == b'\n' {
                return;
            }
        }
    }
}

/// Every record of the input: its point, or `Err` for a record that
/// breaks the grammar.
pub fn parse(input: &[u8]) -> Vec<Result<Point, ()>> {
    let mut c = Cursor { b: input, i: 0 };
    let mut out = Vec::new();
    loop {
        c.spaces();
        if c.at().is_none() {
            return out;
        }
        if c.end_of_line() {
            continue;
        }
        if c.eat(b'#') {
            while c.at().is_some_and(|x| !control(x)) {
                c.i += 1;
            }
            if c.end_of_line() {
                continue;
            }
            out.push(Err(()));
            c.skip_past_line_feed();
            continue;
        }
        let p = point(&mut c);
        match p {
            Err(Stop::Line) => c.skip_past_line_feed(),
            Err(Stop::LineOrCr) => c.skip_to_line_end(),
            Ok(_) => {}
        }
        out.push(p.map_err(|_| ()));
    }
}

/// Where a bad record ends.
enum Stop {
    Line,
    LineOrCr,
}

impl From<()> for Stop {
    fn from(_: ()) -> Stop {
        Stop::Line
    }
}

fn point(c: &mut Cursor) -> Result<Point, Stop> {
    let measurement = name(c, b" ,", b" ,")?;
    if measurement.is_empty() {
        return Err(Stop::Line);
    }
    let mut tags = Vec::new();
    while c.eat(b',') {
        let k = name(c, b",= ", b",= ")?;
        if k.is_empty() || !c.eat(b'=') {
            return Err(Stop::Line);
        }
        let v = name(c, b",= ", b",= ")?;
        if v.is_empty() {
            return Err(Stop::Line);
        }
        tags.push((k, v));
    }
    if !c.eat(b' ') {
        return Err(Stop::Line);
    }
    c.spaces();
    let mut fields = Vec::new();
    loop {
        let k = name(c, b",= ", b",= ")?;
        if k.is_empty() || !c.eat(b'=') {
            return Err(Stop::Line);
        }
        fields.push((k, value(c)?));
        if !c.eat(b',') {
            break;
        }
    }
    if !matches!(c.at(), None | Some(b' ' | b'\r' | b'\n')) {
        return Err(Stop::Line);
    }
    c.spaces();
    if c.end_of_line() {
        return Ok(Point { measurement, tags, fields, time: None });
    }
    let start = c.i;
    c.eat(b'-');
    while c.at().is_some_and(|x| x.is_ascii_digit()) {
        c.i += 1;
    }
    if c.i == start {
        return Err(Stop::LineOrCr);
    }
    let text = std::str::from_utf8(&c.b[start..c.i]).map_err(|_| ())?;
    let time: i64 = text.parse().map_err(|_| ())?;
    // vane's one departure: the earliest instant means "no time" to it.
    if time == i64::MIN {
        return Err(Stop::Line);
    }
    if !matches!(c.at(), None | Some(b' ' | b'\r' | b'\n')) {
        return Err(Stop::Line);
    }
    c.spaces();
    if !c.end_of_line() {
        return Err(Stop::Line);
    }
    Ok(Point { measurement, tags, fields, time: Some(time) })
}

/// A name up to one of `stops` or a control character; a backslash before
/// one of `escapes` stands for it, any other backslash for itself.
fn name(c: &mut Cursor, stops: &[u8], escapes: &[u8]) -> Result<String, ()> {
    let mut out = Vec::new();
    while let Some(x) = c.at() {
        if x == b'\\' {
            match c.b.get(c.i + 1) {
                Some(n) if escapes.contains(n) => {
                    out.push(*n);
                    c.i += 2;
                }
                _ => {
                    out.push(b'\\');
                    c.i += 1;
                }
            }
        } else if control(x) || stops.contains(&x) {
            break;
        } else {
            out.push(x);
            c.i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| ())
}

fn value(c: &mut Cursor) -> Result<Value, ()> {
    if c.eat(b'"') {
        let mut out = Vec::new();
        loop {
            match c.at() {
                None => return Err(()),
                Some(b'"') => {
                    c.i += 1;
                    break;
                }
                Some(b'\\') => {
                    let next = c.b.get(c.i + 1).copied();
                    match STRING_ESCAPES.iter().find(|(e, _)| Some(*e) == next) {
                        Some(&(_, u)) => {
                            out.push(u);
                            c.i += 2;
                        }
                        None => {
                            out.push(b'\\');
                            c.i += 1;
                        }
                    }
                }
                Some(x) => {
                    out.push(x);
                    c.i += 1;
                }
            }
        }
        return String::from_utf8(out).map(Value::Str).map_err(|_| ());
    }
    let start = c.i;
    while c.at().is_some_and(|x| !matches!(x, b',' | b' ' | b'\r' | b'\n')) {
        c.i += 1;
    }
    let tok = &c.b[start..c.i];
    match tok {
        b"t" | b"T" | b"true" | b"True" | b"TRUE" => return Ok(Value::Bool(true)),
        b"f" | b"F" | b"false" | b"False" | b"FALSE" => return Ok(Value::Bool(false)),
        _ => {}
    }
    let text = std::str::from_utf8(tok).map_err(|_| ())?;
    if let Some(i) = text.strip_suffix('i') {
        let digits = i.strip_prefix('-').unwrap_or(i);
        if !all_digits(digits) {
            return Err(());
        }
        return i.parse().map(Value::Int).map_err(|_| ());
    }
    if let Some(u) = text.strip_suffix('u') {
        if !all_digits(u) {
            return Err(());
        }
        return u.parse().map(Value::Uint).map_err(|_| ());
    }
    if !float_literal(text.strip_prefix('-').unwrap_or(text)) {
        return Err(());
    }
    let f: f64 = text.parse().map_err(|_| ())?;
    if f.is_finite() { Ok(Value::Float(f)) } else { Err(()) }
}

fn all_digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|c| c.is_ascii_digit())
}

/// `non_negative_float` of the grammar: `d+ [. [d+] [exp]]`, `d+ exp`,
/// or `. d+ [exp]`, where `exp` is `(e|E) [+|-] d+`.
fn float_literal(s: &str) -> bool {
    fn exponent(s: &str) -> bool {
        match s.strip_prefix(['e', 'E']) {
            None => false,
            Some(rest) => all_digits(rest.strip_prefix(['+', '-']).unwrap_or(rest)),
        }
    }
    let (int, rest) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    if rest.is_empty() {
        return !int.is_empty();
    }
    if let Some(after) = rest.strip_prefix('.') {
        let (frac, exp) = after.split_at(after.find(|c: char| !c.is_ascii_digit()).unwrap_or(after.len()));
        if int.is_empty() && frac.is_empty() {
            return false;
        }
        return exp.is_empty() || exponent(exp);
    }
    !int.is_empty() && exponent(rest)
}

/// vane's conventions on a point: `host`, a valid `kind` and a valid
/// `state` tag, a string `description` and a float `ttl` field are the
/// event's own; a tag key may appear once, `description` and `ttl` too.
pub fn event(p: Point, default_time: i64) -> Result<Event, ()> {
    let mut e = Event::new(p.measurement);
    let mut keys: Vec<&str> = p.tags.iter().map(|(k, _)| k.as_str()).collect();
    keys.sort_unstable();
    if keys.windows(2).any(|w| w[0] == w[1]) {
        return Err(());
    }
    for (k, v) in p.tags {
        match (k.as_str(), Kind::parse(&v), State::parse(&v)) {
            ("host", _, _) => e.host = v.into(),
            ("kind", Some(kind), _) => e.kind = kind,
            ("state", _, Some(state)) => e.state = Some(state),
            _ => e.tags.push((k.into(), v.into())),
        }
    }
    for (k, v) in p.fields {
        match (k.as_str(), v) {
            ("description", Value::Str(s)) => {
                if e.description.replace(s).is_some() {
                    return Err(());
                }
            }
            ("ttl", Value::Float(f)) => {
                if e.ttl.replace(f).is_some() {
                    return Err(());
                }
            }
            (_, v) => e.fields.push((k.into(), v)),
        }
    }
    e.time = p.time.unwrap_or(default_time);
    Ok(e)
}

/// The events of an input by the reference, `Err` for each bad record.
pub fn events(input: &[u8], default_time: i64) -> Vec<Result<Event, ()>> {
    parse(input).into_iter().map(|p| p.and_then(|p| event(p, default_time))).collect()
}
