//! Boards through the real binary and a real browser (Debian's Chromium,
//! headless, driven by Selenium): the list of boards, widgets drawn with
//! data, a value a job posts shown live, history across a kill -9, a
//! template's new layout at restart, the default config's host board.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;
use vane_test_support::browser::Browser;
use vane_test_support::http::{http_get, http_post};
use vane_test_support::{Vane, free_port, stop, wait_for_log, wait_until, write};

const VANE: Vane = Vane(env!("CARGO_BIN_EXE_vane"));

/// A Lua engine that posts every value it sees to board "Demo" (its
/// template in `ctx.config.template`) and passes the event on.
const POSTER: &str = r#"
local board = ctx.board{ name = "Demo", prefix = "demo.", template = ctx.config.template }
function process(e)
  local v = e.fields.value
  if v ~= nil then
    board:post("x", { value = v })
    board:post("events", { text = e.name .. " = " .. tostring(v) })
  end
  return e
end
"#;

const DEMO: &str = "title: Demo board
widgets:
  - { tag: x, variant: value, title: Posted, column: 0, width: 3 }
  - { tag: events, variant: log, title: Events, column: 3, width: 6 }
  - { tag: m, variant: graph, title: History of m, column: 0, row: 1, width: 12, height: 2,
      series: [{ name: m, field: value }] }
";

struct Setup {
    http: String,
    intake: u16,
    config: std::path::PathBuf,
}

/// An agent with an InfluxDB listener feeding the Lua poster, host
/// metrics every second, and a board sink with the host board and the
/// template file `web.yaml`.
fn setup(dir: &Path, demo: &str) -> Setup {
    let (http, intake) = (format!("127.0.0.1:{}", free_port()), free_port());
    write(dir, "poster.lua", POSTER);
    write(
        dir,
        "web.yaml",
        "title: Web servers\nwidgets:\n  - { tag: up, variant: upstatus, data: { up: [a, b], down: [c] } }\n",
    );
    let indented: String = demo.lines().map(|l| format!("          {l}\n")).collect();
    let config = write(
        dir,
        "vane.yaml",
        &format!(
            "agent:\n  http: \"{http}\"\n  data_dir: {data}\n\
             sources:\n\
             \x20 - {{ id: in, plugin: influxdb_listener, next: poster, config: {{ listen: \"127.0.0.1:{intake}\" }} }}\n\
             \x20 - {{ id: cpu, plugin: cpu, interval: 1s, next: board }}\n\
             \x20 - {{ id: memory, plugin: memory, interval: 1s, next: board }}\n\
             engines:\n\
             \x20 - id: poster\n    plugin: lua\n    next: board\n    config:\n      script: poster.lua\n      settings:\n        template: |\n{indented}\
             sinks:\n\
             \x20 - id: board\n    plugin: board\n    config:\n      boards:\n        - {{ name: host, template: \"builtin:host\" }}\n        - {{ name: Web, template: {web} }}\n",
            data = dir.join("data").display(),
            web = dir.join("web.yaml").display(),
        ),
    );
    Setup { http, intake, config }
}

/// A scratch folder, the agent set up in it (on template `demo`) and running.
fn running(demo: &str) -> (tempfile::TempDir, Setup, vane_test_support::Agent) {
    let dir = tempfile::tempdir().unwrap();
    let s = setup(dir.path(), demo);
    let agent = start(&s, &dir.path().join("log"));
    (dir, s, agent)
}

fn start(s: &Setup, log: &Path) -> vane_test_support::Agent {
    let agent = VANE.start_logged(&s.config, log);
    wait_for_log(log, "vane is running");
    wait_for_log(log, "influxdb_listener on http://");
    agent
}

/// POSTs line protocol to the listener; true once stored (204).
fn post(port: u16, lines: &str) -> bool {
    http_post(port, "/write", "", lines.as_bytes()) == 204
}

fn json_of(response: &str) -> Value {
    let body = response.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    serde_json::from_str(body).unwrap_or(Value::Null)
}

fn widget<'a>(ws: &'a [Value], tag: &str) -> &'a Value {
    ws.iter().find(|w| w["tag"] == tag).unwrap_or_else(|| panic!("no widget {tag} in {ws:?}"))
}

