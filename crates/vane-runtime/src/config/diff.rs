//! What a reload changes: the jobs of two valid configs compared by id,
//! each added, changed, removed or kept. A job is kept when everything that
//! makes it what it is stays the same (plugin, config, next, tags, levels,
//! its role's settings); where it is written (file, line, its place in the
//! section) does not count, so moving a job or editing another file keeps it.

use std::fmt::Write;

use vane_core::node::{Node, NodeKind};

use super::{Config, EngineSpec, Job, SinkJob, SinkSpec, SourceSpec};

/// One role's jobs, sorted into what a reload does with them.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Changes {
    pub added: Vec<String>,
    pub changed: Vec<String>,
    pub removed: Vec<String>,
    pub kept: Vec<String>,
}

impl Changes {
    fn of<S: Signed>(old: &[Job<S>], new: &[Job<S>]) -> Changes {
        let mut c = Changes::default();
        for j in new {
            match old.iter().find(|o| o.id == j.id) {
                None => c.added.push(j.id.clone()),
                Some(o) if signature(o) == signature(j) => c.kept.push(j.id.clone()),
                Some(_) => c.changed.push(j.id.clone()),
            }
        }
        c.removed = old.iter().filter(|o| !new.iter().any(|j| j.id == o.id)).map(|o| o.id.clone()).collect();
        c
    }

    /// Whether it rebuilds or stops anything.
    pub fn any(&self) -> bool {
        !(self.added.is_empty() && self.changed.is_empty() && self.removed.is_empty())
    }

    /// `added: a, b; changed: c; removed: none; kept: d`, for the log.
    pub fn describe(&self) -> String {
        let list = |v: &[String]| if v.is_empty() { "none".to_owned() } else { v.join(", ") };
        format!(
            "added: {}; changed: {}; removed: {}; kept: {}",
            list(&self.added),
            list(&self.changed),
            list(&self.removed),
            list(&self.kept)
        )
    }
}

/// What a reload from one config to the next does, per role.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Plan {
    pub sources: Changes,
    pub engines: Changes,
    pub sinks: Changes,
    /// `agent:` settings that changed and take effect only at the next start.
    pub at_restart: Vec<&'static str>,
}

impl Plan {
    pub fn new(old: &Config, new: &Config) -> Plan {
        let (a, b) = (&old.agent, &new.agent);
        let mut at_restart = Vec::new();
        if old.host != new.host {
            at_restart.push("host");
        }
        if old.data_dir != new.data_dir {
            at_restart.push("data_dir");
        }
        if a.threads != b.threads {
            at_restart.push("threads");
        }
        if a.http.as_ref().map(|h| h.0.addr) != b.http.as_ref().map(|h| h.0.addr) {
            at_restart.push("http");
        }
        Plan {
            sources: Changes::of(&old.sources, &new.sources),
            engines: Changes::of(&old.engines, &new.engines),
            sinks: Changes::of(&old.sinks, &new.sinks),
            at_restart,
        }
    }
}

/// Whether a rebuilt sink can keep what its buffer holds as it is: the
/// same buffer settings (else what it holds is moved to the new buffer).
pub fn same_buffer(old: &SinkJob, new: &SinkJob) -> bool {
    format!("{:?}", old.spec.buffer) == format!("{:?}", new.spec.buffer)
}

/// What a role adds to a job's signature.
trait Signed {
    fn sign(&self, out: &mut String);
}

impl Signed for SourceSpec {
    fn sign(&self, out: &mut String) {
        let _ = write!(out, "{self:?}");
    }
}

impl Signed for SinkSpec {
    fn sign(&self, out: &mut String) {
        let _ = write!(out, "{self:?}");
    }
}

impl Signed for EngineSpec {
    fn sign(&self, out: &mut String) {
        let _ = write!(out, "beat {:?} workers {} ", self.beat, self.workers);
        if let Some(v) = &self.via {
            let _ = write!(out, "via {} {} {:?} ", v.plugin, v.queue, v.buffer);
            plain(&v.sink, out);
            plain(&v.source, out);
        }
        if let Some(l) = &self.lease {
            let _ = write!(out, "lease {} {} ", l.plugin, l.name);
            plain(&l.config, out);
        }
    }
}

/// Everything that makes a job what it is, without where it is written.
fn signature<S: Signed>(j: &Job<S>) -> String {
    let mut s = format!("{}\n", j.plugin);
    plain(&j.config, &mut s);
    let _ = write!(s, "\n{:?}\n{:?}\n{:?}\n", j.next, j.tags, j.levels);
    j.spec.sign(&mut s);
    s
}

