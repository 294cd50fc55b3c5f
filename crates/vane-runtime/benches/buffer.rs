//! The disk buffer: bytes per second written (with an fsync per MiB-sized
//! group of batches, as often as `fsync: 1s` would at ~1 MB/s… and far more
//! often at these speeds) and read back, against a plain sequential write of
//! the same bytes with the same fsyncs.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::io::Write;
use vane_core::event::Event;
use vane_core::lineproto::{Precision, encode_into};
use vane_runtime::buffer::{Disk, Store, WhenFull};

fn batches() -> Vec<Vec<Event>> {
    (0..100)
        .map(|b| {
            (0..1000)
                .map(|i| {
                    Event::new("cpu")
                        .host("web-01")
                        .tag("cpu", "cpu0")
                        .field("usage_user", 12.5 + i as f64)
                        .field("n", (b * 1000 + i) as i64)
                        .at(1_700_000_000_000_000_000 + (b * 1000 + i) as i64)
                })
                .collect()
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let data = batches();
    let mut text = String::new();
    for b in &data {
        for e in b {
            encode_into(&mut text, e, Precision::Nanoseconds);
        }
    }
    let bytes = text.len() as u64;
    let mut g = c.benchmark_group("disk buffer");
    g.throughput(Throughput::Bytes(bytes));
    g.sample_size(10);
    g.bench_function("write (push, sync every 10 batches)", |b| {
        b.iter_batched(
            || tempfile::tempdir().unwrap(),
            |dir| {
                let mut d = Disk::open(dir.path(), u64::MAX, WhenFull::Block).unwrap();
                for (i, batch) in data.iter().enumerate() {
                    d.push(batch.clone()).unwrap();
                    if i % 10 == 9 {
                        d.sync().unwrap();
                    }
                }
                d.sync().unwrap();
                dir
            },
            criterion::BatchSize::PerIteration,
        )
    });
    g.bench_function("read back (take, ack)", |b| {
        b.iter_batched(
            || {
                let dir = tempfile::tempdir().unwrap();
                let mut d = Disk::open(dir.path(), u64::MAX, WhenFull::Block).unwrap();
                for batch in &data {
                    d.push(batch.clone()).unwrap();
                }
                d.sync().unwrap();
                (dir, d)
            },
            |(dir, mut d)| {
                let mut n = 0;
                while let Some(b) = d.take().unwrap() {
                    n += b.len();
                    d.ack().unwrap();
                }
                assert_eq!(n, 100_000);
                dir
            },
            criterion::BatchSize::PerIteration,
        )
    });
    g.bench_function("plain sequential write (same bytes, same fsyncs)", |b| {
        let chunk = text.len() / 100;
        b.iter_batched(
            || tempfile::tempdir().unwrap(),
            |dir| {
                let mut f = std::fs::File::create(dir.path().join("plain")).unwrap();
                for (i, part) in text.as_bytes().chunks(chunk).enumerate() {
                    f.write_all(part).unwrap();
                    if i % 10 == 9 {
                        f.sync_data().unwrap();
                    }
                }
                f.sync_data().unwrap();
                dir
            },
            criterion::BatchSize::PerIteration,
        )
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
