//! The local history behind boards: every numeric field of every event the
//! `board` sink takes, as a series (name, host, tags, field), kept in tiers
//! under the sink's data folder.
//!
//! Tier 0 keeps points as they came (`raw`, default 1 h); each further tier
//! keeps one min/max/sum/count point per `step` (default 1 min for 24 h).
//! A tier's time is cut into windows (tier 0: 30 s; others: 15 steps). The
//! window being filled is held in memory, per series, and appended to
//! `TIER/START.open` as `vane_core::record`s of points at every write, so a
//! kill -9 loses nothing written (a power cut: what was not yet synced, at
//! most `sync`). When a window has passed it is written out sorted by
//! series (`TIER/START.seg`: one record per series, then an index record,
//! then the index's offset), and its `.open` file removed. Retention deletes
//! whole `.seg` files. Damaged records are skipped and counted, as the disk
//! buffer does. Series are numbered in `series` (records of id and name).
//!
//! The bucket a coarse tier is filling lives only in memory; at open it is
//! made again from the raw points it stands for, so a kill -9 costs the
//! coarse tiers nothing either (as long as the raw tier keeps a step).
//!
//! Memory per series: its names, the latest value, the open window's points
//! of each tier (raw ones as a time and a value, 16 bytes) and the bucket
//! being filled; nothing older. Disk per tier: what its retention keeps.

use std::collections::{BTreeMap, HashMap};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use vane_core::event::Event;
use vane_core::record;

const SECOND: i64 = 1_000_000_000;

/// A tier's settings: one point per `step` (0: every point as it came), kept for `keep`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TierSpec {
    pub step: Duration,
    pub keep: Duration,
}

/// One point of a tier: a raw point has `count` 1 and `min == max == sum`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Point {
    pub ts: i64,
    pub count: u32,
    pub min: f64,
    pub max: f64,
    pub sum: f64,
}

impl Point {
    pub fn raw(ts: i64, v: f64) -> Point {
        Point { ts, count: 1, min: v, max: v, sum: v }
    }

    /// The mean of what the point stands for.
    pub fn mean(&self) -> f64 {
        self.sum / f64::from(self.count.max(1))
    }

    fn merge(&mut self, o: &Point) {
        self.count += o.count;
        self.min = self.min.min(o.min);
        self.max = self.max.max(o.max);
        self.sum += o.sum;
    }
}

/// What a series is: the event's name, host and tags, and the field.
#[derive(Debug)]
pub struct Series {
    pub key: Arc<str>,
    pub name: Box<str>,
    pub host: Box<str>,
    pub tags: Box<[(Box<str>, Box<str>)]>,
    pub field: Box<str>,
    /// The latest point's time and value.
    pub latest: Option<(i64, f64)>,
    /// Per tier: the open window's points (a raw tier's as they came; the
    /// others' finished buckets).
    open: Box<[Held]>,
    /// Per aggregating tier: the bucket being filled.
    bucket: Box<[Option<Point>]>,
    /// When a point last came (the clock's ns): a bucket is closed by the
    /// clock only once its series has been quiet for a step, so points
    /// that come late in a burst (a buffer's backlog) still merge.
    touched: i64,
}

/// A series' points of one tier's open window. Raw points are held as
/// (time, value), 16 bytes, not as 40-byte `Point`s: they are most of what
/// the store holds. The room is kept from one window to the next (a series
/// comes at the same pace), so that memory does not churn at every window.
#[derive(Debug)]
enum Held {
    Raw(Vec<(i64, f64)>),
    Buckets(Vec<Point>),
}

impl Held {
    fn for_tier(t: usize) -> Held {
        if t == 0 { Held::Raw(Vec::new()) } else { Held::Buckets(Vec::new()) }
    }

    fn push(&mut self, p: Point) {
        match self {
            Held::Raw(v) => v.push((p.ts, p.sum)),
            Held::Buckets(v) => v.push(p),
        }
    }

    fn len(&self) -> usize {
        match self {
            Held::Raw(v) => v.len(),
            Held::Buckets(v) => v.len(),
        }
    }

    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn bytes(&self) -> usize {
        match self {
            Held::Raw(v) => v.capacity() * size_of::<(i64, f64)>(),
            Held::Buckets(v) => v.capacity() * size_of::<Point>(),
        }
    }

    fn each(&self, mut f: impl FnMut(Point)) {
        match self {
            Held::Raw(v) => v.iter().for_each(|&(ts, x)| f(Point::raw(ts, x))),
            Held::Buckets(v) => v.iter().for_each(|p| f(*p)),
        }
    }

    fn sort(&mut self) {
        match self {
            Held::Raw(v) => v.sort_by_key(|p| p.0),
            Held::Buckets(v) => v.sort_by_key(|p| p.ts),
        }
    }

    /// Empties it for the next window, keeping the room this one needed
    /// (a burst's room is given back: more than twice what came).
    fn clear(&mut self) {
        fn keep<T>(v: &mut Vec<T>) {
            let n = v.len();
            v.clear();
            if v.capacity() > 2 * n + 4 {
                v.shrink_to(n);
            }
        }
        match self {
            Held::Raw(v) => keep(v),
            Held::Buckets(v) => keep(v),
        }
    }
}

