//! Small expressions over an event, for levels (`warning: "latency > 0.5"`)
//! and filters: arithmetic, comparisons, `and`/`or`/`not`, parentheses,
//! string equality, regex match (`=~`, `!~`) and `abs`, `min`, `max`.
//!
//! A name is looked up among the event's fields, then its tags; `name` and
//! `host` fall back to the event's own. Names with other characters are
//! written in backquotes: `` `usage-idle` < 10 ``. Strings are in single or
//! double quotes. A name the event lacks makes the evaluation fail with
//! [`EvalError::Missing`] (levels turn that into state `unknown`).
//!
//! Expressions are parsed once into a tree; there is no `eval` of code.

use std::fmt;

use regex::Regex;

use crate::event::{Event, Value};

/// A parsed expression.
#[derive(Clone, Debug)]
pub struct Expr {
    root: Node,
    source: String,
}

#[derive(Clone, Debug)]
enum Node {
    Num(f64),
    Str(String),
    Bool(bool),
    Name(String),
    Not(Box<Node>),
    Neg(Box<Node>),
    Bin(Op, Box<Node>, Box<Node>),
    Match(Box<Node>, Box<Regex>, bool),
    Call(Func, Vec<Node>),
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Op {
    Or,
    And,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Add,
    Sub,
    Mul,
    Div,
    Rem,
}

#[derive(Clone, Copy, Debug)]
enum Func {
    Abs,
    Min,
    Max,
}

/// Why an expression does not parse; `column` is 1-based within the text.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("column {column} of the expression: {message}")]
pub struct ParseError {
    pub column: usize,
    pub message: String,
}

/// Why an evaluation gave no answer.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum EvalError {
    /// The event has no field or tag of this name.
    #[error("the event has no field or tag `{0}`")]
    Missing(String),
    /// Values of the wrong type for an operator.
    #[error("{0}")]
    Type(String),
}

/// A value during evaluation.
#[derive(Clone, Debug, PartialEq)]
enum V<'a> {
    Num(f64),
    Str(&'a str),
    Bool(bool),
}

impl V<'_> {
    fn kind(&self) -> &'static str {
        match self {
            V::Num(_) => "a number",
            V::Str(_) => "a string",
            V::Bool(_) => "a boolean",
        }
    }
}

impl Expr {
    /// Parses an expression.
    pub fn parse(text: &str) -> Result<Expr, ParseError> {
        let toks = lex(text)?;
        if let Some(t) = toks.get(MAX_TOKENS) {
            let message = format!("the expression is too long (over {MAX_TOKENS} names, numbers and operators)");
            return Err(ParseError { column: t.col, message });
        }
        let mut p = Parser { toks, pos: 0, len: text.chars().count(), depth: 0 };
        let root = p.expr(0)?;
        if let Some(t) = p.toks.get(p.pos) {
            return Err(ParseError { column: t.col, message: format!("unexpected {}", t.tok) });
        }
        Ok(Expr { root, source: text.to_owned() })
    }

    pub fn source(&self) -> &str {
        &self.source
    }

    /// Evaluates to true or false; numbers are true when not zero.
    pub fn matches(&self, ev: &Event) -> Result<bool, EvalError> {
        match eval(&self.root, ev)? {
            V::Bool(b) => Ok(b),
            V::Num(n) => Ok(n != 0.0),
            V::Str(s) => Err(EvalError::Type(format!("the expression gives the string {s:?}, not true or false"))),
        }
    }

    /// Evaluates to a number.
    pub fn number(&self, ev: &Event) -> Result<f64, EvalError> {
        match eval(&self.root, ev)? {
            V::Num(n) => Ok(n),
            V::Bool(b) => Ok(if b { 1.0 } else { 0.0 }),
            V::Str(s) => s.parse().map_err(|_| EvalError::Type(format!("{s:?} is not a number"))),
        }
    }
}

