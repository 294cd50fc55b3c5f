//! The `lua` engine: a script's `process(event)` for every event (the event
//! itself, read and written in place) and optionally `beat()`. A script's
//! tables are its instance's own, so every worker beats, unless the script
//! sets `beat_once = true` (a beat for the engine as a whole).

use vane_core::prelude::*;

use super::LuaConfig;
use super::state::Vm;

/// An engine written in Lua: `process(event)` and optionally `beat()`.
pub struct LuaEngine {
    vm: Vm,
    process: mlua::Function,
    beat: Option<mlua::Function>,
    beat_once: bool,
}

impl Engine for LuaEngine {
    fn process(&mut self, ev: Event, out: &mut Vec<Event>, _: &Context) -> Result<(), EngineError> {
        out.extend(self.vm.call_with_event(&self.process, "process", ev)?);
        Ok(())
    }

    fn beat(&mut self, out: &mut Vec<Event>, _: &Context) -> Result<(), EngineError> {
        if let Some(beat) = &self.beat {
            out.extend(self.vm.call(beat, "beat", mlua::Nil)?);
        }
        Ok(())
    }

    fn beat_each_worker(&self) -> bool {
        !self.beat_once
    }

    fn blocking(&self) -> bool {
        true
    }
}

impl Build for LuaEngine {
    type Config = LuaConfig;

