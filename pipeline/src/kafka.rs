//! Kafka clients built from the topology: one place that knows the librdkafka settings, the
//! topic admin (create, check), and the producer/consumer flavours the stages use.

use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::FutureProducer;

use crate::topology::{KafkaConfig, ResolvedTopic, SaslMechanism, SecretError, SecurityProtocol};

/// Why a Kafka client could not be set up or a topic check failed.
#[derive(Debug, thiserror::Error)]
pub enum KafkaSetupError {
    /// librdkafka refused the configuration or the call.
    #[error("kafka: {0}")]
    Client(#[from] KafkaError),
    /// A secret in the Kafka settings could not be read.
    #[error("kafka: {0}")]
    Secret(#[from] SecretError),
    /// Topics a stage needs are missing; they are never auto-created.
    #[error("missing topics: {} (create them with `secflow topics create --topology FILE`)", .0.join(", "))]
    MissingTopics(Vec<String>),
    /// The broker refused to create a topic.
    #[error("creating topic {topic}: {reason}")]
    CreateTopic {
        /// The topic.
        topic: String,
        /// The broker's error.
        reason: String,
    },
    /// A blocking metadata call did not finish.
    #[error("kafka metadata call failed: {0}")]
    Join(String),
}

/// This process's stable instance id, from `SECFLOW_INSTANCE_ID` (e.g. the pod name of a
/// StatefulSet). Unset: dynamic group membership.
pub fn configured_instance_id() -> Option<String> {
    std::env::var("SECFLOW_INSTANCE_ID")
        .ok()
        .filter(|s| !s.trim().is_empty())
}

/// How long admin and metadata calls may take.
pub const ADMIN_TIMEOUT: Duration = Duration::from_secs(15);

/// The settings every client shares: brokers, client id, security, pass-through properties.
pub fn base_config(k: &KafkaConfig, role: &str) -> Result<ClientConfig, KafkaSetupError> {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", &k.bootstrap_servers)
        .set("client.id", format!("{}.{}", k.client_id, role));
    let sec = &k.security;
    let protocol = match sec.protocol {
        SecurityProtocol::Plaintext => "plaintext",
        SecurityProtocol::Ssl => "ssl",
        SecurityProtocol::SaslPlaintext => "sasl_plaintext",
        SecurityProtocol::SaslSsl => "sasl_ssl",
    };
    c.set("security.protocol", protocol);
    if let Some(m) = sec.sasl_mechanism {
        let m = match m {
            SaslMechanism::Plain => "PLAIN",
            SaslMechanism::ScramSha256 => "SCRAM-SHA-256",
            SaslMechanism::ScramSha512 => "SCRAM-SHA-512",
        };
        c.set("sasl.mechanism", m);
    }
    if let Some(u) = &sec.username {
        c.set("sasl.username", u);
    }
    if let Some(p) = &sec.password {
        c.set("sasl.password", p.resolve()?.expose());
    }
    if let Some(ca) = &sec.ca_location {
        c.set("ssl.ca.location", ca.to_string_lossy());
    }
    for (key, value) in &k.properties {
        c.set(key, value);
    }
    Ok(c)
}

/// An idempotent producer (`acks=all`): a retried send never duplicates or reorders a record
/// within a partition.
pub fn idempotent_producer(k: &KafkaConfig, role: &str) -> Result<FutureProducer, KafkaSetupError> {
    let mut c = base_config(k, role)?;
    c.set("enable.idempotence", "true")
        .set("acks", "all")
        .set("linger.ms", "5")
        .set("compression.type", "lz4");
    apply_overrides(&mut c, k);
    Ok(c.create()?)
}

/// Settings of every consumer a stage creates: group, earliest reset, read_committed, our
/// session timeout. `auto_commit` commits only offsets the stage stored (never on its own).
/// `max.poll.interval.ms` keeps librdkafka's default (5 min): a sink whose circuit is open
/// stops polling, and a shorter interval would make the group evict it mid-outage.
pub fn consumer_config(
    k: &KafkaConfig,
    role: &str,
    group: &str,
    auto_commit: bool,
) -> Result<ClientConfig, KafkaSetupError> {
    let mut c = base_config(k, role)?;
    // Static membership: a restarted instance (same id) takes its partitions back at once
    // instead of waiting for the group to notice its predecessor is gone.
    if let Some(instance) = configured_instance_id() {
        c.set("group.instance.id", format!("{group}.{instance}"));
    }
    c.set("group.id", group)
        .set("enable.auto.commit", auto_commit.to_string())
        .set("auto.commit.interval.ms", "1000")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set("isolation.level", "read_committed")
        .set("session.timeout.ms", k.session_timeout_ms.to_string())
        .set(
            "heartbeat.interval.ms",
            (k.session_timeout_ms / 3).max(100).to_string(),
        );
    apply_overrides(&mut c, k);
    Ok(c)
}

/// A consumer in group `group` that never commits on its own: the stage stores offsets only
/// for records it has finished, and librdkafka commits the stored ones.
pub fn consumer(
    k: &KafkaConfig,
    role: &str,
    group: &str,
) -> Result<StreamConsumer, KafkaSetupError> {
    Ok(consumer_config(k, role, group, true)?.create()?)
}

/// The topology's pass-through properties win over our defaults.
fn apply_overrides(c: &mut ClientConfig, k: &KafkaConfig) {
    for (key, value) in &k.properties {
        c.set(key, value);
    }
}

fn admin(k: &KafkaConfig) -> Result<AdminClient<DefaultClientContext>, KafkaSetupError> {
    Ok(base_config(k, "admin")?.create()?)
}

/// What `create_topics` did for one topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TopicOutcome {
    /// Newly created.
    Created(String),
    /// Was already there (left unchanged).
    Existed(String),
}

/// Creates every topic that does not exist yet; existing ones are left as they are.
pub async fn create_topics(
    k: &KafkaConfig,
    topics: &[ResolvedTopic],
) -> Result<Vec<TopicOutcome>, KafkaSetupError> {
    let admin = admin(k)?;
    let new: Vec<NewTopic<'_>> = topics
        .iter()
        .map(|t| {
            let mut n = NewTopic::new(
                &t.name,
                t.partitions,
                TopicReplication::Fixed(t.replication_factor),
            );
            for (key, value) in &t.config {
                n = n.set(key, value);
            }
            n
        })
        .collect();
    let opts = AdminOptions::new().operation_timeout(Some(ADMIN_TIMEOUT));
    let results = admin.create_topics(new.iter(), &opts).await?;
    let mut out = Vec::new();
    for r in results {
        match r {
            Ok(name) => out.push(TopicOutcome::Created(name)),
            Err((name, RDKafkaErrorCode::TopicAlreadyExists)) => {
                out.push(TopicOutcome::Existed(name))
            }
            Err((topic, code)) => {
                return Err(KafkaSetupError::CreateTopic {
                    topic,
                    reason: code.to_string(),
                })
            }
        }
    }
    Ok(out)
}

/// Names of the topics among `names` that the cluster does not have.
pub async fn missing_topics(
    k: &KafkaConfig,
    names: &[String],
) -> Result<Vec<String>, KafkaSetupError> {
    let admin = admin(k)?;
    let names = names.to_vec();
    tokio::task::spawn_blocking(move || {
        let md = admin.inner().fetch_metadata(None, ADMIN_TIMEOUT)?;
        let present: std::collections::HashSet<&str> = md
            .topics()
            .iter()
            .filter(|t| t.error().is_none() && !t.partitions().is_empty())
            .map(|t| t.name())
            .collect();
        Ok(names
            .into_iter()
            .filter(|n| !present.contains(n.as_str()))
            .collect())
    })
    .await
    .map_err(|e| KafkaSetupError::Join(e.to_string()))?
}

/// Fails with a message naming every missing topic: each stage calls this at start so a
/// missing topic is an immediate, clear error rather than a 30 s stall.
pub async fn require_topics(k: &KafkaConfig, names: &[String]) -> Result<(), KafkaSetupError> {
    let missing = missing_topics(k, names).await?;
    if missing.is_empty() {
        Ok(())
    } else {
        Err(KafkaSetupError::MissingTopics(missing))
    }
}

/// Partition count of a topic (for progress and lag figures).
pub async fn partition_count(k: &KafkaConfig, topic: &str) -> Result<usize, KafkaSetupError> {
    let c: StreamConsumer = base_config(k, "metadata")?.create()?;
    let topic = topic.to_string();
    tokio::task::spawn_blocking(move || {
        let md = c.fetch_metadata(Some(&topic), ADMIN_TIMEOUT)?;
        Ok(md
            .topics()
            .first()
            .map(|t| t.partitions().len())
            .unwrap_or(0))
    })
    .await
    .map_err(|e| KafkaSetupError::Join(e.to_string()))?
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use rdkafka::consumer::BaseConsumer;

    fn config(yaml: &str) -> KafkaConfig {
        serde_yaml_ng::from_str(yaml).unwrap()
    }

    /// librdkafka is built with OpenSSL: TLS and SASL/SCRAM settings make a client (a build
    /// without it refuses them when the client is created: "OpenSSL not available at build
    /// time"). The TLS path against a broker is `tests/kafka_tls.rs`.
    #[test]
    fn tls_and_scram_settings_make_a_client() {
        let dir = tempfile::tempdir().unwrap();
        let password = dir.path().join("password");
        std::fs::write(&password, "s3cret").unwrap();
        for (protocol, mechanism) in [
            ("ssl", None),
            ("sasl_ssl", Some("SCRAM-SHA-512")),
            ("sasl_ssl", Some("SCRAM-SHA-256")),
            ("sasl_ssl", Some("PLAIN")),
            ("sasl_plaintext", Some("SCRAM-SHA-256")),
        ] {
            let mut yaml =
                format!("bootstrap_servers: 127.0.0.1:1\nsecurity:\n  protocol: {protocol}\n");
            if let Some(m) = mechanism {
                yaml.push_str(&format!(
                    "  sasl_mechanism: {m}\n  username: svc-secflow\n  password: {{file: {}}}\n",
                    password.display()
                ));
            }
            let c = base_config(&config(&yaml), "test").unwrap();
            let made: Result<BaseConsumer, _> = c.create();
            assert!(made.is_ok(), "{protocol} {mechanism:?}: {:?}", made.err());
        }
    }
}
