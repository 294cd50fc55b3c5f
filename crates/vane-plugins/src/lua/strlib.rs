//! The string and table functions whose work happens outside the Lua VM,
//! where the instruction hook cannot count it, made to pay for it: the
//! pattern functions (`find`, `match`, `gmatch`, `gsub`) run on vane's own
//! matcher ([`super::pattern`]), each step charged to the call's budget;
//! `string.rep` (each eight repetitions and each 64 bytes), `table.concat` and
//! `table.move` are charged for what they produce or touch before (or as)
//! they do it.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

use mlua::{Function, Lua, MultiValue, Table, Value, Variadic};

use super::budget::{BYTES_PER_INSTRUCTION, Budget};
use super::pattern::{Capture, Failure, Matcher, is_plain, start};

/// What the functions share: the call's budget, the state's memory limit
/// (results built in Rust are held to it too).
#[derive(Clone)]
struct Meter {
    budget: Arc<Budget>,
    memory: Arc<AtomicUsize>,
}

impl Meter {
    fn fail(&self, f: Failure) -> mlua::Error {
        match f {
            Failure::Stopped => self.budget.error(),
            Failure::Malformed(m) => mlua::Error::RuntimeError(m),
        }
    }

    /// Refuses a result longer than the state may hold.
    fn room(&self, lua: &Lua, len: usize) -> mlua::Result<()> {
        if lua.used_memory().saturating_add(len) > self.memory.load(Relaxed) {
            return Err(mlua::Error::MemoryError("not enough memory".into()));
        }
        Ok(())
    }
}

/// Replaces the functions in the state's `string` and `table` libraries.
pub fn install(lua: &Lua, budget: Arc<Budget>, memory: Arc<AtomicUsize>) -> mlua::Result<()> {
    let m = Meter { budget, memory };
    let string: Table = lua.globals().get("string")?;
    let table: Table = lua.globals().get("table")?;

    let mm = m.clone();
    string.set(
        "find",
        lua.create_function(move |lua, (s, p, init, plain): (Value, Value, Option<i64>, Option<bool>)| {
            find(lua, &mm, Args::read(lua, "find", s, p, init)?, plain.unwrap_or(false), true)
        })?,
    )?;
    let mm = m.clone();
    string.set(
        "match",
        lua.create_function(move |lua, (s, p, init): (Value, Value, Option<i64>)| {
            find(lua, &mm, Args::read(lua, "match", s, p, init)?, false, false)
        })?,
    )?;
    let mm = m.clone();
    string.set(
        "gmatch",
        lua.create_function(move |lua, (s, p, init): (Value, Value, Option<i64>)| {
            gmatch(lua, &mm, Args::read(lua, "gmatch", s, p, init)?)
        })?,
    )?;
    let mm = m.clone();
    string.set(
        "gsub",
        lua.create_function(move |lua, (s, p, repl, n): (Value, Value, Value, Option<i64>)| {
            gsub(lua, &mm, Args::read(lua, "gsub", s, p, None)?, repl, n)
        })?,
    )?;

    // string.rep: charged for its result before making it.
    let rep: Function = string.get("rep")?;
    let mm = m.clone();
    string.set(
        "rep",
        lua.create_function(move |lua, args: Variadic<Value>| {
            let len = |v: Option<&Value>| match v {
                Some(Value::String(s)) => s.as_bytes().len() as u64,
                Some(v @ (Value::Integer(_) | Value::Number(_))) => v.to_string().map_or(0, |s| s.len() as u64),
                _ => 0,
            };
            let n = match args.get(1) {
                Some(Value::Integer(n)) => (*n).max(0) as u64,
                Some(Value::Number(n)) => n.max(0.0) as u64,
                _ => 0,
            };
            let total = n
                .saturating_mul(len(args.first()))
                .saturating_add(n.saturating_sub(1).saturating_mul(len(args.get(2))));
            mm.room(lua, total.min(usize::MAX as u64) as usize)?;
            // A copy per repetition (about an eighth of an instruction),
            // and the bytes.
            mm.budget.take((n / 8).saturating_add(total / BYTES_PER_INSTRUCTION))?;
            rep.call::<Value>(MultiValue::from_iter(args))
        })?,
    )?;

    // table.concat: charged for the elements it reads and what it makes.
    let concat: Function = table.get("concat")?;
    let mm = m.clone();
    table.set(
        "concat",
        lua.create_function(move |_, args: Variadic<Value>| {
            let r: mlua::LuaString = concat.call(MultiValue::from_iter(args))?;
            mm.budget.take(r.as_bytes().len() as u64 / BYTES_PER_INSTRUCTION)?;
            Ok(r)
        })?,
    )?;

    // table.move: charged for every element before moving any.
    let mv: Function = table.get("move")?;
    table.set(
        "move",
        lua.create_function(move |_, args: Variadic<Value>| {
            if let (Some(Value::Integer(f)), Some(Value::Integer(e))) = (args.get(1), args.get(2))
                && e >= f
            {
                m.budget.take(e.abs_diff(*f).saturating_add(1))?;
            }
            mv.call::<Value>(MultiValue::from_iter(args))
        })?,
    )?;
    Ok(())
}

