//! The plugin registry: every plugin under a unique name, with its role,
//! description, config keys and a factory.
//!
//! Built-ins use short names (`cpu`); third-party plugins use reverse-domain
//! names (`com.example.random`). Registering a name twice is recorded and
//! reported by [`Registry::finish`], which the agent calls at start-up.

use std::collections::HashMap;
use std::fmt;

use crate::config::{ConfigError, Node, from_node, struct_fields};
use crate::context::Context;
use crate::plugin::{
    DynEngine, DynService, DynSink, DynSource, Engine, Error, Service, Sink, Source,
};

/// The role a plugin plays.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Polled on an interval.
    Source,
    /// Runs until the agent stops (a listener, a subscription).
    Service,
    Engine,
    Sink,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Source => "source",
            Role::Service => "source (long-running)",
            Role::Engine => "engine",
            Role::Sink => "sink",
        }
    }

    /// Whether a job of this role goes under `jobs:`.
    pub fn is_source(self) -> bool {
        matches!(self, Role::Source | Role::Service)
    }

    /// The config section a plugin of this role is used in; names are
    /// unique within a family.
    pub fn family(self) -> Family {
        match self {
            Role::Source | Role::Service => Family::Source,
            Role::Engine => Family::Engine,
            Role::Sink => Family::Sink,
        }
    }
}

/// Sources (polled or long-running), engines, sinks: a name is unique
/// within each, so `lua` can be both a source and an engine.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Family {
    Source,
    Engine,
    Sink,
}

impl Family {
    pub fn as_str(self) -> &'static str {
        match self {
            Family::Source => "source",
            Family::Engine => "engine",
            Family::Sink => "sink",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A built plugin instance.
pub enum Instance {
    Source(Box<dyn DynSource>),
    Service(Box<dyn DynService>),
    Engine(Box<dyn DynEngine>),
    Sink(Box<dyn DynSink>),
}

type Validate = fn(&Node, &str) -> Result<(), ConfigError>;
type Build = fn(&Node, &str, &Context) -> Result<Instance, BuildError>;

/// Why an instance could not be built.
#[derive(Debug)]
pub enum BuildError {
    Config(ConfigError),
    Plugin(Error),
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BuildError::Config(e) => e.fmt(f),
            BuildError::Plugin(e) => e.fmt(f),
        }
    }
}

/// One registered plugin.
pub struct Plugin {
    pub name: String,
    pub role: Role,
    pub description: String,
    /// Top-level keys of its config, from its `Deserialize` impl.
    pub keys: &'static [&'static str],
    validate: Validate,
    build: Build,
}

impl Plugin {
    /// Reads the config without building anything.
    pub fn validate(&self, config: &Node, path: &str) -> Result<(), ConfigError> {
        (self.validate)(config, path)
    }

    /// Reads the config and builds an instance.
    pub fn build(&self, config: &Node, path: &str, ctx: &Context) -> Result<Instance, BuildError> {
        (self.build)(config, path, ctx)
    }
}

/// Every plugin the agent knows.
#[derive(Default)]
pub struct Registry {
    plugins: Vec<Plugin>,
    index: HashMap<(String, Family), usize>,
    problems: Vec<String>,
}

fn check<T: serde::de::DeserializeOwned>(n: &Node, path: &str) -> Result<(), ConfigError> {
    from_node::<T>(n, path).map(drop)
}

impl Registry {
    pub fn new() -> Registry {
        Registry::default()
    }

    /// Registers a polled source.
    pub fn source<T: Source>(&mut self, name: &str, description: &str) -> &mut Self {
        self.typed::<T::Config>(name, description, Role::Source, |n, p, ctx| {
            let s = T::build(from_node(n, p).map_err(BuildError::Config)?, ctx);
            Ok(Instance::Source(Box::new(s.map_err(BuildError::Plugin)?)))
        })
    }