/// A series key as the board's pages write it: `name,host=H,tag=v field`.
pub fn key_of(
    name: &str,
    host: &str,
    tags: &[(vane_core::event::Text, vane_core::event::Text)],
    field: &str,
) -> String {
    let mut k = String::with_capacity(name.len() + host.len() + field.len() + tags.len() * 16 + 8);
    k.push_str(name);
    if !host.is_empty() {
        k.push_str(",host=");
        k.push_str(host);
    }
    for (t, v) in tags {
        k.push(',');
        k.push_str(t);
        k.push('=');
        k.push_str(v);
    }
    k.push(' ');
    k.push_str(field);
    k
}

struct Tier {
    spec: TierSpec,
    step: i64,
    keep: i64,
    window: i64,
    dir: PathBuf,
    /// The open window's start, and its `.open` file with its length.
    open: Option<(i64, File, u64)>,
    /// Finished windows: start → bytes.
    done: BTreeMap<i64, u64>,
    /// Encoded points not yet appended.
    pending: Vec<u8>,
}

/// What `internal` and the benchmarks read.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Figures {
    pub series: u64,
    pub points: u64,
    pub disk_bytes: u64,
    /// Points held in memory (open windows and buckets), in bytes.
    pub memory_bytes: u64,
    pub skipped_records: u64,
    pub skipped_bytes: u64,
    /// Points of new series dropped because `max_series` was reached.
    pub refused: u64,
}

/// The store; see the module's documentation.
pub struct History {
    dir: PathBuf,
    tiers: Vec<Tier>,
    series: Vec<Series>,
    ids: HashMap<Arc<str>, u32>,
    catalog: File,
    max_series: usize,
    sync_every: Duration,
    synced: Instant,
    figures: Figures,
    /// Reused record buffer.
    scratch: Vec<u8>,
}

fn window_of(spec: &TierSpec) -> i64 {
    if spec.step.is_zero() { 30 * SECOND } else { (spec.step.as_nanos() as i64).max(SECOND) * 15 }
}

fn file_start(name: &str, ext: &str) -> Option<i64> {
    name.strip_suffix(ext)?.parse().ok()
}

fn put_f64(b: &mut Vec<u8>, v: f64) {
    b.extend_from_slice(&v.to_le_bytes());
}

fn put_varint(b: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        b.push(v as u8 | 0x80);
        v >>= 7;
    }
    b.push(v as u8);
}

/// A little-endian reader over a record's payload; `None` once it runs out.
struct Cursor<'a>(&'a [u8]);

impl Cursor<'_> {
    fn take<const N: usize>(&mut self) -> Option<[u8; N]> {
        let (h, t) = self.0.split_at_checked(N)?;
        self.0 = t;
        h.try_into().ok()
    }
    fn u32(&mut self) -> Option<u32> {
        self.take().map(u32::from_le_bytes)
    }
    fn u64(&mut self) -> Option<u64> {
        self.take().map(u64::from_le_bytes)
    }
    fn i64(&mut self) -> Option<i64> {
        self.take().map(i64::from_le_bytes)
    }
    fn f64(&mut self) -> Option<f64> {
        self.take().map(f64::from_le_bytes)
    }
    fn varint(&mut self) -> Option<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let [b] = self.take::<1>()?;
            v |= u64::from(b & 0x7f) << shift;
            if b < 0x80 {
                return Some(v);
            }
        }
        None
    }
}

/// A point as the open files hold it: `[id][ts][count][value or min,max,sum]`.
fn put_entry(b: &mut Vec<u8>, id: u32, p: &Point) {
    b.extend_from_slice(&id.to_le_bytes());
    b.extend_from_slice(&p.ts.to_le_bytes());
    b.extend_from_slice(&p.count.to_le_bytes());
    put_values(b, p);
}

fn put_values(b: &mut Vec<u8>, p: &Point) {
    if p.count == 1 {
        put_f64(b, p.sum);
    } else {
        put_f64(b, p.min);
        put_f64(b, p.max);
        put_f64(b, p.sum);
    }
}

fn values(c: &mut Cursor, ts: i64, count: u32) -> Option<Point> {
    if count == 1 {
        c.f64().map(|v| Point::raw(ts, v))
    } else {
        Some(Point { ts, count, min: c.f64()?, max: c.f64()?, sum: c.f64()? })
    }
}

fn entries(payload: &[u8], mut each: impl FnMut(u32, Point)) -> Option<()> {
    let mut c = Cursor(payload);
    while !c.0.is_empty() {
        let (id, ts, count) = (c.u32()?, c.i64()?, c.u32()?);
        each(id, values(&mut c, ts, count)?);
    }
    Some(())
}

/// A finished window's record of one series: `[id][n]`, then per point the
/// time as a zigzag delta varint, the count as a varint, and its values.
fn put_series(b: &mut Vec<u8>, id: u32, points: &Held) {
    b.extend_from_slice(&id.to_le_bytes());
    b.extend_from_slice(&(points.len() as u32).to_le_bytes());
    let mut prev = 0i64;
    points.each(|p| {
        let d = p.ts.wrapping_sub(prev);
        put_varint(b, ((d << 1) ^ (d >> 63)) as u64);
        prev = p.ts;
        put_varint(b, u64::from(p.count));
        put_values(b, &p);
    });
}

fn series_points(payload: &[u8]) -> Option<(u32, Vec<Point>)> {
    let mut c = Cursor(payload);
    let (id, n) = (c.u32()?, c.u32()?);
    let mut out = Vec::with_capacity((n as usize).min(payload.len() / 9));
    let mut prev = 0i64;
    for _ in 0..n {
        let z = c.varint()?;
        let d = ((z >> 1) as i64) ^ -((z & 1) as i64);
        prev = prev.wrapping_add(d);
        let count = u32::try_from(c.varint()?).ok()?;
        out.push(values(&mut c, prev, count)?);
    }
    Some((id, out))
}

