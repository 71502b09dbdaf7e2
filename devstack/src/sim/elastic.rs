//! Elasticsearch simulator: `_bulk` (NDJSON `create`/`index`/`delete`), per-item results in the
//! real response shape, 409 on a duplicate `_id` per index, API key or basic auth.

// Helpers return the vendor's error answer itself (built once per failing request).
#![allow(clippy::result_large_err)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, Method, Uri};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use serde_json::{json, Value};

use super::recorder::{event_id_of, ReceivedRequest};
use super::{decode_body, header, header_pairs, json as json_resp, Shared, SimError};

/// Settings of the Elasticsearch simulator. No credentials configured: no auth required.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ElasticSimConfig {
    /// Accepted API key (`Authorization: ApiKey <encoded>`).
    pub api_key: Option<String>,
    /// Accepted basic-auth user and password.
    pub basic: Option<(String, String)>,
}

#[derive(Debug)]
pub(crate) struct ElasticApp {
    config: ElasticSimConfig,
    shared: Arc<Shared>,
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    /// index → _id → version.
    indices: HashMap<String, HashMap<String, u64>>,
    seq_no: u64,
    auto_id: u64,
}

impl ElasticApp {
    pub fn new(config: ElasticSimConfig, shared: Arc<Shared>) -> Result<Self, SimError> {
        Ok(ElasticApp {
            config,
            shared,
            inner: Mutex::new(Inner::default()),
        })
    }

