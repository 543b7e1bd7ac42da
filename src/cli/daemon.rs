//! `serve` (the daemon) and `jobs` (its client): flags, the connection to the daemon, and how
//! jobs are printed and followed.

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use milvus_migrate::copy::{CopyObserver, PlanSummary};
use milvus_migrate::daemon::api::migration_daemon_client::MigrationDaemonClient;
use milvus_migrate::daemon::api::{self, profile::Source};
use milvus_migrate::daemon::state::JobState;
use milvus_migrate::daemon::{self, ServeConfig, auth, jobs};
use serde_json::{Value, json};
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Certificate, Channel, ClientTlsConfig};

use super::{EXIT_FATAL, EXIT_OK, MigrateOptions, RateArg, TransferFlags, progress};

/// `serve` flags.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// gRPC address. A non-loopback address needs a token.
    #[arg(long, default_value = "127.0.0.1:7419")]
    pub listen: SocketAddr,
    /// State directory (jobs, progress, copy ledgers). Default: the state directory of the
    /// one-shot commands, `daemon/` inside it.
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// Prometheus endpoint (`GET /metrics`) address, or `off`.
    #[arg(long, default_value = "127.0.0.1:7420")]
    pub metrics_listen: String,
    /// Jobs running at once; the others wait in the queue.
    #[arg(long, default_value_t = 2)]
    pub max_jobs: usize,
    /// Byte-rate limit shared by all jobs, e.g. 200MiB/s.
    #[arg(long, value_parser = super::parse_rate)]
    pub bwlimit: Option<RateArg>,
    /// File holding the bearer token every request must carry. Default: $MILVUS_MIGRATE_TOKEN.
    #[arg(long, value_name = "FILE")]
    pub token_file: Option<PathBuf>,
    /// TLS certificate (PEM); with --tls-key, gRPC is served over TLS.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// TLS private key (PEM).
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
}

/// Runs the daemon.
pub async fn serve(args: ServeArgs) -> Result<u8> {
    let metrics_listen = match args.metrics_listen.trim() {
        "off" | "" => None,
        a => Some(
            a.parse::<SocketAddr>()
                .with_context(|| format!("--metrics-listen `{a}` is not an address:port"))?,
        ),
    };
    let state_dir = match args.state_dir {
        Some(d) => d,
        None => super::default_state_dir()
            .context("no state directory: pass --state-dir DIR")?
            .join("daemon"),
    };
    let token = auth::load_token(args.token_file.as_deref())?;
    let cfg = ServeConfig {
        listen: args.listen,
        state_dir,
        metrics_listen,
        max_jobs: args.max_jobs,
        bw_limit: args
            .bwlimit
            .and_then(|r| r.0)
            .and_then(std::num::NonZeroU64::new),
        token,
        tls: args.tls_cert.zip(args.tls_key),
    };
    daemon::serve(cfg, |bound| {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "listening on {}", bound.grpc);
        let _ = match bound.metrics {
            Some(m) => writeln!(out, "metrics on {m}"),
            None => writeln!(out, "metrics off"),
        };
        let _ = out.flush();
    })
    .await?;
    Ok(EXIT_OK)
}

/// `jobs` flags.
#[derive(Debug, Args)]
pub struct JobsArgs {
    /// The daemon: http://HOST:PORT, or https:// for TLS.
    #[arg(
        long,
        env = "MILVUS_MIGRATE_DAEMON",
        default_value = "http://127.0.0.1:7419"
    )]
    pub daemon: String,
    /// File holding the daemon's bearer token. Default: $MILVUS_MIGRATE_TOKEN.
    #[arg(long, value_name = "FILE")]
    pub token_file: Option<PathBuf>,
    /// CA certificate (PEM) to trust for an https:// daemon (default: the system's roots).
    #[arg(long, value_name = "FILE")]
    pub ca_cert: Option<PathBuf>,
    #[command(subcommand)]
    pub command: JobsCommand,
}

/// `jobs` subcommands.
#[derive(Debug, Subcommand)]
pub enum JobsCommand {
    /// Queue a job.
    #[command(subcommand)]
    Submit(SubmitCommand),
    /// Jobs, newest first.
    List {
        /// Only jobs in these states (queued, running, cancelling, succeeded, failed,
        /// cancelled); comma-separated.
        #[arg(long, value_delimiter = ',')]
        state: Vec<String>,
        #[command(flatten)]
        out: OutFlags,
    },
    /// One job.
    Get {
        id: String,
        #[command(flatten)]
        out: OutFlags,
    },
    /// Ask a job to stop at a safe point; what it left is removed.
    Cancel {
        id: String,
        #[command(flatten)]
        out: OutFlags,
    },
    /// Follow a job to its end with a progress display; exit 0 when it succeeded.
    Watch {
        id: String,
        #[command(flatten)]
        out: OutFlags,
    },
}

