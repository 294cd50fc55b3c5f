//! Rewrites events: name prefix (Duct's service prefix), renames, tags,
//! host, and unit conversion of fields.

use std::collections::BTreeMap;

use serde::Deserialize;
use vane_core::prelude::*;

/// Settings of the `transform` engine; each step is optional.
#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
pub struct Transform {
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
    /// Fields to convert: `{latency: {from: ms, to: s}}`. Units: ns us ms s m
    /// h d (time); B KB MB GB TB KiB MiB GiB TiB (bytes); b Kb Mb Gb (bits);
    /// percent and ratio.
    #[serde(default)]
    pub convert: BTreeMap<String, Conversion>,
}

/// A unit a field can be converted from or to.
#[derive(Deserialize, Debug, Clone, Copy, PartialEq)]
pub enum Unit {
    #[serde(rename = "ns")]
    Ns,
    #[serde(rename = "us")]
    Us,
    #[serde(rename = "ms")]
    Ms,
    #[serde(rename = "s")]
    S,
    #[serde(rename = "m")]
    Min,
    #[serde(rename = "h")]
    H,
    #[serde(rename = "d")]
    D,
    #[serde(rename = "B")]
    B,
    #[serde(rename = "KB")]
    Kb,
    #[serde(rename = "MB")]
    Mb,
    #[serde(rename = "GB")]
    Gb,
    #[serde(rename = "TB")]
    Tb,
    #[serde(rename = "KiB")]
    Kib,
    #[serde(rename = "MiB")]
    Mib,
    #[serde(rename = "GiB")]
    Gib,
    #[serde(rename = "TiB")]
    Tib,
    #[serde(rename = "b")]
    Bit,
    #[serde(rename = "Kb")]
    Kbit,
    #[serde(rename = "Mb")]
    Mbit,
    #[serde(rename = "Gb")]
    Gbit,
    #[serde(rename = "percent")]
    Percent,
    #[serde(rename = "ratio")]
    Ratio,
}

impl Unit {
    /// (family, size of the unit in the family's base unit)
    fn scale(self) -> (&'static str, f64) {
        use Unit::*;
        match self {
            Ns => ("time", 1e-9),
            Us => ("time", 1e-6),
            Ms => ("time", 1e-3),
            S => ("time", 1.0),
            Min => ("time", 60.0),
            H => ("time", 3600.0),
            D => ("time", 86400.0),
            B => ("data", 8.0),
            Kb => ("data", 8e3),
            Mb => ("data", 8e6),
            Gb => ("data", 8e9),
            Tb => ("data", 8e12),
            Kib => ("data", 8.0 * 1024.0),
            Mib => ("data", 8.0 * 1024.0 * 1024.0),
            Gib => ("data", 8.0 * 1024.0 * 1024.0 * 1024.0),
            Tib => ("data", 8.0 * 1024f64.powi(4)),
            Bit => ("data", 1.0),
            Kbit => ("data", 1e3),
            Mbit => ("data", 1e6),
            Gbit => ("data", 1e9),
            Percent => ("fraction", 0.01),
            Ratio => ("fraction", 1.0),
        }
    }
}

/// One field's conversion; both units must measure the same thing.
#[derive(Deserialize, Debug, Clone, Copy)]
#[serde(try_from = "RawConversion")]
pub struct Conversion {
    pub factor: f64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConversion {
    from: Unit,
    to: Unit,
}

impl TryFrom<RawConversion> for Conversion {
    type Error = vane_core::Invalid;

    fn try_from(r: RawConversion) -> std::result::Result<Self, vane_core::Invalid> {
        let ((ff, fs), (tf, ts)) = (r.from.scale(), r.to.scale());
        if ff != tf {
            return Err(format!("cannot convert {ff} ({:?}) to {tf} ({:?})", r.from, r.to).into());
        }
        Ok(Conversion { factor: fs / ts })
    }
}

impl Engine for Transform {
    fn process(&mut self, mut ev: Event, out: &mut Vec<Event>, _: &Context) -> Result<(), EngineError> {
        if let Some(new) = self.rename.get(ev.name.as_str()) {
            ev.name = new.as_str().into();
        }
        if !self.prefix.is_empty() {
            ev.name.insert_str(0, &self.prefix);
        }
        if !self.remove_tags.is_empty() {
            ev.tags.retain(|(k, _)| !self.remove_tags.iter().any(|r| r == k));
        }
        for (k, v) in &self.add_tags {
            ev.set_tag(k, v.clone());
        }
        if let Some(h) = &self.host {
            ev.host = h.as_str().into();
        }
        for (k, v) in ev.fields.iter_mut() {
            if let Some(c) = self.convert.get(k.as_str())
                && let Some(x) = v.as_f64().filter(|_| !matches!(v, Value::Bool(_)))
            {
                *v = Value::Float(x * c.factor);
            }
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
        let config = "rename: { load: system_load }\nprefix: web.\nadd_tags: { dc: par1 }\n\
                      remove_tags: [tmp]\nhost: web-01\nconvert: { latency: { from: ms, to: s } }";
        let (h, mut t) = Harness::engine(&crate::registry(), "transform", config).unwrap();
        let ev = Event::gauge("load", 1.0).tag("tmp", "x").tag("dc", "old").field("latency", 250i64);
        let out = h.process(&mut *t, vec![ev]).unwrap();
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].name, "web.system_load");
        assert_eq!(out[0].tags, vec![("dc".into(), "par1".into())]);
        assert_eq!(out[0].host, "web-01");
        assert_eq!(out[0].get_field("latency"), Some(&Value::Float(0.25)));
        let bad = Harness::engine(&crate::registry(), "transform", "convert: { x: { from: ms, to: MB } }");
        assert!(bad.err().unwrap().to_string().contains("cannot convert"));
    }

    #[test]
    fn conversions_check_their_units() {
        let ok = |from, to| Conversion::try_from(RawConversion { from, to });
        assert_eq!(ok(Unit::Mib, Unit::B).unwrap().factor, 1_048_576.0);
        assert_eq!(ok(Unit::B, Unit::Bit).unwrap().factor, 8.0);
        assert_eq!(ok(Unit::Percent, Unit::Ratio).unwrap().factor, 0.01);
        assert!(ok(Unit::Ms, Unit::Mb).is_err());
    }
}
