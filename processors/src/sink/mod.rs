//! Sinks: how a batch of records becomes HTTP requests to a SIEM/SOAR, and how the answers are
//! read back **per record**.
//!
//! This module is the contract between the sinks (pure: no I/O, no clock, no retry loop) and the
//! delivery engine in `pipeline` (which owns offsets, HTTP, retries with backoff, the circuit
//! breaker, retry tiers, the DLQ and rate limits).
//!
//! # How the engine drives a [`Sink`]
//!
//! 1. [`Sink::build`] turns a batch into one or more [`HttpRequest`]s (split by the target's
//!    size limits) plus the records that cannot be encoded at all (`rejected`, always
//!    [`Outcome::Permanent`]). Every record of the batch is in exactly one request or in
//!    `rejected`. `HttpRequest::records` are indices into the slice given to `build`.
//!    Requests are built **for one attempt**: the engine calls `build` again (with the records
//!    still to deliver and the current time) for every re-send, never re-sends old bytes
//!    (webhook signatures carry a timestamp; the HEC channel may have been reset).
//! 2. The engine sends each request. With a response it calls [`Sink::classify`], on a transport
//!    failure (refused, timeout, reset, TLS) [`Sink::classify_transport_error`]. Both return a
//!    [`Classification`]: one [`Outcome`] per entry of `request.records` (same order), plus
//!    request-level signals:
//!    - `sink_down`: the sink failed as a whole (connection refused, 5xx/429/401/403 for the
//!      whole request, every bulk item rejected with 429/5xx) — feeds the circuit breaker;
//!    - `split`: the request was too large (413) or contains an unlocatable bad record: the
//!      engine re-sends its records **immediately** as two halves (two `build` calls), which
//!      is not counted as an attempt. Never set for a single-record request;
//!    - `ack_reset`: pending acknowledgements of that channel can never arrive (HEC channel
//!      reset after a load balancer's `Set-Cookie` changed): the engine treats every pending
//!      [`AckToken`] whose `channel` matches as failed and re-sends those records.
//! 3. Outcomes: [`Outcome::Delivered`] and [`Outcome::Duplicate`] are final successes;
//!    [`Outcome::AwaitAck`] is pending until acknowledged (see below); [`Outcome::Retry`] goes
//!    through in-process backoff (honouring `retry_after`), then the retry tiers;
//!    [`Outcome::Permanent`] goes to the DLQ. Messages are already redacted.
//! 4. Acknowledgements (HEC indexer acks; [`Sink::ack_policy`] is `Some`): the engine keeps the
//!    pending tokens (at most `max_pending`, else it stops sending: backpressure), every
//!    `poll_interval` sends the requests from [`Sink::ack_poll`] and feeds each response to
//!    [`Sink::parse_acks`]; acked tokens → delivered; a token older than `timeout` → its records
//!    are re-sent (never dropped).
//! 5. Circuit breaker half-open: the engine sends [`Sink::health_probe`] (if any) and checks it
//!    with [`Sink::probe_ok`] before trying a single batch.

pub mod alerting;
pub mod chat;
pub mod classify;
pub mod datadog;
pub mod elasticsearch;
pub mod event_fields;
pub mod opsgenie;
pub mod pagerduty;
pub mod slack;
pub mod splunk_hec;
pub mod sumo_logic;
pub mod syslog;
pub mod teams;
pub mod webhook;

use std::fmt;
use std::io::{Read, Write};
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use crate::secret::Secret;
pub use crate::secret::{SecretError, SecretSource};

/// One record to deliver: the payload bytes and what the sink needs to know about them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SinkRecord {
    /// The event id (idempotency key: Elasticsearch `_id`, HEC `fields.event_id`).
    pub event_id: Option<String>,
    /// The tenant, for index templates and indexed fields.
    pub tenant: Option<String>,
    /// Event time, milliseconds since the Unix epoch (UTC).
    pub event_time_ms: Option<i64>,
    /// The Kafka key (not sent; kept for the engine's bookkeeping).
    pub key: Option<Vec<u8>>,
    /// The payload: ECS/OCSF/canonical JSON, or a CEF line.
    pub payload: Vec<u8>,
    /// What `payload` is.
    pub format: PayloadFormat,
    /// W3C `traceparent` from the Kafka headers, if any.
    pub traceparent: Option<String>,
}

