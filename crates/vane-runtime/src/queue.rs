//! The bounded queues between jobs: batches of events, at most `queue_size`
//! batches and [`QUEUE_EVENTS`] events a queue. A listener's batches are
//! large, a poller's small, and either bound alone would let the other kind
//! fill memory.

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use vane_core::ack::Batch;

/// Events one queue holds at most (a batch larger than this takes it all).
/// About five of a fast listener's parts: enough to keep a sink busy while
/// the listener decodes the next, and a relay's peak RSS 54-95 MiB with
/// 100,000 against 43-48 with this, at the same speed (bench/RESULTS.md).
pub const QUEUE_EVENTS: usize = 30_000;

/// A batch on a queue, holding its room until the receiver drops it.
pub struct Queued {
    pub batch: Batch,
    _room: Option<OwnedSemaphorePermit>,
}

/// A queue's sending side.
#[derive(Clone)]
pub struct Tx {
    inner: mpsc::Sender<Queued>,
    room: Arc<Semaphore>,
}

pub type Rx = mpsc::Receiver<Queued>;

/// A queue of at most `batches` batches and [`QUEUE_EVENTS`] events.
pub fn queue(batches: usize) -> (Tx, Rx) {
    let (inner, rx) = mpsc::channel(batches);
    let room = Arc::new(Semaphore::new(QUEUE_EVENTS));
    (Tx { inner, room }, rx)
}

fn room_for(events: usize) -> u32 {
    events.min(QUEUE_EVENTS) as u32
}

/// Room reserved on a queue for one batch of a known size.
pub struct Slot {
    permit: mpsc::OwnedPermit<Queued>,
    room: OwnedSemaphorePermit,
}

impl Slot {
    pub fn send(self, batch: Batch) {
        self.permit.send(Queued { batch, _room: Some(self.room) });
    }
}

impl Tx {
    /// Sends a batch, waiting for room; gives it back if the queue is closed.
    pub async fn send(&self, batch: Batch) -> Result<(), Batch> {
        let room = self.room.clone().acquire_many_owned(room_for(batch.events.len())).await.ok();
        self.inner.send(Queued { batch, _room: room }).await.map_err(|e| e.0.batch)
    }

    /// Room for a batch of `events` events, if there is some now.
    pub fn try_reserve(&self, events: usize) -> Option<Slot> {
        let room = self.room.clone().try_acquire_many_owned(room_for(events)).ok()?;
        let permit = self.inner.clone().try_reserve_owned().ok()?;
        Some(Slot { permit, room })
    }

    pub fn downgrade(&self) -> mpsc::WeakSender<Queued> {
        self.inner.downgrade()
    }

    pub fn max_capacity(&self) -> usize {
        self.inner.max_capacity()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vane_core::event::Event;

    #[tokio::test]
    async fn room_is_bounded_in_events_and_given_back_on_receipt() {
        let (tx, mut rx) = queue(8);
        let big = Batch::from(vec![Event::gauge("x", 1); QUEUE_EVENTS]);
        assert!(tx.send(big).await.is_ok());
        assert!(tx.try_reserve(1).is_none(), "the events bound is reached");
        drop(rx.recv().await.unwrap());
        tx.try_reserve(1).expect("room again").send(Batch::default());
        assert_eq!(rx.recv().await.unwrap().batch.events.len(), 0);
    }
}
