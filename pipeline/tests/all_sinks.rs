//! Issue 5 acceptance: the shipped `topologies/all-sinks.yaml` (one transform to ECS, CEF and
//! OCSF, and ten sinks: Splunk HEC, Elasticsearch, a signed webhook, Datadog, Sumo Logic, syslog
//! CEF, PagerDuty, OpsGenie, Slack and Teams) run by one `secflow run` process against the ten
//! vendor simulators and a real broker. 10,000 canonical events (every example category, four
//! tenants, three hosts, alerts of medium/high/critical severity, and resolution events for one
//! tenant's incidents) go in through `secflow produce`; then:
//!
//! - every event-stream sink (HEC, Elasticsearch, webhook, Datadog, Sumo Logic, syslog) received
//!   every event id; none twice, unless at-least-once delivery explains it: a request sent again
//!   after it went unanswered (no more copies than such requests carried), or broker requests
//!   timing out during the run (a consumer that loses its partitions re-reads from its last
//!   committed offset);
//! - PagerDuty and OpsGenie: exactly the expected incidents/alerts, each opened once (no
//!   duplicate trigger or create reached the vendor), the resolved tenant's closed once, and the
//!   alerts add up (records in triggers + suppressed repeats = alert-worthy events);
//! - Slack and Teams: no channel got two messages within one second (receive times at the
//!   simulators, which also refuse a faster one with 429 like the vendors: none may be refused),
//!   and every event at or above the chat threshold is counted in exactly one message of its
//!   channel (its own or a summary's count);
//! - no dead letters, and every consumer group's lag is 0.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use devstack::sim::{
    DatadogSimConfig, ElasticSimConfig, HecSimConfig, OpsGenieSimConfig, PagerDutySimConfig,
    SimConfig, SimKind, SimServer, SlackMessage, SlackSimConfig, SumoSimConfig, SyslogSim,
    SyslogSimConfig, SyslogSimTransport, TeamsMessage, TeamsSimConfig, WebhookSimConfig,
};
use devstack::testkit::TestStack;
use pipeline::delivery::engine;
use pipeline::topology::{self, SinkTarget, StageConfig, TopicRole, Topology};
use serde_json::Value;

const N: usize = 10_000;
const TENANTS: [&str; 4] = ["acme", "globex", "initech", "umbrella"];
const HOSTS: [&str; 3] = ["ws-01", "ws-02", "srv-db-01"];
const ALERT_SEVERITIES: [&str; 3] = ["medium", "high", "critical"];
/// The tenant whose incidents get a resolution event at the end of the stream.
const RESOLVED_TENANT: &str = "globex";
const CHANNELS: [&str; 3] = ["soc", "acme", "war-room"];

const HEC_TOKEN: &str = "hec-token-all-sinks";
const WEBHOOK_SECRET: &str = "whsec-all-sinks";
const DD_KEY: &str = "dd-api-key-all-sinks";
const SUMO_TOKEN: &str = "sumo-token-all-sinks";
const PD_KEY: &str = "R0UT1NGKEY00000000000000ALLSINKS";
const OG_KEY: &str = "eb243592-faa2-4ba2-a551-1afdf565c889";
const OG_HEARTBEAT: &str = "secflow-all-sinks";
const SLACK_TOKEN: &str = "xoxb-0000000001-0000000002-AllSinksBotToken";

fn severity_rank(s: &str) -> u8 {
    match s {
        "info" => 0,
        "low" => 1,
        "medium" => 2,
        "high" => 3,
        "critical" => 4,
        other => panic!("severity {other}"),
    }
}

fn severity(e: &Value) -> u8 {
    severity_rank(e["severity"].as_str().unwrap())
}

fn id_of(e: &Value) -> String {
    e["event_id"].as_str().unwrap().to_string()
}

fn is_resolution(e: &Value) -> bool {
    e["labels"]["secflow_status"] == "resolved"
}

