//! Each role's failure outcome, honoured by the runtime: scripted plugins
//! fail as told, and the tests check what the agent did about it.

use super::*;
use std::path::PathBuf;
use std::sync::LazyLock;
use std::sync::Mutex;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;
use tokio::sync::Notify;
use vane_core::prelude::*;

/// Per job: calls made so far, instances built so far, events delivered.
#[derive(Default, Clone)]
struct Log {
    calls: usize,
    builds: usize,
    got: Vec<Event>,
}

static LOGS: LazyLock<Mutex<HashMap<String, Log>>> = LazyLock::new(Default::default);
static CHANGED: Notify = Notify::const_new();

fn log(job: &str) -> Log {
    LOGS.lock().unwrap().get(job).cloned().unwrap_or_default()
}

fn with_log<T>(job: &str, f: impl FnOnce(&mut Log) -> T) -> T {
    let t = f(LOGS.lock().unwrap().entry(job.to_owned()).or_default());
    CHANGED.notify_waiters();
    t
}

/// Counts one more call of `job`: the calls before it.
fn call(job: &str) -> usize {
    with_log(job, |l| {
        l.calls += 1;
        l.calls - 1
    })
}

/// Counts one more build of `job`: the builds so far, this one included.
fn built(job: &str) -> usize {
    with_log(job, |l| {
        l.builds += 1;
        l.builds
    })
}

/// What a scripted call does, step by step; past the end, `ok`.
#[derive(serde::Deserialize, Default)]
struct Script {
    #[serde(default)]
    steps: Vec<String>,
}

/// The step of call number `n` (counted per job across instances).
fn step(script: &[String], n: usize) -> &str {
    script.get(n).map_or("ok", String::as_str)
}

/// A source whose polls follow its script; emits (call, instance).
struct Polls(Vec<String>, usize);
impl Source for Polls {
    async fn poll(&mut self, ctx: &Context) -> Result<Vec<Event>> {
        let n = call(ctx.job());
        match step(&self.0, n) {
            "retry" => Err(SourceError::retry("scripted")),
            "restart" => Err(SourceError::restart("scripted")),
            "stop" => Err(SourceError::stop("scripted")),
            "panic" => panic!("scripted"),
            _ => Ok(vec![Event::counter("n", n as u64).tag("instance", self.1.to_string())]),
        }
    }
}

impl Build for Polls {
    type Config = Script;
    fn build(c: Script, ctx: &Context) -> Result<Self, BuildError> {
        let n = built(ctx.job());
        Ok(Polls(c.steps, n))
    }
}

/// A service that emits once, then ends as its script's first step says.
struct Runs(Vec<String>);
impl Service for Runs {
    async fn run(self, ctx: Context) -> Result<(), ServiceError> {
        let n = call(ctx.job()) + 1;
        ctx.emit(Event::counter("run", n as u64)).await;
        match step(&self.0, 0) {
            "restart" => Err(ServiceError::restart("scripted")),
            "stop" => Err(ServiceError::stop("scripted")),
            _ => {
                ctx.stopping().await;
                Ok(())
            }
        }
    }
}

impl Build for Runs {
    type Config = Script;
    fn build(c: Script, ctx: &Context) -> Result<Self, BuildError> {
        with_log(ctx.job(), |l| l.builds += 1);
        Ok(Runs(c.steps))
    }
}

/// An engine that fails on events whose `act` field says so; passes the
/// rest tagged with its instance number.
struct Acts(usize);
impl Engine for Acts {
    fn process(&mut self, e: Event, out: &mut Vec<Event>, _: &Context) -> Result<(), EngineError> {
        // What a failing call pushed must not get out.
        out.push(Event::gauge("half_made", 1));
        match e.get_tag("act") {
            Some("skip") => Err(EngineError::skip("scripted")),
            Some("restart") => Err(EngineError::restart("scripted")),
            Some("panic") => panic!("scripted"),
            _ => {
                out.pop();
                out.push(e.tag("instance", self.0.to_string()));
                Ok(())
            }
        }
    }
}

impl Build for Acts {
    type Config = ();
    fn build(_: (), ctx: &Context) -> Result<Self, BuildError> {
        Ok(Acts(built(ctx.job())))
    }
}

