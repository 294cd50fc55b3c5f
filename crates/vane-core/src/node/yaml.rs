//! YAML text to a [`Node`] tree with positions, with `${ENV_VAR}` interpolation.
//!
//! Built on `saphyr-parser`'s event stream, so every scalar, list and mapping
//! keeps the line and column it started at. `${NAME}` in any scalar is
//! replaced by the environment variable (an error when unset), `${NAME:-text}`
//! falls back to `text` (itself interpolated, so `${A:-${B:-x}}` tries A,
//! then B, then `x`, up to 8 deep), and `$${` writes a literal `${`.

use std::collections::HashMap;
use std::sync::Arc;

use super::{ConfigError, Mark, Node, NodeKind};
use saphyr_parser::{Event, Parser, ScalarStyle, Span};

/// Parses one YAML document. An empty file is an empty mapping.
pub fn parse(file: &str, text: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<Node, ConfigError> {
    let file: Arc<str> = Arc::from(file);
    let mut b = Builder {
        file: file.clone(),
        anchors: HashMap::new(),
        stack: Vec::new(),
        root: None,
        env,
        docs: 0,
        copied: (0, 0),
    };
    for ev in Parser::new_from_str(text) {
        let (ev, span) = ev.map_err(|e| {
            ConfigError::new(
                Some(Mark { file: file.clone(), line: e.marker().line() as u32, column: e.marker().col() as u32 + 1 }),
                "",
                format!("invalid YAML: {}", e.info()),
            )
        })?;
        b.event(ev, span)?;
    }
    Ok(b.root.unwrap_or_else(|| Node::map(Mark { file, line: 1, column: 1 }, vec![])))
}

enum Open {
    Seq(Node, usize, Vec<Node>),
    Map(Node, usize, Vec<(Node, Node)>, Option<Node>),
}

/// Nodes, and bytes of text, that aliases may copy in one file, in all:
/// enough for any config that reuses blocks, and a bound (a few tens of
/// MiB) on "billion laughs" documents whose aliases of aliases, or of one
/// long text, would expand to gigabytes.
pub const MAX_ALIASED_NODES: u64 = 100_000;
pub const MAX_ALIASED_BYTES: u64 = 16 << 20;

/// The nodes in a tree, and the bytes of its texts.
fn size(n: &Node) -> (u64, u64) {
    let add = |a: (u64, u64), b: (u64, u64)| (a.0 + b.0, a.1 + b.1);
    let inner = match &n.kind {
        NodeKind::Scalar { text, .. } => (0, text.len() as u64),
        NodeKind::Seq(items) => items.iter().map(size).fold((0, 0), add),
        NodeKind::Map(entries) => entries.iter().map(|(k, v)| add(size(k), size(v))).fold((0, 0), add),
    };
    add((1, 0), inner)
}

struct Builder<'e> {
    file: Arc<str>,
    /// Anchored nodes and their sizes.
    anchors: HashMap<usize, (Node, (u64, u64))>,
    /// Nodes and bytes aliases copied so far.
    copied: (u64, u64),
    stack: Vec<Open>,
    root: Option<Node>,
    env: &'e dyn Fn(&str) -> Option<String>,
    docs: usize,
}

