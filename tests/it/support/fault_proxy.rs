//! A fault-injecting HTTP/1.1 proxy for S3 traffic in tests.
//!
//! Owns: a loopback listener, per-request parsing of the clients' HTTP/1.1 streams, the
//! [`FaultPlan`] deciding which request gets which fault, and counters.
//! Does not own: the upstream server (e.g. an [`super::s3::S3Server`]), TLS, HTTP/2, or
//! anything S3-specific beyond the XML error bodies it makes up.
//!
//! # Design
//! The client talks to the proxy with keep-alive as it likes. For every request read from
//! a client connection the proxy:
//! 1. reads the request head and decides, from the plan, what to do with it;
//! 2. for a fault that answers without the server (`Reset`, `Status`, a `Stall` ending in
//!    a reset), reads and discards the request body, then resets the connection or sends
//!    the made-up response (keeping the client connection alive);
//! 3. otherwise opens a fresh upstream connection, forwards the head with
//!    `Connection: close` (replacing the client's `Connection`/`Keep-Alive` headers and
//!    dropping `Expect: 100-continue`, which the proxy answers itself), streams the body
//!    (by `Content-Length`, or chunk by chunk for `Transfer-Encoding: chunked`, forwarded
//!    verbatim), then relays the response head and body back, streaming.
//!
//! Response bodies are framed by `Content-Length` or chunked encoding, so the client
//! connection stays usable afterwards and the proxy tells the client
//! `Connection: keep-alive`. Only a response without either framing (body until EOF,
//! which s3s-fs never sends) is relayed with `Connection: close` and the client
//! connection is closed after it. A client that asked for `Connection: close` (or spoke
//! HTTP/1.0) gets its connection closed after the response.
//!
//! Because the upstream connection is fresh per request, a fault can target one request
//! on a long-lived client connection, and an upstream connection never leaks state from
//! one request into the next. The `Host` header is forwarded unchanged, so SigV4
//! signatures made for the proxy's address still verify upstream (s3s-fs does not bind
//! signatures to its own port).
//!
//! "Reset" means: set `SO_LINGER` to 0 and drop the socket, so the client sees an RST
//! (`ECONNRESET`), not a clean FIN.
//!
//! Everything is deterministic: rules fire on counts, never at random.

#![allow(dead_code)]

use std::fmt;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};

/// Longest request or response head the proxy accepts.
const MAX_HEAD: usize = 64 * 1024;

/// Bytes of response body [`FaultAction::reset_mid_body`] relays before the reset.
pub const DEFAULT_MID_BODY_BYTES: u64 = 4 * 1024;

/// When a rule fires, counted over the requests that match it (1-based).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// Only the Nth matching request.
    Nth(u64),
    /// The Nth, 2Nth, 3Nth, ... matching request.
    EveryNth(u64),
    /// The first K matching requests.
    FirstK(u64),
    /// Every matching request.
    Always,
}

impl Trigger {
    fn fires(self, count: u64) -> bool {
        match self {
            Trigger::Nth(n) => count == n,
            Trigger::EveryNth(n) => n > 0 && count.is_multiple_of(n),
            Trigger::FirstK(k) => count <= k,
            Trigger::Always => true,
        }
    }
}

/// What a `Stall` does once its time is up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterStall {
    /// Reset the client connection; the server never sees the request.
    Reset,
    /// Forward the request as if nothing happened.
    Forward,
}

/// What happens to a request a rule fires on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FaultAction {
    /// Read the request, then reset the client connection without a response. The server
    /// never sees the request.
    Reset,
    /// Answer with this status and an S3 XML error body, without asking the server:
    /// 500 -> `InternalError`, 503 -> `SlowDown`, others -> see [`s3_error_code`].
    /// The client connection stays open.
    Status(u16),
    /// Like `Status` with an explicit S3 error code (e.g. 400, "RequestTimeout").
    S3Error { status: u16, code: String },
    /// Read the request, send nothing for `duration`, then reset or forward.
    Stall {
        duration: Duration,
        then: AfterStall,
    },
    /// Forward the request, relay the response head and the first `after_bytes` bytes of
    /// its body (raw, chunk framing included), then reset. A body shorter than
    /// `after_bytes` is cut in half; a response with an empty body is dropped whole (the
    /// server did the work, the client sees a reset and no response).
    ResetMidBody { after_bytes: u64 },
    /// Forward the request and relay the response with its `ETag` header replaced by 32 other
    /// hex digits: a store whose ETags are not MD5s (AWS SSE-KMS).
    RewriteEtag,
    /// Forward the request with the middle byte of its body flipped: bytes damaged on the way
    /// to the server. For `Content-Length` bodies (a chunked body could lose its framing).
    FlipBodyByte,
}

