//! `devstack sims up|down` and `devstack taxii up|down`: what the demo runs beside the broker
//! and the registry. Every sink simulator (`devstack sim <kind>`) and OASIS medallion are
//! started as background processes on fixed loopback ports, their pids recorded in
//! `<state dir>/services.json`, their logs in `<state dir>/sim-<kind>.log` and `taxii.log`, and
//! the addresses and dev secrets the topologies read written to `sinks.env` and `taxii.env`.
//! `down` stops exactly what `up` recorded (after checking each pid still runs our program).
//! `up` is a no-op for what is already running.

use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::launcher::{Started, StateDir};
use crate::sim::{SlackSimConfig, SumoSimConfig, TeamsSimConfig};
use crate::taxii::{self, MedallionSetup, TaxiiCollection};

/// The demo's dev secrets: known to the simulators and exported in `sinks.env`. Not secret.
pub mod dev_secrets {
    /// Splunk HEC token.
    pub const HEC: &str = "dev-hec-token";
    /// Webhook signing secret.
    pub const WEBHOOK: &str = "dev-webhook-secret";
    /// Datadog API key.
    pub const DATADOG: &str = "dev-dd-api-key";
    /// Sumo Logic source token (part of the upload URL).
    pub const SUMO: &str = "dev-sumo-token";
    /// PagerDuty integration key (32 characters).
    pub const PAGERDUTY: &str = "R0UT1NGKEY0000000000000000000001";
    /// OpsGenie API key.
    pub const OPSGENIE: &str = "dev-genie-key";
    /// Slack bot token.
    pub const SLACK: &str = "xoxb-dev-token";
    /// The TAXII server's user and password.
    pub const TAXII_USER: &str = "secflow";
    /// The TAXII server's password.
    pub const TAXII_PASSWORD: &str = "dev-taxii-password";
}

/// The OpsGenie heartbeat the simulator knows (`devstack sim opsgenie`).
pub const HEARTBEAT: &str = "secflow-dev";

/// The chat channels of the Slack and Teams simulators.
pub const CHAT_CHANNELS: [&str; 3] = ["soc", "acme", "war-room"];

/// One simulator of the demo: its `devstack sim` kind, port and secret.
#[derive(Debug, Clone, Copy)]
pub struct SimSpec {
    /// The `devstack sim` kind.
    pub kind: &'static str,
    /// Its loopback port.
    pub port: u16,
    /// `--secret`, if it takes one.
    pub secret: Option<&'static str>,
}

/// Every simulator, on the ports the example topologies default to.
pub const SIMS: [SimSpec; 10] = [
    SimSpec {
        kind: "hec",
        port: 8123,
        secret: Some(dev_secrets::HEC),
    },
    SimSpec {
        kind: "elastic",
        port: 8124,
        secret: None,
    },
    SimSpec {
        kind: "webhook",
        port: 8125,
        secret: Some(dev_secrets::WEBHOOK),
    },
    SimSpec {
        kind: "datadog",
        port: 8126,
        secret: Some(dev_secrets::DATADOG),
    },
    SimSpec {
        kind: "sumo-logic",
        port: 8127,
        secret: Some(dev_secrets::SUMO),
    },
    SimSpec {
        kind: "pagerduty",
        port: 8128,
        secret: Some(dev_secrets::PAGERDUTY),
    },
    SimSpec {
        kind: "opsgenie",
        port: 8129,
        secret: Some(dev_secrets::OPSGENIE),
    },
    SimSpec {
        kind: "slack",
        port: 8130,
        secret: Some(dev_secrets::SLACK),
    },
    SimSpec {
        kind: "teams",
        port: 8131,
        secret: None,
    },
    SimSpec {
        kind: "syslog",
        port: 5514,
        secret: None,
    },
];

/// The TAXII server's default port.
pub const TAXII_PORT: u16 = 8132;

