//! The influxdb sink against a real InfluxDB 1.6, through the real binary:
//! exact counts and values, the database and retention policy it prepares,
//! dead-lettered points, and the delivery promise across outages and a
//! SIGKILL of the agent.

use std::path::{Path, PathBuf};
use std::time::Duration;

use vane_test_support::influx::Influx;
use vane_test_support::{Vane, figure_in, stop, wait_until, write};

const VANE: Vane = Vane(env!("CARGO_BIN_EXE_vane"));

/// Timestamps start an hour ago: inside the 14-day retention policy.
fn base() -> i64 {
    vane_core::event::now_ns() / 1_000_000_000 * 1_000_000_000 - 3_600_000_000_000
}

/// A program printing `m,host=h v=Ni,u=Nu TIME` for N in [from, to), in
/// batches of `per` lines with `pause` seconds between them.
fn generator(dir: &Path, from: u64, to: u64, per: u64, pause: f64) -> PathBuf {
    // mawk's %d stops at 32 bits: print the seconds and nanoseconds apart.
    let secs = base() / 1_000_000_000;
    let program = format!(
        "for (n = {from}; n < {to}; n++) {{ printf \"m,host=h v=%di,u=%du %d%09d\\n\", n, n, {secs}, n; \
         if ((n + 1) % {per} == 0) {{ fflush(); system(\"sleep {pause}\") }} }}"
    );
    vane_test_support::generator(dir, &program)
}

/// The generator's job into the one sink.
fn generated(dir: &Path, script: &Path, sink: &str) -> PathBuf {
    let body = format!(
        "agent: {{ data_dir: {} }}\nsources:\n  - {{ id: gen, plugin: execd, config: {{ command: [sh, {}] }} }}\nsinks:\n{sink}",
        dir.display(),
        script.display()
    );
    write(dir, "v.yaml", &body)
}

/// The generator's job into the `influx` sink, and the agent's figures into `stats`.
fn with_generator(dir: &Path, script: &Path, influx_sink: &str, stats: &Path) -> PathBuf {
    let (me, to_stats) = vane_test_support::figures_to(stats);
    let body = format!(
        "agent: {{ data_dir: {d} }}\nsources:\n  - {{ id: gen, plugin: execd, next: influx, config: {{ command: [sh, {g}] }} }}\n\
         {me}sinks:\n{influx_sink}{to_stats}",
        d = dir.display(),
        g = script.display(),
    );
    write(dir, "with_gen.yaml", &body)
}

fn sink(influx: &Influx, extra: &str) -> String {
    format!(
        "  - id: influx\n    plugin: influxdb\n    batch_size: 5000\n    batch_wait: 200ms\n{extra}    config:\n      url: http://{}\n      database: metrics\n      retention: {{ name: two_weeks, duration: 14d, default: true }}\n",
        influx.addr
    )
}

#[test]
fn every_event_arrives_with_its_values_and_the_policy_is_prepared() {
    let influx = Influx::start();
    let dir = tempfile::tempdir().unwrap();
    let script_path = generator(dir.path(), 0, 10_000, 10_000, 0.0);
    // Gzipped bodies, in batches cut at 64 KiB.
    let gzipped = sink(&influx, "    batch_bytes: 64KiB\n")
        .replace("      database: metrics\n", "      database: metrics\n      gzip: true\n");
    let cfg = generated(dir.path(), &script_path, &gzipped);
    let child = VANE.start(&cfg);
    wait_until(Duration::from_secs(60), "10,000 points", || {
        influx.number("SELECT count(v) FROM metrics.two_weeks.m") == 10_000.0
    });
    stop(child);
    // 0 + 1 + … + 9999, for the integer and the (formerly unsigned) field.
    assert_eq!(influx.number("SELECT sum(v) FROM metrics.two_weeks.m"), 49_995_000.0);
    assert_eq!(influx.number("SELECT sum(u) FROM metrics.two_weeks.m"), 49_995_000.0);
    let rps = influx.query("SHOW RETENTION POLICIES ON metrics");
    assert!(rps.contains("[\"two_weeks\",\"336h0m0s\",\"24h0m0s\",1,true]"), "{rps}");
}

