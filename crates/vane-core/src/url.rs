//! URLs in configs that may carry secrets (`user:password@`, `?api_key=`).
//! A [`Url`] shows itself redacted wherever it is printed — logs, errors,
//! tags, `Debug` at trace level — and gives the real text only to the code
//! that sends the request ([`Url::expose`]). Redacted: the password of the
//! userinfo, and the value of every query parameter whose name says it is
//! a credential ([`SECRET_PARAMS`], case-insensitive).

use std::fmt;

use serde::Deserialize;

/// Query parameters whose values are secrets.
pub const SECRET_PARAMS: &[&str] = &[
    "api_key",
    "apikey",
    "key",
    "token",
    "access_token",
    "auth",
    "password",
    "passwd",
    "pass",
    "pwd",
    "secret",
    "signature",
    "sig",
    "p",
    "u",
];

const HIDDEN: &str = "REDACTED";

/// A URL from a config: printed redacted, sent as written.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(from = "String")]
pub struct Url {
    raw: String,
    shown: String,
}

impl Url {
    pub fn new(raw: impl Into<String>) -> Url {
        let raw = raw.into();
        Url { shown: redact(&raw), raw }
    }

    /// The URL as written, secrets and all: for the request only.
    pub fn expose(&self) -> &str {
        &self.raw
    }

    /// The URL with its secrets replaced.
    pub fn shown(&self) -> &str {
        &self.shown
    }
}

impl From<String> for Url {
    fn from(raw: String) -> Url {
        Url::new(raw)
    }
}

impl fmt::Display for Url {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.shown)
    }
}

impl fmt::Debug for Url {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.shown)
    }
}

/// `url` with the userinfo's password and secret query values replaced;
/// also for URLs found in other text (an error message).
pub fn redact(url: &str) -> String {
    let (before_frag, frag) = match url.find('#') {
        Some(i) => url.split_at(i),
        None => (url, ""),
    };
    let (base, query) = match before_frag.find('?') {
        Some(i) => (&before_frag[..i], Some(&before_frag[i + 1..])),
        None => (before_frag, None),
    };
    let mut out = String::with_capacity(url.len());
    // scheme://user:password@host/path
    let auth_start = base.find("://").map_or(0, |i| i + 3);
    let auth_end = base[auth_start..].find('/').map_or(base.len(), |i| auth_start + i);
    match base[auth_start..auth_end].rfind('@') {
        Some(at) => {
            let userinfo = &base[auth_start..auth_start + at];
            out.push_str(&base[..auth_start]);
            match userinfo.split_once(':') {
                Some((user, _)) => {
                    out.push_str(user);
                    out.push(':');
                    out.push_str(HIDDEN);
                }
                None => out.push_str(userinfo),
            }
            out.push_str(&base[auth_start + at..]);
        }
        None => out.push_str(base),
    }
    if let Some(q) = query {
        out.push('?');
        for (i, pair) in q.split('&').enumerate() {
            if i > 0 {
                out.push('&');
            }
            match pair.split_once('=') {
                Some((k, _)) if SECRET_PARAMS.iter().any(|s| s.eq_ignore_ascii_case(k)) => {
                    out.push_str(k);
                    out.push('=');
                    out.push_str(HIDDEN);
                }
                _ => out.push_str(pair),
            }
        }
    }
    out.push_str(frag);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_replaced_and_the_rest_kept() {
        let cases = [
            ("http://vane:s3cret@db:8086/write?db=m", "http://vane:REDACTED@db:8086/write?db=m"),
            ("https://user@h/x", "https://user@h/x"),
            ("http://h/x?api_key=abc&q=1&Token=t#f", "http://h/x?api_key=REDACTED&q=1&Token=REDACTED#f"),
            ("http://h/query?u=admin&p=pw&db=x", "http://h/query?u=REDACTED&p=REDACTED&db=x"),
            ("http://h:1/a@b", "http://h:1/a@b"),
            ("http://a:b:c@h", "http://a:REDACTED@h"),
            ("not a url", "not a url"),
        ];
        for (raw, want) in cases {
            let u = Url::new(raw);
            assert_eq!(u.to_string(), want);
            assert_eq!(format!("{u:?}"), format!("{want:?}"));
            assert_eq!(u.expose(), raw);
        }
    }
}
