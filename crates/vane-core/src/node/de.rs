//! A serde deserializer over [`Node`] trees whose errors name the file, line,
//! column and key path of the offending value. Unknown keys are rejected for
//! every struct, whether or not it says `deny_unknown_fields`; [`Flat`] reads
//! two structs from one mapping (serde's `flatten` loses positions).

use std::cell::RefCell;
use std::fmt;

use serde::de::{self, DeserializeOwned, Error as _, IntoDeserializer, Visitor};
use serde::{Deserialize, Deserializer};

use super::{ConfigError, Mark, Node, NodeKind, is_null};

impl de::Error for ConfigError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        ConfigError::new(None, "", msg.to_string())
    }
}

/// Reads a typed value from a node; `path` is the node's own key path.
pub fn from_node<T: DeserializeOwned>(node: &Node, path: &str) -> Result<T, ConfigError> {
    T::deserialize(NodeDe { node, path: path.to_owned() })
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() { key.to_owned() } else { format!("{path}.{key}") }
}

const NODE_MAGIC: &str = "$vane::node::Node";
const SPANNED_MAGIC: &str = "$vane::node::Spanned";
const FLAT_MAGIC: &str = "$vane::node::Flat";

thread_local! {
    static CAPTURED_NODE: RefCell<Option<Node>> = const { RefCell::new(None) };
    static CAPTURED_MARK: RefCell<Option<Mark>> = const { RefCell::new(None) };
    static CAPTURED_FLAT: RefCell<Option<(Node, String)>> = const { RefCell::new(None) };
    static FLAT_ERROR: RefCell<Option<ConfigError>> = const { RefCell::new(None) };
    /// Set while [`struct_fields`] asks a type for its keys.
    static PROBING: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Keeps a subtree as a raw [`Node`] (a plugin's `config:` block).
impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Node, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Node;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a config node")
            }
            fn visit_unit<E: de::Error>(self) -> Result<Node, E> {
                CAPTURED_NODE
                    .with(|c| c.borrow_mut().take())
                    .ok_or_else(|| E::custom("a config node can only be read from a config file"))
            }
        }
        d.deserialize_newtype_struct(NODE_MAGIC, V)
    }
}

/// A value with the position it was read from.
#[derive(Clone, Debug, PartialEq)]
pub struct Spanned<T> {
    pub value: T,
    pub mark: Mark,
}

impl<T> std::ops::Deref for Spanned<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.value
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Spanned<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Spanned<T>, D::Error> {
        struct V<T>(std::marker::PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
            type Value = Spanned<T>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a value")
            }
            fn visit_newtype_struct<D: Deserializer<'de>>(self, d: D) -> Result<Spanned<T>, D::Error> {
                let mark = CAPTURED_MARK.with(|c| c.borrow_mut().take()).unwrap_or_default();
                Ok(Spanned { value: T::deserialize(d)?, mark })
            }
        }
        d.deserialize_newtype_struct(SPANNED_MAGIC, V(std::marker::PhantomData))
    }
}

/// Two config structs read from one mapping, as serde's `flatten` would,
/// but keeping positions: each key goes to the part that declares it, and a
/// key neither declares is an error listing both parts' keys. Both parts
/// must be structs; nest `Flat`s for more than two.
#[derive(Clone, Debug, PartialEq)]
pub struct Flat<A, B>(pub A, pub B);

