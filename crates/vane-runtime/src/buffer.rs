//! Each sink's buffer: batches wait here between the sink's queue and its
//! backend, so a slow or dead backend never stalls other sinks. `memory`
//! holds a bounded number of events; `disk` keeps them in segment files
//! under `agent.data_dir/buffers/SINK/` so they survive a crash of the agent.
//!
//! Disk format: segment files `NNNNNNNNNNNNNNNNNNNN.seg` of records
//! `[len: u32 LE][crc32: u32 LE][len bytes: a batch in vane_core::binary]`, and a file
//! `ack` naming the segment and offset of the first batch not yet
//! delivered. A new segment is started on open and at 16 MiB, so a torn
//! tail is never appended to. A record whose checksum does not match, or a
//! segment that ends in the middle of a record, is skipped and counted; the
//! reader then looks for the next offset where a length and a checksum agree,
//! so a damaged length field costs one record, not the rest of the segment.
//! Delivery is at least once: a batch sent but not yet acknowledged when the
//! agent dies is sent again.

use std::collections::VecDeque;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use vane_core::ByteSize;
use vane_core::event::Event;

/// What to do with a batch when the buffer is full.
#[derive(Deserialize, Debug, Clone, Copy, Default, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum WhenFull {
    /// Wait for room (the sink's queue fills, then its feeders wait).
    #[default]
    Block,
    /// Drop the batch that does not fit (counted).
    DropNewest,
    /// Drop the oldest batches to make room (counted).
    DropOldest,
}

/// Where a sink's batches wait.
#[derive(Deserialize, Debug, Clone, Copy, Default, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    #[default]
    Memory,
    Disk,
}

/// `buffer:` of a sink.
#[derive(Deserialize, Debug, Clone)]
#[serde(deny_unknown_fields)]
pub struct BufferConfig {
    /// memory or disk. Default: memory.
    #[serde(default)]
    pub kind: Kind,
    /// Most bytes held (events are counted at their line-protocol size).
    /// Default: 64MiB in memory, 1GiB on disk.
    pub max_size: Option<ByteSize>,
    /// block, drop_newest or drop_oldest. Default: block.
    #[serde(default)]
    pub when_full: WhenFull,
    /// How often a disk buffer is fsynced. Default: 1s.
    pub fsync: Option<vane_core::Duration>,
}

impl Default for BufferConfig {
    fn default() -> Self {
        BufferConfig { kind: Kind::Memory, max_size: None, when_full: WhenFull::Block, fsync: None }
    }
}

impl BufferConfig {
    pub fn max_bytes(&self) -> u64 {
        self.max_size.map(|s| s.0).unwrap_or(match self.kind {
            Kind::Memory => 64 << 20,
            Kind::Disk => 1 << 30,
        })
    }
}

/// What happened to a pushed batch.
#[derive(Debug, PartialEq)]
pub enum Pushed {
    Stored,
    /// No room; the batch is handed back (when_full: block).
    Full(Vec<Event>),
    /// Stored after dropping this many older events, or the batch itself
    /// (this many events) was dropped.
    Dropped(u64),
}

/// A sink's buffer.
pub trait Store: Send {
    fn push(&mut self, batch: Vec<Event>) -> io::Result<Pushed>;
    /// Hands out the oldest batch for delivery; it stays counted (and, on
    /// disk, stored) until `ack`, and returns with `give_back`.
    fn take(&mut self) -> io::Result<Option<Vec<Event>>>;
    /// The taken batch was delivered: forget it. The batch is handed back so
    /// that a store which decodes (disk) can reuse its memory for the next.
    fn ack(&mut self, batch: Vec<Event>) -> io::Result<()>;
    /// The taken batch was not delivered: it is the oldest again.
    fn give_back(&mut self, batch: Vec<Event>);
    fn bytes(&self) -> u64;
    fn events(&self) -> u64;
    /// Makes what was pushed durable (disk) and persists the read position.
    fn sync(&mut self) -> io::Result<()>;
    /// Records and bytes skipped as corrupt since the last call.
    fn take_skipped(&mut self) -> (u64, u64) {
        (0, 0)
    }
    /// Whether what it holds outlives the process (a stopped sink keeps it).
    fn durable(&self) -> bool {
        false
    }
}

