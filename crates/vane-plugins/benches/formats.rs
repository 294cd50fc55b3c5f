//! The text formats besides line protocol, on one core: Graphite, statsd and
//! Prometheus parsing (what the listeners and the scraper do per line), and
//! Graphite and Prometheus encoding (what the sinks do per event).

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::collections::BTreeMap;
use std::hint::black_box;
use std::time::{Duration, Instant};
use vane_core::event::Event;
use vane_core::formats::{graphite, prometheus, statsd};
use vane_core::path_template::PathTemplate;

const N: usize = 10_000;

fn graphite_text() -> String {
    (0..N)
        .map(|i| {
            format!("servers.web-{:02}.cpu.cpu{}.usage_user {} {}\n", i % 50, i % 8, i as f64 * 0.37, 1_700_000_000 + i)
        })
        .collect()
}

fn statsd_text() -> String {
    (0..N)
        .map(|i| match i % 4 {
            0 => format!("api.hits:{}|c|@0.5|#env:prod,region:eu\n", i % 7),
            1 => format!("api.latency:{}.5|ms\n", i % 300),
            2 => format!("queue.depth:+{}|g\n", i % 5),
            _ => format!("api.users:user{}|s\n", i % 100),
        })
        .collect()
}

fn prometheus_text() -> String {
    let mut s = String::from(
        "# HELP node_cpu_seconds_total Seconds the CPUs spent in each mode.\n# TYPE node_cpu_seconds_total counter\n",
    );
    for i in 0..N {
        s.push_str(&format!(
            "node_cpu_seconds_total{{cpu=\"{}\",mode=\"{}\"}} {}\n",
            i / 8,
            ["idle", "user", "system", "iowait", "irq", "nice", "softirq", "steal"][i % 8],
            i as f64 * 1.25
        ));
    }
    s
}

fn events() -> Vec<Event> {
    (0..N)
        .map(|i| {
            Event::new("cpu")
                .host("web-01.example.com")
                .tag("cpu", format!("cpu{}", i % 8))
                .field("usage_user", i as f64 * 0.37)
                .field("usage_system", 12.5)
                .at(1_700_000_000_000_000_000 + i as i64)
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("formats");
    // Items and the bytes of text read or written.
    let per = |bytes: usize| Throughput::ElementsAndBytes { elements: N as u64, bytes: bytes as u64 };

    let text = graphite_text();
    g.throughput(per(text.len()));
    g.bench_function("graphite parse 10k lines", |b| {
        b.iter(|| {
            let n = text.lines().filter(|l| graphite::parse_line(black_box(l), 0).is_ok()).count();
            assert_eq!(n, N);
        })
    });
    let templates = graphite::Templates::parse(&["servers.* _.host.name.cpu.field", "host.name.field"]).unwrap();
    g.bench_function("graphite parse 10k lines with templates", |b| {
        b.iter(|| {
            let n = text.lines().filter(|l| templates.parse_line(black_box(l), 0).is_ok()).count();
            assert_eq!(n, N);
        })
    });

    let text = statsd_text();
    g.throughput(per(text.len()));
    g.bench_function("statsd parse 10k lines", |b| {
        b.iter(|| {
            let n = text.lines().filter(|l| statsd::parse_line(black_box(l)).is_ok()).count();
            assert_eq!(n, N);
        })
    });
    g.bench_function("statsd parse and aggregate 10k lines", |b| {
        b.iter(|| {
            let mut agg = statsd::Aggregator::new(vec![50.0, 90.0, 99.0]);
            for l in text.lines() {
                agg.add(&statsd::parse_line(l).unwrap());
            }
            black_box(agg.flush(1).len())
        })
    });

    let text = prometheus_text();
    g.throughput(per(text.len()));
    g.bench_function("prometheus parse 10k samples", |b| {
        b.iter(|| {
            let (events, bad) = prometheus::parse(black_box(&text), 1);
            assert_eq!((events.len(), bad.len()), (N, 0));
        })
    });

    let evs = events();
    let template = PathTemplate::parse("{host}.{name}.{tag.cpu}.{field}");
    let encode = |out: &mut String| {
        use std::fmt::Write;
        out.clear();
        for e in &evs {
            for (k, v) in &e.fields {
                template.render(out, "", black_box(e), k);
                let secs = e.time / 1_000_000_000;
                let _ = writeln!(out, " {} {secs}", v.as_f64().unwrap_or(0.0));
            }
        }
    };
    let mut out = String::new();
    encode(&mut out);
    g.throughput(per(out.len()));
    g.bench_function("graphite encode 10k events (2 fields each)", |b| {
        b.iter(|| {
            encode(&mut out);
            black_box(out.len())
        })
    });

    // The pull sink's exposition of 10k series (one metric, 10k label sets).
    let now = Instant::now();
    let mut latest = BTreeMap::new();
    let series: BTreeMap<_, _> = (0..N)
        .map(|i| {
            (
                vec![("cpu".to_owned(), format!("cpu{i}")), ("host".to_owned(), "web-01".to_owned())],
                (i as f64 * 0.37, false, now),
            )
        })
        .collect();
    latest.insert("cpu_usage_user".to_owned(), series);
    let size = vane_plugins::sinks::prometheus::render(&latest, Duration::from_secs(300)).len();
    g.throughput(per(size));
    g.bench_function("prometheus exposition of 10k series", |b| {
        b.iter(|| {
            let text = vane_plugins::sinks::prometheus::render(black_box(&latest), Duration::from_secs(300));
            assert!(text.len() > N * 20);
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
