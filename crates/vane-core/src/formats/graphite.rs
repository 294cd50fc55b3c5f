//! Graphite's plaintext protocol: `path value [timestamp]`, one a line.
//! The path is the event's name, the value its field `value`, the
//! timestamp whole or fractional seconds.

use crate::event::{Event, Value};

/// Appends a line `PATH VALUE SECONDS` (with its line feed), the path
/// already in `out`; the value as Rust's `Display` writes it (no exponent),
/// only faster.
pub fn write_rest(out: &mut String, value: f64, secs: i64) {
    out.push(' ');
    write_value(out, value);
    out.push(' ');
    out.push_str(itoa::Buffer::new().format(secs));
    out.push('\n');
}

/// Appends a finite value as `Display` writes it: whole numbers as
/// integers, others as the shortest decimal that reads back the same (of
/// two equally near, the even last digit, where `Display` takes the upper).
pub fn write_value(out: &mut String, x: f64) {
    if x.fract() == 0.0 && x.abs() < 1e15 && !(x == 0.0 && x.is_sign_negative()) {
        out.push_str(itoa::Buffer::new().format(x as i64));
        return;
    }
    let mut b = zmij::Buffer::new();
    let s = b.format(x);
    if s.contains(['e', 'E', 'i', 'N']) {
        // Very large or small magnitudes: written out in full, as Display does.
        use std::fmt::Write as _;
        let _ = write!(out, "{x}");
    } else {
        // Whole numbers end in `.0` there, not in Display.
        out.push_str(s.strip_suffix(".0").unwrap_or(s));
    }
}

/// Parses one line; `default_time` when it has no timestamp.
pub fn parse_line(line: &str, default_time: i64) -> Result<Event, crate::invalid::Invalid> {
    parse_line_text(line, default_time).map_err(crate::invalid::Invalid)
}

/// The words of a line, split at whitespace as `str::split_whitespace`
/// splits it: an ASCII line (the most) byte by byte, which is several times
/// faster than its chars through `str::split`; any other line as
/// `split_whitespace` does, Unicode's spaces included.
enum Words<'a> {
    Ascii { line: &'a str, at: usize },
    Other(std::str::SplitWhitespace<'a>),
}

fn words(line: &str) -> Words<'_> {
    if line.is_ascii() { Words::Ascii { line, at: 0 } } else { Words::Other(line.split_whitespace()) }
}

impl<'a> Iterator for Words<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        let (line, at) = match self {
            Words::Ascii { line, at } => (*line, at),
            Words::Other(w) => return w.next(),
        };
        // The ASCII characters `char::is_whitespace` takes.
        let space = |c: &u8| matches!(c, b'\t' | b'\n' | 0x0b | 0x0c | b'\r' | b' ');
        let b = line.as_bytes();
        let start = *at + b[*at..].iter().position(|c| !space(c))?;
        let end = start + b[start..].iter().position(space).unwrap_or(b.len() - start);
        *at = end;
        Some(&line[start..end])
    }
}

/// Seconds, whole (the most) or fractional, as nanoseconds.
fn seconds(t: &str) -> Option<i64> {
    // Whole seconds are exact as integers; the same as through `f64` up to
    // year 2106, where the product still fits its 53 bits.
    if let Some(ns) = t.parse::<i64>().ok().and_then(|s| s.checked_mul(1_000_000_000)) {
        return Some(ns);
    }
    t.parse::<f64>().ok().map(|secs| (secs * 1e9) as i64)
}

fn parse_line_text(line: &str, default_time: i64) -> Result<Event, String> {
    let mut w = words(line);
    let path = w.next().ok_or("empty line")?;
    let v = w.next().ok_or_else(|| format!("{path}: no value"))?;
    let value: f64 = v.parse().map_err(|_| format!("{path}: value {v:?} is not a number"))?;
    let time = match w.next() {
        None | Some("-1") => default_time,
        Some(t) => seconds(t).ok_or_else(|| format!("{path}: timestamp {t:?} is not a number"))?,
    };
    if let Some(extra) = w.next() {
        return Err(format!("{path}: unexpected {extra:?} after the timestamp"));
    }
    // Made in place: the builder methods would move the event in and out.
    let mut e = Event::new(path);
    e.fields.push(("value".into(), Value::Float(value)));
    e.time = time;
    Ok(e)
}

