//! The `board` sink: keeps every numeric field it takes in the local
//! history (`history.rs`, under the job's data folder) and answers queries
//! on the agent's HTTP port:
//!
//! - `/api/series?name=N&field=F` (both optional): every series (matching),
//!   with its latest time (ms) and value;
//! - `/api/range?key=K&from=MS&to=MS&points=N`: one series' points between
//!   two times (ms since the epoch; default: the last hour), at most N
//!   (default 600), each `[ms, mean, min, max, count]`, from the finest tier
//!   that keeps `from`.

use std::fmt::Write as _;
use std::sync::{Arc, Mutex};

use serde::Deserialize;
use vane_core::http::{HttpHandler, HttpRequest, HttpResponse};
use vane_core::prelude::*;

use super::history::{History, TierSpec};

/// A tier beyond the raw points: one min/max/sum/count point per `step`, kept for `keep`.
#[derive(Deserialize, Debug, Clone, Copy)]
#[serde(deny_unknown_fields)]
pub struct TierConfig {
    pub step: vane_core::Duration,
    pub keep: vane_core::Duration,
}

/// How much history is kept.
#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct HistoryConfig {
    /// How long points are kept as they came. Default: 1h.
    #[serde(default = "hour")]
    pub raw: vane_core::Duration,
    /// The downsampled tiers. Default: one point a minute for 24 h.
    #[serde(default = "minutes_for_a_day")]
    pub tiers: Vec<TierConfig>,
    /// Series beyond this many are refused (counted as dropped). Default: 100000.
    #[serde(default = "max_series")]
    pub max_series: usize,
    /// How often written points are synced to disk. Default: 1s.
    #[serde(default = "second")]
    pub sync: vane_core::Duration,
}

impl Default for HistoryConfig {
    fn default() -> Self {
        HistoryConfig { raw: hour(), tiers: minutes_for_a_day(), max_series: max_series(), sync: second() }
    }
}

fn hour() -> vane_core::Duration {
    vane_core::Duration::from_secs(3600)
}
fn second() -> vane_core::Duration {
    vane_core::Duration::from_secs(1)
}
fn max_series() -> usize {
    100_000
}
fn minutes_for_a_day() -> Vec<TierConfig> {
    vec![TierConfig { step: vane_core::Duration::from_secs(60), keep: vane_core::Duration::from_secs(86_400) }]
}

/// Settings of the `board` sink.
#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
pub struct BoardConfig {
    #[serde(default)]
    pub history: HistoryConfig,
}

pub struct BoardSink {
    history: Arc<Mutex<History>>,
}

impl BoardConfig {
    fn tiers(&self) -> Result<Vec<TierSpec>, String> {
        let mut out = vec![TierSpec { step: std::time::Duration::ZERO, keep: self.history.raw.get() }];
        for (i, t) in self.history.tiers.iter().enumerate() {
            let prev = out.last().expect("the raw tier");
            if t.step.get() <= prev.step || t.keep.get() < prev.keep {
                return Err(format!(
                    "history.tiers[{i}]: each tier needs a longer step and at least the keep of the one before it"
                ));
            }
            out.push(TierSpec { step: t.step.get(), keep: t.keep.get() });
        }
        Ok(out)
    }
}

impl Build for BoardSink {
    type Config = BoardConfig;

    fn build(c: BoardConfig, ctx: &Context) -> Result<Self, BuildError> {
        let tiers = c.tiers().map_err(BuildError::stop)?;
        let dir = ctx.data_dir();
        let history = History::open(&dir, &tiers, c.history.max_series, c.history.sync.get())
            .map_err(|e| BuildError::retry(format!("cannot open the history in {}: {e}", dir.display())))?;
        let f = history.figures();
        if f.skipped_records > 0 {
            ctx.warn(format!(
                "history: skipped {} damaged records ({} bytes) in {}",
                f.skipped_records,
                f.skipped_bytes,
                dir.display()
            ));
        }
        let history = Arc::new(Mutex::new(history));
        for (path, answer) in
            [("/api/series", series as fn(&History, &HttpRequest) -> HttpResponse), ("/api/range", range)]
        {
            let h = history.clone();
            let handler: HttpHandler = Arc::new(move |req| answer(&h.lock().expect("not poisoned"), req));
            if ctx.serve(path, handler) == Some(false) {
                return Err(BuildError::stop(format!("{path} is already served on the agent's HTTP port")));
            }
        }
        Ok(BoardSink { history })
    }
}

impl Sink for BoardSink {
    async fn send(&mut self, batch: &[Event], ctx: &Context) -> Result<(), SinkError> {
        let history = self.history.clone();
        let batch = batch.to_vec();
        let refused_before = history.lock().expect("not poisoned").figures().refused;
        let (result, figures) = tokio::task::spawn_blocking(move || {
            let mut h = history.lock().expect("not poisoned");
            (h.write(&batch), h.figures())
        })
        .await
        .map_err(|e| SinkError::retry(e.to_string()))?;
        let stats = ctx.stats();
        stats.buffer_bytes.store(figures.disk_bytes, std::sync::atomic::Ordering::Relaxed);
        if figures.refused > refused_before {
            vane_core::stats::JobStats::add(&stats.events_dropped, figures.refused - refused_before);
            ctx.warn(format!("history: refused points of new series beyond max_series ({} series)", figures.series));
        }
        result.map_err(|e| SinkError::retry(format!("history: {e}")))
    }

