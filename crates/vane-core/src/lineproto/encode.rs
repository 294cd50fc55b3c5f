//! Events to lines.

use std::fmt::Write as _;

use super::{Precision, is_control, reserved};
use crate::event::{Event, Kind, NO_TIME, Text, Value};

/// Where a name stands in the line, which decides what it escapes.
#[derive(Clone, Copy)]
enum Place {
    Measurement,
    Key,
}

impl Place {
    fn escapes(self, c: char) -> bool {
        match self {
            Place::Measurement => c == ',' || c == ' ',
            Place::Key => c == ',' || c == ' ' || c == '=',
        }
    }
}

/// What of a name can be written: a trailing backslash would escape the
/// separator after it, so trailing backslashes are left out.
fn writable(s: &str) -> &str {
    s.trim_end_matches('\\')
}

/// Writes a name that [`writable`] already trimmed. A control character is
/// written as a space (escaped); a backslash as itself, which the reader
/// takes literally unless an escapable character follows — and one that
/// does is escaped itself, so `\` before it still reads as a backslash.
fn write_name(out: &mut String, s: &str, place: Place) {
    for c in s.chars() {
        let c = if c.is_ascii() && is_control(c as u8) { ' ' } else { c };
        if place.escapes(c) {
            out.push('\\');
        }
        out.push(c);
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
/// an empty measurement or one starting with `#` (a comment), or no field
/// left after dropping non-finite floats (InfluxDB rejects NaN and
/// infinities) and empty keys. A tag with an empty key or value is left out.
/// Names lose their trailing backslashes and write control characters as
/// spaces; string values are written as they are (a line feed raw, inside
/// the quotes), which the reference and InfluxDB read back unchanged.
pub fn encode_into(out: &mut String, ev: &Event, precision: Precision) -> bool {
    encode_into_with(out, ev, precision, true)
}

/// As [`encode_into`]; with `unsigned` false, unsigned fields are written as
/// integers (`5i`), as InfluxDB 1.x builds without unsigned support require
/// (values above `i64::MAX` are clamped to it).
pub fn encode_into_with(out: &mut String, ev: &Event, precision: Precision, unsigned: bool) -> bool {
    let encodable =
        |(k, v): &&(Text, Value)| !writable(k).is_empty() && !matches!(v, Value::Float(f) if !f.is_finite());
    let has_extra = ev.description.is_some() || ev.ttl.is_some_and(f64::is_finite);
    let name = writable(&ev.name);
    if name.is_empty() || name.starts_with('#') || (!has_extra && !ev.fields.iter().any(|f| encodable(&f))) {
        return false;
    }
    write_name(out, name, Place::Measurement);
    let tag = |out: &mut String, k: &str, v: &str| {
        let (k, v) = (writable(k), writable(v));
        if !k.is_empty() && !v.is_empty() {
            out.push(',');
            write_name(out, k, Place::Key);
            out.push('=');
            write_name(out, v, Place::Key);
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
        write_name(out, writable(k), Place::Key);
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
    if ev.time != NO_TIME {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::State;

    fn enc(e: &Event) -> String {
        encode(e, Precision::Nanoseconds)
    }

    #[test]
    fn a_host_tag_beside_the_events_host_is_not_repeated() {
        let e = Event::new("m").host("h1").tag("host", "h2").field("v", 1i64);
        assert_eq!(enc(&e), "m,host=h1 v=1i");
        let e = Event::new("m").tag("host", "h2").field("v", 1i64);
        assert_eq!(enc(&e), "m,host=h2 v=1i");
    }

    #[test]
    fn encodes_per_spec() {
        let e = Event::new("cpu load,x=y")
            .tag("region name", "us=west")
            .field("v", 1.0)
            .field("n", -3i64)
            .field("u", 7u64)
            .field("ok", true)
            .field("msg", "say \"hi\" \\o/")
            .at(1_500_000_000_123_456_789);
        assert_eq!(
            enc(&e),
            r#"cpu\ load\,x=y,region\ name=us\=west v=1.0,n=-3i,u=7u,ok=true,msg="say \"hi\" \\o/" 1500000000123456789"#
        );
        assert_eq!(
            encode(&e, Precision::Seconds),
            r#"cpu\ load\,x=y,region\ name=us\=west v=1.0,n=-3i,u=7u,ok=true,msg="say \"hi\" \\o/" 1500000000"#
        );
    }

    #[test]
    fn the_epoch_is_a_timestamp_and_no_time_writes_none() {
        assert_eq!(enc(&Event::gauge("m", 1i64).at(0)), "m value=1i 0");
        assert_eq!(enc(&Event::gauge("m", 1i64)), "m value=1i");
        assert_eq!(encode(&Event::gauge("m", 1i64).at(-1), Precision::Seconds), "m value=1i -1");
    }

    #[test]
    fn reserved_attributes_travel_as_tags_and_fields() {
        let e = Event::counter("disk", 5u64).host("web-01").state(State::Warning).description("nearly full").ttl(30.0);
        assert_eq!(
            enc(&e),
            r#"disk,host=web-01,kind=counter,state=warning value=5u,description="nearly full",ttl=30.0"#
        );
    }

    #[test]
    fn backslashes_are_written_as_they_are() {
        // A backslash before an escapable character stays a backslash
        // because the character after it is escaped in turn.
        assert_eq!(enc(&Event::new("a\\b").field("v", 1i64)), "a\\b v=1i");
        assert_eq!(enc(&Event::new("two\\ words").field("v", 1i64)), "two\\\\ words v=1i");
        assert_eq!(
            enc(&Event::new("m").tag("k\\", "x\\\\").tag("\\n", "t").field("v\\=", 1i64)),
            r"m,k=x,\n=t v\\==1i"
        );
    }

    #[test]
    fn what_names_cannot_hold_is_left_out_or_replaced() {
        assert_eq!(enc(&Event::new("a\tb\nc\u{7f}").tag("k\u{1}", "v").field("f", 1i64)), r"a\ b\ c\ ,k\ =v f=1i");
        assert_eq!(enc(&Event::new("m,k\u{1}=v f=1i").field("f", 1i64)), r"m\,k\ =v\ f=1i f=1i");
        assert_eq!(enc(&Event::new("#m").field("f", 1i64)), "");
        assert_eq!(enc(&Event::new("\\").field("f", 1i64)), "");
        assert_eq!(enc(&Event::new("m").field("\\", 1i64)), "");
        assert_eq!(enc(&Event::new("m#").field("s", "a\nb\t\"c\"")), "m# s=\"a\nb\t\\\"c\\\"\"");
    }

    #[test]
    fn drops_what_influx_cannot_store() {
        assert_eq!(enc(&Event::gauge("x", f64::NAN)), "");
        let e = Event::gauge("x", f64::INFINITY).field("y", 2i64);
        assert_eq!(enc(&e), "x y=2i");
    }
}
