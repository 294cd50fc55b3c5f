//! The agent's configuration: the file format, loading with `conf.d/`, and
//! validation against the plugin registry. Every error names its position.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use vane_core::Duration;
use vane_core::config::{ConfigError, Mark, Node, NodeKind, Spanned, from_node};
use vane_core::expr::Expr;
use vane_core::registry::{Family, Registry, Role};

/// One config file, as written.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct File {
    #[serde(default)]
    pub agent: Option<Spanned<AgentConfig>>,
    #[serde(default)]
    pub jobs: Vec<JobConfig>,
    #[serde(default)]
    pub engines: Vec<JobConfig>,
    #[serde(default)]
    pub sinks: Vec<JobConfig>,
}

/// Settings of the agent itself.
#[derive(Deserialize, Default, Clone, Debug)]
#[serde(deny_unknown_fields)]
pub struct AgentConfig {
    /// Host name stamped on events without one. Default: the machine's host name.
    pub host: Option<String>,
    /// Folder for durable state. Default: /var/lib/vane as root, else ~/.local/state/vane.
    pub data_dir: Option<PathBuf>,
    /// Interval of jobs that set none. Default: 10s.
    pub interval: Option<Duration>,
    /// Capacity of each engine's and sink's queue, in batches. Default: 1024.
    pub queue_size: Option<usize>,
    /// How long sources, engines and sinks get to finish at shutdown. Default: 5s.
    pub shutdown_timeout: Option<Duration>,
    /// Worker threads. Default: one per core.
    pub threads: Option<usize>,
    /// The agent's HTTP port (`/health`, and routes like `/metrics`). Default: none.
    pub http: Option<String>,
}

/// A job, an engine or a sink: one configured plugin instance.
#[derive(Deserialize, Clone, Debug)]
#[serde(deny_unknown_fields)]
pub struct JobConfig {
    pub id: Spanned<String>,
    pub plugin: Spanned<String>,
    /// Poll interval (sources). Default: `agent.interval`.
    pub interval: Option<Duration>,
    /// Per-poll timeout (sources). Default: the interval.
    pub timeout: Option<Duration>,
    /// Beat interval (engines).
    pub beat: Option<Duration>,
    /// The plugin's own settings.
    pub config: Option<Node>,
    /// Where events go: one id or a list of engine and sink ids.
    pub next: Option<Node>,
    /// Tags added to every event of this job.
    pub tags: Option<Node>,
    /// Max events per batch (sinks). Default: 1000.
    pub batch_size: Option<usize>,
    /// Max wait before a partial batch is sent (sinks). Default: 1s.
    pub batch_wait: Option<Duration>,
    /// Max size of a batch, counted as line protocol (sinks). Default: 4MiB.
    pub batch_bytes: Option<vane_core::ByteSize>,
    /// Level expressions (jobs and engines): the first that holds sets the state.
    pub critical: Option<Node>,
    pub warning: Option<Node>,
    pub ok: Option<Node>,
    /// Parallel instances of an engine; events are split by series. Default: 1.
    pub workers: Option<usize>,
    /// Where a sink's batches wait for delivery (sinks).
    pub buffer: Option<crate::buffer::BufferConfig>,
    /// Send only the latest event of each series, once per interval (sinks).
    pub submission_interval: Option<Duration>,
    /// Give a batch up after it has failed for this long (sinks). Default: never.
    pub retry_for: Option<Duration>,
}

/// Where a job is declared.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Section {
    Jobs,
    Engines,
    Sinks,
}

impl Section {
    /// The plugin family this section takes.
    pub fn family(self) -> Family {
        match self {
            Section::Jobs => Family::Source,
            Section::Engines => Family::Engine,
            Section::Sinks => Family::Sink,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Section::Jobs => "jobs",
            Section::Engines => "engines",
            Section::Sinks => "sinks",
        }
    }
}

/// A validated job with everything resolved.
#[derive(Clone, Debug)]
pub struct Job {
    pub section: Section,
    pub id: String,
    pub plugin: String,
    pub role: Role,
    pub path: String,
    pub mark: Mark,
    pub interval: std::time::Duration,
    pub timeout: std::time::Duration,
    pub beat: Option<std::time::Duration>,
    pub config: Node,
    /// Resolved targets (engine or sink ids); empty `next` means every sink.
    pub next: Vec<String>,
    pub tags: Vec<(String, String)>,
    pub batch_size: usize,
    pub batch_wait: std::time::Duration,
    pub batch_bytes: u64,
    pub levels: Option<std::sync::Arc<Levels>>,
    pub workers: usize,
    pub buffer: crate::buffer::BufferConfig,
    pub submission_interval: Option<std::time::Duration>,
    pub retry_for: Option<std::time::Duration>,
}