/// The demo's TAXII collection (the default of `topologies/intel.yaml` and `demo.yaml`).
pub const TAXII_COLLECTION: &str = "91a7b528-80eb-42ed-a74d-c6fbd5a26116";

fn services_file(dir: &StateDir) -> PathBuf {
    dir.0.join("services.json")
}

fn read_services(dir: &StateDir) -> Result<BTreeMap<String, Started>, String> {
    let path = services_file(dir);
    match std::fs::read_to_string(&path) {
        Ok(text) => serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(BTreeMap::new()),
        Err(e) => Err(format!("reading {}: {e}", path.display())),
    }
}

fn write_services(dir: &StateDir, services: &BTreeMap<String, Started>) -> Result<(), String> {
    std::fs::create_dir_all(&dir.0).map_err(|e| format!("creating {}: {e}", dir.0.display()))?;
    let text = serde_json::to_string_pretty(services).map_err(|e| e.to_string())?;
    let path = services_file(dir);
    std::fs::write(&path, text).map_err(|e| format!("writing {}: {e}", path.display()))
}

/// True when the recorded pid still runs the recorded program (any argument of its command
/// line ends with it: medallion is a Python script, so its first argument is the interpreter).
pub fn alive(s: &Started) -> bool {
    let cmdline = std::fs::read(format!("/proc/{}/cmdline", s.pid)).unwrap_or_default();
    cmdline
        .split(|b| *b == 0)
        .filter(|a| !a.is_empty())
        .any(|a| String::from_utf8_lossy(a).ends_with(&s.program))
}

fn listening(port: u16) -> bool {
    TcpStream::connect_timeout(
        &SocketAddr::from(([127, 0, 0, 1], port)),
        Duration::from_millis(200),
    )
    .is_ok()
}

fn spawn_detached(mut cmd: Command, log: &Path) -> Result<std::process::Child, String> {
    use std::os::unix::process::CommandExt;
    let out = std::fs::File::create(log).map_err(|e| format!("creating {}: {e}", log.display()))?;
    let err = out.try_clone().map_err(|e| e.to_string())?;
    cmd.stdin(Stdio::null())
        .stdout(Stdio::from(out))
        .stderr(Stdio::from(err))
        // Own process group: a Ctrl-C in the calling terminal does not stop it.
        .process_group(0)
        .spawn()
        .map_err(|e| format!("spawning {:?}: {e}", cmd.get_program()))
}

fn wait_listening(
    name: &str,
    port: u16,
    child: &mut std::process::Child,
    log: &Path,
) -> Result<(), String> {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(30) {
        if listening(port) {
            return Ok(());
        }
        if let Ok(Some(status)) = child.try_wait() {
            let text = std::fs::read_to_string(log).unwrap_or_default();
            return Err(format!(
                "{name} exited during start-up ({status}); its log {}:\n{}",
                log.display(),
                text.trim_end()
            ));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Err(format!(
        "{name} did not listen on 127.0.0.1:{port} within 30 s; see {}",
        log.display()
    ))
}

fn stop(name: &str, s: &Started) -> String {
    if !alive(s) {
        return format!("{name} (pid {}) was not running", s.pid);
    }
    let _ = Command::new("kill").arg(s.pid.to_string()).status();
    let start = Instant::now();
    while alive(s) && start.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(50));
    }
    if alive(s) {
        let _ = Command::new("kill")
            .arg("-9")
            .arg(s.pid.to_string())
            .status();
    }
    format!("stopped {name} (pid {})", s.pid)
}

/// Single-quotes a value for a shell `export` line.
fn sh_quote(v: &str) -> String {
    format!("'{}'", v.replace('\'', r"'\''"))
}

