//! OTLP metrics made into vane events.
//!
//! Tags: the resource's attributes, then the scope's, then the data
//! point's (a later one of the same key wins); values that are not text
//! are written as text (arrays and maps as JSON, bytes as hex). The
//! resource attribute `host.name` is the event's host (and not a tag);
//! without it (or empty) `service.name` is the host (and stays a tag too); without
//! either the agent's host is. The time is the point's `time_unix_nano` (0:
//! the agent's now).
//!
//! What each data type becomes, named after the metric:
//! - gauge: the field `value` (integer or float as sent), kind gauge;
//! - sum: the same, of kind counter when monotonic and cumulative, delta
//!   when delta, gauge when cumulative and not monotonic (an up-down
//!   counter's level);
//! - histogram: as a Prometheus scrape reads one, `NAME_bucket` with the
//!   tag `le` (cumulative counts, the last `+Inf`), `NAME_count`,
//!   `NAME_sum`, of kind counter (delta for delta temporality), and
//!   `NAME_min`, `NAME_max` gauges when sent;
//! - exponential histogram: the same, its buckets' upper bounds as `le`
//!   (negative buckets, then the zero bucket at `zero_threshold`, then
//!   positive buckets);
//! - summary: `NAME` with the tag `quantile` (gauges), `NAME_sum` and
//!   `NAME_count` (counters).
//!
//! A point flagged "no recorded value" is skipped. A point that cannot be
//! an event (no value, a time past 2262, an unspecified temporality,
//! buckets that do not match their bounds) and a metric without data are
//! rejected: counted, and the first one named in the answer's partial
//! success.

use vane_core::event::{Event, Kind, NO_TIME, Text, Value};

use super::proto::{self, Data, ExportMetricsServiceRequest, KeyValue, Metric, Number, any_value};

/// What every event of a resource (and scope) has.
#[derive(Clone, Default)]
struct Base {
    host: Option<String>,
    service: Option<String>,
    tags: Vec<(Text, Text)>,
}

impl Base {
    fn add(&mut self, attrs: Vec<KeyValue>) {
        for kv in attrs {
            if kv.key.is_empty() {
                continue;
            }
            let v = kv.value.map(text).unwrap_or_default();
            if kv.key == "host.name" {
                self.host = Some(v);
                continue;
            }
            if kv.key == "service.name" {
                self.service = Some(v.clone());
            }
            set(&mut self.tags, kv.key.into(), v.into());
        }
    }

    fn host(&self) -> String {
        let given = |h: &Option<String>| h.clone().filter(|h| !h.is_empty());
        given(&self.host).or_else(|| given(&self.service)).unwrap_or_default()
    }
}

fn set(tags: &mut Vec<(Text, Text)>, k: Text, v: Text) {
    match tags.iter_mut().find(|(key, _)| *key == k) {
        Some(t) => t.1 = v,
        None => tags.push((k, v)),
    }
}

/// An attribute's value as text.
fn text(v: proto::AnyValue) -> String {
    match v.value {
        None => String::new(),
        Some(any_value::Value::StringValue(s)) => s,
        Some(any_value::Value::BoolValue(b)) => b.to_string(),
        Some(any_value::Value::IntValue(i)) => i.to_string(),
        Some(any_value::Value::DoubleValue(f)) => f.to_string(),
        Some(any_value::Value::BytesValue(b)) => b.iter().map(|x| format!("{x:02x}")).collect(),
        Some(v) => json(v).to_string(),
    }
}

fn json(v: any_value::Value) -> serde_json::Value {
    use serde_json::Value as J;
    match v {
        any_value::Value::StringValue(s) => J::String(s),
        any_value::Value::BoolValue(b) => J::Bool(b),
        any_value::Value::IntValue(i) => J::from(i),
        any_value::Value::DoubleValue(f) => J::from(f),
        any_value::Value::BytesValue(b) => J::String(b.iter().map(|x| format!("{x:02x}")).collect()),
        any_value::Value::ArrayValue(a) => J::Array(a.values.into_iter().filter_map(|v| v.value.map(json)).collect()),
        any_value::Value::KvlistValue(l) => J::Object(
            l.values.into_iter().map(|kv| (kv.key, kv.value.and_then(|v| v.value).map_or(J::Null, json))).collect(),
        ),
    }
}

