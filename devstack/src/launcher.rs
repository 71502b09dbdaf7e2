//! `devstack up | status | down`: the local stack for the demo (broker + schema registry on
//! loopback), started as background processes whose pids are recorded, so `down` stops exactly
//! what `up` started and nothing else.

use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::broker::{find_tansu, tansu_command, BrokerError};

/// Why the launcher failed.
#[derive(Debug, thiserror::Error)]
pub enum LauncherError {
    /// The broker binary is missing.
    #[error(transparent)]
    Broker(#[from] BrokerError),
    /// File or process I/O.
    #[error("{context}: {source}")]
    Io {
        /// What we were doing.
        context: String,
        /// The error.
        source: std::io::Error,
    },
    /// A port we want is taken by something we did not start.
    #[error("port {0} is already in use; pass another with --{1}-port")]
    PortInUse(u16, &'static str),
    /// A service did not come up.
    #[error("{service} did not accept connections on {addr} within {secs}s; see {log}")]
    NotReady {
        /// Which service.
        service: &'static str,
        /// Where.
        addr: SocketAddr,
        /// How long we waited.
        secs: u64,
        /// Its log.
        log: String,
    },
    /// The state file is unreadable.
    #[error("state file {path}: {message}")]
    State {
        /// The file.
        path: String,
        /// Why.
        message: String,
    },
}

fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> LauncherError {
    let context = context.into();
    move |source| LauncherError::Io { context, source }
}

/// One process the launcher started.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Started {
    /// Its pid.
    pub pid: u32,
    /// Its loopback port.
    pub port: u16,
    /// The executable, to make sure a pid was not reused by another program before killing it.
    pub program: String,
    /// Its log file.
    pub log: String,
}

/// What `up` recorded.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct StackState {
    /// The broker.
    pub broker: Started,
    /// The schema registry.
    pub registry: Started,
}

/// Where the launcher keeps its state, logs and the env file.
#[derive(Debug, Clone)]
pub struct StateDir(pub PathBuf);

impl StateDir {
    fn state_file(&self) -> PathBuf {
        self.0.join("state.json")
    }

    /// The env file the demo sources: `SECFLOW_BOOTSTRAP`, `SECFLOW_REGISTRY_URL`.
    pub fn env_file(&self) -> PathBuf {
        self.0.join("env")
    }

    /// Reads the recorded state, if any.
    pub fn read(&self) -> Result<Option<StackState>, LauncherError> {
        let path = self.state_file();
        match std::fs::read_to_string(&path) {
            Ok(text) => serde_json::from_str(&text)
                .map(Some)
                .map_err(|e| LauncherError::State {
                    path: path.display().to_string(),
                    message: e.to_string(),
                }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io(format!("reading {}", path.display()))(e)),
        }
    }
}

/// Ports for `up`.
#[derive(Debug, Clone, Copy)]
pub struct Ports {
    /// Kafka listener.
    pub broker: u16,
    /// Registry HTTP.
    pub registry: u16,
}

/// True when `pid` is alive and runs `program` (guards against pid reuse).
pub fn is_ours(started: &Started) -> bool {
    let cmdline = std::fs::read(format!("/proc/{}/cmdline", started.pid)).unwrap_or_default();
    let first = cmdline.split(|b| *b == 0).next().unwrap_or_default();
    !first.is_empty() && String::from_utf8_lossy(first).ends_with(&started.program)
}

/// True unless the program file `pid` runs was replaced since it started (a rebuilt tansu after
/// its patches changed, a rebuilt devstack): Linux then shows the old file as `(deleted)`. A
/// stack left running from before an upgrade would otherwise keep serving the old code.
pub fn runs_current_program(started: &Started) -> bool {
    std::fs::read_link(format!("/proc/{}/exe", started.pid))
        .map(|exe| !exe.to_string_lossy().ends_with(" (deleted)"))
        .unwrap_or(true)
}

fn listening(port: u16) -> bool {
    TcpStream::connect_timeout(
        &SocketAddr::from(([127, 0, 0, 1], port)),
        Duration::from_millis(200),
    )
    .is_ok()
}

