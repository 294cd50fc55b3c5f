//! The history's own queries on the agent's HTTP port:
//!
//! - `/api/series?name=N&field=F` (both optional): every series (matching),
//!   with its latest time (ms) and value;
//! - `/api/range?key=K&from=MS&to=MS&points=N`: one series' points between
//!   two times (ms since the epoch; default: the last hour), at most N
//!   (default 600), each `[ms, mean, min, max, count]`, from the finest tier
//!   that keeps `from`.

use std::fmt::Write as _;

use vane_core::http::{HttpRequest, HttpResponse};

use super::history::History;

fn json_str(out: &mut String, s: &str) {
    out.push_str(&serde_json::Value::from(s).to_string());
}

fn num(out: &mut String, v: f64) {
    if v.is_finite() {
        let _ = write!(out, "{v}");
    } else {
        out.push_str("null");
    }
}

pub fn series(h: &History, req: &HttpRequest) -> HttpResponse {
    let (name, field) = (req.param("name"), req.param("field"));
    let mut out = String::from("[");
    for s in h.all() {
        if name.as_deref().is_some_and(|n| n != &*s.name) || field.as_deref().is_some_and(|f| f != &*s.field) {
            continue;
        }
        if out.len() > 1 {
            out.push(',');
        }
        out.push_str("{\"key\":");
        json_str(&mut out, &s.key);
        match s.latest {
            Some((ts, v)) => {
                let _ = write!(out, ",\"time\":{},\"value\":", ts / 1_000_000);
                num(&mut out, v);
            }
            None => out.push_str(",\"time\":null,\"value\":null"),
        }
        out.push('}');
    }
    out.push_str("]\n");
    HttpResponse::json(out)
}

/// A query's time range and resolution: `from` and `to` in ms since the
/// epoch (default: the hour up to now), as ns; `points` (default `points`,
/// at most `most`).
pub fn span(req: &HttpRequest, points: usize, most: usize) -> (i64, i64, usize) {
    let ms = |p: &str| req.param(p).and_then(|v| v.parse::<i64>().ok());
    let to = ms("to").map_or_else(vane_core::event::now_ns, |v| v.saturating_mul(1_000_000));
    let from = ms("from").map_or(to - 3_600_000_000_000, |v| v.saturating_mul(1_000_000));
    (from, to, ms("points").map_or(points, |p| p.clamp(1, most as i64) as usize))
}

pub fn range(h: &History, req: &HttpRequest) -> HttpResponse {
    let Some(key) = req.param("key") else {
        return HttpResponse::text(400, "text/plain; charset=utf-8", "key= is needed\n");
    };
    let Some(id) = h.id_of(&key) else {
        return HttpResponse::not_found(format_args!("no series {key:?}"));
    };
    let (from, to, points) = span(req, 600, 100_000);
    let (tier, pts) = h.range(id, from, to, points);
    let mut out = format!("{{\"tier\":{tier},\"points\":[");
    for (i, p) in pts.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let _ = write!(out, "[{},", p.ts / 1_000_000);
        num(&mut out, p.mean());
        out.push(',');
        num(&mut out, p.min);
        out.push(',');
        num(&mut out, p.max);
        let _ = write!(out, ",{}]", p.count);
    }
    out.push_str("]}\n");
    HttpResponse::json(out)
}

#[cfg(test)]
mod tests {
    use super::super::history::TierSpec;
    use super::*;
    use vane_core::event::Event;

    #[test]
    fn series_and_ranges_are_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let tiers = [
            TierSpec { step: std::time::Duration::ZERO, keep: std::time::Duration::from_secs(600) },
            TierSpec { step: std::time::Duration::from_secs(60), keep: std::time::Duration::from_secs(7200) },
        ];
        let mut history = History::open(dir.path(), &tiers, 100, std::time::Duration::from_secs(1)).unwrap();
        let now = vane_core::event::now_ns();
        let batch: Vec<Event> =
            (0..5).map(|i| Event::gauge("load", i as f64).host("h").at(now - (5 - i) * 1_000_000_000)).collect();
        history.write(&batch).unwrap();
        let list = series(&history, &HttpRequest::new("/api/series", "name=load"));
        let vane_core::http::Body::Text(list) = list.body else { panic!() };
        assert!(list.contains("\"key\":\"load,host=h value\""), "{list}");
        assert!(list.contains("\"value\":4"), "{list}");
        let r = range(
            &history,
            &HttpRequest::new("/api/range", format!("key=load%2Chost%3Dh+value&from={}", now / 1_000_000 - 60_000)),
        );
        let vane_core::http::Body::Text(r) = r.body else { panic!() };
        let v: serde_json::Value = serde_json::from_str(&r).unwrap();
        assert_eq!(v["tier"], 0);
        let means: Vec<f64> = v["points"].as_array().unwrap().iter().map(|p| p[1].as_f64().unwrap()).collect();
        assert_eq!(means, vec![0.0, 1.0, 2.0, 3.0, 4.0]);
        let missing = range(&history, &HttpRequest::new("/api/range", "key=nope"));
        assert_eq!(missing.status, 404);
    }
}
