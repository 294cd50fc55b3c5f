//! The sandboxed Lua state and the jobs running in it: libraries limited to
//! the harmless ones, an instruction budget per call and a memory limit per
//! state, the `ctx` functions, and a pool so that sources running the same
//! script share a state (each with its own globals).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};

use mlua::chunk::ChunkMode;
use mlua::{Lua, Table};
use vane_core::prelude::*;

use super::budget::Budget;
use super::convert::{events_from_lua, json_to_lua};
use super::event::SharedLent;
use super::{LuaConfig, ScriptError};

/// Sources running the same script share a Lua state, up to this many jobs
/// a state: a state with its libraries and sandbox takes about 45 KiB, a job
/// in a shared one a few KiB (its globals, its compiled script, its `ctx`).
const JOBS_PER_STATE: usize = 64;

/// A sandboxed Lua state. Each job running in it has its own globals (a
/// table whose misses fall through to the libraries); calls take turns.
pub struct LuaState {
    pub(crate) lua: Lua,
    /// What the running call may still spend.
    budget: Arc<Budget>,
    /// The job whose call is running: `ctx.log`, `ctx.emit`… act for it.
    current: Arc<Mutex<Current>>,
    /// One call at a time: the budget and `current` belong to the call.
    turn: Mutex<()>,
    /// `ctx` functions shared by the jobs (`ctx` tables fall through to it).
    ctx_base: Table,
    /// `function(env) return a load that defaults to env end`.
    make_load: mlua::Function,
    /// The memory limit set on the state.
    limit: Arc<AtomicUsize>,
    /// Events lent to the running call (engines).
    pub(crate) lent: SharedLent,
}

#[derive(Default)]
struct Current {
    ctx: Option<Context>,
    emitted: Vec<Event>,
}

/// One job's script in a (possibly shared) state.
pub struct Vm {
    pub(crate) state: Arc<LuaState>,
    /// The job's globals.
    pub(crate) env: Table,
    ctx: Context,
    per_call: u64,
    /// Whether its calls end when the agent stops (sources: what a poll
    /// would have found is not missed; engines finish what they drain).
    ends_on_stop: bool,
    pub(crate) script: String,
}

type PoolKey = (PathBuf, u64, u64, std::time::Duration);

/// Shared states by script and limits; the jobs hold them, the pool only
/// finds them.
static POOL: Mutex<Vec<(PoolKey, Weak<LuaState>)>> = Mutex::new(Vec::new());

/// Finds the script beside the config file that names it.
fn script_path(ctx: &Context, script: &Path) -> PathBuf {
    if script.is_absolute() {
        return script.to_path_buf();
    }
    let file = ctx.config().mark.file.to_string();
    Path::new(&file).parent().map(|d| d.join(script)).filter(|p| p.exists()).unwrap_or_else(|| script.to_path_buf())
}