/// About the line-protocol size of a batch, without encoding it.
pub fn size_of(batch: &[Event]) -> u64 {
    batch.iter().map(|e| encoded_size(e) as u64).sum()
}

fn encoded_size(e: &Event) -> usize {
    let tags: usize = e.tags.iter().map(|(k, v)| k.len() + v.len() + 2).sum();
    let fields: usize = e.fields.iter().map(|(k, v)| k.len() + 2 + v.as_str().map_or(12, str::len)).sum();
    e.name.len() + e.host.len() + tags + fields + 28
}

/// What a batch takes in memory: its text, the events' own structs, their
/// tag and field slots, and about 16 bytes of allocator rounding per
/// allocation. A memory buffer's `max_size` counts this, so that it bounds
/// the memory the buffer really holds (several times the text).
pub fn mem_size_of(batch: &[Event]) -> u64 {
    use std::mem::size_of;
    batch
        .iter()
        .map(|e| {
            let allocs = 4 + 2 * e.tags.len() + e.fields.len();
            (encoded_size(e)
                + size_of::<Event>()
                + e.tags.capacity() * size_of::<(String, String)>()
                + e.fields.capacity() * size_of::<(String, vane_core::event::Value)>()
                + 16 * allocs) as u64
        })
        .sum::<u64>()
        + size_of::<Vec<Event>>() as u64
}

/// A bounded queue of batches in memory.
pub struct Memory {
    batches: VecDeque<(Vec<Event>, u64)>,
    /// Size and length of the batch out for delivery.
    taken: Option<(u64, u64)>,
    bytes: u64,
    events: u64,
    max: u64,
    when_full: WhenFull,
}

impl Memory {
    pub fn new(max: u64, when_full: WhenFull) -> Memory {
        Memory { batches: VecDeque::new(), taken: None, bytes: 0, events: 0, max, when_full }
    }
}

impl Store for Memory {
    fn push(&mut self, batch: Vec<Event>) -> io::Result<Pushed> {
        let size = mem_size_of(&batch);
        let n = batch.len() as u64;
        let mut dropped = 0;
        if self.bytes + size > self.max && !self.batches.is_empty() {
            match self.when_full {
                WhenFull::Block => return Ok(Pushed::Full(batch)),
                WhenFull::DropNewest => return Ok(Pushed::Dropped(n)),
                WhenFull::DropOldest => {
                    while self.bytes + size > self.max {
                        let Some((b, s)) = self.batches.pop_front() else {
                            break;
                        };
                        self.bytes -= s;
                        self.events -= b.len() as u64;
                        dropped += b.len() as u64;
                    }
                }
            }
        }
        self.bytes += size;
        self.events += n;
        self.batches.push_back((batch, size));
        Ok(if dropped > 0 { Pushed::Dropped(dropped) } else { Pushed::Stored })
    }

    fn take(&mut self) -> io::Result<Option<Vec<Event>>> {
        Ok(self.batches.pop_front().map(|(b, s)| {
            self.taken = Some((s, b.len() as u64));
            b
        }))
    }

    fn ack(&mut self, _batch: Vec<Event>) -> io::Result<()> {
        if let Some((s, n)) = self.taken.take() {
            self.bytes -= s;
            self.events -= n;
        }
        Ok(())
    }

    fn give_back(&mut self, batch: Vec<Event>) {
        if let Some((s, _)) = self.taken.take() {
            self.batches.push_front((batch, s));
        }
    }

    fn bytes(&self) -> u64 {
        self.bytes
    }

    fn events(&self) -> u64 {
        self.events
    }

    fn sync(&mut self) -> io::Result<()> {
        Ok(())
    }
}

const SEGMENT_MAX: u64 = 16 << 20;
const HEADER: u64 = 8;