impl<'de, A: DeserializeOwned, B: DeserializeOwned> Deserialize<'de> for Flat<A, B> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Flat<A, B>, D::Error> {
        struct V<A, B>(std::marker::PhantomData<(A, B)>);
        impl<'de, A: DeserializeOwned, B: DeserializeOwned> Visitor<'de> for V<A, B> {
            type Value = Flat<A, B>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a mapping")
            }
            fn visit_unit<E: de::Error>(self) -> Result<Flat<A, B>, E> {
                let (node, path) = CAPTURED_FLAT
                    .with(|c| c.borrow_mut().take())
                    .ok_or_else(|| E::custom("a flat config can only be read from a config file"))?;
                split(&node, &path).map_err(|e| {
                    FLAT_ERROR.with(|f| *f.borrow_mut() = Some(e));
                    E::custom("a config error")
                })
            }
        }
        let v = V(std::marker::PhantomData);
        if PROBING.with(|p| p.get()) {
            // `struct_fields` asks for the keys: both parts'.
            let keys = union(struct_fields::<A>(), struct_fields::<B>());
            return d.deserialize_struct("Flat", keys, v);
        }
        d.deserialize_newtype_struct(FLAT_MAGIC, v)
    }
}

/// Reads each part from the keys it declares.
fn split<A: DeserializeOwned, B: DeserializeOwned>(node: &Node, path: &str) -> Result<Flat<A, B>, ConfigError> {
    let (ka, kb) = (struct_fields::<A>(), struct_fields::<B>());
    let entries: &[(Node, Node)] = match &node.kind {
        NodeKind::Map(m) => m,
        _ if node.is_null() => &[],
        _ => {
            return Err(ConfigError::at(node, path, format!("expected a mapping, found {}", node.describe())));
        }
    };
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for (k, v) in entries {
        let name = k.as_str().unwrap_or("");
        if ka.contains(&name) {
            a.push((k.clone(), v.clone()));
        } else if kb.contains(&name) {
            b.push((k.clone(), v.clone()));
        } else {
            return Err(ConfigError::at(
                k,
                join(path, name),
                format!("unknown key `{name}`, expected {}", one_of(union(ka, kb))),
            ));
        }
    }
    Ok(Flat(from_node(&Node::map(node.mark.clone(), a), path)?, from_node(&Node::map(node.mark.clone(), b), path)?))
}

/// Both key lists as one, made once per pair (serde wants `'static` keys).
fn union(a: &'static [&'static str], b: &'static [&'static str]) -> &'static [&'static str] {
    type Key = (usize, usize, usize, usize);
    static MADE: std::sync::Mutex<Vec<(Key, &'static [&'static str])>> = std::sync::Mutex::new(Vec::new());
    let key = (a.as_ptr() as usize, a.len(), b.as_ptr() as usize, b.len());
    let mut made = MADE.lock().unwrap_or_else(|p| p.into_inner());
    if let Some((_, u)) = made.iter().find(|(k, _)| *k == key) {
        return u;
    }
    let u: &'static [&'static str] = Vec::leak([a, b].concat());
    made.push((key, u));
    u
}

/// Gives an error without a position the position and path of `node`.
fn locate(node: &Node, path: &str, mut e: ConfigError) -> ConfigError {
    if e.mark.is_none() {
        e.mark = Some(node.mark.clone());
        e.path = path.to_owned();
    }
    e
}

struct NodeDe<'a> {
    node: &'a Node,
    path: String,
}

impl NodeDe<'_> {
    /// Gives an error without a position this node's position and path.
    fn locate(&self, e: ConfigError) -> ConfigError {
        locate(self.node, &self.path, e)
    }

    fn scalar(&self, want: &str) -> Result<&str, ConfigError> {
        match &self.node.kind {
            NodeKind::Scalar { text, .. } if !self.node.is_null() || want == "a string" => Ok(text),
            _ => Err(self.locate(ConfigError::custom(format!("expected {want}, found {}", self.node.describe())))),
        }
    }

    fn parse<T: std::str::FromStr>(&self, want: &str) -> Result<T, ConfigError> {
        let t = self.scalar(want)?;
        parse_int_like(t).ok_or_else(|| self.locate(ConfigError::custom(format!("expected {want}, found {t:?}"))))
    }
}

fn parse_int_like<T: std::str::FromStr>(t: &str) -> Option<T> {
    let t = t.trim();
    t.parse().ok().or_else(|| t.replace('_', "").parse().ok())
}

