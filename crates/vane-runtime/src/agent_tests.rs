//! The agent's tests: events through engines to sinks, services and tasks,
//! workers, retries, disk buffers, and each role's failure outcome honoured.

use super::*;
use std::path::PathBuf;
use std::sync::LazyLock;
use std::sync::Mutex;
use std::time::Duration;
use tokio::sync::Notify;
use vane_core::prelude::*;

type Bins = HashMap<String, Vec<Event>>;
static BINS: LazyLock<Mutex<Bins>> = LazyLock::new(Default::default);
static ARRIVED: Notify = Notify::const_new();

/// Doubles every event; beats a `beat` event.
#[derive(serde::Deserialize)]
struct Dup;
impl Engine for Dup {
    fn process(&mut self, e: Event, out: &mut Vec<Event>, _: &Context) -> Result<(), EngineError> {
        out.push(e.clone().tag("copy", "1"));
        out.push(e.tag("copy", "2"));
        Ok(())
    }
    fn beat(&mut self, out: &mut Vec<Event>, _: &Context) -> Result<(), EngineError> {
        out.push(Event::gauge("beat", 1.0));
        Ok(())
    }
}

/// A long-running source in Tourbillon's shape: wait until ready, then
/// loop while the agent runs.
#[derive(serde::Deserialize)]
struct Loop;
impl Service for Loop {
    async fn run(self, ctx: Context) -> Result<(), ServiceError> {
        ctx.ready().await;
        let mut n = 0u64;
        loop {
            n += 1;
            ctx.emit(Event::counter("svc", n)).await;
            if !ctx.sleep(Duration::from_millis(10)).await {
                return Ok(());
            }
        }
    }
}

/// Fills two flows from two tasks on their own intervals (Telemetry's shape).
struct Flows;
impl Source for Flows {
    async fn poll(&mut self, _: &Context) -> Result<Vec<Event>> {
        Ok(vec![])
    }
}

impl Build for Flows {
    type Config = ();
    fn build(_: (), ctx: &Context) -> Result<Self, BuildError> {
        for (name, ms) in [("task_fast", 10), ("task_slow", 30)] {
            ctx.add_task(name, Duration::from_millis(ms), move |ctx| async move {
                ctx.emit(Event::gauge(name, 1.0)).await;
                Ok(())
            });
        }
        Ok(Flows)
    }
}

/// Keeps a batch in the global bin `name`, and says so.
fn keep(name: &str, b: &[Event]) {
    BINS.lock().unwrap().entry(name.to_owned()).or_default().extend_from_slice(b);
    ARRIVED.notify_waiters();
}

/// Collects into the global bin its config names.
#[derive(serde::Deserialize)]
struct Col {
    bin: String,
}
impl Sink for Col {
    async fn send(&mut self, b: &[Event], _: &Context) -> Result<(), SinkError> {
        keep(&self.bin, b);
        Ok(())
    }
}

/// Emits 1, 2, 3 … one per poll, as `name`, for `series` series (tag s=0..).
#[derive(serde::Deserialize)]
struct Count {
    name: String,
    series: usize,
    #[serde(skip)]
    n: u64,
}
impl Source for Count {
    async fn poll(&mut self, _: &Context) -> Result<Vec<Event>> {
        self.n += 1;
        Ok((0..self.series).map(|s| Event::counter(self.name.as_str(), self.n).tag("s", s.to_string())).collect())
    }
}

static WORKER_IDS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Tags each event with the instance that processed it; beats a `who_beat`
/// event tagged so too, for the engine as a whole unless `each` says its
/// beat is per worker.
struct Who(usize, bool);
impl Engine for Who {
    fn process(&mut self, e: Event, out: &mut Vec<Event>, _: &Context) -> Result<(), EngineError> {
        out.push(e.tag("worker", self.0.to_string()));
        Ok(())
    }
    fn beat(&mut self, out: &mut Vec<Event>, _: &Context) -> Result<(), EngineError> {
        out.push(Event::gauge("who_beat", 1.0).tag("worker", self.0.to_string()));
        Ok(())
    }
    fn beat_each_worker(&self) -> bool {
        self.1
    }
}

#[derive(serde::Deserialize, Default)]
#[serde(default)]
struct WhoConfig {
    each: bool,
}

impl Build for Who {
    type Config = WhoConfig;
    fn build(c: WhoConfig, _: &Context) -> Result<Self, BuildError> {
        Ok(Who(WORKER_IDS.fetch_add(1, std::sync::atomic::Ordering::SeqCst), c.each))
    }
}