/// The events of a request, lazily (a metric's points at a time), each
/// point that cannot be one as its error.
pub fn events(req: ExportMetricsServiceRequest) -> impl Iterator<Item = Result<Event, String>> + Send {
    req.resource_metrics.into_iter().flat_map(|rm| {
        let mut base = Base::default();
        base.add(rm.resource.map(|r| r.attributes).unwrap_or_default());
        rm.scope_metrics.into_iter().flat_map(move |sm| {
            let mut base = base.clone();
            base.add(sm.scope.map(|s| s.attributes).unwrap_or_default());
            sm.metrics.into_iter().flat_map(move |m| metric(&base, m))
        })
    })
}

/// Points a request holds, for a partial success's count.
pub fn points(req: &ExportMetricsServiceRequest) -> usize {
    let of = |m: &Metric| match &m.data {
        None => 1,
        Some(Data::Gauge(g)) => g.data_points.len(),
        Some(Data::Sum(s)) => s.data_points.len(),
        Some(Data::Histogram(h)) => h.data_points.len(),
        Some(Data::ExponentialHistogram(h)) => h.data_points.len(),
        Some(Data::Summary(s)) => s.data_points.len(),
    };
    req.resource_metrics.iter().flat_map(|r| &r.scope_metrics).flat_map(|s| &s.metrics).map(of).sum()
}

/// One event of a point.
struct Point<'a> {
    base: &'a Base,
    name: &'a str,
    tags: Vec<(Text, Text)>,
    time: i64,
}

impl Point<'_> {
    /// The point's one event, taking its tags.
    fn into_event(self, kind: Kind, value: Value) -> Event {
        Event {
            name: self.name.into(),
            time: self.time,
            host: self.base.host().into(),
            tags: self.tags,
            fields: vec![("value".into(), value)],
            kind,
            ..Event::default()
        }
    }

    fn event(&self, suffix: &str, kind: Kind, value: Value) -> Event {
        Event {
            name: format!("{}{suffix}", self.name).into(),
            time: self.time,
            host: self.base.host().into(),
            tags: self.tags.clone(),
            fields: vec![("value".into(), value)],
            kind,
            ..Event::default()
        }
    }

    fn tagged(&self, suffix: &str, kind: Kind, value: Value, k: &str, v: String) -> Event {
        let mut e = self.event(suffix, kind, value);
        set(&mut e.tags, k.into(), v.into());
        e
    }
}

