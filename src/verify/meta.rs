//! Metadata comparison: does collection B carry the same settings as collection A?
//!
//! Owns describing one side's collection ([`MetaSnapshot`]: `DescribeCollection`,
//! `ShowPartitions`, `DescribeIndex`, the load state, `GetReplicas`, `DescribeDatabase`) and
//! comparing two of them item by item ([`compare`]), each item with A's value, B's value and
//! whether they are equal, different, or cannot be compared (with the reason). Does not own the
//! RPCs or any printing.
//!
//! Items, and whether a difference fails a migration (`required`):
//! - `aliases` (required): the alias sets. An alias of A that B's target lacks because the
//!   name already names another collection on B (restore leaves such names alone, see
//!   `restore::meta`) makes the item *not comparable*, naming the holder; a lost or an extra
//!   alias is a difference.
//! - `property <key>` (required), one per key either side has: collection properties (TTL,
//!   mmap, ...); the server-managed `max_field_id` is not compared.
//! - `partition key`, `partitions` (names, which for a partition-key collection gives their
//!   count), `consistency level`, `shards`, `description`, `dynamic field` (all required).
//! - `index on <field>` (required), one per indexed field: index name and every parameter
//!   (type, metric, build parameters; the JSON of `params` by value).
//! - `load state`, `replicas` (not required: B's load is the caller's choice, `--no-load`,
//!   and its replicas are bounded by B's query nodes).
//! - `database properties` (not required: a database that existed on B keeps its own); not
//!   comparable where a side has no `DescribeDatabase` (before 2.4.3).
//!
//! Not compared: what the server generates (collection, partition, index and database ids,
//! creation and update timestamps, channel names, index build progress).

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::milvus::proto::common;
use crate::milvus::protocol::MAX_FIELD_ID;
use crate::milvus::{MilvusClient, MilvusError, convert};

/// How many partition names an item's value shows.
const SHOWN_PARTITIONS: usize = 4;

/// The outcome of one item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MetaStatus {
    /// Same on both sides.
    Equal,
    /// Not the same.
    Different,
    /// Cannot be compared (the reason is in the item).
    NotComparable,
}

/// One compared item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MetaItem {
    /// What, e.g. `aliases`, `property collection.ttl.seconds`, `index on vec`.
    pub item: String,
    /// A's value.
    pub a: String,
    /// B's value.
    pub b: String,
    /// The outcome.
    pub status: MetaStatus,
    /// Why it cannot be compared.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Whether a difference fails a migration.
    pub required: bool,
}

/// Every item of one collection.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct MetaComparison {
    /// In a fixed order (see the module docs).
    pub items: Vec<MetaItem>,
}

impl MetaComparison {
    /// Whether no required item differs.
    pub fn ok(&self) -> bool {
        !self
            .items
            .iter()
            .any(|i| i.required && i.status == MetaStatus::Different)
    }

    fn with(&self, status: MetaStatus) -> impl Iterator<Item = &MetaItem> {
        self.items.iter().filter(move |i| i.status == status)
    }

    /// One line: `metadata: 11 items equal`, or the items that differ (A's and B's values)
    /// and those that cannot be compared (why).
    pub fn summary(&self) -> String {
        let equal = self.with(MetaStatus::Equal).count();
        let mut parts = vec![format!(
            "metadata: {equal} item{} equal",
            if equal == 1 { "" } else { "s" }
        )];
        let differing: Vec<String> = self
            .with(MetaStatus::Different)
            .map(|i| {
                let note = if i.required { "" } else { ", not required" };
                format!("{} (A: {}, B: {}{note})", i.item, i.a, i.b)
            })
            .collect();
        if !differing.is_empty() {
            parts.push(format!("different: {}", differing.join("; ")));
        }
        let open: Vec<String> = self
            .with(MetaStatus::NotComparable)
            .map(|i| format!("{} ({})", i.item, i.reason.as_deref().unwrap_or("")))
            .collect();
        if !open.is_empty() {
            parts.push(format!("not comparable: {}", open.join("; ")));
        }
        parts.join("; ")
    }
}

/// An index as compared: its name and parameters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IndexSpec {
    /// Index name.
    pub name: String,
    /// Parameters (`index_type`, `metric_type`, `params` as normalised JSON, ...).
    pub params: BTreeMap<String, String>,
}

impl std::fmt::Display for IndexSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let params: Vec<String> = self
            .params
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        write!(f, "`{}` {}", self.name, params.join(" "))
    }
}

