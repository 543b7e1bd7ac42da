//! The command line: clap definitions, turning arguments into library requests, and printing
//! the reports. The only module that prints.

mod daemon;
mod progress;

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};
use milvus_migrate::config::{self, Profile, TransferOptions};
use milvus_migrate::copy::CopyReport;
use milvus_migrate::create::{CreateRequest, FlushStrategy, Selector};
use milvus_migrate::lease::LeaseOptions;
use milvus_migrate::migrate::MigrateRequest;
use milvus_migrate::restore::{Naming, RestoreOptions, RestoreRequest};
use milvus_migrate::transfer::{self, CopyRequest, CopyTarget, RunContext, Session};
use milvus_migrate::verify::{VerifyMode, VerifyOptions, VerifyRequest};

/// Exit code: everything done.
pub const EXIT_OK: u8 = 0;
/// Exit code: finished, some objects failed (listed); for `verify`, the collections differ.
pub const EXIT_PARTIAL: u8 = 1;
/// Exit code: fatal error, nothing or not everything was attempted.
pub const EXIT_FATAL: u8 = 2;
/// Exit code: another run of the same migration holds its lease (or took it over from this
/// run); nothing was changed by this one. Rerun later, or with `--wait`.
pub const EXIT_BUSY: u8 = 3;

/// The exit code for a fatal error: [`EXIT_BUSY`] for a held or lost lease, else
/// [`EXIT_FATAL`].
pub fn exit_code_of(e: &anyhow::Error) -> u8 {
    match e.downcast_ref::<milvus_migrate::Error>() {
        Some(err) if err.lease().is_some() => EXIT_BUSY,
        _ => EXIT_FATAL,
    }
}

/// Move Milvus backups and collections between Milvus instances on different object stores.
#[derive(Debug, Parser)]
#[command(name = "milvus-migrate", version, about, long_about = None)]
pub struct Cli {
    /// More log output on stderr (-v info, -vv debug). RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Copy a backup from one profile's backup store to another's, streaming.
    Copy(Box<CopyArgs>),
    /// Resolve a profile, print it with secrets masked, and probe its stores.
    Check(CheckArgs),
    /// Back up collections of a Milvus into its backup store (milvus-backup format).
    Create(Box<CreateArgs>),
    /// Restore a backup into a Milvus: create the collections, import, verify.
    Restore(Box<RestoreArgs>),
    /// Migrate collections from Milvus A to Milvus B: create, copy, restore, verify.
    Migrate(Box<MigrateArgs>),
    /// Compare collections on Milvus A with their copies on Milvus B, row by row.
    Verify(Box<VerifyArgs>),
    /// Create a sample collection with generated rows in a Milvus (demos, CI, tests).
    Seed(SeedArgs),
    /// Run the migration daemon: a gRPC job API (see docs/daemon.md).
    Serve(Box<daemon::ServeArgs>),
    /// Talk to a running daemon: submit, list, get, cancel and watch jobs.
    Jobs(Box<daemon::JobsArgs>),
}

/// Flags shared by the commands that run a flow.
#[derive(Debug, Args)]
pub struct RunFlags {
    /// Print the final report as JSON on stdout.
    #[arg(long)]
    pub json: bool,
    /// No progress display.
    #[arg(short, long)]
    pub quiet: bool,
    /// Directory for copy ledgers (resume state). Default: $MILVUS_MIGRATE_STATE_DIR,
    /// $XDG_STATE_HOME/milvus-migrate or ~/.local/state/milvus-migrate.
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// Keep no ledger: a rerun still skips complete objects but restarts open uploads.
    #[arg(long)]
    pub no_ledger: bool,
}

impl RunFlags {
    fn state_dir(&self) -> Option<PathBuf> {
        if self.no_ledger {
            None
        } else {
            self.state_dir.clone().or_else(default_state_dir)
        }
    }
}

/// `create` arguments.
#[derive(Debug, Args)]
pub struct CreateArgs {
    /// Profile of the Milvus to back up (milvus-backup backup.yaml); the backup goes to its
    /// backup store.
    #[arg(long, value_name = "FILE", default_value = "backup.yaml")]
    pub config: PathBuf,
    /// Backup name. Default: backup_<UTC time>.
    #[arg(short = 'n', long, value_name = "NAME")]
    pub name: Option<String>,
    /// Collection to back up: `coll`, `db.coll` or `db.*`; repeatable or comma-separated.
    /// Default: every collection of every database.
    #[arg(
        short = 'c',
        long = "collection",
        value_name = "COLL",
        value_delimiter = ','
    )]
    pub collections: Vec<String>,
    /// Whole database to back up; repeatable.
    #[arg(
        short = 'd',
        long = "database",
        value_name = "DB",
        value_delimiter = ','
    )]
    pub databases: Vec<String>,
    /// How the data is made durable first, as milvus-backup's --strategy: auto (serial_flush),
    /// serial_flush (Flush and wait, per collection), bulk_flush (one FlushAll per database),
    /// skip_flush (no flush: only segments already flushed; for a source that takes no
    /// writes), meta_only (schemas, partitions and indexes, no data).
    #[arg(long, value_name = "STRATEGY", default_value = "auto")]
    pub strategy: FlushStrategy,
    /// Every collection of every database (the default without -c/-d, said explicitly).
    #[arg(long, conflicts_with_all = ["collections", "databases"])]
    pub all: bool,
    /// Also record users (without passwords: Milvus does not give them back), roles, their
    /// grants and the users' roles in the backup's rbac_meta, as milvus-backup --rbac does.
    #[arg(long)]
    pub rbac: bool,
    #[command(flatten)]
    pub run: RunFlags,
    #[command(flatten)]
    pub transfer: TransferFlags,
}

