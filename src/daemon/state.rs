//! The daemon's state directory: one directory per job with its spec (what was asked, secrets
//! included when profiles came inline), its record (state, phase, progress, result) and its
//! copy ledgers.
//!
//! Owns the on-disk format and atomic writes: every file is written to a temporary name in the
//! same directory, synced, renamed over the old one and the directory synced, so a crash at any
//! moment leaves either the old or the new file, never a torn one. Files are created with mode
//! 0600 and directories with 0700. Does not own what the states mean ([`super::jobs`]).
//!
//! Layout: `<dir>/jobs/<id>/spec.json`, `<dir>/jobs/<id>/record.json`,
//! `<dir>/jobs/<id>/ledgers/*.jsonl`.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::DaemonError;
use crate::config::TransferOptions;
use crate::verify::VerifyOptions;

/// Where a job's profile comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProfileSource {
    /// A file on the daemon's machine, read each time the job starts.
    Path(PathBuf),
    /// The file's text, as submitted (holds secrets: stored 0600, never returned).
    Inline(String),
}

/// A migration job: the `migrate` command's request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MigrateSpec {
    pub from: ProfileSource,
    pub to: ProfileSource,
    pub collections: Vec<String>,
    pub databases: Vec<String>,
    /// The backup name, fixed at submission so that a resumed job finds its state.
    pub name: String,
    pub suffix: Option<String>,
    pub rename: Vec<String>,
    pub rebuild_index: bool,
    pub load: bool,
    pub drop_existing: bool,
    pub keep_backup: bool,
    pub direct: bool,
    pub keep_partial: bool,
    /// Copier settings over the profiles' `transfer:` settings.
    pub transfer: TransferOptions,
    /// Every collection of every database (`--all`).
    #[serde(default)]
    pub all: bool,
    /// Stage every binlog before the first import (`--sequential`).
    #[serde(default)]
    pub sequential: bool,
    /// The final check of B against A (`--verify`, `--sample`, `--page`).
    #[serde(default)]
    pub verify: VerifyOptions,
    /// Move users, roles and grants too, with the passwords in this file on the daemon's
    /// machine (`--rbac`, `--rbac-passwords`).
    #[serde(default)]
    pub rbac: Option<JobRbac>,
}

/// A migration job's `--rbac`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobRbac {
    /// The users' passwords file, read when the job starts.
    pub passwords: Option<PathBuf>,
}

/// A copy job: the `copy` command's request for a backup.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CopySpec {
    pub from: ProfileSource,
    pub to: ProfileSource,
    pub name: String,
    pub overwrite: bool,
    /// Copier settings over the profiles' `transfer:` settings.
    pub transfer: TransferOptions,
}

/// What a job does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum JobSpec {
    Migrate(MigrateSpec),
    Copy(CopySpec),
}

impl JobSpec {
    /// `migrate` or `copy`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Migrate(_) => "migrate",
            Self::Copy(_) => "copy",
        }
    }
}

/// A job's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    Queued,
    Running,
    Cancelling,
    Succeeded,
    Failed,
    Cancelled,
}

impl JobState {
    /// Every state, in lifecycle order.
    pub const ALL: [JobState; 6] = [
        Self::Queued,
        Self::Running,
        Self::Cancelling,
        Self::Succeeded,
        Self::Failed,
        Self::Cancelled,
    ];

    /// Whether the job is over.
    pub fn is_final(self) -> bool {
        matches!(self, Self::Succeeded | Self::Failed | Self::Cancelled)
    }

    /// Lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Running => "running",
            Self::Cancelling => "cancelling",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
        }
    }
}

/// Progress of the copy a job is running (each copy of a migration starts from zero), and
/// totals over the job's life (retries, rows).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProgressRecord {
    pub bytes_done: u64,
    pub bytes_total: u64,
    pub objects_done: u64,
    pub objects_total: u64,
    pub objects_skipped: u64,
    pub objects_failed: u64,
    pub retries: u64,
    pub rows_imported: u64,
}

/// What the daemon knows about a job; everything here may be shown (no secrets).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobRecord {
    pub id: String,
    pub kind: String,
    pub state: JobState,
    pub phase: String,
    pub created_at: i64,
    pub started_at: i64,
    pub finished_at: i64,
    pub error: String,
    pub message: String,
    pub attempts: u32,
    pub progress: ProgressRecord,
    /// The spec with profiles described by path or as inline, their Milvus and buckets.
    pub spec: Value,
    /// The final report of the flow.
    pub report: Option<Value>,
    /// A cancel was asked for (survives a restart during the cleanup).
    #[serde(default)]
    pub cancel_requested: bool,
}

