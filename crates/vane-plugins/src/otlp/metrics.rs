//! vane events made into OTLP metrics, for the `otlp` sink.
//!
//! One resource per host (the attribute `host.name`, with the sink's
//! configured resource attributes), one scope (`vane`), and a metric per
//! name, field and kind: named after the event, then `_FIELD` unless the
//! field is `value` (as the Prometheus sinks name them). Counters are
//! cumulative monotonic sums, deltas delta sums (not monotonic: a delta
//! may be negative), gauges gauges. Integers are sent as integers
//! (unsigned ones past `i64::MAX` as floats), floats as floats, booleans
//! as 0 or 1; strings are not metrics and are left out. Tags are the
//! points' attributes; the state of a check is the attribute `state`.

use std::collections::BTreeMap;

use vane_core::event::{Event, Kind, NO_TIME, Value};

use super::proto::*;

/// A host's metrics: by name and kind, the kind and the points.
type Metrics = BTreeMap<(String, u8), (Kind, Vec<NumberDataPoint>)>;

/// The request for a batch; empty when nothing in it is a metric.
pub fn request(batch: &[Event], resource: &[(String, String)]) -> ExportMetricsServiceRequest {
    // host -> (name, kind) -> points, in a stable order.
    let mut hosts: BTreeMap<&str, Metrics> = BTreeMap::new();
    for e in batch {
        for (field, v) in &e.fields {
            let value = match v {
                Value::Str(_) => continue,
                Value::Int(i) => Number::AsInt(*i),
                Value::Uint(u) => i64::try_from(*u).map_or(Number::AsDouble(*u as f64), Number::AsInt),
                Value::Bool(b) => Number::AsInt(i64::from(*b)),
                Value::Float(f) => Number::AsDouble(*f),
            };
            let name = if field == "value" { e.name.to_string() } else { format!("{}_{field}", e.name) };
            let mut attributes: Vec<KeyValue> = e.tags.iter().map(|(k, v)| string(k, v)).collect();
            if let Some(s) = e.state {
                attributes.push(string("state", s.as_str()));
            }
            let points =
                &mut hosts.entry(&e.host).or_default().entry((name, e.kind as u8)).or_insert((e.kind, Vec::new())).1;
            points.push(NumberDataPoint {
                attributes,
                start_time_unix_nano: 0,
                time_unix_nano: if e.time == NO_TIME { 0 } else { e.time.max(0) as u64 },
                value: Some(value),
                flags: 0,
            });
        }
    }
    let resource_metrics = hosts
        .into_iter()
        .map(|(host, metrics)| {
            let mut attributes: Vec<KeyValue> = resource.iter().map(|(k, v)| string(k, v)).collect();
            if !host.is_empty() && !resource.iter().any(|(k, _)| k == "host.name") {
                attributes.insert(0, string("host.name", host));
            }
            let metrics = metrics
                .into_iter()
                .map(|((name, _), (kind, data_points))| Metric {
                    name,
                    description: String::new(),
                    unit: String::new(),
                    data: Some(match kind {
                        Kind::Gauge => Data::Gauge(Gauge { data_points }),
                        Kind::Counter => {
                            Data::Sum(Sum { data_points, aggregation_temporality: CUMULATIVE, is_monotonic: true })
                        }
                        Kind::Delta => {
                            Data::Sum(Sum { data_points, aggregation_temporality: DELTA, is_monotonic: false })
                        }
                    }),
                })
                .collect();
            ResourceMetrics {
                resource: Some(Resource { attributes }),
                scope_metrics: vec![ScopeMetrics {
                    scope: Some(InstrumentationScope {
                        name: "vane".into(),
                        version: env!("CARGO_PKG_VERSION").into(),
                        attributes: Vec::new(),
                    }),
                    metrics,
                    schema_url: String::new(),
                }],
                schema_url: String::new(),
            }
        })
        .collect();
    ExportMetricsServiceRequest { resource_metrics }
}

fn string(k: &str, v: &str) -> KeyValue {
    KeyValue { key: k.to_owned(), value: Some(AnyValue { value: Some(any_value::Value::StringValue(v.to_owned())) }) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vane_core::event::State;

    #[test]
    fn events_read_back_as_they_were() {
        let batch = vec![
            Event::gauge("disk", 2.5).host("h1").tag("path", "/").field("free", 5i64).at(2_000),
            Event { kind: Kind::Counter, ..Event::gauge("reqs", 7i64).host("h1").at(3_000) },
            Event { kind: Kind::Delta, ..Event::gauge("sent", -2i64).host("h2").at(4_000) },
            Event { state: Some(State::Critical), ..Event::gauge("up", 0i64).host("h2").field("note", "down").at(5) },
        ];
        let req = request(&batch, &[("env".into(), "prod".into())]);
        assert_eq!(req.resource_metrics.len(), 2);
        assert_eq!(crate::otlp::events::points(&req), 5);
        let back: Vec<Event> = crate::otlp::events::events(req).map(Result::unwrap).collect();
        let names: Vec<(&str, &str, Kind)> = back.iter().map(|e| (e.name.as_str(), e.host.as_str(), e.kind)).collect();
        assert_eq!(
            names,
            vec![
                ("disk", "h1", Kind::Gauge),
                ("disk_free", "h1", Kind::Gauge),
                ("reqs", "h1", Kind::Counter),
                ("sent", "h2", Kind::Delta),
                ("up", "h2", Kind::Gauge),
            ]
        );
        assert_eq!(back[0].get_field("value"), Some(&Value::Float(2.5)));
        assert_eq!(back[1].get_field("value"), Some(&Value::Int(5)));
        assert_eq!((back[3].get_field("value"), back[3].time), (Some(&Value::Int(-2)), 4_000));
        assert_eq!(back[0].get_tag("path"), Some("/"));
        assert_eq!(back[0].get_tag("env"), Some("prod"));
        assert_eq!(back[4].get_tag("state"), Some("critical"));
        assert!(request(&[Event::gauge("s", "text")], &[]).resource_metrics.is_empty());
    }
}
