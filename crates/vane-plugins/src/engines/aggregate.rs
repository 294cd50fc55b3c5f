//! `aggregate`: statistics over tumbling windows, per series and field —
//! min, max, mean, sum, count, last, p50, p90, p99 (Telegraf's aggregators).
//!
//! Windows are aligned to multiples of `period` in event time. A window is
//! sent when an event of a later window arrives for its series, or on a beat
//! (default: every `period`) once the wall clock is `grace` past its end.
//! An event for a window already sent is dropped and counted. Each output
//! event is stamped with its window's start and has fields `FIELD_STAT`.
//! Percentiles use the nearest-rank method.

use std::collections::HashMap;
use std::time::Duration;

use serde::Deserialize;
use vane_core::event::now_ns;
use vane_core::prelude::*;

/// A statistic over a window.
#[derive(Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Stat {
    Min,
    Max,
    Mean,
    Sum,
    Count,
    Last,
    P50,
    P90,
    P99,
}

impl Stat {
    fn name(self) -> &'static str {
        match self {
            Stat::Min => "min",
            Stat::Max => "max",
            Stat::Mean => "mean",
            Stat::Sum => "sum",
            Stat::Count => "count",
            Stat::Last => "last",
            Stat::P50 => "p50",
            Stat::P90 => "p90",
            Stat::P99 => "p99",
        }
    }
}

/// Settings of the `aggregate` engine.
#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct AggregateConfig {
    /// Window length.
    pub period: vane_core::Duration,
    /// Statistics to compute. Default: min, max, mean, count.
    #[serde(default = "default_stats")]
    pub stats: Vec<Stat>,
    /// Fields to aggregate. Default: every numeric field.
    #[serde(default)]
    pub fields: Vec<String>,
    /// How long after a window's end late events are still awaited. Default: 0s.
    #[serde(default)]
    pub grace: vane_core::Duration,
}

fn default_stats() -> Vec<Stat> {
    vec![Stat::Min, Stat::Max, Stat::Mean, Stat::Count]
}

struct Window {
    start: i64,
    template: Event,
    /// Per field: its values, and the last one in arrival order.
    values: Vec<(String, Vec<f64>, f64)>,
}

pub struct Aggregate {
    cfg: AggregateConfig,
    period: i64,
    open: HashMap<String, Window>,
    /// Start of the last window sent per series, to spot late events.
    sent: HashMap<String, i64>,
    now: fn() -> i64,
}

impl Aggregate {
    fn close(&self, w: Window) -> Event {
        let mut e = w.template;
        e.time = w.start;
        e.kind = Kind::Gauge;
        for (field, mut vals, last) in w.values {
            vals.sort_by(f64::total_cmp);
            let n = vals.len();
            for s in &self.cfg.stats {
                let v = match s {
                    Stat::Min => vals[0],
                    Stat::Max => vals[n - 1],
                    Stat::Sum => vals.iter().sum(),
                    Stat::Mean => vals.iter().sum::<f64>() / n as f64,
                    Stat::Count => n as f64,
                    Stat::Last => last,
                    Stat::P50 => rank(&vals, 50.0),
                    Stat::P90 => rank(&vals, 90.0),
                    Stat::P99 => rank(&vals, 99.0),
                };
                e.fields.push((format!("{field}_{}", s.name()).into(), Value::Float(v)));
            }
        }
        e
    }
}

/// Nearest-rank percentile of sorted values.
fn rank(sorted: &[f64], p: f64) -> f64 {
    let r = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[r.clamp(1, sorted.len()) - 1]
}

impl Engine for Aggregate {
    fn process(&mut self, ev: Event, out: &mut Vec<Event>, ctx: &Context) -> Result<(), EngineError> {
        let start = ev.time.div_euclid(self.period) * self.period;
        let key = ev.series_key();
        if self.sent.get(&key).is_some_and(|s| start <= *s) {
            ctx.stats().events_dropped.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            return Ok(());
        }
        if let Some(w) = self.open.get(&key) {
            if start > w.start {
                let w = self.open.remove(&key).expect("present");
                self.sent.insert(key.clone(), w.start);
                out.push(self.close(w));
            } else if start < w.start {
                // Older than the open window, newer than the last one sent.
                ctx.stats().events_dropped.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                return Ok(());
            }
        }
        let w =
            self.open.entry(key).or_insert_with(|| Window { start, template: ev.same_series(), values: Vec::new() });
        for (k, v) in &ev.fields {
            if !self.cfg.fields.is_empty() && !self.cfg.fields.iter().any(|f| f == k) {
                continue;
            }
            let Some(x) = v.as_f64().filter(|_| !matches!(v, Value::Str(_) | Value::Bool(_))) else {
                continue;
            };
            match w.values.iter_mut().find(|(f, _, _)| f == k) {
                Some((_, vals, last)) => {
                    vals.push(x);
                    *last = x;
                }
                None => w.values.push((k.to_string(), vec![x], x)),
            }
        }
        Ok(())
    }