fn parse_float(t: &str) -> Option<f64> {
    match t {
        ".inf" | ".Inf" | ".INF" | "+.inf" => Some(f64::INFINITY),
        "-.inf" | "-.Inf" | "-.INF" => Some(f64::NEG_INFINITY),
        ".nan" | ".NaN" | ".NAN" => Some(f64::NAN),
        _ if t.chars().any(|c| c.is_ascii_alphabetic() && c != 'e' && c != 'E') => None,
        _ => parse_int_like(t),
    }
}

macro_rules! de_int {
    ($($m:ident $t:ty => $v:ident, $want:literal;)*) => {$(
        fn $m<V: Visitor<'de>>(self, v: V) -> Result<V::Value, ConfigError> {
            let n: $t = self.parse($want)?;
            v.$v(n).map_err(|e| self.locate(e))
        }
    )*};
}

impl<'de> Deserializer<'de> for NodeDe<'_> {
    type Error = ConfigError;

    fn deserialize_any<V: Visitor<'de>>(self, v: V) -> Result<V::Value, ConfigError> {
        let r = match &self.node.kind {
            NodeKind::Scalar { text, plain: false } => v.visit_str(text),
            NodeKind::Scalar { text, plain: true } => {
                let t = text.as_str();
                if is_null(t) {
                    v.visit_unit()
                } else if let Some(b) = parse_bool(t) {
                    v.visit_bool(b)
                } else if let Ok(i) = t.parse::<i64>() {
                    v.visit_i64(i)
                } else if let Ok(u) = t.parse::<u64>() {
                    v.visit_u64(u)
                } else if let Some(f) = parse_float(t).filter(|_| looks_numeric(t)) {
                    v.visit_f64(f)
                } else {
                    v.visit_str(t)
                }
            }
            NodeKind::Seq(_) => return self.deserialize_seq(v),
            NodeKind::Map(_) => return self.deserialize_map(v),
        };
        r.map_err(|e| self.locate(e))
    }

    fn deserialize_bool<V: Visitor<'de>>(self, v: V) -> Result<V::Value, ConfigError> {
        let t = self.scalar("true or false")?;
        match parse_bool(t) {
            Some(b) => v.visit_bool(b).map_err(|e| self.locate(e)),
            None => Err(self.locate(ConfigError::custom(format!("expected true or false, found {t:?}")))),
        }
    }

    de_int! {
        deserialize_i8 i8 => visit_i8, "an integer (i8)";
        deserialize_i16 i16 => visit_i16, "an integer (i16)";
        deserialize_i32 i32 => visit_i32, "an integer";
        deserialize_i64 i64 => visit_i64, "an integer";
        deserialize_u8 u8 => visit_u8, "a whole number from 0 to 255";
        deserialize_u16 u16 => visit_u16, "a whole number from 0 to 65535";
        deserialize_u32 u32 => visit_u32, "a whole number";
        deserialize_u64 u64 => visit_u64, "a whole number";
    }

    fn deserialize_f32<V: Visitor<'de>>(self, v: V) -> Result<V::Value, ConfigError> {
        self.deserialize_f64(v)
    }

    fn deserialize_f64<V: Visitor<'de>>(self, v: V) -> Result<V::Value, ConfigError> {
        let t = self.scalar("a number")?;
        match parse_float(t) {
            Some(f) => v.visit_f64(f).map_err(|e| self.locate(e)),
            None => Err(self.locate(ConfigError::custom(format!("expected a number, found {t:?}")))),
        }
    }

    fn deserialize_char<V: Visitor<'de>>(self, v: V) -> Result<V::Value, ConfigError> {
        self.deserialize_str(v)
    }

    fn deserialize_str<V: Visitor<'de>>(self, v: V) -> Result<V::Value, ConfigError> {
        let t = self.scalar("a string")?;
        v.visit_str(t).map_err(|e| self.locate(e))
    }

    fn deserialize_string<V: Visitor<'de>>(self, v: V) -> Result<V::Value, ConfigError> {
        self.deserialize_str(v)
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, v: V) -> Result<V::Value, ConfigError> {
        self.deserialize_str(v)
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, v: V) -> Result<V::Value, ConfigError> {
        self.deserialize_str(v)
    }

    fn deserialize_option<V: Visitor<'de>>(self, v: V) -> Result<V::Value, ConfigError> {
        if self.node.is_null() {
            v.visit_none().map_err(|e| self.locate(e))
        } else {
            let (node, path) = (self.node, self.path.clone());
            v.visit_some(self).map_err(|e| locate(node, &path, e))
        }
    }

    fn deserialize_unit<V: Visitor<'de>>(self, v: V) -> Result<V::Value, ConfigError> {
        // `{}` says "no settings" as plainly as nothing does.
        let empty_map = matches!(&self.node.kind, NodeKind::Map(m) if m.is_empty());
        if self.node.is_null() || empty_map {
            v.visit_unit().map_err(|e| self.locate(e))
        } else {
            Err(self.locate(ConfigError::custom(format!("expected nothing, found {}", self.node.describe()))))
        }
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(self, _: &'static str, v: V) -> Result<V::Value, ConfigError> {
        self.deserialize_unit(v)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(self, name: &'static str, v: V) -> Result<V::Value, ConfigError> {
        if name == FLAT_MAGIC {
            CAPTURED_FLAT.with(|c| *c.borrow_mut() = Some((self.node.clone(), self.path.clone())));
            // The parts' own errors, with their positions, come back stashed.
            return v.visit_unit().map_err(|e| FLAT_ERROR.with(|f| f.borrow_mut().take()).unwrap_or(e));
        }
        if name == NODE_MAGIC {
            CAPTURED_NODE.with(|c| *c.borrow_mut() = Some(self.node.clone()));
            return v.visit_unit();
        }
        if name == SPANNED_MAGIC {
            CAPTURED_MARK.with(|c| *c.borrow_mut() = Some(self.node.mark.clone()));
        }
        let (node, path) = (self.node, self.path.clone());
        v.visit_newtype_struct(self).map_err(|e| locate(node, &path, e))
    }

    fn deserialize_seq<V: Visitor<'de>>(self, v: V) -> Result<V::Value, ConfigError> {
        match &self.node.kind {
            NodeKind::Seq(items) => {
                let r = v.visit_seq(Seq { items: items.iter().enumerate(), path: &self.path });
                r.map_err(|e| self.locate(e))
            }
            _ if self.node.is_null() => v
                .visit_seq(de::value::SeqDeserializer::new(std::iter::empty::<()>()))
                .map_err(|e: ConfigError| self.locate(e)),
            _ => Err(self.locate(ConfigError::custom(format!("expected a list, found {}", self.node.describe())))),
        }
    }

    fn deserialize_tuple<V: Visitor<'de>>(self, _: usize, v: V) -> Result<V::Value, ConfigError> {
        self.deserialize_seq(v)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        _: usize,
        v: V,
    ) -> Result<V::Value, ConfigError> {
        self.deserialize_seq(v)
    }

    fn deserialize_map<V: Visitor<'de>>(self, v: V) -> Result<V::Value, ConfigError> {
        self.map_with_fields(v, None)
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        fields: &'static [&'static str],
        v: V,
    ) -> Result<V::Value, ConfigError> {
        self.map_with_fields(v, Some(fields))
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _: &'static str,
        variants: &'static [&'static str],
        v: V,
    ) -> Result<V::Value, ConfigError> {
        let r = match &self.node.kind {
            NodeKind::Scalar { text, .. } => {
                if !variants.contains(&text.as_str()) {
                    return Err(self.locate(ConfigError::custom(format!(
                        "unknown value {text:?}, expected {}",
                        one_of(variants)
                    ))));
                }
                v.visit_enum(text.as_str().into_deserializer())
            }
            NodeKind::Map(m) if m.len() == 1 => v.visit_enum(Enum { key: &m[0].0, value: &m[0].1, path: &self.path }),
            _ => {
                return Err(self.locate(ConfigError::custom(format!(
                    "expected one of {}, found {}",
                    one_of(variants),
                    self.node.describe()
                ))));
            }
        };
        r.map_err(|e| self.locate(e))
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, v: V) -> Result<V::Value, ConfigError> {
        self.deserialize_str(v)
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, v: V) -> Result<V::Value, ConfigError> {
        v.visit_unit()
    }
}

