//! The Telemetry Agent's `random` plugin, registered as
//! `com.telemetryapp.random`: it gets or creates its board from the
//! template it ships (a name and a prefix from the config, so one template
//! serves many boards), and its tasks, each on its own interval, post to
//! the board's flows; the board shows the last post of each flow once per
//! submission interval. Needs a `board` sink in the config.

use serde::Deserialize;
use vane_core::prelude::*;

/// Settings of `com.telemetryapp.random`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RandomConfig {
    pub board: String,
    /// Put before every flow's tag, so one template serves many boards.
    #[serde(default)]
    pub prefix: String,
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
        let template = include_str!("telemetry_random.yaml");
        let board = ctx.board(&c.board, &c.prefix, template, "com.telemetryapp.random").map_err(BuildError::stop)?;
        for (i, (tag, ms)) in [("value_x", 1500), ("value_y", 5000), ("value_z", 250)].into_iter().enumerate() {
            let (board, mut seed) = (board.clone(), 0x9e37_79b9_7f4a_7c15u64.wrapping_add(i as u64));
            ctx.add_task(tag, std::time::Duration::from_millis(ms), move |_| {
                let posted = board.post(tag, serde_json::json!({ "value": next(&mut seed) }));
                async move { posted.map_err(SourceError::stop) }
            });
        }
        Ok(Random)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vane_core::testing::Harness;
    use vane_plugins::board::{checks::Checks, history, set::BoardSet};

    #[tokio::test]
    async fn its_tasks_fill_the_board_it_creates() {
        let config = || RandomConfig { board: "Random".into(), prefix: "r_".into() };
        let h = Harness::new("random");
        let e = Random::build(config(), h.context()).err().unwrap();
        assert!(e.to_string().contains("no board sink"), "{e}");
        let dir = tempfile::tempdir().unwrap();
        let boards = BoardSet::new(dir.path().join("boards"));
        assert!(h.context().offer_boards(boards.clone()));
        Random::build(config(), h.context()).unwrap();
        h.run_tasks_once().await;
        let raw = history::TierSpec { step: std::time::Duration::ZERO, keep: std::time::Duration::from_secs(60) };
        let history = history::History::open(&dir.path().join("h"), &[raw], 10, std::time::Duration::from_secs(1));
        assert!(boards.submit(&history.unwrap(), &Checks::default()).is_empty());
        let b = boards.snapshot("random").unwrap();
        for w in b["widgets"].as_array().unwrap() {
            assert!(w["data"]["value"].as_f64().is_some_and(|v| (0.0..10_000.0).contains(&v)), "{w}");
            assert!(w["flow"].as_str().unwrap().starts_with("r_value_"));
        }
    }
}
