//! The sandbox a script runs in: only harmless libraries, `load` for text
//! only, no finalizers written in Lua (the collector runs them with the
//! instruction hook off), and no way to keep running once the call's budget
//! is spent: `pcall`, `xpcall`, `coroutine.resume`, `coroutine.wrap` and
//! `coroutine.close` raise the budget's error again when what they caught
//! was the end of the call.
//!
//! Lua runs some Lua code with the hook off: finalizers (`__gc`), the
//! message handler of an error raised from the hook, and the `__close` of a
//! coroutine the hook's error killed. So scripts may give no metatable a
//! `__gc` or `__close` (checked when `setmetatable` is called), `xpcall`'s
//! handler is not called for the budget's error, and a coroutine the budget
//! killed is never closed (`coroutine.wrap` is rebuilt on `resume` for
//! that).

use std::sync::Arc;
use std::sync::atomic::AtomicUsize;

use mlua::{HookTriggers, Lua, LuaOptions, StdLib, Table, VmState};

use super::budget::Budget;

/// The hook runs every this many instructions.
const HOOK_EVERY: u32 = 1000;

/// A new sandboxed state: the libraries, the budget's hook, the metered
/// string functions, and the function making a job's `load`
/// (`function(env) return a load that defaults to env end`).
pub fn state(budget: &Arc<Budget>, memory: &Arc<AtomicUsize>) -> mlua::Result<(Lua, mlua::Function)> {
    let libs = StdLib::TABLE | StdLib::STRING | StdLib::MATH | StdLib::UTF8 | StdLib::COROUTINE | StdLib::OS;
    let lua = Lua::new_with(libs, LuaOptions::default())?;
    let g = lua.globals();
    for name in ["dofile", "loadfile", "require", "package", "io", "debug"] {
        g.set(name, mlua::Nil)?;
    }
    let os: Table = g.get("os")?;
    for name in ["execute", "exit", "remove", "rename", "tmpname", "getenv", "setlocale"] {
        os.set(name, mlua::Nil)?;
    }
    super::strlib::install(&lua, budget.clone(), memory.clone())?;
    let b = budget.clone();
    let spent = lua.create_function(move |_, ()| Ok(b.spent()))?;
    let b = budget.clone();
    let raise = lua.create_function(move |_, ()| Err::<(), _>(b.error()))?;
    // `load` may compile text, never precompiled bytecode; a job's `load`
    // puts what it loads in the job's globals unless told otherwise.
    let make_load: mlua::Function = lua
        .load(
            "local spent, raise = ...\n\
             local pcall0, xpcall0, type, rawget, error = pcall, xpcall, type, rawget, error\n\
             local create, resume0, close0, setmetatable0 = coroutine.create, coroutine.resume, coroutine.close, setmetatable\n\
             local doomed = setmetatable0({}, { __mode = 'k' })\n\
             local function check(...) if spent() then raise() end return ... end\n\
             pcall = function(...) return check(pcall0(...)) end\n\
             xpcall = function(f, h, ...)\n\
               return check(xpcall0(f, function(m) if spent() then return m end return h(m) end, ...))\n\
             end\n\
             local function resumed(co, ...) if spent() then doomed[co] = true; raise() end return ... end\n\
             coroutine.resume = function(co, ...) return resumed(co, resume0(co, ...)) end\n\
             coroutine.close = function(co)\n\
               if doomed[co] then return false, 'stopped with the call that ran it' end\n\
               return check(close0(co))\n\
             end\n\
             local function unwrap(co, ok, ...)\n\
               if spent() then doomed[co] = true; raise() end\n\
               if ok then return ... end\n\
               close0(co)\n\
               error((...), 0)\n\
             end\n\
             coroutine.wrap = function(f)\n\
               local co = create(f)\n\
               return function(...) return unwrap(co, resume0(co, ...)) end\n\
             end\n\
             setmetatable = function(t, mt)\n\
               if type(mt) == 'table' and (rawget(mt, '__gc') ~= nil or rawget(mt, '__close') ~= nil) then\n\
                 error('__gc and __close metamethods are not allowed in scripts', 2)\n\
               end\n\
               return setmetatable0(t, mt)\n\
             end\n\
             local orig = load\n\
             load = function(chunk, name, _, env) return orig(chunk, name, 't', env) end\n\
             return function(job_env)\n\
               return function(chunk, name, _, env) return orig(chunk, name, 't', env or job_env) end\n\
             end",
        )
        .set_name("=sandbox")
        .call((spent, raise))?;
    // Engines make short-lived userdata (the events they are given and
    // their views), each with a finalizer: the generational collector
    // frees them in minor collections, where the incremental one let
    // finalizers fall behind the rate they are made at.
    lua.load("collectgarbage('generational')").set_name("=sandbox").exec()?;
    let b = budget.clone();
    // Coroutines inherit the hook of the thread that makes them.
    lua.set_global_hook(HookTriggers::new().every_nth_instruction(HOOK_EVERY), move |_, _| {
        if b.charge(u64::from(HOOK_EVERY)) { Ok(VmState::Continue) } else { Err(b.error()) }
    })?;
    Ok((lua, make_load))
}

