//! Resolution of one key: environment variable, then file, then default or inherited value,
//! recorded with its [`Source`] for `Profile::describe`.
//!
//! Owns the precedence env > file > default, the typed parsing of values ([`Field`]), the wording
//! of type errors (which never echo a secret) and the list of resolved settings and warnings.
//! Does not know any schema: `v1.rs` and `v2.rs` say which keys exist and how they inherit.

use std::path::Path;

use serde_yaml::Value;

use super::milvus::TlsMode;
use super::raw::RawDoc;
use super::size::{format_size, parse_rate, parse_secs, parse_size};
use super::storage::{AuthType, StorageType};
use super::transfer::TransferMode;
use super::{ConfigError, Secret, Setting, Source};

/// Where a value comes from when neither the environment nor the file sets it.
pub(crate) enum Fallback<T> {
    /// The schema default.
    Default(T),
    /// Inherited from another resolved key (named, in the file's schema).
    Inherit(T, String),
}

/// A resolved value and where it came from.
#[derive(Debug, Clone)]
pub(crate) struct Got<T> {
    pub(crate) value: T,
    pub(crate) source: Source,
    /// The key (or alias) that supplied it, canonical spelling.
    pub(crate) key: String,
}

/// A type a profile value can be parsed into.
pub(crate) trait Field: Sized {
    /// Never echo the value in errors.
    const SECRET: bool = false;
    /// What was expected, for values of the wrong shape (lists, mappings).
    const EXPECTED: &'static str;

    /// Parses a scalar written as text (YAML scalars are turned into text first).
    fn parse_text(s: &str) -> Result<Self, String>;

    /// Parses a YAML value; scalars go through [`Field::parse_text`].
    fn parse_yaml(v: &Value) -> Result<Self, String> {
        match scalar_text(v) {
            Some(t) => Self::parse_text(&t),
            None => Err(Self::EXPECTED.to_string()),
        }
    }

    /// The value as `describe()` shows it (secrets masked).
    fn show(&self) -> String;
}

fn scalar_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Tagged(t) => scalar_text(&t.value),
        _ => None,
    }
}

/// How a found value is quoted in an error message.
fn describe_found(v: &Value) -> String {
    match v {
        Value::String(s) => format!("{s:?}"),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Sequence(_) => "a list".into(),
        Value::Mapping(_) => "a mapping".into(),
        Value::Tagged(t) => describe_found(&t.value),
        Value::Null => "nothing".into(),
    }
}

/// Walks one profile: the flattened file, the environment and the record of what was resolved.
pub(crate) struct Resolver<'a> {
    pub(crate) path: &'a Path,
    pub(crate) doc: RawDoc,
    env: &'a dyn Fn(&str) -> Option<String>,
    pub(crate) settings: Vec<Setting>,
    pub(crate) warnings: Vec<String>,
}

impl<'a> Resolver<'a> {
    pub(crate) fn new(
        path: &'a Path,
        doc: RawDoc,
        env: &'a dyn Fn(&str) -> Option<String>,
    ) -> Self {
        Resolver {
            path,
            doc,
            env,
            settings: Vec::new(),
            warnings: Vec::new(),
        }
    }

    /// An `Invalid` error for `key` in this file.
    pub(crate) fn invalid(&self, key: &str, reason: impl Into<String>) -> ConfigError {
        ConfigError::Invalid {
            path: self.path.to_path_buf(),
            key: key.to_string(),
            reason: reason.into(),
        }
    }

    /// An `Env` error for `var` in this file.
    pub(crate) fn env_error(&self, var: &str, reason: impl Into<String>) -> ConfigError {
        ConfigError::Env {
            path: self.path.to_path_buf(),
            var: var.to_string(),
            reason: reason.into(),
        }
    }

    /// Adds a warning, prefixed with the file name.
    pub(crate) fn warn(&mut self, message: impl std::fmt::Display) {
        self.warnings
            .push(format!("{}: {message}", self.path.display()));
    }

