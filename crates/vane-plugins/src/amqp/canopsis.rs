//! Canopsis events: vane events to and from the JSON that Canopsis engines
//! read from the `canopsis.events` exchange, and the routing key they are
//! published with, `connector.connector_name.event_type.source_type.component[.resource]`.
//!
//! vane → Canopsis: the host is the `component`, the name the `resource`
//! (so `source_type` is `resource`); an event with a state is a `check`
//! (state 0–3, its description the `output`), one without a `perf` event;
//! numeric fields are the `perf_data_array` (type from the kind: GAUGE,
//! COUNTER, ABSOLUTE for deltas), a string field `long_output` the long
//! output; the tags `connector` and `connector_name` (default `vane`) name
//! the sender; other tags have no place in a Canopsis event and are left
//! out. Canopsis → vane: the same, backwards; `resource` (or, for a
//! component's own event, `component`) is the name, each perf item a
//! field (a check without any gets its state as field `value`), and
//! `connector`, `connector_name` and `source_type` become tags.

use serde::{Deserialize, Serialize};
use vane_core::prelude::*;

#[derive(Serialize, Deserialize, Debug, PartialEq)]
pub struct CanopsisEvent {
    pub connector: String,
    pub connector_name: String,
    pub event_type: String,
    pub source_type: String,
    pub component: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<String>,
    #[serde(default)]
    pub state: u8,
    #[serde(default = "hard")]
    pub state_type: u8,
    #[serde(default)]
    pub output: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub long_output: Option<String>,
    #[serde(default)]
    pub timestamp: Option<f64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub perf_data_array: Vec<Perf>,
}

fn hard() -> u8 {
    1
}

#[derive(Serialize, Deserialize, Debug, PartialEq)]
pub struct Perf {
    pub metric: String,
    pub value: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warn: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crit: Option<f64>,
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
}

fn state_code(s: State) -> u8 {
    match s {
        State::Ok => 0,
        State::Warning => 1,
        State::Critical => 2,
        State::Unknown => 3,
    }
}

fn state_of(code: u8) -> Result<State, String> {
    match code {
        0 => Ok(State::Ok),
        1 => Ok(State::Warning),
        2 => Ok(State::Critical),
        3 => Ok(State::Unknown),
        n => Err(format!("state {n}: Canopsis states are 0 to 3")),
    }
}

impl CanopsisEvent {
    /// The Canopsis form of a vane event.
    pub fn from_event(e: &Event) -> CanopsisEvent {
        let perf_type = match e.kind {
            Kind::Gauge => "GAUGE",
            Kind::Counter => "COUNTER",
            Kind::Delta => "ABSOLUTE",
        };
        let perf_data_array = e
            .fields
            .iter()
            .filter_map(|(k, v)| {
                let value = match v {
                    Value::Str(_) => return None,
                    v => v.as_f64()?,
                };
                value.is_finite().then(|| Perf {
                    metric: k.to_string(),
                    value,
                    unit: None,
                    min: None,
                    max: None,
                    warn: None,
                    crit: None,
                    kind: Some(perf_type.into()),
                })
            })
            .collect();
        CanopsisEvent {
            connector: e.get_tag("connector").unwrap_or("vane").to_owned(),
            connector_name: e.get_tag("connector_name").unwrap_or("vane").to_owned(),
            event_type: if e.state.is_some() { "check" } else { "perf" }.into(),
            source_type: "resource".into(),
            component: e.host.to_string(),
            resource: Some(e.name.to_string()),
            state: e.state.map_or(0, state_code),
            state_type: 1,
            output: e.description.clone().unwrap_or_default(),
            long_output: e.get_field("long_output").and_then(Value::as_str).map(str::to_owned),
            timestamp: Some((e.time.div_euclid(1_000_000_000)) as f64),
            perf_data_array,
        }
    }