#[test]
fn rejected_points_go_to_the_dead_letter_file_and_delivery_goes_on() {
    let influx = Influx::start();
    let dir = tempfile::tempdir().unwrap();
    // `v` becomes a string in the second line: a field type conflict (400).
    let script = write(
        dir.path(),
        "lines.sh",
        &format!(
            "echo 'm,host=h v=1i {t1}'\nsleep 0.5\necho 'm,host=h v=\"oops\" {t2}'\nsleep 0.5\necho 'm,host=h v=3i {t3}'\nexec sleep 3600\n",
            t1 = base() + 1,
            t2 = base() + 2,
            t3 = base() + 3
        ),
    );
    let cfg = generated(dir.path(), &script, &sink(&influx, "").replace("batch_wait: 200ms", "batch_wait: 50ms"));
    let child = VANE.start(&cfg);
    wait_until(Duration::from_secs(60), "the two good points", || {
        influx.number("SELECT count(v) FROM metrics.two_weeks.m") == 2.0
    });
    stop(child);
    let dead = std::fs::read_to_string(dir.path().join("deadletter/influx.lp")).unwrap();
    assert!(dead.contains("field type conflict"), "{dead}");
    assert!(dead.contains("m,host=h v=\"oops\""), "{dead}");
}

#[test]
fn an_outage_of_thirty_seconds_loses_nothing() {
    let mut influx = Influx::start();
    let dir = tempfile::tempdir().unwrap();
    // 100,000 events: 2,000 every 0.5 s, for about 25 s.
    let script_path = generator(dir.path(), 0, 100_000, 2_000, 0.5);
    let cfg = generated(dir.path(), &script_path, &sink(&influx, ""));
    let child = VANE.start(&cfg);
    let count = |i: &Influx| i.number("SELECT count(v) FROM metrics.two_weeks.m");
    wait_until(Duration::from_secs(60), "the first points", || count(&influx) >= 4_000.0);
    influx.pause();
    std::thread::sleep(Duration::from_secs(30)); // the outage itself
    influx.resume();
    wait_until(Duration::from_secs(120), "all 100,000 points", || count(&influx) == 100_000.0);
    stop(child);
    // InfluxDB keeps one point per series and time: a batch sent twice
    // (at-least-once) cannot inflate the count, and none is missing.
    assert_eq!(influx.number("SELECT sum(v) FROM metrics.two_weeks.m"), 4_999_950_000.0);
}

#[test]
fn a_sigkill_during_an_outage_loses_nothing_with_a_disk_buffer() {
    let mut influx = Influx::start();
    let dir = tempfile::tempdir().unwrap();
    let stats = dir.path().join("stats.lp");
    let script_path = generator(dir.path(), 0, 100_000, 10_000, 0.2);
    let disk = "    buffer: { kind: disk, fsync: 100ms }\n";
    let with_gen = with_generator(dir.path(), &script_path, &sink(&influx, disk), &stats);
    let count = |i: &Influx| i.number("SELECT count(v) FROM metrics.two_weeks.m");
    let child = VANE.start(&with_gen);
    wait_until(Duration::from_secs(60), "the first points", || count(&influx) >= 10_000.0);
    influx.pause();
    // Everything the generator made is in the disk buffer, or was delivered.
    let buffered = || figure_in(&stats, "influx", "buffer_events") + figure_in(&stats, "influx", "events_out");
    wait_until(Duration::from_secs(60), "100,000 events buffered or delivered", || buffered() >= 100_000.0);
    let mut child = child;
    child.kill().unwrap(); // SIGKILL: no shutdown, no flush
    child.wait().unwrap();
    // Restarted without the generator; the backend comes back.
    let again = write(
        dir.path(),
        "again.yaml",
        &format!("agent: {{ data_dir: {} }}\nsinks:\n{}", dir.path().display(), sink(&influx, disk)),
    );
    let child = VANE.start(&again);
    influx.resume();
    wait_until(Duration::from_secs(120), "all 100,000 points after the restart", || count(&influx) == 100_000.0);
    stop(child);
    assert_eq!(influx.number("SELECT sum(v) FROM metrics.two_weeks.m"), 4_999_950_000.0);
}

