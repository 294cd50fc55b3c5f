//! Lua 5.4's string patterns, matched here rather than in Lua's C library so
//! that every step is counted: Lua's own matcher backtracks in C, where the
//! instruction hook never runs, and a pattern like `(.-)(.-)(.-)x` on a
//! long subject held a core for minutes. The semantics are Lua 5.4's
//! (`%a`…`%x` in the C locale, sets, `%b`, `%f`, back references, position
//! captures, at most 32 captures, nesting at most 200 deep); the caller
//! gives a meter that each step is charged to.

use std::fmt;

/// Captures a match may hold, as in Lua.
pub const MAX_CAPTURES: usize = 32;
/// How deep matching may recurse, as Lua's `MAXCCALLS`.
const MAX_DEPTH: usize = 200;
/// Steps taken between two charges to the meter.
const CHARGE_EVERY: u32 = 256;

/// Why a match did not finish.
#[derive(Debug, PartialEq, Eq)]
pub enum Failure {
    /// The pattern is wrong: Lua's message.
    Malformed(String),
    /// The meter said stop.
    Stopped,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Malformed(m) => f.write_str(m),
            Failure::Stopped => f.write_str("stopped"),
        }
    }
}

fn malformed<T>(m: impl Into<String>) -> Result<T, Failure> {
    Err(Failure::Malformed(m.into()))
}

/// What a capture holds once matched.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Capture {
    /// `()`: the position (1-based, as Lua reports it).
    Position(usize),
    /// A part of the subject, as a byte range.
    Text(usize, usize),
}

#[derive(Clone, Copy)]
enum Slot {
    Open,
    Position,
    Closed(usize),
}

/// Matches one pattern against one subject, charging a meter as it goes.
pub struct Matcher<'a> {
    src: &'a [u8],
    pat: &'a [u8],
    depth: usize,
    level: usize,
    starts: [usize; MAX_CAPTURES],
    slots: [Slot; MAX_CAPTURES],
    /// Steps since the last charge.
    steps: u32,
    /// Charged with a number of steps; false means stop.
    meter: &'a mut dyn FnMut(u32) -> bool,
}

