//! Line protocol throughput: encoding events and decoding lines, on one core.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;
use vane_core::event::{Event, Kind};
use vane_core::lineproto::{Precision, decode, encode_into};

/// Events shaped like host metrics: a few tags, several fields of mixed types.
fn sample(n: usize) -> Vec<Event> {
    (0..n)
        .map(|i| {
            Event::new("cpu")
                .host("web-01.example.com")
                .tag("cpu", format!("cpu{}", i % 8))
                .tag("region", "eu west")
                .kind(if i % 2 == 0 { Kind::Gauge } else { Kind::Counter })
                .field("usage_user", i as f64 * 0.37)
                .field("usage_system", 12.5)
                .field("processes", i as i64)
                .field("up", true)
                .at(1_700_000_000_000_000_000 + i as i64)
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let events = sample(10_000);
    let mut text = String::new();
    for e in &events {
        encode_into(&mut text, e, Precision::Nanoseconds);
    }
    let mut g = c.benchmark_group("lineproto");
    g.throughput(Throughput::ElementsAndBytes { elements: events.len() as u64, bytes: text.len() as u64 });
    g.bench_function("encode 10k events", |b| {
        let mut out = String::with_capacity(text.len());
        b.iter(|| {
            out.clear();
            for e in &events {
                encode_into(&mut out, black_box(e), Precision::Nanoseconds);
            }
            black_box(out.len())
        })
    });
    g.bench_function("decode 10k lines", |b| {
        b.iter(|| {
            let n = decode(black_box(&text), Precision::Nanoseconds, 0).filter(|r| r.is_ok()).count();
            assert_eq!(n, 10_000);
            n
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
