//! The event an engine script's `process(event)` receives: the event itself
//! as a userdata, read and written in place, lazily. `event.name`,
//! `event.tags.env = 'prod'`, `event.fields.value`, `pairs(event.tags)` work
//! as on a table, but only what the script touches is converted, and the
//! tags' and fields' order and types are kept (an unsigned field written
//! with a non-negative integer stays unsigned).
//!
//! Returning the event passes it on; after that it is gone from the script
//! (reading it again is an error: keep `event:copy()` to use it later).

use mlua::{AnyUserData, Lua, MetaMethod, UserData, UserDataFields, UserDataMethods, Value as Lv};
use vane_core::event::{Event, Kind, State, Value};

/// An event lent to a script; `None` once passed on.
pub struct LuaEvent(pub Option<Event>);

fn gone() -> mlua::Error {
    mlua::Error::RuntimeError(
        "this event was passed on already (keep `event:copy()` to use it later)".into(),
    )
}

impl LuaEvent {
    fn get(&self) -> mlua::Result<&Event> {
        self.0.as_ref().ok_or_else(gone)
    }

    fn get_mut(&mut self) -> mlua::Result<&mut Event> {
        self.0.as_mut().ok_or_else(gone)
    }

    /// Changes the event, unless it was passed on.
    fn edit(&mut self, f: impl FnOnce(&mut Event)) -> mlua::Result<()> {
        f(self.get_mut()?);
        Ok(())
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

fn opt_str(lua: &Lua, s: Option<&str>) -> mlua::Result<Lv> {
    s.map_or(Ok(Lv::Nil), |s| lua.create_string(s).map(Lv::String))
}

impl UserData for LuaEvent {
    fn add_fields<F: UserDataFields<Self>>(f: &mut F) {
        f.add_field_method_get("name", |lua, this| lua.create_string(&this.get()?.name));
        f.add_field_method_set("name", |_, this, v: String| this.edit(|e| e.name = v));
        f.add_field_method_get("time", |_, this| Ok(this.get()?.time));
        f.add_field_method_set("time", |_, this, v: i64| this.edit(|e| e.time = v));
        f.add_field_method_get("host", |lua, this| lua.create_string(&this.get()?.host));
        f.add_field_method_set("host", |_, this, v: String| this.edit(|e| e.host = v));
        f.add_field_method_get("kind", |_, this| Ok(this.get()?.kind.as_str()));
        f.add_field_method_set("kind", |_, this, v: String| {
            let k = Kind::parse(&v)
                .ok_or_else(|| mlua::Error::RuntimeError(format!("unknown kind {v:?}")))?;
            this.edit(|e| e.kind = k)
        });
        f.add_field_method_get("state", |_, this| Ok(this.get()?.state.map(State::as_str)));
        f.add_field_method_set("state", |_, this, v: Option<String>| {
            let s = match v {
                None => None,
                Some(v) => Some(
                    State::parse(&v)
                        .ok_or_else(|| mlua::Error::RuntimeError(format!("unknown state {v:?}")))?,
                ),
            };
            this.edit(|e| e.state = s)
        });
        f.add_field_method_get("description", |lua, this| {
            opt_str(lua, this.get()?.description.as_deref())
        });
        f.add_field_method_set("description", |_, this, v: Option<String>| {
            this.edit(|e| e.description = v)
        });
        f.add_field_method_get("ttl", |_, this| Ok(this.get()?.ttl));
        f.add_field_method_set("ttl", |_, this, v: Option<f64>| this.edit(|e| e.ttl = v));
        f.add_field_function_get("tags", |lua, ud| lua.create_userdata(Tags(ud)));
        f.add_field_function_get("fields", |lua, ud| lua.create_userdata(Fields(ud)));
        f.add_field_method_set("tags", |_, this, t: mlua::Table| {
            let mut tags = Vec::new();
            for pair in t.pairs::<String, Lv>() {
                let (k, v) = pair?;
                let v = tag_text(&k, &v)?;
                tags.push((k, v));
            }
            tags.sort();
            this.edit(|e| e.tags = tags)
        });
        f.add_field_method_set("fields", |_, this, t: mlua::Table| {
            let mut fields = Vec::new();
            for pair in t.pairs::<String, Lv>() {
                let (k, v) = pair?;
                let v = field_value(&k, &v, false)?;
                fields.push((k, v));
            }
            fields.sort_by(|a, b| a.0.cmp(&b.0));
            this.edit(|e| e.fields = fields)
        });
    }

    fn add_methods<M: UserDataMethods<Self>>(m: &mut M) {
        m.add_method("copy", |_, this, ()| {
            Ok(LuaEvent(Some(this.get()?.clone())))
        });
    }
}

/// `event.tags`: reads and writes the event's tags in place.
struct Tags(AnyUserData);

impl UserData for Tags {
    fn add_methods<M: UserDataMethods<Self>>(m: &mut M) {
        m.add_meta_method(MetaMethod::Index, |lua, this, key: String| {
            let e = this.0.borrow::<LuaEvent>()?;
            opt_str(lua, e.get()?.get_tag(&key))
        });
        m.add_meta_method(MetaMethod::NewIndex, |_, this, (key, v): (String, Lv)| {
            let mut e = this.0.borrow_mut::<LuaEvent>()?;
            let tags = &mut e.get_mut()?.tags;
            let at = tags.iter().position(|(k, _)| *k == key);
            match (at, v) {
                (Some(i), Lv::Nil) => {
                    tags.remove(i);
                }
                (None, Lv::Nil) => {}
                (Some(i), v) => tags[i].1 = tag_text(&key, &v)?,
                (None, v) => {
                    let v = tag_text(&key, &v)?;
                    tags.push((key, v));
                }
            }
            Ok(())
        });
        m.add_meta_method(MetaMethod::Pairs, |lua, this, ()| {
            let e = this.0.borrow::<LuaEvent>()?;
            let t = lua.create_table()?;
            for (k, v) in &e.get()?.tags {
                t.set(k.as_str(), v.as_str())?;
            }
            let next: mlua::Function = lua.globals().get("next")?;
            Ok((next, t, Lv::Nil))
        });
    }
}

/// `event.fields`: reads and writes the event's fields in place.
struct Fields(AnyUserData);

impl UserData for Fields {
    fn add_methods<M: UserDataMethods<Self>>(m: &mut M) {
        m.add_meta_method(MetaMethod::Index, |lua, this, key: String| {
            let e = this.0.borrow::<LuaEvent>()?;
            match e.get()?.get_field(&key) {
                Some(v) => field_to_lua(lua, v),
                None => Ok(Lv::Nil),
            }
        });
        m.add_meta_method(MetaMethod::NewIndex, |_, this, (key, v): (String, Lv)| {
            let mut e = this.0.borrow_mut::<LuaEvent>()?;
            let fields = &mut e.get_mut()?.fields;
            let at = fields.iter().position(|(k, _)| *k == key);
            match (at, v) {
                (Some(i), Lv::Nil) => {
                    fields.remove(i);
                }
                (None, Lv::Nil) => {}
                (Some(i), v) => {
                    let was_uint = matches!(fields[i].1, Value::Uint(_));
                    fields[i].1 = field_value(&key, &v, was_uint)?;
                }
                (None, v) => {
                    let v = field_value(&key, &v, false)?;
                    fields.push((key, v));
                }
            }
            Ok(())
        });
        m.add_meta_method(MetaMethod::Pairs, |lua, this, ()| {
            let e = this.0.borrow::<LuaEvent>()?;
            let t = lua.create_table()?;
            for (k, v) in &e.get()?.fields {
                t.set(k.as_str(), field_to_lua(lua, v)?)?;
            }
            let next: mlua::Function = lua.globals().get("next")?;
            Ok((next, t, Lv::Nil))
        });
    }
}