impl FaultAction {
    /// `Stall` that resets the connection after `d`.
    pub fn stall_then_reset(d: Duration) -> Self {
        FaultAction::Stall {
            duration: d,
            then: AfterStall::Reset,
        }
    }

    /// `Stall` that forwards the request after `d` (a slow server).
    pub fn stall_then_forward(d: Duration) -> Self {
        FaultAction::Stall {
            duration: d,
            then: AfterStall::Forward,
        }
    }

    /// `ResetMidBody` after [`DEFAULT_MID_BODY_BYTES`].
    pub fn reset_mid_body() -> Self {
        FaultAction::ResetMidBody {
            after_bytes: DEFAULT_MID_BODY_BYTES,
        }
    }
}

/// One rule: which requests it matches, when among those it fires, and what it does.
#[derive(Debug, Clone)]
pub struct FaultRule {
    method: Option<String>,
    target_contains: Option<String>,
    trigger: Trigger,
    action: FaultAction,
}

impl FaultRule {
    /// A rule matching every request and firing on all of them; narrow it with the
    /// builder methods.
    pub fn new(action: FaultAction) -> Self {
        FaultRule {
            method: None,
            target_contains: None,
            trigger: Trigger::Always,
            action,
        }
    }

    /// Match only this method (`"PUT"`, `"GET"`, ...; case-insensitive).
    pub fn method(mut self, method: &str) -> Self {
        self.method = Some(method.to_ascii_uppercase());
        self
    }

    /// Match only requests whose path+query, as sent (percent-encoded), contains `s`,
    /// e.g. `"partNumber=3"`, `"uploadId"`, `"/bucket/key"`.
    pub fn path_contains(mut self, s: &str) -> Self {
        self.target_contains = Some(s.to_owned());
        self
    }

    /// Fire only on the Nth matching request (1-based).
    pub fn nth(mut self, n: u64) -> Self {
        self.trigger = Trigger::Nth(n);
        self
    }

    /// Fire on every Nth matching request.
    pub fn every(mut self, n: u64) -> Self {
        self.trigger = Trigger::EveryNth(n);
        self
    }

    /// Fire on the first K matching requests.
    pub fn first(mut self, k: u64) -> Self {
        self.trigger = Trigger::FirstK(k);
        self
    }

    /// Fire on every matching request (the default).
    pub fn always(mut self) -> Self {
        self.trigger = Trigger::Always;
        self
    }

    fn matches(&self, method: &str, target: &str) -> bool {
        self.method
            .as_deref()
            .is_none_or(|m| m.eq_ignore_ascii_case(method))
            && self
                .target_contains
                .as_deref()
                .is_none_or(|s| target.contains(s))
    }
}

/// Ordered rules. For each request every rule that matches counts it (counters are per
/// rule and independent of the other rules); the first rule, in order, whose trigger
/// fires on its count decides the request's fate. No rule fires: the request is
/// forwarded untouched.
#[derive(Debug, Clone, Default)]
pub struct FaultPlan {
    rules: Vec<FaultRule>,
}

impl FaultPlan {
    /// A plan without faults: a transparent proxy.
    pub fn none() -> Self {
        FaultPlan::default()
    }

    /// Appends a rule.
    pub fn rule(mut self, rule: FaultRule) -> Self {
        self.rules.push(rule);
        self
    }
}

struct PlanState {
    rules: Vec<FaultRule>,
    counts: Vec<u64>,
}

