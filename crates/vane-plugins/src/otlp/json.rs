//! OTLP/JSON bodies read into OTLP's messages: protobuf's JSON mapping as
//! the OTLP specification has it. Field names in lowerCamelCase (the
//! proto's snake_case names are taken too); 64-bit integers as decimal
//! strings or numbers; enums as integers; `bytes` in base64; floats as
//! numbers or "NaN", "Infinity", "-Infinity"; unknown fields ignored. A
//! value of the wrong type is an error naming its path in the body.

use serde_json::{Map, Value as J};

use super::proto::*;

type R<T> = Result<T, String>;

/// A whole body, or the first thing in it that is not OTLP/JSON.
pub fn request(body: &[u8]) -> R<ExportMetricsServiceRequest> {
    let v: J = serde_json::from_slice(body).map_err(|e| format!("not JSON: {e}"))?;
    let o = object(&v, &P::ROOT)?;
    Ok(ExportMetricsServiceRequest { resource_metrics: list(o, "resourceMetrics", &P::ROOT, resource_metrics)? })
}

/// A field by its JSON name or its proto name (`fooBar` or `foo_bar`).
fn get<'a>(o: &'a Map<String, J>, camel: &str) -> Option<&'a J> {
    o.get(camel).or_else(|| o.get(&snake(camel))).filter(|v| !v.is_null())
}

fn snake(camel: &str) -> String {
    let mut s = String::with_capacity(camel.len() + 4);
    for c in camel.chars() {
        if c.is_ascii_uppercase() {
            s.push('_');
            s.push(c.to_ascii_lowercase());
        } else {
            s.push(c);
        }
    }
    s
}

fn object<'a>(v: &'a J, path: &P<'_>) -> R<&'a Map<String, J>> {
    v.as_object().ok_or_else(|| format!("{path}: expected an object"))
}

/// Where a value is in the body, written out only for an error.
#[derive(Clone, Copy)]
struct P<'a> {
    parent: Option<&'a P<'a>>,
    seg: Seg<'a>,
}

#[derive(Clone, Copy)]
enum Seg<'a> {
    Root,
    Key(&'a str),
    Index(usize),
}

impl<'a> P<'a> {
    const ROOT: P<'static> = P { parent: None, seg: Seg::Root };

    fn key(&'a self, k: &'a str) -> P<'a> {
        P { parent: Some(self), seg: Seg::Key(k) }
    }

    fn index(&'a self, i: usize) -> P<'a> {
        P { parent: Some(self), seg: Seg::Index(i) }
    }
}

impl std::fmt::Display for P<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let top = matches!(self.parent, None | Some(P { seg: Seg::Root, .. }));
        if let Some(parent) = self.parent
            && !top
        {
            parent.fmt(f)?;
        }
        match self.seg {
            Seg::Root => f.write_str("the body"),
            Seg::Key(k) if top => f.write_str(k),
            Seg::Key(k) => write!(f, ".{k}"),
            Seg::Index(i) => write!(f, "[{i}]"),
        }
    }
}

fn list<T>(o: &Map<String, J>, key: &str, path: &P<'_>, each: impl Fn(&J, &P<'_>) -> R<T>) -> R<Vec<T>> {
    let p = path.key(key);
    match get(o, key) {
        None => Ok(Vec::new()),
        Some(J::Array(a)) => a.iter().enumerate().map(|(i, v)| each(v, &p.index(i))).collect(),
        Some(_) => Err(format!("{p}: expected an array")),
    }
}

fn message<T: Default>(o: &Map<String, J>, key: &str, path: &P<'_>, read: impl Fn(&J, &P<'_>) -> R<T>) -> R<Option<T>> {
    get(o, key).map(|v| read(v, &path.key(key))).transpose()
}

fn string(o: &Map<String, J>, key: &str, path: &P<'_>) -> R<String> {
    match get(o, key) {
        None => Ok(String::new()),
        Some(J::String(s)) => Ok(s.clone()),
        Some(_) => Err(format!("{}: expected a string", path.key(key))),
    }
}

fn boolean(o: &Map<String, J>, key: &str, path: &P<'_>) -> R<bool> {
    match get(o, key) {
        None => Ok(false),
        Some(J::Bool(b)) => Ok(*b),
        Some(_) => Err(format!("{}: expected true or false", path.key(key))),
    }
}

