//! The Nagios plugin output format: exit code 0/1/2/3 → ok/warning/
//! critical/unknown, the first line's text → description, and performance
//! data `'label'=value[UOM];[warn];[crit];[min];[max]` → fields.
//!
//! ```text
//! TEXT | PERFDATA
//! LONG TEXT …
//! LONG TEXT | PERFDATA
//! PERFDATA …
//! ```
//!
//! Units are normalised: `s`, `ms`, `us` to seconds; `B`, `KB`, `MB`, `GB`,
//! `TB` to bytes (powers of 1024, as the plugins mean them); `%` stays a
//! percentage; `c` makes the field a counter (in a second event of kind
//! counter). Thresholds and bounds that are plain numbers become fields
//! `LABEL_warn`, `LABEL_crit`, `LABEL_min`, `LABEL_max`. A value of `U`
//! (undetermined) is skipped; any other bad item is reported with its line
//! and the rest is kept.

use crate::event::{Event, Kind, State, Value};

/// A bad perfdata item: its 1-based line and what was wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bad {
    pub line: usize,
    pub message: String,
}

/// One perfdata item, normalised.
#[derive(Clone, Debug, PartialEq)]
pub struct Perf {
    pub label: String,
    pub value: f64,
    pub counter: bool,
    pub warn: Option<f64>,
    pub crit: Option<f64>,
    pub min: Option<f64>,
    pub max: Option<f64>,
}

/// A parsed check result.
#[derive(Clone, Debug, PartialEq)]
pub struct Check {
    pub state: State,
    pub text: String,
    pub long_text: Vec<String>,
    pub perf: Vec<Perf>,
    pub bad: Vec<Bad>,
}

/// The state for a plugin's exit code; anything but 0–3 (or a signal) is unknown.
pub fn state_of(code: Option<i32>) -> State {
    match code {
        Some(0) => State::Ok,
        Some(1) => State::Warning,
        Some(2) => State::Critical,
        _ => State::Unknown,
    }
}

/// Parses a plugin's standard output.
pub fn parse(stdout: &str, code: Option<i32>) -> Check {
    let mut c =
        Check { state: state_of(code), text: String::new(), long_text: Vec::new(), perf: Vec::new(), bad: Vec::new() };
    let mut perf_mode = false;
    for (i, line) in stdout.lines().enumerate() {
        let n = i + 1;
        if perf_mode {
            perfdata(line, n, &mut c);
            continue;
        }
        let (text, perf) = match line.split_once('|') {
            Some((t, p)) => (t, Some(p)),
            None => (line, None),
        };
        if n == 1 {
            c.text = text.trim().to_owned();
        } else if !text.trim().is_empty() {
            c.long_text.push(text.trim_end().to_owned());
        }
        if let Some(p) = perf {
            perfdata(p, n, &mut c);
            // After a `|` in the long output, every further line is perfdata.
            perf_mode = n > 1;
        }
    }
    c
}

fn perfdata(s: &str, line: usize, c: &mut Check) {
    let b: Vec<char> = s.chars().collect();
    let mut i = 0;
    while i < b.len() {
        while i < b.len() && b[i].is_whitespace() {
            i += 1;
        }
        if i >= b.len() {
            break;
        }
        // The label, quoted ('' is a quote inside) or up to `=`.
        let mut label = String::new();
        if b[i] == '\'' {
            i += 1;
            loop {
                match b.get(i) {
                    None => {
                        c.bad.push(Bad { line, message: format!("unterminated label '{label}") });
                        return;
                    }
                    Some('\'') if b.get(i + 1) == Some(&'\'') => {
                        label.push('\'');
                        i += 2;
                    }
                    Some('\'') => {
                        i += 1;
                        break;
                    }
                    Some(&ch) => {
                        label.push(ch);
                        i += 1;
                    }
                }
            }
        } else {
            while i < b.len() && b[i] != '=' && !b[i].is_whitespace() {
                label.push(b[i]);
                i += 1;
            }
        }
        let start = i;
        while i < b.len() && !b[i].is_whitespace() {
            i += 1;
        }
        let item: String = b[start..i].iter().collect();
        let Some(rest) = item.strip_prefix('=') else {
            c.bad.push(Bad { line, message: format!("perfdata item {label:?} has no `=value`") });
            continue;
        };
        match perf_item(&label, rest) {
            Ok(Some(p)) => c.perf.push(p),
            Ok(None) => {}
            Err(m) => c.bad.push(Bad { line, message: m }),
        }
    }
}

