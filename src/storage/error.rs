//! Storage errors: what went wrong talking to one object store, and whether trying again can help.
//!
//! Owns the classification of `object_store` failures into [`StorageErrorKind`]. The
//! classification walks the typed error chain (our [`S3Status`] from the HTTP gate, then
//! `object_store`'s `HttpError` kinds, then its error variants); it never parses messages.

use std::error::Error as StdError;
use std::fmt;

use object_store::client::HttpError;

/// An error status answered by an S3-compatible server, captured by the HTTP gate
/// (see [`super::http`]) before `object_store` turns it into an untyped error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Status {
    /// HTTP status code.
    pub status: u16,
    /// The S3 error code from the XML body (`NoSuchBucket`, `SlowDown`, ...), if any.
    pub code: Option<String>,
    /// The S3 error message from the XML body, if any.
    pub message: Option<String>,
}

impl fmt::Display for S3Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HTTP {}", self.status)?;
        if let Some(code) = &self.code {
            write!(f, " {code}")?;
        }
        if let Some(message) = self.message.as_deref().filter(|m| !m.is_empty()) {
            write!(f, ": {message}")?;
        }
        Ok(())
    }
}

impl StdError for S3Status {}

impl S3Status {
    /// Parses the `<Code>` and `<Message>` of an S3 XML error body (best effort, no XML crate:
    /// the two elements are flat text in every S3-compatible server's error document).
    pub fn from_body(status: u16, body: &[u8]) -> Self {
        let text = String::from_utf8_lossy(body);
        let element = |name: &str| {
            let open = format!("<{name}>");
            let close = format!("</{name}>");
            let start = text.find(&open)? + open.len();
            let end = text[start..].find(&close)? + start;
            Some(text[start..end].trim().to_string())
        };
        Self {
            status,
            code: element("Code"),
            message: element("Message"),
        }
    }

    fn kind(&self) -> StorageErrorKind {
        let code = self.code.as_deref().unwrap_or("");
        match (self.status, code) {
            (_, "SlowDown" | "RequestTimeout" | "InternalError" | "ServiceUnavailable") => {
                StorageErrorKind::Transient
            }
            (429 | 500..=599, _) => StorageErrorKind::Transient,
            // The body does not match the Content-MD5 it was sent with.
            (_, "BadDigest") => StorageErrorKind::Integrity,
            (_, "NoSuchBucket") => StorageErrorKind::BucketNotFound,
            (_, "NoSuchUpload") => StorageErrorKind::UploadNotFound,
            (404, _) => StorageErrorKind::NotFound,
            (401 | 403, _) => StorageErrorKind::Denied,
            // A conditional write whose condition failed (`If-None-Match: *` on an existing
            // object, `If-Match` on a changed one); 409 is S3's "another conditional write
            // is in flight, try again".
            (304 | 412, _) => StorageErrorKind::Conflict,
            (409, "ConditionalRequestConflict") => StorageErrorKind::Transient,
            _ => StorageErrorKind::Rejected,
        }
    }
}

/// What kind of failure a storage operation met. Retryability follows from the kind alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StorageErrorKind {
    /// 5xx, 429, SlowDown, timeouts, resets, refused or broken connections: try again.
    Transient,
    /// The object does not exist.
    NotFound,
    /// The bucket does not exist.
    BucketNotFound,
    /// A multipart upload id the server no longer knows.
    UploadNotFound,
    /// The server refused the credentials or the operation (401/403).
    Denied,
    /// The server rejected the request for another reason (4xx).
    Rejected,
    /// A conditional write found the object not as required: it exists (create only) or
    /// changed (update if unchanged).
    Conflict,
    /// The store cannot do this operation (a conditional update on a local directory).
    Unsupported,
    /// The data read or written does not match its checksum.
    Integrity,
    /// Configuration or local failure that trying again cannot fix.
    Fatal,
    /// The copy was cancelled before this operation finished.
    Cancelled,
}

/// Error of one storage operation, with the store, the operation and the key it concerned.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The store could not be built from its profile.
    #[error("cannot open store {store}: {reason}")]
    Build { store: String, reason: String },

    /// A request to the store failed.
    #[error("{store}: {op} {key}: {message}")]
    Request {
        store: String,
        op: &'static str,
        key: String,
        kind: StorageErrorKind,
        message: String,
    },
}

impl StorageError {
    /// Builds a request error from an `object_store` error, classifying it.
    pub fn from_object_store(
        store: &str,
        op: &'static str,
        key: &str,
        error: object_store::Error,
    ) -> Self {
        let kind = classify(&error);
        let message = describe(kind, &error);
        Self::Request {
            store: store.to_string(),
            op,
            key: key.to_string(),
            kind,
            message,
        }
    }

