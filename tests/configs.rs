//! Hostile configs through `vane check`, as an outside probe wrote them:
//! alias bombs, deep expressions, special files, huge files and listen
//! addresses that could never bind. Each is refused at its position, at
//! once and in bounded memory (the check runs under a 1 GiB address-space
//! limit, so an expansion that runs away aborts it instead of passing).

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Output, Stdio};
use std::time::Duration;

use vane_test_support::{Vane, text, wait_exit, write};

const VANE: Vane = Vane(env!("CARGO_BIN_EXE_vane"));

/// `vane check -c CONFIG` within 1 GiB of address space and 20 s.
fn check(config: &Path) -> (Option<i32>, String) {
    let mut c = VANE.command(&["check", "-c", config.to_str().unwrap()]);
    // SAFETY: setrlimit is async-signal-safe; the closure touches nothing else.
    unsafe {
        c.pre_exec(|| {
            let lim = libc::rlimit { rlim_cur: 1 << 30, rlim_max: 1 << 30 };
            if libc::setrlimit(libc::RLIMIT_AS, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = c.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    wait_exit(&mut child, Duration::from_secs(20));
    let Output { status, stderr, .. } = child.wait_with_output().unwrap();
    (status.code(), text(&stderr))
}

/// Refused with exit code 1 (not a crash) and `want` in the message.
fn refused(config: &Path, want: &str) -> String {
    let (code, err) = check(config);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains(want), "{want:?} not in:\n{err}");
    err
}

#[test]
fn alias_bombs_are_refused_at_the_alias() {
    let dir = tempfile::tempdir().unwrap();
    // Nine levels of ten aliases each: 10^9 nodes if copied.
    let mut bomb = String::from("x0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
    for i in 1..10 {
        bomb.push_str(&format!("x{i}: &a{i} [{}]\n", vec![format!("*a{}", i - 1); 10].join(", ")));
    }
    let top = write(dir.path(), "top.yaml", &format!("{bomb}sinks:\n  - {{ id: out, plugin: stdout }}\n"));
    let err = refused(&top, "aliases copy more than");
    assert!(err.contains(&format!("{}:", top.display())), "{err}");
    // The same inside a job's tags.
    let mut tags = String::from(
        "sources:\n  - id: c\n    plugin: cpu\n    tags:\n      l0: &b0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n",
    );
    for i in 1..10 {
        tags.push_str(&format!("      l{i}: &b{i} [{}]\n", vec![format!("*b{}", i - 1); 10].join(", ")));
    }
    let inside = write(dir.path(), "tags.yaml", &format!("{tags}sinks:\n  - {{ id: out, plugin: stdout }}\n"));
    refused(&inside, "aliases copy more than");
}

#[test]
fn deep_expressions_are_refused_with_a_column() {
    let dir = tempfile::tempdir().unwrap();
    for (expr, want) in [
        (format!("{}1{}", "(".repeat(100_000), ")".repeat(100_000)), "too long"),
        (format!("{}load1 > 1", "not ".repeat(100_000)), "too long"),
        (format!("{}load1", "-".repeat(100_000)), "too long"),
        (format!("{}1{} > 0", "(".repeat(100), ")".repeat(100)), "nested deeper than 64 levels"),
    ] {
        let cfg = write(
            dir.path(),
            "v.yaml",
            &format!(
                "sources:\n  - {{ id: l, plugin: load, critical: \"{expr}\" }}\nsinks:\n  - {{ id: out, plugin: stdout }}\n"
            ),
        );
        let err = refused(&cfg, want);
        assert!(err.contains(&format!("{}:2:", cfg.display())), "{}", &err[..err.len().min(300)]);
    }
}

#[test]
fn special_and_huge_files_are_refused_not_read() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("fifo.yaml");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: mkfifo reads the NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    refused(&fifo, "a FIFO, not a regular file");
    let main = write(dir.path(), "vane.yaml", "sinks:\n  - { id: out, plugin: stdout }\n");
    std::fs::create_dir_all(dir.path().join("conf.d")).unwrap();
    let zero = dir.path().join("conf.d/zero.yaml");
    std::os::unix::fs::symlink("/dev/zero", &zero).unwrap();
    refused(&main, "a device, not a regular file");
    std::fs::remove_file(&zero).unwrap();
    std::os::unix::fs::symlink(&fifo, dir.path().join("conf.d/fifo.yaml")).unwrap();
    refused(&main, "a FIFO, not a regular file");
    std::fs::remove_file(dir.path().join("conf.d/fifo.yaml")).unwrap();
    // 17 MiB of comments.
    let big = dir.path().join("big.yaml");
    std::fs::write(&big, format!("# {}\n", "x".repeat(17 << 20))).unwrap();
    refused(&big, "larger than 16 MiB");
    // And the plain config still passes.
    let (code, err) = check(&main);
    assert_eq!(code, Some(0), "{err}");
}

#[test]
fn listen_addresses_that_cannot_bind_are_refused_at_load() {
    let dir = tempfile::tempdir().unwrap();
    for (listen, want) in [
        ("tcp://:23502", "no host: write 127.0.0.1 for this machine only, or 0.0.0.0 for every interface"),
        ("tcp://127.0.0.1", "expected HOST:PORT"),
        ("sctp://127.0.0.1:1", "unknown protocol"),
        ("tcp://db.example:80", "the host must be an IP address or localhost"),
    ] {
        let cfg = write(
            dir.path(),
            "v.yaml",
            &format!(
                "sources:\n  - {{ id: s, plugin: socket, config: {{ listen: \"{listen}\" }} }}\nsinks:\n  - {{ id: out, plugin: stdout }}\n"
            ),
        );
        let err = refused(&cfg, want);
        assert!(err.contains(&format!("{}:2:", cfg.display())) && err.contains("config.listen"), "{err}");
    }
    let cfg = write(dir.path(), "v.yaml", "agent: { http: \":8686\" }\nsinks:\n  - { id: out, plugin: stdout }\n");
    refused(&cfg, "no host");
    // The agent's HTTP port is TCP: `udp://` is refused where it is written.
    let cfg = write(
        dir.path(),
        "v.yaml",
        "agent: { http: \"udp://127.0.0.1:8686\" }\nsinks:\n  - { id: out, plugin: stdout }\n",
    );
    let err = refused(&cfg, "this listener takes tcp only");
    assert!(err.contains(&format!("{}:1:", cfg.display())), "{err}");
}

#[test]
fn a_bad_regular_expression_is_refused_where_it_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write(
        dir.path(),
        "v.yaml",
        "sources:\n  - id: p\n    plugin: procstat\n    config: { pattern: \"sleep (\" }\nsinks:\n  - { id: out, plugin: stdout }\n",
    );
    let err = refused(&cfg, "invalid regex");
    assert!(err.contains(&format!("{}:4:", cfg.display())) && err.contains("config.pattern"), "{err}");
    let cfg = write(
        dir.path(),
        "v.yaml",
        "sources:\n  - { id: w, plugin: http, config: { url: \"http://127.0.0.1:1/\", body_regex: \"[a-\" } }\nsinks:\n  - { id: out, plugin: stdout }\n",
    );
    let err = refused(&cfg, "invalid regex");
    assert!(err.contains(&format!("{}:2:", cfg.display())) && err.contains("config.body_regex"), "{err}");
}

#[test]
fn check_builds_every_job_so_a_config_it_passes_starts() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "broken.lua", "function process(e)\n  return e\nend\nlocal x = = 1\n");
    let cfg = write(
        dir.path(),
        "v.yaml",
        "sources:\n\
         \x20 - { id: pinger, plugin: ping, config: { hosts: [] } }\n\
         \x20 - { id: cpu, plugin: cpu, next: tag }\n\
         engines:\n\
         \x20 - { id: tag, plugin: lua, config: { script: broken.lua } }\n\
         sinks:\n  - { id: out, plugin: blackhole }\n",
    );
    let (code, said) = check(&cfg);
    assert_eq!(code, Some(1), "{said}");
    // Each names its place, and says what the plugin said.
    let ping = said.lines().find(|l| l.contains("`pinger`")).unwrap_or_else(|| panic!("{said}"));
    assert!(ping.contains("v.yaml:2:") && ping.contains("hosts: name at least one"), "{ping}");
    let lua = said.lines().find(|l| l.contains("`tag`")).unwrap_or_else(|| panic!("{said}"));
    assert!(lua.contains("v.yaml:5:") && lua.contains("broken.lua:4"), "{lua}");
    assert!(said.contains("2 errors"), "{said}");
    // Fixed, it passes.
    write(dir.path(), "broken.lua", "function process(e)\n  return e\nend\n");
    write(dir.path(), "v.yaml", &std::fs::read_to_string(&cfg).unwrap().replace("hosts: []", "hosts: [127.0.0.1]"));
    let (code, said) = check(&cfg);
    assert_eq!(code, Some(0), "{said}");
}