    fn beat(&mut self, out: &mut Vec<Event>, _: &Context) -> Result<(), EngineError> {
        let cutoff = (self.now)() - self.cfg.grace.get().as_nanos() as i64;
        let mut due: Vec<String> =
            self.open.iter().filter(|(_, w)| w.start + self.period <= cutoff).map(|(k, _)| k.clone()).collect();
        due.sort();
        for k in due {
            let w = self.open.remove(&k).expect("listed above");
            self.sent.insert(k, w.start);
            out.push(self.close(w));
        }
        Ok(())
    }

    /// Its beat sends what this instance keeps: every worker beats.
    fn beat_each_worker(&self) -> bool {
        true
    }

    fn default_beat(&self) -> Option<Duration> {
        Some(self.cfg.period.get())
    }
}

impl Build for Aggregate {
    type Config = AggregateConfig;

    fn build(cfg: AggregateConfig, _: &Context) -> Result<Self, BuildError> {
        let period = cfg.period.get().as_nanos() as i64;
        if period <= 0 {
            return Err(BuildError::stop("`period` must be more than zero"));
        }
        Ok(Aggregate { cfg, period, open: HashMap::new(), sent: HashMap::new(), now: now_ns })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vane_core::testing::Harness;

    const S: i64 = 1_000_000_000;

    fn engine(stats: Vec<Stat>) -> (Harness, Aggregate) {
        let h = Harness::new("a");
        let cfg = AggregateConfig {
            period: vane_core::Duration::from_secs(10),
            stats,
            fields: vec![],
            grace: vane_core::Duration::default(),
        };
        let a = Aggregate::build(cfg, h.context()).unwrap();
        (h, a)
    }

    fn f(e: &Event, k: &str) -> f64 {
        e.get_field(k).unwrap_or_else(|| panic!("no {k} in {e:?}")).as_f64().unwrap()
    }

    #[test]
    fn statistics_of_a_window_by_hand() {
        use Stat::*;
        let (h, mut a) = engine(vec![Min, Max, Mean, Sum, Count, Last, P50, P90, P99]);
        let mut out = Vec::new();
        // Window [10 s, 20 s): 1..=10 in a shuffled order, then one event at 21 s closes it.
        for (i, v) in [7, 3, 10, 1, 5, 9, 2, 8, 4, 6].iter().enumerate() {
            a.process(Event::gauge("lat", *v as f64).at(10 * S + i as i64), &mut out, h.context()).unwrap();
        }
        assert!(out.is_empty());
        a.process(Event::gauge("lat", 100.0).at(21 * S), &mut out, h.context()).unwrap();
        assert_eq!(out.len(), 1);
        let e = &out[0];
        assert_eq!(e.time, 10 * S);
        assert_eq!(f(e, "value_min"), 1.0);
        assert_eq!(f(e, "value_max"), 10.0);
        assert_eq!(f(e, "value_mean"), 5.5);
        assert_eq!(f(e, "value_sum"), 55.0);
        assert_eq!(f(e, "value_count"), 10.0);
        assert_eq!(f(e, "value_last"), 6.0);
        assert_eq!(f(e, "value_p50"), 5.0); // ceil(0.5 * 10) = 5th value
        assert_eq!(f(e, "value_p90"), 9.0); // 9th
        assert_eq!(f(e, "value_p99"), 10.0); // ceil(9.9) = 10th
    }

    #[test]
    fn empty_windows_send_nothing_and_late_events_are_dropped() {
        let (h, mut a) = engine(vec![Stat::Count]);
        a.now = || 1_000 * S;
        let mut out = Vec::new();
        a.beat(&mut out, h.context()).unwrap();
        assert!(out.is_empty(), "no window, no event");
        a.process(Event::gauge("x", 1.0).at(5 * S), &mut out, h.context()).unwrap();
        a.process(Event::gauge("x", 1.0).at(35 * S), &mut out, h.context()).unwrap();
        // The gap between (windows 10 s and 20 s) produced nothing.
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].time, 0);
        // Out of order: an event for the window already sent.
        a.process(Event::gauge("x", 1.0).at(7 * S), &mut out, h.context()).unwrap();
        assert_eq!(h.context().stats().events_dropped.load(std::sync::atomic::Ordering::Relaxed), 1);
        a.beat(&mut out, h.context()).unwrap();
        assert_eq!(out.len(), 2);
        assert_eq!((out[1].time, f(&out[1], "value_count")), (30 * S, 1.0));
    }

    #[test]
    fn series_are_separate() {
        let (h, mut a) = engine(vec![Stat::Sum]);
        a.now = || 1_000 * S;
        let mut out = Vec::new();
        for (host, v) in [("a", 1.0), ("b", 10.0), ("a", 2.0)] {
            a.process(Event::gauge("x", v).host(host).at(S), &mut out, h.context()).unwrap();
        }
        a.beat(&mut out, h.context()).unwrap();
        let sums: Vec<(String, f64)> = out.iter().map(|e| (e.host.to_string(), f(e, "value_sum"))).collect();
        assert_eq!(sums, vec![("a".into(), 3.0), ("b".into(), 10.0)]);
    }
}
