//! OpenStack notifications turned into samples, as Ceilometer's
//! notification plugins do, by declarative meters modelled on its
//! `meters.yaml`.
//!
//! A notification arrives in oslo.messaging's envelope
//! (`{"oslo.version": "2.0", "oslo.message": "<the notification as a JSON
//! string>"}`) or bare. Its `event_type` picks the meters that name it
//! (exactly, or with `*` standing for any run of characters); each meter
//! makes one event: its `name`, `kind` (`gauge`, `cumulative`, `delta`),
//! field `value` from `volume`, and tags `resource_id`, `user_id`,
//! `project_id`, `unit`, `event_type` and any `tags`. A value that is a
//! string starting with `$.` is a path into the notification
//! (`$.payload.memory_mb`); anything else is itself. The host is the
//! publisher's (`compute.HOST` gives `HOST`), the time the notification's
//! `timestamp`. A notification no meter names is not for this source
//! ([`Outcome::Ignored`]); one that is not a notification, or lacks what a
//! meter reads, is refused with the reason.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value as Json;
use vane_core::prelude::*;

/// One or several strings.
#[derive(Deserialize, Debug, Clone)]
#[serde(untagged)]
pub enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    fn iter(&self) -> impl Iterator<Item = &str> {
        let s: &[String] = match self {
            OneOrMany::One(s) => std::slice::from_ref(s),
            OneOrMany::Many(v) => v,
        };
        s.iter().map(String::as_str)
    }
}

/// A sample's kind, in Ceilometer's words.
#[derive(Deserialize, Debug, Clone, Copy, Default, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum MeterKind {
    #[default]
    Gauge,
    Cumulative,
    Delta,
}

/// A value of a meter: a path into the notification (`$.payload.x`), or itself.
#[derive(Deserialize, Debug, Clone)]
#[serde(untagged)]
pub enum Selector {
    Number(f64),
    Text(String),
}

impl Selector {
    fn select<'a>(&'a self, n: &'a Json) -> Option<std::borrow::Cow<'a, Json>> {
        use std::borrow::Cow;
        match self {
            Selector::Number(x) => Some(Cow::Owned(Json::from(*x))),
            Selector::Text(t) => match t.strip_prefix("$.") {
                Some(path) => path.split('.').try_fold(n, |v, k| v.get(k)).map(Cow::Borrowed),
                None => Some(Cow::Owned(Json::String(t.clone()))),
            },
        }
    }

    fn text(&self, n: &Json, what: &str) -> Result<String, String> {
        match self.select(n).as_deref() {
            Some(Json::String(s)) => Ok(s.clone()),
            Some(Json::Number(x)) => Ok(x.to_string()),
            Some(Json::Bool(b)) => Ok(b.to_string()),
            _ => Err(format!("{what}: nothing at {self}")),
        }
    }
}

impl std::fmt::Display for Selector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Selector::Number(x) => write!(f, "{x}"),
            Selector::Text(t) => f.write_str(t),
        }
    }
}

/// One meter: the samples one kind of notification makes.
#[derive(Deserialize, Debug, Clone)]
#[serde(deny_unknown_fields)]
pub struct Meter {
    pub event_type: OneOrMany,
    pub name: String,
    #[serde(default, rename = "type")]
    pub kind: MeterKind,
    pub unit: Option<String>,
    pub volume: Selector,
    pub resource_id: Option<Selector>,
    pub user_id: Option<Selector>,
    pub project_id: Option<Selector>,
    #[serde(default)]
    pub tags: BTreeMap<String, Selector>,
}

/// What a message was.
#[derive(Debug, PartialEq)]
pub enum Outcome {
    Samples(Vec<Event>),
    /// A notification no meter names.
    Ignored(String),
}

