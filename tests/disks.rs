//! Full, vanishing and frozen disks, through the binary: a disk buffer on a
//! 2 MiB tmpfs in front of a real InfluxDB, the file sink on a full tmpfs
//! and on a moved or deleted path, a disk buffer on a frozen ext4 image.
//! The tests mount these themselves (as root, as CI runs).

use std::io::Write;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use vane_test_support::fs::{Freezable, Tmpfs};
use vane_test_support::http::http_get;
use vane_test_support::influx::Influx;
use vane_test_support::{
    Vane, figure_in, figures_to, free_port, signal, wait_for_file, wait_until, with_figures, write,
};

const VANE: Vane = Vane(env!("CARGO_BIN_EXE_vane"));
const BASE: u64 = 1_700_000_000_000_000_000;

/// Numbered lines `from..to`, each its own point in time.
fn lines(from: u64, to: u64) -> String {
    (from..to).map(|i| format!("m,src=a seq={i}i {}\n", BASE + i)).collect()
}

/// Sends `text` over TCP in a thread (which blocks while vane pushes back).
fn send(port: u16, text: String) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
        c.write_all(text.as_bytes()).unwrap();
        c.shutdown(std::net::Shutdown::Write).unwrap();
    })
}

fn listener(port: u16, next: &str) -> String {
    format!("  - {{ id: lp, plugin: socket, next: {next}, config: {{ listen: \"tcp://127.0.0.1:{port}\" }} }}\n")
}

/// The number of a line `m,host=H,src=a seq=Ni T` with T its own
/// timestamp; `None` for anything else (a torn or glued line).
fn seq_of(l: &str) -> Option<u64> {
    let (series, rest) = l.split_once(" seq=")?;
    let seq: u64 = rest.split_once("i ")?.0.parse().ok()?;
    let whole = series.starts_with("m,") && series.ends_with(",src=a") && !series.contains(' ');
    (whole && rest == format!("{seq}i {}", BASE + seq)).then_some(seq)
}

/// The numbers of a file's whole lines (a last line being written is left
/// out); fails on any line that is not one point.
fn seqs_in(path: &Path) -> Vec<u64> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let whole = &text[..text.rfind('\n').map_or(0, |i| i + 1)];
    whole.lines().map(|l| seq_of(l).unwrap_or_else(|| panic!("a torn line in {}: {l:?}", path.display()))).collect()
}

fn all_once(mut got: Vec<u64>, n: u64) {
    got.sort_unstable();
    let dups = got.windows(2).filter(|w| w[0] == w[1]).count();
    got.dedup();
    assert_eq!((got.len() as u64, dups), (n, 0), "every line once");
}

const SENT: u64 = 200_000;

/// A disk-buffered influxdb sink on a 2 MiB tmpfs fed 200,000 events over
/// TCP while InfluxDB is down; the agent's figures go to `stats.lp`.
fn full_buffer(dir: &Path, when_full: &str) -> (Influx, vane_test_support::agent::Agent, Tmpfs, u16) {
    let mut influx = Influx::start();
    let tmpfs = Tmpfs::mount(dir, "2m");
    let port = free_port();
    let sink = format!(
        "  - id: influx\n    plugin: influxdb\n    batch_size: 1000\n    batch_wait: 50ms\n\
         \x20   buffer: {{ kind: disk, when_full: {when_full} }}\n\
         \x20   config: {{ url: \"http://{}\", database: metrics }}\n",
        influx.addr
    );
    let head = format!("agent: {{ data_dir: {} }}\n", tmpfs.path.display());
    let cfg = with_figures(dir, &head, &listener(port, "influx"), &sink);
    let log = dir.join("log");
    let agent = VANE.start_ready(&cfg, &log, "vane is running");
    influx.pause();
    (influx, agent, tmpfs, port)
}

#[test]
fn a_full_disk_under_a_blocking_buffer_holds_events_back_and_loses_none() {
    let dir = tempfile::tempdir().unwrap();
    let (mut influx, agent, _tmpfs, port) = full_buffer(dir.path(), "block");
    let stats = dir.path().join("stats.lp");
    let client = send(port, lines(0, SENT));
    // The disk fills: reported, and the client is held back.
    wait_until(Duration::from_secs(60), "the full disk reported", || figure_in(&stats, "influx", "errors") >= 1.0);
    assert!(figure_in(&stats, "influx", "events_in") < SENT as f64, "the sender was not held back");
    influx.resume();
    client.join().unwrap();
    wait_until(Duration::from_secs(120), "all 200,000 points in InfluxDB", || {
        influx.number("SELECT count(seq) FROM metrics..m") >= SENT as f64
    });
    assert_eq!(influx.number("SELECT count(seq) FROM metrics..m"), SENT as f64);
    wait_until(Duration::from_secs(10), "the figures caught up", || {
        figure_in(&stats, "influx", "events_out") >= SENT as f64
    });
    assert_eq!(figure_in(&stats, "influx", "events_dropped"), 0.0);
    drop(agent);
}