impl NodeDe<'_> {
    fn map_with_fields<'de, V: Visitor<'de>>(
        self,
        v: V,
        fields: Option<&'static [&'static str]>,
    ) -> Result<V::Value, ConfigError> {
        let empty = Vec::new();
        let entries = match &self.node.kind {
            NodeKind::Map(m) => m,
            _ if self.node.is_null() => &empty,
            _ => {
                return Err(
                    self.locate(ConfigError::custom(format!("expected a mapping, found {}", self.node.describe())))
                );
            }
        };
        let mut seen: Vec<&str> = Vec::new();
        for (k, _) in entries {
            let name = k.as_str().unwrap_or("");
            let kpath = join(&self.path, name);
            if seen.contains(&name) {
                return Err(ConfigError::at(k, kpath, format!("duplicate key `{name}`")));
            }
            seen.push(name);
            if let Some(fields) = fields.filter(|f| !f.is_empty() && !f.contains(&name)) {
                return Err(ConfigError::at(k, kpath, format!("unknown key `{name}`, expected {}", one_of(fields))));
            }
        }
        let r = v.visit_map(Map { entries: entries.iter(), value: None, path: &self.path });
        r.map_err(|e| self.locate(e))
    }
}

fn one_of(names: &[&str]) -> String {
    let quoted: Vec<String> = names.iter().map(|n| format!("`{n}`")).collect();
    match quoted.len() {
        0 => "nothing".into(),
        1 => quoted[0].clone(),
        _ => format!("one of {}", quoted.join(", ")),
    }
}

