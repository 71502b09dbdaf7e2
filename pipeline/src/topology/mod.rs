//! Topology files: loading, `${ENV}` substitution, validation with `file:line:column` errors,
//! and the resolved view the stages use.

mod model;
mod source;

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};

pub use model::*;
pub use source::{render_path, PathStep, Position, PositionIndex};

/// One problem found in a topology file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// The file, as given.
    pub file: PathBuf,
    /// Where in it (absent only when the file could not be read).
    pub position: Option<Position>,
    /// Key path, e.g. `stages[1].input` (empty for syntax errors).
    pub path: String,
    /// What is wrong and, where possible, what would be right.
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(p) = self.position {
            write!(f, ":{}:{}", p.line, p.column)?;
        }
        if self.path.is_empty() {
            write!(f, ": {}", self.message)
        } else {
            write!(f, ": {}: {}", self.path, self.message)
        }
    }
}

/// A topology that failed to load; lists every problem found, each with its position.
#[derive(Debug, thiserror::Error)]
pub struct TopologyError {
    /// All problems, in file order where known.
    pub diagnostics: Vec<Diagnostic>,
}

impl fmt::Display for TopologyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.diagnostics.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{d}")?;
        }
        Ok(())
    }
}

/// A loaded, validated topology and the file it came from.
#[derive(Debug, Clone)]
pub struct LoadedTopology {
    /// Where it was read from.
    pub file: PathBuf,
    /// The model.
    pub topology: Topology,
}

/// What a topic resolves to after defaults: the name and the creation settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedTopic {
    /// The topic name.
    pub name: String,
    /// Partition count.
    pub partitions: i32,
    /// Replication factor.
    pub replication_factor: i32,
    /// Topic configs (cleanup policy included).
    pub config: BTreeMap<String, String>,
}

impl TopicRole {
    /// The topic role a format is written to.
    pub fn of_format(format: Format) -> TopicRole {
        match format {
            Format::Ecs => TopicRole::Ecs,
            Format::Cef => TopicRole::Cef,
            Format::Ocsf => TopicRole::Ocsf,
        }
    }

    /// Every role, in the order topics are listed.
    pub const ALL: [TopicRole; 9] = [
        TopicRole::Canonical,
        TopicRole::Enriched,
        TopicRole::Ecs,
        TopicRole::Cef,
        TopicRole::Ocsf,
        TopicRole::Indicators,
        TopicRole::Review,
        TopicRole::Checkpoints,
        TopicRole::Audit,
    ];

    /// The key of this role under `topics:`.
    pub fn key(self) -> &'static str {
        match self {
            TopicRole::Canonical => "canonical",
            TopicRole::Enriched => "enriched",
            TopicRole::Ecs => "ecs",
            TopicRole::Cef => "cef",
            TopicRole::Ocsf => "ocsf",
            TopicRole::Indicators => "indicators",
            TopicRole::Review => "review",
            TopicRole::Checkpoints => "checkpoints",
            TopicRole::Audit => "audit",
        }
    }

    /// The design's default name.
    pub fn default_name(self) -> &'static str {
        match self {
            TopicRole::Canonical => "security-events.canonical.v1",
            TopicRole::Enriched => "security-events.enriched.v1",
            TopicRole::Ecs => "security-events.ecs.v1",
            TopicRole::Cef => "security-events.cef.v1",
            TopicRole::Ocsf => "security-events.ocsf.v1",
            TopicRole::Indicators => "intel.indicators.v1",
            TopicRole::Review => "intel.review.v1",
            TopicRole::Checkpoints => "secflow.intel.checkpoints",
            TopicRole::Audit => "secflow.audit",
        }
    }

    /// Compacted per the design (latest value per key is what matters).
    pub fn compacted(self) -> bool {
        matches!(self, TopicRole::Indicators | TopicRole::Checkpoints)
    }
}

impl Topics {
    fn spec(&self, role: TopicRole) -> &TopicSpec {
        match role {
            TopicRole::Canonical => &self.canonical,
            TopicRole::Enriched => &self.enriched,
            TopicRole::Ecs => &self.ecs,
            TopicRole::Cef => &self.cef,
            TopicRole::Ocsf => &self.ocsf,
            TopicRole::Indicators => &self.indicators,
            TopicRole::Review => &self.review,
            TopicRole::Checkpoints => &self.checkpoints,
            TopicRole::Audit => &self.audit,
        }
    }

