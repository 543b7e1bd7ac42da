//! `seed`: create a sample collection in a real Milvus and fill it with generated rows, for
//! demos, CI data seeding and the integration tests.
//!
//! Owns the sample schema (`pk`, `vec`, `tag`, `score`, `meta`, `labels`, optionally dynamic
//! keys), the deterministic row generator, the per-partition bookkeeping of what a correct
//! collection must contain after the deletes, and the flow: database, collection, partitions,
//! batched `Insert`, `Delete`, `Flush` and wait, index, load, `count(*)` check. Does not own the
//! gRPC client ([`crate::milvus`]) or any printing (the CLI renders the [`SeedReport`]).
//!
//! Every generated value is a pure function of the row number and [`SeedSpec::seed`], so a row
//! looks the same whatever the batch size or partition layout: row `i` goes to partition
//! `i % (1 + partitions.len())` (`_default` first), has primary key `i` (or `"pk-<i>"`), and a
//! vector drawn from a [`SmallRng`] seeded from `(seed, i)`.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use prost::Message;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;

use crate::error::Error;
use crate::milvus::MilvusClient;
use crate::milvus::proto::{common, milvus as pb, schema};

/// The partition every collection has.
pub const DEFAULT_PARTITION: &str = "_default";
/// Name of the hidden JSON field that carries dynamic keys.
pub const DYNAMIC_FIELD: &str = "$meta";
/// Longest partition name: the `tag` column holds it and is a `VarChar(32)`.
pub const MAX_PARTITION_NAME: usize = 32;
/// Capacity of the `labels` array field.
pub const LABELS_CAPACITY: usize = 4;
/// The index built on `vec` when [`SeedSpec::index`] is set.
pub const INDEX_DESCRIPTION: &str = "IVF_FLAT nlist=128 metric L2";

/// Rows per `Delete` expression.
const DELETE_BATCH: usize = 1000;
/// Request size the automatic batch size aims at; the proxy's limit is 64 MiB in most versions.
const TARGET_REQUEST_BYTES: usize = 8 << 20;
/// Largest request an explicit batch size may produce.
const MAX_REQUEST_BYTES: usize = 48 << 20;
/// Estimated bytes per row besides the vector (keys, scalars, JSON, array, protobuf framing).
const ROW_OVERHEAD_BYTES: usize = 192;
/// How long flush, index build and load may take each.
const WAIT_TIMEOUT: Duration = Duration::from_secs(1800);
/// Pause between polls of flush, index and load state.
const POLL: Duration = Duration::from_millis(500);

/// Errors of `seed` that are not errors of Milvus itself.
#[derive(Debug, thiserror::Error)]
pub enum SeedError {
    /// The request is malformed.
    #[error("invalid seed request: {0}")]
    Invalid(String),
    /// The collection exists and `drop_existing` is off.
    #[error(
        "collection `{db}.{collection}` already exists on Milvus at {address}; \
         drop it first or pass --drop-existing"
    )]
    Exists {
        db: String,
        collection: String,
        address: String,
    },
    /// Milvus accepted fewer rows than sent.
    #[error(
        "collection `{db}.{collection}`, partition `{partition}`: Insert of {sent} rows \
         reported {accepted} inserted"
    )]
    ShortInsert {
        db: String,
        collection: String,
        partition: String,
        sent: u64,
        accepted: i64,
    },
    /// Flush, index build or load did not finish in time.
    #[error("collection `{db}.{collection}`: {step} not finished after {secs} s")]
    Timeout {
        db: String,
        collection: String,
        step: &'static str,
        secs: u64,
    },
    /// The index build failed.
    #[error("collection `{db}.{collection}`: index build on `vec` failed: {reason}")]
    IndexFailed {
        db: String,
        collection: String,
        reason: String,
    },
    /// `count(*)` after loading differs from what was inserted minus what was deleted.
    #[error("collection `{db}.{collection}`{scope}: count(*) is {counted}, expected {expected}")]
    CountMismatch {
        db: String,
        collection: String,
        /// Empty for the whole collection, else ` partition `<name>``.
        scope: String,
        expected: u64,
        counted: i64,
    },
}