    /// The routing key Canopsis expects.
    pub fn routing_key(&self) -> String {
        let mut k = format!(
            "{}.{}.{}.{}.{}",
            self.connector, self.connector_name, self.event_type, self.source_type, self.component
        );
        if let Some(r) = &self.resource {
            k.push('.');
            k.push_str(r);
        }
        k
    }

    /// The vane form of a Canopsis event; `now` when it has no timestamp.
    pub fn into_event(self, now: i64) -> Result<Event, String> {
        let state = state_of(self.state)?;
        if self.component.is_empty() {
            return Err("an empty component".into());
        }
        let name = self.resource.clone().unwrap_or_else(|| self.component.clone());
        let mut e = Event::new(name)
            .host(self.component)
            .tag("connector", self.connector)
            .tag("connector_name", self.connector_name)
            .tag("source_type", self.source_type);
        e.time = match self.timestamp {
            Some(t) if t.is_finite() && t >= 0.0 => (t * 1e9) as i64,
            Some(t) => return Err(format!("timestamp {t}: not a time")),
            None => now,
        };
        if self.event_type == "check" {
            e.state = Some(state);
        }
        if !self.output.is_empty() {
            e.description = Some(self.output);
        }
        for p in self.perf_data_array {
            if let Some(k) = p.kind.as_deref() {
                e.kind = match k.to_ascii_uppercase().as_str() {
                    "COUNTER" | "DERIVE" => Kind::Counter,
                    "ABSOLUTE" => Kind::Delta,
                    _ => Kind::Gauge,
                };
            }
            e.fields.push((p.metric.into(), Value::Float(p.value)));
        }
        if let Some(l) = self.long_output {
            e.fields.push(("long_output".into(), Value::Str(l)));
        }
        if !e.fields.iter().any(|(_, v)| v.as_f64().is_some()) {
            e.fields.push(("value".into(), Value::Int(i64::from(self.state))));
        }
        Ok(e)
    }
}

/// The events of a Canopsis message: one event object, or an array of them.
pub fn decode(text: &str, now: i64) -> Result<Vec<Event>, String> {
    let t = text.trim_start();
    let events: Vec<CanopsisEvent> = if t.starts_with('[') {
        serde_json::from_str(t).map_err(|e| format!("not Canopsis events: {e}"))?
    } else {
        vec![serde_json::from_str(t).map_err(|e| format!("not a Canopsis event: {e}"))?]
    };
    events.into_iter().map(|c| c.into_event(now)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_check_goes_to_canopsis_and_back() {
        let e = Event::gauge("cpu", 87.5)
            .host("web-01")
            .tag("connector", "vane")
            .tag("connector_name", "agent")
            .tag("source_type", "resource")
            .state(State::Warning)
            .description("CPU at 87.5%")
            .at(1_700_000_000_000_000_000);
        let c = CanopsisEvent::from_event(&e);
        assert_eq!(c.routing_key(), "vane.agent.check.resource.web-01.cpu");
        assert_eq!((c.state, c.output.as_str(), c.perf_data_array[0].value), (1, "CPU at 87.5%", 87.5));
        let json = serde_json::to_string(&c).unwrap();
        assert_eq!(decode(&json, 0).unwrap(), vec![e]);
    }

    #[test]
    fn canopsis_events_read_with_their_state_or_say_why_not() {
        let evs = decode(
            r#"[{"connector":"nagios","connector_name":"n1","event_type":"check","source_type":"component","component":"db1","state":2,"output":"down"}]"#,
            5,
        )
        .unwrap();
        assert_eq!((evs[0].name.as_str(), evs[0].host.as_str(), evs[0].state), ("db1", "db1", Some(State::Critical)));
        assert_eq!(evs[0].get_field("value"), Some(&Value::Int(2)));
        assert_eq!(evs[0].time, 5);
        let bad = r#"{"connector":"c","connector_name":"n","event_type":"check","source_type":"component","component":"h","state":7}"#;
        assert!(decode(bad, 0).unwrap_err().contains("0 to 3"));
        assert!(decode("{\"connector\": 1}", 0).unwrap_err().contains("not a Canopsis event"));
    }
}
