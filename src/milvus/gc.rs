//! Pausing Milvus's garbage collection while a backup copies segment files, through the
//! management HTTP API (`/management/datacoord/garbage_collection/pause|resume`, port 9091).
//!
//! Owns the pause, its renewal while a backup runs, and the resume. Best effort, as in
//! milvus-backup: a Milvus whose management port is unreachable is backed up anyway, with a
//! warning, because flushed segments only disappear after compaction plus the GC interval.

use std::time::Duration;

/// How long one pause lasts; renewed every half of it while the guard lives.
const PAUSE_SECS: u64 = 3600;

/// A running GC pause. Resumes GC when [`GcPause::resume`] is called; dropping it without
/// resuming stops the renewal and lets the pause expire.
#[derive(Debug)]
pub struct GcPause {
    endpoint: String,
    client: reqwest::Client,
    renew: tokio::task::JoinHandle<()>,
}

fn client() -> reqwest::Client {
    crate::install_tls_provider();
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap_or_default()
}

/// Why a management call failed.
enum CallError {
    /// The endpoint does not exist on this Milvus (HTTP 404: releases before the API).
    Missing,
    /// Anything else.
    Failed(String),
}

async fn get(client: &reqwest::Client, url: &str) -> Result<(), String> {
    call(client, url).await.map_err(|e| match e {
        CallError::Missing => "HTTP 404".to_string(),
        CallError::Failed(m) => m,
    })
}

async fn call(client: &reqwest::Client, url: &str) -> Result<(), CallError> {
    let resp = client
        .get(url)
        .send()
        .await
        .map_err(|e| CallError::Failed(e.to_string()))?;
    let status = resp.status();
    if status == reqwest::StatusCode::NOT_FOUND {
        return Err(CallError::Missing);
    }
    let body = resp.text().await.unwrap_or_default();
    if !status.is_success() {
        return Err(CallError::Failed(format!("HTTP {status}: {}", body.trim())));
    }
    // Milvus answers {"msg": "OK"} or a JSON status; anything with a non-zero code fails.
    if let Ok(v) = serde_json::from_str::<serde_json::Value>(&body)
        && let Some(code) = v.get("code").and_then(serde_json::Value::as_i64)
        && code != 0
    {
        return Err(CallError::Failed(format!(
            "Milvus answered {}",
            body.trim()
        )));
    }
    Ok(())
}

impl GcPause {
    /// Pauses GC at `endpoint` (e.g. `http://localhost:9091`). `Ok(None)` when this Milvus
    /// has no such API (2.3 answers 404): nothing to pause or resume.
    ///
    /// # Errors
    /// A message saying why the pause failed; callers warn and go on.
    pub async fn start(endpoint: &str) -> Result<Option<GcPause>, String> {
        let endpoint = endpoint.trim_end_matches('/').to_string();
        let client = client();
        let url = format!(
            "{endpoint}/management/datacoord/garbage_collection/pause?pause_seconds={PAUSE_SECS}"
        );
        match call(&client, &url).await {
            Ok(()) => {}
            Err(CallError::Missing) => {
                tracing::info!("{endpoint} has no garbage-collection pause API; not pausing");
                return Ok(None);
            }
            Err(CallError::Failed(e)) => {
                return Err(format!(
                    "cannot pause garbage collection at {endpoint}: {e}"
                ));
            }
        }
        let renew = {
            let client = client.clone();
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(Duration::from_secs(PAUSE_SECS / 2)).await;
                    if let Err(e) = get(&client, &url).await {
                        tracing::warn!("renewing the garbage-collection pause: {e}");
                    }
                }
            })
        };
        Ok(Some(GcPause {
            endpoint,
            client,
            renew,
        }))
    }

    /// Resumes GC.
    pub async fn resume(self) {
        self.renew.abort();
        let url = format!(
            "{}/management/datacoord/garbage_collection/resume",
            self.endpoint
        );
        if let Err(e) = get(&self.client, &url).await {
            tracing::warn!(
                "cannot resume garbage collection at {}: {e}; it resumes by itself within {PAUSE_SECS} s",
                self.endpoint
            );
        }
    }
}

impl Drop for GcPause {
    fn drop(&mut self) {
        self.renew.abort();
    }
}