/// The dedup key / alias of the topology's template `{secflow.tenant}:{secflow.rule_id}:{secflow.host}`
/// (the rule id falls back to the action).
fn incident_key(e: &Value) -> String {
    let rule = e["rule"]["id"]
        .as_str()
        .or_else(|| e["action"].as_str())
        .unwrap_or("");
    let host = e["host"]["hostname"].as_str().unwrap_or("");
    format!("{}:{rule}:{host}", e["tenant"].as_str().unwrap())
}

/// What pages: high and above, not a resolution.
fn is_page(e: &Value) -> bool {
    severity(e) >= 3 && !is_resolution(e)
}

/// The chat channel the topology routes an event to; `None` below `min_severity: low`.
fn chat_channel(e: &Value) -> Option<&'static str> {
    let s = severity(e);
    if s < 1 {
        None
    } else if e["tenant"] == "acme" && s >= 2 {
        Some("acme")
    } else if s >= 4 {
        Some("war-room")
    } else {
        Some("soc")
    }
}

/// 10,000 events: the examples in turn over four tenants and three hosts, alerts cycling through
/// medium/high/critical, then one resolution event per paging incident of `RESOLVED_TENANT`.
fn events() -> Vec<Value> {
    let examples = common::examples();
    let make = |i: usize| {
        let mut e = examples[i % examples.len()].clone();
        e["event_id"] = Value::from(format!("all-{i:05}"));
        e["tenant"] = Value::from(TENANTS[(i / 13) % TENANTS.len()]);
        if e["host"].is_object() {
            e["host"]["hostname"] = Value::from(HOSTS[(i / 52) % HOSTS.len()]);
        }
        if e["kind"] == "alert" {
            e["severity"] = Value::from(ALERT_SEVERITIES[(i / 156) % ALERT_SEVERITIES.len()]);
        }
        e
    };
    // How many resolutions there will be: the resolved tenant's distinct paging incidents in
    // the first 468 (a full cycle of tenant, host and severity) is all of them.
    let cycle: Vec<Value> = (0..468).map(make).collect();
    let to_resolve: BTreeMap<String, Value> = cycle
        .iter()
        .filter(|e| is_page(e) && e["tenant"] == RESOLVED_TENANT)
        .map(|e| (incident_key(e), e.clone()))
        .collect();
    let main = N - to_resolve.len();
    let mut out: Vec<Value> = (0..main).map(make).collect();
    for (k, (_, alert)) in to_resolve.into_iter().enumerate() {
        let mut r = alert;
        r["event_id"] = Value::from(format!("all-resolved-{k:02}"));
        r["severity"] = Value::from("info");
        r["labels"]["secflow_status"] = Value::from("resolved");
        out.push(r);
    }
    assert_eq!(out.len(), N);
    out
}

/// The ten simulators.
struct Sims {
    hec: SimServer,
    elastic: SimServer,
    webhook: SimServer,
    datadog: SimServer,
    sumo: SimServer,
    pagerduty: SimServer,
    opsgenie: SimServer,
    slack: SimServer,
    teams: SimServer,
    syslog: SyslogSim,
}

async fn sim(kind: SimKind) -> SimServer {
    SimServer::start(
        kind,
        SimConfig {
            keep_requests: 100_000,
            ..SimConfig::default()
        },
    )
    .await
    .unwrap()
}

