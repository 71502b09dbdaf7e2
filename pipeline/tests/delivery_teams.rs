//! The Teams sink through the real broker to the Teams simulator: every event accounted for
//! in exactly one Adaptive Card (its own or a summary's count), routed by tenant and severity;
//! a Workflows 429 with `Retry-After` and a connector's 429 wrapped in a 200 retried until
//! everything is delivered; a refused card (400) dead-lettered with its headers; a burst of
//! 1,200 events to three webhooks never puts two cards into one channel within a second, the
//! summaries adding up to the burst; the legacy MessageCard through connector webhooks.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use common::sink::{
    assert_one_per_second, burst, expected_per_channel, run_sink, CHANNELS, ECS_TOPIC,
};
use devstack::sim::{
    Faults, SimConfig, SimKind, SimServer, StatusRule, TeamsApp, TeamsMessage, TeamsSimConfig,
    TeamsVia,
};
use pipeline::delivery::engine;

/// Which URL each channel's webhook is.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Hooks {
    /// Workflows for all.
    Workflows,
    /// Legacy connectors for all.
    Connectors,
    /// `acme` through a connector, the others through Workflows.
    Mixed,
}

/// A Teams simulator (one message per second per channel enforced), the webhook URLs in
/// secret files, and a test stack whose topology has a Teams sink stage `teams` reading the
/// ECS topic, routing acme to `acme`, critical to `war-room`, the rest to `soc`.
async fn teams_env(
    hooks: Hooks,
    settings: &str,
    sink_extra: &str,
) -> (SimServer, tempfile::TempDir, common::Env) {
    let sim = SimServer::start(
        SimKind::Teams(TeamsSimConfig::new(&CHANNELS).with_min_interval(Duration::from_secs(1))),
        SimConfig {
            keep_requests: 10_000,
            ..SimConfig::default()
        },
    )
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut webhooks = "      webhooks:\n".to_string();
    for ch in CHANNELS {
        let connector = hooks == Hooks::Connectors || (hooks == Hooks::Mixed && ch == "acme");
        let url = if connector {
            TeamsSimConfig::connector_url(&sim.url(), ch)
        } else {
            TeamsSimConfig::workflow_url(&sim.url(), ch)
        };
        let p = dir.path().join(ch);
        std::fs::write(&p, url).unwrap();
        webhooks.push_str(&format!("        {ch}: {{file: {}}}\n", p.display()));
    }
    let stages = format!(
        "  - type: sink\n    name: teams\n    input: ecs\n{settings}    sink:\n      kind: teams\n{webhooks}      channel: soc\n      routes:\n        - {{tenants: [acme], channel: acme}}\n        - {{min_severity: critical, channel: war-room}}\n      links:\n        - {{text: Open case, url: \"https://soar.example/cases?event={{event.id}}\"}}\n{sink_extra}"
    );
    let env = common::env(&stages).await;
    (sim, dir, env)
}

