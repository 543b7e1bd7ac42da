//! Complete metadata (issue 15, part 2) on the real Milvus 2.3.5 pair: aliases, collection
//! properties, partition key and count, consistency level, shards, index and replicas move
//! with `migrate`, every item compares equal on B; `verify` names an alias dropped and a
//! property changed on B afterwards (exit 1); an alias whose name another collection holds on
//! B is left alone and reported; a required setting that differs fails `migrate`; more
//! replicas than B can hold load with one, noted.

use std::path::Path;

use milvus_migrate::milvus::proto::common;
use serde_json::Value;

use crate::milvus::{on_milvus, phase_note, profiles, run, run_json, seed, unique};

/// The metadata items of a report's first collection: name to (status, A, B).
fn items(metadata: &Value) -> Vec<(String, String, String, String)> {
    metadata["items"]
        .as_array()
        .unwrap_or_else(|| panic!("no metadata items: {metadata}"))
        .iter()
        .map(|i| {
            let s = |k: &str| i[k].as_str().unwrap_or_default().to_string();
            (s("item"), s("status"), s("a"), s("b"))
        })
        .collect()
}

fn status<'a>(items: &'a [(String, String, String, String)], name: &str) -> &'a str {
    &items
        .iter()
        .find(|i| i.0 == name)
        .unwrap_or_else(|| panic!("no item `{name}` in {items:?}"))
        .1
}

fn property(key: &str, value: &str) -> common::KeyValuePair {
    common::KeyValuePair {
        key: key.into(),
        value: value.into(),
    }
}

#[test]
fn aliases_properties_and_settings_move_and_verify_names_what_b_changed() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = profiles(tmp.path());
    let (a, b) = (a.to_str().unwrap(), b.to_str().unwrap());
    let coll = unique("md_all");
    let target = format!("{coll}_bak");
    // Partition key over 4 partitions, 2 shards, Session consistency (neither the server's
    // default, Strong, nor the SDKs', Bounded), an index, loaded with 1 replica.
    seed(
        Path::new(a),
        &coll,
        &[
            "--rows",
            "1500",
            "--dim",
            "8",
            "--partition-key",
            "4",
            "--shards",
            "2",
            "--consistency",
            "session",
            "--dynamic",
        ],
    );
    let (al1, al2) = (format!("{coll}_al1"), format!("{coll}_al2"));
    on_milvus(Path::new(a), async |c| {
        let props = vec![
            property("collection.ttl.seconds", "86400"),
            property("mmap.enabled", "true"),
        ];
        c.alter_collection_properties(&coll, props).await.unwrap();
        c.create_alias(&coll, &al1).await.unwrap();
        c.create_alias(&coll, &al2).await.unwrap();
    });

    let report = run_json(&[
        "migrate", "--from", a, "--to", b, "-c", &coll, "--suffix", "_bak", "--json",
    ]);
    let restored = &report["restore"]["collections"][0];
    assert_eq!(
        restored["aliases"],
        serde_json::json!([al1, al2]),
        "{report}"
    );
    assert_eq!(restored["replicas"], 1, "{report}");
    assert_eq!(restored["notes"], serde_json::json!([]), "{report}");
    let got = items(&report["collections"][0]["metadata"]);
    for (name, st, va, vb) in &got {
        let expected = if name == "database properties" {
            "not_comparable" // Milvus 2.3.5 has no DescribeDatabase
        } else {
            "equal"
        };
        assert_eq!(st, expected, "{name}: A {va}, B {vb}\n{report}");
    }
    let value = |name: &str| got.iter().find(|i| i.0 == name).unwrap().2.clone();
    assert_eq!(value("aliases"), format!("{al1}, {al2}"));
    assert_eq!(value("property collection.ttl.seconds"), "86400");
    assert_eq!(value("property mmap.enabled"), "true");
    assert_eq!(value("partition key"), "tag");
    assert!(
        value("partitions").starts_with("4 "),
        "{}",
        value("partitions")
    );
    assert_eq!(value("consistency level"), "Session");
    assert_eq!(value("shards"), "2");
    assert_eq!(value("dynamic field"), "on");
    assert!(value("index on vec").starts_with("`vec_idx` "), "{got:?}");
    assert_eq!(value("load state"), "Loaded");
    assert_eq!(value("replicas"), "1");
    let verify_note = phase_note(&report, "verify");
    assert!(
        verify_note.contains(&format!("metadata: {} items equal", got.len() - 1)),
        "{verify_note}"
    );

    // `verify` agrees: exit 0, the items in its report.
    let out = run(&[
        "verify", "--from", a, "--to", b, "-c", &coll, "--target", &target, "--json",
    ]);
    assert_eq!(out.status.code(), Some(0));
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(items(&r["collections"][0]["metadata"]), got);

    // B changes: an alias dropped, the TTL changed.
    on_milvus(Path::new(b), async |c| {
        c.drop_alias(&al2).await.unwrap();
        let props = vec![property("collection.ttl.seconds", "60")];
        c.alter_collection_properties(&target, props).await.unwrap();
    });
    let out = run(&[
        "verify", "--from", a, "--to", b, "-c", &coll, "--target", &target, "--json",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["ok"], false);
    let now = items(&r["collections"][0]["metadata"]);
    assert_eq!(status(&now, "aliases"), "different", "{r}");
    assert_eq!(
        status(&now, "property collection.ttl.seconds"),
        "different",
        "{r}"
    );
    assert_eq!(status(&now, "property mmap.enabled"), "equal", "{r}");
    // The rows are the same: only the metadata differs.
    assert_eq!(r["collections"][0]["missing"]["count"], 0, "{r}");
    let out = run(&[
        "verify", "--from", a, "--to", b, "-c", &coll, "--target", &target,
    ]);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("DIFFERENT"), "{text}");
    assert!(
        text.contains(&format!("aliases (A: {al1}, {al2}, B: {al1})")),
        "{text}"
    );
    assert!(
        text.contains("property collection.ttl.seconds (A: 86400, B: 60)"),
        "{text}"
    );
}