impl Builder<'_> {
    fn mark(&self, span: Span) -> Mark {
        Mark { file: self.file.clone(), line: span.start.line() as u32, column: span.start.col() as u32 + 1 }
    }

    fn event(&mut self, ev: Event<'_>, span: Span) -> Result<(), ConfigError> {
        match ev {
            Event::DocumentStart(_) => {
                self.docs += 1;
                if self.docs > 1 {
                    return Err(ConfigError::new(
                        Some(self.mark(span)),
                        "",
                        "a config file holds one YAML document; found a second `---`",
                    ));
                }
            }
            Event::Scalar(text, style, anchor, _) => {
                let mark = self.mark(span);
                let text = interpolate(&text, &mark, self.env)?;
                let node = Node { mark, kind: NodeKind::Scalar { text, plain: style == ScalarStyle::Plain } };
                self.push(node, anchor);
            }
            Event::Alias(id) => {
                let mark = self.mark(span);
                let (node, (nodes, bytes)) = self
                    .anchors
                    .get(&id)
                    .ok_or_else(|| ConfigError::new(Some(mark.clone()), "", "alias to an unknown anchor"))?;
                self.copied = (self.copied.0 + nodes, self.copied.1 + bytes);
                if self.copied.0 > MAX_ALIASED_NODES || self.copied.1 > MAX_ALIASED_BYTES {
                    let message = format!(
                        "aliases copy more than {MAX_ALIASED_NODES} nodes or {} MiB of text (aliases of aliases that multiply?)",
                        MAX_ALIASED_BYTES >> 20
                    );
                    return Err(ConfigError::new(Some(mark), "", message));
                }
                let mut node = node.clone();
                node.mark = mark;
                self.push(node, 0);
            }
            Event::SequenceStart(anchor, _) => {
                let n = Node { mark: self.mark(span), kind: NodeKind::Seq(vec![]) };
                self.stack.push(Open::Seq(n, anchor, vec![]));
            }
            Event::MappingStart(anchor, _) => {
                let n = Node::map(self.mark(span), vec![]);
                self.stack.push(Open::Map(n, anchor, vec![], None));
            }
            Event::SequenceEnd => {
                if let Some(Open::Seq(mut n, anchor, items)) = self.stack.pop() {
                    n.kind = NodeKind::Seq(items);
                    self.push(n, anchor);
                }
            }
            Event::MappingEnd => {
                if let Some(Open::Map(mut n, anchor, entries, _)) = self.stack.pop() {
                    n.kind = NodeKind::Map(entries);
                    self.push(n, anchor);
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn push(&mut self, node: Node, anchor: usize) {
        if anchor != 0 {
            let n = size(&node);
            self.anchors.insert(anchor, (node.clone(), n));
        }
        match self.stack.last_mut() {
            None => self.root = Some(node),
            Some(Open::Seq(_, _, items)) => items.push(node),
            Some(Open::Map(_, _, entries, key)) => match key.take() {
                None => *key = Some(node),
                Some(k) => entries.push((k, node)),
            },
        }
    }
}

/// How deep defaults may nest in `${A:-${B:-…}}`.
const MAX_NESTED_DEFAULTS: usize = 8;

/// Where the `${` whose body starts `body` closes: its matching `}`.
fn closing(body: &str) -> Option<usize> {
    let b = body.as_bytes();
    let (mut depth, mut i) = (1, 0);
    while i < b.len() {
        match b[i] {
            b'$' if b.get(i + 1) == Some(&b'{') => {
                depth += 1;
                i += 1;
            }
            b'}' => {
                depth -= 1;
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => {}
        }
        i += 1;
    }
    None
}

fn interpolate(text: &str, mark: &Mark, env: &dyn Fn(&str) -> Option<String>) -> Result<String, ConfigError> {
    interpolate_at(text, mark, env, 0)
}

fn interpolate_at(
    text: &str,
    mark: &Mark,
    env: &dyn Fn(&str) -> Option<String>,
    depth: usize,
) -> Result<String, ConfigError> {
    if !text.contains('$') {
        return Ok(text.to_owned());
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i..];
        if let Some(tail) = after.strip_prefix("$${") {
            out.push_str("${");
            rest = tail;
        } else if let Some(body) = after.strip_prefix("${") {
            let end =
                closing(body).ok_or_else(|| ConfigError::new(Some(mark.clone()), "", "unclosed `${` in value"))?;
            let expr = &body[..end];
            let (name, default) = match expr.split_once(":-") {
                Some((n, d)) => (n, Some(d)),
                None => (expr, None),
            };
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(ConfigError::new(
                    Some(mark.clone()),
                    "",
                    format!("`${{{expr}}}`: not a valid environment variable name"),
                ));
            }
            match (env(name), default) {
                (Some(v), _) => out.push_str(&v),
                (None, Some(_)) if depth >= MAX_NESTED_DEFAULTS => {
                    let message = format!("`${{{expr}}}`: defaults nested deeper than {MAX_NESTED_DEFAULTS}");
                    return Err(ConfigError::new(Some(mark.clone()), "", message));
                }
                (None, Some(d)) => out.push_str(&interpolate_at(d, mark, env, depth + 1)?),
                (None, None) => {
                    return Err(ConfigError::new(
                        Some(mark.clone()),
                        "",
                        format!(
                            "environment variable `{name}` is not set (write `${{{name}:-default}}` for a default)"
                        ),
                    ));
                }
            }
            rest = &body[end + 1..];
        } else {
            out.push('$');
            rest = &after[1..];
        }
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(k: &str) -> Option<String> {
        (k == "TOKEN").then(|| "s3cret".to_owned())
    }

    #[test]
    fn keeps_positions() {
        let n = parse("f.yaml", "a: 1\nb:\n  - x\n  - {c: 'q'}\n", &env).unwrap();
        let b = n.get("b").unwrap();
        let NodeKind::Seq(items) = &b.kind else { panic!() };
        assert_eq!((items[0].mark.line, items[0].mark.column), (3, 5));
        let c = items[1].get("c").unwrap();
        assert_eq!((c.mark.line, c.mark.column), (4, 9));
        assert_eq!(c.kind, NodeKind::Scalar { text: "q".into(), plain: false });
    }

    #[test]
    fn interpolates_environment() {
        let n = parse("f", "t: ${TOKEN}\nd: ${NOPE:-x}\ne: $${TOKEN} $5", &env).unwrap();
        assert_eq!(n.get("t").unwrap().as_str(), Some("s3cret"));
        assert_eq!(n.get("d").unwrap().as_str(), Some("x"));
        assert_eq!(n.get("e").unwrap().as_str(), Some("${TOKEN} $5"));
        // Defaults nest: the first variable set wins, else the innermost text.
        let n = parse("f", "a: ${NOPE:-${TOKEN}}/x\nb: ${NOPE:-${NADA:-deep}}\nc: ${TOKEN:-${NOPE}}", &env).unwrap();
        assert_eq!(n.get("a").unwrap().as_str(), Some("s3cret/x"));
        assert_eq!(n.get("b").unwrap().as_str(), Some("deep"));
        assert_eq!(n.get("c").unwrap().as_str(), Some("s3cret"), "a default not needed is not expanded");
        let deep = format!("a: {}x{}", "${NOPE:-".repeat(20), "}".repeat(20));
        assert!(parse("f", &deep, &env).unwrap_err().message.contains("nested deeper than 8"));
        let e = parse("f", "a:\n  t: ${MISSING}", &env).unwrap_err();
        assert_eq!(e.to_string().split(": ").next(), Some("f:2:6"));
        assert!(e.message.contains("MISSING"));
    }

    #[test]
    fn syntax_errors_have_positions() {
        let e = parse("f", "a: [1, 2\nb: 3\n", &env).unwrap_err();
        assert!(e.mark.is_some());
        assert!(e.message.starts_with("invalid YAML"), "{e}");
    }

    #[test]
    fn aliases_that_multiply_are_refused_at_their_position() {
        // Each level ten aliases of the one before: 10^9 nodes if expanded.
        let mut doc = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..9 {
            let refs = vec![format!("*a{}", i - 1); 10].join(", ");
            doc.push_str(&format!("a{i}: &a{i} [{refs}]\n"));
        }
        let e = parse("bomb", &doc, &env).unwrap_err();
        assert!(e.message.contains("aliases copy more than"), "{e}");
        let mark = e.mark.unwrap();
        assert!(mark.line >= 5 && mark.line <= 9, "{mark}");
        // One long text, aliased many times.
        let doc = format!("a: &a '{}'\nb: [{}]\n", "x".repeat(1 << 20), vec!["*a"; 100].join(", "));
        let e = parse("long", &doc, &env).unwrap_err();
        assert!(e.message.contains("MiB of text"), "{e}");
        assert_eq!(e.mark.unwrap().line, 2);
    }

    #[test]
    fn anchors_and_aliases() {
        let n = parse("f", "a: &x {k: 1}\nb: *x\n", &env).unwrap();
        assert_eq!(n.get("b").unwrap().get("k").unwrap().as_str(), Some("1"));
    }
}
