//! The milvus-backup meta model: serde types for `BackupInfo` and everything below it, with the
//! exact JSON that milvus-backup's Go `encoding/json` produces and accepts.
//!
//! Owns key names, field order and omission rules. Does not own which file holds which part of
//! the tree (that is [`super::BackupMeta`]) nor object keys ([`super::layout`]).
//!
//! Conventions, checked against milvus-backup's generated `backuppb` structs:
//! - Keys are the proto field names; `fieldID` and `autoID` keep their casing.
//! - Every field is skipped when it holds its zero value (`omitempty`), except the ones the
//!   generator script strips `omitempty` from: `state_code` and `size` of [`BackupInfo`], `size`
//!   and `has_index` of [`CollectionBackupInfo`], `size` of [`PartitionBackupInfo`] and
//!   [`SegmentBackupInfo`], and `log_size` of [`Binlog`]. Those are always written.
//! - 64-bit integers are JSON numbers and are kept as `i64`/`u64` (never `f64`); Go `int32`
//!   fields are `i32`. Enums are their integer codes, wrapped in transparent newtypes so unknown
//!   codes survive.
//! - Field order follows the Go structs, so written files match milvus-backup's byte for byte.
//! - Unknown keys are accepted. The structs that change between milvus-backup versions keep them
//!   in `extra` and write them back (after the known keys), so reading and rewriting an older or
//!   newer backup loses nothing. The small leaf types (`FieldBinlog`, `Binlog`, `KeyValuePair`,
//!   ...) drop unknown keys, which keeps parsing of large segment lists fast.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::encoding::{base64_decode, base64_encode};
use super::error::BackupError;

/// Unknown keys of a JSON object, kept for writing back.
pub type Extra = Map<String, Value>;

fn is_zero_i32(v: &i32) -> bool {
    *v == 0
}
fn is_zero_i64(v: &i64) -> bool {
    *v == 0
}
fn is_zero_u64(v: &u64) -> bool {
    *v == 0
}
fn is_false(v: &bool) -> bool {
    !*v
}

macro_rules! int_enum {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident = $code:expr,)* }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub i32);

        impl $name {
            $($(#[$vdoc])* pub const $variant: Self = Self($code);)*

            /// Whether this is code 0 (omitted from JSON).
            pub fn is_zero(&self) -> bool {
                self.0 == 0
            }
        }
    };
}

int_enum! {
    /// Milvus `DataType` code of a field or array element.
    DataType {
        /// No type (0).
        NONE = 0,
        /// `Bool`.
        BOOL = 1,
        /// `Int8`.
        INT8 = 2,
        /// `Int16`.
        INT16 = 3,
        /// `Int32`.
        INT32 = 4,
        /// `Int64`.
        INT64 = 5,
        /// `Float`.
        FLOAT = 10,
        /// `Double`.
        DOUBLE = 11,
        /// `String` (not used for fields).
        STRING = 20,
        /// `VarChar`.
        VARCHAR = 21,
        /// `Array`.
        ARRAY = 22,
        /// `JSON`.
        JSON = 23,
        /// `Geometry`.
        GEOMETRY = 24,
        /// `Text`.
        TEXT = 25,
        /// `Timestamptz`.
        TIMESTAMPTZ = 26,
        /// `BinaryVector`.
        BINARY_VECTOR = 100,
        /// `FloatVector`.
        FLOAT_VECTOR = 101,
        /// `Float16Vector`.
        FLOAT16_VECTOR = 102,
        /// `BFloat16Vector`.
        BFLOAT16_VECTOR = 103,
        /// `SparseFloatVector`.
        SPARSE_FLOAT_VECTOR = 104,
        /// `Int8Vector`.
        INT8_VECTOR = 105,
        /// `ArrayOfVector`.
        ARRAY_OF_VECTOR = 106,
        /// `ArrayOfStruct` (internal).
        ARRAY_OF_STRUCT = 200,
        /// `Struct` (internal).
        STRUCT = 201,
    }
}

int_enum! {
    /// Milvus consistency level of a collection.
    ConsistencyLevel {
        /// `Strong` (0, so omitted from JSON).
        STRONG = 0,
        /// `Session`.
        SESSION = 1,
        /// `Bounded`.
        BOUNDED = 2,
        /// `Eventually`.
        EVENTUALLY = 3,
        /// `Customized`.
        CUSTOMIZED = 4,
    }
}

