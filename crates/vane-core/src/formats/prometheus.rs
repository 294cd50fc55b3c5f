//! The Prometheus text exposition format: `# HELP`, `# TYPE`, and samples
//! `name{label="value",…} value [timestamp_ms]`.
//!
//! Each sample becomes an event named after it, its labels as tags and its
//! value in the field `value`. Samples of a counter, and the `_bucket`,
//! `_sum` and `_count` series of histograms and the `_sum` and `_count` of
//! summaries, are of kind counter; the rest are gauges. Label values
//! unescape `\\`, `\"` and `\n`. A bad line is reported with its number and
//! the rest is kept.

use std::collections::HashMap;

use crate::event::{Event, Kind, Value};

use super::Bad;

/// Parses a whole exposition; samples without a timestamp get `default_time`.
pub fn parse(text: &str, default_time: i64) -> (Vec<Event>, Vec<Bad>) {
    let mut types: HashMap<String, String> = HashMap::new();
    let mut out = Vec::new();
    let mut bad = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        if let Some(c) = line.strip_prefix('#') {
            let mut w = c.split_whitespace();
            if w.next() == Some("TYPE")
                && let (Some(n), Some(t)) = (w.next(), w.next())
            {
                types.insert(n.to_owned(), t.to_owned());
            }
            continue;
        }
        match sample(line, default_time) {
            Ok(mut ev) => {
                ev.kind = kind_of(&ev.name, &types);
                out.push(ev);
            }
            Err(message) => bad.push(Bad { line: i + 1, message }),
        }
    }
    (out, bad)
}

/// The kind of sample `name`, from the `# TYPE`s of its family (`counter`,
/// `histogram`, `summary`, ...): counters and the cumulative series of
/// histograms and summaries are counters, the rest gauges.
pub fn kind_of(name: &str, types: &HashMap<String, String>) -> Kind {
    if types.get(name).is_some_and(|t| t == "counter") {
        return Kind::Counter;
    }
    for suffix in ["_bucket", "_sum", "_count"] {
        if let Some(base) = name.strip_suffix(suffix) {
            match types.get(base).map(String::as_str) {
                Some("histogram") => return Kind::Counter,
                Some("summary") if suffix != "_bucket" => return Kind::Counter,
                _ => {}
            }
        }
    }
    Kind::Gauge
}

fn sample(line: &str, default_time: i64) -> Result<Event, String> {
    let name_end = line.find(|c: char| c == '{' || c.is_whitespace()).ok_or("a sample needs a value")?;
    let name = &line[..name_end];
    if name.is_empty()
        || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
        || name.starts_with(|c: char| c.is_ascii_digit())
    {
        return Err(format!("invalid metric name {name:?}"));
    }
    let mut ev = Event::new(name);
    let mut rest = &line[name_end..];
    if let Some(r) = rest.strip_prefix('{') {
        rest = labels(r, &mut ev)?;
    }
    let mut parts = rest.split_whitespace();
    let v = parts.next().ok_or("a sample needs a value")?;
    let value = match v {
        "+Inf" | "Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        "NaN" => f64::NAN,
        _ => v.parse().map_err(|_| format!("value {v:?} is not a number"))?,
    };
    ev.fields.push(("value".into(), Value::Float(value)));
    ev.time = match parts.next() {
        None => default_time,
        Some(t) => t
            .parse::<i64>()
            .ok()
            .and_then(|ms| ms.checked_mul(1_000_000))
            .ok_or_else(|| format!("timestamp {t:?} is not whole milliseconds"))?,
    };
    if let Some(extra) = parts.next() {
        return Err(format!("unexpected {extra:?} after the timestamp"));
    }
    Ok(ev)
}

