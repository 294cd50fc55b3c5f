//! Level expressions: evaluations per second on one core.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;
use vane_core::event::Event;
use vane_core::expr::Expr;

fn bench(c: &mut Criterion) {
    let ev = Event::new("http")
        .tag("region", "eu-west")
        .tag("path", "/health")
        .field("latency", 0.7)
        .field("status", 200i64)
        .field("bytes", 5120u64);
    let mut g = c.benchmark_group("expr");
    g.throughput(Throughput::Elements(1));
    for src in [
        "latency > 0.5",
        "latency > 2 or status != 200",
        "region =~ '^eu-' and abs(latency - 0.5) * 1000 > max(bytes / 1024, 3)",
    ] {
        let e = Expr::parse(src).unwrap();
        g.bench_function(src, |b| b.iter(|| e.matches(black_box(&ev))));
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