fn metric(base: &Base, m: Metric) -> Vec<Result<Event, String>> {
    let name = m.name;
    if name.is_empty() {
        return vec![Err("a metric without a name".into())];
    }
    let point = |attrs: Vec<KeyValue>, time: u64| -> Result<Point<'_>, String> {
        let time = match time {
            0 => NO_TIME,
            t => i64::try_from(t).map_err(|_| format!("metric {name}: time_unix_nano {t} is out of range"))?,
        };
        let mut tags = base.tags.clone();
        for kv in attrs {
            if !kv.key.is_empty() {
                set(&mut tags, kv.key.into(), kv.value.map(text).unwrap_or_default().into());
            }
        }
        Ok(Point { base, name: &name, tags, time })
    };
    let cumulative = |t: i32| match t {
        proto::DELTA => Ok(Kind::Delta),
        proto::CUMULATIVE => Ok(Kind::Counter),
        t => Err(format!("metric {name}: aggregation temporality {t} is not delta or cumulative")),
    };
    let skip = |flags: u32| flags & proto::NO_RECORDED_VALUE != 0;
    let mut out = Vec::new();
    match m.data {
        None => out.push(Err(format!("metric {name}: no data (gauge, sum, histogram or summary)"))),
        Some(Data::Gauge(g)) => {
            for p in g.data_points.into_iter().filter(|p| !skip(p.flags)) {
                out.push(number(point(p.attributes, p.time_unix_nano), p.value, Kind::Gauge, &name));
            }
        }
        Some(Data::Sum(s)) => {
            let kind = match (cumulative(s.aggregation_temporality), s.is_monotonic) {
                (Ok(Kind::Counter), false) => Ok(Kind::Gauge),
                (k, _) => k,
            };
            for p in s.data_points.into_iter().filter(|p| !skip(p.flags)) {
                out.push(kind.clone().and_then(|k| number(point(p.attributes, p.time_unix_nano), p.value, k, &name)));
            }
        }
        Some(Data::Histogram(h)) => {
            let kind = cumulative(h.aggregation_temporality);
            for p in h.data_points.into_iter().filter(|p| !skip(p.flags)) {
                let n = p.bucket_counts.len();
                if n != 0 && n != p.explicit_bounds.len() + 1 {
                    out.push(Err(format!(
                        "metric {name}: {n} bucket counts for {} bounds (want one more)",
                        p.explicit_bounds.len()
                    )));
                    continue;
                }
                let (k, pt) = match (kind.clone(), point(p.attributes, p.time_unix_nano)) {
                    (Ok(k), Ok(pt)) => (k, pt),
                    (Err(e), _) | (_, Err(e)) => {
                        out.push(Err(e));
                        continue;
                    }
                };
                let bounds = p.explicit_bounds.iter().map(|b| b.to_string());
                buckets(&pt, k, bounds.zip(p.bucket_counts.iter().copied()), p.count, &mut out);
                tail(&pt, k, p.count, p.sum, p.min, p.max, &mut out);
            }
        }
        Some(Data::ExponentialHistogram(h)) => {
            let kind = cumulative(h.aggregation_temporality);
            for p in h.data_points.into_iter().filter(|p| !skip(p.flags)) {
                let (k, pt) = match (kind.clone(), point(p.attributes.clone(), p.time_unix_nano)) {
                    (Ok(k), Ok(pt)) => (k, pt),
                    (Err(e), _) | (_, Err(e)) => {
                        out.push(Err(e));
                        continue;
                    }
                };
                buckets(&pt, k, exponential(&p).into_iter(), p.count, &mut out);
                tail(&pt, k, p.count, p.sum, p.min, p.max, &mut out);
            }
        }
        Some(Data::Summary(s)) => {
            for p in s.data_points.into_iter().filter(|p| !skip(p.flags)) {
                let pt = match point(p.attributes, p.time_unix_nano) {
                    Ok(pt) => pt,
                    Err(e) => {
                        out.push(Err(e));
                        continue;
                    }
                };
                for q in &p.quantile_values {
                    out.push(Ok(pt.tagged("", Kind::Gauge, Value::Float(q.value), "quantile", q.quantile.to_string())));
                }
                out.push(Ok(pt.event("_sum", Kind::Counter, Value::Float(p.sum))));
                out.push(Ok(pt.event("_count", Kind::Counter, Value::Uint(p.count))));
            }
        }
    }
    out
}

fn number(point: Result<Point<'_>, String>, value: Option<Number>, kind: Kind, name: &str) -> Result<Event, String> {
    let point = point?;
    let value = match value {
        Some(Number::AsInt(i)) => Value::Int(i),
        Some(Number::AsDouble(f)) => Value::Float(f),
        None => return Err(format!("metric {name}: a data point without a value")),
    };
    Ok(point.into_event(kind, value))
}

/// `NAME_bucket` events, cumulative, from (upper bound, count) pairs; the
/// last (`+Inf`) is the point's count.
fn buckets(
    pt: &Point<'_>,
    kind: Kind,
    pairs: impl Iterator<Item = (String, u64)>,
    count: u64,
    out: &mut Vec<Result<Event, String>>,
) {
    let mut total = 0u64;
    for (le, n) in pairs {
        total = total.saturating_add(n);
        out.push(Ok(pt.tagged("_bucket", kind, Value::Uint(total), "le", le)));
    }
    out.push(Ok(pt.tagged("_bucket", kind, Value::Uint(count), "le", "+Inf".into())));
}

fn tail(
    pt: &Point<'_>,
    kind: Kind,
    count: u64,
    sum: Option<f64>,
    min: Option<f64>,
    max: Option<f64>,
    out: &mut Vec<Result<Event, String>>,
) {
    out.push(Ok(pt.event("_count", kind, Value::Uint(count))));
    if let Some(s) = sum {
        out.push(Ok(pt.event("_sum", kind, Value::Float(s))));
    }
    for (suffix, v) in [("_min", min), ("_max", max)] {
        if let Some(v) = v {
            out.push(Ok(pt.event(suffix, Kind::Gauge, Value::Float(v))));
        }
    }
}