int_enum! {
    /// Milvus field state.
    FieldState {
        /// `FieldCreated` (0).
        CREATED = 0,
        /// `FieldCreating`.
        CREATING = 1,
        /// `FieldDropping`.
        DROPPING = 2,
        /// `FieldDropped`.
        DROPPED = 3,
    }
}

int_enum! {
    /// Milvus function type.
    FunctionType {
        /// `Unknown` (0).
        UNKNOWN = 0,
        /// `BM25`.
        BM25 = 1,
        /// `TextEmbedding`.
        TEXT_EMBEDDING = 2,
    }
}

/// `BackupInfo.format` of a binlog backup as milvus-backup writes it (the key is then omitted).
pub const FORMAT_BINLOG: &str = "";
/// `BackupInfo.format` of a snapshot-bundle backup.
pub const FORMAT_SNAPSHOT: &str = "snapshot";

/// `load_state` values.
pub mod load_state {
    /// Not loaded.
    pub const NOT_LOAD: &str = "NotLoad";
    /// Being loaded.
    pub const LOADING: &str = "Loading";
    /// Loaded.
    pub const LOADED: &str = "Loaded";
}

/// Partition id of segments that apply to every partition (collection-wide L0 deletes).
pub const ALL_PARTITIONS: i64 = -1;

/// The root of a backup: `full_meta.json`, and (its scalars) `backup_meta.json`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct BackupInfo {
    /// Id of the task that made the backup (a UUID).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub id: String,
    /// Deprecated task state; always written (0 in current milvus-backup).
    pub state_code: i32,
    /// Backup name (the directory name).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// Backup timestamp (not filled by current milvus-backup).
    #[serde(skip_serializing_if = "is_zero_u64")]
    pub backup_timestamp: u64,
    /// The collections.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub collection_backups: Vec<CollectionBackupInfo>,
    /// Bytes of binlogs in the backup; always written.
    pub size: i64,
    /// Build tag of the source Milvus, e.g. `v2.5.10`.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub milvus_version: String,
    /// Users, roles, grants and privilege groups (`--rbac`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rbac_meta: Option<RbacMeta>,
    /// Milvus 2.5 CDC replicate-channel position.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rpc_channel_info: Option<RpcChannelInfo>,
    /// The databases.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub database_backups: Vec<DatabaseBackupInfo>,
    /// Physical channel to base64 protobuf of the FlushAll message (bulk flush only).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub flush_all_msgs_base64: BTreeMap<String, String>,
    /// Control channel name (bulk flush only).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub control_channel_name: String,
    /// Physical channel names (bulk flush only).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub physical_channel_names: Vec<String>,
    /// `""` for binlog backups (the only value before milvus-backup 0.6), `"snapshot"` for
    /// snapshot bundles. See [`BackupInfo::format`].
    #[serde(skip_serializing_if = "String::is_empty")]
    pub format: String,
    /// Keys this model does not know (e.g. `errorMessage`, `start_time`, `end_time`, `progress`
    /// of milvus-backup 0.4/0.5).
    #[serde(flatten)]
    pub extra: Extra,
}

/// Users, roles, grants and privilege groups, as milvus-backup's `--rbac` records them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RbacMeta {
    /// Users with their roles.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub users: Vec<UserInfo>,
    /// Roles.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<Entity>,
    /// Grants.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub grants: Vec<GrantEntity>,
    /// Privilege groups.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub privilege_groups: Vec<PrivilegeGroupInfo>,
    /// Unknown keys.
    #[serde(flatten)]
    pub extra: Extra,
}

/// A named RBAC object (milvus-backup's `RoleEntity`, `UserEntity`, `ObjectEntity` and
/// `PrivilegeEntity` all have this one field).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Entity {
    /// Name.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub name: String,
}

/// A user. `password` is what Milvus's `BackupRBAC` returns (a hash); it is never shown by
/// `Debug`.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct UserInfo {
    /// User name.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub user: String,
    /// Password as Milvus exports it.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub password: String,
    /// Roles of the user.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<Entity>,
}

