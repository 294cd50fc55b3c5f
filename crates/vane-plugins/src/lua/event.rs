//! The event an engine script's `process(event)` receives: the event itself,
//! lent to the call and read and written in place, lazily. `event.name`,
//! `event.tags.env = 'prod'`, `event.fields.value`, `pairs(event.tags)` work
//! as on a table, but only what the script touches is converted, and the
//! tags' and fields' order and types are kept (an unsigned field written
//! with a non-negative integer stays unsigned).
//!
//! The script sees a handle (a light userdata: no allocation, nothing for
//! Lua's collector), which names the event's slot and the call it was lent
//! to. Returning it passes the event on; once the call is over the handle
//! is stale, and using it is an error: a script that wants to keep values
//! copies them into a table.

use std::sync::{Arc, Mutex};

use mlua::{LightUserData, Lua, Value as Lv};
use vane_core::event::{Event, Kind, NO_TIME, State, Text, Value};

use super::ScriptError;

/// The events lent to the running call, by slot.
#[derive(Default)]
pub struct Lent {
    call: u32,
    slots: Vec<Option<Event>>,
}

pub type SharedLent = Arc<Mutex<Lent>>;

/// What a handle points at.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Part {
    Event = 1,
    Tags = 2,
    Fields = 3,
}

/// A handle: the part (2 bits), the call (30 bits), the slot (32 bits).
fn handle(part: Part, call: u32, slot: u32) -> LightUserData {
    let bits = ((part as u64) << 62) | (u64::from(call & 0x3fff_ffff) << 32) | u64::from(slot);
    LightUserData(bits as usize as *mut std::ffi::c_void)
}

fn decode(h: LightUserData) -> Option<(Part, u32, u32)> {
    let bits = h.0 as usize as u64;
    let part = match bits >> 62 {
        1 => Part::Event,
        2 => Part::Tags,
        3 => Part::Fields,
        _ => return None,
    };
    Some((part, ((bits >> 32) & 0x3fff_ffff) as u32, bits as u32))
}

fn stale() -> mlua::Error {
    mlua::Error::RuntimeError(
        "this event was passed on or its call is over (copy what you want to keep into a table)".into(),
    )
}

impl Lent {
    /// Starts a call lending `event`: its handle.
    pub fn lend(&mut self, event: Event) -> LightUserData {
        self.call = self.call.wrapping_add(1) & 0x3fff_ffff;
        self.slots.clear();
        self.slots.push(Some(event));
        handle(Part::Event, self.call, 0)
    }

    /// Ends the call: what was lent and not passed on is dropped.
    pub fn end_call(&mut self) {
        self.call = self.call.wrapping_add(1) & 0x3fff_ffff;
        self.slots.clear();
    }

    fn slot(&mut self, h: LightUserData) -> mlua::Result<(Part, &mut Event)> {
        let (part, call, slot) = decode(h).ok_or_else(stale)?;
        match self.slots.get_mut(slot as usize) {
            Some(Some(e)) if call == self.call => Ok((part, e)),
            _ => Err(stale()),
        }
    }

    /// Moves a returned event out (for [`super::convert::events_from_lua`]).
    pub fn take(&mut self, h: LightUserData) -> Result<Event, ScriptError> {
        match decode(h) {
            Some((Part::Event, call, slot)) if call == self.call => self
                .slots
                .get_mut(slot as usize)
                .and_then(Option::take)
                .ok_or_else(|| ScriptError("an event that was passed on already".into())),
            Some((Part::Event, ..)) => Err(ScriptError(stale().to_string())),
            _ => Err(ScriptError("the tags or fields of an event instead of an event".into())),
        }
    }
}

fn bad(what: &str, v: &Lv) -> mlua::Error {
    mlua::Error::RuntimeError(format!("{what} cannot be a {}", v.type_name()))
}

