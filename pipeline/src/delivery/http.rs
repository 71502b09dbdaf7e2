//! The one executor of the delivery engine: executes a sink's [`HttpRequest`] and maps
//! failures to the sink contract's transport error kinds. It dispatches on the URL's scheme:
//! `http(s)://` goes to the shared reqwest client, `syslog+tcp|tls|udp://` to the syslog
//! transport ([`super::syslog_transport`]), which writes the body to a persistent connection
//! and answers with a synthetic `200`.

use std::time::Duration;

use processors::sink::{HttpRequest, HttpResponse, Method, TransportError, TransportErrorKind};

use super::syslog_transport::{self, SyslogConnections};

/// Largest response body read (a misbehaving proxy cannot exhaust memory).
const MAX_RESPONSE_BYTES: usize = 16 * 1024 * 1024;

/// The engine's shared client state: the HTTP client (with its connection pool) and the open
/// syslog connections.
#[derive(Debug)]
pub struct Executor {
    http: reqwest::Client,
    syslog: SyslogConnections,
}

/// Builds the shared executor: TLS verification on, bounded timeouts.
pub fn client(timeout: Duration) -> Result<Executor, reqwest::Error> {
    let http = reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(5)))
        .pool_max_idle_per_host(16)
        .build()?;
    Ok(Executor {
        http,
        syslog: SyslogConnections::new(timeout),
    })
}

/// Sends one request; a response of any status is `Ok`.
pub async fn send(
    executor: &Executor,
    request: &HttpRequest,
) -> Result<HttpResponse, TransportError> {
    if syslog_transport::is_syslog_url(&request.url) {
        return executor.syslog.send(request).await;
    }
    let client = &executor.http;
    let method = match request.method {
        Method::Get => reqwest::Method::GET,
        Method::Post => reqwest::Method::POST,
        Method::Put => reqwest::Method::PUT,
    };
    let mut rb = client.request(method, &request.url);
    for (k, v) in &request.headers {
        rb = rb.header(k, v);
    }
    if !request.body.is_empty() || request.method != Method::Get {
        rb = rb.body(request.body.clone());
    }
    let mut resp = rb.send().await.map_err(transport)?;
    let status = resp.status().as_u16();
    let headers = resp
        .headers()
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(transport)? {
        if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
            break;
        }
        body.extend_from_slice(&chunk);
    }
    Ok(HttpResponse {
        status,
        headers,
        body,
    })
}

fn transport(e: reqwest::Error) -> TransportError {
    let kind = if e.is_connect() {
        TransportErrorKind::Connect
    } else if e.is_timeout() {
        TransportErrorKind::Timeout
    } else if e.is_request() || e.is_body() || e.is_decode() {
        TransportErrorKind::Closed
    } else {
        TransportErrorKind::Other
    };
    // Strip the URL: it may carry a secret (Sumo Logic source URLs are the secret).
    TransportError {
        kind,
        message: e.without_url().to_string(),
    }
}
