//! `report.json` (the latest result of each scenario; a run replaces only its own scenarios) and
//! the markdown summary rendered from it.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::copy::CopyResult;
use crate::stats::{Latency, Rate, RssSummary};

/// Every scenario's latest result.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Report {
    /// By scenario name.
    pub scenarios: BTreeMap<String, ScenarioReport>,
}

/// One scenario run.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ScenarioReport {
    /// `baseline`, `throughput`, `pipeline` or `outage`.
    pub scenario: String,
    /// Run id (suffix of topic and stage names).
    pub run: String,
    /// When it started, UTC.
    pub started_utc: String,
    /// `git rev-parse --short HEAD` (and `-dirty` when the tree has changes).
    pub commit: String,
    /// The command line.
    pub command: String,
    /// The machine and how busy it was.
    pub machine: Machine,
    /// What was asked for.
    pub settings: Settings,
    /// What the generator produced.
    pub generation: Generation,
    /// What reached the sink simulator.
    pub delivery: Option<Delivery>,
    /// End-to-end latency, event time → simulator receipt, after the warm-up.
    pub latency: Option<Latency>,
    /// Latency by 5 s of event time (measured period only), to see drift or stalls.
    #[serde(default)]
    pub latency_timeline: Vec<TimelineBucket>,
    /// Sink receipt rate (pipeline) or copy ack rate (baseline).
    pub pipeline_rate: Option<Rate>,
    /// The raw copy baseline.
    pub baseline: Option<CopyResult>,
    /// Pipeline rate (first to last receipt) / the copy's (first read to last ack).
    pub ratio_to_baseline: Option<f64>,
    /// The same copy three times over, chained: the floor of three Kafka hops.
    #[serde(default)]
    pub chain: Option<ChainBaseline>,
    /// Planted IOCs vs. events the enrich stage matched.
    pub enrich: Option<EnrichCheck>,
    /// The sink outage.
    pub outage: Option<Outage>,
    /// Per process: RSS over the whole scenario and CPU time.
    pub processes: BTreeMap<String, ProcessFigures>,
    /// RSS samples per process, `(seconds, MiB)`.
    pub rss_series: BTreeMap<String, Vec<(f64, f64)>>,
    /// Named moments, seconds on the same clock as `rss_series`.
    pub marks: Vec<(String, f64)>,
    /// Each stage's `/metrics` at the end (histogram buckets left out).
    pub metrics: BTreeMap<String, BTreeMap<String, f64>>,
    /// The acceptance goals this scenario measures.
    pub goals: Vec<Goal>,
    /// Anything worth knowing when reading the figures.
    pub notes: Vec<String>,
}

/// The machine.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Machine {
    /// Logical CPUs.
    pub cores: usize,
    /// Load averages (1, 5, 15 min) at the start.
    pub loadavg_start: [f64; 3],
    /// Load averages at the end.
    pub loadavg_end: [f64; 3],
    /// Machine-wide CPU busy during the scenario, percent of all cores.
    pub cpu_busy_pct: f64,
    /// Of which this run's processes (generator, registry, stages, simulator, broker when
    /// private), percent of all cores.
    pub cpu_ours_pct: f64,
    /// The rest: other work on the machine, percent of all cores.
    pub cpu_others_pct: f64,
}

/// What was asked for.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Settings {
    /// Target events per second (0: as fast as possible).
    pub rate: u64,
    /// Seconds of generation at that rate (after the warm-up).
    pub duration_s: u64,
    /// Seconds of warm-up excluded from the latency figures.
    pub warmup_s: u64,
    /// Events of a backlog scenario.
    pub events: u64,
    /// Fraction of events with a planted indicator value.
    pub ioc_fraction: f64,
    /// Indicators seeded.
    pub indicators: u64,
    /// Partitions of the canonical, enriched and ECS topics.
    pub partitions: i32,
    /// Broker and registry.
    pub stack: String,
    /// Topology template.
    pub topology: String,
}

/// What the generator produced.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Generation {
    /// Events produced and acknowledged by the broker.
    pub acked: u64,
    /// Sends that failed.
    pub failed: u64,
    /// Events with a planted indicator value.
    pub planted: u64,
    /// Events per category.
    pub by_category: BTreeMap<String, u64>,
    /// Mean Avro record size, bytes (Confluent framing included).
    pub mean_record_bytes: f64,
    /// Seconds of generation.
    pub elapsed_s: f64,
    /// Events per second achieved.
    pub achieved_per_s: f64,
}