/// A node as text without its positions.
fn plain(n: &Node, out: &mut String) {
    match &n.kind {
        NodeKind::Scalar { text, plain } => {
            let _ = write!(out, "{}{text:?}", if *plain { "" } else { "'" });
        }
        NodeKind::Seq(items) => {
            out.push('[');
            for i in items {
                plain(i, out);
                out.push(',');
            }
            out.push(']');
        }
        NodeKind::Map(entries) => {
            out.push('{');
            for (k, v) in entries {
                plain(k, out);
                out.push(':');
                plain(v, out);
                out.push(',');
            }
            out.push('}');
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;
    use vane_core::prelude::*;

    #[derive(serde::Deserialize)]
    struct Counter;
    impl Source for Counter {
        async fn poll(&mut self, _: &Context) -> Result<Vec<Event>> {
            Ok(vec![])
        }
    }

    #[derive(serde::Deserialize)]
    struct Passthrough;
    impl Engine for Passthrough {
        fn process(&mut self, e: Event, out: &mut Vec<Event>, _: &Context) -> Result<(), EngineError> {
            out.push(e);
            Ok(())
        }
    }

    #[derive(serde::Deserialize)]
    struct Collect;
    impl Sink for Collect {
        async fn send(&mut self, _: &[Event], _: &Context) -> Result<(), SinkError> {
            Ok(())
        }
    }

    fn config(text: &str) -> Config {
        let mut r = Registry::new();
        r.source::<Counter>("counter", "").engine::<Passthrough>("passthrough", "").sink::<Collect>("collect", "");
        crate::config::from_texts(&[(PathBuf::from("m"), "m".into(), text.into())], &r, &|_| None).unwrap()
    }

    /// Sources `a` and `b` (`b` through engine `e`, with its interval
    /// `b_interval`) into sink `s`, `b` first when `b_first`.
    fn two_sources(b_first: bool, b_interval: &str) -> String {
        let a = "  - id: a\n    plugin: counter\n    interval: 1s\n";
        let b = format!("  - id: b\n    plugin: counter\n    interval: {b_interval}\n    next: e\n");
        let sources = if b_first { format!("{b}{a}") } else { format!("{a}{b}") };
        format!(
            "# a comment\nsources:\n{sources}engines:\n  - id: e\n    plugin: passthrough\nsinks:\n  - id: s\n    plugin: collect\n"
        )
    }

    #[test]
    fn a_job_moved_or_commented_around_is_kept_one_edited_is_changed() {
        let old = config(&two_sources(false, "1s"));
        // `a` moves below `b`; `b` changes its interval.
        let moved = two_sources(true, "2s");
        let plan = Plan::new(&old, &config(&moved));
        assert_eq!(plan.sources.kept, ["a"]);
        assert_eq!(plan.sources.changed, ["b"]);
        assert!(!plan.engines.any() && !plan.sinks.any());
        assert_eq!(plan.engines.kept, ["e"]);
    }

    #[test]
    fn jobs_added_and_removed_are_named_by_id() {
        let old = config(&two_sources(false, "1s"));
        let new = config(
            "
sources:
  - id: a
    plugin: counter
    interval: 1s
  - id: c
    plugin: counter
sinks:
  - id: s
    plugin: collect
  - id: t
    plugin: collect
    buffer: { kind: memory, max_size: 1MiB }
",
        );
        let plan = Plan::new(&old, &new);
        assert_eq!(
            (plan.sources.added.as_slice(), plan.sources.removed.as_slice()),
            (&["c".to_owned()][..], &["b".to_owned()][..])
        );
        assert_eq!(plan.engines.removed, ["e"]);
        assert_eq!(plan.sinks.added, ["t"]);
        assert_eq!(plan.sinks.kept, ["s"]);
        assert_eq!(plan.sources.describe(), "added: c; changed: none; removed: b; kept: a");
    }

    #[test]
    fn a_sinks_buffer_settings_decide_whether_its_buffer_is_kept() {
        let a = config("sinks:\n  - id: s\n    plugin: collect\n    batch_size: 10\n");
        let b = config("sinks:\n  - id: s\n    plugin: collect\n    batch_size: 20\n");
        let c = config("sinks:\n  - id: s\n    plugin: collect\n    buffer: { max_size: 1MiB }\n");
        assert_eq!(Plan::new(&a, &b).sinks.changed, ["s"]);
        assert!(same_buffer(&a.sinks[0], &b.sinks[0]));
        assert!(!same_buffer(&a.sinks[0], &c.sinks[0]));
    }
}
