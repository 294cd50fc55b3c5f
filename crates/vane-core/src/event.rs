//! The one data model: an event, its fields, metric kind and state.

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

/// A name, key or tag value: a string held inline up to 24 bytes, so the
/// names of a decoded event cost no allocation of their own. It reads as a
/// `&str` and is built with `.into()` from `&str` or `String`.
pub type Text = compact_str::CompactString;

/// One measurement or check result.
///
/// An event maps losslessly to an InfluxDB point (see [`crate::lineproto`] for the
/// reserved tag and field names that carry `host`, `kind`, `state`, `description`
/// and `ttl`), a Riemann event, a Prometheus sample and a Graphite line.
///
/// `time == NO_TIME` and an empty `host` mean "not set": the runtime stamps
/// the poll time and the agent's host name before the event leaves its source.
#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    /// Measurement / service name.
    pub name: Text,
    /// Nanoseconds since the Unix epoch (0 is the epoch); [`NO_TIME`] until stamped.
    pub time: i64,
    /// The host the event is about; empty until stamped.
    pub host: Text,
    /// Tags in the order they were added.
    pub tags: Vec<(Text, Text)>,
    /// One or more fields, in the order they were added.
    pub fields: Vec<(Text, Value)>,
    /// How the numeric fields behave over time.
    pub kind: Kind,
    /// Check state, when the event is the result of a check or a level.
    pub state: Option<State>,
    /// Human-readable text (a check's output, an alert message).
    pub description: Option<String>,
    /// Seconds after which the event is stale (Riemann's ttl).
    pub ttl: Option<f64>,
}

/// The time of an event that has none yet. It is the earliest instant an
/// `i64` of nanoseconds holds (1677-09-21), which no source reports.
pub const NO_TIME: i64 = i64::MIN;

impl Default for Event {
    fn default() -> Event {
        Event {
            name: Text::default(),
            time: NO_TIME,
            host: Text::default(),
            tags: Vec::new(),
            fields: Vec::new(),
            kind: Kind::Gauge,
            state: None,
            description: None,
            ttl: None,
        }
    }
}

/// A field value.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Float(f64),
    Int(i64),
    Uint(u64),
    Bool(bool),
    Str(String),
}

/// How a metric behaves over time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Kind {
    /// A value sampled at a point in time.
    #[default]
    Gauge,
    /// A monotonically increasing total (Ceilometer's "cumulative").
    Counter,
    /// The change since the previous sample.
    Delta,
}

/// The state of a check.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum State {
    Ok,
    Warning,
    Critical,
    Unknown,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Gauge => "gauge",
            Kind::Counter => "counter",
            Kind::Delta => "delta",
        }
    }

    /// Parses `gauge`, `counter` (or `cumulative`) and `delta`.
    pub fn parse(s: &str) -> Option<Kind> {
        match s {
            "gauge" => Some(Kind::Gauge),
            "counter" | "cumulative" => Some(Kind::Counter),
            "delta" => Some(Kind::Delta),
            _ => None,
        }
    }
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Ok => "ok",
            State::Warning => "warning",
            State::Critical => "critical",
            State::Unknown => "unknown",
        }
    }

    pub fn parse(s: &str) -> Option<State> {
        match s {
            "ok" => Some(State::Ok),
            "warning" => Some(State::Warning),
            "critical" => Some(State::Critical),
            "unknown" => Some(State::Unknown),
            _ => None,
        }
    }

    /// The Nagios plugin exit code for this state.
    pub fn exit_code(self) -> i32 {
        match self {
            State::Ok => 0,
            State::Warning => 1,
            State::Critical => 2,
            State::Unknown => 3,
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Value {
    /// The value as a float, when it is numeric (booleans count as 0 and 1).
    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            Value::Float(v) => Some(v),
            Value::Int(v) => Some(v as f64),
            Value::Uint(v) => Some(v as f64),
            Value::Bool(v) => Some(if v { 1.0 } else { 0.0 }),
            Value::Str(_) => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }
}

macro_rules! value_from {
    ($($t:ty => $v:ident as $c:ty),* $(,)?) => {
        $(impl From<$t> for Value {
            fn from(v: $t) -> Value { Value::$v(v as $c) }
        })*
    };
}
value_from!(f64 => Float as f64, f32 => Float as f64, i64 => Int as i64, i32 => Int as i64,
    u64 => Uint as u64, u32 => Uint as u64, usize => Uint as u64);

impl From<bool> for Value {
    fn from(v: bool) -> Value {
        Value::Bool(v)
    }
}
impl From<String> for Value {
    fn from(v: String) -> Value {
        Value::Str(v)
    }
}
impl From<&str> for Value {
    fn from(v: &str) -> Value {
        Value::Str(v.to_owned())
    }
}

/// The current time in nanoseconds since the Unix epoch.
pub fn now_ns() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos() as i64).unwrap_or(0)
}