/// What one side says of its collection.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MetaSnapshot {
    /// The Milvus version, for reasons.
    pub version: String,
    /// Collection id (to tell whether an alias names this collection; not compared).
    pub collection_id: i64,
    /// Aliases, sorted.
    pub aliases: BTreeSet<String>,
    /// Collection properties.
    pub properties: BTreeMap<String, String>,
    /// Properties of its database; `None` where the server has no `DescribeDatabase`.
    pub db_properties: Option<BTreeMap<String, String>>,
    /// The partition-key field.
    pub partition_key: Option<String>,
    /// Partition names, sorted.
    pub partitions: Vec<String>,
    /// `common.ConsistencyLevel` code.
    pub consistency_level: i32,
    /// Shards.
    pub shards: i32,
    /// Schema description.
    pub description: String,
    /// Whether the dynamic field is on.
    pub dynamic_field: bool,
    /// Indexes by field name.
    pub indexes: BTreeMap<String, IndexSpec>,
    /// `Loaded`, `Loading` or `NotLoad`.
    pub load_state: String,
    /// In-memory replicas when loaded.
    pub replicas: Option<usize>,
}

/// Describes `coll` of `c`'s database.
///
/// # Errors
/// The first call that failed, with its name.
pub async fn snapshot(
    c: &MilvusClient,
    coll: &str,
) -> Result<MetaSnapshot, (&'static str, MilvusError)> {
    let at = |step: &'static str| move |e: MilvusError| (step, e);
    let desc = c
        .describe_collection(coll)
        .await
        .map_err(at("DescribeCollection"))?;
    let mut partitions: Vec<String> = c
        .show_partitions(coll)
        .await
        .map_err(at("ShowPartitions"))?
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    partitions.sort();
    let indexes = c.describe_index(coll).await.map_err(at("DescribeIndex"))?;
    let progress = c
        .loading_progress(coll)
        .await
        .map_err(at("GetLoadingProgress"))?;
    // Loaded by some partitions only: which ones (GetLoadingProgress says 100 % then).
    let loaded_partitions = if progress > 0 {
        let states = c
            .partition_load_states(coll, &partitions)
            .await
            .map_err(at("GetLoadState"))?;
        let loaded: Vec<&str> = partitions
            .iter()
            .zip(&states)
            .filter(|(_, s)| **s == common::LoadState::Loaded)
            .map(|(p, _)| p.as_str())
            .collect();
        (loaded.len() < partitions.len()).then(|| loaded.join(", "))
    } else {
        None
    };
    let replicas = match progress {
        100 => Some(
            c.replica_count(desc.collection_id)
                .await
                .map_err(at("GetReplicas"))?,
        ),
        _ => None,
    };
    let db_properties = c
        .database_properties(c.db())
        .await
        .map_err(at("DescribeDatabase"))?
        .map(|kv| pairs(&kv));
    let schema = desc.schema.clone().unwrap_or_default();
    Ok(MetaSnapshot {
        version: c.version().raw.clone(),
        collection_id: desc.collection_id,
        aliases: desc.aliases.iter().cloned().collect(),
        properties: pairs(&desc.properties),
        db_properties,
        partition_key: schema
            .fields
            .iter()
            .find(|f| f.is_partition_key)
            .map(|f| f.name.clone()),
        partitions,
        consistency_level: desc.consistency_level,
        shards: desc.shards_num,
        description: schema.description.clone(),
        dynamic_field: schema.enable_dynamic_field,
        indexes: indexes
            .iter()
            .map(|d| {
                let spec = IndexSpec {
                    name: d.index_name.clone(),
                    params: index_params(&d.params),
                };
                (d.field_name.clone(), spec)
            })
            .collect(),
        load_state: match (progress, loaded_partitions) {
            (100, Some(p)) => format!("Loaded (partitions {p})"),
            (100, None) => "Loaded".into(),
            (0, _) => "NotLoad".into(),
            _ => "Loading".into(),
        },
        replicas,
    })
}

fn pairs(kv: &[common::KeyValuePair]) -> BTreeMap<String, String> {
    kv.iter()
        .map(|p| (p.key.clone(), p.value.clone()))
        .collect()
}

/// Index parameters with JSON values (`params`) in one canonical form, so key order and
/// spacing do not count.
fn index_params(kv: &[common::KeyValuePair]) -> BTreeMap<String, String> {
    kv.iter()
        .map(|p| {
            let v = match serde_json::from_str::<serde_json::Value>(&p.value) {
                Ok(j @ serde_json::Value::Object(_)) => j.to_string(),
                _ => p.value.clone(),
            };
            (p.key.clone(), v)
        })
        .collect()
}

