//! The gRPC service: turns requests into job specs (checking everything a user can get wrong
//! before a job exists), and answers get, list, cancel and watch from the job table.
//!
//! Owns request validation and the mapping of errors to gRPC codes: a request that cannot be
//! right gets INVALID_ARGUMENT with what to fix, an unknown job NOT_FOUND, a Milvus or store
//! that cannot be reached UNAVAILABLE. Nothing said back contains a secret.

use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures::Stream;
use serde_json::{Value, json};
use tonic::{Request, Response, Status};

use super::DaemonError;
use super::api;
use super::api::migration_daemon_server::MigrationDaemon;
use super::jobs::{self, Manager, state_from_proto, to_proto};
use super::state::{CopySpec, JobRbac, JobSpec, MigrateSpec, ProfileSource};
use crate::config::{self, Profile, TransferOptions};
use crate::create::{self, Selector};
use crate::error::Error;
use crate::milvus::query::MAX_QUERY_LIMIT;
use crate::milvus::{ClientOptions, MilvusClient};
use crate::retry::Retryable;
use crate::storage::layout;
use crate::transfer::{self, RunContext};
use crate::verify::VerifyOptions;

/// How long a submission may wait for Milvus A to answer.
const PREFLIGHT_TIMEOUT: Duration = Duration::from_secs(30);

/// The service over a job table.
pub struct Service {
    manager: Arc<Manager>,
}

impl Service {
    /// A service for `manager`'s jobs.
    pub fn new(manager: Arc<Manager>) -> Self {
        Self { manager }
    }
}

impl From<DaemonError> for Status {
    fn from(e: DaemonError) -> Status {
        match e {
            DaemonError::BadRequest(m) => Status::invalid_argument(m),
            DaemonError::NotFound(id) => Status::not_found(format!(
                "no job `{id}` (list the jobs with `milvus-migrate jobs list`)"
            )),
            DaemonError::Unavailable(m) => Status::unavailable(m),
            other => Status::internal(other.to_string()),
        }
    }
}

/// An invalid-argument error from a library error.
fn bad(e: impl std::fmt::Display) -> DaemonError {
    DaemonError::BadRequest(e.to_string())
}

fn profile_source(p: Option<api::Profile>, role: &str) -> Result<ProfileSource, DaemonError> {
    use api::profile::Source;
    match p.and_then(|p| p.source) {
        Some(Source::Path(path)) if !path.trim().is_empty() => {
            let path = PathBuf::from(path);
            if !path.is_absolute() {
                return Err(DaemonError::BadRequest(format!(
                    "`{role}` profile path `{}` is relative; give an absolute path on the \
                     daemon's machine, or send the file inline",
                    path.display()
                )));
            }
            Ok(ProfileSource::Path(path))
        }
        Some(Source::Yaml(text)) => Ok(ProfileSource::Inline(text)),
        _ => Err(DaemonError::BadRequest(format!(
            "missing `{role}` profile: give its path or its YAML"
        ))),
    }
}

/// Loads a submitted profile: INVALID_ARGUMENT naming the file (or inline profile), key and
/// reason.
fn load(source: &ProfileSource, role: &str) -> Result<Profile, DaemonError> {
    jobs::load_profile(source, role).map_err(|e| match source {
        ProfileSource::Path(p) if !Path::new(p).exists() => DaemonError::BadRequest(format!(
            "`{role}` profile {} does not exist on the daemon's machine",
            p.display()
        )),
        _ => bad(e),
    })
}

fn transfer_spec(t: Option<api::TransferSettings>) -> Result<TransferOptions, DaemonError> {
    let t = t.unwrap_or_default();
    let size = |key: &str, v: &Option<String>| -> Result<Option<u64>, DaemonError> {
        v.as_deref()
            .map(|s| config::parse_size(s).map_err(|e| bad(format!("transfer.{key}: {e}"))))
            .transpose()
    };
    let bw_limit = match t.bw_limit.as_deref() {
        None => None,
        Some(s) => Some(
            config::parse_rate(s)
                .map_err(|e| bad(format!("transfer.bw_limit: {e}")))?
                .unwrap_or(0),
        ),
    };
    Ok(TransferOptions {
        concurrency: t.concurrency.map(|v| v as usize),
        parts_per_object: t.parts_per_object.map(|v| v as usize),
        part_size: size("part_size", &t.part_size)?,
        multipart_threshold: size("multipart_threshold", &t.multipart_threshold)?,
        max_buffer_memory: size("max_buffer_memory", &t.max_buffer_memory)?,
        bw_limit,
        request_rate: t.request_rate,
        retries: t.retries,
        ..TransferOptions::default()
    })
}

/// A migration's verification settings; unset = `migrate`'s defaults.
fn verify_spec(
    mode: &str,
    sample: Option<u64>,
    page: Option<u64>,
) -> Result<VerifyOptions, DaemonError> {
    let d = VerifyOptions::default();
    let mode = if mode.is_empty() {
        d.mode
    } else {
        mode.parse().map_err(|e| bad(format!("verify: {e}")))?
    };
    if let Some(page) = page.filter(|p| !(1..=MAX_QUERY_LIMIT).contains(p)) {
        return Err(bad(format!(
            "verify_page: {page} is not in 1..{MAX_QUERY_LIMIT}"
        )));
    }
    Ok(VerifyOptions {
        mode,
        sample: sample.unwrap_or(d.sample),
        page,
        ..d
    })
}

