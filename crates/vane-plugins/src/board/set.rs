//! The boards the `board` sink provides ([`vane_core::board::Boards`]):
//! get-or-create by name, flows posted by jobs and coalesced until the next
//! submission (the last post per flow wins), flows bound to the history or
//! to the check states recomputed at each submission, and the pages that
//! watch a board told what changed, one message per board per submission.
//!
//! A board's posted flows are kept in `DIR/SLUG.json` (written whole to a
//! temporary file, then renamed), so a board reopened at start keeps them;
//! its layout always comes from the template it is opened with.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, Weak};

use serde_json::{Value, json};
use tokio::sync::mpsc;
use vane_core::board::{Board, BoardError, Boards};

use super::bind::{self, Rates};
use super::checks::Checks;
use super::history::History;
use super::template::{Template, Variant, Widget};

/// Pages watching boards at once; the oldest is let go for a new one.
pub const MAX_WATCHERS: usize = 64;
/// Messages a log widget keeps.
pub const LOG_MESSAGES: usize = 100;

/// A flow's data and when it last changed (ms since the epoch; 0: never).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
struct Flow {
    data: Value,
    updated: i64,
}

struct Shown {
    name: String,
    slug: String,
    prefix: String,
    owner: String,
    origin: String,
    template: Template,
    flows: BTreeMap<String, Flow>,
}

/// What `DIR/SLUG.json` keeps of a board.
#[derive(serde::Serialize, serde::Deserialize)]
struct Saved {
    name: String,
    prefix: String,
    owner: String,
    origin: String,
    flows: BTreeMap<String, Flow>,
}

#[derive(Default)]
struct Inner {
    boards: BTreeMap<String, Shown>,
    /// Full flow tag → (board slug, template tag).
    by_flow: HashMap<String, (String, String)>,
    pending: HashMap<String, Value>,
    watchers: Vec<(String, mpsc::Sender<String>)>,
    rates: Rates,
    submissions: u64,
}

pub struct BoardSet {
    dir: PathBuf,
    me: Weak<BoardSet>,
    inner: Mutex<Inner>,
}

/// A board's name as it appears in its address: lower-case letters,
/// digits and `-`.
pub fn slug(name: &str) -> String {
    let mut s = String::new();
    for c in name.chars() {
        if c.is_ascii_alphanumeric() {
            s.push(c.to_ascii_lowercase());
        } else if !s.ends_with('-') {
            s.push('-');
        }
    }
    let s = s.trim_matches('-').to_owned();
    if s.is_empty() { "board".into() } else { s }
}

fn initial(w: &Widget) -> Flow {
    Flow { data: w.data.clone().unwrap_or_else(|| json!({})), updated: 0 }
}

fn now_ms() -> i64 {
    vane_core::event::now_ns() / 1_000_000
}

impl BoardSet {
    /// Boards kept under `dir`.
    pub fn new(dir: PathBuf) -> Arc<BoardSet> {
        Arc::new_cyclic(|me| BoardSet { dir, me: me.clone(), inner: Mutex::default() })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().expect("not poisoned")
    }

    /// The board for `slug` as the page draws it: settings, widgets, data.
    pub fn snapshot(&self, slug: &str) -> Option<Value> {
        self.lock().boards.get(slug).map(describe)
    }

    /// Every board: `[{name, slug, title, owner, widgets}]`.
    pub fn list(&self) -> Value {
        let inner = self.lock();
        Value::Array(
            inner
                .boards
                .values()
                .map(|b| {
                    json!({"name": b.name, "slug": b.slug, "title": b.template.title, "owner": b.owner,
                           "origin": b.origin, "widgets": b.template.widgets.len()})
                })
                .collect(),
        )
    }

    /// The template bindings of widget `tag` of board `slug`.
    pub fn bindings(&self, slug: &str, tag: &str) -> Option<Vec<super::template::Binding>> {
        let inner = self.lock();
        let w = inner.boards.get(slug)?.template.widgets.iter().find(|w| w.tag == tag)?;
        Some(w.series.clone())
    }