/// Level expressions of a job or engine, applied to every event it emits.
///
/// `critical`, then `warning`, then `ok`: the first that holds sets the
/// event's state. When none holds the state is `ok`, unless an `ok`
/// expression was given, and then it is `unknown`. A name the event lacks
/// makes the state `unknown` (counted as `levels_unknown`).
#[derive(Debug)]
pub struct Levels {
    pub critical: Option<Expr>,
    pub warning: Option<Expr>,
    pub ok: Option<Expr>,
}

impl Levels {
    /// The state for an event, and whether a name was missing.
    pub fn judge(&self, ev: &vane_core::event::Event) -> (vane_core::event::State, Option<String>) {
        use vane_core::event::State;
        for (expr, state) in [
            (&self.critical, State::Critical),
            (&self.warning, State::Warning),
            (&self.ok, State::Ok),
        ] {
            let Some(e) = expr else { continue };
            match e.matches(ev) {
                Ok(true) => return (state, None),
                Ok(false) => {}
                Err(err) => return (State::Unknown, Some(format!("{} ({})", err, e.source()))),
            }
        }
        if self.ok.is_some() {
            (State::Unknown, None)
        } else {
            (State::Ok, None)
        }
    }
}

/// Parses a level expression; errors point into the expression.
fn level(n: &Node, path: &str) -> Result<Expr, ConfigError> {
    let NodeKind::Scalar { text, plain } = &n.kind else {
        return Err(ConfigError::at(
            n,
            path,
            "expected an expression, like `latency > 0.5`",
        ));
    };
    Expr::parse(text).map_err(|e| {
        let mut mark = n.mark.clone();
        // Quoted scalars start one column before their text.
        mark.column += (e.column - 1) as u32 + u32::from(!plain);
        ConfigError::new(
            Some(mark),
            path,
            format!("bad expression at its column {}: {}", e.column, e.message),
        )
    })
}

/// The whole validated configuration.
#[derive(Clone, Debug)]
pub struct Config {
    pub agent: AgentConfig,
    pub host: String,
    pub data_dir: PathBuf,
    pub queue_size: usize,
    pub shutdown_timeout: std::time::Duration,
    pub jobs: Vec<Job>,
    /// The files read, main first.
    pub files: Vec<PathBuf>,
}

impl Config {
    pub fn job(&self, id: &str) -> Option<&Job> {
        self.jobs.iter().find(|j| j.id == id)
    }
}

/// The built-in config of `vane run` without `-c`: host metrics every 10 s to stdout.
pub const DEFAULT_CONFIG: &str = "\
# vane's built-in config: host metrics every 10 s, written to standard output
# as InfluxDB line protocol.
jobs:
  - { id: cpu, plugin: cpu }
  - { id: memory, plugin: memory }
  - { id: swap, plugin: swap }
  - { id: disk, plugin: disk }
  - { id: diskio, plugin: diskio }
  - { id: net, plugin: net }
  - { id: load, plugin: load }
  - { id: processes, plugin: processes }
  - { id: system, plugin: system }
sinks:
  - { id: stdout, plugin: stdout, config: { format: influx } }
";

fn env_lookup(k: &str) -> Option<String> {
    std::env::var(k).ok()
}

/// Reads a config file and the `conf.d/*.yaml` files beside it, then validates.
pub fn load(path: &Path, registry: &Registry) -> Result<Config, Vec<ConfigError>> {
    let display = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| {
        vec![ConfigError::new(
            None,
            "",
            format!("cannot read config file {display}: {e}"),
        )]
    })?;
    let mut sources = vec![(path.to_path_buf(), display, text)];
    let confd = path
        .parent()
        .unwrap_or_else(|| Path::new("."))
        .join("conf.d");
    if confd.is_dir() {
        let mut extra: Vec<PathBuf> = std::fs::read_dir(&confd)
            .map_err(|e| {
                vec![ConfigError::new(
                    None,
                    "",
                    format!("cannot read {}: {e}", confd.display()),
                )]
            })?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml")))
            .collect();
        extra.sort();
        for p in extra {
            let d = p.display().to_string();
            let t = std::fs::read_to_string(&p)
                .map_err(|e| vec![ConfigError::new(None, "", format!("cannot read {d}: {e}"))])?;
            sources.push((p, d, t));
        }
    }
    from_texts(&sources, registry, &env_lookup)
}