/// What to create and how to fill it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeedSpec {
    /// Database; created with `CreateDatabase` when missing (`default` always exists).
    pub db: String,
    /// Collection name.
    pub collection: String,
    /// Rows to insert (before deletes).
    pub rows: u64,
    /// Dimension of the `vec` FloatVector field.
    pub dim: u32,
    /// Partitions besides `_default`; rows go round-robin over `_default` and these.
    pub partitions: Vec<String>,
    /// When > 0: `tag` is a partition key and the collection has this many partitions
    /// (Milvus routes rows by hash; `partitions` must then be empty).
    pub partition_key: u32,
    /// Enable the dynamic field and give every row one dynamic key `extra_<i % 3>`.
    pub dynamic: bool,
    /// 0: no deletes; else delete the rows whose number is a multiple of it, after inserting
    /// and before the flush.
    pub delete_every: u64,
    /// `shards_num` of the collection.
    pub shards: i32,
    /// Consistency level of the collection.
    pub consistency: common::ConsistencyLevel,
    /// A VarChar primary key (`"pk-<i>"`) instead of Int64 (`i`).
    pub varchar_pk: bool,
    /// Seed of the vector RNG.
    pub seed: u64,
    /// Rows per `Insert` request; 0 picks a size that keeps requests near 8 MiB.
    pub batch_rows: usize,
    /// Build an index on `vec` ([`INDEX_DESCRIPTION`]) and wait for it.
    pub index: bool,
    /// Load the collection, wait for 100 %, and check `count(*)` (needs `index`).
    pub load: bool,
    /// Drop a collection of that name first; otherwise an existing one is an error.
    pub drop_existing: bool,
}

impl Default for SeedSpec {
    fn default() -> Self {
        Self {
            db: "default".into(),
            collection: String::new(),
            rows: 10_000,
            dim: 128,
            partitions: Vec::new(),
            partition_key: 0,
            dynamic: false,
            delete_every: 0,
            shards: 1,
            consistency: common::ConsistencyLevel::Bounded,
            varchar_pk: false,
            seed: 42,
            batch_rows: 0,
            index: true,
            load: true,
            drop_existing: false,
        }
    }
}

impl SeedSpec {
    /// Checks the cross-field rules once, before anything is sent to Milvus.
    ///
    /// # Errors
    /// [`SeedError::Invalid`] naming the rule.
    pub fn validate(&self) -> Result<(), SeedError> {
        let bad = |m: String| Err(SeedError::Invalid(m));
        if self.collection.trim().is_empty() {
            return bad("the collection name is empty".into());
        }
        if self.db.trim().is_empty() {
            return bad("the database name is empty".into());
        }
        if self.dim == 0 || self.dim > 32_768 {
            return bad(format!("dim must be 1..=32768, got {}", self.dim));
        }
        if self.shards < 1 {
            return bad(format!("shards must be at least 1, got {}", self.shards));
        }
        if self.partition_key > 0 && !self.partitions.is_empty() {
            return bad(
                "a partition-key collection gets its partitions from Milvus: give \
                        --partition-key or --partitions, not both"
                    .into(),
            );
        }
        if self.load && !self.index {
            return bad("loading needs an index on `vec`: drop --no-index or add --no-load".into());
        }
        let mut seen = std::collections::BTreeSet::new();
        for p in &self.partitions {
            if p.is_empty() || p == DEFAULT_PARTITION {
                return bad(format!(
                    "partition names must be non-empty and not `{DEFAULT_PARTITION}`, got `{p}`"
                ));
            }
            if p.len() > MAX_PARTITION_NAME {
                return bad(format!(
                    "partition `{p}` is longer than {MAX_PARTITION_NAME} characters (the `tag` column)"
                ));
            }
            if !seen.insert(p) {
                return bad(format!("partition `{p}` is given twice"));
            }
        }
        let bytes = self.batch().saturating_mul(self.row_bytes());
        if bytes > MAX_REQUEST_BYTES {
            return bad(format!(
                "{} rows of dim {} make Insert requests of about {} MiB; keep them under {} MiB",
                self.batch(),
                self.dim,
                bytes >> 20,
                MAX_REQUEST_BYTES >> 20
            ));
        }
        Ok(())
    }

    /// `_default` followed by the extra partitions: the round-robin order.
    pub fn all_partitions(&self) -> Vec<String> {
        std::iter::once(DEFAULT_PARTITION.to_string())
            .chain(self.partitions.iter().cloned())
            .collect()
    }

    /// Estimated encoded bytes of one row.
    fn row_bytes(&self) -> usize {
        self.dim as usize * 4 + ROW_OVERHEAD_BYTES
    }

    /// The effective rows per `Insert`.
    pub fn batch(&self) -> usize {
        if self.batch_rows > 0 {
            self.batch_rows
        } else {
            (TARGET_REQUEST_BYTES / self.row_bytes()).clamp(1, 50_000)
        }
    }
}

/// Splits a `-c` value: `coll` (database `default`) or `db.coll`.
///
/// # Errors
/// [`SeedError::Invalid`] for an empty part or more than one dot.
pub fn parse_target(s: &str) -> Result<(String, String), SeedError> {
    let s = s.trim();
    let bad = || SeedError::Invalid(format!("collection `{s}`: use `coll` or `db.coll`"));
    match s.split_once('.') {
        None if !s.is_empty() => Ok(("default".into(), s.into())),
        Some((db, coll)) if !db.is_empty() && !coll.is_empty() && !coll.contains('.') => {
            Ok((db.into(), coll.into()))
        }
        _ => Err(bad()),
    }
}