/// `migrate` arguments.
#[derive(Debug, Args)]
pub struct MigrateArgs {
    #[command(flatten)]
    pub what: MigrateOptions,
    /// When another run of the same migration is in progress, wait for it to end (then
    /// finish its work or find it done) instead of exiting with code 3.
    #[arg(long)]
    pub wait: bool,
    /// Seconds after its last renewal at which the lease of a run that died expires, so that
    /// another run may take the migration over. The lease is renewed every third of it.
    #[arg(long, value_name = "SECS", default_value_t = milvus_migrate::lease::DEFAULT_TTL.as_secs(), value_parser = clap::value_parser!(u64).range(3..=86_400))]
    pub lease_ttl: u64,
    #[command(flatten)]
    pub run: RunFlags,
    #[command(flatten)]
    pub transfer: TransferFlags,
}

/// `--rbac` and its password file: the flags `restore` and `migrate` share.
#[derive(Debug, Args)]
pub struct RbacFlags {
    /// Also restore users, roles, their grants and the users' roles, merged with what the
    /// target has (what exists is left as it is), as milvus-backup --rbac does.
    #[arg(long)]
    pub rbac: bool,
    /// YAML or JSON map of user name to password for the users --rbac creates. A user it does
    /// not name is created with a random password nobody is told, and listed as such.
    #[arg(long, value_name = "FILE", requires = "rbac")]
    pub rbac_passwords: Option<PathBuf>,
}

impl RbacFlags {
    fn passwords(&self) -> Result<Option<milvus_migrate::rbac::RbacPasswords>> {
        if !self.rbac {
            return Ok(None);
        }
        Ok(Some(milvus_migrate::rbac::RbacPasswords::from_file(
            self.rbac_passwords.as_deref(),
        )?))
    }
}

/// How B is compared with A: the flags `migrate` and `verify` share.
#[derive(Debug, Args)]
pub struct VerifyFlags {
    /// count: exact row counts; sample: counts, every key, and every field of a sample of
    /// rows; full: every field of every row.
    #[arg(long = "verify", value_name = "MODE", default_value_t = VerifyMode::Sample)]
    pub mode: VerifyMode,
    /// Rows compared field by field in sample mode.
    #[arg(long, value_name = "N", default_value_t = 1000)]
    pub sample: u64,
    /// Rows per key range in full mode (at most 16384) [default: sized by the rows' width,
    /// about 16 MiB per range].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..=16_384))]
    pub page: Option<u64>,
}

impl VerifyFlags {
    fn options(&self) -> VerifyOptions {
        VerifyOptions {
            mode: self.mode,
            sample: self.sample,
            page: self.page,
            ..VerifyOptions::default()
        }
    }
}

/// `verify` arguments.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Profile of Milvus A (milvus-backup backup.yaml).
    #[arg(long, value_name = "FILE")]
    pub from: PathBuf,
    /// Profile of Milvus B.
    #[arg(long, value_name = "FILE")]
    pub to: PathBuf,
    /// Collection on A: `coll`, `db.coll` or `db.*`; repeatable or comma-separated.
    #[arg(
        short = 'c',
        long = "collection",
        value_name = "COLL",
        value_delimiter = ',',
        required_unless_present = "databases"
    )]
    pub collections: Vec<String>,
    /// Whole database on A; repeatable.
    #[arg(
        short = 'd',
        long = "database",
        value_name = "DB",
        value_delimiter = ','
    )]
    pub databases: Vec<String>,
    /// The collection on B (`coll` or `db.coll`), for one `-c` collection. Default: the
    /// same name (or as --suffix / --rename say).
    #[arg(short = 't', long, value_name = "COLL", conflicts_with_all = ["suffix", "rename"])]
    pub target: Option<String>,
    /// Names on B are A's plus this suffix.
    #[arg(short = 's', long, value_name = "SUFFIX", conflicts_with = "rename")]
    pub suffix: Option<String>,
    /// Names on B: `old:new`, `db1.old:db2.new`, `db1.*:db2.*`.
    #[arg(short = 'r', long, value_name = "MAP")]
    pub rename: Vec<String>,
    #[command(flatten)]
    pub check: VerifyFlags,
    /// Print the report as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

