//! milvus-backup's restore options, with the meaning milvus-backup gives them: `--meta-only`,
//! `--skip-create-collection`, `--drop-exist-index`, `--use-auto-index` and `--rbac`.
//!
//! Owns the options' validation, the index parameters a rebuild sends (backed-up or
//! `AUTOINDEX`), and the steps they add to a restore: taking an existing collection as the
//! target (field IDs checked, missing partitions created, its rows counted first so the count
//! after the import can be checked), dropping a target's indexes, the meta-only ending (no
//! staging, no import), the RBAC merge before the collections (through [`crate::rbac`]), and
//! creating the databases of a whole-instance backup. Does not own the restore flow itself
//! (`restore/mod.rs` calls in here) nor the client.

use std::collections::BTreeMap;

use super::{Ctx, RestoreError, RestoredCollection, Task};
use crate::backup::{CollectionBackupInfo, IndexInfo};
use crate::error::Error;
use crate::milvus::MilvusClient;
use crate::milvus::proto::common;
use crate::rbac::{RbacPasswords, RbacReport};

/// The options of a restore beyond the names (milvus-backup's `restore` flags).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RestoreOptions {
    /// `--meta-only`: create the collections, their partitions and (with `rebuild_index`)
    /// their indexes; stage and import no data.
    pub meta_only: bool,
    /// `--skip-create-collection`: every target collection must exist already; its schema must
    /// carry the backup's field IDs; the data (and indexes) go into it. Missing partitions are
    /// created. Excludes `drop_existing`.
    pub skip_create_collection: bool,
    /// `--drop-exist-index`: drop every index of the target collection (releasing it first
    /// when loaded) before the backed-up ones are created.
    pub drop_exist_index: bool,
    /// `--use-auto-index`: rebuild each vector index as `AUTOINDEX` with the backed-up metric
    /// type; scalar indexes keep their parameters.
    pub use_auto_index: bool,
    /// `--rbac`: merge the backup's users, roles, grants and role bindings into the target
    /// first, with these passwords for the users it creates (see [`crate::rbac`]).
    pub rbac: Option<RbacPasswords>,
}

impl RestoreOptions {
    /// Checks the combinations milvus-backup refuses.
    ///
    /// # Errors
    /// [`RestoreError::BadRequest`] naming the conflicting options.
    pub fn validate(&self, drop_existing: bool) -> Result<(), RestoreError> {
        if self.skip_create_collection && drop_existing {
            return Err(RestoreError::BadRequest(
                "--skip-create-collection restores into existing collections and \
                 --drop-existing drops them: give one of the two"
                    .into(),
            ));
        }
        Ok(())
    }
}

/// Whether a Milvus data type code is a vector type (binary, float, float16, bfloat16, sparse,
/// int8 and the newer vector codes all lie in 100..200).
fn is_vector(code: i32) -> bool {
    (100..200).contains(&code)
}

/// The parameters `CreateIndex` gets for a backed-up index: its recorded parameters (or its
/// type alone, when a backup recorded no parameters), or with `use_auto_index` on a vector
/// field `AUTOINDEX` and the recorded metric type, as milvus-backup does.
pub(crate) fn index_params(
    idx: &IndexInfo,
    source: &CollectionBackupInfo,
    use_auto_index: bool,
) -> Vec<common::KeyValuePair> {
    let kv = |k: &str, v: &str| common::KeyValuePair {
        key: k.to_string(),
        value: v.to_string(),
    };
    let vector = source
        .schema
        .iter()
        .flat_map(|s| s.fields.iter())
        .any(|f| f.name == idx.field_name && is_vector(f.data_type.0));
    if use_auto_index && vector {
        let mut out = vec![kv("index_type", "AUTOINDEX")];
        if let Some(metric) = idx.params.get("metric_type") {
            out.push(kv("metric_type", metric));
        }
        return out;
    }
    let mut out: Vec<common::KeyValuePair> = idx.params.iter().map(|(k, v)| kv(k, v)).collect();
    if out.is_empty() && !idx.index_type.is_empty() {
        out.push(kv("index_type", &idx.index_type));
    }
    out
}

/// The fields whose ID on the target differs from the backup's (binlogs are imported by field
/// ID), as `name` → (backup ID, target ID or `None` when missing). System fields (IDs below 100)
/// and the dynamic `$meta` field are left out: neither is imported by ID from user binlogs.
pub(crate) fn field_id_mismatches(
    source: &CollectionBackupInfo,
    target: &BTreeMap<String, i64>,
) -> Vec<String> {
    let user_fields = source
        .schema
        .iter()
        .flat_map(|s| s.fields.iter())
        .filter(|f| f.field_id >= 100 && !f.is_dynamic && f.name != "$meta");
    super::field_id_differences(user_fields.map(|f| (f.name.as_str(), f.field_id)), target)
}

