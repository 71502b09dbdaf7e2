//! An OpenTelemetry trace receiver: the OTLP/HTTP endpoint of a collector (`POST /v1/traces`),
//! recording every span it is sent so tests can check what a process exported.
//!
//! It accepts both OTLP/HTTP encodings, as the OpenTelemetry Collector does on port 4318:
//! binary protobuf (`Content-Type: application/x-protobuf`, an `ExportTraceServiceRequest`) and
//! OTLP/JSON (`application/json`, ids as hex strings). The protobuf is read by a small decoder
//! of its own (the wire format and the field numbers of `opentelemetry/proto/trace/v1`), not by
//! the OpenTelemetry crates the pipeline exports with, so the test does not check the exporter
//! against itself. A malformed request (bad protobuf or JSON, a trace id that is not 16 bytes,
//! a span id that is not 8) is answered `400` like a collector would and nothing of it is kept;
//! a compressed body (`Content-Encoding` other than `identity`) is answered `415`.
//!
//! | endpoint | what |
//! | --- | --- |
//! | `POST /v1/traces` | the OTLP/HTTP trace export |
//! | `GET /_sim/spans` | every span received, as JSON ([`ReceivedSpan`]) |
//! | `GET /_sim/stats` | requests by encoding, rejected requests, spans |
//! | `POST /_sim/reset` | forget what was received |

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Serialize;
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::SimError;

/// One span as received.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReceivedSpan {
    /// 32 lowercase hex digits.
    pub trace_id: String,
    /// 16 lowercase hex digits.
    pub span_id: String,
    /// The parent's span id (16 hex digits), absent for a root span.
    pub parent_span_id: Option<String>,
    /// The span name.
    pub name: String,
    /// `SpanKind`: 0 unspecified, 1 internal, 2 server, 3 client, 4 producer, 5 consumer.
    pub kind: i64,
    /// Start, Unix nanoseconds.
    pub start_unix_nano: u64,
    /// End, Unix nanoseconds.
    pub end_unix_nano: u64,
    /// Span attributes, values rendered as text.
    pub attributes: BTreeMap<String, String>,
    /// Status code: 0 unset, 1 ok, 2 error.
    pub status_code: i64,
    /// Status message.
    pub status_message: String,
    /// The resource's `service.name`.
    pub service_name: Option<String>,
    /// The instrumentation scope's name.
    pub scope: Option<String>,
}

impl ReceivedSpan {
    /// An attribute's value.
    pub fn attr(&self, key: &str) -> Option<&str> {
        self.attributes.get(key).map(String::as_str)
    }
}

/// Counts of what the receiver was sent.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct OtlpStats {
    /// Accepted protobuf requests.
    pub protobuf_requests: u64,
    /// Accepted JSON requests.
    pub json_requests: u64,
    /// Requests answered 400/415.
    pub rejected: u64,
    /// Spans kept.
    pub spans: u64,
}

#[derive(Debug, Default)]
struct Recorded {
    spans: Vec<ReceivedSpan>,
    stats: OtlpStats,
}

type Shared = Arc<Mutex<Recorded>>;

fn lock(s: &Shared) -> MutexGuard<'_, Recorded> {
    s.lock().unwrap_or_else(|e| e.into_inner())
}

/// A running receiver.
#[derive(Debug)]
pub struct OtlpReceiver {
    addr: SocketAddr,
    state: Shared,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl OtlpReceiver {
    /// Binds `addr` (port 0 picks a free one) and serves until [`shutdown`](Self::shutdown).
    ///
    /// # Errors
    /// The address cannot be bound.
    pub async fn start(addr: SocketAddr) -> Result<OtlpReceiver, SimError> {
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| SimError::Bind { addr, source })?;
        let addr = listener.local_addr().map_err(SimError::LocalAddr)?;
        let state: Shared = Arc::default();
        let app = Router::new()
            .route("/v1/traces", post(export))
            .route("/_sim/spans", get(spans))
            .route("/_sim/stats", get(stats))
            .route("/_sim/reset", post(reset))
            .with_state(state.clone());
        let (tx, rx) = oneshot::channel();
        let task = tokio::spawn(async move {
            let served = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = rx.await;
                })
                .await;
            if let Err(e) = served {
                tracing::error!(error = %e, "OTLP receiver stopped with an error");
            }
        });
        tracing::info!(%addr, "OTLP receiver listening");
        Ok(OtlpReceiver {
            addr,
            state,
            stop: Some(tx),
            task: Some(task),
        })
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The base URL, as `OTEL_EXPORTER_OTLP_ENDPOINT` takes it (`http://127.0.0.1:PORT`).
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every span received so far, in arrival order.
    pub fn spans(&self) -> Vec<ReceivedSpan> {
        lock(&self.state).spans.clone()
    }

    /// Counts of what was received.
    pub fn stats(&self) -> OtlpStats {
        lock(&self.state).stats.clone()
    }

    /// Stops listening.
    pub async fn shutdown(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.task.take() {
            let _ = t.await;
        }
    }
}

