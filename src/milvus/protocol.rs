//! The version decisions for restoring into (and backing up from) Milvus 2.4, 2.5, 2.6 and 3.0,
//! as pure functions of the target's [`ServerVersion`], the backed-up schema and segment meta.
//!
//! Owns: which collections a target can take ([`restorable`]), which segments `create` can
//! record ([`segment_backupable`]), the options of each import job ([`import_options`]), the
//! import idempotency key ([`import_idempotency_key`]) and how a backed-up schema becomes a
//! `CreateCollection` plus later `AddCollectionField` calls ([`create_plan`]). Does not own the
//! RPCs (see [`super::MilvusClient`]) nor the flows that call these functions.
//!
//! No Milvus newer than 2.3 runs where this project is tested: the rules for 2.4 and later
//! follow the protocol and milvus-backup's source only, and each one names the file and commit
//! it follows. `mb@f81df44` is zilliztech/milvus-backup at commit f81df44 (2026-08-22); proto
//! tags and branches are milvus-io/milvus-proto's (`v2.4.0` e3012ae, `v2.5.0` 66c87c7,
//! `v2.6.0` ae09b40, `v2.6.1` 07695f7, `master` 9810b92).

// The schema-level `autoID` is deprecated upstream but still part of the schema message.
#![allow(deprecated)]

use super::ServerVersion;
use super::convert;
use super::proto::{common, schema};
use crate::backup::{self, BackupError, CollectionBackupInfo, DataType, SegmentBackupInfo};

/// The collection property that turns off Milvus's check of function inputs; milvus-backup sets
/// it while a collection with functions is created, then puts the backed-up value back.
pub const DISABLE_FUNC_RUNTIME_CHECK: &str = "disable_func_runtime_check";

/// The server-managed property that records the largest field id ever used (drop-field
/// support). Never sent back: replaying it makes the target number later fields differently.
pub const MAX_FIELD_ID: &str = "max_field_id";

/// The recorded name of the dynamic field.
const DYNAMIC_FIELD: &str = "$meta";

/// Field ids below this are Milvus's system fields (row id 0, timestamp 1).
const FIRST_USER_FIELD_ID: i64 = 100;

/// One thing a backed-up collection needs of the target Milvus.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requirement {
    /// The oldest Milvus release that has it.
    pub since: (u32, u32, u32),
    /// What in the backup needs it, e.g. "field `emb` of type Int8Vector".
    pub what: String,
}

/// Everything a collection of a binlog backup needs of the target, oldest release first.
///
/// Rules, each from where the feature first appears:
/// - storage-v2 segments: 2.6.0 (import option `storage_version`, milvus-backup sends it per
///   segment: `mb@f81df44:internal/client/milvus/grpc.go` `GrpcBulkInsertInput.opts`);
/// - L0 delete segments: 2.4.5 (`l0_import`; [`super::version::L0_IMPORT_SINCE`]);
/// - Float16/BFloat16/SparseFloat vectors and `is_clustering_key`: proto `v2.4.0`
///   `proto/schema.proto` (DataType 102–104, FieldSchema 14);
/// - nullable fields, functions (BM25) and Geometry: proto `v2.5.0` `proto/schema.proto`
///   (FieldSchema 15/16, CollectionSchema 7, DataType 24);
/// - Int8Vector, Text, ArrayOfVector, struct array fields: proto `v2.6.0` (DataType 25, 105,
///   106; CollectionSchema 9);
/// - Timestamptz: proto `v2.6.1` (DataType 26);
/// - nullable struct array fields: proto `v3.0.0` (StructArrayFieldSchema 6, recorded by
///   milvus-migrate's create only);
/// - fields added after creation: `AddCollectionField`, proto `v2.6.0` `proto/milvus.proto`
///   (how they are found: [`create_plan`]);
/// - DataType codes above 26 that are not vectors (Mol 27 in proto `v3.0.0`, later ones only on
///   its 3.0 branch): 3.0.0.
///
/// Default values are not listed: `FieldSchema.default_value` (11) is in the 2.3 protocol.
pub fn requirements(c: &CollectionBackupInfo) -> Vec<Requirement> {
    let mut out = Vec::new();
    let mut need = |since, what: String| out.push(Requirement { since, what });
    let segs: Vec<&SegmentBackupInfo> = c.segments().collect();
    if let Some(s) = segs.iter().find(|s| s.storage_version == 2) {
        need(
            super::version::STORAGE_V2_SINCE,
            format!("segment {} in storage format v2", s.segment_id),
        );
    }
    if let Some(s) = segs.iter().find(|s| s.is_l0) {
        need(
            super::version::L0_IMPORT_SINCE,
            format!("L0 delete segment {}", s.segment_id),
        );
    }
    if let Some(sc) = &c.schema {
        let nested = sc.struct_array_fields.iter().flat_map(|s| s.fields.iter());
        for f in sc.fields.iter().chain(nested) {
            for t in [f.data_type, f.element_type] {
                if let Some(since) = type_since(t) {
                    need(
                        since,
                        format!("field `{}` of type {}", f.name, type_name(t)),
                    );
                }
            }
            if f.nullable {
                need((2, 5, 0), format!("nullable field `{}`", f.name));
            }
            if f.extra.get("is_clustering_key") == Some(&serde_json::Value::Bool(true)) {
                need((2, 4, 0), format!("clustering key `{}`", f.name));
            }
        }
        if let Some(func) = sc.functions.first() {
            need((2, 5, 0), format!("function `{}`", func.name));
        }
        if let Some(st) = sc.struct_array_fields.first() {
            need((2, 6, 0), format!("struct array field `{}`", st.name));
        }
        let nullable_struct = |st: &&backup::StructArrayFieldSchema| {
            st.extra.get("nullable") == Some(&serde_json::Value::Bool(true))
        };
        if let Some(st) = sc.struct_array_fields.iter().find(nullable_struct) {
            need(
                (3, 0, 0),
                format!("nullable struct array field `{}`", st.name),
            );
        }
        if let Some(f) = added_fields(sc).first() {
            need(
                (2, 6, 0),
                format!(
                    "field `{}` added after the collection was created (AddCollectionField)",
                    f.name
                ),
            );
        }
    }
    out.sort_by_key(|r| r.since);
    out
}