impl Ctx<'_> {
    /// Takes the existing target collection (`--skip-create-collection`): checks its field IDs
    /// against the backup's, creates the backed-up partitions it lacks, and records its rows
    /// (when it is loaded, or holds no segment at all) so the count after the import can be
    /// checked. Returns its id.
    pub(super) async fn use_existing(&self, c: &MilvusClient, t: &Task<'_>) -> Result<i64, Error> {
        let src = t.source;
        let (existing, got) = self.describe_with_field_ids(c, t).await?;
        let mismatched = field_id_mismatches(src, &got);
        if !mismatched.is_empty() {
            return Err(t.fail(
                "DescribeCollection",
                None,
                format!(
                    "--skip-create-collection: the existing collection's field IDs differ from \
                     the backup's, so the binlogs cannot be imported into it: {}",
                    mismatched.join("; ")
                ),
            ));
        }
        let partition_key = existing
            .schema
            .iter()
            .flat_map(|s| s.fields.iter())
            .any(|f| f.is_partition_key);
        if !partition_key {
            let have: Vec<String> = c
                .show_partitions(&t.name)
                .await
                .map_err(self.step_err(t, "ShowPartitions", None))?
                .into_iter()
                .map(|(name, _)| name)
                .collect();
            for p in &src.partition_backups {
                if !have.contains(&p.partition_name) {
                    c.create_partition(&t.name, &p.partition_name)
                        .await
                        .map_err(self.step_err(t, "CreatePartition", None))?;
                }
            }
        }
        let rows_before = if c.loading_progress(&t.name).await.unwrap_or(0) >= 100 {
            Some(
                c.count(&t.name, &[])
                    .await
                    .map_err(self.step_err(t, "Query count(*)", None))?
                    .max(0) as u64,
            )
        } else if c
            .persistent_segments(&t.name)
            .await
            .map_err(self.step_err(t, "GetPersistentSegmentInfo", None))?
            .is_empty()
        {
            Some(0)
        } else {
            None
        };
        let _ = t.rows_before.set(rows_before);
        Ok(existing.collection_id)
    }

    /// Drops every index of the target collection (`--drop-exist-index`), releasing it first
    /// when it is loaded: Milvus refuses to drop the index of a loaded collection.
    pub(super) async fn drop_indexes(&self, c: &MilvusClient, t: &Task<'_>) -> Result<(), Error> {
        let indexes =
            c.describe_index(&t.name)
                .await
                .map_err(self.step_err(t, "DescribeIndex", None))?;
        if indexes.is_empty() {
            return Ok(());
        }
        if c.loading_progress(&t.name).await.unwrap_or(0) > 0 {
            self.observer.step(&format!(
                "releasing `{}.{}` to drop its indexes",
                t.db, t.name
            ));
            c.release_collection(&t.name).await.map_err(self.step_err(
                t,
                "ReleaseCollection",
                None,
            ))?;
        }
        for idx in indexes {
            self.observer.step(&format!(
                "dropping index `{}` on `{}.{}`.{}",
                idx.index_name, t.db, t.name, idx.field_name
            ));
            c.drop_index(&t.name, &idx.field_name, &idx.index_name)
                .await
                .map_err(self.step_err(t, "DropIndex", None))?;
        }
        Ok(())
    }

    /// The end of a `--meta-only` restore: indexes (with `rebuild_index`) and load (with
    /// `load`); nothing staged or imported, and no row count compared.
    pub(super) async fn finish_meta_only(
        &self,
        c: &MilvusClient,
        t: &Task<'_>,
        collection_id: i64,
    ) -> Result<(RestoredCollection, u64), Error> {
        let started = std::time::Instant::now();
        if self.req.rebuild_index {
            self.create_indexes(c, t).await?;
            self.wait_for_indexes(c, t).await?;
        }
        let mut notes = Vec::new();
        let replicas = if self.req.load {
            self.load(c, t, &mut notes).await?
        } else {
            None
        };
        let rows = if replicas.is_some() {
            Some(
                c.count(&t.name, &[])
                    .await
                    .map_err(self.step_err(t, "Query count(*)", None))?
                    .max(0) as u64,
            )
        } else {
            None
        };
        let src = t.source;
        let aliases = super::meta::restore_aliases(c, &t.name, collection_id, &src.aliases)
            .await
            .map_err(self.step_err(t, "CreateAlias", None))?;
        notes.extend(aliases.notes);
        Ok((
            RestoredCollection {
                source_db: src.db_name.clone(),
                source_collection: src.collection_name.clone(),
                db_name: t.db.clone(),
                collection_name: t.name.clone(),
                partitions: src.partition_backups.len(),
                segments: 0,
                rows_imported: 0,
                rows,
                expected_rows: None,
                verified: false,
                staged_objects: 0,
                stage_secs: 0.0,
                import_secs: 0.0,
                index_load_secs: started.elapsed().as_secs_f64(),
                aliases: aliases.restored,
                replicas,
                notes,
            },
            0,
        ))
    }
}

/// `--rbac`: merges the backup's RBAC into the target.
///
/// # Errors
/// [`RestoreError::BadRequest`] when the backup records none (created without `--rbac`), or the
/// RBAC calls' errors.
pub(super) async fn restore_rbac(
    client: &MilvusClient,
    info: &crate::backup::BackupInfo,
    passwords: &RbacPasswords,
) -> Result<RbacReport, Error> {
    let Some(meta) = &info.rbac_meta else {
        return Err(RestoreError::BadRequest(format!(
            "--rbac: backup `{}` records no users, roles or grants (it was created without \
             --rbac)",
            info.name
        ))
        .into());
    };
    Ok(crate::rbac::restore(client, meta, passwords).await?)
}