    /// A refusal of the credentials names where they come from (`credentials`, see
    /// [`crate::config::StorageConfig::credentials`]); other errors are unchanged.
    pub fn naming(mut self, credentials: &str) -> Self {
        if let Self::Request { kind, message, .. } = &mut self
            && *kind == StorageErrorKind::Denied
            && !credentials.is_empty()
        {
            message.push_str(&format!(" (check {credentials})"));
        }
        self
    }

    /// The operation on `key` was abandoned because its copy was cancelled.
    pub fn cancelled(store: &str, key: &str) -> Self {
        Self::Request {
            store: store.to_string(),
            op: "copy",
            key: key.to_string(),
            kind: StorageErrorKind::Cancelled,
            message: "cancelled".to_string(),
        }
    }

    /// An integrity failure: the bytes do not match their checksum.
    pub fn integrity(store: &str, op: &'static str, key: &str, message: String) -> Self {
        Self::Request {
            store: store.to_string(),
            op,
            key: key.to_string(),
            kind: StorageErrorKind::Integrity,
            message,
        }
    }

    /// The kind of failure.
    pub fn kind(&self) -> StorageErrorKind {
        match self {
            Self::Build { .. } => StorageErrorKind::Fatal,
            Self::Request { kind, .. } => *kind,
        }
    }

    /// Whether the same request may succeed if tried again. Integrity failures are
    /// retryable: the bytes are read and written again.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self.kind(),
            StorageErrorKind::Transient | StorageErrorKind::Integrity
        )
    }
}

/// Classifies an `object_store` error by walking its source chain for typed causes.
pub fn classify(error: &object_store::Error) -> StorageErrorKind {
    for e in causes(error) {
        if let Some(status) = e.downcast_ref::<S3Status>() {
            return status.kind();
        }
        if let Some(http) = e.downcast_ref::<HttpError>() {
            // A status captured by the gate travels inside an HttpError: look deeper first.
            if let Some(status) = http.source().and_then(|s| s.downcast_ref::<S3Status>()) {
                return status.kind();
            }
            // A TLS failure (untrusted or mismatched certificate, no common protocol) is
            // configuration: trying again cannot fix it.
            if tls_cause(http).is_some() {
                return StorageErrorKind::Fatal;
            }
            // Every other transport failure (connect, reset, timeout, truncated body) is
            // transient.
            return StorageErrorKind::Transient;
        }
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            use std::io::ErrorKind as K;
            return match io.kind() {
                K::NotFound => StorageErrorKind::NotFound,
                K::PermissionDenied => StorageErrorKind::Denied,
                // A local directory refusing a create-only write (`put_if_absent`).
                K::AlreadyExists => StorageErrorKind::Conflict,
                K::TimedOut
                | K::ConnectionReset
                | K::ConnectionAborted
                | K::ConnectionRefused
                | K::BrokenPipe
                | K::UnexpectedEof
                | K::Interrupted => StorageErrorKind::Transient,
                _ => StorageErrorKind::Fatal,
            };
        }
    }
    match error {
        object_store::Error::NotFound { .. } => StorageErrorKind::NotFound,
        object_store::Error::PermissionDenied { .. }
        | object_store::Error::Unauthenticated { .. } => StorageErrorKind::Denied,
        object_store::Error::Precondition { .. }
        | object_store::Error::AlreadyExists { .. }
        | object_store::Error::NotModified { .. } => StorageErrorKind::Conflict,
        object_store::Error::NotImplemented { .. } => StorageErrorKind::Unsupported,
        _ => StorageErrorKind::Fatal,
    }
}

/// A one-line message for the error: the S3 status when there is one, else the innermost
/// transport cause, else the error itself.
fn describe(kind: StorageErrorKind, error: &object_store::Error) -> String {
    let mut innermost = error.to_string();
    for e in causes(error) {
        if let Some(status) = e.downcast_ref::<S3Status>() {
            return status.to_string();
        }
        if e.downcast_ref::<HttpError>().is_some() {
            // A status captured by the gate travels inside an HttpError.
            if let Some(status) = e.source().and_then(|s| s.downcast_ref::<S3Status>()) {
                return status.to_string();
            }
            innermost = e.to_string();
            if let Some(src) = e.source() {
                innermost = format!("{innermost}: {}", root_cause(src));
            }
            if let Some(rustls::Error::InvalidCertificate(_)) = tls_cause(e) {
                innermost.push_str(
                    " (the store's certificate is not trusted by this machine; \
                     SSL_CERT_FILE can name a PEM file holding its CA)",
                );
            }
            break;
        }
    }
    match kind {
        StorageErrorKind::NotFound => "not found".to_string(),
        _ => innermost,
    }
}

