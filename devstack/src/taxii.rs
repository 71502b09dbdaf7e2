//! OASIS `medallion` (the reference TAXII 2.1 server) as a child process on a loopback port,
//! with its memory backend loaded from a JSON file that this module writes.
//!
//! medallion comes from the project's Python venv (`scripts/bootstrap.sh` installs it from
//! `scripts/requirements-dev.txt` into `<workspace>/.tools/venv`; `SECFLOW_VENV` points
//! elsewhere). It is started as
//!
//! ```text
//! $SECFLOW_VENV/bin/medallion --host 127.0.0.1 --port <free port> --log-level WARN <dir>/medallion-<n>.json
//! ```
//!
//! where the config names the users (basic auth, the only kind medallion has), the page size
//! cap (`taxii.max_page_size`) and the memory backend file. Things medallion needs that are easy
//! to get wrong, all handled by [`backend_json`]:
//!
//! - every object needs a manifest entry (`id`, `date_added`, `version` = the object's
//!   `modified`, else `created`, else its `date_added`, `media_type`), or it is never served;
//! - the discovery resource lists API roots as absolute URLs, so the port is in the file;
//! - an API root needs a `status` list for `POST …/objects/` to work.
//!
//! To add objects later, either [`Medallion::restart`] it with a new setup (same port, so
//! URLs and checkpoints stay valid; `date_added` under the caller's control), or `POST` an
//! envelope to `…/collections/{id}/objects/` (the memory backend accepts it and stamps
//! `date_added` with the current time).
//!
//! Only the process this module started is stopped: [`Medallion`] kills its own child on drop.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::broker::{free_port, workspace_root};

/// The API root's name in the URL path (`http://127.0.0.1:<port>/api1/`).
pub const API_ROOT: &str = "api1";

/// The media type of STIX 2.1 objects in the manifest.
pub const STIX_MEDIA_TYPE: &str = "application/stix+json;version=2.1";

/// The TAXII 2.1 media type.
pub const TAXII_MEDIA_TYPE: &str = "application/taxii+json;version=2.1";

/// Why medallion could not be started.
#[derive(Debug, thiserror::Error)]
pub enum MedallionError {
    /// No medallion executable in the venv.
    #[error(
        "medallion not found at {looked}; run `bash scripts/bootstrap.sh` (or set SECFLOW_VENV \
         to a venv with medallion 3.0.0)"
    )]
    NotInstalled {
        /// Where we looked.
        looked: String,
    },
    /// Files, ports or spawning.
    #[error("starting medallion: {0}")]
    Io(#[from] std::io::Error),
    /// It exited during start-up.
    #[error("medallion exited during start-up ({status}); its log {log}:\n{tail}")]
    Exited {
        /// Exit status.
        status: String,
        /// Its log file.
        log: String,
        /// The end of the log.
        tail: String,
    },
    /// It did not answer HTTP in time.
    #[error("medallion did not answer on {addr} within {waited:?}; its log: {log}")]
    NotReady {
        /// Where.
        addr: SocketAddr,
        /// How long we waited.
        waited: Duration,
        /// Its log file.
        log: String,
    },
}

/// The venv with the test-only Python tools: `$SECFLOW_VENV`, else `<workspace>/.tools/venv`.
pub fn venv_dir() -> PathBuf {
    match std::env::var_os("SECFLOW_VENV") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => workspace_root().join(".tools").join("venv"),
    }
}

/// The medallion executable of the venv, if it is there.
pub fn find_medallion() -> Result<PathBuf, MedallionError> {
    let path = venv_dir().join("bin").join("medallion");
    if path.is_file() {
        Ok(path)
    } else {
        Err(MedallionError::NotInstalled {
            looked: path.display().to_string(),
        })
    }
}

/// A STIX timestamp with microseconds (medallion's own `date_added` format) from epoch
/// milliseconds, e.g. `2024-01-01T00:00:00.123000Z`.
pub fn taxii_timestamp(ms: i64) -> String {
    let text =
        processors::event::format_rfc3339(ms).unwrap_or_else(|| "1970-01-01T00:00:00.000Z".into());
    match text.strip_suffix('Z') {
        Some(head) => format!("{head}000Z"),
        None => text,
    }
}