    /// Looks `keys` (first one canonical, the rest aliases) up in the environment, then the
    /// file. Every alias is consumed. Nothing is recorded.
    pub(crate) fn lookup<T: Field>(
        &mut self,
        keys: &[&str],
        env: Option<&str>,
    ) -> Result<Option<Got<T>>, ConfigError> {
        let mut found: Option<Got<T>> = None;
        if let Some(var) = env
            && let Some(text) = (self.env)(var).filter(|t| !t.is_empty())
        {
            let value = T::parse_text(&text).map_err(|reason| {
                let reason = if T::SECRET {
                    reason
                } else {
                    format!("{reason}, got {text:?}")
                };
                self.env_error(var, reason)
            })?;
            found = Some(Got {
                value,
                source: Source::Env(var.to_string()),
                key: keys[0].to_string(),
            });
        }
        for key in keys {
            let Some(raw) = self.doc.take(key) else {
                if self.doc.is_section(key) {
                    return Err(self.invalid(key, format!("{}, got a mapping", T::EXPECTED)));
                }
                continue;
            };
            if found.is_some() {
                continue;
            }
            let value = T::parse_yaml(&raw).map_err(|reason| {
                let reason = if T::SECRET {
                    reason
                } else {
                    format!("{reason}, got {}", describe_found(&raw))
                };
                self.invalid(key, reason)
            })?;
            found = Some(Got {
                value,
                source: Source::File,
                key: key.to_string(),
            });
        }
        Ok(found)
    }

    /// [`Resolver::lookup`], then the fallback. Nothing is recorded.
    pub(crate) fn resolve<T: Field>(
        &mut self,
        keys: &[&str],
        env: Option<&str>,
        fallback: Fallback<T>,
    ) -> Result<Got<T>, ConfigError> {
        if let Some(got) = self.lookup(keys, env)? {
            return Ok(got);
        }
        let (value, source) = match fallback {
            Fallback::Default(v) => (v, Source::Default),
            Fallback::Inherit(v, from) => (v, Source::Inherited(from)),
        };
        Ok(Got {
            value,
            source,
            key: keys[0].to_string(),
        })
    }

    /// [`Resolver::resolve`] and record the result for `describe()`.
    pub(crate) fn get_src<T: Field>(
        &mut self,
        keys: &[&str],
        env: Option<&str>,
        fallback: Fallback<T>,
    ) -> Result<Got<T>, ConfigError> {
        let got = self.resolve(keys, env, fallback)?;
        self.record_got(&got);
        Ok(got)
    }

    /// [`Resolver::get_src`], value only.
    pub(crate) fn get<T: Field>(
        &mut self,
        keys: &[&str],
        env: Option<&str>,
        fallback: Fallback<T>,
    ) -> Result<T, ConfigError> {
        Ok(self.get_src(keys, env, fallback)?.value)
    }

    /// Records a resolved value.
    pub(crate) fn record_got<T: Field>(&mut self, got: &Got<T>) {
        self.record(&got.key, got.value.show(), got.source.clone());
    }

    /// Records a setting shown by `describe()`.
    pub(crate) fn record(&mut self, key: &str, value: String, source: Source) {
        self.settings.push(Setting {
            key: key.to_string(),
            value,
            source,
        });
    }

    /// Consumes a key that is accepted and ignored without a word.
    pub(crate) fn ignore(&mut self, key: &str) {
        self.doc.take(key);
    }

    /// Consumes a key that is no longer used and warns when the file has it.
    pub(crate) fn retired(&mut self, key: &str, note: &str) {
        if self.doc.has(key) {
            self.warn(format_args!(
                "key `{key}` is no longer used ({note}); ignored"
            ));
        }
        self.doc.take(key);
    }
}

// ---- Field types ---------------------------------------------------------------------------

impl Field for String {
    const EXPECTED: &'static str = "expected a string";
    fn parse_text(s: &str) -> Result<Self, String> {
        Ok(s.to_string())
    }
    fn show(&self) -> String {
        self.clone()
    }
}

impl Field for Secret {
    const SECRET: bool = true;
    const EXPECTED: &'static str = "expected a string (value not shown)";
    fn parse_text(s: &str) -> Result<Self, String> {
        Ok(Secret::new(s))
    }
    fn show(&self) -> String {
        self.masked().to_string()
    }
}

impl Field for bool {
    const EXPECTED: &'static str = "expected true or false";
    fn parse_text(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "true" | "1" => Ok(true),
            "false" | "0" => Ok(false),
            _ => Err(Self::EXPECTED.into()),
        }
    }
    fn show(&self) -> String {
        self.to_string()
    }
}