    async fn flush(&mut self, _: &Context) -> Result<(), SinkError> {
        let history = self.history.clone();
        tokio::task::spawn_blocking(move || history.lock().expect("not poisoned").sync())
            .await
            .map_err(|e| SinkError::retry(e.to_string()))?
            .map_err(|e| SinkError::retry(format!("history: {e}")))
    }
}

fn json_str(out: &mut String, s: &str) {
    out.push_str(&serde_json::Value::from(s).to_string());
}

fn num(out: &mut String, v: f64) {
    if v.is_finite() {
        let _ = write!(out, "{v}");
    } else {
        out.push_str("null");
    }
}

fn series(h: &History, req: &HttpRequest) -> HttpResponse {
    let (name, field) = (req.param("name"), req.param("field"));
    let mut out = String::from("[");
    for s in h.all() {
        if name.as_deref().is_some_and(|n| n != &*s.name) || field.as_deref().is_some_and(|f| f != &*s.field) {
            continue;
        }
        if out.len() > 1 {
            out.push(',');
        }
        out.push_str("{\"key\":");
        json_str(&mut out, &s.key);
        match s.latest {
            Some((ts, v)) => {
                let _ = write!(out, ",\"time\":{},\"value\":", ts / 1_000_000);
                num(&mut out, v);
            }
            None => out.push_str(",\"time\":null,\"value\":null"),
        }
        out.push('}');
    }
    out.push_str("]\n");
    HttpResponse::json(out)
}

fn range(h: &History, req: &HttpRequest) -> HttpResponse {
    let Some(key) = req.param("key") else {
        return HttpResponse::text(400, "text/plain; charset=utf-8", "key= is needed\n");
    };
    let Some(id) = h.id_of(&key) else {
        return HttpResponse::not_found(format_args!("no series {key:?}"));
    };
    let ms = |p: &str| req.param(p).and_then(|v| v.parse::<i64>().ok());
    let now = vane_core::event::now_ns();
    let to = ms("to").map_or(now, |v| v * 1_000_000);
    let from = ms("from").map_or(to - 3_600_000_000_000, |v| v * 1_000_000);
    let points = ms("points").map_or(600, |p| p.clamp(1, 100_000) as usize);
    let (tier, pts) = h.range(id, from, to, points);
    let mut out = format!("{{\"tier\":{tier},\"points\":[");
    for (i, p) in pts.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let _ = write!(out, "[{},", p.ts / 1_000_000);
        num(&mut out, p.mean());
        out.push(',');
        num(&mut out, p.min);
        out.push(',');
        num(&mut out, p.max);
        let _ = write!(out, ",{}]", p.count);
    }
    out.push_str("]}\n");
    HttpResponse::json(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use vane_core::testing::Harness;

    fn config(yaml: &str) -> vane_core::node::Node {
        vane_core::node::yaml::parse("<test>", yaml, &|_| None).unwrap()
    }

    #[tokio::test]
    async fn what_the_sink_takes_is_kept_and_read_back_through_its_queries() {
        let dir = tempfile::tempdir().unwrap();
        let node = config("history: { raw: 10m, tiers: [{ step: 1m, keep: 2h }] }");
        let h = Harness::with("board", "h", dir.path().to_owned(), node.clone(), None);
        let c: BoardConfig = vane_core::node::de::from_node(&node, "config").unwrap();
        let mut sink = BoardSink::build(c, h.context()).unwrap();
        let now = vane_core::event::now_ns();
        let batch: Vec<Event> =
            (0..5).map(|i| Event::gauge("load", i as f64).host("h").at(now - (5 - i) * 1_000_000_000)).collect();
        h.send(&mut sink, &batch).await.unwrap();
        let history = sink.history.lock().unwrap();
        let list = series(&history, &HttpRequest::new("/api/series", "name=load"));
        let vane_core::http::Body::Text(list) = list.body else { panic!() };
        assert!(list.contains("\"key\":\"load,host=h value\""), "{list}");
        assert!(list.contains("\"value\":4"), "{list}");
        let r = range(
            &history,
            &HttpRequest::new("/api/range", format!("key=load%2Chost%3Dh+value&from={}", now / 1_000_000 - 60_000)),
        );
        let vane_core::http::Body::Text(r) = r.body else { panic!() };
        let v: serde_json::Value = serde_json::from_str(&r).unwrap();
        assert_eq!(v["tier"], 0);
        let means: Vec<f64> = v["points"].as_array().unwrap().iter().map(|p| p[1].as_f64().unwrap()).collect();
        assert_eq!(means, vec![0.0, 1.0, 2.0, 3.0, 4.0]);
    }

    #[test]
    fn tiers_must_grow_coarser() {
        let node = config("history: { tiers: [{ step: 1m, keep: 1d }, { step: 30s, keep: 2d }] }");
        let c: BoardConfig = vane_core::node::de::from_node(&node, "config").unwrap();
        assert!(c.tiers().unwrap_err().contains("history.tiers[1]"));
    }
}