/// Output flags.
#[derive(Debug, Args, Clone, Copy)]
pub struct OutFlags {
    /// Print the job as JSON on stdout.
    #[arg(long)]
    pub json: bool,
    /// No progress display.
    #[arg(short, long)]
    pub quiet: bool,
}

/// `jobs submit` subcommands.
#[derive(Debug, Subcommand)]
pub enum SubmitCommand {
    /// A migration (the `migrate` command, run by the daemon).
    Migrate(Box<SubmitMigrateArgs>),
    /// A copy of a backup (the `copy` command, run by the daemon).
    Copy(Box<SubmitCopyArgs>),
}

/// How a submission is sent and followed.
#[derive(Debug, Args)]
pub struct SubmitFlags {
    /// Send the profiles' text instead of their paths (for a daemon on another machine).
    #[arg(long)]
    pub inline: bool,
    /// Follow the job after submitting it.
    #[arg(long)]
    pub watch: bool,
    #[command(flatten)]
    pub out: OutFlags,
}

/// `jobs submit migrate`.
#[derive(Debug, Args)]
pub struct SubmitMigrateArgs {
    #[command(flatten)]
    pub what: MigrateOptions,
    #[command(flatten)]
    pub submit: SubmitFlags,
    #[command(flatten)]
    pub transfer: TransferFlags,
}

/// `jobs submit copy`.
#[derive(Debug, Args)]
pub struct SubmitCopyArgs {
    /// Source profile.
    #[arg(long, value_name = "FILE")]
    pub from: PathBuf,
    /// Destination profile.
    #[arg(long, value_name = "FILE")]
    pub to: PathBuf,
    /// Backup name.
    #[arg(short = 'n', long, value_name = "NAME")]
    pub name: String,
    /// Replace a different backup of that name at the destination.
    #[arg(long)]
    pub overwrite: bool,
    #[command(flatten)]
    pub submit: SubmitFlags,
    #[command(flatten)]
    pub transfer: TransferFlags,
}

/// Adds the bearer token to every request.
#[derive(Clone)]
pub struct Bearer(Option<tonic::metadata::MetadataValue<tonic::metadata::Ascii>>);

impl Interceptor for Bearer {
    fn call(&mut self, mut req: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(v) = &self.0 {
            req.metadata_mut().insert("authorization", v.clone());
        }
        Ok(req)
    }
}

type Client = MigrationDaemonClient<InterceptedService<Channel, Bearer>>;

async fn connect(args: &JobsArgs) -> Result<Client> {
    let token = auth::load_token(args.token_file.as_deref())?;
    let bearer = match token {
        Some(t) => Some(
            format!("Bearer {t}")
                .parse()
                .map_err(|_| anyhow::anyhow!("the token holds characters a header cannot"))?,
        ),
        None => None,
    };
    let mut endpoint = Channel::from_shared(args.daemon.clone())
        .with_context(|| format!("--daemon `{}` is not a URL", args.daemon))?;
    if args.daemon.starts_with("https://") {
        let mut tls = ClientTlsConfig::new();
        tls = match &args.ca_cert {
            Some(path) => {
                let pem = std::fs::read(path)
                    .with_context(|| format!("cannot read --ca-cert {}", path.display()))?;
                tls.ca_certificate(Certificate::from_pem(pem))
            }
            None => tls.with_native_roots(),
        };
        endpoint = endpoint.tls_config(tls).context("TLS settings")?;
    }
    let channel = endpoint
        .connect_timeout(std::time::Duration::from_secs(10))
        .connect()
        .await
        .with_context(|| format!("cannot reach the daemon at {}", args.daemon))?;
    Ok(MigrationDaemonClient::with_interceptor(
        channel,
        Bearer(bearer),
    ))
}

/// `INVALID_ARGUMENT` for `InvalidArgument`.
fn code_name(code: tonic::Code) -> String {
    let mut out = String::new();
    for (i, c) in format!("{code:?}").chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            out.push('_');
        }
        out.push(c.to_ascii_uppercase());
    }
    out
}

