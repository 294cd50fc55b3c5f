//! The clock of every loop that runs something on an interval (a source's
//! polls, a plugin's tasks): ticks, missed ones skipped, until the agent
//! stops — and a way to cut a call short when it does.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use tokio::time::{Interval, MissedTickBehavior};
use vane_core::lifecycle::Lifecycle;

/// Ticks every interval until the agent stops.
pub struct Ticks<'a> {
    ticker: Interval,
    /// One stop future for the loop's life: making one for every tick costs
    /// more than the poll of a trivial source.
    stop: Pin<Box<dyn Future<Output = ()> + Send + 'a>>,
}

impl<'a> Ticks<'a> {
    pub fn new(every: Duration, life: &'a Lifecycle) -> Ticks<'a> {
        let mut ticker = tokio::time::interval(every);
        ticker.set_missed_tick_behavior(MissedTickBehavior::Skip);
        Ticks { ticker, stop: Box::pin(life.stopping()) }
    }

    /// Waits for the next tick; false once the agent stops.
    pub async fn next(&mut self) -> bool {
        tokio::select! {
            biased;
            _ = &mut self.stop => false,
            _ = self.ticker.tick() => true,
        }
    }

    /// Runs `f` unless the agent stops first (then `None`).
    pub async fn or_stop<F: Future>(&mut self, f: F) -> Option<F::Output> {
        tokio::select! {
            biased;
            _ = &mut self.stop => None,
            r = f => Some(r),
        }
    }
}