/// Parses and validates the built-in default config.
pub fn default_config(registry: &Registry) -> Result<Config, Vec<ConfigError>> {
    from_texts(
        &[(
            PathBuf::from("<built-in>"),
            "<built-in config>".into(),
            DEFAULT_CONFIG.into(),
        )],
        registry,
        &env_lookup,
    )
}

/// Parses and validates config texts: (path, display name, text), main file first.
pub fn from_texts(
    sources: &[(PathBuf, String, String)],
    registry: &Registry,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Config, Vec<ConfigError>> {
    let mut errors = Vec::new();
    let mut files = Vec::new();
    for (i, (_, name, text)) in sources.iter().enumerate() {
        let node = match crate::yaml::parse(name, text, env) {
            Ok(n) => n,
            Err(e) => {
                errors.push(e);
                continue;
            }
        };
        match from_node::<File>(&node, "") {
            Ok(f) => {
                if let Some(a) = f.agent.as_ref().filter(|_| i > 0) {
                    errors.push(ConfigError::new(
                        Some(a.mark.clone()),
                        "agent",
                        "`agent` belongs in the main config file, not in conf.d",
                    ));
                }
                files.push(f);
            }
            Err(e) => errors.push(e),
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let agent = files
        .first_mut()
        .and_then(|f| f.agent.take())
        .map(|s| s.value)
        .unwrap_or_default();
    let interval = agent
        .interval
        .map(Duration::get)
        .unwrap_or(std::time::Duration::from_secs(10));
    let mut jobs = Vec::new();
    let mut seen: HashMap<String, Mark> = HashMap::new();
    let mut raw_next: Vec<Vec<(String, Mark, String)>> = Vec::new();
    for f in &files {
        for (section, list) in [
            (Section::Jobs, &f.jobs),
            (Section::Engines, &f.engines),
            (Section::Sinks, &f.sinks),
        ] {
            for (i, jc) in list.iter().enumerate() {
                let path = format!("{}[{i}]", section.name());
                match resolve(section, jc, &path, registry, interval, &mut seen) {
                    Ok((job, next)) => {
                        jobs.push(job);
                        raw_next.push(next);
                    }
                    Err(mut e) => errors.append(&mut e),
                }
            }
        }
    }
    // `next` must name engines or sinks.
    let kinds: HashMap<String, Section> = jobs.iter().map(|j| (j.id.clone(), j.section)).collect();
    let mut fed: HashMap<String, bool> = HashMap::new();
    for (job, next) in jobs.iter_mut().zip(&raw_next) {
        for (target, mark, path) in next {
            match kinds.get(target.as_str()) {
                Some(Section::Engines | Section::Sinks) => {
                    job.next.push(target.clone());
                    fed.insert(target.clone(), true);
                }
                Some(Section::Jobs) => errors.push(ConfigError::new(
                    Some(mark.clone()),
                    path.clone(),
                    format!("`{target}` is a job; `next` names engines and sinks"),
                )),
                None => {
                    let hint = kinds
                        .keys()
                        .filter(|k| kinds[*k] != Section::Jobs)
                        .map(|k| (vane_core::registry::edit_distance(k, target), k))
                        .filter(|(d, _)| *d <= 2)
                        .min()
                        .map(|(_, k)| format!(" (did you mean `{k}`?)"))
                        .unwrap_or_default();
                    errors.push(ConfigError::new(
                        Some(mark.clone()),
                        path.clone(),
                        format!("unknown id `{target}`: no engine or sink has that id{hint}"),
                    ))
                }
            }
        }
    }
    for j in jobs.iter().filter(|j| j.section == Section::Engines) {
        if !fed.contains_key(&j.id) {
            errors.push(ConfigError::new(
                Some(j.mark.clone()),
                format!("{}.id", j.path),
                format!(
                    "engine `{}` is never fed: no job or engine names it in `next`",
                    j.id
                ),
            ));
        }
    }
    errors.extend(find_cycles(&jobs));
    let has_sink = jobs.iter().any(|j| j.section == Section::Sinks);
    if !has_sink && !jobs.is_empty() {
        errors.push(ConfigError::new(
            None,
            "sinks",
            "no sink is configured: events would have nowhere to go (add one, e.g. `{ id: out, plugin: stdout }`)",
        ));
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let host = agent.host.clone().unwrap_or_else(hostname);
    Ok(Config {
        host,
        data_dir: agent.data_dir.clone().unwrap_or_else(default_data_dir),
        queue_size: agent.queue_size.unwrap_or(1024).max(1),
        shutdown_timeout: agent
            .shutdown_timeout
            .map(Duration::get)
            .unwrap_or(std::time::Duration::from_secs(5)),
        agent,
        jobs,
        files: sources.iter().map(|(p, _, _)| p.clone()).collect(),
    })
}

type Targets = Vec<(String, Mark, String)>;

fn resolve(
    section: Section,
    jc: &JobConfig,
    path: &str,
    registry: &Registry,
    default_interval: std::time::Duration,
    seen: &mut HashMap<String, Mark>,
) -> Result<(Job, Targets), Vec<ConfigError>> {
    let mut errors = Vec::new();
    let id = jc.id.value.clone();
    if id.trim().is_empty() {
        errors.push(ConfigError::new(
            Some(jc.id.mark.clone()),
            format!("{path}.id"),
            "the id is empty",
        ));
    } else if let Some(first) = seen.get(&id) {
        errors.push(ConfigError::new(
            Some(jc.id.mark.clone()),
            format!("{path}.id"),
            format!("duplicate id `{id}`, first used at {first}"),
        ));
    } else {
        seen.insert(id.clone(), jc.id.mark.clone());
    }
    let config = jc
        .config
        .clone()
        .unwrap_or_else(|| Node::null(jc.plugin.mark.clone()));
    let found = registry
        .find(&jc.plugin, section.family())
        .or_else(|| registry.get(&jc.plugin));
    let role = match found {
        None => {
            let hint = registry
                .suggest(&jc.plugin)
                .map(|s| format!(" (did you mean `{s}`?)"))
                .unwrap_or_default();
            errors.push(ConfigError::new(
                Some(jc.plugin.mark.clone()),
                format!("{path}.plugin"),
                format!(
                    "unknown plugin `{}`{hint}; `vane plugins` lists them",
                    *jc.plugin
                ),
            ));
            None
        }
        Some(p) => {
            let fits = match section {
                Section::Jobs => p.role.is_source(),
                Section::Engines => p.role == Role::Engine,
                Section::Sinks => p.role == Role::Sink,
            };
            if !fits {
                errors.push(ConfigError::new(
                    Some(jc.plugin.mark.clone()),
                    format!("{path}.plugin"),
                    format!(
                        "`{}` is a {} plugin; it cannot be used under `{}`",
                        p.name,
                        p.role,
                        section.name()
                    ),
                ));
            } else if let Err(e) = p.validate(&config, &format!("{path}.config")) {
                errors.push(e);
            }
            Some(p.role)
        }
    };
    // Which sections each optional key means something in.
    use Section::{Engines as E, Jobs as J, Sinks as S};
    let keys: [(&str, bool, &[Section]); 16] = [
        ("interval", jc.interval.is_some(), &[J]),
        ("timeout", jc.timeout.is_some(), &[J]),
        ("beat", jc.beat.is_some(), &[E]),
        ("next", jc.next.is_some(), &[J, E]),
        ("workers", jc.workers.is_some(), &[E]),
        ("critical", jc.critical.is_some(), &[J, E]),
        ("warning", jc.warning.is_some(), &[J, E]),
        ("ok", jc.ok.is_some(), &[J, E]),
        ("batch_size", jc.batch_size.is_some(), &[S]),
        ("batch_wait", jc.batch_wait.is_some(), &[S]),
        ("batch_bytes", jc.batch_bytes.is_some(), &[S]),
        ("buffer", jc.buffer.is_some(), &[S]),
        (
            "submission_interval",
            jc.submission_interval.is_some(),
            &[S],
        ),
        ("retry_for", jc.retry_for.is_some(), &[S]),
        ("tags", jc.tags.is_some(), &[J, E]),
        ("config", jc.config.is_some(), &[J, E, S]),
    ];
    for (key, present, sections) in keys {
        if present && !sections.contains(&section) {
            errors.push(ConfigError::new(
                Some(jc.id.mark.clone()),
                format!("{path}.{key}"),
                format!("`{key}` has no meaning under `{}`", section.name()),
            ));
        }
    }
    let mut parse_level = |n: &Option<Node>, key: &str| {
        n.as_ref().and_then(|n| {
            level(n, &format!("{path}.{key}"))
                .map_err(|e| errors.push(e))
                .ok()
        })
    };
    let (critical, warning, ok) = (
        parse_level(&jc.critical, "critical"),
        parse_level(&jc.warning, "warning"),
        parse_level(&jc.ok, "ok"),
    );
    let levels = (critical.is_some() || warning.is_some() || ok.is_some()).then(|| {
        std::sync::Arc::new(Levels {
            critical,
            warning,
            ok,
        })
    });
    if jc.workers == Some(0) {
        errors.push(ConfigError::new(
            Some(jc.id.mark.clone()),
            format!("{path}.workers"),
            "`workers` must be at least 1",
        ));
    }
    let interval = jc.interval.map(Duration::get).unwrap_or(default_interval);
    if interval.is_zero() {
        errors.push(ConfigError::new(
            Some(jc.id.mark.clone()),
            format!("{path}.interval"),
            "the interval must be more than zero",
        ));
    }
    let next = match &jc.next {
        None => Vec::new(),
        Some(n) => match string_list(n, &format!("{path}.next")) {
            Ok(v) => v,
            Err(e) => {
                errors.push(e);
                Vec::new()
            }
        },
    };
    let tags = match &jc.tags {
        None => Vec::new(),
        Some(n) => match string_map(n, &format!("{path}.tags")) {
            Ok(v) => v,
            Err(e) => {
                errors.push(e);
                Vec::new()
            }
        },
    };
    match role {
        Some(role) if errors.is_empty() => Ok((
            Job {
                section,
                id,
                plugin: jc.plugin.value.clone(),
                role,
                path: path.to_owned(),
                mark: jc.id.mark.clone(),
                interval,
                timeout: jc.timeout.map(Duration::get).unwrap_or(interval),
                beat: jc.beat.map(Duration::get),
                config,
                next: Vec::new(),
                tags,
                batch_size: jc.batch_size.unwrap_or(1000).max(1),
                batch_wait: jc
                    .batch_wait
                    .map(Duration::get)
                    .unwrap_or(std::time::Duration::from_secs(1)),
                batch_bytes: jc.batch_bytes.map_or(4 << 20, |b| b.0.max(1)),
                levels,
                workers: jc.workers.unwrap_or(1).max(1),
                buffer: jc.buffer.clone().unwrap_or_default(),
                submission_interval: jc.submission_interval.map(Duration::get),
                retry_for: jc.retry_for.map(Duration::get),
            },
            next,
        )),
        _ => Err(errors),
    }
}

/// One string or a list of strings, with positions.
fn string_list(n: &Node, path: &str) -> Result<Vec<(String, Mark, String)>, ConfigError> {
    match &n.kind {
        NodeKind::Scalar { text, .. } if !n.is_null() => {
            Ok(vec![(text.clone(), n.mark.clone(), path.to_owned())])
        }
        NodeKind::Seq(items) => items
            .iter()
            .enumerate()
            .map(|(i, it)| match &it.kind {
                NodeKind::Scalar { text, .. } => {
                    Ok((text.clone(), it.mark.clone(), format!("{path}[{i}]")))
                }
                _ => Err(ConfigError::at(
                    it,
                    format!("{path}[{i}]"),
                    "expected an id",
                )),
            })
            .collect(),
        _ => Err(ConfigError::at(n, path, "expected an id or a list of ids")),
    }
}

/// A mapping of strings to strings, in file order.
fn string_map(n: &Node, path: &str) -> Result<Vec<(String, String)>, ConfigError> {
    match &n.kind {
        NodeKind::Map(m) => m
            .iter()
            .map(|(k, v)| match (&k.kind, &v.kind) {
                (NodeKind::Scalar { text: k, .. }, NodeKind::Scalar { text: v, .. }) => {
                    Ok((k.clone(), v.clone()))
                }
                _ => Err(ConfigError::at(
                    v,
                    format!("{path}.{}", k.as_str().unwrap_or("?")),
                    "expected a string",
                )),
            })
            .collect(),
        _ => Err(ConfigError::at(
            n,
            path,
            "expected a mapping of tag names to values",
        )),
    }
}

/// Engines whose `next` chains lead back to themselves.
fn find_cycles(jobs: &[Job]) -> Vec<ConfigError> {
    let engines: HashMap<&str, &Job> = jobs
        .iter()
        .filter(|j| j.section == Section::Engines)
        .map(|j| (j.id.as_str(), j))
        .collect();
    let mut errors = Vec::new();
    let mut reported: Vec<String> = Vec::new();
    // 0 = unvisited, 1 = on the current path, 2 = done
    let mut state: HashMap<&str, u8> = HashMap::new();
    fn visit<'a>(
        id: &'a str,
        engines: &HashMap<&'a str, &'a Job>,
        state: &mut HashMap<&'a str, u8>,
        stack: &mut Vec<&'a str>,
        errors: &mut Vec<ConfigError>,
        reported: &mut Vec<String>,
    ) {
        state.insert(id, 1);
        stack.push(id);
        for n in &engines[id].next {
            let Some((&nid, _)) = engines.get_key_value(n.as_str()) else {
                continue;
            };
            match state.get(nid).copied().unwrap_or(0) {
                0 => visit(nid, engines, state, stack, errors, reported),
                1 => {
                    let start = stack.iter().position(|s| *s == nid).unwrap_or(0);
                    let mut cycle: Vec<&str> = stack[start..].to_vec();
                    cycle.push(nid);
                    let mut key: Vec<&str> = stack[start..].to_vec();
                    key.sort();
                    let key = key.join(",");
                    if !reported.contains(&key) {
                        reported.push(key);
                        let j = engines[id];
                        errors.push(ConfigError::new(
                            Some(j.mark.clone()),
                            format!("{}.next", j.path),
                            format!("engines form a cycle: {}", cycle.join(" → ")),
                        ));
                    }
                }
                _ => {}
            }
        }
        stack.pop();
        state.insert(id, 2);
    }
    let mut ids: Vec<&str> = engines.keys().copied().collect();
    ids.sort();
    for id in ids {
        if state.get(id).copied().unwrap_or(0) == 0 {
            visit(
                id,
                &engines,
                &mut state,
                &mut Vec::new(),
                &mut errors,
                &mut reported,
            );
        }
    }
    errors
}

/// The machine's host name.
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_owned())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

fn default_data_dir() -> PathBuf {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc_geteuid() } == 0 {
        return PathBuf::from("/var/lib/vane");
    }
    std::env::var_os("XDG_STATE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/state")))
        .unwrap_or_else(std::env::temp_dir)
        .join("vane")
}

