//! A Confluent-compatible schema registry (Avro only) for local runs and tests.
//!
//! It speaks the subset of the Confluent Schema Registry REST API that producers, consumers and
//! the Confluent clients use: registering and looking up schemas under subjects, fetching schemas
//! by global id, compatibility checks and configuration, and soft/hard deletes. Response bodies,
//! status codes and `error_code`s follow Confluent's.
//!
//! Schema identity ignores formatting: two schema strings that parse to the same Avro schema
//! (including defaults, logical types, aliases and docs) are the same schema and share one global
//! id across subjects.
//!
//! State lives in memory and, when [`RegistryConfig::data_file`] is set, is written to that file
//! after every change (a temporary sibling then an atomic rename), and loaded at start, so ids
//! and versions survive a restart.
//!
//! ```no_run
//! # async fn demo() -> Result<(), devstack::registry::RegistryError> {
//! use devstack::registry::{RegistryConfig, RegistryServer};
//! let server = RegistryServer::start(
//!     "127.0.0.1:0".parse().expect("literal address"),
//!     RegistryConfig::default(),
//! )
//! .await?;
//! println!("schema registry at {}", server.url());
//! server.shutdown().await;
//! # Ok(())
//! # }
//! ```

mod compat;
mod error;
mod http;
mod store;

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use error::RegistryError;

/// How the registry is set up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryConfig {
    /// Where the state is persisted; `None` keeps it in memory only.
    pub data_file: Option<PathBuf>,
    /// The global compatibility level until one is set with `PUT /config`.
    pub default_compatibility: Compatibility,
}

impl Default for RegistryConfig {
    fn default() -> Self {
        Self {
            data_file: None,
            default_compatibility: Compatibility::Backward,
        }
    }
}

/// A compatibility level, serialized as Confluent spells it (`"BACKWARD"`, `"FULL_TRANSITIVE"`…).
///
/// Backward: the new schema can read data written with the old one. Forward: the old schema can
/// read data written with the new one. Full: both. Non-transitive levels check against the latest
/// version only, transitive ones against every (non-deleted) version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Compatibility {
    /// No check.
    None,
    /// New reads old, against the latest version.
    #[default]
    Backward,
    /// New reads old, against all versions.
    BackwardTransitive,
    /// Old reads new, against the latest version.
    Forward,
    /// Old reads new, against all versions.
    ForwardTransitive,
    /// Both directions, against the latest version.
    Full,
    /// Both directions, against all versions.
    FullTransitive,
}

impl Compatibility {
    /// Confluent's name for the level, e.g. `"BACKWARD_TRANSITIVE"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "NONE",
            Self::Backward => "BACKWARD",
            Self::BackwardTransitive => "BACKWARD_TRANSITIVE",
            Self::Forward => "FORWARD",
            Self::ForwardTransitive => "FORWARD_TRANSITIVE",
            Self::Full => "FULL",
            Self::FullTransitive => "FULL_TRANSITIVE",
        }
    }

    /// Whether the level checks against every version rather than the latest only.
    pub fn is_transitive(self) -> bool {
        matches!(
            self,
            Self::BackwardTransitive | Self::ForwardTransitive | Self::FullTransitive
        )
    }
}

impl std::fmt::Display for Compatibility {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The string is not one of the seven compatibility levels.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown compatibility level '{0}'")]
pub struct UnknownCompatibility(pub String);

impl FromStr for Compatibility {
    type Err = UnknownCompatibility;

    /// Parses a level case-insensitively (`"full_transitive"` is accepted).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        const ALL: [Compatibility; 7] = [
            Compatibility::None,
            Compatibility::Backward,
            Compatibility::BackwardTransitive,
            Compatibility::Forward,
            Compatibility::ForwardTransitive,
            Compatibility::Full,
            Compatibility::FullTransitive,
        ];
        ALL.into_iter()
            .find(|level| level.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| UnknownCompatibility(s.to_owned()))
    }
}

/// A registry serving HTTP in a background tokio task; see [`RegistryServer::start`].
#[derive(Debug)]
pub struct RegistryServer {
    addr: SocketAddr,
    shutdown: oneshot::Sender<()>,
    task: JoinHandle<Result<(), RegistryError>>,
}

impl RegistryServer {
    /// Loads the state (from `config.data_file`, if any), binds to `addr` (use `127.0.0.1:0` for
    /// a free port) and serves in a tokio task until [`shutdown`](Self::shutdown) is called or the
    /// server is dropped.
    ///
    /// # Errors
    /// [`RegistryError::ReadDataFile`] / [`RegistryError::CorruptDataFile`] when the data file
    /// cannot be loaded, [`RegistryError::Bind`] when the address cannot be bound.
    pub async fn start(
        addr: SocketAddr,
        config: RegistryConfig,
    ) -> Result<RegistryServer, RegistryError> {
        let state = http::AppState::load(&config).await?;
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| RegistryError::Bind { addr, source })?;
        let local = listener.local_addr().map_err(RegistryError::LocalAddr)?;
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let shutdown = async move {
                // A dropped sender also means "stop".
                let _ = rx.await;
            };
            serve_state(listener, state, shutdown).await
        });
        tracing::info!(addr = %local, "schema registry listening");
        Ok(RegistryServer {
            addr: local,
            shutdown: tx,
            task,
        })
    }

    /// The address the server is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The base URL, e.g. `http://127.0.0.1:40123`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops accepting connections, lets in-flight requests finish, and waits for the task.
    pub async fn shutdown(self) {
        let RegistryServer { shutdown, task, .. } = self;
        let _ = shutdown.send(());
        match task.await {
            Ok(Ok(())) => {}
            Ok(Err(err)) => tracing::error!(error = %err, "schema registry stopped with an error"),
            Err(err) => tracing::error!(error = %err, "schema registry task failed"),
        }
    }
}

/// Serves the registry on `listener` until `shutdown` completes (then shuts down gracefully).
/// This is what the launcher binary runs.
///
/// # Errors
/// [`RegistryError::ReadDataFile`] / [`RegistryError::CorruptDataFile`] when the data file
/// cannot be loaded, [`RegistryError::Serve`] when the server fails.
pub async fn serve(
    listener: TcpListener,
    config: RegistryConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), RegistryError> {
    let state = http::AppState::load(&config).await?;
    serve_state(listener, state, shutdown).await
}

async fn serve_state(
    listener: TcpListener,
    state: http::AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), RegistryError> {
    axum::serve(listener, http::router(state))
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(RegistryError::Serve)
}
