//! The `board` sink: keeps every numeric field it takes in the local
//! history (`history.rs`, under the job's data folder), the state of every
//! series that has one (`checks.rs`), and provides boards to every job
//! (`set.rs`), drawn by the pages it serves on the agent's HTTP port
//! (`web.rs`, `query.rs`). Its boards, the flows posted to them and the
//! history live under the job's data folder.

use std::sync::{Arc, Mutex};

use serde::Deserialize;
use vane_core::prelude::*;

use super::history::{History, TierSpec};
use super::set::BoardSet;
use super::web::Site;

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
    /// Series beyond this many are refused (counted as dropped); about
    /// 4 KiB of memory each at most. Default: 10000.
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
    10_000
}
fn minutes_for_a_day() -> Vec<TierConfig> {
    vec![TierConfig { step: vane_core::Duration::from_secs(60), keep: vane_core::Duration::from_secs(86_400) }]
}

/// A board the config names.
#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct BoardInstance {
    pub name: String,
    /// `builtin:NAME` or a template file's path.
    pub template: String,
    /// Put before each of the template's tags to make its flows' tags.
    #[serde(default)]
    pub prefix: String,
}

/// Settings of the `board` sink.
#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct BoardConfig {
    #[serde(default)]
    pub history: HistoryConfig,
    /// The boards of the config. Default: the host overview (`builtin:host`).
    #[serde(default = "host_board")]
    pub boards: Vec<BoardInstance>,
    /// How often posted flows are shown and bound ones recomputed (at least 1s). Default: 1s.
    #[serde(default = "second")]
    pub submit: vane_core::Duration,
}

impl Default for BoardConfig {
    fn default() -> Self {
        BoardConfig { history: HistoryConfig::default(), boards: host_board(), submit: second() }
    }
}

fn host_board() -> Vec<BoardInstance> {
    vec![BoardInstance { name: "host".into(), template: "builtin:host".into(), prefix: String::new() }]
}

pub struct BoardSink {
    site: Site,
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
        if c.submit.get() < std::time::Duration::from_secs(1) {
            return Err(BuildError::stop("submit: at least 1s"));
        }
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
        let boards = BoardSet::new(dir.join("boards"));
        for b in &c.boards {
            boards
                .open_configured(&b.name, &b.prefix, &b.template, ctx.job())
                .map_err(|e| BuildError::stop(format!("board {:?}: {e}", b.name)))?;
        }
        if !ctx.offer_boards(boards.clone()) {
            return Err(BuildError::stop("another board sink provides the agent's boards: one is enough"));
        }
        let site = Site { boards, history: Arc::new(Mutex::new(history)), checks: Arc::default() };
        for (path, handler) in site.routes() {
            match ctx.serve(path, handler) {
                Some(true) => {}
                Some(false) => {
                    return Err(BuildError::stop(format!("{path} is already served on the agent's HTTP port")));
                }
                None => {
                    ctx.warn("agent.http is not set: the history is kept, but no page shows the boards");
                    break;
                }
            }
        }
        let s = site.clone();
        ctx.add_task("submit", c.submit.get(), move |ctx| {
            let s = s.clone();
            async move {
                let errors = tokio::task::spawn_blocking(move || {
                    let h = s.history.lock().expect("not poisoned");
                    let checks = s.checks.lock().expect("not poisoned");
                    s.boards.submit(&h, &checks)
                })
                .await
                .map_err(|e| SourceError::retry(e.to_string()))?;
                for e in errors {
                    ctx.report_error(e);
                }
                Ok(())
            }
        });
        Ok(BoardSink { site })
    }
}