/// What a record's payload is. JSON formats are embedded as JSON; text formats as a string.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PayloadFormat {
    /// ECS JSON document.
    Ecs,
    /// OCSF JSON event.
    Ocsf,
    /// A CEF line (text).
    Cef,
    /// The canonical `SecurityEvent` as JSON.
    Canonical,
}

impl PayloadFormat {
    /// Whether the payload is a JSON document (as opposed to a text line).
    pub fn is_json(self) -> bool {
        !matches!(self, PayloadFormat::Cef)
    }

    /// Lower-case name (`ecs`, `ocsf`, `cef`, `canonical`), e.g. for `{format}` in templates.
    pub fn as_str(self) -> &'static str {
        match self {
            PayloadFormat::Ecs => "ecs",
            PayloadFormat::Ocsf => "ocsf",
            PayloadFormat::Cef => "cef",
            PayloadFormat::Canonical => "canonical",
        }
    }
}

impl From<crate::transform::Format> for PayloadFormat {
    fn from(f: crate::transform::Format) -> Self {
        match f {
            crate::transform::Format::Ecs => PayloadFormat::Ecs,
            crate::transform::Format::Ocsf => PayloadFormat::Ocsf,
            crate::transform::Format::Cef => PayloadFormat::Cef,
        }
    }
}

/// HTTP method of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Method {
    /// `GET`.
    Get,
    /// `POST`.
    Post,
    /// `PUT`.
    Put,
}

impl Method {
    /// The method name, e.g. `"POST"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Put => "PUT",
        }
    }
}

/// An HTTP request ready to send. `Debug` leaves out header values (they hold credentials) and
/// the URL's path and query (a Sumo Logic upload URL is itself the credential).
#[derive(Clone, PartialEq, Eq)]
pub struct HttpRequest {
    /// Method.
    pub method: Method,
    /// Absolute URL.
    pub url: String,
    /// Headers, in order (names as sent; compare case-insensitively).
    pub headers: Vec<(String, String)>,
    /// Body, already gzip-compressed when `Content-Encoding: gzip` is among the headers.
    pub body: Vec<u8>,
    /// Indices into the batch given to [`Sink::build`] of the records this request carries, in
    /// body order. Empty for ack polls and health probes.
    pub records: Vec<usize>,
}

impl HttpRequest {
    /// The first header named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        find_header(&self.headers, name)
    }
}

impl fmt::Debug for HttpRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.headers.iter().map(|(n, _)| n.as_str()).collect();
        f.debug_struct("HttpRequest")
            .field("method", &self.method)
            .field("url", &url_origin(&self.url))
            .field("header_names", &names)
            .field("body_len", &self.body.len())
            .field("records", &self.records)
            .finish()
    }
}

/// `scheme://host[:port]` of `url`, without user info, and `/…` when a path or query followed.
fn url_origin(url: &str) -> String {
    let start = url.find("://").map_or(0, |i| i + 3);
    let rest = &url[start..];
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..end];
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let more = if end < rest.len() { "/…" } else { "" };
    format!("{}{host}{more}", &url[..start])
}

/// An HTTP response as received (body decompressed by the HTTP client if it was encoded).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HttpResponse {
    /// Status code.
    pub status: u16,
    /// Headers, in order; a header sent several times (`Set-Cookie`) appears several times.
    pub headers: Vec<(String, String)>,
    /// Body bytes (may be anything: a proxy's HTML page, truncated JSON…).
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// The first header named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        find_header(&self.headers, name)
    }

    /// Every value of the headers named `name` (case-insensitive), in order.
    pub fn header_values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.headers
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

