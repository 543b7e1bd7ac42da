//! [`Secret`]: a string that must never be shown.
//!
//! Owns the redaction rule for passwords, secret keys, session tokens, credential JSON and
//! account keys: `Debug` and `Display` print `***` (or nothing when the secret is empty), so a
//! struct holding a `Secret` may derive `Debug` safely. Does not own where secrets come from
//! (that is the schema loaders) nor how they are sent to a server (that is the caller, through
//! [`Secret::expose`]).

use std::fmt;

/// A credential. The only way to read the value is [`Secret::expose`].
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a value.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The value itself, for the one place that hands it to a client library.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// True when no secret was given (the masked form is then the empty string).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The masked form used in `Debug`, `Display` and `describe()`: `***`, or `""` when empty.
    pub fn masked(&self) -> &'static str {
        if self.0.is_empty() { "" } else { "***" }
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            f.write_str("\"\"")
        } else {
            f.write_str("***")
        }
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.masked())
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Secret(value)
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Secret(value.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_are_masked() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s:?}"), "***");
        assert_eq!(format!("{s}"), "***");
        assert_eq!(format!("{:?}", Some(&s)), "Some(***)");
        assert_eq!(s.expose(), "hunter2");
        assert!(!s.is_empty());
    }

    #[test]
    fn empty_secret_shows_empty() {
        let s = Secret::default();
        assert_eq!(format!("{s}"), "");
        assert_eq!(format!("{s:?}"), "\"\"");
        assert!(s.is_empty());
    }
}
