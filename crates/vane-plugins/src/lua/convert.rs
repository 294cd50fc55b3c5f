//! What scripts return or emit, to events: nothing, one event or a list of
//! events, each a table (`{name=, fields={}, …}`) or an event received from
//! `process`. And the job's `settings` as Lua values.

use std::collections::BTreeMap;

use mlua::{Lua, Table, Value as Lv};
use vane_core::event::{Event, Kind, State};

use super::ScriptError;
use super::event::{SharedLent, field_value, tag_text};

/// JSON (a job's `settings`) as Lua values.
pub fn json_to_lua(lua: &Lua, v: &serde_json::Value) -> mlua::Result<Lv> {
    use serde_json::Value as J;
    Ok(match v {
        J::Null => Lv::Nil,
        J::Bool(b) => Lv::Boolean(*b),
        J::Number(n) => match n.as_i64() {
            Some(i) => Lv::Integer(i),
            None => Lv::Number(n.as_f64().unwrap_or(f64::NAN)),
        },
        J::String(s) => Lv::String(lua.create_string(s)?),
        J::Array(a) => {
            let t = lua.create_table()?;
            for (i, x) in a.iter().enumerate() {
                t.set(i + 1, json_to_lua(lua, x)?)?;
            }
            Lv::Table(t)
        }
        J::Object(o) => {
            let t = lua.create_table()?;
            for (k, x) in o {
                t.set(k.as_str(), json_to_lua(lua, x)?)?;
            }
            Lv::Table(t)
        }
    })
}

/// A Lua value as JSON (a flow's data): a table with keys 1..n is an
/// array, any other table an object; functions and the like are an error.
pub fn lua_to_json(v: &Lv, depth: usize) -> Result<serde_json::Value, ScriptError> {
    let fail = |m: String| Err(ScriptError(m));
    use serde_json::Value as J;
    if depth > 32 {
        return fail("nested more than 32 deep".into());
    }
    Ok(match v {
        Lv::Nil => J::Null,
        Lv::Boolean(b) => J::Bool(*b),
        Lv::Integer(i) => J::from(*i),
        Lv::Number(n) => serde_json::Number::from_f64(*n).map_or(J::Null, J::Number),
        Lv::String(s) => J::String(s.to_string_lossy()),
        Lv::Table(t) => {
            let n = t.raw_len();
            let pairs: Vec<(Lv, Lv)> = t.pairs::<Lv, Lv>().collect::<mlua::Result<_>>()?;
            if n > 0 && pairs.len() == n {
                let mut a = vec![J::Null; n];
                for (k, x) in &pairs {
                    let Lv::Integer(i) = k else { return fail("a table mixes a list and keys".into()) };
                    a[*i as usize - 1] = lua_to_json(x, depth + 1)?;
                }
                J::Array(a)
            } else {
                let mut o = serde_json::Map::new();
                for (k, x) in &pairs {
                    let key = match k {
                        Lv::String(s) => s.to_string_lossy(),
                        Lv::Integer(i) => i.to_string(),
                        other => return fail(format!("a {} cannot be a key", other.type_name())),
                    };
                    o.insert(key, lua_to_json(x, depth + 1)?);
                }
                J::Object(o)
            }
        }
        other => return fail(format!("a {} is not data", other.type_name())),
    })
}

/// Nothing, one event, or a list of events. An event lent to the call is
/// moved out (twice in a list: the second is a copy).
pub fn events_from_lua(v: Lv, lent: &SharedLent) -> Result<Vec<Event>, ScriptError> {
    let mut taken: Vec<(usize, usize)> = Vec::new();
    let take = |h: mlua::LightUserData| lent.lock().expect("not poisoned").take(h);
    let mut out = Vec::new();
    match v {
        Lv::Nil => {}
        Lv::Table(t) if t.contains_key("name")? => out.push(event_from_table(&t)?),
        Lv::Table(t) => {
            for item in t.sequence_values::<Lv>() {
                match item? {
                    Lv::Table(t) => out.push(event_from_table(&t)?),
                    Lv::LightUserData(h) => {
                        let at = h.0 as usize;
                        match taken.iter().find(|(p, _)| *p == at) {
                            Some(&(_, i)) => out.push(out[i].clone()),
                            None => {
                                taken.push((at, out.len()));
                                out.push(take(h)?);
                            }
                        }
                    }
                    other => {
                        return Err(ScriptError(format!("a list item is a {}, not an event", other.type_name())));
                    }
                }
            }
        }
        Lv::LightUserData(h) => out.push(take(h)?),
        other => {
            return Err(ScriptError(format!("a {} instead of an event, a list of events or nil", other.type_name())));
        }
    }
    Ok(out)
}

/// An event made by a script as a table; tags and fields in name order.
fn event_from_table(t: &Table) -> Result<Event, ScriptError> {
    let get_str = |k: &str| -> Result<Option<String>, ScriptError> {
        match t.get::<Lv>(k)? {
            Lv::Nil => Ok(None),
            Lv::String(s) => Ok(Some(s.to_str()?.to_owned())),
            other => Err(ScriptError(format!("`{k}` is a {}, not a string", other.type_name()))),
        }
    };
    let name = get_str("name")?.ok_or_else(|| ScriptError("an event needs a `name`".into()))?;
    let mut e = Event::new(name);
    e.time = match t.get::<Lv>("time")? {
        Lv::Integer(i) => i,
        Lv::Number(n) => n as i64,
        _ => vane_core::event::NO_TIME,
    };
    e.host = get_str("host")?.unwrap_or_default().into();
    if let Ok(tags) = t.get::<Table>("tags") {
        let mut m = BTreeMap::new();
        for pair in tags.pairs::<String, Lv>() {
            let (k, v) = pair?;
            let v = tag_text(&k, &v)?;
            m.insert(k, v);
        }
        e.tags = m.into_iter().map(|(k, v)| (k.into(), v.into())).collect();
    }
    if let Ok(fields) = t.get::<Table>("fields") {
        let mut m = BTreeMap::new();
        for pair in fields.pairs::<String, Lv>() {
            let (k, v) = pair?;
            let v = field_value(&k, &v, false)?;
            m.insert(k, v);
        }
        e.fields = m.into_iter().map(|(k, v)| (k.into(), v)).collect();
    }
    if let Some(k) = get_str("kind")? {
        e.kind = Kind::parse(&k).ok_or_else(|| ScriptError(format!("unknown kind {k:?}")))?;
    }
    if let Some(s) = get_str("state")? {
        e.state = Some(State::parse(&s).ok_or_else(|| ScriptError(format!("unknown state {s:?}")))?);
    }
    e.description = get_str("description")?;
    e.ttl = t.get::<Option<f64>>("ttl")?;
    Ok(e)
}
