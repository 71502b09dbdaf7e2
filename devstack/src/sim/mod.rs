//! Sink simulators: local stand-ins for Splunk HEC, Elasticsearch `_bulk`, a signed-webhook
//! receiver, the Datadog Logs intake and a Sumo Logic HTTP Source. Each speaks the vendor's
//! API, records what it received, and injects faults on demand (status schedules, latency,
//! dropped connections, per-item bulk failures, slow or missing HEC acks, load-balancer cookie
//! rotation).
//!
//! The syslog receiver ([`syslog`]: TCP, TLS, UDP; CEF messages) is not HTTP: it has its own
//! handle, [`SyslogSim`], with stop/restart on the same port instead of faults.
//!
//! [`otlp`] is not a sink: it is the OTLP/HTTP trace receiver of a collector ([`OtlpReceiver`],
//! `POST /v1/traces`), recording the spans secflow exports so tests can follow a trace.
//!
//! Tests drive a simulator in-process through [`SimServer`]; another process (a demo, the load
//! test) uses the JSON control endpoints:
//!
//! | endpoint | what |
//! | --- | --- |
//! | `POST /_sim/faults` | replace the faults ([`Faults`] as JSON) |
//! | `GET /_sim/faults` | the faults as set |
//! | `GET /_sim/received` | `{"event_ids": [...], "duplicates": {id: times}, "stats": {...}}` |
//! | `GET /_sim/stats` | [`SimStats`] |
//! | `POST /_sim/reset` | forget what was received (faults stay) |
//! | `POST /_sim/rotate_cookie` | HEC: the load balancer moves us to another indexer |
//!
//! ```no_run
//! # async fn demo() -> Result<(), devstack::sim::SimError> {
//! use devstack::sim::{Faults, HecSimConfig, SimConfig, SimKind, SimServer, StatusRule};
//! let hec = SimServer::start(SimKind::Hec(HecSimConfig::new("token")), SimConfig::default()).await?;
//! hec.set_faults(Faults { statuses: vec![StatusRule::times(503, 3)], ..Faults::default() });
//! println!("HEC at {}, {} events", hec.url(), hec.stats().events);
//! hec.shutdown().await;
//! # Ok(())
//! # }
//! ```

mod alerts;
mod datadog;
mod elastic;
mod faults;
mod hec;
mod opsgenie;
pub mod otlp;
mod pagerduty;
mod recorder;
mod server;
mod slack;
mod sumo;
pub mod syslog;
mod teams;
mod webhook;

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use alerts::{AlertAction, HeartbeatPing, IncidentHistory};
pub use datadog::DatadogSimConfig;
pub use elastic::ElasticSimConfig;
pub use faults::{DropMode, Faults, ItemFault, StatusRule};
pub use hec::HecSimConfig;
pub use opsgenie::{OpsGenieApp, OpsGenieSimConfig};
pub use otlp::{OtlpReceiver, OtlpStats, ReceivedSpan};
pub use pagerduty::{PagerDutyApp, PagerDutySimConfig};
pub use recorder::{event_id_of, ReceivedRequest, SimStats};
pub use slack::{SlackApp, SlackMessage, SlackSimConfig, Throttled, Via};
pub use sumo::SumoSimConfig;
pub use syslog::{SyslogSim, SyslogSimConfig, SyslogSimTransport};
pub use teams::{TeamsApp, TeamsMessage, TeamsSimConfig, TeamsThrottled, TeamsVia};
pub use webhook::WebhookSimConfig;

use faults::FaultState;
use recorder::Recorder;