/// The release that introduced a data type, `None` for the types Milvus 2.3 has.
fn type_since(t: DataType) -> Option<(u32, u32, u32)> {
    match t {
        DataType::FLOAT16_VECTOR | DataType::BFLOAT16_VECTOR | DataType::SPARSE_FLOAT_VECTOR => {
            Some((2, 4, 0))
        }
        DataType::GEOMETRY => Some((2, 5, 0)),
        DataType::TEXT
        | DataType::INT8_VECTOR
        | DataType::ARRAY_OF_VECTOR
        | DataType::ARRAY_OF_STRUCT
        | DataType::STRUCT => Some((2, 6, 0)),
        DataType::TIMESTAMPTZ => Some((2, 6, 1)),
        DataType(code) if (27..100).contains(&code) => Some((3, 0, 0)),
        _ => None,
    }
}

fn type_name(t: DataType) -> String {
    match t {
        DataType::FLOAT16_VECTOR => "Float16Vector".into(),
        DataType::BFLOAT16_VECTOR => "BFloat16Vector".into(),
        DataType::SPARSE_FLOAT_VECTOR => "SparseFloatVector".into(),
        DataType::GEOMETRY => "Geometry".into(),
        DataType::TEXT => "Text".into(),
        DataType::TIMESTAMPTZ => "Timestamptz".into(),
        DataType::INT8_VECTOR => "Int8Vector".into(),
        DataType::ARRAY_OF_VECTOR => "ArrayOfVector".into(),
        DataType::ARRAY_OF_STRUCT => "ArrayOfStruct".into(),
        DataType::STRUCT => "Struct".into(),
        DataType(code) => format!("code {code}"),
    }
}

/// Whether `target` can take a collection of a binlog backup: every [`requirements`] entry
/// met, and no segment in storage format 3 or later.
///
/// Storage v3 (manifest) segments cannot be imported from binlog paths (milvus-io/milvus#52930,
/// open); Milvus accepts `storage_version` 3 only together with `source_type=snapshot`
/// (`internal/util/importutilv2/option.go` on Milvus master).
///
/// # Errors
/// The reason, naming what needs which release.
pub fn restorable(c: &CollectionBackupInfo, target: &ServerVersion) -> Result<(), String> {
    if let Some(s) = c.segments().find(|s| s.storage_version >= 3) {
        return Err(format!(
            "segment {} is in storage format v{}, which Milvus cannot import from binlog paths; \
             back the collection up from a Milvus that writes storage v2 (3.0 with \
             `common.storage.useLoonFFI` off)",
            s.segment_id, s.storage_version
        ));
    }
    let unmet: Vec<Requirement> = requirements(c)
        .into_iter()
        .filter(|r| !target.at_least(r.since.0, r.since.1, r.since.2))
        .collect();
    match unmet.last() {
        None => Ok(()),
        Some(newest) => {
            let (a, b, p) = newest.since;
            let list: Vec<String> = unmet
                .iter()
                .map(|r| format!("{} ({}.{}.{}+)", r.what, r.since.0, r.since.1, r.since.2))
                .collect();
            Err(format!(
                "the backup needs features Milvus {target} does not have: {}; restore into \
                 Milvus {a}.{b}.{p} or later",
                list.join(", ")
            ))
        }
    }
}

