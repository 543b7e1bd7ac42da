//! The restored collection's metadata beyond its schema: collection properties, database
//! properties, aliases and the in-memory replica count.
//!
//! Owns the rules (each documented in the README's `restore` section):
//! - **collection properties**: `CreateCollection` gets the properties `DescribeCollection`
//!   reported on A (`CollectionBackupInfo.properties`: TTL, mmap and the rest) over the
//!   schema's own ([`merge_properties`]); the server-managed `max_field_id` is never sent
//!   (see [`crate::milvus::protocol::create_plan`]).
//! - **database properties**: given to `CreateDatabase` when restore creates the target
//!   database on a Milvus that takes them (2.4+); a database that exists on B keeps its own,
//!   and a skipped set is named in a note ([`create_database`]).
//! - **aliases**: each alias of the source is created in the target database, under its own
//!   name, for the target collection, when that name is free there (no alias and no collection
//!   of that name). A name held on B by another collection is left alone and named in a note:
//!   an alias is never moved (`AlterAlias` would take it from a collection that uses it), and
//!   milvus-backup restores no aliases at all ([`restore_aliases`]).
//! - **replicas**: the collection is loaded with as many replicas as A had (recorded at
//!   `create` in `milvus_migrate.json`; when not recorded, B's default: 1, or on 2.4+ the
//!   database's `database.replica.number`); when B's query nodes cannot take that many it is
//!   loaded with 1, and a note says why ([`load_with_replicas`]). The report gives the
//!   replicas B then has ([`loaded_replicas`]).
//! - **loaded partitions**: a source loaded by some partitions only (each partition's load
//!   state is in the backup) is loaded by the same partitions on B (`LoadPartitions`), so
//!   `count(*)` and queries see the same rows on both sides; otherwise the whole collection
//!   ([`partitions_to_load`]). milvus-backup records every partition with the collection's
//!   state, so its backups load whole.
//!
//! Does not own the restore flow (`super`) or the RPCs ([`MilvusClient`]).

use crate::backup::{self, KeyValuePair};
use crate::milvus::{MilvusClient, MilvusError, convert};

/// `schema`'s properties with the collection's (as `DescribeCollection` reported them) laid
/// over them: a key in both takes the collection's value, a key only in the collection's is
/// added.
pub(super) fn merge_properties(schema: &mut backup::CollectionSchema, collection: &[KeyValuePair]) {
    for kv in collection {
        match schema.properties.iter_mut().find(|p| p.key == kv.key) {
            Some(p) => p.value.clone_from(&kv.value),
            None => schema.properties.push(kv.clone()),
        }
    }
}

/// `k=v, k=v` of some properties, for notes.
fn list(kv: &[KeyValuePair]) -> String {
    kv.iter()
        .map(|p| format!("{}={}", p.key, p.value))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Creates database `db` on B with the source database's `properties` where B takes them.
/// Returns a note when properties were recorded but could not be given.
///
/// # Errors
/// `CreateDatabase` failed.
pub(super) async fn create_database(
    client: &MilvusClient,
    db: &str,
    properties: &[KeyValuePair],
) -> Result<Option<String>, MilvusError> {
    if properties.is_empty() || !client.version().has_database_properties() {
        client.create_database(db).await?;
        return Ok((!properties.is_empty()).then(|| {
            format!(
                "database `{db}` created without the source's properties ({}): Milvus {} takes \
                 none at CreateDatabase",
                list(properties),
                client.version()
            )
        }));
    }
    client
        .create_database_with(db, convert::kv_from_meta(properties))
        .await?;
    Ok(None)
}

/// The note for a target database that exists on B while the source's had properties.
pub(super) fn existing_database_note(db: &str, properties: &[KeyValuePair]) -> Option<String> {
    (!properties.is_empty()).then(|| {
        format!(
            "database `{db}` exists on B and keeps its own properties (the source's: {})",
            list(properties)
        )
    })
}

/// What became of the source's aliases.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct Aliases {
    /// Aliases of the target collection on B now.
    pub restored: Vec<String>,
    /// Aliases not restored, each with the reason.
    pub notes: Vec<String>,
}

/// What to do with one alias, given what its name resolves to on B.
#[derive(Debug, PartialEq, Eq)]
enum AliasAction {
    /// The name is free: create it.
    Create,
    /// It already names the target (a rerun): nothing to do.
    Present,
    /// Another collection holds the name (as alias or as its own name).
    Taken(String),
}

/// Decides from `DescribeCollection(alias)` on B: `None` when nothing has that name, else the
/// collection it names (id, name).
fn alias_action(resolved: Option<(i64, &str)>, target_id: i64) -> AliasAction {
    match resolved {
        None => AliasAction::Create,
        Some((id, _)) if id == target_id => AliasAction::Present,
        Some((id, "")) => AliasAction::Taken(format!("collection id {id}")),
        Some((_, name)) => AliasAction::Taken(format!("`{name}`")),
    }
}

