//! Test harness shared by the integration tests: real S3 servers ([`s3`]) and a
//! fault-injecting proxy to put in front of them ([`fault_proxy`]).

pub mod fault_proxy;
pub mod s3;