/// Timings of the steps, in seconds.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SeedTimings {
    /// Database and collection DDL.
    pub create_secs: f64,
    /// All `Insert` requests.
    pub insert_secs: f64,
    /// All `Delete` requests.
    pub delete_secs: f64,
    /// `Flush` until `GetFlushState` says flushed.
    pub flush_secs: f64,
    /// `CreateIndex` until the index is built.
    pub index_secs: f64,
    /// `LoadCollection` until 100 %.
    pub load_secs: f64,
    /// `count(*)` checks.
    pub verify_secs: f64,
}

/// What `seed` created.
#[derive(Debug, Clone, Serialize)]
pub struct SeedReport {
    /// `host:port` of the Milvus.
    pub address: String,
    /// Its version.
    pub milvus_version: String,
    /// Database.
    pub db: String,
    /// Collection.
    pub collection: String,
    /// Whether the database was created by this run.
    pub db_created: bool,
    /// Whether an existing collection of that name was dropped first.
    pub dropped_existing: bool,
    /// The collection's fields in order (without `$meta`).
    pub fields: Vec<String>,
    /// Whether the dynamic field is enabled and filled.
    pub dynamic: bool,
    /// `Int64` or `VarChar`.
    pub primary_key: &'static str,
    /// Vector dimension.
    pub dim: u32,
    /// Shards.
    pub shards: i32,
    /// Rows inserted.
    pub rows_inserted: u64,
    /// Rows deleted.
    pub rows_deleted: u64,
    /// `rows_inserted - rows_deleted`.
    pub expected_rows: u64,
    /// Expected rows per partition after the deletes (`_default` included).
    pub per_partition: BTreeMap<String, u64>,
    /// `Insert` requests sent.
    pub insert_requests: u64,
    /// Rows per `Insert` request.
    pub batch_rows: usize,
    /// `Delete` requests sent.
    pub delete_requests: u64,
    /// Segments sealed by the flush.
    pub flushed_segments: usize,
    /// The index built on `vec`, if any.
    pub index: Option<String>,
    /// Whether the collection is loaded.
    pub loaded: bool,
    /// `count(*)` after loading (equal to `expected_rows`, else `seed` fails).
    pub counted_rows: Option<u64>,
    /// Step timings.
    pub timings: SeedTimings,
    /// Wall time.
    pub duration_secs: f64,
}

