//! An engine that adds a tag, in Rust and in Lua: events per second on one core.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;
use vane_core::event::Event;
use vane_core::registry::Registry;
use vane_core::testing::Harness;

fn event(i: u64) -> Event {
    Event::new("http")
        .host("web-01")
        .tag("region", "eu-west")
        .tag("path", "/health")
        .field("latency", 0.25)
        .field("status", 200i64)
        .field("bytes", i)
        .at(1_700_000_000_000_000_000 + i as i64)
}

fn bench(c: &mut Criterion) {
    let mut registry = Registry::new();
    vane_plugins::register(&mut registry);
    let (h, mut rust) = Harness::engine(&registry, "transform", "add_tags: { env: prod }").unwrap();
    let dir = std::env::temp_dir().join(format!("vane-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let script = dir.join("tag.lua");
    // `SCRIPT=...` measures another script (what each part of the call costs).
    let body = std::env::var("SCRIPT")
        .unwrap_or_else(|_| "function process(e)\n  e.tags.env = 'prod'\n  return e\nend\n".into());
    std::fs::write(&script, body).unwrap();
    let lua_config = format!("script: {}\ninstructions: 1000000", script.display());
    let (hl, mut lua) = Harness::engine(&registry, "lua", &lua_config).unwrap();
    let mut g = c.benchmark_group("add a tag");
    g.throughput(Throughput::Elements(1));
    let mut out = Vec::with_capacity(1);
    for (name, h, engine) in [("rust (transform)", &h, &mut rust), ("lua", &hl, &mut lua)] {
        g.bench_function(name, |b| {
            let mut i = 0;
            b.iter(|| {
                i += 1;
                out.clear();
                engine.process(black_box(event(i)), &mut out, h.context()).unwrap();
                black_box(out.len())
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