impl PlanState {
    fn new(plan: FaultPlan) -> Self {
        let counts = vec![0; plan.rules.len()];
        PlanState {
            rules: plan.rules,
            counts,
        }
    }

    fn decide(&mut self, method: &str, target: &str) -> Option<FaultAction> {
        let mut chosen = None;
        for (rule, count) in self.rules.iter().zip(self.counts.iter_mut()) {
            if rule.matches(method, target) {
                *count += 1;
                if chosen.is_none() && rule.trigger.fires(*count) {
                    chosen = Some(rule.action.clone());
                }
            }
        }
        chosen
    }
}

struct Shared {
    upstream: SocketAddr,
    plan: Mutex<PlanState>,
    connections: AtomicU64,
    requests_seen: AtomicU64,
    faults_injected: AtomicU64,
    log: Mutex<Vec<String>>,
}

/// A running proxy on `127.0.0.1:<random port>`. Stops (and drops its connections) when
/// dropped.
pub struct FaultProxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

impl FaultProxy {
    /// Starts a proxy in front of `upstream` on a free loopback port. Must be called inside
    /// a tokio runtime; the proxy runs on that runtime.
    ///
    /// # Panics
    /// If no loopback port can be bound.
    pub async fn start(upstream: SocketAddr, plan: FaultPlan) -> FaultProxy {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .expect("fault proxy: bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("fault proxy: local_addr");
        let shared = Arc::new(Shared {
            upstream,
            plan: Mutex::new(PlanState::new(plan)),
            connections: AtomicU64::new(0),
            requests_seen: AtomicU64::new(0),
            faults_injected: AtomicU64::new(0),
            log: Mutex::new(Vec::new()),
        });
        let task = tokio::spawn(accept_loop(listener, shared.clone()));
        FaultProxy { addr, shared, task }
    }

    /// The proxy's listening address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`, to use as the S3 endpoint.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Client connections accepted so far (fewer than requests when clients keep alive).
    pub fn connections_accepted(&self) -> u64 {
        self.shared.connections.load(Ordering::SeqCst)
    }

    /// Requests read from clients so far (faulted or not).
    pub fn requests_seen(&self) -> u64 {
        self.shared.requests_seen.load(Ordering::SeqCst)
    }

    /// Requests a rule fired on so far.
    pub fn faults_injected(&self) -> u64 {
        self.shared.faults_injected.load(Ordering::SeqCst)
    }

    /// Every request seen, in order, as `"METHOD /path?query"`, with `" -> <fault>"`
    /// appended when a rule fired.
    pub fn request_log(&self) -> Vec<String> {
        self.shared.log.lock().unwrap().clone()
    }

    /// Replaces the plan and restarts its counters (statistics are kept).
    pub fn set_plan(&self, plan: FaultPlan) {
        *self.shared.plan.lock().unwrap() = PlanState::new(plan);
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        // Aborting the accept loop drops its JoinSet, which aborts every connection task.
        self.task.abort();
    }
}

impl fmt::Debug for FaultProxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FaultProxy")
            .field("addr", &self.addr)
            .field("upstream", &self.shared.upstream)
            .field("requests_seen", &self.requests_seen())
            .field("faults_injected", &self.faults_injected())
            .finish()
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    shared.connections.fetch_add(1, Ordering::SeqCst);
                    let _ = stream.set_nodelay(true);
                    conns.spawn(serve_client(stream, shared.clone()));
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            },
            // Reap finished connection tasks so the set does not grow.
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
}

/// A parsed request or response head: the start line, and headers in their
/// original spelling.
struct Head {
    start: String,
    headers: Vec<(String, String)>,
}

impl Head {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn has_token(&self, name: &str, token: &str) -> bool {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .any(|(_, v)| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
    }

    fn body_framing(&self) -> io::Result<Framing> {
        if self.has_token("transfer-encoding", "chunked") {
            return Ok(Framing::Chunked);
        }
        match self.header("content-length") {
            Some(v) => v
                .trim()
                .parse()
                .map(Framing::Length)
                .map_err(|_| bad_data(format!("bad Content-Length {v:?}"))),
            None => Ok(Framing::None),
        }
    }