/// Reads `k="v",…}` and returns what follows the brace.
fn labels<'a>(mut s: &'a str, ev: &mut Event) -> Result<&'a str, String> {
    loop {
        s = s.trim_start();
        if let Some(r) = s.strip_prefix('}') {
            return Ok(r);
        }
        let eq = s.find('=').ok_or("a label needs `=\"value\"`")?;
        let key = s[..eq].trim();
        if key.is_empty() || !key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(format!("invalid label name {key:?}"));
        }
        let r = s[eq + 1..].trim_start();
        let r = r.strip_prefix('"').ok_or_else(|| format!("label {key}: value must be quoted"))?;
        let mut val = String::new();
        let mut chars = r.char_indices();
        let end = loop {
            match chars.next() {
                None => return Err(format!("label {key}: unterminated value")),
                Some((_, '\\')) => match chars.next() {
                    Some((_, 'n')) => val.push('\n'),
                    Some((_, c)) => val.push(c),
                    None => return Err(format!("label {key}: unterminated value")),
                },
                Some((i, '"')) => break i,
                Some((_, c)) => val.push(c),
            }
        };
        ev.tags.push((key.into(), val.into()));
        s = r[end + 1..].trim_start();
        if let Some(r) = s.strip_prefix(',') {
            s = r;
        } else if !s.starts_with('}') {
            return Err("expected `,` or `}` after a label".into());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_types_labels_escapes_and_timestamps() {
        let text = "# HELP http_requests_total Requests.\n\
                    # TYPE http_requests_total counter\n\
                    http_requests_total{method=\"post\",code=\"200\"} 1027 1395066363000\n\
                    # TYPE rpc histogram\n\
                    rpc_bucket{le=\"0.5\"} 3\n\
                    rpc_bucket{le=\"+Inf\"} 5\n\
                    rpc_sum 2.5\n\
                    temp{path=\"C:\\\\dir\\\"x\\\"\\nend\"} -3.5e1\n\
                    up NaN\n";
        let (ev, bad) = parse(text, 7);
        assert!(bad.is_empty(), "{bad:?}");
        assert_eq!(ev.len(), 6);
        assert_eq!(ev[0].name, "http_requests_total");
        assert_eq!(ev[0].kind, Kind::Counter);
        assert_eq!(ev[0].get_tag("code"), Some("200"));
        assert_eq!(ev[0].time, 1_395_066_363_000_000_000);
        assert_eq!(ev[2].get_tag("le"), Some("+Inf"));
        assert!(ev[1..4].iter().all(|e| e.kind == Kind::Counter));
        assert_eq!(ev[4].get_tag("path"), Some("C:\\dir\"x\"\nend"));
        assert_eq!(ev[4].get_field("value"), Some(&Value::Float(-35.0)));
        assert_eq!(ev[4].kind, Kind::Gauge);
        assert_eq!(ev[4].time, 7);
    }

    #[test]
    fn bad_lines_are_reported_with_their_number() {
        let (ev, bad) = parse("ok 1\nbad{x=1} 2\n9lives 3\nfine{a=\"b\"} x\nlast 4\n", 0);
        assert_eq!(ev.len(), 2);
        let lines: Vec<usize> = bad.iter().map(|b| b.line).collect();
        assert_eq!(lines, vec![2, 3, 4]);
    }

    mod prop {
        use super::*;
        use proptest::prelude::*;

        fn escape(v: &str) -> String {
            v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
        }

        proptest! {
            /// A written sample, labels with any characters, reads back.
            #[test]
            fn samples_round_trip(
                name in "[a-zA-Z_:][a-zA-Z0-9_:]{0,20}",
                labels in proptest::collection::vec(("[a-zA-Z_][a-zA-Z0-9_]{0,8}", ".{0,12}"), 0..4),
                value in any::<f64>().prop_filter("not NaN", |v| !v.is_nan()),
                ms in proptest::option::of(0i64..4_000_000_000_000),
            ) {
                let mut line = name.clone();
                if !labels.is_empty() {
                    let l: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{}\"", escape(v))).collect();
                    line.push_str(&format!("{{{}}}", l.join(",")));
                }
                let v = if value.is_infinite() { if value > 0.0 { "+Inf".to_owned() } else { "-Inf".to_owned() } } else { format!("{value}") };
                line.push_str(&format!(" {v}"));
                if let Some(ms) = ms {
                    line.push_str(&format!(" {ms}"));
                }
                let (evs, bad) = parse(&format!("# TYPE {name} gauge\n{line}\n"), 7);
                prop_assert!(bad.is_empty(), "{:?} for {}", bad, line);
                prop_assert_eq!(evs.len(), 1);
                let e = &evs[0];
                prop_assert_eq!(&e.name, &name);
                prop_assert!(e.tags.iter().map(|(k, v)| (k.as_str(), v.as_str())).eq(labels.iter().map(|(k, v)| (k.as_str(), v.as_str()))));
                prop_assert_eq!(e.get_field("value"), Some(&Value::Float(value)));
                prop_assert_eq!(e.time, ms.map_or(7, |m| m * 1_000_000));
            }
        }
    }
}
