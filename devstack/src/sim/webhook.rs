//! Webhook receiver simulator: verifies `X-Secflow-Signature` (HMAC-SHA256 over
//! `t + "." + body`, constant-time comparison, timestamp tolerance, replay rejection), checks
//! bearer/basic auth, records the verified bodies and the event ids in them.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, Uri};
use axum::response::Response;
use axum::Router;
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;

use super::recorder::{event_id_of, ReceivedRequest};
use super::{decode_body, header, header_pairs, json as json_resp, Shared, SimError};

/// Settings of the webhook receiver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookSimConfig {
    /// Signing secrets the receiver knows (a request verifies when any `v1` matches any of
    /// them); empty: signatures are not checked.
    pub secrets: Vec<String>,
    /// The signature header.
    pub signature_header: String,
    /// Largest accepted distance between the signature's `t` and the receiver's clock.
    pub tolerance_secs: u64,
    /// Required bearer token, if any.
    pub bearer: Option<String>,
    /// Required basic-auth user and password, if any.
    pub basic: Option<(String, String)>,
    /// JSON pointers tried, in order, to find the event id in each event (array element or
    /// body); default: `/event_id`, `/event/id` (ECS), `/metadata/uid` (OCSF), `/id`.
    pub id_pointers: Vec<String>,
}

/// The default [`WebhookSimConfig::id_pointers`], which [`default_ids`] reads without building a
/// JSON tree.
const DEFAULT_ID_POINTERS: [&str; 4] = ["/event_id", "/event/id", "/metadata/uid", "/id"];

/// Only the fields the default id pointers look at; serde skips the rest without allocating.
#[derive(serde::Deserialize)]
struct IdFields {
    event_id: Option<Value>,
    event: Option<NestedId>,
    metadata: Option<NestedUid>,
    id: Option<Value>,
}

#[derive(serde::Deserialize)]
struct NestedId {
    id: Option<Value>,
}

#[derive(serde::Deserialize)]
struct NestedUid {
    uid: Option<Value>,
}

impl IdFields {
    /// The first string among `/event_id`, `/event/id`, `/metadata/uid`, `/id`.
    fn id(self) -> Option<String> {
        let text = |v: Option<Value>| match v {
            Some(Value::String(s)) => Some(s),
            _ => None,
        };
        text(self.event_id)
            .or_else(|| text(self.event.and_then(|e| e.id)))
            .or_else(|| text(self.metadata.and_then(|m| m.uid)))
            .or_else(|| text(self.id))
    }
}

/// The event ids of a body (an array of events or one event) for the default id pointers,
/// or `None` when the body does not read that way (the generic path then decides). Parsing
/// every ~1 KB event into a `serde_json::Value` made the simulator the load test's largest CPU
/// user after the broker.
fn default_ids(body: &[u8]) -> Option<Vec<Option<String>>> {
    match body.iter().find(|b| !b.is_ascii_whitespace())? {
        b'[' => serde_json::from_slice::<Vec<IdFields>>(body)
            .ok()
            .map(|docs| docs.into_iter().map(IdFields::id).collect()),
        b'{' => serde_json::from_slice::<IdFields>(body)
            .ok()
            .map(|doc| vec![doc.id()]),
        _ => None,
    }
}

impl WebhookSimConfig {
    /// Verifies signatures made with `secret`, tolerance 300 s, no auth.
    pub fn new(secret: impl Into<String>) -> Self {
        WebhookSimConfig {
            secrets: vec![secret.into()],
            signature_header: "X-Secflow-Signature".to_string(),
            tolerance_secs: 300,
            bearer: None,
            basic: None,
            id_pointers: DEFAULT_ID_POINTERS.map(str::to_string).to_vec(),
        }
    }
}

#[derive(Debug)]
pub(crate) struct WebhookApp {
    config: WebhookSimConfig,
    shared: Arc<Shared>,
    /// Signatures (hex `v1`) already accepted → their `t`.
    seen: Mutex<HashMap<String, u64>>,
}

