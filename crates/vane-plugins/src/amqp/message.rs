//! Events in AMQP messages: the formats a message body may have, how the
//! format is named on the message (its content type; a `vane-format`
//! header, when a publisher sets one, is read first), and the two ways a
//! sink cuts a batch into messages.

use lapin::BasicProperties;
use lapin::types::AMQPValue;
use serde::Deserialize;
use vane_core::formats;
use vane_core::lineproto::Precision;
use vane_core::prelude::*;

/// The header naming a message's format.
pub const FORMAT_HEADER: &str = "vane-format";

/// A message body's format.
#[derive(Deserialize, Debug, Clone, Copy, Default, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// vane's JSON event, one a line (`application/x-ndjson`).
    #[default]
    Json,
    /// InfluxDB line protocol, one point a line (`text/plain; charset=utf-8`).
    Influx,
    /// A Canopsis event (`application/json`), one a message ([`super::canopsis`]).
    Canopsis,
}

impl Format {
    pub fn name(self) -> &'static str {
        match self {
            Format::Json => "json",
            Format::Influx => "influx",
            Format::Canopsis => "canopsis",
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Format::Json => "application/x-ndjson",
            Format::Influx => "text/plain; charset=utf-8",
            Format::Canopsis => "application/json",
        }
    }

    fn from_name(s: &str) -> Option<Format> {
        match s {
            "json" => Some(Format::Json),
            "influx" => Some(Format::Influx),
            "canopsis" => Some(Format::Canopsis),
            _ => None,
        }
    }

    /// The format of a message: its `vane-format` header, else what its
    /// content type says (JSON being vane's unless `default` is Canopsis),
    /// else `default`.
    pub fn of(props: &BasicProperties, default: Format) -> Format {
        let header = props.headers().as_ref().and_then(|h| match h.inner().get(FORMAT_HEADER) {
            Some(AMQPValue::LongString(s)) => Format::from_name(&s.to_string()),
            Some(AMQPValue::ShortString(s)) => Format::from_name(s.as_str()),
            _ => None,
        });
        let by_type = || {
            let ct = props.content_type().as_ref()?.as_str().to_ascii_lowercase();
            match ct.split(';').next().unwrap_or("").trim() {
                "application/x-ndjson" => Some(Format::Json),
                "application/json" if default == Format::Canopsis => Some(Format::Canopsis),
                "application/json" => Some(Format::Json),
                "text/plain" => Some(Format::Influx),
                _ => None,
            }
        };
        header.or_else(by_type).unwrap_or(default)
    }

    /// The properties of a message of this format: its content type names
    /// it (a header table would cost the broker a decoding per message).
    pub fn properties(self, persistent: bool) -> BasicProperties {
        BasicProperties::default()
            .with_content_type(self.content_type().into())
            .with_delivery_mode(if persistent { 2 } else { 1 })
            .with_app_id("vane".into())
    }

    /// Appends `events`, one a line, to `out`; the number that the format
    /// cannot carry (line protocol needs a finite field) is returned.
    pub fn encode(self, out: &mut String, events: &[Event]) -> usize {
        let text = match self {
            Format::Json => crate::sinks::Format::Json,
            Format::Influx => crate::sinks::Format::Influx,
            Format::Canopsis => {
                for e in events {
                    let c = super::canopsis::CanopsisEvent::from_event(e);
                    out.push_str(&serde_json::to_string(&c).expect("a Canopsis event serializes"));
                }
                return 0;
            }
        };
        crate::sinks::encode_events(out, events, text, Precision::Nanoseconds)
    }

    /// The events of a whole body, or why it cannot be read (the first
    /// bad line, by number, and how many there were): a message is taken
    /// whole or not at all.
    pub fn decode(self, body: &[u8], now: i64) -> Result<Vec<Event>, String> {
        let text = std::str::from_utf8(body).map_err(|e| format!("not UTF-8: {e}"))?;
        let format = match self {
            Format::Json => formats::Format::Json,
            Format::Influx => formats::Format::Influx,
            Format::Canopsis => return super::canopsis::decode(text, now),
        };
        let (events, bad) = formats::decode_text(format, body, None, "", now);
        match bad.first() {
            None => Ok(events),
            Some(b) if bad.len() == 1 => Err(format!("line {}: {}", b.line, b.message)),
            Some(b) => Err(format!("line {}: {} (and {} more bad lines)", b.line, b.message, bad.len() - 1)),
        }
    }
}

/// How a sink cuts a batch into messages (a Canopsis event is always one a message).
#[derive(Deserialize, Debug, Clone, Copy, Default, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum PerMessage {
    /// One event a message, routed by its own key.
    #[default]
    Event,
    /// The whole batch in one message, routed by its first event's key.
    Batch,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_names_its_format_and_reads_back() {
        for f in [Format::Json, Format::Influx] {
            let props = f.properties(true);
            assert_eq!(Format::of(&props, Format::Json), f);
            assert_eq!(props.delivery_mode(), &Some(2));
            let evs = vec![Event::gauge("cpu", 1.5).host("h").tag("a", "b").at(7), Event::gauge("mem", 2.0).at(8)];
            let mut body = String::new();
            assert_eq!(f.encode(&mut body, &evs), 0);
            assert_eq!(f.decode(body.as_bytes(), 0).unwrap(), evs);
        }
        let plain = BasicProperties::default().with_content_type("text/plain; charset=utf-8".into());
        assert_eq!(Format::of(&plain, Format::Json), Format::Influx);
        assert_eq!(Format::of(&BasicProperties::default(), Format::Canopsis), Format::Canopsis);
        let json = BasicProperties::default().with_content_type("application/json".into());
        assert_eq!(Format::of(&json, Format::Canopsis), Format::Canopsis);
        assert_eq!(Format::of(&json, Format::Influx), Format::Json);
    }

    #[test]
    fn a_bad_line_makes_the_whole_message_bad_and_is_named() {
        let err = Format::Influx.decode(b"cpu value=1\ncpu value=\ncpu value=2\n", 0).unwrap_err();
        assert!(err.starts_with("line 2:"), "{err}");
        let err = Format::Json.decode(b"{\"name\":1}\n{}\n", 0).unwrap_err();
        assert!(err.contains("and 1 more"), "{err}");
        assert!(Format::Json.decode(b"\xff", 0).unwrap_err().contains("UTF-8"));
    }
}
