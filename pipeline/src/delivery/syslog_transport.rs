//! The syslog side of the engine's executor: writes the body of a `syslog+tcp://`,
//! `syslog+tls://` or `syslog+udp://` request (see `processors::sink::syslog`) to the receiver
//! and answers with a synthetic `200`, so syslog runs through the same engine (batching,
//! backoff, circuit breaker, tiers, DLQ) as the HTTP sinks.
//!
//! - One persistent connection per target URL, shared by every batch in flight: writes are
//!   serialised on it, so the frames of two requests never interleave.
//! - Before each write the connection is checked without blocking: a receiver that closed its
//!   side (restart, idle timeout, load balancer) is noticed here and a new connection is made,
//!   instead of writing into a dead socket whose bytes the kernel would accept and lose.
//! - Any failure (connect, TLS handshake, write, flush, no progress within the stage's
//!   `timeout_ms`) drops the connection and returns a [`TransportError`]; the sink classifies
//!   it as retry + sink down, so the circuit opens and the engine's backoff paces the
//!   reconnects. The next write connects again.
//! - An empty body (the sink's health probe) only checks or makes the connection.
//! - TLS: native-tls (OpenSSL on Linux, already in the build through reqwest), certificate
//!   and name verified against the system roots plus `ca_file` unless `verify=false`; the name
//!   is `server_name` or the host.
//! - UDP: the body holds octet-counted messages; each is sent as one datagram. UDP reports
//!   nothing back, except "port unreachable" on loopback or where ICMP gets through (a later
//!   send fails with "connection refused").

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::FutureExt;
use processors::sink::syslog::SyslogTransport as Transport;
use processors::sink::syslog::{split_octet_counted, SyslogTarget, URL_SCHEME_PREFIX};
use processors::sink::{HttpRequest, HttpResponse, TransportError, TransportErrorKind};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio_native_tls::native_tls;
use tokio_native_tls::TlsStream;

/// Whether `url` is a syslog target (handled here rather than by the HTTP client).
pub fn is_syslog_url(url: &str) -> bool {
    url.starts_with(URL_SCHEME_PREFIX)
}

/// One open connection to a receiver.
#[derive(Debug)]
enum Connection {
    Tcp(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
    Udp(UdpSocket),
}

type Slot = Arc<tokio::sync::Mutex<Option<Connection>>>;

/// The syslog connections of one delivery engine.
#[derive(Debug)]
pub struct SyslogConnections {
    timeout: Duration,
    slots: Mutex<HashMap<String, Slot>>,
}

impl SyslogConnections {
    /// No connection yet; each send (connect included) must make progress within `timeout`.
    pub fn new(timeout: Duration) -> Self {
        SyslogConnections {
            timeout,
            slots: Mutex::new(HashMap::new()),
        }
    }

    fn slot(&self, url: &str) -> Slot {
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        slots.entry(url.to_string()).or_default().clone()
    }