/// A sink that fails while its gate (named in its config) is closed.
static GATES: LazyLock<Mutex<HashMap<String, bool>>> = LazyLock::new(Default::default);

/// First event of each batch a closed gate was asked to send.
static ATTEMPTED: LazyLock<Mutex<HashMap<String, std::collections::HashSet<i64>>>> = LazyLock::new(Default::default);

fn gate(name: &str, open: bool) {
    GATES.lock().unwrap().insert(name.to_owned(), open);
}

#[derive(serde::Deserialize)]
struct Gate {
    gate: String,
}
impl Sink for Gate {
    async fn send(&mut self, b: &[Event], _: &Context) -> Result<(), SinkError> {
        if !GATES.lock().unwrap().get(&self.gate).copied().unwrap_or(false) {
            let first = b.first().and_then(|e| e.get_field("value")).and_then(|v| v.as_f64());
            let mut attempted = ATTEMPTED.lock().unwrap();
            attempted.entry(self.gate.clone()).or_default().insert(first.unwrap_or(-1.0) as i64);
            return Err("the backend is down".into());
        }
        keep(&self.gate, b);
        Ok(())
    }
}

static POLLED: LazyLock<Mutex<HashMap<String, u64>>> = LazyLock::new(Default::default);

/// Counts 1, 2, 3 … and remembers how far it got, per job.
#[derive(serde::Deserialize)]
struct Numbered {
    #[serde(skip)]
    n: u64,
}
impl Source for Numbered {
    async fn poll(&mut self, ctx: &Context) -> Result<Vec<Event>> {
        self.n += 1;
        POLLED.lock().unwrap().insert(ctx.job().to_owned(), self.n);
        ARRIVED.notify_waiters();
        Ok(vec![Event::counter("n", self.n)])
    }
}

fn polled(job: &str) -> u64 {
    POLLED.lock().unwrap().get(job).copied().unwrap_or(0)
}

fn numbers(bin_name: &str) -> Vec<u64> {
    bin(bin_name)
        .iter()
        .filter(|e| e.name == "n")
        .map(|e| e.get_field("value").unwrap().as_f64().unwrap() as u64)
        .collect()
}

fn registry() -> Registry {
    let mut r = Registry::new();
    r.source::<Numbered>("t.numbered", "").sink::<Gate>("t.gate", "");
    r.source::<Count>("t.count", "").engine::<Who>("t.who", "");
    r.source::<Flows>("t.flows", "").service::<Loop>("t.loop", "").engine::<Dup>("t.dup", "").sink::<Col>("t.col", "");
    r
}

fn bin(name: &str) -> Vec<Event> {
    BINS.lock().unwrap().get(name).cloned().unwrap_or_default()
}

fn count(events: &[Event], name: &str) -> usize {
    events.iter().filter(|e| e.name == name).count()
}

/// Resolves once `cond` holds; the sinks notify on every batch.
async fn until(cond: impl Fn() -> bool) {
    crate::test_util::until(&ARRIVED, cond).await
}

fn config(r: &Registry, text: &str) -> Config {
    crate::config::from_texts(&[(PathBuf::from("m"), "m".into(), text.into())], r, &|_| None).unwrap()
}