impl Drop for OtlpReceiver {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }
}

async fn export(State(state): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    let encoding = headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("identity");
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let reject = |status: StatusCode, message: String| {
        lock(&state).stats.rejected += 1;
        tracing::warn!(%status, %message, "OTLP receiver refused a request");
        (status, message).into_response()
    };
    if !encoding.eq_ignore_ascii_case("identity") {
        return reject(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("Content-Encoding {encoding} not supported"),
        );
    }
    let json = match content_type.as_str() {
        "application/x-protobuf" | "application/protobuf" => false,
        "application/json" => true,
        other => {
            return reject(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                format!(
                    "Content-Type {other:?}: expected application/x-protobuf or application/json"
                ),
            )
        }
    };
    let decoded = if json {
        serde_json::from_slice::<Value>(&body)
            .map_err(|e| format!("invalid JSON: {e}"))
            .and_then(|v| decode_json(&v))
    } else {
        decode_protobuf(&body)
    };
    let spans = match decoded {
        Ok(s) => s,
        Err(e) => return reject(StatusCode::BAD_REQUEST, e),
    };
    {
        let mut r = lock(&state);
        if json {
            r.stats.json_requests += 1;
        } else {
            r.stats.protobuf_requests += 1;
        }
        r.stats.spans += spans.len() as u64;
        r.spans.extend(spans);
    }
    // An empty ExportTraceServiceResponse: full success.
    if json {
        ([(header::CONTENT_TYPE, "application/json")], "{}").into_response()
    } else {
        (
            [(header::CONTENT_TYPE, "application/x-protobuf")],
            Vec::<u8>::new(),
        )
            .into_response()
    }
}

async fn spans(State(state): State<Shared>) -> Json<Vec<ReceivedSpan>> {
    Json(lock(&state).spans.clone())
}

async fn stats(State(state): State<Shared>) -> Json<OtlpStats> {
    Json(lock(&state).stats.clone())
}