/// (unit, factor to the base unit, counter)
fn unit(u: &str) -> Option<(f64, bool)> {
    Some(match u {
        "" | "%" => (1.0, false),
        "s" => (1.0, false),
        "ms" => (1e-3, false),
        "us" => (1e-6, false),
        "ns" => (1e-9, false),
        "B" => (1.0, false),
        "KB" | "KiB" => (1024.0, false),
        "MB" | "MiB" => (1024.0 * 1024.0, false),
        "GB" | "GiB" => (1024f64.powi(3), false),
        "TB" | "TiB" => (1024f64.powi(4), false),
        "c" => (1.0, true),
        _ => return None,
    })
}

fn perf_item(label: &str, rest: &str) -> Result<Option<Perf>, String> {
    if label.is_empty() {
        return Err(format!("perfdata item ={rest} has an empty label"));
    }
    let mut parts = rest.split(';');
    let first = parts.next().unwrap_or("");
    if first == "U" {
        return Ok(None);
    }
    let split = first
        .find(|ch: char| !(ch.is_ascii_digit() || matches!(ch, '.' | '-' | '+' | 'e' | 'E')))
        .unwrap_or(first.len());
    let (num, uom) = first.split_at(split);
    let value: f64 = num.parse().map_err(|_| format!("perfdata {label:?}: value {first:?} is not a number"))?;
    let (factor, counter) = unit(uom).ok_or_else(|| format!("perfdata {label:?}: unknown unit {uom:?}"))?;
    // Thresholds may be ranges (`10:20`, `@5`); only plain numbers are kept.
    let mut num_at = |_: &str| parts.next().and_then(|t| t.trim().parse::<f64>().ok()).map(|v| v * factor);
    let warn = num_at("warn");
    let crit = num_at("crit");
    let min = num_at("min");
    let max = num_at("max");
    Ok(Some(Perf { label: label.to_owned(), value: value * factor, counter, warn, crit, min, max }))
}