unsafe extern "C" {
    #[link_name = "geteuid"]
    fn libc_geteuid() -> u32;
}

#[cfg(test)]
mod tests {
    use super::*;
    use vane_core::prelude::*;

    struct Src;
    impl Source for Src {
        type Config = SrcConfig;
        fn build(_: SrcConfig, _: &Context) -> vane_core::plugin::Result<Self> {
            Ok(Src)
        }
        async fn poll(&mut self, _: &Context) -> vane_core::plugin::Result<Vec<Event>> {
            Ok(vec![])
        }
    }
    #[derive(Deserialize)]
    #[allow(dead_code)]
    struct SrcConfig {
        #[serde(default)]
        url: String,
        #[serde(default)]
        nested: Option<Nested>,
    }
    #[derive(Deserialize)]
    #[allow(dead_code)]
    struct Nested {
        timeout: Duration,
    }
    struct Eng;
    impl Engine for Eng {
        type Config = ();
        fn build(_: (), _: &Context) -> vane_core::plugin::Result<Self> {
            Ok(Eng)
        }
        fn process(&mut self, e: Event, out: &mut Vec<Event>) -> vane_core::plugin::Result<()> {
            out.push(e);
            Ok(())
        }
    }
    struct Snk;
    impl Sink for Snk {
        type Config = ();
        fn build(_: (), _: &Context) -> vane_core::plugin::Result<Self> {
            Ok(Snk)
        }
        async fn send(&mut self, _: &[Event], _: &Context) -> vane_core::plugin::Result<()> {
            Ok(())
        }
    }

