//! statsd: `name:value|type[|@rate][|#tag:value,…]`, one metric a line
//! (a packet may hold several lines), aggregated until each flush.
//!
//! Types: `c` counter (summed, divided by the sample rate), `g` gauge (a
//! leading `+` or `-` changes the kept value instead of setting it), `ms`,
//! `h` and `d` timers/histograms (count, min, max, mean, sum and
//! percentiles per flush), `s` set (unique values per flush). Tags in the
//! DogStatsD form `|#key:value,…` are kept.

use std::collections::{HashMap, HashSet};

use crate::event::{Event, Kind, Value};

/// What kind of statsd metric a line carries.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Type {
    Counter,
    /// `delta` when the value began with `+` or `-`.
    Gauge {
        delta: bool,
    },
    Timer,
    Set,
}

/// One parsed statsd line; borrows from it.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample<'a> {
    pub name: &'a str,
    pub kind: Type,
    /// The number (0 for sets).
    pub value: f64,
    /// The raw value: a set's member.
    pub raw: &'a str,
    /// The sample rate, in (0, 1].
    pub rate: f64,
    pub tags: Vec<(&'a str, &'a str)>,
}

/// Parses one line; the error says what is wrong with it.
pub fn parse_line(line: &str) -> Result<Sample<'_>, crate::invalid::Invalid> {
    parse_line_text(line).map_err(crate::invalid::Invalid)
}

fn parse_line_text(line: &str) -> Result<Sample<'_>, String> {
    let line = line.trim_end_matches(['\r', '\n']);
    let (name, rest) = line.split_once(':').ok_or("expected `name:value|type`: no `:`")?;
    if name.is_empty() {
        return Err("empty metric name".into());
    }
    let mut parts = rest.split('|');
    let raw = parts.next().unwrap_or("");
    let ty = parts.next().ok_or("expected `|type` after the value")?;
    let kind = match ty {
        "c" => Type::Counter,
        "g" => Type::Gauge { delta: raw.starts_with(['+', '-']) },
        "ms" | "h" | "d" => Type::Timer,
        "s" => Type::Set,
        t => {
            return Err(format!("unknown metric type {t:?} (expected c, g, ms, h, d or s)"));
        }
    };
    let value = if kind == Type::Set {
        if raw.is_empty() {
            return Err("empty set member".into());
        }
        0.0
    } else {
        let v: f64 = raw.parse().map_err(|_| format!("value {raw:?} is not a number"))?;
        if !v.is_finite() {
            return Err(format!("value {raw:?} is not finite"));
        }
        v
    };
    let mut rate = 1.0;
    let mut tags = Vec::new();
    for p in parts {
        if let Some(r) = p.strip_prefix('@') {
            rate = r
                .parse()
                .ok()
                .filter(|r: &f64| *r > 0.0 && *r <= 1.0)
                .ok_or_else(|| format!("sample rate {r:?} is not in (0, 1]"))?;
        } else if let Some(t) = p.strip_prefix('#') {
            for kv in t.split(',').filter(|kv| !kv.is_empty()) {
                let (k, v) = kv.split_once(':').unwrap_or((kv, ""));
                if k.is_empty() {
                    return Err(format!("tag {kv:?} has no name"));
                }
                tags.push((k, v));
            }
        } else {
            return Err(format!("unexpected {p:?} (expected `@rate` or `#tags`)"));
        }
    }
    Ok(Sample { name, kind, value, raw, rate, tags })
}

type Key = (String, Vec<(String, String)>);

/// Timer samples kept per series and interval for its percentiles: past
/// it, a uniform sample of them (reservoir sampling); count, sum, min and
/// max stay exact.
pub const TIMER_SAMPLES: usize = 10_000;

/// Distinct members counted per set and interval; past it the count stops
/// there and the event says `truncated`.
pub const SET_MEMBERS: usize = 100_000;

struct Timer {
    /// Weighted by sample rates.
    count: f64,
    /// Samples seen.
    seen: u64,
    sum: f64,
    min: f64,
    max: f64,
    values: Vec<f64>,
}

impl Default for Timer {
    fn default() -> Timer {
        Timer { count: 0.0, seen: 0, sum: 0.0, min: f64::INFINITY, max: f64::NEG_INFINITY, values: Vec::new() }
    }
}

#[derive(Default)]
struct Members {
    members: HashSet<String>,
    truncated: bool,
}

/// A gauge's kept value, whether it changed since the last flush, and the
/// flushes since it last did.
struct Gauge {
    value: f64,
    changed: bool,
    idle: u32,
}