    /// A page watching board `slug`: the board at once (`event: board`),
    /// then each submission's changes (`data: {"flows": {TAG: {data, updated}}}`).
    pub fn watch(&self, slug: &str) -> Option<mpsc::Receiver<String>> {
        let mut inner = self.lock();
        let board = describe(inner.boards.get(slug)?);
        let (tx, rx) = mpsc::channel(64);
        let _ = tx.try_send(format!("retry: 2000\nevent: board\ndata: {board}\n\n"));
        if inner.watchers.len() >= MAX_WATCHERS {
            inner.watchers.remove(0);
        }
        inner.watchers.push((slug.to_owned(), tx));
        Some(rx)
    }

    /// Pages watching now.
    pub fn watchers(&self) -> usize {
        self.lock().watchers.iter().filter(|(_, tx)| !tx.is_closed()).count()
    }

    /// Opens a board named in the config (owned by the sink `owner`).
    pub fn open_configured(&self, name: &str, prefix: &str, spec: &str, owner: &str) -> Result<(), BoardError> {
        let (text, origin) = super::template::text_of(spec)?;
        self.open(name, prefix, &text, &origin, owner).map(|_| ())
    }

    fn load(&self, slug: &str) -> Option<Saved> {
        let text = std::fs::read(self.dir.join(format!("{slug}.json"))).ok()?;
        serde_json::from_slice(&text).ok()
    }

    fn save(&self, b: &Shown) -> std::io::Result<()> {
        std::fs::create_dir_all(&self.dir)?;
        let saved = Saved {
            name: b.name.clone(),
            prefix: b.prefix.clone(),
            owner: b.owner.clone(),
            origin: b.origin.clone(),
            flows: b.flows.clone(),
        };
        let path = self.dir.join(format!("{}.json", b.slug));
        let tmp = path.with_extension("json.tmp");
        std::fs::write(&tmp, serde_json::to_vec(&saved).expect("plain JSON"))?;
        std::fs::rename(&tmp, &path)
    }

    /// Applies the flows posted since the last submission, recomputes the
    /// bound ones, saves the boards whose posted flows changed and tells
    /// the pages. Returns the errors met saving.
    pub fn submit(&self, history: &History, checks: &Checks) -> Vec<String> {
        let now = now_ms();
        let mut inner = self.lock();
        let inner = &mut *inner;
        inner.submissions += 1;
        let mut changed: BTreeMap<String, serde_json::Map<String, Value>> = BTreeMap::new();
        let mut to_save = Vec::new();
        for (flow, data) in std::mem::take(&mut inner.pending) {
            let Some((slug, tag)) = inner.by_flow.get(&flow) else { continue };
            let Some(board) = inner.boards.get_mut(slug) else { continue };
            let Some(w) = board.template.widgets.iter().find(|w| &w.tag == tag) else { continue };
            if !w.series.is_empty() || w.checks.is_some() {
                continue;
            }
            let old = board.flows.get(tag).cloned().unwrap_or_else(|| initial(w));
            let data = merge(w.variant, old.data, data);
            let f = Flow { data, updated: now };
            changed.entry(slug.clone()).or_default().insert(tag.clone(), json!(f));
            board.flows.insert(tag.clone(), f);
            if !to_save.contains(slug) {
                to_save.push(slug.clone());
            }
        }
        for board in inner.boards.values_mut() {
            for w in &board.template.widgets {
                let data = if let Some(c) = &w.checks {
                    json!({"items": checks.list(&c.name)})
                } else if !w.series.is_empty() {
                    bind::data(history, &mut inner.rates, w)
                } else {
                    continue;
                };
                let updated = if w.checks.is_some() { now } else { latest_of(&data) };
                if board.flows.get(&w.tag).is_some_and(|f| f.data == data) {
                    continue;
                }
                let f = Flow { data, updated };
                changed.entry(board.slug.clone()).or_default().insert(w.tag.clone(), json!(f));
                board.flows.insert(w.tag.clone(), f);
            }
        }
        let mut errors = Vec::new();
        for slug in to_save {
            if let Err(e) = self.save(&inner.boards[&slug]) {
                errors.push(format!("cannot save board {slug}: {e}"));
            }
        }
        let ping = inner.submissions.is_multiple_of(15);
        inner.watchers.retain(|(slug, tx)| {
            let msg = match changed.get(slug) {
                Some(flows) => format!("data: {}\n\n", json!({"flows": flows})),
                None if ping => ": still here\n\n".to_owned(),
                None => return !tx.is_closed(),
            };
            // A page that does not keep up is let go; it reconnects and starts afresh.
            tx.try_send(msg).is_ok()
        });
        errors
    }
}