    fn registry() -> Registry {
        let mut r = Registry::new();
        r.source::<Src>("src", "")
            .engine::<Eng>("eng", "")
            .sink::<Snk>("snk", "");
        r
    }

    fn check(files: &[(&str, &str)]) -> Vec<String> {
        let sources: Vec<_> = files
            .iter()
            .map(|(n, t)| (PathBuf::from(n), n.to_string(), t.to_string()))
            .collect();
        let env = |k: &str| (k == "SET").then(|| "yes".to_owned());
        match from_texts(&sources, &registry(), &env) {
            Ok(_) => vec![],
            Err(e) => e.iter().map(|e| e.to_string()).collect(),
        }
    }

    const SINK: &str = "sinks:\n  - { id: out, plugin: snk }\n";

    #[test]
    fn a_good_config_passes_and_resolves() {
        let text = format!(
            "agent: {{ host: h1, interval: 5s }}\njobs:\n  - {{ id: a, plugin: src, tags: {{ dc: x }}, next: e }}\n  - {{ id: b, plugin: src, interval: 1m }}\nengines:\n  - {{ id: e, plugin: eng, beat: 1s, next: [out] }}\n{SINK}"
        );
        let c = from_texts(
            &[(PathBuf::from("m"), "m".into(), text)],
            &registry(),
            &|_| None,
        )
        .unwrap();
        assert_eq!(c.host, "h1");
        let a = c.job("a").unwrap();
        assert_eq!(a.interval, std::time::Duration::from_secs(5));
        assert_eq!(a.next, vec!["e".to_owned()]);
        assert_eq!(a.tags, vec![("dc".to_owned(), "x".to_owned())]);
        assert_eq!(
            c.job("b").unwrap().timeout,
            std::time::Duration::from_secs(60)
        );
    }