fn find_header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// A pending acknowledgement: HEC `ackId` on the channel it was issued on.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AckToken {
    /// The channel (`X-Splunk-Request-Channel`) the request was sent on.
    pub channel: String,
    /// The `ackId` the server returned.
    pub id: u64,
}

/// When to try again, from a `Retry-After` header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryAfter {
    /// `Retry-After: <seconds>`.
    Delay(Duration),
    /// `Retry-After: <HTTP-date>`.
    At(SystemTime),
}

impl RetryAfter {
    /// How long to wait from `now` (zero when the date is already past).
    pub fn delay_from(&self, now: SystemTime) -> Duration {
        match self {
            RetryAfter::Delay(d) => *d,
            RetryAfter::At(t) => t.duration_since(now).unwrap_or(Duration::ZERO),
        }
    }
}

/// What happened to one record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Accepted by the target.
    Delivered,
    /// The target already has it (Elasticsearch 409 on `create`): delivered earlier.
    Duplicate,
    /// Finished without a request on purpose: below the alerting threshold, or a trigger for an
    /// incident that is already open (PagerDuty/OpsGenie dedup). A final success.
    Suppressed {
        /// Why, for the logs and the report (e.g. `below_min_severity`, `incident_open`).
        reason: String,
    },
    /// Accepted, durable once this token is acknowledged (HEC indexer acks).
    AwaitAck(AckToken),
    /// Transient failure: back off and try again (then the retry tiers).
    Retry {
        /// Error class for `secflow.error.class` (e.g. `server_error`, `rate_limited`).
        class: String,
        /// HTTP status (request's or bulk item's), if there was one.
        status: Option<u16>,
        /// Human-readable reason, secrets redacted.
        message: String,
        /// The server's `Retry-After`, if any.
        retry_after: Option<RetryAfter>,
    },
    /// The record cannot be delivered as it is: dead-letter it.
    Permanent {
        /// Error class (e.g. `mapper_parsing_exception`, `auth`, `invalid_payload`).
        class: String,
        /// HTTP status, if there was one.
        status: Option<u16>,
        /// Human-readable reason, secrets redacted.
        message: String,
    },
}

impl Outcome {
    /// A [`Outcome::Retry`] without `Retry-After`.
    pub fn retry(
        class: impl Into<String>,
        status: Option<u16>,
        message: impl Into<String>,
    ) -> Self {
        Outcome::Retry {
            class: class.into(),
            status,
            message: message.into(),
            retry_after: None,
        }
    }

    /// A [`Outcome::Permanent`].
    pub fn permanent(
        class: impl Into<String>,
        status: Option<u16>,
        message: impl Into<String>,
    ) -> Self {
        Outcome::Permanent {
            class: class.into(),
            status,
            message: message.into(),
        }
    }

    /// Delivered, duplicate or suppressed: nothing more to do for this record.
    pub fn is_success(&self) -> bool {
        matches!(
            self,
            Outcome::Delivered | Outcome::Duplicate | Outcome::Suppressed { .. }
        )
    }

    /// A [`Outcome::Suppressed`].
    pub fn suppressed(reason: impl Into<String>) -> Self {
        Outcome::Suppressed {
            reason: reason.into(),
        }
    }

    /// The error class of a failure (`None` for successes and pending acks).
    pub fn class(&self) -> Option<&str> {
        match self {
            Outcome::Retry { class, .. } | Outcome::Permanent { class, .. } => Some(class),
            _ => None,
        }
    }
}

/// What [`Sink::build`] made of a batch.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BuildResult {
    /// Requests to send (any order; they are independent).
    pub requests: Vec<HttpRequest>,
    /// Records finished without a request, the index is into the batch: those that cannot be
    /// encoded at all (invalid payload, larger than the target accepts) with an
    /// [`Outcome::Permanent`], and those with nothing to send (an alert below the threshold, a
    /// trigger for an incident already open) with an [`Outcome::Suppressed`].
    pub rejected: Vec<(usize, Outcome)>,
}