/// Seconds since the Unix epoch.
pub fn now() -> i64 {
    i64::try_from(crate::clock::unix_now()).unwrap_or(i64::MAX)
}

/// The state directory, locked for this process while it is open.
#[derive(Debug, Clone)]
pub struct StateDir {
    root: PathBuf,
    _lock: std::sync::Arc<std::fs::File>,
}

impl StateDir {
    /// Opens (creating with mode 0700) the state directory `root` and takes its lock
    /// (`<root>/daemon.lock`): two daemons on one directory would run the same jobs twice.
    ///
    /// # Errors
    /// [`DaemonError::State`] when it cannot be created, or another process holds it.
    pub fn open(root: &Path) -> Result<StateDir, DaemonError> {
        use std::os::unix::fs::OpenOptionsExt;
        create_private_dir(&root.join("jobs")).map_err(|e| DaemonError::state(root, e))?;
        let path = root.join("daemon.lock");
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(&path)
            .map_err(|e| DaemonError::state(&path, e))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(DaemonError::state(
                    root,
                    std::io::Error::other(
                        "another milvus-migrate daemon uses this state directory",
                    ),
                ));
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(DaemonError::state(&path, e)),
        }
        Ok(StateDir {
            root: root.to_path_buf(),
            _lock: std::sync::Arc::new(lock),
        })
    }

    /// The directory of job `id` (also its copy-ledger directory).
    pub fn job_dir(&self, id: &str) -> PathBuf {
        self.root.join("jobs").join(id)
    }

    /// Writes a new job's spec and record.
    ///
    /// # Errors
    /// [`DaemonError::State`] on a write failure.
    pub fn create(&self, spec: &JobSpec, record: &JobRecord) -> Result<(), DaemonError> {
        let dir = self.job_dir(&record.id);
        create_private_dir(&dir).map_err(|e| DaemonError::state(&dir, e))?;
        write_json(&dir.join("spec.json"), spec)?;
        self.save(record)
    }

    /// Replaces a job's record.
    ///
    /// # Errors
    /// [`DaemonError::State`] on a write failure.
    pub fn save(&self, record: &JobRecord) -> Result<(), DaemonError> {
        write_json(&self.job_dir(&record.id).join("record.json"), record)
    }

    /// Every job found, oldest first. A directory without a readable spec and record (a crash
    /// between creating it and writing them) is skipped with a warning.
    ///
    /// # Errors
    /// [`DaemonError::State`] when the jobs directory cannot be listed.
    pub fn load_all(&self) -> Result<Vec<(JobSpec, JobRecord)>, DaemonError> {
        let jobs = self.root.join("jobs");
        let mut out = Vec::new();
        let entries = std::fs::read_dir(&jobs).map_err(|e| DaemonError::state(&jobs, e))?;
        for entry in entries {
            let dir = entry.map_err(|e| DaemonError::state(&jobs, e))?.path();
            let read = |file: &str| -> Result<Vec<u8>, String> {
                std::fs::read(dir.join(file)).map_err(|e| format!("{file}: {e}"))
            };
            let parsed = read("spec.json").and_then(|spec| {
                let record = read("record.json")?;
                Ok((
                    serde_json::from_slice::<JobSpec>(&spec).map_err(|e| format!("spec: {e}"))?,
                    serde_json::from_slice::<JobRecord>(&record)
                        .map_err(|e| format!("record: {e}"))?,
                ))
            });
            match parsed {
                Ok(job) => out.push(job),
                Err(e) => tracing::warn!(dir = %dir.display(), "skipping an unreadable job: {e}"),
            }
        }
        out.sort_by(|a, b| (a.1.created_at, &a.1.id).cmp(&(b.1.created_at, &b.1.id)));
        Ok(out)
    }
}

fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<(), DaemonError> {
    let bytes = serde_json::to_vec_pretty(value).map_err(|e| {
        DaemonError::state(
            path,
            std::io::Error::new(std::io::ErrorKind::InvalidData, e),
        )
    })?;
    atomic_write(path, &bytes).map_err(|e| DaemonError::state(path, e))
}