/// The `sinks.env` lines: every address and dev secret `topologies/all-sinks.yaml` and
/// `demo.yaml` read.
pub fn sinks_env() -> String {
    let url = |kind: &str| {
        let port = SIMS.iter().find(|s| s.kind == kind).map_or(0, |s| s.port);
        format!("http://127.0.0.1:{port}")
    };
    let syslog_port = SIMS
        .iter()
        .find(|s| s.kind == "syslog")
        .map_or(0, |s| s.port);
    let mut vars: Vec<(String, String)> = vec![
        ("SPLUNK_HEC_URL".into(), url("hec")),
        ("SPLUNK_HEC_TOKEN".into(), dev_secrets::HEC.into()),
        ("ELASTIC_URL".into(), url("elastic")),
        (
            "SOAR_WEBHOOK_URL".into(),
            format!("{}/hooks/secflow", url("webhook")),
        ),
        ("SOAR_SIGNING_SECRET".into(), dev_secrets::WEBHOOK.into()),
        ("DD_URL".into(), url("datadog")),
        ("DD_API_KEY".into(), dev_secrets::DATADOG.into()),
        (
            "SUMO_URL".into(),
            SumoSimConfig::new(dev_secrets::SUMO).upload_url(&url("sumo-logic")),
        ),
        ("SYSLOG_ADDRESS".into(), format!("127.0.0.1:{syslog_port}")),
        ("PAGERDUTY_URL".into(), url("pagerduty")),
        ("PD_ROUTING_KEY".into(), dev_secrets::PAGERDUTY.into()),
        ("OPSGENIE_URL".into(), url("opsgenie")),
        ("OPSGENIE_API_KEY".into(), dev_secrets::OPSGENIE.into()),
        ("OPSGENIE_HEARTBEAT".into(), HEARTBEAT.into()),
        ("SLACK_BOT_TOKEN".into(), dev_secrets::SLACK.into()),
        (
            "SLACK_API_URL".into(),
            SlackSimConfig::api_url(&url("slack")),
        ),
    ];
    for ch in CHAT_CHANNELS {
        vars.push((
            format!("TEAMS_WEBHOOK_{}", ch.to_uppercase().replace('-', "_")),
            TeamsSimConfig::workflow_url(&url("teams"), ch),
        ));
    }
    let mut text = String::from(
        "# Written by `devstack sims up`: the simulators' addresses and their dev secrets.\n",
    );
    for (k, v) in vars {
        text.push_str(&format!("export {k}={}\n", sh_quote(&v)));
    }
    text
}

/// Starts every simulator that is not running yet; writes `sinks.env`. Returns one line per
/// simulator.
pub fn sims_up(dir: &StateDir) -> Result<Vec<String>, String> {
    let mut services = read_services(dir)?;
    std::fs::create_dir_all(&dir.0).map_err(|e| format!("creating {}: {e}", dir.0.display()))?;
    let me = std::env::current_exe().map_err(|e| format!("locating devstack: {e}"))?;
    let mut said = Vec::new();
    for spec in SIMS {
        let name = format!("sim-{}", spec.kind);
        if let Some(s) = services.get(&name) {
            if alive(s) {
                said.push(format!(
                    "{name:<15} already running (pid {}, 127.0.0.1:{})",
                    s.pid, s.port
                ));
                continue;
            }
        }
        if listening(spec.port) {
            return Err(format!(
                "port {} (for {name}) is in use by something devstack did not start",
                spec.port
            ));
        }
        let log = dir.0.join(format!("{name}.log"));
        let mut cmd = Command::new(&me);
        cmd.arg("sim")
            .arg(spec.kind)
            .arg("--listen")
            .arg(format!("127.0.0.1:{}", spec.port));
        if let Some(secret) = spec.secret {
            cmd.arg("--secret").arg(secret);
        }
        let mut child = spawn_detached(cmd, &log)?;
        let started = Started {
            pid: child.id(),
            port: spec.port,
            program: me.display().to_string(),
            log: log.display().to_string(),
        };
        services.insert(name.clone(), started.clone());
        write_services(dir, &services)?;
        wait_listening(&name, spec.port, &mut child, &log)?;
        said.push(format!(
            "{name:<15} started (pid {}, 127.0.0.1:{}), log {}",
            started.pid, started.port, started.log
        ));
    }
    let env = dir.0.join("sinks.env");
    std::fs::write(&env, sinks_env()).map_err(|e| format!("writing {}: {e}", env.display()))?;
    said.push(format!("env file {}", env.display()));
    Ok(said)
}

