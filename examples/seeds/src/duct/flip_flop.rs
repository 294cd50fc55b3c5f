//! Duct's flip-flop `HelloWorld`: a bit kept between polls, 0 then 1 then 0…

use vane_core::prelude::*;

#[derive(serde::Deserialize)]
pub struct FlipFlop {
    #[serde(skip)]
    bit: bool,
}

impl Source for FlipFlop {
    async fn poll(&mut self, ctx: &Context) -> Result<Vec<Event>> {
        self.bit = !self.bit;
        let metric = if self.bit { 0.0 } else { 1.0 };
        Ok(vec![ctx.event(State::Ok, "Hello world!", metric)])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vane_core::testing::Harness;

    #[tokio::test]
    async fn flips_between_polls() {
        let (h, mut flip) = Harness::build::<FlipFlop>("flip", "").unwrap();
        let mut got = Vec::new();
        for _ in 0..4 {
            got.push(h.poll(&mut flip).await.unwrap()[0].get_field("value").cloned());
        }
        assert_eq!(got, [0.0, 1.0, 0.0, 1.0].map(|v| Some(Value::Float(v))));
    }
}