/// The bytes a series takes in memory: itself, its names (the key twice:
/// here and in the map, with the map's entry), its points and buckets.
fn held(s: &Series) -> usize {
    let names =
        s.name.len() + s.host.len() + s.field.len() + s.tags.iter().map(|(k, v)| k.len() + v.len() + 32).sum::<usize>();
    let points = s.open.iter().map(|v| v.bytes() + size_of::<Held>()).sum::<usize>();
    size_of::<Series>() + 2 * s.key.len() + 48 + names + points + s.bucket.len() * size_of::<Option<Point>>()
}

impl History {
    /// Opens (or creates) the store in `dir`: reads the series, finishes
    /// windows that passed while it was not running, reloads the open ones.
    pub fn open(dir: &Path, tiers: &[TierSpec], max_series: usize, sync_every: Duration) -> io::Result<History> {
        fs::create_dir_all(dir)?;
        let catalog_path = dir.join("series");
        let bytes = fs::read(&catalog_path)
            .or_else(|e| if e.kind() == io::ErrorKind::NotFound { Ok(vec![]) } else { Err(e) })?;
        let read = record::read_all(&bytes);
        let figures =
            Figures { skipped_records: read.skipped, skipped_bytes: read.skipped_bytes, ..Figures::default() };
        let mut h = History {
            dir: dir.to_owned(),
            tiers: Vec::new(),
            series: Vec::new(),
            ids: HashMap::new(),
            catalog: OpenOptions::new().create(true).append(true).open(&catalog_path)?,
            max_series,
            sync_every,
            synced: Instant::now(),
            figures,
            scratch: Vec::new(),
        };
        for (i, spec) in tiers.iter().enumerate() {
            let tdir = dir.join(format!("tier{i}"));
            fs::create_dir_all(&tdir)?;
            h.tiers.push(Tier {
                spec: *spec,
                step: spec.step.as_nanos() as i64,
                keep: spec.keep.as_nanos() as i64,
                window: window_of(spec),
                dir: tdir,
                open: None,
                done: BTreeMap::new(),
                pending: Vec::new(),
            });
        }
        for rec in &read.records {
            let mut c = Cursor(rec);
            let (Some(id), Ok(key)) = (c.u32(), std::str::from_utf8(c.0)) else {
                h.figures.skipped_records += 1;
                continue;
            };
            if id as usize == h.series.len() {
                h.push_series(key);
            }
        }
        if (read.end as u64) < bytes.len() as u64 {
            // A torn tail: the next series is appended after the last whole one.
            h.catalog.set_len(read.end as u64)?;
        }
        let now = vane_core::event::now_ns();
        for t in 0..h.tiers.len() {
            h.reload_tier(t, now)?;
        }
        h.figures.series = h.series.len() as u64;
        h.latest_from_disk();
        h.rebuild_buckets();
        Ok(h)
    }

    /// The buckets being filled when the store last stopped (only memory
    /// held them, so a kill -9 lost them), made again from the raw points
    /// they stood for, so that a coarse tier loses nothing a crash spared.
    fn rebuild_buckets(&mut self) {
        for id in 0..self.series.len() as u32 {
            let Some((ts, _)) = self.series[id as usize].latest else { continue };
            for t in 1..self.tiers.len() {
                let step = self.tiers[t].step;
                let start = ts.div_euclid(step) * step;
                if !self.tier_points(t, id, start, start).is_empty() {
                    continue; // written out before the stop
                }
                let raw = self.tier_points(0, id, start, start + step - 1);
                let Some(first) = raw.first() else { continue };
                let mut b = Point { ts: start, ..*first };
                raw[1..].iter().for_each(|p| b.merge(p));
                self.series[id as usize].bucket[t] = Some(b);
            }
        }
    }

    /// The latest value of series that no open window holds, from the
    /// newest raw window written out.
    fn latest_from_disk(&mut self) {
        let Some(tier) = self.tiers.first() else { return };
        let Some((&start, _)) = tier.done.iter().next_back() else { return };
        let Ok(bytes) = fs::read(tier.dir.join(format!("{start}.seg"))) else { return };
        let n = self.series.len() as u32;
        for rec in record::read_all(&bytes).records {
            if let Some((id, points)) = series_points(rec).filter(|(id, _)| *id < n)
                && let Some(p) = points.last()
            {
                let s = &mut self.series[id as usize];
                if s.latest.is_none() {
                    s.latest = Some((p.ts, p.sum));
                }
            }
        }
    }

    fn push_series(&mut self, key: &str) -> Option<u32> {
        let (series_part, field) = key.rsplit_once(' ')?;
        let mut parts = series_part.split(',');
        let name = parts.next()?;
        let mut host = "";
        let mut tags = Vec::new();
        for p in parts {
            let (k, v) = p.split_once('=')?;
            if k == "host" && host.is_empty() && tags.is_empty() {
                host = v;
            } else {
                tags.push((k.into(), v.into()));
            }
        }
        let id = self.series.len() as u32;
        let key: Arc<str> = key.into();
        let n = self.tiers.len();
        self.series.push(Series {
            key: key.clone(),
            name: name.into(),
            host: host.into(),
            tags: tags.into_boxed_slice(),
            field: field.into(),
            latest: None,
            open: (0..n).map(Held::for_tier).collect(),
            bucket: vec![None; n].into_boxed_slice(),
            touched: 0,
        });
        self.ids.insert(key, id);
        Some(id)
    }

