//! The agent's configuration, resolved: every job of every section with its
//! defaults applied and its `next` checked. [`schema`] is the file as
//! written, [`load`] reads the main file, `conf.d/` and the environment,
//! [`validate`] checks them against the registry, [`defaults`] holds the
//! built-in config and the machine-derived defaults.

pub mod bus;
pub mod defaults;
pub mod diff;
pub mod load;
pub mod schema;
pub mod validate;

use std::path::PathBuf;
use std::sync::Arc;

use vane_core::node::{Mark, Node};
use vane_core::registry::Role;

pub use load::{confd_files, default_config, from_texts, load, load_with};
pub use schema::AgentConfig;
pub use validate::Options;

use crate::buffer::BufferConfig;
use crate::levels::Levels;

/// One configured plugin instance of any role, resolved.
#[derive(Clone, Debug)]
pub struct Job<S> {
    pub id: String,
    pub plugin: String,
    /// Where it is declared, as a key path (`sources[2]`).
    pub path: String,
    /// The position of its id.
    pub mark: Mark,
    /// The plugin's `config:` block (null when absent).
    pub config: Node,
    /// Engine and sink ids its events go to; empty means every sink.
    /// Sinks have none.
    pub next: Vec<String>,
    /// Tags added to every event it emits.
    pub tags: Vec<(String, String)>,
    /// Levels judged on every event it emits.
    pub levels: Option<Arc<Levels>>,
    /// What its role adds.
    pub spec: S,
}

impl Job<()> {
    /// The job with what its role adds.
    pub(crate) fn with<S>(self, spec: S) -> Job<S> {
        Job {
            id: self.id,
            plugin: self.plugin,
            path: self.path,
            mark: self.mark,
            config: self.config,
            next: self.next,
            tags: self.tags,
            levels: self.levels,
            spec,
        }
    }
}

/// What a source job adds.
#[derive(Clone, Debug)]
pub struct SourceSpec {
    pub interval: std::time::Duration,
    pub timeout: std::time::Duration,
}

/// What an engine job adds.
#[derive(Clone, Debug)]
pub struct EngineSpec {
    pub beat: Option<std::time::Duration>,
    pub workers: usize,
    /// Set when the engine runs in workers fed through a bus.
    pub via: Option<ViaSpec>,
    /// Set in a bus worker: the lease that says which worker beats.
    pub lease: Option<LeaseSpec>,
}

/// A lease of the bus plugin (`vane_core::lease`), taken part in by each
/// worker of a bus-backed engine.
#[derive(Clone, Debug)]
pub struct LeaseSpec {
    pub plugin: String,
    /// The lease's name: the engine's queue, with `.beat`.
    pub name: String,
    /// The bus plugin's config, as the workers' source has it.
    pub config: Node,
}

/// A bus-backed engine's two sides, each a plugin config of the bus plugin.
#[derive(Clone, Debug)]
pub struct ViaSpec {
    pub plugin: String,
    /// The engine's queue.
    pub queue: String,
    /// The publishing side's config (the agent's sink named after the engine).
    pub sink: Node,
    /// The consuming side's config (the workers' source).
    pub source: Node,
    pub buffer: BufferConfig,
}

/// What a sink job adds.
#[derive(Clone, Debug)]
pub struct SinkSpec {
    pub batch_size: usize,
    pub batch_wait: std::time::Duration,
    pub batch_bytes: u64,
    pub buffer: BufferConfig,
    pub submission_interval: Option<std::time::Duration>,
    pub retry_for: Option<std::time::Duration>,
}

pub type SourceJob = Job<SourceSpec>;
pub type EngineJob = Job<EngineSpec>;
pub type SinkJob = Job<SinkSpec>;

/// The whole validated configuration.
#[derive(Clone, Debug)]
pub struct Config {
    pub agent: AgentConfig,
    pub host: String,
    pub data_dir: PathBuf,
    pub queue_size: usize,
    pub shutdown_timeout: std::time::Duration,
    pub sources: Vec<SourceJob>,
    pub engines: Vec<EngineJob>,
    pub sinks: Vec<SinkJob>,
    /// The files read, main first.
    pub files: Vec<PathBuf>,
}

/// No job of a role has the id asked for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("no {role} with id `{id}`; {}: {known}", role.section())]
pub struct Unknown {
    pub role: Role,
    pub id: String,
    /// The ids of that role there are.
    pub known: String,
}

fn find<'a, S>(jobs: &'a [Job<S>], role: Role, id: &str) -> Result<&'a Job<S>, Unknown> {
    jobs.iter().find(|j| j.id == id).ok_or_else(|| Unknown {
        role,
        id: id.to_owned(),
        known: jobs.iter().map(|j| j.id.as_str()).collect::<Vec<_>>().join(", "),
    })
}

impl Config {
    pub fn source(&self, id: &str) -> Result<&SourceJob, Unknown> {
        find(&self.sources, Role::Source, id)
    }

    pub fn engine(&self, id: &str) -> Result<&EngineJob, Unknown> {
        find(&self.engines, Role::Engine, id)
    }

    /// Every job's id, plugin and role, sources first.
    pub fn jobs(&self) -> impl Iterator<Item = (&str, &str, Role)> {
        let sources = self.sources.iter().map(|j| (j.id.as_str(), j.plugin.as_str(), Role::Source));
        let engines = self.engines.iter().map(|j| (j.id.as_str(), j.plugin.as_str(), Role::Engine));
        let sinks = self.sinks.iter().map(|j| (j.id.as_str(), j.plugin.as_str(), Role::Sink));
        sources.chain(engines).chain(sinks)
    }

    /// The role of the job with this id.
    pub fn role_of(&self, id: &str) -> Option<Role> {
        self.jobs().find(|(j, _, _)| *j == id).map(|(_, _, r)| r)
    }
}
