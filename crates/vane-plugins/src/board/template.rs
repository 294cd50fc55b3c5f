//! Board templates: a board's settings and its grid of widgets, in YAML
//! (modelled on the boards the Telemetry service exported). Each widget is
//! a variant bound to a flow by its tag; a flow is filled by a job posting
//! to it, or by `series:` bindings to the local history, or by `checks:`.
//!
//! ```yaml
//! title: Web servers
//! columns: 12
//! widgets:
//!   - { tag: load, variant: value, title: Load, column: 0, row: 0, width: 3,
//!       series: [{ name: system_load, field: load1 }] }
//!   - { tag: deploys, variant: log, title: Deploys, column: 3, row: 0, width: 9 }
//! ```

use std::collections::BTreeMap;

use serde::Deserialize;
use vane_core::board::BoardError;

/// What a widget draws; a flow's data has the fields its variant reads.
#[derive(Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Variant {
    /// `{value, unit?}`: a number with its delta and a sparkline.
    Value,
    /// `{value, min?, max?}`.
    Gauge,
    /// `{values: [{label, value}]}`.
    Multivalue,
    /// Series over time: `{series: [{label, points: [[ms, v]]}]}`, or history.
    Graph,
    /// `{bars: [{label, value}]}`.
    Barchart,
    /// `{columns: [..], rows: [[..]]}`.
    Table,
    /// `{text}`.
    Text,
    /// `{messages: [{time?, text}]}`; a post of `{text}` adds one message.
    Log,
    /// `{items: [{label, state, description?, since?}]}`, or `checks:`.
    Status,
    /// `{up: [names], down: [names]}`.
    Upstatus,
    /// `{servers: [{name, state?, cpu?, memory?, disk?}]}`.
    Servers,
}

impl Variant {
    pub fn name(self) -> &'static str {
        match self {
            Variant::Value => "value",
            Variant::Gauge => "gauge",
            Variant::Multivalue => "multivalue",
            Variant::Graph => "graph",
            Variant::Barchart => "barchart",
            Variant::Table => "table",
            Variant::Text => "text",
            Variant::Log => "log",
            Variant::Status => "status",
            Variant::Upstatus => "upstatus",
            Variant::Servers => "servers",
        }
    }
}

/// How the points of several matching series make one number.
#[derive(Deserialize, Debug, Clone, Copy, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum Aggregate {
    /// Each matching series apart (one value, bar or line per series);
    /// a `value` or `gauge` widget shows their mean.
    #[default]
    Each,
    Sum,
    Mean,
    Min,
    Max,
}

/// A binding of a widget to series of the history.
#[derive(Deserialize, Debug, Clone)]
#[serde(deny_unknown_fields)]
pub struct Binding {
    /// The measurement.
    pub name: String,
    /// The field. Default: `value`.
    #[serde(default = "value_field")]
    pub field: String,
    /// Tags the series must have (`host` is the event's host).
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// What the page calls it; default: the field. Several matching series
    /// add their own tag values to it.
    pub label: Option<String>,
    #[serde(default)]
    pub aggregate: Aggregate,
    /// Shows the change per second (for counters: bytes sent, packets).
    #[serde(default)]
    pub rate: bool,
    /// Multiplies every value (e.g. 8 for bytes to bits). Default: 1.
    #[serde(default = "one")]
    pub scale: f64,
}

fn value_field() -> String {
    "value".into()
}
fn one() -> f64 {
    1.0
}

/// Which check states a `status` widget lists.
#[derive(Deserialize, Debug, Clone, Default)]
#[serde(deny_unknown_fields)]
pub struct ChecksFilter {
    /// Only checks whose name starts with this.
    #[serde(default)]
    pub name: String,
}

/// One widget of the grid.
#[derive(Deserialize, Debug, Clone)]
#[serde(deny_unknown_fields)]
pub struct Widget {
    /// The flow's tag, unique in the template; the board's prefix goes before it.
    pub tag: String,
    pub variant: Variant,
    #[serde(default)]
    pub title: String,
    #[serde(default)]
    pub column: u32,
    #[serde(default)]
    pub row: u32,
    #[serde(default = "two")]
    pub width: u32,
    #[serde(default = "one_u32")]
    pub height: u32,
    /// Higher is drawn more prominently (Telemetry's envelope). Default: 0.
    #[serde(default)]
    pub priority: i32,
    /// The flow's data until a job posts (the variant's fields).
    pub data: Option<serde_json::Value>,
    /// History bindings filling the flow instead of a job.
    #[serde(default)]
    pub series: Vec<Binding>,
    /// Fills a `status` widget with the states of the checks seen.
    pub checks: Option<ChecksFilter>,
    #[serde(default)]
    pub unit: String,
    pub min: Option<f64>,
    pub max: Option<f64>,
}

fn two() -> u32 {
    2
}
fn one_u32() -> u32 {
    1
}

/// A board template.
#[derive(Deserialize, Debug, Clone)]
#[serde(deny_unknown_fields)]
pub struct Template {
    pub title: String,
    /// `light` or `dark`. Default: `light`.
    #[serde(default = "light")]
    pub theme: String,
    /// Columns of the grid. Default: 12.
    #[serde(default = "twelve")]
    pub columns: u32,
    pub widgets: Vec<Widget>,
}

fn light() -> String {
    "light".into()
}
fn twelve() -> u32 {
    12
}