/// Segment files on disk; see the module's documentation for the format.
pub struct Disk {
    dir: PathBuf,
    /// Segment numbers, oldest first; the last is being written.
    segments: VecDeque<u64>,
    writer: File,
    write_len: u64,
    /// Read position: segment number and offset.
    read: (u64, u64),
    /// The decoded batch at the read position, and where it ends.
    current: Option<(Vec<Event>, u64)>,
    /// Where the batch out for delivery ends, and its length.
    taken: Option<(u64, u64)>,
    bytes: u64,
    events_hint: u64,
    max: u64,
    when_full: WhenFull,
    skipped: (u64, u64),
    dirty: bool,
    /// Reused encoding buffer: a record's header, then its batch.
    scratch: Vec<u8>,
    /// Reused buffer for the record being read.
    payload: Vec<u8>,
    /// The last delivered batch, whose events the next decode reuses.
    spare: Vec<Event>,
    /// The segment being read, kept open.
    reader: Option<(u64, File)>,
}

fn seg_path(dir: &Path, n: u64) -> PathBuf {
    dir.join(format!("{n:020}.seg"))
}

impl Disk {
    /// Opens (or creates) the buffer in `dir`, resuming after the last ack.
    pub fn open(dir: &Path, max: u64, when_full: WhenFull) -> io::Result<Disk> {
        fs::create_dir_all(dir)?;
        let mut segs: Vec<u64> = fs::read_dir(dir)?
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                let name = e.file_name().into_string().ok()?;
                name.strip_suffix(".seg")?.parse().ok()
            })
            .collect();
        segs.sort_unstable();
        let ack = fs::read_to_string(dir.join("ack")).ok().and_then(|s| {
            let mut w = s.split_whitespace();
            Some((w.next()?.parse().ok()?, w.next()?.parse().ok()?))
        });
        let first = segs.first().copied().unwrap_or(0);
        let mut read = match ack {
            Some((seg, off)) if segs.contains(&seg) => (seg, off),
            // The acked segment is gone: everything before it was delivered.
            Some((seg, _)) => (segs.iter().copied().find(|s| *s > seg).unwrap_or(seg + 1), 0),
            None => (first, 0),
        };
        // Segments before the read position are delivered.
        for s in segs.iter().filter(|s| **s < read.0) {
            let _ = fs::remove_file(seg_path(dir, *s));
        }
        segs.retain(|s| *s >= read.0);
        let next = segs.last().map_or(read.0.max(1), |l| l + 1);
        let writer = OpenOptions::new().create(true).append(true).open(seg_path(dir, next))?;
        segs.push(next);
        if !segs.contains(&read.0) {
            read = (next, 0);
        }
        let mut bytes = 0;
        for s in &segs {
            bytes += fs::metadata(seg_path(dir, *s)).map(|m| m.len()).unwrap_or(0);
        }
        bytes = bytes.saturating_sub(read.1);
        Ok(Disk {
            dir: dir.to_path_buf(),
            segments: segs.into(),
            writer,
            write_len: 0,
            read,
            current: None,
            taken: None,
            bytes,
            events_hint: 0,
            max,
            when_full,
            skipped: (0, 0),
            dirty: false,
            scratch: Vec::new(),
            payload: Vec::new(),
            spare: Vec::new(),
            reader: None,
        })
    }

    /// Appends `rec`: a record whose first `HEADER` bytes are filled in here.
    fn append(&mut self, rec: &mut [u8]) -> io::Result<()> {
        if self.write_len >= SEGMENT_MAX {
            self.writer.sync_data()?;
            let next = self.segments.back().copied().unwrap_or(0) + 1;
            self.writer = OpenOptions::new().create(true).append(true).open(seg_path(&self.dir, next))?;
            self.segments.push_back(next);
            self.write_len = 0;
        }
        let h = HEADER as usize;
        let crc = crc32fast::hash(&rec[h..]);
        let len = (rec.len() - h) as u32;
        rec[..4].copy_from_slice(&len.to_le_bytes());
        rec[4..h].copy_from_slice(&crc.to_le_bytes());
        self.writer.write_all(rec)?;
        self.write_len += rec.len() as u64;
        self.bytes += rec.len() as u64;
        self.dirty = true;
        Ok(())
    }

    /// Reads the record at the read position into `current`, skipping
    /// corrupt records and segments that end early.
    fn load(&mut self) -> io::Result<()> {
        while self.current.is_none() {
            let (seg, off) = self.read;
            let is_last = self.segments.back() == Some(&seg);
            let path = seg_path(&self.dir, seg);
            // The segment being read stays open; records are read in place.
            let f = match self.reader.take() {
                Some((s, f)) if s == seg => f,
                _ => match File::open(&path) {
                    Ok(f) => f,
                    Err(e) if e.kind() == io::ErrorKind::NotFound && !is_last => {
                        self.next_segment()?;
                        continue;
                    }
                    Err(e) => return Err(e),
                },
            };
            let len = f.metadata()?.len();
            if off + HEADER > len {
                self.reader = Some((seg, f));
                if is_last {
                    return Ok(()); // nothing more yet
                }
                if off < len {
                    self.skip(1, len - off);
                }
                self.next_segment()?;
                continue;
            }
            let mut h = [0u8; HEADER as usize];
            f.read_exact_at(&mut h, off)?;
            let n = u32::from_le_bytes([h[0], h[1], h[2], h[3]]) as u64;
            let crc = u32::from_le_bytes([h[4], h[5], h[6], h[7]]);
            let mut payload = std::mem::take(&mut self.payload);
            payload.clear();
            if off + HEADER + n <= len {
                payload.resize(n as usize, 0);
                f.read_exact_at(&mut payload, off + HEADER)?;
            }
            self.reader = Some((seg, f));
            let intact = off + HEADER + n <= len && crc32fast::hash(&payload) == crc;
            let mut batch = std::mem::take(&mut self.spare);
            let decoded = intact && vane_core::binary::decode_batch_into(&payload, &mut batch).is_ok();
            // Kept for the next record, unless an odd one made it large.
            if payload.capacity() <= 8 << 20 {
                self.payload = payload;
            }
            if !intact {
                self.spare = batch;
                // Damaged (or torn): the length itself may be wrong, so
                // look for the next place where a length and a checksum agree.
                match resync(&path, off + 1)? {
                    Some(next) => {
                        self.skip(1, next - off);
                        self.bytes = self.bytes.saturating_sub(next - off);
                        self.read = (seg, next);
                    }
                    None if is_last => return Ok(()),
                    None => {
                        self.skip(1, len - off);
                        self.next_segment()?;
                    }
                }
                continue;
            }
            let end = off + HEADER + n;
            if decoded {
                self.current = Some((batch, end));
            } else {
                // The checksum matched but the batch does not read:
                // another version's record. Skipped like a corrupt one.
                batch.clear();
                self.spare = batch;
                self.skip(1, HEADER + n);
                self.read = (seg, end);
                self.bytes = self.bytes.saturating_sub(HEADER + n);
            }
        }
        Ok(())
    }

    fn skip(&mut self, records: u64, bytes: u64) {
        self.skipped.0 += records;
        self.skipped.1 += bytes;
    }

    fn next_segment(&mut self) -> io::Result<()> {
        let (seg, off) = self.read;
        let len = fs::metadata(seg_path(&self.dir, seg)).map(|m| m.len()).unwrap_or(off);
        self.bytes = self.bytes.saturating_sub(len.saturating_sub(off));
        let _ = fs::remove_file(seg_path(&self.dir, seg));
        self.segments.retain(|s| *s != seg);
        let next = self.segments.front().copied().unwrap_or(seg + 1);
        self.read = (next, 0);
        self.dirty = true;
        Ok(())
    }
}

