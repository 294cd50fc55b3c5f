//! What `vane check` does after validation: every job of the config built
//! once, as the agent would build it, and dropped; nothing runs. A plugin's
//! own checks of its settings (a ping without hosts, a Lua script that does
//! not load, a CA file that does not read) are made in its build, so a
//! config `vane check` passes is one whose jobs start. A build that asks to
//! be retried (something not there yet) is a warning, not an error: the
//! agent would retry it. The jobs are built in a scratch data folder, so a
//! check never touches the state of an agent running on the same config
//! (a board's history, a source's position).

use std::path::Path;

use vane_core::error::BuildAction;
use vane_core::node::ConfigError;
use vane_core::registry::{Registry, Role};
use vane_core::testing::Harness;

use crate::config::{Config, Job};

/// What building every job said: errors (the agent would not start them)
/// and warnings (it would retry them).
#[derive(Debug, Default)]
pub struct Built {
    pub errors: Vec<ConfigError>,
    pub warnings: Vec<ConfigError>,
}

impl Built {
    fn try_one<S>(&mut self, config: &Config, registry: &Registry, job: &Job<S>, role: Role, scratch: &Path) {
        let Some(plugin) = registry.find(&job.plugin, role) else { return };
        let h = Harness::with(&job.id, &config.host, scratch.to_owned(), job.config.clone(), None);
        let built = crate::source::build(|| plugin.build(&job.config, &job.path, h.context()), h.context());
        if let Err(e) = built {
            let said = ConfigError::new(
                Some(job.mark.clone()),
                &job.path,
                format!("{} `{}` cannot be built: {e}", role.as_str(), job.id),
            );
            match e.action() {
                BuildAction::Stop => self.errors.push(said),
                _ => self.warnings.push(said),
            }
        }
    }
}

/// Builds every job of `config` (and the sinks that publish to bus-backed
/// engines) once. Call within a tokio runtime: some plugins build their
/// clients there.
pub fn build_all(config: &Config, registry: &Registry) -> Built {
    let mut built = Built::default();
    let scratch = std::env::temp_dir().join(format!("vane-check-{}", std::process::id()));
    if let Err(e) = std::fs::create_dir_all(&scratch) {
        let said = format!("cannot make a scratch folder {} for the check: {e}", scratch.display());
        built.errors.push(ConfigError::new(None, "agent.data_dir", said));
        return built;
    }
    let s = scratch.as_path();
    for j in &config.sources {
        built.try_one(config, registry, j, Role::Source, s);
    }
    for j in &config.engines {
        built.try_one(config, registry, j, Role::Engine, s);
    }
    let agent = config.clone().publishing();
    for j in &agent.sinks {
        built.try_one(config, registry, j, Role::Sink, s);
    }
    let _ = std::fs::remove_dir_all(&scratch);
    built
}