/// One part of a template: what a dotted segment of the path becomes.
#[derive(Clone, Debug, PartialEq)]
enum Part {
    Name,
    Field,
    Host,
    Tag(String),
    Skip,
}

/// A template turning a dotted path into name, host, tags and field.
///
/// Written `[FILTER ]TEMPLATE[ TAG=VALUE,…]`: the filter is a dotted pattern
/// where `*` matches one segment (no filter matches every path); the
/// template names each segment `name`, `field`, `host`, `_` (ignored) or a
/// tag key; a `*` after the last part makes it take every remaining
/// segment. Name segments are joined with `.`, field segments with `_`.
/// Without a `name` part the whole path is the name; without a `field`
/// part the field is `value`.
#[derive(Clone, Debug, PartialEq)]
pub struct Template {
    filter: Vec<String>,
    parts: Vec<Part>,
    greedy: bool,
    tags: Vec<(String, String)>,
}

impl Template {
    /// Parses one template; the error says what is wrong with it.
    pub fn parse(spec: &str) -> Result<Template, crate::invalid::Invalid> {
        Self::parse_text(spec).map_err(crate::invalid::Invalid)
    }

    fn parse_text(spec: &str) -> Result<Template, String> {
        let words: Vec<&str> = spec.split_whitespace().collect();
        let (filter, template, tags) = match words.as_slice() {
            [t] => (None, *t, None),
            [a, b] if b.contains('=') => (None, *a, Some(*b)),
            [f, t] => (Some(*f), *t, None),
            [f, t, g] => (Some(*f), *t, Some(*g)),
            [] => return Err("empty template".into()),
            _ => {
                return Err(format!("{spec:?}: expected `[FILTER ]TEMPLATE[ TAG=VALUE,…]`"));
            }
        };
        let mut parts = Vec::new();
        let mut greedy = false;
        let segs: Vec<&str> = template.split('.').collect();
        for (i, seg) in segs.iter().enumerate() {
            let mut s = *seg;
            if let Some(rest) = s.strip_suffix('*') {
                if i + 1 != segs.len() {
                    return Err(format!("{template:?}: only the last part may end with `*`"));
                }
                greedy = true;
                s = rest;
            }
            parts.push(match s {
                "" => return Err(format!("{template:?}: empty part")),
                "name" | "measurement" => Part::Name,
                "field" => Part::Field,
                "host" => Part::Host,
                "_" => Part::Skip,
                tag => Part::Tag(tag.to_owned()),
            });
        }
        let mut tag_list = Vec::new();
        for kv in tags.into_iter().flat_map(|t| t.split(',')) {
            let (k, v) = kv
                .split_once('=')
                .filter(|(k, v)| !k.is_empty() && !v.is_empty())
                .ok_or_else(|| format!("{kv:?}: expected TAG=VALUE"))?;
            tag_list.push((k.to_owned(), v.to_owned()));
        }
        let filter = filter.map(|f| f.split('.').map(str::to_owned).collect()).unwrap_or_default();
        Ok(Template { filter, parts, greedy, tags: tag_list })
    }

    /// Whether the filter matches `path` (segment by segment; a shorter
    /// filter matches longer paths by their first segments).
    pub fn matches(&self, path: &str) -> bool {
        let mut segs = path.split('.');
        self.filter.iter().all(|f| segs.next().is_some_and(|s| f == "*" || f == s))
    }

