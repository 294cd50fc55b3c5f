//! `ctx.exec(argv, timeout)` for scripts: runs a program without a shell and
//! waits for it (a Lua call is synchronous: the worker thread waits too); on
//! timeout its process group is killed and the call fails.

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::time::{Duration, Instant};

use mlua::{Lua, Table};

use super::ScriptError;

/// The Lua function: `{code=, stdout=, stderr=}`, or an error.
pub fn lua_exec(lua: &Lua, (argv, timeout): (Vec<String>, Option<f64>)) -> mlua::Result<Table> {
    let timeout = Duration::from_secs_f64(timeout.unwrap_or(10.0));
    let out = run(&argv, timeout).map_err(|e| mlua::Error::RuntimeError(e.0))?;
    let r = lua.create_table()?;
    r.set("code", out.code)?;
    r.set("stdout", lua.create_string(&out.stdout)?)?;
    r.set("stderr", lua.create_string(&out.stderr)?)?;
    Ok(r)
}

fn run(argv: &[String], timeout: Duration) -> Result<vane_core::exec::Output, ScriptError> {
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
    let mut so = child.stdout.take().expect("piped");
    let mut se = child.stderr.take().expect("piped");
    let reader = std::thread::spawn(move || {
        let (mut a, mut b) = (Vec::new(), Vec::new());
        let _ = so.read_to_end(&mut a);
        let _ = se.read_to_end(&mut b);
        (a, b)
    });
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(st) = child.try_wait().map_err(|e| fail(e.to_string()))? {
            break st;
        }
        if Instant::now() >= deadline {
            // SAFETY: killpg only sends a signal to the group we created.
            unsafe { libc::killpg(child.id() as libc::pid_t, libc::SIGKILL) };
            let _ = child.wait();
            return Err(fail(format!(
                "{prog} timed out after {}s; its process group was killed",
                timeout.as_secs_f64()
            )));
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let (stdout, stderr) = reader.join().map_err(|_| fail("reader thread failed".into()))?;
    Ok(vane_core::exec::Output { code: status.code(), stdout, stderr })
}
