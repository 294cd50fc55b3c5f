//! Graphite's plaintext protocol: `path value [timestamp]`, one a line.
//! The path is the event's name, the value its field `value`, the
//! timestamp whole or fractional seconds.

use crate::event::{Event, Value};

/// Parses one line; `default_time` when it has no timestamp.
pub fn parse_line(line: &str, default_time: i64) -> Result<Event, String> {
    let mut w = line.split_whitespace();
    let path = w.next().ok_or("empty line")?;
    let v = w.next().ok_or_else(|| format!("{path}: no value"))?;
    let value: f64 = v
        .parse()
        .map_err(|_| format!("{path}: value {v:?} is not a number"))?;
    let time = match w.next() {
        None | Some("-1") => default_time,
        Some(t) => {
            let secs: f64 = t
                .parse()
                .map_err(|_| format!("{path}: timestamp {t:?} is not a number"))?;
            (secs * 1e9) as i64
        }
    };
    if let Some(extra) = w.next() {
        return Err(format!("{path}: unexpected {extra:?} after the timestamp"));
    }
    Ok(Event::new(path)
        .field("value", Value::Float(value))
        .at(time))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_lines() {
        let e = parse_line("servers.web01.load 1.5 1700000000", 0).unwrap();
        assert_eq!(
            (e.name.as_str(), e.time),
            ("servers.web01.load", 1_700_000_000_000_000_000)
        );
        assert_eq!(parse_line("a 2", 9).unwrap().time, 9);
        assert!(parse_line("a x 1", 0).unwrap_err().contains("not a number"));
        assert!(parse_line("a 1 2 3", 0).is_err());
    }
}
