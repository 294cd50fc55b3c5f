//! InfluxDB line protocol: encode events to lines and decode lines to events.
//!
//! `measurement[,tag=value…] field=value[,field=value…] [timestamp]`
//!
//! The grammar is InfluxDB's own (`influxdata/line-protocol` v2, the
//! reference Go decoder), read byte for byte:
//!
//! - In measurements only `\,` and `\ ` are escapes; in tag keys, tag values
//!   and field keys `\,`, `\=` and `\ `. Any other backslash is a literal
//!   backslash, including the first of `\\`: `two\\ words` is `two\ words`.
//! - In string field values `\"`, `\\`, `\n`, `\r` and `\t` are escapes; any
//!   other backslash is literal. A raw line feed may appear inside a string,
//!   so a record can span lines.
//! - Control characters (0x00–0x1F, 0x7F) are not allowed in names, keys and
//!   tag values, nor in comments; a line may start with spaces, not tabs.
//! - A tag key appears once a line.
//! - Numbers: floats as decimal literals (`-`, digits, `.`, exponent),
//!   integers `-?digits i`, unsigned `digits u`; no `+` sign, no `inf` or
//!   `nan`, no value out of range. The reference also takes Go's hex floats
//!   (`0x1p3`) and digit underscores (`1_000`), which its grammar and
//!   InfluxDB's servers do not: vane rejects them.
//! - A timestamp is `-?digits` in the stream's precision; `0` is the epoch.
//!   Only a missing timestamp means "not set" ([`crate::event::NO_TIME`]);
//!   the one instant that is NO_TIME (`-9223372036854775808` ns, in 1677)
//!   is refused as out of range.
//! - Lines end at `\n` or `\r\n`; a lone `\r` elsewhere is an error.
//!
//! The event's own attributes travel under reserved names: the tags `host`,
//! `kind` (omitted for gauges) and `state`, and the fields `description`
//! (string) and `ttl` (float seconds). The decoder lifts them back (a `kind`
//! or `state` tag whose value is not a kind or state stays an ordinary tag, a
//! `ttl` that is not a float an ordinary field), so `decode(encode(event))
//! == event` for every event whose own tag and field names avoid those five.
//!
//! What line protocol cannot carry, the encoder leaves out or replaces, and
//! says so in [`encode_into`]'s documentation.

mod decode;
mod encode;
mod number;
mod stream;

pub use decode::{Decoder, ParseError, decode, decode_line, decode_stream};
pub use encode::{encode, encode_into, encode_into_with};
pub use stream::{Decoded, Part, Records};

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

/// Bytes line protocol never allows in a name, key or tag value.
fn is_control(b: u8) -> bool {
    b < 0x20 || b == 0x7f
}
