//! Copy a backup between two profiles through the library, with a progress observer of our own.
//!
//!     cargo run --example copy_backup -- configs/a.yaml configs/b.yaml my_backup

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use milvus_migrate::config::{Profile, TransferOptions};
use milvus_migrate::copy::CopyObserver;
use milvus_migrate::transfer::{self, CopyRequest, CopyTarget, RunContext};

/// Counts finished objects.
#[derive(Default)]
struct Count(AtomicU64);

impl CopyObserver for Count {
    fn object_done(&self, rel: &str, size: u64) {
        let n = self.0.fetch_add(1, Ordering::Relaxed) + 1;
        eprintln!("{n:>5} {rel} ({size} bytes)");
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [from, to, name] = args.as_slice() else {
        return Err("usage: copy_backup FROM.yaml TO.yaml BACKUP_NAME".into());
    };
    let request = CopyRequest {
        from: Profile::load(from.as_ref())?.profile,
        to: Profile::load(to.as_ref())?.profile,
        target: CopyTarget::Backup(name.clone()),
        overrides: TransferOptions::default(),
        overwrite: false,
        state_dir: None,
        context: RunContext::default(),
    };
    let report = transfer::copy(request, Arc::new(Count::default())).await?;
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}
