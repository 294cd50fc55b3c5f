//! Sources for trying vane out and for testing what surrounds it: `hello`
//! (Duct's flip-flop HelloWorld) and `chaos` (misbehaves on purpose, to see
//! that the agent isolates it and that alerting notices).

use std::time::Duration;

use serde::Deserialize;
use vane_core::prelude::*;

/// Settings of the `hello` source.
#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
pub struct HelloConfig {
    /// Service name of the events. Default: hello.
    pub service: Option<String>,
}

/// A metric that flips between 0 and 1 on every poll, with state ok.
pub struct Hello {
    bit: bool,
    service: String,
}

impl Source for Hello {
    async fn poll(&mut self, _: &Context) -> Result<Vec<Event>> {
        self.bit = !self.bit;
        let v = if self.bit { 0.0 } else { 1.0 };
        Ok(vec![Event::gauge(self.service.clone(), v).state(State::Ok).description("Hello world!")])
    }
}

impl Build for Hello {
    type Config = HelloConfig;

    fn build(c: HelloConfig, _: &Context) -> Result<Self, BuildError> {
        Ok(Hello { bit: false, service: c.service.unwrap_or_else(|| "hello".into()) })
    }
}

/// What `chaos` does once its `after` polls have passed.
#[derive(Deserialize, Debug, Clone, Copy, Default, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Behave: emit a counter of polls.
    #[default]
    Ok,
    /// Panic inside the poll.
    Panic,
    /// Never return from the poll (until the timeout cancels it).
    Hang,
    /// Return an error.
    Error,
    /// Panic while being built.
    Crash,
}

/// Settings of the `chaos` source.
#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
pub struct ChaosConfig {
    /// ok, panic, hang, error or crash. Default: ok.
    #[serde(default)]
    pub mode: Mode,
    /// Polls that behave before the misbehaviour starts. Default: 0.
    #[serde(default)]
    pub after: u64,
}

/// Emits `chaos polls=N` and misbehaves as configured.
pub struct Chaos {
    cfg: ChaosConfig,
    polls: u64,
}

impl Source for Chaos {
    async fn poll(&mut self, _: &Context) -> Result<Vec<Event>> {
        self.polls += 1;
        if self.polls > self.cfg.after {
            match self.cfg.mode {
                Mode::Ok => {}
                Mode::Panic | Mode::Crash => panic!("chaos: panicking on poll {}", self.polls),
                Mode::Hang => loop {
                    tokio::time::sleep(Duration::from_secs(3600)).await;
                },
                Mode::Error => return Err(format!("chaos: failing poll {}", self.polls).into()),
            }
        }
        Ok(vec![Event::counter("chaos", self.polls)])
    }
}

impl Build for Chaos {
    type Config = ChaosConfig;

    fn build(cfg: ChaosConfig, _: &Context) -> Result<Self, BuildError> {
        if cfg.mode == Mode::Crash && cfg.after == 0 {
            panic!("chaos: crashing while being built, as configured");
        }
        Ok(Chaos { cfg, polls: 0 })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vane_core::testing::Harness;

    #[tokio::test]
    async fn hello_flips() {
        let (h, mut s) = Harness::source(&crate::registry(), "hello", "service: greeting").unwrap();
        let a = h.poll(&mut *s).await.unwrap();
        let b = h.poll(&mut *s).await.unwrap();
        assert_eq!(a[0].name, "greeting");
        assert_eq!(a[0].get_field("value"), Some(&Value::Float(0.0)));
        assert_eq!(b[0].get_field("value"), Some(&Value::Float(1.0)));
        assert_eq!(a[0].state, Some(State::Ok));
        assert_eq!(a[0].host, "test-host");
    }

    #[tokio::test]
    async fn chaos_errors_after_n_polls() {
        let h = Harness::new("c");
        let cfg = ChaosConfig { mode: Mode::Error, after: 1 };
        let mut s = Chaos::build(cfg, h.context()).unwrap();
        assert!(h.poll(&mut s).await.is_ok());
        let e = h.poll(&mut s).await.unwrap_err();
        assert!(e.to_string().contains("failing poll 2"));
    }
}
