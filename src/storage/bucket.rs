//! Creating a missing bucket on an S3-family store, as milvus-backup does for its backup
//! storage: a profile whose backup bucket does not exist yet works as it is.
//!
//! Owns the one request `object_store` has no call for (`CreateBucket`), signed with the
//! store's own credentials (static keys, a session token or IAM). Does not decide which stores
//! may be written to (the flows do: only stores they write backups to).

use bytes::Bytes;
use object_store::aws::{AwsAuthorizer, AwsCredentialProvider};
use object_store::client::HttpRequestBody;

use super::error::{StorageError, StorageErrorKind};
use crate::config::{StorageConfig, StorageType};

/// What creating the bucket of an S3-family store needs.
pub(super) struct BucketAdmin {
    /// `PUT` target: the bucket's URL (path style, or virtual-hosted where the store is).
    url: String,
    region: String,
    credentials: AwsCredentialProvider,
}

impl BucketAdmin {
    pub(super) fn new(
        cfg: &StorageConfig,
        region: &str,
        virtual_host: bool,
        credentials: AwsCredentialProvider,
    ) -> BucketAdmin {
        let endpoint = if cfg.storage_type == StorageType::Aws
            && (cfg.address.is_empty() || cfg.address.ends_with("amazonaws.com"))
        {
            format!("https://s3.{region}.amazonaws.com")
        } else {
            cfg.endpoint_url()
        };
        let url = match endpoint.split_once("://") {
            Some((scheme, host)) if virtual_host => format!("{scheme}://{}.{host}", cfg.bucket),
            _ => format!("{endpoint}/{}", cfg.bucket),
        };
        BucketAdmin {
            url,
            region: region.to_string(),
            credentials,
        }
    }

    /// Creates the bucket. A bucket that exists by then (another run made it) is no error.
    pub(super) async fn create(&self, store: &str, bucket: &str) -> Result<(), StorageError> {
        let fail = |kind: StorageErrorKind, message: String| StorageError::Request {
            store: store.to_string(),
            op: "CREATE BUCKET",
            key: bucket.to_string(),
            kind,
            message,
        };
        let credential = self
            .credentials
            .get_credential()
            .await
            .map_err(|e| fail(StorageErrorKind::Denied, e.to_string()))?;
        // Outside us-east-1, S3 wants the region named in the body.
        let body = if self.region == "us-east-1" {
            Bytes::new()
        } else {
            Bytes::from(format!(
                "<CreateBucketConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">\
                 <LocationConstraint>{}</LocationConstraint></CreateBucketConfiguration>",
                self.region
            ))
        };
        let mut request = http::Request::builder()
            .method(http::Method::PUT)
            .uri(&self.url)
            .body(HttpRequestBody::from(body.clone()))
            .map_err(|e| fail(StorageErrorKind::Fatal, e.to_string()))?;
        AwsAuthorizer::new(&credential, "s3", &self.region)
            .try_authorize(&mut request, None)
            .map_err(|e| fail(StorageErrorKind::Fatal, e.to_string()))?;
        let mut send = reqwest::Client::new()
            .put(&self.url)
            .body(body)
            .timeout(std::time::Duration::from_secs(60));
        for (name, value) in request.headers() {
            send = send.header(name, value);
        }
        let response = send
            .send()
            .await
            .map_err(|e| fail(StorageErrorKind::Transient, e.to_string()))?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let text = response.text().await.unwrap_or_default();
        if text.contains("BucketAlreadyOwnedByYou") || text.contains("BucketAlreadyExists") {
            return Ok(());
        }
        let kind = match status.as_u16() {
            401 | 403 => StorageErrorKind::Denied,
            500..=599 => StorageErrorKind::Transient,
            _ => StorageErrorKind::Rejected,
        };
        Err(fail(kind, format!("HTTP {status}: {}", text.trim())))
    }
}
