//! Errors: [`RegistryError`] for the server's life cycle, [`ApiError`] for HTTP responses.

use std::net::SocketAddr;
use std::path::PathBuf;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::http::json_response;

/// Something that stops the registry from starting, serving or storing its state.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The listening socket could not be bound.
    #[error("schema registry: cannot bind {addr}: {source}")]
    Bind {
        /// The address that was asked for.
        addr: SocketAddr,
        /// Why binding failed.
        #[source]
        source: std::io::Error,
    },
    /// The bound socket's address could not be read.
    #[error("schema registry: cannot read the listener's local address: {0}")]
    LocalAddr(#[source] std::io::Error),
    /// The data file exists but could not be read.
    #[error("schema registry: cannot read data file {}: {source}", path.display())]
    ReadDataFile {
        /// The data file.
        path: PathBuf,
        /// Why reading failed.
        #[source]
        source: std::io::Error,
    },
    /// The data file was read but its content is not a valid registry state.
    #[error("schema registry: data file {} is corrupt: {reason}", path.display())]
    CorruptDataFile {
        /// The data file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The state could not be written to the data file (or its temporary sibling).
    #[error("schema registry: cannot write data file {}: {source}", path.display())]
    WriteDataFile {
        /// The file being written.
        path: PathBuf,
        /// Why writing failed.
        #[source]
        source: std::io::Error,
    },
    /// The state could not be encoded as JSON.
    #[error("schema registry: cannot encode state: {0}")]
    Encode(#[source] serde_json::Error),
    /// The HTTP server stopped with an I/O error.
    #[error("schema registry: server failed: {0}")]
    Serve(#[source] std::io::Error),
}

/// An error answered to an HTTP client as `{"error_code": N, "message": "..."}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ApiError {
    pub(crate) status: StatusCode,
    pub(crate) code: u32,
    pub(crate) message: String,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, code: u32, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }

    /// 40401
    pub(crate) fn subject_not_found(subject: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            40401,
            format!("Subject '{subject}' not found."),
        )
    }

    /// 40402
    pub(crate) fn version_not_found(version: impl std::fmt::Display) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            40402,
            format!("Version {version} not found."),
        )
    }

    /// 40403 for a lookup by content.
    pub(crate) fn schema_not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, 40403, "Schema not found")
    }

    /// 40403 for a lookup by id.
    pub(crate) fn schema_id_not_found(id: impl std::fmt::Display) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            40403,
            format!("Schema {id} not found"),
        )
    }

    /// 40404
    pub(crate) fn subject_soft_deleted(subject: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            40404,
            format!(
                "Subject '{subject}' was soft deleted.Set permanent=true to delete permanently"
            ),
        )
    }

    /// 40405
    pub(crate) fn subject_not_soft_deleted(subject: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            40405,
            format!("Subject '{subject}' was not deleted first before being permanently deleted"),
        )
    }

    /// 40406
    pub(crate) fn version_soft_deleted(subject: &str, version: u32) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            40406,
            format!(
                "Subject '{subject}' Version {version} was soft deleted.Set permanent=true to delete permanently"
            ),
        )
    }

    /// 40407
    pub(crate) fn version_not_soft_deleted(subject: &str, version: u32) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            40407,
            format!(
                "Subject '{subject}' Version {version} was not deleted first before being permanently deleted"
            ),
        )
    }

    /// 40408
    pub(crate) fn subject_level_compatibility_not_configured(subject: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            40408,
            format!("Subject '{subject}' does not have subject-level compatibility configured"),
        )
    }

    /// 409
    pub(crate) fn incompatible(subject: &str, messages: &[String]) -> Self {
        Self::new(
            StatusCode::CONFLICT,
            409,
            format!(
                "Schema being registered is incompatible with an earlier schema for subject \"{subject}\", details: [{}]",
                messages.join(", ")
            ),
        )
    }

    /// 42201
    pub(crate) fn invalid_schema(detail: impl std::fmt::Display) -> Self {
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            42201,
            format!("Invalid schema: {detail}"),
        )
    }

    /// 42202
    pub(crate) fn invalid_version(version: &str) -> Self {
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            42202,
            format!(
                "The specified version '{version}' is not a valid version id. Allowed values are between [1, 2^31-1] and the string \"latest\""
            ),
        )
    }

    /// 42203
    pub(crate) fn invalid_compatibility_level(level: &str) -> Self {
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            42203,
            format!(
                "Invalid compatibility level '{level}'. Valid values are none, backward, forward, full, backward_transitive, forward_transitive, and full_transitive"
            ),
        )
    }

    /// 42206
    pub(crate) fn referenced(subject: &str, version: u32) -> Self {
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            42206,
            format!(
                "One or more references exist to the schema {{subject={subject},version={version}}}."
            ),
        )
    }

    /// 50001
    pub(crate) fn store(err: &RegistryError) -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            50001,
            format!("Error in the backend data store: {err}"),
        )
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({}): {}", self.status, self.code, self.message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        json_response(
            self.status,
            &serde_json::json!({ "error_code": self.code, "message": self.message }),
        )
    }
}
