//! Calls beyond the data path: dropping indexes, flushing every collection of a database at
//! once (`FlushAll`), and the RBAC calls (users, roles, grants) Milvus 2.3 has.
//!
//! Owns these requests and the shape of their answers; retries and errors come from the
//! client's `call`. Does not own what restore or create do with them.

use base64::Engine as _;

use super::MilvusError;
use super::client::{MilvusClient, Reply};
use super::proto::{common, milvus as pb};

reply!(
    pb::FlushAllResponse,
    pb::GetFlushAllStateResponse,
    pb::ListCredUsersResponse,
    pb::SelectRoleResponse,
    pb::SelectUserResponse,
    pb::SelectGrantResponse,
);

/// One grant as Milvus takes and reports it: role, object type, object name, database and
/// privilege (the grantor is whoever makes the call).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Grant {
    /// Role.
    pub role: String,
    /// Object type: `Global`, `Collection`, `User` (and `Database` on newer servers).
    pub object: String,
    /// Object name, `*` for all.
    pub object_name: String,
    /// Database (empty: the server's default).
    pub db_name: String,
    /// Privilege, e.g. `Search`.
    pub privilege: String,
    /// Who granted it (reported; ignored when granting).
    pub grantor: String,
}

impl MilvusClient {
    /// Drops one index of a collection (the collection must be released).
    ///
    /// # Errors
    /// [`MilvusError`].
    pub async fn drop_index(
        &self,
        collection: &str,
        field: &str,
        index_name: &str,
    ) -> Result<(), MilvusError> {
        unary!(
            self,
            "DropIndex",
            drop_index,
            pb::DropIndexRequest {
                db_name: self.db().to_string(),
                collection_name: collection.to_string(),
                field_name: field.to_string(),
                index_name: index_name.to_string(),
                ..Default::default()
            }
        )
        .await
        .map(drop)
    }

    /// Flushes every collection of this client's database (`FlushAll` with `db_name`);
    /// returns the flush timestamp to wait for with [`MilvusClient::flush_all_state`].
    ///
    /// # Errors
    /// [`MilvusError`].
    pub async fn flush_all(&self) -> Result<u64, MilvusError> {
        unary!(
            self,
            "FlushAll",
            flush_all,
            pb::FlushAllRequest {
                db_name: self.db().to_string(),
                ..Default::default()
            }
        )
        .await
        .map(|r| r.flush_all_ts)
    }

    /// Whether everything a [`MilvusClient::flush_all`] flushed is flushed.
    ///
    /// # Errors
    /// [`MilvusError`].
    pub async fn flush_all_state(&self, flush_all_ts: u64) -> Result<bool, MilvusError> {
        unary!(
            self,
            "GetFlushAllState",
            get_flush_all_state,
            pb::GetFlushAllStateRequest {
                flush_all_ts,
                db_name: self.db().to_string(),
                ..Default::default()
            }
        )
        .await
        .map(|r| r.flushed)
    }

    /// The user names (`ListCredUsers`).
    ///
    /// # Errors
    /// [`MilvusError`].
    pub async fn list_users(&self) -> Result<Vec<String>, MilvusError> {
        unary!(
            self,
            "ListCredUsers",
            list_cred_users,
            pb::ListCredUsersRequest::default()
        )
        .await
        .map(|r| r.usernames)
    }

    /// Every user with the roles bound to it (`SelectUser` with role info).
    ///
    /// # Errors
    /// [`MilvusError`].
    pub async fn users_with_roles(&self) -> Result<Vec<(String, Vec<String>)>, MilvusError> {
        let r = unary!(
            self,
            "SelectUser",
            select_user,
            pb::SelectUserRequest {
                include_role_info: true,
                ..Default::default()
            }
        )
        .await?;
        Ok(r.results
            .into_iter()
            .map(|u| {
                (
                    u.user.map(|e| e.name).unwrap_or_default(),
                    u.roles.into_iter().map(|e| e.name).collect(),
                )
            })
            .collect())
    }