impl LuaState {
    fn new(cfg: &LuaConfig) -> mlua::Result<LuaState> {
        let budget = Arc::new(Budget::new(cfg.timeout.get()));
        let limit = Arc::new(AtomicUsize::new(cfg.memory.0 as usize));
        let (lua, make_load) = super::sandbox::state(&budget, &limit)?;
        lua.set_memory_limit(cfg.memory.0 as usize)?;
        let current = Arc::new(Mutex::new(Current::default()));
        let base = lua.create_table()?;
        for (name, level) in [("log", 0), ("warn", 1), ("report_error", 2)] {
            let cur = current.clone();
            let f = lua.create_function(move |_, msg: String| {
                let c = cur.lock().expect("not poisoned").ctx.clone();
                match (c, level) {
                    (Some(c), 0) => c.info(&msg),
                    (Some(c), 1) => c.warn(&msg),
                    (Some(c), _) => c.report_error(&msg),
                    (None, _) => {}
                }
                Ok(())
            })?;
            base.set(name, f)?;
        }
        let memory = cfg.memory.0;
        base.set("exec", lua.create_function(move |lua, args| super::exec::lua_exec(lua, args, memory))?)?;
        let lent = SharedLent::default();
        super::event::install(&lua, &lent)?;
        let cur = current.clone();
        let l = lent.clone();
        let emit = lua.create_function(move |_, v: mlua::Value| {
            let evs = events_from_lua(v, &l).map_err(|e| mlua::Error::RuntimeError(e.0))?;
            cur.lock().expect("not poisoned").emitted.extend(evs);
            Ok(())
        })?;
        base.set("emit", emit)?;
        let cur = current.clone();
        let board = lua.create_function(move |_, spec: Table| {
            let ctx = cur.lock().expect("not poisoned").ctx.clone();
            let ctx =
                ctx.ok_or_else(|| mlua::Error::RuntimeError("ctx.board: called outside the job's turn".into()))?;
            let name: String = spec.get("name")?;
            let prefix: Option<String> = spec.get("prefix")?;
            let template: String = spec.get("template")?;
            let origin = format!("{} (Lua template)", ctx.job());
            ctx.board(&name, &prefix.unwrap_or_default(), &template, &origin)
                .map(super::board::LuaBoard)
                .map_err(|e| mlua::Error::RuntimeError(e.to_string()))
        })?;
        base.set("board", board)?;
        Ok(LuaState { lua, budget, current, turn: Mutex::new(()), ctx_base: base, make_load, limit, lent })
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
    /// Loads the job's script: in a state of its own, or (`shared`, for
    /// sources) in one it shares with other jobs running the same script.
    /// A source's calls end when the agent stops.
    pub fn new(cfg: &LuaConfig, ctx: &Context, shared: bool) -> Result<Vm, BuildError> {
        let path = script_path(ctx, &cfg.script);
        let code = std::fs::read_to_string(&path)
            .map_err(|e| BuildError::stop(format!("cannot read Lua script {}: {e}", path.display())))?;
        let lua_stop = |e: mlua::Error| BuildError::stop(ScriptError::from(e));
        let state = if shared {
            LuaState::shared((path.clone(), cfg.instructions, cfg.memory.0, cfg.timeout.get()), cfg)
        } else {
            LuaState::new(cfg).map(Arc::new)
        }
        .map_err(lua_stop)?;
        let script = path.display().to_string();
        let env = Vm::globals(&state, cfg, ctx).map_err(lua_stop)?;
        let vm = Vm { state, env, ctx: ctx.clone(), per_call: cfg.instructions, ends_on_stop: shared, script };
        let chunk = vm
            .state
            .lua
            .load(&code)
            .set_name(format!("@{}", vm.script))
            .set_mode(ChunkMode::Text)
            .set_environment(vm.env.clone());
        vm.run(|| chunk.exec()).1.map_err(lua_stop)?;
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
        t.set("config", json_to_lua(lua, cfg.settings.as_ref().unwrap_or(&serde_json::Value::Null))?)?;
        let meta = lua.create_table()?;
        meta.set("__index", state.ctx_base.clone())?;
        t.set_metatable(Some(meta))?;
        env.set("ctx", t)?;
        env.set("_G", env.clone())?;
        env.set("load", state.make_load.call::<mlua::Function>(env.clone())?)?;
        Ok(env)
    }

    /// Runs `f` as this job's turn on the state, off the async workers: a
    /// fresh budget, `ctx` acting for this job. Returns what the job
    /// emitted, and `f`'s result.
    fn run<T>(&self, f: impl FnOnce() -> mlua::Result<T>) -> (Vec<Event>, mlua::Result<T>) {
        vane_core::blocking::run(|| {
            let _turn = self.state.turn.lock().expect("not poisoned");
            let stop = self.ends_on_stop.then(|| self.ctx.lifecycle().clone());
            self.state.budget.start(self.per_call, stop);
            self.state.current.lock().expect("not poisoned").ctx = Some(self.ctx.clone());
            let r = f();
            let mut cur = self.state.current.lock().expect("not poisoned");
            cur.ctx = None;
            (std::mem::take(&mut cur.emitted), r)
        })
    }

    /// The script's function `name`, to call again and again; `None` when it
    /// defines none.
    pub fn function(&self, name: &str) -> Option<mlua::Function> {
        self.env.get::<Option<mlua::Function>>(name).ok().flatten()
    }

    /// True when the script sets the global `name` to `true`.
    pub fn flag(&self, name: &str) -> bool {
        self.env.get::<Option<bool>>(name).ok().flatten().unwrap_or(false)
    }

    /// The script's function `name`: a `BuildError` when it defines none.
    pub fn require(&self, name: &str) -> Result<mlua::Function, BuildError> {
        self.function(name).ok_or_else(|| BuildError::stop(format!("{} defines no `{name}` function", self.script)))
    }

    /// Calls one of the job's functions with a budget: its returned events,
    /// then emitted ones.
    pub fn call(&self, f: &mlua::Function, name: &str, arg: impl mlua::IntoLua) -> Result<Vec<Event>, ScriptError> {
        let (emitted, r) = self.run(|| f.call::<mlua::Value>(arg));
        let evs = match r {
            Ok(v) => events_from_lua(v, &self.state.lent)
                .map_err(|e| ScriptError(format!("{}: {name} returned {}", self.script, e.0))),
            Err(e) => Err(e.into()),
        };
        // What was lent and not passed on is dropped; its handles go stale.
        self.state.lent.lock().expect("not poisoned").end_call();
        let mut evs = evs?;
        evs.extend(emitted);
        Ok(evs)
    }

    /// Calls `f` with a table made of `value`.
    pub fn call_with_json(
        &self,
        f: &mlua::Function,
        name: &str,
        value: &serde_json::Value,
    ) -> Result<Vec<Event>, ScriptError> {
        let arg = json_to_lua(&self.state.lua, value).map_err(ScriptError::from)?;
        self.call(f, name, arg)
    }

    /// Calls `f` with `event` lent to it ([`super::event`]).
    pub fn call_with_event(&self, f: &mlua::Function, name: &str, event: Event) -> Result<Vec<Event>, ScriptError> {
        let h = self.state.lent.lock().expect("not poisoned").lend(event);
        self.call(f, name, h)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{script, source};
    use super::*;

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
        let more: Vec<_> = (0..JOBS_PER_STATE).map(|i| build(&format!("j{i}"))).collect();
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
               kept = kept or string.rep(string.rep('x', 1024), 1536)\n\
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
}