    /// Applies the template to an event whose name is the whole path.
    pub fn apply(&self, e: &mut Event) {
        let path = std::mem::take(&mut e.name);
        let mut name: Vec<&str> = Vec::new();
        let mut field: Vec<&str> = Vec::new();
        let mut tags: Vec<(String, Vec<&str>)> = Vec::new();
        let mut host: Vec<&str> = Vec::new();
        for (i, seg) in path.split('.').enumerate() {
            let part = match self.parts.get(i) {
                Some(p) => p,
                None if self.greedy => self.parts.last().expect("a template has parts"),
                None => break,
            };
            match part {
                Part::Name => name.push(seg),
                Part::Field => field.push(seg),
                Part::Host => host.push(seg),
                Part::Skip => {}
                Part::Tag(k) => match tags.iter_mut().find(|(t, _)| t == k) {
                    Some((_, v)) => v.push(seg),
                    None => tags.push((k.clone(), vec![seg])),
                },
            }
        }
        if !host.is_empty() {
            e.host = host.join(".").into();
        }
        for (k, v) in tags {
            e.tags.push((k.into(), v.join(".").into()));
        }
        for (k, v) in &self.tags {
            if e.get_tag(k).is_none() {
                e.tags.push((k.into(), v.into()));
            }
        }
        if !field.is_empty()
            && let Some((f, _)) = e.fields.first_mut()
        {
            *f = field.join("_").into();
        }
        e.name = if name.is_empty() { path } else { name.join(".").into() };
    }
}

/// Templates tried in order; the first whose filter matches applies.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Templates(Vec<Template>);

impl Templates {
    /// Parses each template; the error names the failing one by its index.
    pub fn parse<S: AsRef<str>>(specs: &[S]) -> Result<Templates, crate::invalid::Invalid> {
        specs
            .iter()
            .enumerate()
            .map(|(i, s)| {
                Template::parse(s.as_ref()).map_err(|e| crate::invalid::Invalid(format!("templates[{i}]: {e}")))
            })
            .collect::<Result<_, _>>()
            .map(Templates)
    }