async fn start_sims() -> Sims {
    Sims {
        hec: sim(SimKind::Hec(HecSimConfig::new(HEC_TOKEN))).await,
        elastic: sim(SimKind::Elastic(ElasticSimConfig::default())).await,
        webhook: sim(SimKind::Webhook(WebhookSimConfig::new(WEBHOOK_SECRET))).await,
        datadog: sim(SimKind::Datadog(DatadogSimConfig::new(DD_KEY))).await,
        sumo: sim(SimKind::SumoLogic(SumoSimConfig::new(SUMO_TOKEN))).await,
        pagerduty: sim(SimKind::PagerDuty(PagerDutySimConfig::new(&[PD_KEY]))).await,
        opsgenie: sim(SimKind::OpsGenie(OpsGenieSimConfig::new(
            OG_KEY,
            &[OG_HEARTBEAT],
        )))
        .await,
        slack: sim(SimKind::Slack(SlackSimConfig::new(SLACK_TOKEN, &CHANNELS))).await,
        // Teams enforces one message per second per channel like Slack: a faster message is
        // refused (429) and recorded as throttled.
        teams: sim(SimKind::Teams(
            TeamsSimConfig::new(&CHANNELS).with_min_interval(Duration::from_secs(1)),
        ))
        .await,
        syslog: SyslogSim::start(SyslogSimConfig::new(SyslogSimTransport::Tcp))
            .await
            .unwrap(),
    }
}

/// The environment the topology file reads: addresses of the stack and the simulators, and
/// the secrets (`{env: …}`).
fn topology_env(stack: &TestStack, sims: &Sims, state_dir: &Path) -> BTreeMap<String, String> {
    let mut v = BTreeMap::new();
    let mut set = |k: &str, val: String| {
        v.insert(k.to_string(), val);
    };
    set("SECFLOW_BOOTSTRAP", stack.bootstrap());
    set("SECFLOW_REGISTRY_URL", stack.registry_url());
    set("SECFLOW_STATE_DIR", state_dir.display().to_string());
    set("SPLUNK_HEC_URL", sims.hec.url());
    set("SPLUNK_HEC_TOKEN", HEC_TOKEN.into());
    set("ELASTIC_URL", sims.elastic.url());
    set(
        "SOAR_WEBHOOK_URL",
        format!("{}/hooks/secflow", sims.webhook.url()),
    );
    set("SOAR_SIGNING_SECRET", WEBHOOK_SECRET.into());
    set("DD_URL", sims.datadog.url());
    set("DD_API_KEY", DD_KEY.into());
    set(
        "SUMO_URL",
        SumoSimConfig::new(SUMO_TOKEN).upload_url(&sims.sumo.url()),
    );
    set("SYSLOG_ADDRESS", sims.syslog.address());
    set("PAGERDUTY_URL", sims.pagerduty.url());
    set("PD_ROUTING_KEY", PD_KEY.into());
    set("OPSGENIE_URL", sims.opsgenie.url());
    set("OPSGENIE_API_KEY", OG_KEY.into());
    set("OPSGENIE_HEARTBEAT", OG_HEARTBEAT.into());
    set("SLACK_BOT_TOKEN", SLACK_TOKEN.into());
    set("SLACK_API_URL", SlackSimConfig::api_url(&sims.slack.url()));
    for ch in CHANNELS {
        set(
            &format!("TEAMS_WEBHOOK_{}", ch.to_uppercase().replace('-', "_")),
            TeamsSimConfig::workflow_url(&sims.teams.url(), ch),
        );
    }
    v
}

fn topology_file() -> PathBuf {
    common::workspace().join("topologies/all-sinks.yaml")
}

