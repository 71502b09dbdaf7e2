//! The schema registry over real HTTP: every endpoint, every error code, persistence, and a
//! round trip through `schema_registry_converter`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use apache_avro::types::Value as Avro;
use devstack::registry::{Compatibility, RegistryConfig, RegistryError, RegistryServer};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

const MEDIA_TYPE: &str = "application/vnd.schemaregistry.v1+json";

/// A running registry and a client for it.
struct Sr {
    server: RegistryServer,
    client: reqwest::Client,
}

impl Sr {
    async fn start() -> Sr {
        Sr::with_config(RegistryConfig::default()).await
    }

    async fn with_config(config: RegistryConfig) -> Sr {
        let server = RegistryServer::start("127.0.0.1:0".parse().unwrap(), config)
            .await
            .expect("registry starts");
        Sr {
            server,
            client: reqwest::Client::new(),
        }
    }

    /// Sends a request; returns the status and the body as JSON (`Null` when empty, a JSON
    /// string when not JSON).
    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        let mut req = self
            .client
            .request(method, format!("{}{path}", self.server.url()));
        if let Some(body) = body {
            req = req
                .header("content-type", MEDIA_TYPE)
                .body(body.to_string());
        }
        let resp = req.send().await.expect("request sent");
        let status = resp.status();
        let text = resp.text().await.unwrap();
        let value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        (status, value)
    }

    async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.call(Method::GET, path, None).await
    }

    async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.call(Method::POST, path, Some(body)).await
    }

    async fn put(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.call(Method::PUT, path, Some(body)).await
    }

    async fn delete(&self, path: &str) -> (StatusCode, Value) {
        self.call(Method::DELETE, path, None).await
    }

    /// Registers and returns the id, asserting success.
    async fn register(&self, subject: &str, schema: &str) -> u64 {
        let (status, body) = self
            .post(
                &format!("/subjects/{subject}/versions"),
                json!({ "schema": schema }),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "register {subject}: {body}");
        body["id"].as_u64().expect("id in response")
    }

    async fn set_subject_level(&self, subject: &str, level: &str) {
        let (status, body) = self
            .put(
                &format!("/config/{subject}"),
                json!({ "compatibility": level }),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
}

/// A record schema `R` with the given fields.
fn record(fields: Value) -> String {
    json!({ "type": "record", "name": "R", "namespace": "secflow.test", "fields": fields })
        .to_string()
}

fn v1() -> String {
    record(json!([{ "name": "host", "type": "string" }]))
}

/// v1 plus an optional field: backward and forward compatible with v1.
fn v2() -> String {
    record(json!([
        { "name": "host", "type": "string" },
        { "name": "port", "type": "int", "default": 0 }
    ]))
}

/// v1 plus a required field: not backward compatible with v1, but forward compatible.
fn v1_plus_required() -> String {
    record(json!([
        { "name": "host", "type": "string" },
        { "name": "severity", "type": "int" }
    ]))
}

fn assert_error(resp: &(StatusCode, Value), status: StatusCode, code: u64) {
    assert_eq!(resp.0, status, "{}", resp.1);
    assert_eq!(resp.1["error_code"], json!(code), "{}", resp.1);
    assert!(
        resp.1["message"].as_str().is_some_and(|m| !m.is_empty()),
        "message missing: {}",
        resp.1
    );
}

#[tokio::test]
async fn root_health_and_unknown_routes() {
    let sr = Sr::start().await;
    assert_eq!(sr.get("/").await, (StatusCode::OK, json!({})));
    assert_eq!(sr.get("/health").await.0, StatusCode::OK);
    assert_eq!(
        sr.get("/schemas/types").await,
        (StatusCode::OK, json!(["AVRO"]))
    );
    assert_error(&sr.get("/nope").await, StatusCode::NOT_FOUND, 404);
    assert_error(
        &sr.call(Method::PATCH, "/subjects", None).await,
        StatusCode::METHOD_NOT_ALLOWED,
        405,
    );
    assert_eq!(
        sr.server.url(),
        format!("http://{}", sr.server.local_addr())
    );
    sr.server.shutdown().await;
}

#[tokio::test]
async fn register_then_read_through_every_get_endpoint() {
    let sr = Sr::start().await;
    let id = sr.register("events-value", &v1()).await;
    assert_eq!(id, 1);
    let id2 = sr.register("events-value", &v2()).await;
    assert_eq!(id2, 2);

    assert_eq!(
        sr.get("/subjects").await,
        (StatusCode::OK, json!(["events-value"]))
    );
    assert_eq!(
        sr.get("/subjects/events-value/versions").await,
        (StatusCode::OK, json!([1, 2]))
    );
    assert_eq!(
        sr.get("/subjects/events-value/versions/1").await,
        (
            StatusCode::OK,
            json!({ "subject": "events-value", "version": 1, "id": 1, "schema": v1() })
        )
    );
    assert_eq!(
        sr.get("/subjects/events-value/versions/latest").await,
        (
            StatusCode::OK,
            json!({ "subject": "events-value", "version": 2, "id": 2, "schema": v2() })
        )
    );
    assert_eq!(
        sr.get("/subjects/events-value/versions/-1").await.1["version"],
        json!(2)
    );
    // The raw schema endpoint answers the schema itself.
    let (status, raw) = sr.get("/subjects/events-value/versions/1/schema").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(raw, serde_json::from_str::<Value>(&v1()).unwrap());

    // By id: no schemaType for AVRO, like Confluent.
    assert_eq!(
        sr.get("/schemas/ids/2").await,
        (StatusCode::OK, json!({ "schema": v2() }))
    );
    assert_eq!(
        sr.get("/schemas/ids/1/versions").await,
        (
            StatusCode::OK,
            json!([{ "subject": "events-value", "version": 1 }])
        )
    );
    assert_eq!(
        sr.get("/schemas/ids/1/subjects").await,
        (StatusCode::OK, json!(["events-value"]))
    );

    // Confluent's content type on every answer, errors included.
    for path in ["/subjects", "/schemas/ids/1", "/schemas/ids/99"] {
        let resp = sr
            .client
            .get(format!("{}{path}", sr.server.url()))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.headers()["content-type"], MEDIA_TYPE, "{path}");
    }
    sr.server.shutdown().await;
}

