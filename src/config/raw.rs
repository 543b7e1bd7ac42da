//! The profile file as data: YAML text flattened into lowercase dotted keys.
//!
//! Owns YAML parsing (syntax errors with line and column), the case-insensitive flattening
//! (`minio.accessKeyID` and `MINIO.accesskeyid` are the same key), and the bookkeeping of which
//! keys a schema loader consumed, so the rest can be reported as unknown. Does not know any
//! schema, default or environment variable.

use std::collections::BTreeMap;
use std::path::Path;

use serde_yaml::Value;

use super::ConfigError;

/// One leaf of the file: its spelling in the file and its value.
#[derive(Debug)]
struct Entry {
    /// The dotted key as written in the file (original case), for messages.
    written: String,
    value: Value,
    used: bool,
}

/// Flat view of one profile file.
#[derive(Debug, Default)]
pub(crate) struct RawDoc {
    entries: BTreeMap<String, Entry>,
    /// Every key a loader asked for, present or not: lowercase -> canonical spelling.
    asked: BTreeMap<String, String>,
}

impl RawDoc {
    /// Parses YAML text. An empty document gives an empty map.
    pub(crate) fn parse(text: &str, path: &Path) -> Result<RawDoc, ConfigError> {
        let root: Value = serde_yaml::from_str(text).map_err(|e| syntax_error(&e, path))?;
        let mut doc = RawDoc::default();
        match root {
            Value::Null => {}
            Value::Mapping(map) => doc.flatten("", "", &Value::Mapping(map), path)?,
            Value::Tagged(t) => doc.flatten("", "", &t.value, path)?,
            _ => {
                return Err(ConfigError::Invalid {
                    path: path.to_path_buf(),
                    key: "(document)".into(),
                    reason: "the profile must be a YAML mapping of keys to values".into(),
                });
            }
        }
        Ok(doc)
    }

    fn flatten(
        &mut self,
        prefix: &str,
        written: &str,
        value: &Value,
        path: &Path,
    ) -> Result<(), ConfigError> {
        let value = match value {
            Value::Tagged(t) => &t.value,
            v => v,
        };
        let Value::Mapping(map) = value else {
            return self.insert(prefix, written, value.clone(), path);
        };
        if map.is_empty() && !prefix.is_empty() {
            return self.insert(prefix, written, Value::Null, path);
        }
        for (k, v) in map {
            let name = match k {
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                Value::Bool(b) => b.to_string(),
                _ => {
                    return Err(ConfigError::Invalid {
                        path: path.to_path_buf(),
                        key: if written.is_empty() {
                            "(document)".into()
                        } else {
                            written.to_string()
                        },
                        reason: "a key must be a plain string".into(),
                    });
                }
            };
            let (key, shown) = if prefix.is_empty() {
                (name.to_ascii_lowercase(), name)
            } else {
                (
                    format!("{prefix}.{}", name.to_ascii_lowercase()),
                    format!("{written}.{name}"),
                )
            };
            self.flatten(&key, &shown, v, path)?;
        }
        Ok(())
    }

    fn insert(
        &mut self,
        key: &str,
        written: &str,
        value: Value,
        path: &Path,
    ) -> Result<(), ConfigError> {
        if let Some(first) = self.entries.get(key) {
            return Err(ConfigError::Invalid {
                path: path.to_path_buf(),
                key: written.to_string(),
                reason: format!(
                    "given twice (also as `{}`; keys are case-insensitive)",
                    first.written
                ),
            });
        }
        self.entries.insert(
            key.to_string(),
            Entry {
                written: written.to_string(),
                value,
                used: false,
            },
        );
        Ok(())
    }

    /// Consumes `key` (any case). Returns its value unless absent or null (a null value counts as
    /// "not set", so the default applies).
    pub(crate) fn take(&mut self, key: &str) -> Option<Value> {
        let lower = key.to_ascii_lowercase();
        self.asked.insert(lower.clone(), key.to_string());
        let entry = self.entries.get_mut(&lower)?;
        entry.used = true;
        match &entry.value {
            Value::Null => None,
            v => Some(v.clone()),
        }
    }