impl std::fmt::Debug for UserInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserInfo")
            .field("user", &self.user)
            .field("password", &"<redacted>")
            .field("roles", &self.roles)
            .finish()
    }
}

/// One grant: a role may do something on an object.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct GrantEntity {
    /// The role.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<Entity>,
    /// Object type, e.g. `Collection`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub object: Option<Entity>,
    /// Object name, e.g. a collection name or `*`.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub object_name: String,
    /// Who granted which privilege.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub grantor: Option<GrantorEntity>,
    /// Database name.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub db_name: String,
}

/// Grantor and privilege of a grant.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct GrantorEntity {
    /// The granting user.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<Entity>,
    /// The privilege.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub privilege: Option<Entity>,
}

/// A privilege group.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct PrivilegeGroupInfo {
    /// Group name.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub group_name: String,
    /// Privileges in the group.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub privileges: Vec<Entity>,
}

/// Milvus 2.5 CDC replicate-channel position.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RpcChannelInfo {
    /// Channel name.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// Base64 position.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub position: String,
}

/// One database.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct DatabaseBackupInfo {
    /// Database name.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub db_name: String,
    /// Source database id.
    #[serde(skip_serializing_if = "is_zero_i64")]
    pub db_id: i64,
    /// Database properties.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub properties: Vec<KeyValuePair>,
    /// Exported encryption-zone key, when the database is encrypted.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub ezk: String,
    /// Unknown keys.
    #[serde(flatten)]
    pub extra: Extra,
}

/// Where a collection's exported snapshot bundle lives (snapshot format only).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SnapshotBackupInfo {
    /// Bundle metadata path, relative to the backup directory.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub metadata_path: String,
    /// Files in the bundle.
    #[serde(skip_serializing_if = "is_zero_i64")]
    pub total_files: i64,
    /// Bytes in the bundle (index files included).
    #[serde(skip_serializing_if = "is_zero_i64")]
    pub total_bytes: i64,
}

/// One collection.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct CollectionBackupInfo {
    /// Id of the task that made the backup.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub id: String,
    /// Source collection id.
    #[serde(skip_serializing_if = "is_zero_i64")]
    pub collection_id: i64,
    /// Database name.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub db_name: String,
    /// Collection name.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub collection_name: String,
    /// Schema.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub schema: Option<CollectionSchema>,
    /// Number of shards.
    #[serde(skip_serializing_if = "is_zero_i32")]
    pub shards_num: i32,
    /// Consistency level.
    #[serde(skip_serializing_if = "ConsistencyLevel::is_zero")]
    pub consistency_level: ConsistencyLevel,
    /// Partitions with their (non collection-wide) segments.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub partition_backups: Vec<PartitionBackupInfo>,
    /// Hybrid timestamp of the backup boundary (max channel checkpoint, or snapshot ts).
    #[serde(skip_serializing_if = "is_zero_u64")]
    pub backup_timestamp: u64,
    /// Bytes of the collection's binlogs; always written.
    pub size: i64,
    /// Whether the collection had indexes; always written.
    pub has_index: bool,
    /// Index descriptions.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub index_infos: Vec<IndexInfo>,
    /// `NotLoad`, `Loading` or `Loaded`.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub load_state: String,
    /// Unix seconds when the collection was sealed by Flush.
    #[serde(skip_serializing_if = "is_zero_u64")]
    pub backup_physical_timestamp: u64,
    /// Virtual channel to base64 protobuf `MsgPosition` (serial flush only).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub channel_checkpoints: BTreeMap<String, String>,
    /// L0 segments of partition -1 (collection-wide deletes). Only in `full_meta.json`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub l0_segments: Vec<SegmentBackupInfo>,
    /// Collection properties as DescribeCollection reports them.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub properties: Vec<KeyValuePair>,
    /// Source database id.
    #[serde(skip_serializing_if = "is_zero_i64")]
    pub db_id: i64,
    /// Creation hybrid timestamp.
    #[serde(skip_serializing_if = "is_zero_u64")]
    pub created_timestamp: u64,
    /// Virtual channels.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub virtual_channel_names: Vec<String>,
    /// Physical channels.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub physical_channel_names: Vec<String>,
    /// Aliases (recorded, not restored by milvus-backup).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
    /// Snapshot bundle (snapshot format only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub snapshot_backup: Option<SnapshotBackupInfo>,
    /// Unknown keys (e.g. `state_code`, `progress` of milvus-backup 0.4).
    #[serde(flatten)]
    pub extra: Extra,
}

