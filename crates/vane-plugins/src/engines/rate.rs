//! `rate` (alias `derivative`): per-second rate of cumulative counters;
//! with `mode: delta`, the change since the previous sample instead.
//!
//! A counter that goes down was reset (the new value counts from zero), or,
//! for unsigned fields within `wrap_bits` of their top, wrapped around. A
//! sample not newer than the previous one of its series is dropped and
//! counted. The first sample of a series only primes it.

use std::collections::HashMap;

use serde::Deserialize;
use vane_core::prelude::*;

/// Per-second rate or plain difference.
#[derive(Deserialize, Debug, Clone, Copy, Default, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    #[default]
    Rate,
    Delta,
}

/// Settings of the `rate` engine.
#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct RateConfig {
    /// `rate` (per second, gauges out) or `delta` (difference, deltas out). Default: rate.
    #[serde(default)]
    pub mode: Mode,
    /// Fields to compute; default: every numeric field.
    #[serde(default)]
    pub fields: Vec<String>,
    /// Only events of kind counter are computed; others pass unchanged. Default: true.
    #[serde(default = "crate::defaults::yes")]
    pub only_counters: bool,
    /// Appended to each computed field's name. Default: none.
    #[serde(default)]
    pub suffix: String,
    /// Width of unsigned counters, for wrap-around: 32 or 64. Default: 64.
    #[serde(default = "sixty_four")]
    pub wrap_bits: u32,
}

fn sixty_four() -> u32 {
    64
}

#[derive(Clone, Copy, Debug)]
enum Num {
    U(u64),
    F(f64),
}

pub struct Rate {
    cfg: RateConfig,
    last: HashMap<String, (i64, Vec<(Text, Num)>)>,
}

impl Rate {
    fn diff(&self, prev: Num, now: Num) -> f64 {
        match (prev, now) {
            (Num::U(p), Num::U(n)) if n < p => {
                let max: u128 =
                    if self.cfg.wrap_bits >= 64 { u64::MAX as u128 } else { (1u128 << self.cfg.wrap_bits) - 1 };
                // Near the top of its range: wrapped. Otherwise: reset to zero.
                if (p as u128) <= max && (p as u128) > max / 2 {
                    ((max - p as u128) + n as u128 + 1) as f64
                } else {
                    n as f64
                }
            }
            (Num::U(p), Num::U(n)) => (n - p) as f64,
            (p, n) => {
                let (p, n) = (as_f64(p), as_f64(n));
                if n < p { n } else { n - p }
            }
        }
    }
}

fn as_f64(n: Num) -> f64 {
    match n {
        Num::U(u) => u as f64,
        Num::F(f) => f,
    }
}

fn numeric(v: &Value) -> Option<Num> {
    match *v {
        Value::Uint(u) => Some(Num::U(u)),
        Value::Int(i) if i >= 0 => Some(Num::U(i as u64)),
        Value::Int(i) => Some(Num::F(i as f64)),
        Value::Float(f) => Some(Num::F(f)),
        _ => None,
    }
}

impl Engine for Rate {
    fn process(&mut self, ev: Event, out: &mut Vec<Event>, ctx: &Context) -> Result<(), EngineError> {
        if self.cfg.only_counters && ev.kind != Kind::Counter {
            out.push(ev);
            return Ok(());
        }
        let now: Vec<(Text, Num)> = ev
            .fields
            .iter()
            .filter(|(k, _)| self.cfg.fields.is_empty() || self.cfg.fields.iter().any(|f| f == k))
            .filter_map(|(k, v)| numeric(v).map(|n| (k.clone(), n)))
            .collect();
        if now.is_empty() {
            return Ok(());
        }
        let key = ev.series_key();
        let Some((t0, prev)) = self.last.get(&key) else {
            self.last.insert(key, (ev.time, now));
            return Ok(());
        };
        if ev.time <= *t0 {
            ctx.stats().events_dropped.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            ctx.warn(format!("{}: sample at {} is not newer than the previous one at {t0}; dropped", ev.name, ev.time));
            return Ok(());
        }
        let secs = (ev.time - t0) as f64 / 1e9;
        let mut o = ev.same_series();
        o.kind = match self.cfg.mode {
            Mode::Rate => Kind::Gauge,
            Mode::Delta => Kind::Delta,
        };
        for (k, n) in &now {
            if let Some((_, p)) = prev.iter().find(|(pk, _)| pk == k) {
                let d = self.diff(*p, *n);
                let v = match self.cfg.mode {
                    Mode::Rate => d / secs,
                    Mode::Delta => d,
                };
                o.fields.push((format!("{k}{}", self.cfg.suffix).into(), Value::Float(v)));
            }
        }
        self.last.insert(key, (ev.time, now));
        if !o.fields.is_empty() {
            out.push(o);
        }
        Ok(())
    }
}

