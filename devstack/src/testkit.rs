//! Test support: a private broker and schema registry on free loopback ports for one test
//! binary (or one test), torn down when dropped. Only processes this kit started are stopped.

use std::path::PathBuf;

use crate::broker::{Broker, BrokerError};
use crate::registry::{Compatibility, RegistryConfig, RegistryError, RegistryServer};

/// Why the stack could not be started.
#[derive(Debug, thiserror::Error)]
pub enum StackError {
    /// The broker failed.
    #[error(transparent)]
    Broker(#[from] BrokerError),
    /// The registry failed.
    #[error(transparent)]
    Registry(#[from] RegistryError),
    /// A temp dir could not be made.
    #[error("test stack: {0}")]
    Io(#[from] std::io::Error),
}

/// A broker and a registry for one test.
#[derive(Debug)]
pub struct TestStack {
    broker: Option<Broker>,
    registry: Option<RegistryServer>,
    dir: tempfile::TempDir,
}

impl TestStack {
    /// Starts tansu and an in-memory registry on free ports.
    pub async fn start() -> Result<TestStack, StackError> {
        let dir = tempfile::Builder::new()
            .prefix("secflow-stack-")
            .tempdir()?;
        let log = dir.path().join("tansu.log");
        let broker = tokio::task::spawn_blocking(move || Broker::start(&log))
            .await
            .map_err(|e| StackError::Io(std::io::Error::other(e.to_string())))??;
        let registry = RegistryServer::start(
            std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
            RegistryConfig {
                data_file: Some(dir.path().join("registry.json")),
                default_compatibility: Compatibility::Backward,
            },
        )
        .await?;
        Ok(TestStack {
            broker: Some(broker),
            registry: Some(registry),
            dir,
        })
    }

    /// `bootstrap.servers` of the broker.
    pub fn bootstrap(&self) -> String {
        self.broker
            .as_ref()
            .map(Broker::bootstrap)
            .unwrap_or_default()
    }

    /// Base URL of the registry.
    pub fn registry_url(&self) -> String {
        self.registry
            .as_ref()
            .map(RegistryServer::url)
            .unwrap_or_default()
    }

    /// A scratch directory that lives as long as the stack.
    pub fn dir(&self) -> PathBuf {
        self.dir.path().to_path_buf()
    }

    /// A minimal topology YAML pointing at this stack, with `stages_yaml` appended under
    /// `stages:` (pass an empty string for none).
    pub fn topology_yaml(&self, stages_yaml: &str) -> String {
        format!(
            "name: test\nkafka:\n  bootstrap_servers: {}\n  session_timeout_ms: 6000\nschema_registry:\n  url: {}\nstages:\n{}",
            self.bootstrap(),
            self.registry_url(),
            if stages_yaml.is_empty() { "  []\n" } else { stages_yaml }
        )
    }

    /// Stops everything now.
    pub async fn stop(mut self) {
        if let Some(r) = self.registry.take() {
            r.shutdown().await;
        }
        if let Some(b) = self.broker.take() {
            b.stop();
        }
    }
}
