//! Connection settings of one Milvus instance: [`TlsMode`] and [`MilvusConfig`].
//!
//! Owns the TLS mode names of both schemas and the derived REST URL. Does not own reading the
//! keys (`v1.rs`, `v2.rs`) or the gRPC client (the milvus module of the crate).

use std::fmt;

use super::Secret;

/// gRPC transport security.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TlsMode {
    /// Plain text (v1 `0`, v2 `disabled`).
    Disabled,
    /// Verify the server (v1 `1`, v2 `server`).
    Server,
    /// Verify the server and present a client certificate (v1 `2`, v2 `mutual`).
    Mutual,
}

impl TlsMode {
    /// The v2 spelling.
    pub fn as_str(&self) -> &'static str {
        match self {
            TlsMode::Disabled => "disabled",
            TlsMode::Server => "server",
            TlsMode::Mutual => "mutual",
        }
    }

    /// The v1 number.
    pub fn as_v1(&self) -> u8 {
        match self {
            TlsMode::Disabled => 0,
            TlsMode::Server => 1,
            TlsMode::Mutual => 2,
        }
    }

    /// Parses the v1 form `0`, `1`, `2`.
    pub(crate) fn parse_v1(s: &str) -> Result<TlsMode, String> {
        match s.trim() {
            "0" => Ok(TlsMode::Disabled),
            "1" => Ok(TlsMode::Server),
            "2" => Ok(TlsMode::Mutual),
            _ => Err("expected 0 (off), 1 (verify server) or 2 (mutual)".into()),
        }
    }

    /// Parses the v2 form `disabled`, `server`, `mutual` (case-insensitive).
    pub(crate) fn parse_v2(s: &str) -> Result<TlsMode, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "disabled" => Ok(TlsMode::Disabled),
            "server" => Ok(TlsMode::Server),
            "mutual" => Ok(TlsMode::Mutual),
            _ => Err("expected disabled, server or mutual".into()),
        }
    }
}

impl fmt::Display for TlsMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How to reach one Milvus. `Debug` is derived: the password is a [`Secret`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MilvusConfig {
    /// gRPC host.
    pub address: String,
    /// gRPC port.
    pub port: u16,
    /// User name ("" = no authentication).
    pub user: String,
    /// Password.
    pub password: Secret,
    /// Transport security.
    pub tls_mode: TlsMode,
    /// CA bundle to verify the server ("" = system roots).
    pub ca_cert_path: String,
    /// TLS server name override.
    pub server_name: String,
    /// Client certificate for mutual TLS.
    pub mtls_cert_path: String,
    /// Client key for mutual TLS.
    pub mtls_key_path: String,
    /// REST base URL; "" means derive it from the gRPC address (see [`MilvusConfig::rest_url`]).
    pub rest_endpoint: String,
    /// Management HTTP endpoint (GC pause/resume), e.g. `http://localhost:9091`.
    pub management_endpoint: String,
    /// CDC replicate channel name (v1 `milvus.rpcChannelName`, v2
    /// `milvus.replicate.rpcChannelName`).
    pub rpc_channel_name: String,
    /// The profile keys the user and password come from, and the file (see
    /// [`crate::config::StorageConfig::credentials`]); "" when not known.
    pub credentials: String,
}

impl MilvusConfig {
    /// The REST base URL: `rest_endpoint` when given, else `http(s)://address:port` (https when
    /// TLS is on), as milvus-backup does.
    pub fn rest_url(&self) -> String {
        if !self.rest_endpoint.is_empty() {
            return self.rest_endpoint.trim_end_matches('/').to_string();
        }
        let scheme = if self.tls_mode == TlsMode::Disabled {
            "http"
        } else {
            "https"
        };
        format!("{scheme}://{}:{}", self.address, self.port)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_forms() {
        assert_eq!(TlsMode::parse_v1("2"), Ok(TlsMode::Mutual));
        assert!(TlsMode::parse_v1("mutual").is_err());
        assert_eq!(TlsMode::parse_v2("Server"), Ok(TlsMode::Server));
        assert!(TlsMode::parse_v2("1").is_err());
        assert_eq!(TlsMode::Server.as_v1(), 1);
    }
}
