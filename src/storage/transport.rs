//! The HTTP transport under every store request: HTTP/1.1 (hyper) over TCP, with rustls for
//! `https` endpoints, one connection pool per store.
//!
//! Owns connections: how they are made (connect timeout, TCP keepalive, `TCP_NODELAY`), how
//! long one may stall, and how reads acknowledge what they received. [`super::http`] puts the
//! request limit and error capture in front of it.
//!
//! Why not reqwest, `object_store`'s default: an object store answers a GET in several writes,
//! and a server that leaves Nagle's algorithm on (s3s-fs, many Python and Rust servers) holds
//! back the tail of the response until the client acknowledges what came first. Linux delays
//! that ACK by up to 40 ms on a keep-alive connection, waiting to piggyback it on the next
//! request, which never comes before the response ends. A 64 KiB GET that takes 1 ms on a
//! fresh connection then takes 15-40 ms on a reused one, and small objects copy at a
//! fraction of the store's speed. Here each read that returns data sets `TCP_QUICKACK`, which
//! sends the pending ACK at once and leaves delayed-ACK mode. reqwest does not expose its
//! sockets, so this transport is built on hyper directly.
//!
//! When the environment names an HTTP(S) proxy (`HTTPS_PROXY`, `HTTP_PROXY`, `ALL_PROXY`, in
//! either case), stores are reached through reqwest instead, which implements proxies and
//! `NO_PROXY` (see [`proxy_configured`]).
//!
//! Certificates are checked as reqwest checks them: rustls with the platform verifier (the
//! system's CA store; `SSL_CERT_FILE` / `SSL_CERT_DIR` point it elsewhere).

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use http::Uri;
use http::header::{HeaderValue, USER_AGENT};
use http_body_util::BodyExt;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::{Connected, Connection, HttpConnector};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use object_store::client::{
    HttpError, HttpErrorKind, HttpRequest, HttpRequestBody, HttpResponse, HttpResponseBody,
    HttpService,
};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::Sleep;

use super::Timeouts;
use super::error::causes;

/// Idle pooled connections are closed after this long, before a server's own keep-alive
/// timeout (commonly 60 s or more) can close one under a new request.
const POOL_IDLE: Duration = Duration::from_secs(30);
/// Idle connections kept per host: one per request in flight at the highest concurrency.
const POOL_MAX_IDLE: usize = 256;
/// TCP keepalive probes on an idle connection: first after, then every, this long.
const TCP_KEEPALIVE: Duration = Duration::from_secs(15);
const TCP_KEEPALIVE_PROBES: u32 = 3;
/// Sent data left unacknowledged this long closes the connection (`TCP_USER_TIMEOUT`).
const TCP_USER_TIMEOUT: Duration = Duration::from_secs(30);

const AGENT: &str = concat!("milvus-migrate/", env!("CARGO_PKG_VERSION"));

/// Whether the environment names a proxy for `scheme` (`http` or `https`).
pub(crate) fn proxy_configured(scheme: &str) -> bool {
    let names: &[&str] = if scheme == "https" {
        &["HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"]
    } else {
        &["HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"]
    };
    names
        .iter()
        .any(|n| std::env::var_os(n).is_some_and(|v| !v.is_empty()))
}

/// An [`HttpService`] over hyper's pooled HTTP/1.1 client.
#[derive(Debug)]
pub(crate) struct Transport {
    client: Client<hyper_rustls::HttpsConnector<TcpConnector>, HttpRequestBody>,
}

