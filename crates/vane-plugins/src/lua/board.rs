//! A board as a script holds it: `local b = ctx.board{name=, prefix=,
//! template=[[YAML]]}` gets or creates it (see `vane_core::board`), then
//! `b:post(tag, {value = 42})` posts to a flow by the template's tag and
//! returns at once; `b:flow(tag)` is the flow's full tag, `b.name` its name.

use mlua::{UserData, UserDataFields, UserDataMethods};
use vane_core::board::Board;

use super::convert::lua_to_json;

pub struct LuaBoard(pub Board);

impl UserData for LuaBoard {
    fn add_fields<F: UserDataFields<Self>>(fields: &mut F) {
        fields.add_field_method_get("name", |_, b| Ok(b.0.name().to_owned()));
    }

    fn add_methods<M: UserDataMethods<Self>>(methods: &mut M) {
        methods.add_method("post", |_, b, (tag, data): (String, mlua::Value)| {
            let data = lua_to_json(&data, 0).map_err(|e| mlua::Error::RuntimeError(format!("post {tag:?}: {e}")))?;
            b.0.post(&tag, data).map_err(|e| mlua::Error::RuntimeError(e.to_string()))
        });
        methods.add_method("flow", |_, b, tag: String| Ok(b.0.flow(&tag)));
    }
}