#[test]
fn boards_are_listed_drawn_with_data_and_a_posted_value_shows_live() {
    let (dir, s, agent) = running(DEMO);
    let mut b = Browser::start();

    b.open(&format!("http://{}/", s.http));
    let listed = b.js("Array.from(document.querySelectorAll('[data-board]')).map(e => e.dataset.board)");
    let log = std::fs::read_to_string(dir.path().join("log")).unwrap();
    assert_eq!(listed, serde_json::json!(["demo", "host", "web"]), "{log}");

    // A template's initial data is drawn before any job posts.
    b.open(&format!("http://{}/board/web", s.http));
    let ws = b.widgets();
    assert!(widget(&ws, "up")["filled"].as_bool().unwrap());
    assert!(widget(&ws, "up")["text"].as_str().unwrap().contains("1 down"), "{ws:?}");

    // The host board's gauges fill from the history bound to them.
    b.open(&format!("http://{}/board/host", s.http));
    b.wait("document.querySelector('[data-widget=cpu_now]').dataset.filled === '1'", 20);
    b.wait("document.querySelector('[data-widget=memory_now]').dataset.filled === '1'", 20);
    let cpu = widget(&b.widgets(), "cpu_now")["value"].as_f64().unwrap();
    assert!((0.0..=100.0).contains(&cpu), "{cpu}");

    // A value posted through a job reaches the open page, without a reload.
    b.open(&format!("http://{}/board/demo", s.http));
    b.js("window.notReloaded = true");
    let before = Instant::now();
    assert!(post(s.intake, "m value=4242\n"));
    b.wait("document.querySelector('[data-widget=x]').dataset.value === '4242'", 5);
    let took = before.elapsed();
    assert!(took < Duration::from_secs(2), "shown after {took:?}");
    assert_eq!(b.js("window.notReloaded === true"), Value::Bool(true));
    b.wait("document.querySelector('[data-widget=events]').innerText.includes('m = 4242')", 5);
    // The graph bound to the same series draws it.
    b.wait("Number(document.querySelector('[data-widget=m]').dataset.points) >= 1", 10);

    // A series with a state is on the checks page, its description with it.
    let line = "http_check,site=shop,state=critical value=0,description=\"refused\"\n";
    assert!(post(s.intake, line));
    b.open(&format!("http://{}/checks", s.http));
    b.wait("document.querySelector('[data-check][data-state=critical]') !== null", 10);
    let row = b.js("document.querySelector('[data-state=critical]').innerText");
    assert!(row.as_str().unwrap().contains("http_check shop") && row.as_str().unwrap().contains("refused"), "{row}");
    drop(b);
    assert_eq!(stop(agent), Some(0));
}

#[test]
fn history_survives_kill_9_and_the_range_shows_points_from_before() {
    let (dir, s, agent) = running(DEMO);
    // Ten points over the last ten minutes.
    let now_s = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    let first = now_s - 600;
    let lines: String = (0..10).map(|i| format!("m value={i} {}\n", (first + i * 60) * 1_000_000_000)).collect();
    assert!(post(s.intake, &lines));
    // Written to the history's files once the sink has them (acknowledged
    // points may still sit in the sink's memory buffer).
    wait_until(Duration::from_secs(10), "the points in the history", || {
        json_of(&http_get(&s.http, "/api/series?name=m"))[0]["value"].as_f64() == Some(9.0)
    });
    let mut agent = agent;
    vane_test_support::signal(&agent, libc::SIGKILL);
    let _ = agent.0.wait();

    let log2 = dir.path().join("log2");
    let agent = start(&s, &log2);
    let series = json_of(&http_get(&s.http, "/api/series?name=m"));
    let key = series[0]["key"].as_str().unwrap_or_else(|| panic!("{series}")).replace(',', "%2C").replace('=', "%3D");
    let key = key.replace(' ', "+");
    let r =
        json_of(&http_get(&s.http, &format!("/api/range?key={key}&from={}&to={}", (first - 1) * 1000, now_s * 1000)));
    let values: Vec<f64> = r["points"].as_array().unwrap().iter().map(|p| p[1].as_f64().unwrap()).collect();
    assert_eq!(values, (0..10).map(f64::from).collect::<Vec<_>>(), "{r}");
    // The page's range shows them: the last 15 minutes reach back before the kill.
    let mut b = Browser::start();
    b.open(&format!("http://{}/board/demo", s.http));
    b.call(serde_json::json!({"click": "[data-range='900']"}));
    let m = "document.querySelector('[data-widget=m]').dataset";
    b.wait(&format!("Number({m}.points) >= 10"), 10);
    let shown_first = b.js(&format!("Number({m}.first)")).as_i64().unwrap();
    assert_eq!(shown_first, first * 1000);
    drop(b);
    assert_eq!(stop(agent), Some(0));
}

