//! Riemann's wire messages (the fields of its published `proto.proto` that
//! vane reads and writes: a `Msg` of events, or a query, and the server's
//! answer) and how they map to vane's events both ways, for the `riemann`
//! sink and source.
//!
//! Out, one Riemann event per numeric field: the service is the event's
//! name (then a space and the field, unless the field is `value`); host,
//! state, description, ttl and time (seconds and microseconds) carry over;
//! the metric goes in `metric_sint64` for integers and `metric_d` otherwise;
//! tags become attributes; an event with no time yet goes without one.
//!
//! In, a Riemann event becomes a vane event: the service is the name, the
//! metric (`metric_sint64`, else `metric_d`, else `metric_f`) the field
//! `value`; host, description and ttl carry over; a state vane knows (ok,
//! warning, critical, unknown) is the event's state, any other the tag
//! `state`; attributes are tags, and Riemann's tags one tag `tags` (joined
//! by commas); `time_micros`, else `time`, the time (none: the agent's).

use vane_core::event::{Event, NO_TIME, State, Value};

#[derive(Clone, PartialEq, prost::Message)]
pub struct Msg {
    #[prost(bool, optional, tag = "2")]
    pub ok: Option<bool>,
    #[prost(string, optional, tag = "3")]
    pub error: Option<String>,
    #[prost(message, optional, tag = "5")]
    pub query: Option<Query>,
    #[prost(message, repeated, tag = "6")]
    pub events: Vec<RiemannEvent>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Query {
    #[prost(string, optional, tag = "1")]
    pub string: Option<String>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct RiemannEvent {
    #[prost(int64, optional, tag = "1")]
    pub time: Option<i64>,
    #[prost(string, optional, tag = "2")]
    pub state: Option<String>,
    #[prost(string, optional, tag = "3")]
    pub service: Option<String>,
    #[prost(string, optional, tag = "4")]
    pub host: Option<String>,
    #[prost(string, optional, tag = "5")]
    pub description: Option<String>,
    #[prost(string, repeated, tag = "7")]
    pub tags: Vec<String>,
    #[prost(float, optional, tag = "8")]
    pub ttl: Option<f32>,
    #[prost(message, repeated, tag = "9")]
    pub attributes: Vec<Attribute>,
    #[prost(int64, optional, tag = "10")]
    pub time_micros: Option<i64>,
    #[prost(sint64, optional, tag = "13")]
    pub metric_sint64: Option<i64>,
    #[prost(double, optional, tag = "14")]
    pub metric_d: Option<f64>,
    #[prost(float, optional, tag = "15")]
    pub metric_f: Option<f32>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Attribute {
    #[prost(string, required, tag = "1")]
    pub key: String,
    #[prost(string, optional, tag = "2")]
    pub value: Option<String>,
}

/// A batch as Riemann events.
pub fn to_riemann(batch: &[Event], tags: &[String]) -> Vec<RiemannEvent> {
    let mut out = Vec::new();
    for e in batch {
        for (field, v) in &e.fields {
            let (sint, d) = match v {
                Value::Str(_) => continue,
                Value::Int(i) => (Some(*i), None),
                Value::Uint(u) => match i64::try_from(*u) {
                    Ok(i) => (Some(i), None),
                    Err(_) => (None, Some(*u as f64)),
                },
                v => (None, v.as_f64()),
            };
            let service = if field == "value" { e.name.to_string() } else { format!("{} {field}", e.name) };
            out.push(RiemannEvent {
                time: (e.time != NO_TIME).then(|| e.time.div_euclid(1_000_000_000)),
                time_micros: (e.time != NO_TIME).then(|| e.time.div_euclid(1_000)),
                state: e.state.map(|s| s.as_str().to_owned()),
                service: Some(service),
                host: (!e.host.is_empty()).then(|| e.host.to_string()),
                description: e.description.clone(),
                tags: tags.to_vec(),
                ttl: e.ttl.map(|t| t as f32),
                attributes: e
                    .tags
                    .iter()
                    .map(|(k, v)| Attribute { key: k.to_string(), value: Some(v.to_string()) })
                    .collect(),
                metric_sint64: sint,
                metric_d: d,
                metric_f: None,
            });
        }
    }
    out
}

/// A Riemann event as a vane event.
pub fn event(e: RiemannEvent) -> Result<Event, String> {
    let name = e.service.filter(|s| !s.is_empty()).ok_or("an event without a service")?;
    let mut ev = Event::new(name);
    ev.host = e.host.unwrap_or_default().into();
    ev.time = match (e.time_micros, e.time) {
        (Some(us), _) => us.checked_mul(1_000).ok_or("time_micros out of range")?,
        (None, Some(s)) => s.checked_mul(1_000_000_000).ok_or("time out of range")?,
        (None, None) => NO_TIME,
    };
    match e.state.as_deref().filter(|s| !s.is_empty()) {
        None => {}
        Some(s) => match State::parse(s) {
            Some(st) => ev.state = Some(st),
            None => ev.set_tag("state", s),
        },
    }
    ev.description = e.description;
    ev.ttl = e.ttl.map(f64::from);
    for a in e.attributes {
        ev.set_tag(&a.key, a.value.unwrap_or_default());
    }
    if !e.tags.is_empty() {
        ev.set_tag("tags", e.tags.join(","));
    }
    let metric = match (e.metric_sint64, e.metric_d, e.metric_f) {
        (Some(i), _, _) => Some(Value::Int(i)),
        (None, Some(d), _) => Some(Value::Float(d)),
        (None, None, Some(f)) => Some(Value::Float(f64::from(f))),
        (None, None, None) => None,
    };
    if let Some(v) = metric {
        ev.fields.push(("value".into(), v));
    }
    Ok(ev)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn riemann_events_become_vane_events() {
        let e = RiemannEvent {
            time: Some(1_700_000_000),
            state: Some("warning".into()),
            service: Some("disk /".into()),
            host: Some("web-01".into()),
            description: Some("nearly full".into()),
            tags: vec!["prod".into(), "disk".into()],
            ttl: Some(60.0),
            attributes: vec![Attribute { key: "mount".into(), value: Some("/".into()) }],
            metric_d: Some(91.5),
            ..RiemannEvent::default()
        };
        let ev = event(e).unwrap();
        assert_eq!(
            ev,
            Event::gauge("disk /", 91.5)
                .host("web-01")
                .state(State::Warning)
                .description("nearly full")
                .ttl(60.0)
                .tag("mount", "/")
                .tag("tags", "prod,disk")
                .at(1_700_000_000_000_000_000)
        );
        let ev = event(RiemannEvent {
            service: Some("s".into()),
            state: Some("flapping".into()),
            time: Some(1),
            time_micros: Some(1_500_000),
            metric_sint64: Some(-3),
            metric_d: Some(9.0),
            ..RiemannEvent::default()
        })
        .unwrap();
        assert_eq!(
            (ev.time, ev.get_tag("state"), ev.get_field("value")),
            (1_500_000_000, Some("flapping"), Some(&Value::Int(-3)))
        );
        assert_eq!(event(RiemannEvent { service: Some("s".into()), ..RiemannEvent::default() }).unwrap().time, NO_TIME);
        assert!(event(RiemannEvent::default()).is_err());
        assert!(
            event(RiemannEvent { service: Some("s".into()), time: Some(i64::MAX), ..RiemannEvent::default() }).is_err()
        );
    }
}
