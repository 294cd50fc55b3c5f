//! Scripts that misbehave, through the binary: `ctx.exec` of a child that
//! floods a stream, or fills the one read last.

use std::path::Path;
use std::time::{Duration, Instant};

use vane_test_support::{Vane, text, write};

const VANE: Vane = Vane(env!("CARGO_BIN_EXE_vane"));

/// A config with one `lua` source running `script` (with `extra` settings).
fn lua_source(dir: &Path, script: &str, extra: &str) -> std::path::PathBuf {
    write(dir, "s.lua", script);
    write(
        dir,
        "v.yaml",
        &format!(
            "sources:\n  - {{ id: s, plugin: lua, config: {{ script: {}, {extra} }} }}\nsinks:\n  - {{ id: out, plugin: stdout }}\n",
            dir.join("s.lua").display()
        ),
    )
}

#[test]
fn exec_reads_both_streams_at_once_and_a_flood_fails_the_call() {
    let dir = tempfile::tempdir().unwrap();
    // 1 MiB to stderr before anything on stdout.
    let cfg = lua_source(
        dir.path(),
        "function collect(ctx)\n\
           local r = ctx.exec({ 'sh', '-c', 'head -c 1048576 /dev/zero >&2; echo done' }, 20)\n\
           return { name = 'x', fields = { err = #r.stderr, out = #r.stdout } }\n\
         end\n",
        "memory: 16MiB",
    );
    let t = Instant::now();
    let evs = VANE.poll(&cfg, "s");
    assert!(t.elapsed() < Duration::from_secs(10), "took {:?}", t.elapsed());
    assert_eq!(evs[0].get_field("err").and_then(|v| v.as_f64()), Some(1048576.0));
    assert_eq!(evs[0].get_field("out").and_then(|v| v.as_f64()), Some(5.0));
    // A child writing without end fails the call at the script's memory.
    let cfg = lua_source(
        dir.path(),
        "function collect(ctx)\n  local r = ctx.exec({ 'cat', '/dev/zero' }, 20)\n  return { name = 'x', fields = { n = #r.stdout } }\nend\n",
        "memory: 16MiB",
    );
    let t = Instant::now();
    let out = VANE.output(&["test", "s", "-c", cfg.to_str().unwrap()]);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(err.contains("cat wrote more than 16777216 bytes to stdout"), "{err}");
    assert!(t.elapsed() < Duration::from_secs(10), "took {:?}", t.elapsed());
}
