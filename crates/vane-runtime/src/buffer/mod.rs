//! Each sink's buffer: batches wait here between the sink's queue and its
//! backend, so a slow or dead backend never stalls other sinks. `memory`
//! holds a bounded number of events; `disk` keeps them in segment files
//! under `agent.data_dir/buffers/SINK/` so they survive a crash of the agent;
//! a disk buffer that cannot be opened at start is `opening` until it can.
//! Delivery is at least once: a batch sent but not yet acknowledged when the
//! agent dies is sent again.

use std::io;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use vane_core::ByteSize;
use vane_core::event::Event;

mod disk;
mod memory;
mod opening;

pub use disk::Disk;
pub use memory::Memory;
pub use opening::Opening;

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

/// Where the disk buffer of sink `id` lives: `DATA_DIR/buffers/ID`, with
/// anything but letters, digits, `-` and `_` in the id made `_`.
pub fn dir(data_dir: &Path, id: &str) -> PathBuf {
    let safe: String =
        id.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' }).collect();
    data_dir.join("buffers").join(safe)
}

/// Whether a disk buffer could be made in `dir`: the nearest folder that
/// exists on the way to it must be one this process may write in.
pub fn writable(dir: &Path) -> io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let mut at = dir;
    while !at.exists() {
        at = at.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    }
    if !at.is_dir() {
        return Err(io::Error::other(format!("{} is not a folder", at.display())));
    }
    let c = std::ffi::CString::new(at.as_os_str().as_bytes()).map_err(io::Error::other)?;
    // SAFETY: access reads the NUL-terminated path and nothing else.
    if unsafe { libc::access(c.as_ptr(), libc::W_OK | libc::X_OK) } != 0 {
        let e = io::Error::last_os_error();
        return Err(io::Error::new(e.kind(), format!("{} is not writable: {e}", at.display())));
    }
    Ok(())
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
    /// It could not be written (a full or failing disk); the batch is handed
    /// back, and the buffer is as it was before.
    Failed(Vec<Event>, String),
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

/// What a batch takes in memory: the events' own structs, their tag and
/// field slots, what their names and strings hold on the heap (a name of
/// up to 24 bytes is inside the event), and about 16 bytes of allocator
/// rounding per allocation. A memory buffer's `max_size` counts this, so
/// that it bounds the memory the buffer really holds.
pub fn mem_size_of(batch: &[Event]) -> u64 {
    use std::mem::size_of;
    use vane_core::event::{Text, Value};
    // Heap bytes and allocations of one name or string.
    let text = |t: &Text| if t.is_heap_allocated() { t.capacity() + 16 } else { 0 };
    let string = |s: &String| if s.capacity() > 0 { s.capacity() + 16 } else { 0 };
    batch
        .iter()
        .map(|e| {
            let tags: usize = e.tags.iter().map(|(k, v)| text(k) + text(v)).sum();
            let fields: usize =
                e.fields.iter().map(|(k, v)| text(k) + if let Value::Str(s) = v { string(s) } else { 0 }).sum();
            (size_of::<Event>()
                + text(&e.name)
                + text(&e.host)
                + e.description.as_ref().map_or(0, string)
                + e.tags.capacity() * size_of::<(Text, Text)>()
                + e.fields.capacity() * size_of::<(Text, Value)>()
                + 16 * (usize::from(e.tags.capacity() > 0) + usize::from(e.fields.capacity() > 0))
                + tags
                + fields) as u64
        })
        .sum::<u64>()
        + size_of::<Vec<Event>>() as u64
}

#[cfg(test)]
pub(crate) mod testing {
    use super::*;

    pub fn batch(from: i64, n: i64) -> Vec<Event> {
        (from..from + n).map(|i| Event::gauge("m", i).at(i + 1)).collect()
    }

    pub fn drain(s: &mut dyn Store) -> Vec<i64> {
        let mut out = Vec::new();
        while let Some(b) = s.take().unwrap() {
            out.extend(b.iter().map(|e| e.time - 1));
            s.ack(b).unwrap();
        }
        out
    }
}