fn parse_bool(t: &str) -> Option<bool> {
    match t {
        "true" | "True" | "TRUE" => Some(true),
        "false" | "False" | "FALSE" => Some(false),
        _ => None,
    }
}

fn looks_numeric(t: &str) -> bool {
    t.starts_with(|c: char| c.is_ascii_digit() || c == '-' || c == '+' || c == '.')
}

struct Seq<'a, I> {
    items: I,
    path: &'a str,
}

impl<'de, 'a, I: Iterator<Item = (usize, &'a Node)>> de::SeqAccess<'de> for Seq<'a, I> {
    type Error = ConfigError;

    fn next_element_seed<T: de::DeserializeSeed<'de>>(&mut self, seed: T) -> Result<Option<T::Value>, ConfigError> {
        match self.items.next() {
            None => Ok(None),
            Some((i, node)) => {
                let path = format!("{}[{i}]", self.path);
                seed.deserialize(NodeDe { node, path: path.clone() }).map(Some).map_err(|e| locate(node, &path, e))
            }
        }
    }
}

struct Map<'a, I> {
    entries: I,
    value: Option<(&'a Node, String)>,
    path: &'a str,
}

impl<'de, 'a, I: Iterator<Item = &'a (Node, Node)>> de::MapAccess<'de> for Map<'a, I> {
    type Error = ConfigError;

    fn next_key_seed<K: de::DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>, ConfigError> {
        match self.entries.next() {
            None => Ok(None),
            Some((k, v)) => {
                let kpath = join(self.path, k.as_str().unwrap_or("?"));
                let key =
                    seed.deserialize(NodeDe { node: k, path: kpath.clone() }).map_err(|e| locate(k, &kpath, e))?;
                self.value = Some((v, kpath));
                Ok(Some(key))
            }
        }
    }

    fn next_value_seed<V: de::DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, ConfigError> {
        let (node, path) = self.value.take().expect("value after key");
        seed.deserialize(NodeDe { node, path: path.clone() }).map_err(|e| locate(node, &path, e))
    }
}