/// Aggregates samples between flushes, holding at most `max_series` series
/// (a sample of a new series past it is refused) and forgetting a gauge
/// after `gauge_expiry` flushes without an update.
pub struct Aggregator {
    percentiles: Vec<f64>,
    counters: HashMap<Key, f64>,
    gauges: HashMap<Key, Gauge>,
    timers: HashMap<Key, Timer>,
    sets: HashMap<Key, Members>,
    max_series: usize,
    /// Picks what a full timer reservoir keeps.
    random: crate::random::XorShift,
    /// Flushes a gauge is kept without an update; `None`: for ever.
    gauge_expiry: Option<u32>,
}

fn key(s: &Sample<'_>) -> Key {
    let mut tags: Vec<(String, String)> = s.tags.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
    tags.sort();
    (s.name.to_owned(), tags)
}

fn event(k: Key, time: i64) -> Event {
    let mut e = Event::new(k.0).at(time);
    e.tags = k.1.into_iter().map(|(k, v)| (k.into(), v.into())).collect();
    e
}

impl Aggregator {
    /// `percentiles` (0–100] are reported for timers as `p50`, `p99.9`, ….
    /// No bound on series, and gauges kept for ever: see [`Aggregator::bounded`].
    pub fn new(percentiles: Vec<f64>) -> Aggregator {
        Aggregator::bounded(percentiles, usize::MAX, None)
    }

    /// At most `max_series` series; gauges forgotten after `gauge_expiry`
    /// flushes without an update (`None`: never).
    pub fn bounded(percentiles: Vec<f64>, max_series: usize, gauge_expiry: Option<u32>) -> Aggregator {
        Aggregator {
            percentiles,
            counters: HashMap::new(),
            gauges: HashMap::new(),
            timers: HashMap::new(),
            sets: HashMap::new(),
            max_series,
            random: crate::random::XorShift::new(0x9e37_79b9_7f4a_7c15),
            gauge_expiry,
        }
    }

    /// The series held now.
    pub fn series(&self) -> usize {
        self.counters.len() + self.gauges.len() + self.timers.len() + self.sets.len()
    }

    /// Adds a sample; false when it was refused (a new series past `max_series`).
    pub fn add(&mut self, s: &Sample<'_>) -> bool {
        let k = key(s);
        let known = match s.kind {
            Type::Counter => self.counters.contains_key(&k),
            Type::Gauge { .. } => self.gauges.contains_key(&k),
            Type::Timer => self.timers.contains_key(&k),
            Type::Set => self.sets.contains_key(&k),
        };
        if !known && self.series() >= self.max_series {
            return false;
        }
        self.add_to(s, k);
        true
    }

    fn add_to(&mut self, s: &Sample<'_>, k: Key) {
        match s.kind {
            Type::Counter => *self.counters.entry(k).or_default() += s.value / s.rate,
            Type::Gauge { delta } => {
                let g = self.gauges.entry(k).or_insert(Gauge { value: 0.0, changed: false, idle: 0 });
                g.value = if delta { g.value + s.value } else { s.value };
                g.changed = true;
            }
            Type::Timer => {
                let t = self.timers.entry(k).or_default();
                t.count += 1.0 / s.rate;
                t.seen += 1;
                t.sum += s.value;
                t.min = t.min.min(s.value);
                t.max = t.max.max(s.value);
                if t.values.len() < TIMER_SAMPLES {
                    t.values.push(s.value);
                } else {
                    let j = (self.random.next_u64() % t.seen) as usize;
                    if j < TIMER_SAMPLES {
                        t.values[j] = s.value;
                    }
                }
            }
            Type::Set => {
                let m = self.sets.entry(k).or_default();
                if m.members.len() < SET_MEMBERS {
                    m.members.insert(s.raw.to_owned());
                } else if !m.members.contains(s.raw) {
                    m.truncated = true;
                }
            }
        }
    }

