//! Compiles the hand-written Milvus proto subset in `proto/milvus/` into Rust.
//!
//! protox parses the files (no system `protoc` needed) and tonic-prost-build generates the
//! prost messages and the gRPC client. Server code and tonic's transport helpers are off:
//! with transport helpers tonic would generate an associated `connect` constructor on
//! `MilvusServiceClient`, which clashes with the method generated for `rpc Connect`. Clients
//! are built with `MilvusServiceClient::new(channel)` or `with_interceptor`.
//!
//! The daemon's own API (`proto/milvus_migrate/daemon.proto`) is compiled separately, with
//! server and client code and tonic's transport helpers.

const PROTOS: [&str; 4] = [
    "milvus/common.proto",
    "milvus/schema.proto",
    "milvus/msg.proto",
    "milvus/milvus.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto");
    let fds = protox::compile(PROTOS, ["proto"])?;
    tonic_prost_build::configure()
        .build_server(false)
        .build_transport(false)
        .compile_fds(fds)?;
    let daemon = protox::compile(["milvus_migrate/daemon.proto"], ["proto"])?;
    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        .compile_fds(daemon)?;
    Ok(())
}
