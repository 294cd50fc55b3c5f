//! One engine alone (`vane engine ID`): events read from a stream (standard
//! input) are fed to the agent's own engine loop, and what comes out is
//! written to another (standard output) — the Canopsis launcher's role, for
//! debugging an engine in isolation. The engine's `next` is not followed;
//! an engine that no job feeds runs too.

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

use tokio::io::{AsyncRead, AsyncReadExt};
use vane_core::context::Context;
use vane_core::error::{BuildAction, BuildError};
use vane_core::event::{Event, NO_TIME};
use vane_core::instance::Instance;
use vane_core::lineproto::{self, Precision};
use vane_core::registry::{Registry, Role};
use vane_core::runtime::{LifecycleControl, Parts};
use vane_core::stats::JobStats;

use crate::config::Config;
use crate::engine::{BuildEngine, EngineTask, Share};
use crate::queue::{Rx, queue};
use crate::route::{Prepare, Route};
use crate::tasks::{AllTasks, TaskSpawner};

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

/// Why an engine could not run alone.
#[derive(Debug, thiserror::Error)]
pub enum StandaloneError {
    #[error("{0}")]
    Unknown(#[from] crate::config::Unknown),
    #[error("engine `{id}` cannot start: {reason}")]
    Build { id: String, reason: String },
    #[error("reading input: {0}")]
    Read(std::io::Error),
    #[error("writing output: {0}")]
    Write(std::io::Error),
}

/// Runs engine `id` over `input` until it ends; output lines go to `out`,
/// unreadable input lines (with their line number) to `err`.
pub async fn run_engine_stdio<R: AsyncRead + Unpin>(
    config: &Config,
    registry: Arc<Registry>,
    id: &str,
    input: R,
    format: Format,
    out: &mut dyn std::io::Write,
    err: &mut dyn std::io::Write,
) -> Result<Summary, StandaloneError> {
    let job = config.engine(id)?;
    let job = Arc::new(job.clone());
    let host: Arc<str> = Arc::from(config.host.as_str());
    let life = LifecycleControl::default();
    life.set_ready();
    let tasks = AllTasks::default();
    let (stats, input_stats) = (Arc::new(JobStats::default()), Arc::new(JobStats::default()));
    let (in_tx, in_rx) = queue(config.queue_size);
    let (out_tx, out_rx) = queue(config.queue_size);
    let feed = Route::new(Prepare::stamp_only(host.clone(), input_stats.clone()), vec![in_tx], input_stats.clone());
    let route = Arc::new(Route::new(Prepare::new(&job, host.clone(), stats.clone()), vec![out_tx], stats.clone()));
    let ctx = Context::from(Parts {
        job: job.id.clone(),
        plugin: job.plugin.clone(),
        host: host.to_string(),
        data_dir: config.data_dir.clone(),
        config: job.config.clone(),
        stats: stats.clone(),
        lifecycle: life.lifecycle(),
        outlet: route.clone(),
        spawner: Arc::new(TaskSpawner::new(Arc::from(id), stats.clone(), life.lifecycle(), tasks.clone())),
        introspect: None,
        routes: None,
        boards: Arc::default(),
    });
    let j2 = job.clone();
    let build: BuildEngine = Arc::new(move |ctx: &Context| {
        let plugin = registry.find(&j2.plugin, Role::Engine).expect("validated plugin");
        match crate::source::build(|| plugin.build(&j2.config, &j2.path, ctx), ctx)? {
            Instance::Engine(e) => Ok(e),
            other => Err(BuildError::stop(format!("a {} is not an engine", other.role()))),
        }
    });
    let first = match build(&ctx) {
        Ok(e) => Some(e),
        Err(e) if e.action() == BuildAction::Stop => {
            return Err(StandaloneError::Build { id: id.into(), reason: e.to_string() });
        }
        Err(e) => {
            ctx.report_error(format!("cannot be built yet: {e}; retrying"));
            None
        }
    };
    let engine = EngineTask { job, ctx, route, build, share: Share::default() };
    let mut summary = Summary::default();
    let engine_then_stop = async {
        engine.run(first, in_rx).await;
        // What the engine's own tasks hold goes with them.
        life.stop();
        tasks.lock().expect("not poisoned").drain(..).for_each(|t| t.abort());
    };
    let (read, (), written) =
        tokio::join!(read(input, feed, &mut summary, err), engine_then_stop, write(out_rx, format, out));
    read?;
    summary.events_out = written.map_err(StandaloneError::Write)?;
    summary.events_in = stats.events_in.load(Relaxed);
    summary.errors = stats.errors.load(Relaxed);
    Ok(summary)
}

/// Feeds decoded records to the engine: line protocol, and lines starting
/// with `{` as JSON events. A record that cannot be read (not UTF-8, not
/// valid) costs only itself. The engine's queue closes when this returns.
async fn read<R: AsyncRead + Unpin>(
    mut input: R,
    feed: Route,
    summary: &mut Summary,
    err: &mut dyn std::io::Write,
) -> Result<(), StandaloneError> {
    /// A record longer than this is skipped, as the listeners' default.
    const MAX_RECORD: usize = 1 << 20;
    let mut records = lineproto::Records::new(Precision::Nanoseconds, MAX_RECORD).with_json_lines();
    loop {
        let buf = records.buffer();
        if buf.capacity() - buf.len() < 32 << 10 {
            buf.reserve(64 << 10);
        }
        let end = input.read_buf(buf).await.map_err(StandaloneError::Read)? == 0;
        let mut events = Vec::new();
        records.decode(end, NO_TIME, |r| match r {
            Ok(ev) => events.push(ev),
            Err(e) => {
                summary.bad_lines += 1;
                let _ = writeln!(err, "input line {}: column {}: {}", e.line, e.column, e.message);
            }
        });
        if !events.is_empty() {
            feed.deliver(events, Vec::new()).await;
        }
        if end {
            summary.lines = records.lines_read() as u64;
            return Ok(());
        }
    }
}

/// Writes what the engine passes on; the number of events written.
async fn write(mut rx: Rx, format: Format, out: &mut dyn std::io::Write) -> std::io::Result<u64> {
    let mut written = 0;
    let mut text = String::new();
    while let Some(q) = rx.recv().await {
        text.clear();
        for e in &q.batch.events {
            encode(e, format, &mut text);
        }
        written += q.batch.events.len() as u64;
        out.write_all(text.as_bytes())?;
        out.flush()?;
    }
    Ok(written)
}

fn encode(e: &Event, format: Format, text: &mut String) {
    match format {
        Format::Influx => {
            lineproto::encode_into(text, e, Precision::Nanoseconds);
        }
        Format::Json => {
            text.push_str(&vane_core::json::encode(e));
            text.push('\n');
        }
    }
}
