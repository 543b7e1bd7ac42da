//! Migrate one collection from Milvus A to Milvus B through the library, restoring it on B under
//! the name `<collection>_copy`, and print the report as JSON.
//!
//!     cargo run --example migrate -- configs/a.yaml configs/b.yaml coll
//!
//! Like the `migrate` command: indexes rebuilt and the collection loaded on B, so its rows are
//! verified by `count(*)`; the intermediate backup copies are removed afterwards. The default
//! backup name is derived from the request, so running it again after a failure resumes.

use std::sync::Arc;

use milvus_migrate::config::{Profile, TransferOptions};
use milvus_migrate::copy::NoProgress;
use milvus_migrate::create::Selector;
use milvus_migrate::lease::LeaseOptions;
use milvus_migrate::migrate::{MigrateRequest, migrate};
use milvus_migrate::restore::Naming;
use milvus_migrate::transfer::RunContext;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [from, to, collection] = args.as_slice() else {
        return Err("usage: migrate FROM.yaml TO.yaml COLLECTION".into());
    };
    let load = |path: &str| -> Result<Profile, Box<dyn std::error::Error>> {
        let loaded = Profile::load(path.as_ref())?;
        for w in &loaded.warnings {
            eprintln!("warning: {w}");
        }
        Ok(loaded.profile)
    };
    let request = MigrateRequest {
        from: load(from)?,
        to: load(to)?,
        name: None,
        selectors: vec![Selector::parse(collection)?],
        naming: Naming::Suffix("_copy".into()),
        rebuild_index: true,
        load: true,
        drop_existing: false,
        keep_backup: false,
        direct: false,
        overrides: TransferOptions::default(),
        state_dir: None,
        keep_partial: false,
        sequential: false,
        rbac: None,
        lease: LeaseOptions::default(),
        verify: milvus_migrate::verify::VerifyOptions::default(),
        context: RunContext::default(),
    };
    let report = migrate(request, Arc::new(NoProgress)).await?;
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}