#[test]
fn a_changed_template_moves_the_widgets_of_a_board_and_keeps_its_data() {
    let (dir, s, agent) = running(DEMO);
    assert!(post(s.intake, "m value=77\n"));
    wait_until(Duration::from_secs(10), "the post shown", || {
        json_of(&http_get(&s.http, "/api/board/demo"))["widgets"][0]["data"]["value"].as_f64() == Some(77.0)
    });
    assert_eq!(stop(agent), Some(0));

    // The same board from a new layout: x moves right, a text widget joins.
    let moved = DEMO.replace("column: 0, width: 3 }", "column: 9, width: 3 }")
        + "  - { tag: note, variant: text, column: 9, row: 3, width: 3, data: { text: new here } }\n";
    let s2 = setup(dir.path(), &moved);
    let log2 = dir.path().join("log2");
    let agent = start(&s2, &log2);
    let mut b = Browser::start();
    b.open(&format!("http://{}/board/demo", s2.http));
    let x = "document.querySelector('[data-widget=x]')";
    assert_eq!(b.js(&format!("{x}.style.gridColumn")), Value::from("10 / span 3"));
    assert_eq!(b.js(&format!("{x}.dataset.value")), Value::from("77"));
    let ws = b.widgets();
    assert!(widget(&ws, "note")["text"].as_str().unwrap().contains("new here"));
    drop(b);
    assert_eq!(stop(agent), Some(0));
}

#[test]
fn the_default_config_shows_the_host_board_with_real_data() {
    let dir = tempfile::tempdir().unwrap();
    let http = format!("127.0.0.1:{}", free_port());
    let log = dir.path().join("log");
    let child = VANE
        .command(&["run"])
        .env("VANE_HTTP", &http)
        .env("STATE_DIRECTORY", dir.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let agent = vane_test_support::proc::Killed(child);
    wait_for_log(&log, &format!("HTTP on http://{http}/"));
    let mut b = Browser::start();
    b.open(&format!("http://{http}/board/host"));
    // CPU needs two polls (10 s apart), network and disk I/O rates too.
    for tag in ["cpu_now", "memory_now", "disks", "cpu", "memory", "network"] {
        b.wait(&format!("document.querySelector('[data-widget={tag}]').dataset.filled === '1'"), 40);
    }
    let ws = b.widgets();
    let memory = widget(&ws, "memory_now")["value"].as_f64().unwrap();
    assert!(memory > 0.0 && memory < 100.0, "{memory}");
    assert!(widget(&ws, "disks")["text"].as_str().unwrap().contains('%'), "{ws:?}");
    // The page as saved at its load, by Chromium alone (no script driving
    // it): the agent writes what it draws first into the page.
    let profile = tempfile::tempdir().unwrap();
    let dumped = std::process::Command::new("/usr/bin/chromium")
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--timeout=20000", "--dump-dom"])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(format!("http://{http}/board/host"))
        .output()
        .expect("chromium runs (scripts/install-test-deps.sh installs it)");
    let dom = String::from_utf8_lossy(&dumped.stdout);
    for tag in ["cpu_now", "memory_now", "disks"] {
        let at = dom.find(&format!("data-widget=\"{tag}\"")).unwrap_or_else(|| panic!("{tag} in {dom}"));
        let element = &dom[at..at + dom[at..].find('>').unwrap()];
        assert!(element.contains("data-filled=\"1\""), "{element}");
    }
    let shots = Path::new(env!("CARGO_TARGET_TMPDIR")).join("screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    let shot = shots.join("host-board.png");
    b.call(serde_json::json!({"screenshot": shot}));
    assert!(std::fs::metadata(&shot).unwrap().len() > 10_000, "{}", shot.display());
    drop(b);
    assert_eq!(stop(agent), Some(0));
}
