//! Log lines for machines: logfmt (`time=… level=info msg="…" job=cpu`) or
//! one JSON object a line, for journald and log shippers. The human form
//! is tracing-subscriber's own; these two share one reading of an event's
//! fields and differ only in how a pair is written.

use std::fmt::{self, Write as _};

use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::time::{FormatTime, SystemTime};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// How each pair of a line is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pairs {
    Logfmt,
    Json,
}

/// An event's message and fields, in their order.
#[derive(Default)]
struct Fields(Vec<(&'static str, String)>);

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.push((field.name(), value.to_owned()));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0.push((field.name(), format!("{value:?}")));
    }
}

/// A logfmt value: bare when it can be, else quoted with `"` and `\` escaped.
fn logfmt_value(out: &mut String, v: &str) {
    let bare = !v.is_empty() && v.chars().all(|c| c.is_ascii_graphic() && c != '"' && c != '=' && c != '\\');
    if bare {
        out.push_str(v);
        return;
    }
    out.push('"');
    for c in v.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

impl Pairs {
    /// One log line for `pairs` (without its line feed).
    pub fn line(self, pairs: &[(&str, &str)]) -> String {
        let mut out = String::new();
        match self {
            Pairs::Logfmt => {
                for (i, (k, v)) in pairs.iter().enumerate() {
                    if i > 0 {
                        out.push(' ');
                    }
                    out.push_str(k);
                    out.push('=');
                    logfmt_value(&mut out, v);
                }
            }
            Pairs::Json => {
                let map: serde_json::Map<String, serde_json::Value> =
                    pairs.iter().map(|(k, v)| ((*k).to_owned(), serde_json::Value::from(*v))).collect();
                out = serde_json::Value::Object(map).to_string();
            }
        }
        out
    }
}

impl<S, N> FormatEvent<S, N> for Pairs
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(&self, _: &FmtContext<'_, S, N>, mut w: Writer<'_>, event: &Event<'_>) -> fmt::Result {
        let mut time = String::new();
        SystemTime.format_time(&mut Writer::new(&mut time))?;
        let mut fields = Fields::default();
        event.record(&mut fields);
        let level = event.metadata().level().as_str().to_ascii_lowercase();
        let mut pairs: Vec<(&str, &str)> = vec![("time", &time), ("level", &level)];
        // The message first, under one name whatever the format.
        if let Some((_, m)) = fields.0.iter().find(|(k, _)| *k == "message") {
            pairs.push(("msg", m));
        }
        pairs.extend(fields.0.iter().filter(|(k, _)| *k != "message").map(|(k, v)| (*k, v.as_str())));
        writeln!(w, "{}", self.line(&pairs))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logfmt_quotes_only_what_needs_it_and_json_is_one_object() {
        let pairs = [("level", "warn"), ("msg", "cannot reach \"db\"\nretrying"), ("job", "influx"), ("empty", "")];
        assert_eq!(Pairs::Logfmt.line(&pairs), r#"level=warn msg="cannot reach \"db\"\nretrying" job=influx empty="""#);
        let v: serde_json::Value = serde_json::from_str(&Pairs::Json.line(&pairs)).unwrap();
        assert_eq!(v["msg"], "cannot reach \"db\"\nretrying");
        assert_eq!(v["job"], "influx");
        assert_eq!(Pairs::Logfmt.line(&[("msg", "a=b")]), r#"msg="a=b""#);
    }
}
