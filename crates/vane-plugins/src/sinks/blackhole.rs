//! The `blackhole` sink: takes every batch and keeps nothing (for
//! benchmarks and for trying a pipeline). What it took shows in the
//! `internal` source as the job's `events_in`.

use serde::Deserialize;
use vane_core::prelude::*;

/// Settings of the `blackhole` sink: none.
#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
pub struct BlackholeConfig {}

pub struct Blackhole;

impl Sink for Blackhole {
    async fn send(&mut self, _: &[Event], _: &Context) -> Result<(), SinkError> {
        Ok(())
    }
}

impl Build for Blackhole {
    type Config = BlackholeConfig;

    fn build(_: BlackholeConfig, _: &Context) -> Result<Self, BuildError> {
        Ok(Blackhole)
    }
}