impl<'de> serde::Deserialize<'de> for Expr {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Expr, D::Error> {
        let s = String::deserialize(d)?;
        Expr::parse(&s).map_err(serde::de::Error::custom)
    }
}

fn lookup<'a>(ev: &'a Event, name: &str) -> Result<V<'a>, EvalError> {
    if let Some((_, v)) = ev.fields.iter().find(|(k, _)| k == name) {
        return Ok(match v {
            Value::Float(f) => V::Num(*f),
            Value::Int(i) => V::Num(*i as f64),
            Value::Uint(u) => V::Num(*u as f64),
            Value::Bool(b) => V::Bool(*b),
            Value::Str(s) => V::Str(s),
        });
    }
    if let Some((_, v)) = ev.tags.iter().find(|(k, _)| k == name) {
        return Ok(V::Str(v));
    }
    match name {
        "name" => Ok(V::Str(&ev.name)),
        "host" => Ok(V::Str(&ev.host)),
        "state" => ev.state.map(|s| V::Str(s.as_str())).ok_or_else(|| EvalError::Missing(name.into())),
        _ => Err(EvalError::Missing(name.into())),
    }
}

fn num(v: &V<'_>, op: &str) -> Result<f64, EvalError> {
    match v {
        V::Num(n) => Ok(*n),
        other => Err(EvalError::Type(format!("`{op}` needs numbers, got {}", other.kind()))),
    }
}

fn truth(v: &V<'_>, op: &str) -> Result<bool, EvalError> {
    match v {
        V::Bool(b) => Ok(*b),
        V::Num(n) => Ok(*n != 0.0),
        other => Err(EvalError::Type(format!("`{op}` needs true or false, got {}", other.kind()))),
    }
}

fn eval<'a>(n: &'a Node, ev: &'a Event) -> Result<V<'a>, EvalError> {
    Ok(match n {
        Node::Num(x) => V::Num(*x),
        Node::Str(s) => V::Str(s),
        Node::Bool(b) => V::Bool(*b),
        Node::Name(name) => lookup(ev, name)?,
        Node::Not(a) => V::Bool(!truth(&eval(a, ev)?, "not")?),
        Node::Neg(a) => V::Num(-num(&eval(a, ev)?, "-")?),
        Node::Bin(Op::And, a, b) => V::Bool(truth(&eval(a, ev)?, "and")? && truth(&eval(b, ev)?, "and")?),
        Node::Bin(Op::Or, a, b) => V::Bool(truth(&eval(a, ev)?, "or")? || truth(&eval(b, ev)?, "or")?),
        Node::Bin(op, a, b) => {
            let (x, y) = (eval(a, ev)?, eval(b, ev)?);
            match op {
                Op::Eq => V::Bool(equal(&x, &y)),
                Op::Ne => V::Bool(!equal(&x, &y)),
                Op::Lt | Op::Le | Op::Gt | Op::Ge => {
                    let ord = match (&x, &y) {
                        (V::Str(a), V::Str(b)) => a.partial_cmp(b),
                        _ => num(&x, "<")?.partial_cmp(&num(&y, "<")?),
                    };
                    let Some(ord) = ord else {
                        return Ok(V::Bool(false));
                    };
                    V::Bool(match op {
                        Op::Lt => ord.is_lt(),
                        Op::Le => ord.is_le(),
                        Op::Gt => ord.is_gt(),
                        _ => ord.is_ge(),
                    })
                }
                Op::Add => V::Num(num(&x, "+")? + num(&y, "+")?),
                Op::Sub => V::Num(num(&x, "-")? - num(&y, "-")?),
                Op::Mul => V::Num(num(&x, "*")? * num(&y, "*")?),
                Op::Div => V::Num(num(&x, "/")? / num(&y, "/")?),
                Op::Rem => V::Num(num(&x, "%")? % num(&y, "%")?),
                Op::And | Op::Or => unreachable!("handled above"),
            }
        }
        Node::Match(a, re, want) => match eval(a, ev)? {
            V::Str(s) => V::Bool(re.is_match(s) == *want),
            other => {
                return Err(EvalError::Type(format!("`=~` needs a string, got {}", other.kind())));
            }
        },
        Node::Call(f, args) => {
            let mut vals = args.iter().map(|a| eval(a, ev).and_then(|v| num(&v, "a function")));
            match f {
                Func::Abs => V::Num(vals.next().expect("arity checked")?.abs()),
                Func::Min => V::Num(vals.try_fold(f64::INFINITY, |m, v| v.map(|v| m.min(v)))?),
                Func::Max => V::Num(vals.try_fold(f64::NEG_INFINITY, |m, v| v.map(|v| m.max(v)))?),
            }
        }
    })
}

