//! Duct's `HelloWorld`: `createEvent('ok', 'Hello world!', 0)` on every poll.

use vane_core::prelude::*;

#[derive(serde::Deserialize)]
pub struct HelloWorld;

impl Source for HelloWorld {
    async fn poll(&mut self, ctx: &Context) -> Result<Vec<Event>> {
        Ok(vec![ctx.event(State::Ok, "Hello world!", 0.0)])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vane_core::testing::Harness;

    #[tokio::test]
    async fn says_hello_named_after_its_job() {
        let (h, mut hello) = Harness::build::<HelloWorld>("hello", "").unwrap();
        let e = &h.poll(&mut hello).await.unwrap()[0];
        assert_eq!(
            (e.name.as_str(), e.state, e.description.as_deref()),
            ("hello", Some(State::Ok), Some("Hello world!"))
        );
        assert_eq!(e.get_field("value"), Some(&Value::Float(0.0)));
    }
}
