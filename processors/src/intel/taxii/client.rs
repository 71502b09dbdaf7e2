//! The TAXII 2.1 HTTP client: one request per call, typed errors, bounded responses.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, ACCEPT, RETRY_AFTER};
use reqwest::{redirect, StatusCode, Url};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::config::{AuthConfig, CollectionConfig, Credentials, SecretError, TaxiiServerConfig};
use super::poll::CollectionPoll;
use crate::intel::indicator::IndicatorSource;
use crate::secret::Secret;

/// The media type sent in `Accept`: `application/taxii+json;version=2.1`.
pub const TAXII_MEDIA_TYPE: &str = "application/taxii+json;version=2.1";

/// The longest `Retry-After` honoured; a server asking for more gets this (so one bad header
/// cannot park the poller for days).
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

/// How many bytes of an error response are read for the error message.
const ERROR_BODY_BYTES: usize = 4096;

/// Redirects followed, and only within the same origin (scheme, host, port): credentials,
/// including a custom API-key header, must never be sent to another host.
const MAX_REDIRECTS: usize = 5;

/// Why a TAXII request failed. Every server response maps to one of these; none panics.
#[derive(Debug, thiserror::Error)]
pub enum TaxiiError {
    /// The configuration is unusable (bad URL, plain http not allowed, unreadable CA file, …).
    #[error("TAXII configuration: {0}")]
    Config(String),
    /// A referenced secret could not be read.
    #[error("TAXII credentials: {0}")]
    Secret(#[from] SecretError),
    /// No HTTP response: DNS, connection refused, TLS handshake or certificate verification,
    /// connection reset.
    #[error("{url}: {message}")]
    Connect {
        /// The request URL.
        url: String,
        /// The transport error and its causes.
        message: String,
    },
    /// No complete response within the configured timeout.
    #[error("{url}: no complete response within {secs} s")]
    Timeout {
        /// The request URL.
        url: String,
        /// The timeout.
        secs: u64,
    },
    /// 401 or 403: wrong or missing credentials, or no access to the resource.
    #[error("{url}: HTTP {status}: authentication failed or access denied")]
    Unauthorized {
        /// The request URL.
        url: String,
        /// 401 or 403.
        status: u16,
    },
    /// 429 or 503: the server wants us to come back later; `retry_after` is its
    /// `Retry-After` (capped at [`MAX_RETRY_AFTER`]), if it sent a valid one. The client does
    /// not wait or retry: the caller's loop sleeps and calls again.
    #[error(
        "{url}: HTTP {status}: rate limited or unavailable, retry after {}",
        show_delay(retry_after)
    )]
    RateLimited {
        /// The request URL.
        url: String,
        /// 429 or 503.
        status: u16,
        /// How long to wait, from `Retry-After`.
        retry_after: Option<Duration>,
    },
    /// 404: unknown API root, collection or object.
    #[error("{url}: not found (HTTP 404)")]
    NotFound {
        /// The request URL.
        url: String,
    },
    /// Another non-success status; `message` is the TAXII error's title and description or
    /// the start of the body, secrets redacted.
    #[error("{url}: HTTP {status}: {message}")]
    Status {
        /// The request URL.
        url: String,
        /// The status code.
        status: u16,
        /// What the server said.
        message: String,
    },
    /// The body is larger than `max_response_bytes`.
    #[error("{url}: response body larger than {limit} bytes")]
    TooLarge {
        /// The request URL.
        url: String,
        /// The limit.
        limit: u64,
    },
    /// The body is not the expected TAXII JSON resource.
    #[error("{url}: not a TAXII 2.1 resource: {reason}")]
    Decode {
        /// The request URL.
        url: String,
        /// The JSON error.
        reason: String,
    },
    /// The server broke the protocol in a way that stops the poll (pagination that does not
    /// advance, …).
    #[error("{url}: {reason}")]
    Protocol {
        /// The request URL.
        url: String,
        /// What happened.
        reason: String,
    },
}

