//! Config trees with positions: every scalar, list and mapping of a config
//! file keeps the file, line and column it was read from, so that any error
//! about it can say where it is.
//!
//! [`yaml`] reads YAML text into a [`Node`] tree; [`de`] reads a tree into a
//! typed value with errors that name the position and key path. A plugin's
//! `config:` block reaches the plugin as a `Node`.

pub mod de;
pub mod yaml;

pub use de::{Flat, Spanned, from_node, struct_fields};

use std::fmt;
use std::sync::Arc;

/// A position in a config file (line and column are 1-based).
#[derive(Clone, Debug, PartialEq, Eq, Default, Hash)]
pub struct Mark {
    pub file: Arc<str>,
    pub line: u32,
    pub column: u32,
}

impl fmt::Display for Mark {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file, self.line, self.column)
    }
}

/// One node of a parsed config file.
#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    pub mark: Mark,
    pub kind: NodeKind,
}

#[derive(Clone, Debug, PartialEq)]
pub enum NodeKind {
    /// A scalar; `plain` is false when it was quoted or a block scalar, and
    /// is then always a string.
    Scalar {
        text: String,
        plain: bool,
    },
    Seq(Vec<Node>),
    /// A mapping, keys in file order.
    Map(Vec<(Node, Node)>),
}

impl Node {
    pub fn null(mark: Mark) -> Node {
        Node { mark, kind: NodeKind::Scalar { text: String::new(), plain: true } }
    }

    pub fn map(mark: Mark, entries: Vec<(Node, Node)>) -> Node {
        Node { mark, kind: NodeKind::Map(entries) }
    }

    pub fn string(mark: Mark, text: impl Into<String>) -> Node {
        Node { mark, kind: NodeKind::Scalar { text: text.into(), plain: false } }
    }

    pub fn is_null(&self) -> bool {
        matches!(&self.kind, NodeKind::Scalar { text, plain: true } if is_null(text))
    }

    /// The value under `key` in a mapping.
    pub fn get(&self, key: &str) -> Option<&Node> {
        match &self.kind {
            NodeKind::Map(m) => m.iter().find(|(k, _)| k.as_str() == Some(key)).map(|(_, v)| v),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match &self.kind {
            NodeKind::Scalar { text, .. } => Some(text),
            _ => None,
        }
    }

    pub(crate) fn describe(&self) -> &'static str {
        match &self.kind {
            NodeKind::Scalar { .. } if self.is_null() => "nothing (null)",
            NodeKind::Scalar { .. } => "a scalar",
            NodeKind::Seq(_) => "a list",
            NodeKind::Map(_) => "a mapping",
        }
    }
}

pub(crate) fn is_null(t: &str) -> bool {
    matches!(t, "" | "~" | "null" | "Null" | "NULL")
}

/// A config error at a position, with the path of the key (`jobs[2].config.url`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    pub mark: Option<Mark>,
    pub path: String,
    pub message: String,
}

impl ConfigError {
    pub fn new(mark: Option<Mark>, path: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigError { mark, path: path.into(), message: message.into() }
    }

    pub fn at(node: &Node, path: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigError::new(Some(node.mark.clone()), path, message)
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(m) = &self.mark {
            write!(f, "{m}: ")?;
        }
        if !self.path.is_empty() {
            write!(f, "{}: ", self.path)?;
        }
        f.write_str(&self.message)
    }
}

impl std::error::Error for ConfigError {}