/// The templates compiled into the binary, named `builtin:NAME`.
const BUILTIN: &[(&str, &str)] = &[("host", include_str!("templates/host.yaml"))];

/// The text of template `spec`: `builtin:NAME`, else a file's path.
/// Returns the text and the origin its errors name.
pub fn text_of(spec: &str) -> Result<(String, String), BoardError> {
    if let Some(name) = spec.strip_prefix("builtin:") {
        return BUILTIN.iter().find(|(n, _)| *n == name).map(|(_, t)| (t.to_string(), spec.to_owned())).ok_or_else(
            || {
                let names: Vec<String> = BUILTIN.iter().map(|(n, _)| format!("builtin:{n}")).collect();
                BoardError::Template(format!("no built-in template {spec:?} (there are: {})", names.join(", ")))
            },
        );
    }
    std::fs::read_to_string(spec)
        .map(|t| (t, spec.to_owned()))
        .map_err(|e| BoardError::Template(format!("cannot read template {spec}: {e}")))
}

impl Template {
    /// Reads a template; the error names the place (`origin:line:column`).
    pub fn parse(text: &str, origin: &str) -> Result<Template, BoardError> {
        let bad = |e: vane_core::node::ConfigError| BoardError::Template(e.to_string());
        let node = vane_core::node::yaml::parse(origin, text, &|_| None).map_err(bad)?;
        let t: Template = vane_core::node::de::from_node(&node, "template").map_err(bad)?;
        let fail = |m: String| Err(BoardError::Template(m));
        if t.columns == 0 {
            return fail(format!("{origin}: template.columns must be at least 1"));
        }
        let mut seen = std::collections::HashSet::new();
        for (i, w) in t.widgets.iter().enumerate() {
            let at = format!("{origin}: template.widgets[{i}] ({:?})", w.tag);
            if w.tag.is_empty() || !seen.insert(w.tag.as_str()) {
                return fail(format!("{at}: every widget needs a tag of its own"));
            }
            if w.width == 0 || w.height == 0 || w.column + w.width > t.columns {
                return fail(format!("{at}: the widget must fit in the grid's {} columns", t.columns));
            }
            if w.checks.is_some() && w.variant != Variant::Status {
                return fail(format!("{at}: only a status widget lists checks"));
            }
            if w.checks.is_some() && !w.series.is_empty() {
                return fail(format!("{at}: a widget takes series or checks, not both"));
            }
        }
        Ok(t)
    }

    /// The flow tags, in the template's order.
    pub fn tags(&self) -> Vec<String> {
        self.widgets.iter().map(|w| w.tag.clone()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_builtin_host_template_reads() {
        let (text, origin) = text_of("builtin:host").unwrap();
        let t = Template::parse(&text, &origin).unwrap();
        assert!(t.widgets.len() >= 8);
        assert!(t.widgets.iter().any(|w| w.checks.is_some()));
        assert!(text_of("builtin:nope").unwrap_err().to_string().contains("builtin:host"));
    }

    #[test]
    fn errors_name_the_place() {
        let e =
            Template::parse("title: x\nwidgets:\n  - { tag: a, variant: dial }\n", "t.yaml").unwrap_err().to_string();
        assert!(e.contains("t.yaml:3:"), "{e}");
        assert!(e.contains("dial"), "{e}");
        let e = Template::parse(
            "title: x\nwidgets:\n  - { tag: a, variant: text }\n  - { tag: a, variant: log }\n",
            "t.yaml",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("widgets[1]") && e.contains("tag of its own"), "{e}");
        let e = Template::parse("title: x\nwidgets:\n  - { tag: a, variant: text, column: 11, width: 2 }\n", "t.yaml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("fit"), "{e}");
    }

    /// Widgets made of the template's own words, some of them wrong.
    fn widget() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        let variant = prop_oneof![
            Just("value"),
            Just("gauge"),
            Just("graph"),
            Just("status"),
            Just("log"),
            Just("dial"),
            Just("")
        ];
        (variant, 0u32..14, 0u32..14, any::<bool>(), any::<bool>(), "[a-c]{0,2}").prop_map(
            |(v, column, width, checks, series, tag)| {
                let mut w = format!("  - {{ tag: {tag:?}, variant: {v}, column: {column}, width: {width}");
                if checks {
                    w.push_str(", checks: {}");
                }
                if series {
                    w.push_str(", series: [{ name: m, aggregate: sum }]");
                }
                w + " }\n"
            },
        )
    }

    proptest::proptest! {
        /// Any template reads or is refused with an error naming its origin
        /// and a place; one that reads holds only widgets that fit, with
        /// tags of their own.
        #[test]
        fn a_template_reads_whole_or_is_refused_with_its_place(ws in proptest::collection::vec(widget(), 0..6)) {
            let text = format!("title: T\ncolumns: 12\nwidgets:\n{}", ws.concat());
            match Template::parse(&text, "p.yaml") {
                Ok(t) => {
                    let mut tags = t.tags();
                    tags.sort();
                    tags.dedup();
                    proptest::prop_assert_eq!(tags.len(), t.widgets.len());
                    proptest::prop_assert!(t.widgets.iter().all(|w| w.width > 0 && w.column + w.width <= 12));
                }
                Err(e) => proptest::prop_assert!(e.to_string().starts_with("p.yaml"), "{}", e),
            }
        }
    }
}