/// Which simulator, with its vendor-specific settings.
#[derive(Debug, Clone)]
pub enum SimKind {
    /// Splunk HTTP Event Collector.
    Hec(HecSimConfig),
    /// Elasticsearch `_bulk`.
    Elastic(ElasticSimConfig),
    /// A webhook receiver verifying `X-Secflow-Signature`.
    Webhook(WebhookSimConfig),
    /// Datadog Logs intake (`/api/v2/logs`).
    Datadog(DatadogSimConfig),
    /// Sumo Logic HTTP Source (`/receiver/v1/http/<token>`).
    SumoLogic(SumoSimConfig),
    /// Slack Web API (`chat.postMessage`, `auth.test`) and incoming webhooks.
    Slack(SlackSimConfig),
    /// Microsoft Teams Workflows and connector webhooks.
    Teams(TeamsSimConfig),
    /// PagerDuty Events API v2 (`/v2/enqueue`).
    PagerDuty(PagerDutySimConfig),
    /// OpsGenie Alert and Heartbeat APIs (`/v2/alerts`, `/v2/heartbeats`).
    OpsGenie(OpsGenieSimConfig),
}

impl SimKind {
    /// `hec`, `elastic` or `webhook`.
    pub fn name(&self) -> &'static str {
        match self {
            SimKind::Hec(_) => "hec",
            SimKind::Elastic(_) => "elastic",
            SimKind::Webhook(_) => "webhook",
            SimKind::Datadog(_) => "datadog",
            SimKind::SumoLogic(_) => "sumo_logic",
            SimKind::Slack(_) => "slack",
            SimKind::Teams(_) => "teams",
            SimKind::PagerDuty(_) => "pagerduty",
            SimKind::OpsGenie(_) => "opsgenie",
        }
    }
}

/// Settings common to every simulator.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Where to listen; port 0 picks a free one.
    pub addr: SocketAddr,
    /// Largest request body accepted (compressed size); larger → 413.
    pub max_body_bytes: usize,
    /// How many recent requests to keep for [`SimServer::received_requests`].
    pub keep_requests: usize,
    /// Faults from the start.
    pub faults: Faults,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            max_body_bytes: 100 * 1024 * 1024,
            keep_requests: 1_000,
            faults: Faults::default(),
        }
    }
}

/// Why a simulator could not start.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// The address could not be bound.
    #[error("simulator: cannot bind {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The bound address could not be read.
    #[error("simulator: local address: {0}")]
    LocalAddr(std::io::Error),
    /// The vendor configuration cannot work.
    #[error("simulator config: {0}")]
    Config(String),
}

/// State shared by the handlers of one simulator.
#[derive(Debug)]
pub(crate) struct Shared {
    faults: Mutex<FaultState>,
    rec: Mutex<Recorder>,
    pub max_body_bytes: usize,
}

impl Shared {
    /// The fault state (a poisoned lock is still usable: the state is plain data).
    pub fn faults(&self) -> MutexGuard<'_, FaultState> {
        self.faults.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The recorder.
    pub fn rec(&self) -> MutexGuard<'_, Recorder> {
        self.rec.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The vendor part of a running simulator.
#[derive(Debug, Clone)]
pub(crate) enum KindApp {
    Hec(Arc<hec::HecApp>),
    Elastic(Arc<elastic::ElasticApp>),
    Webhook(Arc<webhook::WebhookApp>),
    Datadog(Arc<datadog::DatadogApp>),
    SumoLogic(Arc<sumo::SumoApp>),
    Slack(Arc<slack::SlackApp>),
    Teams(Arc<teams::TeamsApp>),
    PagerDuty(Arc<pagerduty::PagerDutyApp>),
    OpsGenie(Arc<opsgenie::OpsGenieApp>),
}

impl KindApp {
    /// Whether faults apply to this path.
    pub fn is_data_path(&self, path: &str) -> bool {
        match self {
            KindApp::Hec(_) => hec::is_data_path(path),
            KindApp::Elastic(_) => elastic::is_data_path(path),
            KindApp::Webhook(_) => !path.starts_with("/_sim/"),
            KindApp::Datadog(_) => datadog::is_data_path(path),
            KindApp::SumoLogic(_) => sumo::is_data_path(path),
            KindApp::Slack(_) => slack::is_data_path(path),
            KindApp::Teams(_) => teams::is_data_path(path),
            KindApp::PagerDuty(_) => pagerduty::is_data_path(path),
            KindApp::OpsGenie(_) => opsgenie::is_data_path(path),
        }
    }