fn equal(a: &V<'_>, b: &V<'_>) -> bool {
    match (a, b) {
        (V::Num(x), V::Num(y)) => x == y,
        (V::Str(x), V::Str(y)) => x == y,
        (V::Bool(x), V::Bool(y)) => x == y,
        // A tag compared with a number: compare as numbers when it is one.
        (V::Str(s), V::Num(n)) | (V::Num(n), V::Str(s)) => s.parse::<f64>() == Ok(*n),
        _ => false,
    }
}

// ---------------------------------------------------------------- lexer

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Num(f64),
    Str(String),
    Name(String),
    Sym(&'static str),
}

impl fmt::Display for Tok {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Tok::Num(n) => write!(f, "number {n}"),
            Tok::Str(s) => write!(f, "string {s:?}"),
            Tok::Name(n) => write!(f, "`{n}`"),
            Tok::Sym(s) => write!(f, "`{s}`"),
        }
    }
}

struct Spanned {
    tok: Tok,
    col: usize,
}

const SYMBOLS: &[&str] =
    &["==", "!=", "<=", ">=", "=~", "!~", "&&", "||", "<", ">", "+", "-", "*", "/", "%", "(", ")", ",", "!"];

fn lex(text: &str) -> Result<Vec<Spanned>, ParseError> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    let err = |col: usize, m: String| ParseError { column: col, message: m };
    while i < chars.len() {
        let c = chars[i];
        let col = i + 1;
        if c.is_whitespace() {
            i += 1;
        } else if c.is_ascii_digit() || (c == '.' && chars.get(i + 1).is_some_and(char::is_ascii_digit)) {
            let start = i;
            while i < chars.len()
                && (chars[i].is_ascii_alphanumeric()
                    || chars[i] == '.'
                    || ((chars[i] == '-' || chars[i] == '+') && matches!(chars[i - 1], 'e' | 'E')))
            {
                i += 1;
            }
            let s: String = chars[start..i].iter().collect();
            let n = s.parse().map_err(|_| err(col, format!("{s:?} is not a number")))?;
            out.push(Spanned { tok: Tok::Num(n), col });
        } else if c == '"' || c == '\'' {
            let mut s = String::new();
            i += 1;
            loop {
                match chars.get(i) {
                    None => return Err(err(col, "unterminated string".into())),
                    Some('\\') if chars.get(i + 1).is_some() => {
                        s.push(chars[i + 1]);
                        i += 2;
                    }
                    Some(&q) if q == c => {
                        i += 1;
                        break;
                    }
                    Some(&other) => {
                        s.push(other);
                        i += 1;
                    }
                }
            }
            out.push(Spanned { tok: Tok::Str(s), col });
        } else if c == '`' {
            let start = i + 1;
            let end =
                chars[start..].iter().position(|&c| c == '`').ok_or_else(|| err(col, "unterminated `name`".into()))?;
            let s: String = chars[start..start + end].iter().collect();
            i = start + end + 1;
            out.push(Spanned { tok: Tok::Name(s), col });
        } else if c.is_alphabetic() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_' || chars[i] == '.') {
                i += 1;
            }
            let s: String = chars[start..i].iter().collect();
            out.push(Spanned { tok: Tok::Name(s), col });
        } else {
            let rest: String = chars[i..chars.len().min(i + 2)].iter().collect();
            let sym = SYMBOLS
                .iter()
                .find(|s| rest.starts_with(**s))
                .ok_or_else(|| err(col, format!("unexpected character {c:?}")))?;
            i += sym.chars().count();
            out.push(Spanned { tok: Tok::Sym(sym), col });
        }
    }
    Ok(out)
}