/// Creates the collection of `spec` and fills it.
///
/// Steps: validate; create the database if missing; drop or refuse an existing collection;
/// create the collection and partitions; insert every partition's rows in batches; delete the
/// selected rows; flush and wait; build the index and wait; load and wait; check `count(*)`
/// of the collection and of each partition against the bookkeeping.
///
/// # Errors
/// [`SeedError`] for an invalid spec, an existing collection, a timeout or a wrong count;
/// [`crate::milvus::MilvusError`] (as [`Error::Milvus`]) when Milvus refuses a call.
pub async fn seed(client: &MilvusClient, spec: &SeedSpec) -> Result<SeedReport, Error> {
    let started = Instant::now();
    spec.validate()?;
    let mut t = SeedTimings::default();
    let db = spec.db.as_str();
    let name = spec.collection.as_str();

    // DDL.
    let step = Instant::now();
    let mut db_created = false;
    if db != "default" && !client.list_databases().await?.iter().any(|d| d == db) {
        tracing::info!(db, "creating database");
        client.create_database(db).await?;
        db_created = true;
    }
    let c = client.with_db(db);
    let mut dropped_existing = false;
    if c.has_collection(name).await? {
        if !spec.drop_existing {
            return Err(SeedError::Exists {
                db: db.into(),
                collection: name.into(),
                address: c.address().into(),
            }
            .into());
        }
        tracing::info!(db, collection = name, "dropping existing collection");
        c.drop_collection(name).await?;
        dropped_existing = true;
    }
    let labels = supports_arrays(c.version());
    let sch = collection_schema(spec, labels);
    let fields = sch.fields.iter().map(|f| f.name.clone()).collect();
    c.create_collection(pb::CreateCollectionRequest {
        db_name: db.into(),
        collection_name: name.into(),
        schema: sch.encode_to_vec(),
        shards_num: spec.shards,
        consistency_level: spec.consistency as i32,
        num_partitions: i64::from(spec.partition_key),
        ..Default::default()
    })
    .await?;
    for p in &spec.partitions {
        c.create_partition(name, p).await?;
    }
    t.create_secs = step.elapsed().as_secs_f64();

    // Inserts: partition by partition, each in batches of its own rows.
    let step = Instant::now();
    let parts = spec.all_partitions();
    let batch = spec.batch();
    let mut insert_requests = 0u64;
    for (j, part) in parts.iter().enumerate() {
        let mut rows = partition_rows(spec.rows, parts.len(), j).peekable();
        while rows.peek().is_some() {
            let chunk: Vec<u64> = rows.by_ref().take(batch).collect();
            let sent = chunk.len() as u64;
            let r = c
                .insert(pb::InsertRequest {
                    db_name: db.into(),
                    collection_name: name.into(),
                    // Partition-key collections route rows themselves.
                    partition_name: if spec.partition_key > 0 {
                        String::new()
                    } else {
                        part.clone()
                    },
                    fields_data: columns(spec, part, &chunk, labels),
                    num_rows: chunk.len() as u32,
                    ..Default::default()
                })
                .await?;
            insert_requests += 1;
            if r.insert_cnt != sent as i64 {
                return Err(SeedError::ShortInsert {
                    db: db.into(),
                    collection: name.into(),
                    partition: part.clone(),
                    sent,
                    accepted: r.insert_cnt,
                }
                .into());
            }
            tracing::debug!(partition = %part, rows = sent, "inserted");
        }
    }
    t.insert_secs = step.elapsed().as_secs_f64();
    tracing::info!(
        rows = spec.rows,
        requests = insert_requests,
        secs = t.insert_secs,
        "inserted"
    );

    // Deletes, across all partitions.
    let step = Instant::now();
    let mut rows_deleted = 0u64;
    let mut delete_requests = 0u64;
    let deleted: Vec<u64> = deleted_rows(spec.rows, spec.delete_every).collect();
    for keys in deleted.chunks(DELETE_BATCH) {
        c.delete(name, "", &delete_expr(keys, spec.varchar_pk))
            .await?;
        rows_deleted += keys.len() as u64;
        delete_requests += 1;
    }
    t.delete_secs = step.elapsed().as_secs_f64();

    // Flush and wait, so that the rows are in persistent segments.
    let step = Instant::now();
    let flushed = c.flush(name).await?;
    wait(db, name, "flush", || c.flush_state(name, &flushed)).await?;
    t.flush_secs = step.elapsed().as_secs_f64();
    tracing::info!(
        segments = flushed.segment_ids.len(),
        secs = t.flush_secs,
        "flushed"
    );

    // Index.
    let mut index = None;
    if spec.index {
        let step = Instant::now();
        c.create_index(name, "vec", "vec_idx", index_params())
            .await?;
        wait(db, name, "index build", || async {
            let descs = c.describe_index(name).await?;
            let Some(d) = descs.iter().find(|d| d.field_name == "vec") else {
                return Ok(false);
            };
            if d.state == common::IndexState::Failed as i32 {
                return Err(SeedError::IndexFailed {
                    db: db.into(),
                    collection: name.into(),
                    reason: d.index_state_fail_reason.clone(),
                }
                .into());
            }
            Ok::<_, Error>(d.state == common::IndexState::Finished as i32)
        })
        .await?;
        t.index_secs = step.elapsed().as_secs_f64();
        index = Some(INDEX_DESCRIPTION.to_string());
        tracing::info!(secs = t.index_secs, "index built");
    }

    // Load and verify.
    // Partition-key collections: Milvus hashes rows to partitions and refuses per-partition
    // queries, so only the total is known and checked.
    let expected = if spec.partition_key > 0 {
        BTreeMap::new()
    } else {
        expected_counts(spec.rows, &parts, spec.delete_every)
    };
    let expected_rows = spec.rows - rows_deleted;
    let mut counted_rows = None;
    if spec.load {
        let step = Instant::now();
        c.load_collection(name).await?;
        wait(db, name, "load", || async {
            Ok::<_, Error>(c.loading_progress(name).await? >= 100)
        })
        .await?;
        t.load_secs = step.elapsed().as_secs_f64();
        tracing::info!(secs = t.load_secs, "loaded");

        let step = Instant::now();
        let mismatch = |scope: String, expected: u64, counted: i64| SeedError::CountMismatch {
            db: db.into(),
            collection: name.into(),
            scope,
            expected,
            counted,
        };
        let total = c.count(name, &[]).await?;
        if total != expected_rows as i64 {
            return Err(mismatch(String::new(), expected_rows, total).into());
        }
        for (p, &want) in &expected {
            let got = c.count(name, std::slice::from_ref(p)).await?;
            if got != want as i64 {
                return Err(mismatch(format!(" partition `{p}`"), want, got).into());
            }
        }
        counted_rows = Some(total as u64);
        t.verify_secs = step.elapsed().as_secs_f64();
    }

    Ok(SeedReport {
        address: c.address().into(),
        milvus_version: c.version().to_string(),
        db: db.into(),
        collection: name.into(),
        db_created,
        dropped_existing,
        fields,
        dynamic: spec.dynamic,
        primary_key: if spec.varchar_pk { "VarChar" } else { "Int64" },
        dim: spec.dim,
        shards: spec.shards,
        rows_inserted: spec.rows,
        rows_deleted,
        expected_rows,
        per_partition: expected,
        insert_requests,
        batch_rows: batch,
        delete_requests,
        flushed_segments: flushed.segment_ids.len(),
        index,
        loaded: spec.load,
        counted_rows,
        timings: t,
        duration_secs: started.elapsed().as_secs_f64(),
    })
}

