//! `loadtest`: drives secflow with generated canonical events and measures it end to end.
//!
//! ```sh
//! cargo build --release -p pipeline -p devstack -p loadtest
//! target/release/loadtest run --scenario throughput   # pipeline rate as a ratio of a raw copy
//! target/release/loadtest run --scenario pipeline --rate 5000 --duration 60   # latency
//! target/release/loadtest run --scenario outage --rate 10000 --duration 60    # RSS, 503 sink
//! ```
//!
//! Each scenario starts a private tansu broker and schema registry (or reuses `devstack up`'s
//! with `--reuse-devstack .devstack`), a webhook simulator (`devstack sim webhook`) that logs
//! the receipt time of every event, and the stages of `loadtest/topology.yaml` as separate
//! `secflow run --stage` processes; it samples every process's RSS and writes
//! `loadtest/report.json` and `loadtest/report.md`.

mod copy;
mod gen;
mod procs;
mod receipts;
mod report;
mod scenario;
mod stack;
mod stats;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// jemalloc for the whole process: the crate's `unprefixed_malloc_on_supported_platforms`
/// feature makes it the `malloc` of librdkafka and RocksDB too. Under load glibc's malloc and
/// free took 25–30 % of every stage's CPU (docs/benchmarks.md, "Allocator").
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[derive(Parser)]
#[command(
    name = "loadtest",
    about = "secflow load test: throughput, latency, RSS"
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run a scenario (or all) and update the report.
    Run(scenario::RunArgs),
    /// The raw baseline's copy process (started by `run`).
    #[command(hide = true)]
    Copy(copy::CopyArgs),
    /// Render the markdown summary again from a report.
    Render {
        /// The report.
        #[arg(long, default_value = "loadtest/report.json")]
        report: PathBuf,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("SECFLOW_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let result = match Cli::parse().command {
        Cmd::Run(args) => scenario::run(args).await,
        Cmd::Copy(args) => copy::run(args).await,
        Cmd::Render { report } => report::Report::load(&report)
            .save(&report)
            .map(|md| println!("{}", md.display())),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("loadtest: {e:#}");
            ExitCode::FAILURE
        }
    }
}
