//! Duct's `NumberProxy`: a listener in a source. Every number it is sent over
//! TCP, one a line, becomes an event; anything else is warned about.

use serde::Deserialize;
use tokio::io::AsyncBufReadExt;
use vane_core::prelude::*;

#[derive(Deserialize)]
pub struct NumberProxyConfig {
    /// Where to listen. Default: 127.0.0.1:8000.
    pub listen: Option<String>,
}

pub struct NumberProxy {
    listen: String,
}

impl Service for NumberProxy {
    async fn run(self, ctx: Context) -> Result<(), ServiceError> {
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
                        Ok(n) => ctx.emit(ctx.event(State::Ok, format!("Number: {n}"), n)).await,
                        Err(_) => ctx.warn(format!("not a number: {line:?}")),
                    }
                }
            });
        }
    }
}

impl Build for NumberProxy {
    type Config = NumberProxyConfig;
    fn build(c: NumberProxyConfig, _: &Context) -> Result<Self, BuildError> {
        Ok(NumberProxy { listen: c.listen.unwrap_or_else(|| "127.0.0.1:8000".into()) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use vane_core::testing::Harness;

    #[tokio::test]
    async fn emits_every_number_it_is_sent_and_warns_about_the_rest() {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let (h, proxy) = Harness::build::<NumberProxy>("numbers", &format!("listen: 127.0.0.1:{port}")).unwrap();
        let client = std::thread::spawn(move || {
            loop {
                if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) {
                    s.write_all(b"1.5\nnot a number\n42\n").unwrap();
                    return;
                }
                std::thread::yield_now();
            }
        });
        let got = h.run_until(Box::new(proxy), std::time::Duration::from_secs(10), |e| e.len() >= 2).await.unwrap();
        client.join().unwrap();
        let values: Vec<f64> = got.iter().filter_map(|e| e.get_field("value")?.as_f64()).collect();
        assert_eq!(values, [1.5, 42.0]);
        assert_eq!(got[1].description.as_deref(), Some("Number: 42"));
        assert_eq!(h.stats().warnings.load(std::sync::atomic::Ordering::Relaxed), 1);
    }
}