    fn build(cfg: LuaConfig, ctx: &Context) -> Result<Self, BuildError> {
        let vm = Vm::new(&cfg, ctx, false)?;
        Ok(LuaEngine {
            process: vm.require("process")?,
            beat: vm.function("beat"),
            beat_once: vm.flag("beat_once"),
            vm,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::script;
    use super::*;
    use vane_core::ByteSize;
    use vane_core::testing::Harness;

    fn engine(body: &str) -> (tempfile::TempDir, Harness, LuaEngine) {
        let (d, cfg) = script(body);
        let h = Harness::new("e");
        let en = LuaEngine::build(cfg, h.context()).unwrap();
        (d, h, en)
    }

    #[test]
    fn a_script_gets_a_board_and_posts_to_its_flows() {
        const SCRIPT: &str = "local b = ctx.board{ name = 'Lua', prefix = 'l.', \
               template = 'title: L\\nwidgets:\\n  - { tag: n, variant: multivalue }\\n' }\n\
             function process(e)\n\
               b:post('n', { values = { { label = b.name, value = e.fields.value } } })\n\
               local ok, err = pcall(function() b:post('nope', {}) end)\n\
               e.description = b:flow('n') .. ' ' .. tostring(err)\n\
               return e\n\
             end\n";
        let (_d, cfg) = script(SCRIPT);
        // Without a board sink, the script's start says what is missing.
        let e = LuaEngine::build(cfg, Harness::new("e").context()).err().unwrap();
        assert!(e.to_string().contains("no board sink"), "{e}");
        let (_d, cfg) = script(SCRIPT);
        let h = Harness::new("e");
        let dir = tempfile::tempdir().unwrap();
        let boards = crate::board::set::BoardSet::new(dir.path().to_owned());
        assert!(h.context().offer_boards(boards.clone()));
        let mut en = LuaEngine::build(cfg, h.context()).unwrap();
        let out = h.process(&mut en, vec![Event::gauge("m", 3.5)]).unwrap();
        let said = out[0].description.clone().unwrap();
        assert!(said.starts_with("l.n ") && said.contains("no flow tagged \"nope\""), "{said}");
        assert!(vane_core::board::Boards::post(&*boards, "l.n", serde_json::json!({})), "the flow exists");
        let b = boards.snapshot("lua").unwrap();
        assert_eq!(b["owner"], "e");
    }

    #[test]
    fn an_engine_changes_drops_and_multiplies_keeping_order_and_types() {
        let (_d, h, mut en) = engine(
            "function process(e)\n\
               if e.fields.drop then return nil end\n\
               e.tags.env = 'prod'\n\
               if e.fields.twice then return { e, e } end\n\
               e.fields.u = e.fields.u + 1\n\
               return e\n\
             end\n",
        );
        let ev = Event::new("m").tag("z", "1").tag("a", "2").field("u", 5u64).field("f", 1.5);
        let inputs = vec![ev, Event::new("d").field("drop", true), Event::new("t").field("twice", true)];
        let out = h.process(&mut en, inputs).unwrap();
        let names: Vec<&str> = out.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, vec!["m", "t", "t"]);
        let tags: Vec<&str> = out[0].tags.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(tags, vec!["z", "a", "env"]);
        assert_eq!(out[0].get_field("u"), Some(&Value::Uint(6)));
        assert_eq!(out[0].get_field("f"), Some(&Value::Float(1.5)));
        assert_eq!(out[2].get_tag("env"), Some("prod"));
    }

    #[test]
    fn the_event_reads_and_writes_every_part_or_is_replaced() {
        let (_d, h, mut en) = engine(
            "kept = nil\n\
             function process(e)\n\
               local keys = {}\n\
               for k, v in pairs(e.tags) do keys[#keys + 1] = k .. '=' .. v end\n\
               table.sort(keys)\n\
               e.description = table.concat(keys, ',') .. ' ' .. e.name .. ' ' .. e.kind .. ' ' .. tostring(e.time)\n\
               e.name = e.name .. '_x'\n\
               e.state = 'warning'\n\
               e.tags.gone = nil\n\
               e.fields.s = 'text'\n\
               kept = { name = e.name, fields = { v = e.fields.value } }\n\
               return { e, { name = 'new', fields = { v = 1 } } }\n\
             end\n\
             function beat() return kept end\n",
        );
        let ev = Event::counter("c", 3).tag("b", "2").tag("gone", "1").at(7);
        let out = h.process(&mut en, vec![ev]).unwrap();
        assert_eq!(out[0].name, "c_x");
        assert_eq!(out[0].description.as_deref(), Some("b=2,gone=1 c counter 7"));
        assert_eq!(out[0].state, Some(State::Warning));
        assert_eq!(out[0].get_tag("gone"), None);
        assert_eq!(out[0].get_field("s"), Some(&Value::Str("text".into())));
        assert_eq!(out[1].name, "new");
        // What was copied into a table outlives the call.
        let kept = h.beat(&mut en).unwrap();
        assert_eq!((kept[0].name.as_str(), kept[0].get_field("v")), ("c_x", Some(&Value::Int(3))));
    }

    #[test]
    fn an_event_kept_after_its_call_cannot_be_used() {
        let (_d, h, mut en) = engine(
            "last = nil\n\
             function process(e)\n\
               if last then return { name = last.name } end\n\
               last = e\n\
               return nil\n\
             end\n",
        );
        // Dropped by the script, its handle kept: stale on the next call.
        assert_eq!(h.process(&mut en, vec![Event::gauge("a", 1)]).unwrap().len(), 0);
        let err = h.process(&mut en, vec![Event::gauge("b", 1)]).unwrap_err().to_string();
        assert!(err.contains("its call is over") && err.contains("copy what you want"), "{err}");
        assert!(err.contains("s.lua:3:"), "names the line: {err}");
    }

    #[test]
    fn the_sandbox_keeps_the_host_out_of_reach() {
        for (code, want) in [
            ("function process(e) os.execute('true') return e end", "attempt to call a nil value (field 'execute')"),
            ("function process(e) io.open('/etc/passwd') return e end", "attempt to index a nil value (global 'io')"),
            ("function process(e) require('os') return e end", "attempt to call a nil value (global 'require')"),
            (
                "function process(e) local f, err = load(string.dump(function() end)) error(err) end",
                "attempt to load a binary chunk",
            ),
        ] {
            let (_d, h, mut en) = engine(code);
            let err = h.process(&mut en, vec![Event::gauge("x", 1.0)]).unwrap_err().to_string();
            assert!(err.contains(want), "{code}: {err}");
            assert!(err.contains("s.lua:1:") || want.contains("binary"), "names file and line: {err}");
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
        let err = h.process(&mut en, vec![Event::gauge("loop", 1.0)]).unwrap_err().to_string();
        assert!(err.contains("instruction budget of 1000000 exceeded"), "{err}");
        let err = h.process(&mut en, vec![Event::gauge("hog", 1.0)]).unwrap_err().to_string();
        assert!(err.contains("memory") || err.contains("budget"), "{err}");
        assert_eq!(h.process(&mut en, vec![Event::gauge("fine", 1.0)]).unwrap().len(), 1);
    }

    #[test]
    fn lending_events_leaves_nothing_for_the_collector() {
        // 50,000 events through a view each: as full userdata with views,
        // finalizers fell behind the incremental collector (about 5 MB);
        // handles allocate nothing in Lua.
        let (_d, mut cfg) = script("function process(e)\n  e.tags.env = 'prod'\n  return e\nend\n");
        cfg.memory = ByteSize(1 << 20);
        let h = Harness::new("e");
        let mut en = LuaEngine::build(cfg, h.context()).unwrap();
        let mut out = Vec::new();
        for i in 0..50_000u64 {
            out.clear();
            en.process(Event::gauge("x", i), &mut out, h.context()).unwrap();
        }
        let used = en.vm.state.lua.used_memory();
        assert!(used < 512 << 10, "{used} bytes");
    }

    #[test]
    fn script_errors_name_file_and_line() {
        let (_d, h, mut en) = engine("function process(e)\n  return e.fields.nope.deeper\nend\n");
        let err = h.process(&mut en, vec![Event::gauge("x", 1.0)]).unwrap_err().to_string();
        assert!(err.contains("s.lua:2:"), "{err}");
        let (_d, cfg) = script("function process(e) return e end\nthis is not lua\n");
        let err = LuaEngine::build(cfg, h.context()).err().unwrap().to_string();
        assert!(err.contains("s.lua:2:"), "{err}");
    }
}