impl Transport {
    /// A transport with the given timeouts; `allow_http` admits plain-`http` endpoints.
    ///
    /// # Errors
    /// The system's certificate store cannot be loaded.
    pub(crate) fn new(timeouts: Timeouts, allow_http: bool) -> Result<Self, rustls::Error> {
        let mut tcp = HttpConnector::new();
        tcp.enforce_http(false);
        tcp.set_nodelay(true);
        tcp.set_connect_timeout(Some(timeouts.connect));
        tcp.set_keepalive(Some(TCP_KEEPALIVE));
        tcp.set_keepalive_interval(Some(TCP_KEEPALIVE));
        tcp.set_keepalive_retries(Some(TCP_KEEPALIVE_PROBES));
        tcp.set_tcp_user_timeout(Some(TCP_USER_TIMEOUT));
        let tcp = TcpConnector {
            inner: tcp,
            stall: timeouts.read,
        };

        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let tls = rustls_platform_verifier::BuilderVerifierExt::with_platform_verifier(
            rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()?,
        )?
        .with_no_client_auth();
        let https = hyper_rustls::HttpsConnectorBuilder::new().with_tls_config(tls);
        let https = if allow_http {
            https.https_or_http()
        } else {
            https.https_only()
        };
        let connector = https.enable_http1().wrap_connector(tcp);

        let client = Client::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(POOL_IDLE)
            .pool_max_idle_per_host(POOL_MAX_IDLE)
            .build(connector);
        Ok(Self { client })
    }
}

#[async_trait]
impl HttpService for Transport {
    async fn call(&self, mut req: HttpRequest) -> Result<HttpResponse, HttpError> {
        req.headers_mut()
            .entry(USER_AGENT)
            .or_insert(HeaderValue::from_static(AGENT));
        let response = self.client.request(req).await.map_err(|e| {
            let kind = if e.is_connect() {
                HttpErrorKind::Connect
            } else if timed_out(&e) {
                HttpErrorKind::Timeout
            } else {
                HttpErrorKind::Request
            };
            HttpError::new(kind, e)
        })?;
        let (parts, body) = response.into_parts();
        let body = body.map_err(|e| {
            let kind = if timed_out(&e) {
                HttpErrorKind::Timeout
            } else {
                HttpErrorKind::Request
            };
            HttpError::new(kind, e)
        });
        Ok(HttpResponse::from_parts(parts, HttpResponseBody::new(body)))
    }
}

/// Whether `e` comes from a connection that stalled (see [`Conn`]).
fn timed_out(e: &(dyn std::error::Error + 'static)) -> bool {
    causes(e).any(|c| {
        c.downcast_ref::<io::Error>()
            .is_some_and(|io| io.kind() == io::ErrorKind::TimedOut)
    })
}

/// Makes TCP connections (hyper-util's connector: resolution, connect timeout, socket
/// options) and wraps each in a [`Conn`].
#[derive(Debug, Clone)]
pub(crate) struct TcpConnector {
    inner: HttpConnector,
    stall: Duration,
}

type ConnectFuture = Pin<
    Box<
        dyn Future<Output = Result<TokioIo<Conn>, Box<dyn std::error::Error + Send + Sync>>> + Send,
    >,
>;

impl tower_service::Service<Uri> for TcpConnector {
    type Response = TokioIo<Conn>;
    type Error = Box<dyn std::error::Error + Send + Sync>;
    type Future = ConnectFuture;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        tower_service::Service::<Uri>::poll_ready(&mut self.inner, cx).map_err(Into::into)
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let connecting = tower_service::Service::<Uri>::call(&mut self.inner, uri);
        let stall = self.stall;
        Box::pin(async move {
            let tcp = connecting.await?.into_inner();
            Ok(TokioIo::new(Conn::new(tcp, stall)))
        })
    }
}

/// One TCP connection: acknowledges every read at once (`TCP_QUICKACK`, Linux) and fails a
/// read with `TimedOut` when the connection has made no progress either way for `stall`.
///
/// The stall clock restarts on every read or write that moves bytes. Its timer is armed only
/// while a read waits, and is re-armed lazily, so moving data costs one `Instant::now` per
/// call rather than a timer per call.
#[derive(Debug)]
pub(crate) struct Conn {
    tcp: TcpStream,
    stall: Duration,
    last_progress: Instant,
    timer: Option<Pin<Box<Sleep>>>,
}

impl Conn {
    fn new(tcp: TcpStream, stall: Duration) -> Self {
        Self {
            tcp,
            stall,
            last_progress: Instant::now(),
            timer: None,
        }
    }

    fn progressed(&mut self) {
        self.last_progress = Instant::now();
    }

    /// Polls the stall timer; `Ready` when the connection has made no progress for `stall`.
    /// The deadline only moves forward, so a timer armed earlier fires early at worst, and is
    /// re-armed then.
    fn poll_stalled(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let deadline = tokio::time::Instant::from_std(self.last_progress + self.stall);
        let timer = self
            .timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        loop {
            if timer.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            if timer.deadline() >= deadline {
                return Poll::Ready(());
            }
            timer.as_mut().reset(deadline);
        }
    }