    /// Reads a tier's files: finished ones listed, passed open windows
    /// finished, the current one loaded.
    fn reload_tier(&mut self, t: usize, now: i64) -> io::Result<()> {
        let mut opens = Vec::new();
        for e in fs::read_dir(&self.tiers[t].dir)?.filter_map(|e| e.ok()) {
            let name = e.file_name().into_string().unwrap_or_default();
            if let Some(start) = file_start(&name, ".seg") {
                let len = e.metadata().map(|m| m.len()).unwrap_or(0);
                self.tiers[t].done.insert(start, len);
            } else if let Some(start) = file_start(&name, ".open") {
                opens.push(start);
            } else if name.ends_with(".tmp") {
                let _ = fs::remove_file(e.path());
            }
        }
        opens.sort_unstable();
        for start in opens {
            let path = self.tiers[t].dir.join(format!("{start}.open"));
            let bytes = fs::read(&path)?;
            let read = record::read_all(&bytes);
            self.figures.skipped_records += read.skipped;
            self.figures.skipped_bytes += read.skipped_bytes;
            // An open window left behind is finished on its own: its points
            // go to this tier's memory for the moment, then out.
            if let Some((cur, ..)) = self.tiers[t].open.take() {
                self.finish(t, cur)?;
            }
            let n = self.series.len() as u32;
            let mut points = 0u64;
            for rec in &read.records {
                let ok = entries(rec, |id, p| {
                    if id < n {
                        let s = &mut self.series[id as usize];
                        s.open[t].push(p);
                        if t == 0 && s.latest.is_none_or(|(ts, _)| ts <= p.ts) {
                            s.latest = Some((p.ts, p.sum));
                        }
                        points += 1;
                    }
                });
                if ok.is_none() {
                    self.figures.skipped_records += 1;
                }
            }
            self.figures.points += points;
            let file = OpenOptions::new().append(true).open(&path)?;
            if (read.end as u64) < bytes.len() as u64 {
                file.set_len(read.end as u64)?;
            }
            self.tiers[t].open = Some((start, file, read.end as u64));
            if start + self.tiers[t].window <= now {
                self.finish(t, start)?;
            }
        }
        self.retire(t, now)
    }

    /// The id of `key`'s series, numbered (and written down) when new.
    fn id(&mut self, key: &str) -> io::Result<Option<u32>> {
        if let Some(id) = self.ids.get(key) {
            return Ok(Some(*id));
        }
        if self.series.len() >= self.max_series {
            self.figures.refused += 1;
            return Ok(None);
        }
        let id = self.series.len() as u32;
        let mut rec = vec![0u8; record::HEADER];
        rec.extend_from_slice(&id.to_le_bytes());
        rec.extend_from_slice(key.as_bytes());
        record::seal(&mut rec);
        self.catalog.write_all(&rec)?;
        self.figures.series += 1;
        Ok(self.push_series(key))
    }

    /// Keeps every numeric field of `events` (stamped events; others are
    /// taken as of `now`).
    pub fn write(&mut self, events: &[Event]) -> io::Result<()> {
        let now = vane_core::event::now_ns();
        for e in events {
            let ts = if e.time == vane_core::event::NO_TIME { now } else { e.time };
            for (f, v) in &e.fields {
                let Some(v) = v.as_f64() else { continue };
                let key = key_of(&e.name, &e.host, &e.tags, f);
                let Some(id) = self.id(&key)? else { continue };
                self.series[id as usize].touched = now;
                self.add(id, Point::raw(ts, v))?;
            }
        }
        self.flush(now)
    }

    fn add(&mut self, id: u32, p: Point) -> io::Result<()> {
        self.figures.points += 1;
        let s = &mut self.series[id as usize];
        if s.latest.is_none_or(|(ts, _)| ts <= p.ts) {
            s.latest = Some((p.ts, p.sum));
        }
        self.put(0, id, p)?;
        for t in 1..self.tiers.len() {
            let step = self.tiers[t].step;
            let start = p.ts.div_euclid(step) * step;
            let s = &mut self.series[id as usize];
            match &mut s.bucket[t] {
                Some(b) if b.ts == start => b.merge(&p),
                slot => {
                    let done = slot.replace(Point { ts: start, ..p });
                    if let Some(done) = done {
                        self.put(t, id, done)?;
                    }
                }
            }
        }
        Ok(())
    }

    /// Adds a point to tier `t`'s open window (finishing the window first when the point is past it).
    fn put(&mut self, t: usize, id: u32, p: Point) -> io::Result<()> {
        let window = self.tiers[t].window;
        let start = p.ts.div_euclid(window) * window;
        match &self.tiers[t].open {
            Some((cur, ..)) if start > *cur => {
                let cur = *cur;
                self.finish(t, cur)?;
                self.start_window(t, start)?;
            }
            Some(_) => {} // this window, or late: kept with the open one
            None => self.start_window(t, start)?,
        }
        self.series[id as usize].open[t].push(p);
        put_entry(&mut self.tiers[t].pending, id, &p);
        Ok(())
    }