fn show_delay(d: &Option<Duration>) -> String {
    match d {
        Some(d) => format!("{} s", d.as_secs()),
        None => "an unspecified delay".to_string(),
    }
}

impl TaxiiError {
    /// The server's `Retry-After`, for [`TaxiiError::RateLimited`].
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            TaxiiError::RateLimited { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// True when the same call may succeed later unchanged: connection problems, timeouts,
    /// 429/503 and other 5xx. False for configuration, credentials, 4xx and bad responses.
    pub fn is_transient(&self) -> bool {
        match self {
            TaxiiError::Connect { .. } | TaxiiError::Timeout { .. } => true,
            TaxiiError::RateLimited { .. } => true,
            TaxiiError::Status { status, .. } => *status >= 500,
            _ => false,
        }
    }
}

/// Parses a `Retry-After` value: delay-seconds or an HTTP-date (relative to `now`; a date in
/// the past is zero). Capped at [`MAX_RETRY_AFTER`]. `None` when it is neither.
pub fn parse_retry_after(value: &str, now: DateTime<Utc>) -> Option<Duration> {
    let value = value.trim();
    let delay = if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        // Too many digits for u64 is still "a very long time".
        Duration::from_secs(value.parse::<u64>().unwrap_or(u64::MAX))
    } else {
        let at = DateTime::parse_from_rfc2822(value).ok()?;
        (at.with_timezone(&Utc) - now)
            .to_std()
            .unwrap_or(Duration::ZERO)
    };
    Some(delay.min(MAX_RETRY_AFTER))
}

/// The TAXII discovery resource (`GET /taxii2/`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Discovery {
    /// Server title.
    #[serde(default)]
    pub title: String,
    /// Description.
    #[serde(default)]
    pub description: Option<String>,
    /// Contact.
    #[serde(default)]
    pub contact: Option<String>,
    /// The default API root URL.
    #[serde(default)]
    pub default: Option<String>,
    /// The API root URLs.
    #[serde(default)]
    pub api_roots: Vec<String>,
}

/// The API root information resource (`GET {api_root}/`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiRootInfo {
    /// API root title.
    #[serde(default)]
    pub title: String,
    /// Description.
    #[serde(default)]
    pub description: Option<String>,
    /// Supported TAXII versions (media types).
    #[serde(default)]
    pub versions: Vec<String>,
    /// Largest request body the API root accepts, in bytes.
    #[serde(default)]
    pub max_content_length: Option<u64>,
}

/// One collection (`GET {api_root}/collections/`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CollectionInfo {
    /// Collection id.
    pub id: String,
    /// Title.
    #[serde(default)]
    pub title: String,
    /// Description.
    #[serde(default)]
    pub description: Option<String>,
    /// Alias.
    #[serde(default)]
    pub alias: Option<String>,
    /// Whether objects can be read.
    #[serde(default)]
    pub can_read: bool,
    /// Whether objects can be written.
    #[serde(default)]
    pub can_write: bool,
    /// Media types of the objects.
    #[serde(default)]
    pub media_types: Vec<String>,
}

#[derive(Debug, Deserialize)]
struct CollectionsResource {
    #[serde(default)]
    collections: Option<Vec<CollectionInfo>>,
}

#[derive(Debug, Deserialize)]
struct Envelope {
    #[serde(default)]
    more: Option<bool>,
    #[serde(default)]
    next: Option<String>,
    #[serde(default)]
    objects: Option<Vec<Value>>,
}

/// The filters and paging of one `GET …/objects/` request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ObjectsQuery {
    /// `added_after`: only objects added after this timestamp.
    pub added_after: Option<String>,
    /// `match[type]`, comma-joined; empty = no filter.
    pub types: Vec<String>,
    /// `match[version]`.
    pub version: Option<String>,
    /// `limit`.
    pub limit: Option<u32>,
    /// `next`: the continuation token of the previous page. TAXII requires the same filters
    /// and `limit` with it (medallion refuses the request otherwise).
    pub next: Option<String>,
}

