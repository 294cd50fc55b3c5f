//! Prometheus remote write 1.0's wire messages (the fields of its published
//! `remote.proto` and `types.proto` that vane reads and writes) and how
//! they map to vane's events, for the `prometheus_remote_write` sink and
//! source.
//!
//! In, each sample of a series becomes an event: the label `__name__` is
//! its name, the label `host` its host, every other label a tag (in the
//! order sent, which Prometheus sorts), the sample the field `value` and
//! its milliseconds the time. The kind comes from the metric metadata the
//! sender sends (Prometheus: every minute, `send_metadata`): counters and
//! the `_bucket`, `_sum` and `_count` series of histograms and summaries
//! are counters, the rest gauges, as a scrape reads them; a family whose
//! metadata has not come yet is a gauge. Prometheus's stale markers (the
//! NaN it writes when a series goes away) are not samples and are skipped.

use std::collections::HashMap;

use vane_core::event::{Event, Kind, Value};

#[derive(Clone, PartialEq, prost::Message)]
pub struct WriteRequest {
    #[prost(message, repeated, tag = "1")]
    pub timeseries: Vec<TimeSeries>,
    #[prost(message, repeated, tag = "3")]
    pub metadata: Vec<MetricMetadata>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct TimeSeries {
    #[prost(message, repeated, tag = "1")]
    pub labels: Vec<Label>,
    #[prost(message, repeated, tag = "2")]
    pub samples: Vec<Sample>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Label {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(string, tag = "2")]
    pub value: String,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Sample {
    #[prost(double, tag = "1")]
    pub value: f64,
    #[prost(int64, tag = "2")]
    pub timestamp: i64,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct MetricMetadata {
    /// 0 unknown, 1 counter, 2 gauge, 3 histogram, 4 gauge histogram,
    /// 5 summary, 6 info, 7 stateset.
    #[prost(int32, tag = "1")]
    pub r#type: i32,
    #[prost(string, tag = "2")]
    pub metric_family_name: String,
}

/// A Prometheus metric or label name from any text.
pub fn sanitize(s: &str, metric: bool) -> String {
    let mut out: String = s
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '_' || (metric && c == ':') { c } else { '_' })
        .collect();
    if out.is_empty() || out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, '_');
    }
    out
}

/// The bit pattern of Prometheus's stale marker, a NaN.
const STALE_NAN: u64 = 0x7ff0_0000_0000_0002;

/// Families' types, as `# TYPE` words, learned from metadata; bounded.
#[derive(Debug, Default)]
pub struct Types(HashMap<String, String>);

impl Types {
    /// Families remembered at most; metadata of more is not kept.
    pub const MAX: usize = 100_000;