    /// The topic of `role`, with defaults applied.
    pub fn resolved(&self, role: TopicRole) -> ResolvedTopic {
        let spec = self.spec(role);
        let mut config = spec.config.clone();
        let policy = if role.compacted() {
            "compact"
        } else {
            "delete"
        };
        config
            .entry("cleanup.policy".to_string())
            .or_insert_with(|| policy.to_string());
        ResolvedTopic {
            name: spec
                .name
                .clone()
                .unwrap_or_else(|| role.default_name().to_string()),
            partitions: spec.partitions.unwrap_or(DEFAULT_PARTITIONS),
            replication_factor: spec.replication_factor.unwrap_or(1),
            config,
        }
    }
}

/// Partitions of a topic whose count the topology does not set.
pub const DEFAULT_PARTITIONS: i32 = 3;

impl Topology {
    /// The dead-letter topic of a stage.
    pub fn stage_dlq(&self, stage: &StageConfig) -> ResolvedTopic {
        let name = match stage {
            StageConfig::Tap(t) => t.dlq_topic.clone(),
            StageConfig::Transform(t) => t.dlq_topic.clone(),
            StageConfig::Enrich(t) => t.dlq_topic.clone(),
            StageConfig::Sink(_) | StageConfig::IntelPoll(_) => None,
        }
        .unwrap_or_else(|| format!("{}.dlq", stage.name()));
        let partitions = self.topics.resolved(TopicRole::Canonical).partitions;
        ResolvedTopic {
            name,
            partitions,
            replication_factor: self
                .topics
                .resolved(TopicRole::Canonical)
                .replication_factor,
            config: BTreeMap::from([("cleanup.policy".to_string(), "delete".to_string())]),
        }
    }

    /// Every topic the topology names (roles, then stage DLQs), deduplicated by name: what
    /// `secflow topics create` creates.
    pub fn all_topics(&self) -> Vec<ResolvedTopic> {
        let mut seen = HashSet::new();
        let mut out = Vec::new();
        let roles = TopicRole::ALL.iter().map(|r| self.topics.resolved(*r));
        let dlqs = self
            .stages
            .iter()
            .filter(|s| s.has_dlq())
            .map(|s| self.stage_dlq(s));
        let tiers = self.stages.iter().flat_map(|s| self.sink_tier_topics(s));
        for t in roles.chain(dlqs).chain(tiers) {
            if seen.insert(t.name.clone()) {
                out.push(t);
            }
        }
        out
    }

    /// The retry-tier topics of a sink stage (none for other stages).
    pub fn sink_tier_topics(&self, stage: &StageConfig) -> Vec<ResolvedTopic> {
        let StageConfig::Sink(sink) = stage else {
            return Vec::new();
        };
        let base = self.topics.resolved(sink.input);
        crate::delivery::tiers::tiers(&sink.name, &sink.tiers)
            .unwrap_or_default()
            .into_iter()
            .map(|t| ResolvedTopic {
                name: t.topic,
                partitions: base.partitions,
                replication_factor: base.replication_factor,
                config: BTreeMap::from([("cleanup.policy".to_string(), "delete".to_string())]),
            })
            .collect()
    }

    /// Finds a stage by name.
    pub fn stage(&self, name: &str) -> Option<&StageConfig> {
        self.stages.iter().find(|s| s.name() == name)
    }
}

/// Loads and validates a topology file with the process environment.
pub fn load(path: &Path) -> Result<LoadedTopology, TopologyError> {
    let text = std::fs::read_to_string(path).map_err(|e| TopologyError {
        diagnostics: vec![Diagnostic {
            file: path.to_path_buf(),
            position: None,
            path: String::new(),
            message: format!("cannot read topology: {e}"),
        }],
    })?;
    load_str(path, &text, |k| std::env::var(k).ok())
}

