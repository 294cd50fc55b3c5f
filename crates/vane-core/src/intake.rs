//! The memory a process lets its listeners hold for what they took in and
//! the sinks have not stored yet: request bodies, and the events decoded
//! from them. One budget for every request of every listener, so that many
//! clients at once cannot take more than one can: a listener reserves
//! before it reads or decodes, waits a little when the budget is spent, and
//! otherwise refuses the request (HTTP 503) for the client to retry.

use std::sync::OnceLock;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// What the budget is counted in: KiB.
const UNIT: usize = 1024;

/// The whole budget: 128 MiB.
pub const TOTAL: usize = 128 << 20;

/// What an event decoded from text costs, counted high: the event, its
/// name, tags and fields on the heap.
pub const EVENT_COST: usize = 512;

/// How long a request may wait for room before it is refused.
pub const WAIT: Duration = Duration::from_secs(2);

fn budget() -> &'static std::sync::Arc<Semaphore> {
    static B: OnceLock<std::sync::Arc<Semaphore>> = OnceLock::new();
    B.get_or_init(|| std::sync::Arc::new(Semaphore::new(TOTAL / UNIT)))
}

/// Room held until dropped.
#[derive(Debug)]
pub struct Room(#[allow(dead_code, reason = "held for its drop")] OwnedSemaphorePermit);

/// Room for `bytes` (at most the whole budget), waiting up to [`WAIT`]; none
/// when the budget stays spent.
pub async fn reserve(bytes: usize) -> Option<Room> {
    let units = bytes.div_ceil(UNIT).clamp(1, TOTAL / UNIT) as u32;
    let take = budget().clone().acquire_many_owned(units);
    match tokio::time::timeout(WAIT, take).await {
        Ok(Ok(p)) => Some(Room(p)),
        _ => None,
    }
}

/// Room for `events` decoded events.
pub async fn reserve_events(events: usize) -> Option<Room> {
    reserve(events.saturating_mul(EVENT_COST)).await
}

/// The budget not reserved now, in bytes.
pub fn available() -> usize {
    budget().available_permits() * UNIT
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn room_is_shared_waited_for_and_given_back() {
        let before = available();
        let all = reserve(TOTAL).await.expect("the whole budget");
        assert_eq!(available(), before - TOTAL);
        // Spent: a request waits, then is refused.
        let t = std::time::Instant::now();
        assert!(reserve(1).await.is_none());
        assert!(t.elapsed() >= WAIT);
        // Given back while one waits: it gets its room.
        let waiting = tokio::spawn(reserve_events(10));
        drop(all);
        assert!(waiting.await.unwrap().is_some());
        assert_eq!(available(), before);
    }
}
