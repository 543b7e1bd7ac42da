//! The HTTP gate every object-store request passes through.
//!
//! Owns three things, in this order for each request: the process-wide request-rate limit, the
//! request counter, and the capture of error statuses. It wraps `object_store`'s reqwest client
//! (installed with `with_http_connector`), so it sees each real HTTP request, including every
//! part of a multipart upload and every page of a listing.
//!
//! Error capture: an error status (>= 400) from the store's own endpoint is turned into an
//! [`S3Status`] carried inside an `HttpError`, so the copier classifies failures by type
//! ([`super::error::classify`]) instead of by message. Requests to other hosts (credential
//! endpoints) pass through untouched. `object_store`'s own retries are disabled
//! (`max_retries = 0`): retrying is the copier's job, per part, with its own budget.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use base64::Engine as _;
use http::{HeaderName, HeaderValue};
use object_store::ClientOptions;
use object_store::client::{
    HttpClient, HttpConnector, HttpError, HttpErrorKind, HttpRequest, HttpResponse, HttpService,
    ReqwestConnector,
};

use super::Timeouts;
use super::error::S3Status;
use super::transport::{self, Transport};
use crate::throttle::RequestLimiter;

/// Shared by every store of one process: the request limit and the counters.
#[derive(Debug, Default)]
pub struct HttpGate {
    limiter: Option<RequestLimiter>,
    requests: AtomicU64,
    error_statuses: AtomicU64,
}

impl HttpGate {
    /// A gate with an optional request-rate limit.
    pub fn new(limiter: Option<RequestLimiter>) -> Arc<Self> {
        Arc::new(Self {
            limiter,
            ..Self::default()
        })
    }

    /// Requests sent so far, by every store using this gate.
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// Error statuses received so far.
    pub fn error_statuses(&self) -> u64 {
        self.error_statuses.load(Ordering::Relaxed)
    }
}

/// Connector that builds the store's HTTP client ([`Transport`], or reqwest through a proxy)
/// and wraps it in the gate.
#[derive(Debug)]
pub(crate) struct GatedConnector {
    pub gate: Arc<HttpGate>,
    /// Lower-case `host:port` (or domain suffix) of the store's endpoint; statuses from other
    /// hosts, such as credential endpoints, are not captured.
    pub authority: String,
    /// Connect and stall timeouts of the transport.
    pub timeouts: Timeouts,
    /// Whether the store's endpoint is plain `http`.
    pub plain_http: bool,
}

impl HttpConnector for GatedConnector {
    fn connect(&self, options: &ClientOptions) -> object_store::Result<HttpClient> {
        crate::install_tls_provider();
        let scheme = if self.plain_http { "http" } else { "https" };
        let inner = if transport::proxy_configured(scheme) {
            tracing::debug!(
                scheme,
                "proxy configured: stores are reached through reqwest"
            );
            ReqwestConnector::default().connect(options)?
        } else {
            let t = Transport::new(self.timeouts, self.plain_http).map_err(|e| {
                object_store::Error::Generic {
                    store: "HTTP",
                    source: format!("cannot load the system's TLS certificates: {e}").into(),
                }
            })?;
            HttpClient::new(t)
        };
        Ok(HttpClient::new(GatedService {
            inner,
            gate: Arc::clone(&self.gate),
            authority: self.authority.clone(),
        }))
    }
}

tokio::task_local! {
    /// The MD5 the body of the requests made in this scope must have, sent as `Content-MD5`
    /// (added here, after signing: S3 checks the header without it being signed). A task-local
    /// because `object_store` takes no per-request options for a multipart part.
    static CONTENT_MD5: [u8; 16];
}

/// Runs `request` (one store operation with one body) with `Content-MD5: md5` on its requests.
pub(crate) async fn with_content_md5<F: Future>(md5: [u8; 16], request: F) -> F::Output {
    CONTENT_MD5.scope(md5, request).await
}

#[derive(Debug)]
struct GatedService {
    inner: HttpClient,
    gate: Arc<HttpGate>,
    authority: String,
}

#[async_trait]
impl HttpService for GatedService {
    async fn call(&self, mut req: HttpRequest) -> Result<HttpResponse, HttpError> {
        if let Ok(md5) = CONTENT_MD5.try_with(|md5| *md5) {
            let value = base64::engine::general_purpose::STANDARD.encode(md5);
            let value = HeaderValue::from_str(&value).expect("base64 is a valid header value");
            req.headers_mut()
                .insert(HeaderName::from_static("content-md5"), value);
        }
        if let Some(limiter) = &self.gate.limiter {
            limiter.acquire().await;
        }
        self.gate.requests.fetch_add(1, Ordering::Relaxed);
        let ours = req.uri().authority().is_some_and(|a| {
            let a = a.as_str().to_ascii_lowercase();
            a == self.authority || a.ends_with(&format!(".{}", self.authority))
        });
        let response = self.inner.execute(req).await?;
        let status = response.status().as_u16();
        if !ours || status < 400 {
            return Ok(response);
        }
        self.gate.error_statuses.fetch_add(1, Ordering::Relaxed);
        // Error bodies are small XML documents; a body that cannot be read still yields the status.
        let body = response.into_body().bytes().await.unwrap_or_default();
        Err(HttpError::new(
            HttpErrorKind::Unknown,
            S3Status::from_body(status, &body),
        ))
    }
}
