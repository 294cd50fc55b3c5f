//! The memory buffer: batches in a bounded queue, counted at their size in
//! memory ([`mem_size_of`]).

use std::collections::VecDeque;
use std::io;

use vane_core::event::Event;

use super::{Pushed, Store, WhenFull, mem_size_of};

/// A bounded queue of batches in memory.
pub struct Memory {
    /// The bound, in bytes, and what a push does beyond it.
    max: u64,
    when_full: WhenFull,
    batches: VecDeque<(Vec<Event>, u64)>,
    /// Size and length of the batch out for delivery.
    taken: Option<(u64, u64)>,
    bytes: u64,
    events: u64,
}

impl Memory {
    pub fn new(max: u64, when_full: WhenFull) -> Memory {
        Memory { max, when_full, batches: VecDeque::new(), taken: None, bytes: 0, events: 0 }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::buffer::testing::{batch, drain};

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
}
