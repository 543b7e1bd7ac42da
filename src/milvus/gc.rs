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
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap_or_default()
}

async fn get(client: &reqwest::Client, url: &str) -> Result<(), String> {
    let resp = client.get(url).send().await.map_err(|e| e.to_string())?;
    let status = resp.status();
    let body = resp.text().await.unwrap_or_default();
    if !status.is_success() {
        return Err(format!("HTTP {status}: {}", body.trim()));
    }
    // Milvus answers {"msg": "OK"} or a JSON status; anything with a non-zero code fails.
    if let Ok(v) = serde_json::from_str::<serde_json::Value>(&body)
        && let Some(code) = v.get("code").and_then(serde_json::Value::as_i64)
        && code != 0
    {
        return Err(format!("Milvus answered {}", body.trim()));
    }
    Ok(())
}

impl GcPause {
    /// Pauses GC at `endpoint` (e.g. `http://localhost:9091`).
    ///
    /// # Errors
    /// A message saying why the pause failed; callers warn and go on.
    pub async fn start(endpoint: &str) -> Result<GcPause, String> {
        let endpoint = endpoint.trim_end_matches('/').to_string();
        let client = client();
        let url = format!(
            "{endpoint}/management/datacoord/garbage_collection/pause?pause_seconds={PAUSE_SECS}"
        );
        get(&client, &url)
            .await
            .map_err(|e| format!("cannot pause garbage collection at {endpoint}: {e}"))?;
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
        Ok(GcPause {
            endpoint,
            client,
            renew,
        })
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
