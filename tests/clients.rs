//! Clients that hold connections and send nothing, send headers a byte at
//! a time, or spend every file descriptor, through the binary: real clients
//! (`nc`, `curl`) still get through, and the agent does not spin.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use vane_test_support::http::http_get;
use vane_test_support::{Vane, events_in, free_port, wait_for_log, wait_until, write};

const VANE: Vane = Vane(env!("CARGO_BIN_EXE_vane"));

/// `n` connections to `port` that send nothing.
fn idle(port: u16, n: usize) -> Vec<TcpStream> {
    (0..n).map(|_| TcpStream::connect(("127.0.0.1", port)).unwrap()).collect()
}

/// Lets idle connections be idle: a connection idle for under a second is
/// never closed to make room (it may be a client that just connected), so
/// the scenario needs them older than that. Not a synchronisation: the
/// time itself is what is being set up.
fn let_them_idle() {
    std::thread::sleep(Duration::from_millis(1200));
}

/// Pipes `input` into `nc` to `port`; whether it ended well within 10 s.
fn nc(port: u16, input: &str) -> bool {
    let mut c = Command::new("nc")
        .args(["-N", "-w", "5", "127.0.0.1", &port.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("nc runs (scripts/install-test-deps.sh installs it)");
    c.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    vane_test_support::wait_exit(&mut c, Duration::from_secs(10)).0 == 0
}

fn config(dir: &Path, sources: &str) -> std::path::PathBuf {
    write(
        dir,
        "v.yaml",
        &format!(
            "sources:\n{sources}sinks:\n  - {{ id: out, plugin: file, batch_wait: 10ms, config: {{ path: {}/out.lp }} }}\n",
            dir.display()
        ),
    )
}

#[test]
fn idle_connections_do_not_lock_real_clients_out() {
    let dir = tempfile::tempdir().unwrap();
    let (tcp, lua, influx) = (free_port(), free_port(), free_port());
    write(dir.path(), "n.lua", "function line(l) return { name = 'lua', fields = { v = tonumber(l) } } end\n");
    let cfg = config(
        dir.path(),
        &format!(
            "  - {{ id: lp, plugin: socket, config: {{ listen: \"tcp://127.0.0.1:{tcp}\" }} }}\n\
             \x20 - {{ id: ll, plugin: lua_lines, config: {{ listen: \"127.0.0.1:{lua}\", script: {}/n.lua }} }}\n\
             \x20 - {{ id: il, plugin: influxdb_listener, config: {{ listen: \"127.0.0.1:{influx}\" }} }}\n",
            dir.path().display()
        ),
    );
    let log = dir.path().join("log");
    let _agent = VANE.start_ready(&cfg, &log, "vane is running");
    // 1,000 idle connections to each (256 is their max_connections): the
    // first 256 idle long enough to be closed for the next ones (so that the
    // first warnings, before the log's limit of ten a minute, are the
    // evictions, not the refusals of a burst with none idle yet).
    let mut held: Vec<_> = [tcp, lua, influx].iter().flat_map(|p| idle(*p, 256)).collect();
    let_them_idle();
    held.extend([tcp, lua, influx].iter().flat_map(|p| idle(*p, 744)));
    let_them_idle();
    let t = Instant::now();
    assert!(nc(tcp, "real v=1i\n"), "nc to the socket listener");
    assert!(nc(lua, "42\n"), "nc to lua_lines");
    let curl = Command::new("curl")
        .args(["-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "10", "--data-binary", "viacurl v=1i"])
        .arg(format!("http://127.0.0.1:{influx}/write?db=x"))
        .output()
        .expect("curl runs");
    assert_eq!(String::from_utf8_lossy(&curl.stdout), "204");
    let out = dir.path().join("out.lp");
    wait_until(Duration::from_secs(10), "the real clients' events", || {
        let names: Vec<String> = events_in(&out).into_iter().map(|e| e.name.to_string()).collect();
        ["real", "lua", "viacurl"].iter().all(|n| names.iter().any(|m| m == n))
    });
    assert!(t.elapsed() < Duration::from_secs(15), "{:?}", t.elapsed());
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("the connection idle longest, closed to make room"), "evictions reported");
    drop(held);
}

#[test]
fn one_client_address_can_be_limited() {
    let dir = tempfile::tempdir().unwrap();
    let tcp = free_port();
    let cfg = config(
        dir.path(),
        &format!(
            "  - {{ id: lp, plugin: socket, config: {{ listen: \"tcp://127.0.0.1:{tcp}\", max_per_client: 2 }} }}\n"
        ),
    );
    let log = dir.path().join("log");
    let _agent = VANE.start_ready(&cfg, &log, &format!("listening on tcp://127.0.0.1:{tcp}"));
    let _two = idle(tcp, 2);
    let mut third = TcpStream::connect(("127.0.0.1", tcp)).unwrap();
    third.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut b = [0u8; 1];
    // Closed by vane at once: the read ends (0 bytes or a reset).
    assert!(matches!(third.read(&mut b), Ok(0) | Err(_)));
    wait_for_log(&log, "2 connections from this address already: refused");
}

#[test]
fn slow_headers_on_the_agent_port_are_cut_off_and_health_answers() {
    let dir = tempfile::tempdir().unwrap();
    let http = free_port();
    let cfg = write(
        dir.path(),
        "v.yaml",
        &format!("agent: {{ http: \"127.0.0.1:{http}\" }}\nsinks:\n  - {{ id: out, plugin: blackhole }}\n"),
    );
    let log = dir.path().join("log");
    let _agent = VANE.start_ready(&cfg, &log, "vane is running");
    // 50 slowloris clients: a request line, then nothing.
    let mut slow: Vec<TcpStream> = (0..50)
        .map(|_| {
            let mut s = TcpStream::connect(("127.0.0.1", http)).unwrap();
            s.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n").unwrap();
            s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
            s
        })
        .collect();
    assert!(http_get(&format!("127.0.0.1:{http}"), "/health").contains("\"status\":\"ok\""));
    // Each is closed once its headers have taken 10 s.
    let t = Instant::now();
    for s in &mut slow {
        let mut buf = Vec::new();
        let _ = s.read_to_end(&mut buf);
    }
    assert!(t.elapsed() < Duration::from_secs(20), "slow headers held for {:?}", t.elapsed());
    // And 200 idle connections do not shut /health out.
    let _idle = idle(http, 200);
    let_them_idle();
    assert!(http_get(&format!("127.0.0.1:{http}"), "/health").contains("\"status\":\"ok\""));
}

/// CPU seconds a process has used (user and system).
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<u64> = after.split_whitespace().map(|x| x.parse().unwrap_or(0)).collect();
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    (f[11] + f[12]) as f64 / hz
}

#[test]
fn out_of_descriptors_the_agent_waits_instead_of_spinning_and_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let (http, tcp) = (free_port(), free_port());
    let cfg = write(
        dir.path(),
        "v.yaml",
        &format!(
            "agent: {{ http: \"127.0.0.1:{http}\" }}\nsources:\n\
             \x20 - {{ id: lp, plugin: socket, config: {{ listen: \"tcp://127.0.0.1:{tcp}\" }} }}\n\
             sinks:\n  - {{ id: out, plugin: file, batch_wait: 10ms, config: {{ path: {}/out.lp }} }}\n",
            dir.path().display()
        ),
    );
    let log = dir.path().join("log");
    let mut cmd = VANE.command(&["run", "-c", cfg.to_str().unwrap()]);
    // SAFETY: setrlimit is async-signal-safe; the closure touches nothing else.
    unsafe {
        cmd.pre_exec(|| {
            // A hard limit of 128 descriptors: the agent cannot raise it.
            let lim = libc::rlimit { rlim_cur: 128, rlim_max: 128 };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let agent = cmd.stdout(Stdio::null()).stderr(std::fs::File::create(&log).unwrap()).spawn().unwrap();
    let agent = vane_test_support::proc::Killed(agent);
    wait_for_log(&log, "vane is running");
    // More connections than descriptors.
    let held = idle(tcp, 200);
    wait_for_log(&log, "accept: Too many open files");
    let before = cpu_seconds(agent.id());
    let t = Instant::now();
    std::thread::sleep(Duration::from_secs(2));
    let used = (cpu_seconds(agent.id()) - before) / t.elapsed().as_secs_f64();
    assert!(used < 0.3, "the agent used {:.0} % of a core while out of descriptors", used * 100.0);
    drop(held);
    // Descriptors free again: both ports take traffic.
    wait_until(Duration::from_secs(10), "/health answers", || {
        std::panic::catch_unwind(|| http_get(&format!("127.0.0.1:{http}"), "/health")).is_ok_and(|r| r.contains("ok"))
    });
    assert!(nc(tcp, "after v=1i\n"));
    wait_until(Duration::from_secs(10), "the line after", || {
        events_in(&dir.path().join("out.lp")).iter().any(|e| e.name == "after")
    });
}

/// Posts a gzipped `body` to `/write` on `port`: the status, 0 when the
/// connection failed.
fn post_gzip(port: u16, body: &[u8]) -> u16 {
    vane_test_support::http::http_post(port, "/write?db=x", "Content-Encoding: gzip\r\n", body)
}

/// The agent's peak resident memory, in MiB.
fn peak_rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .unwrap()
        .trim()
        .trim_end_matches(" kB")
        .trim()
        .parse()
        .unwrap();
    kb / 1024.0
}

/// The probe's gzip bomb, scaled to the suite: small gzip bodies that
/// inflate to 16 MiB of short lines each, four at once. Decoding holds at
/// most the listeners' intake budget (128 MiB) beside the sink's buffer
/// (64 MiB), so the agent stays under 256 MiB; a small write meanwhile is
/// answered (stored, or 503 to retry) instead of hanging; every point of a
/// body answered 204 is in the output.
#[test]
fn gzip_bodies_that_inflate_to_millions_of_events_keep_memory_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let (cfg, out) = vane_test_support::influx_to_file(dir.path(), port, "", "");
    let log = dir.path().join("log");
    let agent = VANE.start_ready(&cfg, &log, "influxdb_listener on http://");
    // 16 MiB of numbered lines per body ("b3 v=1234567i" is 14 bytes).
    let body = |b: usize| {
        let mut text = String::new();
        let mut i = 0;
        while text.len() < 16 << 20 {
            text += &format!("b{b} v={i}i\n");
            i += 1;
        }
        let mut gz = Command::new("gzip").arg("-c").stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().unwrap();
        let mut stdin = gz.stdin.take().unwrap();
        let feed = std::thread::spawn(move || stdin.write_all(text.as_bytes()).unwrap());
        let mut zipped = Vec::new();
        gz.stdout.take().unwrap().read_to_end(&mut zipped).unwrap();
        feed.join().unwrap();
        assert!(gz.wait().unwrap().success());
        (zipped, i)
    };
    let bodies: Vec<(Vec<u8>, usize)> = (0..4).map(body).collect();
    assert!(bodies[0].0.len() < 8 << 20, "the body is small once gzipped");
    let posts: Vec<_> = bodies
        .iter()
        .map(|(zipped, _)| {
            let zipped = zipped.clone();
            std::thread::spawn(move || post_gzip(port, &zipped))
        })
        .collect();
    // A well-behaved client meanwhile: answered, not left waiting.
    let t = Instant::now();
    let small = post_gzip(port, &bodies[0].0[..0]);
    assert!(t.elapsed() < Duration::from_secs(10), "a small write took {:?}", t.elapsed());
    assert!(matches!(small, 204 | 503), "{small}");
    let codes: Vec<u16> = posts.into_iter().map(|p| p.join().unwrap()).collect();
    assert!(codes.iter().all(|c| matches!(c, 204 | 503)), "{codes:?}");
    assert!(codes.contains(&204), "{codes:?}");
    let peak = peak_rss_mib(agent.id());
    // Every body answered 204 arrived whole (at least once).
    let want: usize = codes.iter().zip(&bodies).filter(|(c, _)| **c == 204).map(|(_, (_, n))| n).sum();
    let stored = || {
        let text = std::fs::read(&out).unwrap_or_default();
        let from_204 = |l: &&[u8]| l.len() > 2 && codes.get((l[1] - b'0') as usize) == Some(&204);
        text.split(|b| *b == b'\n').filter(from_204).count()
    };
    let deadline = Instant::now() + Duration::from_secs(120);
    while stored() < want {
        assert!(Instant::now() < deadline, "{} of {want} points of the bodies answered 204 stored", stored());
        std::thread::sleep(Duration::from_millis(500));
    }
    vane_test_support::stop(agent);
    println!("peak RSS {peak:.0} MiB, answers {codes:?}");
    assert!(peak < 256.0, "peak RSS {peak:.0} MiB");
}
