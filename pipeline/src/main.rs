//! The `secflow` command.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use pipeline::kafka::{self, TopicOutcome};
use pipeline::produce::{self, KeyField, ProduceOptions};
use pipeline::stage::{self, enrich, intel_poll, tap, transform};
use pipeline::topology::{self, LoadedTopology, StageConfig, TopicRole};
use processors::event::SecurityEvent;
use processors::transform::Format;
use tokio::io::{AsyncWriteExt, BufReader};

/// jemalloc for the whole process: the crate's `unprefixed_malloc_on_supported_platforms`
/// feature makes it the `malloc` of librdkafka and RocksDB too. Under load glibc's malloc and
/// free took 25–30 % of every stage's CPU (docs/benchmarks.md, "Allocator").
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[derive(Parser)]
#[command(
    name = "secflow",
    version,
    about = "Security telemetry pipeline over Kafka"
)]
struct Cli {
    /// Log format.
    #[arg(
        long,
        global = true,
        value_enum,
        default_value = "pretty",
        env = "SECFLOW_LOG_FORMAT"
    )]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum LogFormat {
    Pretty,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Check a topology file; every problem is reported as file:line:column.
    Validate {
        /// Topology YAML.
        file: PathBuf,
    },
    /// Manage topics.
    Topics {
        #[command(subcommand)]
        command: TopicsCommand,
    },
    /// JSON lines (file or `-` for stdin) → validated canonical Avro events on a topic.
    Produce {
        /// Topology YAML.
        #[arg(long)]
        topology: PathBuf,
        /// Topic role or literal topic name (default: the canonical topic).
        #[arg(long)]
        topic: Option<String>,
        /// Which field keys the record.
        #[arg(long, value_enum, default_value = "tenant")]
        key_field: KeyField,
        /// Write rejected lines here as JSON lines: {"line", "reason", "text"}.
        #[arg(long)]
        rejects: Option<PathBuf>,
        /// Sends awaiting an acknowledgement at most.
        #[arg(long, default_value_t = 10_000)]
        max_in_flight: usize,
        /// Input file, or `-` for stdin.
        #[arg(default_value = "-")]
        input: String,
    },
    /// Dead letters: list, inspect, replay.
    Dlq {
        #[command(subcommand)]
        command: DlqCommand,
    },
    /// Threat intel: STIX patterns, TAXII polling.
    Intel {
        #[command(subcommand)]
        command: IntelCommand,
    },
    /// Canonical JSON lines → ECS / CEF / OCSF, one output per line on stdout (no Kafka).
    Transform {
        /// Output format.
        #[arg(long = "to", value_enum)]
        to: FormatArg,
        /// Input file, or `-` for stdin.
        #[arg(default_value = "-")]
        input: String,
    },
    /// Run stages of a topology (all by default).
    Run {
        /// Topology YAML.
        #[arg(long)]
        topology: PathBuf,
        /// Only these stages (repeatable).
        #[arg(long = "stage")]
        stages: Vec<String>,
        /// Stop a stage after this many seconds without a record.
        #[arg(long)]
        until_idle: Option<u64>,
        /// Stop a stage after this many records.
        #[arg(long)]
        max_records: Option<u64>,
        /// Listener for `/metrics` (Prometheus), `/healthz` and `/readyz`; `off` disables it.
        #[arg(long, env = "SECFLOW_METRICS_ADDR", default_value = "0.0.0.0:9464")]
        metrics_addr: String,
    },
}

