//! The tasks plugins add (`Context::add_task`): each on its own interval,
//! with a timeout of one interval, errors and panics counted on the job.
//! One spawner per instance, so that a restart ends the instance's tasks.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::task::AbortHandle;
use vane_core::lifecycle::Lifecycle;
use vane_core::runtime::{Spawner, Task};
use vane_core::stats::JobStats;

use crate::guard::CatchUnwind;
use crate::ticks::Ticks;

/// Handles of every task of the agent, aborted at shutdown.
pub type AllTasks = Arc<Mutex<Vec<AbortHandle>>>;

/// The runtime's [`Spawner`] for one instance of a job.
pub struct TaskSpawner {
    job: Arc<str>,
    stats: Arc<JobStats>,
    life: Lifecycle,
    own: Mutex<Vec<AbortHandle>>,
    all: AllTasks,
}

impl TaskSpawner {
    pub fn new(job: Arc<str>, stats: Arc<JobStats>, life: Lifecycle, all: AllTasks) -> TaskSpawner {
        TaskSpawner { job, stats, life, own: Mutex::new(Vec::new()), all }
    }

    /// Ends every task this instance added.
    pub fn abort_all(&self) {
        for h in self.own.lock().expect("not poisoned").drain(..) {
            h.abort();
        }
    }
}

impl Spawner for TaskSpawner {
    fn spawn_task(&self, name: String, every: Duration, mut task: Task) {
        let every = every.max(Duration::from_millis(1));
        let (job, stats, life) = (self.job.clone(), self.stats.clone(), self.life.clone());
        let h = tokio::spawn(async move {
            life.ready().await;
            let mut ticks = Ticks::new(every, &life);
            while ticks.next().await {
                stats.polls.fetch_add(1, Relaxed);
                match tokio::time::timeout(every, CatchUnwind(task())).await {
                    Ok(Ok(Ok(()))) => {}
                    Ok(Ok(Err(e))) => {
                        stats.poll_errors.fetch_add(1, Relaxed);
                        stats.report_error(&job, format!("task {name}: {e}"));
                    }
                    Ok(Err(p)) => {
                        stats.panics.fetch_add(1, Relaxed);
                        stats.report_error(&job, format!("task {name} panicked: {p}"));
                    }
                    Err(_) => {
                        stats.poll_timeouts.fetch_add(1, Relaxed);
                        stats.report_error(&job, format!("task {name} timed out after {}", vane_core::Duration(every)));
                    }
                }
            }
        });
        let a = h.abort_handle();
        self.own.lock().expect("not poisoned").push(a.clone());
        self.all.lock().expect("not poisoned").push(a);
    }
}