    #[test]
    fn each_broken_config_names_its_position() {
        let cases: &[(&str, &str)] = &[
            (
                "jobs:\n  - id: a\n    plugin: src\n    config:\n      nested:\n        timout: 5s\n",
                "m:6:9: jobs[0].config.nested.timout: unknown key `timout`, expected `timeout`",
            ),
            (
                "jobs:\n  - { id: a, plugin: srcc }\n",
                "m:2:22: jobs[0].plugin: unknown plugin `srcc` (did you mean `src`?); `vane plugins` lists them",
            ),
            (
                "jobs:\n  - { id: a, plugin: src }\n  - { id: a, plugin: src }\n",
                "m:3:11: jobs[1].id: duplicate id `a`, first used at m:2:11",
            ),
            (
                "jobs:\n  - { id: a, plugin: src, next: [outt] }\n",
                "m:2:34: jobs[0].next[0]: unknown id `outt`: no engine or sink has that id (did you mean `out`?)",
            ),
            (
                "jobs:\n  - { id: a, plugin: src, interval: 10 }\n",
                "m:2:37: jobs[0].interval: invalid duration \"10\": a duration needs a unit, like 500ms, 10s, 1m or 1h",
            ),
            (
                "jobs:\n  - { id: a, plugin: snk }\n",
                "m:2:22: jobs[0].plugin: `snk` is a sink plugin; it cannot be used under `jobs`",
            ),
            (
                "jobs:\n  - { id: a, plugin: src, config: { url: \"${UNSET}\" } }\n",
                "m:2:42: environment variable `UNSET` is not set (write `${UNSET:-default}` for a default)",
            ),
            (
                "jobs:\n  - { id: a, plugin: src }\n  colour: red\n",
                "m:3:3: invalid YAML: while parsing a block collection, did not find expected '-' indicator",
            ),
            (
                "jobs:\n  - { id: a, plugin: src, intervall: 1s }\n",
                "m:2:27: jobs[0].intervall: unknown key `intervall`, expected one of `id`, `plugin`, `interval`, `timeout`, `beat`, `config`, `next`, `tags`, `batch_size`, `batch_wait`, `batch_bytes`, `critical`, `warning`, `ok`, `workers`, `buffer`, `submission_interval`, `retry_for`",
            ),
            (
                "jobs:\n  - { id: a, plugin: src, next: a }\n",
                "m:2:33: jobs[0].next: `a` is a job; `next` names engines and sinks",
            ),
            (
                "jobs:\n  - id: a\n    plugin: src\n    critical: latency > > 2\n",
                "m:4:25: jobs[0].critical: bad expression at its column 11: unexpected `>`",
            ),
            (
                "jobs:\n  - id: a\n    plugin: src\n    warning: \"status =~ '('\"\n",
                "m:4:25: jobs[0].warning: bad expression at its column 11: bad regular expression: unclosed group",
            ),
            (
                "jobs:\n  - { id: a, plugin: src, workers: 2 }\n",
                "m:2:11: jobs[0].workers: `workers` has no meaning under `jobs`",
            ),
        ];
        for (text, want) in cases {
            let got = check(&[("m", &format!("{text}{SINK}"))]);
            assert_eq!(
                got.first().map(String::as_str),
                Some(*want),
                "config:\n{text}\nall: {got:?}"
            );
        }
    }