#[derive(Subcommand)]
enum DlqCommand {
    /// Counts by reason, error status and class; failure time range; oldest and newest.
    List {
        /// Topology YAML.
        #[arg(long)]
        topology: PathBuf,
        /// The sink (or stage) whose DLQ to read.
        #[arg(long)]
        sink: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show dead letters with every header and the decoded value.
    Inspect {
        /// Topology YAML.
        #[arg(long)]
        topology: PathBuf,
        /// The sink (or stage) whose DLQ to read.
        #[arg(long)]
        sink: String,
        /// Only the record at this offset.
        #[arg(long)]
        offset: Option<i64>,
        /// Partition of `--offset` (default 0).
        #[arg(long, default_value_t = 0)]
        partition: i32,
        /// At most this many records.
        #[arg(long, default_value_t = 20)]
        limit: usize,
        /// Only this `secflow.dlq.reason`.
        #[arg(long)]
        reason: Option<String>,
        /// Print JSON lines.
        #[arg(long)]
        json: bool,
    },
    /// Re-queue dead letters to the sink's first retry tier, due now (never to the shared
    /// input topic). Resumable; audited in the audit topic.
    Replay {
        /// Topology YAML.
        #[arg(long)]
        topology: PathBuf,
        /// The sink whose DLQ to replay.
        #[arg(long)]
        sink: String,
        /// Last failure at or after: RFC 3339, epoch ms, or a duration ago (`2h`).
        #[arg(long)]
        since: Option<String>,
        /// Last failure before: RFC 3339, epoch ms, or a duration ago.
        #[arg(long)]
        until: Option<String>,
        /// Only this `secflow.dlq.reason` (permanent, exhausted, poison, undecodable).
        #[arg(long)]
        reason: Option<String>,
        /// Only this HTTP status.
        #[arg(long)]
        status: Option<u16>,
        /// `FIELD=VALUE` on the JSON payload (dot path) or `header:NAME=VALUE`; repeatable.
        #[arg(long = "match")]
        matches: Vec<String>,
        /// Records per second at most, e.g. `50/s` or `50`.
        #[arg(long)]
        rate: Option<String>,
        /// Replay at most this many.
        #[arg(long)]
        limit: Option<u64>,
        /// Print what would be replayed; change nothing.
        #[arg(long)]
        dry_run: bool,
    },
}

#[derive(Subcommand)]
enum IntelCommand {
    /// Parse STIX 2.1 patterns and show the atomic IOCs they reduce to, one JSON line each:
    /// {"pattern","valid","error","iocs","not_joinable"}.
    Pattern {
        /// A pattern, or `-` to read one pattern per stdin line.
        pattern: String,
    },
    /// Poll the TAXII collections of the topology's `intel_poll` stages: new indicators to the
    /// indicator topic, the rest to the review topic, then the checkpoints. Exit 1 when a
    /// collection failed (`--once`).
    Poll {
        /// Topology YAML.
        #[arg(long)]
        topology: PathBuf,
        /// Poll every collection once and stop (default: poll every `interval_secs`).
        #[arg(long)]
        once: bool,
        /// Only this `intel_poll` stage (default: all of them).
        #[arg(long)]
        stage: Option<String>,
    },
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum FormatArg {
    Ecs,
    Cef,
    Ocsf,
}

impl From<FormatArg> for Format {
    fn from(f: FormatArg) -> Self {
        match f {
            FormatArg::Ecs => Format::Ecs,
            FormatArg::Cef => Format::Cef,
            FormatArg::Ocsf => Format::Ocsf,
        }
    }
}

#[derive(Subcommand)]
enum TopicsCommand {
    /// Create every topic the topology names (existing ones are left as they are).
    Create {
        /// Topology YAML.
        #[arg(long)]
        topology: PathBuf,
    },
    /// Report which of the topology's topics are missing.
    Check {
        /// Topology YAML.
        #[arg(long)]
        topology: PathBuf,
    },
}

fn init_tracing(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("SECFLOW_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,pipeline=info,secflow=info"));
    // Colours only on a terminal: a log file or a collector gets plain text.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Pretty => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

/// Starts exporting traces when the topology's `telemetry` section or the `OTEL_*` environment
/// names an OTLP receiver (off otherwise). A receiver that cannot be set up is logged, never
/// fatal: the pipeline runs without traces.
fn start_traces(t: &topology::Topology) -> Option<pipeline::telemetry::Tracing> {
    let settings =
        pipeline::telemetry::TraceSettings::resolve(&t.telemetry, |k| std::env::var(k).ok())?;
    match pipeline::telemetry::init_traces(&settings) {
        Ok(tracing) => {
            tracing::info!(endpoint = %settings.endpoint, service = %settings.service_name, sample_ratio = settings.sample_ratio, "exporting traces (OTLP/HTTP)");
            Some(tracing)
        }
        Err(e) => {
            tracing::warn!(error = %e, "traces are not exported");
            None
        }
    }
}

/// Exports the spans still queued before the process ends.
async fn stop_traces(traces: Option<pipeline::telemetry::Tracing>) {
    if let Some(t) = traces {
        t.shutdown().await;
    }
}

fn load(file: &Path) -> Result<LoadedTopology> {
    topology::load(file).map_err(|e| anyhow::anyhow!("{e}"))
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing(cli.log_format);
    match run(cli.command).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

async fn run(command: Command) -> Result<ExitCode> {
    match command {
        Command::Validate { file } => match topology::load(&file) {
            Ok(t) => {
                println!(
                    "{}: ok ({} topics, {} stages)",
                    file.display(),
                    t.topology.all_topics().len(),
                    t.topology.stages.len()
                );
                Ok(ExitCode::SUCCESS)
            }
            Err(e) => {
                eprintln!("{e}");
                Ok(ExitCode::from(1))
            }
        },
        Command::Topics { command } => topics(command).await,
        Command::Produce {
            topology,
            topic,
            key_field,
            rejects,
            max_in_flight,
            input,
        } => {
            let t = load(&topology)?.topology;
            let topic = resolve_topic(&t, topic.as_deref());
            let opts = ProduceOptions {
                topic: topic.clone(),
                key: key_field,
                max_in_flight,
            };
            let mut rejects_file = match &rejects {
                Some(p) => Some(
                    std::fs::File::create(p)
                        .with_context(|| format!("creating {}", p.display()))?,
                ),
                None => None,
            };
            let mut write_error = None;
            let mut on_reject = |r: &produce::Rejection| {
                eprintln!("line {}: {}", r.line, r.reason);
                if let Some(f) = rejects_file.as_mut() {
                    let row =
                        serde_json::json!({"line": r.line, "reason": r.reason, "text": r.text});
                    if let Err(e) = std::io::Write::write_all(f, format!("{row}\n").as_bytes()) {
                        write_error.get_or_insert(e);
                    }
                }
            };
            let traces = start_traces(&t);
            let produced: Result<produce::ProduceReport> = async {
                Ok(if input == "-" {
                    produce::produce(
                        &t,
                        BufReader::new(tokio::io::stdin()),
                        &opts,
                        &mut on_reject,
                    )
                    .await?
                } else {
                    let f = tokio::fs::File::open(&input)
                        .await
                        .with_context(|| format!("opening {input}"))?;
                    produce::produce(&t, BufReader::new(f), &opts, &mut on_reject).await?
                })
            }
            .await;
            stop_traces(traces).await;
            let report = produced?;
            if let Some(e) = write_error {
                bail!("writing rejects file: {e}");
            }
            println!(
                "produced to {topic}: {} lines, {} accepted, {} rejected, {} failed",
                report.lines, report.accepted, report.rejected, report.failed
            );
            Ok(if report.all_accepted() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        Command::Dlq { command } => dlq(command).await,
        Command::Intel { command } => match command {
            IntelCommand::Pattern { pattern } => intel_pattern(&pattern).await,
            IntelCommand::Poll {
                topology,
                once,
                stage,
            } => intel_poll(&topology, once, stage.as_deref()).await,
        },
        Command::Transform { to, input } => transform_lines(to.into(), &input).await,
        Command::Run {
            topology,
            stages,
            until_idle,
            max_records,
            metrics_addr,
        } => {
            if metrics_addr != "off" {
                let addr: std::net::SocketAddr = metrics_addr
                    .parse()
                    .with_context(|| format!("--metrics-addr {metrics_addr}: not host:port"))?;
                match pipeline::telemetry::serve(addr).await {
                    Ok(bound) => tracing::info!(%bound, "metrics on http://{bound}/metrics"),
                    // Another process holds the port (several local runs): say so, keep going.
                    Err(e) => tracing::warn!(error = %e, "metrics listener not started"),
                }
            }
            run_stages(&topology, &stages, until_idle, max_records).await
        }
    }
}

fn resolve_topic(t: &topology::Topology, topic: Option<&str>) -> String {
    match topic {
        None => t.topics.resolved(TopicRole::Canonical).name,
        Some(name) => TopicRole::ALL
            .iter()
            .find(|r| r.key() == name)
            .map(|r| t.topics.resolved(*r).name)
            .unwrap_or_else(|| name.to_string()),
    }
}

async fn topics(command: TopicsCommand) -> Result<ExitCode> {
    match command {
        TopicsCommand::Create { topology } => {
            let t = load(&topology)?.topology;
            let wanted = t.all_topics();
            let outcomes = kafka::create_topics(&t.kafka, &wanted).await?;
            for o in &outcomes {
                match o {
                    TopicOutcome::Created(n) => println!("created {n}"),
                    TopicOutcome::Existed(n) => println!("exists  {n}"),
                }
            }
            let names: Vec<String> = wanted.iter().map(|w| w.name.clone()).collect();
            kafka::require_topics(&t.kafka, &names).await?;
            Ok(ExitCode::SUCCESS)
        }
        TopicsCommand::Check { topology } => {
            let t = load(&topology)?.topology;
            let names: Vec<String> = t.all_topics().into_iter().map(|w| w.name).collect();
            let missing = kafka::missing_topics(&t.kafka, &names).await?;
            if missing.is_empty() {
                println!("all {} topics exist", names.len());
                Ok(ExitCode::SUCCESS)
            } else {
                for m in &missing {
                    println!("missing {m}");
                }
                Ok(ExitCode::from(1))
            }
        }
    }
}

/// A shutdown future per stage, all fired by SIGTERM or SIGINT.
fn shutdown_signal() -> tokio::sync::watch::Receiver<bool> {
    let (tx, rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        let term = async {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut s) => {
                    s.recv().await;
                }
                Err(_) => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = term => {},
            _ = tokio::signal::ctrl_c() => {},
        }
        let _ = tx.send(true);
    });
    rx
}

fn stage_shutdown(rx: &tokio::sync::watch::Receiver<bool>) -> stage::Shutdown {
    let mut rx = rx.clone();
    Box::pin(async move {
        let _ = rx.wait_for(|stop| *stop).await;
    })
}

async fn run_stages(
    file: &Path,
    only: &[String],
    until_idle: Option<u64>,
    max_records: Option<u64>,
) -> Result<ExitCode> {
    let t = load(file)?.topology;
    for name in only {
        if t.stage(name).is_none() {
            bail!("{}: no stage named `{name}`", file.display());
        }
    }
    let selected: Vec<StageConfig> = t
        .stages
        .iter()
        .filter(|s| only.is_empty() || only.iter().any(|n| n == s.name()))
        .cloned()
        .collect();
    if selected.is_empty() {
        bail!("{}: no stages to run", file.display());
    }
    let limits = stage::RunLimits {
        max_records,
        idle_exit: until_idle.map(Duration::from_secs),
    };
    let traces = start_traces(&t);
    let stop = shutdown_signal();
    let mut tasks = tokio::task::JoinSet::new();
    for s in selected {
        let t = t.clone();
        let limits = limits.clone();
        let shutdown = stage_shutdown(&stop);
        tasks.spawn(async move {
            match s {
                StageConfig::Tap(tap_stage) => {
                    let report = tap::run(&t, &tap_stage, limits, shutdown, |_| {}).await?;
                    let mut text = format!(
                        "stage {}: {} records, {} decoded, {} dead-lettered\n",
                        tap_stage.name,
                        report.records,
                        report.decoded,
                        report.dead_lettered.values().sum::<u64>()
                    );
                    for (k, v) in &report.by_category {
                        text.push_str(&format!("  {k:<32} {v}\n"));
                    }
                    for (k, v) in &report.dead_lettered {
                        text.push_str(&format!("  dlq {k:<28} {v}\n"));
                    }
                    Ok::<String, anyhow::Error>(text)
                }
                StageConfig::Sink(sk) => {
                    let r = pipeline::delivery::engine::run(&t, &sk, limits, shutdown).await?;
                    let mut text = format!(
                        "stage {}: {} records, {} delivered, {} duplicates, {} requests, circuit opened {} times\n",
                        sk.name, r.records, r.delivered, r.duplicates, r.requests, r.circuit_opened
                    );
                    for (k, v) in &r.to_tiers {
                        text.push_str(&format!("  to {k:<29} {v}\n"));
                    }
                    for (k, v) in &r.dead_lettered {
                        text.push_str(&format!("  dlq {k:<28} {v}\n"));
                    }
                    Ok(text)
                }
                StageConfig::IntelPoll(ip) => {
                    // A run with limits (demo, tests) polls once; otherwise on the interval.
                    let mode = if limits.max_records.is_some() || limits.idle_exit.is_some() {
                        intel_poll::PollMode::Once
                    } else {
                        intel_poll::PollMode::Forever
                    };
                    let report = intel_poll::run(&t, &ip, mode, shutdown).await?;
                    Ok(poll_summary(&ip.name, &report))
                }
                StageConfig::Enrich(en) => {
                    let r = enrich::run(&t, &en, limits, shutdown).await?;
                    let mut text = format!(
                        "stage {}: {} records, {} written, {} with matches ({} enrichments), {} dead-lettered; indicator table: {} indicators, {} records read ({} undecodable)\n",
                        en.name,
                        r.records,
                        r.written,
                        r.matched_events,
                        r.matches,
                        r.dead_lettered.values().sum::<u64>(),
                        r.indicators,
                        r.indicator_records_read,
                        r.undecodable_indicators
                    );
                    for (k, v) in &r.dead_lettered {
                        text.push_str(&format!("  dlq {k:<28} {v}\n"));
                    }
                    Ok(text)
                }
                StageConfig::Transform(tr) => {
                    let report = transform::run(&t, &tr, limits, shutdown).await?;
                    let mut text = format!(
                        "stage {}: {} records in {} transactions ({} aborted and retried), {} dead-lettered\n",
                        tr.name,
                        report.records,
                        report.transactions,
                        report.aborted,
                        report.dead_lettered.values().sum::<u64>()
                    );
                    for (k, v) in &report.written {
                        text.push_str(&format!("  wrote {k:<26} {v}\n"));
                    }
                    for (k, v) in &report.dead_lettered {
                        text.push_str(&format!("  dlq {k:<28} {v}\n"));
                    }
                    Ok(text)
                }
            }
        });
    }
    let mut out = tokio::io::stdout();
    let mut failed = None;
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok(Ok(text)) => out.write_all(text.as_bytes()).await?,
            Ok(Err(e)) => {
                eprintln!("error: {e:#}");
                failed.get_or_insert(e);
            }
            Err(e) => {
                eprintln!("error: stage task: {e}");
                failed.get_or_insert(anyhow::anyhow!("stage task: {e}"));
            }
        }
    }
    stop_traces(traces).await;
    out.flush().await?;
    match failed {
        Some(_) => Ok(ExitCode::from(2)),
        None => Ok(ExitCode::SUCCESS),
    }
}

async fn dlq(command: DlqCommand) -> Result<ExitCode> {
    use pipeline::dlq_tool::{self, DlqFilter, ReplayOptions};
    match command {
        DlqCommand::List {
            topology,
            sink,
            json,
        } => {
            let t = load(&topology)?.topology;
            let topic = dlq_tool::dlq_topic_of(&t, &sink)?;
            let records = dlq_tool::read_all(&t, &topic).await?;
            let s = dlq_tool::summarize(&topic, &records);
            if json {
                println!("{}", serde_json::to_string_pretty(&s)?);
            } else {
                let time = |ms: Option<i64>| {
                    ms.and_then(chrono::DateTime::from_timestamp_millis)
                        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
                        .unwrap_or_else(|| "-".to_string())
                };
                println!("{}: {} dead letters", s.topic, s.total);
                println!("  first failure  {}", time(s.first_failure_ms));
                println!("  last failure   {}", time(s.last_failure_ms));
                if let (Some(o), Some(n)) = (s.oldest, s.newest) {
                    println!("  oldest         partition {} offset {}", o.0, o.1);
                    println!("  newest         partition {} offset {}", n.0, n.1);
                }
                for (title, map) in [
                    ("reason", &s.by_reason),
                    ("status", &s.by_status),
                    ("class", &s.by_class),
                ] {
                    println!("  by {title}:");
                    for (k, v) in map {
                        println!("    {k:<32} {v}");
                    }
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        DlqCommand::Inspect {
            topology,
            sink,
            offset,
            partition,
            limit,
            reason,
            json,
        } => {
            let t = load(&topology)?.topology;
            let topic = dlq_tool::dlq_topic_of(&t, &sink)?;
            let records = dlq_tool::read_all(&t, &topic).await?;
            let shown: Vec<_> = records
                .iter()
                .filter(|r| offset.is_none_or(|o| r.offset == o && r.partition == partition))
                .filter(|r| {
                    reason
                        .as_deref()
                        .is_none_or(|x| r.header("secflow.dlq.reason") == Some(x))
                })
                .take(limit)
                .collect();
            for r in shown {
                let value = dlq_tool::render_value(&t, r.value.as_deref()).await;
                if json {
                    let mut v = serde_json::to_value(r)?;
                    v["value"] =
                        serde_json::from_str(&value).unwrap_or(serde_json::Value::String(value));
                    println!("{v}");
                } else {
                    println!(
                        "── {topic} partition {} offset {} key {}",
                        r.partition,
                        r.offset,
                        r.key.as_deref().unwrap_or("-")
                    );
                    for (k, v) in &r.headers {
                        println!("  {k:<40} {v}");
                    }
                    println!("  value:");
                    for line in value.lines() {
                        println!("    {line}");
                    }
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        DlqCommand::Replay {
            topology,
            sink,
            since,
            until,
            reason,
            status,
            matches,
            rate,
            limit,
            dry_run,
        } => {
            let t = load(&topology)?.topology;
            let filter = DlqFilter {
                since_ms: since.as_deref().map(dlq_tool::parse_time).transpose()?,
                until_ms: until.as_deref().map(dlq_tool::parse_time).transpose()?,
                reason,
                status,
                matches: matches
                    .iter()
                    .map(|m| dlq_tool::parse_match(m))
                    .collect::<Result<_, _>>()?,
            };
            let rate = rate
                .map(|r| {
                    r.trim_end_matches("/s")
                        .parse::<f64>()
                        .map_err(|_| anyhow::anyhow!("--rate {r}: expected N/s"))
                })
                .transpose()?;
            let opts = ReplayOptions {
                filter,
                rate,
                limit,
                dry_run,
            };
            let tty = std::io::IsTerminal::is_terminal(&std::io::stderr());
            let report = dlq_tool::replay(&t, &sink, &opts, |done, total| {
                if tty {
                    let width = 30usize;
                    let filled = if total == 0 {
                        width
                    } else {
                        (done as usize * width) / total as usize
                    };
                    eprint!(
                        "\r[{}{}] {done}/{total}",
                        "#".repeat(filled),
                        " ".repeat(width - filled.min(width))
                    );
                }
            })
            .await?;
            if tty {
                eprintln!();
            }
            if dry_run {
                for (p, o) in &report.offsets {
                    println!("would replay {} partition {p} offset {o}", report.dlq);
                }
                println!(
                    "dry run: {} scanned, {} match, nothing changed",
                    report.scanned, report.matched
                );
            } else {
                println!(
                    "replay {}: {} scanned, {} matched, {} re-queued to {} (due now); audit record in the audit topic",
                    report.run_id, report.scanned, report.matched, report.replayed, report.target
                );
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// `secflow intel pattern`: one JSON report per pattern; exit 1 when any pattern is invalid.
async fn intel_pattern(pattern: &str) -> Result<ExitCode> {
    use processors::intel::pattern::analyze;
    use tokio::io::AsyncBufReadExt;
    let mut all_valid = true;
    let mut out = tokio::io::BufWriter::new(tokio::io::stdout());
    let mut emit = |p: &str| -> Result<Vec<u8>> {
        let report = analyze(p);
        all_valid &= report.valid;
        let mut line = serde_json::to_vec(&report)?;
        line.push(b'\n');
        Ok(line)
    };
    if pattern == "-" {
        let mut lines = BufReader::new(tokio::io::stdin()).lines();
        while let Some(line) = lines.next_line().await? {
            if !line.trim().is_empty() {
                let bytes = emit(&line)?;
                out.write_all(&bytes).await?;
            }
        }
    } else {
        let bytes = emit(pattern)?;
        out.write_all(&bytes).await?;
    }
    out.flush().await?;
    Ok(if all_valid {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// Text summary of a poll run, one line per collection.
fn poll_summary(stage: &str, r: &intel_poll::PollReport) -> String {
    let mut text = format!(
        "stage {stage}: {} polls, {} objects, {} indicators, {} tombstones, {} to review, {} duplicates, {} errors\n",
        r.polls,
        r.total(|c| c.objects),
        r.total(|c| c.published),
        r.total(|c| c.tombstones),
        r.total(|c| c.reviews),
        r.total(|c| c.duplicates),
        r.errors().len()
    );
    for (key, c) in &r.collections {
        text.push_str(&format!(
            "  {key}: {} pages, {} objects, {} indicators, {} tombstones, {} to review, checkpoint {}\n",
            c.pages,
            c.objects,
            c.published,
            c.tombstones,
            c.reviews,
            c.checkpoint.as_deref().unwrap_or("-")
        ));
        for e in &c.errors {
            text.push_str(&format!("    error: {e}\n"));
        }
    }
    text
}

/// `secflow intel poll`: runs the topology's `intel_poll` stages (once, or on their interval).
async fn intel_poll(file: &Path, once: bool, only: Option<&str>) -> Result<ExitCode> {
    let t = load(file)?.topology;
    let stages: Vec<_> = t
        .stages
        .iter()
        .filter_map(|s| match s {
            StageConfig::IntelPoll(ip) if only.is_none_or(|n| n == ip.name) => Some(ip.clone()),
            _ => None,
        })
        .collect();
    if stages.is_empty() {
        match only {
            Some(name) => bail!("{}: no intel_poll stage named `{name}`", file.display()),
            None => bail!("{}: no intel_poll stage", file.display()),
        }
    }
    let mode = if once {
        intel_poll::PollMode::Once
    } else {
        intel_poll::PollMode::Forever
    };
    let traces = start_traces(&t);
    let stop = shutdown_signal();
    let mut failed = false;
    let mut tasks = tokio::task::JoinSet::new();
    for ip in stages {
        let t = t.clone();
        let shutdown = stage_shutdown(&stop);
        tasks.spawn(async move {
            let report = intel_poll::run(&t, &ip, mode, shutdown).await;
            (ip.name, report)
        });
    }
    while let Some(joined) = tasks.join_next().await {
        let (name, report) = joined.context("intel poll task")?;
        let report = report.with_context(|| format!("stage {name}"))?;
        failed |= !report.errors().is_empty();
        print!("{}", poll_summary(&name, &report));
    }
    stop_traces(traces).await;
    Ok(if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// `secflow transform`: canonical JSON lines → one output per line on stdout.
async fn transform_lines(format: Format, input: &str) -> Result<ExitCode> {
    use tokio::io::AsyncBufReadExt;
    let reader: Box<dyn tokio::io::AsyncBufRead + Unpin + Send> = if input == "-" {
        Box::new(BufReader::new(tokio::io::stdin()))
    } else {
        Box::new(BufReader::new(
            tokio::fs::File::open(input)
                .await
                .with_context(|| format!("opening {input}"))?,
        ))
    };
    let mut lines = reader.lines();
    let mut out = tokio::io::BufWriter::new(tokio::io::stdout());
    let (mut n, mut bad) = (0u64, 0u64);
    while let Some(line) = lines.next_line().await? {
        n += 1;
        if line.trim().is_empty() {
            continue;
        }
        let result = SecurityEvent::from_json(&line)
            .map_err(|e| e.to_string())
            .and_then(|e| format.transform(&e).map_err(|e| e.to_string()));
        match result {
            Ok(bytes) => {
                out.write_all(&bytes).await?;
                out.write_all(b"\n").await?;
            }
            Err(e) => {
                bad += 1;
                eprintln!("line {n}: {e}");
            }
        }
    }
    out.flush().await?;
    Ok(if bad == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
