//! `state`: follows each series' state and emits an alert event when it
//! changes (ok → warning → critical → ok), once the new state has been seen
//! `consecutive` times in a row (flap damping). On each beat it re-emits
//! the alert of every series still critical. All events also pass through.
//!
//! An alert is the event that confirmed the change, with the tag
//! `alert=transition` (or `alert=repeat`), the field `previous_state`, and
//! a description like `ok → critical` unless it had one.

use std::collections::HashMap;

use serde::Deserialize;
use vane_core::prelude::*;

/// Settings of the `state` engine.
#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct StateConfig {
    /// Checks in a row a new state needs before it counts. Default: 1.
    #[serde(default = "crate::defaults::one")]
    pub consecutive: u32,
    /// Re-emit alerts of series still critical on every beat. Default: true.
    #[serde(default = "crate::defaults::yes")]
    pub repeat_critical: bool,
    /// Pass every event on, not only alerts. Default: true.
    #[serde(default = "crate::defaults::yes")]
    pub pass: bool,
}

struct Track {
    current: State,
    candidate: Option<(State, u32)>,
    last_alert: Option<Event>,
}

pub struct StateEngine {
    cfg: StateConfig,
    series: HashMap<String, Track>,
}

impl Engine for StateEngine {
    fn process(&mut self, ev: Event, out: &mut Vec<Event>, _: &Context) -> Result<(), EngineError> {
        let Some(st) = ev.state else {
            if self.cfg.pass {
                out.push(ev);
            }
            return Ok(());
        };
        let t = self.series.entry(ev.series_key()).or_insert(Track {
            current: State::Ok,
            candidate: None,
            last_alert: None,
        });
        if st == t.current {
            t.candidate = None;
        } else {
            let n = match t.candidate {
                Some((c, n)) if c == st => n + 1,
                _ => 1,
            };
            t.candidate = Some((st, n));
            if n >= self.cfg.consecutive {
                let mut a = ev.clone().tag("alert", "transition");
                a.fields.push(("previous_state".into(), Value::Str(t.current.as_str().into())));
                if a.description.is_none() {
                    a.description = Some(format!("{} → {}", t.current, st));
                }
                t.current = st;
                t.candidate = None;
                t.last_alert = Some(a.clone());
                out.push(a);
            }
        }
        if self.cfg.pass {
            out.push(ev);
        }
        Ok(())
    }

    fn beat(&mut self, out: &mut Vec<Event>, _: &Context) -> Result<(), EngineError> {
        if !self.cfg.repeat_critical {
            return Ok(());
        }
        for t in self.series.values() {
            if let (State::Critical, Some(a)) = (t.current, &t.last_alert) {
                let mut r = a.clone();
                r.set_tag("alert", "repeat");
                r.time = vane_core::event::now_ns();
                out.push(r);
            }
        }
        Ok(())
    }

    /// Its beat sends what this instance keeps: every worker beats.
    fn beat_each_worker(&self) -> bool {
        true
    }
}

impl Build for StateEngine {
    type Config = StateConfig;

    fn build(cfg: StateConfig, _: &Context) -> Result<Self, BuildError> {
        if cfg.consecutive == 0 {
            return Err(BuildError::stop("`consecutive` must be at least 1"));
        }
        Ok(StateEngine { cfg, series: HashMap::new() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vane_core::testing::Harness;

    fn alerts(consecutive: u32, states: &[State]) -> Vec<(String, String)> {
        let h = Harness::new("s");
        let cfg = StateConfig { consecutive, repeat_critical: true, pass: false };
        let mut e = StateEngine::build(cfg, h.context()).unwrap();
        let mut out = Vec::new();
        for s in states {
            e.process(Event::gauge("svc", 1.0).state(*s), &mut out, h.context()).unwrap();
        }
        out.iter()
            .map(|a| {
                let prev = a.get_field("previous_state").unwrap().as_str().unwrap().to_owned();
                (prev, a.state.unwrap().to_string())
            })
            .collect()
    }

    #[test]
    fn alerts_on_each_transition() {
        use State::*;
        let got = alerts(1, &[Ok, Ok, Warning, Critical, Critical, Ok]);
        let want = [("ok", "warning"), ("warning", "critical"), ("critical", "ok")];
        assert_eq!(got, want.map(|(a, b)| (a.to_owned(), b.to_owned())));
    }

    #[test]
    fn flap_damping_needs_consecutive_checks() {
        use State::*;
        // Critical twice is not enough with 3; the third in a row is.
        let got = alerts(3, &[Critical, Critical, Ok, Critical, Critical, Critical, Ok]);
        assert_eq!(got, vec![("ok".to_owned(), "critical".to_owned())]);
    }

    #[test]
    fn beat_repeats_critical_series_only() {
        let h = Harness::new("s");
        let cfg = StateConfig { consecutive: 1, repeat_critical: true, pass: true };
        let mut e = StateEngine::build(cfg, h.context()).unwrap();
        let mut out = Vec::new();
        e.process(Event::gauge("a", 1.0).state(State::Critical), &mut out, h.context()).unwrap();
        e.process(Event::gauge("b", 1.0).state(State::Warning), &mut out, h.context()).unwrap();
        assert_eq!(out.len(), 4, "two alerts and the two events");
        out.clear();
        e.beat(&mut out, h.context()).unwrap();
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].name, "a");
        assert_eq!(out[0].get_tag("alert"), Some("repeat"));
    }
}