    fn start_window(&mut self, t: usize, start: i64) -> io::Result<()> {
        if self.tiers[t].done.remove(&start).is_some() {
            // A late point for a window already written out: the window is
            // opened again with what it held, and written out whole later.
            let seg = self.tiers[t].dir.join(format!("{start}.seg"));
            let bytes = fs::read(&seg)?;
            let read = record::read_all(&bytes);
            let n = self.series.len() as u32;
            for rec in &read.records {
                if let Some((id, points)) = series_points(rec).filter(|(id, _)| *id < n) {
                    let held = &mut self.series[id as usize].open[t];
                    points.into_iter().for_each(|p| held.push(p));
                }
            }
            let path = self.tiers[t].dir.join(format!("{start}.open"));
            let file = OpenOptions::new().create(true).append(true).open(path)?;
            let mut again = Vec::new();
            for (id, s) in self.series.iter().enumerate() {
                s.open[t].each(|p| put_entry(&mut again, id as u32, &p));
            }
            self.tiers[t].open = Some((start, file, 0));
            std::mem::swap(&mut self.tiers[t].pending, &mut again);
            self.append(t)?;
            self.tiers[t].pending = again;
            return Ok(());
        }
        let path = self.tiers[t].dir.join(format!("{start}.open"));
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        let len = file.metadata()?.len();
        self.tiers[t].open = Some((start, file, len));
        Ok(())
    }

    /// Appends what is pending; syncs when `sync` has passed; closes
    /// buckets and windows that time has passed.
    pub fn flush(&mut self, now: i64) -> io::Result<()> {
        // A bucket no point has come to for a whole step after its end is
        // done, once its series has been quiet for a step.
        for t in 1..self.tiers.len() {
            let step = self.tiers[t].step;
            for id in 0..self.series.len() {
                if let Some(b) = self.series[id].bucket[t]
                    && b.ts + 2 * step <= now
                    && self.series[id].touched + step <= now
                {
                    self.series[id].bucket[t] = None;
                    self.put(t, id as u32, b)?;
                }
            }
        }
        for t in 0..self.tiers.len() {
            self.append(t)?;
            if let Some((start, ..)) = self.tiers[t].open
                && start + self.tiers[t].window + self.tiers[t].step.max(SECOND) <= now
            {
                self.finish(t, start)?;
            }
        }
        if self.synced.elapsed() >= self.sync_every {
            self.sync()?;
        }
        Ok(())
    }

    fn append(&mut self, t: usize) -> io::Result<()> {
        let tier = &mut self.tiers[t];
        if tier.pending.is_empty() {
            return Ok(());
        }
        let Some((_, file, len)) = &mut tier.open else { return Ok(()) };
        self.scratch.clear();
        self.scratch.resize(record::HEADER, 0);
        self.scratch.extend_from_slice(&tier.pending);
        record::seal(&mut self.scratch);
        if let Err(e) = file.write_all(&self.scratch) {
            let _ = file.set_len(*len);
            return Err(e);
        }
        *len += self.scratch.len() as u64;
        tier.pending.clear();
        Ok(())
    }

    /// Syncs the open files and the series list.
    pub fn sync(&mut self) -> io::Result<()> {
        for t in &self.tiers {
            if let Some((_, f, _)) = &t.open {
                f.sync_data()?;
            }
        }
        self.catalog.sync_data()?;
        self.synced = Instant::now();
        Ok(())
    }

    /// Writes tier `t`'s open window `start` out sorted by series, then
    /// removes its `.open` file.
    fn finish(&mut self, t: usize, start: i64) -> io::Result<()> {
        self.append(t)?;
        let dir = self.tiers[t].dir.clone();
        let tmp = dir.join(format!("{start}.tmp"));
        // Written a series' record at a time: the window is never whole in memory twice.
        let mut f = io::BufWriter::with_capacity(1 << 16, File::create(&tmp)?);
        let (mut at, mut index, rec) = (0u64, Vec::new(), &mut self.scratch);
        for (id, s) in self.series.iter_mut().enumerate() {
            let points = &mut s.open[t];
            if points.is_empty() {
                continue;
            }
            points.sort();
            rec.clear();
            rec.resize(record::HEADER, 0);
            put_series(rec, id as u32, points);
            points.clear();
            record::seal(rec);
            f.write_all(rec)?;
            index.push((id as u32, at));
            at += rec.len() as u64;
        }
        rec.clear();
        rec.resize(record::HEADER, 0);
        rec.extend_from_slice(&(index.len() as u32).to_le_bytes());
        for (id, off) in &index {
            rec.extend_from_slice(&id.to_le_bytes());
            rec.extend_from_slice(&off.to_le_bytes());
        }
        record::seal(rec);
        f.write_all(rec)?;
        f.write_all(&at.to_le_bytes())?;
        let len = at + rec.len() as u64 + 8;
        f.into_inner().map_err(|e| e.into_error())?.sync_data()?;
        fs::rename(&tmp, dir.join(format!("{start}.seg")))?;
        let _ = fs::remove_file(dir.join(format!("{start}.open")));
        if let Ok(d) = File::open(&dir) {
            let _ = d.sync_all();
        }
        self.tiers[t].done.insert(start, len);
        self.tiers[t].open = None;
        self.retire(t, vane_core::event::now_ns())
    }

    /// Deletes tier `t`'s windows older than its retention.
    fn retire(&mut self, t: usize, now: i64) -> io::Result<()> {
        let tier = &mut self.tiers[t];
        let old: Vec<i64> = tier.done.keys().copied().take_while(|s| s + tier.window <= now - tier.keep).collect();
        for s in old {
            let _ = fs::remove_file(tier.dir.join(format!("{s}.seg")));
            tier.done.remove(&s);
        }
        Ok(())
    }