/// Latency of the events of one 5-second slice of event time.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct TimelineBucket {
    /// Seconds from the start of the measured period.
    pub from_s: u64,
    /// Latency of its events.
    pub latency: Latency,
}

/// What reached the simulator.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Delivery {
    /// Events expected (acknowledged by the broker).
    pub expected: u64,
    /// Distinct events received.
    pub received: u64,
    /// Receipts of events received before.
    pub duplicates: u64,
    /// Receipts of ids not of this run.
    pub foreign: u64,
    /// Expected but never received.
    pub missing: u64,
    /// Seconds from the end of generation (or the heal) to the last receipt.
    pub drain_s: f64,
}

/// The enrich check.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct EnrichCheck {
    /// Events generated with an indicator value.
    pub planted: u64,
    /// Events the enrich stage reported with matches (its exit summary).
    pub matched_events: Option<u64>,
    /// Indicators in its table (`secflow_indicators`).
    pub indicators_in_table: Option<f64>,
}

/// The sink outage.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Outage {
    /// Seconds the simulator answered 503.
    pub outage_s: f64,
    /// Data requests answered with the injected 503.
    pub faulted_requests: Option<u64>,
    /// Events received during the outage (should be 0).
    pub received_during_outage: u64,
    /// RSS during the outage per process.
    pub rss_during: BTreeMap<String, RssSummary>,
    /// RSS during the second half of the outage per process (the plateau).
    pub rss_second_half: BTreeMap<String, RssSummary>,
    /// Seconds from the heal to the last receipt.
    pub heal_to_drained_s: Option<f64>,
}

/// One process.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ProcessFigures {
    /// Its pid.
    pub pid: u32,
    /// RSS over the scenario.
    pub rss: RssSummary,
    /// CPU seconds (user + system) used during the scenario.
    pub cpu_s: f64,
}

/// An acceptance goal and the measured figure.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Goal {
    /// What is measured.
    pub name: String,
    /// The goal, as text.
    pub goal: String,
    /// The measured figure, as text.
    pub measured: String,
    /// Whether the goal is met.
    pub met: bool,
}