impl ObjectsQuery {
    /// The query parameters, in a fixed order.
    pub fn params(&self) -> Vec<(&'static str, String)> {
        let mut p = Vec::new();
        if let Some(a) = &self.added_after {
            p.push(("added_after", a.clone()));
        }
        if !self.types.is_empty() {
            p.push(("match[type]", self.types.join(",")));
        }
        if let Some(v) = &self.version {
            p.push(("match[version]", v.clone()));
        }
        if let Some(l) = self.limit {
            p.push(("limit", l.to_string()));
        }
        if let Some(n) = &self.next {
            p.push(("next", n.clone()));
        }
        p
    }
}

/// One page of objects (one envelope) with its headers.
#[derive(Debug, Clone, PartialEq)]
pub struct ObjectsPage {
    /// The STIX objects, as received.
    pub objects: Vec<Value>,
    /// `more`: the server has more objects for this query.
    pub more: bool,
    /// `next`: the token to fetch them.
    pub next: Option<String>,
    /// `X-TAXII-Date-Added-First`.
    pub date_added_first: Option<String>,
    /// `X-TAXII-Date-Added-Last`: the checkpoint after this page.
    pub date_added_last: Option<String>,
}

/// A TAXII 2.1 client for one server. Cheap to clone (shared connection pool).
///
/// Every call makes exactly one HTTP request (plus same-origin redirects) and returns a typed
/// error on failure; nothing is retried here. A 429/503 comes back as
/// [`TaxiiError::RateLimited`] with the server's `Retry-After`, for the caller's loop to wait.
#[derive(Debug, Clone)]
pub struct TaxiiClient {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    http: reqwest::Client,
    config: TaxiiServerConfig,
    base: Url,
    auth: Option<(Credentials, Option<(HeaderName, HeaderValue)>)>,
}

fn transport_message(e: &reqwest::Error) -> String {
    let mut parts = Vec::new();
    let mut source: Option<&dyn std::error::Error> = Some(e);
    while let Some(err) = source {
        let text = err.to_string();
        if parts.last() != Some(&text) {
            parts.push(text);
        }
        source = err.source();
    }
    parts.join(": ")
}

fn check_scheme(url: &Url, allow_http: bool) -> Result<(), TaxiiError> {
    match url.scheme() {
        "https" => Ok(()),
        "http" if allow_http => Ok(()),
        "http" => Err(TaxiiError::Config(format!(
            "{url}: plain http is refused (credentials would travel in clear text); use https, \
             or set allow_http for a local test server"
        ))),
        other => Err(TaxiiError::Config(format!(
            "{url}: unsupported URL scheme `{other}`"
        ))),
    }
}

impl TaxiiClient {
    /// Builds the client for `config`, reading the referenced secrets now.
    pub fn new(config: TaxiiServerConfig) -> Result<TaxiiClient, TaxiiError> {
        let credentials = config.auth.as_ref().map(AuthConfig::resolve).transpose()?;
        TaxiiClient::with_credentials(config, credentials)
    }

