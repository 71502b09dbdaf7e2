//! Shared set-up for pipeline integration tests: a private broker and registry, a topology
//! file pointing at them, and the topics created.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

use devstack::testkit::TestStack;
use pipeline::topology::{self, Topology};
use serde_json::Value;

pub struct Env {
    pub stack: TestStack,
    pub topology_file: PathBuf,
    pub topology: Topology,
}

/// Starts a stack, writes a topology with `stages_yaml`, creates its topics.
pub async fn env(stages_yaml: &str) -> Env {
    let stack = TestStack::start()
        .await
        .expect("test stack (run scripts/bootstrap.sh)");
    let topology_file = stack.dir().join("topology.yaml");
    std::fs::write(&topology_file, stack.topology_yaml(stages_yaml)).unwrap();
    let topology = topology::load(&topology_file).unwrap().topology;
    pipeline::kafka::create_topics(&topology.kafka, &topology.all_topics())
        .await
        .unwrap();
    Env {
        stack,
        topology_file,
        topology,
    }
}

pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// The example events, as JSON values, sorted by file name.
pub fn examples() -> Vec<Value> {
    let mut files: Vec<_> = std::fs::read_dir(workspace().join("schemas/examples"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no examples");
    files
        .iter()
        .map(|p| serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap())
        .collect()
}

/// `n` example-shaped events with unique ids, spread over tenants and times.
pub fn generated_events(n: usize) -> Vec<Value> {
    let examples = examples();
    (0..n)
        .map(|i| {
            let mut v = examples[i % examples.len()].clone();
            v["event_id"] = Value::from(format!("evt-{i:06}-{}", uuid_like(i)));
            v["tenant"] = Value::from(format!("tenant-{}", i % 7));
            v
        })
        .collect()
}

fn uuid_like(i: usize) -> String {
    format!(
        "{:08x}",
        (i as u64).wrapping_mul(2_654_435_761) & 0xffff_ffff
    )
}

/// Writes values as JSON lines.
pub fn write_jsonl(path: &Path, values: &[Value]) {
    let mut text = String::new();
    for v in values {
        text.push_str(&serde_json::to_string(v).unwrap());
        text.push('\n');
    }
    std::fs::write(path, text).unwrap();
}