impl Report {
    /// Reads `path`, or an empty report when it is missing or from an older format.
    pub fn load(path: &Path) -> Report {
        std::fs::read(path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }

    /// Writes `path` (JSON) and the markdown summary next to it (`.md`). RSS series are thinned
    /// to at most 150 points per process (0.1 s and 0.1 MiB resolution) to keep the file small.
    pub fn save(&mut self, path: &Path) -> Result<std::path::PathBuf> {
        for r in self.scenarios.values_mut() {
            for series in r.rss_series.values_mut() {
                *series = thin(series, 150);
            }
        }
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).with_context(|| dir.display().to_string())?;
        }
        std::fs::write(path, serde_json::to_vec_pretty(self)?)
            .with_context(|| path.display().to_string())?;
        let md = path.with_extension("md");
        std::fs::write(&md, self.markdown()).with_context(|| md.display().to_string())?;
        Ok(md)
    }

    /// The short markdown summary.
    pub fn markdown(&self) -> String {
        let mut s = String::from("# Load test report\n\nGenerated by `loadtest run` from `report.json` (same directory). \
            Latency is event time (set when the generator produced the event) → receipt at the webhook \
            simulator, so it includes the generator's producer, the broker and every stage.\n");
        let order = ["baseline", "throughput", "pipeline", "outage"];
        let mut names: Vec<&String> = self.scenarios.keys().collect();
        names.sort_by_key(|n| order.iter().position(|o| o == n).unwrap_or(order.len()));
        for name in names {
            let r = &self.scenarios[name];
            let _ = write!(
                s,
                "\n## {name}\n\n`{}`\n\n{} · commit {} · run {} · {} cores, load average {:.2} → {:.2}; CPU busy {:.0} % of the machine, {:.0} % this run's processes, {:.0} % other work\n\n",
                r.command,
                r.started_utc,
                r.commit,
                r.run,
                r.machine.cores,
                r.machine.loadavg_start[0],
                r.machine.loadavg_end[0],
                r.machine.cpu_busy_pct,
                r.machine.cpu_ours_pct,
                r.machine.cpu_others_pct
            );
            if !r.goals.is_empty() {
                s.push_str("| goal | target | measured | met |\n| --- | --- | --- | --- |\n");
                for g in &r.goals {
                    let _ = writeln!(
                        s,
                        "| {} | {} | {} | {} |",
                        g.name,
                        g.goal,
                        g.measured,
                        if g.met { "yes" } else { "**no**" }
                    );
                }
                s.push('\n');
            }
            s.push_str("| measure | value |\n| --- | --- |\n");
            let g = &r.generation;
            let _ = writeln!(
                s,
                "| generated | {} events ({} failed) in {:.1} s, {:.0}/s (target {}), {} with an IOC, {:.0} B per record |",
                g.acked,
                g.failed,
                g.elapsed_s,
                g.achieved_per_s,
                if r.settings.rate == 0 {
                    "as fast as possible".to_string()
                } else {
                    format!("{}/s", r.settings.rate)
                },
                g.planted,
                g.mean_record_bytes
            );
            let mix: Vec<String> = g
                .by_category
                .iter()
                .map(|(k, v)| format!("{k} {:.0} %", *v as f64 * 100.0 / g.acked.max(1) as f64))
                .collect();
            let _ = writeln!(s, "| mix | {} |", mix.join(", "));
            if let Some(b) = &r.baseline {
                let _ = writeln!(
                    s,
                    "| raw copy baseline | {:.0}/s sustained (10–90 % of acks), {:.0}/s from the first record read to the last ack ({} records, {:.1} CPU s) |",
                    b.rate.sustained_per_s, b.wall_per_s, b.acked, b.cpu_s
                );
            }
            if let Some(p) = &r.pipeline_rate {
                let _ = writeln!(
                    s,
                    "| sink receipt rate | {:.0}/s sustained (10–90 % of receipts), {:.0}/s overall over {:.1} s |",
                    p.sustained_per_s, p.overall_per_s, p.span_s
                );
            }
            if let Some(c) = &r.chain {
                let cpu: f64 = c.copies.iter().map(|x| x.cpu_s).sum();
                let _ = writeln!(
                    s,
                    "| {} chained copies (no work, same broker) | {:.0}/s from the first record read to the last ack of the last copy, {:.2} of the copy ({:.1} CPU s in all) |",
                    c.copies.len(),
                    c.per_s,
                    c.ratio_to_copy,
                    cpu
                );
            }
            if let Some(x) = r.ratio_to_baseline {
                let _ = writeln!(s, "| pipeline / baseline | {x:.2} |");
            }
            if let Some(x) = r.chain.as_ref().and_then(|c| c.pipeline_ratio) {
                let _ = writeln!(s, "| pipeline / chained copies | {x:.2} |");
            }
            if let Some(l) = &r.latency {
                let _ = writeln!(
                    s,
                    "| latency (ms) | p50 {} · p95 {} · p99 {} · max {} · mean {:.1} ({} events) |",
                    l.p50_ms, l.p95_ms, l.p99_ms, l.max_ms, l.mean_ms, l.count
                );
            }
            if !r.latency_timeline.is_empty() {
                let slices: Vec<String> = r
                    .latency_timeline
                    .iter()
                    .map(|b| format!("{}", b.latency.p99_ms))
                    .collect();
                let _ = writeln!(
                    s,
                    "| p99 per 5 s of event time (ms) | {} |",
                    slices.join(" · ")
                );
            }
            if let Some(d) = &r.delivery {
                let _ = writeln!(
                    s,
                    "| delivered | {} of {} ({} missing, {} duplicate receipts), drained {:.1} s after the end |",
                    d.received, d.expected, d.missing, d.duplicates, d.drain_s
                );
            }
            if let Some(e) = &r.enrich {
                let _ = writeln!(
                    s,
                    "| enrich | {} planted, {} matched by the stage, {} indicators in its table |",
                    e.planted,
                    e.matched_events
                        .map(|m| m.to_string())
                        .unwrap_or_else(|| "?".into()),
                    e.indicators_in_table
                        .map(|m| format!("{m:.0}"))
                        .unwrap_or_else(|| "?".into()),
                );
            }
            if let Some(o) = &r.outage {
                let _ = writeln!(
                    s,
                    "| outage | {:.0} s of 503 ({} requests faulted, {} events received meanwhile); drained {} after the heal |",
                    o.outage_s,
                    o.faulted_requests
                        .map(|m| m.to_string())
                        .unwrap_or_else(|| "?".into()),
                    o.received_during_outage,
                    o.heal_to_drained_s
                        .map(|x| format!("{x:.1} s"))
                        .unwrap_or_else(|| "not".into())
                );
                for (name, rss) in &o.rss_during {
                    let half = o.rss_second_half.get(name).cloned().unwrap_or_default();
                    let _ = writeln!(
                        s,
                        "| RSS during the outage: {name} | {:.1} → {:.1} MiB (min {:.1}, max {:.1}); second half {:+.2} MiB/min |",
                        rss.first_mb, rss.last_mb, rss.min_mb, rss.max_mb, half.slope_mb_per_min
                    );
                }
            }
            for (name, p) in &r.processes {
                let _ = writeln!(
                    s,
                    "| process {name} | RSS max {:.1} MiB (last {:.1}), {:.1} CPU s |",
                    p.rss.max_mb, p.rss.last_mb, p.cpu_s
                );
            }
            for n in &r.notes {
                let _ = writeln!(s, "\n- {n}");
            }
        }
        s
    }
}