    /// The vendor-shaped answer for an injected status.
    pub fn fault_response(&self, status: u16, retry_after: Option<&str>) -> Response {
        let mut resp = match self {
            KindApp::Hec(_) => hec::fault_response(status),
            KindApp::Elastic(_) => elastic::fault_response(status),
            KindApp::Webhook(_) => webhook::fault_response(status),
            KindApp::Datadog(_) => datadog::fault_response(status),
            KindApp::SumoLogic(_) => sumo::fault_response(status),
            KindApp::Slack(_) => slack::fault_response(status),
            KindApp::Teams(_) => teams::fault_response(status),
            KindApp::PagerDuty(_) => pagerduty::fault_response(status),
            KindApp::OpsGenie(_) => opsgenie::fault_response(status),
        };
        if let Some(v) = retry_after.and_then(|v| HeaderValue::from_str(v).ok()) {
            resp.headers_mut().insert("retry-after", v);
        }
        resp
    }

    fn router(&self, shared: &Arc<Shared>) -> Router {
        let vendor = match self {
            KindApp::Hec(app) => hec::router(app.clone()),
            KindApp::Elastic(app) => elastic::router(app.clone()),
            KindApp::Webhook(app) => webhook::router(app.clone()),
            KindApp::Datadog(app) => datadog::router(app.clone()),
            KindApp::SumoLogic(app) => sumo::router(app.clone()),
            KindApp::Slack(app) => slack::router(app.clone()),
            KindApp::Teams(app) => teams::router(app.clone()),
            KindApp::PagerDuty(app) => pagerduty::router(app.clone()),
            KindApp::OpsGenie(app) => opsgenie::router(app.clone()),
        };
        let control = Router::new()
            .route("/_sim/faults", post(set_faults).get(get_faults))
            .route("/_sim/received", get(received))
            .route("/_sim/stats", get(stats))
            .route("/_sim/reset", post(reset))
            .route("/_sim/rotate_cookie", post(rotate_cookie))
            .with_state(ControlState {
                shared: shared.clone(),
                kind: self.clone(),
            });
        control
            .merge(vendor)
            .layer(axum::extract::DefaultBodyLimit::max(shared.max_body_bytes))
    }
}

#[derive(Debug, Clone)]
struct ControlState {
    shared: Arc<Shared>,
    kind: KindApp,
}

async fn set_faults(
    axum::extract::State(st): axum::extract::State<ControlState>,
    body: axum::body::Bytes,
) -> Response {
    match serde_json::from_slice::<Faults>(&body) {
        Ok(f) => {
            st.shared.faults().set(f);
            StatusCode::NO_CONTENT.into_response()
        }
        Err(e) => (
            StatusCode::BAD_REQUEST,
            Json(serde_json::json!({ "error": e.to_string() })),
        )
            .into_response(),
    }
}

async fn get_faults(axum::extract::State(st): axum::extract::State<ControlState>) -> Response {
    let f = st.shared.faults().faults().clone();
    Json(f).into_response()
}

async fn received(axum::extract::State(st): axum::extract::State<ControlState>) -> Response {
    let rec = st.shared.rec();
    Json(serde_json::json!({
        "event_ids": rec.event_ids(),
        "duplicates": rec.duplicates(),
        "stats": rec.stats,
    }))
    .into_response()
}

async fn stats(axum::extract::State(st): axum::extract::State<ControlState>) -> Response {
    let s = st.shared.rec().stats.clone();
    Json(s).into_response()
}

async fn reset(axum::extract::State(st): axum::extract::State<ControlState>) -> Response {
    st.shared.rec().clear();
    StatusCode::NO_CONTENT.into_response()
}

async fn rotate_cookie(axum::extract::State(st): axum::extract::State<ControlState>) -> Response {
    match &st.kind {
        KindApp::Hec(app) => {
            app.rotate_cookie();
            StatusCode::NO_CONTENT.into_response()
        }
        _ => StatusCode::NOT_FOUND.into_response(),
    }
}

/// A running simulator; see [`SimServer::start`].
#[derive(Debug)]
pub struct SimServer {
    name: &'static str,
    addr: SocketAddr,
    shared: Arc<Shared>,
    kind: KindApp,
    shutdown: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

impl SimServer {
    /// Binds `config.addr` and serves the simulator in a tokio task until
    /// [`shutdown`](Self::shutdown) (or drop).
    ///
    /// # Errors
    /// [`SimError::Bind`] when the address cannot be bound, [`SimError::Config`] for a vendor
    /// configuration that cannot work.
    pub async fn start(kind: SimKind, config: SimConfig) -> Result<SimServer, SimError> {
        let shared = Arc::new(Shared {
            faults: Mutex::new(FaultState::new(config.faults.clone())),
            rec: Mutex::new(Recorder::new(config.keep_requests)),
            max_body_bytes: config.max_body_bytes,
        });
        let name = kind.name();
        let app = match kind {
            SimKind::Hec(c) => KindApp::Hec(Arc::new(hec::HecApp::new(c, shared.clone())?)),
            SimKind::Elastic(c) => {
                KindApp::Elastic(Arc::new(elastic::ElasticApp::new(c, shared.clone())?))
            }
            SimKind::Webhook(c) => {
                KindApp::Webhook(Arc::new(webhook::WebhookApp::new(c, shared.clone())?))
            }
            SimKind::Datadog(c) => {
                KindApp::Datadog(Arc::new(datadog::DatadogApp::new(c, shared.clone())?))
            }
            SimKind::SumoLogic(c) => {
                KindApp::SumoLogic(Arc::new(sumo::SumoApp::new(c, shared.clone())?))
            }
            SimKind::Slack(c) => KindApp::Slack(Arc::new(slack::SlackApp::new(c, shared.clone())?)),
            SimKind::Teams(c) => KindApp::Teams(Arc::new(teams::TeamsApp::new(c, shared.clone())?)),
            SimKind::PagerDuty(c) => {
                KindApp::PagerDuty(Arc::new(pagerduty::PagerDutyApp::new(c, shared.clone())?))
            }
            SimKind::OpsGenie(c) => {
                KindApp::OpsGenie(Arc::new(opsgenie::OpsGenieApp::new(c, shared.clone())?))
            }
        };
        let listener = TcpListener::bind(config.addr)
            .await
            .map_err(|source| SimError::Bind {
                addr: config.addr,
                source,
            })?;
        let addr = listener.local_addr().map_err(SimError::LocalAddr)?;
        let router = app.router(&shared);
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(server::serve(
            listener,
            router,
            shared.clone(),
            app.clone(),
            rx,
        ));
        tracing::info!(%addr, kind = name, "sink simulator listening");
        Ok(SimServer {
            name,
            addr,
            shared,
            kind: app,
            shutdown: tx,
            task,
        })
    }

