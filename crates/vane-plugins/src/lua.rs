//! Lua 5.4 plugins: a source script defines `collect(ctx)`, an engine script
//! `process(event)` and optionally `beat()`. Each returns nothing, one event
//! or a list of events; `ctx.emit(event)` sends more at any time.
//!
//! An event is a table `{name=, time=, host=, tags={}, fields={},
//! kind=, state=, description=, ttl=}`; the global `ctx` offers `config`
//! (the job's `settings`), `job`, `host`, `log`, `warn`, `report_error`,
//! `emit`, and `exec(argv, timeout_seconds)`, which runs a program without
//! a shell and returns `{code=, stdout=, stderr=}` (it blocks its worker
//! thread while the program runs).
//!
//! Sources running the same script (with the same `instructions` and
//! `memory`) share a Lua state, up to 64 jobs a state, so that thousands of
//! them stay cheap: each job has its own globals (`_G` included), but the
//! libraries' tables (`string`, `math`…) are the state's, its memory limit
//! is `memory` times the jobs it holds, and the jobs' calls take turns. Engines and `lua_lines` have a state each.
//!
//! Scripts are sandboxed: only the table, string, math, utf8 and coroutine
//! libraries and a harmless part of `os` (time, clock, date, difftime); no
//! `io`, `require`, `dofile`, `loadfile`, and `load` reads text only, never
//! bytecode. Every call gets an instruction budget and the state a memory
//! limit; a script that runs away is stopped, counted and reported, and
//! the agent goes on. Errors name the script's file and line.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};

use mlua::chunk::ChunkMode;
use mlua::{HookTriggers, Lua, LuaOptions, StdLib, Table, VmState};
use serde::Deserialize;
use vane_core::ByteSize;
use vane_core::prelude::*;

/// Settings of the `lua` source and engine.
#[derive(Deserialize, Debug, Clone)]
#[serde(deny_unknown_fields)]
pub struct LuaConfig {
    /// The script, relative to the config file it is named in.
    pub script: PathBuf,
    /// Anything: given to the script as `ctx.config`.
    #[serde(default)]
    pub settings: Option<serde_json::Value>,
    /// Lua instructions one call may run. Default: 10000000.
    #[serde(default = "ten_million")]
    pub instructions: u64,
    /// Memory the script's state may use. Default: 64MiB.
    #[serde(default = "sixty_four_mib")]
    pub memory: ByteSize,
}

fn ten_million() -> u64 {
    10_000_000
}

fn sixty_four_mib() -> ByteSize {
    ByteSize(64 << 20)
}

const HOOK_EVERY: u32 = 1000;

/// Sources running the same script share a Lua state, up to this many jobs
/// a state: a state with its libraries and sandbox takes about 45 KiB, a job
/// in a shared one a few KiB (its globals, its compiled script, its `ctx`).
const JOBS_PER_STATE: usize = 64;

/// A sandboxed Lua state. Each job running in it has its own globals (a
/// table whose misses fall through to the libraries); calls take turns.
struct LuaState {
    lua: Lua,
    /// Instructions left to the running call.
    budget: Arc<AtomicI64>,
    /// The job whose call is running: `ctx.log`, `ctx.emit`… act for it.
    current: Arc<Mutex<Current>>,
    /// One call at a time: the budget and `current` belong to the call.
    turn: Mutex<()>,
    /// `ctx` functions shared by the jobs (`ctx` tables fall through to it).
    ctx_base: Table,
    /// `function(env) return a load that defaults to env end`.
    make_load: mlua::Function,
    /// The memory limit set on the state.
    limit: std::sync::atomic::AtomicUsize,
}

#[derive(Default)]
struct Current {
    ctx: Option<Context>,
    emitted: Vec<Event>,
}

/// One job's script in a (possibly shared) state.
struct Vm {
    state: Arc<LuaState>,
    /// The job's globals.
    env: Table,
    ctx: Context,
    per_call: i64,
    script: String,
}

type PoolKey = (PathBuf, u64, u64);

/// Shared states by script and limits; the jobs hold them, the pool only
/// finds them.
static POOL: Mutex<Vec<(PoolKey, std::sync::Weak<LuaState>)>> = Mutex::new(Vec::new());

fn lua_err(e: mlua::Error) -> String {
    // Keep the message and its position; drop the stack traceback.
    let text = match &e {
        mlua::Error::CallbackError { cause, .. } => cause.to_string(),
        other => other.to_string(),
    };
    text.lines().next().unwrap_or("").trim().to_owned()
}