    #[test]
    fn levels_judge_in_order_and_missing_names_are_unknown() {
        use vane_core::event::{Event, State};
        let l = |c: Option<&str>, w: Option<&str>, o: Option<&str>| Levels {
            critical: c.map(|s| Expr::parse(s).unwrap()),
            warning: w.map(|s| Expr::parse(s).unwrap()),
            ok: o.map(|s| Expr::parse(s).unwrap()),
        };
        let ev = |v: f64| Event::gauge("x", v);
        let cw = l(Some("value > 10"), Some("value > 5"), None);
        assert_eq!(cw.judge(&ev(11.0)).0, State::Critical);
        assert_eq!(cw.judge(&ev(6.0)).0, State::Warning);
        assert_eq!(cw.judge(&ev(1.0)).0, State::Ok);
        let with_ok = l(None, Some("value > 5"), Some("value < 3"));
        assert_eq!(with_ok.judge(&ev(1.0)).0, State::Ok);
        assert_eq!(with_ok.judge(&ev(4.0)).0, State::Unknown);
        let (st, why) = l(Some("latency > 1"), None, None).judge(&ev(1.0));
        assert_eq!(st, State::Unknown);
        assert!(why.unwrap().contains("no field or tag `latency`"));
    }

    #[test]
    fn cycles_and_unfed_engines_are_rejected() {
        let text = format!(
            "jobs:\n  - {{ id: a, plugin: src, next: e1 }}\nengines:\n  - {{ id: e1, plugin: eng, next: e2 }}\n  - {{ id: e2, plugin: eng, next: [e1, out] }}\n  - {{ id: lonely, plugin: eng }}\n{SINK}"
        );
        let got = check(&[("m", &text)]);
        assert_eq!(
            got,
            vec![
                "m:6:11: engines[2].id: engine `lonely` is never fed: no job or engine names it in `next`",
                "m:5:11: engines[1].next: engines form a cycle: e1 → e2 → e1",
            ]
        );
    }

