//! Levels: a job's `critical`, `warning` and `ok` expressions, judged on
//! every event it emits to set the event's state.

use std::sync::atomic::Ordering::Relaxed;

use vane_core::event::{Event, State};
use vane_core::expr::Expr;
use vane_core::stats::JobStats;

/// Level expressions of a source or engine job.
///
/// `critical`, then `warning`, then `ok`: the first that holds sets the
/// event's state. When none holds the state is `ok`, unless an `ok`
/// expression was given, and then it is `unknown`. A name the event lacks
/// makes the state `unknown` (counted as `levels_unknown`).
#[derive(Debug)]
pub struct Levels {
    pub critical: Option<Expr>,
    pub warning: Option<Expr>,
    pub ok: Option<Expr>,
}

impl Levels {
    /// The state for an event, and why it is unknown when a name was missing.
    pub fn judge(&self, ev: &Event) -> (State, Option<String>) {
        for (expr, state) in [(&self.critical, State::Critical), (&self.warning, State::Warning), (&self.ok, State::Ok)]
        {
            let Some(e) = expr else { continue };
            match e.matches(ev) {
                Ok(true) => return (state, None),
                Ok(false) => {}
                Err(err) => return (State::Unknown, Some(format!("{} ({})", err, e.source()))),
            }
        }
        if self.ok.is_some() { (State::Unknown, None) } else { (State::Ok, None) }
    }

    /// Sets an event's state; a missing name makes it `unknown` (counted). A
    /// matching level explains itself in the description. A source's own
    /// critical verdict (a check that could not reach its service) stands:
    /// its event lacks the fields levels would judge.
    pub fn apply(&self, e: &mut Event, stats: &JobStats) {
        if e.state == Some(State::Critical) {
            return;
        }
        let (state, missing) = self.judge(e);
        if let Some(why) = missing {
            stats.levels_unknown.fetch_add(1, Relaxed);
            e.description.get_or_insert(format!("unknown: {why}"));
        } else if e.description.is_none() {
            let expr = match state {
                State::Critical => self.critical.as_ref(),
                State::Warning => self.warning.as_ref(),
                _ => None,
            };
            if let Some(x) = expr {
                e.description = Some(format!("{state}: {}", x.source()));
            }
        }
        e.state = Some(state);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_judge_in_order_and_missing_names_are_unknown() {
        let l = |c: Option<&str>, w: Option<&str>, o: Option<&str>| Levels {
            critical: c.map(|s| Expr::parse(s).unwrap()),
            warning: w.map(|s| Expr::parse(s).unwrap()),
            ok: o.map(|s| Expr::parse(s).unwrap()),
        };
        let ev = |v: f64| Event::gauge("x", v);
        let cw = l(Some("value > 10"), Some("value > 5"), None);
        assert_eq!(cw.judge(&ev(11.0)).0, State::Critical);
        assert_eq!(cw.judge(&ev(6.0)).0, State::Warning);
        assert_eq!(cw.judge(&ev(1.0)).0, State::Ok);
        let with_ok = l(None, Some("value > 5"), Some("value < 3"));
        assert_eq!(with_ok.judge(&ev(1.0)).0, State::Ok);
        assert_eq!(with_ok.judge(&ev(4.0)).0, State::Unknown);
        let (st, why) = l(Some("latency > 1"), None, None).judge(&ev(1.0));
        assert_eq!(st, State::Unknown);
        assert!(why.unwrap().contains("no field or tag `latency`"));
    }

    #[test]
    fn apply_explains_and_keeps_a_sources_critical_verdict() {
        let l = Levels { critical: Some(Expr::parse("value > 10").unwrap()), warning: None, ok: None };
        let stats = JobStats::default();
        let mut e = Event::gauge("x", 11.0);
        l.apply(&mut e, &stats);
        assert_eq!(e.description.as_deref(), Some("critical: value > 10"));
        let mut down = Event::new("x").state(State::Critical).description("refused");
        l.apply(&mut down, &stats);
        assert_eq!(down.description.as_deref(), Some("refused"));
        let mut e = Event::new("x").field("other", 1);
        l.apply(&mut e, &stats);
        assert_eq!((e.state, stats.levels_unknown.load(Relaxed)), (Some(State::Unknown), 1));
    }
}