/// The sink failed as a whole (for the circuit breaker and the logs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SinkDown {
    /// Error class, as in the outcomes.
    pub class: String,
    /// HTTP status, if any.
    pub status: Option<u16>,
    /// Reason, secrets redacted.
    pub message: String,
}

/// Pending acknowledgements of `channel` can never arrive: fail them (re-send their records).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AckReset {
    /// The channel whose pending tokens are void.
    pub channel: String,
}

/// How a response (or a transport failure) was read; see the module documentation.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Classification {
    /// One outcome per entry of `request.records`, in the same order.
    pub outcomes: Vec<Outcome>,
    /// Set when the response means the sink is down as a whole.
    pub sink_down: Option<SinkDown>,
    /// Re-send the request's records right away as two halves (not an attempt). Only set for
    /// requests with two or more records; the outcomes are then [`Outcome::Retry`].
    pub split: bool,
    /// Pending acknowledgements to fail (HEC channel reset).
    pub ack_reset: Option<AckReset>,
}

impl Classification {
    /// The same outcome for each of `n` records, no signals.
    pub fn uniform(outcome: Outcome, n: usize) -> Self {
        Classification {
            outcomes: vec![outcome; n],
            ..Classification::default()
        }
    }
}

/// The result of one ack poll response.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AckReport {
    /// Tokens now acknowledged (durable).
    pub acked: Vec<AckToken>,
    /// Pending tokens of a channel to fail (channel reset / unknown to the server).
    pub ack_reset: Option<AckReset>,
}

/// How the engine runs the acknowledgement protocol of a sink.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AckPolicy {
    /// Time between two polls.
    pub poll_interval: Duration,
    /// A token not acknowledged within this time → its records are re-sent.
    pub timeout: Duration,
    /// At most this many pending tokens; stop sending until some are resolved.
    pub max_pending: usize,
}

/// What kind of transport failure the HTTP client saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TransportErrorKind {
    /// The connection could not be made (refused, DNS, unreachable).
    Connect,
    /// No (complete) answer in time. The request may have been processed.
    Timeout,
    /// The connection was closed or reset before a complete response.
    Closed,
    /// TLS handshake or certificate failure.
    Tls,
    /// Anything else.
    Other,
}

impl TransportErrorKind {
    /// Error class for `secflow.error.class`.
    pub fn class(self) -> &'static str {
        match self {
            TransportErrorKind::Connect => "connect",
            TransportErrorKind::Timeout => "timeout",
            TransportErrorKind::Closed => "connection_closed",
            TransportErrorKind::Tls => "tls",
            TransportErrorKind::Other => "transport",
        }
    }
}

/// A transport failure: no HTTP response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransportError {
    /// What happened.
    pub kind: TransportErrorKind,
    /// The client's message (the sink redacts it).
    pub message: String,
}

/// Errors of sink construction and of the acknowledgement protocol.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SinkError {
    /// The sink's configuration cannot work.
    #[error("sink config: {0}")]
    Config(String),
    /// This sink has no acknowledgement protocol.
    #[error("this sink has no acknowledgement protocol")]
    AcksUnsupported,
    /// The ack poll was answered with an error or an unreadable body; keep the tokens pending.
    #[error("ack poll failed (HTTP {status}): {message}")]
    AckPoll {
        /// HTTP status.
        status: u16,
        /// Reason, secrets redacted.
        message: String,
    },
}

/// A sink: builds requests for a batch and classifies the answers per record. Pure apart from
/// small protocol state the sink may keep (the HEC channel and cookies); safe to share between
/// tasks.
pub trait Sink: Send + Sync + fmt::Debug {
    /// The sink's name (from the topology), e.g. for metrics and `secflow.sink`.
    fn name(&self) -> &str;

    /// Requests for `batch` (split by the target's size limits), and the records that cannot be
    /// encoded at all as [`Outcome::Permanent`]. `now` is the wall-clock time of this attempt
    /// (signature timestamps; the index date of records without an event time).
    fn build(&self, batch: &[SinkRecord], now: SystemTime) -> BuildResult;