/// What a migration does: the flags `migrate` and `jobs submit migrate` share.
#[derive(Debug, Args)]
pub struct MigrateOptions {
    /// Source profile: Milvus A, its storage and backup store (milvus-backup backup.yaml).
    #[arg(long, value_name = "FILE")]
    pub from: PathBuf,
    /// Target profile: Milvus B, its storage and backup store.
    #[arg(long, value_name = "FILE")]
    pub to: PathBuf,
    /// Collection: `coll`, `db.coll` or `db.*`; repeatable or comma-separated.
    #[arg(
        short = 'c',
        long = "collection",
        value_name = "COLL",
        value_delimiter = ','
    )]
    pub collections: Vec<String>,
    /// Whole database; repeatable.
    #[arg(
        short = 'd',
        long = "database",
        value_name = "DB",
        value_delimiter = ','
    )]
    pub databases: Vec<String>,
    /// Backup name. Default: derived from the request, so rerunning the same command resumes.
    #[arg(short = 'n', long, value_name = "NAME")]
    pub name: Option<String>,
    /// Append a suffix to every target collection name.
    #[arg(short = 's', long, value_name = "SUFFIX", conflicts_with = "rename")]
    pub suffix: Option<String>,
    /// Rename: `old:new`, `db1.old:db2.new`, `db1.*:db2.*`.
    #[arg(short = 'r', long, value_name = "MAP")]
    pub rename: Vec<String>,
    /// Recreate the indexes on B (the default; kept for symmetry with `restore`).
    #[arg(long, overrides_with = "no_rebuild_index")]
    pub rebuild_index: bool,
    /// Do not recreate indexes on B (then B cannot be loaded, and rows are checked by the
    /// import counts only).
    #[arg(long)]
    pub no_rebuild_index: bool,
    /// Load the collections on B (the default: needed to verify by count(*)).
    #[arg(long, overrides_with = "no_load")]
    pub load: bool,
    /// Do not load on B (rows are then checked by the import counts only).
    #[arg(long)]
    pub no_load: bool,
    /// Replace target collections that already exist on B.
    #[arg(long)]
    pub drop_existing: bool,
    /// Keep the backup on A and its copy on B (default: removed after a verified restore).
    #[arg(long)]
    pub keep_backup: bool,
    /// Stream A's binlogs straight into B's backup store: one copy instead of two, no backup
    /// left on A.
    #[arg(long)]
    pub direct: bool,
    /// On failure, keep a partially restored collection on B (default: dropped).
    #[arg(long)]
    pub keep_partial: bool,
    /// Stage every binlog on B before the first import, instead of importing each segment as
    /// soon as it is staged (for comparison: the result is the same, only slower).
    #[arg(long)]
    pub sequential: bool,
    /// Every collection of every database (the default without -c/-d, said explicitly).
    #[arg(long, conflicts_with_all = ["collections", "databases"])]
    pub all: bool,
    #[command(flatten)]
    pub rbac: RbacFlags,
    #[command(flatten)]
    pub check: VerifyFlags,
}

/// `restore` arguments.
#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// Profile of the target Milvus (milvus-backup backup.yaml).
    #[arg(long, value_name = "FILE", default_value = "backup.yaml")]
    pub config: PathBuf,
    /// Read the backup from this profile's backup store instead of --config's (for example a
    /// local directory holding a backup kept in a repository).
    #[arg(long, value_name = "FILE")]
    pub from: Option<PathBuf>,
    /// Backup name.
    #[arg(short = 'n', long, value_name = "NAME")]
    pub name: String,
    /// Source collection to restore: `coll`, `db.coll` or `db.*`; repeatable. Default: all.
    #[arg(
        short = 'c',
        long = "collection",
        value_name = "COLL",
        value_delimiter = ','
    )]
    pub collections: Vec<String>,
    /// Append a suffix to every restored collection name.
    #[arg(short = 's', long, value_name = "SUFFIX", conflicts_with = "rename")]
    pub suffix: Option<String>,
    /// Rename: `old:new`, `db1.old:db2.new`, `db1.*:db2.*`; repeatable or comma-separated.
    #[arg(short = 'r', long, value_name = "MAP")]
    pub rename: Vec<String>,
    /// Drop a target collection that already exists.
    #[arg(long)]
    pub drop_existing: bool,
    /// Recreate the backed-up indexes and wait until they are built.
    #[arg(long)]
    pub rebuild_index: bool,
    /// Load the restored collections and wait until loaded (needed to verify by count(*)).
    #[arg(long)]
    pub load: bool,
    /// Keep a partially restored collection when the restore fails.
    #[arg(long)]
    pub keep_partial: bool,
    /// Stage every binlog before the first import, instead of importing each segment as soon
    /// as it is staged (for comparison: the result is the same, only slower).
    #[arg(long)]
    pub sequential: bool,
    /// Create the collections, partitions and (with --rebuild-index) indexes; import no data.
    #[arg(long, alias = "meta_only")]
    pub meta_only: bool,
    /// Restore into target collections that already exist (their field IDs must be the
    /// backup's); missing partitions are created.
    #[arg(
        long,
        alias = "skip_create_collection",
        conflicts_with = "drop_existing"
    )]
    pub skip_create_collection: bool,
    /// Drop the target collection's existing indexes (releasing it if loaded) before the
    /// backed-up ones are created.
    #[arg(long, alias = "drop_exist_index")]
    pub drop_exist_index: bool,
    /// With --rebuild-index: vector indexes as AUTOINDEX with the backed-up metric type.
    #[arg(long, alias = "use_auto_index")]
    pub use_auto_index: bool,
    #[command(flatten)]
    pub rbac: RbacFlags,
    #[command(flatten)]
    pub run: RunFlags,
    #[command(flatten)]
    pub transfer: TransferFlags,
}