fn secflow(env: &BTreeMap<String, String>, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_secflow"));
    c.args(args).envs(env).env("SECFLOW_LOG", "warn");
    c
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// The value of one series in a Prometheus text exposition (`name{labels} value`).
fn series(metrics: &str, name_and_labels: &str) -> f64 {
    metrics
        .lines()
        .find_map(|l| {
            l.strip_prefix(name_and_labels)?
                .strip_prefix(' ')?
                .parse()
                .ok()
        })
        .unwrap_or(0.0)
}

/// The number after `secflow · ` in a chat message: how many events it stands for.
fn count_after_footer(text: &str) -> usize {
    let at = text.find("secflow · ").expect("count line") + "secflow · ".len();
    text[at..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect::<String>()
        .parse()
        .unwrap()
}

/// A Slack message's event count, after checking its summary adds up (severity counts and the
/// "N more" lines give the message's count).
fn slack_count(m: &SlackMessage) -> usize {
    let text = m.all_text();
    let n = count_after_footer(&text);
    if n > 1 {
        let head = format!("*{n} events: ");
        let at = text
            .find(&head)
            .unwrap_or_else(|| panic!("no summary in {text}"));
        let counts = &text[at + head.len()..];
        let counts = &counts[..counts.find('*').unwrap()];
        let by_severity: usize = counts
            .split(", ")
            .map(|p| p.split(' ').next().unwrap().parse::<usize>().unwrap())
            .sum();
        assert_eq!(by_severity, n, "{counts}");
        let more: usize = text
            .lines()
            .filter_map(|l| l.strip_prefix("• "))
            .map(|l| {
                let l = l.strip_prefix("and ").unwrap_or(l);
                l.split(' ').next().unwrap().parse::<usize>().unwrap()
            })
            .sum();
        assert_eq!(1 + more, n, "{text}");
    }
    n
}

/// A Teams card's event count, after checking its summary adds up.
fn teams_count(m: &TeamsMessage) -> usize {
    let text = m.all_text();
    let n = count_after_footer(&text);
    if n > 1 {
        let head = format!("{n} events: ");
        let line = text
            .lines()
            .find(|l| l.starts_with(&head))
            .unwrap_or_else(|| panic!("no summary in {text}"));
        let by_severity: usize = line[head.len()..]
            .split(", ")
            .map(|p| p.split(' ').next().unwrap().parse::<usize>().unwrap())
            .sum();
        assert_eq!(by_severity, n, "{line}");
        let more: usize = text
            .lines()
            .filter_map(|l| l.strip_prefix("- "))
            .map(|l| {
                let l = l.strip_prefix("and ").unwrap_or(l);
                l.split(' ').next().unwrap().parse::<usize>().unwrap()
            })
            .sum();
        assert_eq!(1 + more, n, "{text}");
    }
    n
}

/// The most messages any one-second window holds, and the smallest gap between two messages
/// (µs), from receive times in microseconds (sorted).
fn rate_figures(times: &[u64]) -> (usize, Option<u64>) {
    let mut most = 0;
    let mut start = 0;
    for end in 0..times.len() {
        while times[end] - times[start] >= 1_000_000 {
            start += 1;
        }
        most = most.max(end - start + 1);
    }
    let min_gap = times.windows(2).map(|w| w[1] - w[0]).min();
    (most, min_gap)
}

/// Checks one chat sink: per channel, no two posted messages within one second (receive times
/// at the simulator) and the counts add up to the expected events. Requests the simulator
/// refused as too fast are printed with how long after the channel's previous accepted message
/// they came. Prints the figures, returns the failures.
fn check_chat(
    name: &str,
    per_channel: &BTreeMap<String, (Vec<u64>, usize)>,
    expected: &BTreeMap<String, usize>,
    throttled: &[(String, u64)],
) -> Vec<String> {
    let mut failures = Vec::new();
    for ch in CHANNELS {
        let (times, counted) = per_channel.get(ch).cloned().unwrap_or((Vec::new(), 0));
        let (most, min_gap) = rate_figures(&times);
        let refused: Vec<&u64> = throttled
            .iter()
            .filter(|(c, _)| c == ch)
            .map(|(_, t)| t)
            .collect();
        println!(
            "{name} #{ch}: {} messages for {counted} events; at most {most} message(s) in any second; smallest gap {}; {} refused as too fast",
            times.len(),
            min_gap.map_or("-".to_string(), |g| format!("{:.3} s", g as f64 / 1e6)),
            refused.len()
        );
        // The sink holds a channel's next request until the pacing gap has passed since the
        // previous request's *answer*, so no request can reach the vendor within the limit of
        // the one before: none is refused as too fast.
        if !refused.is_empty() {
            failures.push(format!(
                "{name} #{ch}: {} request(s) refused as too fast",
                refused.len()
            ));
        }
        for t in refused {
            let before = times.iter().filter(|a| *a <= t).max();
            println!(
                "  refused (429) {:.3} s after the previous accepted message, then retried",
                before.map_or(f64::NAN, |b| (t - b) as f64 / 1e6)
            );
        }
        if most > 1 {
            failures.push(format!("{name} #{ch}: {most} messages within one second"));
        }
        let want = expected.get(ch).copied().unwrap_or(0);
        if counted != want {
            failures.push(format!(
                "{name} #{ch}: {counted} events counted in messages, {want} expected"
            ));
        }
    }
    failures
}

/// The `kind:` of a sink target.
fn kind_of(target: &SinkTarget) -> &'static str {
    match target {
        SinkTarget::SplunkHec(_) => "splunk_hec",
        SinkTarget::Elasticsearch(_) => "elasticsearch",
        SinkTarget::Webhook(_) => "webhook",
        SinkTarget::Datadog(_) => "datadog",
        SinkTarget::SumoLogic(_) => "sumo_logic",
        SinkTarget::SyslogCef(_) => "syslog_cef",
        SinkTarget::PagerDuty(_) => "pagerduty",
        SinkTarget::OpsGenie(_) => "opsgenie",
        SinkTarget::Slack(_) => "slack",
        SinkTarget::Teams(_) => "teams",
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn all_ten_sinks_in_one_process_deliver_10000_events() {
    let stack = TestStack::start()
        .await
        .expect("test stack (run scripts/bootstrap.sh)");
    let sims = start_sims().await;
    let work = tempfile::tempdir().unwrap();
    let state_dir = work.path().join("state");
    std::fs::create_dir_all(&state_dir).unwrap();
    let env = topology_env(&stack, &sims, &state_dir);
    let file = topology_file();
    let text_of_file = std::fs::read_to_string(&file).unwrap();
    let t: Topology = topology::load_str(&file, &text_of_file, |k| env.get(k).cloned())
        .unwrap()
        .topology;

    // The file has every sink kind.
    let sinks: Vec<(String, TopicRole, &'static str)> = t
        .stages
        .iter()
        .filter_map(|s| match s {
            StageConfig::Sink(s) => Some((s.name.clone(), s.input, kind_of(&s.sink))),
            _ => None,
        })
        .collect();
    let kinds: BTreeSet<&str> = sinks.iter().map(|s| s.2).collect();
    assert_eq!(kinds.len(), 10, "one sink of each kind: {kinds:?}");

    // Topics and events through the CLI, as an operator would.
    let o = secflow(&env, &["topics", "create", "--topology"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(o.status.success(), "topics create: {}", text(&o));
    let events = events();
    let ids: BTreeSet<String> = events.iter().map(id_of).collect();
    assert_eq!(ids.len(), N);
    let input = work.path().join("events.jsonl");
    common::write_jsonl(&input, &events);
    let o = secflow(&env, &["produce", "--topology"])
        .arg(&file)
        .arg(&input)
        .output()
        .unwrap();
    assert!(o.status.success(), "produce: {}", text(&o));

    // One process, every stage; scrape /metrics until it stops (the last scrape falls in the
    // final idle period, so it has the final counts).
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let log = work.path().join("secflow-run.log");
    let started = Instant::now();
    let mut child = secflow(&env, &["run", "--until-idle", "15", "--topology"])
        .arg(&file)
        .env("SECFLOW_METRICS_ADDR", format!("127.0.0.1:{port}"))
        .stdout(Stdio::piped())
        .stderr(Stdio::from(std::fs::File::create(&log).unwrap()))
        .spawn()
        .unwrap();
    let http = reqwest::Client::new();
    let mut metrics = String::new();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > Duration::from_secs(900) {
            let _ = child.kill();
            panic!(
                "secflow run did not finish in 15 minutes; log:\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        }
        if let Ok(r) = http
            .get(format!("http://127.0.0.1:{port}/metrics"))
            .send()
            .await
        {
            if let Ok(body) = r.text().await {
                if !body.is_empty() {
                    metrics = body;
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let mut report = String::new();
    std::io::Read::read_to_string(&mut child.stdout.take().unwrap(), &mut report).unwrap();
    println!(
        "secflow run: {status} after {:.0} s\n{report}",
        started.elapsed().as_secs_f64()
    );
    let log_text = std::fs::read_to_string(&log).unwrap_or_default();
    let log_lines: Vec<&str> = log_text.lines().collect();
    println!(
        "secflow run log ({} lines, the last 60):\n{}",
        log_lines.len(),
        log_lines[log_lines.len().saturating_sub(60)..].join("\n")
    );
    if !status.success() || log_text.contains("SESSTMOUT") {
        let broker_log = std::fs::read_to_string(stack.dir().join("tansu.log")).unwrap_or_default();
        let lines: Vec<&str> = broker_log.lines().collect();
        println!(
            "broker log (the last 40 of {} lines):\n{}",
            lines.len(),
            lines[lines.len().saturating_sub(40)..].join("\n")
        );
    }
    assert!(status.success(), "secflow run failed");
    assert!(!metrics.is_empty(), "no /metrics scrape");

    let mut failures = Vec::new();
    let broker_trouble = log_text.contains("REQTMOUT") || log_text.contains("SESSTMOUT");
    if broker_trouble {
        println!("the broker timed out requests during the run (see the log above)");
    }
    let canonical = t.topics.resolved(TopicRole::Canonical).name;

    // The transform wrote every event to the three formats.
    for role in [TopicRole::Ecs, TopicRole::Cef, TopicRole::Ocsf] {
        let topic = t.topics.resolved(role).name;
        let out = series(
            &metrics,
            &format!("secflow_records_out_total{{stage=\"to-formats\",topic=\"{topic}\"}}"),
        );
        println!("to-formats → {topic}: {out}");
        if out as usize != N {
            failures.push(format!("transform wrote {out} records to {topic}"));
        }
    }

    // ---- event streams: every id; a second copy only from a request the sink sent again ----
    println!(
        "\n{:<12} {:>9} {:>9} {:>10} {:>9} {:>9} {:>9}",
        "sink", "delivered", "ids", "duplicates", "requests", "no answer", "retried"
    );
    let streams: [(&str, BTreeSet<String>, usize, u64); 6] = [
        (
            "splunk",
            sims.hec.received_event_ids(),
            sims.hec.duplicate_event_ids().len(),
            sims.hec.stats().requests,
        ),
        (
            "elastic",
            sims.elastic.received_event_ids(),
            sims.elastic.duplicate_event_ids().len(),
            sims.elastic.stats().requests,
        ),
        (
            "soar",
            sims.webhook.received_event_ids(),
            sims.webhook.duplicate_event_ids().len(),
            sims.webhook.stats().requests,
        ),
        (
            "datadog",
            sims.datadog.received_event_ids(),
            sims.datadog.duplicate_event_ids().len(),
            sims.datadog.stats().requests,
        ),
        (
            "sumo",
            sims.sumo.received_event_ids(),
            sims.sumo.duplicate_event_ids().len(),
            sims.sumo.stats().requests,
        ),
        {
            let counts = sims.syslog.event_counts();
            (
                "siem-syslog",
                counts.keys().cloned().collect(),
                counts.values().filter(|n| **n > 1).count(),
                sims.syslog.connections(),
            )
        },
    ];
    for (name, got, dupes, requests) in &streams {
        // A sink's delivered records are counted under its own name as the topic.
        let delivered = series(
            &metrics,
            &format!("secflow_records_out_total{{stage=\"{name}\",topic=\"{name}\"}}"),
        );
        // Requests that got no answer (timeout, connection lost) and records retried in
        // process: at least once means such a request may have arrived and is sent again.
        let transport = series(
            &metrics,
            &format!("secflow_sink_requests_total{{sink=\"{name}\",status=\"transport\"}}"),
        );
        let retried = series(
            &metrics,
            &format!("secflow_sink_retries_total{{sink=\"{name}\",tier=\"in_process\"}}"),
        ) as usize;
        println!(
            "{name:<12} {delivered:>9} {:>9} {dupes:>10} {requests:>9} {transport:>9} {retried:>9}{}",
            got.len(),
            if *name == "siem-syslog" {
                " (requests: connections)"
            } else {
                ""
            }
        );
        if got != &ids {
            let missing = ids.difference(got).count();
            let extra = got.difference(&ids).count();
            failures.push(format!("{name}: {missing} ids missing, {extra} unexpected"));
        }
        // A duplicate needs a visible cause: a record sent again after its request went
        // unanswered (at most a batch per unanswered request, plus the records retried on
        // their own), or broker trouble (requests to the broker timing out: a consumer that
        // loses its partitions re-reads from the last committed offset).
        let max_events = match t.stage(name) {
            Some(StageConfig::Sink(s)) => s.batch.max_events,
            _ => 0,
        };
        if *dupes > transport as usize * max_events + retried && !broker_trouble {
            failures.push(format!(
                "{name}: {dupes} ids received more than once, but only {transport} requests went unanswered, {retried} records were retried and the broker answered in time"
            ));
        }
    }
    if !sims.syslog.problems().is_empty() {
        failures.push(format!("syslog problems: {:?}", sims.syslog.problems()));
    }
    for (name, s) in [
        ("splunk", &sims.hec),
        ("elastic", &sims.elastic),
        ("soar", &sims.webhook),
        ("datadog", &sims.datadog),
        ("sumo", &sims.sumo),
    ] {
        let st = s.stats();
        if st.auth_failures + st.bad_requests + st.bad_signatures > 0 {
            failures.push(format!("{name}: refused requests {st:?}"));
        }
    }

    // ---- alerting: the right incidents, each opened once ----
    let pages: Vec<&Value> = events.iter().filter(|e| is_page(e)).collect();
    let want_keys: BTreeSet<String> = pages.iter().map(|e| incident_key(e)).collect();
    let resolved_keys: BTreeSet<String> = events
        .iter()
        .filter(|e| is_resolution(e))
        .map(incident_key)
        .collect();
    assert!(!resolved_keys.is_empty() && resolved_keys.is_subset(&want_keys));
    let pd = sims.pagerduty.pagerduty().unwrap();
    let og = sims.opsgenie.opsgenie().unwrap();
    for (name, incidents, actions, open_action, close_action) in [
        (
            "pagerduty",
            pd.incidents(),
            pd.actions(),
            "trigger",
            "resolve",
        ),
        ("opsgenie", og.alerts(), og.actions(), "create", "close"),
    ] {
        let opened: u64 = incidents.values().map(|h| h.opened).sum();
        let deduplicated: u64 = incidents.values().map(|h| h.deduplicated).sum();
        let resolved: u64 = incidents.values().map(|h| h.resolved).sum();
        let ignored: u64 = incidents.values().map(|h| h.resolves_ignored).sum();
        let occurrences: u64 = actions
            .iter()
            .filter(|a| a.action == open_action)
            .map(|a| {
                let v = if name == "pagerduty" {
                    &a.body["payload"]["custom_details"]["secflow"]["occurrences"]
                } else {
                    &a.body["details"]["occurrences"]
                };
                v.as_u64()
                    .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
                    .unwrap()
            })
            .sum();
        let suppressed_open = series(
            &metrics,
            &format!("secflow_sink_suppressed_total{{sink=\"{name}\",reason=\"incident_open\"}}"),
        ) as u64;
        let suppressed_below = series(
            &metrics,
            &format!(
                "secflow_sink_suppressed_total{{sink=\"{name}\",reason=\"below_min_severity\"}}"
            ),
        ) as u64;
        println!(
            "\n{name}: {} incidents ({} expected), {opened} {open_action}s opened, {deduplicated} duplicate {open_action}s, {resolved} {close_action}s ({} expected), {ignored} ignored; \
             {occurrences} alerts in {open_action}s + {suppressed_open} suppressed while open = {} ({} alert-worthy events); {suppressed_below} below min_severity",
            incidents.len(),
            want_keys.len(),
            resolved_keys.len(),
            occurrences + suppressed_open,
            pages.len()
        );
        if incidents.keys().cloned().collect::<BTreeSet<_>>() != want_keys {
            failures.push(format!(
                "{name}: incident keys differ from the expected ones"
            ));
        }
        for (key, h) in &incidents {
            let closed = resolved_keys.contains(key);
            if h.opened != 1 || h.deduplicated != 0 || h.resolves_ignored != 0 {
                failures.push(format!("{name} {key}: {h:?}"));
            }
            if h.resolved != u64::from(closed) || h.open == closed {
                failures.push(format!(
                    "{name} {key}: resolved/open {h:?}, want closed={closed}"
                ));
            }
        }
        if occurrences + suppressed_open != pages.len() as u64 {
            failures.push(format!(
                "{name}: {occurrences} + {suppressed_open} alerts accounted for, {} alert-worthy",
                pages.len()
            ));
        }
    }
    println!("opsgenie heartbeat pings: {}", og.pings().len());

    // ---- chat: one message per channel per second, every event counted ----
    let mut expected_chat: BTreeMap<String, usize> = BTreeMap::new();
    for e in &events {
        if let Some(ch) = chat_channel(e) {
            *expected_chat.entry(ch.to_string()).or_default() += 1;
        }
    }
    let slack = sims.slack.slack().unwrap();
    let mut per_channel: BTreeMap<String, (Vec<u64>, usize)> = BTreeMap::new();
    for m in slack.messages() {
        let e = per_channel.entry(m.channel.clone()).or_default();
        e.0.push(m.received_us);
        e.1 += slack_count(&m);
    }
    println!();
    failures.extend(check_chat(
        "slack",
        &per_channel,
        &expected_chat,
        &slack
            .throttled()
            .into_iter()
            .map(|t| (t.channel, t.received_us))
            .collect::<Vec<_>>(),
    ));
    let teams = sims.teams.teams().unwrap();
    let mut per_channel: BTreeMap<String, (Vec<u64>, usize)> = BTreeMap::new();
    for m in teams.messages() {
        let e = per_channel.entry(m.channel.clone()).or_default();
        e.0.push(m.received_us);
        e.1 += teams_count(&m);
    }
    failures.extend(check_chat(
        "teams",
        &per_channel,
        &expected_chat,
        &teams
            .throttled()
            .into_iter()
            .map(|t| (t.channel, t.received_us))
            .collect::<Vec<_>>(),
    ));

    // ---- nothing dead-lettered, nothing left behind ----
    println!();
    let lag = common::group_lag(&t, "secflow.stage.to-formats", &canonical);
    println!("lag secflow.stage.to-formats on {canonical}: {lag}");
    if lag != 0 {
        failures.push(format!("transform lag {lag}"));
    }
    let mut dlq_topics = vec!["to-formats.dlq".to_string()];
    for (name, input, _) in &sinks {
        let topic = t.topics.resolved(*input).name;
        let group = engine::group_id(name);
        let lag = common::group_lag(&t, &group, &topic);
        println!("lag {group} on {topic}: {lag}");
        if lag != 0 {
            failures.push(format!("{group}: lag {lag}"));
        }
        dlq_topics.push(format!("{name}.dlq"));
    }
    for topic in dlq_topics {
        let dead = pipeline::dlq_tool::read_all(&t, &topic).await.unwrap();
        if !dead.is_empty() {
            failures.push(format!(
                "{topic}: {} dead letters, first {:?}",
                dead.len(),
                dead[0].headers
            ));
        }
    }
    assert!(failures.is_empty(), "failures:\n{}", failures.join("\n"));
    stack.stop().await;
}