/// Stops the services whose names start with `prefix` (all with `""`).
pub fn services_down(dir: &StateDir, prefix: &str) -> Result<Vec<String>, String> {
    let mut services = read_services(dir)?;
    let names: Vec<String> = services
        .keys()
        .filter(|n| n.starts_with(prefix))
        .cloned()
        .collect();
    let mut said = Vec::new();
    for name in names {
        if let Some(s) = services.remove(&name) {
            said.push(stop(&name, &s));
        }
    }
    if services.is_empty() {
        let _ = std::fs::remove_file(services_file(dir));
    } else {
        write_services(dir, &services)?;
    }
    if prefix.is_empty() || prefix == "sim-" {
        let _ = std::fs::remove_file(dir.0.join("sinks.env"));
    }
    if prefix.is_empty() || prefix == "taxii" {
        let _ = std::fs::remove_file(dir.0.join("taxii.env"));
    }
    Ok(said)
}

/// One line per recorded service.
pub fn services_status(dir: &StateDir) -> Result<Vec<String>, String> {
    Ok(read_services(dir)?
        .iter()
        .map(|(name, s)| {
            format!(
                "{name:<15} pid {:<7} 127.0.0.1:{:<5} {} {}  log {}",
                s.pid,
                s.port,
                if alive(s) { "running" } else { "stopped" },
                if listening(s.port) {
                    "listening"
                } else {
                    "not listening"
                },
                s.log
            )
        })
        .collect())
}

/// The objects of a STIX bundle file (`{"type": "bundle", "objects": [...]}`) or of a JSON
/// array of objects.
pub fn read_objects(file: &Path) -> Result<Vec<Value>, String> {
    let text =
        std::fs::read_to_string(file).map_err(|e| format!("reading {}: {e}", file.display()))?;
    let v: Value =
        serde_json::from_str(&text).map_err(|e| format!("{}: not JSON: {e}", file.display()))?;
    match v {
        Value::Array(a) => Ok(a),
        Value::Object(mut m) => match m.remove("objects") {
            Some(Value::Array(a)) => Ok(a),
            _ => Err(format!(
                "{}: a STIX bundle needs an `objects` array",
                file.display()
            )),
        },
        _ => Err(format!(
            "{}: expected a STIX bundle or an array of objects",
            file.display()
        )),
    }
}