/// Copier settings that override the profile's `transfer:` block.
#[derive(Debug, Args, Default)]
pub struct TransferFlags {
    /// Objects in flight.
    #[arg(long)]
    pub concurrency: Option<usize>,
    /// Parts in flight per multipart object.
    #[arg(long)]
    pub parts_per_object: Option<usize>,
    /// Multipart part size, e.g. 16MiB.
    #[arg(long, value_parser = parse_size)]
    pub part_size: Option<u64>,
    /// Objects of at least this size go as multipart uploads, e.g. 32MiB.
    #[arg(long, value_parser = parse_size)]
    pub multipart_threshold: Option<u64>,
    /// Upper bound of buffered bytes, e.g. 96MiB.
    #[arg(long, value_parser = parse_size)]
    pub max_buffer_memory: Option<u64>,
    /// Byte-rate limit for the whole process, e.g. 50MiB/s; `off` for none.
    #[arg(long, value_parser = parse_rate)]
    pub bwlimit: Option<RateArg>,
    /// Requests per second to the stores, whole process; 0 for no limit.
    #[arg(long)]
    pub request_rate: Option<u32>,
    /// Retries per part or small object.
    #[arg(long)]
    pub retries: Option<u32>,
}

/// A parsed `--bwlimit`: `None` inside means "no limit", overriding the profile.
#[derive(Debug, Clone, Copy)]
pub struct RateArg(pub Option<u64>);

fn parse_size(s: &str) -> Result<u64, String> {
    config::parse_size(s)
}

fn parse_rate(s: &str) -> Result<RateArg, String> {
    config::parse_rate(s).map(RateArg)
}

impl TransferFlags {
    fn options(&self) -> TransferOptions {
        TransferOptions {
            concurrency: self.concurrency,
            parts_per_object: self.parts_per_object,
            part_size: self.part_size,
            multipart_threshold: self.multipart_threshold,
            max_buffer_memory: self.max_buffer_memory,
            bw_limit: self.bwlimit.map(|r| r.0.unwrap_or(0)),
            request_rate: self.request_rate,
            retries: self.retries,
            ..TransferOptions::default()
        }
    }
}

/// `copy` arguments.
#[derive(Debug, Args)]
pub struct CopyArgs {
    /// Source profile (milvus-backup backup.yaml).
    #[arg(long, value_name = "FILE")]
    pub from: PathBuf,
    /// Destination profile (milvus-backup backup.yaml).
    #[arg(long, value_name = "FILE")]
    pub to: PathBuf,
    /// Backup to copy: `<backupRootPath>/<NAME>/` of each profile's backup store.
    #[arg(short = 'n', long, value_name = "NAME", required_unless_present = "src_prefix", conflicts_with_all = ["src_prefix", "dst_prefix"])]
    pub name: Option<String>,
    /// Generic form: prefix in the source's backup bucket.
    #[arg(long, value_name = "PREFIX", requires = "dst_prefix")]
    pub src_prefix: Option<String>,
    /// Generic form: prefix in the destination's backup bucket.
    #[arg(long, value_name = "PREFIX", requires = "src_prefix")]
    pub dst_prefix: Option<String>,
    /// Replace a different backup of that name at the destination.
    #[arg(long)]
    pub overwrite: bool,
    #[command(flatten)]
    pub run: RunFlags,
    #[command(flatten)]
    pub transfer: TransferFlags,
}

/// `check` arguments.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Profile to check.
    #[arg(long, value_name = "FILE", default_value = "backup.yaml")]
    pub config: PathBuf,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

fn default_state_dir() -> Option<PathBuf> {
    if let Some(d) = std::env::var_os("MILVUS_MIGRATE_STATE_DIR") {
        return Some(PathBuf::from(d));
    }
    if let Some(d) = std::env::var_os("XDG_STATE_HOME") {
        return Some(PathBuf::from(d).join("milvus-migrate"));
    }
    std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/state/milvus-migrate"))
}

fn load(path: &Path) -> Result<Profile> {
    let loaded = Profile::load(path)?;
    for w in &loaded.warnings {
        tracing::warn!("{w}");
    }
    Ok(loaded.profile)
}

/// Runs a parsed command; returns the exit code.
///
/// # Errors
/// Fatal errors, for `main` to print and map to exit code 2.
pub async fn run(cli: Cli) -> Result<u8> {
    match cli.command {
        Command::Copy(args) => copy(*args).await,
        Command::Check(args) => check(args).await,
        Command::Create(args) => create(*args).await,
        Command::Restore(args) => restore(*args).await,
        Command::Migrate(args) => migrate(*args).await,
        Command::Verify(args) => verify(*args).await,
        Command::Seed(args) => seed(args).await,
        Command::Serve(args) => daemon::serve(*args).await,
        Command::Jobs(args) => daemon::jobs(*args).await,
    }
}

