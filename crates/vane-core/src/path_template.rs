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
