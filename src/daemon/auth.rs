//! The daemon's bearer token: where it comes from, and how requests are checked against it.
//!
//! The token never appears in logs or errors; comparisons take the same time whatever the
//! first differing byte.

use std::path::Path;
use std::sync::Arc;

use tonic::{Request, Status};

use super::DaemonError;

/// The environment variable a token may come from (daemon and client).
pub const TOKEN_ENV: &str = "MILVUS_MIGRATE_TOKEN";

/// Reads the token: the first line of `file` when given, else `$MILVUS_MIGRATE_TOKEN`; `None`
/// when neither is set.
///
/// # Errors
/// [`DaemonError::Token`] when the file cannot be read or holds an empty token.
pub fn load_token(file: Option<&Path>) -> Result<Option<Arc<str>>, DaemonError> {
    let token = match file {
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|e| DaemonError::Token {
                from: path.display().to_string(),
                reason: e.to_string(),
            })?;
            let line = text.lines().next().unwrap_or("").trim().to_string();
            if line.is_empty() {
                return Err(DaemonError::Token {
                    from: path.display().to_string(),
                    reason: "the file is empty".into(),
                });
            }
            Some(line)
        }
        None => std::env::var(TOKEN_ENV)
            .ok()
            .map(|t| t.trim().to_string())
            .filter(|t| !t.is_empty()),
    };
    Ok(token.map(Arc::from))
}

/// Whether an `authorization` header value is `Bearer <token>`.
pub fn bearer_matches(header: Option<&str>, token: &str) -> bool {
    let Some(given) = header.and_then(|h| {
        h.strip_prefix("Bearer ")
            .or_else(|| h.strip_prefix("bearer "))
    }) else {
        return false;
    };
    let (a, b) = (given.trim().as_bytes(), token.as_bytes());
    // Length differences show; the contents do not.
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// A tonic interceptor refusing requests without the token (`None`: every request passes).
pub fn interceptor(
    token: Option<Arc<str>>,
) -> impl FnMut(Request<()>) -> Result<Request<()>, Status> + Clone {
    move |req: Request<()>| {
        let Some(token) = &token else {
            return Ok(req);
        };
        let header = req
            .metadata()
            .get("authorization")
            .and_then(|v| v.to_str().ok());
        if bearer_matches(header, token) {
            Ok(req)
        } else if header.is_none() {
            Err(Status::unauthenticated(
                "this daemon requires a bearer token: pass --token-file FILE or set \
                 MILVUS_MIGRATE_TOKEN",
            ))
        } else {
            Err(Status::unauthenticated(
                "the bearer token is not this daemon's",
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_exact_bearer_token_matches() {
        assert!(bearer_matches(Some("Bearer s3cret"), "s3cret"));
        assert!(!bearer_matches(Some("Bearer s3cre"), "s3cret"));
        assert!(!bearer_matches(Some("Bearer s3cretX"), "s3cret"));
        assert!(!bearer_matches(Some("s3cret"), "s3cret"));
        assert!(!bearer_matches(Some("Basic s3cret"), "s3cret"));
        assert!(!bearer_matches(None, "s3cret"));
    }

    #[test]
    fn the_interceptor_refuses_missing_and_wrong_tokens_with_unauthenticated() {
        let mut check = interceptor(Some(Arc::from("t0k")));
        assert_eq!(
            check(Request::new(())).unwrap_err().code(),
            tonic::Code::Unauthenticated
        );
        let mut wrong = Request::new(());
        wrong
            .metadata_mut()
            .insert("authorization", "Bearer nope".parse().unwrap());
        let err = check(wrong).unwrap_err();
        assert_eq!(err.code(), tonic::Code::Unauthenticated);
        assert!(!err.message().contains("t0k"));
        let mut right = Request::new(());
        right
            .metadata_mut()
            .insert("authorization", "Bearer t0k".parse().unwrap());
        assert!(check(right).is_ok());
        assert!(interceptor(None)(Request::new(())).is_ok());
    }

    #[test]
    fn a_token_file_gives_its_first_line_and_an_empty_one_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let f = tmp.path().join("token");
        std::fs::write(&f, "abc123\n").unwrap();
        assert_eq!(load_token(Some(&f)).unwrap().as_deref(), Some("abc123"));
        std::fs::write(&f, "\n").unwrap();
        let err = load_token(Some(&f)).unwrap_err().to_string();
        assert!(
            err.contains("token") && err.contains(f.to_str().unwrap()),
            "{err}"
        );
    }
}
