//! `devstack`: starts and stops the local stack for the demo (broker + schema registry with
//! `up`, the sink simulators with `sims up`, medallion with `taxii up`), and serves the registry
//! or one simulator in the foreground.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use devstack::launcher::{self, Ports, StateDir};
use devstack::registry::{serve, Compatibility, RegistryConfig};
use devstack::services;

/// jemalloc for the whole process: the crate's `unprefixed_malloc_on_supported_platforms`
/// feature makes it the `malloc` of librdkafka and RocksDB too. Under load glibc's malloc and
/// free took 25–30 % of every stage's CPU (docs/benchmarks.md, "Allocator").
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[derive(Parser)]
#[command(
    name = "devstack",
    about = "secflow's local stack: tansu broker + schema registry, sink simulators, TAXII server"
)]
struct Cli {
    /// Where state, logs and the env file live.
    #[arg(
        long,
        global = true,
        default_value = ".devstack",
        env = "SECFLOW_DEVSTACK_DIR"
    )]
    state_dir: PathBuf,
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Start broker and registry in the background (no-op when already up).
    Up {
        /// Kafka port.
        #[arg(long, default_value_t = 9092, env = "SECFLOW_BROKER_PORT")]
        broker_port: u16,
        /// Registry port.
        #[arg(long, default_value_t = 8081, env = "SECFLOW_REGISTRY_PORT")]
        registry_port: u16,
    },
    /// Show what runs.
    Status,
    /// Stop what `up`, `sims up` and `taxii up` started.
    Down,
    /// Every sink simulator in the background on the ports the example topologies use
    /// (`up`), or stop them (`down`); their addresses and dev secrets go to `sinks.env`.
    Sims {
        #[command(subcommand)]
        action: SimsAction,
    },
    /// OASIS medallion (TAXII 2.1, from the project venv) in the background, serving a STIX
    /// bundle in one collection (`up`), or stop it (`down`); its URL and credentials go to
    /// `taxii.env`.
    Taxii {
        #[command(subcommand)]
        action: TaxiiAction,
    },
    /// Run a sink simulator in the foreground (faults via `POST /_sim/faults`, what arrived via
    /// `GET /_sim/received`).
    Sim {
        /// Which API: `hec`, `elastic`, `webhook`, `datadog`, `sumo-logic`, `slack` (channels
        /// soc, acme, war-room), `teams` (the same channels; both take one message per channel
        /// per second), `pagerduty` (`--secret` is the 32-character integration key) or
        /// `opsgenie` (heartbeat `secflow-dev`); or a syslog receiver: `syslog` (TCP),
        /// `syslog-tls`, `syslog-udp` (prints each message as JSON).
        kind: SimChoice,
        /// Listen address.
        #[arg(long, default_value = "127.0.0.1:0")]
        listen: std::net::SocketAddr,
        /// HEC token, webhook signing secret, Datadog API key, Sumo Logic source token, or Slack
        /// bot token (its webhook secrets are `<secret>-<channel>`).
        #[arg(long, default_value = "dev-token")]
        secret: String,
        /// Recent requests (with their bodies) kept for `GET /_sim/received`; 0 keeps none
        /// (the load test counts events from the receipt log instead).
        #[arg(long, default_value_t = 1_000)]
        keep_requests: usize,
    },
    /// Serve the schema registry in the foreground.
    Registry {
        /// Listen address.
        #[arg(long, default_value = "127.0.0.1:8081")]
        listen: std::net::SocketAddr,
        /// Persist to this file (ids survive restarts).
        #[arg(long)]
        data: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum SimsAction {
    /// Start the simulators that are not running (hec 8123, elastic 8124, webhook 8125,
    /// datadog 8126, sumo-logic 8127, pagerduty 8128, opsgenie 8129, slack 8130, teams 8131,
    /// syslog 5514).
    Up,
    /// Stop them.
    Down,
}

#[derive(Subcommand)]
enum TaxiiAction {
    /// Start medallion unless it runs (a running one keeps what it serves).
    Up {
        /// A STIX 2.1 bundle (or a JSON array of objects) to serve, dated as added now.
        #[arg(long)]
        objects: PathBuf,
        /// Port.
        #[arg(long, default_value_t = devstack::services::TAXII_PORT)]
        port: u16,
    },
    /// Stop it.
    Down,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum SimChoice {
    Hec,
    Elastic,
    Webhook,
    Datadog,
    SumoLogic,
    Slack,
    Teams,
    Pagerduty,
    Opsgenie,
    Syslog,
    SyslogTls,
    SyslogUdp,
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("SECFLOW_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let dir = StateDir(cli.state_dir);
    let result: Result<(), String> = match cli.command {
        Cmd::Up {
            broker_port,
            registry_port,
        } => launcher::up(
            &dir,
            Ports {
                broker: broker_port,
                registry: registry_port,
            },
        )
        .map(|s| {
            println!(
                "broker   127.0.0.1:{} (pid {})",
                s.broker.port, s.broker.pid
            );
            println!(
                "registry http://127.0.0.1:{} (pid {})",
                s.registry.port, s.registry.pid
            );
            println!("env file {}", dir.env_file().display());
        })
        .map_err(|e| e.to_string()),
        Cmd::Status => launcher::status(&dir)
            .map_err(|e| e.to_string())
            .and_then(|mut lines| {
                lines.extend(services::services_status(&dir)?);
                Ok(lines)
            })
            .map(|lines| lines.iter().for_each(|l| println!("{l}"))),
        Cmd::Down => services::services_down(&dir, "")
            .and_then(|mut lines| {
                lines.extend(launcher::down(&dir).map_err(|e| e.to_string())?);
                Ok(lines)
            })
            .map(|lines| lines.iter().for_each(|l| println!("{l}"))),
        Cmd::Sims { action } => match action {
            SimsAction::Up => services::sims_up(&dir),
            SimsAction::Down => services::services_down(&dir, "sim-"),
        }
        .map(|lines| lines.iter().for_each(|l| println!("{l}"))),
        Cmd::Taxii { action } => match action {
            TaxiiAction::Up { objects, port } => services::read_objects(&objects)
                .and_then(|objects| services::taxii_up(&dir, port, objects)),
            TaxiiAction::Down => services::services_down(&dir, "taxii"),
        }
        .map(|lines| lines.iter().for_each(|l| println!("{l}"))),
        Cmd::Sim {
            kind: kind @ (SimChoice::Syslog | SimChoice::SyslogTls | SimChoice::SyslogUdp),
            listen,
            ..
        } => run_syslog_sim(kind, listen).await,
        Cmd::Sim {
            kind,
            listen,
            secret,
            keep_requests,
        } => {
            use devstack::sim::{
                DatadogSimConfig, ElasticSimConfig, HecSimConfig, SimConfig, SimKind, SimServer,
                SlackSimConfig, SumoSimConfig, TeamsSimConfig, WebhookSimConfig,
            };
            // The channels of topologies/slack.yaml and topologies/teams.yaml.
            const CHAT_CHANNELS: [&str; 3] = ["soc", "acme", "war-room"];
            let sumo_upload = |base: &str| SumoSimConfig::new(secret.clone()).upload_url(base);
            let kind = match kind {
                SimChoice::Hec => SimKind::Hec(HecSimConfig::new(secret.clone())),
                SimChoice::Elastic => SimKind::Elastic(ElasticSimConfig::default()),
                SimChoice::Webhook => SimKind::Webhook(WebhookSimConfig::new(secret.clone())),
                SimChoice::Datadog => SimKind::Datadog(DatadogSimConfig::new(secret.clone())),
                SimChoice::SumoLogic => SimKind::SumoLogic(SumoSimConfig::new(secret.clone())),
                SimChoice::Slack => SimKind::Slack(CHAT_CHANNELS.iter().fold(
                    SlackSimConfig::new(secret.clone(), &CHAT_CHANNELS),
                    |c, ch| c.with_webhook(format!("{secret}-{ch}"), ch),
                )),
                // Like Slack, one message per channel per second: a faster one is refused (429).
                SimChoice::Teams => SimKind::Teams(
                    TeamsSimConfig::new(&CHAT_CHANNELS)
                        .with_min_interval(std::time::Duration::from_secs(1)),
                ),
                // The secret is the integration key (32 characters).
                SimChoice::Pagerduty => {
                    SimKind::PagerDuty(devstack::sim::PagerDutySimConfig::new(&[secret.as_str()]))
                }
                // The heartbeat of topologies/opsgenie.yaml.
                SimChoice::Opsgenie => SimKind::OpsGenie(devstack::sim::OpsGenieSimConfig::new(
                    secret.clone(),
                    &["secflow-dev"],
                )),
                // Served by `run_syslog_sim` (the arm above).
                SimChoice::Syslog | SimChoice::SyslogTls | SimChoice::SyslogUdp => {
                    return ExitCode::from(2)
                }
            };
            match SimServer::start(
                kind,
                SimConfig {
                    addr: listen,
                    keep_requests,
                    ..SimConfig::default()
                },
            )
            .await
            {
                Ok(server) => {
                    println!("{} simulator at {}", server.kind(), server.url());
                    if server.kind() == "sumo_logic" {
                        println!("upload URL {}", sumo_upload(&server.url()));
                    }
                    if server.kind() == "slack" {
                        println!("api_url {}", SlackSimConfig::api_url(&server.url()));
                        for ch in CHAT_CHANNELS {
                            let secret = format!("{secret}-{ch}");
                            println!(
                                "webhook {ch} {}",
                                SlackSimConfig::webhook_url(&server.url(), &secret)
                            );
                        }
                    }
                    if server.kind() == "teams" {
                        for ch in CHAT_CHANNELS {
                            println!(
                                "workflow {ch} {}",
                                TeamsSimConfig::workflow_url(&server.url(), ch)
                            );
                            println!(
                                "connector {ch} {}",
                                TeamsSimConfig::connector_url(&server.url(), ch)
                            );
                        }
                    }
                    let _ = tokio::signal::ctrl_c().await;
                    server.shutdown().await;
                    Ok(())
                }
                Err(e) => Err(e.to_string()),
            }
        }
        Cmd::Registry { listen, data } => match tokio::net::TcpListener::bind(listen).await {
            Ok(listener) => {
                let config = RegistryConfig {
                    data_file: data,
                    default_compatibility: Compatibility::Backward,
                };
                let shutdown = async {
                    let mut term = match tokio::signal::unix::signal(
                        tokio::signal::unix::SignalKind::terminate(),
                    ) {
                        Ok(s) => s,
                        Err(_) => return std::future::pending().await,
                    };
                    tokio::select! {
                        _ = term.recv() => {},
                        _ = tokio::signal::ctrl_c() => {},
                    }
                };
                serve(listener, config, shutdown)
                    .await
                    .map_err(|e| e.to_string())
            }
            Err(e) => Err(format!("binding {listen}: {e}")),
        },
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("devstack: {e}");
            ExitCode::from(1)
        }
    }
}

/// `devstack sim syslog|syslog-tls|syslog-udp`: a syslog receiver in the foreground, printing
/// every message (and every refused frame) as a JSON line until Ctrl-C.
async fn run_syslog_sim(kind: SimChoice, listen: std::net::SocketAddr) -> Result<(), String> {
    use devstack::sim::{SyslogSim, SyslogSimConfig, SyslogSimTransport};
    let transport = match kind {
        SimChoice::SyslogTls => SyslogSimTransport::Tls,
        SimChoice::SyslogUdp => SyslogSimTransport::Udp,
        _ => SyslogSimTransport::Tcp,
    };
    let mut sim = SyslogSim::start(SyslogSimConfig {
        addr: listen,
        ..SyslogSimConfig::new(transport)
    })
    .await
    .map_err(|e| e.to_string())?;
    println!(
        "syslog {} simulator at {}",
        transport.as_str(),
        sim.address()
    );
    if let Some(pem) = sim.ca_pem() {
        let file = std::env::temp_dir().join(format!(
            "secflow-syslog-sim-{}.pem",
            sim.local_addr().port()
        ));
        std::fs::write(&file, pem).map_err(|e| format!("writing {}: {e}", file.display()))?;
        println!("CA certificate (tls.ca_file) {}", file.display());
    }
    let (mut seen, mut refused) = (0, 0);
    let mut tick = tokio::time::interval(std::time::Duration::from_millis(200));
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break,
            _ = tick.tick() => {}
        }
        for m in sim.messages_since(seen) {
            seen += 1;
            println!("{}", serde_json::to_string(&m).unwrap_or_default());
        }
        let problems = sim.problems();
        for p in problems.iter().skip(refused) {
            println!("{}", serde_json::json!({ "refused": p }));
        }
        refused = problems.len();
    }
    sim.stop().await;
    Ok(())
}