/// Whether `create` can record a segment that `GetPersistentSegmentInfo` reports with this
/// storage version: v1 (0 or 1) and v2 (packed column groups under
/// `insert_log/<c>/<p>/<s>/<group>/<log>`, milvus-backup `SegmentBackupInfo.storage_version`
/// 13, `mb@f81df44:core/proto/backup.proto`) can; v3 segments are described by manifests that
/// no import path reads back (milvus-io/milvus#52930).
///
/// # Errors
/// Why not.
pub fn segment_backupable(storage_version: i64) -> Result<(), String> {
    if storage_version >= 3 {
        return Err(format!(
            "the segment is in storage format v{storage_version} (Milvus 3.0 storage v3), \
             which no Milvus can import from a binlog backup; turn \
             `common.storage.useLoonFFI` off on the source, or use milvus-backup's snapshot \
             format within one storage service"
        ));
    }
    Ok(())
}

/// The `Import` options of one segment's job on `target` (for the old group-less layout, of
/// any data segment of the partition).
///
/// Follows `mb@f81df44:internal/client/milvus/grpc.go` (`GrpcBulkInsertInput.opts`): data
/// segments get `backup=true`, L0 segments `l0_import=true`, both `skip_disk_quota_check=true`,
/// and `storage_version` when the segment records one. Differences, each because milvus-backup
/// restores only into 2.4 and later:
/// - `skip_disk_quota_check` is left out for data segments on servers before 2.4, which do not
///   know it (an L0 segment needs 2.4.5 anyway);
/// - `end_ts` is not sent: the restore imports whole segments as backed up.
pub fn import_options(target: &ServerVersion, seg: &SegmentBackupInfo) -> Vec<(String, String)> {
    let t = |k: &str| (k.to_string(), "true".to_string());
    let mut opts = Vec::new();
    if seg.is_l0 {
        opts.push(t("l0_import"));
        opts.push(t("skip_disk_quota_check"));
    } else {
        opts.push(t("backup"));
        if target.supports_skip_disk_quota() {
            opts.push(t("skip_disk_quota_check"));
        }
    }
    if seg.storage_version > 0 {
        opts.push((
            "storage_version".to_string(),
            seg.storage_version.to_string(),
        ));
    }
    opts
}

/// The `ImportRequest.idempotency_key` (field 9) of one import job, `None` when `target` does
/// not honour one.
///
/// The field is in milvus-proto `master` 9810b92 ("add bulk import idempotency key", #633) and
/// in no 2.x or 3.0 tag of the proto; servers honour it from 2.6.24 on the 2.6 line and 3.0.2
/// on the 3.0 line (milvus-io/milvus#52320, implementation #52544): a key is printable ASCII of
/// at most 256 bytes, scoped to the collection and remembered for about a day, and an `Import`
/// with a known key returns the first job instead of importing the rows again. The key names
/// the created collection by id (a rerun that drops and creates it again gets new keys, so a
/// job that failed is never handed back) and the job by source partition and segment ids: every
/// retry of a job sends the same key, different jobs never share one. Printable ASCII, under
/// 100 bytes.
pub fn import_idempotency_key(
    target: &ServerVersion,
    collection_id: i64,
    partition_id: i64,
    segment: Option<i64>,
) -> Option<String> {
    if !supports_import_idempotency_key(target) {
        return None;
    }
    let job = segment.map_or_else(
        || format!("p{partition_id}"),
        |s| format!("p{partition_id}s{s}"),
    );
    Some(format!("milvus-migrate:c{collection_id}:{job}"))
}

/// 2.6.24 and later on the 2.6 line, 3.0.2 and later from 3.0; an unknown version counts as
/// newest (and an older server skips the unknown proto field).
fn supports_import_idempotency_key(v: &ServerVersion) -> bool {
    match v.parsed {
        None => true,
        Some((2, 6, p)) => p >= 24,
        Some((3, 0, p)) => p >= 2,
        Some(v) => v > (3, 0, 0),
    }
}

/// How a backed-up schema is created on the target.
#[derive(Debug, Clone, PartialEq)]
pub struct CreatePlan {
    /// The schema for `CreateCollection` (name left empty for the caller).
    pub schema: schema::CollectionSchema,
    /// `CreateCollectionRequest.properties`.
    pub properties: Vec<common::KeyValuePair>,
    /// Fields to add with `AddCollectionField` after creation, in field-id order.
    pub add_fields: Vec<schema::FieldSchema>,
    /// When set, `AlterCollection` must set [`DISABLE_FUNC_RUNTIME_CHECK`] to this value right
    /// after `CreateCollection` (it was turned on for the creation).
    pub restore_func_runtime_check: Option<String>,
}