impl<'a> Matcher<'a> {
    pub fn new(src: &'a [u8], pat: &'a [u8], meter: &'a mut dyn FnMut(u32) -> bool) -> Matcher<'a> {
        Matcher {
            src,
            pat,
            depth: 0,
            level: 0,
            starts: [0; MAX_CAPTURES],
            slots: [Slot::Open; MAX_CAPTURES],
            steps: 0,
            meter,
        }
    }

    /// Tries the pattern from byte `p` of the pattern at byte `s` of the
    /// subject: where the match ends.
    pub fn try_at(&mut self, s: usize, p: usize) -> Result<Option<usize>, Failure> {
        self.level = 0;
        self.depth = 0;
        self.at(s, p)
    }

    /// Settles what is owed to the meter.
    pub fn settle(&mut self) -> Result<(), Failure> {
        let n = std::mem::take(&mut self.steps);
        if n > 0 && !(self.meter)(n) { Err(Failure::Stopped) } else { Ok(()) }
    }

    fn step(&mut self) -> Result<(), Failure> {
        self.steps += 1;
        if self.steps >= CHARGE_EVERY { self.settle() } else { Ok(()) }
    }

    /// The captures of the last match ending at `e` after starting at `s`:
    /// the whole match when the pattern has none and `whole` is asked.
    pub fn captures(&self, s: usize, e: usize, whole: bool) -> Result<Vec<Capture>, Failure> {
        if self.level == 0 {
            return Ok(if whole { vec![Capture::Text(s, e)] } else { Vec::new() });
        }
        (0..self.level).map(|i| self.capture(i, s, e)).collect()
    }

    /// Capture `i` (0-based) of the last match; the whole match as capture
    /// 0 when the pattern has none.
    pub fn capture(&self, i: usize, s: usize, e: usize) -> Result<Capture, Failure> {
        if i >= self.level {
            return if i == 0 {
                Ok(Capture::Text(s, e))
            } else {
                malformed(format!("invalid capture index %{}", i + 1))
            };
        }
        let start = self.starts[i];
        match self.slots[i] {
            Slot::Open => malformed("unfinished capture"),
            Slot::Position => Ok(Capture::Position(start + 1)),
            Slot::Closed(len) => Ok(Capture::Text(start, start + len)),
        }
    }

    /// How many captures the last match holds.
    pub fn level(&self) -> usize {
        self.level
    }

    fn at(&mut self, s: usize, p: usize) -> Result<Option<usize>, Failure> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return malformed("pattern too complex");
        }
        let r = self.at_inner(s, p);
        self.depth -= 1;
        r
    }

    fn at_inner(&mut self, mut s: usize, mut p: usize) -> Result<Option<usize>, Failure> {
        let (src, pat) = (self.src, self.pat);
        loop {
            self.step()?;
            let Some(&c) = pat.get(p) else {
                return Ok(Some(s));
            };
            match c {
                b'(' if pat.get(p + 1) == Some(&b')') => return self.start_capture(s, p + 2, Slot::Position),
                b'(' => return self.start_capture(s, p + 1, Slot::Open),
                b')' => return self.end_capture(s, p + 1),
                b'$' if p + 1 == pat.len() => return Ok((s == src.len()).then_some(s)),
                b'%' if pat.get(p + 1) == Some(&b'b') => match self.balance(s, p + 2)? {
                    Some(ns) => {
                        s = ns;
                        p += 4;
                    }
                    None => return Ok(None),
                },
                b'%' if pat.get(p + 1) == Some(&b'f') => {
                    p += 2;
                    if pat.get(p) != Some(&b'[') {
                        return malformed("missing '[' after '%f' in pattern");
                    }
                    let ep = self.class_end(p)?;
                    let prev = if s == 0 { 0 } else { src[s - 1] };
                    let cur = src.get(s).copied().unwrap_or(0);
                    if self.in_set(prev, p, ep - 1) || !self.in_set(cur, p, ep - 1) {
                        return Ok(None);
                    }
                    p = ep;
                }
                b'%' if pat.get(p + 1).is_some_and(u8::is_ascii_digit) => match self.back_reference(s, pat[p + 1])? {
                    Some(ns) => {
                        s = ns;
                        p += 2;
                    }
                    None => return Ok(None),
                },
                _ => {
                    let ep = self.class_end(p)?;
                    let m = src.get(s).is_some_and(|&c| self.single(c, p, ep));
                    match pat.get(ep) {
                        Some(b'?') => {
                            if m && let Some(r) = self.at(s + 1, ep + 1)? {
                                return Ok(Some(r));
                            }
                            p = ep + 1;
                        }
                        Some(b'+') => return if m { self.longest(s + 1, p, ep) } else { Ok(None) },
                        Some(b'*') => return self.longest(s, p, ep),
                        Some(b'-') => return self.shortest(s, p, ep),
                        _ => {
                            if !m {
                                return Ok(None);
                            }
                            s += 1;
                            p = ep;
                        }
                    }
                }
            }
        }
    }

    /// `x*`: as many as match, giving back one at a time.
    fn longest(&mut self, s: usize, p: usize, ep: usize) -> Result<Option<usize>, Failure> {
        let mut n = 0;
        while self.src.get(s + n).is_some_and(|&c| self.single(c, p, ep)) {
            self.step()?;
            n += 1;
        }
        loop {
            if let Some(r) = self.at(s + n, ep + 1)? {
                return Ok(Some(r));
            }
            if n == 0 {
                return Ok(None);
            }
            n -= 1;
        }
    }

    /// `x-`: as few as match, taking one more at a time.
    fn shortest(&mut self, mut s: usize, p: usize, ep: usize) -> Result<Option<usize>, Failure> {
        loop {
            if let Some(r) = self.at(s, ep + 1)? {
                return Ok(Some(r));
            }
            if self.src.get(s).is_some_and(|&c| self.single(c, p, ep)) {
                s += 1;
            } else {
                return Ok(None);
            }
        }
    }

    fn start_capture(&mut self, s: usize, p: usize, slot: Slot) -> Result<Option<usize>, Failure> {
        if self.level >= MAX_CAPTURES {
            return malformed("too many captures");
        }
        self.starts[self.level] = s;
        self.slots[self.level] = slot;
        self.level += 1;
        let r = self.at(s, p)?;
        if r.is_none() {
            self.level -= 1;
        }
        Ok(r)
    }

    fn end_capture(&mut self, s: usize, p: usize) -> Result<Option<usize>, Failure> {
        let Some(l) = (0..self.level).rev().find(|&i| matches!(self.slots[i], Slot::Open)) else {
            return malformed("invalid pattern capture");
        };
        self.slots[l] = Slot::Closed(s - self.starts[l]);
        let r = self.at(s, p)?;
        if r.is_none() {
            self.slots[l] = Slot::Open;
        }
        Ok(r)
    }

    /// `%bxy` at pattern byte `p` (pointing at `x`).
    fn balance(&mut self, s: usize, p: usize) -> Result<Option<usize>, Failure> {
        let (Some(&open), Some(&close)) = (self.pat.get(p), self.pat.get(p + 1)) else {
            return malformed("malformed pattern (missing arguments to '%b')");
        };
        if self.src.get(s) != Some(&open) {
            return Ok(None);
        }
        let mut depth = 1;
        for i in s + 1..self.src.len() {
            self.step()?;
            let c = self.src[i];
            if c == close {
                depth -= 1;
                if depth == 0 {
                    return Ok(Some(i + 1));
                }
            } else if c == open {
                depth += 1;
            }
        }
        Ok(None)
    }

    /// `%1`…`%9`: the same text as that capture, again.
    fn back_reference(&mut self, s: usize, digit: u8) -> Result<Option<usize>, Failure> {
        let l = (digit - b'0') as usize;
        if l == 0 || l > self.level || matches!(self.slots[l - 1], Slot::Open) {
            return malformed(format!("invalid capture index %{l}"));
        }
        let Slot::Closed(len) = self.slots[l - 1] else {
            return Ok(None);
        };
        let start = self.starts[l - 1];
        for _ in 0..len / 64 {
            self.step()?;
        }
        let want = &self.src[start..start + len];
        Ok(self.src.get(s..s + len).filter(|got| *got == want).map(|_| s + len))
    }

    /// Where the single-character class at `p` ends.
    fn class_end(&self, mut p: usize) -> Result<usize, Failure> {
        let pat = self.pat;
        let c = pat[p];
        p += 1;
        match c {
            b'%' => {
                if p >= pat.len() {
                    return malformed("malformed pattern (ends with '%')");
                }
                Ok(p + 1)
            }
            b'[' => {
                if pat.get(p) == Some(&b'^') {
                    p += 1;
                }
                loop {
                    if p >= pat.len() {
                        return malformed("malformed pattern (missing ']')");
                    }
                    let c = pat[p];
                    p += 1;
                    if c == b'%' && p < pat.len() {
                        p += 1;
                    }
                    if pat.get(p) == Some(&b']') {
                        return Ok(p + 1);
                    }
                }
            }
            _ => Ok(p),
        }
    }

    /// Whether `c` matches the class from `p` to `ep`.
    fn single(&self, c: u8, p: usize, ep: usize) -> bool {
        match self.pat[p] {
            b'.' => true,
            b'%' => class(c, self.pat[p + 1]),
            b'[' => self.in_set(c, p, ep - 1),
            x => x == c,
        }
    }

    /// Whether `c` is in the set from `[` at `p` to its `]` at `end`.
    fn in_set(&self, c: u8, mut p: usize, end: usize) -> bool {
        let pat = self.pat;
        let mut yes = true;
        if pat[p + 1] == b'^' {
            yes = false;
            p += 1;
        }
        p += 1;
        while p < end {
            if pat[p] == b'%' {
                p += 1;
                if class(c, pat[p]) {
                    return yes;
                }
                p += 1;
            } else if pat[p + 1] == b'-' && p + 2 < end {
                if pat[p] <= c && c <= pat[p + 2] {
                    return yes;
                }
                p += 3;
            } else {
                if pat[p] == c {
                    return yes;
                }
                p += 1;
            }
        }
        !yes
    }
}

