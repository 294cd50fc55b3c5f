//! Isolation helpers: catching a plugin's panic inside a future or a call,
//! and the backoff between attempts.

use std::any::Any;
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

/// A plugin's panic, with its message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Panic(pub String);

/// Resolves to `Err(Panic)` if polling the inner future panics.
pub struct CatchUnwind<F>(pub F);

impl<F: Future + Unpin> Future for CatchUnwind<F> {
    type Output = Result<F::Output, Panic>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let inner = &mut self.0;
        match catch_unwind(AssertUnwindSafe(|| Pin::new(inner).poll(cx))) {
            Ok(Poll::Ready(v)) => Poll::Ready(Ok(v)),
            Ok(Poll::Pending) => Poll::Pending,
            Err(p) => Poll::Ready(Err(Panic(panic_message(p)))),
        }
    }
}

/// Runs a synchronous plugin call, turning a panic into an error message.
pub fn catch<T>(f: impl FnOnce() -> T) -> Result<T, Panic> {
    catch_unwind(AssertUnwindSafe(f)).map_err(|p| Panic(panic_message(p)))
}

pub fn panic_message(p: Box<dyn Any + Send>) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "panic with a non-text payload".into()
    }
}

/// Exponential backoff with ±20 % jitter, so that jobs restarted together
/// do not move in lockstep: the one backoff of the runtime (restarts,
/// rebuilds, sink retries, prepares).
#[derive(Debug)]
pub struct Backoff {
    first: Duration,
    max: Duration,
    next: Duration,
    random: vane_core::random::XorShift,
}

impl Default for Backoff {
    /// 1 s, 2 s, 4 s … up to 60 s: between rebuilds of a failed instance.
    fn default() -> Self {
        Backoff::new(Duration::from_secs(1), Duration::from_secs(60))
    }
}

impl Backoff {
    /// Starting at `first`, doubling up to `max`.
    pub fn new(first: Duration, max: Duration) -> Backoff {
        static SEEDS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0x9e37_79b9_7f4a_7c15);
        let seed = SEEDS.fetch_add(0x6a09_e667_f3bc_c909, std::sync::atomic::Ordering::Relaxed) | 1;
        Backoff { first, max, next: first, random: vane_core::random::XorShift::new(seed) }
    }

    /// The next wait; grows until reset.
    pub fn next_wait(&mut self) -> Duration {
        let base = self.next;
        self.next = (self.next * 2).min(self.max);
        let jitter = (self.random.next_u64() % 400) as f64 / 1000.0 - 0.2;
        base.mul_f64(1.0 + jitter)
    }

    pub fn reset(&mut self) {
        self.next = self.first;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn catches_a_panicking_future() {
        let f: Pin<Box<dyn Future<Output = u8> + Send>> = Box::pin(async { panic!("boom") });
        assert_eq!(CatchUnwind(f).await, Err(Panic("boom".to_owned())));
        let f: Pin<Box<dyn Future<Output = u8> + Send>> = Box::pin(async { 3 });
        assert_eq!(CatchUnwind(f).await, Ok(3));
    }

    #[test]
    fn backoff_grows_and_is_bounded() {
        let mut b = Backoff::default();
        let waits: Vec<_> = (0..10).map(|_| b.next_wait()).collect();
        assert!(waits[0] >= Duration::from_millis(800) && waits[0] <= Duration::from_millis(1200));
        assert!(waits[3] > waits[1]);
        assert!(waits.iter().all(|w| *w <= Duration::from_secs(72)));
        b.reset();
        assert!(b.next_wait() <= Duration::from_millis(1200));
        let mut fast = Backoff::new(Duration::from_millis(100), Duration::from_secs(30));
        let waits: Vec<_> = (0..12).map(|_| fast.next_wait()).collect();
        assert!(waits[0] >= Duration::from_millis(80) && waits[0] <= Duration::from_millis(120));
        assert!(waits.iter().all(|w| *w <= Duration::from_secs(36)));
    }
}
