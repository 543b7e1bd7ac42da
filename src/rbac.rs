//! RBAC: users, roles, their grants and the users' role bindings, read from one Milvus into
//! milvus-backup's `rbac_meta` (`create --rbac`) and merged into another (`restore --rbac`).
//!
//! Owns: reading a Milvus's RBAC state through the RPCs Milvus 2.3 has (`SelectUser`,
//! `SelectRole`, `SelectGrant`; `BackupRBAC` of 2.4+ is not used), the merge plan (what the
//! target lacks: roles, grants, users, bindings; what it has is left alone), applying it
//! (`CreateRole`, `OperatePrivilege`, `CreateCredential`, `OperateUserRole`), and the password
//! file. Does not own the meta format ([`crate::backup::RbacMeta`]) or the client calls
//! (`milvus/admin.rs`).
//!
//! Passwords: Milvus does not give them back (2.3 has no call that does; `BackupRBAC` of 2.4+
//! returns hashes, which `CreateCredential` cannot take). A restored user gets the password the
//! `--rbac-passwords` file names for it; a user the file does not name is created with a random
//! password nobody is told (so its role bindings can be restored) and is listed in the report as
//! created without a known password: an administrator sets one with `UpdateCredential`.
//! Passwords never reach logs, errors, reports or `Debug` output.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::backup::{Entity, GrantEntity, GrantorEntity, RbacMeta, UserInfo};
use crate::config::Secret;
use crate::milvus::{Grant, MilvusClient, MilvusError};
use crate::retry::Retryable;

/// Errors of RBAC backup and restore.
#[derive(Debug, thiserror::Error)]
pub enum RbacError {
    /// The password file cannot be read or is not a map of user names to passwords.
    #[error("RBAC password file {path}: {message}")]
    PasswordFile { path: PathBuf, message: String },
    /// A Milvus call failed; `what` names the user, role or grant.
    #[error("RBAC {step} of {what} on Milvus: {source}")]
    Milvus {
        step: &'static str,
        what: String,
        #[source]
        source: Box<MilvusError>,
    },
}

impl RbacError {
    /// Whether the same call may succeed later.
    pub fn is_retryable(&self) -> bool {
        match self {
            RbacError::PasswordFile { .. } => false,
            RbacError::Milvus { source, .. } => source.is_retryable(),
        }
    }
}

fn milvus_err(
    step: &'static str,
    what: impl Into<String>,
) -> impl FnOnce(MilvusError) -> RbacError {
    let what = what.into();
    move |e| RbacError::Milvus {
        step,
        what,
        source: Box::new(e),
    }
}

/// The passwords of restored users, from `--rbac-passwords FILE`: a YAML or JSON map of user
/// name to password. `Debug` shows the user names only.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct RbacPasswords(BTreeMap<String, Secret>);

impl std::fmt::Debug for RbacPasswords {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.0.keys()).finish()
    }
}

