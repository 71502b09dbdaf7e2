//! Privacy rules on the canonical event, one core: a rich deny-list rule set (drops, masks, HMAC
//! pseudonyms, replacements on nested, list and label paths) and an allow list, applied to every
//! example. Cloning the events is setup, outside the measured time; `clone_only` shows its cost.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use processors::event::SecurityEvent;
use processors::privacy::{CompiledPrivacy, PrivacyRules};
use processors::secret::Secret;

const RULES: &str = r#"
keep_raw: true
rules:
  - {field: user.email, action: drop}
  - {field: target_user, action: drop}
  - {field: host.ip, action: drop}
  - {field: labels.site, action: drop}
  - {field: user.name, action: mask, keep_last: 2}
  - {field: process.user, action: mask, keep_last: 4}
  - {field: tags, action: mask, keep_last: 3}
  - {field: dns.answers.data, action: mask}
  - {field: host.hostname, action: hash, key: {env: KEY}}
  - {field: user.id, action: hash, key: {env: KEY}}
  - {field: network.src_hostname, action: hash, key: {env: KEY}}
  - {field: network.dst_hostname, action: hash, key: {env: KEY}}
  - {field: process.entity_id, action: hash, key: {env: KEY}}
  - {field: enrichments.ioc_value, action: hash, key: {env: KEY}}
  - {field: process.command_line, action: replace, with: "[redacted]"}
  - {field: network.src_ip, action: replace, with: 192.0.2.0}
  - {field: email.to, action: replace, with: redacted@example.invalid}
  - {field: message, action: replace, with: "[redacted]"}
"#;

const ALLOW: &str = "mode: allow_list\nallow: [host.hostname, process.name, labels.env, dns]";

fn examples() -> Vec<SecurityEvent> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../schemas/examples");
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files
        .iter()
        .map(|p| SecurityEvent::from_json(&std::fs::read_to_string(p).unwrap()).unwrap())
        .collect()
}

fn compile(yaml: &str) -> CompiledPrivacy {
    let rules: PrivacyRules = serde_yaml_ng::from_str(yaml).unwrap();
    CompiledPrivacy::new(&rules, |_| {
        Ok::<_, String>(Secret::new("0123456789abcdef0123456789abcdef"))
    })
    .unwrap()
}

fn bench(c: &mut Criterion) {
    let events = examples();
    let mut group = c.benchmark_group("privacy");
    group.throughput(Throughput::Elements(events.len() as u64));
    group.bench_function("clone_only", |b| {
        b.iter(|| {
            for e in &events {
                std::hint::black_box(e.clone());
            }
        })
    });
    for (name, yaml) in [("deny_list_rich", RULES), ("allow_list", ALLOW)] {
        let privacy = compile(yaml);
        group.bench_function(name, |b| {
            b.iter_batched_ref(
                || events.clone(),
                |batch| {
                    for e in batch.iter_mut() {
                        privacy.apply(e);
                    }
                },
                BatchSize::SmallInput,
            )
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