    #[test]
    fn conf_d_files_merge_and_keep_their_names() {
        let main = format!("jobs:\n  - {{ id: a, plugin: src }}\n{SINK}");
        assert!(
            check(&[
                ("main", &main),
                ("conf.d/b.yaml", "jobs:\n  - { id: b, plugin: src }\n")
            ])
            .is_empty()
        );
        let got = check(&[
            ("main", &main),
            (
                "conf.d/b.yaml",
                "agent: { host: x }\njobs:\n  - { id: a, plugin: src }\n",
            ),
        ]);
        assert_eq!(
            got,
            vec![
                "conf.d/b.yaml:1:8: agent: `agent` belongs in the main config file, not in conf.d",
            ]
        );
        let got = check(&[
            ("main", &main),
            ("conf.d/b.yaml", "jobs:\n  - { id: a, plugin: src }\n"),
        ]);
        assert_eq!(
            got,
            vec!["conf.d/b.yaml:2:11: jobs[0].id: duplicate id `a`, first used at main:2:11"]
        );
    }

    #[test]
    fn a_config_without_sinks_is_refused() {
        let got = check(&[("m", "jobs:\n  - { id: a, plugin: src }\n")]);
        assert_eq!(got.len(), 1);
        assert!(got[0].contains("no sink is configured"), "{got:?}");
    }

    #[test]
    fn the_default_config_is_valid_with_the_builtins_it_names() {
        let node = crate::yaml::parse("d", DEFAULT_CONFIG, &|_| None).unwrap();
        let f: File = from_node(&node, "").unwrap();
        assert_eq!(f.jobs.len(), 9);
        assert_eq!(f.sinks.len(), 1);
    }
}
