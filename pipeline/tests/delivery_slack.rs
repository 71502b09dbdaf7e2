//! The Slack sink through the real broker to the Slack simulator: every event accounted for in
//! exactly one message (its own or a summary's count) with channel routing by tenant and
//! severity; rate limits and server errors retried until everything is delivered; an archived
//! channel's messages dead-lettered with their headers while the other channels keep flowing;
//! a burst of 1,200 events to three channels never puts two messages into one channel within a
//! second, and the summaries add up to the burst; threads by dedup key in `chat.postMessage`
//! mode, across a restart (state file) and after the parent message is deleted.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use common::sink::{
    alert, assert_one_per_second, burst, expected_channel, expected_per_channel, run_sink,
    CHANNELS, ECS_TOPIC,
};
use devstack::sim::{
    Faults, SimConfig, SimKind, SimServer, SlackApp, SlackMessage, SlackSimConfig, StatusRule, Via,
};
use pipeline::delivery::engine;
use serde_json::Value;

const TOKEN: &str = "xoxb-0000000001-0000000002-SimBotTokenSecret01";
fn hook_secret(channel: &str) -> String {
    format!("SimWebhookSecret-{channel}-0123456789")
}

/// How the sink posts.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Api,
    Webhooks,
}

/// A Slack simulator with the three channels (and a webhook for each), secrets in files, and a
/// test stack whose topology has a Slack sink stage `slack` reading the ECS topic, routing
/// acme to `acme`, critical to `war-room`, the rest to `soc`. `settings` are extra stage lines
/// (indented four spaces), `sink_extra` extra sink lines (six spaces).
async fn slack_env(
    mode: Mode,
    settings: &str,
    sink_extra: &str,
) -> (SimServer, tempfile::TempDir, common::Env) {
    let config = CHANNELS
        .iter()
        .fold(SlackSimConfig::new(TOKEN, &CHANNELS), |c, ch| {
            c.with_webhook(hook_secret(ch), ch)
        });
    let sim = SimServer::start(
        SimKind::Slack(config),
        SimConfig {
            keep_requests: 10_000,
            ..SimConfig::default()
        },
    )
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let secret = |name: &str, value: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, value).unwrap();
        p.display().to_string()
    };
    let how = match mode {
        Mode::Api => format!(
            "      token: {{file: {}}}\n      api_url: {}\n      channel: \"#soc\"\n      routes:\n        - {{tenants: [acme], channel: \"#acme\"}}\n        - {{min_severity: critical, channel: \"#war-room\"}}\n",
            secret("token", TOKEN),
            SlackSimConfig::api_url(&sim.url())
        ),
        Mode::Webhooks => {
            let mut s = "      webhooks:\n".to_string();
            for ch in CHANNELS {
                let url = SlackSimConfig::webhook_url(&sim.url(), &hook_secret(ch));
                s.push_str(&format!("        {ch}: {{file: {}}}\n", secret(ch, &url)));
            }
            s.push_str("      channel: soc\n      routes:\n        - {tenants: [acme], channel: acme}\n        - {min_severity: critical, channel: war-room}\n");
            s
        }
    };
    let stages = format!(
        "  - type: sink\n    name: slack\n    input: ecs\n{settings}    sink:\n      kind: slack\n{how}      links:\n        - {{text: Open in Kibana, url: \"https://kibana.example/app/security/alerts?id={{event.id}}\"}}\n{sink_extra}"
    );
    let env = common::env(&stages).await;
    (sim, dir, env)
}

/// The number after `secflow · ` in a message: how many events it stands for.
fn count_of(text: &str) -> usize {
    let at = text.find("secflow · ").expect("context line") + "secflow · ".len();
    text[at..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect::<String>()
        .parse()
        .unwrap()
}

/// Checks a message's summary adds up: the severity counts and the "N more" lines give the
/// message's event count. Returns that count.
fn checked_count(m: &SlackMessage) -> usize {
    let text = m.all_text();
    let n = count_of(&text);
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
    } else {
        assert!(!text.contains("more "), "{text}");
    }
    n
}

/// Events per channel as the simulator's messages count them.
fn counted_per_channel(slack: &SlackApp) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for m in slack.messages() {
        *out.entry(m.channel.clone()).or_default() += checked_count(&m);
    }
    out
}

