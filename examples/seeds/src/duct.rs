//! Duct's example sources: `HelloWorld`, its flip-flop variant (state kept
//! between polls), `ProcessCount` (runs `ps -e` with a timeout) and
//! `NumberProxy` (listens on a TCP port and emits every number it is sent,
//! one a line).

use serde::Deserialize;
use tokio::io::AsyncBufReadExt;
use vane_core::prelude::*;

/// `createEvent('ok', 'Hello world!', 0)`.
pub struct HelloWorld;

impl Source for HelloWorld {
    type Config = ();
    fn build(_: (), _: &Context) -> Result<Self> {
        Ok(HelloWorld)
    }
    async fn poll(&mut self, _: &Context) -> Result<Vec<Event>> {
        Ok(vec![
            Event::gauge("hello", 0.0)
                .state(State::Ok)
                .description("Hello world!"),
        ])
    }
}

/// The flip-flop: a bit kept between polls.
pub struct FlipFlop {
    bit: bool,
}

impl Source for FlipFlop {
    type Config = ();
    fn build(_: (), _: &Context) -> Result<Self> {
        Ok(FlipFlop { bit: false })
    }
    async fn poll(&mut self, _: &Context) -> Result<Vec<Event>> {
        self.bit = !self.bit;
        let v = if self.bit { 0.0 } else { 1.0 };
        Ok(vec![
            Event::gauge("hello", v)
                .state(State::Ok)
                .description("Hello world!"),
        ])
    }
}

/// Counts the lines of `ps -e`.
pub struct ProcessCount;

impl Source for ProcessCount {
    type Config = ();
    fn build(_: (), _: &Context) -> Result<Self> {
        Ok(ProcessCount)
    }
    async fn poll(&mut self, ctx: &Context) -> Result<Vec<Event>> {
        let cmd = Command::new("/bin/ps")
            .arg("-e")
            .timeout(std::time::Duration::from_secs(10));
        let out = ctx.exec(&cmd).await?;
        // One line a process, after the header.
        let count = String::from_utf8_lossy(&out.stdout)
            .trim()
            .lines()
            .count()
            .saturating_sub(1);
        Ok(vec![
            Event::gauge("process_count", count as i64)
                .state(State::Ok)
                .description(format!("Process count {count}")),
        ])
    }
}

/// Settings of `NumberProxy`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NumberProxyConfig {
    /// Where to listen. Default: 127.0.0.1:8000.
    #[serde(default = "default_listen")]
    pub listen: String,
}

fn default_listen() -> String {
    "127.0.0.1:8000".into()
}

/// A listener in a source: every number received, one a line, becomes an event.
pub struct NumberProxy {
    listen: String,
}

impl Service for NumberProxy {
    type Config = NumberProxyConfig;
    fn build(c: NumberProxyConfig, _: &Context) -> Result<Self> {
        Ok(NumberProxy { listen: c.listen })
    }
    async fn run(self, ctx: Context) -> Result<()> {
        let listener = tokio::net::TcpListener::bind(&self.listen).await?;
        ctx.info(format!("listening on {}", listener.local_addr()?));
        loop {
            let (sock, _) = tokio::select! {
                a = listener.accept() => a?,
                _ = ctx.stopping() => return Ok(()),
            };
            let ctx = ctx.clone();
            tokio::spawn(async move {
                let mut lines = tokio::io::BufReader::new(sock).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    match line.trim().parse::<f64>() {
                        Ok(n) => {
                            let ev = Event::gauge("number", n)
                                .state(State::Ok)
                                .description(format!("Number: {n}"));
                            ctx.emit(ev).await
                        }
                        Err(_) => ctx.warn(format!("not a number: {line:?}")),
                    }
                }
            });
        }
    }
}