/// One partition.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct PartitionBackupInfo {
    /// Source partition id.
    #[serde(skip_serializing_if = "is_zero_i64")]
    pub partition_id: i64,
    /// Partition name.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub partition_name: String,
    /// Source collection id.
    #[serde(skip_serializing_if = "is_zero_i64")]
    pub collection_id: i64,
    /// Segments, data and partition-scoped L0.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub segment_backups: Vec<SegmentBackupInfo>,
    /// Bytes of the partition's segments; always written.
    pub size: i64,
    /// `NotLoad`, `Loading` or `Loaded`.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub load_state: String,
    /// Unknown keys.
    #[serde(flatten)]
    pub extra: Extra,
}

/// One segment (a lite `datapb.SegmentInfo`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SegmentBackupInfo {
    /// Source segment id.
    #[serde(skip_serializing_if = "is_zero_i64")]
    pub segment_id: i64,
    /// Source collection id.
    #[serde(skip_serializing_if = "is_zero_i64")]
    pub collection_id: i64,
    /// Source partition id; [`ALL_PARTITIONS`] for collection-wide L0 segments.
    #[serde(skip_serializing_if = "is_zero_i64")]
    pub partition_id: i64,
    /// Rows in the segment.
    #[serde(skip_serializing_if = "is_zero_i64")]
    pub num_of_rows: i64,
    /// Insert logs per field (storage v1) or column group (storage v2).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub binlogs: Vec<FieldBinlog>,
    /// Deprecated, always empty in practice.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub statslogs: Vec<FieldBinlog>,
    /// Delta logs (usually one entry without `fieldID`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub deltalogs: Vec<FieldBinlog>,
    /// Bytes of insert and delta logs; always written.
    pub size: i64,
    /// Virtual-partition directory of the segment in the backup; 0 = old layout without a
    /// group level (and collection-wide L0 segments). See [`SegmentBackupInfo::group`].
    #[serde(skip_serializing_if = "is_zero_i64")]
    pub group_id: i64,
    /// Deprecated.
    #[serde(skip_serializing_if = "is_false")]
    pub backuped: bool,
    /// Whether this is an L0 (delete-only) segment.
    #[serde(skip_serializing_if = "is_false")]
    pub is_l0: bool,
    /// Virtual channel (recorded when the REST segment API was used).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub v_channel: String,
    /// Milvus storage version (2 = storage v2 column groups); 0 when unknown (v1).
    #[serde(skip_serializing_if = "is_zero_i64")]
    pub storage_version: i64,
    /// Unknown keys.
    #[serde(flatten)]
    pub extra: Extra,
}

/// The logs of one field (or column group) of a segment.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct FieldBinlog {
    /// Field id (0, the RowID field and delta logs, is omitted).
    #[serde(rename = "fieldID", skip_serializing_if = "is_zero_i64")]
    pub field_id: i64,
    /// The log files.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub binlogs: Vec<Binlog>,
}

/// One log file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Binlog {
    /// Deprecated.
    #[serde(skip_serializing_if = "is_zero_i64")]
    pub entries_num: i64,
    /// Deprecated.
    #[serde(skip_serializing_if = "is_zero_u64")]
    pub timestamp_from: u64,
    /// Deprecated.
    #[serde(skip_serializing_if = "is_zero_u64")]
    pub timestamp_to: u64,
    /// The object key in the **source Milvus** storage (not the backup key).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub log_path: String,
    /// Bytes of the object; always written.
    pub log_size: i64,
    /// Log id, the last element of the key (absent in milvus-backup 0.4 backups).
    #[serde(skip_serializing_if = "is_zero_i64")]
    pub log_id: i64,
}