    /// Serialises the head, leaving out hop-by-hop headers and `drop`, adding `extra`.
    fn encode(&self, drop: &[&str], extra: &[(&str, &str)]) -> Vec<u8> {
        const HOP: [&str; 4] = ["connection", "keep-alive", "proxy-connection", "te"];
        let mut out = String::with_capacity(512);
        out.push_str(&self.start);
        out.push_str("\r\n");
        for (n, v) in &self.headers {
            let lower = n.to_ascii_lowercase();
            if HOP.contains(&lower.as_str()) || drop.contains(&lower.as_str()) {
                continue;
            }
            out.push_str(n);
            out.push_str(": ");
            out.push_str(v);
            out.push_str("\r\n");
        }
        for (n, v) in extra {
            out.push_str(n);
            out.push_str(": ");
            out.push_str(v);
            out.push_str("\r\n");
        }
        out.push_str("\r\n");
        out.into_bytes()
    }
}

#[derive(Debug, Clone, Copy)]
enum Framing {
    None,
    Length(u64),
    Chunked,
    UntilEof,
}

fn bad_data(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

/// Reads one head; `Ok(None)` on a clean EOF before its first byte.
async fn read_head<R: AsyncBufReadExt + Unpin>(r: &mut R) -> io::Result<Option<Head>> {
    let mut line = Vec::new();
    let mut total = 0usize;
    let mut start: Option<String> = None;
    let mut headers = Vec::new();
    loop {
        line.clear();
        let n = r.read_until(b'\n', &mut line).await?;
        if n == 0 {
            return if start.is_none() && total == 0 {
                Ok(None)
            } else {
                Err(io::ErrorKind::UnexpectedEof.into())
            };
        }
        total += n;
        if total > MAX_HEAD {
            return Err(bad_data("head too large".into()));
        }
        let text = String::from_utf8_lossy(&line);
        let text = text.trim_end_matches(['\r', '\n']);
        match &start {
            // Tolerate empty lines before a request line (RFC 9112 2.2).
            None if text.is_empty() => continue,
            None => start = Some(text.to_owned()),
            Some(_) if text.is_empty() => break,
            Some(_) => {
                let (name, value) = text
                    .split_once(':')
                    .ok_or_else(|| bad_data(format!("bad header line {text:?}")))?;
                headers.push((name.trim().to_owned(), value.trim().to_owned()));
            }
        }
    }
    Ok(Some(Head {
        start: start.unwrap_or_default(),
        headers,
    }))
}

/// Copies (or, with `to == None`, discards) one body with the given framing. Chunked
/// bodies are copied verbatim, chunk headers and trailers included.
async fn relay_body<R, W>(from: &mut R, mut to: Option<&mut W>, framing: Framing) -> io::Result<()>
where
    R: AsyncBufReadExt + Unpin,
    W: AsyncWrite + Unpin,
{
    async fn copy_exact<R: AsyncRead + Unpin, W: AsyncWrite + Unpin>(
        from: &mut R,
        to: Option<&mut W>,
        n: u64,
    ) -> io::Result<()> {
        let mut limited = from.take(n);
        let copied = match to {
            Some(w) => tokio::io::copy(&mut limited, w).await?,
            None => tokio::io::copy(&mut limited, &mut tokio::io::sink()).await?,
        };
        if copied < n {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        Ok(())
    }

    match framing {
        Framing::None => Ok(()),
        Framing::Length(n) => copy_exact(from, to, n).await,
        Framing::UntilEof => {
            match to {
                Some(w) => tokio::io::copy(from, w).await?,
                None => tokio::io::copy(from, &mut tokio::io::sink()).await?,
            };
            Ok(())
        }
        Framing::Chunked => {
            let mut line = Vec::new();
            loop {
                line.clear();
                if from.read_until(b'\n', &mut line).await? == 0 {
                    return Err(io::ErrorKind::UnexpectedEof.into());
                }
                if let Some(w) = to.as_deref_mut() {
                    w.write_all(&line).await?;
                }
                let text = String::from_utf8_lossy(&line);
                let size_hex = text.trim().split(';').next().unwrap_or("").trim();
                let size = u64::from_str_radix(size_hex, 16)
                    .map_err(|_| bad_data(format!("bad chunk size {size_hex:?}")))?;
                if size == 0 {
                    // Trailer section, ended by an empty line.
                    loop {
                        line.clear();
                        if from.read_until(b'\n', &mut line).await? == 0 {
                            return Err(io::ErrorKind::UnexpectedEof.into());
                        }
                        if let Some(w) = to.as_deref_mut() {
                            w.write_all(&line).await?;
                        }
                        if line == b"\r\n" || line == b"\n" {
                            return Ok(());
                        }
                    }
                }
                // Chunk data plus its CRLF.
                copy_exact(from, to.as_deref_mut(), size + 2).await?;
            }
        }
    }
}

/// Resets a connection: RST instead of FIN.
fn reset(stream: TcpStream) {
    // Zero linger never blocks on close, which is what the deprecation warns about.
    #[allow(deprecated)]
    let _ = stream.set_linger(Some(Duration::ZERO));
    drop(stream);
}

/// Default S3 error code for a status.
pub fn s3_error_code(status: u16) -> &'static str {
    match status {
        400 => "InvalidRequest",
        403 => "AccessDenied",
        404 => "NoSuchKey",
        409 => "OperationAborted",
        500 => "InternalError",
        503 => "SlowDown",
        _ => "InternalError",
    }
}

fn reason_phrase(status: u16) -> &'static str {
    match status {
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        409 => "Conflict",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Error",
    }
}

fn error_message(code: &str) -> &'static str {
    match code {
        "InternalError" => "We encountered an internal error. Please try again.",
        "SlowDown" => "Please reduce your request rate.",
        _ => "Injected by the test fault proxy.",
    }
}