/// When the whole backup is restored (no selectors), creates the databases it records that the
/// target lacks, under their mapped names, also those without collections (a whole-instance
/// backup records every database). Returns the databases created.
///
/// # Errors
/// Milvus failures.
pub(super) async fn create_databases(
    req: &super::RestoreRequest,
    client: &MilvusClient,
    info: &crate::backup::BackupInfo,
) -> Result<Vec<String>, Error> {
    if !req.selectors.is_empty() || req.options.skip_create_collection {
        return Ok(Vec::new());
    }
    let mut have = client.list_databases().await?;
    let mut created = Vec::new();
    for d in &info.database_backups {
        let db = if d.db_name.is_empty() {
            "default"
        } else {
            d.db_name.as_str()
        };
        // The database a collection of `db` would be restored into.
        let (target, _) = req.naming.target(db, "");
        if !have.contains(&target) {
            client.create_database(&target).await?;
            have.push(target.clone());
            created.push(target);
        }
    }
    Ok(created)
}

/// Refuses a missing target under `--skip-create-collection`.
pub(super) fn missing_target(t: &Task<'_>, address: &str) -> Error {
    RestoreError::TargetMissing {
        db: t.db.clone(),
        collection: t.name.clone(),
        address: address.to_string(),
    }
    .into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backup::{CollectionSchema, DataType, FieldSchema};

    fn source() -> CollectionBackupInfo {
        let field = |id: i64, name: &str, ty: i32| FieldSchema {
            field_id: id,
            name: name.into(),
            data_type: DataType(ty),
            ..Default::default()
        };
        CollectionBackupInfo {
            schema: Some(CollectionSchema {
                fields: vec![
                    field(0, "RowID", 5),
                    field(1, "Timestamp", 5),
                    field(100, "pk", 5),
                    field(101, "vec", 101),
                    field(102, "tag", 21),
                    FieldSchema {
                        is_dynamic: true,
                        ..field(103, "$meta", 23)
                    },
                ],
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn index(field: &str, params: &[(&str, &str)]) -> IndexInfo {
        IndexInfo {
            field_name: field.into(),
            index_name: format!("{field}_idx"),
            index_type: params
                .iter()
                .find(|(k, _)| *k == "index_type")
                .map(|(_, v)| v.to_string())
                .unwrap_or_default(),
            params: params
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ..Default::default()
        }
    }

    fn pairs(v: &[common::KeyValuePair]) -> Vec<(String, String)> {
        v.iter().map(|p| (p.key.clone(), p.value.clone())).collect()
    }

    #[test]
    fn auto_index_replaces_vector_indexes_keeping_the_metric_and_leaves_scalar_ones() {
        let src = source();
        let ivf = index(
            "vec",
            &[
                ("index_type", "IVF_FLAT"),
                ("metric_type", "L2"),
                ("params", r#"{"nlist":"128"}"#),
            ],
        );
        assert_eq!(
            pairs(&index_params(&ivf, &src, true)),
            vec![
                ("index_type".to_string(), "AUTOINDEX".to_string()),
                ("metric_type".to_string(), "L2".to_string())
            ]
        );
        // Without the option the recorded parameters go as they are.
        assert_eq!(pairs(&index_params(&ivf, &src, false)).len(), 3);
        let trie = index("tag", &[("index_type", "Trie")]);
        assert_eq!(
            pairs(&index_params(&trie, &src, true)),
            vec![("index_type".to_string(), "Trie".to_string())]
        );
        // A backup that recorded the type only.
        let bare = IndexInfo {
            params: BTreeMap::new(),
            ..index("tag", &[("index_type", "STL_SORT")])
        };
        assert_eq!(
            pairs(&index_params(&bare, &src, false)),
            vec![("index_type".to_string(), "STL_SORT".to_string())]
        );
    }

    #[test]
    fn field_ids_are_compared_for_user_fields_only() {
        let src = source();
        let mut target: BTreeMap<String, i64> =
            [("pk", 100), ("vec", 101), ("tag", 102), ("RowID", 0)]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect();
        assert!(field_id_mismatches(&src, &target).is_empty());
        target.insert("tag".into(), 103);
        target.remove("vec");
        let got = field_id_mismatches(&src, &target);
        assert_eq!(
            got,
            vec![
                "`vec` is 101 in the backup, missing here".to_string(),
                "`tag` is 102 in the backup, 103 here".to_string()
            ]
        );
    }

    #[test]
    fn skip_create_collection_excludes_drop_existing() {
        let opts = RestoreOptions {
            skip_create_collection: true,
            ..Default::default()
        };
        let err = opts.validate(true).unwrap_err().to_string();
        assert!(err.contains("--skip-create-collection"), "{err}");
        assert!(opts.validate(false).is_ok());
        assert!(RestoreOptions::default().validate(true).is_ok());
    }
}
