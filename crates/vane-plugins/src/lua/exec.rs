//! `ctx.exec(argv, timeout)` for scripts: runs a program without a shell and
//! waits for it (a Lua call is synchronous: the calling thread waits too).
//! Both streams are read at once, so a child filling one never waits on the
//! other; each may hold at most the script's `memory`. A child that writes
//! more, or outlives the timeout (10 s unless given), is killed with its
//! process group and the call fails saying which.

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use mlua::{Lua, Table};

use super::ScriptError;

/// The Lua function, each stream limited to `limit` bytes: `{code=,
/// stdout=, stderr=}`, or an error.
pub fn lua_exec(lua: &Lua, (argv, timeout): (Vec<String>, Option<f64>), limit: u64) -> mlua::Result<Table> {
    let timeout = Duration::from_secs_f64(timeout.unwrap_or(10.0).max(0.0));
    let out = run(&argv, timeout, limit).map_err(|e| mlua::Error::RuntimeError(e.0))?;
    let r = lua.create_table()?;
    r.set("code", out.code)?;
    r.set("stdout", lua.create_string(&out.stdout)?)?;
    r.set("stderr", lua.create_string(&out.stderr)?)?;
    Ok(r)
}

/// Reads a stream to its end, or to `limit` bytes (then raises `over`).
fn reader(mut r: impl Read + Send + 'static, limit: u64, over: Arc<AtomicBool>) -> JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = (&mut r).take(limit + 1).read_to_end(&mut v);
        if v.len() as u64 > limit {
            v.truncate(limit as usize);
            over.store(true, Relaxed);
        }
        v
    })
}

fn run(argv: &[String], timeout: Duration, limit: u64) -> Result<vane_core::exec::Output, ScriptError> {
    let fail = |m: String| ScriptError(m);
    let (prog, args) = argv.split_first().ok_or_else(|| fail("ctx.exec needs a program".into()))?;
    let mut child = std::process::Command::new(prog)
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .process_group(0)
        .spawn()
        .map_err(|e| fail(format!("cannot run {prog}: {e}")))?;
    let (over_out, over_err) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicBool::new(false)));
    let so = reader(child.stdout.take().expect("piped"), limit, over_out.clone());
    let se = reader(child.stderr.take().expect("piped"), limit, over_err.clone());
    let kill = |child: &mut std::process::Child| {
        // SAFETY: killpg only sends a signal to the group we created.
        unsafe { libc::killpg(child.id() as libc::pid_t, libc::SIGKILL) };
        let _ = child.wait();
    };
    let deadline = Instant::now() + timeout;
    let mut status = None;
    // Until the child has exited and both streams are closed (a grandchild
    // may hold them open), or a limit is passed.
    loop {
        if over_out.load(Relaxed) || over_err.load(Relaxed) {
            kill(&mut child);
            let which = if over_out.load(Relaxed) { "stdout" } else { "stderr" };
            return Err(fail(format!(
                "{prog} wrote more than {limit} bytes to {which} (the script's memory); its process group was killed"
            )));
        }
        if status.is_none() {
            status = child.try_wait().map_err(|e| fail(e.to_string()))?;
        }
        if status.is_some() && so.is_finished() && se.is_finished() {
            break;
        }
        if Instant::now() >= deadline {
            kill(&mut child);
            return Err(fail(format!(
                "{prog} timed out after {}s; its process group was killed",
                timeout.as_secs_f64()
            )));
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    let stdout = so.join().map_err(|_| fail("reader thread failed".into()))?;
    let stderr = se.join().map_err(|_| fail("reader thread failed".into()))?;
    Ok(vane_core::exec::Output { code: status.and_then(|s| s.code()), stdout, stderr })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &str, limit: u64) -> Result<vane_core::exec::Output, ScriptError> {
        run(&["sh".into(), "-c".into(), script.into()], Duration::from_secs(10), limit)
    }

    #[test]
    fn both_streams_are_read_at_once() {
        // 1 MiB to stderr first: read one stream after the other, this would
        // block until the timeout.
        let t = Instant::now();
        let out = sh("head -c 1048576 /dev/zero >&2; echo done", 4 << 20).unwrap();
        assert_eq!((out.stdout.as_slice(), out.stderr.len()), (&b"done\n"[..], 1 << 20));
        assert!(t.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn output_past_the_limit_fails_the_call_and_kills_the_child() {
        let t = Instant::now();
        let e = sh("cat /dev/zero", 1 << 20).unwrap_err();
        assert!(e.0.contains("wrote more than 1048576 bytes to stdout"), "{}", e.0);
        let e = sh("cat /dev/zero >&2", 1 << 20).unwrap_err();
        assert!(e.0.contains("to stderr"), "{}", e.0);
        assert!(t.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn a_grandchild_holding_the_pipe_is_killed_at_the_timeout() {
        let t = Instant::now();
        let e = run(&["sh".into(), "-c".into(), "sleep 30 & echo hi".into()], Duration::from_millis(300), 1 << 20)
            .unwrap_err();
        assert!(e.0.contains("timed out"), "{}", e.0);
        assert!(t.elapsed() < Duration::from_secs(5));
    }
}