impl WebhookApp {
    pub fn new(config: WebhookSimConfig, shared: Arc<Shared>) -> Result<Self, SimError> {
        if config.secrets.iter().any(String::is_empty) {
            return Err(SimError::Config("webhook simulator: empty secret".into()));
        }
        if axum::http::HeaderName::from_bytes(config.signature_header.as_bytes()).is_err() {
            return Err(SimError::Config(format!(
                "webhook simulator: `{}` is not a header name",
                config.signature_header
            )));
        }
        Ok(WebhookApp {
            config,
            shared,
            seen: Mutex::new(HashMap::new()),
        })
    }

    fn seen(&self) -> MutexGuard<'_, HashMap<String, u64>> {
        self.seen.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn error(status: u16, message: &str) -> Response {
    json_resp(status, json!({ "error": message }))
}

/// The receiver's answer for an injected status.
pub(crate) fn fault_response(status: u16) -> Response {
    json_resp(
        status,
        json!({ "error": "simulated fault", "status": status }),
    )
}

pub(crate) fn router(app: Arc<WebhookApp>) -> Router {
    Router::new().fallback(receive).with_state(app)
}

/// A parsed signature header: `t` and the `v1` values (other schemes ignored).
#[derive(Debug, PartialEq, Eq)]
struct SignatureHeader {
    t: u64,
    v1: Vec<String>,
}

fn parse_signature(value: &str) -> Option<SignatureHeader> {
    let mut t = None;
    let mut v1 = Vec::new();
    for part in value.split(',') {
        let (k, v) = part.trim().split_once('=')?;
        match k {
            "t" => t = Some(v.parse::<u64>().ok()?),
            "v1" => v1.push(v.to_string()),
            _ => {}
        }
    }
    (!v1.is_empty()).then_some(SignatureHeader { t: t?, v1 })
}

fn hex_decode(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// Whether `sig` (hex) is the HMAC of `t.body` under `secret`; constant-time comparison.
fn verifies(secret: &str, t: u64, body: &[u8], sig: &str) -> bool {
    let Some(bytes) = hex_decode(sig) else {
        return false;
    };
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.as_bytes()) else {
        return false;
    };
    mac.update(t.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac.verify_slice(&bytes).is_ok()
}

fn check_auth(app: &WebhookApp, headers: &HeaderMap) -> bool {
    use base64::Engine as _;
    let auth = header(headers, "authorization").unwrap_or_default();
    let eq = |a: &str, b: &str| -> bool {
        use subtle::ConstantTimeEq as _;
        a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
    };
    if let Some(token) = &app.config.bearer {
        if !eq(auth, &format!("Bearer {token}")) {
            return false;
        }
    }
    if let Some((u, p)) = &app.config.basic {
        let expected = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"))
        );
        if !eq(auth, &expected) {
            return false;
        }
    }
    true
}

async fn receive(
    State(app): State<Arc<WebhookApp>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (resp, decoded) = receive_inner(&app, &method, &headers, &body);
    app.shared.rec().request(ReceivedRequest {
        method: method.to_string(),
        path: uri.to_string(),
        headers: header_pairs(&headers),
        body: decoded,
        status: resp.status().as_u16(),
    });
    resp
}

fn receive_inner(
    app: &WebhookApp,
    method: &Method,
    headers: &HeaderMap,
    body: &[u8],
) -> (Response, Vec<u8>) {
    if method != Method::POST && method != Method::PUT {
        return (error(405, "method not allowed"), Vec::new());
    }
    if !check_auth(app, headers) {
        app.shared.rec().stats.auth_failures += 1;
        return (error(401, "unauthorized"), Vec::new());
    }
    let decoded = match decode_body(headers, body, app.shared.max_body_bytes) {
        Ok(b) => b,
        Err(e) => {
            app.shared.rec().stats.bad_requests += 1;
            return (error(400, &e), Vec::new());
        }
    };
    if !app.config.secrets.is_empty() {
        let Some(sig) = header(headers, &app.config.signature_header).and_then(parse_signature)
        else {
            app.shared.rec().stats.bad_signatures += 1;
            return (error(400, "missing or malformed signature header"), decoded);
        };
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        if now.abs_diff(sig.t) > app.config.tolerance_secs {
            app.shared.rec().stats.bad_signatures += 1;
            return (
                error(401, "signature timestamp outside the tolerance"),
                decoded,
            );
        }
        let matched: Vec<&String> = sig
            .v1
            .iter()
            .filter(|v| {
                app.config
                    .secrets
                    .iter()
                    .any(|s| verifies(s, sig.t, &decoded, v))
            })
            .collect();
        if matched.is_empty() {
            app.shared.rec().stats.bad_signatures += 1;
            return (error(401, "signature mismatch"), decoded);
        }
        let mut seen = app.seen();
        if matched.iter().any(|v| seen.contains_key(v.as_str())) {
            drop(seen);
            app.shared.rec().stats.replays += 1;
            return (error(409, "replayed signature"), decoded);
        }
        // Older signatures fail the tolerance check anyway.
        let horizon = now.saturating_sub(app.config.tolerance_secs * 2);
        seen.retain(|_, t| *t >= horizon);
        for v in matched {
            seen.insert(v.clone(), sig.t);
        }
    }
    if app.config.id_pointers == DEFAULT_ID_POINTERS {
        if let Some(ids) = default_ids(&decoded) {
            let mut rec = app.shared.rec();
            for id in &ids {
                rec.accept(id.as_deref());
            }
            drop(rec);
            return (json_resp(200, json!({ "received": ids.len() })), decoded);
        }
    }
    let events: Vec<Value> = match serde_json::from_slice::<Value>(&decoded) {
        Ok(Value::Array(items)) => items,
        Ok(v @ Value::Object(_)) => vec![v],
        _ => {
            app.shared.rec().stats.bad_requests += 1;
            return (error(400, "body is not a JSON object or array"), decoded);
        }
    };
    {
        let mut rec = app.shared.rec();
        for e in &events {
            let id = app
                .config
                .id_pointers
                .iter()
                .find_map(|p| e.pointer(p).and_then(Value::as_str))
                .map(str::to_string)
                .or_else(|| event_id_of(e));
            rec.accept(id.as_deref());
        }
    }
    (json_resp(200, json!({ "received": events.len() })), decoded)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn ids_are_read_without_a_json_tree_as_the_pointers_would() {
        let body = br#"[{"event": {"id": "ecs-1", "kind": "alert"}, "x": [1, {"y": 2}]},
            {"metadata": {"uid": "ocsf-1"}}, {"event_id": 7, "id": "top-1"}, {"event_id": "c-1"},
            {"nothing": true}]"#;
        let ids = default_ids(body).expect("reads");
        let want = [
            Some("ecs-1"),
            Some("ocsf-1"),
            Some("top-1"),
            Some("c-1"),
            None,
        ];
        assert_eq!(ids.iter().map(Option::as_deref).collect::<Vec<_>>(), want);
        // The same through the generic path (JSON pointers on a tree).
        let tree: Vec<Value> = serde_json::from_slice(body).expect("json");
        let generic: Vec<Option<&str>> = tree
            .iter()
            .map(|e| {
                DEFAULT_ID_POINTERS
                    .iter()
                    .find_map(|p| e.pointer(p).and_then(Value::as_str))
            })
            .collect();
        assert_eq!(generic, want);
        assert_eq!(
            default_ids(br#" {"event": {"id": "one"}}"#),
            Some(vec![Some("one".to_string())])
        );
        // Anything else is left to the generic path.
        assert_eq!(default_ids(br#"[{"event": "not an object"}]"#), None);
        assert_eq!(default_ids(b"not json"), None);
        assert_eq!(default_ids(b"[1, 2]"), None);
    }

    #[test]
    fn signature_header_parsing() {
        assert_eq!(
            parse_signature("t=5,v1=ab,v1=cd"),
            Some(SignatureHeader {
                t: 5,
                v1: vec!["ab".into(), "cd".into()]
            })
        );
        assert_eq!(
            parse_signature("t=5,v0=ab,v1=cd").map(|s| s.v1.len()),
            Some(1)
        );
        for bad in ["", "t=5", "v1=ab", "t=x,v1=ab", "t=5;v1=ab", "garbage"] {
            assert_eq!(parse_signature(bad), None, "{bad}");
        }
        assert_eq!(hex_decode("0aFf"), Some(vec![0x0a, 0xff]));
        assert_eq!(hex_decode("0g"), None);
        assert_eq!(hex_decode("abc"), None);
        assert_eq!(hex_decode("é1"), None);
    }
}