fn default_backup_name() -> String {
    let (y, m, d, hh, mm, ss) = milvus_migrate::clock::utc_parts(milvus_migrate::clock::unix_now());
    format!("backup_{y:04}_{m:02}_{d:02}_{hh:02}_{mm:02}_{ss:02}")
}

async fn create(args: CreateArgs) -> Result<u8> {
    let profile = load(&args.config)?;
    let name = args.name.clone().unwrap_or_else(default_backup_name);
    let progress = progress::Progress::start(progress::Mode::detect(args.run.quiet));
    let result = milvus_migrate::create::create(
        CreateRequest {
            profile,
            name,
            // --all is what no selector means: every collection of every database.
            selectors: if args.all {
                Vec::new()
            } else {
                Selector::parse_all(&args.collections, &args.databases)?
            },
            strategy: args.strategy,
            rbac: args.rbac,
            every_database: false,
            overrides: args.transfer.options(),
            state_dir: args.run.state_dir(),
            context: RunContext::default(),
        },
        progress.clone(),
    )
    .await;
    progress.finish();
    let r = result?;
    if args.run.json {
        println!("{}", serde_json::to_string_pretty(&r)?);
        return Ok(EXIT_OK);
    }
    println!("backup   {} in {}", r.name, r.location);
    println!("milvus   {} (strategy {})", r.milvus_version, r.strategy);
    if let Some(n) = &r.rbac {
        println!(
            "rbac     {} user(s), {} role(s), {} grant(s)",
            n.users, n.roles, n.grants
        );
    }
    for c in &r.collections {
        println!(
            "  {}.{}: {} partition(s), {} segment(s), {} object(s), {:.1} MiB, rows {}",
            c.db_name,
            c.collection_name,
            c.partitions,
            c.segments,
            c.objects,
            c.bytes as f64 / 1048576.0,
            c.rows.map_or(
                format!("{} in segments (not loaded: no count(*))", c.segment_rows),
                |n| n.to_string()
            )
        );
    }
    println!(
        "time     {:.1}s ({:.1}s flush and discovery, {:.1}s copy: {} copied, {} skipped, mode {})",
        r.duration_secs,
        r.prepare_secs,
        r.copy.duration_secs,
        r.copy.objects_copied,
        r.copy.objects_skipped,
        r.copy.mode
    );
    Ok(EXIT_OK)
}

async fn migrate(args: MigrateArgs) -> Result<u8> {
    let from = load(&args.what.from)?;
    let to = load(&args.what.to)?;
    let progress = progress::Progress::start(progress::Mode::detect(args.run.quiet));
    let rebuild_index = !args.what.no_rebuild_index;
    let result = milvus_migrate::migrate::migrate(
        MigrateRequest {
            from,
            to,
            name: args.what.name.clone(),
            selectors: if args.what.all {
                Vec::new()
            } else {
                Selector::parse_all(&args.what.collections, &args.what.databases)?
            },
            naming: Naming::from_flags(args.what.suffix.as_deref(), &args.what.rename)?,
            rebuild_index,
            load: rebuild_index && !args.what.no_load,
            drop_existing: args.what.drop_existing,
            keep_backup: args.what.keep_backup,
            direct: args.what.direct,
            overrides: args.transfer.options(),
            state_dir: args.run.state_dir(),
            keep_partial: args.what.keep_partial,
            sequential: args.what.sequential,
            rbac: args.what.rbac.passwords()?,
            lease: LeaseOptions {
                ttl: std::time::Duration::from_secs(args.lease_ttl),
                wait: args.wait,
                ..LeaseOptions::default()
            },
            verify: args.what.check.options(),
            context: RunContext::default(),
        },
        progress.clone(),
    )
    .await;
    progress.finish();
    let r = result?;
    if args.run.json {
        println!("{}", serde_json::to_string_pretty(&r)?);
        return Ok(EXIT_OK);
    }
    let opt = |v: Option<u64>| v.map_or("-".to_string(), |n| n.to_string());
    match &r.completed_earlier {
        Some(at) => println!(
            "migration {} was already complete (at {at}); the targets on B are unchanged, \
             nothing done",
            r.name
        ),
        None => println!("migration {} done in {:.1}s", r.name, r.duration_secs),
    }
    let w = r
        .collections
        .iter()
        .map(|c| c.source.len().max(c.target.len()))
        .max()
        .unwrap_or(10)
        .max(10);
    println!(
        "  {:w$}  {:w$}  {:>10}  {:>10}  {:>10}  verified",
        "source (A)", "target (B)", "rows on A", "rows on B", "imported"
    );
    for c in &r.collections {
        println!(
            "  {:w$}  {:w$}  {:>10}  {:>10}  {:>10}  {}",
            c.source,
            c.target,
            opt(c.rows_a),
            opt(c.rows_b),
            c.rows_imported,
            c.verified_by
        );
    }
    for p in &r.phases {
        println!("  {:8} {:7.1}s  {}", p.phase, p.secs, p.note);
    }
    let notes = r.restore.iter().flat_map(|x| &x.collections);
    for note in notes.flat_map(|c| &c.notes) {
        println!("  note: {note}");
    }
    if let Some(rbac) = r.restore.as_ref().and_then(|x| x.rbac.as_ref()) {
        print_rbac(rbac);
    }
    if r.completed_earlier.is_none() {
        println!(
            "  moved {:.1} MiB between stores, {:.1} MiB/s overall",
            r.bytes_moved as f64 / 1048576.0,
            r.throughput_mib_s
        );
    }
    Ok(EXIT_OK)
}