#[test]
fn a_corrupted_disk_buffer_is_reported_and_the_rest_delivered() {
    let mut influx = Influx::start();
    influx.pause(); // down from the start: everything waits on disk
    let dir = tempfile::tempdir().unwrap();
    let stats = dir.path().join("stats.lp");
    let script_path = generator(dir.path(), 0, 20_000, 1_000, 0.05);
    let disk = "    buffer: { kind: disk, fsync: 100ms }\n";
    let with_gen = with_generator(
        dir.path(),
        &script_path,
        &sink(&influx, disk).replace("batch_size: 5000", "batch_size: 1000"),
        &stats,
    );
    let figure = |field: &str| figure_in(&stats, "influx", field);
    let mut child = VANE.start(&with_gen);
    wait_until(Duration::from_secs(60), "20,000 events on disk", || figure("buffer_events") >= 20_000.0);
    child.kill().unwrap();
    child.wait().unwrap();
    // Damage one record in the middle of the oldest segment, and tear the
    // end of the newest.
    let buffers = dir.path().join("buffers/influx");
    let mut segs: Vec<PathBuf> = std::fs::read_dir(&buffers)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "seg") && std::fs::metadata(p).unwrap().len() > 0)
        .collect();
    segs.sort();
    let mut bytes = std::fs::read(&segs[0]).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x5a;
    std::fs::write(&segs[0], &bytes).unwrap();
    let last = segs.last().unwrap();
    let len = std::fs::metadata(last).unwrap().len();
    std::fs::OpenOptions::new().write(true).open(last).unwrap().set_len(len - 7).unwrap();
    // Restarted without the generator and with InfluxDB up.
    let (me, to_stats) = vane_test_support::figures_to(&stats);
    let influx_sink = sink(&influx, disk).replace("batch_size: 5000", "batch_size: 1000");
    let body =
        format!("agent: {{ data_dir: {} }}\nsources:\n{me}sinks:\n{influx_sink}{to_stats}", dir.path().display());
    let again = write(dir.path(), "again.yaml", &body);
    std::fs::remove_file(&stats).unwrap();
    let child = VANE.start(&again);
    influx.resume();
    wait_until(Duration::from_secs(60), "the buffer drained", || {
        figure("buffer_skipped") >= 2.0 && figure("buffer_bytes") == 0.0 && figure("events_out") > 0.0
    });
    stop(child);
    let count = influx.number("SELECT count(v) FROM metrics.two_weeks.m");
    // Two records (the damaged one and the torn one, up to 1,000 events
    // each) are skipped; everything else arrives.
    assert!((18_000.0..20_000.0).contains(&count), "{count}");
    assert_eq!(figure("buffer_skipped"), 2.0);
}

#[test]
fn basic_auth_is_sent_and_wrong_credentials_are_retried_not_dropped() {
    let influx = Influx::start_with_auth("vane", "s3cret");
    let dir = tempfile::tempdir().unwrap();
    let script_path = generator(dir.path(), 0, 1_000, 1_000, 0.0);
    let stats = dir.path().join("stats.lp");
    let cfg = |password: &str| {
        let credentials = format!("      database: metrics\n      username: vane\n      password: {password}\n");
        let influx_sink = sink(&influx, "").replace("      database: metrics\n", &credentials);
        with_generator(dir.path(), &script_path, &influx_sink, &stats)
    };
    let count = || influx.number("SELECT count(v) FROM metrics.two_weeks.m");
    let failures = || figure_in(&stats, "influx", "errors");
    // A wrong password: preparing the database is refused (401) and
    // retried, nothing is written, nothing is given up.
    let wrong = VANE.start(&cfg("nope"));
    wait_until(Duration::from_secs(30), "refused attempts", || failures() >= 2.0);
    assert_eq!(count(), 0.0);
    assert_eq!(stop(wrong), Some(0));
    let right = VANE.start(&cfg("s3cret"));
    wait_until(Duration::from_secs(60), "1,000 points with the right password", || count() == 1_000.0);
    stop(right);
}
