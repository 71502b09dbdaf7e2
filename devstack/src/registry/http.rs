//! The REST API: routes, extractors and handlers.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, FromRequest, FromRequestParts, Path, Query, Request, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;

use super::error::{ApiError, RegistryError};
use super::store::{self, Candidate, SchemaReference, Store, VersionSpec};
use super::{Compatibility, RegistryConfig};

/// Confluent's media type, used for every response.
const MEDIA_TYPE: &str = "application/vnd.schemaregistry.v1+json";

/// Request content types accepted for bodies (besides none at all).
const ACCEPTED_BODY_TYPES: [&str; 4] = [
    "application/vnd.schemaregistry.v1+json",
    "application/vnd.schemaregistry+json",
    "application/json",
    "application/octet-stream",
];

/// Largest accepted request body.
const BODY_LIMIT: usize = 16 * 1024 * 1024;

/// Shared state of the HTTP handlers.
#[derive(Debug, Clone)]
pub(crate) struct AppState {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    store: Mutex<Store>,
    data_file: Option<PathBuf>,
}

impl AppState {
    /// Loads the store as `config` says (creating the data file's directory if needed).
    pub(crate) async fn load(config: &RegistryConfig) -> Result<Self, RegistryError> {
        let store = match &config.data_file {
            Some(path) => {
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    tokio::fs::create_dir_all(dir).await.map_err(|source| {
                        RegistryError::WriteDataFile {
                            path: path.clone(),
                            source,
                        }
                    })?;
                }
                Store::load(path, config.default_compatibility).await?
            }
            None => Store::new(config.default_compatibility),
        };
        Ok(Self {
            inner: Arc::new(Inner {
                store: Mutex::new(store),
                data_file: config.data_file.clone(),
            }),
        })
    }

    /// Runs a read-only operation on the store.
    async fn read<R>(&self, f: impl FnOnce(&Store) -> Result<R, ApiError>) -> Result<R, ApiError> {
        let guard = self.inner.store.lock().await;
        f(&guard)
    }

    /// Runs a change on a copy of the store; when it succeeds and changed the persisted state,
    /// writes the data file and only then makes the copy current.
    async fn mutate<R>(
        &self,
        f: impl FnOnce(&mut Store) -> Result<R, ApiError>,
    ) -> Result<R, ApiError> {
        let mut guard = self.inner.store.lock().await;
        let mut next = guard.clone();
        let out = f(&mut next)?;
        if next.persisted() != guard.persisted() {
            if let Some(path) = &self.inner.data_file {
                if let Err(err) = store::persist(path, next.persisted()).await {
                    tracing::error!(error = %err, "schema registry: cannot persist state");
                    return Err(ApiError::store(&err));
                }
            }
            *guard = next;
        }
        Ok(out)
    }
}

/// The router with every endpoint.
pub(crate) fn router(state: AppState) -> Router {
    Router::new()
        .route("/", get(root))
        .route("/health", get(health))
        .route("/subjects", get(list_subjects))
        .route("/subjects/{subject}", post(lookup).delete(delete_subject))
        .route(
            "/subjects/{subject}/versions",
            get(list_versions).post(register),
        )
        .route(
            "/subjects/{subject}/versions/{version}",
            get(get_version).delete(delete_version),
        )
        .route(
            "/subjects/{subject}/versions/{version}/schema",
            get(get_version_schema),
        )
        .route(
            "/subjects/{subject}/versions/{version}/referencedby",
            get(referenced_by),
        )
        .route("/schemas/types", get(schema_types))
        .route("/schemas/ids/{id}", get(get_schema_by_id))
        .route("/schemas/ids/{id}/schema", get(get_raw_schema_by_id))
        .route("/schemas/ids/{id}/versions", get(get_id_versions))
        .route("/schemas/ids/{id}/subjects", get(get_id_subjects))
        .route(
            "/compatibility/subjects/{subject}/versions/{version}",
            post(check_version_compatibility),
        )
        .route(
            "/compatibility/subjects/{subject}/versions",
            post(check_subject_compatibility),
        )
        .route(
            "/config",
            get(get_global_config)
                .put(put_global_config)
                .delete(delete_global_config),
        )
        .route(
            "/config/{subject}",
            get(get_subject_config)
                .put(put_subject_config)
                .delete(delete_subject_config),
        )
        .route("/mode", get(mode))
        .route("/mode/{subject}", get(mode))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(state)
}

