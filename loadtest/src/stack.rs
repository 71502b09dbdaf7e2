//! The broker and the schema registry: a private pair for the run (tansu on a free port, the dev
//! registry in this process), or the local stack `devstack up` left running (`.devstack/env`).

use std::path::Path;

use anyhow::{bail, Context, Result};
use devstack::broker::Broker;
use devstack::registry::{Compatibility, RegistryConfig, RegistryServer};

/// Where the broker and the registry are, and what to stop afterwards.
#[derive(Debug)]
pub struct Stack {
    /// `bootstrap.servers`.
    pub bootstrap: String,
    /// Registry base URL.
    pub registry_url: String,
    /// The broker's pid when this run started it (its RSS is sampled too).
    pub broker_pid: Option<u32>,
    /// How it was obtained, for the report.
    pub origin: String,
    broker: Option<Broker>,
    registry: Option<RegistryServer>,
}

impl Stack {
    /// Starts tansu (memory engine) and a registry for this run only; logs go to `dir`.
    pub async fn private(dir: &Path) -> Result<Stack> {
        let log = dir.join("tansu.log");
        let broker = tokio::task::spawn_blocking(move || Broker::start(&log))
            .await
            .context("starting tansu")?
            .context(
                "starting tansu (install it with scripts/bootstrap.sh or set SECFLOW_TANSU)",
            )?;
        let registry = RegistryServer::start(
            std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
            RegistryConfig {
                data_file: None,
                default_compatibility: Compatibility::Backward,
            },
        )
        .await
        .context("starting the schema registry")?;
        // tansu prints its storage engine at start (`storage: sqlite://tansu.db …`).
        let storage = std::fs::read_to_string(dir.join("tansu.log"))
            .ok()
            .and_then(|t| {
                t.lines()
                    .find_map(|l| l.strip_prefix("storage:").map(|s| s.trim().to_string()))
            })
            .unwrap_or_else(|| "storage engine not reported".into());
        Ok(Stack {
            bootstrap: broker.bootstrap(),
            registry_url: registry.url(),
            broker_pid: Some(broker.pid()),
            origin: format!("private: tansu ({storage}) + dev registry, started for this run"),
            broker: Some(broker),
            registry: Some(registry),
        })
    }

    /// The stack `devstack up` started, from its env file (`<state dir>/env`).
    pub fn reuse(state_dir: &Path) -> Result<Stack> {
        let file = state_dir.join("env");
        let text = std::fs::read_to_string(&file).with_context(|| {
            format!("{} (is the local stack up? `devstack up`)", file.display())
        })?;
        let (bootstrap, registry_url) = parse_env(&text);
        let (Some(bootstrap), Some(registry_url)) = (bootstrap, registry_url) else {
            bail!(
                "{}: no SECFLOW_BOOTSTRAP / SECFLOW_REGISTRY_URL",
                file.display()
            );
        };
        Ok(Stack {
            bootstrap,
            registry_url,
            broker_pid: None,
            origin: format!("reused ({})", file.display()),
            broker: None,
            registry: None,
        })
    }

    /// Stops what this run started.
    pub async fn stop(mut self) {
        if let Some(r) = self.registry.take() {
            r.shutdown().await;
        }
        if let Some(b) = self.broker.take() {
            b.stop();
        }
    }
}

/// `SECFLOW_BOOTSTRAP` and `SECFLOW_REGISTRY_URL` from `export NAME=value` lines.
fn parse_env(text: &str) -> (Option<String>, Option<String>) {
    let mut bootstrap = None;
    let mut registry = None;
    for line in text.lines() {
        let line = line.trim().trim_start_matches("export ").trim();
        if let Some((k, v)) = line.split_once('=') {
            let v = v.trim().trim_matches('"').trim_matches('\'').to_string();
            match k.trim() {
                "SECFLOW_BOOTSTRAP" => bootstrap = Some(v),
                "SECFLOW_REGISTRY_URL" => registry = Some(v),
                _ => {}
            }
        }
    }
    (bootstrap, registry)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_file() {
        let (b, r) = parse_env(
            "export SECFLOW_BOOTSTRAP=127.0.0.1:9092\nexport SECFLOW_REGISTRY_URL=http://127.0.0.1:8081\n",
        );
        assert_eq!(b.as_deref(), Some("127.0.0.1:9092"));
        assert_eq!(r.as_deref(), Some("http://127.0.0.1:8081"));
        assert_eq!(parse_env("x=1"), (None, None));
    }
}