    /// Parses a line and applies the first matching template.
    pub fn parse_line(&self, line: &str, default_time: i64) -> Result<Event, crate::invalid::Invalid> {
        let mut e = parse_line(line, default_time)?;
        if let Some(t) = self.0.iter().find(|t| t.matches(&e.name)) {
            t.apply(&mut e);
        }
        Ok(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// A value is written as `Display` writes it, whatever its magnitude,
        /// but for a value exactly halfway between two shortest decimals
        /// (`72100778337698.625`): `Display` writes the upper, this the even
        /// one; both read back to the value, and are as short.
        #[test]
        fn values_as_display_writes_them(bits in any::<u64>(), small in -1e7f64..1e7, whole in -1e16f64..1e16) {
            for x in [f64::from_bits(bits), small, whole.trunc(), (small * 1000.0).round() / 1000.0] {
                let mut out = String::new();
                write_value(&mut out, x);
                let display = format!("{x}");
                if out != display {
                    prop_assert_eq!(out.len(), display.len(), "{} against {}", out, display);
                    prop_assert_eq!(out.parse::<f64>().map(f64::to_bits), Ok(x.to_bits()), "{} against {}", out, display);
                }
            }
        }
    }

    #[test]
    fn values_edge_cases() {
        for x in [
            0.0,
            -0.0,
            1.0,
            -1.0,
            12.5,
            0.1,
            1e15,
            -1e15,
            1e16,
            1e21,
            1e-7,
            5e-324,
            f64::MAX,
            f64::MIN_POSITIVE,
            9007199254740993.0,
        ] {
            let mut out = String::new();
            write_value(&mut out, x);
            assert_eq!(out, format!("{x}"), "{x:e}");
        }
        // 72100778337698.625, exactly halfway between two shortest
        // decimals: the even one.
        let tie = f64::from_bits(4_814_458_851_845_302_440);
        let mut out = String::new();
        write_value(&mut out, tie);
        assert_eq!(out, "72100778337698.62");
        assert_eq!(out.parse::<f64>(), Ok(tie));
        let mut out = String::from("a.b");
        write_rest(&mut out, 12.5, 1_700_000_000);
        assert_eq!(out, "a.b 12.5 1700000000\n");
    }

    #[test]
    fn parses_lines() {
        let e = parse_line("servers.web01.load 1.5 1700000000", 0).unwrap();
        assert_eq!((e.name.as_str(), e.time), ("servers.web01.load", 1_700_000_000_000_000_000));
        assert_eq!(parse_line("a 2", 9).unwrap().time, 9);
        assert!(parse_line("a x 1", 0).unwrap_err().contains("not a number"));
        assert!(parse_line("a 1 2 3", 0).is_err());
    }

    fn apply(specs: &[&str], line: &str) -> Event {
        Templates::parse(specs).unwrap().parse_line(line, 0).unwrap()
    }

    #[test]
    fn templates_make_name_host_tags_and_field() {
        let e = apply(&["servers.* _.host.name.field region=eu"], "servers.web01.cpu.user 12 1");
        assert_eq!(e.name, "cpu");
        assert_eq!(e.host, "web01");
        assert_eq!(e.fields, vec![("user".into(), Value::Float(12.0))]);
        assert_eq!(e.get_tag("region"), Some("eu"));
        // The first matching filter wins; the rest of a path goes to a greedy part.
        let specs = ["stats.* _.dc.name*", "dc.name.field*"];
        let e = apply(&specs, "stats.par.nginx.requests.total 3");
        assert_eq!((e.name.as_str(), e.get_tag("dc")), ("nginx.requests.total", Some("par")));
        let e = apply(&specs, "lon.disk.free.bytes 3");
        assert_eq!(e.name, "disk");
        assert_eq!(e.get_tag("dc"), Some("lon"));
        assert_eq!(e.fields[0].0, "free_bytes");
        // No template matches: the path is the name.
        let e = apply(&["x.* name.field"], "a.b 1");
        assert_eq!((e.name.as_str(), e.fields[0].0.as_str()), ("a.b", "value"));
        // Segments past a template that is not greedy are dropped.
        let e = apply(&["name.region"], "load.eu.extra 1");
        assert_eq!((e.name.as_str(), e.get_tag("region")), ("load", Some("eu")));
    }

    #[test]
    fn bad_templates_say_what_is_wrong() {
        let err = Templates::parse(&["name.field", "name*.field"]).unwrap_err();
        assert!(err.starts_with("templates[1]:"), "{err}");
        assert!(err.contains("only the last part"), "{err}");
        assert!(Template::parse("a..b").unwrap_err().contains("empty part"));
        assert!(Template::parse("f name x=").unwrap_err().contains("TAG=VALUE"));
        assert!(Template::parse("").is_err());
    }

    mod prop {
        use super::*;

        /// The plain reading the fast one must agree with.
        fn plain(line: &str, default_time: i64) -> Option<(String, f64, i64)> {
            let w: Vec<&str> = line.split_whitespace().collect();
            let value = w.get(1)?.parse::<f64>().ok()?;
            let time = match w.get(2).copied() {
                None | Some("-1") => default_time,
                Some(t) => (t.parse::<f64>().ok()? * 1e9) as i64,
            };
            (w.len() <= 3).then(|| (w[0].to_owned(), value, time))
        }

        proptest! {
            /// Any line, with any whitespace (Unicode's too), reads as the
            /// plain split and float parse read it, or is refused by both.
            #[test]
            fn lines_read_as_the_plain_reading_reads_them(
                line in "[a-z.\\t\u{b}\u{c}\r\u{a0}\u{3000} 0-9e+-]{0,40}",
                secs in 0i64..4_294_967_296,
                value in -1e15f64..1e15,
            ) {
                for l in [line.clone(), format!("a.b {value} {secs}"), format!("a.b{line} {value}\u{a0}{secs}")] {
                    let fast = parse_line(&l, 7).ok().map(|e| (e.name.to_string(), e.fields[0].1.clone(), e.time));
                    let slow = plain(&l, 7).map(|(n, v, t)| (n, Value::Float(v), t));
                    prop_assert_eq!(fast, slow, "{:?}", l);
                }
            }
        }

        proptest! {
            /// A line read through `host.name.field` gives back its parts.
            #[test]
            fn lines_round_trip_through_a_template(
                host in "[a-z][a-z0-9-]{0,10}",
                name in "[a-z][a-z0-9_]{0,10}",
                field in "[a-z][a-z0-9_]{0,10}",
                value in -1e15f64..1e15,
                secs in 0i64..4_000_000_000,
            ) {
                let t = Templates::parse(&["host.name.field"]).unwrap();
                let e = t.parse_line(&format!("{host}.{name}.{field} {value} {secs}"), 0).unwrap();
                prop_assert_eq!(e.host, host);
                prop_assert_eq!(e.name, name);
                prop_assert_eq!(e.fields, vec![(field.into(), Value::Float(value))]);
                prop_assert_eq!(e.time, secs * 1_000_000_000);
            }
        }
    }
}
