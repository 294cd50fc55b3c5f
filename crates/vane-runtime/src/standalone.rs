//! One engine alone, fed from a stream of lines (standard input) and
//! writing to another (standard output): the Canopsis launcher's role, for
//! debugging an engine in isolation. The same loop of `process` and `beat`
//! serves here as inside the agent; a message-queue worker slots in as
//! another input.

use std::time::Duration;

use tokio::io::{AsyncBufRead, AsyncBufReadExt};
use vane_core::event::{Event, now_ns};
use vane_core::lineproto::{self, Precision};
use vane_core::registry::{Instance, Registry};

use crate::config::{Config, Section};
use crate::pipeline::apply_levels;

/// How `vane engine` writes its output.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Influx,
    Json,
}

/// What a standalone run did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Summary {
    pub lines: u64,
    pub events_in: u64,
    pub events_out: u64,
    pub bad_lines: u64,
    pub errors: u64,
}

/// Runs engine `id` over `input` until it ends; output lines go to `out`,
/// problems (with their input line number) to `err`.
pub async fn run_engine_stdio<R: AsyncBufRead + Unpin>(
    config: &Config,
    registry: &Registry,
    id: &str,
    input: R,
    format: Format,
    out: &mut dyn std::io::Write,
    err: &mut dyn std::io::Write,
) -> Result<Summary, String> {
    let job = config
        .job(id)
        .filter(|j| j.section == Section::Engines)
        .ok_or_else(|| {
            let ids: Vec<&str> = config
                .jobs
                .iter()
                .filter(|j| j.section == Section::Engines)
                .map(|j| j.id.as_str())
                .collect();
            format!("no engine with id `{id}`; engines: {}", ids.join(", "))
        })?;
    let plugin = registry
        .find(&job.plugin, job.section.family())
        .ok_or("unknown plugin")?;
    let h = vane_core::testing::Harness::with(
        &job.id,
        &config.host,
        config.data_dir.clone(),
        job.config.clone(),
        None,
    );
    let ctx = h.context().clone();
    let Instance::Engine(mut engine) = plugin
        .build(&job.config, &job.path, &ctx)
        .map_err(|e| e.to_string())?
    else {
        return Err("not an engine".into());
    };
    let beat = job.beat.or_else(|| engine.default_beat());
    let mut ticker = tokio::time::interval(beat.unwrap_or(Duration::from_secs(3600)));
    ticker.tick().await;
    let levels = job.levels.clone();
    let stats = ctx.stats_arc().clone();
    let mut summary = Summary::default();
    let mut lines = input.lines();
    let mut produced = Vec::new();
    let mut emit = |events: &mut Vec<Event>, summary: &mut Summary| -> std::io::Result<()> {
        let now = now_ns();
        let mut text = String::new();
        for mut e in events.drain(..) {
            e.stamp(now, &config.host);
            if let Some(l) = &levels {
                apply_levels(l, &mut e, &stats);
            }
            summary.events_out += 1;
            match format {
                Format::Influx => {
                    lineproto::encode_into(&mut text, &e, Precision::Nanoseconds);
                }
                Format::Json => {
                    text.push_str(&vane_core::json::encode(&e));
                    text.push('\n');
                }
            }
        }
        out.write_all(text.as_bytes())?;
        out.flush()
    };
    loop {
        tokio::select! {
            line = lines.next_line() => {
                let Some(line) = line.map_err(|e| format!("reading input: {e}"))? else { break };
                summary.lines += 1;
                let t = line.trim();
                if t.is_empty() || t.starts_with('#') {
                    continue;
                }
                let parsed = if t.starts_with('{') {
                    vane_core::json::decode(t).map_err(|e| e.to_string())
                } else {
                    lineproto::decode_line(t, Precision::Nanoseconds).map_err(|e| {
                        format!("column {}: {}", e.column, e.message)
                    })
                };
                let mut ev = match parsed {
                    Ok(ev) => ev,
                    Err(e) => {
                        summary.bad_lines += 1;
                        let _ = writeln!(err, "input line {}: {e}", summary.lines);
                        continue;
                    }
                };
                ev.stamp(now_ns(), &config.host);
                summary.events_in += 1;
                if let Err(e) = crate::guard::catch(|| engine.process(ev, &mut produced))
                    .map_err(|p| format!("panicked: {p}"))
                    .and_then(|r| r.map_err(|e| e.to_string()))
                {
                    summary.errors += 1;
                    let _ = writeln!(err, "input line {}: {e}", summary.lines);
                }
            }
            _ = ticker.tick(), if beat.is_some() => {
                if let Err(e) = engine.beat(&mut produced) {
                    summary.errors += 1;
                    let _ = writeln!(err, "beat: {e}");
                }
            }
        }
        produced.extend(h.take_emitted());
        emit(&mut produced, &mut summary).map_err(|e| format!("writing output: {e}"))?;
    }
    // Whatever is pending (open windows, coalesced series) goes out at the end.
    if beat.is_some()
        && let Err(e) = engine.beat(&mut produced)
    {
        summary.errors += 1;
        let _ = writeln!(err, "beat: {e}");
    }
    produced.extend(h.take_emitted());
    emit(&mut produced, &mut summary).map_err(|e| format!("writing output: {e}"))?;
    Ok(summary)
}