async fn verify(args: VerifyArgs) -> Result<u8> {
    let from = load(&args.from)?;
    let to = load(&args.to)?;
    let naming = match &args.target {
        Some(t) => match args.collections.as_slice() {
            [one] if args.databases.is_empty() => Naming::parse_rename(&[format!("{one}:{t}")])?,
            _ => anyhow::bail!("--target needs exactly one -c collection"),
        },
        None => Naming::from_flags(args.suffix.as_deref(), &args.rename)?,
    };
    let r = milvus_migrate::verify::verify(&VerifyRequest {
        from,
        to,
        selectors: Selector::parse_all(&args.collections, &args.databases)?,
        naming,
        options: args.check.options(),
    })
    .await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&r)?);
    } else {
        for c in &r.collections {
            println!(
                "{} {} -> {} ({}, {} rows compared, {:.1}s): {}",
                if c.ok() { "same     " } else { "DIFFERENT" },
                c.source,
                c.target,
                c.mode,
                c.rows_compared,
                c.secs,
                c.summary()
            );
        }
    }
    Ok(if r.ok { EXIT_OK } else { EXIT_PARTIAL })
}

async fn restore(args: RestoreArgs) -> Result<u8> {
    let profile = load(&args.config)?;
    let backup_storage = match &args.from {
        Some(path) => load(path)?.backup_storage,
        None => profile.backup_storage.clone(),
    };
    let naming = Naming::from_flags(args.suffix.as_deref(), &args.rename)?;
    let progress = progress::Progress::start(progress::Mode::detect(args.run.quiet));
    let result = milvus_migrate::restore::restore(
        RestoreRequest {
            profile,
            backup_storage,
            name: args.name.clone(),
            selectors: Selector::parse_all(&args.collections, &[])?,
            naming,
            drop_existing: args.drop_existing,
            rebuild_index: args.rebuild_index,
            load: args.load,
            keep_partial: args.keep_partial,
            options: RestoreOptions {
                meta_only: args.meta_only,
                skip_create_collection: args.skip_create_collection,
                drop_exist_index: args.drop_exist_index,
                use_auto_index: args.use_auto_index,
                rbac: args.rbac.passwords()?,
            },
            sequential: args.sequential,
            upstream: None,
            overrides: args.transfer.options(),
            state_dir: args.run.state_dir(),
            context: RunContext::default(),
        },
        progress.clone(),
    )
    .await;
    progress.finish();
    let r = result?;
    if args.run.json {
        println!("{}", serde_json::to_string_pretty(&r)?);
        return Ok(EXIT_OK);
    }
    println!(
        "restored backup {} into Milvus {}",
        r.name, r.milvus_version
    );
    for c in &r.collections {
        let rows = match (c.rows, c.expected_rows) {
            _ if args.meta_only => "meta only: no data imported".to_string(),
            (Some(n), Some(e)) => format!(
                "{n} rows (backup: {e}){}",
                if c.verified { ", verified" } else { "" }
            ),
            (Some(n), None) => format!("{n} rows (no count recorded in the backup)"),
            (None, _) => format!(
                "{} rows imported (not loaded: use --load to verify by count(*))",
                c.rows_imported
            ),
        };
        println!(
            "  {}.{} -> {}.{}: {} segment(s), {rows}",
            c.source_db, c.source_collection, c.db_name, c.collection_name, c.segments
        );
        println!(
            "    stage {:.1}s ({} objects), stage+import {:.1}s, index+load {:.1}s",
            c.stage_secs, c.staged_objects, c.import_secs, c.index_load_secs
        );
        if !c.aliases.is_empty() {
            println!("    aliases: {}", c.aliases.join(", "));
        }
        if let Some(n) = c.replicas {
            println!("    loaded with {n} replica(s)");
        }
        for note in &c.notes {
            println!("    note: {note}");
        }
    }
    if let Some(rbac) = &r.rbac {
        print_rbac(rbac);
    }
    println!("time     {:.1}s", r.duration_secs);
    Ok(EXIT_OK)
}

