//! A widget's `series:` binding read from the history: the lines it
//! matches now (their latest values), and their points over a time range.
//! A binding matches every series of its name and field that has its tags;
//! with `aggregate: each` each series is a line of its own, labelled with
//! its first tag the binding did not fix, else all make one line; a
//! widget's lines in the shape its variant draws (`data`).

use std::collections::HashMap;

use super::history::History;
use serde_json::{Value, json};

use super::template::{Aggregate, Binding, Variant, Widget};

/// One line of a widget: what the page labels it, its latest time (ms) and value.
#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    pub label: String,
    pub ts: i64,
    pub value: f64,
}

/// The last value seen of each series read as a rate, to make the next rate.
#[derive(Default)]
pub struct Rates(HashMap<u32, (i64, f64, Option<f64>)>);

impl Rates {
    /// The change per second of series `id` at its latest point `(ts, v)`;
    /// `None` until two points are known, and across a counter's reset.
    fn at(&mut self, h: &History, id: u32, ts: i64, v: f64) -> Option<f64> {
        if let Some((pts, pv, rate)) = self.0.get(&id).copied() {
            if ts == pts {
                return rate;
            }
            let rate = per_second(pts, pv, ts, v);
            self.0.insert(id, (ts, v, rate));
            return rate;
        }
        // First sight: the point before the latest, from the history, so a
        // rate shows at once after a restart.
        let (_, pts) = h.range(id, ts - 3_600_000_000_000, ts - 1, usize::MAX);
        let rate = pts.last().and_then(|p| per_second(p.ts, p.mean(), ts, v));
        self.0.insert(id, (ts, v, rate));
        rate
    }
}

fn per_second(t0: i64, v0: f64, t1: i64, v1: f64) -> Option<f64> {
    (t1 > t0 && v1 >= v0).then(|| (v1 - v0) / ((t1 - t0) as f64 / 1e9))
}

fn combine(a: Aggregate, values: &[f64]) -> f64 {
    let n = values.len().max(1) as f64;
    match a {
        Aggregate::Sum => values.iter().sum(),
        Aggregate::Min => values.iter().copied().fold(f64::INFINITY, f64::min),
        Aggregate::Max => values.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        Aggregate::Mean | Aggregate::Each => values.iter().sum::<f64>() / n,
    }
}

/// The series `b` matches, with each one's label.
fn matches(h: &History, b: &Binding) -> Vec<(u32, String)> {
    let tags: Vec<(String, String)> = b.tags.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    let ids = h.find(&b.name, &b.field, &tags);
    let base = b.label.clone().unwrap_or_else(|| b.field.clone());
    let several = ids.len() > 1 && b.aggregate == Aggregate::Each;
    ids.into_iter()
        .map(|id| {
            let s = h.series(id).expect("found");
            let own = s.tags.iter().find(|(k, _)| !b.tags.contains_key(&**k)).map(|(_, v)| v.to_string());
            let label = match own {
                Some(v) if several => format!("{base} {v}"),
                _ => base.clone(),
            };
            (id, label)
        })
        .collect()
}

/// The lines of `b` now.
pub fn now(h: &History, rates: &mut Rates, b: &Binding) -> Vec<Line> {
    let mut lines = Vec::new();
    for (id, label) in matches(h, b) {
        let Some((ts, v)) = h.series(id).and_then(|s| s.latest) else { continue };
        let value = if b.rate { rates.at(h, id, ts, v) } else { Some(v) };
        if let Some(value) = value {
            lines.push(Line { label, ts: ts / 1_000_000, value: value * b.scale });
        }
    }
    if b.aggregate == Aggregate::Each || lines.is_empty() {
        return lines;
    }
    let values: Vec<f64> = lines.iter().map(|l| l.value).collect();
    let ts = lines.iter().map(|l| l.ts).max().unwrap_or(0);
    vec![Line { label: b.label.clone().unwrap_or_else(|| b.field.clone()), ts, value: combine(b.aggregate, &values) }]
}