/// Loads and validates topology text (`file` is only used in messages).
pub fn load_str(
    file: &Path,
    text: &str,
    env: impl Fn(&str) -> Option<String>,
) -> Result<LoadedTopology, TopologyError> {
    let diag = |position: Option<Position>, path: String, message: String| Diagnostic {
        file: file.to_path_buf(),
        position,
        path,
        message,
    };
    let expanded = substitute_env(text, env).map_err(|errs| TopologyError {
        diagnostics: errs
            .into_iter()
            .map(|e| diag(Some(e.position), String::new(), e.message))
            .collect(),
    })?;
    let topology: Topology = serde_yaml_ng::from_str(&expanded).map_err(|e| {
        let position = e.location().map(|l| Position {
            line: l.line(),
            column: l.column(),
        });
        TopologyError {
            diagnostics: vec![diag(position, String::new(), e.to_string())],
        }
    })?;
    let index = PositionIndex::build(&expanded);
    let problems = validate(&topology);
    if problems.is_empty() {
        Ok(LoadedTopology {
            file: file.to_path_buf(),
            topology,
        })
    } else {
        Err(TopologyError {
            diagnostics: problems
                .into_iter()
                .map(|(path, message)| diag(index.locate(&path), render_path(&path), message))
                .collect(),
        })
    }
}

use source::substitute_env;

fn key(k: &str) -> PathStep {
    PathStep::Key(k.to_string())
}

/// `rules[2].field` → [Key(rules), Index(2), Key(field)].
fn parse_rel_path(path: &str) -> Vec<PathStep> {
    let mut out = Vec::new();
    for part in path.split('.') {
        let (name, rest) = part.split_once('[').unwrap_or((part, ""));
        if !name.is_empty() {
            out.push(key(name));
        }
        for idx in rest.split('[') {
            if let Ok(i) = idx.trim_end_matches(']').parse::<usize>() {
                out.push(PathStep::Index(i));
            }
        }
    }
    out
}

/// Kafka's rule for topic names.
pub fn valid_topic_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 249
        && name != "."
        && name != ".."
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