#[tokio::test]
async fn same_schema_same_id_and_formatting_is_ignored() {
    let sr = Sr::start().await;
    let id = sr.register("s", &v1()).await;
    // Same schema, other key order and whitespace.
    let reformatted = r#"{ "fields": [ { "type": "string", "name": "host" } ],
                           "namespace": "secflow.test", "name": "R", "type": "record" }"#;
    assert_eq!(sr.register("s", reformatted).await, id);
    assert_eq!(sr.register("s", &v1()).await, id);
    assert_eq!(
        sr.get("/subjects/s/versions").await,
        (StatusCode::OK, json!([1]))
    );
    // Re-registering an older version returns its id and adds no version.
    let id2 = sr.register("s", &v2()).await;
    assert_eq!(sr.register("s", &v1()).await, id);
    assert_eq!(
        sr.get("/subjects/s/versions").await,
        (StatusCode::OK, json!([1, 2]))
    );
    assert!(id2 > id);
    // A different default is a different schema (a new version), not the same one.
    let other_default = record(json!([
        { "name": "host", "type": "string" },
        { "name": "port", "type": "int", "default": 7 }
    ]));
    let id3 = sr.register("s", &other_default).await;
    assert!(id3 > id2);
    sr.server.shutdown().await;
}

#[tokio::test]
async fn same_schema_under_another_subject_reuses_the_global_id() {
    let sr = Sr::start().await;
    let a = sr.register("a-value", &v1()).await;
    let b = sr.register("b-value", &v1()).await;
    assert_eq!(a, b);
    assert_eq!(
        sr.get("/subjects/b-value/versions/1").await.1["id"],
        json!(a)
    );
    assert_eq!(
        sr.get(&format!("/schemas/ids/{a}/versions")).await.1,
        json!([
            { "subject": "a-value", "version": 1 },
            { "subject": "b-value", "version": 1 }
        ])
    );
    assert_eq!(
        sr.get(&format!("/schemas/ids/{a}/subjects")).await.1,
        json!(["a-value", "b-value"])
    );
    // A new schema gets the next id.
    assert_eq!(sr.register("b-value", &v2()).await, a + 1);
    sr.server.shutdown().await;
}

#[tokio::test]
async fn concurrent_registrations_of_one_schema_get_one_id() {
    let sr = Sr::start().await;
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let client = sr.client.clone();
        let url = format!("{}/subjects/c/versions", sr.server.url());
        tasks.push(tokio::spawn(async move {
            let resp = client
                .post(url)
                .json(&json!({ "schema": v1() }))
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), StatusCode::OK);
            resp.json::<Value>().await.unwrap()["id"].as_u64().unwrap()
        }));
    }
    for task in tasks {
        assert_eq!(task.await.unwrap(), 1);
    }
    assert_eq!(sr.get("/subjects/c/versions").await.1, json!([1]));
    sr.server.shutdown().await;
}

