//! The plugin registry: every plugin under a unique name, with its role,
//! description, config keys and a factory.
//!
//! Built-ins use short names (`cpu`); third-party plugins use reverse-domain
//! names (`com.example.random`). A name is unique within its role, so `lua`
//! can be both a source and an engine. Registering a name twice is recorded
//! and reported by [`Registry::finish`], which the agent calls at start-up.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use crate::context::Context;
use crate::error::BuildError;
use crate::error::ServiceError;
use crate::instance::Instance;
use crate::lease::LeaseFn;
use crate::node::{ConfigError, Node, from_node, struct_fields};
use crate::plugin::{Beat, Build, Engine, FnEngine, FnService, Service, Sink, Source, Work};

/// The role a plugin plays, which is also the config section its jobs are
/// declared in (`sources:`, `engines:`, `sinks:`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    /// Polled on an interval, or long-running (a listener, a subscription).
    Source,
    Engine,
    Sink,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Source => "source",
            Role::Engine => "engine",
            Role::Sink => "sink",
        }
    }

    /// The config section of this role's jobs.
    pub fn section(self) -> &'static str {
        match self {
            Role::Source => "sources",
            Role::Engine => "engines",
            Role::Sink => "sinks",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

type Validate = Arc<dyn Fn(&Node, &str) -> Result<(), ConfigError> + Send + Sync>;
type Factory = Arc<dyn Fn(&Node, &str, &Context) -> Result<Instance, BuildError> + Send + Sync>;

/// One registered plugin.
pub struct Plugin {
    pub name: String,
    pub role: Role,
    /// A source that runs until the agent stops, rather than being polled.
    pub long_running: bool,
    pub description: String,
    /// Top-level keys of its config, read from its `Deserialize` impl when
    /// asked ([`Plugin::keys`]): registering runs none of a plugin's code,
    /// so that start-up touches only the plugins a config uses.
    keys: fn() -> &'static [&'static str],
    validate: Validate,
    build: Factory,
}

impl Plugin {
    /// Top-level keys of its config.
    pub fn keys(&self) -> &'static [&'static str] {
        (self.keys)()
    }

    /// Reads the config without building anything.
    pub fn validate(&self, config: &Node, path: &str) -> Result<(), ConfigError> {
        (self.validate)(config, path)
    }

    /// Reads the config and builds an instance. A config that cannot be read
    /// is a [`BuildError`] that stops the job.
    pub fn build(&self, config: &Node, path: &str, ctx: &Context) -> Result<Instance, BuildError> {
        (self.build)(config, path, ctx)
    }

    /// The role as `vane plugins` shows it.
    pub fn describe_role(&self) -> &'static str {
        match (self.role, self.long_running) {
            (Role::Source, true) => "source (long-running)",
            (r, _) => r.as_str(),
        }
    }
}

/// A problem with the registrations, reported by [`Registry::finish`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Problem {
    #[error(
        "plugin name {0:?} is not valid: use lowercase letters, digits, `_`, `-` and dots \
         (built-ins: `cpu`; third-party: `com.example.random`)"
    )]
    InvalidName(String),
    #[error("plugin name `{name}` is registered twice as a {role}")]
    Duplicate { name: String, role: Role },
}

/// Every problem with the registrations.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
pub struct RegistryError(pub Vec<Problem>);

/// Every plugin the agent knows.
#[derive(Default)]
pub struct Registry {
    plugins: Vec<Plugin>,
    index: HashMap<(String, Role), usize>,
    leases: HashMap<String, LeaseFn>,
    problems: Vec<Problem>,
}

/// Reads a plugin's typed config, then builds it with `make`.
fn factory<T: Build>(make: fn(T, &Context) -> Instance) -> Factory {
    Arc::new(move |n, path, ctx| {
        let config = from_node::<T::Config>(n, path).map_err(BuildError::stop)?;
        Ok(make(T::build(config, ctx)?, ctx))
    })
}

fn validate<C: serde::de::DeserializeOwned>() -> Validate {
    Arc::new(|n, path| from_node::<C>(n, path).map(drop))
}

impl Registry {
    pub fn new() -> Registry {
        Registry::default()
    }

    /// Registers a polled source.
    pub fn source<T: Source + Build>(&mut self, name: &str, description: &str) -> &mut Self {
        let f = factory::<T>(|s, _| Instance::Source(Box::new(s)));
        self.typed::<T::Config>(name, description, Role::Source, false, f)
    }

    /// Registers a long-running source.
    pub fn service<T: Service + Build>(&mut self, name: &str, description: &str) -> &mut Self {
        let f = factory::<T>(|s, _| Instance::Service(Box::new(s)));
        self.typed::<T::Config>(name, description, Role::Source, true, f)
    }

    /// Registers a long-running source made of a function: it gets its
    /// typed config (checked like any plugin's) and its context, and returns
    /// when the agent stops (Tourbillon's plugin shape).
    pub fn service_fn<C, F, Fut>(&mut self, name: &str, description: &str, f: F) -> &mut Self
    where
        C: serde::de::DeserializeOwned + Send + 'static,
        F: Fn(C, Context) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = Result<(), ServiceError>> + Send + 'static,
    {
        let f = Arc::new(f);
        let build: Factory = Arc::new(move |n, path, _| {
            let config = from_node::<C>(n, path).map_err(BuildError::stop)?;
            let f = f.clone();
            Ok(Instance::Service(Box::new(FnService(Box::new(move |ctx| Box::pin(f(config, ctx)))))))
        });
        self.typed::<C>(name, description, Role::Source, true, build)
    }

