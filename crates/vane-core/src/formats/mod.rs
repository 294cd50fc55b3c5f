//! Text formats events arrive in from programs and peers: line protocol,
//! JSON lines, Prometheus text, Graphite plaintext and Nagios plugin output.

pub mod graphite;
pub mod nagios;
pub mod prometheus;
pub mod statsd;

use serde::Deserialize;

use crate::event::Event;
use crate::lineproto::{self, Precision};

pub use nagios::Bad;

/// A text format of events.
#[derive(Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// InfluxDB line protocol.
    Influx,
    /// One JSON event a line.
    Json,
    /// Prometheus text exposition.
    Prometheus,
    /// Graphite plaintext.
    Graphite,
    /// Nagios plugin output (with the exit code).
    Nagios,
}

impl Format {
    /// Whether each line stands alone (so a stream can be read line by line).
    pub fn line_based(self) -> bool {
        matches!(self, Format::Influx | Format::Json | Format::Graphite)
    }
}

/// Decodes one line of a line-based format.
pub fn decode_line(format: Format, line: &str, default_time: i64) -> Result<Option<Event>, crate::invalid::Invalid> {
    decode_line_text(format, line, default_time).map_err(crate::invalid::Invalid)
}

fn decode_line_text(format: Format, line: &str, default_time: i64) -> Result<Option<Event>, String> {
    let t = line.trim_end_matches(['\r', '\n']);
    if t.trim().is_empty() || t.trim_start().starts_with('#') {
        return Ok(None);
    }
    match format {
        Format::Influx => {
            let mut it = lineproto::decode(t, Precision::Nanoseconds, default_time);
            match it.next() {
                Some(Ok(e)) => Ok(Some(e)),
                Some(Err(e)) => Err(format!("column {}: {}", e.column, e.message)),
                None => Ok(None),
            }
        }
        Format::Json => crate::json::decode(t.trim()).map(Some).map_err(|e| e.to_string()),
        Format::Graphite => graphite::parse_line(t, default_time).map(Some).map_err(|e| e.0),
        Format::Prometheus | Format::Nagios => Err("not a line-based format".into()),
    }
}

/// Decodes a whole output; bad lines are returned with their numbers.
/// `code` is the exit code, for Nagios output; `name` names Nagios checks.
/// Line protocol is read as bytes, record by record (a record that is not
/// UTF-8 is an error of its own); the other formats as text, with bytes
/// that are not UTF-8 replaced.
pub fn decode_text(
    format: Format,
    bytes: &[u8],
    code: Option<i32>,
    name: &str,
    default_time: i64,
) -> (Vec<Event>, Vec<Bad>) {
    let text = || String::from_utf8_lossy(bytes);
    match format {
        Format::Nagios => {
            let c = nagios::parse(&text(), code);
            let mut evs = c.to_events(name);
            for e in &mut evs {
                e.time = default_time;
            }
            (evs, c.bad)
        }
        Format::Prometheus => prometheus::parse(&text(), default_time),
        Format::Influx => {
            let mut out = Vec::new();
            let mut bad = Vec::new();
            for r in lineproto::decode(bytes, Precision::Nanoseconds, default_time) {
                match r {
                    Ok(e) => out.push(e),
                    Err(e) => bad.push(Bad { line: e.line, message: format!("column {}: {}", e.column, e.message) }),
                }
            }
            (out, bad)
        }
        Format::Json | Format::Graphite => {
            let mut out = Vec::new();
            let mut bad = Vec::new();
            for (i, line) in text().lines().enumerate() {
                match decode_line(format, line, default_time) {
                    Ok(Some(e)) => out.push(e),
                    Ok(None) => {}
                    Err(message) => bad.push(Bad { line: i + 1, message: message.0 }),
                }
            }
            (out, bad)
        }
    }
}
