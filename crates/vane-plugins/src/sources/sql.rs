//! The `sql` source: runs a query against PostgreSQL each poll and turns
//! every row into an event. Columns named in `tags` become tags, the
//! `time` column the event's time, and the others fields (or only those
//! named in `fields`). NULLs are left out.

use serde::Deserialize;
use tokio_postgres::types::Type;
use vane_core::prelude::*;

/// Settings of the `sql` source.
#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct SqlConfig {
    /// A libpq connection string: `host=127.0.0.1 port=5432 user=vane
    /// dbname=app` or `postgresql://vane@127.0.0.1/app`.
    pub url: String,
    pub query: String,
    /// The events' name. Default: the job's id.
    pub name: Option<String>,
    /// Columns that become tags.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Columns that become fields. Default: every column not a tag or the time.
    #[serde(default)]
    pub fields: Vec<String>,
    /// A timestamp column for the events' time (otherwise the poll time).
    pub time: Option<String>,
    /// For connecting and for each query. Default: 10s.
    #[serde(default = "crate::defaults::ten_seconds")]
    pub timeout: Duration,
}

pub struct Sql {
    cfg: SqlConfig,
    name: String,
    pg: tokio_postgres::Config,
    client: Option<tokio_postgres::Client>,
}

impl Source for Sql {
    async fn poll(&mut self, ctx: &Context) -> Result<Vec<Event>> {
        if self.client.as_ref().is_none_or(|c| c.is_closed()) {
            let (client, conn) =
                self.pg.connect(tokio_postgres::NoTls).await.map_err(|e| format!("connecting: {}", describe(&e)))?;
            let job_ctx = ctx.clone();
            tokio::spawn(async move {
                if let Err(e) = conn.await {
                    job_ctx.debug(format!("connection closed: {e}"));
                }
            });
            self.client = Some(client);
        }
        let client = self.client.as_ref().expect("connected above");
        let rows = tokio::time::timeout(self.cfg.timeout.get(), client.query(&self.cfg.query, &[]))
            .await
            .map_err(|_| format!("the query took longer than {:?}", self.cfg.timeout.get()))?
            .map_err(|e| describe(&e))?;
        let now = super::listen::now_ns();
        let mut out = Vec::with_capacity(rows.len());
        for row in &rows {
            let mut e = Event::new(self.name.clone()).at(now);
            for (i, col) in row.columns().iter().enumerate() {
                let name = col.name();
                if self.cfg.time.as_deref() == Some(name) {
                    if let Some(t) = row
                        .try_get::<_, Option<std::time::SystemTime>>(i)
                        .map_err(|e| SourceError::stop(format!("time column {name}: {e}")))?
                    {
                        e.time = t.duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos() as i64).unwrap_or(0);
                    }
                    continue;
                }
                let is_tag = self.cfg.tags.iter().any(|t| t == name);
                if !is_tag && !self.cfg.fields.is_empty() && !self.cfg.fields.iter().any(|f| f == name) {
                    continue;
                }
                let Some(v) =
                    value(row, i, col.type_()).map_err(|why| SourceError::stop(format!("column {name}: {why}")))?
                else {
                    continue;
                };
                if is_tag {
                    let text = match v {
                        Value::Str(s) => s,
                        Value::Int(i) => i.to_string(),
                        Value::Uint(u) => u.to_string(),
                        Value::Float(f) => f.to_string(),
                        Value::Bool(b) => b.to_string(),
                    };
                    if name == "host" {
                        e.host = text.into();
                    } else {
                        e.tags.push((name.into(), text.into()));
                    }
                } else {
                    e.fields.push((name.into(), v));
                }
            }
            if e.fields.is_empty() {
                ctx.warn(format!("a row with no field (all NULL or all tags) in {}", self.name));
                continue;
            }
            out.push(e);
        }
        Ok(out)
    }
}

impl Build for Sql {
    type Config = SqlConfig;

    fn build(cfg: SqlConfig, ctx: &Context) -> Result<Self, BuildError> {
        let mut pg: tokio_postgres::Config = cfg.url.parse().map_err(|e| BuildError::stop(format!("url: {e}")))?;
        pg.connect_timeout(cfg.timeout.get());
        pg.application_name("vane");
        Ok(Sql { name: cfg.name.clone().unwrap_or_else(|| ctx.job().to_owned()), cfg, pg, client: None })
    }
}

/// A column's value; `None` for NULL.
fn value(row: &tokio_postgres::Row, i: usize, ty: &Type) -> std::result::Result<Option<Value>, String> {
    let err = |e: tokio_postgres::Error| e.to_string();
    Ok(match *ty {
        Type::BOOL => row.try_get::<_, Option<bool>>(i).map_err(err)?.map(Value::Bool),
        Type::INT2 => row.try_get::<_, Option<i16>>(i).map_err(err)?.map(|v| Value::Int(v.into())),
        Type::INT4 => row.try_get::<_, Option<i32>>(i).map_err(err)?.map(|v| Value::Int(v.into())),
        Type::INT8 => row.try_get::<_, Option<i64>>(i).map_err(err)?.map(Value::Int),
        Type::OID => row.try_get::<_, Option<u32>>(i).map_err(err)?.map(|v| Value::Int(v.into())),
        Type::FLOAT4 => row.try_get::<_, Option<f32>>(i).map_err(err)?.map(|v| Value::Float(v.into())),
        Type::FLOAT8 => row.try_get::<_, Option<f64>>(i).map_err(err)?.map(Value::Float),
        Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME | Type::UNKNOWN => {
            row.try_get::<_, Option<String>>(i).map_err(err)?.map(Value::Str)
        }
        ref t => {
            return Err(format!("type {t} is not read; cast it in the query (`::float8`, `::bigint` or `::text`)"));
        }
    })
}

/// A database error with the server's own message.
fn describe(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{}: {}", db.severity(), db.message()),
        None => {
            let mut s = e.to_string();
            let mut src = std::error::Error::source(e);
            while let Some(x) = src {
                s = format!("{s}: {x}");
                src = x.source();
            }
            s
        }
    }
}