/// Finds the script beside the config file that names it.
fn script_path(ctx: &Context, script: &Path) -> PathBuf {
    if script.is_absolute() {
        return script.to_path_buf();
    }
    let file = ctx.config().mark.file.to_string();
    Path::new(&file)
        .parent()
        .map(|d| d.join(script))
        .filter(|p| p.exists())
        .unwrap_or_else(|| script.to_path_buf())
}

impl LuaState {
    fn new(cfg: &LuaConfig) -> mlua::Result<LuaState> {
        let libs = StdLib::TABLE
            | StdLib::STRING
            | StdLib::MATH
            | StdLib::UTF8
            | StdLib::COROUTINE
            | StdLib::OS;
        let lua = Lua::new_with(libs, LuaOptions::default())?;
        let g = lua.globals();
        for name in ["dofile", "loadfile", "require", "package", "io", "debug"] {
            g.set(name, mlua::Nil)?;
        }
        let os: Table = g.get("os")?;
        for name in [
            "execute",
            "exit",
            "remove",
            "rename",
            "tmpname",
            "getenv",
            "setlocale",
        ] {
            os.set(name, mlua::Nil)?;
        }
        // `load` may compile text, never precompiled bytecode; a job's
        // `load` puts what it loads in the job's globals unless told otherwise.
        let make_load: mlua::Function = lua
            .load(
                "local orig = load\n\
                 load = function(chunk, name, _, env) return orig(chunk, name, 't', env) end\n\
                 return function(job_env)\n\
                   return function(chunk, name, _, env) return orig(chunk, name, 't', env or job_env) end\n\
                 end",
            )
            .set_name("=sandbox")
            .call(())?;
        lua.set_memory_limit(cfg.memory.0 as usize)?;
        let budget = Arc::new(AtomicI64::new(cfg.instructions as i64));
        let b = budget.clone();
        let limit = cfg.instructions;
        lua.set_global_hook(
            HookTriggers::new().every_nth_instruction(HOOK_EVERY),
            move |_, _| {
                if b.fetch_sub(HOOK_EVERY as i64, Ordering::Relaxed) <= 0 {
                    Err(mlua::Error::RuntimeError(format!(
                        "instruction budget of {limit} exceeded (a runaway script?)"
                    )))
                } else {
                    Ok(VmState::Continue)
                }
            },
        )?;
        let current = Arc::new(Mutex::new(Current::default()));
        let base = lua.create_table()?;
        for (name, level) in [("log", 0), ("warn", 1), ("report_error", 2)] {
            let cur = current.clone();
            base.set(
                name,
                lua.create_function(move |_, msg: String| {
                    let c = cur.lock().expect("not poisoned").ctx.clone();
                    match (c, level) {
                        (Some(c), 0) => c.info(&msg),
                        (Some(c), 1) => c.warn(&msg),
                        (Some(c), _) => c.report_error(&msg),
                        (None, _) => {}
                    }
                    Ok(())
                })?,
            )?;
        }
        base.set(
            "exec",
            lua.create_function(|lua, (argv, timeout): (Vec<String>, Option<f64>)| {
                let out = exec_blocking(
                    &argv,
                    std::time::Duration::from_secs_f64(timeout.unwrap_or(10.0)),
                )
                .map_err(mlua::Error::RuntimeError)?;
                let r = lua.create_table()?;
                r.set("code", out.code)?;
                r.set("stdout", lua.create_string(&out.stdout)?)?;
                r.set("stderr", lua.create_string(&out.stderr)?)?;
                Ok(r)
            })?,
        )?;
        let cur = current.clone();
        base.set(
            "emit",
            lua.create_function(move |_, v: mlua::Value| {
                let evs = from_lua(v, None).map_err(mlua::Error::RuntimeError)?;
                cur.lock().expect("not poisoned").emitted.extend(evs);
                Ok(())
            })?,
        )?;
        Ok(LuaState {
            lua,
            budget,
            current,
            turn: Mutex::new(()),
            ctx_base: base,
            make_load,
            limit: std::sync::atomic::AtomicUsize::new(cfg.memory.0 as usize),
        })
    }

    /// A state with room for one more job running this script with these
    /// limits, or a new one.
    fn shared(key: PoolKey, cfg: &LuaConfig) -> mlua::Result<Arc<LuaState>> {
        let mut pool = POOL.lock().expect("not poisoned");
        pool.retain(|(_, w)| w.strong_count() > 0);
        for (k, w) in pool.iter() {
            if *k == key
                && w.strong_count() < JOBS_PER_STATE
                && let Some(s) = w.upgrade()
            {
                LuaState::make_room(&s, cfg.memory.0)?;
                return Ok(s);
            }
        }
        let s = Arc::new(LuaState::new(cfg)?);
        pool.push((key, Arc::downgrade(&s)));
        Ok(s)
    }