// ---------------------------------------------------------------- parser

/// The most tokens an expression may have, and how deep parentheses,
/// `not`s and minus signs may nest: bounds that keep parsing, evaluating
/// and dropping a tree well within a thread's stack.
pub const MAX_TOKENS: usize = 1000;
pub const MAX_DEPTH: usize = 64;

struct Parser {
    toks: Vec<Spanned>,
    pos: usize,
    len: usize,
    /// How deep the operand being parsed is nested.
    depth: usize,
}

/// Binding power of infix operators: or < and < comparisons < + - < * / %.
fn infix(t: &Tok) -> Option<(u8, Option<Op>)> {
    Some(match t {
        Tok::Name(n) if n == "or" => (1, Some(Op::Or)),
        Tok::Sym("||") => (1, Some(Op::Or)),
        Tok::Name(n) if n == "and" => (2, Some(Op::And)),
        Tok::Sym("&&") => (2, Some(Op::And)),
        Tok::Sym("==") => (3, Some(Op::Eq)),
        Tok::Sym("!=") => (3, Some(Op::Ne)),
        Tok::Sym("<") => (3, Some(Op::Lt)),
        Tok::Sym("<=") => (3, Some(Op::Le)),
        Tok::Sym(">") => (3, Some(Op::Gt)),
        Tok::Sym(">=") => (3, Some(Op::Ge)),
        Tok::Sym("=~") | Tok::Sym("!~") => (3, None),
        Tok::Sym("+") => (4, Some(Op::Add)),
        Tok::Sym("-") => (4, Some(Op::Sub)),
        Tok::Sym("*") => (5, Some(Op::Mul)),
        Tok::Sym("/") => (5, Some(Op::Div)),
        Tok::Sym("%") => (5, Some(Op::Rem)),
        _ => return None,
    })
}

impl Parser {
    fn end_col(&self) -> usize {
        self.len + 1
    }

    fn fail<T>(&self, message: impl Into<String>) -> Result<T, ParseError> {
        let column = self.toks.get(self.pos).map_or(self.end_col(), |t| t.col);
        Err(ParseError { column, message: message.into() })
    }

    fn expr(&mut self, min: u8) -> Result<Node, ParseError> {
        let mut lhs = self.prefix()?;
        while let Some(t) = self.toks.get(self.pos) {
            let Some((bp, op)) = infix(&t.tok) else { break };
            if bp <= min {
                break;
            }
            let negate = t.tok == Tok::Sym("!~");
            self.pos += 1;
            match op {
                Some(op) => {
                    let rhs = self.expr(bp)?;
                    lhs = Node::Bin(op, Box::new(lhs), Box::new(rhs));
                }
                None => {
                    let col = self.toks.get(self.pos).map_or(self.end_col(), |t| t.col);
                    let Some(Spanned { tok: Tok::Str(pat), .. }) = self.toks.get(self.pos) else {
                        return self.fail("`=~` needs a quoted regular expression on its right");
                    };
                    let re = Regex::new(pat).map_err(|e| {
                        // The regex crate draws a multi-line picture; keep its last line.
                        let text = e.to_string();
                        let why = text.lines().last().unwrap_or("").trim_start_matches("error: ");
                        ParseError { column: col, message: format!("bad regular expression: {why}") }
                    })?;
                    self.pos += 1;
                    lhs = Node::Match(Box::new(lhs), Box::new(re), !negate);
                }
            }
        }
        Ok(lhs)
    }