    /// Registers an engine.
    pub fn engine<T: Engine + Build>(&mut self, name: &str, description: &str) -> &mut Self {
        let f = factory::<T>(|s, _| Instance::Engine(Box::new(s)));
        self.typed::<T::Config>(name, description, Role::Engine, false, f)
    }

    /// Registers an engine made of a per-event function and an optional beat
    /// function (Canopsis's task pair); it takes no config.
    pub fn engine_fn(&mut self, name: &str, description: &str, work: Work, beat: Option<Beat>) -> &mut Self {
        let f: Factory = Arc::new(move |n, path, _| {
            from_node::<()>(n, path).map_err(BuildError::stop)?;
            Ok(Instance::Engine(Box::new(FnEngine { work, beat })))
        });
        self.typed::<()>(name, description, Role::Engine, false, f)
    }

    /// Registers a sink.
    pub fn sink<T: Sink + Build>(&mut self, name: &str, description: &str) -> &mut Self {
        let f = factory::<T>(|s, _| Instance::Sink(Box::new(s)));
        self.typed::<T::Config>(name, description, Role::Sink, false, f)
    }

    /// Lets the bus plugin `name` (registered as a source) hold a lease
    /// ([`crate::lease`]): a bus-backed engine of that plugin then beats on
    /// one of its workers at a time.
    pub fn lease(&mut self, name: &str, hold: LeaseFn) -> &mut Self {
        self.leases.insert(name.to_owned(), hold);
        self
    }

    /// The lease the plugin `name` offers, if any.
    pub fn find_lease(&self, name: &str) -> Option<LeaseFn> {
        self.leases.get(name).copied()
    }

    fn typed<C: serde::de::DeserializeOwned>(
        &mut self,
        name: &str,
        description: &str,
        role: Role,
        long_running: bool,
        build: Factory,
    ) -> &mut Self {
        self.add(Plugin {
            name: name.into(),
            role,
            long_running,
            description: description.into(),
            keys: struct_fields::<C>,
            validate: validate::<C>(),
            build,
        })
    }

    fn add(&mut self, p: Plugin) -> &mut Self {
        if !valid_name(&p.name) {
            self.problems.push(Problem::InvalidName(p.name));
        } else if self.index.contains_key(&(p.name.clone(), p.role)) {
            self.problems.push(Problem::Duplicate { name: p.name, role: p.role });
        } else {
            self.index.insert((p.name.clone(), p.role), self.plugins.len());
            self.plugins.push(p);
        }
        self
    }

    /// Fails with every registration problem (duplicate or invalid names).
    pub fn finish(&self) -> Result<(), RegistryError> {
        if self.problems.is_empty() { Ok(()) } else { Err(RegistryError(self.problems.clone())) }
    }

    /// The plugin of this name in a role.
    pub fn find(&self, name: &str, role: Role) -> Option<&Plugin> {
        self.index.get(&(name.to_owned(), role)).map(|&i| &self.plugins[i])
    }

    /// Some plugin of this name, in any role.
    pub fn get(&self, name: &str) -> Option<&Plugin> {
        self.plugins.iter().find(|p| p.name == name)
    }

    /// Every plugin, in registration order.
    pub fn iter(&self) -> impl Iterator<Item = &Plugin> {
        self.plugins.iter()
    }

    /// The names closest to `name`, for "did you mean" hints.
    pub fn suggest(&self, name: &str) -> Option<&str> {
        self.plugins
            .iter()
            .map(|p| (edit_distance(&p.name, name), p.name.as_str()))
            .filter(|(d, _)| *d <= 2)
            .min()
            .map(|(_, n)| n)
    }
}

fn valid_name(n: &str) -> bool {
    !n.is_empty()
        && n.starts_with(|c: char| c.is_ascii_lowercase())
        && n.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '_' | '-' | '.'))
        && !n.ends_with('.')
}

/// Levenshtein distance, for suggestions.
pub fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(ca != *cb)).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prelude::*;

    #[derive(serde::Deserialize)]
    struct Random {
        #[allow(dead_code, reason = "read by serde only: the test needs a key")]
        max: f64,
    }
    impl Source for Random {
        async fn poll(&mut self, _: &Context) -> Result<Vec<Event>> {
            Ok(vec![])
        }
    }

    #[test]
    fn duplicates_and_bad_names_are_reported() {
        let mut r = Registry::new();
        r.source::<Random>("com.example.random", "x")
            .source::<Random>("com.example.random", "y")
            .source::<Random>("Bad Name", "z");
        let problems = r.finish().unwrap_err().0;
        assert_eq!(problems.len(), 2);
        assert!(problems[0].to_string().contains("registered twice as a source"));
        // The same name may be a source and an engine.
        fn pass(e: Event, _: &Context) -> Result<Option<Event>, EngineError> {
            Ok(Some(e))
        }
        let mut r2 = Registry::new();
        r2.source::<Random>("both", "").engine_fn("both", "", pass, None);
        assert!(r2.finish().is_ok());
        assert_eq!(r2.find("both", Role::Engine).unwrap().role, Role::Engine);
        assert_eq!(r.get("com.example.random").unwrap().keys(), &["max"]);
        assert_eq!(r.suggest("com.example.randon"), Some("com.example.random"));
    }
}