/// No channel got two messages within one second (receive times at the simulator), and the
/// simulator never had to throttle.
fn assert_spaced(slack: &SlackApp) {
    for ch in CHANNELS {
        let times: Vec<u64> = slack
            .messages_in(ch)
            .iter()
            .map(|m| m.received_us)
            .collect();
        assert_one_per_second(ch, &times);
    }
    assert!(slack.throttled().is_empty(), "{:?}", slack.throttled());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_event_is_in_exactly_one_message_in_its_channel() {
    let (sim, _secrets, env) = slack_env(
        Mode::Webhooks,
        "    batch: {max_events: 200, max_wait_ms: 200}\n",
        "",
    )
    .await;
    let slack = sim.slack().unwrap();
    let t = &env.topology;
    let events = burst("ok", 600);
    common::produce_ecs(t, &events).await;
    let report = run_sink(t, "slack", 4).await;
    println!("healthy: {report:?}, {} messages", slack.messages().len());
    assert_eq!(report.delivered, 600, "{report:?}");
    assert!(report.dead_lettered.is_empty() && report.to_tiers.is_empty());
    assert_eq!(counted_per_channel(&slack), expected_per_channel(&events));
    assert!(
        slack.messages().len() <= 3 * 6,
        "at most one message per channel per batch: {}",
        slack.messages().len()
    );
    for m in slack.messages() {
        assert_eq!(m.via, Via::Webhook);
        let text = m.all_text();
        // What the analyst sees: the top event in detail with its link.
        assert!(text.contains("*Host*\nhost-"), "{text}");
        assert!(text.contains("Rule R"), "{text}");
        let button = &m.body["attachments"][0]["blocks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|b| b["type"] == "actions")
            .unwrap()["elements"][0]["url"];
        assert!(button
            .as_str()
            .unwrap()
            .starts_with("https://kibana.example/app/security/alerts?id=ok-"));
    }
    // War-room messages carry the critical colour.
    for m in slack.messages_in("war-room") {
        assert_eq!(m.body["attachments"][0]["color"], "#8B0000");
    }
    for r in sim.received_requests() {
        assert!(!r.path.contains("SimWebhookSecret"), "{}", r.path);
    }
    assert_spaced(&slack);
    assert_eq!(
        common::group_lag(t, &engine::group_id("slack"), ECS_TOPIC),
        0
    );
    env.stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rate_limits_and_server_errors_are_retried_until_everything_is_delivered() {
    let (sim, _secrets, env) = slack_env(
        Mode::Api,
        "    batch: {max_events: 100}\n    retry: {max_attempts: 6, initial_backoff_ms: 50, max_backoff_ms: 400}\n    circuit: {failure_threshold: 10, open_ms: 300}\n",
        "",
    )
    .await;
    let slack = sim.slack().unwrap();
    let t = &env.topology;
    let events = burst("tr", 300);
    common::produce_ecs(t, &events).await;
    sim.set_faults(Faults {
        statuses: vec![
            StatusRule::times(429, 2).with_retry_after("1"),
            StatusRule::times(503, 2),
        ],
        ..Faults::default()
    });
    // Slack's own answers inside a 200 (and its 429): ratelimited, internal_error.
    slack.fail_api_calls("ratelimited", 1);
    slack.fail_api_calls("internal_error", 1);
    let report = run_sink(t, "slack", 4).await;
    println!("transient: {report:?}, sim {:?}", sim.stats());
    assert_eq!(sim.stats().faulted, 6, "every injected fault was hit");
    assert_eq!(report.delivered, 300, "{report:?}");
    assert!(report.dead_lettered.is_empty(), "{report:?}");
    assert!(report.to_tiers.is_empty(), "{report:?}");
    assert_eq!(counted_per_channel(&slack), expected_per_channel(&events));
    assert_spaced(&slack);
    env.stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_archived_channel_is_dead_lettered_while_the_others_flow() {
    let (sim, _secrets, env) = slack_env(Mode::Api, "    batch: {max_events: 200}\n", "").await;
    let slack = sim.slack().unwrap();
    slack.archive("war-room");
    let t = &env.topology;
    let events = burst("dl", 400);
    let all: BTreeSet<String> = common::produce_ecs(t, &events).await.into_iter().collect();
    let critical: BTreeSet<String> = events
        .iter()
        .filter(|e| expected_channel(e) == "war-room")
        .map(|e| e["event_id"].as_str().unwrap().to_string())
        .collect();
    let report = run_sink(t, "slack", 4).await;
    println!("archived: {report:?}");
    let dlq = pipeline::dlq_tool::read_all(t, "slack.dlq").await.unwrap();
    let mut dead = BTreeSet::new();
    for r in &dlq {
        assert_eq!(r.header("secflow.sink"), Some("slack"));
        assert_eq!(r.header("secflow.dlq.reason"), Some("permanent"));
        assert_eq!(r.header("secflow.error.class"), Some("is_archived"));
        assert_eq!(r.header("secflow.error.status"), Some("200"));
        let msg = r.header("secflow.error.message").unwrap();
        assert!(
            msg.contains("#war-room") && msg.contains("the channel is archived"),
            "{msg}"
        );
        for (name, value) in &r.headers {
            assert!(
                !value.contains("SimBotTokenSecret"),
                "{name} leaks the token"
            );
        }
        dead.insert(r.header("secflow.event_id").unwrap().to_string());
    }
    assert_eq!(
        dead, critical,
        "exactly the war-room events are dead-lettered"
    );
    assert_eq!(
        report.dead_lettered.get("permanent").copied(),
        Some(critical.len() as u64)
    );
    assert_eq!(report.delivered as usize, all.len() - critical.len());
    assert!(
        report.circuit_opened == 0,
        "one dead channel is not a dead sink"
    );
    let mut expected = expected_per_channel(&events);
    expected.remove("war-room");
    assert_eq!(counted_per_channel(&slack), expected);
    assert_eq!(
        common::group_lag(t, &engine::group_id("slack"), ECS_TOPIC),
        0
    );
    env.stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_burst_is_summarised_and_no_channel_gets_two_messages_in_a_second() {
    let (sim, _secrets, env) = slack_env(
        Mode::Api,
        "    batch: {max_events: 300, max_wait_ms: 100}\n",
        "",
    )
    .await;
    let slack = sim.slack().unwrap();
    let t = &env.topology;
    let events = burst("bu", 1_200);
    common::produce_ecs(t, &events).await;
    let report = run_sink(t, "slack", 4).await;
    let per_channel: BTreeMap<&str, usize> = CHANNELS
        .iter()
        .map(|c| (*c, slack.messages_in(c).len()))
        .collect();
    println!("burst: {report:?}, messages per channel {per_channel:?}");
    assert_eq!(report.delivered, 1_200, "{report:?}");
    let counted = counted_per_channel(&slack);
    assert_eq!(counted, expected_per_channel(&events));
    assert_eq!(
        counted.values().sum::<usize>(),
        1_200,
        "summaries add up to the burst"
    );
    for (ch, n) in &per_channel {
        assert!(
            *n >= 1 && *n <= 12,
            "#{ch}: {n} messages for a 1,200-event burst"
        );
    }
    assert_spaced(&slack);
    // A summary names the busiest groups.
    let soc = slack.messages_in("soc");
    let summary = soc
        .iter()
        .map(SlackMessage::all_text)
        .find(|t| count_of(t) > 1)
        .unwrap();
    assert!(
        summary.contains("more high-severity events from host host-"),
        "{summary}"
    );
    env.stack.stop().await;
}

/// Messages of `channel` as (ts, thread_ts, count).
fn thread_view(slack: &SlackApp, channel: &str) -> Vec<(String, Option<String>, usize)> {
    slack
        .messages_in(channel)
        .iter()
        .map(|m| (m.ts.clone(), m.thread_ts.clone(), checked_count(m)))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn later_messages_of_an_incident_go_into_its_thread_across_restarts() {
    let state_dir = tempfile::tempdir().unwrap();
    let (sim, _secrets, env) = slack_env(
        Mode::Api,
        &format!("    state_dir: {}\n", state_dir.path().display()),
        "      thread_ttl_secs: 3600\n",
    )
    .await;
    let slack = sim.slack().unwrap();
    let t = &env.topology;
    let incident = |id: &str| alert(id, "globex", "high", "ws-7", "R1");

    // 1. The first burst of the incident: one top-level message.
    let first: Vec<Value> = (0..5).map(|i| incident(&format!("a{i}"))).collect();
    common::produce_ecs(t, &first).await;
    run_sink(t, "slack", 3).await;
    let v = thread_view(&slack, "soc");
    assert_eq!(v.len(), 1, "{v:?}");
    let (parent, thread, n) = v[0].clone();
    assert_eq!((thread, n), (None, 5));
    let state_file = state_dir.path().join("slack.state.json");
    let saved = std::fs::read_to_string(&state_file).unwrap();
    assert!(
        saved.contains("R1:ws-7") && saved.contains(&parent),
        "{saved}"
    );

    // 2. After a restart (state restored), the same incident replies in its thread; another
    //    incident starts its own.
    let second: Vec<Value> = (0..3).map(|i| incident(&format!("b{i}"))).collect();
    common::produce_ecs(t, &second).await;
    run_sink(t, "slack", 3).await;
    let other = vec![alert("c0", "globex", "medium", "db-1", "R2")];
    common::produce_ecs(t, &other).await;
    run_sink(t, "slack", 3).await;
    let v = thread_view(&slack, "soc");
    assert_eq!(v.len(), 3, "{v:?}");
    assert_eq!(
        v[1].1.as_deref(),
        Some(parent.as_str()),
        "a reply in the thread"
    );
    assert_eq!(v[1].2, 3);
    assert_eq!(v[2].1, None, "another dedup key starts its own thread");

    // 3. Someone deletes the parent: the next message of the incident is posted top-level
    //    and starts a new thread.
    slack.delete_message("soc", &parent);
    common::produce_ecs(t, &[incident("d0")]).await;
    let report = run_sink(t, "slack", 3).await;
    assert_eq!(report.delivered, 1, "{report:?}");
    assert!(report.dead_lettered.is_empty());
    let v = thread_view(&slack, "soc");
    assert_eq!(v.len(), 4, "{v:?}");
    assert_eq!(v[3].1, None, "posted top-level after thread_not_found");
    let new_parent = v[3].0.clone();
    common::produce_ecs(t, &[incident("e0")]).await;
    run_sink(t, "slack", 3).await;
    let v = thread_view(&slack, "soc");
    assert_eq!(v[4].1.as_deref(), Some(new_parent.as_str()));
    assert!(Path::new(&state_file).exists());
    env.stack.stop().await;
}