/// Starts OASIS medallion (from the project venv) on `port` serving `objects` in the demo's
/// collection, unless it is running already; writes `taxii.env`. Objects are dated as added
/// now, one millisecond apart.
pub fn taxii_up(dir: &StateDir, port: u16, objects: Vec<Value>) -> Result<Vec<String>, String> {
    let mut services = read_services(dir)?;
    let env_file = dir.0.join("taxii.env");
    let env = format!(
        "# Written by `devstack taxii up`: the local TAXII 2.1 server (medallion).\n\
         export SECFLOW_TAXII_URL={}\nexport SECFLOW_TAXII_ALLOW_HTTP=true\n\
         export SECFLOW_TAXII_COLLECTION={TAXII_COLLECTION}\nexport SECFLOW_TAXII_USERNAME={}\n\
         export SECFLOW_TAXII_PASSWORD={}\n",
        sh_quote(&format!("http://127.0.0.1:{port}/taxii2/")),
        dev_secrets::TAXII_USER,
        dev_secrets::TAXII_PASSWORD
    );
    if let Some(s) = services.get("taxii") {
        if alive(s) {
            std::fs::write(&env_file, &env)
                .map_err(|e| format!("writing {}: {e}", env_file.display()))?;
            return Ok(vec![format!(
                "taxii           already running (pid {}, http://127.0.0.1:{}/taxii2/)",
                s.pid, s.port
            )]);
        }
    }
    if listening(port) {
        return Err(format!(
            "port {port} (for the TAXII server) is in use by something devstack did not start"
        ));
    }
    let program = taxii::find_medallion().map_err(|e| e.to_string())?;
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    let mut collection = TaxiiCollection::new(TAXII_COLLECTION, "secflow demo indicators");
    let count = objects.len();
    collection.push_all(objects, now_ms, 1);
    let setup = MedallionSetup {
        users: BTreeMap::from([(
            dev_secrets::TAXII_USER.to_string(),
            dev_secrets::TAXII_PASSWORD.to_string(),
        )]),
        max_page_size: 100,
        collections: vec![collection],
    };
    let data = dir.0.join("taxii");
    std::fs::create_dir_all(&data).map_err(|e| format!("creating {}: {e}", data.display()))?;
    let backend = data.join("backend.json");
    let config = data.join("medallion.json");
    let write = |path: &Path, v: &Value| {
        serde_json::to_vec_pretty(v)
            .map_err(|e| e.to_string())
            .and_then(|b| {
                std::fs::write(path, b).map_err(|e| format!("writing {}: {e}", path.display()))
            })
    };
    write(&backend, &taxii::backend_json(&setup, port))?;
    write(&config, &taxii::config_json(&setup, &backend))?;
    let log = dir.0.join("taxii.log");
    let mut cmd = Command::new(&program);
    cmd.arg("--host")
        .arg("127.0.0.1")
        .arg("--port")
        .arg(port.to_string())
        .arg("--log-level")
        .arg("WARN")
        .arg(&config)
        .env("PYTHONUNBUFFERED", "1");
    let mut child = spawn_detached(cmd, &log)?;
    let started = Started {
        pid: child.id(),
        port,
        program: program.display().to_string(),
        log: log.display().to_string(),
    };
    services.insert("taxii".into(), started.clone());
    write_services(dir, &services)?;
    wait_listening("taxii (medallion)", port, &mut child, &log)?;
    std::fs::write(&env_file, &env).map_err(|e| format!("writing {}: {e}", env_file.display()))?;
    Ok(vec![
        format!(
            "taxii           started (pid {}, http://127.0.0.1:{port}/taxii2/), {count} objects in collection {TAXII_COLLECTION}, log {}",
            started.pid, started.log
        ),
        format!("env file {}", env_file.display()),
    ])
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn sinks_env_names_every_variable_the_all_sinks_topology_reads() {
        let env = sinks_env();
        let file = std::fs::read_to_string(
            crate::broker::workspace_root().join("topologies/all-sinks.yaml"),
        )
        .unwrap();
        // Comments name variables of other set-ups (a real cluster's API key).
        let topology: String = file
            .lines()
            .filter(|l| !l.trim_start().starts_with('#'))
            .map(|l| format!("{l}\n"))
            .collect();
        // Every `{env: NAME}` secret and every `${NAME:-…}` address of a sink.
        let mut names = Vec::new();
        for part in topology.split("env: ").skip(1) {
            names.push(part.split('}').next().unwrap().trim().to_string());
        }
        for part in topology.split("${").skip(1) {
            let name = part.split([':', '}']).next().unwrap().to_string();
            if !name.starts_with("SECFLOW_") && name != "DD_SITE" {
                names.push(name);
            }
        }
        assert!(names.len() > 15, "{names:?}");
        for n in names {
            assert!(
                env.contains(&format!("export {n}=")),
                "{n} missing in:\n{env}"
            );
        }
        assert!(env.contains("'http://127.0.0.1:8131/workflows/"));
    }

    #[test]
    fn shell_quoting_survives_quotes() {
        assert_eq!(sh_quote("a'b"), r"'a'\''b'");
    }
}