    /// A shared state may use `memory` for each job it holds (the jobs hold
    /// the only strong references; called with the pool locked, counting the
    /// joining job), so that sharing takes no room from a script that had it
    /// alone. The limit never shrinks: a job's garbage outlives it until the
    /// collector runs.
    fn make_room(state: &Arc<LuaState>, memory: u64) -> mlua::Result<()> {
        let jobs = Arc::strong_count(state) as u64;
        let limit = memory.saturating_mul(jobs).min(usize::MAX as u64) as usize;
        if state.limit.fetch_max(limit, Ordering::Relaxed) < limit {
            state.lua.set_memory_limit(limit)?;
        }
        Ok(())
    }
}

impl Vm {
    /// Loads the job's script: in a state of its own, or (`shared`) in one
    /// it shares with other jobs running the same script.
    fn new(cfg: &LuaConfig, ctx: &Context, shared: bool) -> Result<Vm> {
        let path = script_path(ctx, &cfg.script);
        let code = std::fs::read_to_string(&path)
            .map_err(|e| Error::stop(format!("cannot read Lua script {}: {e}", path.display())))?;
        let state = if shared {
            LuaState::shared((path.clone(), cfg.instructions, cfg.memory.0), cfg)
        } else {
            LuaState::new(cfg).map(Arc::new)
        }
        .map_err(|e| Error::stop(lua_err(e)))?;
        let script = path.display().to_string();
        let env = Vm::globals(&state, cfg, ctx).map_err(|e| Error::stop(lua_err(e)))?;
        let vm = Vm {
            state,
            env,
            ctx: ctx.clone(),
            per_call: cfg.instructions as i64,
            script,
        };
        let chunk = vm
            .state
            .lua
            .load(&code)
            .set_name(format!("@{}", vm.script))
            .set_mode(ChunkMode::Text)
            .set_environment(vm.env.clone());
        vm.run(|| chunk.exec())
            .1
            .map_err(|e| Error::stop(lua_err(e)))?;
        Ok(vm)
    }

    /// A job's globals: its `ctx`, `_G` and `load`; the rest falls through
    /// to the state's libraries.
    fn globals(state: &LuaState, cfg: &LuaConfig, ctx: &Context) -> mlua::Result<Table> {
        let lua = &state.lua;
        let env = lua.create_table()?;
        let meta = lua.create_table()?;
        meta.set("__index", lua.globals())?;
        env.set_metatable(Some(meta))?;
        let t = lua.create_table()?;
        t.set("job", ctx.job())?;
        t.set("host", ctx.host())?;
        t.set(
            "config",
            json_to_lua(
                lua,
                cfg.settings.as_ref().unwrap_or(&serde_json::Value::Null),
            )?,
        )?;
        let meta = lua.create_table()?;
        meta.set("__index", state.ctx_base.clone())?;
        t.set_metatable(Some(meta))?;
        env.set("ctx", t)?;
        env.set("_G", env.clone())?;
        env.set("load", state.make_load.call::<mlua::Function>(env.clone())?)?;
        Ok(env)
    }

    /// Runs `f` as this job's turn on the state: a fresh budget, `ctx`
    /// acting for this job. Returns what the job emitted, and `f`'s result.
    fn run<T>(&self, f: impl FnOnce() -> mlua::Result<T>) -> (Vec<Event>, mlua::Result<T>) {
        let _turn = self.state.turn.lock().expect("not poisoned");
        self.state.budget.store(self.per_call, Ordering::Relaxed);
        self.state.current.lock().expect("not poisoned").ctx = Some(self.ctx.clone());
        let r = f();
        let mut cur = self.state.current.lock().expect("not poisoned");
        cur.ctx = None;
        (std::mem::take(&mut cur.emitted), r)
    }

    fn has(&self, name: &str) -> bool {
        matches!(
            self.env.get::<mlua::Value>(name),
            Ok(mlua::Value::Function(_))
        )
    }

    /// Calls one of the job's functions with a budget; its returned events,
    /// then emitted ones.
    fn call(&self, name: &str, arg: mlua::Value, reference: Option<&Event>) -> Result<Vec<Event>> {
        let f: mlua::Function = self.env.get(name).map_err(|e| Error::retry(lua_err(e)))?;
        let (emitted, r) = self.run(|| f.call::<mlua::Value>(arg));
        let mut evs = match r {
            Ok(v) => from_lua(v, reference)
                .map_err(|e| Error::retry(format!("{}: {name} returned {e}", self.script)))?,
            Err(e) => return Err(Error::retry(lua_err(e))),
        };
        evs.extend(emitted);
        Ok(evs)
    }
}