#[test]
fn a_full_disk_under_a_dropping_buffer_counts_every_event_it_drops() {
    let dir = tempfile::tempdir().unwrap();
    let (mut influx, agent, _tmpfs, port) = full_buffer(dir.path(), "drop_newest");
    let stats = dir.path().join("stats.lp");
    // Nothing holds the sender back: it finishes while InfluxDB is down.
    send(port, lines(0, SENT)).join().unwrap();
    wait_until(Duration::from_secs(60), "every event taken in", || {
        figure_in(&stats, "influx", "events_in") >= SENT as f64
    });
    // An event is counted in when the sink takes it and dropped once the
    // buffer refused it, a moment later: the drops are read as they settle,
    // not once when the last event came in.
    influx.resume();
    let dropped = || figure_in(&stats, "influx", "events_dropped");
    wait_until(Duration::from_secs(120), "what was stored delivered", || {
        figure_in(&stats, "influx", "events_out") + dropped() >= SENT as f64
    });
    let dropped = dropped();
    assert!(dropped > 0.0, "a 2 MiB disk cannot hold 200,000 events");
    let delivered = influx.number("SELECT count(seq) FROM metrics..m");
    assert_eq!(delivered + dropped, SENT as f64, "delivered {delivered} + dropped {dropped}");
    drop(agent);
}

/// A socket listener into a file sink writing `path`; figures to `stats.lp`.
fn file_sink(dir: &Path, path: &Path) -> (vane_test_support::agent::Agent, u16) {
    let port = free_port();
    let out = format!("  - {{ id: out, plugin: file, batch_wait: 10ms, config: {{ path: {} }} }}\n", path.display());
    let cfg = with_figures(dir, "", &listener(port, "out"), &out);
    let log = dir.join("log");
    let agent = VANE.start_ready(&cfg, &log, &format!("listening on tcp://127.0.0.1:{port}"));
    (agent, port)
}

#[test]
fn the_file_sink_on_a_full_disk_keeps_every_line_whole_and_writes_each_once() {
    let dir = tempfile::tempdir().unwrap();
    let tmpfs = Tmpfs::mount(dir.path(), "4m");
    // All but 256 KiB taken: the file fills it part way through a batch.
    let filler = tmpfs.path.join("filler");
    std::fs::write(&filler, vec![0u8; (4 << 20) - (256 << 10)]).unwrap();
    let out = tmpfs.path.join("out.lp");
    let (agent, port) = file_sink(dir.path(), &out);
    let stats = dir.path().join("stats.lp");
    let n = 50_000;
    let client = send(port, lines(0, n));
    wait_until(Duration::from_secs(60), "a failed write", || figure_in(&stats, "out", "send_failures") >= 1.0);
    let before = seqs_in(&out);
    assert!(!before.is_empty() && (before.len() as u64) < n, "{} lines before space came back", before.len());
    std::fs::remove_file(&filler).unwrap();
    client.join().unwrap();
    wait_until(Duration::from_secs(60), "all lines written", || seqs_in(&out).len() as u64 >= n);
    all_once(seqs_in(&out), n);
    assert!(std::fs::read_to_string(&out).unwrap().ends_with('\n'));
    drop(agent);
}

#[test]
fn the_file_sink_follows_a_moved_file_and_a_deleted_folder() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("logs/out.lp");
    let (agent, port) = file_sink(dir.path(), &out);
    let stats = dir.path().join("stats.lp");
    let wait_lines = |p: &Path, n: usize| {
        wait_until(Duration::from_secs(30), "lines written", || seqs_in(p).len() >= n);
    };
    send(port, lines(0, 1000)).join().unwrap();
    wait_lines(&out, 1000);
    // logrotate: move the file away; the sink makes a new one.
    let moved = dir.path().join("logs/out.lp.1");
    std::fs::rename(&out, &moved).unwrap();
    send(port, lines(1000, 2000)).join().unwrap();
    wait_lines(&out, 1000);
    let mut got = seqs_in(&moved);
    got.extend(seqs_in(&out));
    all_once(got, 2000);
    wait_until(Duration::from_secs(10), "the move reported", || figure_in(&stats, "out", "warnings") >= 1.0);
    let warned = figure_in(&stats, "out", "warnings");
    // The folder deleted with the file: made again.
    std::fs::remove_dir_all(dir.path().join("logs")).unwrap();
    send(port, lines(2000, 3000)).join().unwrap();
    wait_lines(&out, 1000);
    assert_eq!(seqs_in(&out), (2000..3000).collect::<Vec<_>>());
    wait_until(Duration::from_secs(10), "the deletion reported", || figure_in(&stats, "out", "warnings") > warned);
    drop(agent);
}