/// One index.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct IndexInfo {
    /// Indexed field.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub field_name: String,
    /// Index name.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub index_name: String,
    /// Index type, e.g. `HNSW`.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub index_type: String,
    /// Parameters as DescribeIndex reports them.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub params: BTreeMap<String, String>,
    /// Source index id.
    #[serde(skip_serializing_if = "is_zero_i64")]
    pub index_id: i64,
    /// Field id (from etcd, `--backup_index_extra`).
    #[serde(skip_serializing_if = "is_zero_i64")]
    pub field_id: i64,
    /// Creation time (from etcd).
    #[serde(skip_serializing_if = "is_zero_u64")]
    pub create_time: u64,
    /// Type params (from etcd).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub type_params: Vec<KeyValuePair>,
    /// Index params (from etcd).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub index_params: Vec<KeyValuePair>,
    /// User index params (from etcd).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub user_index_params: Vec<KeyValuePair>,
    /// Whether the index was AUTOINDEX (from etcd).
    #[serde(skip_serializing_if = "is_false")]
    pub is_auto_index: bool,
    /// From etcd.
    #[serde(skip_serializing_if = "is_zero_i32")]
    pub min_index_version: i32,
    /// From etcd.
    #[serde(skip_serializing_if = "is_zero_i32")]
    pub max_index_version: i32,
    /// Unknown keys.
    #[serde(flatten)]
    pub extra: Extra,
}

/// A key/value pair (`{"key","value"}`; either is omitted when empty).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(default)]
pub struct KeyValuePair {
    /// Key.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub key: String,
    /// Value.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub value: String,
}

impl KeyValuePair {
    /// A pair.
    pub fn new(key: impl Into<String>, value: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            value: value.into(),
        }
    }
}

/// A collection schema.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct CollectionSchema {
    /// Collection name.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// Description.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// Deprecated collection-level auto id.
    #[serde(rename = "autoID", skip_serializing_if = "is_false")]
    pub auto_id: bool,
    /// Fields (`$meta` only when milvus-backup read etcd).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<FieldSchema>,
    /// Whether the dynamic field is enabled.
    #[serde(skip_serializing_if = "is_false")]
    pub enable_dynamic_field: bool,
    /// Schema properties.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub properties: Vec<KeyValuePair>,
    /// Functions (BM25, text embedding).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub functions: Vec<FunctionSchema>,
    /// Struct-array fields.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub struct_array_fields: Vec<StructArrayFieldSchema>,
    /// Unknown keys.
    #[serde(flatten)]
    pub extra: Extra,
}

/// A field schema.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct FieldSchema {
    /// Field id.
    #[serde(rename = "fieldID", skip_serializing_if = "is_zero_i64")]
    pub field_id: i64,
    /// Field name.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// Whether this is the primary key.
    #[serde(skip_serializing_if = "is_false")]
    pub is_primary_key: bool,
    /// Description.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// Data type.
    #[serde(skip_serializing_if = "DataType::is_zero")]
    pub data_type: DataType,
    /// Type params (`dim`, `max_length`, ...).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub type_params: Vec<KeyValuePair>,
    /// Index params.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub index_params: Vec<KeyValuePair>,
    /// Whether the primary key is generated.
    #[serde(rename = "autoID", skip_serializing_if = "is_false")]
    pub auto_id: bool,
    /// Field state.
    #[serde(skip_serializing_if = "FieldState::is_zero")]
    pub state: FieldState,
    /// Element type of arrays.
    #[serde(skip_serializing_if = "DataType::is_zero")]
    pub element_type: DataType,
    /// The protobuf `ValueField` as Go's `encoding/json` renders a oneof
    /// (`{"Data":{"LongData":5}}`). milvus-backup never sets it (Go cannot read it back); kept
    /// as JSON for round trips.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default_value: Option<Value>,
    /// Whether this is the dynamic field `$meta`.
    #[serde(skip_serializing_if = "is_false")]
    pub is_dynamic: bool,
    /// Whether this is the partition key.
    #[serde(skip_serializing_if = "is_false")]
    pub is_partition_key: bool,
    /// Whether the field is nullable.
    #[serde(skip_serializing_if = "is_false")]
    pub nullable: bool,
    /// Deprecated: the protobuf `ValueField` bytes as a JSON string (lossy for non-UTF-8
    /// bytes). Read only when `default_value_base64` is empty.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub default_value_proto: String,
    /// Whether a function writes this field.
    #[serde(skip_serializing_if = "is_false")]
    pub is_function_output: bool,
    /// Base64 of the protobuf-serialized Milvus `ValueField`.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub default_value_base64: String,
    /// Unknown keys.
    #[serde(flatten)]
    pub extra: Extra,
}

