//! Tourbillon's plugin shape: wait until the agent is ready, read the
//! plugin's own config (its `conf.d/NAME.yaml` file), make sure its InfluxDB
//! database and retention policy exist, then collect in a loop while the
//! agent runs. Tourbillon's two shapes, an asyncio coroutine and a thread
//! target, are one `async fn run` here: `ctx.sleep` ends the loop when the
//! agent stops.

use serde::Deserialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use vane_core::prelude::*;

/// The database block of the plugin's config file.
#[derive(Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct Database {
    /// InfluxDB's HTTP address. Default: 127.0.0.1:8086.
    #[serde(default = "default_influx")]
    pub influxdb: String,
    pub name: String,
    pub retention: Retention,
}

fn default_influx() -> String {
    "127.0.0.1:8086".into()
}

/// The retention policy: the same block the `influxdb` sink takes.
pub use vane_plugins::sinks::influxdb::Retention;

/// Settings of the Tourbillon-style plugin.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tourbillon {
    pub database: Database,
    /// Time between two collections. Default: 10s.
    #[serde(default = "ten_seconds")]
    pub every: vane_core::Duration,
}

fn ten_seconds() -> vane_core::Duration {
    vane_core::Duration::from_secs(10)
}

/// Sends one InfluxQL statement to InfluxDB 1.x's `/query`; errors carry
/// the server's answer. (A minimal HTTP/1.1 client: the example needs one
/// request; vane's influxdb sink does the same in its `prepare`.)
pub async fn influxql(addr: &str, q: &str) -> std::io::Result<String> {
    let body: String = format!("q={}", urlencode(q));
    let mut s = tokio::net::TcpStream::connect(addr).await?;
    let req = format!(
        "POST /query HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).await?;
    let mut resp = String::new();
    s.read_to_string(&mut resp).await?;
    let status = resp.split_whitespace().nth(1).unwrap_or("");
    let payload = resp.split("\r\n\r\n").nth(1).unwrap_or("").to_owned();
    if status != "200" || payload.contains("\"error\"") {
        return Err(std::io::Error::other(format!(
            "InfluxDB answered {status}: {}",
            payload.trim()
        )));
    }
    Ok(payload)
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

impl Service for Tourbillon {
    async fn run(self, ctx: Context) -> Result<(), ServiceError> {
        // `yield from agent.run_event.wait()`
        ctx.ready().await;
        // `config = agent.config['myplugin_config_file']` — already typed.
        let db = &self.database;
        // `agent.create_database(**db_config)`: both statements leave an
        // existing database or policy alone.
        let rp = &db.retention;
        influxql(&db.influxdb, &format!("CREATE DATABASE \"{}\"", db.name)).await?;
        influxql(
            &db.influxdb,
            &format!(
                "CREATE RETENTION POLICY \"{}\" ON \"{}\" DURATION {} REPLICATION {}{}",
                rp.name,
                db.name,
                rp.duration,
                rp.replication,
                if rp.default { " DEFAULT" } else { "" }
            ),
        )
        .await?;
        ctx.info(format!("database {} and retention policy {} ready", db.name, rp.name));
        // `while agent.run_event.is_set(): …`
        let mut n = 0u64;
        loop {
            n += 1;
            ctx.emit(Event::counter("tourbillon_loops", n).tag("database", db.name.clone()))
                .await;
            if !ctx.sleep(self.every.get()).await {
                return Ok(());
            }
        }
    }
}
