//! A disk buffer that could not be opened (a read-only or missing
//! `data_dir`): the sink starts anyway, and so does every other. Until the
//! folder can be opened, with the runtime's backoff (1 s doubling to 60 s),
//! a push fails as on a full disk, so `when_full` decides: `block` holds
//! the events back, `drop_*` drops them, counted. Then it is the disk buffer.

use std::io;
use std::path::PathBuf;
use std::time::Instant;

use vane_core::event::Event;

use super::{Disk, Pushed, Store, WhenFull};
use crate::guard::Backoff;

pub struct Opening {
    dir: PathBuf,
    max: u64,
    when_full: WhenFull,
    disk: Option<Disk>,
    /// Why the last attempt failed, and when to try again.
    error: String,
    retry_at: Instant,
    backoff: Backoff,
}

impl Opening {
    /// Tries to open the buffer in `dir` now; [`Opening::error`] says why not.
    pub fn new(dir: PathBuf, max: u64, when_full: WhenFull) -> Opening {
        let mut o = Opening {
            dir,
            max,
            when_full,
            disk: None,
            error: String::new(),
            retry_at: Instant::now(),
            backoff: Backoff::default(),
        };
        o.ready();
        o
    }

    /// Why the buffer is not open yet (`None` once it is).
    pub fn error(&self) -> Option<&str> {
        self.disk.is_none().then_some(self.error.as_str())
    }

    /// The disk buffer, once it opens.
    fn ready(&mut self) -> Option<&mut Disk> {
        if self.disk.is_none() && Instant::now() >= self.retry_at {
            match Disk::open(&self.dir, self.max, self.when_full) {
                Ok(d) => self.disk = Some(d),
                Err(e) => {
                    self.error = format!("cannot open the disk buffer in {}: {e}", self.dir.display());
                    self.retry_at = Instant::now() + self.backoff.next_wait();
                }
            }
        }
        self.disk.as_mut()
    }
}

impl Store for Opening {
    fn push(&mut self, batch: Vec<Event>) -> io::Result<Pushed> {
        match self.ready() {
            Some(d) => d.push(batch),
            None => Ok(Pushed::Failed(batch, self.error.clone())),
        }
    }

    fn take(&mut self) -> io::Result<Option<Vec<Event>>> {
        self.ready().map_or(Ok(None), |d| d.take())
    }

    fn ack(&mut self, batch: Vec<Event>) -> io::Result<()> {
        self.disk.as_mut().map_or(Ok(()), |d| d.ack(batch))
    }

    fn give_back(&mut self, batch: Vec<Event>) {
        if let Some(d) = self.disk.as_mut() {
            d.give_back(batch);
        }
    }

    fn bytes(&self) -> u64 {
        self.disk.as_ref().map_or(0, |d| d.bytes())
    }

    fn events(&self) -> u64 {
        self.disk.as_ref().map_or(0, |d| d.events())
    }

    fn sync(&mut self) -> io::Result<()> {
        self.disk.as_mut().map_or(Ok(()), |d| d.sync())
    }

    fn take_skipped(&mut self) -> (u64, u64) {
        self.disk.as_mut().map_or((0, 0), |d| d.take_skipped())
    }

    fn durable(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::buffer::testing::{batch, drain};

    #[test]
    fn a_folder_that_cannot_be_made_fails_pushes_until_it_can() {
        let dir = tempfile::tempdir().unwrap();
        // A file where the folder should be: it cannot be opened.
        let at = dir.path().join("buffers");
        std::fs::write(&at, "").unwrap();
        let mut o = Opening::new(at.join("sink"), 1 << 20, WhenFull::Block);
        assert!(o.error().unwrap().contains("cannot open the disk buffer"), "{:?}", o.error());
        assert!(matches!(o.push(batch(0, 2)).unwrap(), Pushed::Failed(b, _) if b.len() == 2));
        assert_eq!(o.take().unwrap(), None);
        std::fs::remove_file(&at).unwrap();
        o.retry_at = Instant::now();
        assert_eq!(o.push(batch(0, 2)).unwrap(), Pushed::Stored);
        assert!(o.error().is_none());
        assert_eq!(drain(&mut o), vec![0, 1]);
    }
}