    /// Builds the client with already resolved credentials (`config.auth` is ignored).
    pub fn with_credentials(
        config: TaxiiServerConfig,
        credentials: Option<Credentials>,
    ) -> Result<TaxiiClient, TaxiiError> {
        if config.name.trim().is_empty() {
            return Err(TaxiiError::Config("server name is empty".to_string()));
        }
        let base = Url::parse(&config.url)
            .map_err(|e| TaxiiError::Config(format!("url `{}`: {e}", config.url)))?;
        check_scheme(&base, config.allow_http)?;
        if config.page_size == 0 {
            return Err(TaxiiError::Config(
                "page_size must be at least 1".to_string(),
            ));
        }
        if config.timeout_secs == 0 || config.connect_timeout_secs == 0 {
            return Err(TaxiiError::Config(
                "timeouts must be at least 1 s".to_string(),
            ));
        }
        let auth = match credentials {
            None => None,
            Some(c) => {
                let header = match &c {
                    Credentials::ApiKey { header, key } => {
                        let name = HeaderName::from_bytes(header.as_bytes()).map_err(|_| {
                            TaxiiError::Config(format!("`{header}` is not a valid header name"))
                        })?;
                        let mut value = HeaderValue::from_str(key.expose()).map_err(|_| {
                            TaxiiError::Config(format!(
                                "the API key for header {header} contains characters a header \
                                 value cannot hold"
                            ))
                        })?;
                        value.set_sensitive(true);
                        Some((name, value))
                    }
                    _ => None,
                };
                Some((c, header))
            }
        };
        let policy = redirect::Policy::custom(|attempt| {
            let same_origin = attempt
                .previous()
                .first()
                .is_some_and(|first| first.origin() == attempt.url().origin());
            if attempt.previous().len() > MAX_REDIRECTS {
                attempt.error("too many redirects")
            } else if same_origin {
                attempt.follow()
            } else {
                attempt.stop()
            }
        });
        let mut builder = reqwest::Client::builder()
            .timeout(Duration::from_secs(config.timeout_secs))
            .connect_timeout(Duration::from_secs(config.connect_timeout_secs))
            .redirect(policy)
            .https_only(!config.allow_http)
            .user_agent(concat!("secflow/", env!("CARGO_PKG_VERSION")));
        if let Some(path) = &config.ca_file {
            let pem = std::fs::read(path)
                .map_err(|e| TaxiiError::Config(format!("ca_file {}: {e}", path.display())))?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|e| TaxiiError::Config(format!("ca_file {}: {e}", path.display())))?;
            if certs.is_empty() {
                return Err(TaxiiError::Config(format!(
                    "ca_file {}: no PEM certificate in it",
                    path.display()
                )));
            }
            builder = builder.tls_certs_merge(certs);
        }
        let http = builder
            .build()
            .map_err(|e| TaxiiError::Config(format!("HTTP client: {}", transport_message(&e))))?;
        Ok(TaxiiClient {
            inner: Arc::new(Inner {
                http,
                config,
                base,
                auth,
            }),
        })
    }

    /// The configuration this client was built from.
    pub fn config(&self) -> &TaxiiServerConfig {
        &self.inner.config
    }

    /// The discovery URL.
    pub fn discovery_url(&self) -> &Url {
        &self.inner.base
    }

    /// Resolves an API root (absolute URL, or path relative to the server `url`) to an
    /// absolute URL with a trailing slash, checking its scheme.
    pub fn api_root_url(&self, api_root: &str) -> Result<Url, TaxiiError> {
        let mut url = self
            .inner
            .base
            .join(api_root)
            .map_err(|e| TaxiiError::Config(format!("api_root `{api_root}`: {e}")))?;
        check_scheme(&url, self.inner.config.allow_http)?;
        if !url.path().ends_with('/') {
            let path = format!("{}/", url.path());
            url.set_path(&path);
        }
        url.set_query(None);
        url.set_fragment(None);
        Ok(url)
    }

    fn collection_url(&self, api_root: &str, parts: &[&str]) -> Result<Url, TaxiiError> {
        let mut url = self.api_root_url(api_root)?;
        {
            let mut segments = url.path_segments_mut().map_err(|_| {
                TaxiiError::Config(format!("api_root `{api_root}` cannot take a path"))
            })?;
            segments.pop_if_empty();
            segments.extend(parts);
        }
        Ok(url)
    }

    /// Where the indicators of `collection` come from (`Indicator.source`).
    pub fn source(&self, collection: &CollectionConfig) -> Result<IndicatorSource, TaxiiError> {
        Ok(IndicatorSource {
            server: self.inner.config.name.clone(),
            api_root: self.api_root_url(&collection.api_root)?.to_string(),
            collection: collection.id.clone(),
        })
    }

    fn secret(&self) -> Option<&Secret> {
        self.inner.auth.as_ref().map(|(c, _)| c.secret())
    }

    fn redact(&self, text: &str) -> String {
        match self.secret() {
            Some(s) => s.redact(text),
            None => text.to_string(),
        }
    }

    /// One GET; the body (at most `max_response_bytes`) and the headers of a 2xx response.
    async fn get(&self, url: Url) -> Result<(Vec<u8>, HeaderMap), TaxiiError> {
        check_scheme(&url, self.inner.config.allow_http)?;
        let shown = url.to_string();
        let mut request = self
            .inner
            .http
            .get(url)
            .header(ACCEPT, HeaderValue::from_static(TAXII_MEDIA_TYPE));
        match &self.inner.auth {
            Some((Credentials::Basic { username, password }, _)) => {
                request = request.basic_auth(username, Some(password.expose()));
            }
            Some((Credentials::Bearer(token), _)) => {
                request = request.bearer_auth(token.expose());
            }
            Some((Credentials::ApiKey { .. }, Some((name, value)))) => {
                request = request.header(name.clone(), value.clone());
            }
            Some((Credentials::ApiKey { .. }, None)) | None => {}
        }
        let response = request
            .send()
            .await
            .map_err(|e| self.transport(&shown, e))?;
        let status = response.status();
        let headers = response.headers().clone();
        if status.is_success() {
            let body = self
                .read_capped(response, self.inner.config.max_response_bytes, &shown)
                .await?;
            return Ok((body, headers));
        }
        let body = self
            .read_capped(response, ERROR_BODY_BYTES as u64, &shown)
            .await
            .unwrap_or_default();
        Err(self.status_error(shown, status, &headers, &body))
    }

    fn transport(&self, url: &str, e: reqwest::Error) -> TaxiiError {
        // The URL is in our message already.
        let e = e.without_url();
        if e.is_timeout() {
            TaxiiError::Timeout {
                url: url.to_string(),
                secs: self.inner.config.timeout_secs,
            }
        } else {
            TaxiiError::Connect {
                url: url.to_string(),
                message: self.redact(&transport_message(&e)),
            }
        }
    }

    fn status_error(
        &self,
        url: String,
        status: StatusCode,
        headers: &HeaderMap,
        body: &[u8],
    ) -> TaxiiError {
        match status.as_u16() {
            401 | 403 => TaxiiError::Unauthorized {
                url,
                status: status.as_u16(),
            },
            429 | 503 => TaxiiError::RateLimited {
                url,
                status: status.as_u16(),
                retry_after: headers
                    .get(RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| parse_retry_after(v, Utc::now())),
            },
            404 => TaxiiError::NotFound { url },
            code => {
                let mut message = error_message(body);
                if status.is_redirection() {
                    let to = headers
                        .get(reqwest::header::LOCATION)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("?");
                    message = format!("redirect to {to} not followed (another origin)");
                }
                TaxiiError::Status {
                    url,
                    status: code,
                    message: self.redact(&message),
                }
            }
        }
    }

    /// Reads the body as a stream, failing as soon as it passes `limit` bytes.
    async fn read_capped(
        &self,
        mut response: reqwest::Response,
        limit: u64,
        url: &str,
    ) -> Result<Vec<u8>, TaxiiError> {
        let too_large = || TaxiiError::TooLarge {
            url: url.to_string(),
            limit,
        };
        if response.content_length().is_some_and(|len| len > limit) {
            return Err(too_large());
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| self.transport(url, e))? {
            if (body.len() + chunk.len()) as u64 > limit {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }

    async fn get_json<T: DeserializeOwned>(&self, url: Url) -> Result<(T, HeaderMap), TaxiiError> {
        let shown = url.to_string();
        let (body, headers) = self.get(url).await?;
        let value = serde_json::from_slice(&body).map_err(|e| TaxiiError::Decode {
            url: shown,
            reason: e.to_string(),
        })?;
        Ok((value, headers))
    }

    /// `GET {url}` (the discovery URL, usually `…/taxii2/`).
    pub async fn discovery(&self) -> Result<Discovery, TaxiiError> {
        Ok(self.get_json(self.inner.base.clone()).await?.0)
    }

    /// `GET {api_root}/`: the API root information.
    pub async fn api_root(&self, api_root: &str) -> Result<ApiRootInfo, TaxiiError> {
        Ok(self.get_json(self.api_root_url(api_root)?).await?.0)
    }

    /// `GET {api_root}/collections/`: the collections (empty when the server lists none).
    pub async fn collections(&self, api_root: &str) -> Result<Vec<CollectionInfo>, TaxiiError> {
        let url = self.collection_url(api_root, &["collections", ""])?;
        let (resource, _): (CollectionsResource, _) = self.get_json(url).await?;
        Ok(resource.collections.unwrap_or_default())
    }

    /// `GET {api_root}/collections/{id}/objects/?…`: one page of objects.
    pub async fn get_objects(
        &self,
        api_root: &str,
        collection_id: &str,
        query: &ObjectsQuery,
    ) -> Result<ObjectsPage, TaxiiError> {
        if collection_id.is_empty() {
            return Err(TaxiiError::Config("collection id is empty".to_string()));
        }
        let mut url =
            self.collection_url(api_root, &["collections", collection_id, "objects", ""])?;
        {
            let mut pairs = url.query_pairs_mut();
            for (k, v) in query.params() {
                pairs.append_pair(k, &v);
            }
        }
        if url.query() == Some("") {
            url.set_query(None);
        }
        let (envelope, headers): (Envelope, _) = self.get_json(url).await?;
        let header = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(str::to_string)
        };
        Ok(ObjectsPage {
            objects: envelope.objects.unwrap_or_default(),
            more: envelope.more.unwrap_or(false),
            next: envelope.next.filter(|n| !n.is_empty()),
            date_added_first: header("x-taxii-date-added-first"),
            date_added_last: header("x-taxii-date-added-last"),
        })
    }

    /// Starts polling `collection` from `checkpoint` (the `added_after` saved by the previous
    /// poll; `None` = the collection's configured `added_after`, or everything). Call
    /// [`CollectionPoll::next_page`] until it returns `None`.
    pub fn poll_collection(
        &self,
        collection: &CollectionConfig,
        checkpoint: Option<String>,
    ) -> Result<CollectionPoll, TaxiiError> {
        CollectionPoll::new(self.clone(), collection, checkpoint)
    }
}

