//! The command line: clap definitions, turning arguments into library requests, and printing
//! the reports. The only module that prints.

mod progress;

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};
use milvus_migrate::config::{self, Profile, TransferOptions};
use milvus_migrate::copy::CopyReport;
use milvus_migrate::transfer::{self, CopyRequest, CopyTarget, Session};

/// Exit code: everything done.
pub const EXIT_OK: u8 = 0;
/// Exit code: finished, some objects failed (listed).
pub const EXIT_PARTIAL: u8 = 1;
/// Exit code: fatal error, nothing or not everything was attempted.
pub const EXIT_FATAL: u8 = 2;

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
    /// Print the final report as JSON on stdout.
    #[arg(long)]
    pub json: bool,
    /// No progress display.
    #[arg(short, long)]
    pub quiet: bool,
    /// Directory for the copy ledger (resume state). Default: $MILVUS_MIGRATE_STATE_DIR,
    /// $XDG_STATE_HOME/milvus-migrate or ~/.local/state/milvus-migrate.
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// Keep no ledger: a rerun still skips complete objects but restarts open uploads.
    #[arg(long)]
    pub no_ledger: bool,
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
    let state_dir = if args.no_ledger {
        None
    } else {
        args.state_dir.clone().or_else(default_state_dir)
    };
    let progress = progress::Progress::start(progress::Mode::detect(args.quiet));
    let result = transfer::copy(
        CopyRequest {
            from,
            to,
            target,
            overrides: args.transfer.options(),
            overwrite: args.overwrite,
            state_dir,
        },
        progress.clone(),
    )
    .await;
    progress.finish();
    let report = result?;
    print_copy_report(&report, args.json)?;
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
    if profile.backup_storage != profile.milvus_storage {
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
