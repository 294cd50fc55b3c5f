//! Engines run by workers elsewhere, fed through a message bus (`via:`):
//! the same config serves the agents that publish and the workers that
//! consume. [`Config::publishing`] is what an agent runs: each bus-backed
//! engine becomes a sink of the bus plugin, named after the engine, that
//! publishes to the engine's queue. [`Config::worker`] is what `vane
//! engine ID --worker` runs: the bus plugin's source reading the engine's
//! queue, the engine itself, and what it sends to (its engines and sinks,
//! a bus-backed engine among them again as a publishing sink).

use std::collections::HashSet;

use vane_core::node::{Node, NodeKind};

use super::{Config, EngineJob, Job, LeaseSpec, SinkJob, SinkSpec, SourceJob, SourceSpec, Unknown};

/// The built-in source of the agent's own figures, kept in workers.
const FIGURES: &str = "internal";

/// `node` (a mapping, or nothing) with the `extra` keys it lacks added.
pub fn with_defaults(node: &Node, extra: &[(&str, Node)]) -> Node {
    let mut entries = match &node.kind {
        NodeKind::Map(m) => m.clone(),
        _ => Vec::new(),
    };
    for (k, v) in extra {
        if !entries.iter().any(|(key, _)| key.as_str() == Some(k)) {
            entries.push((Node::string(node.mark.clone(), *k), v.clone()));
        }
    }
    Node::map(node.mark.clone(), entries)
}

/// Why a config cannot be run as a worker.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    #[error("{0}")]
    Unknown(#[from] Unknown),
    #[error("engine `{0}` has no `via`: only a bus-backed engine has workers")]
    NotBusBacked(String),
}

/// The sink that publishes to a bus-backed engine's queue.
fn publisher(e: &EngineJob) -> Option<SinkJob> {
    let via = e.spec.via.as_ref()?;
    Some(Job {
        id: e.id.clone(),
        plugin: via.plugin.clone(),
        path: format!("{}.via", e.path),
        mark: e.mark.clone(),
        config: via.sink.clone(),
        next: Vec::new(),
        tags: Vec::new(),
        levels: None,
        spec: SinkSpec {
            batch_size: 1000,
            batch_wait: std::time::Duration::from_millis(100),
            batch_bytes: 4 << 20,
            buffer: via.buffer.clone(),
            submission_interval: None,
            retry_for: None,
        },
    })
}

impl Config {
    /// A job's `next` made explicit: "every sink" named sink by sink, so
    /// that adding sinks does not change where it goes.
    fn explicit_next(&mut self) {
        let every: Vec<String> = self.sinks.iter().map(|s| s.id.clone()).collect();
        for next in self.sources.iter_mut().map(|j| &mut j.next).chain(self.engines.iter_mut().map(|j| &mut j.next)) {
            if next.is_empty() {
                next.clone_from(&every);
            }
        }
    }

    /// The config an agent runs: every bus-backed engine replaced by a sink
    /// publishing to its queue. A config without any is returned as it is.
    pub fn publishing(mut self) -> Config {
        if !self.engines.iter().any(|e| e.spec.via.is_some()) {
            return self;
        }
        self.explicit_next();
        let (bus, local): (Vec<EngineJob>, Vec<EngineJob>) =
            self.engines.into_iter().partition(|e| e.spec.via.is_some());
        self.engines = local;
        self.sinks.extend(bus.iter().filter_map(publisher));
        self
    }

