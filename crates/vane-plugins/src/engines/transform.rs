//! Rewrites events: name prefix (Duct's service prefix), renames, tags and host.

use std::collections::BTreeMap;

use serde::Deserialize;
use vane_core::prelude::*;

/// Settings of the `transform` engine; each step is optional.
#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
pub struct TransformConfig {
    /// Event names to rename: `{old: new}`; applied before the prefix.
    #[serde(default)]
    pub rename: BTreeMap<String, String>,
    /// Text put in front of every event name.
    #[serde(default)]
    pub prefix: String,
    /// Tags to set (replacing tags of the same name).
    #[serde(default)]
    pub add_tags: BTreeMap<String, String>,
    /// Tags to remove.
    #[serde(default)]
    pub remove_tags: Vec<String>,
    /// Host to set on every event.
    pub host: Option<String>,
}

pub struct Transform {
    cfg: TransformConfig,
}

impl Engine for Transform {
    type Config = TransformConfig;

    fn build(cfg: TransformConfig, _: &Context) -> Result<Self> {
        Ok(Transform { cfg })
    }

    fn process(&mut self, mut ev: Event, out: &mut Vec<Event>) -> Result<()> {
        if let Some(new) = self.cfg.rename.get(&ev.name) {
            ev.name = new.clone();
        }
        if !self.cfg.prefix.is_empty() {
            ev.name.insert_str(0, &self.cfg.prefix);
        }
        if !self.cfg.remove_tags.is_empty() {
            ev.tags.retain(|(k, _)| !self.cfg.remove_tags.contains(k));
        }
        for (k, v) in &self.cfg.add_tags {
            ev.set_tag(k, v.clone());
        }
        if let Some(h) = &self.cfg.host {
            ev.host = h.clone();
        }
        out.push(ev);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vane_core::testing::Harness;

    #[test]
    fn renames_prefixes_and_tags() {
        let h = Harness::new("t");
        let mut t = Transform::build(
            TransformConfig {
                rename: [("load".to_owned(), "system_load".to_owned())].into(),
                prefix: "web.".into(),
                add_tags: [("dc".to_owned(), "par1".to_owned())].into(),
                remove_tags: vec!["tmp".into()],
                host: Some("web-01".into()),
            },
            h.context(),
        )
        .unwrap();
        let mut out = Vec::new();
        let ev = Event::gauge("load", 1.0).tag("tmp", "x").tag("dc", "old");
        t.process(ev, &mut out).unwrap();
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].name, "web.system_load");
        assert_eq!(out[0].tags, vec![("dc".to_owned(), "par1".to_owned())]);
        assert_eq!(out[0].host, "web-01");
    }
}