#[cfg(test)]
mod tests {
    use super::super::testing::{script, source};
    use vane_core::prelude::*;

    /// The error (or the events) of one `collect` running `body`.
    async fn collect(body: &str) -> std::result::Result<Vec<Event>, String> {
        let (_d, cfg) = script(&format!("function collect(ctx)\n{body}\nend\n"));
        let (h, mut s) = source(&cfg, "t");
        h.poll(&mut s).await.map_err(|e| e.to_string())
    }

    async fn stopped(body: &str) -> String {
        let started = std::time::Instant::now();
        let err = collect(body).await.expect_err(body);
        assert!(started.elapsed() < std::time::Duration::from_secs(5), "{body}: took {:?}", started.elapsed());
        err
    }

    /// Each of `bodies` is stopped with an error saying `why`.
    async fn all_stopped(bodies: &[&str], why: &str) {
        for body in bodies {
            let err = stopped(body).await;
            assert!(err.contains(why), "{body}: {err}");
        }
    }

    #[tokio::test]
    async fn no_handler_outlives_the_budget() {
        let bodies = [
            "while true do pcall(function() while true do end end) end",
            "while true do xpcall(function() while true do end end, function() while true do end end) end",
            "while true do pcall(pcall, pcall, function() while true do end end) end",
            "local co = coroutine.create(function() while true do end end)\n\
             while true do coroutine.resume(co); co = coroutine.create(function() while true do end end) end",
            "while true do pcall(coroutine.wrap(function() while true do end end)) end",
            "while true do local ok = pcall(error, setmetatable({}, { __tostring = function() while true do end end })) end",
        ];
        all_stopped(&bodies, "instruction budget of 100000 exceeded").await;
    }

    #[tokio::test]
    async fn a_coroutine_the_budget_killed_is_never_closed() {
        let (_d, cfg) = script(
            "n = 0\nfunction collect(ctx)\n\
               n = n + 1\n\
               if n == 1 then\n\
                 co = coroutine.create(function() while true do end end)\n\
                 coroutine.resume(co)\n\
               end\n\
               local ok, why = coroutine.close(co)\n\
               return { name = 'closed', fields = { ok = ok, why = why } }\n\
             end\n",
        );
        let (h, mut s) = source(&cfg, "t");
        let err = h.poll(&mut s).await.unwrap_err().to_string();
        assert!(err.contains("instruction budget"), "{err}");
        let evs = h.poll(&mut s).await.unwrap();
        assert_eq!(evs[0].get_field("ok"), Some(&Value::Bool(false)));
        assert_eq!(evs[0].get_field("why"), Some(&Value::Str("stopped with the call that ran it".into())));
    }