impl RbacPasswords {
    /// Reads a password file.
    ///
    /// # Errors
    /// [`RbacError::PasswordFile`] naming the file and what is wrong (never a password).
    pub fn load(path: &Path) -> Result<Self, RbacError> {
        let text = std::fs::read_to_string(path).map_err(|e| RbacError::PasswordFile {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        Self::parse(&text).map_err(|message| RbacError::PasswordFile {
            path: path.to_path_buf(),
            message,
        })
    }

    /// The passwords of `--rbac-passwords FILE`, or none (every user created gets a random
    /// password) without the file.
    ///
    /// # Errors
    /// As [`RbacPasswords::load`].
    pub fn from_file(path: Option<&Path>) -> Result<Self, RbacError> {
        path.map_or_else(|| Ok(Self::default()), Self::load)
    }

    /// Parses the text of a password file (YAML, so JSON too).
    ///
    /// # Errors
    /// What is wrong, naming the key but never a value.
    pub fn parse(text: &str) -> Result<Self, String> {
        let value: serde_yaml::Value = serde_yaml::from_str(text).map_err(|e| {
            // serde_yaml's message may quote the text: keep only where it failed.
            match e.location() {
                Some(l) => format!(
                    "not valid YAML or JSON (line {}, column {})",
                    l.line(),
                    l.column()
                ),
                None => "not valid YAML or JSON".to_string(),
            }
        })?;
        let map = match value {
            serde_yaml::Value::Mapping(m) => m,
            serde_yaml::Value::Null => return Ok(Self::default()),
            _ => return Err("expected a map of user name to password".into()),
        };
        let mut out = BTreeMap::new();
        for (k, v) in map {
            let serde_yaml::Value::String(user) = k else {
                return Err("a key is not a user name (a string)".into());
            };
            let password = match v {
                serde_yaml::Value::String(s) => s,
                serde_yaml::Value::Number(n) => n.to_string(),
                _ => return Err(format!("the password of user `{user}` is not a string")),
            };
            if password.is_empty() {
                return Err(format!("the password of user `{user}` is empty"));
            }
            out.insert(user, Secret::new(password));
        }
        Ok(Self(out))
    }

    /// The password of a user, if the file names one.
    pub fn get(&self, user: &str) -> Option<&Secret> {
        self.0.get(user)
    }

    /// The user names the file gives passwords for.
    pub fn users(&self) -> impl Iterator<Item = &str> {
        self.0.keys().map(String::as_str)
    }
}

/// How many users, roles and grants a backup records.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq, Eq)]
pub struct RbacCounts {
    /// Users.
    pub users: usize,
    /// Roles.
    pub roles: usize,
    /// Grants.
    pub grants: usize,
}

impl RbacCounts {
    /// The counts of a backup's `rbac_meta`.
    pub fn of(m: &RbacMeta) -> Self {
        Self {
            users: m.users.len(),
            roles: m.roles.len(),
            grants: m.grants.len(),
        }
    }
}

/// Reads a Milvus's users (with their roles), roles and the roles' grants into milvus-backup's
/// `rbac_meta` shape. Passwords are not readable and stay empty.
///
/// # Errors
/// [`RbacError::Milvus`] naming the call.
pub async fn read(client: &MilvusClient) -> Result<RbacMeta, RbacError> {
    let users = client
        .users_with_roles()
        .await
        .map_err(milvus_err("SelectUser", "the users"))?;
    let roles = client
        .roles()
        .await
        .map_err(milvus_err("SelectRole", "the roles"))?;
    let mut all = BTreeSet::new();
    for role in &roles {
        all.extend(grants_of(client, role).await?);
    }
    let grants = all.iter().map(grant_to_meta).collect();
    let entity = |name: &str| Entity {
        name: name.to_string(),
    };
    Ok(RbacMeta {
        users: users
            .iter()
            .map(|(user, roles)| UserInfo {
                user: user.clone(),
                password: String::new(),
                roles: roles.iter().map(|r| entity(r)).collect(),
            })
            .collect(),
        roles: roles.iter().map(|r| entity(r)).collect(),
        grants,
        ..Default::default()
    })
}

fn grant_to_meta(g: &Grant) -> GrantEntity {
    let entity = |name: &str| {
        Some(Entity {
            name: name.to_string(),
        })
    };
    GrantEntity {
        role: entity(&g.role),
        object: entity(&g.object),
        object_name: g.object_name.clone(),
        grantor: Some(GrantorEntity {
            user: (!g.grantor.is_empty()).then(|| Entity {
                name: g.grantor.clone(),
            }),
            privilege: entity(&g.privilege),
        }),
        db_name: g.db_name.clone(),
    }
}

fn grant_from_meta(g: &GrantEntity) -> Grant {
    let name = |e: &Option<Entity>| e.as_ref().map(|e| e.name.clone()).unwrap_or_default();
    let grantor = g.grantor.clone().unwrap_or_default();
    Grant {
        role: name(&g.role),
        object: name(&g.object),
        object_name: g.object_name.clone(),
        db_name: g.db_name.clone(),
        privilege: name(&grantor.privilege),
        grantor: name(&grantor.user),
    }
}

/// The target's RBAC state the merge compares with.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Existing {
    /// User names.
    pub users: BTreeSet<String>,
    /// Role names.
    pub roles: BTreeSet<String>,
    /// (user, role) bindings.
    pub bindings: BTreeSet<(String, String)>,
    /// Grants of the roles (grantor ignored).
    pub grants: BTreeSet<GrantKey>,
}

/// What identifies a grant: role, object type, object name, database, privilege.
pub type GrantKey = (String, String, String, String, String);

fn key_of(g: &Grant, default_db: &str) -> GrantKey {
    let db = if g.db_name.is_empty() {
        default_db.to_string()
    } else {
        g.db_name.clone()
    };
    (
        g.role.clone(),
        g.object.clone(),
        g.object_name.clone(),
        db,
        g.privilege.clone(),
    )
}

/// What a restore adds to the target: everything the backup has that the target lacks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RbacPlan {
    /// Roles to create.
    pub roles: Vec<String>,
    /// Grants to give.
    pub grants: Vec<Grant>,
    /// Users to create, and whether the password file names a password for each.
    pub users: Vec<(String, bool)>,
    /// (user, role) bindings to add.
    pub bindings: Vec<(String, String)>,
    /// Privilege groups in the backup (Milvus 2.5+): not restored through 2.3's calls.
    pub privilege_groups: Vec<String>,
}

