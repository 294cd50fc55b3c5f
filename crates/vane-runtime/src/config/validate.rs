//! Validation across every config file: ids unique, plugins known and used
//! in their role's section with a config they accept, level expressions,
//! `next` naming engines and sinks, engines fed, no cycles, a sink to go to.
//! Every error names its position.

use std::collections::HashMap;
use std::sync::Arc;

use vane_core::Duration;
use vane_core::expr::Expr;
use vane_core::node::{ConfigError, Mark, Node, NodeKind};
use vane_core::registry::{Registry, Role, edit_distance};

use super::schema::{Common, EngineSection, File, Flow, SinkSection, SourceSection, Via};
use super::{Config, EngineSpec, Job, SinkSpec, SourceSpec, ViaSpec, bus};

/// What validation tolerates.
#[derive(Clone, Copy, Debug, Default)]
pub struct Options {
    /// Accept engines that no job feeds (`vane engine` runs one alone).
    pub unfed_engines: bool,
}
use crate::levels::Levels;

/// `next` as written: each target with its position and key path.
type Targets = Vec<(String, Mark, String)>;

struct Validator<'r> {
    registry: &'r Registry,
    seen: HashMap<String, Mark>,
    errors: Vec<ConfigError>,
    default_interval: std::time::Duration,
}

/// Resolves and checks the files read (main first).
pub fn validate(mut files: Vec<File>, registry: &Registry, options: Options) -> Result<Config, Vec<ConfigError>> {
    let agent = files.first_mut().and_then(|f| f.agent.take()).map(|s| s.value).unwrap_or_default();
    let mut v = Validator {
        registry,
        seen: HashMap::new(),
        errors: Vec::new(),
        default_interval: agent.interval.map_or(std::time::Duration::from_secs(10), Duration::get),
    };
    let (mut sources, mut engines, mut sinks) = (Vec::new(), Vec::new(), Vec::new());
    for f in &files {
        for (section, list) in [("sources", &f.sources), ("jobs", &f.jobs)] {
            for (i, entry) in list.iter().enumerate() {
                sources.extend(v.source(entry, &format!("{section}[{i}]"), section));
            }
        }
        for (i, entry) in f.engines.iter().enumerate() {
            engines.extend(v.engine(entry, &format!("engines[{i}]")));
        }
        for (i, entry) in f.sinks.iter().enumerate() {
            sinks.extend(v.sink(entry, &format!("sinks[{i}]")));
        }
    }
    let roles: HashMap<String, Role> =
        (sources.iter().map(|(j, _): &(Job<SourceSpec>, _)| (j.id.clone(), Role::Source)))
            .chain(engines.iter().map(|(j, _): &(Job<EngineSpec>, _)| (j.id.clone(), Role::Engine)))
            .chain(sinks.iter().map(|j: &Job<SinkSpec>| (j.id.clone(), Role::Sink)))
            .collect();
    let mut fed: Vec<String> = Vec::new();
    for (job, targets) in sources.iter_mut() {
        v.resolve_next(&mut job.next, targets, &roles, &mut fed);
    }
    for (job, targets) in engines.iter_mut() {
        v.resolve_next(&mut job.next, targets, &roles, &mut fed);
    }
    let engines: Vec<Job<EngineSpec>> = engines.into_iter().map(|(j, _)| j).collect();
    if !options.unfed_engines {
        for j in engines.iter().filter(|j| !fed.contains(&j.id)) {
            v.errors.push(ConfigError::new(
                Some(j.mark.clone()),
                format!("{}.id", j.path),
                format!("engine `{}` is never fed: no source or engine names it in `next`", j.id),
            ));
        }
    }
    v.errors.extend(find_cycles(&engines));
    if sinks.is_empty() && !(sources.is_empty() && engines.is_empty()) {
        v.errors.push(ConfigError::new(
            None,
            "sinks",
            "no sink is configured: events would have nowhere to go (add one, e.g. `{ id: out, plugin: stdout }`)",
        ));
    }
    if !v.errors.is_empty() {
        return Err(v.errors);
    }
    Ok(Config {
        host: agent.host.clone().unwrap_or_else(super::defaults::hostname),
        data_dir: agent.data_dir.clone().unwrap_or_else(super::defaults::data_dir),
        queue_size: agent.queue_size.unwrap_or(1024).max(1),
        shutdown_timeout: agent.shutdown_timeout.map_or(std::time::Duration::from_secs(5), Duration::get),
        agent,
        sources: sources.into_iter().map(|(j, _)| j).collect(),
        engines,
        sinks,
        files: Vec::new(),
    })
}