#[test]
fn a_read_only_data_dir_fails_the_check_and_holds_back_only_its_sink() {
    let dir = tempfile::tempdir().unwrap();
    let ro = Tmpfs::mount_with(dir.path(), "size=4m,ro");
    let port = free_port();
    let stats = dir.path().join("stats.lp");
    let parked = dir.path().join("parked.lp");
    let sink = format!(
        "  - {{ id: parked, plugin: file, batch_wait: 10ms, buffer: {{ kind: disk }}, config: {{ path: {} }} }}\n",
        parked.display()
    );
    let head = format!("agent: {{ data_dir: {} }}\n", ro.path.display());
    let cfg = with_figures(dir.path(), &head, &listener(port, "parked"), &sink);
    let out = VANE.output(&["check", "-c", cfg.to_str().unwrap()]);
    let err = vane_test_support::text(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains(&format!("{}:6:11: sink `parked`: its disk buffer cannot be made", cfg.display())), "{err}");
    assert!(err.contains("not writable"), "{err}");
    let log = dir.path().join("log");
    let agent = VANE.start_ready(&cfg, &log, "vane is running");
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("cannot open the disk buffer"), "{text}");
    send(port, lines(0, 1000)).join().unwrap();
    // The other jobs run; the parked sink holds its events.
    let polls =
        || std::fs::read_to_string(&stats).unwrap_or_default().lines().filter(|l| l.starts_with("vane_agent")).count();
    wait_until(Duration::from_secs(10), "the internal source polls", || polls() >= 10);
    assert!(seqs_in(&parked).is_empty());
    ro.remount("rw");
    wait_until(Duration::from_secs(90), "the held events delivered", || seqs_in(&parked).len() >= 1000);
    all_once(seqs_in(&parked), 1000);
    assert_eq!(figure_in(&stats, "parked", "events_dropped"), 0.0);
    drop(agent);
}

fn health(port: u16) -> (String, Duration) {
    let t = Instant::now();
    let r = http_get(&format!("127.0.0.1:{port}"), "/health");
    (r, t.elapsed())
}

#[test]
fn a_frozen_disk_stalls_only_its_sink_and_not_health_nor_shutdown() {
    let dir = tempfile::tempdir().unwrap();
    let disk = Freezable::mount(dir.path(), 64);
    let (http, port) = (free_port(), free_port());
    let stats = dir.path().join("stats.lp");
    let (me, to_stats) = figures_to(&stats);
    let parked: PathBuf = dir.path().join("parked.lp");
    let cfg = write(
        dir.path(),
        "v.yaml",
        &format!(
            "agent: {{ data_dir: {data}, http: \"127.0.0.1:{http}\", shutdown_timeout: 2s }}\nsources:\n{src}{me}sinks:\n\
             \x20 - {{ id: parked, plugin: file, batch_wait: 10ms, buffer: {{ kind: disk, fsync: 50ms }}, config: {{ path: {p} }} }}\n\
             {to_stats}",
            data = disk.path.display(),
            src = listener(port, "parked"),
            p = parked.display(),
        ),
    );
    let log = dir.path().join("log");
    let mut agent = VANE.start_ready(&cfg, &log, "vane is running");
    send(port, lines(0, 1000)).join().unwrap();
    wait_until(Duration::from_secs(30), "the first lines through the disk buffer", || seqs_in(&parked).len() >= 1000);
    let frozen = disk.freeze();
    // Writes to the buffer now block in the kernel.
    let client = send(port, lines(1000, 200_000));
    wait_until(Duration::from_secs(30), "/health names the stalled sink", || {
        let (r, took) = health(http);
        assert!(took < Duration::from_secs(2), "/health took {took:?}");
        r.contains("\"status\":\"degraded\"") && r.contains("\"sink\":\"parked\"")
    });
    // The agent's other jobs go on: its own figures keep coming.
    let polls =
        || std::fs::read_to_string(&stats).unwrap_or_default().lines().filter(|l| l.starts_with("vane_agent")).count();
    let seen = polls();
    wait_until(Duration::from_secs(10), "the internal source still polls", || polls() >= seen + 10);
    assert!(figure_in(&stats, "parked", "buffer_stalled_seconds") > 0.0);
    // Shutdown ends within its timeouts (three stages of 2 s) whatever the disk does.
    let t = Instant::now();
    signal(&agent, libc::SIGTERM);
    let text = wait_for_file(&log, Duration::from_secs(15), |t| t.contains("stopped"));
    assert!(t.elapsed() < Duration::from_secs(10), "stopping took {:?}", t.elapsed());
    assert!(text.contains("buffer's disk has not answered"), "the unsynced buffer reported:\n{text}");
    drop(frozen);
    // Thawed, the process can leave the kernel and exit.
    vane_test_support::wait_exit(&mut agent, Duration::from_secs(30));
    drop(client);
}