/// A profile as shown: where it came from, its Milvus and its backup store; no secret.
fn describe(source: &ProfileSource, p: &Profile) -> Value {
    json!({
        "profile": match source {
            ProfileSource::Path(path) => path.display().to_string(),
            ProfileSource::Inline(_) => "inline".to_string(),
        },
        "milvus": format!("{}:{}", p.milvus.address, p.milvus.port),
        "storage": format!("{} {}", p.milvus_storage.storage_type.as_str(), p.milvus_storage.bucket),
        "backup": format!(
            "{} {}/{}",
            p.backup_storage.storage_type.as_str(),
            p.backup_storage.bucket,
            p.backup_storage.root_path
        ),
    })
}

fn new_id() -> String {
    format!("{:012x}", rand::random::<u64>() & 0xffff_ffff_ffff)
}

/// Milvus A must answer and hold what is asked for.
async fn check_sources(profile: &Profile, selectors: &[Selector]) -> Result<(), DaemonError> {
    let check = async {
        let a = MilvusClient::connect(&profile.milvus, ClientOptions::default()).await?;
        create::resolve(&a, selectors).await.map(|_| ())
    };
    match tokio::time::timeout(PREFLIGHT_TIMEOUT, check).await {
        Err(_) => Err(DaemonError::Unavailable(format!(
            "Milvus A at {}:{} did not answer within {}s",
            profile.milvus.address,
            profile.milvus.port,
            PREFLIGHT_TIMEOUT.as_secs()
        ))),
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(if is_unreachable(&e) {
            DaemonError::Unavailable(format!("Milvus A: {e}"))
        } else {
            DaemonError::BadRequest(e.to_string())
        }),
    }
}

fn is_unreachable(e: &Error) -> bool {
    match e {
        Error::Milvus(m) => m.is_retryable(),
        Error::Create(create::CreateError::Milvus { source, .. }) => source.is_retryable(),
        _ => e.is_retryable(),
    }
}

fn state_filter(states: &[i32]) -> Result<Vec<super::state::JobState>, DaemonError> {
    states
        .iter()
        .map(|s| {
            api::JobState::try_from(*s)
                .ok()
                .and_then(state_from_proto)
                .ok_or_else(|| bad(format!("unknown job state {s}")))
        })
        .collect()
}

type EventStream = Pin<Box<dyn Stream<Item = Result<api::JobEvent, Status>> + Send>>;

#[tonic::async_trait]
impl MigrationDaemon for Service {
    async fn submit_migration(
        &self,
        request: Request<api::SubmitMigrationRequest>,
    ) -> Result<Response<api::Job>, Status> {
        let r = request.into_inner();
        let from = profile_source(r.from, "from")?;
        let to = profile_source(r.to, "to")?;
        let (pa, pb) = (load(&from, "from")?, load(&to, "to")?);
        if r.all && !(r.collections.is_empty() && r.databases.is_empty()) {
            return Err(bad(
                "`all` takes every collection: give no collections or databases with it",
            )
            .into());
        }
        if !r.all && r.collections.is_empty() && r.databases.is_empty() {
            return Err(bad("nothing to migrate: give collections or databases, or all").into());
        }
        if !r.rbac && !r.rbac_passwords.is_empty() {
            return Err(bad("rbac_passwords is given without rbac").into());
        }
        if !r.suffix.is_empty() && !r.rename.is_empty() {
            return Err(bad("give a suffix or rename maps, not both").into());
        }
        let id = new_id();
        let name = if r.name.is_empty() {
            format!("migrate_{id}")
        } else {
            r.name.clone()
        };
        layout::validate_backup_name(&name).map_err(bad)?;
        let spec = MigrateSpec {
            from,
            to,
            collections: r.collections,
            databases: r.databases,
            name,
            suffix: (!r.suffix.is_empty()).then_some(r.suffix),
            rename: r.rename,
            rebuild_index: r.rebuild_index.unwrap_or(true),
            load: r.load.unwrap_or(true),
            drop_existing: r.drop_existing,
            keep_backup: r.keep_backup,
            direct: r.direct,
            keep_partial: r.keep_partial,
            transfer: transfer_spec(r.transfer)?,
            all: r.all,
            sequential: r.sequential,
            verify: verify_spec(&r.verify, r.verify_sample, r.verify_page)?,
            rbac: r.rbac.then(|| JobRbac {
                passwords: (!r.rbac_passwords.is_empty()).then(|| PathBuf::from(&r.rbac_passwords)),
            }),
        };
        if let Some(JobRbac {
            passwords: Some(path),
        }) = &spec.rbac
        {
            // Read now so that a wrong path or file is refused at submission; read again when
            // the job starts (the passwords are not stored with the job).
            crate::rbac::RbacPasswords::load(path).map_err(bad)?;
        }
        // Everything the flow will parse, parsed now.
        pa.transfer(&spec.transfer).map_err(bad)?;
        pb.transfer(&spec.transfer).map_err(bad)?;
        let public_from = describe(&spec.from, &pa);
        let public_to = describe(&spec.to, &pb);
        let req =
            jobs::migrate_request_with(&spec, pa, pb, None, RunContext::default()).map_err(bad)?;
        check_sources(&req.from, &req.selectors).await?;
        let public = json!({
            "from": public_from,
            "to": public_to,
            "collections": spec.collections,
            "databases": spec.databases,
            "name": spec.name,
            "suffix": spec.suffix,
            "rename": spec.rename,
            "rebuild_index": spec.rebuild_index,
            "load": spec.load,
            "drop_existing": spec.drop_existing,
            "keep_backup": spec.keep_backup,
            "direct": spec.direct,
            "keep_partial": spec.keep_partial,
            "all": spec.all,
            "sequential": spec.sequential,
            "verify": spec.verify,
            "rbac": spec.rbac,
            "transfer": serde_json::to_value(&spec.transfer).unwrap_or(Value::Null),
        });
        let record = self.manager.submit(id, JobSpec::Migrate(spec), public)?;
        Ok(Response::new(to_proto(&record)))
    }