/// A function (BM25, text embedding, ...).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct FunctionSchema {
    /// Function name.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// Function id.
    #[serde(skip_serializing_if = "is_zero_i64")]
    pub id: i64,
    /// Description.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// Function type.
    #[serde(rename = "type", skip_serializing_if = "FunctionType::is_zero")]
    pub function_type: FunctionType,
    /// Input field names.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub input_field_names: Vec<String>,
    /// Input field ids.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub input_field_ids: Vec<i64>,
    /// Output field names.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub output_field_names: Vec<String>,
    /// Output field ids.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub output_field_ids: Vec<i64>,
    /// Parameters.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub params: Vec<KeyValuePair>,
    /// Unknown keys.
    #[serde(flatten)]
    pub extra: Extra,
}

/// A struct-array field: a named group of sub-fields.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct StructArrayFieldSchema {
    /// Field id.
    #[serde(rename = "fieldID", skip_serializing_if = "is_zero_i64")]
    pub field_id: i64,
    /// Field name.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// Description.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// Sub-fields.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<FieldSchema>,
    /// Unknown keys.
    #[serde(flatten)]
    pub extra: Extra,
}

/// `collection_meta.json`: collections with their partitions, no segments.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct CollectionLevel {
    /// The collections.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub infos: Vec<CollectionBackupInfo>,
}

/// `partition_meta.json`: every partition, no segments.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct PartitionLevel {
    /// The partitions.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub infos: Vec<PartitionBackupInfo>,
}

/// `segment_meta.json`: the segments of every partition (not the collection-wide L0 ones).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SegmentLevel {
    /// The segments.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub infos: Vec<SegmentBackupInfo>,
}

/// What kind of data a backup carries, from [`BackupInfo::format`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackupFormat {
    /// Binlog files copied from Milvus storage (`""`; `"binlog"` is accepted too).
    Binlog,
    /// Milvus 3.0 snapshot bundles (`"snapshot"`).
    Snapshot,
}

impl BackupInfo {
    /// The backup's format.
    ///
    /// # Errors
    /// [`BackupError::UnknownFormat`] for anything but `""`, `"binlog"` and `"snapshot"`.
    /// milvus-backup itself writes only `""` and `"snapshot"`; `"binlog"` is accepted because
    /// it is the name of the format on milvus-backup's command line.
    pub fn format(&self) -> Result<BackupFormat, BackupError> {
        match self.format.as_str() {
            FORMAT_BINLOG | "binlog" => Ok(BackupFormat::Binlog),
            FORMAT_SNAPSHOT => Ok(BackupFormat::Snapshot),
            other => Err(BackupError::UnknownFormat {
                name: self.name.clone(),
                format: other.to_string(),
            }),
        }
    }

    /// Checks that the backup's data are binlogs, which is what restore and migrate handle.
    ///
    /// # Errors
    /// [`BackupError::UnknownFormat`] or [`BackupError::SnapshotFormat`].
    pub fn require_binlog_format(&self) -> Result<(), BackupError> {
        match self.format()? {
            BackupFormat::Binlog => Ok(()),
            BackupFormat::Snapshot => Err(BackupError::SnapshotFormat {
                name: self.name.clone(),
            }),
        }
    }

    /// Every segment of the backup: partition segments, then collection-wide L0 segments, per
    /// collection.
    pub fn segments(&self) -> impl Iterator<Item = &SegmentBackupInfo> {
        self.collection_backups.iter().flat_map(|c| c.segments())
    }