/// An integer, from a number or a decimal string.
fn int<T: TryFrom<i128>>(v: &J, path: &P<'_>) -> R<T> {
    let bad = || format!("{path}: expected an integer in range");
    let n: i128 = match v {
        J::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => i.into(),
            (_, Some(u), _) => u.into(),
            (_, _, Some(f)) if f.fract() == 0.0 && f.abs() < 1.8e19 => f as i128,
            _ => return Err(bad()),
        },
        J::String(s) => s.trim().parse().map_err(|_| bad())?,
        _ => return Err(bad()),
    };
    T::try_from(n).map_err(|_| bad())
}

fn int_field<T: TryFrom<i128> + Default>(o: &Map<String, J>, key: &str, path: &P<'_>) -> R<T> {
    get(o, key).map_or(Ok(T::default()), |v| int(v, &path.key(key)))
}

fn float(v: &J, path: &P<'_>) -> R<f64> {
    match v {
        J::Number(n) => n.as_f64().ok_or_else(|| format!("{path}: expected a number")),
        J::String(s) => match s.as_str() {
            "NaN" => Ok(f64::NAN),
            "Infinity" => Ok(f64::INFINITY),
            "-Infinity" => Ok(f64::NEG_INFINITY),
            s => s.parse().map_err(|_| format!("{path}: expected a number")),
        },
        _ => Err(format!("{path}: expected a number")),
    }
}

fn float_field(o: &Map<String, J>, key: &str, path: &P<'_>) -> R<Option<f64>> {
    get(o, key).map(|v| float(v, &path.key(key))).transpose()
}

fn resource_metrics(v: &J, path: &P<'_>) -> R<ResourceMetrics> {
    let o = object(v, path)?;
    Ok(ResourceMetrics {
        resource: message(o, "resource", path, |v, p| {
            Ok(Resource { attributes: list(object(v, p)?, "attributes", p, key_value)? })
        })?,
        scope_metrics: list(o, "scopeMetrics", path, scope_metrics)?,
        schema_url: string(o, "schemaUrl", path)?,
    })
}

fn scope_metrics(v: &J, path: &P<'_>) -> R<ScopeMetrics> {
    let o = object(v, path)?;
    Ok(ScopeMetrics {
        scope: message(o, "scope", path, |v, p| {
            let o = object(v, p)?;
            Ok(InstrumentationScope {
                name: string(o, "name", p)?,
                version: string(o, "version", p)?,
                attributes: list(o, "attributes", p, key_value)?,
            })
        })?,
        metrics: list(o, "metrics", path, metric)?,
        schema_url: string(o, "schemaUrl", path)?,
    })
}

fn key_value(v: &J, path: &P<'_>) -> R<KeyValue> {
    let o = object(v, path)?;
    Ok(KeyValue { key: string(o, "key", path)?, value: message(o, "value", path, any_value)? })
}

fn any_value(v: &J, path: &P<'_>) -> R<AnyValue> {
    use super::proto::any_value::Value as V;
    let o = object(v, path)?;
    let value = if let Some(s) = get(o, "stringValue") {
        V::StringValue(s.as_str().ok_or_else(|| format!("{}: expected a string", path.key("stringValue")))?.to_owned())
    } else if get(o, "boolValue").is_some() {
        V::BoolValue(boolean(o, "boolValue", path)?)
    } else if let Some(i) = get(o, "intValue") {
        V::IntValue(int(i, &path.key("intValue"))?)
    } else if let Some(f) = get(o, "doubleValue") {
        V::DoubleValue(float(f, &path.key("doubleValue"))?)
    } else if let Some(a) = get(o, "arrayValue") {
        let p = path.key("arrayValue");
        V::ArrayValue(ArrayValue { values: list(object(a, &p)?, "values", &p, any_value)? })
    } else if let Some(l) = get(o, "kvlistValue") {
        let p = path.key("kvlistValue");
        V::KvlistValue(KeyValueList { values: list(object(l, &p)?, "values", &p, key_value)? })
    } else if let Some(b) = get(o, "bytesValue") {
        let p = path.key("bytesValue");
        V::BytesValue(
            base64(b.as_str().ok_or_else(|| format!("{p}: expected base64"))?)
                .ok_or(format!("{p}: expected base64"))?,
        )
    } else {
        return Ok(AnyValue { value: None });
    };
    Ok(AnyValue { value: Some(value) })
}