/// A subject, a pattern and a 0-based start.
struct Args {
    s: mlua::LuaString,
    p: mlua::LuaString,
    init: usize,
}

impl Args {
    fn read(lua: &Lua, name: &str, s: Value, p: Value, init: Option<i64>) -> mlua::Result<Args> {
        let text = |v: Value, n: u8| -> mlua::Result<mlua::LuaString> {
            let ty = v.type_name();
            match lua.coerce_string(v)? {
                Some(s) => Ok(s),
                None => {
                    Err(mlua::Error::RuntimeError(format!("bad argument #{n} to '{name}' (string expected, got {ty})")))
                }
            }
        };
        let s = text(s, 1)?;
        let p = text(p, 2)?;
        let init = start(init.unwrap_or(1), s.as_bytes().len()) - 1;
        Ok(Args { s, p, init })
    }
}

/// A capture as Lua sees it.
fn capture_value(lua: &Lua, src: &[u8], c: Capture) -> mlua::Result<Value> {
    match c {
        Capture::Position(p) => Ok(Value::Integer(p as i64)),
        Capture::Text(a, b) => Ok(Value::String(lua.create_string(&src[a..b])?)),
    }
}

fn captures(lua: &Lua, src: &[u8], caps: Vec<Capture>) -> mlua::Result<Vec<Value>> {
    caps.into_iter().map(|c| capture_value(lua, src, c)).collect()
}

/// `string.find` (`positions`) and `string.match`.
fn find(lua: &Lua, m: &Meter, a: Args, plain: bool, positions: bool) -> mlua::Result<MultiValue> {
    let (src, pat) = (a.s.as_bytes(), a.p.as_bytes());
    if a.init > src.len() {
        return Ok(MultiValue::from_iter([Value::Nil]));
    }
    if positions && (plain || is_plain(&pat)) {
        m.budget.take((src.len() - a.init) as u64 / BYTES_PER_INSTRUCTION)?;
        return Ok(match memchr::memmem::find(&src[a.init..], &pat) {
            Some(i) => MultiValue::from_iter([
                Value::Integer((a.init + i + 1) as i64),
                Value::Integer((a.init + i + pat.len()) as i64),
            ]),
            None => MultiValue::from_iter([Value::Nil]),
        });
    }
    let (anchor, p0) = if pat.first() == Some(&b'^') { (true, 1) } else { (false, 0) };
    let budget = m.budget.clone();
    let mut meter = |n: u32| budget.charge(u64::from(n));
    let mut mt = Matcher::new(&src, &pat, &mut meter);
    let mut s = a.init;
    let found = loop {
        if let Some(e) = mt.try_at(s, p0).map_err(|f| m.fail(f))? {
            break Some((s, e));
        }
        s += 1;
        if anchor || s > src.len() {
            break None;
        }
    };
    mt.settle().map_err(|f| m.fail(f))?;
    let Some((s, e)) = found else {
        return Ok(MultiValue::from_iter([Value::Nil]));
    };
    let caps = mt.captures(s, e, !positions).map_err(|f| m.fail(f))?;
    let mut out = Vec::with_capacity(caps.len() + 2);
    if positions {
        out.push(Value::Integer(s as i64 + 1));
        out.push(Value::Integer(e as i64));
    }
    out.extend(captures(lua, &src, caps)?);
    Ok(MultiValue::from_iter(out))
}

/// `string.gmatch`: an iterator over the matches.
fn gmatch(lua: &Lua, m: &Meter, a: Args) -> mlua::Result<Function> {
    let m = m.clone();
    let (mut pos, mut last) = (a.init.min(a.s.as_bytes().len()), None);
    lua.create_function_mut(move |lua, _: MultiValue| {
        let (src, pat) = (a.s.as_bytes(), a.p.as_bytes());
        let budget = m.budget.clone();
        let mut meter = |n: u32| budget.charge(u64::from(n));
        let mut mt = Matcher::new(&src, &pat, &mut meter);
        let mut found = None;
        for s in pos..=src.len() {
            match mt.try_at(s, 0).map_err(|f| m.fail(f))? {
                Some(e) if Some(e) != last => {
                    found = Some((s, e));
                    break;
                }
                _ => {}
            }
        }
        mt.settle().map_err(|f| m.fail(f))?;
        let Some((s, e)) = found else {
            pos = src.len() + 1;
            return Ok(MultiValue::from_iter([Value::Nil]));
        };
        pos = e;
        last = Some(e);
        let caps = mt.captures(s, e, true).map_err(|f| m.fail(f))?;
        Ok(MultiValue::from_iter(captures(lua, &src, caps)?))
    })
}