// ---- responses and extractors --------------------------------------------------------------

/// A JSON response with Confluent's content type.
pub(crate) fn json_response<T: Serialize + ?Sized>(status: StatusCode, body: &T) -> Response {
    match serde_json::to_vec(body) {
        Ok(bytes) => raw_response(status, bytes),
        Err(err) => raw_response(
            StatusCode::INTERNAL_SERVER_ERROR,
            serde_json::json!({ "error_code": 50001, "message": format!("cannot encode response: {err}") })
                .to_string()
                .into_bytes(),
        ),
    }
}

fn raw_response(status: StatusCode, body: Vec<u8>) -> Response {
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(MEDIA_TYPE));
    response
}

fn ok<T: Serialize + ?Sized>(body: &T) -> Response {
    json_response(StatusCode::OK, body)
}

/// Path parameters, with rejections answered in the registry's error format.
struct ApiPath<T>(T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Path::<T>::from_request_parts(parts, state)
            .await
            .map(|Path(v)| ApiPath(v))
            .map_err(|rej| {
                ApiError::new(
                    rej.status(),
                    u32::from(rej.status().as_u16()),
                    rej.body_text(),
                )
            })
    }
}

/// Query parameters as a map (Confluent's are all optional flags and filters).
struct Params(HashMap<String, String>);

impl Params {
    /// `true` when the parameter is `true` in any letter case (Python sends `True`).
    fn flag(&self, name: &str) -> bool {
        self.0
            .get(name)
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"))
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Params {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Query::<HashMap<String, String>>::try_from_uri(&parts.uri)
            .map(|Query(map)| Params(map))
            .map_err(|rej| ApiError::new(StatusCode::BAD_REQUEST, 400, rej.body_text()))
    }
}

/// A JSON request body, accepted with Confluent's media types, `application/json`,
/// `application/octet-stream` or no content type. Syntax errors are 400, shape errors 422.
struct JsonBody<T>(T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if let Some(value) = req.headers().get(CONTENT_TYPE) {
            let essence = value
                .to_str()
                .unwrap_or_default()
                .split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .to_ascii_lowercase();
            if !ACCEPTED_BODY_TYPES.contains(&essence.as_str()) {
                return Err(ApiError::new(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    415,
                    format!("HTTP 415 Unsupported Media Type: content type '{essence}' is not accepted; use {MEDIA_TYPE}"),
                ));
            }
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|rej| {
            ApiError::new(
                rej.status(),
                u32::from(rej.status().as_u16()),
                rej.body_text(),
            )
        })?;
        serde_json::from_slice(&bytes).map(JsonBody).map_err(|err| {
            use serde_json::error::Category;
            match err.classify() {
                Category::Syntax | Category::Eof | Category::Io => ApiError::new(
                    StatusCode::BAD_REQUEST,
                    400,
                    format!("Malformed JSON request body: {err}"),
                ),
                Category::Data => ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    422,
                    format!("Unrecognizable request body: {err}"),
                ),
            }
        })
    }
}

/// The body of register, lookup and compatibility requests.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SchemaRequest {
    #[serde(default)]
    schema: Option<String>,
    #[serde(default)]
    schema_type: Option<String>,
    #[serde(default)]
    references: Option<Vec<SchemaReference>>,
}

impl SchemaRequest {
    /// Checks the type is Avro and the schema is present; parses it against `store`.
    fn prepare(self, store: &Store) -> Result<Candidate, ApiError> {
        match self.schema_type.as_deref() {
            None => {}
            Some(t) if t.eq_ignore_ascii_case("AVRO") => {}
            Some(t @ ("JSON" | "PROTOBUF")) => {
                return Err(ApiError::invalid_schema(format!(
                    "schema type {t} is not supported by this registry; only AVRO is"
                )))
            }
            Some(t) => {
                return Err(ApiError::invalid_schema(format!(
                    "unknown schema type '{t}'; only AVRO is supported"
                )))
            }
        }
        let schema = self
            .schema
            .filter(|s| !s.trim().is_empty())
            .ok_or_else(|| ApiError::invalid_schema("Empty schema"))?;
        store.prepare(&schema, self.references.unwrap_or_default())
    }
}

