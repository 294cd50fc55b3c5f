//! The Telemetry Agent's `random` plugin, registered as
//! `com.telemetryapp.random`: several tasks, each on its own interval,
//! each filling one flow of a board. Updates are coalesced per submission
//! interval by a `coalesce` engine after it (see the example config).

use serde::Deserialize;
use vane_core::prelude::*;

/// The board the flows belong to.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Board {
    pub name: String,
    /// Put before every flow's name, so one template serves many boards.
    pub prefix: String,
}

/// Settings of `com.telemetryapp.random`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RandomConfig {
    pub board: Board,
}

pub struct Random;

/// A small xorshift generator; good enough for a demo flow.
fn next(seed: &mut u64) -> f64 {
    *seed ^= *seed << 13;
    *seed ^= *seed >> 7;
    *seed ^= *seed << 17;
    (*seed % 10_000) as f64
}

impl Source for Random {
    /// All the work is in the tasks.
    async fn poll(&mut self, _: &Context) -> Result<Vec<Event>> {
        Ok(vec![])
    }
}

impl Build for Random {
    type Config = RandomConfig;

    fn build(c: RandomConfig, ctx: &Context) -> Result<Self, BuildError> {
        let flows = [("value_x", 1500), ("value_y", 5000), ("value_z", 250)];
        for (i, (flow, ms)) in flows.into_iter().enumerate() {
            let name = format!("{}{flow}", c.board.prefix);
            let board = c.board.name.clone();
            let mut seed = 0x9e37_79b9_7f4a_7c15u64.wrapping_add(i as u64);
            ctx.add_task(flow, std::time::Duration::from_millis(ms), move |ctx| {
                let ev = Event::gauge(name.clone(), next(&mut seed)).tag("board", board.clone());
                async move {
                    ctx.emit(ev).await;
                    Ok(())
                }
            });
        }
        Ok(Random)
    }
}