/// Whether `name` matches `pattern`, where `*` is any run of characters.
pub fn matches(pattern: &str, name: &str) -> bool {
    let mut parts = pattern.split('*');
    let first = parts.next().unwrap_or("");
    let Some(mut rest) = name.strip_prefix(first) else { return false };
    let parts: Vec<&str> = parts.collect();
    let Some((last, middle)) = parts.split_last() else { return rest.is_empty() };
    for p in middle {
        match rest.find(p) {
            Some(i) => rest = &rest[i + p.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

/// The notification inside a message body (oslo's envelope, or bare).
pub fn unwrap(body: &[u8]) -> Result<Json, String> {
    let v: Json = serde_json::from_slice(body).map_err(|e| format!("not JSON: {e}"))?;
    match v.get("oslo.message") {
        Some(Json::String(inner)) => serde_json::from_str(inner).map_err(|e| format!("oslo.message is not JSON: {e}")),
        Some(_) => Err("oslo.message is not a string".into()),
        None => Ok(v),
    }
}

/// Nanoseconds of an oslo timestamp (`2012-05-08 20:23:48.028195`, or ISO
/// 8601 with `T` and an optional `Z`), taken as UTC.
pub fn timestamp(s: &str) -> Option<i64> {
    let s = s.trim().trim_end_matches('Z');
    let (date, time) = s.split_once([' ', 'T'])?;
    let mut d = date.split('-').map(|x| x.parse::<i64>().ok());
    let (y, m, day) = (d.next()??, d.next()??, d.next()??);
    let (hms, frac) = time.split_once('.').unwrap_or((time, ""));
    let mut t = hms.split(':').map(|x| x.parse::<i64>().ok());
    let (h, min, sec) = (t.next()??, t.next()??, t.next()??);
    let valid = (0..=9999).contains(&y) && (1..=12).contains(&m) && (1..=31).contains(&day);
    if !valid || !(0..=23).contains(&h) || !(0..=59).contains(&min) || !(0..=60).contains(&sec) {
        return None;
    }
    // Days from the civil date (proleptic Gregorian), from 1970-01-01.
    let yy = if m <= 2 { y - 1 } else { y };
    let era = yy.div_euclid(400);
    let yoe = yy - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    if !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let digits = &frac[..frac.len().min(9)];
    let nanos = if digits.is_empty() { 0 } else { digits.parse::<i64>().ok()? * 10i64.pow(9 - digits.len() as u32) };
    // Nanoseconds since 1970 in an i64 reach the year 2262.
    (days * 86_400 + h * 3600 + min * 60 + sec).checked_mul(1_000_000_000)?.checked_add(nanos)
}

/// The samples the meters make of one notification ([`unwrap`]).
pub fn samples(meters: &[Meter], n: &Json, now: i64) -> Result<Outcome, String> {
    let event_type = n.get("event_type").and_then(Json::as_str).ok_or("no event_type")?;
    let wanted: Vec<&Meter> = meters.iter().filter(|m| m.event_type.iter().any(|p| matches(p, event_type))).collect();
    if wanted.is_empty() {
        return Ok(Outcome::Ignored(event_type.to_owned()));
    }
    let host = n
        .get("publisher_id")
        .and_then(Json::as_str)
        .map(|p| p.split_once('.').map_or(p, |(_, h)| h).to_owned())
        .unwrap_or_default();
    let time = n.get("timestamp").and_then(Json::as_str).and_then(timestamp).unwrap_or(now);
    let mut out = Vec::with_capacity(wanted.len());
    for m in wanted {
        let volume = match m.volume.select(n).as_deref() {
            Some(Json::Number(x)) => x.as_f64().unwrap_or(f64::NAN),
            Some(Json::String(s)) => {
                s.parse().map_err(|_| format!("{}: volume {:?} at {} is not a number", m.name, s, m.volume))?
            }
            _ => return Err(format!("{}: no number at {}", m.name, m.volume)),
        };
        let mut e = Event::gauge(m.name.clone(), volume).host(host.clone()).at(time);
        e.kind = match m.kind {
            MeterKind::Gauge => Kind::Gauge,
            MeterKind::Cumulative => Kind::Counter,
            MeterKind::Delta => Kind::Delta,
        };
        for (key, sel) in [("resource_id", &m.resource_id), ("user_id", &m.user_id), ("project_id", &m.project_id)] {
            if let Some(sel) = sel {
                e = e.tag(key, sel.text(n, &format!("{}: {key}", m.name))?);
            }
        }
        if let Some(u) = &m.unit {
            e = e.tag("unit", u.clone());
        }
        e = e.tag("event_type", event_type);
        for (k, sel) in &m.tags {
            e = e.tag(k.clone(), sel.text(n, &format!("{}: tag {k}", m.name))?);
        }
        out.push(e);
    }
    Ok(Outcome::Samples(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meters() -> Vec<Meter> {
        let yaml = r#"[
          { event_type: [compute.instance.create.end, "compute.instance.exists"], name: instance, unit: instance, volume: 1,
            resource_id: $.payload.instance_id, user_id: $.payload.user_id, project_id: $.payload.tenant_id },
          { event_type: "compute.instance.*", name: memory, unit: MB, volume: $.payload.memory_mb, resource_id: $.payload.instance_id }
        ]"#;
        let node = vane_core::node::yaml::parse("m.yaml", yaml, &|_| None).unwrap();
        vane_core::node::from_node(&node, "meters").unwrap()
    }

    fn samples(meters: &[Meter], body: &[u8], now: i64) -> Result<Outcome, String> {
        super::samples(meters, &unwrap(body)?, now)
    }

    #[test]
    fn wildcards_match_runs_of_characters() {
        assert!(matches("compute.instance.*", "compute.instance.create.end"));
        assert!(matches("*.end", "compute.instance.create.end"));
        assert!(matches("compute.*.end", "compute.instance.create.end"));
        assert!(matches("exact", "exact"));
        assert!(!matches("compute.instance.*", "compute.volume.x"));
        assert!(!matches("a*b*c", "abx"));
        assert!(!matches("ab*ba", "aba"));
    }

    #[test]
    fn oslo_timestamps_are_utc() {
        assert_eq!(timestamp("1970-01-01 00:00:00"), Some(0));
        assert_eq!(timestamp("2012-05-08 20:23:48.028195"), Some(1_336_508_628_028_195_000));
        assert_eq!(timestamp("2024-02-29T12:00:00Z"), Some(1_709_208_000_000_000_000));
        assert_eq!(timestamp("yesterday"), None);
        assert_eq!(timestamp("99999999999999-01-01 00:00:00"), None);
        assert_eq!(timestamp("2024-01-01 -1:00:00"), None);
        assert_eq!(timestamp("3048-05-08 20:23:48.028195"), None, "past what nanoseconds in an i64 hold");
        assert_eq!(timestamp("2024-01-01 00:00:00.-5"), None);
    }

    #[test]
    fn a_notification_in_its_envelope_makes_the_samples_its_type_names() {
        let inner = serde_json::json!({
            "event_type": "compute.instance.create.end", "publisher_id": "compute.node-7",
            "timestamp": "2012-05-08 20:23:48.028195",
            "payload": { "instance_id": "i-1", "user_id": "u-1", "tenant_id": "p-1", "memory_mb": 512 }
        });
        let body = serde_json::json!({ "oslo.version": "2.0", "oslo.message": inner.to_string() }).to_string();
        let Outcome::Samples(evs) = samples(&meters(), body.as_bytes(), 0).unwrap() else { panic!() };
        assert_eq!(evs.len(), 2);
        assert_eq!((evs[0].name.as_str(), evs[0].host.as_str()), ("instance", "node-7"));
        assert_eq!(evs[0].get_tag("project_id"), Some("p-1"));
        assert_eq!(evs[1].get_field("value"), Some(&Value::Float(512.0)));
        assert_eq!(evs[1].time, 1_336_508_628_028_195_000);
        let other = serde_json::json!({ "event_type": "image.upload", "payload": {} }).to_string();
        assert_eq!(samples(&meters(), other.as_bytes(), 0).unwrap(), Outcome::Ignored("image.upload".into()));
        let short = serde_json::json!({ "event_type": "compute.instance.exists", "payload": { "instance_id": "i" } });
        assert!(samples(&meters(), short.to_string().as_bytes(), 0).unwrap_err().contains("user_id"));
        assert!(samples(&meters(), b"{", 0).unwrap_err().contains("not JSON"));
    }
}
