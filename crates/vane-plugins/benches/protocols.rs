//! The binary protocols' receiving side on one core, per data point: an
//! OTLP request (protobuf and JSON) decoded and made into events, a
//! Prometheus remote-write body inflated, decoded and made into events, a
//! Riemann message decoded and made into events; and the `otlp` sink's
//! encoding of events. What the listeners do with a body once it is read.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use prost::Message as _;
use vane_core::event::{Event, Kind};
use vane_plugins::otlp::{events, json, metrics, proto};
use vane_plugins::{remote_write, riemann};

/// Data points a body carries.
const N: usize = 10_000;

/// 10,000 points: 100 counters of 100 series each (3 attributes a point),
/// as an SDK exports them.
fn otlp_events() -> Vec<Event> {
    (0..N)
        .map(|i| Event {
            kind: Kind::Counter,
            ..Event::gauge(format!("http.server.requests.{}", i / 100), i as i64)
                .host("web-01")
                .tag("route", format!("/api/v{}", i % 100))
                .tag("method", "GET")
                .tag("code", "200")
                .at(1_700_000_000_000_000_000 + i as i64)
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("protocols");
    let per = |bytes: usize| Throughput::ElementsAndBytes { elements: N as u64, bytes: bytes as u64 };

    let evs = otlp_events();
    let req = metrics::request(&evs, &[("service.name".into(), "shop".into())]);
    let pb = req.encode_to_vec();
    g.throughput(per(pb.len()));
    g.bench_function("otlp protobuf decode and map 10k points", |b| {
        b.iter(|| {
            let r = proto::ExportMetricsServiceRequest::decode(black_box(pb.as_slice())).unwrap();
            assert_eq!(events::events(r).count(), N);
        })
    });
    g.bench_function("otlp encode 10k events", |b| {
        b.iter(|| black_box(metrics::request(black_box(&evs), &[]).encode_to_vec()).len())
    });
    let js = json_of(&req);
    g.throughput(per(js.len()));
    g.bench_function("otlp json decode and map 10k points", |b| {
        b.iter(|| {
            let r = json::request(black_box(js.as_bytes())).unwrap();
            assert_eq!(events::events(r).count(), N);
        })
    });

    let wr = remote_write::WriteRequest {
        timeseries: (0..N)
            .map(|i| remote_write::TimeSeries {
                labels: [
                    ("__name__", "node_cpu_seconds_total".to_owned()),
                    ("cpu", (i % 64).to_string()),
                    ("instance", format!("host-{}:9100", i / 64)),
                    ("job", "node".to_owned()),
                    ("mode", "idle".to_owned()),
                ]
                .into_iter()
                .map(|(name, value)| remote_write::Label { name: name.into(), value })
                .collect(),
                samples: vec![remote_write::Sample { value: i as f64, timestamp: 1_700_000_000_000 }],
            })
            .collect(),
        metadata: vec![],
    };
    let body = snap::raw::Encoder::new().compress_vec(&wr.encode_to_vec()).unwrap();
    g.throughput(per(body.len()));
    let types = remote_write::Types::default();
    g.bench_function("remote write inflate, decode and map 10k samples", |b| {
        b.iter(|| {
            let raw = snap::raw::Decoder::new().decompress_vec(black_box(&body)).unwrap();
            let r = remote_write::WriteRequest::decode(raw.as_slice()).unwrap();
            assert_eq!(remote_write::events(r.timeseries, &types).count(), N);
        })
    });

    let msg = riemann::Msg {
        ok: None,
        error: None,
        query: None,
        events: riemann::to_riemann(
            &(0..N)
                .map(|i| Event::gauge(format!("disk {}", i % 100), i as f64).host(format!("web-{}", i / 100)))
                .collect::<Vec<_>>(),
            &["prod".to_owned()],
        ),
    };
    let bytes = msg.encode_to_vec();
    g.throughput(per(bytes.len()));
    g.bench_function("riemann decode and map 10k events", |b| {
        b.iter(|| {
            let m = riemann::Msg::decode(black_box(bytes.as_slice())).unwrap();
            assert_eq!(m.events.into_iter().filter_map(|e| riemann::event(e).ok()).count(), N);
        })
    });
    g.finish();
}

/// The request in OTLP/JSON, as an SDK's JSON exporter writes it.
fn json_of(req: &proto::ExportMetricsServiceRequest) -> String {
    use serde_json::json;
    let kv = |a: &[proto::KeyValue]| -> Vec<serde_json::Value> {
        a.iter()
            .map(|kv| match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
                Some(proto::any_value::Value::StringValue(s)) => json!({"key": kv.key, "value": {"stringValue": s}}),
                _ => json!({"key": kv.key, "value": {}}),
            })
            .collect()
    };
    let rms: Vec<_> = req
        .resource_metrics
        .iter()
        .map(|rm| {
            let metrics: Vec<_> = rm.scope_metrics[0]
                .metrics
                .iter()
                .map(|m| {
                    let Some(proto::Data::Sum(s)) = &m.data else { unreachable!() };
                    let points: Vec<_> = s
                        .data_points
                        .iter()
                        .map(|p| {
                            let Some(proto::Number::AsInt(v)) = p.value else { unreachable!() };
                            json!({"attributes": kv(&p.attributes), "timeUnixNano": p.time_unix_nano.to_string(), "asInt": v.to_string()})
                        })
                        .collect();
                    json!({"name": m.name, "sum": {"aggregationTemporality": 2, "isMonotonic": true, "dataPoints": points}})
                })
                .collect();
            json!({"resource": {"attributes": kv(&rm.resource.as_ref().unwrap().attributes)}, "scopeMetrics": [{"scope": {"name": "vane"}, "metrics": metrics}]})
        })
        .collect();
    json!({ "resourceMetrics": rms }).to_string()
}

criterion_group!(benches, bench);
criterion_main!(benches);