/// Semantic checks serde cannot express. Returns (path, message) pairs.
fn validate(t: &Topology) -> Vec<(Vec<PathStep>, String)> {
    let mut problems = Vec::new();
    if t.name.trim().is_empty() {
        problems.push((vec![key("name")], "must not be empty".to_string()));
    }
    if t.kafka.bootstrap_servers.trim().is_empty() {
        problems.push((
            vec![key("kafka"), key("bootstrap_servers")],
            "must list at least one host:port".to_string(),
        ));
    }
    for server in t.kafka.bootstrap_servers.split(',') {
        let server = server.trim();
        if !server.is_empty()
            && server
                .rsplit_once(':')
                .and_then(|(_, p)| p.parse::<u16>().ok())
                .is_none()
        {
            problems.push((
                vec![key("kafka"), key("bootstrap_servers")],
                format!("`{server}` is not host:port"),
            ));
        }
    }
    let sec = &t.kafka.security;
    let sasl = matches!(
        sec.protocol,
        SecurityProtocol::SaslPlaintext | SecurityProtocol::SaslSsl
    );
    if sasl && (sec.sasl_mechanism.is_none() || sec.username.is_none() || sec.password.is_none()) {
        problems.push((
            vec![key("kafka"), key("security")],
            "SASL needs sasl_mechanism, username and password".to_string(),
        ));
    }
    let url = t.schema_registry.url.trim();
    if !(url.starts_with("http://") || url.starts_with("https://")) || url.len() < 10 {
        problems.push((
            vec![key("schema_registry"), key("url")],
            format!("`{url}` is not an http(s) URL"),
        ));
    }
    if t.schema_registry.password.is_some() && t.schema_registry.username.is_none() {
        problems.push((
            vec![key("schema_registry"), key("username")],
            "a password needs a username".to_string(),
        ));
    }
    let tel = &t.telemetry;
    if let Some(ep) = tel.otlp_endpoint.as_deref().map(str::trim) {
        if !(ep.starts_with("http://") || ep.starts_with("https://")) || ep.len() < 10 {
            problems.push((
                vec![key("telemetry"), key("otlp_endpoint")],
                format!("`{ep}` is not an http(s) URL (OTLP over HTTP, e.g. http://otel-collector:4318)"),
            ));
        }
    }
    if !(0.0..=1.0).contains(&tel.sample_ratio) {
        problems.push((
            vec![key("telemetry"), key("sample_ratio")],
            format!("{} is not between 0.0 and 1.0", tel.sample_ratio),
        ));
    }
    let mut names = HashSet::new();
    for role in TopicRole::ALL {
        let r = t.topics.resolved(role);
        let at = |field: &str| vec![key("topics"), key(role.key()), key(field)];
        if !valid_topic_name(&r.name) {
            problems.push((
                at("name"),
                format!("`{}` is not a valid Kafka topic name", r.name),
            ));
        }
        if !names.insert(r.name.clone()) {
            problems.push((
                at("name"),
                format!("topic `{}` is used by two roles", r.name),
            ));
        }
        if r.partitions < 1 {
            problems.push((at("partitions"), "must be at least 1".to_string()));
        }
        if r.replication_factor < 1 {
            problems.push((at("replication_factor"), "must be at least 1".to_string()));
        }
    }
    let mut stage_names = HashSet::new();
    for (i, stage) in t.stages.iter().enumerate() {
        let at = |field: &str| vec![key("stages"), PathStep::Index(i), key(field)];
        let name = stage.name();
        let name_ok = !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'));
        if !name_ok {
            problems.push((
                at("name"),
                format!("`{name}`: stage names use letters, digits, `-` and `_`"),
            ));
        }
        if !stage_names.insert(name.to_string()) {
            problems.push((at("name"), format!("stage name `{name}` is used twice")));
        }
        let dlq = t.stage_dlq(stage);
        if !stage.has_dlq() {
            // No dead-letter topic to check.
        } else if !valid_topic_name(&dlq.name) {
            problems.push((
                at("dlq_topic"),
                format!("`{}` is not a valid Kafka topic name", dlq.name),
            ));
        }
        if stage.has_dlq() && names.contains(&dlq.name) {
            problems.push((
                at("dlq_topic"),
                format!(
                    "`{}` is already a data topic; a DLQ needs its own",
                    dlq.name
                ),
            ));
        }
        match stage {
            StageConfig::Tap(tap) => {
                if !matches!(tap.input, TopicRole::Canonical | TopicRole::Enriched) {
                    problems.push((
                        at("input"),
                        "a tap reads canonical Avro: `canonical` or `enriched`".to_string(),
                    ));
                }
            }
            StageConfig::Sink(sink) => {
                if sink.input == TopicRole::Indicators
                    || sink.input == TopicRole::Review
                    || sink.input == TopicRole::Checkpoints
                    || sink.input == TopicRole::Audit
                {
                    problems.push((
                        at("input"),
                        "a sink delivers events: ecs, cef, ocsf, canonical or enriched".to_string(),
                    ));
                }
                if let Err(e) = crate::delivery::tiers::tiers(&sink.name, &sink.tiers) {
                    problems.push((at("tiers"), e));
                }
                if sink.batch.max_events == 0 || sink.batch.max_bytes == 0 {
                    problems.push((
                        vec![key("stages"), PathStep::Index(i), key("batch")],
                        "max_events and max_bytes must be at least 1".to_string(),
                    ));
                }
                if sink.max_in_flight == 0 {
                    problems.push((at("max_in_flight"), "must be at least 1".to_string()));
                }
                if sink.retry.max_attempts == 0 {
                    problems.push((
                        vec![
                            key("stages"),
                            PathStep::Index(i),
                            key("retry"),
                            key("max_attempts"),
                        ],
                        "must be at least 1".to_string(),
                    ));
                }
                for (k, v) in [
                    ("events_per_sec", sink.rate_limit.events_per_sec),
                    ("requests_per_sec", sink.rate_limit.requests_per_sec),
                ] {
                    if v.is_some_and(|r| !(r > 0.0 && r.is_finite())) {
                        problems.push((
                            vec![key("stages"), PathStep::Index(i), key("rate_limit"), key(k)],
                            "must be a positive number".to_string(),
                        ));
                    }
                }
                if let Err(e) = crate::delivery::build_sink_unresolved(sink) {
                    problems.push((vec![key("stages"), PathStep::Index(i), key("sink")], e));
                }
            }
            StageConfig::IntelPoll(ip) => validate_intel_poll(ip, i, &mut problems),
            StageConfig::Enrich(en) => {
                if en.input != TopicRole::Canonical {
                    problems.push((
                        at("input"),
                        "an enrich stage reads canonical events: `canonical`".to_string(),
                    ));
                }
                if en.max_batch == 0 {
                    problems.push((at("max_batch"), "must be at least 1".to_string()));
                }
                let store_at =
                    |field: &str| vec![key("stages"), PathStep::Index(i), key("store"), key(field)];
                if en.store.path.as_os_str().is_empty() {
                    problems.push((store_at("path"), "must not be empty".to_string()));
                }
                if en.store.block_cache_mb == 0 || en.store.write_buffer_mb == 0 {
                    problems.push((
                        store_at("block_cache_mb"),
                        "block_cache_mb and write_buffer_mb must be at least 1".to_string(),
                    ));
                }
                if en.store.min_prefix_v4 > 32 {
                    problems.push((store_at("min_prefix_v4"), "at most 32".to_string()));
                }
                if en.store.min_prefix_v6 > 128 {
                    problems.push((store_at("min_prefix_v6"), "at most 128".to_string()));
                }
            }
            StageConfig::Transform(tr) => {
                if !matches!(tr.input, TopicRole::Canonical | TopicRole::Enriched) {
                    problems.push((
                        at("input"),
                        "a transform reads canonical Avro: `canonical` or `enriched`".to_string(),
                    ));
                }
                if tr.outputs.is_empty() {
                    problems.push((
                        at("outputs"),
                        "name at least one of ecs, cef, ocsf".to_string(),
                    ));
                }
                let mut seen = HashSet::new();
                for f in &tr.outputs {
                    if !seen.insert(*f) {
                        problems.push((at("outputs"), format!("`{}` is listed twice", f.as_str())));
                    }
                }
                for (_, path, message) in tr.privacy.check() {
                    let mut at_path = vec![key("stages"), PathStep::Index(i), key("privacy")];
                    at_path.extend(parse_rel_path(&path));
                    problems.push((at_path, message));
                }
                if tr.max_batch == 0 {
                    problems.push((at("max_batch"), "must be at least 1".to_string()));
                }
            }
        }
    }
    problems
}

