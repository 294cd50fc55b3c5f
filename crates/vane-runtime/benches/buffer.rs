//! The disk buffer: bytes per second written (encoding included, an fsync
//! every 10 batches) and read back (decoding included), against a plain
//! sequential write of the same bytes with the same fsyncs.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};

// The allocator the `vane` binary runs with: events are allocated and freed here.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;
use std::io::Write;
use vane_core::event::Event;
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

/// Pushes the batches to a disk buffer in `dir`, syncing every `every`
/// batches (never: only at the end).
fn disk_write(dir: tempfile::TempDir, batches: Vec<Vec<Event>>, every: Option<usize>) -> tempfile::TempDir {
    let mut d = Disk::open(dir.path(), u64::MAX, WhenFull::Block).unwrap();
    for (i, batch) in batches.into_iter().enumerate() {
        d.push(batch).unwrap();
        if every.is_some_and(|n| i % n == n - 1) {
            d.sync().unwrap();
        }
    }
    d.sync().unwrap();
    dir
}

/// Writes the same bytes to a plain file, with a header's room before each
/// record and the same syncs.
fn plain_write(dir: tempfile::TempDir, records: &[Vec<u8>], every: Option<usize>) -> tempfile::TempDir {
    let mut f = std::fs::File::create(dir.path().join("plain")).unwrap();
    for (i, part) in records.iter().enumerate() {
        f.write_all(&[0u8; 8]).unwrap();
        f.write_all(part).unwrap();
        if every.is_some_and(|n| i % n == n - 1) {
            f.sync_data().unwrap();
        }
    }
    f.sync_data().unwrap();
    dir
}

fn bench(c: &mut Criterion) {
    let data = batches();
    // The bytes the buffer writes: each batch in vane's binary form.
    let records: Vec<Vec<u8>> = data
        .iter()
        .map(|b| {
            let mut v = Vec::new();
            vane_core::binary::encode_batch(&mut v, b);
            v
        })
        .collect();
    let bytes: u64 = records.iter().map(|r| r.len() as u64 + 8).sum();
    let mut g = c.benchmark_group("disk buffer");
    g.throughput(Throughput::Bytes(bytes));
    g.sample_size(10);
    let fresh = || tempfile::tempdir().unwrap();
    // The batches are handed over, as the sink's intake does.
    let per = criterion::BatchSize::PerIteration;
    g.bench_function("write (push, sync every 10 batches)", |b| {
        b.iter_batched(|| (fresh(), data.clone()), |(dir, owned)| disk_write(dir, owned, Some(10)), per)
    });
    g.bench_function("read back (take, ack)", |b| {
        b.iter_batched(
            || {
                let dir = disk_write(fresh(), data.clone(), None);
                let d = Disk::open(dir.path(), u64::MAX, WhenFull::Block).unwrap();
                (dir, d)
            },
            |(dir, mut d)| {
                let mut n = 0;
                // As a sink does: take a batch, deliver it, hand it back
                // with the acknowledgement.
                while let Some(b) = d.take().unwrap() {
                    n += b.len();
                    d.ack(b).unwrap();
                }
                assert_eq!(n, 100_000);
                dir
            },
            per,
        )
    });
    g.bench_function("plain sequential write (same bytes, same fsyncs)", |b| {
        b.iter_batched(fresh, |dir| plain_write(dir, &records, Some(10)), per)
    });
    // The goal's own condition: an fsync every second. These runs last well
    // under a second, so both sides sync once, at the end.
    g.bench_function("write, fsync every second", |b| {
        b.iter_batched(|| (fresh(), data.clone()), |(dir, owned)| disk_write(dir, owned, None), per)
    });
    g.bench_function("plain write, fsync every second", |b| {
        b.iter_batched(fresh, |dir| plain_write(dir, &records, None), per)
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
