//! Key layout of milvus-backup backups in a bucket: `<backupRootPath>/<name>/meta/...` and
//! `<backupRootPath>/<name>/binlogs/...`.
//!
//! Owns key joining and the backup-name rules; does not read or write anything.

/// The file whose presence makes a directory a backup (milvus-backup writes it first and reads
/// it to list backups).
pub const BACKUP_META: &str = "meta/backup_meta.json";

/// Joins key segments with `/`, skipping empty ones and stray slashes.
pub fn join(parts: &[&str]) -> String {
    parts
        .iter()
        .flat_map(|p| p.split('/'))
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join("/")
}

/// The directory of backup `name` under `root`.
pub fn backup_dir(root: &str, name: &str) -> String {
    join(&[root, name])
}

/// Checks a backup name by milvus-backup's rules: 1-128 characters, the first a letter or `_`,
/// the rest letters, digits or `_`.
///
/// # Errors
/// A message saying which rule the name breaks.
pub fn validate_backup_name(name: &str) -> Result<(), String> {
    let mut chars = name.chars();
    let Some(first) = chars.next() else {
        return Err("a backup name cannot be empty".into());
    };
    if name.chars().count() > 128 {
        return Err(format!(
            "backup name `{name}` is longer than 128 characters"
        ));
    }
    if !(first.is_ascii_alphabetic() || first == '_') {
        return Err(format!(
            "backup name `{name}` must start with a letter or `_`"
        ));
    }
    if let Some(c) = chars.find(|c| !(c.is_ascii_alphanumeric() || *c == '_')) {
        return Err(format!(
            "backup name `{name}` contains `{c}`: only letters, digits and `_` are allowed"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn join_skips_empty_segments() {
        assert_eq!(join(&["", "backup", "my_backup"]), "backup/my_backup");
        assert_eq!(join(&["/files/", "/a//b/"]), "files/a/b");
        assert_eq!(join(&["", ""]), "");
        assert_eq!(backup_dir("backup", "b1"), "backup/b1");
    }

    #[test]
    fn backup_names_follow_milvus_backup_rules() {
        assert!(validate_backup_name("my_backup").is_ok());
        assert!(validate_backup_name("_x1").is_ok());
        assert!(validate_backup_name("").is_err());
        assert!(validate_backup_name("1abc").is_err());
        assert!(validate_backup_name("a-b").is_err());
        assert!(validate_backup_name("a b").is_err());
        assert!(validate_backup_name(&"a".repeat(129)).is_err());
    }
}
