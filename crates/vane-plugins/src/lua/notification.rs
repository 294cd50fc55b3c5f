//! A Lua script's `notification(msg)`: the OpenStack notifications that no
//! meter of an `amqp` source names, made into samples by a script (what
//! Ceilometer's notification plugins did in Python). `msg` is the
//! notification out of oslo's envelope, as a table (`msg.event_type`,
//! `msg.publisher_id`, `msg.payload.…`); the script returns an event, a
//! list of them, or nil when the notification is not its. An error, or a
//! spent budget, refuses the message with the script's reason.

use serde_json::Value as Json;
use vane_core::prelude::*;

use super::LuaConfig;
use super::state::Vm;

pub struct LuaNotifications {
    vm: Vm,
    notification: mlua::Function,
}

impl std::fmt::Debug for LuaNotifications {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "LuaNotifications({})", self.vm.script)
    }
}

impl LuaNotifications {
    /// Loads the script; it must define `notification`.
    pub fn new(cfg: &LuaConfig, ctx: &Context) -> Result<LuaNotifications, BuildError> {
        let vm = Vm::new(cfg, ctx, false)?;
        Ok(LuaNotifications { notification: vm.require("notification")?, vm })
    }

    /// What the script makes of one notification: nothing when it is not its.
    pub fn samples(&self, n: &Json) -> Result<Vec<Event>, String> {
        vane_core::blocking::run(|| self.vm.call_with_json(&self.notification, "notification", n))
            .map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::script;
    use super::*;
    use vane_core::testing::Harness;

    #[test]
    fn a_script_makes_samples_of_a_notification_passes_or_refuses_it() {
        let (_d, cfg) = script(
            "function notification(msg)\n\
               if msg.event_type ~= 'image.upload' then return nil end\n\
               if not msg.payload.size then error('no size') end\n\
               return { name = 'image.size', host = msg.publisher_id, fields = { value = msg.payload.size },\n\
                        tags = { resource_id = msg.payload.id } }\n\
             end\n",
        );
        let h = Harness::new("n");
        let lua = LuaNotifications::new(&cfg, h.context()).unwrap();
        let msg = serde_json::json!({ "event_type": "image.upload", "publisher_id": "glance", "payload": { "id": "img-1", "size": 4096 } });
        let evs = lua.samples(&msg).unwrap();
        assert_eq!(evs.len(), 1);
        assert_eq!(
            (evs[0].name.as_str(), evs[0].host.as_str(), evs[0].get_tag("resource_id")),
            ("image.size", "glance", Some("img-1"))
        );
        assert_eq!(evs[0].get_field("value").and_then(Value::as_f64), Some(4096.0));
        assert!(lua.samples(&serde_json::json!({ "event_type": "volume.create" })).unwrap().is_empty());
        let err = lua.samples(&serde_json::json!({ "event_type": "image.upload", "payload": {} })).unwrap_err();
        assert!(err.contains("no size"), "{err}");
    }
}