    /// Per-record outcomes (in the order of `request.records`) and signals for one response.
    fn classify(&self, request: &HttpRequest, response: &HttpResponse) -> Classification;

    /// A transport failure: by default [`Outcome::Retry`] for every record, and the sink is
    /// down (connection refused, timeouts and resets count towards the circuit breaker).
    fn classify_transport_error(
        &self,
        request: &HttpRequest,
        error: &TransportError,
    ) -> Classification {
        classify::transport_error(error, request.records.len(), |m| self.redact(m))
    }

    /// Replaces this sink's secrets in `text` by `***` (for any message the engine logs or
    /// writes to a header, e.g. a client error that echoes a URL).
    fn redact(&self, text: &str) -> String {
        text.to_string()
    }

    /// The acknowledgement protocol's settings, `None` when the sink has none (the default).
    fn ack_policy(&self) -> Option<AckPolicy> {
        None
    }

    /// Poll requests for `pending` tokens (none when the sink has no acks).
    fn ack_poll(&self, pending: &[AckToken]) -> Vec<HttpRequest> {
        let _ = pending;
        Vec::new()
    }

    /// Which tokens an ack poll response (to `request`, from [`Sink::ack_poll`]) acknowledges.
    ///
    /// # Errors
    /// [`SinkError::AckPoll`] when the poll failed (tokens stay pending);
    /// [`SinkError::AcksUnsupported`] for sinks without acks.
    fn parse_acks(
        &self,
        request: &HttpRequest,
        response: &HttpResponse,
    ) -> Result<AckReport, SinkError> {
        let _ = (request, response);
        Err(SinkError::AcksUnsupported)
    }

    /// A cheap request whose success says the sink is up (the circuit breaker's half-open
    /// probe), `None` when there is none: the engine probes with a single batch.
    fn health_probe(&self) -> Option<HttpRequest> {
        None
    }

    /// Whether the response to [`Sink::health_probe`] says the sink is up (default: 2xx).
    fn probe_ok(&self, response: &HttpResponse) -> bool {
        (200..300).contains(&response.status)
    }

    /// At most this many batches in flight, when the sink needs fewer than the stage allows
    /// (alert sinks keep per-incident state and deliver one batch at a time). `None`: the
    /// stage's `max_in_flight`.
    fn max_concurrency(&self) -> Option<usize> {
        None
    }

    /// Pacing key of a request (Slack/Teams: the channel). Requests with the same key are sent
    /// at most once per [`Sink::pacing_interval`], across every batch in flight.
    fn pacing_key(&self, request: &HttpRequest) -> Option<String> {
        let _ = request;
        None
    }

    /// Smallest time between two requests with the same [`Sink::pacing_key`].
    fn pacing_interval(&self) -> Option<Duration> {
        None
    }

    /// How often the engine calls [`Sink::tick`], `None` (the default) for never.
    fn tick_interval(&self) -> Option<Duration> {
        None
    }

    /// Requests the sink sends on its own schedule (OpsGenie heartbeats, PagerDuty
    /// auto-resolves after a quiet window), asked for every [`Sink::tick_interval`] while the
    /// circuit is closed. `healthy` says whether the last delivery succeeded.
    fn tick(&self, now: SystemTime, healthy: bool) -> Vec<HttpRequest> {
        let _ = (now, healthy);
        Vec::new()
    }

    /// The answer to a request from [`Sink::tick`] (`Err` on a transport failure), so the sink
    /// can update its state (a resolved incident is forgotten; a failed one is tried again at
    /// the next tick).
    fn tick_done(
        &self,
        request: &HttpRequest,
        response: Result<&HttpResponse, &TransportError>,
        now: SystemTime,
    ) {
        let _ = (request, response, now);
    }

    /// The sink's durable state (open incidents, thread ids), `None` when it has none. The
    /// engine writes it to the stage's state file after every batch and tick that changed it
    /// and hands it back to [`Sink::restore`] at start.
    fn snapshot(&self) -> Option<Vec<u8>> {
        None
    }

