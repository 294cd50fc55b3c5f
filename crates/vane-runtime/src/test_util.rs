//! What the runtime's own tests share.

use tokio::sync::Notify;

/// Resolves once `cond` holds, checked again each time `changed` is notified.
pub async fn until(changed: &Notify, cond: impl Fn() -> bool) {
    loop {
        let notified = changed.notified();
        if cond() {
            return;
        }
        notified.await;
    }
}