fn error_response(
    status: u16,
    code: &str,
    resource: &str,
    head_only: bool,
    close: bool,
) -> Vec<u8> {
    let request_id = format!("mm-fault-proxy-{status}");
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code>\
         <Message>{}</Message><Resource>{}</Resource><RequestId>{request_id}</RequestId></Error>",
        error_message(code),
        xml_escape(resource)
    );
    let mut out = format!(
        "HTTP/1.1 {status} {}\r\nContent-Type: application/xml\r\nContent-Length: {}\r\n\
         x-amz-request-id: {request_id}\r\nConnection: {}\r\n\r\n",
        reason_phrase(status),
        body.len(),
        if close { "close" } else { "keep-alive" }
    )
    .into_bytes();
    if !head_only {
        out.extend_from_slice(body.as_bytes());
    }
    out
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The path+query of a request target (absolute-form targets lose scheme and authority).
fn path_and_query(target: &str) -> &str {
    match target.split_once("://") {
        Some((_, rest)) => rest.find('/').map_or("/", |i| &rest[i..]),
        None => target,
    }
}

/// How one exchange ended.
enum Next {
    KeepAlive,
    Close,
    Reset,
}

async fn serve_client(stream: TcpStream, shared: Arc<Shared>) {
    let mut client = BufReader::new(stream);
    loop {
        let head = match read_head(&mut client).await {
            Ok(Some(h)) => h,
            _ => return,
        };
        match handle_request(&mut client, head, &shared).await {
            Ok(Next::KeepAlive) => continue,
            Ok(Next::Close) | Err(_) => return,
            Ok(Next::Reset) => {
                reset(client.into_inner());
                return;
            }
        }
    }
}

