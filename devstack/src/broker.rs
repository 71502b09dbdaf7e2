//! The local Kafka-protocol broker: `tansu` on its memory engine, as a child process on a
//! loopback port. Installed by `scripts/bootstrap.sh` (`cargo install tansu --root .tools`).

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Why the broker could not be started.
#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    /// No tansu binary where we looked.
    #[error("tansu broker not found (looked at {looked}); run `bash scripts/bootstrap.sh` or set SECFLOW_TANSU")]
    NotInstalled {
        /// The places tried.
        looked: String,
    },
    /// The process could not be spawned or a port could not be reserved.
    #[error("starting tansu: {0}")]
    Io(#[from] std::io::Error),
    /// It started but did not accept connections in time.
    #[error("tansu did not listen on {addr} within {waited:?}; its log: {log}")]
    NotReady {
        /// The listener address.
        addr: SocketAddr,
        /// How long we waited.
        waited: Duration,
        /// Its log file.
        log: String,
    },
    /// The TLS front could not be set up.
    #[error("TLS front: {0}")]
    Tls(String),
    /// It exited during start-up.
    #[error("tansu exited during start-up ({status}); its log: {log}")]
    Exited {
        /// Exit status.
        status: String,
        /// Its log file.
        log: String,
    },
}

/// The workspace root (this crate lives in `<root>/devstack`).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// Finds the tansu binary: `$SECFLOW_TANSU`, then `<root>/.tools/bin/tansu`, then `PATH`.
pub fn find_tansu() -> Result<PathBuf, BrokerError> {
    let mut looked = Vec::new();
    if let Ok(p) = std::env::var("SECFLOW_TANSU") {
        let p = PathBuf::from(p);
        if p.is_file() {
            return Ok(p);
        }
        looked.push(p.display().to_string());
    }
    let local = workspace_root().join(".tools/bin/tansu");
    if local.is_file() {
        return Ok(local);
    }
    looked.push(local.display().to_string());
    if let Some(paths) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&paths) {
            let p = dir.join("tansu");
            if p.is_file() {
                return Ok(p);
            }
        }
    }
    looked.push("$PATH".to_string());
    Err(BrokerError::NotInstalled {
        looked: looked.join(", "),
    })
}

/// A free loopback port (bound then released; the tiny race is acceptable for tests).
pub fn free_port() -> std::io::Result<u16> {
    let l = TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}

/// The command line that starts tansu on `port` with its memory engine. Shared by the test
/// kit and the launcher so both run the broker the same way.
///
/// `scripts/bootstrap.sh` builds tansu with the patches in `devstack/tansu/`: unpatched, the
/// 0.6.0 memory engine answers a fetch from an offset inside a stored record batch with the
/// *next* batch, so a consumer resuming from a committed offset in the middle of a producer's
/// batch silently skips the rest of it; and no transaction can end (no `EndTxn`). (Its SQLite
/// engine fetches correctly but is too slow for our tests on two cores: heartbeats time out.)
pub fn tansu_command(binary: &Path, port: u16) -> Command {
    tansu_command_advertising(binary, port, SocketAddr::from(([127, 0, 0, 1], port)))
}

/// [`tansu_command`] with another address in its metadata (`advertised`): clients reach the
/// broker there after bootstrapping, e.g. through [`TlsBroker`]'s TLS front.
pub fn tansu_command_advertising(binary: &Path, port: u16, advertised: SocketAddr) -> Command {
    let mut cmd = Command::new(binary);
    cmd.arg("broker")
        .arg("--kafka-listener-url")
        .arg(format!("tcp://127.0.0.1:{port}"))
        .arg("--kafka-advertised-listener-url")
        .arg(format!("tcp://{advertised}"))
        .arg("--storage-engine")
        .arg("memory://tansu/")
        .env("RUST_LOG", "warn");
    cmd
}

