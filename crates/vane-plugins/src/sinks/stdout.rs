//! Writes events to standard output, as line protocol or JSON.

use serde::Deserialize;
use tokio::io::AsyncWriteExt;
use vane_core::prelude::*;

use super::{Format, OutPrecision, encode_batch};

/// Settings of the `stdout` sink.
#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
pub struct StdoutConfig {
    /// `influx` (line protocol) or `json`. Default: influx.
    #[serde(default)]
    pub format: Format,
    /// Timestamp precision of line protocol: ns, us, ms or s. Default: ns.
    #[serde(default)]
    pub precision: OutPrecision,
}

pub struct Stdout {
    cfg: StdoutConfig,
    out: tokio::io::Stdout,
    buf: String,
}

impl Sink for Stdout {
    async fn send(&mut self, batch: &[Event], ctx: &Context) -> Result<(), SinkError> {
        encode_batch(ctx, &mut self.buf, batch, self.cfg.format, self.cfg.precision.into());
        self.out.write_all(self.buf.as_bytes()).await?;
        self.out.flush().await?;
        Ok(())
    }
}

impl Build for Stdout {
    type Config = StdoutConfig;

    fn build(cfg: StdoutConfig, _: &Context) -> Result<Self, BuildError> {
        Ok(Stdout { cfg, out: tokio::io::stdout(), buf: String::new() })
    }
}
