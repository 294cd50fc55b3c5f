//! `filter`: keeps or drops events by an expression.
//!
//! With `keep`, events for which it holds go on; with `drop`, those are
//! dropped. An event lacking a name the expression uses does not match
//! (so `keep` drops it and `drop` keeps it); such events are counted.

use serde::Deserialize;
use vane_core::expr::Expr;
use vane_core::prelude::*;

/// Settings of the `filter` engine: exactly one of `keep` and `drop`.
#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct FilterConfig {
    /// Events for which this holds go on; the others are dropped.
    pub keep: Option<Expr>,
    /// Events for which this holds are dropped.
    pub drop: Option<Expr>,
}

pub struct Filter {
    expr: Expr,
    keep: bool,
}

impl Engine for Filter {
    fn process(&mut self, ev: Event, out: &mut Vec<Event>, ctx: &Context) -> Result<(), EngineError> {
        let hit = self.expr.matches(&ev).unwrap_or_else(|_| {
            ctx.stats().levels_unknown.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            false
        });
        if hit == self.keep {
            out.push(ev);
        } else {
            ctx.stats().events_dropped.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        Ok(())
    }
}

impl Build for Filter {
    type Config = FilterConfig;

    fn build(cfg: FilterConfig, _: &Context) -> Result<Self, BuildError> {
        let (expr, keep) = match (cfg.keep, cfg.drop) {
            (Some(e), None) => (e, true),
            (None, Some(e)) => (e, false),
            _ => return Err(BuildError::stop("set exactly one of `keep` and `drop`")),
        };
        Ok(Filter { expr, keep })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vane_core::testing::Harness;

    #[test]
    fn keeps_or_drops_by_expression() {
        let h = Harness::new("f");
        let evs = [Event::gauge("a", 1.0), Event::gauge("b", 5.0), Event::new("c").field("other", 1.0)];
        for (cfg, want) in [
            (FilterConfig { keep: Some(Expr::parse("value > 2").unwrap()), drop: None }, vec!["b"]),
            (FilterConfig { keep: None, drop: Some(Expr::parse("value > 2").unwrap()) }, vec!["a", "c"]),
        ] {
            let mut f = Filter::build(cfg, h.context()).unwrap();
            let mut out = Vec::new();
            for e in evs.iter().cloned() {
                f.process(e, &mut out, h.context()).unwrap();
            }
            let names: Vec<&str> = out.iter().map(|e| e.name.as_str()).collect();
            assert_eq!(names, want);
        }
        let both = FilterConfig { keep: None, drop: None };
        assert!(Filter::build(both, h.context()).is_err());
    }
}
