//! The `lua` source: a script's `collect(ctx)`, polled on the job's
//! interval, in a state shared with other jobs running the same script.

use vane_core::prelude::*;

use super::LuaConfig;
use super::state::Vm;

/// A source written in Lua: `collect(ctx)`.
pub struct LuaSource {
    pub(crate) vm: Vm,
    collect: mlua::Function,
}

impl Source for LuaSource {
    async fn poll(&mut self, _: &Context) -> Result<Vec<Event>> {
        let ctx: mlua::Value = self.vm.env.get("ctx").map_err(super::ScriptError::from)?;
        Ok(self.vm.call(&self.collect, "collect", ctx)?)
    }
}

impl Build for LuaSource {
    type Config = LuaConfig;

    fn build(cfg: LuaConfig, ctx: &Context) -> Result<Self, BuildError> {
        let vm = Vm::new(&cfg, ctx, true)?;
        Ok(LuaSource { collect: vm.require("collect")?, vm })
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::script;
    use super::*;
    use vane_core::testing::Harness;

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
}