async fn reset(State(state): State<Shared>) -> StatusCode {
    *lock(&state) = Recorded::default();
    StatusCode::NO_CONTENT
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Checks the ids of a span: 16-byte trace id and 8-byte span id, neither all zero; an 8-byte
/// parent or none.
fn check_ids(trace: &[u8], span: &[u8], parent: &[u8]) -> Result<(), String> {
    if trace.len() != 16 || trace.iter().all(|b| *b == 0) {
        return Err(format!("invalid trace id {:?}", hex(trace)));
    }
    if span.len() != 8 || span.iter().all(|b| *b == 0) {
        return Err(format!("invalid span id {:?}", hex(span)));
    }
    if !parent.is_empty() && parent.len() != 8 {
        return Err(format!("invalid parent span id {:?}", hex(parent)));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Protobuf

/// One field value of the protobuf wire format.
enum Wire<'a> {
    Varint(u64),
    Fixed64(u64),
    Bytes(&'a [u8]),
    /// A 4-byte field (span `flags`), skipped.
    Fixed32,
}

/// Reads the fields of one message, in order.
struct Fields<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Fields<'a> {
    fn new(buf: &'a [u8]) -> Self {
        Fields { buf, pos: 0 }
    }

    fn varint(&mut self) -> Result<u64, String> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = *self
                .buf
                .get(self.pos)
                .ok_or_else(|| "truncated varint".to_string())?;
            self.pos += 1;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err("varint longer than 10 bytes".to_string())
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|e| *e <= self.buf.len())
            .ok_or_else(|| "field runs past the end of the message".to_string())?;
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn next_field(&mut self) -> Result<Option<(u64, Wire<'a>)>, String> {
        if self.pos >= self.buf.len() {
            return Ok(None);
        }
        let tag = self.varint()?;
        let number = tag >> 3;
        if number == 0 {
            return Err("field number 0".to_string());
        }
        let value = match tag & 7 {
            0 => Wire::Varint(self.varint()?),
            1 => {
                let b = self.take(8)?;
                let mut a = [0u8; 8];
                a.copy_from_slice(b);
                Wire::Fixed64(u64::from_le_bytes(a))
            }
            2 => {
                let n = usize::try_from(self.varint()?).map_err(|e| e.to_string())?;
                Wire::Bytes(self.take(n)?)
            }
            5 => {
                self.take(4)?;
                Wire::Fixed32
            }
            w => return Err(format!("unsupported wire type {w}")),
        };
        Ok(Some((number, value)))
    }
}

fn text(b: &[u8]) -> Result<String, String> {
    String::from_utf8(b.to_vec()).map_err(|_| "string field is not UTF-8".to_string())
}

/// `AnyValue` as text.
fn pb_any_value(b: &[u8]) -> Result<String, String> {
    let mut f = Fields::new(b);
    let mut out = String::new();
    while let Some((n, v)) = f.next_field()? {
        out = match (n, v) {
            (1, Wire::Bytes(s)) => text(s)?,
            (2, Wire::Varint(x)) => (x != 0).to_string(),
            (3, Wire::Varint(x)) => (x as i64).to_string(),
            (4, Wire::Fixed64(x)) => f64::from_bits(x).to_string(),
            (5, _) => "<array>".to_string(),
            (6, _) => "<kvlist>".to_string(),
            (7, Wire::Bytes(s)) => hex(s),
            _ => out,
        };
    }
    Ok(out)
}

/// `KeyValue` → (key, value as text).
fn pb_key_value(b: &[u8]) -> Result<(String, String), String> {
    let mut f = Fields::new(b);
    let (mut key, mut value) = (String::new(), String::new());
    while let Some((n, v)) = f.next_field()? {
        match (n, v) {
            (1, Wire::Bytes(s)) => key = text(s)?,
            (2, Wire::Bytes(s)) => value = pb_any_value(s)?,
            _ => {}
        }
    }
    Ok((key, value))
}

fn pb_span(
    b: &[u8],
    service: &Option<String>,
    scope: &Option<String>,
) -> Result<ReceivedSpan, String> {
    let mut f = Fields::new(b);
    let (mut trace, mut span, mut parent): (&[u8], &[u8], &[u8]) = (&[], &[], &[]);
    let mut s = ReceivedSpan {
        trace_id: String::new(),
        span_id: String::new(),
        parent_span_id: None,
        name: String::new(),
        kind: 0,
        start_unix_nano: 0,
        end_unix_nano: 0,
        attributes: BTreeMap::new(),
        status_code: 0,
        status_message: String::new(),
        service_name: service.clone(),
        scope: scope.clone(),
    };
    while let Some((n, v)) = f.next_field()? {
        match (n, v) {
            (1, Wire::Bytes(x)) => trace = x,
            (2, Wire::Bytes(x)) => span = x,
            (4, Wire::Bytes(x)) => parent = x,
            (5, Wire::Bytes(x)) => s.name = text(x)?,
            (6, Wire::Varint(x)) => s.kind = x as i64,
            (7, Wire::Fixed64(x)) => s.start_unix_nano = x,
            (8, Wire::Fixed64(x)) => s.end_unix_nano = x,
            (9, Wire::Bytes(x)) => {
                let (k, v) = pb_key_value(x)?;
                s.attributes.insert(k, v);
            }
            (15, Wire::Bytes(x)) => {
                let mut st = Fields::new(x);
                while let Some((n, v)) = st.next_field()? {
                    match (n, v) {
                        (2, Wire::Bytes(m)) => s.status_message = text(m)?,
                        (3, Wire::Varint(c)) => s.status_code = c as i64,
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    check_ids(trace, span, parent)?;
    s.trace_id = hex(trace);
    s.span_id = hex(span);
    s.parent_span_id = (!parent.is_empty()).then(|| hex(parent));
    Ok(s)
}

/// The spans of an `ExportTraceServiceRequest`.
pub fn decode_protobuf(body: &[u8]) -> Result<Vec<ReceivedSpan>, String> {
    let mut out = Vec::new();
    let mut request = Fields::new(body);
    while let Some((n, v)) = request.next_field()? {
        let (1, Wire::Bytes(resource_spans)) = (n, v) else {
            continue;
        };
        let mut service = None;
        let mut scopes: Vec<&[u8]> = Vec::new();
        let mut rs = Fields::new(resource_spans);
        while let Some((n, v)) = rs.next_field()? {
            match (n, v) {
                (1, Wire::Bytes(resource)) => {
                    let mut r = Fields::new(resource);
                    while let Some((n, v)) = r.next_field()? {
                        if let (1, Wire::Bytes(kv)) = (n, v) {
                            let (k, v) = pb_key_value(kv)?;
                            if k == "service.name" {
                                service = Some(v);
                            }
                        }
                    }
                }
                (2, Wire::Bytes(ss)) => scopes.push(ss),
                _ => {}
            }
        }
        for ss in scopes {
            let mut scope = None;
            let mut spans = Vec::new();
            let mut f = Fields::new(ss);
            while let Some((n, v)) = f.next_field()? {
                match (n, v) {
                    (1, Wire::Bytes(sc)) => {
                        let mut g = Fields::new(sc);
                        while let Some((n, v)) = g.next_field()? {
                            if let (1, Wire::Bytes(name)) = (n, v) {
                                scope = Some(text(name)?);
                            }
                        }
                    }
                    (2, Wire::Bytes(span)) => spans.push(span),
                    _ => {}
                }
            }
            for span in spans {
                out.push(pb_span(span, &service, &scope)?);
            }
        }
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// JSON

fn json_any_value(v: &Value) -> String {
    let Some(obj) = v.as_object() else {
        return String::new();
    };
    if let Some(s) = obj.get("stringValue").and_then(Value::as_str) {
        return s.to_string();
    }
    if let Some(b) = obj.get("boolValue").and_then(Value::as_bool) {
        return b.to_string();
    }
    // int64 is a decimal string in OTLP/JSON (a number is accepted too).
    if let Some(i) = obj.get("intValue") {
        return i
            .as_str()
            .map(str::to_string)
            .unwrap_or_else(|| i.to_string());
    }
    if let Some(d) = obj.get("doubleValue") {
        return d.to_string();
    }
    if obj.contains_key("arrayValue") {
        return "<array>".to_string();
    }
    if obj.contains_key("kvlistValue") {
        return "<kvlist>".to_string();
    }
    obj.get("bytesValue")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

fn json_attributes(v: Option<&Value>) -> BTreeMap<String, String> {
    v.and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|kv| {
            let key = kv.get("key")?.as_str()?.to_string();
            Some((key, kv.get("value").map(json_any_value).unwrap_or_default()))
        })
        .collect()
}

fn json_u64(v: Option<&Value>) -> u64 {
    match v {
        Some(Value::String(s)) => s.parse().unwrap_or(0),
        Some(n) => n.as_u64().unwrap_or(0),
        None => 0,
    }
}

fn hex_bytes(s: &str) -> Result<Vec<u8>, String> {
    if !s.len().is_multiple_of(2) {
        return Err(format!("id {s:?} is not hex"));
    }
    (0..s.len())
        .step_by(2)
        .map(|i| {
            s.get(i..i + 2)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| format!("id {s:?} is not hex"))
        })
        .collect()
}

const KINDS: [&str; 6] = [
    "SPAN_KIND_UNSPECIFIED",
    "SPAN_KIND_INTERNAL",
    "SPAN_KIND_SERVER",
    "SPAN_KIND_CLIENT",
    "SPAN_KIND_PRODUCER",
    "SPAN_KIND_CONSUMER",
];

fn json_enum(v: Option<&Value>, names: &[&str]) -> i64 {
    match v {
        Some(Value::String(s)) => names.iter().position(|n| n == s).unwrap_or(0) as i64,
        Some(n) => n.as_i64().unwrap_or(0),
        None => 0,
    }
}

/// The spans of an OTLP/JSON `ExportTraceServiceRequest`.
pub fn decode_json(body: &Value) -> Result<Vec<ReceivedSpan>, String> {
    let mut out = Vec::new();
    let empty = Vec::new();
    let arr = |v: Option<&Value>| v.and_then(Value::as_array).unwrap_or(&empty).clone();
    for rs in arr(body.get("resourceSpans")) {
        let service = json_attributes(rs.pointer("/resource/attributes")).remove("service.name");
        for ss in arr(rs.get("scopeSpans")) {
            let scope = ss
                .pointer("/scope/name")
                .and_then(Value::as_str)
                .map(str::to_string);
            for sp in arr(ss.get("spans")) {
                let id = |k: &str| hex_bytes(sp.get(k).and_then(Value::as_str).unwrap_or(""));
                let (trace, span, parent) = (id("traceId")?, id("spanId")?, id("parentSpanId")?);
                check_ids(&trace, &span, &parent)?;
                out.push(ReceivedSpan {
                    trace_id: hex(&trace),
                    span_id: hex(&span),
                    parent_span_id: (!parent.is_empty()).then(|| hex(&parent)),
                    name: sp
                        .get("name")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_string(),
                    kind: json_enum(sp.get("kind"), &KINDS),
                    start_unix_nano: json_u64(sp.get("startTimeUnixNano")),
                    end_unix_nano: json_u64(sp.get("endTimeUnixNano")),
                    attributes: json_attributes(sp.get("attributes")),
                    status_code: json_enum(
                        sp.pointer("/status/code"),
                        &["STATUS_CODE_UNSET", "STATUS_CODE_OK", "STATUS_CODE_ERROR"],
                    ),
                    status_message: sp
                        .pointer("/status/message")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_string(),
                    service_name: service.clone(),
                    scope: scope.clone(),
                });
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn varint(mut v: u64, out: &mut Vec<u8>) {
        while v >= 0x80 {
            out.push((v as u8) | 0x80);
            v >>= 7;
        }
        out.push(v as u8);
    }

    fn bytes_field(n: u64, b: &[u8], out: &mut Vec<u8>) {
        varint(n << 3 | 2, out);
        varint(b.len() as u64, out);
        out.extend_from_slice(b);
    }

    fn kv(key: &str, value: &str) -> Vec<u8> {
        let mut any = Vec::new();
        bytes_field(1, value.as_bytes(), &mut any);
        let mut kv = Vec::new();
        bytes_field(1, key.as_bytes(), &mut kv);
        bytes_field(2, &any, &mut kv);
        kv
    }

    /// A request as the protobuf encoding lays it out, built by hand.
    fn request(trace: &[u8], parent: &[u8]) -> Vec<u8> {
        let mut span = Vec::new();
        bytes_field(1, trace, &mut span);
        bytes_field(2, &[1, 2, 3, 4, 5, 6, 7, 8], &mut span);
        if !parent.is_empty() {
            bytes_field(4, parent, &mut span);
        }
        bytes_field(5, b"secflow.transform", &mut span);
        varint(6 << 3, &mut span);
        varint(5, &mut span);
        varint(7 << 3 | 1, &mut span);
        span.extend_from_slice(&10u64.to_le_bytes());
        varint(8 << 3 | 1, &mut span);
        span.extend_from_slice(&20u64.to_le_bytes());
        bytes_field(9, &kv("secflow.stage", "xform"), &mut span);
        let mut status = Vec::new();
        bytes_field(2, b"boom", &mut status);
        varint(3 << 3, &mut status);
        varint(2, &mut status);
        bytes_field(15, &status, &mut span);
        let mut scope = Vec::new();
        bytes_field(1, b"secflow", &mut scope);
        let mut ss = Vec::new();
        bytes_field(1, &scope, &mut ss);
        bytes_field(2, &span, &mut ss);
        let mut resource = Vec::new();
        bytes_field(1, &kv("service.name", "svc"), &mut resource);
        let mut rs = Vec::new();
        bytes_field(1, &resource, &mut rs);
        bytes_field(2, &ss, &mut rs);
        let mut req = Vec::new();
        bytes_field(1, &rs, &mut req);
        req
    }

    #[test]
    fn protobuf_spans_with_ids_parent_status_and_resource() {
        let trace: Vec<u8> = (1..=16).collect();
        let spans = decode_protobuf(&request(&trace, &[9; 8])).unwrap();
        assert_eq!(spans.len(), 1);
        let s = &spans[0];
        assert_eq!(s.trace_id, "0102030405060708090a0b0c0d0e0f10");
        assert_eq!(s.span_id, "0102030405060708");
        assert_eq!(s.parent_span_id.as_deref(), Some("0909090909090909"));
        assert_eq!(s.name, "secflow.transform");
        assert_eq!((s.kind, s.start_unix_nano, s.end_unix_nano), (5, 10, 20));
        assert_eq!(s.attr("secflow.stage"), Some("xform"));
        assert_eq!((s.status_code, s.status_message.as_str()), (2, "boom"));
        assert_eq!(s.service_name.as_deref(), Some("svc"));
        assert_eq!(s.scope.as_deref(), Some("secflow"));
        let root = decode_protobuf(&request(&trace, &[])).unwrap();
        assert_eq!(root[0].parent_span_id, None);
    }

    #[test]
    fn protobuf_with_bad_ids_or_truncated_is_refused() {
        assert!(decode_protobuf(&request(&[0; 16], &[])).is_err());
        assert!(decode_protobuf(&request(&[1; 15], &[])).is_err());
        let good = request(&[1; 16], &[]);
        assert!(decode_protobuf(&good[..good.len() - 3]).is_err());
        assert!(decode_protobuf(&[]).unwrap().is_empty());
    }

    #[test]
    fn json_spans() {
        let body = serde_json::json!({"resourceSpans": [{
            "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "svc"}}]},
            "scopeSpans": [{"scope": {"name": "secflow"}, "spans": [{
                "traceId": "5b8efff798038103d269b633813fc60c",
                "spanId": "eee19b7ec3c1b174",
                "parentSpanId": "",
                "name": "secflow.produce",
                "kind": 4,
                "startTimeUnixNano": "1544712660000000000",
                "endTimeUnixNano": "1544712661000000000",
                "attributes": [{"key": "n", "value": {"intValue": "3"}}],
                "status": {"code": 1}
            }]}]
        }]});
        let spans = decode_json(&body).unwrap();
        assert_eq!(spans.len(), 1);
        assert_eq!(spans[0].trace_id, "5b8efff798038103d269b633813fc60c");
        assert_eq!(spans[0].parent_span_id, None);
        assert_eq!(spans[0].attr("n"), Some("3"));
        assert_eq!(spans[0].start_unix_nano, 1_544_712_660_000_000_000);
        assert_eq!(spans[0].service_name.as_deref(), Some("svc"));
        let bad = serde_json::json!({"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "xy", "spanId": "eee19b7ec3c1b174"}]}]}]});
        assert!(decode_json(&bad).is_err());
    }

    #[tokio::test]
    async fn receives_over_http_in_both_encodings() {
        let r = OtlpReceiver::start(SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .unwrap();
        let client = hyper_post(r.addr(), "application/x-protobuf", request(&[7; 16], &[])).await;
        assert_eq!(client, 200);
        let json = serde_json::json!({"resourceSpans": [{"scopeSpans": [{"spans": [{
            "traceId": "5b8efff798038103d269b633813fc60c", "spanId": "eee19b7ec3c1b174", "name": "x"}]}]}]});
        let status = hyper_post(r.addr(), "application/json", json.to_string().into_bytes()).await;
        assert_eq!(status, 200);
        let status = hyper_post(r.addr(), "application/json", b"{not json".to_vec()).await;
        assert_eq!(status, 400);
        let status = hyper_post(r.addr(), "text/plain", b"x".to_vec()).await;
        assert_eq!(status, 415);
        let stats = r.stats();
        assert_eq!(
            (
                stats.protobuf_requests,
                stats.json_requests,
                stats.rejected,
                stats.spans
            ),
            (1, 1, 2, 2)
        );
        assert_eq!(r.spans()[0].trace_id, "07".repeat(16));
        r.shutdown().await;
    }

    /// A plain HTTP/1.1 POST over a TCP socket; returns the status code.
    async fn hyper_post(addr: SocketAddr, content_type: &str, body: Vec<u8>) -> u16 {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        let head = format!(
            "POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        );
        s.write_all(head.as_bytes()).await.unwrap();
        s.write_all(&body).await.unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).await.unwrap();
        out.split(' ').nth(1).unwrap().parse().unwrap()
    }
}