/// A tag value from Lua: strings, and numbers and booleans as text.
pub fn tag_text(key: &str, v: &Lv) -> mlua::Result<String> {
    Ok(match v {
        Lv::String(s) => s.to_str()?.to_owned(),
        Lv::Integer(i) => i.to_string(),
        Lv::Number(n) => n.to_string(),
        Lv::Boolean(b) => b.to_string(),
        other => return Err(bad(&format!("tag `{key}`"), other)),
    })
}

/// A field value from Lua; `was_uint` keeps an unsigned field unsigned.
pub fn field_value(key: &str, v: &Lv, was_uint: bool) -> mlua::Result<Value> {
    Ok(match v {
        Lv::Integer(i) if was_uint && *i >= 0 => Value::Uint(*i as u64),
        Lv::Integer(i) => Value::Int(*i),
        Lv::Number(n) => Value::Float(*n),
        Lv::Boolean(b) => Value::Bool(*b),
        Lv::String(s) => Value::Str(s.to_str()?.to_owned()),
        other => return Err(bad(&format!("field `{key}`"), other)),
    })
}

fn field_to_lua(lua: &Lua, v: &Value) -> mlua::Result<Lv> {
    Ok(match v {
        Value::Float(f) => Lv::Number(*f),
        Value::Int(i) => Lv::Integer(*i),
        Value::Uint(u) => match i64::try_from(*u) {
            Ok(i) => Lv::Integer(i),
            Err(_) => Lv::Number(*u as f64),
        },
        Value::Bool(b) => Lv::Boolean(*b),
        Value::Str(s) => Lv::String(lua.create_string(s)?),
    })
}

fn text(lua: &Lua, s: Option<&str>) -> mlua::Result<Lv> {
    s.map_or(Ok(Lv::Nil), |s| lua.create_string(s).map(Lv::String))
}

/// `event.KEY`
fn read(lua: &Lua, part: Part, call: u32, slot: u32, e: &Event, key: &str) -> mlua::Result<Lv> {
    match part {
        Part::Tags => return text(lua, e.get_tag(key)),
        Part::Fields => return e.get_field(key).map_or(Ok(Lv::Nil), |v| field_to_lua(lua, v)),
        Part::Event => {}
    }
    Ok(match key {
        "name" => Lv::String(lua.create_string(&e.name)?),
        "time" if e.time == NO_TIME => Lv::Nil,
        "time" => Lv::Integer(e.time),
        "host" => Lv::String(lua.create_string(&e.host)?),
        "kind" => Lv::String(lua.create_string(e.kind.as_str())?),
        "state" => text(lua, e.state.map(State::as_str))?,
        "description" => text(lua, e.description.as_deref())?,
        "ttl" => e.ttl.map_or(Lv::Nil, Lv::Number),
        "tags" => Lv::LightUserData(handle(Part::Tags, call, slot)),
        "fields" => Lv::LightUserData(handle(Part::Fields, call, slot)),
        _ => Lv::Nil,
    })
}