/// A source that emits its list once, in one poll.
#[derive(serde::Deserialize)]
struct ListConfig {
    acts: Vec<String>,
}
struct List(Option<Vec<String>>);
impl Source for List {
    async fn poll(&mut self, _: &Context) -> Result<Vec<Event>> {
        let acts = self.0.take().unwrap_or_default();
        Ok(acts.iter().enumerate().map(|(i, a)| Event::counter("e", i as u64).tag("act", a.as_str())).collect())
    }
}

impl Build for List {
    type Config = ListConfig;
    fn build(c: ListConfig, _: &Context) -> Result<Self, BuildError> {
        Ok(List(Some(c.acts)))
    }
}

/// A sink whose sends follow its script; keeps what it took.
struct Sends(Vec<String>);
impl Sink for Sends {
    async fn send(&mut self, b: &[Event], ctx: &Context) -> Result<(), SinkError> {
        let n = call(ctx.job());
        match step(&self.0, n) {
            "retry" => Err(SinkError::retry("scripted")),
            "give_up" => Err(SinkError::give_up("scripted")),
            "stop" => Err(SinkError::stop("scripted")),
            "panic" => panic!("scripted"),
            _ => {
                with_log(ctx.job(), |l| l.got.extend_from_slice(b));
                Ok(())
            }
        }
    }
}

impl Build for Sends {
    type Config = Script;
    fn build(c: Script, ctx: &Context) -> Result<Self, BuildError> {
        let failures = c.steps.iter().take_while(|s| s.starts_with("build_")).count();
        let builds = built(ctx.job());
        match c.steps.get(builds - 1).map(String::as_str) {
            Some("build_retry") if builds <= failures => Err(BuildError::retry("scripted")),
            Some("build_stop") => Err(BuildError::stop("scripted")),
            _ => Ok(Sends(c.steps[failures..].to_vec())),
        }
    }
}

/// Counts its polls (the clock other jobs are measured against).
#[derive(serde::Deserialize)]
struct Clock;
impl Source for Clock {
    async fn poll(&mut self, ctx: &Context) -> Result<Vec<Event>> {
        with_log(ctx.job(), |l| l.calls += 1);
        Ok(vec![])
    }
}

fn registry() -> Registry {
    let mut r = Registry::new();
    r.source::<Polls>("t.polls", "")
        .service::<Runs>("t.runs", "")
        .engine::<Acts>("t.acts", "")
        .source::<List>("t.list", "")
        .sink::<Sends>("t.sends", "")
        .source::<Clock>("t.clock", "");
    r
}

async fn run_until(text: &str, cond: impl Fn() -> bool) -> std::result::Result<Report, StartError> {
    let r = registry();
    let cfg = crate::config::from_texts(&[(PathBuf::from("m"), "m".into(), text.into())], &r, &|_| None).unwrap();
    tokio::time::timeout(Duration::from_secs(30), run(cfg, Arc::new(r), crate::test_util::until(&CHANGED, cond)))
        .await
        .expect("the condition holds within 30s")
}