    #[cfg(any(target_os = "linux", target_os = "android"))]
    fn ack_now(&self) {
        // Best effort: an error leaves the kernel's default ACK timing.
        let _ = socket2::SockRef::from(&self.tcp).set_tcp_quickack(true);
    }

    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    fn ack_now(&self) {}
}

impl AsyncRead for Conn {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        let before = buf.filled().len();
        match Pin::new(&mut this.tcp).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if buf.filled().len() > before {
                    this.progressed();
                    this.ack_now();
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => match this.poll_stalled(cx) {
                Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!(
                        "the connection moved no data for {} s",
                        this.stall.as_secs_f64()
                    ),
                ))),
                Poll::Pending => Poll::Pending,
            },
        }
    }
}

impl AsyncWrite for Conn {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        let r = Pin::new(&mut this.tcp).poll_write(cx, buf);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            this.progressed();
        }
        r
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        let r = Pin::new(&mut this.tcp).poll_write_vectored(cx, bufs);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            this.progressed();
        }
        r
    }

    fn is_write_vectored(&self) -> bool {
        self.tcp.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tcp).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tcp).poll_shutdown(cx)
    }
}

impl Connection for Conn {
    fn connected(&self) -> Connected {
        self.tcp.connected()
    }
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, SocketAddr};

    use tokio::io::AsyncReadExt;
    use tokio::net::TcpListener;

    use super::*;
    use crate::storage::error::{StorageErrorKind, classify};

    fn timeouts(read: Duration) -> Timeouts {
        Timeouts {
            connect: Duration::from_secs(5),
            read,
        }
    }

    /// The error a GET of `url` ends with.
    async fn get_error(t: &Transport, url: &str) -> HttpError {
        let req = http::Request::get(url)
            .body(HttpRequestBody::empty())
            .unwrap();
        t.call(req).await.expect_err("the GET must fail")
    }

    fn as_store_error(e: HttpError) -> object_store::Error {
        object_store::Error::Generic {
            store: "S3",
            source: Box::new(e),
        }
    }

    /// A server that accepts connections, reads what comes, and never answers.
    async fn silent_server() -> SocketAddr {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut buf = [0u8; 1024];
                    while matches!(s.read(&mut buf).await, Ok(n) if n > 0) {}
                });
            }
        });
        addr
    }

    #[tokio::test]
    async fn a_connection_without_progress_times_out_as_transient() {
        let addr = silent_server().await;
        let t = Transport::new(timeouts(Duration::from_millis(300)), true).unwrap();
        let e = get_error(&t, &format!("http://{addr}/b/k")).await;
        assert!(matches!(e.kind(), HttpErrorKind::Timeout), "{e:?}");
        assert_eq!(classify(&as_store_error(e)), StorageErrorKind::Transient);
    }

    #[tokio::test]
    async fn plain_http_is_refused_unless_allowed() {
        let addr = silent_server().await;
        let t = Transport::new(timeouts(Duration::from_secs(5)), false).unwrap();
        let e = get_error(&t, &format!("http://{addr}/b/k")).await;
        assert!(e.to_string().contains("Connect"), "{e}");
    }

    #[tokio::test]
    async fn an_untrusted_certificate_is_fatal_and_says_so() {
        crate::install_tls_provider();
        let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                vec![cert.cert.der().clone()],
                rustls::pki_types::PrivateKeyDer::Pkcs8(cert.signing_key.serialize_der().into()),
            )
            .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((s, _)) = listener.accept().await {
                let _ = acceptor.accept(s).await;
            }
        });
        let t = Transport::new(timeouts(Duration::from_secs(5)), false).unwrap();
        let e = get_error(&t, &format!("https://localhost:{port}/b/k")).await;
        let e = as_store_error(e);
        assert_eq!(classify(&e), StorageErrorKind::Fatal);
        let message =
            crate::storage::StorageError::from_object_store("s3://b", "GET", "k", e).to_string();
        assert!(message.contains("not trusted"), "{message}");
    }
}