/// The body of `PUT /config`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ConfigRequest {
    #[serde(default)]
    compatibility: Option<String>,
    #[serde(default)]
    compatibility_level: Option<String>,
}

impl ConfigRequest {
    fn level(self) -> Result<Compatibility, ApiError> {
        let raw = self
            .compatibility
            .or(self.compatibility_level)
            .unwrap_or_default();
        raw.parse()
            .map_err(|_| ApiError::invalid_compatibility_level(&raw))
    }
}

// ---- handlers ------------------------------------------------------------------------------

async fn root() -> Response {
    ok(&serde_json::json!({}))
}

async fn health() -> Response {
    ok(&serde_json::json!({ "status": "UP" }))
}

async fn not_found() -> Response {
    ApiError::new(StatusCode::NOT_FOUND, 404, "HTTP 404 Not Found").into_response()
}

async fn method_not_allowed() -> Response {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        405,
        "HTTP 405 Method Not Allowed",
    )
    .into_response()
}

async fn mode() -> Response {
    ok(&serde_json::json!({ "mode": "READWRITE" }))
}

async fn schema_types() -> Response {
    ok(&["AVRO"])
}

async fn list_subjects(
    State(state): State<AppState>,
    params: Params,
) -> Result<Response, ApiError> {
    let deleted = params.flag("deleted");
    let prefix = params.get("subjectPrefix").unwrap_or_default().to_owned();
    state.read(|s| Ok(ok(&s.subjects(deleted, &prefix)))).await
}

async fn list_versions(
    State(state): State<AppState>,
    ApiPath(subject): ApiPath<String>,
    params: Params,
) -> Result<Response, ApiError> {
    let deleted = params.flag("deleted");
    state
        .read(|s| Ok(ok(&s.versions(&subject, deleted)?)))
        .await
}

async fn register(
    State(state): State<AppState>,
    ApiPath(subject): ApiPath<String>,
    JsonBody(body): JsonBody<SchemaRequest>,
) -> Result<Response, ApiError> {
    let id = state
        .mutate(|s| {
            let candidate = body.prepare(s)?;
            s.register(&subject, candidate)
        })
        .await?;
    Ok(ok(&serde_json::json!({ "id": id })))
}

async fn lookup(
    State(state): State<AppState>,
    ApiPath(subject): ApiPath<String>,
    params: Params,
    JsonBody(body): JsonBody<SchemaRequest>,
) -> Result<Response, ApiError> {
    let deleted = params.flag("deleted");
    state
        .read(|s| {
            if s.versions(&subject, deleted).is_err() {
                return Err(ApiError::subject_not_found(&subject));
            }
            let candidate = body.prepare(s)?;
            let entry = s.lookup(&subject, &candidate, deleted)?;
            Ok(ok(&s.subject_version(&subject, entry)))
        })
        .await
}

async fn get_version(
    State(state): State<AppState>,
    ApiPath((subject, version)): ApiPath<(String, String)>,
    params: Params,
) -> Result<Response, ApiError> {
    let spec = VersionSpec::parse(&version)?;
    let deleted = params.flag("deleted");
    state
        .read(|s| {
            let entry = s.resolve(&subject, spec, deleted)?;
            Ok(ok(&s.subject_version(&subject, entry)))
        })
        .await
}

async fn get_version_schema(
    State(state): State<AppState>,
    ApiPath((subject, version)): ApiPath<(String, String)>,
    params: Params,
) -> Result<Response, ApiError> {
    let spec = VersionSpec::parse(&version)?;
    let deleted = params.flag("deleted");
    state
        .read(|s| {
            let entry = s.resolve(&subject, spec, deleted)?;
            let text = s.subject_version(&subject, entry).schema;
            Ok(raw_response(StatusCode::OK, text.into_bytes()))
        })
        .await
}