/// The aliases of A that B's target lacks, with the collection that holds each name on B
/// (only those held by another collection).
///
/// # Errors
/// `DescribeCollection` on B failed for another reason than a free name.
pub async fn aliases_held_elsewhere(
    b: &MilvusClient,
    a: &MetaSnapshot,
    target: &MetaSnapshot,
) -> Result<BTreeMap<String, String>, MilvusError> {
    let mut held = BTreeMap::new();
    for alias in a.aliases.difference(&target.aliases) {
        match b.describe_collection(alias).await {
            Ok(d) if d.collection_id != target.collection_id => {
                held.insert(alias.clone(), convert::described_name(&d));
            }
            Ok(_) => {}
            Err(e) if e.is_collection_not_found() => {}
            Err(e) => return Err(e),
        }
    }
    Ok(held)
}

/// Item builder.
fn item(name: impl Into<String>, a: String, b: String, required: bool) -> MetaItem {
    let status = if a == b {
        MetaStatus::Equal
    } else {
        MetaStatus::Different
    };
    MetaItem {
        item: name.into(),
        a,
        b,
        status,
        reason: None,
        required,
    }
}

fn not_comparable(mut i: MetaItem, reason: String) -> MetaItem {
    i.status = MetaStatus::NotComparable;
    i.reason = Some(reason);
    i
}

fn set(s: &BTreeSet<String>) -> String {
    if s.is_empty() {
        "none".into()
    } else {
        s.iter().cloned().collect::<Vec<_>>().join(", ")
    }
}

fn map(m: &BTreeMap<String, String>) -> String {
    if m.is_empty() {
        "none".into()
    } else {
        let kv: Vec<String> = m.iter().map(|(k, v)| format!("{k}={v}")).collect();
        kv.join(", ")
    }
}

fn partitions(p: &[String]) -> String {
    let mut shown: Vec<&str> = p
        .iter()
        .take(SHOWN_PARTITIONS)
        .map(String::as_str)
        .collect();
    if p.len() > SHOWN_PARTITIONS {
        shown.push("...");
    }
    format!("{} ({})", p.len(), shown.join(", "))
}

fn consistency(code: i32) -> String {
    common::ConsistencyLevel::try_from(code)
        .map_or_else(|_| code.to_string(), |l| l.as_str_name().to_string())
}

fn on_off(b: bool) -> String {
    if b { "on" } else { "off" }.into()
}

/// Compares A's collection with B's; `held` maps A's aliases that another collection holds
/// on B to that collection ([`aliases_held_elsewhere`]).
pub fn compare(
    a: &MetaSnapshot,
    b: &MetaSnapshot,
    held: &BTreeMap<String, String>,
) -> MetaComparison {
    let mut items = vec![aliases_item(a, b, held)];
    let keys: BTreeSet<&String> = a.properties.keys().chain(b.properties.keys()).collect();
    for k in keys.into_iter().filter(|k| *k != MAX_FIELD_ID) {
        let value = |s: &MetaSnapshot| {
            s.properties
                .get(k)
                .cloned()
                .unwrap_or_else(|| "unset".into())
        };
        items.push(item(format!("property {k}"), value(a), value(b), true));
    }
    let key = |s: &MetaSnapshot| s.partition_key.clone().unwrap_or_else(|| "none".into());
    items.push(item("partition key", key(a), key(b), true));
    let (pa, pb) = (partitions(&a.partitions), partitions(&b.partitions));
    let mut parts = item("partitions", pa, pb, true);
    if a.partitions != b.partitions {
        parts.status = MetaStatus::Different;
    }
    items.push(parts);
    items.push(item(
        "consistency level",
        consistency(a.consistency_level),
        consistency(b.consistency_level),
        true,
    ));
    items.push(item(
        "shards",
        a.shards.to_string(),
        b.shards.to_string(),
        true,
    ));
    let quoted = |s: &MetaSnapshot| format!("{:?}", s.description);
    items.push(item("description", quoted(a), quoted(b), true));
    items.push(item(
        "dynamic field",
        on_off(a.dynamic_field),
        on_off(b.dynamic_field),
        true,
    ));
    items.extend(index_items(a, b));
    items.push(item(
        "load state",
        a.load_state.clone(),
        b.load_state.clone(),
        false,
    ));
    items.push(replicas_item(a, b));
    items.push(db_properties_item(a, b));
    MetaComparison { items }
}