#[tokio::test]
async fn lookup_under_subject() {
    let sr = Sr::start().await;
    sr.register("s", &v1()).await;
    let id2 = sr.register("s", &v2()).await;
    assert_eq!(
        sr.post("/subjects/s", json!({ "schema": v2() })).await,
        (
            StatusCode::OK,
            json!({ "subject": "s", "version": 2, "id": id2, "schema": v2() })
        )
    );
    // Python's client sends these flags capitalised.
    assert_eq!(
        sr.post(
            "/subjects/s?normalize=False&deleted=False",
            json!({ "schema": v1(), "schemaType": "AVRO", "references": [] })
        )
        .await
        .1["version"],
        json!(1)
    );
    assert_error(
        &sr.post("/subjects/unknown", json!({ "schema": v1() }))
            .await,
        StatusCode::NOT_FOUND,
        40401,
    );
    assert_error(
        &sr.post("/subjects/s", json!({ "schema": v1_plus_required() }))
            .await,
        StatusCode::NOT_FOUND,
        40403,
    );
    assert_error(
        &sr.post("/subjects/s", json!({ "schema": "{\"type\":\"nope\"}" }))
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        42201,
    );
    sr.server.shutdown().await;
}

#[tokio::test]
async fn not_found_error_codes() {
    let sr = Sr::start().await;
    sr.register("s", &v1()).await;
    let resp = sr.get("/subjects/missing/versions").await;
    assert_error(&resp, StatusCode::NOT_FOUND, 40401);
    assert_eq!(resp.1["message"], json!("Subject 'missing' not found."));
    assert_error(
        &sr.get("/subjects/missing/versions/1").await,
        StatusCode::NOT_FOUND,
        40401,
    );
    assert_error(
        &sr.get("/subjects/missing/versions/latest").await,
        StatusCode::NOT_FOUND,
        40401,
    );
    let resp = sr.get("/subjects/s/versions/5").await;
    assert_error(&resp, StatusCode::NOT_FOUND, 40402);
    assert_eq!(resp.1["message"], json!("Version 5 not found."));
    assert_error(
        &sr.get("/subjects/s/versions/5/schema").await,
        StatusCode::NOT_FOUND,
        40402,
    );
    assert_error(
        &sr.get("/schemas/ids/999").await,
        StatusCode::NOT_FOUND,
        40403,
    );
    assert_error(
        &sr.get("/schemas/ids/abc").await,
        StatusCode::NOT_FOUND,
        40403,
    );
    assert_error(
        &sr.get("/schemas/ids/999/versions").await,
        StatusCode::NOT_FOUND,
        40403,
    );
    assert_error(
        &sr.get("/schemas/ids/999/subjects").await,
        StatusCode::NOT_FOUND,
        40403,
    );
    sr.server.shutdown().await;
}

