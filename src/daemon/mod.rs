//! `serve`: the migration daemon. A tonic gRPC service (`proto/milvus_migrate/daemon.proto`)
//! takes migration and copy jobs, runs them under shared limits, persists them so that they
//! survive a restart, and reports on them (watch streams, the gRPC health service, Prometheus
//! metrics).
//!
//! Owns the listener, authentication and shutdown. The jobs themselves are [`jobs`]; the state
//! directory is [`state`]; the flows they run are [`crate::migrate`] and [`crate::transfer`].

pub mod auth;
pub mod jobs;
pub mod metrics;
pub mod service;
pub mod state;

use std::net::SocketAddr;
use std::num::NonZeroU64;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::throttle::ByteLimiter;

/// The daemon's generated API.
#[allow(missing_docs, clippy::all, clippy::pedantic)]
pub mod api {
    tonic::include_proto!("milvus_migrate.daemon.v1");
}

/// Errors of the daemon.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// The state directory cannot be used.
    #[error("state directory {}: {source}", path.display())]
    State {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The token cannot be read.
    #[error("bearer token from {from}: {reason}")]
    Token { from: String, reason: String },
    /// A non-loopback address without a token.
    #[error(
        "refusing to listen on {addr} without a bearer token: anyone who can reach it could \
         run jobs with your profiles; pass --token-file FILE (or set MILVUS_MIGRATE_TOKEN), or \
         listen on 127.0.0.1"
    )]
    NoToken { addr: SocketAddr },
    /// An address cannot be listened on.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    /// The TLS certificate or key cannot be used.
    #[error("TLS: {0}")]
    Tls(String),
    /// The gRPC server stopped with an error.
    #[error("gRPC server: {0}")]
    Serve(String),
    /// A request that cannot be right (INVALID_ARGUMENT).
    #[error("{0}")]
    BadRequest(String),
    /// No such job (NOT_FOUND).
    #[error("no job `{0}`")]
    NotFound(String),
    /// Something the request needs cannot be reached now (UNAVAILABLE).
    #[error("{0}")]
    Unavailable(String),
}

impl DaemonError {
    fn state(path: &Path, source: std::io::Error) -> Self {
        Self::State {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// How the daemon runs.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    /// gRPC address.
    pub listen: SocketAddr,
    /// State directory.
    pub state_dir: PathBuf,
    /// Prometheus endpoint address; `None` = off.
    pub metrics_listen: Option<SocketAddr>,
    /// Jobs running at once.
    pub max_jobs: usize,
    /// Byte-rate limit shared by all jobs.
    pub bw_limit: Option<NonZeroU64>,
    /// Bearer token (required for a non-loopback listener).
    pub token: Option<Arc<str>>,
    /// TLS certificate and key (PEM).
    pub tls: Option<(PathBuf, PathBuf)>,
}

/// Where the daemon listens, once it does.
#[derive(Debug, Clone, Copy)]
pub struct Bound {
    /// gRPC.
    pub grpc: SocketAddr,
    /// Metrics, when on.
    pub metrics: Option<SocketAddr>,
}

/// Runs the daemon until SIGTERM or SIGINT; `ready` is called once both listeners are bound.
///
/// # Errors
/// [`DaemonError`] when it cannot start (address, token, TLS, state directory) or the server
/// fails.
pub async fn serve(cfg: ServeConfig, ready: impl FnOnce(Bound)) -> Result<(), DaemonError> {
    use tonic::transport::{Identity, Server, ServerTlsConfig};

    crate::install_tls_provider();
    if !cfg.listen.ip().is_loopback() && cfg.token.is_none() {
        return Err(DaemonError::NoToken { addr: cfg.listen });
    }
    let tls = match &cfg.tls {
        Some((cert, key)) => {
            let read = |p: &Path| {
                std::fs::read(p).map_err(|e| DaemonError::Tls(format!("{}: {e}", p.display())))
            };
            Some(ServerTlsConfig::new().identity(Identity::from_pem(read(cert)?, read(key)?)))
        }
        None => None,
    };
    let state = state::StateDir::open(&cfg.state_dir)?;
    let grpc = tokio::net::TcpListener::bind(cfg.listen)
        .await
        .map_err(|source| DaemonError::Listen {
            addr: cfg.listen,
            source,
        })?;
    let metrics_listener = match cfg.metrics_listen {
        Some(addr) => Some(
            tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|source| DaemonError::Listen { addr, source })?,
        ),
        None => None,
    };
    let bound = Bound {
        grpc: grpc.local_addr().unwrap_or(cfg.listen),
        metrics: metrics_listener.as_ref().and_then(|l| l.local_addr().ok()),
    };

    let shared = cfg.bw_limit.map(|r| Arc::new(ByteLimiter::new(r)));
    let manager = jobs::Manager::start(state, cfg.max_jobs, shared)?;
    let stopping = manager.stopping();

    let mut metrics_task = None;
    if let Some(listener) = metrics_listener {
        let m = Arc::clone(&manager);
        let render: Arc<dyn Fn() -> String + Send + Sync> =
            Arc::new(move || m.metrics.render(&m.counts()));
        metrics_task = Some(tokio::spawn(metrics::serve(
            listener,
            render,
            cfg.token.clone(),
            stopping.clone(),
        )));
    }

    let (health, health_service) = tonic_health::server::health_reporter();
    health
        .set_serving::<api::migration_daemon_server::MigrationDaemonServer<service::Service>>()
        .await;
    let daemon = api::migration_daemon_server::MigrationDaemonServer::with_interceptor(
        service::Service::new(Arc::clone(&manager)),
        auth::interceptor(cfg.token.clone()),
    );
    let mut server = Server::builder();
    if let Some(tls) = tls {
        server = server
            .tls_config(tls)
            .map_err(|e| DaemonError::Tls(e.to_string()))?;
    }
    tracing::info!(grpc = %bound.grpc, metrics = ?bound.metrics, "daemon listening");
    ready(bound);

    let m = Arc::clone(&manager);
    let signal = async move {
        wait_for_signal().await;
        tracing::info!("shutting down: no new requests; running jobs stop at a safe point");
        // Jobs and watch streams stop first, so the server's drain does not wait for them.
        m.stopping().cancel();
    };
    let served = server
        .add_service(health_service)
        .add_service(daemon)
        .serve_with_incoming_shutdown(tokio_stream::wrappers::TcpListenerStream::new(grpc), signal)
        .await;
    manager.shutdown().await;
    if let Some(t) = metrics_task {
        let _ = t.await;
    }
    served.map_err(|e| DaemonError::Serve(e.to_string()))
}

async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(mut term), Ok(mut int)) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        }
        _ => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