fn aliases_item(a: &MetaSnapshot, b: &MetaSnapshot, held: &BTreeMap<String, String>) -> MetaItem {
    let i = item("aliases", set(&a.aliases), set(&b.aliases), true);
    let lost: Vec<&String> = a
        .aliases
        .difference(&b.aliases)
        .filter(|x| !held.contains_key(*x))
        .collect();
    let extra = b.aliases.difference(&a.aliases).count();
    if held.is_empty() || !lost.is_empty() || extra > 0 {
        return i;
    }
    let holders: Vec<String> = held
        .iter()
        .map(|(alias, coll)| format!("`{alias}` names `{coll}` on B"))
        .collect();
    not_comparable(i, holders.join(", "))
}

fn index_items(a: &MetaSnapshot, b: &MetaSnapshot) -> Vec<MetaItem> {
    let fields: BTreeSet<&String> = a.indexes.keys().chain(b.indexes.keys()).collect();
    fields
        .into_iter()
        .map(|f| {
            let spec = |s: &MetaSnapshot| s.indexes.get(f).map_or("none".into(), |i| i.to_string());
            item(format!("index on {f}"), spec(a), spec(b), true)
        })
        .collect()
}

fn replicas_item(a: &MetaSnapshot, b: &MetaSnapshot) -> MetaItem {
    let count = |s: &MetaSnapshot| s.replicas.map_or("-".into(), |n| n.to_string());
    let i = item("replicas", count(a), count(b), false);
    match (a.replicas, b.replicas) {
        (Some(_), Some(_)) => i,
        (None, _) => not_comparable(i, "not loaded on A".into()),
        (_, None) => not_comparable(i, "not loaded on B".into()),
    }
}