/// Polls `done` every [`POLL`] until it says true, for at most [`WAIT_TIMEOUT`].
async fn wait<F, Fut, E>(
    db: &str,
    collection: &str,
    step: &'static str,
    done: F,
) -> Result<(), Error>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<bool, E>>,
    Error: From<E>,
{
    let started = Instant::now();
    while !done().await? {
        if started.elapsed() > WAIT_TIMEOUT {
            return Err(SeedError::Timeout {
                db: db.into(),
                collection: collection.into(),
                step,
                secs: WAIT_TIMEOUT.as_secs(),
            }
            .into());
        }
        tokio::time::sleep(POLL).await;
    }
    Ok(())
}

/// Array fields exist from Milvus 2.3.0.
fn supports_arrays(v: &crate::milvus::ServerVersion) -> bool {
    v.at_least(2, 3, 0)
}

fn kv(key: &str, value: impl ToString) -> common::KeyValuePair {
    common::KeyValuePair {
        key: key.into(),
        value: value.to_string(),
    }
}

/// The parameters of [`INDEX_DESCRIPTION`].
fn index_params() -> Vec<common::KeyValuePair> {
    vec![
        kv("index_type", "IVF_FLAT"),
        kv("metric_type", "L2"),
        kv("params", r#"{"nlist":128}"#),
    ]
}

/// The sample schema: `pk`, `vec`, `tag`, `score`, `meta`, and `labels` when the server has
/// arrays. Milvus numbers the fields 100, 101, … in this order and appends `$meta` when the
/// dynamic field is on.
pub fn collection_schema(spec: &SeedSpec, labels: bool) -> schema::CollectionSchema {
    use schema::DataType;
    let field = |name: &str, ty: DataType, params: Vec<common::KeyValuePair>| schema::FieldSchema {
        name: name.into(),
        data_type: ty as i32,
        type_params: params,
        ..Default::default()
    };
    let mut pk = if spec.varchar_pk {
        field("pk", DataType::VarChar, vec![kv("max_length", 64)])
    } else {
        field("pk", DataType::Int64, vec![])
    };
    pk.is_primary_key = true;
    pk.description = "row number".into();
    let mut fields = vec![
        pk,
        field("vec", DataType::FloatVector, vec![kv("dim", spec.dim)]),
        field(
            "tag",
            DataType::VarChar,
            vec![kv("max_length", MAX_PARTITION_NAME)],
        ),
        field("score", DataType::Double, vec![]),
        field("meta", DataType::Json, vec![]),
    ];
    fields[2].is_partition_key = spec.partition_key > 0;
    if labels {
        let mut f = field(
            "labels",
            DataType::Array,
            vec![kv("max_capacity", LABELS_CAPACITY)],
        );
        f.element_type = DataType::Int64 as i32;
        fields.push(f);
    }
    schema::CollectionSchema {
        name: spec.collection.clone(),
        description: "sample collection made by milvus-migrate seed".into(),
        fields,
        enable_dynamic_field: spec.dynamic,
        ..Default::default()
    }
}

/// Row numbers of partition `j` of `n`, ascending.
fn partition_rows(rows: u64, n: usize, j: usize) -> impl Iterator<Item = u64> {
    (j as u64..rows).step_by(n)
}

/// Row numbers deleted: multiples of `every` (none when `every` is 0).
fn deleted_rows(rows: u64, every: u64) -> impl Iterator<Item = u64> {
    let end = if every == 0 { 0 } else { rows };
    (0..end).step_by(every.max(1) as usize)
}

/// Rows each partition holds after the deletes.
pub fn expected_counts(rows: u64, partitions: &[String], every: u64) -> BTreeMap<String, u64> {
    let n = partitions.len() as u64;
    let mut out: BTreeMap<String, u64> = partitions
        .iter()
        .enumerate()
        .map(|(j, p)| {
            let j = j as u64;
            (p.clone(), if j < rows { (rows - j).div_ceil(n) } else { 0 })
        })
        .collect();
    for i in deleted_rows(rows, every) {
        if let Some(c) = out.get_mut(&partitions[(i % n) as usize]) {
            *c -= 1;
        }
    }
    out
}

/// The primary key of row `i` as it appears in an expression.
fn pk_literal(i: u64, varchar: bool) -> String {
    if varchar {
        format!("\"{}\"", varchar_pk(i))
    } else {
        i.to_string()
    }
}

fn varchar_pk(i: u64) -> String {
    format!("pk-{i}")
}

/// `pk in [..]` over the keys of some rows.
fn delete_expr(rows: &[u64], varchar: bool) -> String {
    let keys: Vec<String> = rows.iter().map(|&i| pk_literal(i, varchar)).collect();
    format!("pk in [{}]", keys.join(","))
}

/// The vector of row `i`: `dim` floats in [-1, 1) from a generator seeded by `(seed, i)`.
fn row_vector(seed: u64, i: u64, dim: u32, out: &mut Vec<f32>) {
    let mut rng = SmallRng::seed_from_u64(seed ^ i.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    out.extend((0..dim).map(|_| rng.random_range(-1.0f32..1.0)));
}

/// `score` of row `i` (exact in f64).
fn row_score(i: u64) -> f64 {
    i as f64 / 4.0
}

/// `meta` of row `i`.
fn row_meta(i: u64) -> serde_json::Value {
    serde_json::json!({"i": i, "even": i.is_multiple_of(2)})
}

/// `labels` of row `i`: 0 to 4 small numbers.
fn row_labels(i: u64) -> Vec<i64> {
    let len = i % (LABELS_CAPACITY as u64 + 1);
    (0..len).map(|k| ((i + k) % 100) as i64).collect()
}

/// The dynamic keys of row `i`: one `extra_<i % 3>` of a type that varies with it.
fn row_dynamic(i: u64) -> serde_json::Value {
    match i % 3 {
        0 => serde_json::json!({"extra_0": i}),
        1 => serde_json::json!({"extra_1": format!("v{i}")}),
        _ => serde_json::json!({"extra_2": i as f64 / 2.0}),
    }
}

fn scalars(
    ty: schema::DataType,
    name: &str,
    data: schema::scalar_field::Data,
) -> schema::FieldData {
    schema::FieldData {
        r#type: ty as i32,
        field_name: name.into(),
        field: Some(schema::field_data::Field::Scalars(schema::ScalarField {
            data: Some(data),
        })),
        ..Default::default()
    }
}

fn json_bytes(v: &serde_json::Value) -> Vec<u8> {
    v.to_string().into_bytes()
}

/// The `Insert` columns of some rows of partition `part`, in schema order, plus `$meta` when
/// the spec is dynamic.
pub fn columns(spec: &SeedSpec, part: &str, rows: &[u64], labels: bool) -> Vec<schema::FieldData> {
    use schema::DataType;
    use schema::scalar_field::Data;
    let pk = if spec.varchar_pk {
        scalars(
            DataType::VarChar,
            "pk",
            Data::StringData(schema::StringArray {
                data: rows.iter().map(|&i| varchar_pk(i)).collect(),
            }),
        )
    } else {
        scalars(
            DataType::Int64,
            "pk",
            Data::LongData(schema::LongArray {
                data: rows.iter().map(|&i| i as i64).collect(),
            }),
        )
    };
    let mut vectors = Vec::with_capacity(rows.len() * spec.dim as usize);
    for &i in rows {
        row_vector(spec.seed, i, spec.dim, &mut vectors);
    }
    let vec = schema::FieldData {
        r#type: DataType::FloatVector as i32,
        field_name: "vec".into(),
        field: Some(schema::field_data::Field::Vectors(schema::VectorField {
            dim: spec.dim.into(),
            data: Some(schema::vector_field::Data::FloatVector(
                schema::FloatArray { data: vectors },
            )),
        })),
        ..Default::default()
    };
    let mut out = vec![
        pk,
        vec,
        scalars(
            DataType::VarChar,
            "tag",
            Data::StringData(schema::StringArray {
                data: if spec.partition_key > 0 {
                    rows.iter().map(|i| format!("t{}", i % 7)).collect()
                } else {
                    vec![part.to_string(); rows.len()]
                },
            }),
        ),
        scalars(
            DataType::Double,
            "score",
            Data::DoubleData(schema::DoubleArray {
                data: rows.iter().map(|&i| row_score(i)).collect(),
            }),
        ),
        scalars(
            DataType::Json,
            "meta",
            Data::JsonData(schema::JsonArray {
                data: rows.iter().map(|&i| json_bytes(&row_meta(i))).collect(),
            }),
        ),
    ];
    if labels {
        out.push(scalars(
            DataType::Array,
            "labels",
            Data::ArrayData(schema::ArrayArray {
                data: rows
                    .iter()
                    .map(|&i| schema::ScalarField {
                        data: Some(Data::LongData(schema::LongArray {
                            data: row_labels(i),
                        })),
                    })
                    .collect(),
                element_type: DataType::Int64 as i32,
            }),
        ));
    }
    if spec.dynamic {
        let mut meta = scalars(
            DataType::Json,
            DYNAMIC_FIELD,
            Data::JsonData(schema::JsonArray {
                data: rows.iter().map(|&i| json_bytes(&row_dynamic(i))).collect(),
            }),
        );
        meta.is_dynamic = true;
        out.push(meta);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use schema::field_data::Field;
    use schema::scalar_field::Data;

    fn spec() -> SeedSpec {
        SeedSpec {
            collection: "c".into(),
            rows: 20,
            dim: 8,
            partitions: vec!["p1".into(), "p2".into()],
            dynamic: true,
            ..SeedSpec::default()
        }
    }

    /// Rows of one column.
    fn len(f: &schema::FieldData, dim: usize) -> usize {
        match f.field.as_ref().unwrap() {
            Field::Vectors(v) => match v.data.as_ref().unwrap() {
                schema::vector_field::Data::FloatVector(a) => a.data.len() / dim,
                other => panic!("unexpected vector {other:?}"),
            },
            Field::Scalars(s) => match s.data.as_ref().unwrap() {
                Data::LongData(a) => a.data.len(),
                Data::StringData(a) => a.data.len(),
                Data::DoubleData(a) => a.data.len(),
                Data::JsonData(a) => a.data.len(),
                Data::ArrayData(a) => a.data.len(),
                other => panic!("unexpected scalars {other:?}"),
            },
            other => panic!("unexpected field {other:?}"),
        }
    }

    fn floats(f: &schema::FieldData) -> &[f32] {
        match f.field.as_ref().unwrap() {
            Field::Vectors(v) => match v.data.as_ref().unwrap() {
                schema::vector_field::Data::FloatVector(a) => &a.data,
                _ => unreachable!(),
            },
            _ => unreachable!(),
        }
    }

    #[test]
    fn columns_have_one_value_per_row_in_schema_order() {
        let s = spec();
        let rows: Vec<u64> = partition_rows(s.rows, 3, 1).collect();
        assert_eq!(rows, [1, 4, 7, 10, 13, 16, 19]);
        let cols = columns(&s, "p1", &rows, true);
        let names: Vec<&str> = cols.iter().map(|f| f.field_name.as_str()).collect();
        assert_eq!(
            names,
            ["pk", "vec", "tag", "score", "meta", "labels", "$meta"]
        );
        let schema_names: Vec<String> = collection_schema(&s, true)
            .fields
            .into_iter()
            .map(|f| f.name)
            .collect();
        assert_eq!(&names[..6], schema_names.as_slice());
        for f in &cols {
            assert_eq!(len(f, 8), rows.len(), "{}", f.field_name);
        }
        assert!(cols[6].is_dynamic && !cols[4].is_dynamic);
        assert_eq!(cols[6].r#type, schema::DataType::Json as i32);

        let no_extras = columns(
            &SeedSpec {
                dynamic: false,
                ..s.clone()
            },
            "p1",
            &rows,
            false,
        );
        assert_eq!(no_extras.len(), 5);
    }

    #[test]
    fn values_are_deterministic_and_independent_of_batching() {
        let s = spec();
        let all = columns(&s, "_default", &[0, 1, 2, 3], true);
        let again = columns(&s, "_default", &[0, 1, 2, 3], true);
        assert_eq!(all, again);
        let one = columns(&s, "_default", &[2], true);
        assert_eq!(floats(&one[1]), &floats(&all[1])[16..24]);
        assert!(floats(&all[1]).iter().all(|x| (-1.0..1.0).contains(x)));

        let other_seed = columns(&SeedSpec { seed: 7, ..s }, "_default", &[2], true);
        assert_ne!(floats(&other_seed[1]), floats(&one[1]));

        assert_eq!(row_meta(3).to_string(), r#"{"even":false,"i":3}"#);
        assert_eq!(row_dynamic(4).to_string(), r#"{"extra_1":"v4"}"#);
        assert_eq!(row_labels(0), Vec::<i64>::new());
        assert_eq!(row_labels(99), [99, 0, 1, 2]);
        assert!((0..100).all(|i| row_labels(i).len() <= LABELS_CAPACITY));
    }

    #[test]
    fn varchar_keys_and_delete_expressions() {
        let s = SeedSpec {
            varchar_pk: true,
            ..spec()
        };
        let cols = columns(&s, "p2", &[2, 5], false);
        match cols[0].field.as_ref().unwrap() {
            Field::Scalars(sc) => match sc.data.as_ref().unwrap() {
                Data::StringData(a) => assert_eq!(a.data, ["pk-2", "pk-5"]),
                other => panic!("{other:?}"),
            },
            other => panic!("{other:?}"),
        }
        assert_eq!(delete_expr(&[0, 10], true), r#"pk in ["pk-0","pk-10"]"#);
        assert_eq!(delete_expr(&[0, 10], false), "pk in [0,10]");
        let pk = &collection_schema(&s, false).fields[0];
        assert!(pk.is_primary_key && !pk.auto_id);
        assert_eq!(pk.data_type, schema::DataType::VarChar as i32);
    }

    /// Brute force over the rows, the way the seeder lays them out.
    fn brute(rows: u64, parts: &[String], every: u64) -> BTreeMap<String, u64> {
        let mut out: BTreeMap<String, u64> = parts.iter().map(|p| (p.clone(), 0)).collect();
        for (j, p) in parts.iter().enumerate() {
            for i in partition_rows(rows, parts.len(), j) {
                if every == 0 || i % every != 0 {
                    *out.get_mut(p).unwrap() += 1;
                }
            }
        }
        out
    }

    #[test]
    fn expected_counts_per_partition_follow_round_robin_and_deletes() {
        let parts = spec().all_partitions();
        let c = expected_counts(20_000, &parts, 10);
        // 20000 rows over 3 partitions: 6667, 6667, 6666; multiples of 10 deleted: 2000,
        // i.e. 667 from _default (i ≡ 0 mod 30), 667 from p1 (i ≡ 10), 666 from p2 (i ≡ 20).
        assert_eq!(c["_default"], 6667 - 667);
        assert_eq!(c["p1"], 6667 - 667);
        assert_eq!(c["p2"], 6666 - 666);
        assert_eq!(c.values().sum::<u64>(), 18_000);
        assert_eq!(deleted_rows(20_000, 10).count(), 2000);

        for rows in [0, 1, 2, 3, 7, 100, 1001] {
            for every in [0, 1, 2, 3, 4, 10, 5000] {
                for n in 1..=4 {
                    let parts: Vec<String> = (0..n).map(|k| format!("p{k}")).collect();
                    let want = brute(rows, &parts, every);
                    assert_eq!(
                        expected_counts(rows, &parts, every),
                        want,
                        "{rows} {every} {n}"
                    );
                    let deleted = deleted_rows(rows, every).count() as u64;
                    assert_eq!(want.values().sum::<u64>(), rows - deleted);
                }
            }
        }
    }

    #[test]
    fn validation_and_targets() {
        assert!(spec().validate().is_ok());
        let bad = |s: SeedSpec| s.validate().unwrap_err().to_string();
        assert!(bad(SeedSpec { dim: 0, ..spec() }).contains("dim"));
        assert!(
            bad(SeedSpec {
                partitions: vec!["p".into(), "p".into()],
                ..spec()
            })
            .contains("twice")
        );
        assert!(
            bad(SeedSpec {
                partitions: vec!["_default".into()],
                ..spec()
            })
            .contains("_default")
        );
        assert!(
            bad(SeedSpec {
                index: false,
                ..spec()
            })
            .contains("index")
        );
        assert!(
            bad(SeedSpec {
                batch_rows: 1_000_000,
                dim: 128,
                ..spec()
            })
            .contains("MiB")
        );
        let auto = SeedSpec::default();
        assert!(auto.batch() * auto.row_bytes() <= TARGET_REQUEST_BYTES);
        assert!(
            SeedSpec {
                dim: 32_768,
                ..spec()
            }
            .validate()
            .is_ok()
        );

        assert_eq!(parse_target("c").unwrap(), ("default".into(), "c".into()));
        assert_eq!(parse_target("db1.c2").unwrap(), ("db1".into(), "c2".into()));
        for s in ["", ".c", "db.", "a.b.c"] {
            assert!(parse_target(s).is_err(), "{s}");
        }
    }

    #[test]
    fn requests_stay_within_the_size_estimate() {
        let s = SeedSpec {
            varchar_pk: true,
            dim: 4,
            partitions: vec!["a_partition_name_of_32_chars_xx".into()],
            ..spec()
        };
        let rows: Vec<u64> = (1_000_000_000..1_000_001_000).collect();
        let req = pb::InsertRequest {
            collection_name: "c".into(),
            partition_name: s.partitions[0].clone(),
            fields_data: columns(&s, &s.partitions[0], &rows, true),
            num_rows: rows.len() as u32,
            ..Default::default()
        };
        assert!(req.encoded_len() <= rows.len() * s.row_bytes());
    }

    #[test]
    fn schema_has_the_sample_fields() {
        let s = collection_schema(&spec(), true);
        assert!(s.enable_dynamic_field);
        let labels = &s.fields[5];
        assert_eq!(labels.data_type, schema::DataType::Array as i32);
        assert_eq!(labels.element_type, schema::DataType::Int64 as i32);
        assert_eq!(labels.type_params, [kv("max_capacity", 4)]);
        assert_eq!(s.fields[1].type_params, [kv("dim", 8)]);
        assert!(s.fields.iter().all(|f| !f.is_dynamic));
    }
}
