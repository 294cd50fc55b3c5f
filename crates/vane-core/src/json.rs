//! JSON form of an event: `{"name", "time", "host", "tags", "fields", "kind", "state", "description", "ttl"}`.
//!
//! Tags and fields are JSON objects whose key order is the event's order.
//! Field values use JSON's own types: a float always carries a fraction or an
//! exponent (`1.0`), an integer does not; a non-negative integer reads back as
//! an integer unless it only fits an unsigned one.

use std::fmt;

use serde::de::{self, MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::event::{Event, Kind, State, Text, Value};

impl Serialize for Value {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Value::Float(v) => s.serialize_f64(*v),
            Value::Int(v) => s.serialize_i64(*v),
            Value::Uint(v) => s.serialize_u64(*v),
            Value::Bool(v) => s.serialize_bool(*v),
            Value::Str(v) => s.serialize_str(v),
        }
    }
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Value, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Value;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a number, boolean or string")
            }
            fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
                Ok(Value::Float(v))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
                Ok(Value::Int(v))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
                Ok(i64::try_from(v).map_or(Value::Uint(v), Value::Int))
            }
            fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
                Ok(Value::Bool(v))
            }
            fn visit_str<E>(self, v: &str) -> Result<Value, E> {
                Ok(Value::Str(v.to_owned()))
            }
            fn visit_string<E>(self, v: String) -> Result<Value, E> {
                Ok(Value::Str(v))
            }
        }
        d.deserialize_any(V)
    }
}

struct Pairs<'a, V>(&'a [(Text, V)]);

impl<V: Serialize> Serialize for Pairs<'_, V> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in self.0 {
            m.serialize_entry(k, v)?;
        }
        m.end()
    }
}

/// An ordered list of key/value pairs read from a JSON object.
struct OrderedPairs<V>(Vec<(Text, V)>);

impl<'de, V: Deserialize<'de>> Deserialize<'de> for OrderedPairs<V> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Vis<V>(std::marker::PhantomData<V>);
        impl<'de, V: Deserialize<'de>> Visitor<'de> for Vis<V> {
            type Value = OrderedPairs<V>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Self::Value, A::Error> {
                let mut out = Vec::with_capacity(m.size_hint().unwrap_or(4));
                while let Some((k, v)) = m.next_entry()? {
                    out.push((k, v));
                }
                Ok(OrderedPairs(out))
            }
        }
        d.deserialize_map(Vis(std::marker::PhantomData))
    }
}

impl Serialize for Event {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("name", &self.name)?;
        if self.time != crate::event::NO_TIME {
            m.serialize_entry("time", &self.time)?;
        }
        m.serialize_entry("host", &self.host)?;
        m.serialize_entry("tags", &Pairs(&self.tags))?;
        m.serialize_entry("fields", &Pairs(&self.fields))?;
        m.serialize_entry("kind", self.kind.as_str())?;
        if let Some(st) = self.state {
            m.serialize_entry("state", st.as_str())?;
        }
        if let Some(d) = &self.description {
            m.serialize_entry("description", d)?;
        }
        if let Some(t) = self.ttl {
            m.serialize_entry("ttl", &t)?;
        }
        m.end()
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EventJson {
    name: Text,
    #[serde(default)]
    time: Option<i64>,
    #[serde(default)]
    host: Text,
    #[serde(default)]
    tags: Option<OrderedPairs<Text>>,
    fields: OrderedPairs<Value>,
    #[serde(default)]
    kind: Option<String>,
    #[serde(default)]
    state: Option<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    ttl: Option<f64>,
}

impl<'de> Deserialize<'de> for Event {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Event, D::Error> {
        let j = EventJson::deserialize(d)?;
        let kind = match j.kind.as_deref() {
            None => Kind::Gauge,
            Some(k) => Kind::parse(k)
                .ok_or_else(|| de::Error::custom(format!("unknown kind {k:?}: expected gauge, counter or delta")))?,
        };
        let state = match j.state.as_deref() {
            None => None,
            Some(s) => Some(State::parse(s).ok_or_else(|| {
                de::Error::custom(format!("unknown state {s:?}: expected ok, warning, critical or unknown"))
            })?),
        };
        Ok(Event {
            name: j.name,
            time: j.time.unwrap_or(crate::event::NO_TIME),
            host: j.host,
            tags: j.tags.map(|t| t.0).unwrap_or_default(),
            fields: j.fields.0,
            kind,
            state,
            description: j.description,
            ttl: j.ttl,
        })
    }
}

/// Encodes one event as a JSON object on one line (no trailing newline).
pub fn encode(ev: &Event) -> String {
    serde_json::to_string(ev).expect("an event always serializes")
}

/// Decodes one JSON object into an event.
pub fn decode(s: &str) -> Result<Event, serde_json::Error> {
    serde_json::from_str(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_round_trip_keeps_order_and_types() {
        let e = Event::new("m")
            .tag("z", "1")
            .tag("a", "2")
            .field("f", 1.0)
            .field("i", -1i64)
            .field("u", u64::MAX)
            .field("s", "x")
            .state(State::Critical)
            .ttl(5.0)
            .at(3);
        let s = encode(&e);
        assert!(s.starts_with(r#"{"name":"m","time":3,"host":"","tags":{"z":"1","a":"2"},"fields":{"f":1.0,"i":-1,"#));
        assert_eq!(decode(&s).unwrap(), e);
    }

    #[test]
    fn json_rejects_unknown_keys_and_states() {
        assert!(decode(r#"{"name":"m","fields":{"v":1},"bogus":1}"#).is_err());
        let err = decode(r#"{"name":"m","fields":{"v":1},"state":"bad"}"#).unwrap_err();
        assert!(err.to_string().contains("unknown state"));
    }
}
