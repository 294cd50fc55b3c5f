//! `vane test JOB`: one source polled once, the tasks it adds run once each,
//! and its events prepared exactly as the agent prepares them.

use std::sync::Arc;
use std::time::Duration;

use vane_core::event::Event;
use vane_core::instance::Instance;
use vane_core::registry::{Registry, Role};
use vane_core::runtime::Introspect;
use vane_core::testing::Harness;

use crate::config::Config;
use crate::introspect::Introspection;
use crate::route::Prepare;

/// Why a source could not be polled once.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error("{0}")]
    Unknown(#[from] crate::config::Unknown),
    #[error("`{id}` is a {role}, not a source; `vane test` polls sources")]
    NotASource { id: String, role: Role },
    #[error("`{id}` uses `{plugin}`, a long-running source; `vane test` polls polled sources only")]
    LongRunning { id: String, plugin: String },
    #[error("cannot start: {0}")]
    Build(String),
    #[error("poll timed out after {}", vane_core::Duration(*.0))]
    Timeout(Duration),
    #[error("poll failed: {0}")]
    Poll(String),
}

/// Polls source `id` once: the events it returned or emitted, then those
/// its added tasks emitted, prepared (stamped, tagged, judged).
pub async fn poll_once(config: &Config, registry: &Registry, id: &str) -> Result<Vec<Event>, ProbeError> {
    let job = config.source(id).map_err(|unknown| match config.role_of(id) {
        Some(role) => ProbeError::NotASource { id: id.into(), role },
        None => ProbeError::Unknown(unknown),
    })?;
    let plugin = registry.find(&job.plugin, Role::Source).expect("validated plugin");
    let introspect: Arc<dyn Introspect> = Arc::new(Introspection::new(vec![]));
    let h = Harness::with(&job.id, &config.host, config.data_dir.clone(), job.config.clone(), Some(introspect));
    let inst = plugin.build(&job.config, &job.path, h.context()).map_err(|e| ProbeError::Build(e.to_string()))?;
    let mut events = match inst {
        Instance::Source(mut s) => tokio::time::timeout(job.spec.timeout, h.poll(&mut *s))
            .await
            .map_err(|_| ProbeError::Timeout(job.spec.timeout))?
            .map_err(|e| ProbeError::Poll(e.to_string()))?,
        _ => {
            return Err(ProbeError::LongRunning { id: id.into(), plugin: job.plugin.clone() });
        }
    };
    h.run_tasks_once().await;
    events.extend(h.take_emitted());
    let stats = Arc::new(vane_core::stats::JobStats::default());
    Prepare::new(job, Arc::from(config.host.as_str()), stats).apply(&mut events);
    Ok(events)
}
