//! What `vane check` does after validation: every job of the config built
//! once, as the agent would build it, and dropped; nothing runs. A plugin's
//! own checks of its settings (a ping without hosts, a Lua script that does
//! not load, a CA file that does not read) are made in its build, so a
//! config `vane check` passes is one whose jobs start. A build that asks to
//! be retried (something not there yet) is a warning, not an error: the
//! agent would retry it.

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
    fn try_one<S>(&mut self, config: &Config, registry: &Registry, job: &Job<S>, role: Role) {
        let Some(plugin) = registry.find(&job.plugin, role) else { return };
        let h = Harness::with(&job.id, &config.host, config.data_dir.clone(), job.config.clone(), None);
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
    for j in &config.sources {
        built.try_one(config, registry, j, Role::Source);
    }
    for j in &config.engines {
        built.try_one(config, registry, j, Role::Engine);
    }
    let agent = config.clone().publishing();
    for j in &agent.sinks {
        built.try_one(config, registry, j, Role::Sink);
    }
    built
}