/// `event.KEY = v` (keys arrive as Rust strings: reading them off Lua's
/// stack is cheaper than holding a reference to the Lua string)
fn write(part: Part, e: &mut Event, key: String, v: Lv) -> mlua::Result<()> {
    let key = key.as_str();
    let unknown = |what: &str, x: &str| mlua::Error::RuntimeError(format!("unknown {what} {x:?}"));
    match part {
        Part::Tags => {
            let at = e.tags.iter().position(|(k, _)| k == key);
            match (at, v) {
                (Some(i), Lv::Nil) => drop(e.tags.remove(i)),
                (None, Lv::Nil) => {}
                (Some(i), v) => e.tags[i].1 = tag_text(key, &v)?.into(),
                (None, v) => {
                    let v = tag_text(key, &v)?;
                    e.tags.push((key.into(), v.into()))
                }
            }
        }
        Part::Fields => {
            let at = e.fields.iter().position(|(k, _)| k == key);
            match (at, v) {
                (Some(i), Lv::Nil) => drop(e.fields.remove(i)),
                (None, Lv::Nil) => {}
                (Some(i), v) => {
                    let was_uint = matches!(e.fields[i].1, Value::Uint(_));
                    e.fields[i].1 = field_value(key, &v, was_uint)?;
                }
                (None, v) => e.fields.push((key.into(), field_value(key, &v, false)?)),
            }
        }
        Part::Event => match (key, v) {
            ("name", Lv::String(s)) => e.name = Text::from(&*s.to_str()?),
            ("host", Lv::String(s)) => e.host = Text::from(&*s.to_str()?),
            ("time", Lv::Integer(t)) => e.time = t,
            ("time", Lv::Number(t)) => e.time = t as i64,
            ("time", Lv::Nil) => e.time = NO_TIME,
            ("kind", Lv::String(s)) => {
                let s = s.to_str()?;
                e.kind = Kind::parse(&s).ok_or_else(|| unknown("kind", &s))?;
            }
            ("state", Lv::Nil) => e.state = None,
            ("state", Lv::String(s)) => {
                let s = s.to_str()?;
                e.state = Some(State::parse(&s).ok_or_else(|| unknown("state", &s))?);
            }
            ("description", Lv::Nil) => e.description = None,
            ("description", Lv::String(s)) => e.description = Some(s.to_str()?.to_owned()),
            ("ttl", Lv::Nil) => e.ttl = None,
            ("ttl", Lv::Number(t)) => e.ttl = Some(t),
            ("ttl", Lv::Integer(t)) => e.ttl = Some(t as f64),
            ("tags", Lv::Table(t)) => {
                let mut tags = Vec::new();
                for pair in t.pairs::<String, Lv>() {
                    let (k, v) = pair?;
                    let v = tag_text(&k, &v)?;
                    tags.push((k.into(), v.into()));
                }
                tags.sort();
                e.tags = tags;
            }
            ("fields", Lv::Table(t)) => {
                let mut fields: Vec<(Text, Value)> = Vec::new();
                for pair in t.pairs::<String, Lv>() {
                    let (k, v) = pair?;
                    let v = field_value(&k, &v, false)?;
                    fields.push((k.into(), v));
                }
                fields.sort_by(|a, b| a.0.cmp(&b.0));
                e.fields = fields;
            }
            (k, v) => return Err(bad(&format!("`{k}` of an event"), &v)),
        },
    }
    Ok(())
}

/// Gives handles their behaviour: the metatable of light userdata in `lua`.
pub fn install(lua: &Lua, lent: &SharedLent) -> mlua::Result<()> {
    let mt = lua.create_table()?;
    let l = lent.clone();
    let index = lua.create_function(move |lua, (h, key): (LightUserData, String)| {
        let mut lent = l.lock().expect("not poisoned");
        let (part, e) = lent.slot(h)?;
        let (_, call, slot) = decode(h).ok_or_else(stale)?;
        read(lua, part, call, slot, e, &key)
    })?;
    let l = lent.clone();
    let newindex = lua.create_function(move |_, (h, key, v): (LightUserData, String, Lv)| {
        let mut lent = l.lock().expect("not poisoned");
        let (part, e) = lent.slot(h)?;
        write(part, e, key, v)
    })?;
    let l = lent.clone();
    let pairs = lua.create_function(move |lua, h: LightUserData| {
        let mut lent = l.lock().expect("not poisoned");
        let (part, e) = lent.slot(h)?;
        let t = lua.create_table()?;
        match part {
            Part::Tags => e.tags.iter().try_for_each(|(k, v)| t.set(k.as_str(), v.as_str()))?,
            Part::Fields => e.fields.iter().try_for_each(|(k, v)| t.set(k.as_str(), field_to_lua(lua, v)?))?,
            Part::Event => {
                for k in ["name", "time", "host", "kind", "state", "description", "ttl"] {
                    t.set(k, read(lua, part, 0, 0, e, k)?)?;
                }
            }
        }
        let next: mlua::Function = lua.globals().get("next")?;
        Ok((next, t, Lv::Nil))
    })?;
    mt.set("__index", index)?;
    mt.set("__newindex", newindex)?;
    mt.set("__pairs", pairs)?;
    mt.set("__name", "event")?;
    lua.set_type_metatable::<LightUserData>(Some(mt));
    Ok(())
}