macro_rules! unsigned_field {
    ($t:ty) => {
        impl Field for $t {
            const EXPECTED: &'static str = "expected a non-negative integer";
            fn parse_text(s: &str) -> Result<Self, String> {
                s.trim().parse().map_err(|_| Self::EXPECTED.to_string())
            }
            fn show(&self) -> String {
                self.to_string()
            }
        }
    };
}
unsigned_field!(u32);
unsigned_field!(u64);
unsigned_field!(usize);

/// A TCP port 1-65535.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Port(pub(crate) u16);

impl Field for Port {
    const EXPECTED: &'static str = "expected a port number 1-65535";
    fn parse_text(s: &str) -> Result<Self, String> {
        let t = s.trim();
        if t.starts_with("tcp://") || t.starts_with("udp://") {
            return Err(format!(
                "{}; a `tcp://host:port` value is what Kubernetes injects for a Service of the \
                 same name (service links), not a port: set `enableServiceLinks: false` in the \
                 pod spec or unset the variable",
                Self::EXPECTED
            ));
        }
        match t.parse::<u16>() {
            Ok(p) if p > 0 => Ok(Port(p)),
            _ => Err(Self::EXPECTED.into()),
        }
    }
    fn show(&self) -> String {
        self.0.to_string()
    }
}

/// A byte size (`16MiB`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Size(pub(crate) u64);

impl Field for Size {
    const EXPECTED: &'static str = "expected a size such as `16MiB` or a byte count";
    fn parse_text(s: &str) -> Result<Self, String> {
        parse_size(s)
            .map(Size)
            .map_err(|e| format!("{} ({e})", Self::EXPECTED))
    }
    fn show(&self) -> String {
        format_size(self.0)
    }
}

/// A byte rate; 0 means "off".
#[derive(Debug, Clone, Copy)]
pub(crate) struct Rate(pub(crate) u64);

impl Field for Rate {
    const EXPECTED: &'static str = "expected a rate such as `50MiB/s`, or `off`";
    fn parse_text(s: &str) -> Result<Self, String> {
        parse_rate(s)
            .map(|r| Rate(r.unwrap_or(0)))
            .map_err(|e| format!("{} ({e})", Self::EXPECTED))
    }
    fn show(&self) -> String {
        show_rate(self.0)
    }
}

/// How a byte rate is shown: `off` or `50MiB/s`.
pub(crate) fn show_rate(bytes_per_sec: u64) -> String {
    if bytes_per_sec == 0 {
        "off".into()
    } else {
        format!("{}/s", format_size(bytes_per_sec))
    }
}

/// Whole seconds (`60s`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Secs(pub(crate) u64);

impl Field for Secs {
    const EXPECTED: &'static str = "expected a duration such as `60s`, `2m` or a number of seconds";
    fn parse_text(s: &str) -> Result<Self, String> {
        parse_secs(s)
            .map(Secs)
            .map_err(|e| format!("{} ({e})", Self::EXPECTED))
    }
    fn show(&self) -> String {
        format!("{}s", self.0)
    }
}

impl Field for StorageType {
    const EXPECTED: &'static str = "expected a storage type name";
    fn parse_text(s: &str) -> Result<Self, String> {
        s.parse()
    }
    fn show(&self) -> String {
        self.as_str().into()
    }
}

impl Field for AuthType {
    const EXPECTED: &'static str = "expected an auth type name";
    fn parse_text(s: &str) -> Result<Self, String> {
        s.parse()
    }
    fn show(&self) -> String {
        self.as_str().into()
    }
}

impl Field for TransferMode {
    const EXPECTED: &'static str = "expected auto, direct or streaming";
    fn parse_text(s: &str) -> Result<Self, String> {
        s.parse()
    }
    fn show(&self) -> String {
        self.as_str().into()
    }
}

/// v1 TLS mode: 0, 1, 2.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TlsV1(pub(crate) TlsMode);

impl Field for TlsV1 {
    const EXPECTED: &'static str = "expected 0 (off), 1 (verify server) or 2 (mutual)";
    fn parse_text(s: &str) -> Result<Self, String> {
        TlsMode::parse_v1(s).map(TlsV1)
    }
    fn show(&self) -> String {
        self.0.as_v1().to_string()
    }
}