/// How many events a card stands for (its footer `secflow · N events`), after checking that its
/// summary adds up (severity counts and "N more" lines).
fn checked_count(m: &TeamsMessage) -> usize {
    let text = m.all_text();
    let at = text.find("secflow · ").expect("footer") + "secflow · ".len();
    let n: usize = text[at..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect::<String>()
        .parse()
        .unwrap();
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

fn counted_per_channel(teams: &TeamsApp) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for m in teams.messages() {
        *out.entry(m.channel.clone()).or_default() += checked_count(&m);
    }
    out
}

/// No channel got two messages within one second (receive times at the simulator), and the
/// simulator never had to throttle.
fn assert_spaced(teams: &TeamsApp) {
    for ch in CHANNELS {
        let times: Vec<u64> = teams
            .messages_in(ch)
            .iter()
            .map(|m| m.received_us)
            .collect();
        assert_one_per_second(ch, &times);
    }
    assert!(teams.throttled().is_empty(), "{:?}", teams.throttled());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_event_is_in_exactly_one_adaptive_card_in_its_channel() {
    let (sim, _secrets, env) = teams_env(
        Hooks::Workflows,
        "    batch: {max_events: 200, max_wait_ms: 200}\n",
        "",
    )
    .await;
    let teams = sim.teams().unwrap();
    let t = &env.topology;
    let events = burst("ok", 600);
    common::produce_ecs(t, &events).await;
    let report = run_sink(t, "teams", 4).await;
    println!("healthy: {report:?}, {} cards", teams.messages().len());
    assert_eq!(report.delivered, 600, "{report:?}");
    assert!(report.dead_lettered.is_empty() && report.to_tiers.is_empty());
    assert_eq!(
        sim.stats().bad_requests,
        0,
        "the simulator took every card's shape"
    );
    assert_eq!(counted_per_channel(&teams), expected_per_channel(&events));
    for m in teams.messages() {
        assert_eq!(m.via, TeamsVia::Workflow);
        let card = m.card();
        assert_eq!(card["type"], "AdaptiveCard");
        assert_eq!(card["version"], "1.4");
        assert!(card["actions"][0]["url"]
            .as_str()
            .unwrap()
            .starts_with("https://soar.example/cases?event=ok-"));
        let text = m.all_text();
        assert!(text.contains("Host\nhost-"), "{text}");
    }
    for m in teams.messages_in("war-room") {
        assert_eq!(m.card()["body"][0]["style"], "attention");
        assert!(m.all_text().starts_with("Critical: Rule R"));
    }
    for r in sim.received_requests() {
        assert!(r.path.ends_with("sig=***"), "{}", r.path);
    }
    assert_spaced(&teams);
    assert_eq!(
        common::group_lag(t, &engine::group_id("teams"), ECS_TOPIC),
        0
    );
    env.stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn throttling_in_a_429_or_inside_a_200_is_retried_until_everything_is_delivered() {
    let (sim, _secrets, env) = teams_env(
        Hooks::Mixed,
        "    batch: {max_events: 100}\n    retry: {max_attempts: 6, initial_backoff_ms: 50, max_backoff_ms: 400}\n    circuit: {failure_threshold: 10, open_ms: 300}\n",
        "",
    )
    .await;
    let teams = sim.teams().unwrap();
    let t = &env.topology;
    let events = burst("tr", 300);
    common::produce_ecs(t, &events).await;
    // Workflows: 429 with Retry-After; the acme connector: "returned HTTP error 429" in a 200.
    sim.set_faults(Faults {
        statuses: vec![StatusRule::times(429, 2).with_retry_after("1")],
        ..Faults::default()
    });
    teams.wrap_next(429, 2);
    let report = run_sink(t, "teams", 4).await;
    println!("transient: {report:?}, sim {:?}", sim.stats());
    assert_eq!(sim.stats().faulted, 4, "every injected fault was hit");
    assert_eq!(report.delivered, 300, "{report:?}");
    assert!(
        report.dead_lettered.is_empty() && report.to_tiers.is_empty(),
        "{report:?}"
    );
    assert_eq!(counted_per_channel(&teams), expected_per_channel(&events));
    assert!(teams
        .messages_in("acme")
        .iter()
        .all(|m| m.via == TeamsVia::Connector));
    assert_spaced(&teams);
    env.stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_refused_card_is_dead_lettered_with_its_headers() {
    let (sim, _secrets, env) =
        teams_env(Hooks::Workflows, "    batch: {max_events: 200}\n", "").await;
    let teams = sim.teams().unwrap();
    let t = &env.topology;
    let events = burst("dl", 400);
    let all: BTreeSet<String> = common::produce_ecs(t, &events).await.into_iter().collect();
    sim.set_faults(Faults {
        statuses: vec![StatusRule::times(400, 1)],
        ..Faults::default()
    });
    let report = run_sink(t, "teams", 4).await;
    println!("refused: {report:?}");
    let dlq = pipeline::dlq_tool::read_all(t, "teams.dlq").await.unwrap();
    assert!(!dlq.is_empty());
    let mut dead = BTreeSet::new();
    for r in &dlq {
        assert_eq!(r.header("secflow.sink"), Some("teams"));
        assert_eq!(r.header("secflow.dlq.reason"), Some("permanent"));
        assert_eq!(r.header("secflow.error.class"), Some("rejected"));
        assert_eq!(r.header("secflow.error.status"), Some("400"));
        let msg = r.header("secflow.error.message").unwrap();
        assert!(
            msg.contains("Teams refused the card") && msg.contains("InvalidRequestContent"),
            "{msg}"
        );
        for (name, value) in &r.headers {
            assert!(!value.contains("sig="), "{name} leaks a webhook URL");
        }
        dead.insert(r.header("secflow.event_id").unwrap().to_string());
    }
    assert_eq!(
        report.dead_lettered.get("permanent").copied(),
        Some(dlq.len() as u64)
    );
    // The dead-lettered records are exactly one card's; everything else was delivered.
    let delivered: usize = counted_per_channel(&teams).values().sum();
    assert_eq!(delivered + dead.len(), all.len());
    assert_eq!(report.delivered as usize, delivered);
    assert!(dead.is_subset(&all));
    assert_eq!(
        common::group_lag(t, &engine::group_id("teams"), ECS_TOPIC),
        0
    );
    env.stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_burst_is_summarised_and_no_channel_gets_two_cards_in_a_second() {
    let (sim, _secrets, env) = teams_env(
        Hooks::Workflows,
        "    batch: {max_events: 300, max_wait_ms: 100}\n",
        "",
    )
    .await;
    let teams = sim.teams().unwrap();
    let t = &env.topology;
    let events = burst("bu", 1_200);
    common::produce_ecs(t, &events).await;
    let report = run_sink(t, "teams", 4).await;
    let per_channel: BTreeMap<&str, usize> = CHANNELS
        .iter()
        .map(|c| (*c, teams.messages_in(c).len()))
        .collect();
    println!("burst: {report:?}, cards per channel {per_channel:?}");
    assert_eq!(report.delivered, 1_200, "{report:?}");
    let counted = counted_per_channel(&teams);
    assert_eq!(counted, expected_per_channel(&events));
    assert_eq!(
        counted.values().sum::<usize>(),
        1_200,
        "summaries add up to the burst"
    );
    for (ch, n) in &per_channel {
        assert!(
            *n >= 1 && *n <= 12,
            "{ch}: {n} cards for a 1,200-event burst"
        );
    }
    assert_spaced(&teams);
    env.stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_message_card_fallback_through_connectors() {
    let (sim, _secrets, env) = teams_env(Hooks::Connectors, "", "      card: message_card\n").await;
    let teams = sim.teams().unwrap();
    let t = &env.topology;
    let events = burst("mc", 60);
    common::produce_ecs(t, &events).await;
    let report = run_sink(t, "teams", 3).await;
    assert_eq!(report.delivered, 60, "{report:?}");
    assert_eq!(sim.stats().bad_requests, 0);
    assert_eq!(counted_per_channel(&teams), expected_per_channel(&events));
    for m in teams.messages() {
        assert_eq!(m.via, TeamsVia::Connector);
        assert_eq!(m.body["@type"], "MessageCard");
        assert!(m.body["themeColor"].as_str().unwrap().len() == 6);
        assert_eq!(m.body["potentialAction"][0]["@type"], "OpenUri");
    }
    assert_spaced(&teams);
    env.stack.stop().await;
}
