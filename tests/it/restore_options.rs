//! milvus-backup's options, with its meaning, against real Milvus 2.3.5: `restore --meta-only`,
//! `--use-auto-index`, `--skip-create-collection`, `--drop-exist-index`; `create --strategy`;
//! and `create --rbac` / `restore --rbac` on a Milvus with authentication on (a single instance
//! on local disk, `support::single`).

use std::path::Path;

use serde_json::Value;

use crate::milvus::{counts_of, on_milvus, profiles, run, run_fatal, run_json, seed, unique};
use crate::support::single::{ROOT, Single};
use milvus_migrate::milvus::proto::common::KeyValuePair;

/// A collection's indexes on a Milvus: (field, params as a map).
fn indexes(
    profile: &Path,
    coll: &str,
) -> Vec<(String, std::collections::BTreeMap<String, String>)> {
    on_milvus(profile, async |c| {
        c.describe_index(coll)
            .await
            .unwrap()
            .into_iter()
            .map(|d| {
                (
                    d.field_name,
                    d.params.into_iter().map(|kv| (kv.key, kv.value)).collect(),
                )
            })
            .collect()
    })
}

#[test]
fn restore_options_meta_only_auto_index_skip_create_and_drop_exist_index() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = profiles(tmp.path());
    let (a, b) = (a.to_str().unwrap(), b.to_str().unwrap());
    let coll = unique("it_opts");
    let backup = format!("{coll}_b");
    let (coll, backup) = (coll.as_str(), backup.as_str());
    let seeded = seed(
        Path::new(a),
        coll,
        &["--rows", "3000", "--dim", "16", "--partitions", "p1,p2"],
    );
    let (expected, _) = counts_of(&seeded);
    run_json(&["create", "--config", a, "-n", backup, "-c", coll, "--json"]);
    let source_index = indexes(Path::new(a), coll);
    assert_eq!(source_index.len(), 1, "{source_index:?}");
    assert_eq!(source_index[0].1["index_type"], "IVF_FLAT");

    // --meta-only: the collection, its partitions and (with --rebuild-index) its index; no rows,
    // nothing staged.
    let meta = format!("{coll}_meta");
    let r = run_json(&[
        "restore",
        "--config",
        b,
        "--from",
        a,
        "-n",
        backup,
        "-s",
        "_meta",
        "--meta-only",
        "--rebuild-index",
        "--load",
        "--json",
    ]);
    let c = &r["collections"][0];
    assert_eq!(c["collection_name"], meta.as_str(), "{r}");
    assert_eq!(c["rows"].as_u64(), Some(0), "{r}");
    assert_eq!(c["rows_imported"].as_u64(), Some(0), "{r}");
    assert_eq!(c["staged_objects"].as_u64(), Some(0), "{r}");
    assert_eq!(indexes(Path::new(b), &meta), source_index);
    let partitions: Vec<String> = on_milvus(Path::new(b), async |c| {
        c.show_partitions(&meta)
            .await
            .unwrap()
            .into_iter()
            .map(|(n, _)| n)
            .collect()
    });
    for p in ["_default", "p1", "p2"] {
        assert!(partitions.iter().any(|x| x == p), "{partitions:?}");
    }

    // --use-auto-index: the vector index as AUTOINDEX with the backed-up metric.
    let auto = format!("{coll}_auto");
    run_json(&[
        "restore",
        "--config",
        b,
        "--from",
        a,
        "-n",
        backup,
        "-s",
        "_auto",
        "--meta-only",
        "--rebuild-index",
        "--use-auto-index",
        "--json",
    ]);
    let got = indexes(Path::new(b), &auto);
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].0, "vec");
    assert_eq!(got[0].1["index_type"], "AUTOINDEX", "{got:?}");
    assert_eq!(got[0].1["metric_type"], source_index[0].1["metric_type"]);

    // --skip-create-collection: a target that does not exist is refused before anything is
    // written; with --drop-existing it is a usage error.
    let err = run_fatal(&[
        "restore",
        "--config",
        b,
        "--from",
        a,
        "-n",
        backup,
        "-s",
        "_none",
        "--skip-create-collection",
    ]);
    assert!(
        err.contains(&format!("{coll}_none")) && err.contains("does not exist"),
        "{err}"
    );
    let out = run(&[
        "restore",
        "--config",
        b,
        "-n",
        backup,
        "--skip-create-collection",
        "--drop-existing",
    ]);
    assert_eq!(out.status.code(), Some(2));

    // An existing, empty collection (no index) that gets an index with other parameters...
    let into = format!("{coll}_into");
    run_json(&[
        "restore",
        "--config",
        b,
        "--from",
        a,
        "-n",
        backup,
        "-s",
        "_into",
        "--meta-only",
        "--json",
    ]);
    assert!(indexes(Path::new(b), &into).is_empty());
    let kv = |k: &str, v: &str| KeyValuePair {
        key: k.into(),
        value: v.into(),
    };
    on_milvus(Path::new(b), async |c| {
        c.create_index(
            &into,
            "vec",
            "other_idx",
            vec![
                kv("index_type", "IVF_SQ8"),
                kv("metric_type", "IP"),
                kv("params", r#"{"nlist":64}"#),
            ],
        )
        .await
        .unwrap()
    });
    assert_eq!(indexes(Path::new(b), &into)[0].1["index_type"], "IVF_SQ8");
    // ...receives the data (--skip-create-collection), its index replaced by the backed-up one
    // (--drop-exist-index), loaded and verified by count.
    let r = run_json(&[
        "restore",
        "--config",
        b,
        "--from",
        a,
        "-n",
        backup,
        "-s",
        "_into",
        "--skip-create-collection",
        "--drop-exist-index",
        "--rebuild-index",
        "--load",
        "--json",
    ]);
    let c = &r["collections"][0];
    assert_eq!(c["collection_name"], into.as_str(), "{r}");
    assert_eq!(c["rows"].as_u64(), Some(expected), "{r}");
    assert_eq!(c["verified"], true, "{r}");
    assert_eq!(indexes(Path::new(b), &into), source_index);
}

