//! `milvus-migrate`: parse the command line, set up logging, run the command, and map the
//! outcome to an exit code (0 all done, 1 finished with per-object failures, 2 fatal).

mod cli;

use std::process::ExitCode;

use clap::Parser;
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    milvus_migrate::install_tls_provider();
    // A daemon says what it does with its jobs (submitted, started, finished) by default.
    let daemon = matches!(args.command, cli::Command::Serve(_));
    let default = match args.verbose {
        0 if daemon => "info",
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    let mut filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        EnvFilter::new(format!(
            "{default},object_store=warn,reqwest=warn,hyper=warn"
        ))
    });
    // The certificate verifier logs each failure at ERROR; the store error that follows says
    // the same once, with the store's name.
    let quiet = "rustls_platform_verifier";
    if !std::env::var("RUST_LOG").is_ok_and(|v| v.contains(quiet)) {
        filter = filter.add_directive(format!("{quiet}=off").parse().expect("valid directive"));
    }
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colours only for a terminal: a daemon's log usually goes to a file or a journal.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .init();

    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .on_thread_park(milvus_migrate::copy::idle::on_worker_idle)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(cli::EXIT_FATAL);
        }
    };
    match runtime.block_on(cli::run(args)) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            // One line: the error and its causes.
            eprintln!("error: {}", chain(&e));
            ExitCode::from(cli::exit_code_of(&e))
        }
    }
}

fn chain(e: &anyhow::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for cause in e.chain() {
        let s = cause.to_string();
        if !parts.iter().any(|p| p.contains(&s)) {
            parts.push(s);
        }
    }
    parts.join(": ")
}
