//! Test harness shared by the integration tests: real S3 servers ([`s3`]), a
//! fault-injecting proxy to put in front of them ([`fault_proxy`]) and the real Milvus pair
//! of `scripts/stack.sh` ([`milvus`]).

pub mod fault_proxy;
pub mod milvus;
pub mod s3;
pub mod tls_front;