/// The merge: roles, grants, users and bindings of the backup that the target lacks. A grant
/// without a database is the `default` database's (as Milvus reads it).
pub fn plan(backup: &RbacMeta, existing: &Existing, passwords: &RbacPasswords) -> RbacPlan {
    let mut out = RbacPlan::default();
    let mut roles: BTreeSet<String> = backup
        .roles
        .iter()
        .map(|r| r.name.clone())
        .chain(
            backup
                .users
                .iter()
                .flat_map(|u| u.roles.iter().map(|r| r.name.clone())),
        )
        .chain(backup.grants.iter().map(|g| grant_from_meta(g).role))
        .filter(|r| !r.is_empty())
        .collect();
    roles.retain(|r| !existing.roles.contains(r));
    out.roles = roles.into_iter().collect();
    let mut seen = BTreeSet::new();
    for g in backup.grants.iter().map(grant_from_meta) {
        let key = key_of(&g, "default");
        if g.role.is_empty() || existing.grants.contains(&key) || !seen.insert(key) {
            continue;
        }
        out.grants.push(g);
    }
    for u in &backup.users {
        if u.user.is_empty() {
            continue;
        }
        if !existing.users.contains(&u.user) {
            out.users
                .push((u.user.clone(), passwords.get(&u.user).is_some()));
        }
        for r in &u.roles {
            let binding = (u.user.clone(), r.name.clone());
            if !r.name.is_empty() && !existing.bindings.contains(&binding) {
                out.bindings.push(binding);
            }
        }
    }
    out.privilege_groups = backup
        .privilege_groups
        .iter()
        .map(|g| g.group_name.clone())
        .collect();
    out
}

/// What a restore did to the target's RBAC.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct RbacReport {
    /// Roles created.
    pub roles_created: Vec<String>,
    /// Grants given, as `role: privilege on object `name` in db`.
    pub grants_given: Vec<String>,
    /// Users created with the password the password file gives.
    pub users_created: Vec<String>,
    /// Users created without a known password (the file names none): a random one was set,
    /// which nobody is told; set theirs with `UpdateCredential` as an administrator.
    pub users_without_password: Vec<String>,
    /// (user, role) bindings added.
    pub bindings_added: Vec<(String, String)>,
    /// Roles, users and grants that were there already and were left as they are.
    pub already_there: usize,
    /// Privilege groups in the backup, not restored (Milvus 2.5+ only).
    pub privilege_groups_skipped: Vec<String>,
}

/// Reads the target's RBAC state for the merge.
async fn existing(client: &MilvusClient, backup: &RbacMeta) -> Result<Existing, RbacError> {
    let users = client
        .users_with_roles()
        .await
        .map_err(milvus_err("SelectUser", "the users"))?;
    let listed = client
        .list_users()
        .await
        .map_err(milvus_err("ListCredUsers", "the users"))?;
    let roles: BTreeSet<String> = client
        .roles()
        .await
        .map_err(milvus_err("SelectRole", "the roles"))?
        .into_iter()
        .collect();
    let mut grants = BTreeSet::new();
    let wanted: BTreeSet<String> = backup
        .grants
        .iter()
        .map(|g| grant_from_meta(g).role)
        .collect();
    for role in roles.iter().filter(|r| wanted.contains(*r)) {
        for g in grants_of(client, role).await? {
            grants.insert(key_of(&g, "default"));
        }
    }
    Ok(Existing {
        users: users.iter().map(|(u, _)| u.clone()).chain(listed).collect(),
        bindings: users
            .iter()
            .flat_map(|(u, rs)| rs.iter().map(move |r| (u.clone(), r.clone())))
            .collect(),
        roles,
        grants,
    })
}

