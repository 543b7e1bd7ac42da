//! [`ServerVersion`]: the Milvus release a server reports, and the features that depend on it.
//!
//! Parsing follows milvus-backup: a leading `v` is dropped, suffixes (`-lite`, `-gpu`) and a
//! fourth hotfix component are ignored, and a version that cannot be parsed (dev builds, managed
//! clouds) counts as the newest.

use std::fmt;

/// The first release that imports L0 (delete-only) segments (`l0_import`).
pub const L0_IMPORT_SINCE: (u32, u32, u32) = (2, 4, 5);
/// The first release that reads storage-v2 segments (packed column groups).
pub const STORAGE_V2_SINCE: (u32, u32, u32) = (2, 6, 0);

/// A Milvus server version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerVersion {
    /// As the server reported it, e.g. `v2.3.5-lite`.
    pub raw: String,
    /// `(major, minor, patch)`; `None` when it could not be parsed (treated as newest).
    pub parsed: Option<(u32, u32, u32)>,
}

impl ServerVersion {
    /// Parses what `Connect` or `GetVersion` returned.
    pub fn parse(raw: &str) -> ServerVersion {
        let s = raw.trim().trim_start_matches(['v', 'V']);
        let core = s.split(['-', '+', ' ']).next().unwrap_or("");
        let nums: Vec<Option<u32>> = core.split('.').map(|p| p.parse().ok()).collect();
        let parsed = match nums.as_slice() {
            [Some(a), Some(b), Some(c), ..] => Some((*a, *b, *c)),
            [Some(a), Some(b)] => Some((*a, *b, 0)),
            _ => None,
        };
        ServerVersion {
            raw: raw.trim().to_string(),
            parsed,
        }
    }

    /// Whether the server is at least `major.minor.patch` (unknown versions are).
    pub fn at_least(&self, major: u32, minor: u32, patch: u32) -> bool {
        self.parsed.is_none_or(|v| v >= (major, minor, patch))
    }

    /// Whether `GetLoadingProgress` tells a collection that is not loaded by a status code
    /// (2.3 on: `CollectionNotLoaded`, read as 0 %). 2.2 answers it with the generic
    /// `UnexpectedError` ("has not been loaded to memory or load failed"), so there the load
    /// state comes from `ShowCollections` with `type: InMemory` instead, which lists the loaded
    /// collections with their percentages on every release.
    pub fn has_loading_progress_status(&self) -> bool {
        self.at_least(2, 3, 0)
    }

    /// `DescribeDatabase` (database properties) exists from 2.4.3, where milvus-backup starts
    /// calling it (`mb@f81df44`; the RPC is in proto `v2.4.0`, the server's answer from 2.4.3).
    pub fn has_describe_database(&self) -> bool {
        self.at_least(2, 4, 3)
    }

    /// `CreateDatabaseRequest.properties` (field 3) is understood from 2.4.0 (proto `v2.4.0`);
    /// older servers drop the field.
    pub fn has_database_properties(&self) -> bool {
        self.at_least(2, 4, 0)
    }

    /// The `skip_disk_quota_check` import option is understood from 2.4 (older servers ignore
    /// unknown options, so this only keeps requests tidy).
    pub fn supports_skip_disk_quota(&self) -> bool {
        self.at_least(2, 4, 0)
    }
}

/// Whether binlogs written by Milvus `source` can be imported into Milvus `target`: not when
/// the source's release line (major.minor) is newer, whose segments may use a format or
/// fields the target does not know. A version that cannot be parsed is not judged.
///
/// # Errors
/// Why not, naming both versions.
pub fn restorable_into(source: &ServerVersion, target: &ServerVersion) -> Result<(), String> {
    match (source.parsed, target.parsed) {
        (Some((sa, sb, _)), Some((ta, tb, _))) if (sa, sb) > (ta, tb) => Err(format!(
            "the backup was made on Milvus {source}, a newer release than the target's \
             {target}: a Milvus cannot import segments written by a newer release; restore \
             into Milvus {sa}.{sb} or later"
        )),
        _ => Ok(()),
    }
}

impl fmt::Display for ServerVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.raw)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_newer_release_line_is_not_restorable_into_an_older_one() {
        let v = ServerVersion::parse;
        // Older or same line, whatever the patch: fine.
        assert!(restorable_into(&v("v2.2.16"), &v("v2.3.5")).is_ok());
        assert!(restorable_into(&v("v2.3.9"), &v("v2.3.5")).is_ok());
        assert!(restorable_into(&v("v2.5.4"), &v("v2.6.0")).is_ok());
        assert!(restorable_into(&v("v2.6.3"), &v("v3.0.0-beta")).is_ok());
        // Newer line: refused, naming both.
        let e = restorable_into(&v("v2.5.4"), &v("v2.3.5-lite")).unwrap_err();
        assert!(e.contains("v2.5.4") && e.contains("v2.3.5-lite"), "{e}");
        assert!(e.contains("Milvus 2.5 or later"), "{e}");
        assert!(restorable_into(&v("v3.0.0"), &v("v2.6.9")).is_err());
        // Unknown versions (milvus-backup leaves the field empty in some releases) are not
        // judged.
        assert!(restorable_into(&v(""), &v("v2.3.5")).is_ok());
        assert!(restorable_into(&v("v2.5.4"), &v("master-abc")).is_ok());
    }

    #[test]
    fn parses_release_tags() {
        assert_eq!(ServerVersion::parse("v2.3.5-lite").parsed, Some((2, 3, 5)));
        assert_eq!(
            ServerVersion::parse("2.4.13-hotfix").parsed,
            Some((2, 4, 13))
        );
        assert_eq!(ServerVersion::parse("v2.5.4.1").parsed, Some((2, 5, 4)));
        assert_eq!(ServerVersion::parse("master-20260101-abc").parsed, None);
        let v = ServerVersion::parse("v2.3.5-lite");
        let (a, b, c) = L0_IMPORT_SINCE;
        assert!(v.at_least(2, 3, 0) && !v.at_least(2, 4, 0) && !v.at_least(a, b, c));
        let (a, b, c) = STORAGE_V2_SINCE;
        assert!(ServerVersion::parse("dev").at_least(a, b, c));
        assert!(!ServerVersion::parse("v2.2.16-lite").has_loading_progress_status());
        assert!(v.has_loading_progress_status());
        assert!(!v.has_describe_database() && !v.has_database_properties());
        assert!(!ServerVersion::parse("v2.4.2").has_describe_database());
        assert!(ServerVersion::parse("v2.4.2").has_database_properties());
        assert!(ServerVersion::parse("v2.4.3").has_describe_database());
        assert!(ServerVersion::parse("v2.6.3").at_least(a, b, c));
    }
}