async fn referenced_by(
    State(state): State<AppState>,
    ApiPath((subject, version)): ApiPath<(String, String)>,
) -> Result<Response, ApiError> {
    let spec = VersionSpec::parse(&version)?;
    state
        .read(|s| {
            let entry = s.resolve(&subject, spec, false)?;
            Ok(ok(&s.referenced_by(&subject, entry.version)))
        })
        .await
}

async fn delete_subject(
    State(state): State<AppState>,
    ApiPath(subject): ApiPath<String>,
    params: Params,
) -> Result<Response, ApiError> {
    let permanent = params.flag("permanent");
    let versions = state
        .mutate(|s| s.delete_subject(&subject, permanent))
        .await?;
    Ok(ok(&versions))
}

async fn delete_version(
    State(state): State<AppState>,
    ApiPath((subject, version)): ApiPath<(String, String)>,
    params: Params,
) -> Result<Response, ApiError> {
    let spec = VersionSpec::parse(&version)?;
    let permanent = params.flag("permanent");
    let deleted = state
        .mutate(|s| s.delete_version(&subject, spec, permanent))
        .await?;
    Ok(ok(&deleted))
}

fn parse_id(raw: &str) -> Result<u32, ApiError> {
    raw.parse::<u32>()
        .map_err(|_| ApiError::schema_id_not_found(raw))
}

async fn get_schema_by_id(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Response, ApiError> {
    let id = parse_id(&id)?;
    state
        .read(|s| {
            let stored = s
                .schema_by_id(id)
                .ok_or_else(|| ApiError::schema_id_not_found(id))?;
            #[derive(Serialize)]
            struct Body<'a> {
                schema: &'a str,
                #[serde(skip_serializing_if = "<[_]>::is_empty")]
                references: &'a [SchemaReference],
            }
            Ok(ok(&Body {
                schema: &stored.schema,
                references: &stored.references,
            }))
        })
        .await
}