/// Waits until the child listens. Exit is seen through the child handle, not /proc: right
/// after spawning, the child's cmdline is still the parent's until exec completes.
fn wait_listening(
    service: &'static str,
    s: &Started,
    child: &mut std::process::Child,
    secs: u64,
) -> Result<(), LauncherError> {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(secs) {
        if listening(s.port) {
            return Ok(());
        }
        if matches!(child.try_wait(), Ok(Some(_))) {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Err(LauncherError::NotReady {
        service,
        addr: SocketAddr::from(([127, 0, 0, 1], s.port)),
        secs,
        log: s.log.clone(),
    })
}

fn spawn_detached(mut cmd: Command, log: &Path) -> Result<std::process::Child, LauncherError> {
    use std::os::unix::process::CommandExt;
    let out = std::fs::File::create(log).map_err(io(format!("creating {}", log.display())))?;
    let err = out.try_clone().map_err(io("log file"))?;
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::from(out))
        .stderr(Stdio::from(err))
        // Own process group: a Ctrl-C in the calling terminal does not take the stack down.
        .process_group(0)
        .spawn()
        .map_err(io("spawning"))?;
    Ok(child)
}

/// Starts the broker and the registry unless they are already up; writes the state and env
/// files. Returns the state.
pub fn up(dir: &StateDir, ports: Ports) -> Result<StackState, LauncherError> {
    if let Some(state) = dir.read()? {
        let services = [&state.broker, &state.registry];
        if services
            .iter()
            .all(|s| is_ours(s) && runs_current_program(s))
        {
            return Ok(state);
        }
        // Half up, or running a program that was rebuilt since: stop what is left before
        // starting afresh (the broker's memory engine starts empty; the registry keeps its file).
        down(dir)?;
    }
    std::fs::create_dir_all(&dir.0).map_err(io(format!("creating {}", dir.0.display())))?;
    for (port, name) in [(ports.broker, "broker"), (ports.registry, "registry")] {
        if listening(port) {
            return Err(LauncherError::PortInUse(port, name));
        }
    }
    let tansu = find_tansu()?;
    let broker_log = dir.0.join("tansu.log");
    let mut broker_child = spawn_detached(tansu_command(&tansu, ports.broker), &broker_log)?;
    let broker_pid = broker_child.id();
    let broker = Started {
        pid: broker_pid,
        port: ports.broker,
        program: tansu.display().to_string(),
        log: broker_log.display().to_string(),
    };
    let me = std::env::current_exe().map_err(io("locating the devstack binary"))?;
    let registry_log = dir.0.join("registry.log");
    let mut cmd = Command::new(&me);
    cmd.arg("registry")
        .arg("--listen")
        .arg(format!("127.0.0.1:{}", ports.registry))
        .arg("--data")
        .arg(dir.0.join("registry.json"));
    let mut registry_child = spawn_detached(cmd, &registry_log)?;
    let registry_pid = registry_child.id();
    let registry = Started {
        pid: registry_pid,
        port: ports.registry,
        program: me.display().to_string(),
        log: registry_log.display().to_string(),
    };
    let state = StackState { broker, registry };
    let text = serde_json::to_string_pretty(&state).map_err(|e| LauncherError::State {
        path: dir.state_file().display().to_string(),
        message: e.to_string(),
    })?;
    std::fs::write(dir.state_file(), text).map_err(io("writing state"))?;
    wait_listening("broker", &state.broker, &mut broker_child, 30)?;
    wait_listening("registry", &state.registry, &mut registry_child, 30)?;
    let env = format!(
        "export SECFLOW_BOOTSTRAP=127.0.0.1:{}\nexport SECFLOW_REGISTRY_URL=http://127.0.0.1:{}\n",
        state.broker.port, state.registry.port
    );
    std::fs::write(dir.env_file(), env).map_err(io("writing env file"))?;
    Ok(state)
}

/// One line per service: pid, port, whether it is running and listening.
pub fn status(dir: &StateDir) -> Result<Vec<String>, LauncherError> {
    let Some(state) = dir.read()? else {
        return Ok(vec!["stack is down (no state recorded)".to_string()]);
    };
    Ok([("broker", &state.broker), ("registry", &state.registry)]
        .iter()
        .map(|(name, s)| {
            let running = is_ours(s);
            format!(
                "{name:<9} pid {:<7} 127.0.0.1:{:<5} {} {}  log {}",
                s.pid,
                s.port,
                if running { "running" } else { "stopped" },
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

/// Stops the recorded processes (only if they are still ours) and removes the state.
pub fn down(dir: &StateDir) -> Result<Vec<String>, LauncherError> {
    let mut said = Vec::new();
    if let Some(state) = dir.read()? {
        for (name, s) in [("registry", &state.registry), ("broker", &state.broker)] {
            if is_ours(s) {
                let _ = Command::new("kill").arg(s.pid.to_string()).status();
                let start = Instant::now();
                while is_ours(s) && start.elapsed() < Duration::from_secs(10) {
                    std::thread::sleep(Duration::from_millis(50));
                }
                if is_ours(s) {
                    let _ = Command::new("kill")
                        .arg("-9")
                        .arg(s.pid.to_string())
                        .status();
                }
                said.push(format!("stopped {name} (pid {})", s.pid));
            } else {
                said.push(format!("{name} (pid {}) was not running", s.pid));
            }
        }
        std::fs::remove_file(dir.state_file()).map_err(io("removing state"))?;
        let _ = std::fs::remove_file(dir.env_file());
    } else {
        said.push("stack is down".to_string());
    }
    Ok(said)
}