struct Enum<'a> {
    key: &'a Node,
    value: &'a Node,
    path: &'a str,
}

impl<'de, 'a> de::EnumAccess<'de> for Enum<'a> {
    type Error = ConfigError;
    type Variant = NodeDe<'a>;

    fn variant_seed<V: de::DeserializeSeed<'de>>(self, seed: V) -> Result<(V::Value, NodeDe<'a>), ConfigError> {
        let name = self.key.as_str().unwrap_or("?");
        let path = join(self.path, name);
        let v = seed.deserialize(NodeDe { node: self.key, path: path.clone() })?;
        Ok((v, NodeDe { node: self.value, path }))
    }
}

impl<'de> de::VariantAccess<'de> for NodeDe<'_> {
    type Error = ConfigError;

    fn unit_variant(self) -> Result<(), ConfigError> {
        Ok(())
    }

    fn newtype_variant_seed<T: de::DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, ConfigError> {
        seed.deserialize(self)
    }

    fn tuple_variant<V: Visitor<'de>>(self, _: usize, v: V) -> Result<V::Value, ConfigError> {
        self.deserialize_seq(v)
    }

    fn struct_variant<V: Visitor<'de>>(self, fields: &'static [&'static str], v: V) -> Result<V::Value, ConfigError> {
        self.map_with_fields(v, Some(fields))
    }
}