async fn get_raw_schema_by_id(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Response, ApiError> {
    let id = parse_id(&id)?;
    state
        .read(|s| {
            let stored = s
                .schema_by_id(id)
                .ok_or_else(|| ApiError::schema_id_not_found(id))?;
            Ok(raw_response(
                StatusCode::OK,
                stored.schema.clone().into_bytes(),
            ))
        })
        .await
}

async fn get_id_versions(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
    params: Params,
) -> Result<Response, ApiError> {
    let id = parse_id(&id)?;
    let deleted = params.flag("deleted");
    let only = params.get("subject").map(str::to_owned);
    state
        .read(|s| {
            if s.schema_by_id(id).is_none() {
                return Err(ApiError::schema_id_not_found(id));
            }
            let pairs: Vec<_> = s
                .usages(id, deleted)
                .into_iter()
                .filter(|(subject, _)| only.as_deref().is_none_or(|o| o == subject))
                .map(|(subject, version)| serde_json::json!({ "subject": subject, "version": version }))
                .collect();
            Ok(ok(&pairs))
        })
        .await
}

async fn get_id_subjects(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
    params: Params,
) -> Result<Response, ApiError> {
    let id = parse_id(&id)?;
    let deleted = params.flag("deleted");
    let only = params.get("subject").map(str::to_owned);
    state
        .read(|s| {
            if s.schema_by_id(id).is_none() {
                return Err(ApiError::schema_id_not_found(id));
            }
            let mut subjects: Vec<String> = s
                .usages(id, deleted)
                .into_iter()
                .map(|(subject, _)| subject)
                .filter(|subject| only.as_deref().is_none_or(|o| o == subject))
                .collect();
            subjects.dedup();
            Ok(ok(&subjects))
        })
        .await
}

fn compatibility_response(messages: Vec<String>, verbose: bool) -> Response {
    let compatible = messages.is_empty();
    if verbose {
        ok(&serde_json::json!({ "is_compatible": compatible, "messages": messages }))
    } else {
        ok(&serde_json::json!({ "is_compatible": compatible }))
    }
}

/// `POST /compatibility/subjects/{s}/versions/{v}`: against that version, or for `latest`
/// against what the subject's level selects (all versions when transitive).
async fn check_version_compatibility(
    State(state): State<AppState>,
    ApiPath((subject, version)): ApiPath<(String, String)>,
    params: Params,
    JsonBody(body): JsonBody<SchemaRequest>,
) -> Result<Response, ApiError> {
    let spec = VersionSpec::parse(&version)?;
    let verbose = params.flag("verbose");
    state
        .read(|s| {
            let entry = s.resolve(&subject, spec, false)?;
            let candidate = body.prepare(s)?;
            let level = s.effective_compatibility(&subject);
            let result = match spec {
                VersionSpec::Latest => {
                    s.check_against(level, &candidate.schema, &s.live(&subject), true)
                }
                VersionSpec::Number(_) => {
                    s.check_against(level, &candidate.schema, &[entry], false)
                }
            };
            Ok(compatibility_response(result.messages, verbose))
        })
        .await
}

/// `POST /compatibility/subjects/{s}/versions`: against what the subject's level selects; a
/// subject without versions accepts anything.
async fn check_subject_compatibility(
    State(state): State<AppState>,
    ApiPath(subject): ApiPath<String>,
    params: Params,
    JsonBody(body): JsonBody<SchemaRequest>,
) -> Result<Response, ApiError> {
    let verbose = params.flag("verbose");
    state
        .read(|s| {
            let candidate = body.prepare(s)?;
            let level = s.effective_compatibility(&subject);
            let result = s.check_against(level, &candidate.schema, &s.live(&subject), true);
            Ok(compatibility_response(result.messages, verbose))
        })
        .await
}

async fn get_global_config(State(state): State<AppState>) -> Result<Response, ApiError> {
    state
        .read(|s| {
            Ok(ok(
                &serde_json::json!({ "compatibilityLevel": s.global_compatibility() }),
            ))
        })
        .await
}

async fn put_global_config(
    State(state): State<AppState>,
    JsonBody(body): JsonBody<ConfigRequest>,
) -> Result<Response, ApiError> {
    let level = body.level()?;
    state
        .mutate(|s| {
            s.set_global_compatibility(level);
            Ok(())
        })
        .await?;
    Ok(ok(&serde_json::json!({ "compatibility": level })))
}

async fn delete_global_config(State(state): State<AppState>) -> Result<Response, ApiError> {
    let previous = state.mutate(|s| Ok(s.reset_global_compatibility())).await?;
    Ok(ok(&serde_json::json!({ "compatibilityLevel": previous })))
}

async fn get_subject_config(
    State(state): State<AppState>,
    ApiPath(subject): ApiPath<String>,
    params: Params,
) -> Result<Response, ApiError> {
    let default_to_global = params.flag("defaultToGlobal");
    state
        .read(|s| {
            let level = match s.subject_compatibility(&subject) {
                Some(level) => level,
                None if default_to_global => s.global_compatibility(),
                None => {
                    return Err(ApiError::subject_level_compatibility_not_configured(
                        &subject,
                    ))
                }
            };
            Ok(ok(&serde_json::json!({ "compatibilityLevel": level })))
        })
        .await
}

async fn put_subject_config(
    State(state): State<AppState>,
    ApiPath(subject): ApiPath<String>,
    JsonBody(body): JsonBody<ConfigRequest>,
) -> Result<Response, ApiError> {
    let level = body.level()?;
    state
        .mutate(|s| {
            s.set_subject_compatibility(&subject, level);
            Ok(())
        })
        .await?;
    Ok(ok(&serde_json::json!({ "compatibility": level })))
}

/// `DELETE /config/{s}`: like Confluent, 40401 when the subject has no subject-level setting.
async fn delete_subject_config(
    State(state): State<AppState>,
    ApiPath(subject): ApiPath<String>,
) -> Result<Response, ApiError> {
    let previous = state
        .mutate(|s| {
            s.delete_subject_compatibility(&subject)
                .ok_or_else(|| ApiError::subject_not_found(&subject))
        })
        .await?;
    Ok(ok(&serde_json::json!({ "compatibilityLevel": previous })))
}