/// Replaces `path` with `bytes` atomically, mode 0600.
///
/// # Errors
/// Any I/O failure; the old file is then intact.
pub fn atomic_write(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map_or_else(|| "state".into(), |n| n.to_string_lossy().into_owned());
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    drop(file);
    std::fs::rename(&tmp, path)?;
    std::fs::File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(id: &str, created_at: i64) -> JobRecord {
        JobRecord {
            id: id.into(),
            kind: "copy".into(),
            state: JobState::Queued,
            phase: String::new(),
            created_at,
            started_at: 0,
            finished_at: 0,
            error: String::new(),
            message: String::new(),
            attempts: 0,
            progress: ProgressRecord::default(),
            spec: Value::Null,
            report: None,
            cancel_requested: false,
        }
    }

    fn spec() -> JobSpec {
        JobSpec::Copy(CopySpec {
            from: ProfileSource::Inline("minio:\n  secretAccessKey: s3cr3t\n".into()),
            to: ProfileSource::Path("/etc/b.yaml".into()),
            name: "bk".into(),
            overwrite: false,
            transfer: TransferOptions::default(),
        })
    }

    #[test]
    fn a_migration_spec_written_before_the_job_options_loads_with_migrates_defaults() {
        // What a daemon of the previous release wrote: no all, sequential, verify or rbac.
        let old = r#"{"kind":"migrate","from":{"path":"/a.yaml"},"to":{"inline":"x: 1"},
            "collections":["c"],"databases":[],"name":"migrate_1","suffix":"_bak","rename":[],
            "rebuild_index":true,"load":true,"drop_existing":false,"keep_backup":false,
            "direct":false,"keep_partial":false,"transfer":{}}"#;
        let JobSpec::Migrate(m) = serde_json::from_str::<JobSpec>(old).unwrap() else {
            panic!("not a migration");
        };
        assert!(!m.all && !m.sequential && m.rbac.is_none());
        use crate::verify::VerifyMode;
        assert_eq!(m.verify, VerifyOptions::default());
        let o = m.verify;
        assert_eq!(
            (o.mode, o.sample, o.page),
            (VerifyMode::Sample, 1000, None),
            "as `migrate` without flags"
        );
        // And the new fields survive a round trip.
        let mut n = m.clone();
        n.verify.mode = VerifyMode::Full;
        n.verify.page = Some(2048);
        n.rbac = Some(JobRbac {
            passwords: Some("/etc/pw.yaml".into()),
        });
        let text = serde_json::to_string(&JobSpec::Migrate(n.clone())).unwrap();
        assert_eq!(
            serde_json::from_str::<JobSpec>(&text).unwrap(),
            JobSpec::Migrate(n)
        );
    }

    #[test]
    fn jobs_round_trip_private_and_in_creation_order() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().unwrap();
        let dir = StateDir::open(tmp.path()).unwrap();
        dir.create(&spec(), &record("b", 2)).unwrap();
        dir.create(&spec(), &record("a", 1)).unwrap();
        let mut r = record("b", 2);
        r.state = JobState::Running;
        dir.save(&r).unwrap();
        // A job directory a crash left empty is skipped.
        std::fs::create_dir_all(dir.job_dir("torn")).unwrap();
        let all = dir.load_all().unwrap();
        let ids: Vec<&str> = all.iter().map(|(_, r)| r.id.as_str()).collect();
        assert_eq!(ids, ["a", "b"]);
        assert_eq!(all[1].1.state, JobState::Running);
        assert_eq!(all[0].0, spec());
        for file in ["spec.json", "record.json"] {
            let mode = std::fs::metadata(dir.job_dir("a").join(file))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "{file}");
        }
        let mode = std::fs::metadata(dir.job_dir("a"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o700);
        // No temporary file stays behind.
        let names: Vec<String> = std::fs::read_dir(dir.job_dir("b"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert!(names.iter().all(|n| !n.contains(".tmp-")), "{names:?}");
    }

    #[test]
    fn a_second_daemon_cannot_open_a_state_directory_in_use() {
        let tmp = tempfile::tempdir().unwrap();
        let first = StateDir::open(tmp.path()).unwrap();
        let err = StateDir::open(tmp.path()).unwrap_err().to_string();
        assert!(err.contains("another milvus-migrate daemon"), "{err}");
        drop(first);
        StateDir::open(tmp.path()).unwrap();
    }

    #[test]
    fn an_atomic_write_replaces_the_whole_file() {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("f.json");
        atomic_write(&p, b"a much longer first version").unwrap();
        atomic_write(&p, b"short").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"short");
    }
}