/// Creates the source's `aliases` for collection `target` (id `target_id`) of `c`'s database
/// (the rule is in the module docs), in name order.
///
/// # Errors
/// `DescribeCollection` or `CreateAlias` failed for another reason than a taken name.
pub(super) async fn restore_aliases(
    c: &MilvusClient,
    target: &str,
    target_id: i64,
    aliases: &[String],
) -> Result<Aliases, MilvusError> {
    let mut out = Aliases::default();
    let mut aliases = aliases.to_vec();
    aliases.sort();
    for alias in &aliases {
        let resolved = match c.describe_collection(alias).await {
            Ok(d) => Some((d.collection_id, convert::described_name(&d))),
            Err(e) if e.is_collection_not_found() => None,
            Err(e) => return Err(e),
        };
        let resolved = resolved.as_ref().map(|(id, n)| (*id, n.as_str()));
        match alias_action(resolved, target_id) {
            AliasAction::Create => {
                c.create_alias(target, alias).await?;
                out.restored.push(alias.clone());
            }
            AliasAction::Present => out.restored.push(alias.clone()),
            AliasAction::Taken(holder) => out.notes.push(format!(
                "alias `{alias}` not restored: in database `{}` on B it names {holder}",
                c.db()
            )),
        }
    }
    Ok(out)
}

/// The partitions to load when the source was loaded by some of its partitions only (state
/// `Loaded`, or `Loading` at backup time); empty when it is loaded whole (or not at all, when
/// it is loaded whole on B to be checked).
pub(super) fn partitions_to_load(src: &backup::CollectionBackupInfo) -> Vec<String> {
    use backup::meta::load_state::{LOADED, LOADING};
    let parts = &src.partition_backups;
    let loaded: Vec<String> = parts
        .iter()
        .filter(|p| p.load_state == LOADED || p.load_state == LOADING)
        .map(|p| p.partition_name.clone())
        .collect();
    if loaded.is_empty() || loaded.len() == parts.len() {
        Vec::new()
    } else {
        loaded
    }
}

/// Starts loading `collection` (by `partitions` when not empty, see [`partitions_to_load`])
/// with `wanted` replicas (`None`: the server's default). When B refuses more than one (its
/// query nodes cannot hold them), loads it with 1 and returns a note saying so.
///
/// # Errors
/// `LoadCollection` (`LoadPartitions`) failed with one replica too.
pub(super) async fn load_with_replicas(
    c: &MilvusClient,
    collection: &str,
    partitions: &[String],
    wanted: Option<u32>,
) -> Result<Option<String>, MilvusError> {
    let load = |n: i32| async move {
        if partitions.is_empty() {
            c.load_collection_replicas(collection, n).await
        } else {
            c.load_partitions(collection, partitions, n).await
        }
    };
    let n = wanted.map_or(0, |w| i32::try_from(w).unwrap_or(i32::MAX));
    match load(n).await {
        Ok(()) => Ok(None),
        Err(e) if n > 1 => {
            // A refused load leaves nothing loaded, but a release makes sure.
            let _ = c.release_collection(collection).await;
            load(1).await?;
            Ok(Some(format!(
                "`{}.{collection}` loaded with 1 replica: B could not take the {n} replicas A \
                 had ({e})",
                c.db()
            )))
        }
        Err(e) => Err(e),
    }
}

/// The replicas a loaded collection has.
///
/// # Errors
/// `DescribeCollection` or `GetReplicas` failed.
pub(super) async fn loaded_replicas(
    c: &MilvusClient,
    collection: &str,
) -> Result<u32, MilvusError> {
    let id = c.describe_collection(collection).await?.collection_id;
    let n = c.replica_count(id).await?;
    Ok(u32::try_from(n).unwrap_or(u32::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collection_properties_lay_over_the_schemas() {
        let mut schema = backup::CollectionSchema {
            properties: vec![
                KeyValuePair::new("collection.ttl.seconds", "10"),
                KeyValuePair::new("kept", "x"),
            ],
            ..Default::default()
        };
        merge_properties(
            &mut schema,
            &[
                KeyValuePair::new("collection.ttl.seconds", "3600"),
                KeyValuePair::new("mmap.enabled", "true"),
            ],
        );
        assert_eq!(
            schema.properties,
            [
                KeyValuePair::new("collection.ttl.seconds", "3600"),
                KeyValuePair::new("kept", "x"),
                KeyValuePair::new("mmap.enabled", "true"),
            ]
        );
    }

    #[test]
    fn an_alias_is_created_only_where_its_name_is_free() {
        assert_eq!(alias_action(None, 7), AliasAction::Create);
        assert_eq!(alias_action(Some((7, "coll_bak")), 7), AliasAction::Present);
        assert_eq!(
            alias_action(Some((3, "coll")), 7),
            AliasAction::Taken("`coll`".into())
        );
        assert_eq!(
            alias_action(Some((3, "")), 7),
            AliasAction::Taken("collection id 3".into())
        );
    }

    #[test]
    fn notes_name_the_database_and_the_properties() {
        let p = [KeyValuePair::new("database.replica.number", "2")];
        let n = existing_database_note("db1", &p).unwrap();
        assert!(
            n.contains("`db1`") && n.contains("database.replica.number=2"),
            "{n}"
        );
        assert_eq!(existing_database_note("db1", &[]), None);
    }
}
