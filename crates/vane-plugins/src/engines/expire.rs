//! `expire`: Riemann's time-to-live. Remembers when each series was last
//! seen and, on each beat (default every 5 s), emits one `expired` event for
//! every series not refreshed within its ttl, then forgets it. The ttl is
//! the event's own, or `default_ttl`; series with neither are not tracked.
//! All events pass through.

use std::collections::HashMap;
use std::time::Duration;

use serde::Deserialize;
use vane_core::event::now_ns;
use vane_core::prelude::*;

/// Settings of the `expire` engine.
#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
pub struct ExpireConfig {
    /// Ttl of events that carry none. Default: none (those are not tracked).
    pub default_ttl: Option<vane_core::Duration>,
}

pub struct Expire {
    default_ttl: Option<f64>,
    seen: HashMap<String, (i64, f64, Event)>,
    now: fn() -> i64,
}

impl Engine for Expire {
    fn process(&mut self, ev: Event, out: &mut Vec<Event>, _: &Context) -> Result<(), EngineError> {
        if let Some(ttl) = ev.ttl.or(self.default_ttl) {
            self.seen.insert(ev.series_key(), ((self.now)(), ttl, ev.same_series()));
        }
        out.push(ev);
        Ok(())
    }

    fn beat(&mut self, out: &mut Vec<Event>, _: &Context) -> Result<(), EngineError> {
        let now = (self.now)();
        let mut gone: Vec<String> =
            self.seen.iter().filter(|(_, (t, ttl, _))| (now - t) as f64 / 1e9 > *ttl).map(|(k, _)| k.clone()).collect();
        gone.sort();
        for k in gone {
            let (t, ttl, mut e) = self.seen.remove(&k).expect("listed above");
            e.time = now;
            e.state = Some(State::Unknown);
            e.description = Some(format!(
                "expired: nothing within its ttl of {ttl}s (last seen {:.1}s ago)",
                (now - t) as f64 / 1e9
            ));
            e.fields.push(("expired".into(), Value::Bool(true)));
            e.tags.push(("expired".into(), "true".into()));
            out.push(e);
        }
        Ok(())
    }

    /// Its beat sends what this instance keeps: every worker beats.
    fn beat_each_worker(&self) -> bool {
        true
    }

    fn default_beat(&self) -> Option<Duration> {
        Some(Duration::from_secs(5))
    }
}

impl Build for Expire {
    type Config = ExpireConfig;

    fn build(c: ExpireConfig, _: &Context) -> Result<Self, BuildError> {
        Ok(Expire { default_ttl: c.default_ttl.map(|d| d.get().as_secs_f64()), seen: HashMap::new(), now: now_ns })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicI64, Ordering};
    use vane_core::testing::Harness;

    static CLOCK: AtomicI64 = AtomicI64::new(0);
    fn clock() -> i64 {
        CLOCK.load(Ordering::SeqCst)
    }

    #[test]
    fn expires_series_past_their_ttl_once() {
        let h = Harness::new("e");
        let cfg = ExpireConfig { default_ttl: Some(vane_core::Duration::from_secs(10)) };
        let mut x = Expire::build(cfg, h.context()).unwrap();
        x.now = clock;
        let s = 1_000_000_000;
        let mut out = Vec::new();
        CLOCK.store(0, Ordering::SeqCst);
        x.process(Event::gauge("a", 1.0), &mut out, h.context()).unwrap(); // default ttl 10 s
        x.process(Event::gauge("b", 1.0).ttl(30.0), &mut out, h.context()).unwrap();
        CLOCK.store(5 * s, Ordering::SeqCst);
        x.process(Event::gauge("a", 2.0), &mut out, h.context()).unwrap(); // refreshed
        out.clear();
        CLOCK.store(14 * s, Ordering::SeqCst);
        x.beat(&mut out, h.context()).unwrap();
        assert!(out.is_empty(), "a was refreshed 9 s ago: {out:?}");
        CLOCK.store(16 * s, Ordering::SeqCst);
        x.beat(&mut out, h.context()).unwrap();
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].name, "a");
        assert_eq!(out[0].state, Some(State::Unknown));
        assert_eq!(out[0].get_tag("expired"), Some("true"));
        out.clear();
        CLOCK.store(31 * s, Ordering::SeqCst);
        x.beat(&mut out, h.context()).unwrap();
        let names: Vec<&str> = out.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, vec!["b"], "a is not expired twice");
    }
}