    /// `hec`, `elastic` or `webhook`.
    pub fn kind(&self) -> &'static str {
        self.name
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The base URL, e.g. `http://127.0.0.1:40123`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Replaces the faults (counters of the old ones are forgotten).
    pub fn set_faults(&self, faults: Faults) {
        self.shared.faults().set(faults);
    }

    /// No faults.
    pub fn clear_faults(&self) {
        self.set_faults(Faults::default());
    }

    /// The faults as set.
    pub fn faults(&self) -> Faults {
        self.shared.faults().faults().clone()
    }

    /// The counters.
    pub fn stats(&self) -> SimStats {
        self.shared.rec().stats.clone()
    }

    /// Distinct event ids accepted.
    pub fn received_event_ids(&self) -> BTreeSet<String> {
        self.shared.rec().event_ids()
    }

    /// Event ids accepted more than once, with how often.
    pub fn duplicate_event_ids(&self) -> BTreeMap<String, u64> {
        self.shared.rec().duplicates()
    }

    /// The most recent requests (up to [`SimConfig::keep_requests`]), oldest first.
    pub fn received_requests(&self) -> Vec<ReceivedRequest> {
        self.shared.rec().requests()
    }

    /// Forgets what was received (faults stay).
    pub fn reset(&self) {
        self.shared.rec().clear();
    }