/// The first offset at or after `from` where a whole record with a
/// matching checksum starts (corruption only: reads the whole segment).
fn resync(path: &Path, from: u64) -> io::Result<Option<u64>> {
    let b = fs::read(path)?;
    let h = HEADER as usize;
    let mut p = from as usize;
    while p + h <= b.len() {
        let n = u32::from_le_bytes([b[p], b[p + 1], b[p + 2], b[p + 3]]) as usize;
        let crc = u32::from_le_bytes([b[p + 4], b[p + 5], b[p + 6], b[p + 7]]);
        if n > 0 && p + h + n <= b.len() && crc32fast::hash(&b[p + h..p + h + n]) == crc {
            return Ok(Some(p as u64));
        }
        p += 1;
    }
    Ok(None)
}

impl Store for Disk {
    fn durable(&self) -> bool {
        true
    }

    fn push(&mut self, batch: Vec<Event>) -> io::Result<Pushed> {
        let mut bytes = std::mem::take(&mut self.scratch);
        bytes.clear();
        bytes.resize(HEADER as usize, 0);
        vane_core::binary::encode_batch(&mut bytes, &batch);
        let size = bytes.len() as u64;
        let mut dropped = 0;
        if self.bytes + size > self.max && self.bytes > 0 {
            match self.when_full {
                WhenFull::Block => {
                    self.scratch = bytes;
                    return Ok(Pushed::Full(batch));
                }
                WhenFull::DropNewest => {
                    self.scratch = bytes;
                    return Ok(Pushed::Dropped(batch.len() as u64));
                }
                WhenFull::DropOldest => {
                    while self.bytes + size > self.max && self.taken.is_none() {
                        let Some(b) = self.take()? else { break };
                        dropped += b.len() as u64;
                        self.ack(b)?;
                    }
                }
            }
        }
        self.append(&mut bytes)?;
        self.scratch = bytes;
        self.events_hint += batch.len() as u64;
        Ok(if dropped > 0 { Pushed::Dropped(dropped) } else { Pushed::Stored })
    }