#[test]
fn create_strategies_meta_only_skip_flush_and_bulk_flush() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = profiles(tmp.path());
    let (a, b) = (a.to_str().unwrap(), b.to_str().unwrap());
    let coll = unique("it_strat");
    let seeded = seed(Path::new(a), &coll, &["--rows", "2000", "--dim", "8"]);
    let (expected, _) = counts_of(&seeded);
    let mut made = Vec::new();
    for strategy in ["meta_only", "skip_flush", "bulk_flush"] {
        let name = format!("{coll}_{strategy}");
        let r = run_json(&[
            "create",
            "--config",
            a,
            "-n",
            &name,
            "-c",
            &coll,
            "--strategy",
            strategy,
            "--json",
        ]);
        assert_eq!(r["strategy"], strategy, "{r}");
        let c = &r["collections"][0];
        let segments = c["segments"].as_u64().unwrap();
        match strategy {
            "meta_only" => {
                assert_eq!(segments, 0, "{r}");
                assert_eq!(c["objects"].as_u64(), Some(0), "{r}");
                assert!(c["rows"].is_null(), "{r}");
            }
            // Seeded rows are flushed: without a flush the backup holds them all, but records
            // no count (unflushed rows would not be in it).
            "skip_flush" => {
                assert!(segments >= 1, "{r}");
                assert_eq!(c["segment_rows"].as_u64(), Some(expected), "{r}");
                assert!(c["rows"].is_null(), "{r}");
            }
            _ => {
                assert!(segments >= 1, "{r}");
                assert_eq!(c["rows"].as_u64(), Some(expected), "{r}");
            }
        }
        made.push(name);
    }
    // Unknown strategies are refused, naming the valid ones.
    let err = run_fatal(&[
        "create",
        "--config",
        a,
        "-n",
        "x_bad",
        "-c",
        &coll,
        "--strategy",
        "flush",
    ]);
    assert!(err.contains("serial_flush"), "{err}");

    // A meta-only backup restores as an empty collection; a bulk-flush one with every row.
    let r = run_json(&[
        "restore", "--config", b, "--from", a, "-n", &made[0], "-s", "_m", "--json",
    ]);
    assert_eq!(
        r["collections"][0]["rows_imported"].as_u64(),
        Some(0),
        "{r}"
    );
    assert_eq!(r["collections"][0]["segments"].as_u64(), Some(0), "{r}");
    let r = run_json(&[
        "restore",
        "--config",
        b,
        "--from",
        a,
        "-n",
        &made[2],
        "-s",
        "_bulk",
        "--rebuild-index",
        "--load",
        "--json",
    ]);
    assert_eq!(r["collections"][0]["rows"].as_u64(), Some(expected), "{r}");
    assert_eq!(r["collections"][0]["verified"], true, "{r}");
}