/// An exponential histogram's buckets as (upper bound, count), lowest
/// first: bucket `i` of scale `s` holds (base^i, base^(i+1)] with base
/// 2^(2^-s); a negative bucket the same range below zero.
fn exponential(p: &proto::ExponentialHistogramDataPoint) -> Vec<(String, u64)> {
    let base_log2 = (-f64::from(p.scale)).exp2();
    let bound = |i: i64| (i as f64 * base_log2).exp2();
    let mut out = Vec::new();
    if let Some(neg) = &p.negative {
        for (k, n) in neg.bucket_counts.iter().enumerate().rev() {
            out.push(((-bound(i64::from(neg.offset) + k as i64)).to_string(), *n));
        }
    }
    if p.zero_count > 0 || p.zero_threshold > 0.0 {
        out.push((p.zero_threshold.to_string(), p.zero_count));
    }
    if let Some(pos) = &p.positive {
        for (k, n) in pos.bucket_counts.iter().enumerate() {
            out.push((bound(i64::from(pos.offset) + k as i64 + 1).to_string(), *n));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::otlp::proto::*;

    fn kv(k: &str, v: any_value::Value) -> KeyValue {
        KeyValue { key: k.into(), value: Some(AnyValue { value: Some(v) }) }
    }

    fn s(v: &str) -> any_value::Value {
        any_value::Value::StringValue(v.into())
    }

    fn request(metrics: Vec<Metric>) -> ExportMetricsServiceRequest {
        ExportMetricsServiceRequest {
            resource_metrics: vec![ResourceMetrics {
                resource: Some(Resource {
                    attributes: vec![kv("service.name", s("shop")), kv("host.name", s("web-01")), kv("env", s("prod"))],
                }),
                scope_metrics: vec![ScopeMetrics {
                    scope: Some(InstrumentationScope {
                        name: "meter".into(),
                        attributes: vec![kv("lib", s("x"))],
                        ..Default::default()
                    }),
                    metrics,
                    schema_url: String::new(),
                }],
                schema_url: String::new(),
            }],
        }
    }

    fn number_point(v: Number, attrs: Vec<KeyValue>) -> NumberDataPoint {
        NumberDataPoint { attributes: attrs, time_unix_nano: 1_000, value: Some(v), ..Default::default() }
    }

    fn tag<'a>(e: &'a Event, k: &str) -> Option<&'a str> {
        e.get_tag(k)
    }

    #[test]
    fn sums_and_gauges_keep_their_kinds_values_and_tags() {
        let sum = |temporality, monotonic| Metric {
            name: "requests".into(),
            data: Some(Data::Sum(Sum {
                data_points: vec![number_point(Number::AsInt(7), vec![kv("env", s("dev")), kv("code", s("200"))])],
                aggregation_temporality: temporality,
                is_monotonic: monotonic,
            })),
            ..Default::default()
        };
        let gauge = Metric {
            name: "temp".into(),
            data: Some(Data::Gauge(Gauge {
                data_points: vec![
                    number_point(Number::AsDouble(21.5), vec![kv("n", any_value::Value::IntValue(3))]),
                    NumberDataPoint { flags: NO_RECORDED_VALUE, ..Default::default() },
                    NumberDataPoint::default(),
                ],
            })),
            ..Default::default()
        };
        let req = request(vec![sum(CUMULATIVE, true), sum(DELTA, true), sum(CUMULATIVE, false), sum(0, true), gauge]);
        assert_eq!(points(&req), 7);
        let out: Vec<_> = events(req).collect();
        assert_eq!(out.len(), 6);
        let kinds: Vec<Kind> = out[..3].iter().map(|e| e.as_ref().unwrap().kind).collect();
        assert_eq!(kinds, vec![Kind::Counter, Kind::Delta, Kind::Gauge]);
        let e = out[0].as_ref().unwrap();
        assert_eq!((e.name.as_str(), e.host.as_str(), e.time), ("requests", "web-01", 1_000));
        assert_eq!(e.get_field("value"), Some(&Value::Int(7)));
        // The point's env wins over the resource's; host.name is no tag.
        assert_eq!(
            e.tags,
            [("service.name", "shop"), ("env", "dev"), ("lib", "x"), ("code", "200")]
                .map(|(k, v)| (k.into(), v.into()))
        );
        assert!(out[3].as_ref().unwrap_err().contains("temporality 0"));
        let t = out[4].as_ref().unwrap();
        assert_eq!((t.get_field("value"), tag(t, "n")), (Some(&Value::Float(21.5)), Some("3")));
        assert_eq!(out[5].as_ref().unwrap_err(), "metric temp: a data point without a value");
    }

    #[test]
    fn histograms_read_as_a_scrape_reads_them() {
        let h = Metric {
            name: "latency".into(),
            data: Some(Data::Histogram(Histogram {
                data_points: vec![
                    HistogramDataPoint {
                        count: 6,
                        sum: Some(12.5),
                        bucket_counts: vec![1, 2, 3],
                        explicit_bounds: vec![0.5, 5.0],
                        min: Some(0.1),
                        max: Some(9.0),
                        ..Default::default()
                    },
                    HistogramDataPoint { bucket_counts: vec![1], explicit_bounds: vec![1.0], ..Default::default() },
                ],
                aggregation_temporality: CUMULATIVE,
            })),
            ..Default::default()
        };
        let out: Vec<_> = events(request(vec![h])).collect();
        let ok: Vec<&Event> = out.iter().filter_map(|r| r.as_ref().ok()).collect();
        let le: Vec<(&str, &Value)> =
            ok.iter().filter(|e| e.name == "latency_bucket").map(|e| (tag(e, "le").unwrap(), &e.fields[0].1)).collect();
        assert_eq!(le, vec![("0.5", &Value::Uint(1)), ("5", &Value::Uint(3)), ("+Inf", &Value::Uint(6))]);
        let names: Vec<&str> = ok.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(&names[3..], &["latency_count", "latency_sum", "latency_min", "latency_max"]);
        assert!(ok[..5].iter().all(|e| e.kind == Kind::Counter) && ok[5].kind == Kind::Gauge);
        assert_eq!(ok[5].time, NO_TIME);
        assert!(out.last().unwrap().as_ref().unwrap_err().contains("1 bucket counts for 1 bounds"));
    }

    #[test]
    fn exponential_buckets_have_their_upper_bounds() {
        let p = ExponentialHistogramDataPoint {
            scale: 0,
            count: 6,
            zero_count: 1,
            positive: Some(Buckets { offset: 0, bucket_counts: vec![2, 1] }),
            negative: Some(Buckets { offset: 1, bucket_counts: vec![2] }),
            ..Default::default()
        };
        // base 2: negative bucket 1 is [-4, -2), positive 0 and 1 are (1, 2] and (2, 4].
        let want: Vec<(String, u64)> = [("-2", 2), ("0", 1), ("2", 2), ("4", 1)].map(|(b, n)| (b.into(), n)).into();
        assert_eq!(exponential(&p), want);
    }

    #[test]
    fn summaries_give_quantiles_sum_and_count() {
        let summary = |time_unix_nano| Metric {
            name: "rpc".into(),
            data: Some(Data::Summary(Summary {
                data_points: vec![SummaryDataPoint {
                    count: 4,
                    sum: 2.0,
                    quantile_values: vec![ValueAtQuantile { quantile: 0.99, value: 1.5 }],
                    time_unix_nano,
                    ..Default::default()
                }],
            })),
            ..Default::default()
        };
        let out: Vec<_> = events(request(vec![summary(u64::MAX)])).collect();
        assert!(out[0].as_ref().unwrap_err().contains("out of range"));
        let out: Vec<Event> = events(request(vec![summary(0)])).map(Result::unwrap).collect();
        assert_eq!(tag(&out[0], "quantile"), Some("0.99"));
        assert_eq!((out[1].name.as_str(), out[2].get_field("value")), ("rpc_sum", Some(&Value::Uint(4))));
    }

    #[test]
    fn attribute_values_become_text() {
        let v = AnyValue {
            value: Some(any_value::Value::KvlistValue(KeyValueList {
                values: vec![kv(
                    "a",
                    any_value::Value::ArrayValue(ArrayValue {
                        values: vec![AnyValue { value: Some(any_value::Value::BoolValue(true)) }],
                    }),
                )],
            })),
        };
        assert_eq!(text(v), r#"{"a":[true]}"#);
        assert_eq!(text(AnyValue { value: Some(any_value::Value::BytesValue(vec![1, 0xab])) }), "01ab");
        assert_eq!(text(AnyValue { value: Some(any_value::Value::DoubleValue(0.25)) }), "0.25");
    }
}