    fn take(&mut self) -> io::Result<Option<Vec<Event>>> {
        self.load()?;
        Ok(self.current.take().map(|(b, end)| {
            self.taken = Some((end, b.len() as u64));
            b
        }))
    }

    fn give_back(&mut self, batch: Vec<Event>) {
        if let Some((end, _)) = self.taken.take() {
            self.current = Some((batch, end));
        }
    }

    fn ack(&mut self, batch: Vec<Event>) -> io::Result<()> {
        // Kept for the next decode, unless it is much larger than a batch
        // usually is (one odd batch must not pin its memory).
        if batch.capacity() <= 16_384 {
            self.spare = batch;
        }
        if let Some((end, n)) = self.taken.take() {
            let used = end - self.read.1;
            self.bytes = self.bytes.saturating_sub(used);
            self.events_hint = self.events_hint.saturating_sub(n);
            self.read.1 = end;
            self.dirty = true;
            // A fully read segment other than the one being written goes away.
            let (seg, off) = self.read;
            if self.segments.back() != Some(&seg) {
                let len = fs::metadata(seg_path(&self.dir, seg)).map(|m| m.len()).unwrap_or(0);
                if off >= len {
                    self.next_segment()?;
                }
            }
        }
        Ok(())
    }

    fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Events pushed since this process opened the buffer and not yet
    /// delivered (what an earlier run left is counted in `bytes` only).
    fn events(&self) -> u64 {
        self.events_hint
    }

    fn sync(&mut self) -> io::Result<()> {
        if !self.dirty {
            return Ok(());
        }
        self.writer.sync_data()?;
        let tmp = self.dir.join("ack.tmp");
        fs::write(&tmp, format!("{} {}\n", self.read.0, self.read.1))?;
        fs::rename(&tmp, self.dir.join("ack"))?;
        self.dirty = false;
        Ok(())
    }

