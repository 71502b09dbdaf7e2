//! Confluent's Python client (`confluent_kafka.schema_registry`) against the devstack registry.
//!
//! Uses the project's virtualenv: `$SECFLOW_VENV` (default `<workspace>/.tools/venv`), made by
//! `scripts/bootstrap.sh`. When it or `confluent_kafka` is missing the test fails, unless
//! `SECFLOW_SKIP_PYTHON=1`, in which case it says it skipped.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use devstack::registry::{RegistryConfig, RegistryServer};
use tokio::process::Command;

fn venv_dir() -> PathBuf {
    match std::env::var_os("SECFLOW_VENV") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .expect("devstack sits in the workspace")
            .join(".tools")
            .join("venv"),
    }
}

/// Why the Python side cannot run, if it cannot.
async fn python_problem(python: &Path) -> Option<String> {
    if !python.exists() {
        return Some(format!("{} does not exist", python.display()));
    }
    let probe = Command::new(python)
        .args([
            "-c",
            "import confluent_kafka.schema_registry.avro, fastavro",
        ])
        .output()
        .await;
    match probe {
        Ok(out) if out.status.success() => None,
        Ok(out) => Some(format!(
            "{} cannot import confluent_kafka's schema registry client: {}",
            python.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        )),
        Err(err) => Some(format!("cannot run {}: {err}", python.display())),
    }
}

#[tokio::test]
async fn confluent_python_client_works_unchanged() {
    let python = venv_dir().join("bin").join("python");
    if let Some(problem) = python_problem(&python).await {
        if std::env::var("SECFLOW_SKIP_PYTHON").as_deref() == Ok("1") {
            eprintln!("SKIPPED: confluent_python_client_works_unchanged ({problem}; SECFLOW_SKIP_PYTHON=1)");
            return;
        }
        panic!(
            "{problem}.\nRun scripts/bootstrap.sh to create the Python venv with confluent-kafka \
             (or set SECFLOW_VENV to one that has it; SECFLOW_SKIP_PYTHON=1 skips this test)."
        );
    }

    let server = RegistryServer::start("127.0.0.1:0".parse().unwrap(), RegistryConfig::default())
        .await
        .expect("registry starts");
    let script = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("python")
        .join("registry_client.py");
    // Async so the registry, served on this runtime, keeps answering while Python runs.
    let run = Command::new(&python)
        .arg(&script)
        .arg(server.url())
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(120), run)
        .await
        .expect("the Python client finished within 120 s")
        .expect("the Python client ran");
    server.shutdown().await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "registry_client.py failed ({}):\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
        out.status
    );
    assert!(stdout.contains("all checks passed"), "{stdout}");
}