/// `e` and the errors behind it, outermost first. Steps into the error an `io::Error` wraps,
/// which its own `source` skips; that is where TLS and connection layers put theirs (sometimes
/// inside another `io::Error`).
pub(crate) fn causes<'a>(
    e: &'a (dyn StdError + 'static),
) -> impl Iterator<Item = &'a (dyn StdError + 'static)> {
    std::iter::successors(Some(e), |&e| next_cause(e))
}

fn next_cause<'a>(e: &'a (dyn StdError + 'static)) -> Option<&'a (dyn StdError + 'static)> {
    match e
        .downcast_ref::<std::io::Error>()
        .and_then(|io| io.get_ref())
    {
        Some(inner) => Some(inner as &(dyn StdError + 'static)),
        None => e.source(),
    }
}

/// The TLS error behind a transport failure, if that is what it is.
fn tls_cause<'a>(e: &'a (dyn StdError + 'static)) -> Option<&'a rustls::Error> {
    causes(e).find_map(|c| c.downcast_ref::<rustls::Error>())
}

fn root_cause(e: &(dyn StdError + 'static)) -> String {
    causes(e)
        .last()
        .map(ToString::to_string)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use object_store::client::HttpErrorKind;

    #[test]
    fn s3_error_body_is_parsed() {
        let body = br#"<?xml version="1.0"?><Error><Code>NoSuchBucket</Code><Message>The specified bucket does not exist</Message></Error>"#;
        let s = S3Status::from_body(404, body);
        assert_eq!(s.code.as_deref(), Some("NoSuchBucket"));
        assert_eq!(s.kind(), StorageErrorKind::BucketNotFound);
        assert_eq!(
            s.to_string(),
            "HTTP 404 NoSuchBucket: The specified bucket does not exist"
        );
    }

    #[test]
    fn statuses_are_classified() {
        let k = |status, code: Option<&str>| {
            S3Status {
                status,
                code: code.map(str::to_string),
                message: None,
            }
            .kind()
        };
        assert_eq!(k(500, None), StorageErrorKind::Transient);
        assert_eq!(k(503, Some("SlowDown")), StorageErrorKind::Transient);
        assert_eq!(k(429, None), StorageErrorKind::Transient);
        assert_eq!(k(400, Some("RequestTimeout")), StorageErrorKind::Transient);
        assert_eq!(
            k(403, Some("SignatureDoesNotMatch")),
            StorageErrorKind::Denied
        );
        assert_eq!(k(404, Some("NoSuchKey")), StorageErrorKind::NotFound);
        assert_eq!(
            k(404, Some("NoSuchUpload")),
            StorageErrorKind::UploadNotFound
        );
        assert_eq!(k(400, Some("InvalidPart")), StorageErrorKind::Rejected);
        assert_eq!(
            k(412, Some("PreconditionFailed")),
            StorageErrorKind::Conflict
        );
        assert_eq!(
            k(409, Some("ConditionalRequestConflict")),
            StorageErrorKind::Transient
        );
        assert_eq!(k(409, Some("BucketNotEmpty")), StorageErrorKind::Rejected);
        // A body refused for its Content-MD5 was damaged on the way: send it again.
        assert_eq!(k(400, Some("BadDigest")), StorageErrorKind::Integrity);
    }

    #[test]
    fn a_refusal_of_the_credentials_names_where_they_come_from() {
        let err = |status: u16, code: &str| {
            let status = S3Status {
                status,
                code: Some(code.into()),
                message: None,
            };
            let source = Box::new(HttpError::new(HttpErrorKind::Unknown, status));
            let e = object_store::Error::Generic {
                store: "S3",
                source,
            };
            StorageError::from_object_store("s3://b", "LIST", "k", e)
        };
        let keys = "`minio.accessKeyID`, `minio.secretAccessKey` of a.yaml";
        let denied = err(403, "SignatureDoesNotMatch").naming(keys);
        assert_eq!(denied.kind(), StorageErrorKind::Denied);
        assert!(
            denied.to_string().ends_with(&format!("(check {keys})")),
            "{denied}"
        );
        // Other failures are not about the credentials.
        let slow = err(503, "SlowDown").naming(keys);
        assert!(!slow.to_string().contains("check"), "{slow}");
        assert!(
            !err(403, "AccessDenied")
                .naming("")
                .to_string()
                .contains("check")
        );
    }

    #[test]
    fn chain_with_status_is_classified_without_strings() {
        let status = S3Status {
            status: 503,
            code: Some("SlowDown".into()),
            message: None,
        };
        let http = HttpError::new(HttpErrorKind::Unknown, status);
        let err = object_store::Error::Generic {
            store: "S3",
            source: Box::new(http),
        };
        assert_eq!(classify(&err), StorageErrorKind::Transient);
        let se = StorageError::from_object_store("s3://b", "GET", "k", err);
        assert!(se.is_retryable());
        assert!(se.to_string().contains("HTTP 503 SlowDown"), "{se}");
    }
}