async fn run_until(text: &str, cond: impl Fn() -> bool) -> Report {
    let r = registry();
    let cfg = config(&r, text);
    tokio::time::timeout(Duration::from_secs(20), run(cfg, Arc::new(r), until(cond)))
        .await
        .expect("the condition holds within 20s")
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_flow_through_engines_in_order_with_beats() {
    let text = "agent: { host: h9, data_dir: /tmp }\n\
        jobs:\n  - { id: s, plugin: t.count, interval: 10ms, next: d, tags: { src: s }, config: { name: seq, series: 1 } }\n\
        engines:\n  - { id: d, plugin: t.dup, beat: 20ms }\n\
        sinks:\n  - { id: c, plugin: t.col, batch_wait: 5ms, config: { bin: chain } }\n";
    let report = run_until(text, || {
        let c = bin("chain");
        count(&c, "seq") >= 40 && count(&c, "beat") >= 2
    })
    .await;
    assert_eq!(report.aborted, 0);
    let c = bin("chain");
    for copy in ["1", "2"] {
        let ns: Vec<f64> = c
            .iter()
            .filter(|e| e.name == "seq" && e.get_tag("copy") == Some(copy))
            .map(|e| e.get_field("value").unwrap().as_f64().unwrap())
            .collect();
        assert!(ns.len() >= 20, "copy {copy}: {}", ns.len());
        assert!(ns.windows(2).all(|w| w[1] == w[0] + 1.0), "order kept: {ns:?}");
    }
    let seq = c.iter().find(|e| e.name == "seq").unwrap();
    assert_eq!(seq.host, "h9");
    assert_eq!(seq.get_tag("src"), Some("s"));
    assert!(seq.time > 0);
    assert_eq!(seq.kind, Kind::Counter);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn services_and_tasks_feed_every_sink_and_stop_cleanly() {
    let text = "jobs:\n\
        \x20 - { id: svc, plugin: t.loop }\n\
        \x20 - { id: flows, plugin: t.flows, interval: 1h }\n\
        sinks:\n\
        \x20 - { id: a, plugin: t.col, batch_wait: 5ms, config: { bin: fan-a } }\n\
        \x20 - { id: b, plugin: t.col, batch_wait: 5ms, config: { bin: fan-b } }\n";
    let enough = |b: &[Event]| count(b, "svc") >= 5 && count(b, "task_fast") >= 6 && count(b, "task_slow") >= 2;
    let report = run_until(text, || enough(&bin("fan-a")) && enough(&bin("fan-b"))).await;
    // The service saw the stop and returned; nothing had to be aborted.
    assert_eq!(report.aborted, 0);
    let (a, b) = (bin("fan-a"), bin("fan-b"));
    // Both sinks got the same events: a job without `next` feeds every sink.
    let names = |v: &[Event]| {
        let mut n: Vec<(String, String)> = v.iter().map(|e| (e.name.to_string(), format!("{:?}", e.fields))).collect();
        n.sort();
        n
    };
    assert_eq!(names(&a), names(&b));
    let svc: Vec<f64> =
        a.iter().filter(|e| e.name == "svc").map(|e| e.get_field("value").unwrap().as_f64().unwrap()).collect();
    assert!(svc.windows(2).all(|w| w[1] == w[0] + 1.0), "{svc:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workers_split_series_and_keep_their_order() {
    let text = "jobs:\n  - { id: m, plugin: t.count, interval: 5ms, next: w, config: { name: many, series: 8 } }\n\
        engines:\n  - { id: w, plugin: t.who, workers: 3 }\n\
        sinks:\n  - { id: c, plugin: t.col, batch_wait: 5ms, config: { bin: workers } }\n";
    let report = run_until(text, || count(&bin("workers"), "many") >= 8 * 30).await;
    assert_eq!(report.aborted, 0);
    let evs = bin("workers");
    let mut by_series: HashMap<String, (String, Vec<f64>)> = HashMap::new();
    for e in evs.iter().filter(|e| e.name == "many") {
        let s = e.get_tag("s").unwrap().to_owned();
        let w = e.get_tag("worker").unwrap().to_owned();
        let entry = by_series.entry(s.clone()).or_insert((w.clone(), vec![]));
        assert_eq!(entry.0, w, "series {s} moved between workers");
        entry.1.push(e.get_field("value").unwrap().as_f64().unwrap());
    }
    assert_eq!(by_series.len(), 8);
    for (s, (_, ns)) in &by_series {
        assert!(ns.windows(2).all(|w| w[1] == w[0] + 1.0), "series {s} out of order: {ns:?}");
    }
    let workers: std::collections::HashSet<&String> = by_series.values().map(|(w, _)| w).collect();
    assert!(workers.len() > 1, "eight series all went to one worker");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_beat_for_the_whole_engine_runs_on_one_worker_and_one_per_worker_on_each() {
    let text = |bin: &str, each: bool| {
        format!(
            "engines:\n  - {{ id: w, plugin: t.who, workers: 3, beat: 5ms, config: {{ each: {each} }} }}\n\
             jobs:\n  - {{ id: m, plugin: t.count, interval: 1h, next: w, config: {{ name: few, series: 1 }} }}\n\
             sinks:\n  - {{ id: c, plugin: t.col, batch_wait: 5ms, config: {{ bin: {bin} }} }}\n"
        )
    };
    let beaters = |bin_name: &str| -> std::collections::HashSet<String> {
        bin(bin_name).iter().filter(|e| e.name == "who_beat").map(|e| e.get_tag("worker").unwrap().to_owned()).collect()
    };
    run_until(&text("beat_each", true), || beaters("beat_each").len() == 3).await;
    run_until(&text("beat_once", false), || count(&bin("beat_once"), "who_beat") >= 30).await;
    assert_eq!(beaters("beat_once").len(), 1, "one worker of three beats for the engine");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_backend_is_retried_until_every_event_arrives_in_order() {
    gate("flaky", false);
    let text = "jobs:\n  - { id: flaky_src, plugin: t.numbered, interval: 10ms }\n\
        sinks:\n  - { id: out, plugin: t.gate, batch_wait: 5ms, config: { gate: flaky } }\n";
    // Open the gate once 20 polls have piled up in the buffer.
    let opener = tokio::spawn(async {
        until(|| polled("flaky_src") >= 20).await;
        gate("flaky", true);
    });
    let report = run_until(text, || numbers("flaky").len() >= 40).await;
    opener.await.unwrap();
    assert_eq!(report.aborted, 0);
    let got = numbers("flaky");
    assert_eq!(got, (1..=got.len() as u64).collect::<Vec<_>>(), "nothing lost, in order");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_sink_does_not_slow_a_healthy_one() {
    gate("dead", false);
    gate("healthy", true);
    let text = "agent: { shutdown_timeout: 200ms }\n\
        jobs:\n  - { id: both_src, plugin: t.numbered, interval: 5ms }\n\
        sinks:\n\
        \x20 - { id: dead, plugin: t.gate, batch_wait: 5ms, config: { gate: dead } }\n\
        \x20 - { id: healthy, plugin: t.gate, batch_wait: 5ms, config: { gate: healthy } }\n";
    let report = run_until(text, || numbers("healthy").len() >= 100).await;
    let got = numbers("healthy");
    assert_eq!(got, (1..=got.len() as u64).collect::<Vec<_>>());
    // The healthy sink kept up with the source all along.
    assert!(got.len() as u64 + 10 >= polled("both_src"), "{} of {}", got.len(), polled("both_src"));
    assert!(numbers("dead").is_empty());
    // The dead sink was still retrying when the agent stopped.
    assert_eq!(report.aborted, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disk_buffer_delivers_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display();
    gate("disk", false);
    let first = format!(
        "agent: {{ data_dir: {d}, shutdown_timeout: 100ms }}\n\
         jobs:\n  - {{ id: disk_src, plugin: t.numbered, interval: 5ms }}\n\
         sinks:\n  - {{ id: keep, plugin: t.gate, batch_wait: 5ms, buffer: {{ kind: disk, fsync: 10ms }}, config: {{ gate: disk }} }}\n"
    );
    run_until(&first, || polled("disk_src") >= 50).await;
    let made = polled("disk_src");
    assert!(numbers("disk").is_empty(), "the backend was down");
    // Started again with the backend up and no source: the buffer drains.
    gate("disk", true);
    let second = format!(
        "agent: {{ data_dir: {d} }}\n\
         sinks:\n  - {{ id: keep, plugin: t.gate, batch_wait: 5ms, buffer: {{ kind: disk }}, config: {{ gate: disk }} }}\n"
    );
    run_until(&second, || numbers("disk").len() as u64 >= made).await;
    let got = numbers("disk");
    assert_eq!(got, (1..=made).collect::<Vec<_>>(), "every event made before the stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn submission_interval_sends_the_latest_of_each_series_once_per_interval() {
    let text = "jobs:\n  - { id: m, plugin: t.count, interval: 5ms, config: { name: many, series: 8 } }\n\
        sinks:\n  - { id: c, plugin: t.col, submission_interval: 100ms, config: { bin: submit } }\n";
    run_until(text, || count(&bin("submit"), "many") >= 8 * 5).await;
    let evs = bin("submit");
    for s in 0..8 {
        let vals: Vec<f64> = evs
            .iter()
            .filter(|e| e.get_tag("s") == Some(&s.to_string()))
            .map(|e| e.get_field("value").unwrap().as_f64().unwrap())
            .collect();
        assert!(vals.len() >= 5, "series {s}: {vals:?}");
        // Each submission carries a later value than the one before:
        // about 20 polls happen per 100 ms, only the latest goes out.
        assert!(vals.windows(2).all(|w| w[1] > w[0]), "series {s}: {vals:?}");
        let last = *vals.last().unwrap();
        assert!((vals.len() as f64) < last / 2.0, "coalesced: {} sent of {last} made", vals.len());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_for_bounds_how_long_a_batch_is_retried() {
    let text = "agent: { shutdown_timeout: 200ms }\n\
        jobs:\n  - { id: bounded_src, plugin: t.numbered, interval: 20ms }\n\
        sinks:\n\
        \x20 - { id: never, plugin: t.gate, batch_wait: 5ms, retry_for: 300ms, config: { gate: never } }\n\
        \x20 - { id: ok, plugin: t.gate, batch_wait: 5ms, config: { gate: bounded_ok } }\n";
    gate("never", false);
    gate("bounded_ok", true);
    // The failing sink gives each batch up after 300 ms and moves on to
    // the next; unbounded, it would retry its first batch forever.
    run_until(text, || ATTEMPTED.lock().unwrap().get("never").is_some_and(|a| a.len() >= 3)).await;
    assert!(numbers("never").is_empty());
    assert!(!numbers("bounded_ok").is_empty());
}

/// A reload that changes a sink's buffer from memory to disk and back
/// while its backend is down: each new buffer takes over what the old held,
/// and once the backend is up everything arrives, once, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rebuilt_sink_takes_over_what_its_buffer_held_whatever_its_kind() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display().to_string();
    gate("moved", false);
    let text = move |buffer: &str, batch: usize| {
        format!(
            "agent: {{ data_dir: {d}, shutdown_timeout: 2s }}\n\
             jobs:\n  - {{ id: moved_src, plugin: t.numbered, interval: 5ms, next: moved }}\n\
             sinks:\n  - {{ id: moved, plugin: t.gate, batch_size: {batch}, batch_wait: 5ms, buffer: {buffer}, config: {{ gate: moved }} }}\n"
        )
    };
    let r = Arc::new(registry());
    let (tx, rx) = mpsc::channel(1);
    let first = config(&r, &text("{ kind: memory }", 100));
    let r2 = r.clone();
    let driver = async move {
        until(|| polled("moved_src") >= 30).await;
        tx.send(config(&r2, &text("{ kind: disk, fsync: 10ms }", 100))).await.unwrap();
        until(|| polled("moved_src") >= 60).await;
        tx.send(config(&r2, &text("{ kind: memory, max_size: 8MiB }", 50))).await.unwrap();
        until(|| polled("moved_src") >= 90).await;
        assert!(numbers("moved").is_empty(), "the backend was down");
        gate("moved", true);
        until(|| numbers("moved").len() >= 90).await;
    };
    tokio::time::timeout(Duration::from_secs(30), run_reloading(first, r, driver, rx))
        .await
        .expect("within 30s")
        .unwrap();
    let got = numbers("moved");
    assert_eq!(got, (1..=got.len() as u64).collect::<Vec<_>>(), "every event once, in order");
}

/// A reload that changes an engine: the old one drains (its last beat
/// goes out) while the new one takes the events that come after.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_engine_drains_while_its_successor_takes_over() {
    let text = |beat: &str| {
        format!(
            "jobs:\n  - {{ id: dup_src, plugin: t.numbered, interval: 5ms, next: twice }}\n\
             engines:\n  - {{ id: twice, plugin: t.dup, beat: {beat}, next: dups }}\n\
             sinks:\n  - {{ id: dups, plugin: t.col, batch_wait: 5ms, config: {{ bin: dups }} }}\n"
        )
    };
    let r = Arc::new(registry());
    let (tx, rx) = mpsc::channel(1);
    let first = config(&r, &text("1h"));
    let r2 = r.clone();
    let driver = async move {
        until(|| polled("dup_src") >= 20).await;
        tx.send(config(&r2, &text("2h"))).await.unwrap();
        // The old engine's last beat, as it ended.
        until(|| count(&bin("dups"), "beat") >= 1).await;
        let at = polled("dup_src");
        until(|| polled("dup_src") >= at + 20).await;
    };
    tokio::time::timeout(Duration::from_secs(30), run_reloading(first, r, driver, rx))
        .await
        .expect("within 30s")
        .unwrap();
    let evs = bin("dups");
    let mut per: HashMap<u64, usize> = HashMap::new();
    for e in evs.iter().filter(|e| e.name == "n") {
        *per.entry(e.get_field("value").unwrap().as_f64().unwrap() as u64).or_default() += 1;
    }
    let made = per.keys().max().copied().unwrap_or(0);
    assert!(made >= 40, "{made}");
    // Every number doubled exactly once: none lost, none processed twice.
    for n in 1..=made - 5 {
        assert_eq!(per.get(&n), Some(&2), "number {n}: {per:?}");
    }
}
