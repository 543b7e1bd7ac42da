//! The copy plan: what to do with each source object given what the destination already holds
//! and what the ledger remembers.
//!
//! Owns the skip / copy / resume decision and conflict detection. Pure: takes listings and
//! ledger state, does no I/O.

use std::collections::HashMap;

use super::checksum;
use super::ledger::{LedgerState, OpenUpload};
use crate::storage::ObjectInfo;

/// What to do with one object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Already at the destination and identical.
    Skip,
    /// Copy from the beginning.
    Copy,
    /// Finish the multipart upload a previous run started.
    Resume(OpenUpload),
}

/// One object of the plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanItem {
    /// Key relative to the copy's prefixes.
    pub rel: String,
    /// Source size.
    pub size: u64,
    /// Source ETag, if any.
    pub src_etag: Option<String>,
    /// What to do.
    pub action: Action,
    /// Position in the copy order, set when the copy starts: the byte-rate limit serves lower
    /// ranks first.
    pub rank: u64,
}

/// A destination object that does not match the source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    /// Relative key.
    pub rel: String,
    /// Why it conflicts.
    pub reason: String,
}

/// The whole plan.
#[derive(Debug, Clone, Default)]
pub struct CopyPlan {
    /// Every source object, in copy order.
    pub items: Vec<PlanItem>,
    /// Destination objects that differ from the source or do not exist there.
    pub conflicts: Vec<Conflict>,
    /// Relative keys present only at the destination.
    pub extra: Vec<String>,
}

impl CopyPlan {
    /// Builds the plan. `src` and `dst` are listings keyed by relative key; `last` are relative
    /// keys copied after everything else (the backup's meta files, so a partly copied backup is
    /// never taken for a complete one).
    pub fn build(
        src: &[(String, ObjectInfo)],
        dst: &[(String, ObjectInfo)],
        ledger: &LedgerState,
        last: &[&str],
    ) -> CopyPlan {
        let dst_by_key: HashMap<&str, &ObjectInfo> =
            dst.iter().map(|(k, o)| (k.as_str(), o)).collect();
        let mut plan = CopyPlan::default();
        for (rel, s) in src {
            let action = match dst_by_key.get(rel.as_str()) {
                Some(d) => match compare(rel, s, d, ledger) {
                    Ok(true) => Action::Skip,
                    Ok(false) => Action::Copy,
                    Err(reason) => {
                        plan.conflicts.push(Conflict {
                            rel: rel.clone(),
                            reason,
                        });
                        Action::Copy
                    }
                },
                None => match ledger.uploads.get(rel) {
                    Some(u) if u.size == s.size && u.src_etag == s.etag => {
                        Action::Resume(u.clone())
                    }
                    _ => Action::Copy,
                },
            };
            plan.items.push(PlanItem {
                rel: rel.clone(),
                size: s.size,
                src_etag: s.etag.clone(),
                action,
                rank: 0,
            });
        }
        let src_keys: std::collections::HashSet<&str> =
            src.iter().map(|(k, _)| k.as_str()).collect();
        plan.extra = dst
            .iter()
            .filter(|(k, _)| !src_keys.contains(k.as_str()))
            .map(|(k, _)| k.clone())
            .collect();
        for rel in &plan.extra {
            plan.conflicts.push(Conflict {
                rel: rel.clone(),
                reason: "exists only at the destination".into(),
            });
        }
        // Large objects first so their parts overlap with the many small ones; `last` at the end.
        plan.items.sort_by(|a, b| {
            let la = last.contains(&a.rel.as_str());
            let lb = last.contains(&b.rel.as_str());
            la.cmp(&lb)
                .then(b.size.cmp(&a.size))
                .then(a.rel.cmp(&b.rel))
        });
        plan
    }
}

impl CopyPlan {
    /// Puts the items named in `first` at the front, in that order; the others keep their
    /// order (largest first) after them, and `last` stays at the end.
    pub fn order_first(&mut self, first: &[String], last: &[&str]) {
        let position: HashMap<&str, usize> = first
            .iter()
            .enumerate()
            .map(|(i, k)| (k.as_str(), i))
            .collect();
        // Stable: items not in `first` keep their relative order.
        self.items.sort_by_key(|item| {
            (
                last.contains(&item.rel.as_str()),
                position
                    .get(item.rel.as_str())
                    .copied()
                    .unwrap_or(usize::MAX),
            )
        });
    }
}