fn refused(s: tonic::Status) -> anyhow::Error {
    anyhow::anyhow!("daemon refused: {}: {}", code_name(s.code()), s.message())
}

fn profile(path: &Path, inline: bool) -> Result<api::Profile> {
    let source = if inline {
        Source::Yaml(
            std::fs::read_to_string(path)
                .with_context(|| format!("cannot read profile {}", path.display()))?,
        )
    } else {
        // The daemon reads it: make it absolute from here (same machine, usually).
        let abs = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
        Source::Path(abs.display().to_string())
    };
    Ok(api::Profile {
        source: Some(source),
    })
}

fn settings(t: &TransferFlags) -> api::TransferSettings {
    api::TransferSettings {
        concurrency: t.concurrency.map(|v| v as u32),
        parts_per_object: t.parts_per_object.map(|v| v as u32),
        part_size: t.part_size.map(|v| v.to_string()),
        multipart_threshold: t.multipart_threshold.map(|v| v.to_string()),
        max_buffer_memory: t.max_buffer_memory.map(|v| v.to_string()),
        bw_limit: t.bwlimit.map(|r| match r.0 {
            Some(b) => format!("{b}/s"),
            None => "off".into(),
        }),
        request_rate: t.request_rate,
        retries: t.retries,
    }
}

/// A job as JSON: the API's fields, with the spec and report parsed.
pub fn job_json(j: &api::Job) -> Value {
    let parse = |s: &str| serde_json::from_str::<Value>(s).unwrap_or(Value::Null);
    let p = j.progress.unwrap_or_default();
    json!({
        "id": j.id,
        "kind": j.kind,
        "state": state_name(j.state),
        "phase": j.phase,
        "created_at": j.created_at,
        "started_at": j.started_at,
        "finished_at": j.finished_at,
        "attempts": j.attempts,
        "error": j.error,
        "message": j.message,
        "spec": parse(&j.spec_json),
        "progress": {
            "bytes_done": p.bytes_done,
            "bytes_total": p.bytes_total,
            "objects_done": p.objects_done,
            "objects_total": p.objects_total,
            "objects_skipped": p.objects_skipped,
            "objects_failed": p.objects_failed,
            "retries": p.retries,
            "rows_imported": p.rows_imported,
        },
        "report": if j.report_json.is_empty() { Value::Null } else { parse(&j.report_json) },
    })
}

fn state_name(s: i32) -> &'static str {
    api::JobState::try_from(s)
        .ok()
        .and_then(jobs::state_from_proto)
        .map_or("unknown", JobState::as_str)
}

fn parse_state(s: &str) -> Result<i32> {
    let want = s.trim().to_ascii_lowercase();
    match JobState::ALL.iter().find(|st| st.as_str() == want) {
        Some(st) => Ok(jobs::state_to_proto(*st) as i32),
        None => bail!(
            "unknown state `{s}`: {}",
            JobState::ALL.map(JobState::as_str).join(", ")
        ),
    }
}

fn line(j: &api::Job) -> String {
    let p = j.progress.unwrap_or_default();
    let mut s = format!(
        "{}  {:<7}  {:<10}  {:<9}  {}/{} objects  {}",
        j.id,
        j.kind,
        state_name(j.state),
        if j.phase.is_empty() { "-" } else { &j.phase },
        p.objects_done,
        p.objects_total,
        indicatif::HumanBytes(p.bytes_done),
    );
    if !j.error.is_empty() {
        s.push_str(&format!("  {}", j.error));
    } else if !j.message.is_empty() {
        s.push_str(&format!("  {}", j.message));
    }
    s
}

fn print_job(j: &api::Job, out: OutFlags) -> Result<()> {
    if out.json {
        println!("{}", serde_json::to_string_pretty(&job_json(j))?);
    } else {
        println!("{}", line(j));
    }
    Ok(())
}

fn is_success(j: &api::Job) -> bool {
    j.state == api::JobState::Succeeded as i32
}