impl Event {
    /// An event with a name and nothing else; add fields with [`Event::field`].
    pub fn new(name: impl Into<Text>) -> Event {
        Event { name: name.into(), ..Event::default() }
    }

    /// A gauge with one field called `value`.
    pub fn gauge(name: impl Into<Text>, value: impl Into<Value>) -> Event {
        Event::new(name).field("value", value)
    }

    /// A counter (cumulative) with one field called `value`.
    pub fn counter(name: impl Into<Text>, value: impl Into<Value>) -> Event {
        Event::new(name).kind(Kind::Counter).field("value", value)
    }

    pub fn field(mut self, key: impl Into<Text>, value: impl Into<Value>) -> Event {
        self.fields.push((key.into(), value.into()));
        self
    }

    pub fn tag(mut self, key: impl Into<Text>, value: impl Into<Text>) -> Event {
        self.tags.push((key.into(), value.into()));
        self
    }

    pub fn kind(mut self, kind: Kind) -> Event {
        self.kind = kind;
        self
    }

    pub fn state(mut self, state: State) -> Event {
        self.state = Some(state);
        self
    }

    pub fn description(mut self, text: impl Into<String>) -> Event {
        self.description = Some(text.into());
        self
    }

    pub fn ttl(mut self, seconds: f64) -> Event {
        self.ttl = Some(seconds);
        self
    }

    pub fn host(mut self, host: impl Into<Text>) -> Event {
        self.host = host.into();
        self
    }

    pub fn at(mut self, time_ns: i64) -> Event {
        self.time = time_ns;
        self
    }

    /// The value of a tag, the first one when a key repeats.
    pub fn get_tag(&self, key: &str) -> Option<&str> {
        self.tags.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    /// The value of a field, the first one when a key repeats.
    pub fn get_field(&self, key: &str) -> Option<&Value> {
        self.fields.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// Sets a tag, replacing an existing one with the same key.
    pub fn set_tag(&mut self, key: &str, value: impl Into<Text>) {
        match self.tags.iter_mut().find(|(k, _)| k == key) {
            Some((_, v)) => *v = value.into(),
            None => self.tags.push((key.into(), value.into())),
        }
    }

    /// What identifies the series this event belongs to: name, host and
    /// tags (in order). Engines keep per-series state under it.
    pub fn series_key(&self) -> String {
        let mut k = String::with_capacity(self.name.len() + self.host.len() + self.tags.len() * 16 + 2);
        k.push_str(&self.name);
        k.push('\0');
        k.push_str(&self.host);
        for (t, v) in &self.tags {
            k.push('\0');
            k.push_str(t);
            k.push('=');
            k.push_str(v);
        }
        k
    }

    /// A hash of the series key, for spreading series over workers.
    pub fn series_hash(&self) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        self.name.hash(&mut h);
        self.host.hash(&mut h);
        self.tags.hash(&mut h);
        h.finish()
    }

    /// An event of the same series (name, host, tags) with no fields.
    pub fn same_series(&self) -> Event {
        Event {
            name: self.name.clone(),
            host: self.host.clone(),
            tags: self.tags.clone(),
            time: self.time,
            ..Event::default()
        }
    }

    /// Fills the time and host when they are not set.
    pub fn stamp(&mut self, time_ns: i64, host: &str) {
        if self.time == NO_TIME {
            self.time = time_ns;
        }
        if self.host.is_empty() {
            self.host.push_str(host);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builder_keeps_order_and_stamp_fills_only_missing() {
        let mut e = Event::gauge("load", 1.5).tag("b", "2").tag("a", "1").at(7);
        e.stamp(99, "web-01");
        assert_eq!(e.time, 7);
        assert_eq!(e.host, "web-01");
        assert_eq!(e.tags[0].0, "b");
        e.set_tag("a", "3");
        assert_eq!(e.get_tag("a"), Some("3"));
        assert_eq!(e.get_field("value"), Some(&Value::Float(1.5)));
    }

    #[test]
    fn kind_and_state_names_round_trip() {
        for k in [Kind::Gauge, Kind::Counter, Kind::Delta] {
            assert_eq!(Kind::parse(k.as_str()), Some(k));
        }
        assert_eq!(Kind::parse("cumulative"), Some(Kind::Counter));
        for s in [State::Ok, State::Warning, State::Critical, State::Unknown] {
            assert_eq!(State::parse(s.as_str()), Some(s));
        }
        assert_eq!(State::Critical.exit_code(), 2);
    }
}