    /// True when `key` is in the file with a non-null value (does not consume it).
    pub(crate) fn has(&self, key: &str) -> bool {
        self.entries
            .get(&key.to_ascii_lowercase())
            .is_some_and(|e| !e.value.is_null())
    }

    /// True when `key` is a section in the file (it has keys below it).
    pub(crate) fn is_section(&self, key: &str) -> bool {
        let prefix = format!("{}.", key.to_ascii_lowercase());
        self.entries
            .range(prefix.clone()..)
            .next()
            .is_some_and(|(k, _)| k.starts_with(&prefix))
    }

    /// True when the file has no keys at all.
    pub(crate) fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Keys never consumed, as written in the file, with the closest known key when one is
    /// near (for "did you mean"). A null entry that is only a section header for known keys
    /// (`milvus:` with every child commented out) is not reported.
    pub(crate) fn unused(&self) -> Vec<(String, Option<String>)> {
        let mut out = Vec::new();
        for (key, entry) in &self.entries {
            if entry.used {
                continue;
            }
            if entry.value.is_null() {
                let section = format!("{key}.");
                if self.asked.keys().any(|k| k.starts_with(&section)) {
                    continue;
                }
            }
            let suggestion = self
                .asked
                .iter()
                .map(|(lower, canonical)| (edit_distance(lower, key), canonical))
                .filter(|(d, _)| *d <= 2)
                .min()
                .map(|(_, k)| k.clone());
            out.push((entry.written.clone(), suggestion));
        }
        out
    }
}

fn syntax_error(e: &serde_yaml::Error, path: &Path) -> ConfigError {
    let (line, column) = e.location().map_or((0, 0), |l| (l.line(), l.column()));
    let mut message = e.to_string();
    if let Some(at) = message.find(" at line ") {
        message.truncate(at);
    }
    ConfigError::Syntax {
        path: path.to_path_buf(),
        line,
        column,
        message,
    }
}

/// Levenshtein distance over bytes; keys are ASCII.
fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, ca) in a.iter().enumerate() {
        cur[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(text: &str) -> RawDoc {
        RawDoc::parse(text, Path::new("t.yaml")).unwrap()
    }

    #[test]
    fn flattens_case_insensitively() {
        let mut d = doc("Minio:\n  AccessKeyID: k\n  nested: {Deep: 1}\n");
        assert_eq!(d.take("minio.accesskeyid"), Some(Value::String("k".into())));
        assert!(d.has("MINIO.NESTED.DEEP"));
        let unused = d.unused();
        assert_eq!(unused.len(), 1);
        assert_eq!(unused[0].0, "Minio.nested.Deep");
    }

    #[test]
    fn case_duplicates_are_rejected() {
        let err = RawDoc::parse("minio:\n  port: 1\n  PORT: 2\n", Path::new("t.yaml")).unwrap_err();
        assert!(err.to_string().contains("given twice"), "{err}");
    }

    #[test]
    fn null_is_unset_and_sections_are_not_unknown() {
        let mut d = doc("milvus:\nminio:\n  rootPath:\n");
        assert_eq!(d.take("minio.rootpath"), None);
        d.take("milvus.address");
        assert!(d.unused().is_empty());
    }

    #[test]
    fn suggests_near_keys() {
        let mut d = doc("minio:\n  bukcetName: x\n");
        d.take("minio.bucketName");
        assert_eq!(d.unused()[0].1.as_deref(), Some("minio.bucketName"));
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }

    #[test]
    fn syntax_error_has_location() {
        let err = RawDoc::parse("a: 1\nb: [1, 2\nc: 3\n", Path::new("t.yaml")).unwrap_err();
        match err {
            ConfigError::Syntax { line, column, .. } => assert!(line > 0 && column > 0),
            other => panic!("{other}"),
        }
    }
}
