//! The Debian package as an operator gets it: built by
//! scripts/build-deb.sh, unpacked into a scratch root (what dpkg installs),
//! its unit checked by systemd-analyze, and the installed binary started
//! with the installed config, telling a service manager (a socket of the
//! test's, as systemd's `NOTIFY_SOCKET`) when it is ready and stopping.

use std::io::Read as _;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use vane_test_support::stop;

const VANE: &str = env!("CARGO_BIN_EXE_vane");

fn run(c: &mut Command) -> String {
    let out = c.output().unwrap_or_else(|e| panic!("{c:?} runs: {e}"));
    assert!(
        out.status.success(),
        "{c:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Builds the package around this test's binary; its path.
fn build(dir: &Path) -> PathBuf {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/build-deb.sh");
    let out = run(Command::new(script).args(["--binary", VANE, "--compression", "none", "--out"]).arg(dir));
    PathBuf::from(out.trim())
}

#[test]
fn the_package_installs_a_unit_a_conffile_and_a_binary_that_runs_as_a_service() {
    let dir = tempfile::tempdir().unwrap();
    let deb = build(dir.path());
    assert_eq!(run(Command::new("dpkg-deb").args(["-f"]).arg(&deb).arg("Package")).trim(), "vane");
    let control = dir.path().join("control");
    run(Command::new("dpkg-deb").arg("-e").arg(&deb).arg(&control));
    assert_eq!(std::fs::read_to_string(control.join("conffiles")).unwrap(), "/etc/vane/vane.yaml\n");
    for script in ["postinst", "prerm", "postrm"] {
        run(Command::new("sh").arg("-n").arg(control.join(script)));
    }
    let root = dir.path().join("root");
    run(Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&root));
    for f in ["usr/bin/vane", "etc/vane/vane.yaml", "lib/systemd/system/vane.service", "usr/share/doc/vane/copyright"] {
        assert!(root.join(f).is_file(), "{f} installed");
    }
    assert!(root.join("etc/vane/conf.d").is_dir());
    // The conffile is the built-in config.
    assert_eq!(
        std::fs::read_to_string(root.join("etc/vane/vane.yaml")).unwrap(),
        run(Command::new(VANE).arg("config"))
    );
    let unit = std::fs::read_to_string(root.join("lib/systemd/system/vane.service")).unwrap();
    for line in [
        "Type=notify",
        "StateDirectory=vane",
        "ProtectSystem=strict",
        "ProtectHome=yes",
        "NoNewPrivileges=yes",
        "AmbientCapabilities=CAP_NET_RAW",
        "ExecReload=/usr/bin/vane reload -c /etc/vane/vane.yaml",
    ] {
        assert!(unit.lines().any(|l| l == line), "the unit has {line}");
    }
    // systemd's own reading of the unit, against the unpacked files (and
    // the system's own units it names, as an installed system has them).
    run(Command::new("cp").arg("-rn").arg("/lib/systemd/system/.").arg(root.join("lib/systemd/system")));
    let verify = Command::new("systemd-analyze")
        .arg("verify")
        .arg(format!("--root={}", root.display()))
        .arg("/lib/systemd/system/vane.service")
        .output()
        .expect("systemd-analyze runs (scripts/install-test-deps.sh installs systemd)");
    let said = String::from_utf8_lossy(&verify.stderr);
    assert!(verify.status.success() && !said.contains("vane.service"), "systemd-analyze verify: {said}");

    // The installed binary on the installed config, as systemd starts it
    // (its data folder from StateDirectory=), telling the manager.
    let state = dir.path().join("state");
    let notify = dir.path().join("notify");
    let manager = UnixDatagram::bind(&notify).unwrap();
    manager.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let addr = format!("127.0.0.1:{}", vane_test_support::free_port());
    let mut child = Command::new(root.join("usr/bin/vane"))
        .args(["--log-format", "logfmt", "run", "-c"])
        .arg(root.join("etc/vane/vane.yaml"))
        .env("VANE_HTTP", &addr)
        .env("NOTIFY_SOCKET", &notify)
        .env("STATE_DIRECTORY", &state)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut buf = [0u8; 256];
    let n = manager.recv(&mut buf).expect("READY=1 within 30 s");
    let ready = String::from_utf8_lossy(&buf[..n]).into_owned();
    assert!(ready.lines().any(|l| l == "READY=1"), "{ready}");
    let mut stderr = child.stderr.take().unwrap();
    let agent = vane_test_support::proc::Killed(child);
    // The host board, as the default config says, its history in the state folder.
    let boards = vane_test_support::http::http_get(&addr, "/api/boards");
    assert!(boards.starts_with("HTTP/1.0 200") && boards.contains("\"slug\":\"host\""), "{boards}");
    vane_test_support::wait_until(Duration::from_secs(30), "the first points kept", || {
        vane_test_support::http::http_get(&addr, "/api/series?name=mem").contains("used_percent")
    });
    assert!(state.join("board/boards/host.json").is_file());
    // `systemctl reload`: the unit's ExecReload, with the unit's environment.
    let reload = Command::new(root.join("usr/bin/vane"))
        .args(["reload", "-c"])
        .arg(root.join("etc/vane/vane.yaml"))
        .env("STATE_DIRECTORY", &state)
        .env("VANE_HTTP", &addr)
        .output()
        .unwrap();
    assert!(reload.status.success(), "{}", String::from_utf8_lossy(&reload.stderr));
    let n = manager.recv(&mut buf).expect("RELOADING=1");
    let reloading = String::from_utf8_lossy(&buf[..n]).into_owned();
    assert!(reloading.lines().any(|l| l == "RELOADING=1"), "{reloading}");
    assert!(reloading.lines().any(|l| l.starts_with("MONOTONIC_USEC=")), "{reloading}");
    let n = manager.recv(&mut buf).expect("READY=1 after the reload");
    assert!(String::from_utf8_lossy(&buf[..n]).lines().any(|l| l == "READY=1"));
    assert_eq!(stop(agent), Some(0));
    let n = manager.recv(&mut buf).expect("STOPPING=1");
    assert!(String::from_utf8_lossy(&buf[..n]).lines().any(|l| l == "STOPPING=1"));
    // Its log in logfmt, one pair after another.
    let mut log = String::new();
    stderr.read_to_string(&mut log).unwrap();
    let running = log.lines().find(|l| l.contains("msg=\"vane is running\"")).unwrap_or_else(|| panic!("{log}"));
    assert!(running.starts_with("time=") && running.contains(" level=info "), "{running}");
}
