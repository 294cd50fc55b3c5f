//! What one Lua call may spend: instructions (counted by a hook every
//! thousand, and charged by vane's own string functions for the work they
//! do in Rust), wall-clock time, and, for sources, the agent's running.
//! Once spent, it stays spent until the next call: every further charge
//! fails, so no `pcall`, coroutine or handler can go on after it.

use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, AtomicU8, AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use vane_core::lifecycle::Lifecycle;

/// Bytes a string function may produce for the cost of one instruction
/// (copying 64 bytes takes about as long as running one instruction).
pub const BYTES_PER_INSTRUCTION: u64 = 64;

const LEFT: u8 = 0;
const INSTRUCTIONS: u8 = 1;
const TIME: u8 = 2;
const STOPPING: u8 = 3;

/// The budget of the running call.
pub struct Budget {
    left: AtomicI64,
    limit: AtomicI64,
    epoch: Instant,
    /// When the running call was first charged, in nanoseconds since
    /// `epoch` (0: not yet). Read at the first charge rather than at the
    /// start, so that a short call reads no clock (on a virtual machine
    /// without a stable TSC, a clock read is a system call).
    started: AtomicU64,
    timeout: Duration,
    spent: AtomicU8,
    /// Set for calls that end when the agent stops.
    stop: Mutex<Option<Lifecycle>>,
}

impl Budget {
    pub fn new(timeout: Duration) -> Budget {
        Budget {
            left: AtomicI64::new(0),
            limit: AtomicI64::new(0),
            epoch: Instant::now(),
            started: AtomicU64::new(0),
            timeout,
            spent: AtomicU8::new(LEFT),
            stop: Mutex::new(None),
        }
    }

    /// A new call: `instructions` to spend within the timeout; it also ends
    /// when `stop` says the agent is stopping.
    pub fn start(&self, instructions: u64, stop: Option<Lifecycle>) {
        let n = instructions.min(i64::MAX as u64) as i64;
        self.left.store(n, Relaxed);
        self.limit.store(n, Relaxed);
        self.started.store(0, Relaxed);
        self.spent.store(LEFT, Relaxed);
        *self.stop.lock().expect("not poisoned") = stop;
    }

    /// Charges `n` instructions: false once the call must end.
    pub fn charge(&self, n: u64) -> bool {
        if self.spent.load(Relaxed) != LEFT {
            return false;
        }
        let n = n.min(i64::MAX as u64) as i64;
        let why = if self.left.fetch_sub(n, Relaxed) <= n {
            INSTRUCTIONS
        } else if self.elapsed() > self.timeout {
            TIME
        } else if self.stop.lock().expect("not poisoned").as_ref().is_some_and(Lifecycle::is_stopping) {
            STOPPING
        } else {
            return true;
        };
        self.spent.store(why, Relaxed);
        false
    }

    /// Whether the running call has spent its budget.
    pub fn spent(&self) -> bool {
        self.spent.load(Relaxed) != LEFT
    }

    /// Time since the call was first charged.
    fn elapsed(&self) -> Duration {
        let now = (self.epoch.elapsed().as_nanos() as u64).max(1);
        match self.started.load(Relaxed) {
            0 => {
                self.started.store(now, Relaxed);
                Duration::ZERO
            }
            started => Duration::from_nanos(now.saturating_sub(started)),
        }
    }

    /// The error ending a call whose budget is spent.
    pub fn error(&self) -> mlua::Error {
        let why = match self.spent.load(Relaxed) {
            TIME => format!("time limit of {:?} exceeded (a runaway script?)", self.timeout),
            STOPPING => "stopped: the agent is stopping".to_owned(),
            _ => format!("instruction budget of {} exceeded (a runaway script?)", self.limit.load(Relaxed)),
        };
        mlua::Error::RuntimeError(why)
    }

    /// Charges `n`, or the error ending the call.
    pub fn take(&self, n: u64) -> mlua::Result<()> {
        if self.charge(n) { Ok(()) } else { Err(self.error()) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vane_core::runtime::LifecycleControl;

    #[test]
    fn once_spent_every_charge_fails_until_the_next_call() {
        let b = Budget::new(Duration::from_secs(60));
        b.start(2000, None);
        assert!(b.charge(1000));
        assert!(!b.charge(1000));
        assert!(!b.charge(0), "spent stays spent");
        assert!(b.error().to_string().contains("instruction budget of 2000"));
        b.start(2000, None);
        assert!(b.charge(10) && !b.spent());
    }

    #[test]
    fn time_and_stopping_end_a_call_too() {
        let b = Budget::new(Duration::ZERO);
        b.start(1 << 40, None);
        assert!(b.charge(1), "the first charge starts the clock");
        std::thread::sleep(Duration::from_millis(2));
        assert!(!b.charge(1));
        assert!(b.error().to_string().contains("time limit"));
        let life = LifecycleControl::default();
        let b = Budget::new(Duration::from_secs(60));
        b.start(1 << 40, Some(life.lifecycle()));
        assert!(b.charge(1));
        life.stop();
        assert!(!b.charge(1));
        assert!(b.error().to_string().contains("stopping"));
    }
}