    /// Registers a long-running source.
    pub fn service<T: Service>(&mut self, name: &str, description: &str) -> &mut Self {
        self.typed::<T::Config>(name, description, Role::Service, |n, p, ctx| {
            let s = T::build(from_node(n, p).map_err(BuildError::Config)?, ctx);
            Ok(Instance::Service(Box::new(s.map_err(BuildError::Plugin)?)))
        })
    }

    /// Registers an engine.
    pub fn engine<T: Engine>(&mut self, name: &str, description: &str) -> &mut Self {
        self.typed::<T::Config>(name, description, Role::Engine, |n, p, ctx| {
            let s = T::build(from_node(n, p).map_err(BuildError::Config)?, ctx);
            Ok(Instance::Engine(Box::new(s.map_err(BuildError::Plugin)?)))
        })
    }

    /// Registers a sink.
    pub fn sink<T: Sink>(&mut self, name: &str, description: &str) -> &mut Self {
        self.typed::<T::Config>(name, description, Role::Sink, |n, p, ctx| {
            let s = T::build(from_node(n, p).map_err(BuildError::Config)?, ctx);
            Ok(Instance::Sink(Box::new(s.map_err(BuildError::Plugin)?)))
        })
    }

    fn typed<C: serde::de::DeserializeOwned>(
        &mut self,
        name: &str,
        description: &str,
        role: Role,
        build: Build,
    ) -> &mut Self {
        self.add(Plugin {
            name: name.into(),
            role,
            description: description.into(),
            keys: struct_fields::<C>(),
            validate: check::<C>,
            build,
        })
    }

    fn add(&mut self, p: Plugin) -> &mut Self {
        if !valid_name(&p.name) {
            self.problems.push(format!(
                "plugin name {:?} is not valid: use lowercase letters, digits, `_`, `-` and dots \
                 (built-ins: `cpu`; third-party: `com.example.random`)",
                p.name
            ));
        } else if self.index.contains_key(&(p.name.clone(), p.role.family())) {
            self.problems.push(format!(
                "plugin name `{}` is registered twice as a {}",
                p.name,
                p.role.family().as_str()
            ));
        } else {
            self.index
                .insert((p.name.clone(), p.role.family()), self.plugins.len());
            self.plugins.push(p);
        }
        self
    }

    /// Fails with every registration problem (duplicate or invalid names).
    pub fn finish(&self) -> Result<(), Vec<String>> {
        if self.problems.is_empty() {
            Ok(())
        } else {
            Err(self.problems.clone())
        }
    }

    /// The plugin of this name in a family.
    pub fn find(&self, name: &str, family: Family) -> Option<&Plugin> {
        self.index
            .get(&(name.to_owned(), family))
            .map(|&i| &self.plugins[i])
    }

    /// Some plugin of this name, in any family.
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
        && n.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '_' | '-' | '.'))
        && !n.ends_with('.')
}

/// Levenshtein distance, for suggestions.
pub fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(ca != *cb))
                .min(prev[j + 1] + 1)
                .min(cur[j] + 1);
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
    struct Cfg {
        #[allow(dead_code)]
        max: f64,
    }
    struct Random;
    impl Source for Random {
        type Config = Cfg;
        fn build(_: Cfg, _: &Context) -> Result<Self> {
            Ok(Random)
        }
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
        let problems = r.finish().unwrap_err();
        assert_eq!(problems.len(), 2);
        assert!(problems[0].contains("registered twice as a source"));
        // The same name may be a source and an engine.
        struct E;
        impl Engine for E {
            type Config = ();
            fn build(_: (), _: &Context) -> Result<Self> {
                Ok(E)
            }
            fn process(&mut self, e: Event, out: &mut Vec<Event>) -> Result<()> {
                out.push(e);
                Ok(())
            }
        }
        let mut r2 = Registry::new();
        r2.source::<Random>("both", "").engine::<E>("both", "");
        assert!(r2.finish().is_ok());
        assert_eq!(r2.find("both", Family::Engine).unwrap().role, Role::Engine);
        assert_eq!(r.get("com.example.random").unwrap().keys, &["max"]);
        assert_eq!(r.suggest("com.example.randon"), Some("com.example.random"));
    }
}