    /// The series whose name and field are these and whose tags include `tags`.
    pub fn find(&self, name: &str, field: &str, tags: &[(String, String)]) -> Vec<u32> {
        (0..self.series.len() as u32)
            .filter(|id| {
                let s = &self.series[*id as usize];
                &*s.name == name
                    && &*s.field == field
                    && tags.iter().all(|(k, v)| {
                        (k == "host" && &*s.host == v) || s.tags.iter().any(|(sk, sv)| &**sk == k && &**sv == v)
                    })
            })
            .collect()
    }

    pub fn series(&self, id: u32) -> Option<&Series> {
        self.series.get(id as usize)
    }

    pub fn all(&self) -> &[Series] {
        &self.series
    }

    pub fn id_of(&self, key: &str) -> Option<u32> {
        self.ids.get(key).copied()
    }

    pub fn tiers(&self) -> Vec<TierSpec> {
        self.tiers.iter().map(|t| t.spec).collect()
    }

    /// Series `id`'s points in `[from, to]`, from the finest tier that keeps
    /// `from`, merged into at most `max_points` (evenly spaced buckets, each
    /// the min/max/sum/count of what it holds). Returns the tier used.
    pub fn range(&self, id: u32, from: i64, to: i64, max_points: usize) -> (usize, Vec<Point>) {
        let now = vane_core::event::now_ns();
        let t = (0..self.tiers.len()).find(|t| from >= now - self.tiers[*t].keep).unwrap_or(self.tiers.len() - 1);
        let mut points = self.tier_points(t, id, from, to);
        points.sort_by_key(|p| p.ts);
        let max_points = max_points.max(1);
        if points.len() > max_points && to > from {
            let width = ((to - from) / max_points as i64).max(1);
            let mut merged: Vec<Point> = Vec::with_capacity(max_points + 1);
            for p in points {
                let b = from + (p.ts - from).div_euclid(width) * width;
                match merged.last_mut() {
                    Some(m) if m.ts == b => m.merge(&p),
                    _ => merged.push(Point { ts: b, ..p }),
                }
            }
            points = merged;
        }
        (t, points)
    }

    fn tier_points(&self, t: usize, id: u32, from: i64, to: i64) -> Vec<Point> {
        let tier = &self.tiers[t];
        let mut out = Vec::new();
        for (&start, _) in tier.done.range(..=to) {
            if start + tier.window < from {
                continue;
            }
            if let Some(points) = self.read_done(t, start, id) {
                out.extend(points.into_iter().filter(|p| p.ts >= from && p.ts <= to));
            }
        }
        let s = &self.series[id as usize];
        s.open[t].each(|p| {
            if p.ts >= from && p.ts <= to {
                out.push(p);
            }
        });
        if let Some(b) = s.bucket.get(t).copied().flatten()
            && b.ts >= from
            && b.ts <= to
        {
            out.push(b);
        }
        out
    }

    /// One series' points of a finished window, through its index (by a
    /// scan of the whole file when the index is damaged).
    fn read_done(&self, t: usize, start: i64, id: u32) -> Option<Vec<Point>> {
        let path = self.tiers[t].dir.join(format!("{start}.seg"));
        let f = File::open(&path).ok()?;
        let len = f.metadata().ok()?.len();
        let indexed = (|| {
            let mut tail = [0u8; 8];
            f.read_exact_at(&mut tail, len.checked_sub(8)?).ok()?;
            let at = u64::from_le_bytes(tail);
            let mut h = [0u8; record::HEADER];
            f.read_exact_at(&mut h, at).ok()?;
            let (n, crc) = record::header(&h);
            let mut index = vec![0u8; n];
            f.read_exact_at(&mut index, at + record::HEADER as u64).ok()?;
            if !record::intact(&index, crc) {
                return None;
            }
            let mut c = Cursor(&index);
            let count = c.u32()? as usize;
            let entries: Vec<(u32, u64)> = (0..count).map_while(|_| Some((c.u32()?, c.u64()?))).collect();
            let Ok(i) = entries.binary_search_by_key(&id, |e| e.0) else { return Some(Some(vec![])) };
            let off = entries[i].1;
            f.read_exact_at(&mut h, off).ok()?;
            let (n, crc) = record::header(&h);
            let mut rec = vec![0u8; n];
            f.read_exact_at(&mut rec, off + record::HEADER as u64).ok()?;
            if !record::intact(&rec, crc) {
                return Some(None);
            }
            Some(series_points(&rec).filter(|(i, _)| *i == id).map(|(_, p)| p))
        })();
        match indexed {
            Some(Some(p)) => Some(p),
            // The index or the record is damaged: what is intact is read in full.
            _ => {
                let bytes = fs::read(&path).ok()?;
                let read = record::read_all(&bytes);
                read.records.iter().filter_map(|r| series_points(r)).find(|(i, _)| *i == id).map(|(_, p)| p)
            }
        }
    }

