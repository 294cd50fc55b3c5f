//! Built-in sinks, and the output formats they share.

#[cfg(feature = "amqp")]
pub mod amqp;
pub mod blackhole;
pub mod dead_letter;
pub mod file;
pub mod graphite;
#[cfg(feature = "http")]
pub mod http;
#[cfg(feature = "http")]
pub mod influxdb;
#[cfg(feature = "http")]
pub mod otlp;
#[cfg(feature = "http")]
pub mod prometheus;
#[cfg(feature = "http")]
pub mod remote_write;
#[cfg(feature = "http")]
pub mod riemann;
pub mod stdout;

use serde::Deserialize;
use vane_core::context::Context;
use vane_core::event::Event;
use vane_core::lineproto::{self, Precision};

/// How a text sink writes events.
#[derive(Deserialize, Debug, Clone, Copy, Default, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// InfluxDB line protocol, one point a line.
    #[default]
    Influx,
    /// One JSON object a line.
    Json,
}

/// Timestamp precision of line protocol output.
#[derive(Deserialize, Debug, Clone, Copy, Default, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum OutPrecision {
    #[default]
    Ns,
    Us,
    Ms,
    S,
}

impl From<OutPrecision> for Precision {
    fn from(p: OutPrecision) -> Precision {
        match p {
            OutPrecision::Ns => Precision::Nanoseconds,
            OutPrecision::Us => Precision::Microseconds,
            OutPrecision::Ms => Precision::Milliseconds,
            OutPrecision::S => Precision::Seconds,
        }
    }
}

/// Encodes a batch in a format, one event a line, into a cleared `out`;
/// events line protocol cannot carry (no finite field) are counted as a warning.
pub fn encode_batch(ctx: &Context, out: &mut String, batch: &[Event], format: Format, precision: Precision) {
    out.clear();
    let skipped = encode_events(out, batch, format, precision);
    if skipped > 0 {
        ctx.warn(format!("{skipped} events had no field line protocol can carry"));
    }
}

/// Appends events in a format, one a line, to `out`; returns how many line
/// protocol could not carry (no finite field).
pub fn encode_events(out: &mut String, batch: &[Event], format: Format, precision: Precision) -> usize {
    let mut skipped = 0;
    for e in batch {
        match format {
            Format::Influx => {
                if !lineproto::encode_into(out, e, precision) {
                    skipped += 1;
                }
            }
            Format::Json => {
                out.push_str(&vane_core::json::encode(e));
                out.push('\n');
            }
        }
    }
    skipped
}
