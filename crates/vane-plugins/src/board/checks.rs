//! The current state of every series that has one (a check's result, a
//! level's verdict), as the board sink sees its events: state, since when,
//! when last seen, and its description (Canopsis's event view). Kept in
//! memory, at most [`MAX_CHECKS`] series.

use std::collections::BTreeMap;

use serde_json::{Value, json};
use vane_core::event::{Event, State, Text};

/// Series with a state kept at once; a new one beyond is not listed.
pub const MAX_CHECKS: usize = 10_000;

struct Check {
    name: Text,
    host: Text,
    tags: Vec<(Text, Text)>,
    state: State,
    /// When the state last changed, ms since the epoch.
    since: i64,
    /// When the series was last seen.
    seen: i64,
    description: String,
}

#[derive(Default)]
pub struct Checks {
    by_key: BTreeMap<String, Check>,
    /// Series not listed because the table was full.
    pub refused: u64,
}

fn rank(s: State) -> u8 {
    match s {
        State::Critical => 0,
        State::Warning => 1,
        State::Unknown => 2,
        State::Ok => 3,
    }
}

impl Checks {
    /// Takes the state of every event that has one.
    pub fn observe(&mut self, events: &[Event]) {
        for e in events {
            let Some(state) = e.state else { continue };
            let mut key = format!("{}\u{1}{}", e.name, e.host);
            for (k, v) in &e.tags {
                key.push('\u{1}');
                key.push_str(k);
                key.push('=');
                key.push_str(v);
            }
            let ms = e.time / 1_000_000;
            let description = e.description.clone().unwrap_or_default();
            let full = self.by_key.len() >= MAX_CHECKS;
            match self.by_key.get_mut(&key) {
                Some(c) if ms >= c.seen => {
                    if c.state != state {
                        c.state = state;
                        c.since = ms;
                    }
                    c.seen = ms;
                    c.description = description;
                }
                Some(_) => {}
                None if full => self.refused += 1,
                None => {
                    let check = Check {
                        name: e.name.clone(),
                        host: e.host.clone(),
                        tags: e.tags.clone(),
                        state,
                        since: ms,
                        seen: ms,
                        description,
                    };
                    self.by_key.insert(key, check);
                }
            }
        }
    }

    pub fn len(&self) -> usize {
        self.by_key.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_key.is_empty()
    }

    /// The checks whose name starts with `prefix`, the worst first:
    /// `[{label, name, host, tags, state, since, seen, description}]`.
    pub fn list(&self, prefix: &str) -> Vec<Value> {
        let mut out: Vec<&Check> = self.by_key.values().filter(|c| c.name.starts_with(prefix)).collect();
        out.sort_by(|a, b| rank(a.state).cmp(&rank(b.state)).then_with(|| a.name.cmp(&b.name)));
        out.into_iter()
            .map(|c| {
                let tags: serde_json::Map<String, Value> =
                    c.tags.iter().map(|(k, v)| (k.to_string(), Value::from(v.as_str()))).collect();
                let mut label = c.name.clone();
                for (_, v) in &c.tags {
                    label.push(' ');
                    label.push_str(v);
                }
                json!({
                    "label": label, "name": c.name, "host": c.host, "tags": tags,
                    "state": c.state.as_str(), "since": c.since, "seen": c.seen,
                    "description": c.description,
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_state_change_moves_since_and_the_worst_come_first() {
        let mut c = Checks::default();
        let at = |s: i64| s * 1_000_000_000;
        let ev = |n: &str, s: State, t: i64| Event::gauge(n, 1.0).host("h").state(s).at(at(t)).description(n);
        c.observe(&[ev("disk", State::Ok, 10), ev("load", State::Ok, 10)]);
        c.observe(&[ev("load", State::Critical, 20), ev("disk", State::Ok, 20)]);
        c.observe(&[ev("load", State::Critical, 30), ev("load", State::Ok, 5)]);
        let l = c.list("");
        assert_eq!(l[0]["name"], "load");
        assert_eq!(l[0]["state"], "critical");
        assert_eq!(l[0]["since"], 20_000);
        assert_eq!(l[0]["seen"], 30_000);
        assert_eq!(l[1]["since"], 10_000);
        assert_eq!(c.list("di").len(), 1);
        c.observe(&[Event::gauge("nostate", 1.0)]);
        assert_eq!(c.len(), 2);
    }
}