    async fn submit_copy(
        &self,
        request: Request<api::SubmitCopyRequest>,
    ) -> Result<Response<api::Job>, Status> {
        let r = request.into_inner();
        let from = profile_source(r.from, "from")?;
        let to = profile_source(r.to, "to")?;
        let (pa, pb) = (load(&from, "from")?, load(&to, "to")?);
        if r.name.is_empty() {
            return Err(bad("give the name of the backup to copy").into());
        }
        let spec = CopySpec {
            from,
            to,
            name: r.name,
            overwrite: r.overwrite,
            transfer: transfer_spec(r.transfer)?,
        };
        pa.transfer(&spec.transfer).map_err(bad)?;
        match transfer::find_backup(&pa, &spec.name).await {
            Ok(()) => {}
            Err(e) if e.is_retryable() => {
                return Err(DaemonError::Unavailable(e.to_string()).into());
            }
            Err(e) => return Err(bad(e).into()),
        }
        let public = json!({
            "from": describe(&spec.from, &pa),
            "to": describe(&spec.to, &pb),
            "name": spec.name,
            "overwrite": spec.overwrite,
            "transfer": serde_json::to_value(&spec.transfer).unwrap_or(Value::Null),
        });
        let record = self.manager.submit(new_id(), JobSpec::Copy(spec), public)?;
        Ok(Response::new(to_proto(&record)))
    }

    async fn get_job(
        &self,
        request: Request<api::GetJobRequest>,
    ) -> Result<Response<api::Job>, Status> {
        let job = self.manager.get(&request.into_inner().id)?;
        Ok(Response::new(to_proto(&job.record())))
    }

    async fn list_jobs(
        &self,
        request: Request<api::ListJobsRequest>,
    ) -> Result<Response<api::ListJobsResponse>, Status> {
        let states = state_filter(&request.into_inner().states)?;
        let jobs = self.manager.list(&states).iter().map(to_proto).collect();
        Ok(Response::new(api::ListJobsResponse { jobs }))
    }

    async fn cancel_job(
        &self,
        request: Request<api::CancelJobRequest>,
    ) -> Result<Response<api::Job>, Status> {
        let record = self.manager.cancel(&request.into_inner().id)?;
        Ok(Response::new(to_proto(&record)))
    }

    type WatchJobStream = EventStream;

    async fn watch_job(
        &self,
        request: Request<api::WatchJobRequest>,
    ) -> Result<Response<Self::WatchJobStream>, Status> {
        let job = self.manager.get(&request.into_inner().id)?;
        let mut events = job.subscribe();
        let stopping = self.manager.stopping();
        let stream = async_stream::stream! {
            let snapshot = job.record();
            let done = snapshot.state.is_final();
            yield Ok(api::JobEvent { job: Some(to_proto(&snapshot)), kind: "snapshot".into(), message: String::new() });
            if done {
                return;
            }
            loop {
                let event = tokio::select! {
                    e = events.recv() => e,
                    () = stopping.cancelled() => {
                        yield Err(Status::unavailable("the daemon is shutting down; the job resumes when it starts again"));
                        return;
                    }
                };
                match event {
                    Ok(e) => {
                        let final_state = e.kind == "state"
                            && e.job.as_ref().is_some_and(|j| {
                                api::JobState::try_from(j.state)
                                    .ok()
                                    .and_then(state_from_proto)
                                    .is_some_and(|s| s.is_final())
                            });
                        yield Ok(e);
                        if final_state {
                            return;
                        }
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                        yield Ok(api::JobEvent { job: Some(to_proto(&job.record())), kind: "snapshot".into(), message: String::new() });
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                }
            }
        };
        Ok(Response::new(Box::pin(stream)))
    }
}