/// Connects as the profile's user and describes a collection (which the restored role may).
fn login(profile: &Path, coll: &str) -> Result<i64, String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let p = milvus_migrate::config::Profile::load(profile)
            .unwrap()
            .profile;
        let c = milvus_migrate::milvus::MilvusClient::connect(
            &p.milvus,
            milvus_migrate::milvus::ClientOptions::default(),
        )
        .await
        .map_err(|e| e.to_string())?;
        c.describe_collection(coll)
            .await
            .map(|d| d.collection_id)
            .map_err(|e| e.to_string())
    })
}

#[test]
fn rbac_roles_grants_users_and_bindings_are_backed_up_and_restored_with_passwords_from_a_file() {
    let m = Single::milvus_23_auth();
    let tmp = tempfile::tempdir().unwrap();
    let backups = tmp.path().join("backups");
    std::fs::create_dir_all(&backups).unwrap();
    let root = m.profile_as(tmp.path(), "root.yaml", &backups, ROOT);
    let r = root.to_str().unwrap();
    let coll = unique("it_rbac");
    seed(&root, &coll, &["--rows", "500", "--dim", "8"]);

    // On the source: a role with two grants and a user bound to it.
    let role = unique("reader");
    let user = unique("alice");
    let grant = |object: &str, name: &str, privilege: &str| milvus_migrate::milvus::Grant {
        role: role.clone(),
        object: object.into(),
        object_name: name.into(),
        db_name: "default".into(),
        privilege: privilege.into(),
        grantor: String::new(),
    };
    let grants = [
        grant("Collection", &coll, "Query"),
        grant("Global", "*", "DescribeCollection"),
    ];
    on_milvus(&root, async |c| {
        c.create_role(&role).await.unwrap();
        for g in &grants {
            c.grant(g).await.unwrap();
        }
        c.create_user(&user, "first-Pass-1").await.unwrap();
        c.add_user_to_role(&user, &role).await.unwrap();
    });

    let backup = format!("{coll}_b");
    let created = run_json(&[
        "create", "--config", r, "-n", &backup, "-c", &coll, "--rbac", "--json",
    ]);
    assert!(created["rbac"]["users"].as_u64().unwrap() >= 2, "{created}");
    // The backup records them as milvus-backup does (`rbac_meta`), passwords left out.
    let full_path = backups.join(&backup).join("meta/full_meta.json");
    let mut full: Value = serde_json::from_slice(&std::fs::read(&full_path).unwrap()).unwrap();
    let rbac = &full["rbac_meta"];
    let u = rbac["users"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["user"] == user.as_str())
        .unwrap_or_else(|| panic!("no user {user} in {rbac}"));
    assert_eq!(u["roles"], serde_json::json!([{ "name": role }]), "{rbac}");
    assert!(u.get("password").is_none(), "{u}");
    let recorded: Vec<(String, String, String)> = rbac["grants"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|g| g["role"]["name"] == role.as_str())
        .map(|g| {
            (
                g["object"]["name"].as_str().unwrap().to_string(),
                g["object_name"].as_str().unwrap().to_string(),
                g["grantor"]["privilege"]["name"]
                    .as_str()
                    .unwrap()
                    .to_string(),
            )
        })
        .collect();
    let mut want: Vec<(String, String, String)> = grants
        .iter()
        .map(|g| (g.object.clone(), g.object_name.clone(), g.privilege.clone()))
        .collect();
    want.sort();
    let mut got = recorded.clone();
    got.sort();
    assert_eq!(got, want, "{rbac}");

    // Restored where they do not exist: the backup's role and user under new names (as from
    // another Milvus), plus a user the password file does not name.
    let role2 = format!("{role}_2");
    let user2 = format!("{user}_2");
    let user3 = format!("{user}_3");
    let text = serde_json::to_string(&full)
        .unwrap()
        .replace(&format!("\"{role}\""), &format!("\"{role2}\""))
        .replace(&format!("\"{user}\""), &format!("\"{user2}\""));
    full = serde_json::from_str(&text).unwrap();
    full["rbac_meta"]["users"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!({"user": user3, "roles": [{"name": role2}]}));
    std::fs::write(&full_path, serde_json::to_vec(&full).unwrap()).unwrap();
    let passwords = tmp.path().join("passwords.yaml");
    std::fs::write(&passwords, format!("{user2}: second-Pass-2\n")).unwrap();
    let p = passwords.to_str().unwrap();
    let out = run(&[
        "restore",
        "--config",
        r,
        "-n",
        &backup,
        "-s",
        "_r",
        "--meta-only",
        "--rbac",
        "--rbac-passwords",
        p,
        "--json",
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(
        !stdout.contains("second-Pass-2") && !stderr.contains("second-Pass-2"),
        "a password was printed"
    );
    let report: Value = serde_json::from_str(&stdout).unwrap();
    let rb = &report["rbac"];
    assert_eq!(rb["roles_created"], serde_json::json!([role2]), "{rb}");
    assert_eq!(rb["users_created"], serde_json::json!([user2]), "{rb}");
    assert_eq!(
        rb["users_without_password"],
        serde_json::json!([user3]),
        "{rb}"
    );
    assert_eq!(rb["grants_given"].as_array().unwrap().len(), 2, "{rb}");
    assert_eq!(
        rb["bindings_added"],
        serde_json::json!([[user2, role2], [user3, role2]]),
        "{rb}"
    );

    // On the Milvus: the new role has the same grants, the users are bound to it.
    let (g2, users) = on_milvus(&root, async |c| {
        let mut g: Vec<(String, String, String)> = c
            .grants_of(&role2, "default")
            .await
            .unwrap()
            .into_iter()
            .map(|g| (g.object, g.object_name, g.privilege))
            .collect();
        g.sort();
        (g, c.users_with_roles().await.unwrap())
    });
    assert_eq!(g2, want);
    for u in [&user2, &user3] {
        let (_, roles) = users
            .iter()
            .find(|(name, _)| name == u)
            .unwrap_or_else(|| panic!("no user {u}: {users:?}"));
        assert_eq!(roles, &vec![role2.clone()], "{u}");
    }

    // The user logs in with the password from the file, and not with another.
    let good = m.profile_as(tmp.path(), "u2.yaml", &backups, (&user2, "second-Pass-2"));
    login(&good, &coll).unwrap_or_else(|e| panic!("{user2} cannot log in: {e}"));
    let bad = m.profile_as(tmp.path(), "u2bad.yaml", &backups, (&user2, "first-Pass-1"));
    let err = login(&bad, &coll).unwrap_err();
    assert!(err.contains("refused the credentials"), "{err}");
    assert!(!err.contains("first-Pass-1"), "{err}");
    // The error names the keys to fix and the file.
    assert!(
        err.contains("(check `milvus.user`, `milvus.password` of ") && err.contains("u2bad.yaml"),
        "{err}"
    );

    // A second restore finds everything there and adds nothing.
    let again = run_json(&[
        "restore",
        "--config",
        r,
        "-n",
        &backup,
        "-s",
        "_r2",
        "--meta-only",
        "--rbac",
        "--json",
    ]);
    let rb = &again["rbac"];
    for k in [
        "roles_created",
        "grants_given",
        "users_created",
        "users_without_password",
    ] {
        assert_eq!(rb[k], serde_json::json!([]), "{k}: {rb}");
    }
    assert!(rb["already_there"].as_u64().unwrap() >= 4, "{rb}");

    // --rbac on a backup without RBAC is refused, naming the backup.
    let plain = format!("{coll}_plain");
    run_json(&["create", "--config", r, "-n", &plain, "-c", &coll, "--json"]);
    let err = run_fatal(&[
        "restore",
        "--config",
        r,
        "-n",
        &plain,
        "-s",
        "_p",
        "--meta-only",
        "--rbac",
    ]);
    assert!(err.contains(&plain) && err.contains("--rbac"), "{err}");
}

#[test]
fn create_all_records_every_database_and_a_whole_restore_creates_the_empty_ones() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = profiles(tmp.path());
    let (a, b) = (a.to_str().unwrap(), b.to_str().unwrap());
    let tag = unique("all");
    let empty_db = format!("db_{tag}");
    on_milvus(Path::new(a), async |c| {
        c.create_database(&empty_db).await.unwrap()
    });
    seed(
        Path::new(a),
        &format!("it_{tag}"),
        &["--rows", "100", "--dim", "4"],
    );

    // --all excludes naming collections.
    let out = run(&["create", "--config", a, "--all", "-c", "x", "-n", "x"]);
    assert_eq!(out.status.code(), Some(2));

    // A whole instance, schemas only (cheap): every database is recorded, the empty one too.
    let backup = format!("{tag}_b");
    let created = run_json(&[
        "create",
        "--config",
        a,
        "-n",
        &backup,
        "--all",
        "--strategy",
        "meta_only",
        "--json",
    ]);
    let dbs_on_a = on_milvus(Path::new(a), async |c| c.list_databases().await.unwrap());
    let colls = created["collections"].as_array().unwrap();
    assert!(
        colls
            .iter()
            .any(|c| c["collection_name"] == format!("it_{tag}").as_str()),
        "{created}"
    );
    let stack = crate::support::milvus::Stack::get();
    let full: Value = serde_json::from_slice(
        &std::fs::read(
            stack
                .store_a
                .object_path(&format!("backup/{backup}/meta/full_meta.json")),
        )
        .unwrap(),
    )
    .unwrap();
    let mut recorded: Vec<String> = full["database_backups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["db_name"].as_str().unwrap().to_string())
        .collect();
    recorded.sort();
    let mut want = dbs_on_a.clone();
    want.sort();
    assert_eq!(recorded, want);

    // Restored whole (no -c) on B: the database without collections is created as well.
    let suffix = format!("_{tag}");
    let r = run_json(&[
        "restore", "--config", b, "--from", a, "-n", &backup, "-s", &suffix, "--json",
    ]);
    assert!(
        r["databases_created"]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d == empty_db.as_str()),
        "{r}"
    );
    assert_eq!(
        r["collections"].as_array().unwrap().len(),
        colls.len(),
        "{r}"
    );
    let dbs_on_b = on_milvus(Path::new(b), async |c| c.list_databases().await.unwrap());
    assert!(dbs_on_b.contains(&empty_db), "{dbs_on_b:?}");
}

/// `migrate --all` moves a whole instance: every collection of every database, and the
/// databases without collections are created on B as well.
#[test]
fn migrate_all_moves_every_collection_and_creates_the_empty_databases() {
    let src = Single::milvus_23_whole();
    let tmp = tempfile::tempdir().unwrap();
    let a = src.profile(tmp.path(), "whole.yaml", &tmp.path().join("backups-a"));
    let (_, b) = profiles(tmp.path());
    // Only this test uses the instance: what earlier runs left there is dropped first (empty
    // databases stay, and are migrated as well).
    on_milvus(&a, async |c| {
        for db in c.list_databases().await.unwrap() {
            let c = c.with_db(&db);
            for coll in c.show_collections().await.unwrap() {
                c.drop_collection(&coll).await.unwrap();
            }
        }
    });
    let tag = unique("whole");
    let (empty_db, other_db) = (format!("e_{tag}"), format!("d_{tag}"));
    on_milvus(&a, async |c| {
        c.create_database(&empty_db).await.unwrap();
        c.create_database(&other_db).await.unwrap();
    });
    let first = seed(&a, "c1", &["--rows", "300", "--dim", "8"]);
    let second = seed(
        &a,
        &format!("{other_db}.c2"),
        &["--rows", "200", "--dim", "8"],
    );

    let suffix = format!("_{tag}");
    let report = run_json(&[
        "migrate",
        "--from",
        a.to_str().unwrap(),
        "--to",
        b.to_str().unwrap(),
        "--all",
        "--suffix",
        &suffix,
        "--json",
    ]);
    let mut moved: Vec<(String, u64)> = report["collections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            assert_eq!(c["verified_by"], "content (sample)", "{report}");
            (
                c["target"].as_str().unwrap().to_string(),
                c["rows_b"].as_u64().unwrap(),
            )
        })
        .collect();
    moved.sort();
    let mut want = vec![
        (format!("default.c1{suffix}"), counts_of(&first).0),
        (format!("{other_db}.c2{suffix}"), counts_of(&second).0),
    ];
    want.sort();
    assert_eq!(moved, want, "{report}");
    let created = &report["restore"]["databases_created"];
    assert!(
        created
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d == empty_db.as_str()),
        "{report}"
    );
    let (on_a, on_b) = (
        on_milvus(&a, async |c| c.list_databases().await.unwrap()),
        on_milvus(&b, async |c| c.list_databases().await.unwrap()),
    );
    for db in &on_a {
        assert!(on_b.contains(db), "`{db}` of A is not on B: {on_b:?}");
    }
}