/// A running broker that this process started; stopped (killed) on drop.
#[derive(Debug)]
pub struct Broker {
    child: Child,
    addr: SocketAddr,
    log: PathBuf,
}

impl Broker {
    /// Starts tansu on a free port, logging to `log`, and waits until it accepts connections.
    pub fn start(log: &Path) -> Result<Broker, BrokerError> {
        Self::start_advertising(log, None)
    }

    /// [`Broker::start`], advertising `advertised` (when given) instead of its own address.
    pub fn start_advertising(
        log: &Path,
        advertised: Option<SocketAddr>,
    ) -> Result<Broker, BrokerError> {
        let binary = find_tansu()?;
        let port = free_port()?;
        let out = std::fs::File::create(log)?;
        let err = out.try_clone()?;
        let advertised = advertised.unwrap_or(SocketAddr::from(([127, 0, 0, 1], port)));
        let child = tansu_command_advertising(&binary, port, advertised)
            .stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err))
            .spawn()?;
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let mut broker = Broker {
            child,
            addr,
            log: log.to_path_buf(),
        };
        broker.wait_ready(Duration::from_secs(30))?;
        Ok(broker)
    }

    fn wait_ready(&mut self, limit: Duration) -> Result<(), BrokerError> {
        let started = Instant::now();
        while started.elapsed() < limit {
            if let Some(status) = self.child.try_wait()? {
                return Err(BrokerError::Exited {
                    status: status.to_string(),
                    log: self.log.display().to_string(),
                });
            }
            if TcpStream::connect_timeout(&self.addr, Duration::from_millis(200)).is_ok() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err(BrokerError::NotReady {
            addr: self.addr,
            waited: limit,
            log: self.log.display().to_string(),
        })
    }

    /// `host:port` for `bootstrap.servers`.
    pub fn bootstrap(&self) -> String {
        self.addr.to_string()
    }

    /// The process id (for tests that kill and restart things).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Stops the broker now.
    pub fn stop(mut self) {
        self.kill();
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A broker behind TLS, as a client sees a managed cluster (MSK, Confluent Cloud): TLS on the
/// Kafka port, with a certificate the client trusts through a CA file ([`TlsBroker::ca_pem`]).
/// A front terminates TLS and forwards each connection to a tansu that advertises the front's
/// address, so the connections a client opens after bootstrapping go through TLS too. Stopped
/// on drop.
#[derive(Debug)]
pub struct TlsBroker {
    /// Kept for its lifetime: killed on drop.
    _broker: Broker,
    front: tokio::task::JoinHandle<()>,
    addr: SocketAddr,
    ca_pem: String,
}

impl TlsBroker {
    /// Starts the front on a free port, then tansu behind it (logging to `log`).
    pub async fn start(log: &Path) -> Result<TlsBroker, BrokerError> {
        let tls = crate::tls::TlsMaterial::self_signed().map_err(BrokerError::Tls)?;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let log = log.to_path_buf();
        let broker =
            tokio::task::spawn_blocking(move || Broker::start_advertising(&log, Some(addr)))
                .await
                .map_err(|e| BrokerError::Tls(format!("start-up task: {e}")))??;
        let upstream = broker.addr;
        let acceptor = tls.acceptor.clone();
        let front = tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    // A failed handshake (a client that does not trust us) just closes.
                    let Ok(mut client) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let Ok(mut server) = tokio::net::TcpStream::connect(upstream).await else {
                        return;
                    };
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                });
            }
        });
        Ok(TlsBroker {
            _broker: broker,
            front,
            addr,
            ca_pem: tls.cert_pem,
        })
    }

    /// `host:port` of the TLS front, for `bootstrap.servers`.
    pub fn bootstrap(&self) -> String {
        self.addr.to_string()
    }

    /// The certificate clients must trust (self-signed: it is its own CA), PEM.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }
}

impl Drop for TlsBroker {
    fn drop(&mut self) {
        self.front.abort();
    }
}