#[test]
fn an_alias_held_by_another_collection_on_b_is_left_alone_and_reported() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = profiles(tmp.path());
    let (a, b) = (a.to_str().unwrap(), b.to_str().unwrap());
    let coll = unique("md_held");
    let other = unique("md_other");
    let alias = format!("{coll}_al");
    let small = ["--rows", "300", "--dim", "4"];
    seed(Path::new(a), &coll, &small);
    seed(Path::new(b), &other, &small);
    on_milvus(Path::new(a), async |c| {
        c.create_alias(&coll, &alias).await.unwrap()
    });
    on_milvus(Path::new(b), async |c| {
        c.create_alias(&other, &alias).await.unwrap()
    });

    let report = run_json(&[
        "migrate", "--from", a, "--to", b, "-c", &coll, "--suffix", "_bak", "--json",
    ]);
    let restored = &report["restore"]["collections"][0];
    assert_eq!(restored["aliases"], serde_json::json!([]), "{report}");
    let note = restored["notes"][0].as_str().unwrap_or_default();
    assert!(
        note.contains(&format!("alias `{alias}` not restored")) && note.contains(&other),
        "{report}"
    );
    let m = &report["collections"][0]["metadata"];
    let aliases = m["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["item"] == "aliases")
        .unwrap();
    assert_eq!(aliases["status"], "not_comparable", "{m}");
    assert!(aliases["reason"].as_str().unwrap().contains(&other), "{m}");
    // B's alias still names its own collection.
    on_milvus(Path::new(b), async |c| {
        let d = c.describe_collection(&other).await.unwrap();
        assert_eq!(d.aliases, std::slice::from_ref(&alias));
        c.drop_alias(&alias).await.unwrap();
    });
}