    /// Sets every partition, collection and backup `size` the way milvus-backup's create does:
    /// a partition is the sum of its segments, a collection the sum of all its segments
    /// (collection-wide L0 included), the backup the sum of its collections. Collections of the
    /// snapshot format keep their size (the bundle's bytes).
    pub fn recompute_sizes(&mut self) {
        let mut total = 0;
        for coll in &mut self.collection_backups {
            if coll.snapshot_backup.is_none() {
                let mut size = 0;
                for part in &mut coll.partition_backups {
                    part.size = part.segment_backups.iter().map(|s| s.size).sum();
                    size += part.size;
                }
                size += coll.l0_segments.iter().map(|s| s.size).sum::<i64>();
                coll.size = size;
            }
            total += coll.size;
        }
        self.size = total;
    }
}

impl CollectionBackupInfo {
    /// The collection's segments: each partition's, then the collection-wide L0 ones.
    pub fn segments(&self) -> impl Iterator<Item = &SegmentBackupInfo> {
        self.partition_backups
            .iter()
            .flat_map(|p| p.segment_backups.iter())
            .chain(self.l0_segments.iter())
    }
}

impl PartitionBackupInfo {
    /// Whether the partition uses the old layout without group directories: none of its data
    /// (non-L0) segments has a group id. milvus-backup then imports the whole partition
    /// directory in one job. A partition without data segments counts as grouped.
    pub fn is_groupless(&self) -> bool {
        let mut data = self.segment_backups.iter().filter(|s| !s.is_l0).peekable();
        data.peek().is_some() && data.all(|s| s.group_id == 0)
    }
}

impl SegmentBackupInfo {
    /// The segment's group directory, `None` for the old group-less layout (`group_id` 0) and
    /// for collection-wide L0 segments.
    pub fn group(&self) -> Option<i64> {
        (self.group_id != 0).then_some(self.group_id)
    }

    /// Whether this is a collection-wide L0 segment (partition -1).
    pub fn is_collection_wide(&self) -> bool {
        self.partition_id == ALL_PARTITIONS
    }

    /// Whether the segment has delta logs (deletes to apply to its rows).
    pub fn has_delta_logs(&self) -> bool {
        self.deltalogs.iter().any(|d| !d.binlogs.is_empty())
    }

    /// Sum of the insert and delta log sizes.
    pub fn logs_size(&self) -> i64 {
        self.binlogs
            .iter()
            .chain(self.deltalogs.iter())
            .flat_map(|f| f.binlogs.iter())
            .map(|b| b.log_size)
            .sum()
    }
}

impl Binlog {
    /// The last element of the object key: `log_id`, or for milvus-backup 0.4 backups (which
    /// did not record it) the last element of `log_path`.
    pub fn key_name(&self) -> Option<String> {
        if self.log_id != 0 {
            return Some(self.log_id.to_string());
        }
        self.log_path
            .rsplit('/')
            .next()
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    }
}

impl FieldSchema {
    /// The protobuf bytes of the field's default value (a Milvus `ValueField`), from
    /// `default_value_base64`, or else from the deprecated `default_value_proto`. `None` when
    /// the field has no default.
    ///
    /// # Errors
    /// [`BackupError::InvalidDefaultValue`] if `default_value_base64` is not valid base64.
    pub fn default_value_bytes(&self) -> Result<Option<Vec<u8>>, BackupError> {
        if !self.default_value_base64.is_empty() {
            return base64_decode(&self.default_value_base64)
                .map(Some)
                .ok_or_else(|| BackupError::InvalidDefaultValue {
                    field: self.name.clone(),
                });
        }
        if !self.default_value_proto.is_empty() {
            return Ok(Some(self.default_value_proto.as_bytes().to_vec()));
        }
        Ok(None)
    }

    /// Records a default value given as protobuf `ValueField` bytes, the way current
    /// milvus-backup does (`default_value_base64`; the deprecated forms are cleared).
    pub fn set_default_value_bytes(&mut self, bytes: Option<&[u8]>) {
        self.default_value = None;
        self.default_value_proto.clear();
        self.default_value_base64 = bytes.map(base64_encode).unwrap_or_default();
    }

    /// A type parameter, e.g. `dim`.
    pub fn type_param(&self, key: &str) -> Option<&str> {
        self.type_params
            .iter()
            .find(|kv| kv.key == key)
            .map(|kv| kv.value.as_str())
    }
}