    /// The events of this interval: every counter, timer and set seen, and
    /// every gauge changed; counters, timers and sets start again from zero,
    /// gauges idle for `gauge_expiry` flushes are forgotten.
    pub fn flush(&mut self, time: i64) -> Vec<Event> {
        let mut out = Vec::new();
        for (k, v) in self.counters.drain() {
            out.push(event(k, time).field("value", Value::Float(v)).kind(Kind::Delta));
        }
        for (k, g) in self.gauges.iter_mut() {
            if std::mem::take(&mut g.changed) {
                g.idle = 0;
                out.push(event(k.clone(), time).field("value", Value::Float(g.value)));
            } else {
                g.idle = g.idle.saturating_add(1);
            }
        }
        if let Some(expiry) = self.gauge_expiry {
            self.gauges.retain(|_, g| g.idle < expiry);
            // Give back what a burst of names took.
            if self.gauges.capacity() > 4 * self.gauges.len().max(64) {
                self.gauges.shrink_to_fit();
            }
        }
        for (k, mut t) in self.timers.drain() {
            t.values.sort_by(f64::total_cmp);
            let n = t.values.len();
            let mut e = event(k, time)
                .field("count", Value::Float(t.count))
                .field("min", Value::Float(t.min))
                .field("max", Value::Float(t.max))
                .field("mean", Value::Float(t.sum / t.seen as f64))
                .field("sum", Value::Float(t.sum));
            for p in &self.percentiles {
                // Nearest rank: the smallest value with at least p% of the values at or below it.
                let rank = ((p / 100.0) * n as f64).ceil().clamp(1.0, n as f64) as usize;
                e = e.field(format!("p{p}"), Value::Float(t.values[rank - 1]));
            }
            out.push(e);
        }
        for (k, s) in self.sets.drain() {
            let e = event(k, time).field("value", Value::Int(s.members.len() as i64));
            out.push(if s.truncated { e.field("truncated", true) } else { e });
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn agg(lines: &str) -> Vec<Event> {
        let mut a = Aggregator::new(vec![50.0, 90.0, 99.0]);
        for l in lines.lines() {
            a.add(&parse_line(l).unwrap());
        }
        let mut evs = a.flush(7);
        evs.sort_by(|a, b| a.name.cmp(&b.name));
        evs
    }

    fn f(e: &Event, k: &str) -> f64 {
        e.get_field(k).and_then(Value::as_f64).unwrap()
    }

    #[test]
    fn timers_and_sets_are_bounded_within_an_interval() {
        let mut a = Aggregator::new(vec![50.0]);
        for i in 0..(3 * TIMER_SAMPLES) {
            a.add(&parse_line(&format!("t:{i}|ms")).unwrap());
        }
        for i in 0..(SET_MEMBERS + 10) {
            a.add(&parse_line(&format!("u:m{i}|s")).unwrap());
        }
        a.add(&parse_line("u:m0|s").unwrap());
        assert!(a.timers.values().all(|t| t.values.len() == TIMER_SAMPLES));
        let evs = a.flush(0);
        let t = evs.iter().find(|e| e.name == "t").unwrap();
        let n = 3 * TIMER_SAMPLES;
        // Exact, whatever was kept: count, min, max, sum, mean.
        assert_eq!((f(t, "count"), f(t, "min"), f(t, "max")), (n as f64, 0.0, (n - 1) as f64));
        assert_eq!(f(t, "sum"), (n * (n - 1) / 2) as f64);
        // The median of a uniform sample of 0..30000 is near 15000.
        assert!((f(t, "p50") - 15_000.0).abs() < 1_000.0, "{}", f(t, "p50"));
        let u = evs.iter().find(|e| e.name == "u").unwrap();
        assert_eq!(f(u, "value"), SET_MEMBERS as f64);
        assert_eq!(u.get_field("truncated"), Some(&Value::Bool(true)));
    }

    #[test]
    fn parses_every_type_with_rates_and_tags() {
        let s = parse_line("api.hits:3|c|@0.5|#env:prod,canary").unwrap();
        assert_eq!((s.name, s.kind, s.value, s.rate), ("api.hits", Type::Counter, 3.0, 0.5));
        assert_eq!(s.tags, vec![("env", "prod"), ("canary", "")]);
        assert_eq!(parse_line("t:-2|g").unwrap().kind, Type::Gauge { delta: true });
        assert_eq!(parse_line("t:2|g").unwrap().kind, Type::Gauge { delta: false });
        assert_eq!(parse_line("t:2.5|ms").unwrap().kind, Type::Timer);
        assert_eq!(parse_line("u:alice|s").unwrap().raw, "alice");
        for (bad, why) in [
            ("nocolon", "no `:`"),
            (":1|c", "empty metric name"),
            ("a:1", "`|type`"),
            ("a:1|x", "unknown metric type"),
            ("a:one|c", "not a number"),
            ("a:1|c|@2", "sample rate"),
            ("a:1|c|zz", "unexpected"),
            ("a:inf|g", "not finite"),
            ("a:|s", "empty set member"),
        ] {
            let err = parse_line(bad).unwrap_err();
            assert!(err.contains(why), "{bad}: {err}");
        }
    }

    #[test]
    fn counters_gauges_timers_and_sets_aggregate_per_flush() {
        let evs = agg("c:1|c\nc:2|c|@0.5\ng:10|g\ng:+5|g\ng:-2|g\ns:a|s\ns:b|s\ns:a|s");
        let names: Vec<&str> = evs.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, ["c", "g", "s"]);
        assert_eq!(f(&evs[0], "value"), 5.0);
        assert_eq!(evs[0].kind, Kind::Delta);
        assert_eq!(f(&evs[1], "value"), 13.0);
        assert_eq!(f(&evs[2], "value"), 2.0);
        assert!(evs.iter().all(|e| e.time == 7));

        let timers: String = (1..=100).map(|i| format!("t:{i}|ms\n")).collect();
        let t = &agg(&timers)[0];
        assert_eq!(
            ["count", "min", "max", "mean", "sum", "p50", "p90", "p99"].map(|k| f(t, k)),
            [100.0, 1.0, 100.0, 50.5, 5050.0, 50.0, 90.0, 99.0]
        );
        // Tags make their own series, whatever their order.
        let evs = agg("x:1|c|#a:1,b:2\nx:1|c|#b:2,a:1\nx:1|c");
        assert_eq!(evs.len(), 2);
    }

    #[test]
    fn gauges_are_kept_between_flushes_and_sent_when_changed() {
        let mut a = Aggregator::new(vec![]);
        a.add(&parse_line("g:10|g").unwrap());
        assert_eq!(a.flush(1).len(), 1);
        assert!(a.flush(2).is_empty(), "an unchanged gauge is not sent again");
        a.add(&parse_line("g:+1|g").unwrap());
        let evs = a.flush(3);
        assert_eq!(evs[0].get_field("value"), Some(&Value::Float(11.0)));
        a.add(&parse_line("c:1|c").unwrap());
        a.flush(4);
        assert!(a.flush(5).is_empty(), "counters start again from zero");
    }

    #[test]
    fn series_are_bounded_and_idle_gauges_forgotten() {
        let mut a = Aggregator::bounded(vec![], 2, Some(2));
        assert!(a.add(&parse_line("g1:1|g").unwrap()));
        assert!(a.add(&parse_line("c1:1|c").unwrap()));
        assert!(!a.add(&parse_line("g2:1|g").unwrap()), "a third series is refused");
        assert!(a.add(&parse_line("g1:+1|g").unwrap()), "a known one is not");
        assert_eq!(a.flush(1).len(), 2);
        // g1 idle for two flushes is forgotten; c1 was drained.
        a.flush(2);
        assert_eq!(a.series(), 1);
        a.flush(3);
        assert_eq!(a.series(), 0);
        assert!(a.add(&parse_line("g2:5|g").unwrap()), "room again");
        // A gauge forgotten starts again from its next value.
        assert!(a.add(&parse_line("g1:+1|g").unwrap()));
        let evs = a.flush(4);
        let g1 = evs.iter().find(|e| e.name == "g1").unwrap();
        assert_eq!(g1.get_field("value"), Some(&Value::Float(1.0)));
    }

    mod prop {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            /// A written sample reads back as written.
            #[test]
            fn samples_round_trip(
                name in "[a-z][a-z0-9._-]{0,20}",
                value in -1e12f64..1e12,
                kind in 0usize..4,
                rate in proptest::option::of(0.001f64..=1.0),
                tags in proptest::collection::vec(("[a-z]{1,6}", "[a-z0-9]{0,6}"), 0..3),
            ) {
                let ty = ["c", "g", "ms", "s"][kind];
                let raw = if ty == "s" { "member".to_owned() } else { format!("{value}") };
                let mut line = format!("{name}:{raw}|{ty}");
                if let Some(r) = rate {
                    line.push_str(&format!("|@{r}"));
                }
                if !tags.is_empty() {
                    let t: Vec<String> = tags.iter().map(|(k, v)| format!("{k}:{v}")).collect();
                    line.push_str(&format!("|#{}", t.join(",")));
                }
                let s = parse_line(&line).unwrap();
                prop_assert_eq!(s.name, name.as_str());
                prop_assert_eq!(s.raw, raw.as_str());
                if ty != "s" {
                    prop_assert_eq!(s.value, value);
                }
                prop_assert_eq!(s.rate, rate.unwrap_or(1.0));
                let got: Vec<(String, String)> = s.tags.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
                prop_assert_eq!(got, tags);
            }

            /// Counters sum to the total sent, however the packets are split.
            #[test]
            fn counters_sum_whatever_the_packets(values in proptest::collection::vec(0u32..1000, 1..50)) {
                let mut a = Aggregator::new(vec![]);
                for v in &values {
                    a.add(&parse_line(&format!("c:{v}|c")).unwrap());
                }
                let total: f64 = values.iter().map(|v| f64::from(*v)).sum();
                let evs = a.flush(0);
                prop_assert_eq!(evs[0].get_field("value"), Some(&Value::Float(total)));
            }
        }
    }
}