    pub fn figures(&self) -> Figures {
        let mut f = self.figures;
        f.disk_bytes =
            self.tiers.iter().map(|t| t.done.values().sum::<u64>() + t.open.as_ref().map_or(0, |o| o.2)).sum();
        f.memory_bytes = self.series.iter().map(|s| held(s) as u64).sum();
        f
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: i64 = 60 * SECOND;

    fn tiers() -> Vec<TierSpec> {
        vec![
            TierSpec { step: Duration::ZERO, keep: Duration::from_secs(3600) },
            TierSpec { step: Duration::from_secs(60), keep: Duration::from_secs(86400) },
        ]
    }

    fn ev(name: &str, host: &str, ts: i64, v: f64) -> Event {
        Event::gauge(name, v).host(host).at(ts)
    }

    #[test]
    fn the_bucket_being_filled_at_a_kill_is_made_again_from_the_raw_points() {
        let dir = tempfile::tempdir().unwrap();
        let now = vane_core::event::now_ns();
        let t0 = (now - 10 * MIN).div_euclid(MIN) * MIN;
        let mut h = History::open(dir.path(), &tiers(), 10, Duration::ZERO).unwrap();
        // A minute and a half, then the process dies (nothing closes the second minute's bucket).
        for i in 0..90 {
            h.write(&[ev("cpu", "a", t0 + i * SECOND, i as f64)]).unwrap();
        }
        drop(h);
        let mut h = History::open(dir.path(), &tiers(), 10, Duration::ZERO).unwrap();
        let id = h.id_of("cpu,host=a value").unwrap();
        let minute = |h: &History, m: i64| h.tier_points(1, id, t0 + m * MIN, t0 + m * MIN);
        assert_eq!(minute(&h, 0).iter().map(|p| p.count).collect::<Vec<_>>(), [60]);
        let second = minute(&h, 1);
        assert_eq!(
            second.iter().map(|p| (p.count, p.min, p.max, p.sum)).collect::<Vec<_>>(),
            [(30, 60.0, 89.0, (60..90).sum::<i64>() as f64)]
        );
        // The rest of that minute joins it.
        for i in 90..120 {
            h.write(&[ev("cpu", "a", t0 + i * SECOND, i as f64)]).unwrap();
        }
        h.write(&[ev("cpu", "a", t0 + 120 * SECOND, 0.0)]).unwrap();
        assert_eq!(minute(&h, 1).iter().map(|p| p.count).collect::<Vec<_>>(), [60]);
    }

    #[test]
    fn a_backlog_written_in_a_burst_makes_whole_buckets() {
        let dir = tempfile::tempdir().unwrap();
        let now = vane_core::event::now_ns();
        let t0 = (now - 30 * MIN).div_euclid(MIN) * MIN;
        let mut h = History::open(dir.path(), &tiers(), 10, Duration::ZERO).unwrap();
        // Twenty minutes of one point a second, one write each, within a moment of the clock.
        for i in 0..1200 {
            h.write(&[ev("cpu", "a", t0 + i * SECOND, 1.0)]).unwrap();
        }
        let id = h.id_of("cpu,host=a value").unwrap();
        let mut points = h.tier_points(1, id, t0, t0 + 20 * MIN);
        points.sort_by_key(|p| p.ts);
        let counts: Vec<u32> = points.iter().map(|p| p.count).collect();
        assert!(counts.len() >= 19 && counts.iter().all(|c| *c == 60), "{counts:?}");
        let mut ts: Vec<i64> = points.iter().map(|p| p.ts).collect();
        ts.dedup();
        assert_eq!(ts.len(), points.len(), "one point per minute");
        assert!(h.figures().memory_bytes < 4096, "{}", h.figures().memory_bytes);
    }

    #[test]
    fn points_read_back_from_memory_finished_windows_and_after_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let now = vane_core::event::now_ns();
        let t0 = (now - 10 * MIN).div_euclid(MIN) * MIN;
        let mut h = History::open(dir.path(), &tiers(), 1000, Duration::ZERO).unwrap();
        let evs: Vec<Event> = (0..300).map(|i| ev("cpu", "a", t0 + i * SECOND, i as f64)).collect();
        h.write(&evs).unwrap();
        h.write(&[ev("mem", "a", t0, 1.0)]).unwrap();
        let id = h.id_of("cpu,host=a value").unwrap();
        let (tier, pts) = h.range(id, t0, t0 + 299 * SECOND, 10_000);
        assert_eq!(tier, 0);
        let missing: Vec<i64> = (0..300).filter(|i| !pts.iter().any(|p| p.ts == t0 + i * SECOND)).collect();
        assert_eq!(missing, Vec::<i64>::new(), "{:?}", h.tiers[0].done);
        assert_eq!(pts.len(), 300);
        assert_eq!(pts[17], Point::raw(t0 + 17 * SECOND, 17.0));
        assert!(h.tiers[0].done.len() >= 9, "passed windows are finished: {:?}", h.tiers[0].done);
        drop(h);
        let h = History::open(dir.path(), &tiers(), 1000, Duration::ZERO).unwrap();
        let id = h.id_of("cpu,host=a value").unwrap();
        let (_, again) = h.range(id, t0, t0 + 299 * SECOND, 10_000);
        assert_eq!(again, pts);
        assert_eq!(h.series(id).unwrap().latest, Some((t0 + 299 * SECOND, 299.0)));
        // At most 30 points: each the min/max/sum/count of ten.
        let (_, merged) = h.range(id, t0, t0 + 300 * SECOND, 30);
        assert_eq!(merged.len(), 30);
        assert_eq!((merged[1].count, merged[1].min, merged[1].max, merged[1].sum), (10, 10.0, 19.0, 145.0));
    }