/// Base64 as protobuf's JSON mapping takes it: the standard alphabet or
/// the URL-safe one, padded or not.
fn base64(s: &str) -> Option<Vec<u8>> {
    use base64::Engine as _;
    use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
    const EITHER: GeneralPurposeConfig =
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent);
    let standard = GeneralPurpose::new(&base64::alphabet::STANDARD, EITHER);
    let url_safe = GeneralPurpose::new(&base64::alphabet::URL_SAFE, EITHER);
    standard.decode(s).or_else(|_| url_safe.decode(s)).ok()
}

fn metric(v: &J, path: &P<'_>) -> R<Metric> {
    let o = object(v, path)?;
    let data = if let Some(g) = get(o, "gauge") {
        let p = path.key("gauge");
        Some(Data::Gauge(Gauge { data_points: list(object(g, &p)?, "dataPoints", &p, number_point)? }))
    } else if let Some(s) = get(o, "sum") {
        let p = path.key("sum");
        let s = object(s, &p)?;
        Some(Data::Sum(Sum {
            data_points: list(s, "dataPoints", &p, number_point)?,
            aggregation_temporality: int_field(s, "aggregationTemporality", &p)?,
            is_monotonic: boolean(s, "isMonotonic", &p)?,
        }))
    } else if let Some(h) = get(o, "histogram") {
        let p = path.key("histogram");
        let h = object(h, &p)?;
        Some(Data::Histogram(Histogram {
            data_points: list(h, "dataPoints", &p, histogram_point)?,
            aggregation_temporality: int_field(h, "aggregationTemporality", &p)?,
        }))
    } else if let Some(h) = get(o, "exponentialHistogram") {
        let p = path.key("exponentialHistogram");
        let h = object(h, &p)?;
        Some(Data::ExponentialHistogram(ExponentialHistogram {
            data_points: list(h, "dataPoints", &p, exponential_point)?,
            aggregation_temporality: int_field(h, "aggregationTemporality", &p)?,
        }))
    } else if let Some(s) = get(o, "summary") {
        let p = path.key("summary");
        Some(Data::Summary(Summary { data_points: list(object(s, &p)?, "dataPoints", &p, summary_point)? }))
    } else {
        None
    };
    Ok(Metric {
        name: string(o, "name", path)?,
        description: string(o, "description", path)?,
        unit: string(o, "unit", path)?,
        data,
    })
}

fn number_point(v: &J, path: &P<'_>) -> R<NumberDataPoint> {
    let o = object(v, path)?;
    let value = if let Some(i) = get(o, "asInt") {
        Some(Number::AsInt(int(i, &path.key("asInt"))?))
    } else {
        float_field(o, "asDouble", path)?.map(Number::AsDouble)
    };
    Ok(NumberDataPoint {
        attributes: list(o, "attributes", path, key_value)?,
        start_time_unix_nano: int_field(o, "startTimeUnixNano", path)?,
        time_unix_nano: int_field(o, "timeUnixNano", path)?,
        value,
        flags: int_field(o, "flags", path)?,
    })
}

fn histogram_point(v: &J, path: &P<'_>) -> R<HistogramDataPoint> {
    let o = object(v, path)?;
    Ok(HistogramDataPoint {
        attributes: list(o, "attributes", path, key_value)?,
        start_time_unix_nano: int_field(o, "startTimeUnixNano", path)?,
        time_unix_nano: int_field(o, "timeUnixNano", path)?,
        count: int_field(o, "count", path)?,
        sum: float_field(o, "sum", path)?,
        bucket_counts: list(o, "bucketCounts", path, int)?,
        explicit_bounds: list(o, "explicitBounds", path, float)?,
        flags: int_field(o, "flags", path)?,
        min: float_field(o, "min", path)?,
        max: float_field(o, "max", path)?,
    })
}

fn exponential_point(v: &J, path: &P<'_>) -> R<ExponentialHistogramDataPoint> {
    let o = object(v, path)?;
    let buckets = |v: &J, p: &P<'_>| -> R<Buckets> {
        let o = object(v, p)?;
        Ok(Buckets { offset: int_field(o, "offset", p)?, bucket_counts: list(o, "bucketCounts", p, int)? })
    };
    Ok(ExponentialHistogramDataPoint {
        attributes: list(o, "attributes", path, key_value)?,
        start_time_unix_nano: int_field(o, "startTimeUnixNano", path)?,
        time_unix_nano: int_field(o, "timeUnixNano", path)?,
        count: int_field(o, "count", path)?,
        sum: float_field(o, "sum", path)?,
        scale: int_field(o, "scale", path)?,
        zero_count: int_field(o, "zeroCount", path)?,
        positive: message(o, "positive", path, buckets)?,
        negative: message(o, "negative", path, buckets)?,
        flags: int_field(o, "flags", path)?,
        min: float_field(o, "min", path)?,
        max: float_field(o, "max", path)?,
        zero_threshold: float_field(o, "zeroThreshold", path)?.unwrap_or(0.0),
    })
}