/// What `gsub` puts in place of each match.
enum Repl {
    Text(mlua::LuaString),
    Table(Table),
    Function(Function),
}

/// `string.gsub`.
fn gsub(lua: &Lua, m: &Meter, a: Args, repl: Value, n: Option<i64>) -> mlua::Result<(mlua::LuaString, i64)> {
    let repl = match repl {
        Value::Table(t) => Repl::Table(t),
        Value::Function(f) => Repl::Function(f),
        v @ (Value::String(_) | Value::Integer(_) | Value::Number(_)) => {
            Repl::Text(lua.coerce_string(v)?.expect("a string or a number"))
        }
        v => {
            return Err(mlua::Error::RuntimeError(format!(
                "bad argument #3 to 'gsub' (string/function/table expected, got {})",
                v.type_name()
            )));
        }
    };
    let (src, pat) = (a.s.as_bytes(), a.p.as_bytes());
    let max = n.unwrap_or(src.len() as i64 + 1);
    let (anchor, p0) = if pat.first() == Some(&b'^') { (true, 1) } else { (false, 0) };
    let budget = m.budget.clone();
    let mut meter = |n: u32| budget.charge(u64::from(n));
    let mut mt = Matcher::new(&src, &pat, &mut meter);
    let fail = |f| m.fail(f);
    let mut out: Vec<u8> = Vec::new();
    let (mut s, mut last, mut count) = (0usize, None, 0i64);
    while count < max {
        match mt.try_at(s, p0).map_err(fail)? {
            Some(e) if Some(e) != last => {
                count += 1;
                mt.settle().map_err(fail)?;
                let before = out.len();
                replace(lua, &mt, &repl, &src, s, e, &mut out)?;
                m.budget.take((out.len() - before) as u64 / BYTES_PER_INSTRUCTION)?;
                m.room(lua, out.len())?;
                s = e;
                last = Some(e);
            }
            _ if s < src.len() => {
                out.push(src[s]);
                s += 1;
            }
            _ => break,
        }
        if anchor {
            break;
        }
    }
    mt.settle().map_err(fail)?;
    out.extend_from_slice(&src[s.min(src.len())..]);
    m.room(lua, out.len())?;
    Ok((lua.create_string(&out)?, count))
}

/// Appends what replaces the match `s..e`.
fn replace(
    lua: &Lua,
    mt: &Matcher,
    repl: &Repl,
    src: &[u8],
    s: usize,
    e: usize,
    out: &mut Vec<u8>,
) -> mlua::Result<()> {
    let fail = |f: Failure| mlua::Error::RuntimeError(f.to_string());
    let value = match repl {
        Repl::Text(r) => {
            let r = r.as_bytes();
            let mut i = 0;
            while i < r.len() {
                let c = r[i];
                i += 1;
                if c != b'%' {
                    out.push(c);
                    continue;
                }
                match r.get(i) {
                    Some(b'%') => out.push(b'%'),
                    Some(b'0') => out.extend_from_slice(&src[s..e]),
                    Some(d @ b'1'..=b'9') => match mt.capture((d - b'1') as usize, s, e).map_err(fail)? {
                        Capture::Text(a, b) => out.extend_from_slice(&src[a..b]),
                        Capture::Position(p) => out.extend_from_slice(p.to_string().as_bytes()),
                    },
                    _ => return Err(mlua::Error::RuntimeError("invalid use of '%' in replacement string".into())),
                }
                i += 1;
            }
            return Ok(());
        }
        Repl::Table(t) => t.get::<Value>(capture_value(lua, src, mt.capture(0, s, e).map_err(fail)?)?)?,
        Repl::Function(f) => {
            f.call::<Value>(MultiValue::from_iter(captures(lua, src, mt.captures(s, e, true).map_err(fail)?)?))?
        }
    };
    match value {
        Value::Nil | Value::Boolean(false) => out.extend_from_slice(&src[s..e]),
        v @ (Value::String(_) | Value::Integer(_) | Value::Number(_)) => {
            out.extend_from_slice(&lua.coerce_string(v)?.expect("a string or a number").as_bytes())
        }
        v => return Err(mlua::Error::RuntimeError(format!("invalid replacement value (a {})", v.type_name()))),
    }
    Ok(())
}
