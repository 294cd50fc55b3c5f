//! Decodes line protocol as a fast connection's parts are decoded (the
//! ingest benchmark's lines, cut into 256 KiB parts), a fixed amount of
//! work: run under valgrind's callgrind it gives the instructions a line
//! costs, which do not vary with the machine's load as timings do
//! (bench/instructions.sh compares builds by it).
//!
//! `decode_parts [LINES]`, default 200,000.

use std::time::Instant;

use vane_core::lineproto::{Precision, Records};

// The binary's allocator: its costs are part of a line's.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let n: usize = std::env::args().nth(1).map_or(200_000, |a| a.parse().expect("LINES is a number"));
    let mut text = Vec::with_capacity(n * 90);
    for i in 0..n {
        let line = format!(
            "cpu,host=web{},cpu=cpu{} usage_user={}.5,usage_system=3.25,n={i}i {}\n",
            i % 100,
            i % 8,
            i % 100,
            1_700_000_000_000_000_000u64 + i as u64
        );
        text.extend_from_slice(line.as_bytes());
    }
    let start = Instant::now();
    let (events, errors) = decode_all(&text);
    let took = start.elapsed();
    assert_eq!((events, errors), (n, 0), "every line decoded");
    println!("{events} events from {n} lines in {took:?}");
}

/// The events and errors `text` decodes to, read as a connection reads
/// (64 KiB at a time, a part cut at 256 KiB). Not inlined, so that
/// `callgrind --toggle-collect=*decode_all*` counts it alone.
#[inline(never)]
fn decode_all(text: &[u8]) -> (usize, usize) {
    let (mut events, mut errors) = (0, 0);
    let mut records = Records::new(Precision::Nanoseconds, 1 << 20);
    for chunk in text.chunks(64 << 10) {
        records.extend(chunk);
        if let Some(part) = records.split_off_part(256 << 10) {
            let mut decoded = part.decode(0);
            events += decoded.events.len();
            errors += decoded.errors.len();
            records.take(&mut decoded, []);
        }
    }
    records.decode(true, 0, |r| match r {
        Ok(_) => events += 1,
        Err(_) => errors += 1,
    });
    (events, errors)
}
