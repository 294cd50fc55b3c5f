//! Duct's `ProcessCount`: the lines of `ps -e`, run with a timeout.

use std::time::Duration;

use vane_core::prelude::*;

#[derive(serde::Deserialize)]
pub struct ProcessCount;

impl Source for ProcessCount {
    async fn poll(&mut self, ctx: &Context) -> Result<Vec<Event>> {
        let out = ctx.exec(&Command::new("/bin/ps").arg("-e").timeout(Duration::from_secs(10))).await?;
        let count = String::from_utf8_lossy(&out.stdout).trim().lines().count().saturating_sub(1);
        Ok(vec![ctx.event(State::Ok, format!("Process count {count}"), count as i64)])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vane_core::testing::Harness;

    #[tokio::test]
    async fn counts_the_processes_ps_lists() {
        let (h, mut procs) = Harness::build::<ProcessCount>("procs", "").unwrap();
        let e = &h.poll(&mut procs).await.unwrap()[0];
        let n = e.get_field("value").and_then(Value::as_f64).unwrap();
        // This test's process and cargo's are there at least.
        assert!(n >= 2.0, "{n}");
        assert_eq!(e.description.as_deref(), Some(format!("Process count {n}").as_str()));
    }
}