/// `ctx.exec(argv, timeout)` for scripts: runs a program without a shell and
/// waits for it (a Lua call is synchronous: the worker thread waits too); on
/// timeout its process group is killed and the call fails.
fn exec_blocking(
    argv: &[String],
    timeout: std::time::Duration,
) -> std::result::Result<vane_core::exec::Output, String> {
    use std::io::Read;
    use std::os::unix::process::CommandExt;
    let (prog, args) = argv.split_first().ok_or("ctx.exec needs a program")?;
    let mut child = std::process::Command::new(prog)
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .process_group(0)
        .spawn()
        .map_err(|e| format!("cannot run {prog}: {e}"))?;
    let mut so = child.stdout.take().expect("piped");
    let mut se = child.stderr.take().expect("piped");
    let reader = std::thread::spawn(move || {
        let (mut a, mut b) = (Vec::new(), Vec::new());
        let _ = so.read_to_end(&mut a);
        let _ = se.read_to_end(&mut b);
        (a, b)
    });
    let deadline = std::time::Instant::now() + timeout;
    let status = loop {
        if let Some(st) = child.try_wait().map_err(|e| e.to_string())? {
            break st;
        }
        if std::time::Instant::now() >= deadline {
            // SAFETY: killpg only sends a signal to the group we created.
            unsafe { libc::killpg(child.id() as libc::pid_t, libc::SIGKILL) };
            let _ = child.wait();
            return Err(format!(
                "{prog} timed out after {}s; its process group was killed",
                timeout.as_secs_f64()
            ));
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    };
    let (stdout, stderr) = reader.join().map_err(|_| "reader thread failed")?;
    Ok(vane_core::exec::Output {
        code: status.code(),
        stdout,
        stderr,
    })
}

fn json_to_lua(lua: &Lua, v: &serde_json::Value) -> mlua::Result<mlua::Value> {
    use serde_json::Value as J;
    Ok(match v {
        J::Null => mlua::Nil,
        J::Bool(b) => mlua::Value::Boolean(*b),
        J::Number(n) => match n.as_i64() {
            Some(i) => mlua::Value::Integer(i),
            None => mlua::Value::Number(n.as_f64().unwrap_or(f64::NAN)),
        },
        J::String(s) => mlua::Value::String(lua.create_string(s)?),
        J::Array(a) => {
            let t = lua.create_table()?;
            for (i, x) in a.iter().enumerate() {
                t.set(i + 1, json_to_lua(lua, x)?)?;
            }
            mlua::Value::Table(t)
        }
        J::Object(o) => {
            let t = lua.create_table()?;
            for (k, x) in o {
                t.set(k.as_str(), json_to_lua(lua, x)?)?;
            }
            mlua::Value::Table(t)
        }
    })
}

fn to_lua(lua: &Lua, e: &Event) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    t.set("name", e.name.as_str())?;
    t.set("time", e.time)?;
    t.set("host", e.host.as_str())?;
    let tags = lua.create_table()?;
    for (k, v) in &e.tags {
        tags.set(k.as_str(), v.as_str())?;
    }
    t.set("tags", tags)?;
    let fields = lua.create_table()?;
    for (k, v) in &e.fields {
        match v {
            Value::Float(f) => fields.set(k.as_str(), *f)?,
            Value::Int(i) => fields.set(k.as_str(), *i)?,
            Value::Uint(u) => match i64::try_from(*u) {
                Ok(i) => fields.set(k.as_str(), i)?,
                Err(_) => fields.set(k.as_str(), *u as f64)?,
            },
            Value::Bool(b) => fields.set(k.as_str(), *b)?,
            Value::Str(s) => fields.set(k.as_str(), s.as_str())?,
        }
    }
    t.set("fields", fields)?;
    t.set("kind", e.kind.as_str())?;
    if let Some(s) = e.state {
        t.set("state", s.as_str())?;
    }
    if let Some(d) = &e.description {
        t.set("description", d.as_str())?;
    }
    if let Some(x) = e.ttl {
        t.set("ttl", x)?;
    }
    Ok(t)
}

/// Nothing, one event, or a list of events.
fn from_lua(v: mlua::Value, reference: Option<&Event>) -> std::result::Result<Vec<Event>, String> {
    match v {
        mlua::Value::Nil => Ok(vec![]),
        mlua::Value::Table(t) => {
            if t.contains_key("name").unwrap_or(false) {
                Ok(vec![event(&t, reference)?])
            } else {
                let mut out = Vec::new();
                for item in t.sequence_values::<Table>() {
                    out.push(event(
                        &item
                            .map_err(|e| format!("a list item is not an event: {}", lua_err(e)))?,
                        None,
                    )?);
                }
                Ok(out)
            }
        }
        other => Err(format!(
            "a {} instead of an event, a list of events or nil",
            other.type_name()
        )),
    }
}

