//! Canopsis's dynamic engine tasks: `my_awesome_work`, called for every
//! event (returns it, changed or not), and `my_awesome_beat`, called
//! periodically. Here both are one engine; the state they share lives in it.

use vane_core::prelude::*;

/// Counts the events it sees and reports the count on each beat.
pub struct Awesome {
    seen: u64,
}

impl Engine for Awesome {
    type Config = ();
    fn build(_: (), _: &Context) -> Result<Self> {
        Ok(Awesome { seen: 0 })
    }
    /// `my_awesome_work(engine, event)`: the event, marked as seen.
    fn process(&mut self, event: Event, out: &mut Vec<Event>) -> Result<()> {
        self.seen += 1;
        out.push(event.tag("awesome", "yes"));
        Ok(())
    }
    /// `my_awesome_beat(engine)`: a periodic summary.
    fn beat(&mut self, out: &mut Vec<Event>) -> Result<()> {
        out.push(Event::counter("awesome_seen", self.seen));
        Ok(())
    }
}