impl Build for Rate {
    type Config = RateConfig;

    fn build(cfg: RateConfig, _: &Context) -> Result<Self, BuildError> {
        if cfg.wrap_bits != 32 && cfg.wrap_bits != 64 {
            return Err(BuildError::stop("wrap_bits must be 32 or 64"));
        }
        Ok(Rate { cfg, last: HashMap::new() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vane_core::testing::Harness;

    fn engine(mode: Mode, wrap_bits: u32) -> (Harness, Rate) {
        let h = Harness::new("r");
        let cfg = RateConfig { mode, fields: vec![], only_counters: true, suffix: String::new(), wrap_bits };
        let r = Rate::build(cfg, h.context()).unwrap();
        (h, r)
    }

    fn run(h: &Harness, r: &mut Rate, samples: &[(i64, Value)]) -> Vec<f64> {
        let mut out = Vec::new();
        for (t, v) in samples {
            let e = Event::new("bytes").kind(Kind::Counter).field("v", v.clone()).at(t * 1_000_000_000);
            r.process(e, &mut out, h.context()).unwrap();
        }
        out.iter().map(|e| e.get_field("v").unwrap().as_f64().unwrap()).collect()
    }

    #[test]
    fn per_second_rate_with_a_reset() {
        let (h, mut r) = engine(Mode::Rate, 64);
        // 100 -> 300 in 2 s = 100/s; 300 -> 50: reset, 50 in 5 s = 10/s.
        let got = run(&h, &mut r, &[(10, Value::Uint(100)), (12, Value::Uint(300)), (17, Value::Uint(50))]);
        assert_eq!(got, vec![100.0, 10.0]);
    }

    #[test]
    fn wraps_at_two_to_the_64() {
        let (h, mut r) = engine(Mode::Delta, 64);
        let got = run(&h, &mut r, &[(1, Value::Uint(u64::MAX - 9)), (2, Value::Uint(5))]);
        // u64::MAX - 9 -> MAX is 9, -> 0 is 1 more, -> 5 is 5 more.
        assert_eq!(got, vec![15.0]);
    }

    #[test]
    fn wraps_32_bit_counters() {
        let (h, mut r) = engine(Mode::Delta, 32);
        let got = run(&h, &mut r, &[(1, Value::Uint(4_294_967_290)), (2, Value::Uint(4))]);
        assert_eq!(got, vec![10.0]);
    }

    #[test]
    fn out_of_order_samples_are_dropped_and_counted() {
        let (h, mut r) = engine(Mode::Rate, 64);
        let got = run(
            &h,
            &mut r,
            &[(10, Value::Float(1.0)), (9, Value::Float(5.0)), (10, Value::Float(6.0)), (14, Value::Float(9.0))],
        );
        assert_eq!(got, vec![2.0]);
        let dropped = h.context().stats().events_dropped.load(std::sync::atomic::Ordering::Relaxed);
        assert_eq!(dropped, 2);
    }

    #[test]
    fn gauges_pass_and_series_are_separate() {
        let (h, mut r) = engine(Mode::Delta, 64);
        let mut out = Vec::new();
        r.process(Event::gauge("g", 1.0), &mut out, h.context()).unwrap();
        assert_eq!(out.len(), 1);
        for (t, host, v) in [(1, "a", 10u64), (1, "b", 100), (2, "a", 11), (2, "b", 150)] {
            let e = Event::counter("c", v).host(host).at(t);
            r.process(e, &mut out, h.context()).unwrap();
        }
        let deltas: Vec<(String, f64)> =
            out[1..].iter().map(|e| (e.host.to_string(), e.get_field("value").unwrap().as_f64().unwrap())).collect();
        assert_eq!(deltas, vec![("a".into(), 1.0), ("b".into(), 50.0)]);
        assert_eq!(out[1].kind, Kind::Delta);
    }
}