/// One object in a collection, with the time the server says it was added.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredObject {
    /// The STIX object.
    pub object: Value,
    /// Its `date_added` (`X-TAXII-Date-Added-*`, `added_after` compare against it).
    pub date_added: String,
}

/// A collection of the API root.
#[derive(Debug, Clone, PartialEq)]
pub struct TaxiiCollection {
    /// Collection id.
    pub id: String,
    /// Title.
    pub title: String,
    /// `can_read`.
    pub can_read: bool,
    /// `can_write`.
    pub can_write: bool,
    /// The objects (any order; medallion sorts by `date_added`).
    pub objects: Vec<StoredObject>,
}

impl TaxiiCollection {
    /// An empty, readable and writable collection.
    pub fn new(id: impl Into<String>, title: impl Into<String>) -> TaxiiCollection {
        TaxiiCollection {
            id: id.into(),
            title: title.into(),
            can_read: true,
            can_write: true,
            objects: Vec::new(),
        }
    }

    /// Adds one object added at `date_added_ms` (epoch milliseconds).
    pub fn push(&mut self, object: Value, date_added_ms: i64) {
        self.objects.push(StoredObject {
            object,
            date_added: taxii_timestamp(date_added_ms),
        });
    }

    /// Adds objects added one after the other: the first at `first_ms`, then every `step_ms`.
    /// Returns the `date_added` of the last one.
    pub fn push_all(
        &mut self,
        objects: impl IntoIterator<Item = Value>,
        first_ms: i64,
        step_ms: i64,
    ) -> Option<String> {
        let mut at = first_ms;
        for o in objects {
            self.push(o, at);
            at += step_ms;
        }
        self.objects.last().map(|o| o.date_added.clone())
    }
}

/// Everything medallion serves: users, page size cap, the collections of API root
/// [`API_ROOT`].
#[derive(Debug, Clone, PartialEq)]
pub struct MedallionSetup {
    /// Basic-auth users, name → password.
    pub users: BTreeMap<String, String>,
    /// `taxii.max_page_size`: the most objects per page, whatever `limit` asks.
    pub max_page_size: u32,
    /// The collections.
    pub collections: Vec<TaxiiCollection>,
}

impl Default for MedallionSetup {
    fn default() -> Self {
        MedallionSetup {
            users: BTreeMap::from([("admin".to_string(), "Password0".to_string())]),
            max_page_size: 100,
            collections: Vec::new(),
        }
    }
}

fn base_url(port: u16) -> String {
    format!("http://127.0.0.1:{port}")
}

/// The memory backend data file for `setup`, served on `port`: discovery, API root
/// information, and each collection's objects with their manifest entries.
pub fn backend_json(setup: &MedallionSetup, port: u16) -> Value {
    let root_url = format!("{}/{API_ROOT}/", base_url(port));
    let collections: Vec<Value> = setup
        .collections
        .iter()
        .map(|c| {
            let mut objects = Vec::with_capacity(c.objects.len());
            let mut manifest = Vec::with_capacity(c.objects.len());
            for stored in &c.objects {
                let mut object = stored.object.clone();
                let version = ["modified", "created"]
                    .iter()
                    .find_map(|k| object.get(*k).and_then(Value::as_str))
                    .map(str::to_string);
                let version = match version {
                    Some(v) => v,
                    None => {
                        // medallion versions an object without modified/created by this
                        // hidden field, which it strips from responses.
                        if let Some(map) = object.as_object_mut() {
                            map.insert("_date_added".into(), json!(stored.date_added));
                        }
                        stored.date_added.clone()
                    }
                };
                let spec = object
                    .get("spec_version")
                    .and_then(Value::as_str)
                    .unwrap_or("2.1");
                manifest.push(json!({
                    "id": object.get("id").cloned().unwrap_or(Value::Null),
                    "date_added": stored.date_added,
                    "version": version,
                    "media_type": format!("application/stix+json;version={spec}"),
                }));
                objects.push(object);
            }
            json!({
                "id": c.id,
                "title": c.title,
                "description": format!("{} (secflow devstack)", c.title),
                "can_read": c.can_read,
                "can_write": c.can_write,
                "media_types": [STIX_MEDIA_TYPE],
                "objects": objects,
                "manifest": manifest,
            })
        })
        .collect();
    json!({
        "/discovery": {
            "title": "secflow devstack TAXII server (medallion)",
            "description": "OASIS medallion with its memory backend, started by devstack",
            "contact": "secflow",
            "default": root_url,
            "api_roots": [root_url],
        },
        API_ROOT: {
            "information": {
                "title": "secflow devstack API root",
                "description": "Collections for the threat-intel tests and the demo",
                "versions": [TAXII_MEDIA_TYPE],
                "max_content_length": 100 * 1024 * 1024,
            },
            "status": [],
            "collections": collections,
        },
    })
}