/// The fields recorded after the dynamic field, which were added with `AddCollectionField`
/// after the collection was created. Only a collection with a dynamic field can tell them
/// apart: `CreateCollection` numbers the fields it is given from 100 and appends `$meta`
/// behind them, so a user field with a larger id than `$meta`'s came later.
///
/// `$meta`'s id is the recorded one (milvus-backup keeps the field since `mb#1017`); in backups
/// without it, the first gap in the user field ids, else the largest id plus one. Follows
/// `mb@f81df44:core/restore/funcs/funcs.go` (`GuessDynFieldID`) and
/// `core/restore/coll_ddl_task.go` (`fields`).
pub fn added_fields(s: &backup::CollectionSchema) -> Vec<&backup::FieldSchema> {
    if !s.enable_dynamic_field {
        return Vec::new();
    }
    let is_dynamic = |f: &backup::FieldSchema| f.is_dynamic || f.name == DYNAMIC_FIELD;
    let mut user: Vec<&backup::FieldSchema> = s
        .fields
        .iter()
        .filter(|f| f.field_id >= FIRST_USER_FIELD_ID && !is_dynamic(f))
        .collect();
    user.sort_by_key(|f| f.field_id);
    let dynamic_id = match s.fields.iter().find(|f| is_dynamic(f)) {
        Some(f) => f.field_id,
        None => {
            let gap = user
                .windows(2)
                .find(|w| w[1].field_id != w[0].field_id + 1)
                .map(|w| w[0].field_id + 1);
            match (gap, user.last()) {
                (Some(g), _) => g,
                (None, Some(last)) => last.field_id + 1,
                (None, None) => return Vec::new(),
            }
        }
    };
    user.into_iter()
        .filter(|f| f.field_id > dynamic_id)
        .collect()
}

/// The `CreateCollection` schema and properties, the fields to add afterwards and the
/// function-check property to restore, for a backed-up schema on `target`.
///
/// Rules:
/// - system fields (ids below 100) and the dynamic field are never sent: Milvus makes them
///   (`mb@f81df44:core/restore/coll_ddl_task.go` `fields`);
/// - fields added after creation ([`added_fields`]) are left out of `CreateCollection` and
///   added afterwards in id order, so every field gets its source id (binlog directories are
///   named by field id);
/// - nullable, default values, the clustering key, functions with their output fields, and
///   struct array fields are sent as recorded ([`convert::schema_from_meta`]; which target can
///   take them is [`restorable`]'s question);
/// - [`MAX_FIELD_ID`] is dropped from the properties (server-managed; replaying it shifts the
///   ids of added fields, zilliztech/milvus-backup#1079);
/// - with functions on a target from 2.6.8, [`DISABLE_FUNC_RUNTIME_CHECK`] is `true` in
///   `CreateCollection` and is put back to the backed-up value (`false` when none) right
///   after: `mb@f81df44:core/restore/coll_ddl_task.go` (`properties`,
///   `restoreFuncRuntimeCheck`) and `internal/client/milvus/grpc.go` (`FuncRuntimeCheck`
///   feature, `>= 2.6.8`).
///
/// # Errors
/// [`BackupError`] when a default value cannot be decoded.
pub fn create_plan(
    meta: &backup::CollectionSchema,
    target: &ServerVersion,
) -> Result<CreatePlan, BackupError> {
    let mut schema = convert::schema_from_meta(meta)?;
    let added: Vec<i64> = added_fields(meta).iter().map(|f| f.field_id).collect();
    schema
        .fields
        .retain(|f| f.field_id >= FIRST_USER_FIELD_ID && !f.is_dynamic && f.name != DYNAMIC_FIELD);
    schema.fields.sort_by_key(|f| f.field_id);
    let (add_fields, create_fields): (Vec<_>, Vec<_>) = schema
        .fields
        .into_iter()
        .partition(|f| added.contains(&f.field_id));
    schema.fields = create_fields;
    schema.properties.retain(|p| p.key != MAX_FIELD_ID);
    let mut properties = schema.properties.clone();
    let mut restore_func_runtime_check = None;
    if !schema.functions.is_empty() && target.at_least(2, 6, 8) {
        let original = properties
            .iter()
            .find(|p| p.key == DISABLE_FUNC_RUNTIME_CHECK)
            .map_or_else(|| "false".to_string(), |p| p.value.clone());
        properties.retain(|p| p.key != DISABLE_FUNC_RUNTIME_CHECK);
        properties.push(common::KeyValuePair {
            key: DISABLE_FUNC_RUNTIME_CHECK.into(),
            value: "true".into(),
        });
        if original != "true" {
            restore_func_runtime_check = Some(original);
        }
    }
    Ok(CreatePlan {
        schema,
        properties,
        add_fields,
        restore_func_runtime_check,
    })
}

#[cfg(test)]
#[path = "protocol_tests.rs"]
mod tests;