fn print_rbac(r: &milvus_migrate::rbac::RbacReport) {
    let list = |v: &[String]| {
        if v.is_empty() {
            "-".to_string()
        } else {
            v.join(", ")
        }
    };
    println!(
        "rbac     roles created: {}; grants given: {}; users created: {}; bindings added: {}; \
         {} already there",
        list(&r.roles_created),
        r.grants_given.len(),
        list(&r.users_created),
        r.bindings_added.len(),
        r.already_there
    );
    if !r.users_without_password.is_empty() {
        println!(
            "rbac     created WITHOUT a known password (not in --rbac-passwords; set one as an \
             administrator): {}",
            r.users_without_password.join(", ")
        );
    }
    if !r.privilege_groups_skipped.is_empty() {
        println!(
            "rbac     privilege groups not restored (Milvus 2.5+ only): {}",
            r.privilege_groups_skipped.join(", ")
        );
    }
}

async fn copy(args: CopyArgs) -> Result<u8> {
    let from = load(&args.from)?;
    let to = load(&args.to)?;
    let target = match (&args.name, &args.src_prefix, &args.dst_prefix) {
        (Some(name), _, _) => CopyTarget::Backup(name.clone()),
        (None, Some(src), Some(dst)) => CopyTarget::Prefixes {
            src: src.clone(),
            dst: dst.clone(),
        },
        _ => anyhow::bail!("give a backup name (-n) or both --src-prefix and --dst-prefix"),
    };
    let state_dir = args.run.state_dir();
    let progress = progress::Progress::start(progress::Mode::detect(args.run.quiet));
    let result = transfer::copy(
        CopyRequest {
            from,
            to,
            target,
            overrides: args.transfer.options(),
            overwrite: args.overwrite,
            state_dir,
            context: RunContext::default(),
        },
        progress.clone(),
    )
    .await;
    progress.finish();
    let report = result?;
    print_copy_report(&report, args.run.json)?;
    Ok(if report.is_complete() {
        EXIT_OK
    } else {
        EXIT_PARTIAL
    })
}

fn print_copy_report(r: &CopyReport, json: bool) -> Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(r)?);
        return Ok(());
    }
    let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
    println!("copied   {} -> {}", r.source, r.destination);
    println!(
        "objects  {} copied, {} skipped (already there), {} failed, {} resumed, of {}",
        r.objects_copied, r.objects_skipped, r.objects_failed, r.objects_resumed, r.objects_total
    );
    println!(
        "bytes    {:.1} MiB copied, {:.1} MiB skipped, of {:.1} MiB",
        mib(r.bytes_copied),
        mib(r.bytes_skipped),
        mib(r.bytes_total)
    );
    println!(
        "time     {:.2}s, {:.1} MiB/s, {:.0} objects/s, {} retries, {} requests, mode {}",
        r.duration_secs, r.throughput_mib_s, r.objects_per_sec, r.retries, r.requests, r.mode
    );
    println!(
        "verified {} objects by MD5 against the destination's ETag",
        r.objects_verified
    );
    for f in &r.failures {
        println!("FAILED   {}: {}", f.key, f.error);
    }
    Ok(())
}

async fn check(args: CheckArgs) -> Result<u8> {
    let loaded = Profile::load(&args.config)?;
    let profile = loaded.profile;
    let config = profile
        .transfer(&TransferOptions::default())
        .with_context(|| format!("profile {}", args.config.display()))?;
    let session = Session::new(config);
    let mut reports =
        vec![transfer::probe(&session, "milvus storage", &profile.milvus_storage).await];
    if !profile.backup_storage.same_as(&profile.milvus_storage) {
        reports.push(transfer::probe(&session, "backup storage", &profile.backup_storage).await);
    }
    let ok = reports.iter().all(|r| r.ok());
    if args.json {
        let settings: Vec<_> = profile
            .describe()
            .into_iter()
            .map(|s| serde_json::json!({"key": s.key, "value": s.value, "source": s.source.to_string()}))
            .collect();
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "profile": args.config.display().to_string(),
                "warnings": loaded.warnings,
                "settings": settings,
                "probes": reports,
                "ok": ok,
            }))?
        );
    } else {
        println!("profile {}", args.config.display());
        for w in &loaded.warnings {
            println!("warning: {w}");
        }
        let settings = profile.describe();
        let width = settings.iter().map(|s| s.key.len()).max().unwrap_or(0);
        for s in settings {
            println!("  {:width$}  {:30}  ({})", s.key, s.value, s.source);
        }
        for r in &reports {
            println!("{} {}:", r.role, r.store);
            for s in &r.steps {
                match &s.error {
                    None => println!("  ok    {}", s.step),
                    Some(e) => println!("  FAIL  {}: {e}", s.step),
                }
            }
        }
        println!("{}", if ok { "check passed" } else { "check FAILED" });
    }
    Ok(if ok { EXIT_OK } else { EXIT_FATAL })
}