    /// Loads state saved by [`Sink::snapshot`].
    ///
    /// # Errors
    /// [`SinkError::Config`] when the bytes are not this sink's state.
    fn restore(&self, state: &[u8]) -> Result<(), SinkError> {
        let _ = state;
        Ok(())
    }
}

/// `username` + `password` (by reference) for HTTP basic auth.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BasicAuthConfig {
    /// User name.
    pub username: String,
    /// Password, by reference.
    pub password: SecretSource,
}

/// Resolved credentials for the `Authorization` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credentials {
    /// `Authorization: Bearer <token>`.
    Bearer(Secret),
    /// `Authorization: Basic base64(username:password)`.
    Basic {
        /// User name.
        username: String,
        /// Password.
        password: Secret,
    },
    /// `Authorization: ApiKey <key>` (Elasticsearch: the API key's `encoded` value).
    ApiKey(Secret),
}

impl Credentials {
    /// The `Authorization` header value (a secret: never log it).
    pub fn header_value(&self) -> Secret {
        match self {
            Credentials::Bearer(t) => Secret::new(format!("Bearer {}", t.expose())),
            Credentials::Basic { username, password } => {
                Secret::new(format!("Basic {}", basic_token(username, password)))
            }
            Credentials::ApiKey(k) => Secret::new(format!("ApiKey {}", k.expose())),
        }
    }

    /// Every secret string a server could echo back: the raw secret and, for basic auth, the
    /// base64 token.
    pub fn secrets(&self) -> Vec<Secret> {
        match self {
            Credentials::Bearer(t) | Credentials::ApiKey(t) => vec![t.clone()],
            Credentials::Basic { username, password } => vec![
                password.clone(),
                Secret::new(basic_token(username, password)),
            ],
        }
    }
}

fn basic_token(username: &str, password: &Secret) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(format!("{username}:{}", password.expose()))
}

/// Gzip-compresses `data` (default level).
pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(
        Vec::with_capacity(data.len() / 4 + 64),
        flate2::Compression::default(),
    );
    // Writing to a Vec cannot fail.
    let _ = enc.write_all(data);
    enc.finish().unwrap_or_default()
}

/// Decompresses gzip `data` (at most `limit` bytes of output).
///
/// # Errors
/// An I/O error when `data` is not gzip or the output exceeds `limit`.
pub fn gunzip(data: &[u8], limit: usize) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::new();
    let mut dec = flate2::read::GzDecoder::new(data).take(limit as u64 + 1);
    dec.read_to_end(&mut out)?;
    if out.len() > limit {
        return Err(std::io::Error::other("decompressed body exceeds the limit"));
    }
    Ok(out)
}

/// Serializes `s` as a JSON string into `out`.
pub(crate) fn push_json_str(out: &mut Vec<u8>, s: &str) {
    // Serializing a &str to a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, s);
}

/// The `traceparent` shared by every record of `records`, if they all carry the same one.
pub(crate) fn common_traceparent<'a>(
    batch: &'a [SinkRecord],
    records: &[usize],
) -> Option<&'a str> {
    let mut it = records
        .iter()
        .map(|&i| batch.get(i).and_then(|r| r.traceparent.as_deref()));
    let first = it.next()??;
    it.all(|t| t == Some(first)).then_some(first)
}

