//! The config file as written: the `agent:` block and one type per section,
//! each flattening the parts it shares with the others, so that a key that
//! means nothing in a section is an unknown key there, with its position.

use std::path::PathBuf;

use serde::Deserialize;
use vane_core::node::{Flat, Node, Spanned};
use vane_core::{ByteSize, Duration};

use crate::buffer::BufferConfig;

/// One config file, as written.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct File {
    pub agent: Option<Spanned<AgentConfig>>,
    #[serde(default)]
    pub sources: Vec<SourceSection>,
    /// The older name of `sources`.
    #[serde(default)]
    pub jobs: Vec<SourceSection>,
    #[serde(default)]
    pub engines: Vec<EngineSection>,
    #[serde(default)]
    pub sinks: Vec<SinkSection>,
}

/// Settings of the agent itself.
#[derive(Deserialize, Default, Clone, Debug)]
#[serde(deny_unknown_fields)]
pub struct AgentConfig {
    /// Host name stamped on events without one. Default: the machine's host name.
    pub host: Option<String>,
    /// Folder for durable state. Default: /var/lib/vane as root, else ~/.local/state/vane.
    pub data_dir: Option<PathBuf>,
    /// Interval of sources that set none. Default: 10s.
    pub interval: Option<Duration>,
    /// Capacity of each engine's and sink's queue, in batches. Default: 1024.
    pub queue_size: Option<usize>,
    /// How long sources, engines and sinks get to finish at shutdown. Default: 5s.
    pub shutdown_timeout: Option<Duration>,
    /// Worker threads. Default: one per core.
    pub threads: Option<usize>,
    /// The agent's HTTP port (`/health`, and routes like `/metrics`). Default: none.
    pub http: Option<vane_core::listen::TcpListen>,
    /// Reload when the config file or a `conf.d/*.yaml` file changes (looked
    /// at every second), as at SIGHUP. Default: false.
    pub watch: Option<bool>,
}

/// A job under `sources:`.
pub type SourceSection = Flat<Common, Flat<Flow, SourceKeys>>;
/// A job under `engines:`.
pub type EngineSection = Flat<Common, Flat<Flow, EngineKeys>>;
/// A job under `sinks:`.
pub type SinkSection = Flat<Common, SinkKeys>;

/// What every job has: one configured plugin instance.
#[derive(Deserialize, Clone, Debug)]
pub struct Common {
    /// Unique across sources, engines and sinks (all files).
    pub id: Spanned<String>,
    /// The plugin's registered name (`vane plugins` lists them).
    pub plugin: Spanned<String>,
    /// The plugin's own settings.
    pub config: Option<Node>,
}

/// What sources and engines have: where their events go and what they add.
#[derive(Deserialize, Clone, Debug)]
pub struct Flow {
    /// Where events go: one id or a list of engine and sink ids. Default: every sink.
    pub next: Option<Node>,
    /// Tags added to every event of this job.
    pub tags: Option<Node>,
    /// Level expressions: the first that holds sets the state.
    pub critical: Option<Node>,
    pub warning: Option<Node>,
    pub ok: Option<Node>,
}

/// What only sources have.
#[derive(Deserialize, Clone, Debug)]
pub struct SourceKeys {
    /// Poll interval. Default: `agent.interval`.
    pub interval: Option<Duration>,
    /// Per-poll timeout. Default: the interval.
    pub timeout: Option<Duration>,
}

/// What only engines have.
#[derive(Deserialize, Clone, Debug)]
pub struct EngineKeys {
    /// Beat interval. Default: the engine's own, or none.
    pub beat: Option<Duration>,
    /// Parallel instances; events are split by series. Default: 1.
    pub workers: Option<usize>,
    /// Run by workers elsewhere (`vane engine ID --worker`), fed through a
    /// message bus: this agent publishes what the engine would get.
    pub via: Option<Via>,
}

/// How a bus-backed engine is reached.
#[derive(Deserialize, Clone, Debug)]
#[serde(deny_unknown_fields)]
pub struct Via {
    /// A plugin that is a sink and a source of the bus (`amqp`).
    pub plugin: Spanned<String>,
    /// Its settings, given to both sides (the broker's, the queue's; the
    /// queue defaults to `vane.engine.ID`).
    pub config: Option<Node>,
    /// Settings of the publishing side only (the agents' sink).
    pub publish: Option<Node>,
    /// Settings of the consuming side only (the workers' source: `prefetch`…).
    pub consume: Option<Node>,
    /// Where the agent keeps what the bus has not taken yet. Default: memory.
    pub buffer: Option<BufferConfig>,
}

/// What only sinks have.
#[derive(Deserialize, Clone, Debug)]
pub struct SinkKeys {
    /// Max events per batch. Default: 1000.
    pub batch_size: Option<usize>,
    /// Max wait before a partial batch is sent. Default: 1s.
    pub batch_wait: Option<Duration>,
    /// Max size of a batch, counted as line protocol. Default: 4MiB.
    pub batch_bytes: Option<ByteSize>,
    /// Where batches wait for delivery.
    pub buffer: Option<BufferConfig>,
    /// Send only the latest event of each series, once per interval.
    pub submission_interval: Option<Duration>,
    /// Give a batch up after it has failed for this long. Default: never.
    pub retry_for: Option<Duration>,
}