impl Validator<'_> {
    /// The id and plugin of any job; `None` (with the errors recorded) when
    /// either is wrong or the plugin refuses its config.
    fn common(&mut self, c: &Common, role: Role, path: &str, section: &str) -> Option<Job<()>> {
        let id = c.id.value.clone();
        let mut ok = true;
        if id.trim().is_empty() {
            self.errors.push(ConfigError::new(Some(c.id.mark.clone()), format!("{path}.id"), "the id is empty"));
            ok = false;
        } else if let Some(first) = self.seen.get(&id) {
            self.errors.push(ConfigError::new(
                Some(c.id.mark.clone()),
                format!("{path}.id"),
                format!("duplicate id `{id}`, first used at {first}"),
            ));
            ok = false;
        } else {
            self.seen.insert(id.clone(), c.id.mark.clone());
        }
        let config = c.config.clone().unwrap_or_else(|| Node::null(c.plugin.mark.clone()));
        let at_plugin =
            |message: String| ConfigError::new(Some(c.plugin.mark.clone()), format!("{path}.plugin"), message);
        match self.registry.find(&c.plugin, role) {
            Some(p) => {
                if let Err(e) = p.validate(&config, &format!("{path}.config")) {
                    self.errors.push(e);
                    ok = false;
                }
            }
            None => {
                let message = match self.registry.get(&c.plugin) {
                    Some(p) => {
                        format!("`{}` is a {} plugin; it cannot be used under `{section}`", p.name, p.describe_role())
                    }
                    None => {
                        let hint = self
                            .registry
                            .suggest(&c.plugin)
                            .map(|s| format!(" (did you mean `{s}`?)"))
                            .unwrap_or_default();
                        format!("unknown plugin `{}`{hint}; `vane plugins` lists them", *c.plugin)
                    }
                };
                self.errors.push(at_plugin(message));
                ok = false;
            }
        }
        ok.then(|| Job {
            id,
            plugin: c.plugin.value.clone(),
            path: path.to_owned(),
            mark: c.id.mark.clone(),
            config,
            next: Vec::new(),
            tags: Vec::new(),
            levels: None,
            spec: (),
        })
    }

    /// `next` as written, tags and levels.
    fn flow(&mut self, f: &Flow, path: &str) -> (Targets, Vec<(String, String)>, Option<Arc<Levels>>) {
        let next = match &f.next {
            None => Vec::new(),
            Some(n) => string_list(n, &format!("{path}.next")).unwrap_or_else(|e| {
                self.errors.push(e);
                Vec::new()
            }),
        };
        let tags = match &f.tags {
            None => Vec::new(),
            Some(n) => string_map(n, &format!("{path}.tags")).unwrap_or_else(|e| {
                self.errors.push(e);
                Vec::new()
            }),
        };
        let mut level = |n: &Option<Node>, key: &str| {
            let n = n.as_ref()?;
            level(n, &format!("{path}.{key}")).map_err(|e| self.errors.push(e)).ok()
        };
        let (critical, warning, ok) =
            (level(&f.critical, "critical"), level(&f.warning, "warning"), level(&f.ok, "ok"));
        let levels = (critical.is_some() || warning.is_some() || ok.is_some())
            .then(|| Arc::new(Levels { critical, warning, ok }));
        (next, tags, levels)
    }

    fn source(&mut self, entry: &SourceSection, path: &str, section: &str) -> Option<(Job<SourceSpec>, Targets)> {
        let (common, (flow, own)) = (&entry.0, (&entry.1.0, &entry.1.1));
        let job = self.common(common, Role::Source, path, section);
        let (targets, tags, levels) = self.flow(flow, path);
        let interval = own.interval.map_or(self.default_interval, Duration::get);
        if interval.is_zero() {
            self.errors.push(ConfigError::new(
                Some(common.id.mark.clone()),
                format!("{path}.interval"),
                "the interval must be more than zero",
            ));
            return None;
        }
        let spec = SourceSpec { interval, timeout: own.timeout.map_or(interval, Duration::get) };
        Some((Job { tags, levels, ..job? }.with(spec), targets))
    }

    fn engine(&mut self, entry: &EngineSection, path: &str) -> Option<(Job<EngineSpec>, Targets)> {
        let (common, (flow, own)) = (&entry.0, (&entry.1.0, &entry.1.1));
        let job = self.common(common, Role::Engine, path, "engines");
        let (targets, tags, levels) = self.flow(flow, path);
        if own.workers == Some(0) {
            self.errors.push(ConfigError::new(
                Some(common.id.mark.clone()),
                format!("{path}.workers"),
                "`workers` must be at least 1",
            ));
            return None;
        }
        let via = match &own.via {
            Some(via) => Some(self.via(via, &common.id.value, &format!("{path}.via"))?),
            None => None,
        };
        let spec =
            EngineSpec { beat: own.beat.map(Duration::get), workers: own.workers.unwrap_or(1), via, lease: None };
        Some((Job { tags, levels, ..job? }.with(spec), targets))
    }

    /// A bus-backed engine's sides: the plugin must be a sink and a source,
    /// and take the config (with its queue) as both.
    fn via(&mut self, via: &Via, id: &str, path: &str) -> Option<ViaSpec> {
        let at = |m: String| ConfigError::new(Some(via.plugin.mark.clone()), format!("{path}.plugin"), m);
        let config = via.config.clone().unwrap_or_else(|| Node::null(via.plugin.mark.clone()));
        let queue =
            config.get("queue").and_then(Node::as_str).map_or_else(|| format!("vane.engine.{id}"), str::to_owned);
        let mark = config.mark.clone();
        let both = bus::with_defaults(&config, &[("queue", Node::string(mark.clone(), &queue))]);
        let side = |extra: &Option<Node>| match extra {
            Some(Node { kind: NodeKind::Map(m), .. }) => {
                let m: Vec<(&str, Node)> = m.iter().filter_map(|(k, v)| Some((k.as_str()?, v.clone()))).collect();
                bus::with_defaults(&both, &m)
            }
            _ => both.clone(),
        };
        let sink = side(&via.publish);
        // The workers' source reads the queue alone: no bindings of its own.
        let empty = Node { mark: mark.clone(), kind: NodeKind::Seq(Vec::new()) };
        let source = bus::with_defaults(&side(&via.consume), &[("bindings", empty)]);
        let mut ok = true;
        for (role, cfg) in [(Role::Sink, &sink), (Role::Source, &source)] {
            match self.registry.find(&via.plugin, role) {
                Some(p) => {
                    if let Err(e) = p.validate(cfg, &format!("{path}.config")) {
                        self.errors.push(e);
                        ok = false;
                    }
                }
                None => {
                    self.errors.push(at(format!(
                        "`{}` cannot carry an engine's events: `via` takes a plugin that is both a sink and a source (amqp)",
                        *via.plugin
                    )));
                    return None;
                }
            }
        }
        ok.then(|| ViaSpec {
            plugin: via.plugin.value.clone(),
            queue,
            sink,
            source,
            buffer: via.buffer.clone().unwrap_or_default(),
        })
    }

    fn sink(&mut self, entry: &SinkSection, path: &str) -> Option<Job<SinkSpec>> {
        let (common, own) = (&entry.0, &entry.1);
        let job = self.common(common, Role::Sink, path, "sinks")?;
        let spec = SinkSpec {
            batch_size: own.batch_size.unwrap_or(1000).max(1),
            batch_wait: own.batch_wait.map_or(std::time::Duration::from_secs(1), Duration::get),
            batch_bytes: own.batch_bytes.map_or(4 << 20, |b| b.0.max(1)),
            buffer: own.buffer.clone().unwrap_or_default(),
            submission_interval: own.submission_interval.map(Duration::get),
            retry_for: own.retry_for.map(Duration::get),
        };
        Some(job.with(spec))
    }

    /// Keeps the targets that are engines or sinks; the others are errors.
    fn resolve_next(
        &mut self,
        next: &mut Vec<String>,
        targets: &Targets,
        roles: &HashMap<String, Role>,
        fed: &mut Vec<String>,
    ) {
        for (target, mark, path) in targets {
            match roles.get(target) {
                Some(Role::Engine | Role::Sink) => {
                    next.push(target.clone());
                    fed.push(target.clone());
                }
                Some(Role::Source) => self.errors.push(ConfigError::new(
                    Some(mark.clone()),
                    path.clone(),
                    format!("`{target}` is a source; `next` names engines and sinks"),
                )),
                None => {
                    let hint = roles
                        .iter()
                        .filter(|(_, r)| **r != Role::Source)
                        .map(|(k, _)| (edit_distance(k, target), k))
                        .filter(|(d, _)| *d <= 2)
                        .min()
                        .map(|(_, k)| format!(" (did you mean `{k}`?)"))
                        .unwrap_or_default();
                    self.errors.push(ConfigError::new(
                        Some(mark.clone()),
                        path.clone(),
                        format!("unknown id `{target}`: no engine or sink has that id{hint}"),
                    ))
                }
            }
        }
    }
}

