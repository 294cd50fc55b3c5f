//! Dot-separated names made from events by a template: Graphite paths and
//! AMQP routing keys. `{host}`, `{name}`, `{field}`, `{tags}` (every tag
//! value, in order), `{tag.KEY}`, `{path}` (the name with its dots kept as
//! levels) and literal parts; an empty part leaves no empty segment, and
//! dots and spaces inside values become `_` so they add no levels.

use crate::event::Event;

/// One dot-separated part of a path template.
#[derive(Debug, Clone, PartialEq)]
enum Part {
    Host,
    Name,
    /// The name as it is: its dots stay levels (a relayed Graphite path).
    Path,
    Field,
    Tags,
    Tag(String),
    Literal(String),
}

/// A path template, parsed once.
#[derive(Debug, Clone, PartialEq)]
pub struct PathTemplate(Vec<Part>);

impl PathTemplate {
    pub fn parse(template: &str) -> PathTemplate {
        // Split on dots outside braces: `{tag.cpu}` is one part.
        let mut parts = Vec::new();
        let (mut depth, mut start) = (0, 0);
        let mut push = |p: &str| {
            parts.push(match p {
                "{host}" => Part::Host,
                "{name}" => Part::Name,
                "{path}" => Part::Path,
                "{field}" => Part::Field,
                "{tags}" => Part::Tags,
                p if p.starts_with("{tag.") && p.ends_with('}') => Part::Tag(p[5..p.len() - 1].to_owned()),
                literal => Part::Literal(literal.to_owned()),
            })
        };
        for (i, c) in template.char_indices() {
            match c {
                '{' => depth += 1,
                '}' => depth -= 1,
                '.' if depth == 0 => {
                    push(&template[start..i]);
                    start = i + 1;
                }
                _ => {}
            }
        }
        push(&template[start..]);
        PathTemplate(parts)
    }

    /// Appends the path of one field of an event to `out`.
    pub fn render(&self, out: &mut String, prefix: &str, e: &Event, field: &str) {
        out.push_str(prefix);
        let mut first = true;
        let mut seg = |out: &mut String, v: &str, keep_dots: bool| {
            if v.is_empty() {
                return;
            }
            if !first {
                out.push('.');
            }
            first = false;
            // Most values have nothing to replace: copied whole.
            let plain =
                v.is_ascii() && !v.bytes().any(|b| b.is_ascii_whitespace() || b == 0x0b || (b == b'.' && !keep_dots));
            if plain {
                out.push_str(v);
                return;
            }
            for c in v.chars() {
                out.push(if c.is_whitespace() || (c == '.' && !keep_dots) { '_' } else { c });
            }
        };
        for part in &self.0 {
            match part {
                Part::Host => seg(out, &e.host, false),
                Part::Name => seg(out, &e.name, false),
                Part::Path => seg(out, &e.name, true),
                Part::Field => seg(out, field, false),
                Part::Tags => {
                    for (_, v) in &e.tags {
                        seg(out, v, false);
                    }
                }
                Part::Tag(k) => seg(out, e.get_tag(k).unwrap_or(""), false),
                Part::Literal(l) => seg(out, l, true),
            }
        }
    }
}

/// The path of one field of an event.
pub fn path(template: &str, prefix: &str, e: &Event, field: &str) -> String {
    let mut out = String::new();
    PathTemplate::parse(template).render(&mut out, prefix, e, field);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parts_render_as_levels() {
        let e = Event::new("cpu.load").host("web 01").tag("cpu", "cpu0").tag("dc", "eu.west");
        let p = |t: &str| path(t, "", &e, "user");
        assert_eq!(p("{host}.{name}.{tags}.{field}"), "web_01.cpu_load.cpu0.eu_west.user");
        assert_eq!(p("x.{path}.{tag.dc}.{tag.none}"), "x.cpu.load.eu_west");
    }

    proptest! {
        /// Copying a value whole gives what replacing it char by char gives.
        #[test]
        fn whole_values_as_char_by_char(v in "[ -~\t\n\r\x0b\x0c\x1c-\x1f\u{85}\u{a0}\u{2028}é.]{0,12}") {
            let e = Event::new(v.as_str()).host(v.as_str());
            let want: String = v.chars().map(|c| if c.is_whitespace() || c == '.' { '_' } else { c }).collect();
            let kept: String = v.chars().map(|c| if c.is_whitespace() { '_' } else { c }).collect();
            let mut out = String::new();
            PathTemplate::parse("{name}").render(&mut out, "", &e, "");
            prop_assert_eq!(&out, &want);
            out.clear();
            PathTemplate::parse("{path}").render(&mut out, "", &e, "");
            prop_assert_eq!(out, kept);
        }
    }
}