/// The lines of `b` between `from` and `to` (ns), at most `points` each:
/// `(label, [(ms, value)])`, the means of the finest tier that keeps `from`.
pub fn range(h: &History, b: &Binding, from: i64, to: i64, points: usize) -> Vec<(String, Vec<(i64, f64)>)> {
    let mut lines = Vec::new();
    for (id, label) in matches(h, b) {
        let (_, pts) = h.range(id, from, to, points);
        let mut out = Vec::with_capacity(pts.len());
        for (i, p) in pts.iter().enumerate() {
            let v = if b.rate {
                match i.checked_sub(1).and_then(|j| per_second(pts[j].ts, pts[j].mean(), p.ts, p.mean())) {
                    Some(r) => r,
                    None => continue,
                }
            } else {
                p.mean()
            };
            out.push((p.ts / 1_000_000, v * b.scale));
        }
        lines.push((label, out));
    }
    if b.aggregate == Aggregate::Each || lines.len() < 2 {
        if let (Some(l), false) = (lines.first_mut(), b.aggregate == Aggregate::Each) {
            l.0 = b.label.clone().unwrap_or_else(|| b.field.clone());
        }
        return lines;
    }
    // Several series into one line: the last value of each in every bucket.
    let width = ((to - from) / 1_000_000 / points.max(1) as i64).max(1);
    let from_ms = from / 1_000_000;
    let mut buckets: std::collections::BTreeMap<i64, Vec<Option<f64>>> = Default::default();
    for (i, (_, pts)) in lines.iter().enumerate() {
        for (ts, v) in pts {
            let slot = buckets.entry((ts - from_ms) / width).or_insert_with(|| vec![None; lines.len()]);
            slot[i] = Some(*v);
        }
    }
    let merged = buckets
        .into_iter()
        .map(|(n, vs)| {
            let vs: Vec<f64> = vs.into_iter().flatten().collect();
            (from_ms + n * width + width / 2, combine(b.aggregate, &vs))
        })
        .collect();
    vec![(b.label.clone().unwrap_or_else(|| b.field.clone()), merged)]
}

/// A bound widget's data now, in its variant's shape.
pub fn data(history: &History, rates: &mut Rates, w: &Widget) -> Value {
    let lines: Vec<Line> = w.series.iter().flat_map(|b| now(history, rates, b)).collect();
    let line = |l: &Line| json!({"label": l.label, "value": l.value, "time": l.ts});
    match w.variant {
        Variant::Value | Variant::Gauge => {
            if lines.is_empty() {
                return json!({});
            }
            let mean = lines.iter().map(|l| l.value).sum::<f64>() / lines.len() as f64;
            json!({"value": mean, "time": lines.iter().map(|l| l.ts).max()})
        }
        Variant::Multivalue => json!({"values": lines.iter().map(line).collect::<Vec<_>>()}),
        Variant::Barchart => json!({"bars": lines.iter().map(line).collect::<Vec<_>>()}),
        Variant::Graph => json!({"now": lines.iter().map(line).collect::<Vec<_>>()}),
        Variant::Table => json!({
            "columns": ["series", "value"],
            "rows": lines.iter().map(|l| json!([l.label, l.value])).collect::<Vec<_>>(),
            "time": lines.iter().map(|l| l.ts).max(),
        }),
        _ => json!({"values": lines.iter().map(line).collect::<Vec<_>>()}),
    }
}

#[cfg(test)]
mod tests {
    use super::super::history::TierSpec;
    use super::*;
    use vane_core::event::Event;

    fn binding(yaml: &str) -> Binding {
        let node = vane_core::node::yaml::parse("<t>", yaml, &|_| None).unwrap();
        vane_core::node::de::from_node(&node, "b").unwrap()
    }

    #[test]
    fn bindings_match_label_aggregate_and_rate() {
        let dir = tempfile::tempdir().unwrap();
        let tiers = [TierSpec { step: std::time::Duration::ZERO, keep: std::time::Duration::from_secs(3600) }];
        let mut h = History::open(dir.path(), &tiers, 100, std::time::Duration::from_secs(1)).unwrap();
        let t0 = vane_core::event::now_ns() - 60_000_000_000;
        let s = 1_000_000_000;
        let mut batch = Vec::new();
        for i in 0..3 {
            for (nic, per) in [("eth0", 100.0), ("eth1", 10.0)] {
                batch.push(
                    Event::new("net")
                        .tag("interface", nic)
                        .field("bytes", per * 10.0 * i as f64)
                        .host("h")
                        .at(t0 + i * 10 * s),
                );
            }
        }
        h.write(&batch).unwrap();
        let mut rates = Rates::default();
        let each = binding("{ name: net, field: bytes, rate: true, label: in }");
        let mut lines = now(&h, &mut rates, &each);
        lines.sort_by(|a, b| a.label.cmp(&b.label));
        assert_eq!(
            lines.iter().map(|l| (l.label.as_str(), l.value)).collect::<Vec<_>>(),
            [("in eth0", 100.0), ("in eth1", 10.0)]
        );
        let sum = binding("{ name: net, field: bytes, rate: true, aggregate: sum, scale: 8 }");
        let lines = now(&h, &mut rates, &sum);
        assert_eq!(lines, [Line { label: "bytes".into(), ts: (t0 + 20 * s) / 1_000_000, value: 880.0 }]);
        let r = range(&h, &sum, t0 - s, t0 + 30 * s, 100);
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].1.iter().map(|p| p.1).collect::<Vec<_>>(), [880.0, 880.0]);
        let plain = binding("{ name: net, field: bytes, tags: { interface: eth1 } }");
        let r = range(&h, &plain, t0 - s, t0 + 30 * s, 100);
        assert_eq!(
            r,
            [(
                "bytes".to_string(),
                vec![(t0 / 1_000_000, 0.0), ((t0 + 10 * s) / 1_000_000, 100.0), ((t0 + 20 * s) / 1_000_000, 200.0)]
            )]
        );
    }
}