/// Greedy packing of encoded items into chunks of at most `max_bytes` (counting `sep_bytes`
/// between items and `overhead` per chunk) and at most `max_items` items. Every item must
/// already fit alone.
pub(crate) fn pack(
    sizes: &[(usize, usize)],
    max_bytes: usize,
    max_items: usize,
    sep_bytes: usize,
    overhead: usize,
) -> Vec<Vec<usize>> {
    let mut chunks: Vec<Vec<usize>> = Vec::new();
    let mut current: Vec<usize> = Vec::new();
    let mut used = overhead;
    for &(pos, size) in sizes {
        if !current.is_empty()
            && (used + sep_bytes + size > max_bytes || current.len() >= max_items.max(1))
        {
            chunks.push(std::mem::take(&mut current));
            used = overhead;
        }
        used += if current.is_empty() {
            size
        } else {
            sep_bytes + size
        };
        current.push(pos);
    }
    if !current.is_empty() {
        chunks.push(current);
    }
    chunks
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn secret_source_reads_env_or_file_mapping() {
        let s: SecretSource = serde_json::from_str(r#"{"env":"HEC_TOKEN"}"#).unwrap();
        assert_eq!(s, SecretSource::Env("HEC_TOKEN".into()));
        let s: SecretSource = serde_json::from_str(r#"{"file":"/run/secrets/t"}"#).unwrap();
        assert_eq!(s, SecretSource::File("/run/secrets/t".into()));
        for bad in [
            r#"{"env":"A","file":"/b"}"#,
            r#"{}"#,
            r#"{"env":""}"#,
            r#"{"vault":"x"}"#,
            r#""HEC_TOKEN""#,
        ] {
            assert!(serde_json::from_str::<SecretSource>(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn credentials_header_values() {
        let basic = Credentials::Basic {
            username: "elastic".into(),
            password: Secret::new("changeme"),
        };
        assert_eq!(
            basic.header_value().expose(),
            "Basic ZWxhc3RpYzpjaGFuZ2VtZQ=="
        );
        assert_eq!(basic.secrets().len(), 2);
        let key = Credentials::ApiKey(Secret::new(
            "VnVhQ2ZHY0JDZGJrUW0tZTVhT3g6dWkybHAyYXhUTm1zeWFrdzl0dk5udw==",
        ));
        assert!(key.header_value().expose().starts_with("ApiKey VnVh"));
        let bearer = Credentials::Bearer(Secret::new("abc"));
        assert_eq!(bearer.header_value().expose(), "Bearer abc");
    }

    #[test]
    fn gzip_round_trip_and_limit() {
        let data = b"hello hello hello hello".repeat(100);
        let z = gzip(&data);
        assert!(z.len() < data.len());
        assert_eq!(gunzip(&z, data.len()).unwrap(), data);
        assert!(gunzip(&z, 10).is_err());
        assert!(gunzip(b"not gzip", 100).is_err());
    }

    #[test]
    fn pack_respects_bytes_items_and_separators() {
        let sizes = [(0, 4), (1, 4), (2, 4), (3, 10)];
        // "[a,b]" style: overhead 2, separator 1.
        assert_eq!(
            pack(&sizes, 11, 100, 1, 2),
            vec![vec![0, 1], vec![2], vec![3]]
        );
        assert_eq!(pack(&sizes, 1000, 2, 1, 2), vec![vec![0, 1], vec![2, 3]]);
        assert!(pack(&[], 10, 10, 0, 0).is_empty());
    }

    #[test]
    fn retry_after_delay_from_now() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1000);
        assert_eq!(
            RetryAfter::At(now + Duration::from_secs(5)).delay_from(now),
            Duration::from_secs(5)
        );
        assert_eq!(
            RetryAfter::At(now - Duration::from_secs(5)).delay_from(now),
            Duration::ZERO
        );
    }

    #[test]
    fn request_debug_hides_header_values() {
        let r = HttpRequest {
            method: Method::Post,
            url: "http://x".into(),
            headers: vec![("Authorization".into(), "Splunk topsecret".into())],
            body: vec![],
            records: vec![0],
        };
        let dbg = format!("{r:?}");
        assert!(!dbg.contains("topsecret"));
        let sumo = HttpRequest {
            url: "https://u:pw@collectors.example:443/receiver/v1/http/TOKEN?x=1".into(),
            ..r.clone()
        };
        let dbg = format!("{sumo:?}");
        assert!(
            dbg.contains(r#"url: "https://collectors.example:443/…""#),
            "{dbg}"
        );
        assert!(!dbg.contains("TOKEN") && !dbg.contains("pw"), "{dbg}");
        assert_eq!(r.header("authorization"), Some("Splunk topsecret"));
    }
}