/// The latest time among a bound flow's values (ms), 0 without one.
fn latest_of(data: &Value) -> i64 {
    fn walk(v: &Value, best: &mut i64) {
        match v {
            Value::Object(m) => {
                if let Some(t) = m.get("time").and_then(Value::as_i64) {
                    *best = (*best).max(t);
                }
                m.values().for_each(|v| walk(v, best));
            }
            Value::Array(a) => a.iter().for_each(|v| walk(v, best)),
            _ => {}
        }
    }
    let mut best = 0;
    walk(data, &mut best);
    best
}

/// A posted update on top of the flow's data: a log's `{text}` adds a
/// message, anything else replaces the data.
fn merge(variant: Variant, old: Value, new: Value) -> Value {
    if variant != Variant::Log || new.get("messages").is_some() {
        return new;
    }
    let Some(text) = new.get("text").cloned() else { return new };
    let mut messages: Vec<Value> = old.get("messages").and_then(Value::as_array).cloned().unwrap_or_default();
    let time = new.get("time").cloned().unwrap_or_else(|| json!(now_ms()));
    messages.push(json!({"time": time, "text": text}));
    if messages.len() > LOG_MESSAGES {
        messages.drain(..messages.len() - LOG_MESSAGES);
    }
    let mut out = new;
    out.as_object_mut().map(|m| {
        m.remove("text");
        m.remove("time");
        m.insert("messages".into(), Value::Array(messages))
    });
    out
}

/// A board as the page draws it.
fn describe(b: &Shown) -> Value {
    let widgets: Vec<Value> = b
        .template
        .widgets
        .iter()
        .map(|w| {
            let f = b.flows.get(&w.tag).cloned().unwrap_or_else(|| initial(w));
            json!({
                "tag": w.tag, "flow": format!("{}{}", b.prefix, w.tag), "variant": w.variant.name(),
                "title": w.title, "column": w.column, "row": w.row, "width": w.width, "height": w.height,
                "priority": w.priority, "unit": w.unit, "min": w.min, "max": w.max,
                "bound": if w.checks.is_some() { "checks" } else if w.series.is_empty() { "job" } else { "history" },
                "data": f.data, "updated": f.updated,
            })
        })
        .collect();
    json!({
        "name": b.name, "slug": b.slug, "title": b.template.title, "theme": b.template.theme,
        "columns": b.template.columns, "owner": b.owner, "origin": b.origin, "prefix": b.prefix,
        "widgets": widgets,
    })
}

impl Boards for BoardSet {
    fn open(&self, name: &str, prefix: &str, template: &str, origin: &str, owner: &str) -> Result<Board, BoardError> {
        let t = Template::parse(template, origin)?;
        let slug = slug(name);
        let mut inner = self.lock();
        for w in &t.widgets {
            let flow = format!("{prefix}{}", w.tag);
            if let Some((other, _)) = inner.by_flow.get(&flow).filter(|(s, _)| *s != slug) {
                return Err(BoardError::Taken { flow, other: other.clone() });
            }
        }
        let kept = match inner.boards.remove(&slug) {
            Some(b) => Some(b.flows),
            None => self.load(&slug).map(|s| s.flows),
        };
        inner.by_flow.retain(|_, (s, _)| *s != slug);
        let mut flows = BTreeMap::new();
        for w in &t.widgets {
            inner.by_flow.insert(format!("{prefix}{}", w.tag), (slug.clone(), w.tag.clone()));
            // The layout is the template's; a flow's data outlives a new layout.
            let f = kept.as_ref().and_then(|k| k.get(&w.tag)).cloned().unwrap_or_else(|| initial(w));
            flows.insert(w.tag.clone(), f);
        }
        let tags = t.tags();
        let board = Shown {
            name: name.to_owned(),
            slug: slug.clone(),
            prefix: prefix.to_owned(),
            owner: owner.to_owned(),
            origin: origin.to_owned(),
            template: t,
            flows,
        };
        self.save(&board)
            .map_err(|source| BoardError::Save { slug: self.dir.join(&slug).display().to_string(), source })?;
        let snapshot = describe(&board);
        inner.boards.insert(slug.clone(), board);
        // Pages already open on it take the new layout.
        inner
            .watchers
            .retain(|(s, tx)| *s != slug || tx.try_send(format!("event: board\ndata: {snapshot}\n\n")).is_ok());
        let me: Arc<dyn Boards> = self.me.upgrade().expect("alive while called");
        Ok(Board::new(name, prefix, tags, me))
    }