async fn handle_request(
    client: &mut BufReader<TcpStream>,
    head: Head,
    shared: &Shared,
) -> io::Result<Next> {
    let mut parts = head.start.split_whitespace();
    let method = parts.next().unwrap_or("").to_owned();
    let target = parts.next().unwrap_or("").to_owned();
    let version = parts.next().unwrap_or("HTTP/1.1").to_owned();
    let path = path_and_query(&target).to_owned();

    let client_wants_close = head.has_token("connection", "close")
        || (version == "HTTP/1.0" && !head.has_token("connection", "keep-alive"));
    let req_framing = head.body_framing()?;
    if head.has_token("expect", "100-continue") {
        client
            .get_mut()
            .write_all(b"HTTP/1.1 100 Continue\r\n\r\n")
            .await?;
    }

    shared.requests_seen.fetch_add(1, Ordering::SeqCst);
    let action = shared.plan.lock().unwrap().decide(&method, &path);
    {
        let mut entry = format!("{method} {path}");
        if let Some(a) = &action {
            entry.push_str(&format!(" -> {a:?}"));
            shared.faults_injected.fetch_add(1, Ordering::SeqCst);
        }
        shared.log.lock().unwrap().push(entry);
    }

    let mut reply = Reply::AsIs;
    let mut body = Body::Stream(req_framing);
    match action {
        None => {}
        Some(FaultAction::Reset) => {
            relay_body(client, None::<&mut TcpStream>, req_framing).await?;
            return Ok(Next::Reset);
        }
        Some(FaultAction::Status(status)) => {
            relay_body(client, None::<&mut TcpStream>, req_framing).await?;
            let resp = error_response(
                status,
                s3_error_code(status),
                &path,
                method == "HEAD",
                client_wants_close,
            );
            client.get_mut().write_all(&resp).await?;
            return Ok(if client_wants_close {
                Next::Close
            } else {
                Next::KeepAlive
            });
        }
        Some(FaultAction::S3Error { status, code }) => {
            relay_body(client, None::<&mut TcpStream>, req_framing).await?;
            let resp = error_response(status, &code, &path, method == "HEAD", client_wants_close);
            client.get_mut().write_all(&resp).await?;
            return Ok(if client_wants_close {
                Next::Close
            } else {
                Next::KeepAlive
            });
        }
        Some(FaultAction::Stall { duration, then }) => {
            // Hold the whole request (body included) so nothing reaches the server early.
            match then {
                AfterStall::Reset => {
                    relay_body(client, None::<&mut TcpStream>, req_framing).await?;
                    tokio::time::sleep(duration).await;
                    return Ok(Next::Reset);
                }
                AfterStall::Forward => {
                    let mut buf = Vec::new();
                    relay_body(client, Some(&mut buf), req_framing).await?;
                    tokio::time::sleep(duration).await;
                    body = Body::Buffered(buf);
                }
            }
        }
        Some(FaultAction::ResetMidBody { after_bytes }) => reply = Reply::CutAfter(after_bytes),
        Some(FaultAction::RewriteEtag) => reply = Reply::OtherEtag,
        Some(FaultAction::FlipBodyByte) => {
            let mut buf = Vec::new();
            relay_body(client, Some(&mut buf), req_framing).await?;
            let middle = buf.len() / 2;
            if let Some(b) = buf.get_mut(middle) {
                *b ^= 0x01;
            }
            body = Body::Buffered(buf);
        }
    }
    forward(
        client,
        &head,
        &method,
        client_wants_close,
        body,
        reply,
        shared,
    )
    .await
}

/// What the proxy does to a forwarded response.
enum Reply {
    AsIs,
    /// Relay the head and this many body bytes, then reset.
    CutAfter(u64),
    /// Replace the `ETag` header.
    OtherEtag,
}

enum Body {
    /// Still in the client stream, with this framing.
    Stream(Framing),
    /// Already read (raw, framing included).
    Buffered(Vec<u8>),
}