    #[tokio::test]
    async fn finalizers_cannot_be_written_in_lua() {
        let err = stopped("setmetatable({}, { __gc = function() while true do end end })").await;
        assert!(err.contains("__gc and __close metamethods are not allowed"), "{err}");
        let err = stopped("local mt = { __gc = true }; setmetatable({}, mt); mt.__gc = function() end").await;
        assert!(err.contains("__gc and __close metamethods are not allowed"), "{err}");
        let err = stopped(
            "local loops = setmetatable({}, { __close = function() while true do end end })\n\
             coroutine.wrap(function() local x <close> = loops; while true do end end)()",
        )
        .await;
        assert!(err.contains("__gc and __close metamethods are not allowed"), "{err}");
        // Metatables without one work as before.
        let evs = collect("local t = setmetatable({}, { __index = function() return 4 end })\nreturn { name = 'm', fields = { v = t.x } }").await.unwrap();
        assert_eq!(evs[0].get_field("v"), Some(&Value::Int(4)));
    }

    #[tokio::test]
    async fn work_outside_the_vm_is_charged() {
        let bodies = [
            "local s = string.rep('a', 40)\nstring.find(s, '(.-)(.-)(.-)(.-)(.-)(.-)(.-)(.-)(.-)(.-)b')",
            "local s = string.rep('a', 5000)\nwhile true do s:match('.-.-.-b') end",
            "while true do local x = string.rep('x', 1 << 20) end",
            "local t = {}\nfor i = 1, 100 do t[i] = string.rep(string.rep('y', 100), 100) end\nwhile true do local s = table.concat(t) end",
            "table.move({1}, 1, 1 << 40, 2)",
            "local s = string.rep('a', 100000)\nwhile true do s:gsub('a', 'bb') end",
        ];
        all_stopped(&bodies, "instruction budget").await;
    }

    #[tokio::test]
    async fn results_built_outside_the_vm_are_held_to_the_memory_limit() {
        let err = stopped("local s = string.rep(string.rep('a', 1024), 1024)\ns:gsub('a', s)").await;
        assert!(err.contains("memory"), "{err}");
    }

    #[tokio::test]
    async fn the_pattern_functions_answer_as_lua_does() {
        let evs = collect(
            "local out = {}\n\
             local function add(...) for i = 1, select('#', ...) do out[#out + 1] = tostring((select(i, ...))) end end\n\
             add(('hello world'):find('o', 6))\n\
             add(('a.b'):find('.', 1, true))\n\
             add(('x=1, y=22'):match('(%a)=(%d+)', 3))\n\
             add(('hello'):match('()ll()'))\n\
             add(('abc'):find('z'))\n\
             for k, v in ('a=1,b=2'):gmatch('(%w+)=(%w+)') do add(k, v) end\n\
             for w in ('one two'):gmatch('%a*') do add('[' .. w .. ']') end\n\
             add(('hello world'):gsub('o', '0'))\n\
             add(('abc'):gsub('', '-'))\n\
             add(('hello world'):gsub('(%w+)', '<%1>', 1))\n\
             add(('$name is $age'):gsub('%$(%w+)', { name = 'Ann', age = 7 }))\n\
             add(('1 2 3'):gsub('%d', function(d) if d ~= '2' then return d * 2 end end))\n\
             add(('abc'):gsub('%w', '%0%%'))\n\
             add(('abc'):gsub('(', 'x'))\n\
             add(string.find(12345, 34))\n\
             return { name = 'r', fields = { v = table.concat(out, '|') } }",
        )
        .await
        .unwrap();
        let want = "8|8|2|2|y|22|3|5|nil|a|1|b|2|[one]|[two]|hell0 w0rld|2|-a-b-c-|4|<hello> world|1|Ann is 7|2|2 2 6|3\
                    |a%b%c%|3|xaxbxcx|4|3|4";
        assert_eq!(evs[0].get_field("v"), Some(&Value::Str(want.into())));
        for (body, msg) in [
            ("string.match('abc', '(')", "unfinished capture"),
            ("string.gsub('abc', 'b', '%2')", "invalid capture index %2"),
            ("string.find('abc', '[a')", "malformed pattern (missing ']')"),
            (
                "string.gsub('abc', 'b', true)",
                "bad argument #3 to 'gsub' (string/function/table expected, got boolean)",
            ),
        ] {
            let err = collect(body).await.unwrap_err();
            assert!(err.contains(msg), "{body}: {err}");
        }
    }
}