    fn post(&self, flow: &str, data: Value) -> bool {
        let mut inner = self.lock();
        if !inner.by_flow.contains_key(flow) {
            return false;
        }
        inner.pending.insert(flow.to_owned(), data);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::super::history::TierSpec;
    use super::*;

    const TEMPLATE: &str = "title: T\nwidgets:\n  - { tag: x, variant: value }\n  - { tag: log, variant: log }\n";

    fn history(dir: &std::path::Path) -> History {
        let tiers = [TierSpec { step: std::time::Duration::ZERO, keep: std::time::Duration::from_secs(3600) }];
        History::open(&dir.join("h"), &tiers, 100, std::time::Duration::from_secs(1)).unwrap()
    }

    #[tokio::test]
    async fn posts_coalesce_until_the_submission_and_survive_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let (h, checks) = (history(dir.path()), Checks::default());
        let set = BoardSet::new(dir.path().join("boards"));
        let board = set.open("My Board", "p.", TEMPLATE, "t.yaml", "job").unwrap();
        assert_eq!(board.flow("x"), "p.x");
        assert!(board.post("nope", json!({})).unwrap_err().to_string().contains("x, log"));
        let mut page = set.watch("my-board").unwrap();
        assert!(page.recv().await.unwrap().starts_with("retry: 2000\nevent: board\ndata: {"));
        board.post("x", json!({"value": 1})).unwrap();
        board.post("x", json!({"value": 2})).unwrap();
        board.post("log", json!({"text": "one"})).unwrap();
        assert!(page.try_recv().is_err(), "nothing before the submission");
        assert!(set.submit(&h, &checks).is_empty());
        let msg = page.recv().await.unwrap();
        let v: Value = serde_json::from_str(msg.strip_prefix("data: ").unwrap().trim()).unwrap();
        assert_eq!(v["flows"]["x"]["data"], json!({"value": 2}));
        board.post("log", json!({"text": "two"})).unwrap();
        set.submit(&h, &checks);
        let _ = page.recv().await.unwrap();
        // Reopened (a restart) with a new layout: the data stays.
        let set = BoardSet::new(dir.path().join("boards"));
        let moved = TEMPLATE.replace("variant: value }", "variant: value, column: 4, width: 4 }");
        set.open("My Board", "p.", &moved, "t.yaml", "job").unwrap();
        let b = set.snapshot("my-board").unwrap();
        assert_eq!(b["widgets"][0]["column"], 4);
        assert_eq!(b["widgets"][0]["data"], json!({"value": 2}));
        let texts: Vec<&str> = b["widgets"][1]["data"]["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["text"].as_str().unwrap())
            .collect();
        assert_eq!(texts, ["one", "two"]);
    }

    #[test]
    fn a_flow_belongs_to_one_board() {
        let dir = tempfile::tempdir().unwrap();
        let set = BoardSet::new(dir.path().to_owned());
        set.open("a", "p.", TEMPLATE, "t", "j").unwrap();
        let e = set.open("b", "p.", TEMPLATE, "t", "j").unwrap_err().to_string();
        assert!(e.contains("\"p.x\" already belongs to board \"a\""), "{e}");
        set.open("b", "q.", TEMPLATE, "t", "j").unwrap();
        assert!(set.post("q.x", json!({})));
        assert!(!set.post("r.x", json!({})));
        assert_eq!(slug("Web servers / EU"), "web-servers-eu");
    }
}
