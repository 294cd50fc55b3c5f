//! The agent's lifecycle as a plugin sees it: ready once every job is built
//! and every sink prepared, then stopping.

use tokio::sync::watch;

/// The agent's lifecycle as a plugin sees it. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Lifecycle {
    pub(crate) ready: watch::Receiver<bool>,
    pub(crate) stop: watch::Receiver<bool>,
}

impl Lifecycle {
    /// Resolves once every job is built and every sink prepared.
    pub async fn ready(&self) {
        let mut r = self.ready.clone();
        let _ = r.wait_for(|v| *v).await;
    }

    /// Resolves when the agent starts stopping.
    pub async fn stopping(&self) {
        let mut s = self.stop.clone();
        let _ = s.wait_for(|v| *v).await;
    }

    pub fn is_ready(&self) -> bool {
        *self.ready.borrow()
    }

    pub fn is_stopping(&self) -> bool {
        *self.stop.borrow()
    }
}