/// Whether the destination object `d` already is the source object `s`: `Ok(true)` identical,
/// `Ok(false)` unknown (copy again), `Err` provably different.
fn compare(
    rel: &str,
    s: &ObjectInfo,
    d: &ObjectInfo,
    ledger: &LedgerState,
) -> Result<bool, String> {
    if s.size != d.size {
        return Err(format!(
            "size {} at the destination, {} at the source",
            d.size, s.size
        ));
    }
    if let Some(done) = ledger.done.get(rel)
        && done.size == s.size
        && done.src_etag == s.etag
        && done.dst_etag.is_some()
        && done.dst_etag == d.etag
    {
        return Ok(true);
    }
    match (s.etag.as_deref(), d.etag.as_deref()) {
        (Some(a), Some(b)) if checksum::same_etag(a, b) => Ok(true),
        (Some(a), Some(b)) if checksum::is_plain_md5(a) && checksum::is_plain_md5(b) => {
            Err("same size but a different MD5".into())
        }
        _ => Ok(false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::copy::ledger::DoneObject;

    fn obj(key: &str, size: u64, etag: &str) -> (String, ObjectInfo) {
        (
            key.to_string(),
            ObjectInfo {
                key: format!("p/{key}"),
                size,
                etag: Some(etag.to_string()),
            },
        )
    }

    const M1: &str = "0123456789abcdef0123456789abcdef";
    const M2: &str = "fedcba9876543210fedcba9876543210";

    #[test]
    fn identical_objects_are_skipped_and_missing_ones_copied() {
        let src = vec![obj("a", 10, M1), obj("b", 20, M2)];
        let dst = vec![obj("a", 10, M1)];
        let plan = CopyPlan::build(&src, &dst, &LedgerState::default(), &[]);
        let a = plan.items.iter().find(|i| i.rel == "a").unwrap();
        let b = plan.items.iter().find(|i| i.rel == "b").unwrap();
        assert_eq!(a.action, Action::Skip);
        assert_eq!(b.action, Action::Copy);
        assert!(plan.conflicts.is_empty());
    }

    #[test]
    fn different_content_is_a_conflict() {
        let src = vec![obj("a", 10, M1), obj("b", 20, M1)];
        let dst = vec![obj("a", 10, M2), obj("b", 21, M1), obj("zz", 1, M1)];
        let plan = CopyPlan::build(&src, &dst, &LedgerState::default(), &[]);
        let rels: Vec<_> = plan.conflicts.iter().map(|c| c.rel.as_str()).collect();
        assert_eq!(rels, vec!["a", "b", "zz"]);
        assert_eq!(plan.extra, vec!["zz".to_string()]);
    }

    #[test]
    fn ledger_proves_identity_across_etag_forms() {
        // Copied as multipart: the destination ETag differs from the source's plain MD5.
        let src = vec![obj("big", 100, M1)];
        let dst = vec![obj("big", 100, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-7")];
        let mut ledger = LedgerState::default();
        ledger.done.insert(
            "big".into(),
            DoneObject {
                size: 100,
                src_etag: Some(M1.into()),
                dst_etag: Some("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-7".into()),
                md5: "x".into(),
            },
        );
        let plan = CopyPlan::build(&src, &dst, &ledger, &[]);
        assert_eq!(plan.items[0].action, Action::Skip);
        // Without the ledger it is unknown, so copied again, but not a conflict.
        let plan = CopyPlan::build(&src, &dst, &LedgerState::default(), &[]);
        assert_eq!(plan.items[0].action, Action::Copy);
        assert!(plan.conflicts.is_empty());
    }

    #[test]
    fn open_uploads_resume_only_for_the_same_source() {
        let src = vec![obj("big", 100, M1)];
        let mut ledger = LedgerState::default();
        let up = OpenUpload {
            size: 100,
            src_etag: Some(M1.into()),
            upload_id: "u".into(),
            part_size: 10,
            parts: Default::default(),
        };
        ledger.uploads.insert("big".into(), up.clone());
        let plan = CopyPlan::build(&src, &[], &ledger, &[]);
        assert_eq!(plan.items[0].action, Action::Resume(up));
        let changed = vec![obj("big", 100, M2)];
        let plan = CopyPlan::build(&changed, &[], &ledger, &[]);
        assert_eq!(plan.items[0].action, Action::Copy);
    }

    #[test]
    fn named_objects_go_first_in_their_order_the_rest_large_first_meta_last() {
        let src = vec![
            obj("meta/backup_meta.json", 10, "m"),
            obj("other/small", 2, "d"),
            obj("seg1/small", 1, "a"),
            obj("seg1/large", 1000, "b"),
            obj("other/large", 5000, "e"),
            obj("seg2/large", 900, "c"),
        ];
        let last = ["meta/backup_meta.json"];
        let mut plan = CopyPlan::build(&src, &[], &LedgerState::default(), &last);
        let first: Vec<String> = ["seg1/small", "seg1/large", "seg2/large", "gone"]
            .map(String::from)
            .to_vec();
        plan.order_first(&first, &last);
        let order: Vec<_> = plan.items.iter().map(|i| i.rel.as_str()).collect();
        assert_eq!(
            order,
            [
                "seg1/small",
                "seg1/large",
                "seg2/large",
                "other/large",
                "other/small",
                "meta/backup_meta.json"
            ]
        );
    }

    #[test]
    fn order_is_large_first_with_meta_last() {
        let src = vec![
            obj("meta/backup_meta.json", 1000, M1),
            obj("small", 1, M1),
            obj("large", 500, M1),
        ];
        let plan = CopyPlan::build(
            &src,
            &[],
            &LedgerState::default(),
            &["meta/backup_meta.json"],
        );
        let order: Vec<_> = plan.items.iter().map(|i| i.rel.as_str()).collect();
        assert_eq!(order, vec!["large", "small", "meta/backup_meta.json"]);
    }
}