    /// HEC: the load balancer moves the client to another indexer: the cookie changes and every
    /// pending ack is lost. Returns `false` for other kinds.
    pub fn rotate_cookie(&self) -> bool {
        match &self.kind {
            KindApp::Hec(app) => {
                app.rotate_cookie();
                true
            }
            _ => false,
        }
    }

    /// Datadog: entries accepted over the 1 MB entry limit (the real intake truncates them). 0
    /// for other kinds.
    pub fn truncated_entries(&self) -> u64 {
        match &self.kind {
            KindApp::Datadog(app) => app.truncated(),
            _ => 0,
        }
    }

    /// Slack: the workspace (messages per channel, throttles, run-time faults). `None` for other
    /// kinds.
    pub fn slack(&self) -> Option<Arc<SlackApp>> {
        match &self.kind {
            KindApp::Slack(app) => Some(app.clone()),
            _ => None,
        }
    }

    /// Teams: the webhooks (messages per channel, throttles, wrapped errors). `None` for other
    /// kinds.
    pub fn teams(&self) -> Option<Arc<TeamsApp>> {
        match &self.kind {
            KindApp::Teams(app) => Some(app.clone()),
            _ => None,
        }
    }

    /// PagerDuty: incidents per dedup key and accepted events. `None` for other kinds.
    pub fn pagerduty(&self) -> Option<Arc<PagerDutyApp>> {
        match &self.kind {
            KindApp::PagerDuty(app) => Some(app.clone()),
            _ => None,
        }
    }

    /// OpsGenie: alerts per alias, accepted creates and closes, heartbeat pings. `None` for
    /// other kinds.
    pub fn opsgenie(&self) -> Option<Arc<OpsGenieApp>> {
        match &self.kind {
            KindApp::OpsGenie(app) => Some(app.clone()),
            _ => None,
        }
    }

    /// Stops the server (open connections are closed) and waits for it.
    pub async fn shutdown(self) {
        let SimServer { shutdown, task, .. } = self;
        let _ = shutdown.send(());
        if let Err(e) = task.await {
            tracing::error!(error = %e, "sink simulator task failed");
        }
    }
}

// ---- helpers shared by the vendors ----

/// A JSON answer.
pub(crate) fn json(status: u16, value: serde_json::Value) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut resp = Response::new(Body::from(value.to_string()));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        axum::http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=UTF-8"),
    );
    resp
}

/// Headers as pairs (non-UTF-8 values lossily).
pub(crate) fn header_pairs(headers: &HeaderMap) -> Vec<(String, String)> {
    headers
        .iter()
        .map(|(n, v)| {
            (
                n.as_str().to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect()
}

/// The first value of header `name` as text.
pub(crate) fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// The body, gunzipped when `Content-Encoding: gzip`.
pub(crate) fn decode_body(
    headers: &HeaderMap,
    body: &[u8],
    limit: usize,
) -> Result<Vec<u8>, String> {
    match header(headers, "content-encoding").map(str::trim) {
        None | Some("") | Some("identity") => Ok(body.to_vec()),
        Some(enc) if enc.eq_ignore_ascii_case("gzip") => processors::sink::gunzip(body, limit)
            .map_err(|e| format!("cannot gunzip the body: {e}")),
        Some(other) => Err(format!("unsupported Content-Encoding `{other}`")),
    }
}