    /// Learns the types in `metadata`.
    pub fn learn(&mut self, metadata: &[MetricMetadata]) {
        for m in metadata {
            let t = match m.r#type {
                1 => "counter",
                2 => "gauge",
                3 => "histogram",
                4 => "gaugehistogram",
                5 => "summary",
                6 => "info",
                7 => "stateset",
                _ => continue,
            };
            if self.0.len() < Self::MAX || self.0.contains_key(&m.metric_family_name) {
                self.0.insert(m.metric_family_name.clone(), t.to_owned());
            }
        }
    }

    pub fn kind(&self, name: &str) -> Kind {
        vane_core::formats::prometheus::kind_of(name, &self.0)
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// The events of a request's series, lazily, a series that cannot be
/// events as its error. The series' kinds are looked up at once, so the
/// events need no hold on `types`.
pub fn events(series: Vec<TimeSeries>, types: &Types) -> impl Iterator<Item = Result<Event, String>> + Send + use<> {
    let heads: Vec<_> = series.into_iter().map(|ts| (head(ts.labels, types), ts.samples)).collect();
    heads.into_iter().flat_map(|(head, samples)| {
        let samples = samples.into_iter().filter(|s| s.value.to_bits() != STALE_NAN);
        let out: Box<dyn Iterator<Item = Result<Event, String>> + Send> = match head {
            Err(why) => Box::new(std::iter::once(Err(why))),
            Ok(head) => {
                // Each sample an event: clones of the head, and the head itself for the last.
                let mut head = Some(head);
                let mut samples = samples.peekable();
                Box::new(std::iter::from_fn(move || {
                    let s = samples.next()?;
                    let last = samples.peek().is_none();
                    let h = head.as_ref()?;
                    let Some(time) = s.timestamp.checked_mul(1_000_000) else {
                        return Some(Err(format!("series {}: timestamp {} ms is out of range", h.name, s.timestamp)));
                    };
                    let mut e = if last { head.take()? } else { h.clone() };
                    e.time = time;
                    e.fields.push(("value".into(), Value::Float(s.value)));
                    Some(Ok(e))
                }))
            }
        };
        out
    })
}

/// An event with a series' name, host, tags and kind, for its samples.
fn head(labels: Vec<Label>, types: &Types) -> Result<Event, String> {
    let mut e = Event::default();
    for l in labels {
        match l.name.as_str() {
            "__name__" => e.name = l.value.into(),
            "host" => e.host = l.value.into(),
            "" => return Err("a label without a name".into()),
            _ => e.tags.push((l.name.into(), l.value.into())),
        }
    }
    if e.name.is_empty() {
        let tags: Vec<String> = e.tags.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
        return Err(format!("series {{{}}} has no __name__ label", tags.join(",")));
    }
    e.kind = types.kind(&e.name);
    Ok(e)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn label(n: &str, v: &str) -> Label {
        Label { name: n.into(), value: v.into() }
    }

    #[test]
    fn names_are_sanitised() {
        assert_eq!(sanitize("cpu-usage.total", true), "cpu_usage_total");
        assert_eq!(sanitize("9lives", false), "_9lives");
        assert_eq!(sanitize("a:b", true), "a:b");
        assert_eq!(sanitize("a:b", false), "a_b");
    }

    #[test]
    fn samples_become_events_with_their_kinds() {
        let mut types = Types::default();
        types.learn(&[
            MetricMetadata { r#type: 1, metric_family_name: "reqs_total".into() },
            MetricMetadata { r#type: 3, metric_family_name: "lat".into() },
        ]);
        let series = vec![
            TimeSeries {
                labels: vec![label("__name__", "reqs_total"), label("host", "h1"), label("job", "j")],
                samples: vec![
                    Sample { value: 1.0, timestamp: 1000 },
                    Sample { value: f64::from_bits(STALE_NAN), timestamp: 2000 },
                    Sample { value: 3.5, timestamp: 3000 },
                ],
            },
            TimeSeries { labels: vec![label("__name__", "lat_bucket"), label("le", "+Inf")], samples: vec![] },
            TimeSeries {
                labels: vec![label("__name__", "temp")],
                samples: vec![Sample { value: 20.0, timestamp: i64::MAX }],
            },
            TimeSeries { labels: vec![label("job", "j")], samples: vec![Sample { value: 1.0, timestamp: 1 }] },
            TimeSeries {
                labels: vec![label("__name__", "lat_count")],
                samples: vec![Sample { value: 9.0, timestamp: 5 }],
            },
        ];
        let out: Vec<_> = events(series, &types).collect();
        assert_eq!(out.len(), 5);
        let a = out[0].as_ref().unwrap();
        assert_eq!(
            (a.name.as_str(), a.host.as_str(), a.time, a.kind),
            ("reqs_total", "h1", 1_000_000_000, Kind::Counter)
        );
        assert_eq!(a.tags, vec![("job".into(), "j".into())]);
        assert_eq!(out[1].as_ref().unwrap().get_field("value"), Some(&Value::Float(3.5)));
        assert!(out[2].as_ref().unwrap_err().contains("out of range"));
        assert_eq!(out[3].as_ref().unwrap_err(), "series {job=\"j\"} has no __name__ label");
        assert_eq!(out[4].as_ref().unwrap().kind, Kind::Counter);
        assert_eq!(types.kind("temp"), Kind::Gauge);
    }

    #[test]
    fn the_type_table_is_bounded() {
        let mut types = Types::default();
        let many: Vec<_> =
            (0..Types::MAX + 10).map(|i| MetricMetadata { r#type: 1, metric_family_name: format!("m{i}") }).collect();
        types.learn(&many);
        assert_eq!(types.len(), Types::MAX);
    }
}