#[test]
fn migrate_rbac_brings_roles_grants_and_users_into_a_milvus_with_authentication() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, _) = profiles(tmp.path());
    let target = Single::milvus_23_auth();
    let backups = tmp.path().join("backups-b");
    std::fs::create_dir_all(&backups).unwrap();
    let b = target.profile_as(tmp.path(), "auth.yaml", &backups, ROOT);
    let tag = unique("mig");
    let coll = format!("it_{tag}");
    seed(&a, &coll, &["--rows", "300", "--dim", "8"]);
    // RBAC on A, a Milvus without authentication: the calls work, nothing is enforced.
    let (role, user) = (format!("r_{tag}"), format!("u_{tag}"));
    let g = milvus_migrate::milvus::Grant {
        role: role.clone(),
        object: "Global".into(),
        object_name: "*".into(),
        db_name: "default".into(),
        privilege: "DescribeCollection".into(),
        grantor: String::new(),
    };
    on_milvus(&a, async |c| {
        c.create_role(&role).await.unwrap();
        c.grant(&g).await.unwrap();
        c.create_user(&user, "on-A-pass-1").await.unwrap();
        c.add_user_to_role(&user, &role).await.unwrap();
    });
    let passwords = tmp.path().join("pw.json");
    std::fs::write(&passwords, format!(r#"{{"{user}": "on-B-pass-2"}}"#)).unwrap();
    let r = run_json(&[
        "migrate",
        "--from",
        a.to_str().unwrap(),
        "--to",
        b.to_str().unwrap(),
        "-c",
        &coll,
        "-s",
        "_m",
        "--rbac",
        "--rbac-passwords",
        passwords.to_str().unwrap(),
        "--verify",
        "count",
        "--json",
    ]);
    let rb = &r["restore"]["rbac"];
    assert!(
        rb["roles_created"]
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x == role.as_str()),
        "{rb}"
    );
    assert!(
        rb["users_created"]
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x == user.as_str()),
        "{rb}"
    );
    assert_eq!(r["collections"][0]["verified"], true, "{r}");
    // The user logs in on B with the password of the file and may describe the collection.
    let as_user = target.profile_as(tmp.path(), "user.yaml", &backups, (&user, "on-B-pass-2"));
    login(&as_user, &format!("{coll}_m")).unwrap_or_else(|e| panic!("{user} on B: {e}"));
}