/// The grants of a role in every database, each once (`SelectGrant` filters by database: it
/// is asked once per database).
async fn grants_of(client: &MilvusClient, role: &str) -> Result<BTreeSet<Grant>, RbacError> {
    let dbs = client
        .list_databases()
        .await
        .map_err(milvus_err("ListDatabases", "the databases"))?;
    let mut out = BTreeSet::new();
    for db in &dbs {
        out.extend(client.grants_of(role, db).await.map_err(milvus_err(
            "SelectGrant",
            format!("role `{role}` in `{db}`"),
        ))?);
    }
    Ok(out)
}

/// A random password for a user the password file names none for: 24 letters and digits.
fn random_password() -> String {
    use rand::Rng;
    const CHARS: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789";
    let mut rng = rand::rng();
    (0..24)
        .map(|_| CHARS[rng.random_range(0..CHARS.len())] as char)
        .collect()
}

/// Merges a backup's RBAC into a Milvus: creates the roles it lacks, gives the grants it lacks,
/// creates the users it lacks (passwords from `passwords`, else random and reported) and binds
/// their roles. What the target has is left as it is.
///
/// # Errors
/// [`RbacError::Milvus`] naming the call and the role, user or grant.
pub async fn restore(
    client: &MilvusClient,
    backup: &RbacMeta,
    passwords: &RbacPasswords,
) -> Result<RbacReport, RbacError> {
    let have = existing(client, backup).await?;
    let p = plan(backup, &have, passwords);
    let wanted = backup.roles.len() + backup.users.len() + backup.grants.len();
    let mut report = RbacReport {
        privilege_groups_skipped: p.privilege_groups.clone(),
        ..Default::default()
    };
    for role in &p.roles {
        client
            .create_role(role)
            .await
            .map_err(milvus_err("CreateRole", format!("role `{role}`")))?;
        report.roles_created.push(role.clone());
    }
    for g in &p.grants {
        let what = format!(
            "{}: {} on {} `{}` in `{}`",
            g.role,
            g.privilege,
            g.object,
            g.object_name,
            if g.db_name.is_empty() {
                "default"
            } else {
                &g.db_name
            }
        );
        client
            .grant(g)
            .await
            .map_err(milvus_err("OperatePrivilege", format!("grant {what}")))?;
        report.grants_given.push(what);
    }
    for (user, known) in &p.users {
        let generated;
        let password = match passwords.get(user) {
            Some(s) => s.expose(),
            None => {
                generated = random_password();
                &generated
            }
        };
        client
            .create_user(user, password)
            .await
            .map_err(milvus_err("CreateCredential", format!("user `{user}`")))?;
        if *known {
            report.users_created.push(user.clone());
        } else {
            report.users_without_password.push(user.clone());
        }
    }
    for (user, role) in &p.bindings {
        client
            .add_user_to_role(user, role)
            .await
            .map_err(milvus_err(
                "OperateUserRole",
                format!("binding of user `{user}` to role `{role}`"),
            ))?;
        report.bindings_added.push((user.clone(), role.clone()));
    }
    report.already_there = wanted.saturating_sub(
        report.roles_created.len()
            + report.users_created.len()
            + report.users_without_password.len()
            + report.grants_given.len(),
    );
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `rbac_meta` as milvus-backup writes it (Go `encoding/json` over the milvuspb structs).
    const MILVUS_BACKUP_RBAC: &str = r#"{
      "users": [
        {"user": "root", "password": "$2a$10$hash", "roles": [{"name": "admin"}]},
        {"user": "alice", "password": "$2a$10$other", "roles": [{"name": "reader"}]},
        {"user": "bob"}
      ],
      "roles": [{"name": "admin"}, {"name": "public"}, {"name": "reader"}],
      "grants": [
        {"role": {"name": "reader"}, "object": {"name": "Collection"}, "object_name": "coll",
         "grantor": {"user": {"name": "root"}, "privilege": {"name": "Search"}},
         "db_name": "default"},
        {"role": {"name": "reader"}, "object": {"name": "Global"}, "object_name": "*",
         "grantor": {"user": {"name": "root"}, "privilege": {"name": "DescribeCollection"}}},
        {"role": {"name": "public"}, "object": {"name": "Collection"}, "object_name": "*",
         "grantor": {"privilege": {"name": "IndexDetail"}}, "db_name": "default"}
      ],
      "privilege_groups": [{"group_name": "g1", "privileges": [{"name": "Query"}]}]
    }"#;

    fn meta() -> RbacMeta {
        serde_json::from_str(MILVUS_BACKUP_RBAC).unwrap()
    }

    #[test]
    fn milvus_backup_rbac_meta_round_trips_through_our_types() {
        let m = meta();
        assert_eq!(m.users.len(), 3);
        let back: serde_json::Value = serde_json::to_value(&m).unwrap();
        let orig: serde_json::Value = serde_json::from_str(MILVUS_BACKUP_RBAC).unwrap();
        assert_eq!(back, orig);
        // Our reading of a Milvus writes the same shape: one grant each way.
        let g = grant_from_meta(&m.grants[0]);
        assert_eq!(g.privilege, "Search");
        assert_eq!(g.grantor, "root");
        assert_eq!(grant_to_meta(&g), m.grants[0]);
        // Passwords stay out of Debug.
        assert!(!format!("{m:?}").contains("$2a$10$"));
    }

    #[test]
    fn the_merge_adds_only_what_the_target_lacks() {
        let m = meta();
        let existing = Existing {
            users: ["root".to_string()].into(),
            roles: ["admin".to_string(), "public".to_string()].into(),
            bindings: [("root".to_string(), "admin".to_string())].into(),
            grants: [(
                "public".to_string(),
                "Collection".to_string(),
                "*".to_string(),
                "default".to_string(),
                "IndexDetail".to_string(),
            )]
            .into(),
        };
        let passwords = RbacPasswords::parse("alice: s3cret\n").unwrap();
        let p = plan(&m, &existing, &passwords);
        assert_eq!(p.roles, vec!["reader".to_string()]);
        let grants: Vec<(&str, &str, &str)> = p
            .grants
            .iter()
            .map(|g| {
                (
                    g.role.as_str(),
                    g.privilege.as_str(),
                    g.object_name.as_str(),
                )
            })
            .collect();
        assert_eq!(
            grants,
            vec![
                ("reader", "Search", "coll"),
                ("reader", "DescribeCollection", "*")
            ]
        );
        assert_eq!(
            p.users,
            vec![("alice".to_string(), true), ("bob".to_string(), false)]
        );
        assert_eq!(
            p.bindings,
            vec![("alice".to_string(), "reader".to_string())]
        );
        assert_eq!(p.privilege_groups, vec!["g1".to_string()]);

        // Against a target that has it all, nothing is added.
        let full = Existing {
            users: ["root", "alice", "bob"].map(String::from).into(),
            roles: ["admin", "public", "reader"].map(String::from).into(),
            bindings: [("root", "admin"), ("alice", "reader")]
                .map(|(u, r)| (u.to_string(), r.to_string()))
                .into(),
            grants: m
                .grants
                .iter()
                .map(|g| key_of(&grant_from_meta(g), "default"))
                .collect(),
        };
        let p = plan(&m, &full, &passwords);
        assert!(p.roles.is_empty() && p.grants.is_empty());
        assert!(p.users.is_empty() && p.bindings.is_empty());
    }

    #[test]
    fn password_files_are_yaml_or_json_maps_and_never_show_a_password() {
        let y = RbacPasswords::parse("alice: s3cret\nbob: 12345\n").unwrap();
        assert_eq!(y.get("alice").unwrap().expose(), "s3cret");
        assert_eq!(y.get("bob").unwrap().expose(), "12345");
        assert!(y.get("carol").is_none());
        let j = RbacPasswords::parse(r#"{"alice": "s3cret", "bob": "12345"}"#).unwrap();
        assert_eq!(j, y);
        let shown = format!("{y:?}");
        assert!(
            shown.contains("alice") && !shown.contains("s3cret"),
            "{shown}"
        );
        assert_eq!(RbacPasswords::parse("").unwrap(), RbacPasswords::default());

        for (text, want) in [
            ("- alice\n- bob\n", "expected a map"),
            ("alice: [1, 2]\n", "`alice` is not a string"),
            ("alice: ''\n", "`alice` is empty"),
            ("alice: s3cret\n  bad: : indent\n", "line"),
        ] {
            let err = RbacPasswords::parse(text).unwrap_err();
            assert!(err.contains(want), "{text:?}: {err}");
            assert!(!err.contains("s3cret"), "{err}");
        }
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope.yaml");
        let err = RbacPasswords::load(&missing).unwrap_err().to_string();
        assert!(err.contains("nope.yaml"), "{err}");
    }

    #[test]
    fn random_passwords_are_long_and_differ() {
        let a = random_password();
        assert_eq!(a.len(), 24);
        assert_ne!(a, random_password());
    }
}