    /// Writes the request's body to its target (connecting first if needed) and answers `200`.
    ///
    /// # Errors
    /// A [`TransportError`] (`Connect`, `Tls`, `Closed`, `Timeout`, `Other` for a malformed
    /// request); the connection is dropped, the next send reconnects.
    pub async fn send(&self, request: &HttpRequest) -> Result<HttpResponse, TransportError> {
        let target = SyslogTarget::from_url(&request.url).map_err(|e| TransportError {
            kind: TransportErrorKind::Other,
            message: e,
        })?;
        let slot = self.slot(&request.url);
        let mut connection = slot.lock().await;
        let written =
            tokio::time::timeout(self.timeout, write(&mut connection, &target, &request.body))
                .await
                .unwrap_or_else(|_| {
                    Err(failure(
                        TransportErrorKind::Timeout,
                        &target,
                        format!("no progress within {} ms", self.timeout.as_millis()),
                    ))
                });
        match written {
            Ok(()) => Ok(HttpResponse {
                status: 200,
                headers: Vec::new(),
                body: Vec::new(),
            }),
            Err(e) => {
                *connection = None;
                Err(e)
            }
        }
    }
}

fn failure(kind: TransportErrorKind, target: &SyslogTarget, what: String) -> TransportError {
    TransportError {
        kind,
        message: format!(
            "syslog {} {}: {what}",
            target.transport.as_str(),
            target.address()
        ),
    }
}

async fn write(
    connection: &mut Option<Connection>,
    target: &SyslogTarget,
    body: &[u8],
) -> Result<(), TransportError> {
    if connection.as_mut().is_some_and(|c| !c.is_open()) {
        tracing::debug!(target = %target.address(), "syslog receiver closed the connection; reconnecting");
        *connection = None;
    }
    let open = match connection {
        Some(c) => c,
        None => connection.insert(connect(target).await?),
    };
    if body.is_empty() {
        return Ok(());
    }
    let closed = |e: std::io::Error| {
        failure(
            TransportErrorKind::Closed,
            target,
            format!("write failed: {e}"),
        )
    };
    match open {
        Connection::Tcp(s) => {
            s.write_all(body).await.map_err(closed)?;
            s.flush().await.map_err(closed)
        }
        Connection::Tls(s) => {
            s.write_all(body).await.map_err(closed)?;
            s.flush().await.map_err(closed)
        }
        Connection::Udp(s) => {
            let messages = split_octet_counted(body).map_err(|e| {
                failure(
                    TransportErrorKind::Other,
                    target,
                    format!("request body is not octet-counted messages: {e}"),
                )
            })?;
            for m in messages {
                s.send(m).await.map_err(|e| {
                    let kind = if e.kind() == std::io::ErrorKind::ConnectionRefused {
                        TransportErrorKind::Connect
                    } else {
                        TransportErrorKind::Closed
                    };
                    failure(kind, target, format!("send failed: {e}"))
                })?;
            }
            Ok(())
        }
    }
}

impl Connection {
    /// Whether the receiver still has its side open, without waiting: a syslog receiver never
    /// sends anything, so a readable end of stream (or an error) means it closed or reset the
    /// connection. Stray bytes are read and ignored (for TLS this also consumes session
    /// tickets).
    fn is_open(&mut self) -> bool {
        match self {
            Connection::Tcp(s) => stream_is_open(s),
            Connection::Tls(s) => stream_is_open(s.as_mut()),
            Connection::Udp(_) => true,
        }
    }
}

fn stream_is_open<S: AsyncRead + Unpin>(stream: &mut S) -> bool {
    let mut buf = [0u8; 1024];
    // Bounded: a receiver that keeps talking is still open.
    for _ in 0..16 {
        match stream.read(&mut buf).now_or_never() {
            None => return true,
            Some(Ok(0)) | Some(Err(_)) => return false,
            Some(Ok(_)) => continue,
        }
    }
    true
}

async fn connect(target: &SyslogTarget) -> Result<Connection, TransportError> {
    let cannot = |e: std::io::Error| {
        failure(
            TransportErrorKind::Connect,
            target,
            format!("cannot connect: {e}"),
        )
    };
    match target.transport {
        Transport::Tcp => {
            let s = tcp(target).await.map_err(cannot)?;
            Ok(Connection::Tcp(s))
        }
        Transport::Tls => {
            let connector = tls_connector(target).await?;
            let s = tcp(target).await.map_err(cannot)?;
            let name = target.tls_name();
            let tls = connector.connect(name, s).await.map_err(|e| {
                failure(
                    TransportErrorKind::Tls,
                    target,
                    format!("TLS handshake with `{name}` failed: {e}"),
                )
            })?;
            Ok(Connection::Tls(Box::new(tls)))
        }
        Transport::Udp => {
            let addr = tokio::net::lookup_host((target.host.as_str(), target.port))
                .await
                .map_err(cannot)?
                .next()
                .ok_or_else(|| {
                    failure(
                        TransportErrorKind::Connect,
                        target,
                        "the host name has no address".to_string(),
                    )
                })?;
            let local = if addr.is_ipv4() {
                "0.0.0.0:0"
            } else {
                "[::]:0"
            };
            let s = UdpSocket::bind(local).await.map_err(cannot)?;
            s.connect(addr).await.map_err(cannot)?;
            Ok(Connection::Udp(s))
        }
    }
}

async fn tcp(target: &SyslogTarget) -> std::io::Result<TcpStream> {
    let s = TcpStream::connect((target.host.as_str(), target.port)).await?;
    // Each write is a whole batch of messages: send it now.
    s.set_nodelay(true)?;
    Ok(s)
}

/// The TLS connector for a target: system roots plus `ca_file` (read at every connect, so a
/// rotated CA file is picked up on the next reconnect).
async fn tls_connector(
    target: &SyslogTarget,
) -> Result<tokio_native_tls::TlsConnector, TransportError> {
    let tls_err = |what: String| failure(TransportErrorKind::Tls, target, what);
    let mut builder = native_tls::TlsConnector::builder();
    if let Some(path) = &target.ca_file {
        let pem = tokio::fs::read(path)
            .await
            .map_err(|e| tls_err(format!("cannot read tls.ca_file {}: {e}", path.display())))?;
        let certs = native_tls::Certificate::stack_from_pem(&pem).map_err(|e| {
            tls_err(format!(
                "tls.ca_file {} is not PEM certificates: {e}",
                path.display()
            ))
        })?;
        if certs.is_empty() {
            return Err(tls_err(format!(
                "tls.ca_file {} holds no certificate",
                path.display()
            )));
        }
        for c in certs {
            builder.add_root_certificate(c);
        }
    }
    if !target.verify {
        builder
            .danger_accept_invalid_certs(true)
            .danger_accept_invalid_hostnames(true);
    }
    let connector = builder
        .build()
        .map_err(|e| tls_err(format!("TLS setup: {e}")))?;
    Ok(tokio_native_tls::TlsConnector::from(connector))
}