fn db_properties_item(a: &MetaSnapshot, b: &MetaSnapshot) -> MetaItem {
    let props = |s: &MetaSnapshot| s.db_properties.as_ref().map_or("-".into(), map);
    let i = item("database properties", props(a), props(b), false);
    let missing: Vec<String> = [("A", a), ("B", b)]
        .iter()
        .filter(|(_, s)| s.db_properties.is_none())
        .map(|(side, s)| {
            format!(
                "Milvus {} on {side} has no DescribeDatabase (2.4.3+)",
                s.version
            )
        })
        .collect();
    if missing.is_empty() {
        i
    } else {
        not_comparable(i, missing.join("; "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn side() -> MetaSnapshot {
        MetaSnapshot {
            version: "v2.3.5".into(),
            collection_id: 1,
            aliases: ["al1".to_string(), "al2".to_string()].into(),
            properties: [
                ("collection.ttl.seconds".to_string(), "3600".to_string()),
                ("mmap.enabled".to_string(), "true".to_string()),
            ]
            .into(),
            db_properties: None,
            partition_key: Some("tag".into()),
            partitions: (0..16).map(|i| format!("_default_{i}")).collect(),
            consistency_level: common::ConsistencyLevel::Session as i32,
            shards: 2,
            description: "docs".into(),
            dynamic_field: true,
            indexes: [(
                "vec".to_string(),
                IndexSpec {
                    name: "vec_idx".into(),
                    params: index_params(&[
                        common::KeyValuePair {
                            key: "index_type".into(),
                            value: "IVF_FLAT".into(),
                        },
                        common::KeyValuePair {
                            key: "params".into(),
                            value: r#"{"nlist": "128"}"#.into(),
                        },
                    ]),
                },
            )]
            .into(),
            load_state: "Loaded".into(),
            replicas: Some(1),
        }
    }

    fn status_of<'a>(c: &'a MetaComparison, name: &str) -> &'a MetaItem {
        c.items.iter().find(|i| i.item == name).unwrap()
    }

    #[test]
    fn the_same_settings_compare_equal_item_by_item() {
        let (a, mut b) = (side(), side());
        b.collection_id = 99; // generated: not compared
        let c = compare(&a, &b, &BTreeMap::new());
        assert!(c.ok());
        let names: Vec<&str> = c.items.iter().map(|i| i.item.as_str()).collect();
        assert_eq!(
            names,
            [
                "aliases",
                "property collection.ttl.seconds",
                "property mmap.enabled",
                "partition key",
                "partitions",
                "consistency level",
                "shards",
                "description",
                "dynamic field",
                "index on vec",
                "load state",
                "replicas",
                "database properties"
            ]
        );
        assert_eq!(
            c.summary(),
            "metadata: 12 items equal; not comparable: database properties (Milvus v2.3.5 on A \
             has no DescribeDatabase (2.4.3+); Milvus v2.3.5 on B has no DescribeDatabase \
             (2.4.3+))"
        );
        assert_eq!(status_of(&c, "consistency level").a, "Session");
        assert_eq!(
            status_of(&c, "partitions").a,
            "16 (_default_0, _default_1, _default_2, _default_3, ...)"
        );
        assert_eq!(
            status_of(&c, "index on vec").a,
            r#"`vec_idx` index_type=IVF_FLAT params={"nlist":"128"}"#
        );
    }

    #[test]
    fn a_lost_alias_a_changed_property_or_index_fails_and_is_named() {
        let a = side();
        let mut b = side();
        b.aliases.remove("al2");
        b.properties
            .insert("collection.ttl.seconds".into(), "60".into());
        b.properties.insert("new.key".into(), "x".into());
        b.indexes
            .get_mut("vec")
            .unwrap()
            .params
            .insert("index_type".into(), "HNSW".into());
        let c = compare(&a, &b, &BTreeMap::new());
        assert!(!c.ok());
        let s = c.summary();
        assert!(s.starts_with("metadata: 9 items equal; different: "), "{s}");
        assert!(s.contains("aliases (A: al1, al2, B: al1)"), "{s}");
        assert!(
            s.contains("property collection.ttl.seconds (A: 3600, B: 60)"),
            "{s}"
        );
        assert!(s.contains("property new.key (A: unset, B: x)"), "{s}");
        assert!(
            s.contains("index on vec (A: `vec_idx` index_type=IVF_FLAT"),
            "{s}"
        );
    }

    #[test]
    fn index_json_parameters_compare_by_value() {
        let kv = |v: &str| {
            index_params(&[common::KeyValuePair {
                key: "params".into(),
                value: v.into(),
            }])
        };
        assert_eq!(
            kv(r#"{"M":"8", "efConstruction":"64"}"#),
            kv(r#"{"efConstruction":"64","M":"8"}"#)
        );
        assert_ne!(kv(r#"{"M":"8"}"#), kv(r#"{"M":"16"}"#));
    }

    #[test]
    fn load_state_replicas_and_database_properties_are_reported_but_do_not_fail() {
        let mut a = side();
        let mut b = side();
        a.replicas = Some(2);
        a.db_properties = Some([("database.max.collections".into(), "10".into())].into());
        b.db_properties = Some(BTreeMap::new());
        let c = compare(&a, &b, &BTreeMap::new());
        assert!(c.ok(), "{}", c.summary());
        assert_eq!(status_of(&c, "replicas").status, MetaStatus::Different);
        assert_eq!(
            status_of(&c, "database properties").status,
            MetaStatus::Different
        );
        assert!(c.summary().contains("replicas (A: 2, B: 1, not required)"));

        b.load_state = "NotLoad".into();
        b.replicas = None;
        let c = compare(&a, &b, &BTreeMap::new());
        assert!(c.ok());
        assert_eq!(status_of(&c, "load state").status, MetaStatus::Different);
        let r = status_of(&c, "replicas");
        assert_eq!(r.status, MetaStatus::NotComparable);
        assert_eq!(r.reason.as_deref(), Some("not loaded on B"));
    }

    #[test]
    fn an_alias_held_by_another_collection_on_b_is_not_comparable_but_a_lost_one_differs() {
        let a = side();
        let mut b = side();
        b.aliases.clear();
        b.aliases.insert("al1".into());
        let held: BTreeMap<String, String> = [("al2".to_string(), "coll".to_string())].into();
        let c = compare(&a, &b, &held);
        assert!(c.ok());
        let i = status_of(&c, "aliases");
        assert_eq!(i.status, MetaStatus::NotComparable);
        assert_eq!(i.reason.as_deref(), Some("`al2` names `coll` on B"));

        // Both missing, only one held elsewhere: the other is lost.
        b.aliases.clear();
        let c = compare(&a, &b, &held);
        assert!(!c.ok());
        assert_eq!(status_of(&c, "aliases").status, MetaStatus::Different);
    }

    #[test]
    fn max_field_id_and_partition_differences() {
        let mut a = side();
        let mut b = side();
        a.properties.insert(MAX_FIELD_ID.into(), "104".into());
        b.properties.insert(MAX_FIELD_ID.into(), "110".into());
        assert!(compare(&a, &b, &BTreeMap::new()).ok());
        b.partitions.pop();
        b.partition_key = None;
        let c = compare(&a, &b, &BTreeMap::new());
        assert!(!c.ok());
        assert_eq!(status_of(&c, "partitions").status, MetaStatus::Different);
        assert_eq!(status_of(&c, "partition key").b, "none");
    }
}
