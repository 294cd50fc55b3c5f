//! The board history's costs, printed as a table for bench/RESULTS.md:
//! CPU per million points written, memory per series, bytes on disk per
//! point per tier, and the page's two queries (a 24 h range of one series,
//! the latest values of 1,000 series). Not a criterion bench: what matters
//! here is figures of one long run, not a distribution of short ones.
//!
//!   cargo bench -p vane-plugins --bench history
//!   BENCH_SERIES=10000 BENCH_SECONDS=1200 cargo bench -p vane-plugins --bench history

use std::time::{Duration, Instant};

// The allocator the vane binary runs with: its memory is what vane would hold.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

use vane_core::event::{Event, Value, now_ns};
use vane_core::http::HttpRequest;
use vane_plugins::board::history::{History, TierSpec};
use vane_plugins::board::query;

const SECOND: i64 = 1_000_000_000;

fn env(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// This process's resident memory, bytes.
fn rss() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm.split_whitespace().nth(1).and_then(|p| p.parse().ok()).unwrap_or(0);
    pages * 4096
}

/// CPU seconds this process has used (user + system).
fn cpu() -> f64 {
    // SAFETY: getrusage writes into the struct it is given.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) };
    let t = |v: libc::timeval| v.tv_sec as f64 + v.tv_usec as f64 / 1e6;
    t(u.ru_utime) + t(u.ru_stime)
}

fn du(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir).map_or(0, |d| d.flatten().filter_map(|e| e.metadata().ok()).map(|m| m.len()).sum())
}

fn tiers() -> [TierSpec; 2] {
    [
        TierSpec { step: Duration::ZERO, keep: Duration::from_secs(3600) },
        TierSpec { step: Duration::from_secs(60), keep: Duration::from_secs(86_400) },
    ]
}

fn median_ms(mut f: impl FnMut()) -> f64 {
    let mut t: Vec<f64> = (0..15)
        .map(|_| {
            let s = Instant::now();
            f();
            s.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    t.sort_by(f64::total_cmp);
    t[t.len() / 2]
}

fn main() {
    // The binary's allocator policy: no transparent huge pages, freed pages
    // given back after 500 ms.
    vane_runtime::alloc::tune();
    let (series, seconds) = (env("BENCH_SERIES", 10_000), env("BENCH_SECONDS", 1200) as i64);
    let dir = tempfile::tempdir().unwrap();
    // 1,000 series named `top` (the latest-values query), the rest `m`;
    // made before the memory is first read, so only the store's growth counts.
    let mut batch: Vec<Event> = (0..series)
        .map(|i| Event::new(if i < 1000 { "top" } else { "m" }).tag("i", i.to_string()).field("value", 0.0).host("h"))
        .collect();
    let before = rss();
    let mut h = History::open(dir.path(), &tiers(), series + 1, Duration::from_secs(1)).unwrap();
    let start = now_ns() - seconds * SECOND;
    let (mut write_cpu, mut x) = (0.0, 0x2545_f491_4f6c_dd1du64);
    for s in 0..seconds {
        for e in batch.iter_mut() {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            e.time = start + s * SECOND;
            e.fields[0].1 = Value::Float((x % 1000) as f64 / 10.0);
        }
        let c = cpu();
        h.write(&batch).unwrap();
        write_cpu += cpu() - c;
    }
    h.sync().unwrap();
    // Writes come once a second in the agent, so what one frees is given
    // back before the next; here they came back to back, so the memory is
    // read once the purge delay has passed, as it would have between writes.
    std::thread::sleep(Duration::from_millis(600));
    // SAFETY: collecting has no preconditions.
    unsafe { libmimalloc_sys::mi_collect(false) };
    let points = series as f64 * seconds as f64;
    let f = h.figures();
    let grown = rss().saturating_sub(before) as f64;
    let raw_bytes = du(&dir.path().join("tier0"));
    let minute_bytes = du(&dir.path().join("tier1"));
    println!("| figure | value |\n|---|---|");
    println!("| series × seconds at 1 s | {series} × {seconds} = {:.1} M points |", points / 1e6);
    println!("| CPU per million points written | {:.3} s |", write_cpu / points * 1e6);
    println!("| memory per series (process RSS growth / series) | {:.0} B |", grown / series as f64);
    println!(
        "| memory per series (points held, the store's own count) | {:.0} B |",
        f.memory_bytes as f64 / series as f64
    );
    println!("| disk per point, raw tier | {:.1} B |", raw_bytes as f64 / points);
    let minute_points = series as f64 * (seconds / 60) as f64;
    if minute_points > 0.0 {
        println!("| disk per point, 1 min tier (min/max/sum/count) | {:.1} B |", minute_bytes as f64 / minute_points);
    }
    let req = HttpRequest::new("/api/series", "name=top");
    println!(
        "| latest values of 1,000 series (`/api/series`) | {:.2} ms |",
        median_ms(|| drop(query::series(&h, &req)))
    );
    drop(h);
    // Opening it again, as after a kill -9: windows reloaded, buckets made again.
    let t = Instant::now();
    let h = History::open(dir.path(), &tiers(), series + 1, Duration::from_secs(1)).unwrap();
    println!("| opening again ({} series) | {:.0} ms |", h.figures().series, t.elapsed().as_secs_f64() * 1e3);
    drop(h);

    // One series at 1 s over 24 h: the page's 24 h range reads the 1 min tier.
    let dir = tempfile::tempdir().unwrap();
    let mut h = History::open(dir.path(), &tiers(), 10, Duration::from_secs(1)).unwrap();
    let day = 86_400;
    let start = now_ns() - day * SECOND;
    let mut e = vec![Event::new("one").field("value", 0.0).host("h")];
    for s in 0..day {
        e[0].time = start + s * SECOND;
        e[0].fields[0].1 = Value::Float((s % 600) as f64);
        h.write(&e).unwrap();
    }
    h.sync().unwrap();
    let id = h.id_of("one,host=h value").expect("the series");
    let (tier, pts) = h.range(id, start, now_ns(), 600);
    let ms = median_ms(|| drop(h.range(id, start, now_ns(), 600)));
    println!("| 24 h range of one series, 600 points (tier {tier}, {} points read back) | {ms:.2} ms |", pts.len());
}
