//! The agent's own figures: events in, out and dropped, errors, panics,
//! restarts and poll times per job; queue depths; the agent's RSS and uptime.

use serde::Deserialize;
use vane_core::event::now_ns;
use vane_core::prelude::*;

/// Settings of the `internal` source.
#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
pub struct InternalConfig {}

/// Reports `vane_job`, `vane_plugin` (a plugin's own figures), `vane_queue` and `vane_agent` events.
pub struct Internal;

impl Source for Internal {
    async fn poll(&mut self, ctx: &Context) -> Result<Vec<Event>> {
        match ctx.introspect() {
            Some(i) => Ok(i.report(now_ns())),
            None => Err("the runtime offers no figures here".into()),
        }
    }
}

impl Build for Internal {
    type Config = InternalConfig;

    fn build(_: InternalConfig, _: &Context) -> Result<Self, BuildError> {
        Ok(Internal)
    }
}