/// v2 TLS mode: disabled, server, mutual.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TlsV2(pub(crate) TlsMode);

impl Field for TlsV2 {
    const EXPECTED: &'static str = "expected disabled, server or mutual";
    fn parse_text(s: &str) -> Result<Self, String> {
        TlsMode::parse_v2(s).map(TlsV2)
    }
    fn show(&self) -> String {
        self.0.as_str().into()
    }
}

/// A list of strings: a YAML list, or one comma-separated string.
#[derive(Debug, Clone)]
pub(crate) struct List(pub(crate) Vec<String>);

impl Field for List {
    const EXPECTED: &'static str = "expected a list of strings or a comma-separated string";
    fn parse_text(s: &str) -> Result<Self, String> {
        Ok(List(
            s.split(',')
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .map(String::from)
                .collect(),
        ))
    }
    fn parse_yaml(v: &Value) -> Result<Self, String> {
        match v {
            Value::Sequence(items) => items
                .iter()
                .map(|i| scalar_text(i).ok_or_else(|| Self::EXPECTED.to_string()))
                .collect::<Result<Vec<_>, _>>()
                .map(List),
            other => match scalar_text(other) {
                Some(t) => Self::parse_text(&t),
                None => Err(Self::EXPECTED.into()),
            },
        }
    }
    fn show(&self) -> String {
        self.0.join(",")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolver<'a>(text: &str, env: &'a dyn Fn(&str) -> Option<String>) -> Resolver<'a> {
        let doc = RawDoc::parse(text, Path::new("t.yaml")).unwrap();
        Resolver::new(Path::new("t.yaml"), doc, env)
    }

    #[test]
    fn env_beats_file_beats_default() {
        let env = |k: &str| (k == "PORT_VAR").then(|| "7".to_string());
        let mut r = resolver("a:\n  port: 5\n  other: 6\n", &env);
        let got = r
            .get_src::<Port>(&["a.port"], Some("PORT_VAR"), Fallback::Default(Port(1)))
            .unwrap();
        assert_eq!(
            (got.value.0, got.source),
            (7, Source::Env("PORT_VAR".into()))
        );
        let got = r
            .get_src::<Port>(&["a.other"], Some("NOPE"), Fallback::Default(Port(1)))
            .unwrap();
        assert_eq!((got.value.0, got.source), (6, Source::File));
        let got = r
            .get_src::<Port>(&["a.none"], None, Fallback::Default(Port(1)))
            .unwrap();
        assert_eq!((got.value.0, got.source), (1, Source::Default));
        assert!(
            r.doc.unused().is_empty(),
            "env-overridden key still counts as known"
        );
    }

    #[test]
    fn scalar_kinds() {
        assert_eq!(bool::parse_yaml(&Value::String("false".into())), Ok(false));
        assert_eq!(bool::parse_yaml(&Value::Bool(true)), Ok(true));
        assert!(bool::parse_yaml(&Value::String("maybe".into())).is_err());
        assert_eq!(
            Port::parse_yaml(&Value::String("9000".into())).unwrap().0,
            9000
        );
        assert!(Port::parse_text("0").is_err());
        assert!(Port::parse_text("70000").is_err());
        assert!(
            Port::parse_text("tcp://10.0.0.1:19530")
                .unwrap_err()
                .contains("Kubernetes")
        );
        let list: Value = serde_yaml::from_str("[a:1, b:2]").unwrap();
        assert_eq!(List::parse_yaml(&list).unwrap().0, vec!["a:1", "b:2"]);
        assert_eq!(List::parse_text("a, b,").unwrap().0, vec!["a", "b"]);
    }

    #[test]
    fn secret_type_errors_do_not_echo() {
        let env = |_: &str| None;
        let mut r = resolver("a:\n  pw: [\"hunter2\"]\n", &env);
        let err = r
            .get::<Secret>(&["a.pw"], None, Fallback::Default(Secret::default()))
            .unwrap_err();
        assert!(!err.to_string().contains("hunter2"), "{err}");
        assert!(err.to_string().contains("a.pw"), "{err}");
    }
}