/// Parses a level expression; errors point into the expression.
fn level(n: &Node, path: &str) -> Result<Expr, ConfigError> {
    let NodeKind::Scalar { text, plain } = &n.kind else {
        return Err(ConfigError::at(n, path, "expected an expression, like `latency > 0.5`"));
    };
    Expr::parse(text).map_err(|e| {
        let mut mark = n.mark.clone();
        // Quoted scalars start one column before their text.
        mark.column += (e.column - 1) as u32 + u32::from(!plain);
        ConfigError::new(Some(mark), path, format!("bad expression at its column {}: {}", e.column, e.message))
    })
}

/// One string or a list of strings, with positions.
fn string_list(n: &Node, path: &str) -> Result<Targets, ConfigError> {
    match &n.kind {
        NodeKind::Scalar { text, .. } if !n.is_null() => Ok(vec![(text.clone(), n.mark.clone(), path.to_owned())]),
        NodeKind::Seq(items) => items
            .iter()
            .enumerate()
            .map(|(i, it)| match &it.kind {
                NodeKind::Scalar { text, .. } => Ok((text.clone(), it.mark.clone(), format!("{path}[{i}]"))),
                _ => Err(ConfigError::at(it, format!("{path}[{i}]"), "expected an id")),
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
                (NodeKind::Scalar { text: k, .. }, NodeKind::Scalar { text: v, .. }) => Ok((k.clone(), v.clone())),
                _ => Err(ConfigError::at(v, format!("{path}.{}", k.as_str().unwrap_or("?")), "expected a string")),
            })
            .collect(),
        _ => Err(ConfigError::at(n, path, "expected a mapping of tag names to values")),
    }
}