    fn prefix(&mut self) -> Result<Node, ParseError> {
        if self.depth >= MAX_DEPTH {
            return self.fail(format!("nested deeper than {MAX_DEPTH} levels"));
        }
        self.depth += 1;
        let node = self.operand();
        self.depth -= 1;
        node
    }

    fn operand(&mut self) -> Result<Node, ParseError> {
        let Some(t) = self.toks.get(self.pos) else {
            return self.fail("the expression ends too early");
        };
        let tok = t.tok.clone();
        self.pos += 1;
        Ok(match tok {
            Tok::Num(n) => Node::Num(n),
            Tok::Str(s) => Node::Str(s),
            Tok::Sym("(") => {
                let inner = self.expr(0)?;
                self.expect(")")?;
                inner
            }
            Tok::Sym("-") => Node::Neg(Box::new(self.expr(5)?)),
            Tok::Sym("!") => Node::Not(Box::new(self.expr(2)?)),
            Tok::Name(n) if n == "not" => Node::Not(Box::new(self.expr(2)?)),
            Tok::Name(n) if n == "true" => Node::Bool(true),
            Tok::Name(n) if n == "false" => Node::Bool(false),
            Tok::Name(n) if self.toks.get(self.pos).is_some_and(|t| t.tok == Tok::Sym("(")) => {
                let func = match n.as_str() {
                    "abs" => Func::Abs,
                    "min" => Func::Min,
                    "max" => Func::Max,
                    _ => {
                        self.pos -= 1;
                        return self.fail(format!("unknown function `{n}` (there are abs, min and max)"));
                    }
                };
                self.pos += 1;
                let mut args = Vec::new();
                if self.toks.get(self.pos).is_some_and(|t| t.tok == Tok::Sym(")")) {
                    self.pos += 1;
                } else {
                    loop {
                        args.push(self.expr(0)?);
                        if self.toks.get(self.pos).is_some_and(|t| t.tok == Tok::Sym(",")) {
                            self.pos += 1;
                            continue;
                        }
                        self.expect(")")?;
                        break;
                    }
                }
                let ok = match func {
                    Func::Abs => args.len() == 1,
                    _ => !args.is_empty(),
                };
                if !ok {
                    self.pos -= 1;
                    return self.fail(format!(
                        "`{n}` takes {}",
                        if matches!(func, Func::Abs) { "one argument" } else { "one or more arguments" }
                    ));
                }
                Node::Call(func, args)
            }
            Tok::Name(n) => Node::Name(n),
            other => {
                self.pos -= 1;
                return self.fail(format!("unexpected {other}"));
            }
        })
    }