impl Check {
    /// The check as events: one named `name` with state, description and the
    /// gauge perfdata; a second of kind counter when there are counters.
    pub fn to_events(&self, name: &str) -> Vec<Event> {
        let mut ev = Event::new(name).state(self.state).description(self.text.clone());
        let mut counters = Event::new(name).kind(Kind::Counter);
        for p in &self.perf {
            let target = if p.counter { &mut counters } else { &mut ev };
            target.fields.push((p.label.as_str().into(), Value::Float(p.value)));
            for (suffix, v) in [("warn", p.warn), ("crit", p.crit), ("min", p.min), ("max", p.max)] {
                if let Some(v) = v {
                    target.fields.push((compact_str::format_compact!("{}_{suffix}", p.label), Value::Float(v)));
                }
            }
        }
        let mut out = vec![ev];
        if !counters.fields.is_empty() {
            counters.state = Some(self.state);
            out.push(counters);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_real_check_load_output() {
        let out = "LOAD OK - total load average: 1.40, 1.04, 1.05|load1=1.400;5.000;10.000;0; load5=1.040;5.000;10.000;0; load15=1.050;5.000;10.000;0; \n";
        let c = parse(out, Some(0));
        assert_eq!(c.state, State::Ok);
        assert_eq!(c.text, "LOAD OK - total load average: 1.40, 1.04, 1.05");
        assert!(c.bad.is_empty(), "{:?}", c.bad);
        assert_eq!(c.perf.len(), 3);
        assert_eq!(
            c.perf[0],
            Perf {
                label: "load1".into(),
                value: 1.4,
                counter: false,
                warn: Some(5.0),
                crit: Some(10.0),
                min: Some(0.0),
                max: None
            }
        );
    }

    #[test]
    fn quoted_labels_units_long_output_and_counters() {
        let out = "DISK WARNING - free space: / 10 MiB|'root fs'=5MB;8;9;0;10 'it''s'=250ms\n\
                   a long line\n\
                   another | 'x y'=3c time=U\n\
                   pct=55%;80:90;@95\n";
        let c = parse(out, Some(1));
        assert_eq!(c.state, State::Warning);
        assert_eq!(c.long_text, vec!["a long line", "another"]);
        let labels: Vec<&str> = c.perf.iter().map(|p| p.label.as_str()).collect();
        assert_eq!(labels, vec!["root fs", "it's", "x y", "pct"]);
        assert_eq!(c.perf[0].value, 5.0 * 1048576.0);
        assert_eq!(c.perf[0].max, Some(10.0 * 1048576.0));
        assert_eq!(c.perf[1].value, 0.25);
        assert!(c.perf[2].counter);
        // Ranges are not numbers: dropped, the value kept.
        assert_eq!((c.perf[3].value, c.perf[3].warn, c.perf[3].crit), (55.0, None, None));
        let evs = c.to_events("disk");
        assert_eq!(evs.len(), 2);
        assert_eq!(evs[1].kind, Kind::Counter);
        assert_eq!(evs[0].get_field("root fs_max"), Some(&Value::Float(10.0 * 1048576.0)));
    }

    #[test]
    fn bad_items_are_reported_and_the_rest_kept() {
        let c = parse("OK | a=1 b=x c=2zz d e=5\n", Some(0));
        let labels: Vec<&str> = c.perf.iter().map(|p| p.label.as_str()).collect();
        assert_eq!(labels, vec!["a", "e"]);
        let msgs: Vec<&str> = c.bad.iter().map(|b| b.message.as_str()).collect();
        assert_eq!(msgs.len(), 3, "{msgs:?}");
        assert!(msgs[0].contains("\"b\": value \"x\" is not a number"));
        assert!(msgs[1].contains("unknown unit \"zz\""));
        assert!(msgs[2].contains("\"d\" has no `=value`"));
        assert!(c.bad.iter().all(|b| b.line == 1));
    }

    #[test]
    fn exit_codes_map_to_states() {
        for (code, st) in [
            (Some(0), State::Ok),
            (Some(1), State::Warning),
            (Some(2), State::Critical),
            (Some(3), State::Unknown),
            (Some(7), State::Unknown),
            (None, State::Unknown),
        ] {
            assert_eq!(parse("X", code).state, st);
        }
    }

    mod prop {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            /// Perfdata written by the plugin guidelines reads back: quoted
            /// labels (with doubled quotes), values, thresholds, min and max.
            #[test]
            fn perfdata_round_trips(
                items in proptest::collection::vec(
                    ("[a-z][a-z0-9 ']{0,10}", -1e9f64..1e9, proptest::option::of(0f64..1e6), proptest::option::of(0f64..1e6)),
                    1..5,
                ),
                code in 0i32..4,
            ) {
                let perf: Vec<String> = items
                    .iter()
                    .map(|(l, v, w, c)| {
                        let o = |x: &Option<f64>| x.map(|x| x.to_string()).unwrap_or_default();
                        format!("'{}'={v};{};{};0;", l.replace('\'', "''"), o(w), o(c))
                    })
                    .collect();
                let out = format!("CHECK - text|{}\n", perf.join(" "));
                let c = parse(&out, Some(code));
                prop_assert!(c.bad.is_empty(), "{:?} in {}", c.bad, out);
                prop_assert_eq!(c.state, state_of(Some(code)));
                prop_assert_eq!(c.perf.len(), items.len());
                for (p, (l, v, w, cr)) in c.perf.iter().zip(&items) {
                    prop_assert_eq!(&p.label, l);
                    prop_assert_eq!(p.value, *v);
                    prop_assert_eq!(p.warn, *w);
                    prop_assert_eq!(p.crit, *cr);
                    prop_assert_eq!(p.min, Some(0.0));
                }
            }
        }
    }
}