#[tokio::test]
async fn invalid_version_is_42202() {
    let sr = Sr::start().await;
    sr.register("s", &v1()).await;
    for bad in ["abc", "0", "-2", "2147483648"] {
        let resp = sr.get(&format!("/subjects/s/versions/{bad}")).await;
        assert_error(&resp, StatusCode::UNPROCESSABLE_ENTITY, 42202);
        assert!(
            resp.1["message"].as_str().unwrap().contains(bad),
            "{}",
            resp.1
        );
    }
    // Checked before the subject, like Confluent.
    assert_error(
        &sr.get("/subjects/missing/versions/abc").await,
        StatusCode::UNPROCESSABLE_ENTITY,
        42202,
    );
    assert_error(
        &sr.delete("/subjects/s/versions/abc").await,
        StatusCode::UNPROCESSABLE_ENTITY,
        42202,
    );
    assert_error(
        &sr.post(
            "/compatibility/subjects/s/versions/xyz",
            json!({ "schema": v1() }),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        42202,
    );
    sr.server.shutdown().await;
}

#[tokio::test]
async fn invalid_schemas_and_bodies() {
    let sr = Sr::start().await;
    let bad_schemas = [
        json!({ "schema": "{\"type\":\"record\",\"name\":\"R\"}" }),
        json!({ "schema": "not json" }),
        json!({ "schema": "" }),
        json!({}),
        json!({ "schema": v1(), "schemaType": "JSON" }),
        json!({ "schema": v1(), "schemaType": "PROTOBUF" }),
        json!({ "schema": v1(), "schemaType": "XML" }),
        json!({ "schema": v1(), "references": [{ "name": "x.Y", "subject": "nope", "version": 1 }] }),
    ];
    for body in bad_schemas {
        assert_error(
            &sr.post("/subjects/s/versions", body.clone()).await,
            StatusCode::UNPROCESSABLE_ENTITY,
            42201,
        );
    }
    let resp = sr
        .post(
            "/subjects/s/versions",
            json!({ "schema": v1(), "schemaType": "JSON" }),
        )
        .await;
    assert!(
        resp.1["message"].as_str().unwrap().contains("only AVRO"),
        "{}",
        resp.1
    );
    // Nothing was registered by the failures.
    assert_eq!(sr.get("/subjects").await.1, json!([]));

    let url = format!("{}/subjects/s/versions", sr.server.url());
    // Malformed JSON: 400 with a JSON error body.
    let resp = sr
        .client
        .post(&url)
        .header("content-type", MEDIA_TYPE)
        .body("{\"schema\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        resp.json::<Value>().await.unwrap()["error_code"],
        json!(400)
    );
    // Well-formed JSON of the wrong shape: 422.
    assert_error(
        &sr.post("/subjects/s/versions", json!({ "schema": 5 }))
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        422,
    );
    assert_error(
        &sr.post("/subjects/s/versions", json!([1, 2])).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        422,
    );
    // Unsupported content type.
    let resp = sr
        .client
        .post(&url)
        .header("content-type", "text/plain")
        .body(json!({ "schema": v1() }).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(
        resp.json::<Value>().await.unwrap()["error_code"],
        json!(415)
    );
    sr.server.shutdown().await;
}

#[tokio::test]
async fn accepted_request_content_types() {
    let sr = Sr::start().await;
    let url = format!("{}/subjects/s/versions", sr.server.url());
    for content_type in [
        Some(MEDIA_TYPE),
        Some("application/json"),
        Some("application/json; charset=utf-8"),
        Some("application/octet-stream"),
        None,
    ] {
        let mut req = sr
            .client
            .post(&url)
            .body(json!({ "schema": v1() }).to_string());
        if let Some(ct) = content_type {
            req = req.header("content-type", ct);
        }
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK, "{content_type:?}");
        assert_eq!(resp.json::<Value>().await.unwrap(), json!({ "id": 1 }));
    }
    sr.server.shutdown().await;
}

#[tokio::test]
async fn incompatible_registration_is_409() {
    let sr = Sr::start().await;
    sr.register("s", &v1()).await;
    let resp = sr
        .post(
            "/subjects/s/versions",
            json!({ "schema": v1_plus_required() }),
        )
        .await;
    assert_error(&resp, StatusCode::CONFLICT, 409);
    let message = resp.1["message"].as_str().unwrap();
    assert!(
        message.starts_with(
            "Schema being registered is incompatible with an earlier schema for subject \"s\", details: ["
        ),
        "{message}"
    );
    assert!(
        message.contains("READER_FIELD_MISSING_DEFAULT_VALUE"),
        "{message}"
    );
    assert!(message.contains("severity"), "{message}");
    assert!(message.contains("{oldSchemaVersion: 1}"), "{message}");
    assert!(message.contains("{compatibility: 'BACKWARD'}"), "{message}");
    assert_eq!(sr.get("/subjects/s/versions").await.1, json!([1]));
    // Type changes are caught too.
    let retyped = record(json!([{ "name": "host", "type": "int" }]));
    assert_error(
        &sr.post("/subjects/s/versions", json!({ "schema": retyped }))
            .await,
        StatusCode::CONFLICT,
        409,
    );
    sr.server.shutdown().await;
}

#[tokio::test]
async fn compatibility_levels_and_directions() {
    let sr = Sr::start().await;
    // FORWARD: adding a required field is fine (old readers ignore it), removing one is not.
    sr.set_subject_level("fwd", "FORWARD").await;
    sr.register("fwd", &v1()).await;
    sr.register("fwd", &v1_plus_required()).await;
    let dropped = record(json!([{ "name": "severity", "type": "int" }]));
    assert_error(
        &sr.post("/subjects/fwd/versions", json!({ "schema": dropped }))
            .await,
        StatusCode::CONFLICT,
        409,
    );
    // FULL: needs both directions; an optional field passes, a required one does not.
    sr.set_subject_level("full", "FULL").await;
    sr.register("full", &v1()).await;
    assert_error(
        &sr.post(
            "/subjects/full/versions",
            json!({ "schema": v1_plus_required() }),
        )
        .await,
        StatusCode::CONFLICT,
        409,
    );
    sr.register("full", &v2()).await;
    // NONE: anything goes.
    sr.set_subject_level("none", "NONE").await;
    sr.register("none", &v1()).await;
    sr.register("none", &record(json!([{ "name": "host", "type": "int" }])))
        .await;
    sr.server.shutdown().await;
}

#[tokio::test]
async fn transitive_checks_all_versions_non_transitive_only_the_latest() {
    // v_a has `host: string`; v_b drops it; v_c brings `host` back as an int with a default.
    // v_c can read v_b's data (default fills `host`) but not v_a's (string is not an int).
    let v_a = v1();
    let v_b = record(json!([{ "name": "port", "type": "int", "default": 0 }]));
    let v_c = record(json!([
        { "name": "port", "type": "int", "default": 0 },
        { "name": "host", "type": "int", "default": 0 }
    ]));
    let sr = Sr::start().await;
    for (subject, level) in [("plain", "BACKWARD"), ("transitive", "BACKWARD_TRANSITIVE")] {
        sr.set_subject_level(subject, level).await;
        sr.register(subject, &v_a).await;
        sr.register(subject, &v_b).await;
    }
    // Non-transitive: only v_b is checked, so v_c is accepted.
    sr.register("plain", &v_c).await;
    assert_eq!(sr.get("/subjects/plain/versions").await.1, json!([1, 2, 3]));
    // Transitive: v_a is checked too, so v_c is rejected, naming version 1.
    let resp = sr
        .post("/subjects/transitive/versions", json!({ "schema": v_c }))
        .await;
    assert_error(&resp, StatusCode::CONFLICT, 409);
    assert!(
        resp.1["message"]
            .as_str()
            .unwrap()
            .contains("{oldSchemaVersion: 1}"),
        "{}",
        resp.1
    );
    // The compatibility endpoint agrees: latest follows the level, a number checks that one.
    for (path, expected) in [
        ("/compatibility/subjects/transitive/versions/latest", false),
        ("/compatibility/subjects/transitive/versions/2", true),
        ("/compatibility/subjects/transitive/versions/1", false),
        ("/compatibility/subjects/transitive/versions", false),
        ("/compatibility/subjects/plain/versions/latest", true),
        ("/compatibility/subjects/plain/versions", true),
    ] {
        assert_eq!(
            sr.post(path, json!({ "schema": v_c })).await,
            (StatusCode::OK, json!({ "is_compatible": expected })),
            "{path}"
        );
    }
    sr.server.shutdown().await;
}

#[tokio::test]
async fn compatibility_endpoint() {
    let sr = Sr::start().await;
    sr.register("s", &v1()).await;
    assert_eq!(
        sr.post(
            "/compatibility/subjects/s/versions/latest",
            json!({ "schema": v2() })
        )
        .await,
        (StatusCode::OK, json!({ "is_compatible": true }))
    );
    assert_eq!(
        sr.post(
            "/compatibility/subjects/s/versions/1",
            json!({ "schema": v1_plus_required() })
        )
        .await,
        (StatusCode::OK, json!({ "is_compatible": false }))
    );
    let (status, body) = sr
        .post(
            "/compatibility/subjects/s/versions/latest?verbose=true",
            json!({ "schema": v1_plus_required() }),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["is_compatible"], json!(false));
    let messages = body["messages"].as_array().unwrap();
    assert!(
        messages[0]
            .as_str()
            .unwrap()
            .contains("READER_FIELD_MISSING_DEFAULT_VALUE"),
        "{body}"
    );
    assert_eq!(
        sr.post(
            "/compatibility/subjects/s/versions/latest?verbose=true",
            json!({ "schema": v2() })
        )
        .await
        .1,
        json!({ "is_compatible": true, "messages": [] })
    );
    // Nothing was registered by checking.
    assert_eq!(sr.get("/subjects/s/versions").await.1, json!([1]));
    assert_error(
        &sr.post(
            "/compatibility/subjects/missing/versions/latest",
            json!({ "schema": v1() }),
        )
        .await,
        StatusCode::NOT_FOUND,
        40401,
    );
    assert_error(
        &sr.post(
            "/compatibility/subjects/s/versions/7",
            json!({ "schema": v1() }),
        )
        .await,
        StatusCode::NOT_FOUND,
        40402,
    );
    assert_error(
        &sr.post(
            "/compatibility/subjects/s/versions/latest",
            json!({ "schema": "{\"type\":\"record\"}" }),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        42201,
    );
    // Against all versions of a subject that has none: compatible.
    assert_eq!(
        sr.post(
            "/compatibility/subjects/fresh/versions",
            json!({ "schema": v1() })
        )
        .await,
        (StatusCode::OK, json!({ "is_compatible": true }))
    );
    sr.server.shutdown().await;
}

#[tokio::test]
async fn global_and_subject_config() {
    let sr = Sr::start().await;
    assert_eq!(
        sr.get("/config").await,
        (StatusCode::OK, json!({ "compatibilityLevel": "BACKWARD" }))
    );
    assert_eq!(
        sr.put("/config", json!({ "compatibility": "FULL" })).await,
        (StatusCode::OK, json!({ "compatibility": "FULL" }))
    );
    assert_eq!(
        sr.get("/config").await.1,
        json!({ "compatibilityLevel": "FULL" })
    );
    assert_error(
        &sr.put("/config", json!({ "compatibility": "SIDEWAYS" }))
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        42203,
    );
    assert_error(
        &sr.put("/config", json!({})).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        42203,
    );

    let resp = sr.get("/config/s").await;
    assert_error(&resp, StatusCode::NOT_FOUND, 40408);
    assert_eq!(
        resp.1["message"],
        json!("Subject 's' does not have subject-level compatibility configured")
    );
    assert_eq!(
        sr.get("/config/s?defaultToGlobal=true").await,
        (StatusCode::OK, json!({ "compatibilityLevel": "FULL" }))
    );
    assert_eq!(
        sr.put(
            "/config/s",
            json!({ "compatibility": "forward_transitive" })
        )
        .await,
        (
            StatusCode::OK,
            json!({ "compatibility": "FORWARD_TRANSITIVE" })
        )
    );
    assert_eq!(
        sr.get("/config/s").await.1,
        json!({ "compatibilityLevel": "FORWARD_TRANSITIVE" })
    );
    assert_error(
        &sr.put("/config/s", json!({ "compatibility": "bogus" }))
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        42203,
    );
    // The subject level wins over the global one when registering.
    sr.register("s", &v1()).await;
    sr.register("s", &v1_plus_required()).await; // forward-compatible, not full
    assert_eq!(
        sr.delete("/config/s").await,
        (
            StatusCode::OK,
            json!({ "compatibilityLevel": "FORWARD_TRANSITIVE" })
        )
    );
    assert_error(&sr.get("/config/s").await, StatusCode::NOT_FOUND, 40408);
    assert_error(&sr.delete("/config/s").await, StatusCode::NOT_FOUND, 40401);
    assert_eq!(
        sr.delete("/config").await,
        (StatusCode::OK, json!({ "compatibilityLevel": "FULL" }))
    );
    assert_eq!(
        sr.get("/config").await.1,
        json!({ "compatibilityLevel": "BACKWARD" })
    );
    sr.server.shutdown().await;
}

#[tokio::test]
async fn configured_default_compatibility_is_the_global_level() {
    let sr = Sr::with_config(RegistryConfig {
        data_file: None,
        default_compatibility: Compatibility::None,
    })
    .await;
    assert_eq!(
        sr.get("/config").await.1,
        json!({ "compatibilityLevel": "NONE" })
    );
    sr.register("s", &v1()).await;
    sr.register("s", &record(json!([{ "name": "x", "type": "int" }])))
        .await;
    sr.server.shutdown().await;
}

#[tokio::test]
async fn soft_and_permanent_deletes() {
    let sr = Sr::start().await;
    let id1 = sr.register("s", &v1()).await;
    let id2 = sr.register("s", &v2()).await;
    sr.register("other", &v1()).await;

    // Permanent before soft: 40405.
    assert_error(
        &sr.delete("/subjects/s?permanent=true").await,
        StatusCode::NOT_FOUND,
        40405,
    );
    assert_eq!(
        sr.delete("/subjects/s").await,
        (StatusCode::OK, json!([1, 2]))
    );
    assert_error(
        &sr.delete("/subjects/s").await,
        StatusCode::NOT_FOUND,
        40404,
    );
    assert_eq!(sr.get("/subjects").await.1, json!(["other"]));
    assert_eq!(
        sr.get("/subjects?deleted=true").await.1,
        json!(["other", "s"])
    );
    assert_error(
        &sr.get("/subjects/s/versions").await,
        StatusCode::NOT_FOUND,
        40401,
    );
    assert_eq!(
        sr.get("/subjects/s/versions?deleted=true").await.1,
        json!([1, 2])
    );
    assert_eq!(
        sr.get("/subjects/s/versions/1?deleted=true").await.1["id"],
        json!(id1)
    );
    // Soft-deleted schemas stay resolvable by id (consumers of old records need them).
    assert_eq!(
        sr.get(&format!("/schemas/ids/{id2}")).await,
        (StatusCode::OK, json!({ "schema": v2() }))
    );
    assert_eq!(
        sr.get(&format!("/schemas/ids/{id2}/versions")).await.1,
        json!([])
    );
    assert_eq!(
        sr.get(&format!("/schemas/ids/{id2}/versions?deleted=true"))
            .await
            .1,
        json!([{ "subject": "s", "version": 2 }])
    );

    // Hard delete after soft delete.
    assert_eq!(
        sr.delete("/subjects/s?permanent=true").await,
        (StatusCode::OK, json!([1, 2]))
    );
    assert_eq!(sr.get("/subjects?deleted=true").await.1, json!(["other"]));
    // id2 was only used by `s`: gone. id1 is still used by `other`.
    assert_error(
        &sr.get(&format!("/schemas/ids/{id2}")).await,
        StatusCode::NOT_FOUND,
        40403,
    );
    assert_eq!(
        sr.get(&format!("/schemas/ids/{id1}")).await.0,
        StatusCode::OK
    );
    assert_error(
        &sr.delete("/subjects/s?permanent=true").await,
        StatusCode::NOT_FOUND,
        40401,
    );
    // Ids are never reused: a new schema gets a fresh one.
    let fresh = sr
        .register("s", &record(json!([{ "name": "fresh", "type": "long" }])))
        .await;
    assert!(fresh > id2);
    sr.server.shutdown().await;
}

#[tokio::test]
async fn version_deletes() {
    let sr = Sr::start().await;
    sr.register("s", &v1()).await;
    let id2 = sr.register("s", &v2()).await;
    assert_error(
        &sr.delete("/subjects/s/versions/2?permanent=true").await,
        StatusCode::NOT_FOUND,
        40407,
    );
    assert_eq!(
        sr.delete("/subjects/s/versions/2").await,
        (StatusCode::OK, json!(2))
    );
    assert_error(
        &sr.delete("/subjects/s/versions/2").await,
        StatusCode::NOT_FOUND,
        40406,
    );
    assert_error(
        &sr.get("/subjects/s/versions/2").await,
        StatusCode::NOT_FOUND,
        40402,
    );
    assert_eq!(sr.get("/subjects/s/versions").await.1, json!([1]));
    assert_eq!(
        sr.get("/subjects/s/versions/latest").await.1["version"],
        json!(1)
    );
    assert_error(
        &sr.delete("/subjects/s/versions/9").await,
        StatusCode::NOT_FOUND,
        40402,
    );
    assert_error(
        &sr.delete("/subjects/missing/versions/1").await,
        StatusCode::NOT_FOUND,
        40401,
    );
    // Re-registering a soft-deleted schema reuses its id under a new version number.
    assert_eq!(sr.register("s", &v2()).await, id2);
    assert_eq!(sr.get("/subjects/s/versions").await.1, json!([1, 3]));
    assert_eq!(
        sr.delete("/subjects/s/versions/2?permanent=true").await,
        (StatusCode::OK, json!(2))
    );
    assert_eq!(
        sr.get("/subjects/s/versions?deleted=true").await.1,
        json!([1, 3])
    );
    sr.server.shutdown().await;
}

#[tokio::test]
async fn references_resolve_and_protect_what_they_point_to() {
    let sr = Sr::start().await;
    let address = json!({
        "type": "record", "name": "Address", "namespace": "secflow.test",
        "fields": [{ "name": "city", "type": "string" }]
    })
    .to_string();
    let address_id = sr.register("address", &address).await;
    let person = json!({
        "type": "record", "name": "Person", "namespace": "secflow.test",
        "fields": [{ "name": "home", "type": "secflow.test.Address" }]
    })
    .to_string();
    let refs = json!([{ "name": "secflow.test.Address", "subject": "address", "version": 1 }]);
    // Without the reference the type is unknown.
    assert_error(
        &sr.post("/subjects/person/versions", json!({ "schema": person }))
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        42201,
    );
    let (status, body) = sr
        .post(
            "/subjects/person/versions",
            json!({ "schema": person, "schemaType": "AVRO", "references": refs }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let person_id = body["id"].as_u64().unwrap();
    assert_ne!(person_id, address_id);
    assert_eq!(
        sr.get(&format!("/schemas/ids/{person_id}")).await.1,
        json!({ "schema": person, "references": refs })
    );
    assert_eq!(
        sr.get("/subjects/person/versions/1").await.1["references"],
        refs
    );
    assert_eq!(
        sr.get("/subjects/address/versions/1/referencedby").await.1,
        json!([person_id])
    );
    assert_error(
        &sr.delete("/subjects/address").await,
        StatusCode::UNPROCESSABLE_ENTITY,
        42206,
    );
    sr.server.shutdown().await;
}

#[tokio::test]
async fn restart_from_data_file_keeps_ids_versions_and_config() {
    let dir = tempfile::tempdir().unwrap();
    let data_file = dir.path().join("nested").join("registry.json");
    let config = RegistryConfig {
        data_file: Some(data_file.clone()),
        default_compatibility: Compatibility::Backward,
    };

    let sr = Sr::with_config(config.clone()).await;
    let a1 = sr.register("a", &v1()).await;
    let a2 = sr.register("a", &v2()).await;
    let b1 = sr.register("b", &v1()).await;
    sr.register("gone", &v1_plus_required()).await;
    sr.delete("/subjects/gone").await;
    sr.set_subject_level("b", "NONE").await;
    sr.put("/config", json!({ "compatibility": "FULL" })).await;
    sr.server.shutdown().await;
    assert!(data_file.exists());
    assert!(
        std::fs::read_dir(data_file.parent().unwrap())
            .unwrap()
            .all(|e| !e.unwrap().file_name().to_string_lossy().ends_with(".tmp")),
        "temporary file left behind"
    );

    let sr = Sr::with_config(config).await;
    assert_eq!(sr.get("/subjects").await.1, json!(["a", "b"]));
    assert_eq!(sr.get("/subjects/a/versions").await.1, json!([1, 2]));
    assert_eq!(
        sr.get("/subjects/a/versions/2").await.1,
        json!({ "subject": "a", "version": 2, "id": a2, "schema": v2() })
    );
    assert_eq!(sr.get("/subjects/b/versions/1").await.1["id"], json!(b1));
    assert_eq!(b1, a1);
    assert_eq!(
        sr.get("/subjects/gone/versions?deleted=true").await.1,
        json!([1])
    );
    assert_eq!(
        sr.get("/config").await.1,
        json!({ "compatibilityLevel": "FULL" })
    );
    assert_eq!(
        sr.get("/config/b").await.1,
        json!({ "compatibilityLevel": "NONE" })
    );
    // Same schema, same id after the restart; a new one continues the sequence.
    assert_eq!(sr.register("a", &v2()).await, a2);
    let next = sr
        .register("c", &record(json!([{ "name": "n", "type": "long" }])))
        .await;
    assert_eq!(next, 4);
    sr.server.shutdown().await;
}

#[tokio::test]
async fn corrupt_data_file_is_a_clear_error_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        ("garbage.json", "{not json".to_owned()),
        (
            "dangling.json",
            json!({ "format": 1, "next_id": 2, "schemas": {}, "subjects": { "s": [{ "version": 1, "id": 1 }] } })
                .to_string(),
        ),
        (
            "bad-schema.json",
            json!({ "format": 1, "next_id": 2, "schemas": { "1": { "schema": "{\"type\":\"nope\"}" } }, "subjects": {} })
                .to_string(),
        ),
        (
            "stale-next-id.json",
            json!({ "format": 1, "next_id": 1, "schemas": { "1": { "schema": "\"string\"" } }, "subjects": {} })
                .to_string(),
        ),
    ];
    for (name, content) in cases {
        let path = dir.path().join(name);
        std::fs::write(&path, content).unwrap();
        let config = RegistryConfig {
            data_file: Some(path.clone()),
            default_compatibility: Compatibility::Backward,
        };
        let err = RegistryServer::start("127.0.0.1:0".parse().unwrap(), config)
            .await
            .expect_err(name);
        assert!(
            matches!(err, RegistryError::CorruptDataFile { .. }),
            "{name}: {err}"
        );
        assert!(err.to_string().contains(name), "{name}: {err}");
    }
}

#[tokio::test]
async fn serve_runs_until_the_shutdown_future_completes() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(devstack::registry::serve(
        listener,
        RegistryConfig::default(),
        async move {
            let _ = rx.await;
        },
    ));
    let resp = reqwest::get(format!("http://{addr}/subjects"))
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    tx.send(()).unwrap();
    task.await.unwrap().unwrap();
}

#[tokio::test]
async fn schema_registry_converter_round_trip() {
    use schema_registry_converter::async_impl::avro::{AvroDecoder, AvroEncoder};
    use schema_registry_converter::async_impl::schema_registry::SrSettings;
    use schema_registry_converter::schema_registry_common::{
        SchemaType, SubjectNameStrategy, SuppliedSchema,
    };

    let sr = Sr::start().await;
    let schema = record(json!([
        { "name": "host", "type": "string" },
        { "name": "port", "type": "int", "default": 0 },
        { "name": "tags", "type": { "type": "array", "items": "string" } },
        { "name": "score", "type": ["null", "double"], "default": null }
    ]));
    let settings = SrSettings::new(sr.server.url());
    let encoder = AvroEncoder::new(settings.clone());
    let strategy = SubjectNameStrategy::TopicNameStrategyWithSchema(
        "security-events".to_owned(),
        false,
        SuppliedSchema::new(
            Some("secflow.test.R".to_owned()),
            SchemaType::Avro,
            schema.clone(),
        ),
    );
    let fields = vec![
        ("host", Avro::String("sensor-1".to_owned())),
        ("port", Avro::Int(443)),
        ("tags", Avro::Array(vec![Avro::String("edr".to_owned())])),
        ("score", Avro::Union(1, Box::new(Avro::Double(0.5)))),
    ];
    let bytes = encoder.encode(fields.clone(), strategy).await.unwrap();

    // The encoder registered the schema under the topic's value subject.
    let (status, latest) = sr
        .get("/subjects/security-events-value/versions/latest")
        .await;
    assert_eq!(status, StatusCode::OK, "{latest}");
    let id = latest["id"].as_u64().unwrap();
    assert_eq!(latest["schema"], json!(schema));
    // Confluent wire format: magic byte 0, then the schema id big-endian.
    assert_eq!(bytes[0], 0);
    assert_eq!(
        u64::from(u32::from_be_bytes(bytes[1..5].try_into().unwrap())),
        id
    );
    assert!(bytes.len() > 5);

    let decoder = AvroDecoder::new(settings);
    let decoded = decoder.decode(Some(&bytes)).await.unwrap();
    let expected = Avro::Record(
        fields
            .into_iter()
            .map(|(name, value)| (name.to_owned(), value))
            .collect(),
    );
    assert_eq!(decoded.value, expected);
    sr.server.shutdown().await;
}