    #[test]
    fn downsampling_keeps_min_max_sum_and_count_to_the_value() {
        let dir = tempfile::tempdir().unwrap();
        let now = vane_core::event::now_ns();
        let t0 = (now - 30 * MIN).div_euclid(MIN) * MIN;
        let mut h = History::open(dir.path(), &tiers(), 1000, Duration::ZERO).unwrap();
        // Minute k holds k*100 + 0..60 (every second).
        let evs: Vec<Event> =
            (0..5 * 60).map(|i| ev("cpu", "a", t0 + i * SECOND, ((i / 60) * 100 + i % 60) as f64)).collect();
        h.write(&evs).unwrap();
        h.flush(now).unwrap();
        let id = h.id_of("cpu,host=a value").unwrap();
        let pts = h.tier_points(1, id, t0, t0 + 10 * MIN);
        assert_eq!(pts.len(), 5, "{pts:?}");
        for (k, p) in pts.iter().enumerate() {
            let base = (k * 100) as f64;
            assert_eq!(p.ts, t0 + k as i64 * MIN);
            assert_eq!(p.count, 60);
            assert_eq!((p.min, p.max), (base, base + 59.0));
            assert_eq!(p.sum, 60.0 * base + (0..60).sum::<i64>() as f64);
        }
        // A range older than the raw tier keeps comes from the minutes.
        let (tier, _) = h.range(id, now - 2 * 3600 * SECOND, now, 100);
        assert_eq!(tier, 1);
    }

    #[test]
    fn retention_deletes_windows_older_than_the_tier_keeps() {
        let dir = tempfile::tempdir().unwrap();
        let now = vane_core::event::now_ns();
        let short = vec![TierSpec { step: Duration::ZERO, keep: Duration::from_secs(120) }];
        let mut h = History::open(dir.path(), &short, 1000, Duration::ZERO).unwrap();
        let t0 = (now - 10 * MIN).div_euclid(MIN) * MIN;
        let evs: Vec<Event> = (0..10 * 60).step_by(5).map(|i| ev("x", "a", t0 + i * SECOND, 1.0)).collect();
        h.write(&evs).unwrap();
        h.flush(now).unwrap();
        let starts: Vec<i64> = h.tiers[0].done.keys().copied().collect();
        assert!(!starts.is_empty());
        assert!(starts.iter().all(|s| s + 30 * SECOND > now - 120 * SECOND), "{starts:?}");
        let on_disk = fs::read_dir(dir.path().join("tier0"))
            .unwrap()
            .filter(|e| e.as_ref().unwrap().file_name().to_string_lossy().ends_with(".seg"))
            .count();
        assert_eq!(on_disk, starts.len());
        let id = h.id_of("x,host=a value").unwrap();
        let (_, pts) = h.range(id, t0, now, 10_000);
        assert!(pts.iter().all(|p| p.ts >= now - 150 * SECOND), "only what is kept");
    }

    #[test]
    fn a_torn_and_a_corrupt_file_are_skipped_and_counted() {
        let dir = tempfile::tempdir().unwrap();
        let now = vane_core::event::now_ns();
        let t0 = (now - 5 * MIN).div_euclid(MIN) * MIN;
        let mut h = History::open(dir.path(), &tiers(), 1000, Duration::ZERO).unwrap();
        for host in ["a", "b"] {
            let evs: Vec<Event> = (0..120).map(|i| ev("cpu", host, t0 + i * SECOND, i as f64)).collect();
            h.write(&evs).unwrap();
        }
        let first = *h.tiers[0].done.keys().next().unwrap();
        drop(h);
        // Corrupt one series' record in the first window: the other reads.
        let seg = dir.path().join(format!("tier0/{first}.seg"));
        let mut b = fs::read(&seg).unwrap();
        b[record::HEADER + 10] ^= 0xff;
        fs::write(&seg, &b).unwrap();
        // Tear the open window's file.
        let open = fs::read_dir(dir.path().join("tier0"))
            .unwrap()
            .filter_map(|e| e.ok())
            .find(|e| e.file_name().to_string_lossy().ends_with(".open"));
        let h = History::open(dir.path(), &tiers(), 1000, Duration::ZERO).unwrap();
        let a = h.id_of("cpu,host=a value").unwrap();
        let b_id = h.id_of("cpu,host=b value").unwrap();
        let (_, pa) = h.range(a, t0, t0 + 29 * SECOND, 10_000);
        let (_, pb) = h.range(b_id, t0, t0 + 29 * SECOND, 10_000);
        assert_eq!(pa.len() + pb.len(), 30, "one series' first window lost, the other's kept");
        drop(h);
        let Some(open) = open else { return };
        let p = open.path();
        if p.exists() {
            let len = fs::metadata(&p).unwrap().len();
            OpenOptions::new().write(true).open(&p).unwrap().set_len(len - 3).unwrap();
            let h = History::open(dir.path(), &tiers(), 1000, Duration::ZERO).unwrap();
            assert!(h.figures().skipped_records >= 1);
        }
    }

    #[test]
    fn memory_stays_small_with_ten_thousand_series() {
        let dir = tempfile::tempdir().unwrap();
        let mut h = History::open(dir.path(), &tiers(), 20_000, Duration::from_secs(1)).unwrap();
        let now = vane_core::event::now_ns();
        let t0 = now.div_euclid(MIN) * MIN - MIN;
        for s in 0..60 {
            let evs: Vec<Event> = (0..10_000).map(|i| ev("m", &format!("h{i}"), t0 + s * SECOND, s as f64)).collect();
            h.write(&evs).unwrap();
        }
        let f = h.figures();
        assert_eq!(f.series, 10_000);
        assert!(f.memory_bytes / 10_000 < 4096, "{} bytes of points per series", f.memory_bytes / 10_000);
        assert!(f.disk_bytes > 0);
        // Beyond max_series, new series are refused and counted.
        let mut small = History::open(&dir.path().join("s"), &tiers(), 2, Duration::ZERO).unwrap();
        small.write(&[ev("a", "x", now, 1.0), ev("b", "x", now, 1.0), ev("c", "x", now, 1.0)]).unwrap();
        assert_eq!((small.figures().series, small.figures().refused), (2, 1));
    }
}