/// At most `max` evenly spaced samples (first and last kept), rounded to 0.1.
fn thin(series: &[(f64, f64)], max: usize) -> Vec<(f64, f64)> {
    let round = |x: f64| (x * 10.0).round() / 10.0;
    let n = series.len();
    let pick: Vec<usize> = if n <= max || max < 2 {
        (0..n).collect()
    } else {
        (0..max).map(|i| i * (n - 1) / (max - 1)).collect()
    };
    pick.into_iter()
        .map(|i| (round(series[i].0), round(series[i].1)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_markdown() {
        let mut r = Report::default();
        r.scenarios.insert(
            "pipeline".into(),
            ScenarioReport {
                scenario: "pipeline".into(),
                goals: vec![Goal {
                    name: "p99".into(),
                    goal: "< 150 ms".into(),
                    measured: "12 ms".into(),
                    met: true,
                }],
                latency: Some(Latency::of(vec![1, 2, 3])),
                ..ScenarioReport::default()
            },
        );
        let text = serde_json::to_string(&r).unwrap_or_default();
        let back: Report = serde_json::from_str(&text).unwrap_or_default();
        assert!(back.scenarios.contains_key("pipeline"));
        let md = back.markdown();
        assert!(md.contains("## pipeline"), "{md}");
        assert!(md.contains("| p99 | < 150 ms | 12 ms | yes |"), "{md}");
        assert!(md.contains("p50 2"), "{md}");
        let long: Vec<(f64, f64)> = (0..1000).map(|i| (i as f64, 1.0 + i as f64)).collect();
        let t = thin(&long, 150);
        assert_eq!(t.len(), 150);
        assert_eq!((t[0], t[149]), ((0.0, 1.0), (999.0, 1000.0)));
    }
}

/// Copies chained through the broker (canonical → chain-1 → … → chain-N), all running at once:
/// what N Kafka hops cost on this machine with no work in them.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ChainBaseline {
    /// Each copy's own figures, first hop first.
    pub copies: Vec<CopyResult>,
    /// Records over the time from the first copy's first read to the last copy's last ack.
    pub per_s: f64,
    /// `per_s` / the single copy's first-read-to-last-ack rate.
    pub ratio_to_copy: f64,
    /// The pipeline's first-to-last receipt rate / `per_s` (throughput scenario).
    pub pipeline_ratio: Option<f64>,
}

impl ChainBaseline {
    /// The chain's figures from its copies' results.
    pub fn of(copies: Vec<CopyResult>, single: &CopyResult) -> ChainBaseline {
        let first = copies.first().map_or(0, |c| c.first_read_ms);
        let last = copies.last().map_or(0, |c| c.last_ack_ms);
        let acked = copies.last().map_or(0, |c| c.acked);
        let per_s = acked as f64 * 1000.0 / (last - first).max(1) as f64;
        ChainBaseline {
            ratio_to_copy: per_s / single.wall_per_s.max(1e-9),
            copies,
            per_s,
            pipeline_ratio: None,
        }
    }
}
