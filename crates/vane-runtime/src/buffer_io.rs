//! Where a sink's buffer operations run. A memory buffer's run in place; a
//! disk buffer's run on tokio's blocking threads, one at a time, so a full,
//! slow or frozen disk stalls only the sink whose buffer it holds: the
//! runtime's workers (every other job, `/health`, the shutdown) go on. The
//! operation under way is stamped in the job's `buffer_busy_since`, which
//! `/health` and the `internal` source read to name a stalled buffer.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use vane_core::context::Context;
use vane_core::stats::JobStats;

use crate::buffer::Store;

/// A sink's buffer, as its task and the agent share it: a sink rebuilt by
/// a reload takes over its predecessor's.
pub type SharedStore = Arc<Mutex<Box<dyn Store>>>;

/// A buffer, run where its I/O cannot stall the runtime.
pub struct BufferIo {
    store: SharedStore,
    ctx: Context,
    /// Whether operations touch a disk (and so run on a blocking thread).
    offload: bool,
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64).max(1)
}

/// How long the job's buffer operation under way has run (zero when none is).
pub fn stalled_for(stats: &JobStats) -> Duration {
    match stats.buffer_busy_since.load(Relaxed) {
        0 => Duration::ZERO,
        since => Duration::from_millis(now_ms().saturating_sub(since)),
    }
}

impl BufferIo {
    /// `ctx` is the sink's, whose figures the operations stamp.
    pub fn new(store: Box<dyn Store>, ctx: Context) -> BufferIo {
        BufferIo::shared(Arc::new(Mutex::new(store)), ctx)
    }

    /// Runs operations on a buffer the agent holds too.
    pub fn shared(store: SharedStore, ctx: Context) -> BufferIo {
        let offload = store.lock().expect("not poisoned").durable();
        BufferIo { store, ctx, offload }
    }

    /// Runs `f` on the buffer, after the operations before it.
    pub async fn run<R: Send + 'static>(&self, f: impl FnOnce(&mut dyn Store) -> R + Send + 'static) -> R {
        if !self.offload {
            return f(&mut **self.store.lock().expect("not poisoned"));
        }
        let (store, ctx) = (self.store.clone(), self.ctx.clone());
        let op = tokio::task::spawn_blocking(move || {
            let mut s = store.lock().expect("not poisoned");
            let busy = &ctx.stats().buffer_busy_since;
            busy.store(now_ms(), Relaxed);
            let r = f(&mut **s);
            busy.store(0, Relaxed);
            r
        });
        match op.await {
            Ok(r) => r,
            Err(e) => std::panic::resume_unwind(e.into_panic()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::buffer::{Disk, Memory, WhenFull};
    use vane_core::event::Event;
    use vane_core::node::Node;
    use vane_core::testing::Harness;

    fn context() -> Context {
        Harness::with("buf", "h", std::env::temp_dir(), Node::null(Default::default()), None).context().clone()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn a_stalled_disk_operation_leaves_the_runtime_free_and_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let ctx = context();
        let stats = ctx.stats();
        let disk = Disk::open(dir.path(), 1 << 20, WhenFull::Block).unwrap();
        let io = Arc::new(BufferIo::new(Box::new(disk), ctx.clone()));
        let (release, held) = std::sync::mpsc::channel::<()>();
        let stalled = tokio::spawn({
            let io = io.clone();
            // Stands for a write to a frozen disk: it returns when released.
            async move { io.run(move |_| held.recv().unwrap()).await }
        });
        // The one worker thread still runs other tasks meanwhile.
        let other = tokio::spawn(async { 42 }).await.unwrap();
        assert_eq!(other, 42);
        while stats.buffer_busy_since.load(Relaxed) == 0 {
            tokio::task::yield_now().await;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(stalled_for(stats) >= Duration::from_millis(20));
        release.send(()).unwrap();
        stalled.await.unwrap();
        assert_eq!(stalled_for(stats), Duration::ZERO);
        let n = io.run(|s| s.push(vec![Event::new("m").field("v", 1.0)]).map(|_| s.events())).await.unwrap();
        assert_eq!(n, 1);
    }

    #[tokio::test]
    async fn a_memory_buffer_runs_in_place() {
        let io = BufferIo::new(Box::new(Memory::new(1 << 20, WhenFull::Block)), context());
        assert!(!io.offload);
        assert_eq!(io.run(|s| s.events()).await, 0);
    }
}