    fn inner(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

pub(crate) fn is_data_path(path: &str) -> bool {
    path.trim_end_matches('/').ends_with("/_bulk")
}

/// Elasticsearch's error body.
fn es_error(status: u16, ty: &str, reason: &str) -> Response {
    json_resp(
        status,
        json!({
            "error": {
                "root_cause": [{ "type": ty, "reason": reason }],
                "type": ty,
                "reason": reason,
            },
            "status": status,
        }),
    )
}

/// Elasticsearch's answer for an injected status.
pub(crate) fn fault_response(status: u16) -> Response {
    match status {
        429 => es_error(
            429,
            "es_rejected_execution_exception",
            "rejected execution of coordinating operation [coordinating_and_primary_bytes=0, \
             replica_bytes=0, all_bytes=0, coordinating_operation_bytes=0, \
             max_coordinating_and_primary_bytes=0]",
        ),
        503 => es_error(
            503,
            "cluster_block_exception",
            "blocked by: [SERVICE_UNAVAILABLE/1/state not recovered / initialized];",
        ),
        401 => es_error(
            401,
            "security_exception",
            "missing authentication credentials",
        ),
        413 => json_resp(413, json!({})),
        s if s >= 500 => es_error(s, "exception", "simulated failure"),
        s => es_error(s, "illegal_argument_exception", "simulated failure"),
    }
}

pub(crate) fn router(app: Arc<ElasticApp>) -> Router {
    Router::new()
        .route("/", get(root))
        .route("/_bulk", post(bulk).put(bulk))
        .route("/{index}/_bulk", post(bulk_index).put(bulk_index))
        .with_state(app)
}

async fn root() -> Response {
    json_resp(
        200,
        json!({
            "name": "secflow-sim",
            "cluster_name": "secflow-sim",
            "version": { "number": "8.15.0", "build_flavor": "default" },
            "tagline": "You Know, for Search",
        }),
    )
}

fn check_auth(app: &ElasticApp, headers: &HeaderMap, path: &str) -> Result<(), Response> {
    use base64::Engine as _;
    if app.config.api_key.is_none() && app.config.basic.is_none() {
        return Ok(());
    }
    let unauthorized = |reason: String| {
        app.shared.rec().stats.auth_failures += 1;
        let mut r = es_error(401, "security_exception", &reason);
        r.headers_mut().insert(
            "www-authenticate",
            HeaderValue::from_static("Basic realm=\"security\", charset=\"UTF-8\", ApiKey"),
        );
        Err(r)
    };
    let Some(auth) = header(headers, "authorization") else {
        return unauthorized(format!(
            "missing authentication credentials for REST request [{path}]"
        ));
    };
    let (scheme, value) = auth.trim().split_once(' ').unwrap_or((auth, ""));
    let ok = if scheme.eq_ignore_ascii_case("apikey") {
        app.config.api_key.as_deref() == Some(value.trim())
    } else if scheme.eq_ignore_ascii_case("basic") {
        let expected = app
            .config
            .basic
            .as_ref()
            .map(|(u, p)| base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}")));
        expected.as_deref() == Some(value.trim())
    } else {
        false
    };
    if ok {
        Ok(())
    } else {
        unauthorized(format!(
            "unable to authenticate with provided credentials and anonymous access is not \
             allowed for this request [{path}]"
        ))
    }
}

async fn bulk(
    State(app): State<Arc<ElasticApp>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    handle(&app, method, uri, headers, body, None)
}

async fn bulk_index(
    State(app): State<Arc<ElasticApp>>,
    Path(index): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    handle(&app, method, uri, headers, body, Some(index))
}

fn handle(
    app: &ElasticApp,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
    path_index: Option<String>,
) -> Response {
    let (resp, decoded) = bulk_inner(app, &uri, &headers, &body, path_index);
    app.shared.rec().request(ReceivedRequest {
        method: method.to_string(),
        path: uri.to_string(),
        headers: header_pairs(&headers),
        body: decoded,
        status: resp.status().as_u16(),
    });
    resp
}

/// One parsed bulk action.
struct Action {
    op: String,
    index: String,
    id: Option<String>,
    source: Option<Result<Value, String>>,
}

fn parse_bulk(body: &[u8], path_index: Option<&str>) -> Result<Vec<Action>, Response> {
    if !body.is_empty() && !body.ends_with(b"\n") {
        return Err(es_error(
            400,
            "illegal_argument_exception",
            "The bulk request must be terminated by a newline [\\n]",
        ));
    }
    let mut lines = body
        .split(|b| *b == b'\n')
        .enumerate()
        .filter(|(_, l)| !l.iter().all(u8::is_ascii_whitespace));
    let mut actions = Vec::new();
    while let Some((n, line)) = lines.next() {
        let malformed = || {
            es_error(
                400,
                "illegal_argument_exception",
                &format!(
                    "Malformed action/metadata line [{}], expected START_OBJECT or END_OBJECT",
                    n + 1
                ),
            )
        };
        let v: Value = serde_json::from_slice(line).map_err(|_| malformed())?;
        let obj = v
            .as_object()
            .filter(|o| o.len() == 1)
            .ok_or_else(malformed)?;
        let (op, meta) = obj.iter().next().ok_or_else(malformed)?;
        if !matches!(op.as_str(), "create" | "index" | "delete" | "update") {
            return Err(es_error(
                400,
                "illegal_argument_exception",
                &format!("Malformed action/metadata line [{}], expected one of [create, delete, index, update] but found [{op}]", n + 1),
            ));
        }
        let index = meta
            .get("_index")
            .and_then(Value::as_str)
            .or(path_index)
            .map(str::to_string)
            .ok_or_else(|| {
                es_error(
                    400,
                    "action_request_validation_exception",
                    "Validation Failed: 1: index is missing;",
                )
            })?;
        let id = meta.get("_id").and_then(Value::as_str).map(str::to_string);
        let source = if op == "delete" {
            None
        } else {
            let (_, src) = lines.next().ok_or_else(|| {
                es_error(
                    400,
                    "action_request_validation_exception",
                    "Validation Failed: 1: source is missing;",
                )
            })?;
            Some(
                serde_json::from_slice::<Value>(src)
                    .map_err(|e| format!("[1:1] failed to parse: {e}"))
                    .and_then(|v| {
                        if v.is_object() {
                            Ok(v)
                        } else {
                            Err("[1:1] failed to parse: not an object".to_string())
                        }
                    }),
            )
        };
        actions.push(Action {
            op: op.clone(),
            index,
            id,
            source,
        });
    }
    Ok(actions)
}

fn item_error(status: u16, id: &str) -> (&'static str, String) {
    match status {
        429 => (
            "es_rejected_execution_exception",
            "rejected execution of primary operation [coordinating_and_primary_bytes=0]"
                .to_string(),
        ),
        400 => (
            "mapper_parsing_exception",
            format!("failed to parse field [simulated] of type [long] in document with id '{id}'"),
        ),
        503 => (
            "unavailable_shards_exception",
            "[0] primary shard is not active Timeout: [1m]".to_string(),
        ),
        409 => (
            "version_conflict_engine_exception",
            format!("[{id}]: version conflict, document already exists (current version [1])"),
        ),
        404 => (
            "document_missing_exception",
            format!("[{id}]: document missing"),
        ),
        s if s >= 500 => ("exception", "simulated item failure".to_string()),
        _ => (
            "illegal_argument_exception",
            "simulated item failure".to_string(),
        ),
    }
}

fn bulk_inner(
    app: &ElasticApp,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
    path_index: Option<String>,
) -> (Response, Vec<u8>) {
    let started = Instant::now();
    if let Err(r) = check_auth(app, headers, uri.path()) {
        return (r, Vec::new());
    }
    let ct = header(headers, "content-type")
        .unwrap_or_default()
        .to_ascii_lowercase();
    if !(ct.starts_with("application/x-ndjson") || ct.starts_with("application/json")) {
        app.shared.rec().stats.bad_requests += 1;
        let r = json_resp(
            406,
            json!({ "error": format!("Content-Type header [{ct}] is not supported"), "status": 406 }),
        );
        return (r, Vec::new());
    }
    let decoded = match decode_body(headers, body, app.shared.max_body_bytes) {
        Ok(b) => b,
        Err(e) => {
            app.shared.rec().stats.bad_requests += 1;
            return (es_error(400, "parse_exception", &e), Vec::new());
        }
    };
    let actions = match parse_bulk(&decoded, path_index.as_deref()) {
        Ok(a) => a,
        Err(r) => {
            app.shared.rec().stats.bad_requests += 1;
            return (r, decoded);
        }
    };
    let mut items = Vec::with_capacity(actions.len());
    let mut errors = false;
    for a in actions {
        let id = match &a.id {
            Some(id) => id.clone(),
            None => {
                let mut inner = app.inner();
                inner.auto_id += 1;
                format!("sim-{:016x}", inner.auto_id)
            }
        };
        let fail = |status: u16, ty: &str, reason: String| {
            json!({ a.op.clone(): {
                "_index": a.index, "_id": id, "status": status,
                "error": { "type": ty, "reason": reason, "index_uuid": "c2ltLWluZGV4LXV1aWQ", "shard": "0", "index": a.index },
            }})
        };
        let injected = app.shared.faults().item_fault(&id);
        if let Some(status) = injected {
            app.shared.rec().stats.item_faults += 1;
            let (ty, reason) = item_error(status, &id);
            items.push(fail(status, ty, reason));
            errors = true;
            continue;
        }
        let source = match &a.source {
            Some(Err(reason)) => {
                items.push(fail(400, "document_parsing_exception", reason.clone()));
                errors = true;
                continue;
            }
            Some(Ok(v)) => Some(v),
            None => None,
        };
        let mut inner = app.inner();
        inner.seq_no += 1;
        let seq_no = inner.seq_no;
        let docs = inner.indices.entry(a.index.clone()).or_default();
        let existing = docs.get(&id).copied();
        let (status, result, version) = match (a.op.as_str(), existing) {
            ("create", Some(v)) => {
                drop(inner);
                app.shared.rec().stats.conflicts += 1;
                let reason = format!(
                    "[{id}]: version conflict, document already exists (current version [{v}])"
                );
                items.push(fail(409, "version_conflict_engine_exception", reason));
                errors = true;
                continue;
            }
            ("create" | "index", None) => {
                docs.insert(id.clone(), 1);
                (201, "created", 1)
            }
            ("index", Some(v)) => {
                docs.insert(id.clone(), v + 1);
                (200, "updated", v + 1)
            }
            ("delete", Some(v)) => {
                docs.remove(&id);
                (200, "deleted", v + 1)
            }
            ("delete", None) => (404, "not_found", 1),
            (_, _) => {
                drop(inner);
                let (ty, reason) = item_error(400, &id);
                items.push(fail(400, ty, format!("{reason} (update is not simulated)")));
                errors = true;
                continue;
            }
        };
        drop(inner);
        if a.op != "delete" {
            let event_id = a.id.clone().or_else(|| source.and_then(event_id_of));
            app.shared.rec().accept(event_id.as_deref());
        }
        items.push(json!({ a.op.clone(): {
            "_index": a.index, "_id": id, "_version": version, "result": result,
            "_shards": { "total": 2, "successful": 1, "failed": 0 },
            "_seq_no": seq_no, "_primary_term": 1, "status": status,
        }}));
    }
    let took = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    let resp = json_resp(
        200,
        json!({ "took": took, "errors": errors, "items": items }),
    );
    (resp, decoded)
}