/// Checks of an `intel_poll` stage (the TAXII client checks the rest when it starts: secrets,
/// CA files, API root URLs).
fn validate_intel_poll(ip: &IntelPollStage, i: usize, problems: &mut Vec<(Vec<PathStep>, String)>) {
    let at = |field: &str| vec![key("stages"), PathStep::Index(i), key(field)];
    if ip.interval_secs == 0 {
        problems.push((at("interval_secs"), "must be at least 1".to_string()));
    }
    if ip.max_attempts == 0 {
        problems.push((at("max_attempts"), "must be at least 1".to_string()));
    }
    if ip.servers.is_empty() {
        problems.push((at("servers"), "name at least one TAXII server".to_string()));
    }
    let mut server_names = HashSet::new();
    for (j, server) in ip.servers.iter().enumerate() {
        let at = |field: &str| {
            vec![
                key("stages"),
                PathStep::Index(i),
                key("servers"),
                PathStep::Index(j),
                key(field),
            ]
        };
        if server.name.trim().is_empty() || server.name.contains('|') {
            problems.push((
                at("name"),
                "must not be empty nor contain `|` (it is part of the checkpoint key)".to_string(),
            ));
        }
        if !server_names.insert(server.name.clone()) {
            problems.push((
                at("name"),
                format!("server name `{}` is used twice", server.name),
            ));
        }
        let url = server.url.trim();
        if url.starts_with("http://") {
            if !server.allow_http {
                problems.push((
                    at("url"),
                    format!("`{url}` is plain http: use https, or set allow_http for a local test server"),
                ));
            }
        } else if !url.starts_with("https://") {
            problems.push((at("url"), format!("`{url}` is not an http(s) URL")));
        }
        if server.page_size == 0 {
            problems.push((at("page_size"), "must be at least 1".to_string()));
        }
        if server.collections.is_empty() {
            problems.push((
                at("collections"),
                "name at least one collection".to_string(),
            ));
        }
        let mut ids = HashSet::new();
        for (k, c) in server.collections.iter().enumerate() {
            let at = |field: &str| {
                vec![
                    key("stages"),
                    PathStep::Index(i),
                    key("servers"),
                    PathStep::Index(j),
                    key("collections"),
                    PathStep::Index(k),
                    key(field),
                ]
            };
            if c.id.trim().is_empty() {
                problems.push((at("id"), "must not be empty".to_string()));
            }
            if !ids.insert((c.api_root.clone(), c.id.clone())) {
                problems.push((at("id"), format!("collection `{}` is listed twice", c.id)));
            }
            if let Some(after) = &c.added_after {
                if chrono::DateTime::parse_from_rfc3339(after.trim()).is_err() {
                    problems.push((
                        at("added_after"),
                        format!("`{after}` is not an RFC 3339 timestamp"),
                    ));
                }
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const GOOD: &str = "name: dev\nkafka:\n  bootstrap_servers: ${BOOT:-127.0.0.1:9092}\nschema_registry:\n  url: http://127.0.0.1:8081\n  username: sr\n  password: {env: SR_PASS}\ntopics:\n  canonical: {partitions: 6}\n  indicators: {name: intel.v2}\nstages:\n  - type: tap\n    name: readback\n";

    fn load_text(text: &str) -> Result<LoadedTopology, TopologyError> {
        load_str(Path::new("t.yaml"), text, |_| None)
    }

    #[test]
    fn loads_with_defaults_and_overrides() {
        let t = load_text(GOOD).unwrap().topology;
        assert_eq!(t.kafka.bootstrap_servers, "127.0.0.1:9092");
        assert_eq!(t.kafka.session_timeout_ms, 6000);
        let c = t.topics.resolved(TopicRole::Canonical);
        assert_eq!(
            (c.name.as_str(), c.partitions),
            ("security-events.canonical.v1", 6)
        );
        let i = t.topics.resolved(TopicRole::Indicators);
        assert_eq!(i.name, "intel.v2");
        assert_eq!(
            i.config.get("cleanup.policy").map(String::as_str),
            Some("compact")
        );
        let names: Vec<_> = t.all_topics().into_iter().map(|t| t.name).collect();
        assert!(names.contains(&"readback.dlq".to_string()), "{names:?}");
        assert_eq!(
            t.schema_registry.password,
            Some(SecretRef::Env("SR_PASS".into()))
        );
    }

    #[test]
    fn unknown_key_reports_file_line_column() {
        let text = GOOD.replace("  username: sr\n", "  usrname: sr\n");
        let err = load_text(&text).unwrap_err().to_string();
        assert!(err.starts_with("t.yaml:6:"), "{err}");
        assert!(err.contains("unknown field `usrname`"), "{err}");
    }

    #[test]
    fn semantic_errors_point_at_the_key() {
        let text = GOOD.replace("{partitions: 6}", "{partitions: 0}")
            + "  - type: tap\n    name: readback\n";
        let err = load_text(&text).unwrap_err();
        let lines: Vec<String> = err.diagnostics.iter().map(|d| d.to_string()).collect();
        assert!(
            lines.iter().any(|l| l.starts_with("t.yaml:9:")
                && l.contains("topics.canonical.partitions: must be at least 1")),
            "{lines:?}"
        );
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with("t.yaml:15:") && l.contains("used twice")),
            "{lines:?}"
        );
    }

    #[test]
    fn telemetry_section_is_checked() {
        let t = load_text(GOOD).unwrap().topology;
        assert_eq!(t.telemetry.otlp_endpoint, None);
        assert_eq!(t.telemetry.sample_ratio, 1.0);
        let ok = format!(
            "{GOOD}telemetry:\n  otlp_endpoint: http://otel-collector:4318\n  service_name: s\n  sample_ratio: 0.25\n"
        );
        let t = load_text(&ok).unwrap().topology;
        assert_eq!(
            t.telemetry.otlp_endpoint.as_deref(),
            Some("http://otel-collector:4318")
        );
        assert_eq!(t.telemetry.sample_ratio, 0.25);
        let bad =
            format!("{GOOD}telemetry:\n  otlp_endpoint: otel-collector:4317\n  sample_ratio: 2\n");
        let lines: Vec<String> = load_text(&bad)
            .unwrap_err()
            .diagnostics
            .iter()
            .map(|d| d.to_string())
            .collect();
        assert!(
            lines.iter().any(|l| l
                .contains("telemetry.otlp_endpoint: `otel-collector:4317` is not an http(s) URL")),
            "{lines:?}"
        );
        assert!(
            lines
                .iter()
                .any(|l| l.contains("telemetry.sample_ratio: 2 is not between")),
            "{lines:?}"
        );
    }

    #[test]
    fn inline_secret_is_rejected() {
        let text = GOOD.replace("{env: SR_PASS}", "hunter2");
        let err = load_text(&text).unwrap_err().to_string();
        assert!(err.starts_with("t.yaml:7:"), "{err}");
    }

    #[test]
    fn unset_env_without_default_is_an_error_with_position() {
        let text = GOOD.replace("${BOOT:-127.0.0.1:9092}", "${BOOT}");
        let err = load_text(&text).unwrap_err().to_string();
        assert!(
            err.starts_with("t.yaml:3:22: environment variable `BOOT` is not set"),
            "{err}"
        );
    }
}