    fn expect(&mut self, sym: &'static str) -> Result<(), ParseError> {
        if self.toks.get(self.pos).is_some_and(|t| t.tok == Tok::Sym(sym)) {
            self.pos += 1;
            Ok(())
        } else {
            self.fail(format!("expected `{sym}`"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::State;

    fn ev() -> Event {
        Event::new("http")
            .host("web-01")
            .tag("region", "eu-west")
            .tag("code", "200")
            .field("latency", 0.7)
            .field("status", 503i64)
            .field("up", true)
            .field("usage-idle", 4.0)
            .state(State::Ok)
    }

    fn t(src: &str) -> Result<bool, EvalError> {
        Expr::parse(src).unwrap().matches(&ev())
    }

    #[test]
    fn evaluates_levels_like_the_brief() {
        assert_eq!(t("latency > 0.5"), Ok(true));
        assert_eq!(t("latency > 2 or status != 200"), Ok(true));
        assert_eq!(t("latency > 2 and status != 200"), Ok(false));
        assert_eq!(t("not (latency > 2) && up"), Ok(true));
        assert_eq!(t("region == 'eu-west' and region =~ \"^eu-\""), Ok(true));
        assert_eq!(t("region !~ 'us'"), Ok(true));
        assert_eq!(t("abs(-latency) * 10 >= 7"), Ok(true));
        assert_eq!(t("max(latency, 1, status / 1000) == 1"), Ok(true));
        assert_eq!(t("min(3, 2) + 2 * 3 == 8"), Ok(true));
        assert_eq!(t("(2 + 2) * 3 % 5 == 2"), Ok(true));
        assert_eq!(t("`usage-idle` < 10"), Ok(true));
        assert_eq!(t("code == 200 and host == 'web-01' and name == 'http'"), Ok(true));
        assert_eq!(t("state == 'ok'"), Ok(true));
        assert_eq!(t("-2 < -1 and 1e3 == 1000 and .5 == 0.5"), Ok(true));
    }

    #[test]
    fn a_missing_name_is_reported_not_guessed() {
        assert_eq!(t("missing > 1"), Err(EvalError::Missing("missing".into())));
        assert!(matches!(t("region + 1 > 0"), Err(EvalError::Type(_))));
    }

    #[test]
    fn parse_errors_name_the_column() {
        let cases = [
            ("latency >", 10, "ends too early"),
            ("latency > > 2", 11, "unexpected `>`"),
            ("(latency > 2", 13, "expected `)`"),
            ("latency ? 2", 9, "unexpected character"),
            ("region =~ 5", 11, "quoted regular expression"),
            ("region =~ '('", 11, "bad regular expression"),
            ("sqrt(latency)", 1, "unknown function"),
            ("latency 2", 9, "unexpected number 2"),
            ("'open", 1, "unterminated string"),
            (&format!("{}1{}", "(".repeat(100_000), ")".repeat(100_000)), 1001, "too long"),
            (&format!("{}1{}", "(".repeat(200), ")".repeat(200)), 65, "nested deeper than 64 levels"),
            (&format!("{}1", "not ".repeat(200)), 257, "nested deeper than 64 levels"),
            (&format!("{}1", "-".repeat(200)), 65, "nested deeper than 64 levels"),
            (&format!("1{}", " + 1".repeat(100_000)), 2001, "too long"),
        ];
        for (src, col, msg) in cases {
            let e = Expr::parse(src).unwrap_err();
            let short = &src[..src.len().min(40)];
            assert_eq!(e.column, col, "{short}: {e}");
            assert!(e.message.contains(msg), "{short}: {e}");
        }
        // Within the bounds, both parse.
        Expr::parse(&format!("{}1{}", "(".repeat(60), ")".repeat(60))).unwrap();
        Expr::parse(&format!("1{}", " + 1".repeat(499))).unwrap();
    }

    mod prop {
        use super::*;
        use proptest::prelude::*;

        /// Random arithmetic over two fields, with the value computed alongside.
        fn arith() -> impl Strategy<Value = (String, f64)> {
            let leaf = prop_oneof![
                (-1000i32..1000).prop_map(|n| (n.to_string(), n as f64)),
                Just(("a".to_owned(), 3.0)),
                Just(("b".to_owned(), -2.5)),
            ];
            leaf.prop_recursive(4, 32, 2, |inner| {
                (inner.clone(), prop_oneof![Just('+'), Just('-'), Just('*')], inner).prop_map(
                    |((sa, va), op, (sb, vb))| {
                        let v = match op {
                            '+' => va + vb,
                            '-' => va - vb,
                            _ => va * vb,
                        };
                        (format!("({sa} {op} {sb})"), v)
                    },
                )
            })
        }

        proptest! {
            #[test]
            fn parsing_anything_never_panics(s in "\\PC{0,40}") {
                if let Ok(e) = Expr::parse(&s) {
                    let _ = e.matches(&ev());
                }
            }

            #[test]
            fn arithmetic_matches_rust((src, want) in arith()) {
                let e = Expr::parse(&src).unwrap();
                let event = Event::new("m").field("a", 3.0).field("b", -2.5);
                prop_assert_eq!(e.number(&event).unwrap(), want);
            }
        }
    }
}