/// The top-level keys of a config struct, read from its `Deserialize` impl.
///
/// Used by `vane plugins` to list a plugin's config keys without a schema
/// that could drift from the code.
pub fn struct_fields<T: DeserializeOwned>() -> &'static [&'static str] {
    struct Probe;
    #[derive(Debug)]
    struct Found(&'static [&'static str]);
    impl fmt::Display for Found {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("probe")
        }
    }
    impl std::error::Error for Found {}
    impl de::Error for Found {
        fn custom<T: fmt::Display>(_: T) -> Self {
            Found(&[])
        }
    }
    impl<'de> Deserializer<'de> for Probe {
        type Error = Found;
        fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Found> {
            Err(Found(&[]))
        }
        fn deserialize_struct<V: Visitor<'de>>(
            self,
            _: &'static str,
            fields: &'static [&'static str],
            _: V,
        ) -> Result<V::Value, Found> {
            Err(Found(fields))
        }
        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
            bytes byte_buf option unit unit_struct newtype_struct seq tuple
            tuple_struct map enum identifier ignored_any
        }
    }
    let was = PROBING.with(|p| p.replace(true));
    let found = T::deserialize(Probe);
    PROBING.with(|p| p.set(was));
    match found {
        Err(Found(f)) => f,
        Ok(_) => &[],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::duration::Duration;

    fn mark(line: u32, column: u32) -> Mark {
        Mark { file: "t.yaml".into(), line, column }
    }

    fn s(line: u32, col: u32, t: &str) -> Node {
        Node { mark: mark(line, col), kind: NodeKind::Scalar { text: t.into(), plain: true } }
    }

    #[derive(Deserialize, Debug)]
    #[allow(dead_code, reason = "read by serde only: the tests need the keys")]
    struct Inner {
        url: String,
        #[serde(default)]
        timeout: Option<Duration>,
    }

    #[derive(Deserialize, Debug)]
    #[allow(dead_code, reason = "read by serde only: the tests need the keys")]
    struct Outer {
        name: Spanned<String>,
        inner: Inner,
        #[serde(default)]
        raw: Option<Node>,
    }

    fn doc(inner_key: &str, timeout: &str) -> Node {
        Node::map(
            mark(1, 1),
            vec![
                (s(1, 1, "name"), s(1, 7, "x")),
                (
                    s(2, 1, "inner"),
                    Node::map(
                        mark(3, 3),
                        vec![(s(3, 3, inner_key), s(3, 8, "http://x")), (s(4, 3, "timeout"), s(4, 12, timeout))],
                    ),
                ),
                (s(5, 1, "raw"), Node::map(mark(5, 6), vec![(s(5, 6, "a"), s(5, 9, "1"))])),
            ],
        )
    }

    #[test]
    fn reads_typed_values_spans_and_raw_nodes() {
        let o: Outer = from_node(&doc("url", "5s"), "").unwrap();
        assert_eq!(o.name.mark, mark(1, 7));
        assert_eq!(o.inner.timeout, Some(Duration::from_secs(5)));
        assert_eq!(o.raw.unwrap().get("a").unwrap().as_str(), Some("1"));
    }

    #[test]
    fn unknown_nested_key_names_position_and_path() {
        let e = from_node::<Outer>(&doc("urll", "5s"), "jobs[0]").unwrap_err();
        assert_eq!(
            e.to_string(),
            "t.yaml:3:3: jobs[0].inner.urll: unknown key `urll`, expected one of `url`, `timeout`"
        );
    }

    #[test]
    fn bad_value_names_the_value() {
        let e = from_node::<Outer>(&doc("url", "5"), "").unwrap_err();
        assert_eq!(e.mark, Some(mark(4, 12)));
        assert_eq!(e.path, "inner.timeout");
        assert!(e.message.contains("needs a unit"), "{e}");
    }

    #[test]
    fn missing_field_points_at_the_mapping() {
        let n = Node::map(mark(2, 3), vec![]);
        let e = from_node::<Inner>(&n, "cfg").unwrap_err();
        assert_eq!(e.to_string(), "t.yaml:2:3: cfg: missing field `url`");
    }

    #[derive(Deserialize, Debug, PartialEq)]
    struct Head {
        id: Spanned<String>,
    }

    #[derive(Deserialize, Debug, PartialEq)]
    struct Tail {
        #[serde(default)]
        timeout: Option<Duration>,
    }

    #[test]
    fn flat_reads_two_parts_from_one_mapping_with_positions() {
        let n = Node::map(mark(1, 1), vec![(s(1, 1, "timeout"), s(1, 10, "5s")), (s(2, 1, "id"), s(2, 5, "a"))]);
        let Flat(h, t): Flat<Head, Tail> = from_node(&n, "jobs[0]").unwrap();
        assert_eq!((h.id.value.as_str(), h.id.mark.line), ("a", 2));
        assert_eq!(t.timeout, Some(Duration::from_secs(5)));
        // A key neither part knows lists both parts' keys, at its position.
        let bad = Node::map(mark(1, 1), vec![(s(3, 3, "idd"), s(3, 8, "a"))]);
        let e = from_node::<Flat<Head, Tail>>(&bad, "jobs[0]").unwrap_err();
        assert_eq!(e.to_string(), "t.yaml:3:3: jobs[0].idd: unknown key `idd`, expected one of `id`, `timeout`");
        // A part's own error keeps its position and path.
        let bad = Node::map(mark(1, 1), vec![(s(1, 1, "id"), s(1, 5, "a")), (s(2, 1, "timeout"), s(2, 10, "5"))]);
        let e = from_node::<Flat<Head, Tail>>(&bad, "jobs[0]").unwrap_err();
        assert_eq!((e.mark, e.path.as_str()), (Some(mark(2, 10)), "jobs[0].timeout"));
        // Nested, and listed as one struct.
        assert_eq!(struct_fields::<Flat<Head, Flat<Tail, Inner>>>(), &["id", "timeout", "url", "timeout"]);
        let missing = from_node::<Flat<Head, Tail>>(&Node::map(mark(4, 1), vec![]), "x");
        assert_eq!(missing.unwrap_err().to_string(), "t.yaml:4:1: x: missing field `id`");
    }

    #[test]
    fn lists_struct_fields() {
        assert_eq!(struct_fields::<Inner>(), &["url", "timeout"]);
        assert!(struct_fields::<String>().is_empty());
    }
}