/// Engines whose `next` chains lead back to themselves.
fn find_cycles(engines: &[Job<EngineSpec>]) -> Vec<ConfigError> {
    let by_id: HashMap<&str, &Job<EngineSpec>> = engines.iter().map(|j| (j.id.as_str(), j)).collect();
    let mut errors = Vec::new();
    let mut reported: Vec<String> = Vec::new();
    // 0 = unvisited, 1 = on the current path, 2 = done
    let mut state: HashMap<&str, u8> = HashMap::new();
    fn visit<'a>(
        id: &'a str,
        by_id: &HashMap<&'a str, &'a Job<EngineSpec>>,
        state: &mut HashMap<&'a str, u8>,
        stack: &mut Vec<&'a str>,
        errors: &mut Vec<ConfigError>,
        reported: &mut Vec<String>,
    ) {
        state.insert(id, 1);
        stack.push(id);
        for n in &by_id[id].next {
            let Some((&nid, _)) = by_id.get_key_value(n.as_str()) else {
                continue;
            };
            match state.get(nid).copied().unwrap_or(0) {
                0 => visit(nid, by_id, state, stack, errors, reported),
                1 => {
                    let start = stack.iter().position(|s| *s == nid).unwrap_or(0);
                    let mut cycle: Vec<&str> = stack[start..].to_vec();
                    cycle.push(nid);
                    let mut key: Vec<&str> = stack[start..].to_vec();
                    key.sort();
                    let key = key.join(",");
                    if !reported.contains(&key) {
                        reported.push(key);
                        let j = by_id[id];
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
    let mut ids: Vec<&str> = by_id.keys().copied().collect();
    ids.sort();
    for id in ids {
        if state.get(id).copied().unwrap_or(0) == 0 {
            visit(id, &by_id, &mut state, &mut Vec::new(), &mut errors, &mut reported);
        }
    }
    errors
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;
    use vane_core::prelude::*;

    impl Source for Src {
        async fn poll(&mut self, _: &Context) -> Result<Vec<Event>> {
            Ok(vec![])
        }
    }
    #[derive(serde::Deserialize)]
    #[allow(dead_code, reason = "read by serde only: the tests need the keys")]
    struct Src {
        #[serde(default)]
        url: String,
        #[serde(default)]
        nested: Option<Nested>,
    }
    #[derive(serde::Deserialize)]
    #[allow(dead_code, reason = "read by serde only: the tests need the keys")]
    struct Nested {
        timeout: Duration,
    }
    #[derive(serde::Deserialize)]
    struct Eng;
    impl Engine for Eng {
        fn process(&mut self, e: Event, out: &mut Vec<Event>, _: &Context) -> Result<(), EngineError> {
            out.push(e);
            Ok(())
        }
    }
    #[derive(serde::Deserialize)]
    struct Snk;
    impl Sink for Snk {
        async fn send(&mut self, _: &[Event], _: &Context) -> Result<(), SinkError> {
            Ok(())
        }
    }

    fn registry() -> Registry {
        let mut r = Registry::new();
        r.source::<Src>("src", "").engine::<Eng>("eng", "").sink::<Snk>("snk", "");
        r
    }

    fn check(files: &[(&str, &str)]) -> Vec<String> {
        let sources: Vec<_> = files.iter().map(|(n, t)| (PathBuf::from(n), n.to_string(), t.to_string())).collect();
        let env = |k: &str| (k == "SET").then(|| "yes".to_owned());
        match super::super::from_texts(&sources, &registry(), &env) {
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
        let c = super::super::from_texts(&[(PathBuf::from("m"), "m".into(), text)], &registry(), &|_| None).unwrap();
        assert_eq!(c.host, "h1");
        let a = c.source("a").unwrap();
        assert_eq!(a.spec.interval, std::time::Duration::from_secs(5));
        assert_eq!(a.next, vec!["e".to_owned()]);
        assert_eq!(a.tags, vec![("dc".to_owned(), "x".to_owned())]);
        assert_eq!(c.source("b").unwrap().spec.timeout, std::time::Duration::from_secs(60));
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
                "m:2:27: jobs[0].intervall: unknown key `intervall`, expected one of `id`, `plugin`, `config`, `next`, `tags`, `critical`, `warning`, `ok`, `interval`, `timeout`",
            ),
            (
                "jobs:\n  - { id: a, plugin: src, next: a }\n",
                "m:2:33: jobs[0].next: `a` is a source; `next` names engines and sinks",
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
                "m:2:27: jobs[0].workers: unknown key `workers`, expected one of `id`, `plugin`, `config`, `next`, `tags`, `critical`, `warning`, `ok`, `interval`, `timeout`",
            ),
            (
                "sources:\n  - { id: a, plugin: src, batch_size: 2 }\n",
                "m:2:27: sources[0].batch_size: unknown key `batch_size`, expected one of `id`, `plugin`, `config`, `next`, `tags`, `critical`, `warning`, `ok`, `interval`, `timeout`",
            ),
        ];
        for (text, want) in cases {
            let got = check(&[("m", &format!("{text}{SINK}"))]);
            assert_eq!(got.first().map(String::as_str), Some(*want), "config:\n{text}\nall: {got:?}");
        }
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
                "m:6:11: engines[2].id: engine `lonely` is never fed: no source or engine names it in `next`",
                "m:5:11: engines[1].next: engines form a cycle: e1 → e2 → e1",
            ]
        );
    }

    #[test]
    fn conf_d_files_merge_and_keep_their_names() {
        let main = format!("jobs:\n  - {{ id: a, plugin: src }}\n{SINK}");
        assert!(check(&[("main", &main), ("conf.d/b.yaml", "jobs:\n  - { id: b, plugin: src }\n")]).is_empty());
        let got =
            check(&[("main", &main), ("conf.d/b.yaml", "agent: { host: x }\njobs:\n  - { id: a, plugin: src }\n")]);
        assert_eq!(got, vec!["conf.d/b.yaml:1:8: agent: `agent` belongs in the main config file, not in conf.d",]);
        let got = check(&[("main", &main), ("conf.d/b.yaml", "jobs:\n  - { id: a, plugin: src }\n")]);
        assert_eq!(got, vec!["conf.d/b.yaml:2:11: jobs[0].id: duplicate id `a`, first used at main:2:11"]);
    }

    #[test]
    fn a_config_without_sinks_is_refused() {
        let got = check(&[("m", "jobs:\n  - { id: a, plugin: src }\n")]);
        assert_eq!(got.len(), 1);
        assert!(got[0].contains("no sink is configured"), "{got:?}");
    }

    #[test]
    fn the_default_config_reads_with_the_builtins_it_names() {
        let node = vane_core::node::yaml::parse("d", super::super::defaults::DEFAULT_CONFIG, &|_| None).unwrap();
        let f: File = vane_core::node::from_node(&node, "").unwrap();
        assert_eq!((f.sources.len(), f.sinks.len()), (10, 1));
    }

    #[test]
    fn jobs_is_the_older_name_of_sources_and_engines_can_be_unfed_when_asked() {
        let text = format!(
            "jobs:\n  - {{ id: a, plugin: src }}\nsources:\n  - {{ id: b, plugin: src }}\nengines:\n  - {{ id: e, plugin: eng }}\n{SINK}"
        );
        let texts = [(PathBuf::from("m"), "m".to_owned(), text)];
        let strict = super::super::from_texts(&texts, &registry(), &|_| None).unwrap_err();
        assert_eq!(strict.len(), 1, "{strict:?}");
        let options = Options { unfed_engines: true };
        let c = super::super::load::from_texts_with(&texts, &registry(), &|_| None, options).unwrap();
        assert_eq!(c.sources.iter().map(|j| j.path.as_str()).collect::<Vec<_>>(), ["sources[0]", "jobs[0]"]);
        assert_eq!(c.engine("e").unwrap().spec.workers, 1);
    }
}