/// Posts `text` to `/write` on `port`: the status, 0 when the agent is
/// not there or the connection broke.
fn post(port: u16, text: &str) -> u16 {
    vane_test_support::http::http_post(port, "/write", "", text.as_bytes())
}

/// The probe's crash loop: a client posts numbered batches to
/// `influxdb_listener` (each answered only once stored), retrying each
/// until it gets 204, while the agent is killed with SIGKILL at random
/// moments and started again, twelve times. Every point of every batch
/// answered 204 reaches the disk-buffered file sink, whole; duplicates
/// (batches delivered again after a kill) are counted and printed.
#[test]
fn kill_9_at_random_moments_loses_no_acknowledged_point() {
    const BATCH: u64 = 500;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let head = format!("agent: {{ data_dir: {} }}\n", dir.path().join("data").display());
    let (cfg, out) =
        vane_test_support::influx_to_file(dir.path(), port, &head, "batch_wait: 20ms, buffer: { kind: disk }, ");
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let acked = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let client = {
        let (done, acked) = (done.clone(), acked.clone());
        std::thread::spawn(move || {
            let mut k = 0;
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                if post(port, &lines(k * BATCH, (k + 1) * BATCH)) == 204 {
                    k += 1;
                    acked.store(k * BATCH, std::sync::atomic::Ordering::Relaxed);
                } else {
                    // The agent is down or busy: retry the same batch, as clients do.
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
        })
    };
    // A small xorshift, seeded from the clock: the kill moments differ run to run.
    let mut seed = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64 | 1;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let mut per_kill = Vec::new();
    for _ in 0..12 {
        let log = dir.path().join("log");
        let mut agent = VANE.start_ready(&cfg, &log, "influxdb_listener on http://");
        let before = acked.load(std::sync::atomic::Ordering::Relaxed);
        // The moment of the kill is what is being chosen, not a wait for something.
        std::thread::sleep(Duration::from_millis(200 + next() % 800));
        signal(&agent, libc::SIGKILL);
        agent.wait().unwrap();
        per_kill.push(acked.load(std::sync::atomic::Ordering::Relaxed) - before);
    }
    // A last run, stopped in order once the client has had its batches answered.
    let log = dir.path().join("log");
    let agent = VANE.start_ready(&cfg, &log, "influxdb_listener on http://");
    let target = acked.load(std::sync::atomic::Ordering::Relaxed) + 5 * BATCH;
    wait_until(Duration::from_secs(30), "more batches answered", || {
        acked.load(std::sync::atomic::Ordering::Relaxed) >= target
    });
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    client.join().unwrap();
    let n = acked.load(std::sync::atomic::Ordering::Relaxed);
    wait_until(Duration::from_secs(30), "every answered point in the file", || {
        let mut got = seqs_in(&out);
        got.sort_unstable();
        got.dedup();
        got.iter().take_while(|s| **s < n).count() as u64 == n
    });
    vane_test_support::stop(agent);
    let mut got = seqs_in(&out);
    got.retain(|s| *s < n);
    let total = got.len() as u64;
    got.sort_unstable();
    got.dedup();
    assert_eq!(got.len() as u64, n, "every acknowledged point arrived");
    println!(
        "{n} points acknowledged over 12 kills (per run: {per_kill:?}); {} duplicates ({:.2} %)",
        total - n,
        (total - n) as f64 * 100.0 / n as f64
    );
    assert!(per_kill.iter().filter(|a| **a > 0).count() >= 10, "the client got through in most runs: {per_kill:?}");
}