fn summary_point(v: &J, path: &P<'_>) -> R<SummaryDataPoint> {
    let o = object(v, path)?;
    Ok(SummaryDataPoint {
        attributes: list(o, "attributes", path, key_value)?,
        start_time_unix_nano: int_field(o, "startTimeUnixNano", path)?,
        time_unix_nano: int_field(o, "timeUnixNano", path)?,
        count: int_field(o, "count", path)?,
        sum: float_field(o, "sum", path)?.unwrap_or(0.0),
        quantile_values: list(o, "quantileValues", path, |v, p| {
            let o = object(v, p)?;
            Ok(ValueAtQuantile {
                quantile: float_field(o, "quantile", p)?.unwrap_or(0.0),
                value: float_field(o, "value", p)?.unwrap_or(0.0),
            })
        })?,
        flags: int_field(o, "flags", path)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_specs_example_reads() {
        let body = br#"{"resourceMetrics":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"my.service"}}]},
          "scopeMetrics":[{"scope":{"name":"my.library","version":"1.0.0"},
          "metrics":[{"name":"my.counter","unit":"1","sum":{"aggregationTemporality":1,"isMonotonic":true,
            "dataPoints":[{"asDouble":5,"startTimeUnixNano":"1544712660300000000","timeUnixNano":"1544712660300000000",
              "attributes":[{"key":"my.counter.attr","value":{"stringValue":"some value"}}]}]}},
          {"name":"my.histogram","histogram":{"aggregationTemporality":1,"dataPoints":[{"timeUnixNano":1544712660300000000,
            "count":"2","sum":2,"bucketCounts":[1,"1"],"explicitBounds":[1],"min":0,"max":2}]}},
          {"name":"g","gauge":{"data_points":[{"as_int":"-3","time_unix_nano":"1"}]}}]}]}]}"#;
        let r = request(body).unwrap();
        let m = &r.resource_metrics[0].scope_metrics[0].metrics;
        match &m[0].data {
            Some(Data::Sum(s)) => {
                assert!(s.is_monotonic && s.aggregation_temporality == DELTA);
                assert_eq!(s.data_points[0].value, Some(Number::AsDouble(5.0)));
                assert_eq!(s.data_points[0].time_unix_nano, 1544712660300000000);
            }
            d => panic!("{d:?}"),
        }
        match &m[1].data {
            Some(Data::Histogram(h)) => assert_eq!(h.data_points[0].bucket_counts, vec![1, 1]),
            d => panic!("{d:?}"),
        }
        match &m[2].data {
            Some(Data::Gauge(g)) => assert_eq!(g.data_points[0].value, Some(Number::AsInt(-3))),
            d => panic!("{d:?}"),
        }
    }

    #[test]
    fn wrong_types_name_their_path() {
        let e = request(br#"{"resourceMetrics":[{"scopeMetrics":[{"metrics":[{"name":"x","gauge":{"dataPoints":[{"timeUnixNano":"soon"}]}}]}]}]}"#)
            .unwrap_err();
        assert_eq!(
            e,
            "resourceMetrics[0].scopeMetrics[0].metrics[0].gauge.dataPoints[0].timeUnixNano: expected an integer in range"
        );
        assert_eq!(request(b"[]").unwrap_err(), "the body: expected an object");
        assert!(request(b"{").unwrap_err().starts_with("not JSON"));
        assert_eq!(
            request(br#"{"resourceMetrics":[{"scopeMetrics":[{"metrics":[{"sum":{"dataPoints":[{"asInt":"-1"}],"aggregationTemporality":-1}}]}]}]}"#)
                .unwrap()
                .resource_metrics[0]
                .scope_metrics[0]
                .metrics[0]
                .data
                .as_ref()
                .map(|d| matches!(d, Data::Sum(s) if s.aggregation_temporality == -1)),
            Some(true)
        );
        assert_eq!(base64("AQI=").unwrap(), vec![1, 2]);
        assert_eq!(base64("_-8").unwrap(), vec![0xff, 0xef]);
        assert!(base64("*").is_none());
    }
}