/// `%a`, `%d`… as Lua has them in the C locale; upper case negates; any
/// other character stands for itself.
fn class(c: u8, cl: u8) -> bool {
    let m = match cl.to_ascii_lowercase() {
        b'a' => c.is_ascii_alphabetic(),
        b'c' => c.is_ascii_control(),
        b'd' => c.is_ascii_digit(),
        b'g' => c.is_ascii_graphic(),
        b'l' => c.is_ascii_lowercase(),
        b'p' => c.is_ascii_punctuation(),
        b's' => matches!(c, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r'),
        b'u' => c.is_ascii_uppercase(),
        b'w' => c.is_ascii_alphanumeric(),
        b'x' => c.is_ascii_hexdigit(),
        _ => return cl == c,
    };
    if cl.is_ascii_uppercase() { !m } else { m }
}

/// Whether a pattern uses none of the special characters (then `find`
/// looks for it as it is).
pub fn is_plain(pat: &[u8]) -> bool {
    !pat.iter().any(|c| b"^$*+?.([%-".contains(c))
}

/// Lua's rule for a start position: 1-based, negative from the end.
pub fn start(init: i64, len: usize) -> usize {
    if init > 0 {
        init as usize
    } else if init == 0 || init.unsigned_abs() as usize > len {
        1
    } else {
        len - init.unsigned_abs() as usize + 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Where `pat` first matches `src` (as `string.find` without captures).
    fn find(src: &str, pat: &str) -> Result<Option<(usize, usize)>, Failure> {
        let mut free = |_| true;
        let (anchor, p) = if pat.starts_with('^') { (true, 1) } else { (false, 0) };
        let mut m = Matcher::new(src.as_bytes(), pat.as_bytes(), &mut free);
        for s in 0..=src.len() {
            if let Some(e) = m.try_at(s, p)? {
                return Ok(Some((s + 1, e)));
            }
            if anchor {
                break;
            }
        }
        Ok(None)
    }

    fn caps(src: &str, pat: &str) -> Vec<String> {
        let mut free = |_| true;
        let mut m = Matcher::new(src.as_bytes(), pat.as_bytes(), &mut free);
        for s in 0..=src.len() {
            if let Some(e) = m.try_at(s, 0).unwrap() {
                return m
                    .captures(s, e, true)
                    .unwrap()
                    .into_iter()
                    .map(|c| match c {
                        Capture::Position(p) => p.to_string(),
                        Capture::Text(a, b) => src[a..b].to_owned(),
                    })
                    .collect();
            }
        }
        Vec::new()
    }

    #[test]
    fn matches_as_lua_does() {
        // Each expectation is what Lua 5.4's string.find / string.match give.
        assert_eq!(find("hello world", "o w"), Ok(Some((5, 7))));
        assert_eq!(find("hello", "l+"), Ok(Some((3, 4))));
        assert_eq!(find("hello", "^h.-o$"), Ok(Some((1, 5))));
        assert_eq!(find("hello", "^e"), Ok(None));
        assert_eq!(find("a.b", "%."), Ok(Some((2, 2))));
        assert_eq!(find("ab12", "%d%d"), Ok(Some((3, 4))));
        assert_eq!(find("x = [[a]] y", "%b[]"), Ok(Some((5, 9))));
        assert_eq!(find("THE (quick) fox", "%f[%a]%a+"), Ok(Some((1, 3))));
        assert_eq!(find("aaa", "a-b"), Ok(None));
        assert_eq!(find("", "x*"), Ok(Some((1, 0))));
        assert_eq!(find("]", "[]]"), Ok(Some((1, 1))));
        assert_eq!(find("a-b", "[%-]"), Ok(Some((2, 2))));
        assert_eq!(find("q", "[^%a]"), Ok(None));
        assert_eq!(find("5", "[0-9]"), Ok(Some((1, 1))));
        assert_eq!(find("colour", "colou?r"), Ok(Some((1, 6))));
        assert_eq!(caps("key = value", "(%w+)%s*=%s*(%w+)"), ["key", "value"]);
        assert_eq!(caps("hello", "()ll()"), ["3", "5"]);
        assert_eq!(caps("say 'hi' now", "(['\"])(.-)%1"), ["'", "hi"]);
        assert_eq!(caps("abc", "b"), ["b"]);
    }

    #[test]
    fn malformed_patterns_say_why_as_lua_does() {
        let msg = |pat: &str| {
            let mut free = |_| true;
            let mut m = Matcher::new(b"abc", pat.as_bytes(), &mut free);
            match m.try_at(0, 0).and_then(|e| m.captures(0, e.unwrap_or(0), true)) {
                Err(Failure::Malformed(m)) => m,
                other => panic!("{pat}: {other:?}"),
            }
        };
        assert_eq!(msg("%"), "malformed pattern (ends with '%')");
        assert_eq!(msg("[a"), "malformed pattern (missing ']')");
        assert_eq!(msg("(a"), "unfinished capture");
        assert_eq!(msg("a)"), "invalid pattern capture");
        assert_eq!(msg("%1"), "invalid capture index %1");
        assert_eq!(msg("%b"), "malformed pattern (missing arguments to '%b')");
        assert_eq!(msg("%fx"), "missing '[' after '%f' in pattern");
        assert_eq!(msg(&"(".repeat(33)), "too many captures");
    }

    #[test]
    fn a_pathological_pattern_is_stopped_by_its_meter() {
        let src = "a".repeat(40);
        let pat = "(.-)(.-)(.-)(.-)(.-)(.-)(.-)(.-)b";
        let mut charged = 0u64;
        let mut meter = |n: u32| {
            charged += u64::from(n);
            charged < 1_000_000
        };
        let mut m = Matcher::new(src.as_bytes(), pat.as_bytes(), &mut meter);
        let r = (0..=src.len()).try_for_each(|s| m.try_at(s, 0).map(|_| ()));
        assert_eq!(r, Err(Failure::Stopped));
        assert!((1_000_000..1_000_000 + 2 * u64::from(CHARGE_EVERY)).contains(&charged), "{charged}");
    }

    proptest::proptest! {
        #[test]
        fn a_pattern_without_specials_is_found_where_the_text_is(src in "[a-c]{0,40}", pat in "[a-c]{1,4}") {
            let want = src.find(&pat).map(|i| (i + 1, i + pat.len()));
            proptest::prop_assert_eq!(find(&src, &pat), Ok(want));
        }

        #[test]
        fn any_pattern_on_any_subject_ends_without_panicking(src in proptest::collection::vec(proptest::num::u8::ANY, 0..64),
                                                           pat in "[a%().*+?\\-\\[\\]^$bf1-3]{0,12}") {
            let mut left = 100_000i64;
            let mut meter = |n: u32| { left -= i64::from(n); left > 0 };
            let mut m = Matcher::new(&src, pat.as_bytes(), &mut meter);
            for s in 0..=src.len() {
                match m.try_at(s, 0) {
                    Ok(Some(e)) => { let _ = m.captures(s, e, true); }
                    Ok(None) => {}
                    Err(_) => break,
                }
            }
        }
    }

    #[test]
    fn start_positions_follow_lua() {
        assert_eq!(start(1, 5), 1);
        assert_eq!(start(0, 5), 1);
        assert_eq!(start(-2, 5), 4);
        assert_eq!(start(-9, 5), 1);
        assert_eq!(start(9, 5), 9);
    }
}