fn values(events: &[Event], name: &str) -> Vec<(u64, String)> {
    events
        .iter()
        .filter(|e| e.name == name)
        .map(|e| {
            (e.get_field("value").unwrap().as_f64().unwrap() as u64, e.get_tag("instance").unwrap_or("").to_owned())
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_source_poll_retries_restarts_and_stops_as_it_asks() {
    let text = "sources:\n\
        \x20 - { id: p, plugin: t.polls, interval: 5ms, config: { steps: [ok, retry, ok, restart, ok, panic, ok, stop] } }\n\
        \x20 - { id: p_clock, plugin: t.clock, interval: 5ms }\n\
        sinks:\n  - { id: s, plugin: t.sends, batch_wait: 1ms }\n";
    // The clock polls 40 more times after `p` asked to stop: `p` would have too.
    let stopped_at = Mutex::new(None);
    let report = run_until(text, || {
        let mut at = stopped_at.lock().unwrap();
        if at.is_none() && log("p").calls >= 8 {
            *at = Some(log("p_clock").calls);
        }
        at.is_some_and(|c| log("p_clock").calls >= c + 40)
    })
    .await
    .unwrap();
    let got = values(&log("s").got, "n");
    // Retry: the same instance polls again; restart and panic: a new one.
    assert_eq!(got, [(0, "1".into()), (2, "1".into()), (4, "2".into()), (6, "3".into())]);
    assert_eq!((log("p").calls, log("p").builds), (8, 3), "polled no more after stop");
    let st = &report.stats["p"];
    assert_eq!((st.poll_errors.load(Relaxed), st.panics.load(Relaxed), st.restarts.load(Relaxed)), (3, 1, 2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_restarts_or_stops_as_it_asks() {
    let text = "sources:\n\
        \x20 - { id: r_again, plugin: t.runs, config: { steps: [restart] } }\n\
        \x20 - { id: r_stop, plugin: t.runs, config: { steps: [stop] } }\n\
        sinks:\n  - { id: rs, plugin: t.sends, batch_wait: 1ms }\n";
    // Two restarts of one (after backoffs of about 1 s and 2 s) are time
    // enough for the other to have been restarted, had it asked.
    run_until(text, || log("r_again").calls >= 3).await.unwrap();
    assert_eq!(log("r_again").builds, log("r_again").calls, "rebuilt for each run");
    assert_eq!((log("r_stop").calls, log("r_stop").builds), (1, 1), "ran once, never again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_engine_skips_or_restarts_as_it_asks_and_drops_what_the_failing_call_made() {
    let text = "sources:\n\
        \x20 - { id: l, plugin: t.list, interval: 1h, next: a, config: { acts: [pass, skip, pass, restart, pass, panic, pass] } }\n\
        engines:\n  - { id: a, plugin: t.acts }\n\
        sinks:\n  - { id: es, plugin: t.sends, batch_wait: 1ms }\n";
    let report = run_until(text, || log("es").got.len() >= 4).await.unwrap();
    let got = log("es").got;
    assert!(got.iter().all(|e| e.name == "e"), "nothing half made got out: {got:?}");
    assert_eq!(values(&got, "e"), [(0, "1".into()), (2, "1".into()), (4, "2".into()), (6, "3".into())]);
    let st = &report.stats["a"];
    assert_eq!((st.events_dropped.load(Relaxed), st.restarts.load(Relaxed), st.panics.load(Relaxed)), (3, 2, 1));
    assert_eq!(st.errors.load(Relaxed), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sink_retries_gives_up_and_stops_as_it_asks() {
    let text = "sources:\n  - { id: src_n, plugin: t.polls, interval: 5ms }\n\
        sinks:\n  - { id: sn, plugin: t.sends, batch_size: 1, batch_wait: 1ms, config: { steps: [ok, retry, ok, give_up, ok, panic, ok, stop] } }\n";
    let report = run_until(text, || log("src_n").calls >= 40).await.unwrap();
    // Polls 0, 1, 2 …: 0 sent; 1 retried then sent; 2 given up; 3 sent;
    // 4 panicked (a retry) then sent; 5 stopped the sink and was given up.
    let got: Vec<u64> = values(&log("sn").got, "n").into_iter().map(|(n, _)| n).collect();
    assert_eq!(got, [0, 1, 3, 4]);
    let st = &report.stats["sn"];
    assert_eq!(log("sn").calls, 8, "no send after the stop");
    assert_eq!(st.send_giveups.load(Relaxed), 2);
    // Everything that reached the sink was delivered or dropped, counted.
    assert_eq!(st.events_in.load(Relaxed), st.events_dropped.load(Relaxed) + 4);
    assert!(st.events_in.load(Relaxed) >= 30);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_build_is_retried_or_stops_the_start() {
    // A sink that cannot be built yet is built again later; nothing is lost meanwhile.
    let text = "sources:\n  - { id: src_b, plugin: t.polls, interval: 5ms }\n\
        sinks:\n  - { id: sb, plugin: t.sends, batch_wait: 1ms, config: { steps: [build_retry, build_retry] } }\n";
    run_until(text, || log("sb").got.len() >= 20).await.unwrap();
    assert_eq!(log("sb").builds, 3);
    let got: Vec<u64> = values(&log("sb").got, "n").into_iter().map(|(n, _)| n).collect();
    assert_eq!(got, (0..got.len() as u64).collect::<Vec<_>>(), "every poll, in order");
    // One that never can be stops the agent from starting.
    let text = "sources:\n  - { id: src_x, plugin: t.polls }\n\
        sinks:\n  - { id: sx, plugin: t.sends, config: { steps: [build_stop] } }\n";
    let err = run_until(text, || true).await.unwrap_err();
    assert_eq!(err.to_string(), "sink `sx` cannot start: scripted");
}