    /// The config a worker of engine `id` runs: no sources but the bus
    /// plugin's, reading the engine's queue; the engine; and the engines and
    /// sinks it reaches. Bus-backed engines it reaches are published to.
    pub fn worker(mut self, id: &str) -> Result<Config, WorkerError> {
        let via = self.engine(id)?.spec.via.clone().ok_or_else(|| WorkerError::NotBusBacked(id.to_owned()))?;
        self.explicit_next();
        // The agent's own figures stay: each worker reports its own.
        let figures: Vec<SourceJob> = self.sources.iter().filter(|s| s.plugin == FIGURES).cloned().collect();
        // What the engine and the figures reach, through local engines.
        let mut keep: HashSet<String> = HashSet::from([id.to_owned()]);
        let mut todo = vec![id.to_owned()];
        for f in &figures {
            for n in &f.next {
                if keep.insert(n.clone()) {
                    todo.push(n.clone());
                }
            }
        }
        while let Some(at) = todo.pop() {
            let Some(e) = self.engines.iter().find(|e| e.id == at) else { continue };
            if e.spec.via.is_some() && e.id != id {
                continue;
            }
            for n in &e.next {
                if keep.insert(n.clone()) {
                    todo.push(n.clone());
                }
            }
        }
        let engine = self.engine(id)?;
        let feeder: SourceJob = Job {
            id: format!("{id}_bus"),
            plugin: via.plugin.clone(),
            path: format!("{}.via", engine.path),
            mark: engine.mark.clone(),
            config: via.source.clone(),
            next: vec![id.to_owned()],
            tags: Vec::new(),
            levels: None,
            spec: SourceSpec {
                interval: std::time::Duration::from_secs(10),
                timeout: std::time::Duration::from_secs(10),
            },
        };
        self.sources = std::iter::once(feeder).chain(figures).collect();
        self.engines.retain(|e| keep.contains(&e.id));
        for e in &mut self.engines {
            if e.id == id {
                e.spec.via = None;
                e.spec.lease = Some(LeaseSpec {
                    plugin: via.plugin.clone(),
                    name: format!("{}.beat", via.queue),
                    config: via.source.clone(),
                });
            }
        }
        self.sinks.retain(|s| keep.contains(&s.id));
        Ok(self.publishing())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vane_core::prelude::*;

    #[derive(serde::Deserialize)]
    struct Bus {
        #[allow(dead_code, reason = "read by serde only")]
        queue: String,
        #[serde(default)]
        #[allow(dead_code, reason = "read by serde only")]
        bindings: Vec<String>,
    }
    impl Source for Bus {
        async fn poll(&mut self, _: &Context) -> Result<Vec<Event>> {
            Ok(vec![])
        }
    }
    #[derive(serde::Deserialize)]
    struct BusOut {
        #[allow(dead_code, reason = "read by serde only")]
        queue: String,
    }
    impl Sink for BusOut {
        async fn send(&mut self, _: &[Event], _: &Context) -> Result<(), SinkError> {
            Ok(())
        }
    }

    fn config(text: &str) -> Config {
        let mut r = Registry::new();
        r.source::<Bus>("bus", "").sink::<BusOut>("bus", "");
        r.engine_fn("pass", "", |e, _| Ok(Some(e)), None);
        r.source::<Bus>("src", "").sink::<BusOut>("out", "");
        let texts = [(std::path::PathBuf::from("v.yaml"), "v.yaml".to_owned(), text.to_owned())];
        crate::config::from_texts(&texts, &r, &|_| None).unwrap()
    }

    const FLEET: &str = "sources:\n  - { id: s, plugin: src, config: { queue: x }, next: [a, direct] }\n\
        engines:\n\
        \x20 - { id: a, plugin: pass, next: b, via: { plugin: bus } }\n\
        \x20 - { id: b, plugin: pass, via: { plugin: bus, config: { queue: custom } } }\n\
        \x20 - { id: direct, plugin: pass, next: o2 }\n\
        sinks:\n  - { id: o1, plugin: out, config: { queue: y } }\n  - { id: o2, plugin: out, config: { queue: z } }\n";

    #[test]
    fn an_agent_publishes_what_a_bus_backed_engine_would_get() {
        let c = config(FLEET).publishing();
        let ids = |v: &[SinkJob]| v.iter().map(|j| j.id.clone()).collect::<Vec<_>>();
        assert_eq!(ids(&c.sinks), ["o1", "o2", "a", "b"]);
        assert_eq!(c.engines.iter().map(|e| e.id.as_str()).collect::<Vec<_>>(), ["direct"]);
        assert_eq!(c.sinks[2].config.get("queue").and_then(Node::as_str), Some("vane.engine.a"));
        assert_eq!(c.sinks[3].config.get("queue").and_then(Node::as_str), Some("custom"));
        assert_eq!(c.sources[0].next, ["a", "direct"]);
    }

    #[test]
    fn a_worker_reads_its_queue_and_reaches_only_what_the_engine_sends_to() {
        let c = config(FLEET).worker("a").unwrap();
        assert_eq!(c.sources.len(), 1);
        assert_eq!((c.sources[0].id.as_str(), c.sources[0].next.as_slice()), ("a_bus", &["a".to_owned()][..]));
        assert_eq!(c.sources[0].config.get("queue").and_then(Node::as_str), Some("vane.engine.a"));
        assert_eq!(c.engines.iter().map(|e| e.id.as_str()).collect::<Vec<_>>(), ["a"]);
        let lease = c.engines[0].spec.lease.as_ref().expect("a worker takes part in the beat's lease");
        assert_eq!((lease.plugin.as_str(), lease.name.as_str()), ("bus", "vane.engine.a.beat"));
        // b is bus-backed too: a's worker publishes to it.
        assert_eq!(c.sinks.iter().map(|s| s.id.as_str()).collect::<Vec<_>>(), ["b"]);
        // b's worker sends to every sink, as b's `next` (none) says.
        let c = config(FLEET).worker("b").unwrap();
        assert_eq!(c.sinks.iter().map(|s| s.id.as_str()).collect::<Vec<_>>(), ["o1", "o2"]);
        assert!(matches!(config(FLEET).worker("direct"), Err(WorkerError::NotBusBacked(_))));
    }
}