/// Key/value pairs of a table, in the reference's order first, then sorted.
fn ordered<V: Clone>(
    map: BTreeMap<String, V>,
    reference: &[(String, impl Sized)],
) -> Vec<(String, V)> {
    let mut map = map;
    let mut out = Vec::with_capacity(map.len());
    for (k, _) in reference {
        if let Some(v) = map.remove(k) {
            out.push((k.clone(), v));
        }
    }
    out.extend(map);
    out
}

fn event(t: &Table, reference: Option<&Event>) -> std::result::Result<Event, String> {
    let get_str = |k: &str| -> std::result::Result<Option<String>, String> {
        match t.get::<mlua::Value>(k).map_err(lua_err)? {
            mlua::Value::Nil => Ok(None),
            mlua::Value::String(s) => Ok(Some(s.to_str().map_err(lua_err)?.to_owned())),
            other => Err(format!("`{k}` is a {}, not a string", other.type_name())),
        }
    };
    let name = get_str("name")?.ok_or("an event needs a `name`")?;
    let mut e = Event::new(name);
    e.time = match t.get::<mlua::Value>("time").map_err(lua_err)? {
        mlua::Value::Integer(i) => i,
        mlua::Value::Number(n) => n as i64,
        _ => 0,
    };
    e.host = get_str("host")?.unwrap_or_default();
    let empty = Event::default();
    let r = reference.unwrap_or(&empty);
    if let Ok(tags) = t.get::<Table>("tags") {
        let mut m = BTreeMap::new();
        for pair in tags.pairs::<String, mlua::Value>() {
            let (k, v) = pair.map_err(lua_err)?;
            let v = match v {
                mlua::Value::String(s) => s.to_str().map_err(lua_err)?.to_owned(),
                mlua::Value::Integer(i) => i.to_string(),
                mlua::Value::Number(n) => n.to_string(),
                mlua::Value::Boolean(b) => b.to_string(),
                other => return Err(format!("tag `{k}` is a {}", other.type_name())),
            };
            m.insert(k, v);
        }
        e.tags = ordered(m, &r.tags);
    }
    if let Ok(fields) = t.get::<Table>("fields") {
        let mut m = BTreeMap::new();
        for pair in fields.pairs::<String, mlua::Value>() {
            let (k, v) = pair.map_err(lua_err)?;
            let was_uint = matches!(r.get_field(&k), Some(Value::Uint(_)));
            let v = match v {
                mlua::Value::Integer(i) if was_uint && i >= 0 => Value::Uint(i as u64),
                mlua::Value::Integer(i) => Value::Int(i),
                mlua::Value::Number(n) => Value::Float(n),
                mlua::Value::Boolean(b) => Value::Bool(b),
                mlua::Value::String(s) => Value::Str(s.to_str().map_err(lua_err)?.to_owned()),
                other => return Err(format!("field `{k}` is a {}", other.type_name())),
            };
            m.insert(k, v);
        }
        e.fields = ordered(m, &r.fields);
    }
    if let Some(k) = get_str("kind")? {
        e.kind = Kind::parse(&k).ok_or_else(|| format!("unknown kind {k:?}"))?;
    }
    if let Some(s) = get_str("state")? {
        e.state = Some(State::parse(&s).ok_or_else(|| format!("unknown state {s:?}"))?);
    }
    e.description = get_str("description")?;
    e.ttl = t.get::<Option<f64>>("ttl").map_err(lua_err)?;
    Ok(e)
}

/// A source written in Lua: `collect(ctx)`.
pub struct LuaSource {
    vm: Vm,
}

impl Source for LuaSource {
    type Config = LuaConfig;

    fn build(cfg: LuaConfig, ctx: &Context) -> Result<Self> {
        let vm = Vm::new(&cfg, ctx, true)?;
        if !vm.has("collect") {
            return Err(Error::stop(format!(
                "{} defines no `collect` function",
                vm.script
            )));
        }
        Ok(LuaSource { vm })
    }

    async fn poll(&mut self, _: &Context) -> Result<Vec<Event>> {
        let ctx: mlua::Value = self
            .vm
            .env
            .get("ctx")
            .map_err(|e| Error::retry(lua_err(e)))?;
        self.vm.call("collect", ctx, None)
    }
}