/// Runs a `jobs` command.
pub async fn jobs(args: JobsArgs) -> Result<u8> {
    let mut client = connect(&args).await?;
    match &args.command {
        JobsCommand::Submit(cmd) => {
            let (job, submit) = match cmd {
                SubmitCommand::Migrate(a) => {
                    let w = &a.what;
                    let req = api::SubmitMigrationRequest {
                        from: Some(profile(&w.from, a.submit.inline)?),
                        to: Some(profile(&w.to, a.submit.inline)?),
                        collections: w.collections.clone(),
                        databases: w.databases.clone(),
                        name: w.name.clone().unwrap_or_default(),
                        suffix: w.suffix.clone().unwrap_or_default(),
                        rename: w.rename.clone(),
                        rebuild_index: Some(!w.no_rebuild_index),
                        load: Some(!w.no_load),
                        drop_existing: w.drop_existing,
                        keep_backup: w.keep_backup,
                        direct: w.direct,
                        transfer: Some(settings(&a.transfer)),
                        keep_partial: w.keep_partial,
                        verify: w.check.mode.to_string(),
                        verify_sample: Some(w.check.sample),
                        verify_page: w.check.page,
                        sequential: w.sequential,
                        all: w.all,
                        rbac: w.rbac.rbac,
                        // The daemon reads it: absolute from here, as the profiles' paths.
                        rbac_passwords: w.rbac.rbac_passwords.as_deref().map_or(
                            String::new(),
                            |p| {
                                std::path::absolute(p)
                                    .unwrap_or_else(|_| p.to_path_buf())
                                    .display()
                                    .to_string()
                            },
                        ),
                    };
                    let job = client.submit_migration(req).await.map_err(refused)?;
                    (job.into_inner(), &a.submit)
                }
                SubmitCommand::Copy(a) => {
                    let req = api::SubmitCopyRequest {
                        from: Some(profile(&a.from, a.submit.inline)?),
                        to: Some(profile(&a.to, a.submit.inline)?),
                        name: a.name.clone(),
                        overwrite: a.overwrite,
                        transfer: Some(settings(&a.transfer)),
                    };
                    let job = client.submit_copy(req).await.map_err(refused)?;
                    (job.into_inner(), &a.submit)
                }
            };
            if submit.watch {
                eprintln!("submitted job {}", job.id);
                return watch(&args, &mut client, &job.id, submit.out).await;
            }
            if submit.out.json {
                print_job(&job, submit.out)?;
            } else {
                println!("{}", job.id);
            }
            Ok(EXIT_OK)
        }
        JobsCommand::List { state, out } => {
            let states = state
                .iter()
                .map(|s| parse_state(s))
                .collect::<Result<Vec<_>>>()?;
            let jobs = client
                .list_jobs(api::ListJobsRequest { states })
                .await
                .map_err(refused)?
                .into_inner()
                .jobs;
            if out.json {
                let all: Vec<Value> = jobs.iter().map(job_json).collect();
                println!("{}", serde_json::to_string_pretty(&all)?);
            } else {
                for j in &jobs {
                    println!("{}", line(j));
                }
            }
            Ok(EXIT_OK)
        }
        JobsCommand::Get { id, out } => {
            let job = client
                .get_job(api::GetJobRequest { id: id.clone() })
                .await
                .map_err(refused)?
                .into_inner();
            print_job(&job, *out)?;
            Ok(EXIT_OK)
        }
        JobsCommand::Cancel { id, out } => {
            let job = client
                .cancel_job(api::CancelJobRequest { id: id.clone() })
                .await
                .map_err(refused)?
                .into_inner();
            print_job(&job, *out)?;
            Ok(EXIT_OK)
        }
        JobsCommand::Watch { id, out } => watch(&args, &mut client, id, *out).await,
    }
}

