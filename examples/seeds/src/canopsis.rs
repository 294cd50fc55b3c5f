//! Canopsis's dynamic engine task pair: `my_awesome_work`, called for every
//! event (returns it, changed or not), and `my_awesome_beat`, called
//! periodically (here: how many events the engine has seen).

use std::sync::atomic::Ordering::Relaxed;

use vane_core::prelude::*;

pub fn my_awesome_work(event: Event, _: &Context) -> Result<Option<Event>, EngineError> {
    Ok(Some(event.tag("awesome", "yes")))
}

pub fn my_awesome_beat(ctx: &Context) -> Result<Vec<Event>, EngineError> {
    Ok(vec![Event::counter("awesome_seen", ctx.stats().events_in.load(Relaxed))])
}

#[cfg(test)]
mod tests {
    use super::*;
    use vane_core::testing::Harness;

    #[test]
    fn work_marks_every_event_and_beat_reports() {
        let (h, mut e) = Harness::engine(&crate::registry(), "org.canopsis.awesome", "").unwrap();
        let out = h.process(&mut *e, vec![Event::gauge("a", 1), Event::gauge("b", 2)]).unwrap();
        assert!(out.iter().all(|e| e.get_tag("awesome") == Some("yes")));
        // Outside the agent nothing counts what arrives; the beat reads the job's counter.
        h.stats().events_in.store(2, Relaxed);
        assert_eq!(h.beat(&mut *e).unwrap()[0].get_field("value"), Some(&Value::Uint(2)));
    }
}