/// The medallion configuration file for `setup`, reading its data from `backend_file`.
pub fn config_json(setup: &MedallionSetup, backend_file: &Path) -> Value {
    json!({
        "backend": {
            "module": "medallion.backends.memory_backend",
            "module_class": "MemoryBackend",
            "filename": backend_file.display().to_string(),
        },
        "users": setup.users,
        "taxii": {"max_page_size": setup.max_page_size},
    })
}

/// A running medallion that this process started; killed on drop.
#[derive(Debug)]
pub struct Medallion {
    child: Option<Child>,
    program: PathBuf,
    port: u16,
    dir: tempfile::TempDir,
    generation: u32,
}

impl Medallion {
    /// Writes the files for `setup` and starts medallion on a free loopback port; returns
    /// once it answers HTTP.
    pub fn start(setup: &MedallionSetup) -> Result<Medallion, MedallionError> {
        let program = find_medallion()?;
        let dir = tempfile::Builder::new()
            .prefix("secflow-medallion-")
            .tempdir()?;
        let mut server = Medallion {
            child: None,
            program,
            port: 0,
            dir,
            generation: 0,
        };
        // The port is free when picked but may be taken before medallion binds it: try again
        // with another one.
        let mut last = None;
        for _ in 0..3 {
            server.port = free_port()?;
            match server.launch(setup) {
                Ok(()) => return Ok(server),
                Err(e @ MedallionError::Exited { .. }) => last = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(last.unwrap_or(MedallionError::NotReady {
            addr: SocketAddr::from(([127, 0, 0, 1], server.port)),
            waited: Duration::ZERO,
            log: server.log_path().display().to_string(),
        }))
    }

    /// Stops medallion and starts it again on the same port with `setup` (the memory backend
    /// forgets everything, including objects added by `POST` and pagination state).
    pub fn restart(&mut self, setup: &MedallionSetup) -> Result<(), MedallionError> {
        self.kill();
        self.launch(setup)
    }

    fn launch(&mut self, setup: &MedallionSetup) -> Result<(), MedallionError> {
        self.generation += 1;
        let backend = self
            .dir
            .path()
            .join(format!("backend-{}.json", self.generation));
        let config = self
            .dir
            .path()
            .join(format!("medallion-{}.json", self.generation));
        std::fs::write(
            &backend,
            serde_json::to_vec_pretty(&backend_json(setup, self.port))
                .map_err(std::io::Error::other)?,
        )?;
        std::fs::write(
            &config,
            serde_json::to_vec_pretty(&config_json(setup, &backend))
                .map_err(std::io::Error::other)?,
        )?;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())?;
        let err = log.try_clone()?;
        let child = Command::new(&self.program)
            .arg("--host")
            .arg("127.0.0.1")
            .arg("--port")
            .arg(self.port.to_string())
            .arg("--log-level")
            .arg("WARN")
            .arg(&config)
            .env("PYTHONUNBUFFERED", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(err))
            .spawn()?;
        self.child = Some(child);
        self.wait_ready(Duration::from_secs(30))
    }

    fn wait_ready(&mut self, limit: Duration) -> Result<(), MedallionError> {
        let started = Instant::now();
        let addr = SocketAddr::from(([127, 0, 0, 1], self.port));
        while started.elapsed() < limit {
            if let Some(child) = self.child.as_mut() {
                if let Some(status) = child.try_wait()? {
                    self.child = None;
                    return Err(MedallionError::Exited {
                        status: status.to_string(),
                        log: self.log_path().display().to_string(),
                        tail: self.log_tail(2000),
                    });
                }
            }
            if answers_http(addr) {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Err(MedallionError::NotReady {
            addr,
            waited: limit,
            log: self.log_path().display().to_string(),
        })
    }

    /// Its loopback port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The discovery URL, `http://127.0.0.1:<port>/taxii2/`.
    pub fn discovery_url(&self) -> String {
        format!("{}/taxii2/", base_url(self.port))
    }

    /// The API root URL, `http://127.0.0.1:<port>/api1/`.
    pub fn api_root_url(&self) -> String {
        format!("{}/{API_ROOT}/", base_url(self.port))
    }

    /// The objects URL of a collection (for `POST`).
    pub fn objects_url(&self, collection_id: &str) -> String {
        format!(
            "{}collections/{collection_id}/objects/",
            self.api_root_url()
        )
    }

    /// The process id, while running.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Its log file (stdout and stderr of every start).
    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("medallion.log")
    }

    /// The last `max` bytes of the log, for test failure messages.
    pub fn log_tail(&self, max: usize) -> String {
        let text = std::fs::read(self.log_path()).unwrap_or_default();
        let start = text.len().saturating_sub(max);
        String::from_utf8_lossy(text.get(start..).unwrap_or_default()).into_owned()
    }

    /// Stops medallion now.
    pub fn stop(mut self) {
        self.kill();
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Medallion {
    fn drop(&mut self) {
        self.kill();
    }
}

/// True when something on `addr` answers an HTTP request (any status: `/taxii2/` wants
/// credentials, so a 401 counts).
fn answers_http(addr: SocketAddr) -> bool {
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let _ = stream.set_write_timeout(Some(Duration::from_secs(2)));
    let request = format!(
        "GET /taxii2/ HTTP/1.0\r\nHost: {addr}\r\nAccept: {TAXII_MEDIA_TYPE}\r\nConnection: close\r\n\r\n"
    );
    if stream.write_all(request.as_bytes()).is_err() {
        return false;
    }
    let mut head = [0u8; 5];
    stream.read_exact(&mut head).is_ok() && &head == b"HTTP/"
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn backend_has_a_manifest_entry_per_object() {
        let mut c = TaxiiCollection::new("c1", "one");
        c.push(
            json!({"type": "indicator", "id": "indicator--1", "spec_version": "2.1",
                   "created": "2024-01-01T00:00:00.000Z", "modified": "2024-01-02T00:00:00.000Z"}),
            1_704_067_200_000,
        );
        c.push(
            json!({"type": "ipv4-addr", "id": "ipv4-addr--2", "value": "10.0.0.1"}),
            1_704_067_200_001,
        );
        let setup = MedallionSetup {
            collections: vec![c],
            ..MedallionSetup::default()
        };
        let data = backend_json(&setup, 4242);
        assert_eq!(
            data["/discovery"]["api_roots"][0],
            "http://127.0.0.1:4242/api1/"
        );
        let coll = &data["api1"]["collections"][0];
        assert_eq!(coll["manifest"][0]["version"], "2024-01-02T00:00:00.000Z");
        assert_eq!(
            coll["manifest"][0]["date_added"],
            "2024-01-01T00:00:00.000000Z"
        );
        assert_eq!(
            coll["manifest"][1]["version"],
            "2024-01-01T00:00:00.001000Z"
        );
        assert_eq!(
            coll["objects"][1]["_date_added"],
            "2024-01-01T00:00:00.001000Z"
        );
        assert_eq!(data["api1"]["status"], json!([]));
        let cfg = config_json(&setup, Path::new("/tmp/b.json"));
        assert_eq!(cfg["users"]["admin"], "Password0");
        assert_eq!(cfg["backend"]["filename"], "/tmp/b.json");
    }
}