/// A required setting that differs fails `migrate` (exit 2) naming the item, before the
/// cleanup: here an alias A gained after the backup the migration reuses. The backup records
/// the replica count of the loaded source.
#[test]
fn migrate_fails_when_a_required_setting_differs_and_keeps_the_backup() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = profiles(tmp.path());
    let (a, b) = (a.to_str().unwrap(), b.to_str().unwrap());
    let coll = unique("md_fail");
    seed(Path::new(a), &coll, &["--rows", "300", "--dim", "4"]);
    let name = unique("md_fail_b");
    run_json(&["create", "--config", a, "-c", &coll, "-n", &name, "--json"]);
    let stack = crate::support::milvus::Stack::get();
    let ours = stack
        .store_a
        .object_path(&format!("backup/{name}/meta/milvus_migrate.json"));
    let ours: Value = serde_json::from_slice(&std::fs::read(ours).unwrap()).unwrap();
    assert_eq!(
        ours["replicas"],
        serde_json::json!([{"db_name": "default", "collection_name": coll, "replicas": 1}]),
        "{ours}"
    );
    let alias = format!("{coll}_late");
    on_milvus(Path::new(a), async |c| {
        c.create_alias(&coll, &alias).await.unwrap()
    });

    let out = run(&[
        "migrate", "--from", a, "--to", b, "-c", &coll, "--suffix", "_bak", "-n", &name,
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("phase verify"), "{stderr}");
    assert!(
        stderr.contains(&format!("metadata of `default.{coll}_bak` differs")),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("aliases (A: {alias}, B: none)")),
        "{stderr}"
    );
    assert!(stderr.contains("kept for inspection"), "{stderr}");
    assert!(
        crate::migrate::files_under(&stack.store_b.object_path(&format!("backup/{name}"))) > 0,
        "the copy on B was removed"
    );
}

/// A backup that records more replicas than B's query nodes can hold (the stack's Milvus has
/// one) restores loaded with one, and the report says why.
#[test]
fn more_replicas_than_b_can_hold_load_with_one_and_a_note() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = profiles(tmp.path());
    let (a, b) = (a.to_str().unwrap(), b.to_str().unwrap());
    let coll = unique("md_repl");
    seed(Path::new(a), &coll, &["--rows", "300", "--dim", "4"]);
    let name = unique("md_repl_b");
    run_json(&["create", "--config", a, "-c", &coll, "-n", &name, "--json"]);
    // The backup in a local directory, its record of A's replicas raised to 2.
    let dir = tmp.path().join("backups");
    let local = tmp.path().join("local.yaml");
    let yaml = format!(
        "minio:\n  backupStorageType: local\n  backupRootPath: {}\n",
        dir.display()
    );
    std::fs::write(&local, yaml).unwrap();
    let local = local.to_str().unwrap();
    run_json(&["copy", "--from", a, "--to", local, "-n", &name, "--json"]);
    let ours = dir.join(&name).join("meta/milvus_migrate.json");
    let mut meta: Value = serde_json::from_slice(&std::fs::read(&ours).unwrap()).unwrap();
    assert_eq!(meta["replicas"][0]["replicas"], 1, "{meta}");
    meta["replicas"][0]["replicas"] = 2.into();
    std::fs::write(&ours, serde_json::to_vec(&meta).unwrap()).unwrap();

    let report = run_json(&[
        "restore",
        "--config",
        b,
        "--from",
        local,
        "-n",
        &name,
        "-s",
        "_r2",
        "--rebuild-index",
        "--load",
        "--json",
    ]);
    let c = &report["collections"][0];
    assert_eq!(c["replicas"], 1, "{report}");
    assert_eq!(c["verified"], true, "{report}");
    let note = c["notes"][0].as_str().unwrap_or_default();
    assert!(
        note.contains("loaded with 1 replica: B could not take the 2 replicas A had"),
        "{report}"
    );
}
