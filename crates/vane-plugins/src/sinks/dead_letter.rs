//! Where a sink keeps what its backend refused for good: a file (by
//! default `DATA_DIR/deadletter/JOB.lp`) of the refused text, each piece
//! after a `#` line with the time and the reason; its events are counted
//! as dropped.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering::Relaxed;

use vane_core::prelude::*;

/// A sink's dead-letter file.
pub struct DeadLetter(PathBuf);

impl DeadLetter {
    /// The configured file, or the job's default one.
    pub fn new(configured: Option<PathBuf>, ctx: &Context) -> DeadLetter {
        DeadLetter(
            configured.unwrap_or_else(|| ctx.agent_data_dir().join("deadletter").join(format!("{}.lp", ctx.job()))),
        )
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    /// Appends `text` (one event a line) refused for `reason`.
    pub fn keep(&self, text: &str, reason: &str, ctx: &Context) -> std::io::Result<()> {
        if let Some(dir) = self.0.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let mut f = std::fs::OpenOptions::new().create(true).append(true).open(&self.0)?;
        writeln!(f, "# {} rejected: {}", vane_core::event::now_ns(), reason.replace('\n', " "))?;
        f.write_all(text.as_bytes())?;
        if !text.ends_with('\n') {
            f.write_all(b"\n")?;
        }
        ctx.stats().events_dropped.fetch_add(text.lines().count() as u64, Relaxed);
        Ok(())
    }
}