async fn forward(
    client: &mut BufReader<TcpStream>,
    head: &Head,
    method: &str,
    client_wants_close: bool,
    body: Body,
    reply: Reply,
    shared: &Shared,
) -> io::Result<Next> {
    let upstream = match TcpStream::connect(shared.upstream).await {
        Ok(s) => s,
        Err(_) => {
            if let Body::Stream(f) = body {
                relay_body(client, None::<&mut TcpStream>, f).await?;
            }
            let resp = error_response(
                502,
                "InternalError",
                "upstream unreachable",
                method == "HEAD",
                true,
            );
            client.get_mut().write_all(&resp).await?;
            return Ok(Next::Close);
        }
    };
    let _ = upstream.set_nodelay(true);
    let mut upstream = BufReader::new(upstream);

    // Request: head with `Connection: close`, then the body.
    let req_head = head.encode(&["expect"], &[("Connection", "close")]);
    upstream.get_mut().write_all(&req_head).await?;
    match body {
        Body::Stream(f) => relay_body(client, Some(upstream.get_mut()), f).await?,
        Body::Buffered(b) => upstream.get_mut().write_all(&b).await?,
    }
    upstream.get_mut().flush().await?;

    // Response: skip interim 1xx heads (relaying them), then the final head and body.
    let mut resp = loop {
        let resp = read_head(&mut upstream)
            .await?
            .ok_or_else(|| io::Error::from(io::ErrorKind::UnexpectedEof))?;
        let status = status_of(&resp);
        if (100..200).contains(&status) && status != 101 {
            client.get_mut().write_all(&resp.encode(&[], &[])).await?;
            continue;
        }
        break resp;
    };
    if let Reply::OtherEtag = reply {
        for (name, value) in &mut resp.headers {
            if name.eq_ignore_ascii_case("etag") {
                let other = md5_many::md5(format!("not the md5 of {value}").as_bytes());
                *value = format!("\"{}\"", hex::encode(other));
            }
        }
    }
    let status = status_of(&resp);
    let framing = if method == "HEAD" || status == 204 || status == 304 {
        Framing::None
    } else {
        match resp.body_framing()? {
            Framing::None => Framing::UntilEof,
            f => f,
        }
    };

    if let Reply::CutAfter(limit) = reply {
        let limit = match framing {
            Framing::None | Framing::Length(0) => {
                // Nothing to cut: drop the whole response.
                return Ok(Next::Reset);
            }
            Framing::Length(n) if n <= limit => n / 2,
            _ => limit,
        };
        let resp_head = resp.encode(&[], &[("Connection", "keep-alive")]);
        client.get_mut().write_all(&resp_head).await?;
        let mut partial = (&mut upstream).take(limit);
        tokio::io::copy(&mut partial, client.get_mut()).await?;
        client.get_mut().flush().await?;
        return Ok(Next::Reset);
    }

    let close = client_wants_close || matches!(framing, Framing::UntilEof);
    let resp_head = resp.encode(
        &[],
        &[("Connection", if close { "close" } else { "keep-alive" })],
    );
    client.get_mut().write_all(&resp_head).await?;
    relay_body(&mut upstream, Some(client.get_mut()), framing).await?;
    client.get_mut().flush().await?;
    Ok(if close { Next::Close } else { Next::KeepAlive })
}

fn status_of(resp: &Head) -> u16 {
    resp.start
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn triggers_count_from_one() {
        assert!(Trigger::Nth(3).fires(3) && !Trigger::Nth(3).fires(4));
        assert!(Trigger::EveryNth(2).fires(4) && !Trigger::EveryNth(2).fires(3));
        assert!(Trigger::FirstK(2).fires(2) && !Trigger::FirstK(2).fires(3));
        assert!(!Trigger::EveryNth(0).fires(0));
    }

    #[test]
    fn every_matching_rule_counts_first_firing_rule_wins() {
        let plan = FaultPlan::none()
            .rule(
                FaultRule::new(FaultAction::Status(500))
                    .method("put")
                    .path_contains("partNumber=")
                    .nth(2),
            )
            .rule(
                FaultRule::new(FaultAction::Status(503))
                    .path_contains("partNumber=")
                    .nth(2),
            );
        let mut st = PlanState::new(plan);
        assert_eq!(st.decide("PUT", "/b/k?partNumber=1&uploadId=x"), None);
        assert_eq!(
            st.decide("PUT", "/b/k?partNumber=2&uploadId=x"),
            Some(FaultAction::Status(500))
        );
        assert_eq!(st.decide("GET", "/b/k?partNumber=2"), None);
        assert_eq!(st.counts, vec![2, 3]);
    }

    #[test]
    fn absolute_form_targets_match_on_path() {
        assert_eq!(path_and_query("http://h:1/b/k?x=1"), "/b/k?x=1");
        assert_eq!(path_and_query("/b/k"), "/b/k");
        assert_eq!(path_and_query("http://h:1"), "/");
    }
}