/// The message of a TAXII error resource (`title: description`), or the start of the body.
fn error_message(body: &[u8]) -> String {
    if let Ok(v) = serde_json::from_slice::<Value>(body) {
        let title = v.get("title").and_then(Value::as_str);
        let description = v.get("description").and_then(Value::as_str);
        match (title, description) {
            (Some(t), Some(d)) => return format!("{t}: {d}"),
            (Some(t), None) => return t.to_string(),
            (None, Some(d)) => return d.to_string(),
            (None, None) => {}
        }
    }
    let text = String::from_utf8_lossy(body);
    let text: String = text.chars().take(300).collect();
    if text.trim().is_empty() {
        "(empty body)".to_string()
    } else {
        text.trim().to_string()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn client(url: &str, allow_http: bool) -> Result<TaxiiClient, TaxiiError> {
        let mut c = TaxiiServerConfig::new("t", url);
        c.allow_http = allow_http;
        TaxiiClient::with_credentials(c, None)
    }

    #[test]
    fn retry_after_seconds_and_dates() {
        let now = DateTime::parse_from_rfc3339("2015-10-21T07:28:00Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(
            parse_retry_after("120", now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(parse_retry_after(" 0 ", now), Some(Duration::ZERO));
        assert_eq!(
            parse_retry_after("99999999999999999999999", now),
            Some(MAX_RETRY_AFTER)
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:30 GMT", now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        for bad in ["", "-5", "soon", "1.5"] {
            assert_eq!(parse_retry_after(bad, now), None, "{bad}");
        }
    }

    #[test]
    fn urls_are_built_and_checked() {
        let c = client("https://taxii.example/taxii2/", false).unwrap();
        assert_eq!(
            c.api_root_url("/api1").unwrap().as_str(),
            "https://taxii.example/api1/"
        );
        assert_eq!(
            c.api_root_url("api1/").unwrap().as_str(),
            "https://taxii.example/taxii2/api1/"
        );
        assert_eq!(
            c.api_root_url("https://other.example/root/")
                .unwrap()
                .as_str(),
            "https://other.example/root/"
        );
        assert!(matches!(
            c.api_root_url("http://other.example/root/"),
            Err(TaxiiError::Config(_))
        ));
        let u = c
            .collection_url("/api1/", &["collections", "a/b?c", "objects", ""])
            .unwrap();
        assert_eq!(
            u.as_str(),
            "https://taxii.example/api1/collections/a%2Fb%3Fc/objects/"
        );
        assert!(matches!(
            client("http://taxii.example/taxii2/", false),
            Err(TaxiiError::Config(_))
        ));
        assert!(client("http://127.0.0.1:1/taxii2/", true).is_ok());
        assert!(matches!(
            client("ftp://x/", true),
            Err(TaxiiError::Config(_))
        ));
        assert!(matches!(
            client("not a url", true),
            Err(TaxiiError::Config(_))
        ));
        let src = c
            .source(&CollectionConfig {
                api_root: "/api1/".into(),
                id: "c1".into(),
                added_after: None,
            })
            .unwrap();
        assert_eq!(src.checkpoint_key(), "t|https://taxii.example/api1/|c1");
    }

    #[test]
    fn query_keeps_filters_and_limit_with_next() {
        let q = ObjectsQuery {
            added_after: Some("2024-01-01T00:00:00Z".into()),
            types: vec!["indicator".into(), "marking-definition".into()],
            version: Some("all".into()),
            limit: Some(100),
            next: Some("tok".into()),
        };
        assert_eq!(
            q.params(),
            vec![
                ("added_after", "2024-01-01T00:00:00Z".to_string()),
                ("match[type]", "indicator,marking-definition".to_string()),
                ("match[version]", "all".to_string()),
                ("limit", "100".to_string()),
                ("next", "tok".to_string()),
            ]
        );
    }

    #[test]
    fn bad_ca_file_and_api_key_header_are_config_errors() {
        let mut cfg = TaxiiServerConfig::new("t", "https://taxii.example/taxii2/");
        cfg.ca_file = Some("/nonexistent/ca.pem".into());
        assert!(matches!(
            TaxiiClient::with_credentials(cfg.clone(), None),
            Err(TaxiiError::Config(_))
        ));
        let dir = std::env::temp_dir().join(format!("secflow-taxii-ca-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("ca.pem"), "not a certificate").unwrap();
        cfg.ca_file = Some(dir.join("ca.pem"));
        assert!(matches!(
            TaxiiClient::with_credentials(cfg, None),
            Err(TaxiiError::Config(_))
        ));
        let _ = std::fs::remove_dir_all(&dir);

        let cfg = TaxiiServerConfig::new("t", "https://taxii.example/taxii2/");
        let bad = Credentials::ApiKey {
            header: "X Bad".into(),
            key: Secret::new("k"),
        };
        assert!(matches!(
            TaxiiClient::with_credentials(cfg.clone(), Some(bad)),
            Err(TaxiiError::Config(_))
        ));
        let bad_value = Credentials::ApiKey {
            header: "X-Key".into(),
            key: Secret::new("line\nbreak"),
        };
        let err = TaxiiClient::with_credentials(cfg, Some(bad_value)).unwrap_err();
        assert!(!err.to_string().contains("line\nbreak"));
    }

    #[test]
    fn error_messages_from_taxii_error_resources() {
        assert_eq!(
            error_message(br#"{"title":"ProcessingError","description":"bad next"}"#),
            "ProcessingError: bad next"
        );
        assert_eq!(error_message(b""), "(empty body)");
        assert_eq!(error_message(&[0xff, 0xfe]), "\u{fffd}\u{fffd}");
    }
}