/// `seed` arguments.
#[derive(Debug, Args)]
pub struct SeedArgs {
    /// Profile whose `milvus.*` names the Milvus to seed.
    #[arg(long, value_name = "FILE", default_value = "backup.yaml")]
    pub config: PathBuf,
    /// Collection to create: `coll` (database `default`) or `db.coll` (database created if
    /// missing).
    #[arg(short, long, value_name = "COLL")]
    pub collection: String,
    /// Rows to insert.
    #[arg(long, default_value_t = 10_000)]
    pub rows: u64,
    /// Dimension of the `vec` FloatVector field.
    #[arg(long, default_value_t = 128)]
    pub dim: u32,
    /// Partitions besides `_default`, e.g. p1,p2; rows are spread round-robin.
    #[arg(long, value_delimiter = ',', value_name = "P1,P2")]
    pub partitions: Vec<String>,
    /// Make `tag` a partition key with N partitions (instead of --partitions).
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub partition_key: u32,
    /// Enable the dynamic field and give every row a dynamic key.
    #[arg(long)]
    pub dynamic: bool,
    /// Delete the rows whose primary key is a multiple of N (before the flush).
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub delete_every: u64,
    /// Shards of the collection.
    #[arg(long, default_value_t = 1)]
    pub shards: i32,
    /// Consistency level of the collection: strong, session, bounded or eventually.
    #[arg(long, value_name = "LEVEL", default_value = "bounded", value_parser = consistency_level)]
    pub consistency: milvus_migrate::milvus::proto::common::ConsistencyLevel,
    /// VarChar primary key ("pk-<n>") instead of Int64.
    #[arg(long)]
    pub varchar_pk: bool,
    /// Seed of the vector generator.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Rows per Insert request (default: about 8 MiB per request).
    #[arg(long, value_name = "N")]
    pub batch_rows: Option<usize>,
    /// Build no index (implies --no-load).
    #[arg(long)]
    pub no_index: bool,
    /// Do not load the collection (no count(*) check).
    #[arg(long)]
    pub no_load: bool,
    /// Drop an existing collection of that name first.
    #[arg(long)]
    pub drop_existing: bool,
    /// Print the report as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

/// `--consistency`: a level by its name, in any case.
fn consistency_level(
    s: &str,
) -> Result<milvus_migrate::milvus::proto::common::ConsistencyLevel, String> {
    use milvus_migrate::milvus::proto::common::ConsistencyLevel as L;
    [L::Strong, L::Session, L::Bounded, L::Eventually]
        .into_iter()
        .find(|l| l.as_str_name().eq_ignore_ascii_case(s))
        .ok_or_else(|| format!("`{s}`: use strong, session, bounded or eventually"))
}

async fn seed(args: SeedArgs) -> Result<u8> {
    use milvus_migrate::milvus::{ClientOptions, MilvusClient};
    use milvus_migrate::seed::{self, SeedSpec};
    let profile = load(&args.config)?;
    let (db, collection) = seed::parse_target(&args.collection)?;
    let spec = SeedSpec {
        db,
        collection,
        rows: args.rows,
        dim: args.dim,
        partitions: args.partitions,
        partition_key: args.partition_key,
        dynamic: args.dynamic,
        delete_every: args.delete_every,
        shards: args.shards,
        consistency: args.consistency,
        varchar_pk: args.varchar_pk,
        seed: args.seed,
        batch_rows: args.batch_rows.unwrap_or(0),
        index: !args.no_index,
        load: !args.no_load && !args.no_index,
        drop_existing: args.drop_existing,
    };
    spec.validate()?;
    let client = MilvusClient::connect(&profile.milvus, ClientOptions::default()).await?;
    let r = seed::seed(&client, &spec).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&r)?);
        return Ok(EXIT_OK);
    }
    let t = &r.timings;
    println!(
        "seeded   {}.{} on Milvus {} at {}{}{}",
        r.db,
        r.collection,
        r.milvus_version,
        r.address,
        if r.db_created {
            " (database created)"
        } else {
            ""
        },
        if r.dropped_existing {
            " (replaced the existing collection)"
        } else {
            ""
        }
    );
    println!(
        "schema   {} ({} pk, dim {}, {} shard(s){})",
        r.fields.join(", "),
        r.primary_key,
        r.dim,
        r.shards,
        if r.dynamic { ", dynamic field" } else { "" }
    );
    println!(
        "rows     {} inserted in {} request(s) of <= {}, {} deleted, {} expected",
        r.rows_inserted, r.insert_requests, r.batch_rows, r.rows_deleted, r.expected_rows
    );
    let parts: Vec<String> = r
        .per_partition
        .iter()
        .map(|(p, n)| format!("{p} {n}"))
        .collect();
    println!("per partition  {}", parts.join(", "));
    println!(
        "index    {}; loaded: {}; count(*): {}",
        r.index.as_deref().unwrap_or("none"),
        if r.loaded { "yes" } else { "no" },
        r.counted_rows
            .map_or("not checked (not loaded)".to_string(), |n| format!(
                "{n} (matches)"
            ))
    );
    println!(
        "time     {:.2}s: create {:.2}s, insert {:.2}s, delete {:.2}s, flush {:.2}s ({} segment(s)), index {:.2}s, load {:.2}s, verify {:.2}s",
        r.duration_secs,
        t.create_secs,
        t.insert_secs,
        t.delete_secs,
        t.flush_secs,
        r.flushed_segments,
        t.index_secs,
        t.load_secs,
        t.verify_secs
    );
    Ok(EXIT_OK)
}