    /// Every role's name (`SelectRole`).
    ///
    /// # Errors
    /// [`MilvusError`].
    pub async fn roles(&self) -> Result<Vec<String>, MilvusError> {
        let r = unary!(
            self,
            "SelectRole",
            select_role,
            pb::SelectRoleRequest::default()
        )
        .await?;
        Ok(r.results
            .into_iter()
            .filter_map(|r| r.role.map(|e| e.name))
            .collect())
    }

    /// The grants of a role in one database (`SelectGrant` with the role and `db_name`;
    /// grants on every database, `*`, are listed in each).
    ///
    /// # Errors
    /// [`MilvusError`].
    pub async fn grants_of(&self, role: &str, db: &str) -> Result<Vec<Grant>, MilvusError> {
        let r = unary!(
            self,
            "SelectGrant",
            select_grant,
            pb::SelectGrantRequest {
                entity: Some(pb::GrantEntity {
                    role: Some(pb::RoleEntity {
                        name: role.to_string(),
                    }),
                    db_name: db.to_string(),
                    ..Default::default()
                }),
                ..Default::default()
            }
        )
        .await?;
        Ok(r.entities
            .into_iter()
            .map(|g| {
                let grantor = g.grantor.unwrap_or_default();
                Grant {
                    role: g.role.map(|e| e.name).unwrap_or_default(),
                    object: g.object.map(|e| e.name).unwrap_or_default(),
                    object_name: g.object_name,
                    db_name: g.db_name,
                    privilege: grantor.privilege.map(|e| e.name).unwrap_or_default(),
                    grantor: grantor.user.map(|e| e.name).unwrap_or_default(),
                }
            })
            .collect())
    }

    /// Creates a role.
    ///
    /// # Errors
    /// [`MilvusError`].
    pub async fn create_role(&self, role: &str) -> Result<(), MilvusError> {
        unary!(
            self,
            "CreateRole",
            create_role,
            pb::CreateRoleRequest {
                entity: Some(pb::RoleEntity {
                    name: role.to_string(),
                }),
                ..Default::default()
            }
        )
        .await
        .map(drop)
    }

    /// Grants a privilege to a role (`OperatePrivilege`, type `Grant`).
    ///
    /// # Errors
    /// [`MilvusError`].
    pub async fn grant(&self, g: &Grant) -> Result<(), MilvusError> {
        let entity = pb::GrantEntity {
            role: Some(pb::RoleEntity {
                name: g.role.clone(),
            }),
            object: Some(pb::ObjectEntity {
                name: g.object.clone(),
            }),
            object_name: g.object_name.clone(),
            grantor: Some(pb::GrantorEntity {
                user: None,
                privilege: Some(pb::PrivilegeEntity {
                    name: g.privilege.clone(),
                }),
            }),
            db_name: g.db_name.clone(),
        };
        unary!(
            self,
            "OperatePrivilege",
            operate_privilege,
            pb::OperatePrivilegeRequest {
                entity: Some(entity),
                r#type: pb::OperatePrivilegeType::Grant as i32,
                ..Default::default()
            }
        )
        .await
        .map(drop)
    }

    /// Creates a user with a password (sent base64-encoded, as Milvus expects; never logged).
    ///
    /// # Errors
    /// [`MilvusError`].
    pub async fn create_user(&self, user: &str, password: &str) -> Result<(), MilvusError> {
        let encoded = base64::engine::general_purpose::STANDARD.encode(password);
        unary!(
            self,
            "CreateCredential",
            create_credential,
            pb::CreateCredentialRequest {
                username: user.to_string(),
                password: encoded,
                ..Default::default()
            }
        )
        .await
        .map(drop)
    }

    /// Binds a role to a user (`OperateUserRole`, type `AddUserToRole`).
    ///
    /// # Errors
    /// [`MilvusError`].
    pub async fn add_user_to_role(&self, user: &str, role: &str) -> Result<(), MilvusError> {
        unary!(
            self,
            "OperateUserRole",
            operate_user_role,
            pb::OperateUserRoleRequest {
                username: user.to_string(),
                role_name: role.to_string(),
                r#type: pb::OperateUserRoleType::AddUserToRole as i32,
                ..Default::default()
            }
        )
        .await
        .map(drop)
    }
}
