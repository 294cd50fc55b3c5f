//! `coalesce`: keeps only the latest event of each series and sends them
//! all on each beat (default every 10 s); `dedupe`: drops an event equal to
//! its series' previous one (same fields and state), unless `max_age` has
//! passed since that series last went through.

use std::collections::HashMap;
use std::time::Duration;

use serde::Deserialize;
use vane_core::prelude::*;

/// Settings of the `coalesce` engine (the interval is the job's `beat`).
#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
pub struct CoalesceConfig {}

pub struct Coalesce {
    latest: HashMap<String, Event>,
    order: Vec<String>,
}

impl Engine for Coalesce {
    fn process(&mut self, ev: Event, _out: &mut Vec<Event>, _: &Context) -> Result<(), EngineError> {
        let key = ev.series_key();
        if self.latest.insert(key.clone(), ev).is_none() {
            self.order.push(key);
        }
        Ok(())
    }

    fn beat(&mut self, out: &mut Vec<Event>, _: &Context) -> Result<(), EngineError> {
        for k in self.order.drain(..) {
            if let Some(e) = self.latest.remove(&k) {
                out.push(e);
            }
        }
        Ok(())
    }

    /// Its beat sends what this instance keeps: every worker beats.
    fn beat_each_worker(&self) -> bool {
        true
    }

    fn default_beat(&self) -> Option<Duration> {
        Some(Duration::from_secs(10))
    }
}

impl Build for Coalesce {
    type Config = CoalesceConfig;

    fn build(_: CoalesceConfig, _: &Context) -> Result<Self, BuildError> {
        Ok(Coalesce { latest: HashMap::new(), order: Vec::new() })
    }
}

/// Settings of the `dedupe` engine.
#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct DedupeConfig {
    /// Let a repeat through after this long anyway. Default: 10m.
    #[serde(default = "crate::defaults::ten_minutes")]
    pub max_age: vane_core::Duration,
}

/// What a series last sent: when, its fields and its state.
type Sent = (i64, Vec<(Text, Value)>, Option<State>);

pub struct Dedupe {
    max_age_ns: i64,
    last: HashMap<String, Sent>,
}

impl Engine for Dedupe {
    fn process(&mut self, ev: Event, out: &mut Vec<Event>, _: &Context) -> Result<(), EngineError> {
        let key = ev.series_key();
        if let Some((t, fields, state)) = self.last.get(&key)
            && *fields == ev.fields
            && *state == ev.state
            && ev.time - t < self.max_age_ns
        {
            return Ok(());
        }
        self.last.insert(key, (ev.time, ev.fields.clone(), ev.state));
        out.push(ev);
        Ok(())
    }
}

impl Build for Dedupe {
    type Config = DedupeConfig;

    fn build(c: DedupeConfig, _: &Context) -> Result<Self, BuildError> {
        Ok(Dedupe { max_age_ns: c.max_age.get().as_nanos() as i64, last: HashMap::new() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vane_core::testing::Harness;

    #[test]
    fn coalesce_sends_the_latest_per_series_on_beat() {
        let h = Harness::new("c");
        let mut c = Coalesce::build(CoalesceConfig {}, h.context()).unwrap();
        let mut out = Vec::new();
        for (host, v) in [("a", 1.0), ("b", 2.0), ("a", 3.0)] {
            c.process(Event::gauge("x", v).host(host), &mut out, h.context()).unwrap();
        }
        assert!(out.is_empty());
        c.beat(&mut out, h.context()).unwrap();
        let got: Vec<(String, f64)> =
            out.iter().map(|e| (e.host.to_string(), e.get_field("value").unwrap().as_f64().unwrap())).collect();
        assert_eq!(got, vec![("a".into(), 3.0), ("b".into(), 2.0)]);
        out.clear();
        c.beat(&mut out, h.context()).unwrap();
        assert!(out.is_empty(), "an empty interval sends nothing");
    }

    #[test]
    fn dedupe_drops_identical_repeats_until_max_age() {
        let h = Harness::new("d");
        let cfg = DedupeConfig { max_age: vane_core::Duration::from_secs(60) };
        let mut d = Dedupe::build(cfg, h.context()).unwrap();
        let mut out = Vec::new();
        let s = 1_000_000_000i64;
        for (t, v) in [(0, 1.0), (10, 1.0), (20, 2.0), (30, 2.0), (90, 2.0)] {
            d.process(Event::gauge("x", v).at(t * s + 1), &mut out, h.context()).unwrap();
        }
        let times: Vec<i64> = out.iter().map(|e| e.time / s).collect();
        assert_eq!(times, vec![0, 20, 90]);
    }
}
