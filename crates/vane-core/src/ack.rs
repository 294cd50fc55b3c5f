//! End-to-end acknowledgements: events on their way carry `Ack`s that every
//! sink they reach lets go once it has stored them, so a listener whose
//! protocol has an answer can give it only then.

use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;

use crate::event::Event;

/// Events on their way, with the acknowledgements that travel with them.
#[derive(Default)]
pub struct Batch {
    pub events: Vec<Event>,
    pub acks: Vec<Ack>,
}

impl From<Vec<Event>> for Batch {
    fn from(events: Vec<Event>) -> Batch {
        Batch { events, acks: Vec::new() }
    }
}

/// An end-to-end acknowledgement: every copy of it follows the events to a
/// sink, which lets it go once it has stored them (and, for a disk buffer,
/// synced them). When the last copy goes, the emitter learns whether all
/// went well ([`Ack::fail`] was not called on any copy).
#[derive(Clone)]
pub struct Ack(Arc<AckInner>);

struct AckInner {
    failed: AtomicBool,
    done: Mutex<Option<oneshot::Sender<bool>>>,
}

impl Drop for AckInner {
    fn drop(&mut self) {
        if let Some(tx) = self.done.lock().map(|mut d| d.take()).unwrap_or(None) {
            let _ = tx.send(!self.failed.load(Relaxed));
        }
    }
}

impl Ack {
    /// An acknowledgement and where its outcome arrives.
    pub fn new() -> (Ack, oneshot::Receiver<bool>) {
        let (tx, rx) = oneshot::channel();
        let inner = AckInner { failed: AtomicBool::new(false), done: Mutex::new(Some(tx)) };
        (Ack(Arc::new(inner)), rx)
    }

    /// The events were not stored (dropped by a full buffer, or nowhere to go).
    pub fn fail(&self) {
        self.0.failed.store(true, Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_last_copy_tells_whether_any_failed() {
        let (a, done) = Ack::new();
        let b = a.clone();
        drop(a);
        b.fail();
        drop(b);
        assert!(!done.await.unwrap());
        let (a, done) = Ack::new();
        drop(a.clone());
        drop(a);
        assert!(done.await.unwrap());
    }
}