    fn take_skipped(&mut self) -> (u64, u64) {
        std::mem::take(&mut self.skipped)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(from: i64, n: i64) -> Vec<Event> {
        (from..from + n).map(|i| Event::gauge("m", i).at(i + 1)).collect()
    }

    fn drain(s: &mut dyn Store) -> Vec<i64> {
        let mut out = Vec::new();
        while let Some(b) = s.take().unwrap() {
            out.extend(b.iter().map(|e| e.time - 1));
            s.ack(b).unwrap();
        }
        out
    }

    #[test]
    fn memory_policies_when_full() {
        let one = mem_size_of(&batch(0, 1));
        let mut m = Memory::new(one * 3, WhenFull::Block);
        for i in 0..3 {
            assert_eq!(m.push(batch(i, 1)).unwrap(), Pushed::Stored);
        }
        assert!(matches!(m.push(batch(3, 1)).unwrap(), Pushed::Full(_)));
        let mut m = Memory::new(one * 3, WhenFull::DropNewest);
        for i in 0..4 {
            m.push(batch(i, 1)).unwrap();
        }
        assert_eq!(drain(&mut m), vec![0, 1, 2]);
        let mut m = Memory::new(one * 3, WhenFull::DropOldest);
        for i in 0..4 {
            m.push(batch(i, 1)).unwrap();
        }
        assert_eq!(drain(&mut m), vec![1, 2, 3]);
        assert_eq!((m.bytes(), m.events()), (0, 0));
    }

    #[test]
    fn disk_survives_reopening_and_resumes_after_the_ack() {
        let dir = tempfile::tempdir().unwrap();
        let mut d = Disk::open(dir.path(), 1 << 30, WhenFull::Block).unwrap();
        for i in 0..5 {
            d.push(batch(i * 10, 10)).unwrap();
        }
        // Deliver two batches, then "crash" after a sync.
        for _ in 0..2 {
            let b = d.take().unwrap().unwrap();
            d.ack(b).unwrap();
        }
        // A batch taken but not delivered comes back first.
        let b = d.take().unwrap().unwrap();
        d.give_back(b);
        d.sync().unwrap();
        drop(d);
        let mut d = Disk::open(dir.path(), 1 << 30, WhenFull::Block).unwrap();
        let got = drain(&mut d);
        assert_eq!(got, (20..50).collect::<Vec<_>>());
        d.push(batch(50, 1)).unwrap();
        assert_eq!(drain(&mut d), vec![50]);
    }

    #[test]
    fn an_unsynced_ack_means_redelivery_not_loss() {
        let dir = tempfile::tempdir().unwrap();
        let mut d = Disk::open(dir.path(), 1 << 30, WhenFull::Block).unwrap();
        d.push(batch(0, 3)).unwrap();
        d.sync().unwrap();
        let b = d.take().unwrap().unwrap();
        d.ack(b).unwrap(); // delivered, but the ack never reached the disk
        drop(d);
        let mut d = Disk::open(dir.path(), 1 << 30, WhenFull::Block).unwrap();
        assert_eq!(drain(&mut d), vec![0, 1, 2]);
    }

    #[test]
    fn corrupt_and_torn_records_are_skipped_and_counted() {
        let dir = tempfile::tempdir().unwrap();
        let mut d = Disk::open(dir.path(), 1 << 30, WhenFull::Block).unwrap();
        for i in 0..4 {
            d.push(batch(i * 10, 2)).unwrap();
        }
        d.sync().unwrap();
        drop(d);
        let seg = fs::read_dir(dir.path())
            .unwrap()
            .filter_map(|e| e.ok().map(|e| e.path()))
            .find(|p| p.extension().is_some_and(|x| x == "seg") && fs::metadata(p).unwrap().len() > 0)
            .unwrap();
        let mut bytes = fs::read(&seg).unwrap();
        // Damage the second record's length field (the reader must find the
        // third again), and tear the fourth.
        let first_len = u32::from_le_bytes(bytes[0..4].try_into().unwrap()) as usize + 8;
        bytes[first_len + 1] ^= 0xff;
        let cut = bytes.len() - 5;
        bytes.truncate(cut);
        fs::write(&seg, &bytes).unwrap();
        let mut d = Disk::open(dir.path(), 1 << 30, WhenFull::Block).unwrap();
        assert_eq!(drain(&mut d), vec![0, 1, 20, 21]);
        let (records, skipped_bytes) = d.take_skipped();
        assert_eq!(records, 2, "the damaged record and the torn one");
        assert!(skipped_bytes > 0);
        // New data still flows.
        d.push(batch(100, 1)).unwrap();
        assert_eq!(drain(&mut d), vec![100]);
    }

    #[test]
    fn disk_drop_oldest_makes_room() {
        let dir = tempfile::tempdir().unwrap();
        let mut one = Vec::new();
        vane_core::binary::encode_batch(&mut one, &batch(0, 1));
        let rec = one.len() as u64 + HEADER;
        let mut d = Disk::open(dir.path(), rec * 2, WhenFull::DropOldest).unwrap();
        for i in 0..4 {
            d.push(batch(i, 1)).unwrap();
        }
        assert_eq!(drain(&mut d), vec![2, 3]);
    }
}