impl Sink for BoardSink {
    async fn send(&mut self, batch: &[Event], ctx: &Context) -> Result<(), SinkError> {
        self.site.checks.lock().expect("not poisoned").observe(batch);
        let history = self.site.history.clone();
        let batch = batch.to_vec();
        let refused_before = history.lock().expect("not poisoned").figures().refused;
        let (result, figures) = tokio::task::spawn_blocking(move || {
            let mut h = history.lock().expect("not poisoned");
            (h.write(&batch), h.figures())
        })
        .await
        .map_err(|e| SinkError::retry(e.to_string()))?;
        let stats = ctx.stats();
        ctx.set_figure("history_series", figures.series);
        ctx.set_figure("history_points", figures.points);
        ctx.set_figure("history_memory_bytes", figures.memory_bytes);
        ctx.set_figure("history_disk_bytes", figures.disk_bytes);
        ctx.set_figure("history_skipped_records", figures.skipped_records);
        ctx.set_figure("checks", self.site.checks.lock().expect("not poisoned").len() as u64);
        ctx.set_figure("board_watchers", self.site.boards.watchers() as u64);
        if figures.refused > refused_before {
            vane_core::stats::JobStats::add(&stats.events_dropped, figures.refused - refused_before);
            ctx.warn(format!("history: refused points of new series beyond max_series ({} series)", figures.series));
        }
        result.map_err(|e| SinkError::retry(format!("history: {e}")))
    }

    /// Syncs the history, and shows (and saves) the flows posted since the
    /// last submission, so that a stop keeps them.
    async fn flush(&mut self, ctx: &Context) -> Result<(), SinkError> {
        let (history, checks, boards) = (self.site.history.clone(), self.site.checks.clone(), self.site.boards.clone());
        let (synced, errors) = tokio::task::spawn_blocking(move || {
            let mut h = history.lock().expect("not poisoned");
            let errors = boards.submit(&h, &checks.lock().expect("not poisoned"));
            (h.sync(), errors)
        })
        .await
        .map_err(|e| SinkError::retry(e.to_string()))?;
        for e in errors {
            ctx.report_error(e);
        }
        synced.map_err(|e| SinkError::retry(format!("history: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vane_core::testing::Harness;

    fn config(yaml: &str) -> vane_core::node::Node {
        vane_core::node::yaml::parse("<test>", yaml, &|_| None).unwrap()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn jobs_post_to_boards_and_checks_and_history_fill_the_bound_widgets() {
        let dir = tempfile::tempdir().unwrap();
        let node = config("boards: [{ name: host, template: builtin:host }]");
        let h = Harness::with("board", "h", dir.path().to_owned(), node.clone(), None);
        let c: BoardConfig = vane_core::node::de::from_node(&node, "config").unwrap();
        let mut sink = BoardSink::build(c, h.context()).unwrap();
        let ctx = h.context();
        let template = "title: Mine\nwidgets:\n  - { tag: n, variant: value }\n";
        let mine = ctx.board("Mine", "a.", template, "test").unwrap();
        mine.post("n", serde_json::json!({"value": 7})).unwrap();
        let now = vane_core::event::now_ns();
        let batch = vec![
            Event::new("cpu").tag("cpu", "cpu-total").field("usage_active", 12.5).host("h").at(now),
            Event::gauge("http_check", 1.0).host("h").state(State::Critical).description("down").at(now),
        ];
        h.send(&mut sink, &batch).await.unwrap();
        let figures = ctx.stats().figures.all();
        assert!(figures.contains(&("history_series", 2)) && figures.contains(&("checks", 1)), "{figures:?}");
        h.run_tasks_once().await;
        let set = &sink.site.boards;
        let b = set.snapshot("mine").unwrap();
        assert_eq!(b["widgets"][0]["data"]["value"], 7);
        assert_eq!(b["owner"], "board");
        assert_eq!(set.list().as_array().unwrap().len(), 2);
        let host = set.snapshot("host").unwrap();
        let widget = |tag: &str| host["widgets"].as_array().unwrap().iter().find(|w| w["tag"] == tag).unwrap().clone();
        assert_eq!(widget("cpu_now")["data"]["value"], 12.5);
        assert_eq!(widget("checks")["data"]["items"][0]["state"], "critical");
        assert_eq!(widget("checks")["data"]["items"][0]["description"], "down");
    }

    #[test]
    fn tiers_must_grow_coarser() {
        let node = config("history: { tiers: [{ step: 1m, keep: 1d }, { step: 30s, keep: 2d }] }");
        let c: BoardConfig = vane_core::node::de::from_node(&node, "config").unwrap();
        assert!(c.tiers().unwrap_err().contains("history.tiers[1]"));
    }
}
