//! The error of reading text or bytes that do not make what was asked for
//! (a duration, a size, a Graphite line, a statsd packet, a buffer record):
//! what was wrong with them, as a sentence.

/// Input that does not read: what was wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Invalid(pub String);

impl From<String> for Invalid {
    fn from(s: String) -> Invalid {
        Invalid(s)
    }
}

impl From<&str> for Invalid {
    fn from(s: &str) -> Invalid {
        Invalid(s.to_owned())
    }
}

impl Invalid {
    /// Whether the message contains `s` (for tests and callers matching on it).
    pub fn contains(&self, s: &str) -> bool {
        self.0.contains(s)
    }

    pub fn starts_with(&self, s: &str) -> bool {
        self.0.starts_with(s)
    }
}

/// `TryFrom<String>` by `FromStr`, for a type serde reads from config text
/// (`#[serde(try_from = "String")]`): one way for every such type.
macro_rules! read_from_text {
    ($t:ty) => {
        impl TryFrom<String> for $t {
            type Error = $crate::invalid::Invalid;

            fn try_from(s: String) -> Result<$t, $crate::invalid::Invalid> {
                s.parse()
            }
        }
    };
}
pub(crate) use read_from_text;
