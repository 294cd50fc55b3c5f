//! Regular expressions in configs, compiled while the config is read, so a
//! bad one is reported at its file:line:column like any other bad value.

use std::fmt;
use std::ops::Deref;

use serde::Deserialize;

/// A compiled regular expression (Rust `regex` syntax).
#[derive(Clone, Debug, Deserialize)]
#[serde(try_from = "String")]
pub struct Regex(regex::Regex);

impl TryFrom<String> for Regex {
    type Error = crate::invalid::Invalid;

    fn try_from(s: String) -> Result<Regex, crate::invalid::Invalid> {
        regex::Regex::new(&s).map(Regex).map_err(|e| crate::invalid::Invalid(format!("invalid regex: {e}")))
    }
}

impl Deref for Regex {
    type Target = regex::Regex;

    fn deref(&self) -> &regex::Regex {
        &self.0
    }
}

impl fmt::Display for Regex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compiles_or_says_why() {
        let r = Regex::try_from("^a+b$".to_owned()).unwrap();
        assert!(r.is_match("aab"));
        assert_eq!(r.to_string(), "^a+b$");
        let e = Regex::try_from("a(".to_owned()).unwrap_err();
        assert!(e.contains("invalid regex"), "{e}");
    }
}