/// An engine written in Lua: `process(event)` and optionally `beat()`.
pub struct LuaEngine {
    vm: Vm,
    beat: bool,
}

impl Engine for LuaEngine {
    type Config = LuaConfig;

    fn build(cfg: LuaConfig, ctx: &Context) -> Result<Self> {
        let vm = Vm::new(&cfg, ctx, false)?;
        if !vm.has("process") {
            return Err(Error::stop(format!(
                "{} defines no `process` function",
                vm.script
            )));
        }
        let beat = vm.has("beat");
        Ok(LuaEngine { vm, beat })
    }

    fn process(&mut self, ev: Event, out: &mut Vec<Event>) -> Result<()> {
        let t = to_lua(&self.vm.state.lua, &ev).map_err(|e| Error::retry(lua_err(e)))?;
        out.extend(self.vm.call("process", mlua::Value::Table(t), Some(&ev))?);
        Ok(())
    }

    fn beat(&mut self, out: &mut Vec<Event>) -> Result<()> {
        if self.beat {
            out.extend(self.vm.call("beat", mlua::Nil, None)?);
        }
        Ok(())
    }
}

/// Settings of the `lua_lines` source: a Lua script handling the lines
/// received on a TCP port.
#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct LuaLinesConfig {
    /// Where to listen. Default: 127.0.0.1:8000.
    #[serde(default = "default_listen")]
    pub listen: String,
    /// The script; it defines `line(text)`.
    pub script: PathBuf,
    #[serde(default)]
    pub settings: Option<serde_json::Value>,
    #[serde(default = "ten_million")]
    pub instructions: u64,
    #[serde(default = "sixty_four_mib")]
    pub memory: ByteSize,
    /// Longest line; longer ones are skipped and counted. Default: 64KiB.
    #[serde(default = "sixty_four_kib")]
    pub max_line: ByteSize,
}

fn default_listen() -> String {
    "127.0.0.1:8000".into()
}

fn sixty_four_kib() -> ByteSize {
    ByteSize(64 << 10)
}

/// A listener whose lines a Lua script turns into events: the socket is
/// vane's (scripts have none), the meaning of each line is the script's.
pub struct LuaLines {
    vm: Vm,
    listen: String,
    max_line: usize,
}

impl Service for LuaLines {
    type Config = LuaLinesConfig;

    fn build(c: LuaLinesConfig, ctx: &Context) -> Result<Self> {
        let lc = LuaConfig {
            script: c.script,
            settings: c.settings,
            instructions: c.instructions,
            memory: c.memory,
        };
        let vm = Vm::new(&lc, ctx, false)?;
        if !vm.has("line") {
            return Err(Error::stop(format!(
                "{} defines no `line` function",
                vm.script
            )));
        }
        Ok(LuaLines {
            vm,
            listen: c.listen,
            max_line: c.max_line.0 as usize,
        })
    }