/// Follows a job to its end; the exit code says how it ended.
async fn watch(args: &JobsArgs, client: &mut Client, id: &str, out: OutFlags) -> Result<u8> {
    let display = progress::Progress::start(progress::Mode::detect(out.quiet));
    let mut follower = Follower::new(Arc::clone(&display));
    let mut last: Option<api::Job> = None;
    // A daemon restarting (SIGTERM, then started again by its supervisor) ends the stream:
    // follow the job again once it is back, for up to RECONNECT_FOR.
    let mut gone_since: Option<std::time::Instant> = None;
    let result = 'follow: loop {
        let stream = match client
            .watch_job(api::WatchJobRequest { id: id.to_string() })
            .await
        {
            Ok(s) => Some(s.into_inner()),
            Err(s) if reconnectable(&s) => None,
            Err(s) => break Err(refused(s)),
        };
        if let Some(mut stream) = stream {
            gone_since = None;
            loop {
                match stream.message().await {
                    Ok(Some(event)) => {
                        if let Some(job) = &event.job {
                            follower.update(job, &event);
                        }
                        last = event.job;
                    }
                    Ok(None) if last.as_ref().is_some_and(is_finished) => break 'follow Ok(()),
                    Ok(None) => break,
                    Err(s) if reconnectable(&s) => break,
                    Err(s) => break 'follow Err(refused(s)),
                }
            }
        }
        if gone_since.is_none() {
            display.step("the daemon went away; following the job again when it is back");
        }
        let since = *gone_since.get_or_insert_with(std::time::Instant::now);
        if since.elapsed() > RECONNECT_FOR {
            break Ok(());
        }
        tokio::time::sleep(std::time::Duration::from_secs(2)).await;
        if let Ok(c) = connect(args).await {
            *client = c;
        }
    };
    display.finish();
    result?;
    let Some(job) = last else {
        bail!("the daemon sent nothing about job {id}");
    };
    if !is_finished(&job) {
        bail!(
            "the daemon stopped sending before job {id} ended (state {}); `jobs watch {id}` \
             follows it again",
            state_name(job.state)
        );
    }
    if out.json {
        print_job(&job, out)?;
    } else {
        println!("{}", line(&job));
        if let Some(report) = serde_json::from_str::<Value>(&job.report_json)
            .ok()
            .filter(|_| !out.quiet)
        {
            print_summary(&report);
        }
    }
    Ok(if is_success(&job) {
        EXIT_OK
    } else {
        EXIT_FATAL
    })
}

fn print_summary(report: &Value) {
    if let Some(colls) = report["collections"].as_array() {
        for c in colls {
            eprintln!(
                "{} -> {}: rows A {} / B {}{}",
                c["source"].as_str().unwrap_or("?"),
                c["target"].as_str().unwrap_or("?"),
                c["rows_a"],
                c["rows_b"],
                if c["verified"] == true {
                    ", verified"
                } else {
                    ", not verified"
                }
            );
        }
    }
}

/// How long `watch` waits for a daemon that went away to come back.
const RECONNECT_FOR: std::time::Duration = std::time::Duration::from_secs(60);

fn is_finished(job: &api::Job) -> bool {
    matches!(
        api::JobState::try_from(job.state),
        Ok(api::JobState::Succeeded | api::JobState::Failed | api::JobState::Cancelled)
    )
}

/// A daemon shutting down, restarting, or unreachable for a moment.
fn reconnectable(s: &tonic::Status) -> bool {
    matches!(s.code(), tonic::Code::Unavailable | tonic::Code::Unknown)
}

/// Replays a job's progress on the same display as the one-shot commands.
struct Follower {
    display: Arc<progress::Progress>,
    last: api::Progress,
}

impl Follower {
    fn new(display: Arc<progress::Progress>) -> Self {
        Self {
            display,
            last: api::Progress::default(),
        }
    }

    fn update(&mut self, job: &api::Job, event: &api::JobEvent) {
        let p = job.progress.unwrap_or_default();
        let l = &self.last;
        let new_copy = p.bytes_total != l.bytes_total
            || p.objects_total != l.objects_total
            || p.bytes_done < l.bytes_done
            || p.objects_done < l.objects_done;
        if new_copy {
            // Totals are what is left to copy (the daemon has taken the skipped part out).
            self.display.planned(&PlanSummary {
                objects_total: p.objects_total,
                bytes_total: p.bytes_total,
                ..PlanSummary::default()
            });
            self.last = api::Progress {
                bytes_done: 0,
                objects_done: 0,
                ..p
            };
        }
        let l = &self.last;
        if p.bytes_done > l.bytes_done {
            self.display.bytes(p.bytes_done - l.bytes_done);
        }
        for _ in l.objects_done..p.objects_done {
            self.display.object_done("", 0);
        }
        self.last = p;
        match event.kind.as_str() {
            "phase" | "step" => self.display.step(&event.message),
            "error" => self.display.step(&format!("error: {}", event.message)),
            "state" => self.display.step(&format!(
                "job {}: {}{}",
                job.id,
                state_name(job.state),
                if job.error.is_empty() {
                    String::new()
                } else {
                    format!(": {}", job.error)
                }
            )),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_codes_are_printed_in_capitals() {
        assert_eq!(code_name(tonic::Code::InvalidArgument), "INVALID_ARGUMENT");
        assert_eq!(code_name(tonic::Code::NotFound), "NOT_FOUND");
        assert_eq!(code_name(tonic::Code::Unauthenticated), "UNAUTHENTICATED");
    }
}
