//! The disk buffer. Segment files `NNNNNNNNNNNNNNNNNNNN.seg` of records
//! `vane_core::record`s (`[len][crc32]`, then a batch in vane_core::binary), and a file
//! `ack` naming the segment and offset of the first batch not yet
//! delivered. A new segment is started on open, at 16 MiB, and when the one
//! being written has been read to its end (so a buffer that keeps up gives
//! its space back), so a torn tail is never appended to. A record whose
//! checksum does not match, or a segment that ends in the middle of a
//! record, is skipped and counted; the reader then looks for the next offset
//! where a length and a checksum agree, so a damaged length field costs one
//! record, not the rest of the segment. A write that fails (a full disk)
//! cuts the segment back to its last whole record and hands the batch back.

use std::collections::VecDeque;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use vane_core::event::Event;
use vane_core::record;

use super::{Pushed, Store, WhenFull};

const SEGMENT_MAX: u64 = 16 << 20;
/// A segment read to its end is replaced by a new one once it holds this
/// much, so a buffer that keeps up gives its disk space back.
const SEGMENT_DRAINED: u64 = 256 << 10;
const HEADER: u64 = record::HEADER as u64;

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
            self.roll()?;
        }
        record::seal(rec);
        if let Err(e) = self.writer.write_all(rec) {
            // A record written in part would read as torn: the segment ends
            // where the last whole record does, and the caller keeps the batch.
            let _ = self.writer.set_len(self.write_len);
            return Err(e);
        }
        self.write_len += rec.len() as u64;
        self.bytes += rec.len() as u64;
        self.dirty = true;
        Ok(())
    }

    /// Starts writing a new segment.
    fn roll(&mut self) -> io::Result<()> {
        let next = self.segments.back().copied().unwrap_or(0) + 1;
        self.writer = OpenOptions::new().create(true).append(true).open(seg_path(&self.dir, next))?;
        self.segments.push_back(next);
        self.write_len = 0;
        Ok(())
    }

    /// Whether everything written has been read and acknowledged.
    fn drained(&self) -> bool {
        self.taken.is_none() && self.read == (self.segments.back().copied().unwrap_or(0), self.write_len)
    }

    /// Gives back the space of a segment read to its end: a new one is
    /// started and the old removed.
    fn reclaim(&mut self) -> io::Result<()> {
        self.roll()?;
        self.next_segment()
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
            let (n, crc) = record::header(&h);
            let n = n as u64;
            let mut payload = std::mem::take(&mut self.payload);
            payload.clear();
            if off + HEADER + n <= len {
                payload.resize(n as usize, 0);
                f.read_exact_at(&mut payload, off + HEADER)?;
            }
            self.reader = Some((seg, f));
            let intact = off + HEADER + n <= len && record::intact(&payload, crc);
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
        // An open file keeps its space: let go of it.
        if self.reader.as_ref().is_some_and(|(s, _)| *s == seg) {
            self.reader = None;
        }
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
    Ok(record::next_intact(&fs::read(path)?, from as usize).map(|p| p as u64))
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
        let mut appended = self.append(&mut bytes);
        if appended.is_err() && self.drained() && self.write_len > 0 {
            // The disk is full, but of what was delivered: free it and retry.
            appended = self.reclaim().and_then(|()| self.append(&mut bytes));
        }
        if let Err(e) = appended {
            self.scratch = bytes;
            return Ok(Pushed::Failed(batch, e.to_string()));
        }
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
            // A fully read segment other than the one being written goes
            // away; the one being written, once it is large.
            let (seg, off) = self.read;
            if self.segments.back() != Some(&seg) {
                let len = fs::metadata(seg_path(&self.dir, seg)).map(|m| m.len()).unwrap_or(0);
                if off >= len {
                    self.next_segment()?;
                }
            } else if self.drained() && self.write_len >= SEGMENT_DRAINED {
                self.reclaim()?;
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
    use crate::buffer::testing::{batch, drain};

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
    fn a_drained_disk_gives_its_space_back() {
        let dir = tempfile::tempdir().unwrap();
        let mut d = Disk::open(dir.path(), 1 << 30, WhenFull::Block).unwrap();
        let on_disk = || -> u64 {
            fs::read_dir(dir.path()).unwrap().filter_map(|e| e.ok()).map(|e| e.metadata().unwrap().len()).sum()
        };
        let mut i = 0;
        while on_disk() < SEGMENT_DRAINED {
            d.push(batch(i, 100)).unwrap();
            i += 100;
        }
        assert_eq!(drain(&mut d).len() as i64, i);
        d.sync().unwrap();
        assert!(on_disk() < 100, "{} bytes left after delivering everything", on_disk());
        // And the buffer goes on, also across a reopening.
        d.push(batch(i, 1)).unwrap();
        d.sync().unwrap();
        drop(d);
        let mut d = Disk::open(dir.path(), 1 << 30, WhenFull::Block).unwrap();
        assert_eq!(drain(&mut d), vec![i]);
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