    async fn run(self, ctx: Context) -> Result<()> {
        let listener = tokio::net::TcpListener::bind(&self.listen)
            .await
            .map_err(|e| Error::retry(format!("cannot listen on {}: {e}", self.listen)))?;
        ctx.info(format!("listening on {}", listener.local_addr()?));
        // Connections read lines; this task alone owns the Lua state.
        let (tx, mut rx) = tokio::sync::mpsc::channel::<String>(1024);
        let max = self.max_line;
        loop {
            tokio::select! {
                a = listener.accept() => {
                    let (sock, peer) = a?;
                    let (tx, ctx) = (tx.clone(), ctx.clone());
                    tokio::spawn(async move {
                        let mut lines = vane_core::lines::LimitedLines::new(sock, max);
                        let mut n = 0;
                        while let Ok(Some(l)) = lines.next_line().await {
                            n += 1;
                            match l {
                                vane_core::lines::Line::Text(t) => {
                                    if tx.send(t).await.is_err() {
                                        return;
                                    }
                                }
                                _ => {
                                    ctx.stats().bad_lines.fetch_add(1, Ordering::Relaxed);
                                    ctx.warn(format!("{peer}: line {n} is too long or not text; skipped"));
                                }
                            }
                        }
                    });
                }
                Some(text) = rx.recv() => {
                    let arg = mlua::Value::String(self.vm.state.lua.create_string(text.trim_end_matches('\r')).map_err(|e| Error::retry(lua_err(e)))?);
                    match self.vm.call("line", arg, None) {
                        Ok(evs) => ctx.emit_all(evs).await,
                        Err(e) => ctx.report_error(e),
                    }
                }
                _ = ctx.stopping() => return Ok(()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vane_core::testing::Harness;

    fn script(body: &str) -> (tempfile::TempDir, LuaConfig) {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s.lua");
        std::fs::write(&p, body).unwrap();
        let cfg = LuaConfig {
            script: p,
            settings: Some(serde_json::json!({"prefix": "p_", "n": 3})),
            instructions: 100_000,
            memory: ByteSize(4 << 20),
        };
        (dir, cfg)
    }

    /// A source job running the script of `cfg`.
    fn source(cfg: &LuaConfig, job: &str) -> (Harness, LuaSource) {
        let h = Harness::new(job);
        let s = LuaSource::build(cfg.clone(), h.context()).unwrap();
        (h, s)
    }

    #[tokio::test]
    async fn a_source_returns_and_emits_events_with_its_settings() {
        let (_d, cfg) = script(
            "local n = 0\n\
             function collect(ctx)\n\
               n = n + 1\n\
               ctx.emit({ name = ctx.config.prefix .. 'extra', fields = { v = 1 } })\n\
               return { name = 'count', fields = { n = n, half = n / 2, ok = true }, tags = { job = ctx.job }, state = 'ok' }\n\
             end\n",
        );
        let h = Harness::new("luajob");
        let mut s = LuaSource::build(cfg, h.context()).unwrap();
        h.poll(&mut s).await.unwrap();
        let evs = h.poll(&mut s).await.unwrap();
        assert_eq!(evs.len(), 2);
        assert_eq!(evs[0].name, "count");
        assert_eq!(evs[0].get_field("n"), Some(&Value::Int(2)));
        assert_eq!(evs[0].get_field("half"), Some(&Value::Float(1.0)));
        assert_eq!(evs[0].get_tag("job"), Some("luajob"));
        assert_eq!(evs[0].state, Some(State::Ok));
        assert_eq!(evs[1].name, "p_extra");
    }

    #[tokio::test]
    async fn sources_of_one_script_share_a_state_but_not_their_globals() {
        let (_d, cfg) = script(
            "n = 0\n\
             function collect(ctx)\n\
               n = n + 1\n\
               if ctx.job == 'a' then leaked = 1; _G.leaked_g = 1; load('leaked_l = 1')() end\n\
               ctx.emit({ name = 'from_' .. ctx.job, fields = { v = 1 } })\n\
               if ctx.job == 'b' and n == 2 then while true do end end\n\
               return { name = 'n', fields = { n = n, seen = (leaked or leaked_g or leaked_l) ~= nil } }\n\
             end\n",
        );
        let build = |job: &str| source(&cfg, job);
        let (ha, mut a) = build("a");
        let (hb, mut b) = build("b");
        assert!(Arc::ptr_eq(&a.vm.state, &b.vm.state));
        // Each job counts on its own; what one sets, the other does not see;
        // each one's emits are its own.
        for round in 1..=2i64 {
            let evs = ha.poll(&mut a).await.unwrap();
            assert_eq!(evs[0].get_field("n"), Some(&Value::Int(round)));
            assert_eq!(evs[1].name, "from_a");
            if round == 1 {
                let evs = hb.poll(&mut b).await.unwrap();
                assert_eq!(evs[0].get_field("n"), Some(&Value::Int(1)));
                assert_eq!(evs[0].get_field("seen"), Some(&Value::Bool(false)));
                assert_eq!(evs[1].name, "from_b");
            }
        }
        // A runaway call in one job is stopped; the other goes on.
        let err = hb.poll(&mut b).await.unwrap_err().to_string();
        assert!(err.contains("instruction budget"), "{err}");
        let evs = ha.poll(&mut a).await.unwrap();
        assert_eq!(evs[0].get_field("n"), Some(&Value::Int(3)));
        // A state holds at most JOBS_PER_STATE jobs.
        let more: Vec<_> = (0..JOBS_PER_STATE)
            .map(|i| build(&format!("j{i}")))
            .collect();
        let states = more
            .iter()
            .chain([(ha, a), (hb, b)].iter())
            .map(|(_, s)| Arc::as_ptr(&s.vm.state))
            .collect::<std::collections::BTreeSet<_>>();
        assert_eq!(states.len(), 2);
    }

    #[tokio::test]
    async fn sharing_a_state_takes_no_memory_from_a_job() {
        // Each job may hold 1.5 MiB (3 MiB while building it) under a 4 MiB
        // limit, as it could alone; one job cannot take what all are allowed.
        let (_d, cfg) = script(
            "function collect(ctx)\n\
               if ctx.job == 'greedy' then big = string.rep('x', 20 * 1024 * 1024) end\n\
               kept = kept or string.rep('x', 1536 * 1024)\n\
               return { name = 'held', fields = { bytes = #kept } }\n\
             end\n",
        );
        let mut jobs = Vec::new();
        for job in ["m1", "m2", "m3"] {
            let (h, mut s) = source(&cfg, job);
            let evs = h.poll(&mut s).await.unwrap();
            assert_eq!(evs[0].get_field("bytes"), Some(&Value::Int(1536 << 10)));
            jobs.push((h, s));
        }
        assert!(Arc::ptr_eq(&jobs[0].1.vm.state, &jobs[2].1.vm.state));
        let (h, mut g) = source(&cfg, "greedy");
        let err = h.poll(&mut g).await.unwrap_err().to_string();
        assert!(err.contains("memory"), "{err}");
    }

    #[test]
    fn an_engine_changes_drops_and_multiplies_keeping_order_and_types() {
        let (_d, cfg) = script(
            "function process(e)\n\
               if e.fields.drop then return nil end\n\
               e.tags.env = 'prod'\n\
               if e.fields.twice then return { e, e } end\n\
               return e\n\
             end\n",
        );
        let h = Harness::new("e");
        let mut en = LuaEngine::build(cfg, h.context()).unwrap();
        let mut out = Vec::new();
        let ev = Event::new("m")
            .tag("z", "1")
            .tag("a", "2")
            .field("u", 5u64)
            .field("f", 1.5);
        en.process(ev, &mut out).unwrap();
        en.process(Event::new("d").field("drop", true), &mut out)
            .unwrap();
        en.process(Event::new("t").field("twice", true), &mut out)
            .unwrap();
        let names: Vec<&str> = out.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, vec!["m", "t", "t"]);
        let tags: Vec<&str> = out[0].tags.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(tags, vec!["z", "a", "env"]);
        assert_eq!(out[0].get_field("u"), Some(&Value::Uint(5)));
    }

    #[test]
    fn the_sandbox_keeps_the_host_out_of_reach() {
        for (code, want) in [
            (
                "function process(e) os.execute('true') return e end",
                "attempt to call a nil value (field 'execute')",
            ),
            (
                "function process(e) io.open('/etc/passwd') return e end",
                "attempt to index a nil value (global 'io')",
            ),
            (
                "function process(e) require('os') return e end",
                "attempt to call a nil value (global 'require')",
            ),
            (
                "function process(e) local f, err = load(string.dump(function() end)) error(err) end",
                "attempt to load a binary chunk",
            ),
        ] {
            let (_d, cfg) = script(code);
            let h = Harness::new("e");
            let mut en = LuaEngine::build(cfg, h.context()).unwrap();
            let err = en
                .process(Event::gauge("x", 1.0), &mut Vec::new())
                .unwrap_err()
                .to_string();
            assert!(err.contains(want), "{code}: {err}");
            assert!(
                err.contains("s.lua:1:") || want.contains("binary"),
                "names file and line: {err}"
            );
        }
    }

    #[test]
    fn runaway_scripts_are_stopped_and_the_engine_goes_on() {
        let (_d, mut cfg) = script(
            "function process(e)\n\
               if e.name == 'loop' then while true do end end\n\
               if e.name == 'hog' then local t = {} for i = 1, 1e9 do t[i] = string.rep('x', 1000) end end\n\
               return e\n\
             end\n",
        );
        cfg.instructions = 1_000_000;
        let h = Harness::new("e");
        let mut en = LuaEngine::build(cfg, h.context()).unwrap();
        let mut out = Vec::new();
        let err = en
            .process(Event::gauge("loop", 1.0), &mut out)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("instruction budget of 1000000 exceeded"),
            "{err}"
        );
        let err = en
            .process(Event::gauge("hog", 1.0), &mut out)
            .unwrap_err()
            .to_string();
        assert!(err.contains("memory") || err.contains("budget"), "{err}");
        en.process(Event::gauge("fine", 1.0), &mut out).unwrap();
        assert_eq!(out.len(), 1);
    }

    #[test]
    fn script_errors_name_file_and_line() {
        let (_d, cfg) = script("function process(e)\n  return e.fields.nope.deeper\nend\n");
        let h = Harness::new("e");
        let mut en = LuaEngine::build(cfg, h.context()).unwrap();
        let err = en
            .process(Event::gauge("x", 1.0), &mut Vec::new())
            .unwrap_err()
            .to_string();
        assert!(err.contains("s.lua:2:"), "{err}");
        let (_d, cfg) = script("function process(e) return e end\nthis is not lua\n");
        let err = LuaEngine::build(cfg, h.context())
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("s.lua:2:"), "{err}");
    }
}
