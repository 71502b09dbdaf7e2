//! Syslog CEF: CEF lines delivered as syslog messages over TCP, TLS or UDP, for ArcSight
//! SmartConnectors, QRadar event collectors and the syslog forwarder of Microsoft Sentinel's
//! Azure Monitor Agent.
//!
//! # Syslog on an HTTP-shaped engine
//!
//! Syslog has no requests and no answers, but it goes through the same delivery engine as
//! every HTTP sink (batching, backoff, circuit breaker, retry tiers, DLQ), so this sink speaks
//! the engine's request/response contract with a few conventions:
//!
//! - A "request" is one **write** to the receiver: its `url` names the target,
//!   `syslog+tcp://host:port`, `syslog+tls://host:port?server_name=…&ca_file=…&verify=false`
//!   or `syslog+udp://host:port` (see [`SyslogTarget`]), and its `body` is the framed messages
//!   of some records of the batch, at most `max_request_bytes`. The engine's executor
//!   (`pipeline::delivery::http::send`) dispatches on the scheme: `syslog+*` goes to its syslog
//!   transport, which keeps one persistent connection per target, writes the body, and answers
//!   with a synthetic `200` once the bytes are written. For UDP the body holds the messages
//!   octet-counted and the transport sends each one as a datagram (no framing on the wire).
//! - [`Sink::classify`]: `200` means written (delivered). Nothing else is ever produced.
//! - [`Sink::classify_transport_error`]: connect refused, reset, TLS failure, timeout: every
//!   record of the write is retried and the sink is down, so the circuit opens while the
//!   receiver is away, and the engine's backoff paces the reconnects (the transport drops a
//!   failed connection; the next write connects again). The engine re-sends whole writes:
//!   messages of a write that failed half-way may arrive twice (at-least-once).
//! - [`Sink::health_probe`]: a write with an empty body to the same target: the transport
//!   checks (or makes) the connection and writes nothing.
//! - Records that cannot become a syslog message are finished in `build` as permanent
//!   failures (DLQ): not a CEF line (`invalid_payload`), or a message larger than
//!   `max_message_bytes` (`payload_too_large`; receivers would truncate it silently).
//!
//! What "delivered" means: the receiver's kernel accepted the bytes. Plain syslog has no
//! application-level acknowledgement, so messages a receiver had not read yet when it crashed
//! are lost; a receiver that shuts down cleanly (closes its side, reads what is in flight)
//! loses nothing, because the transport checks the connection before each write.
//!
//! # Messages
//!
//! Each record's payload must be a CEF line (`CEF:…`, no line break; the `cef` topic). The
//! message is `frame_rfc5424_pri` / `frame_rfc3164_pri` of it: PRI = facility × 8 + the
//! syslog severity of the CEF header's Severity (critical 2, high 3, medium 4, low 5, info 6;
//! unreadable 5), timestamp = the event time (else the send time), HOSTNAME = the line's
//! `dvchost` (else `hostname`, else `-`), APP-NAME/TAG = `app_name`. On TCP/TLS each message
//! is framed with octet counting (`<len> <msg>`) or an LF.

mod config;
mod target;
#[cfg(test)]
mod tests;

use std::time::SystemTime;

pub use config::{
    SyslogConfig, SyslogFacility, SyslogFormat, SyslogFraming, SyslogTlsConfig, SyslogTransport,
    MAX_UDP_MESSAGE_BYTES,
};
pub use target::{split_octet_counted, SyslogTarget, URL_SCHEME_PREFIX};

use super::event_fields::{cef_hostname, cef_severity, Severity};
use super::{
    classify, pack, BuildResult, Classification, HttpRequest, HttpResponse, Method, Outcome, Sink,
    SinkError, SinkRecord, TransportError,
};
use crate::transform::cef::{
    frame_rfc3164_pri, frame_rfc5424_pri, octet_count, syslog_pri, syslog_severity,
};

/// Syslog severity of a CEF line whose Severity cannot be read: 5, notice.
const UNKNOWN_SYSLOG_SEVERITY: u8 = 5;

/// A syslog CEF sink; see the module documentation.
#[derive(Debug)]
pub struct SyslogSink {
    name: String,
    config: SyslogConfig,
    target: SyslogTarget,
    /// `target` as the requests' URL.
    url: String,
    framing: SyslogFraming,
}

impl SyslogSink {
    /// A sink named `name`.
    ///
    /// # Errors
    /// [`SinkError::Config`] when `address` is not `host:port`, `framing` is set with `udp`,
    /// TLS settings are given without `transport: tls`, `app_name` is empty or not printable
    /// ASCII, or a size limit is 0 or too large (`max_message_bytes` over 65507 with UDP, or
    /// larger than `max_request_bytes`).
    pub fn new(name: impl Into<String>, config: SyslogConfig) -> Result<Self, SinkError> {
        let err = |m: String| SinkError::Config(format!("syslog_cef: {m}"));
        let tls_set = config.tls != SyslogTlsConfig::default();
        if tls_set && config.transport != SyslogTransport::Tls {
            return Err(err(format!(
                "tls settings need `transport: tls` (transport is {})",
                config.transport.as_str()
            )));
        }
        let framing = match (config.transport, config.framing) {
            (SyslogTransport::Udp, Some(_)) => {
                return Err(err(
                    "framing does not apply to udp: each message is one datagram".to_string(),
                ))
            }
            (_, Some(f)) => f,
            (_, None) => SyslogFraming::OctetCounting,
        };
        if config.app_name.is_empty() || !config.app_name.chars().all(|c| c.is_ascii_graphic()) {
            return Err(err(format!(
                "app_name `{}` must be printable ASCII without spaces",
                config.app_name
            )));
        }
        if let Some(h) = &config.hostname {
            if h.is_empty() || !h.chars().all(|c| c.is_ascii_graphic()) {
                return Err(err(format!(
                    "hostname `{h}` must be printable ASCII without spaces"
                )));
            }
        }
        if config.max_message_bytes == 0 {
            return Err(err("max_message_bytes must be at least 1".to_string()));
        }
        if config.transport == SyslogTransport::Udp
            && config.max_message_bytes > MAX_UDP_MESSAGE_BYTES
        {
            return Err(err(format!(
                "max_message_bytes {} is more than a UDP datagram can carry \
                 ({MAX_UDP_MESSAGE_BYTES})",
                config.max_message_bytes
            )));
        }
        // The largest framed message: the length prefix of octet counting adds a few bytes.
        let framed_max = config.max_message_bytes + config.max_message_bytes.to_string().len() + 1;
        if config.max_request_bytes < framed_max {
            return Err(err(format!(
                "max_request_bytes {} is smaller than one framed message of \
                 max_message_bytes ({framed_max} bytes)",
                config.max_request_bytes
            )));
        }
        let target = SyslogTarget::new(
            config.transport,
            &config.address,
            config.tls.ca_file.clone(),
            config.tls.server_name.clone(),
            config.tls.verify,
        )
        .map_err(err)?;
        let url = target.to_url();
        Ok(SyslogSink {
            name: name.into(),
            config,
            target,
            url,
            framing,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &SyslogConfig {
        &self.config
    }

    /// Where messages go.
    pub fn target(&self) -> &SyslogTarget {
        &self.target
    }

    /// How messages are delimited on the wire (UDP: octet counting inside the request body,
    /// split into datagrams by the transport).
    pub fn framing(&self) -> SyslogFraming {
        match self.config.transport {
            SyslogTransport::Udp => SyslogFraming::OctetCounting,
            _ => self.framing,
        }
    }

    /// The syslog message (header and CEF line, unframed) for `record`, sent at `now`.
    ///
    /// # Errors
    /// Why the record is not a CEF line (`invalid_payload`).
    pub fn message(&self, record: &SinkRecord, now: SystemTime) -> Result<Vec<u8>, String> {
        let line = cef_line(record)?;
        let severity = cef_severity(line)
            .map(|s| syslog_severity(event_severity(s)))
            .unwrap_or(UNKNOWN_SYSLOG_SEVERITY);
        let pri = syslog_pri(self.config.facility.code(), severity);
        let host = cef_hostname(line)
            .or_else(|| self.config.hostname.clone())
            .unwrap_or_default();
        let ts_ms = record.event_time_ms.unwrap_or_else(|| millis(now));
        let app = &self.config.app_name;
        Ok(match self.config.format {
            SyslogFormat::Rfc5424 => frame_rfc5424_pri(line.as_bytes(), &host, app, ts_ms, pri),
            SyslogFormat::Rfc3164 => frame_rfc3164_pri(line.as_bytes(), &host, app, ts_ms, pri),
        })
    }

    fn frame(&self, message: Vec<u8>) -> Vec<u8> {
        match self.framing() {
            SyslogFraming::OctetCounting => octet_count(&message),
            SyslogFraming::Lf => {
                let mut m = message;
                m.push(b'\n');
                m
            }
        }
    }

    fn request(&self, body: Vec<u8>, records: Vec<usize>) -> HttpRequest {
        HttpRequest {
            method: Method::Post,
            url: self.url.clone(),
            headers: Vec::new(),
            body,
            records,
        }
    }
}

/// The CEF line of a record: UTF-8 text starting with `CEF:`, one line.
fn cef_line(record: &SinkRecord) -> Result<&str, String> {
    if record.format.is_json() {
        return Err(format!(
            "the syslog CEF sink sends CEF lines, this record is {} JSON: read the `cef` topic",
            record.format.as_str()
        ));
    }
    let text = std::str::from_utf8(&record.payload)
        .map_err(|e| format!("CEF payload is not UTF-8: {e}"))?
        .trim_end_matches(['\r', '\n']);
    if !text.starts_with("CEF:") {
        return Err("payload is not a CEF line (does not start with `CEF:`)".to_string());
    }
    if text.contains(['\n', '\r']) {
        return Err(
            "CEF line has a raw line break inside (CEF escapes them as `\\n`): receivers \
             would split it into several events"
                .to_string(),
        );
    }
    Ok(text)
}

fn event_severity(s: Severity) -> crate::event::Severity {
    match s {
        Severity::Info => crate::event::Severity::Info,
        Severity::Low => crate::event::Severity::Low,
        Severity::Medium => crate::event::Severity::Medium,
        Severity::High => crate::event::Severity::High,
        Severity::Critical => crate::event::Severity::Critical,
    }
}

fn millis(t: SystemTime) -> i64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

impl Sink for SyslogSink {
    fn name(&self) -> &str {
        &self.name
    }

    fn build(&self, batch: &[SinkRecord], now: SystemTime) -> BuildResult {
        let max = self.config.max_message_bytes;
        let mut rejected = Vec::new();
        let mut framed: Vec<(usize, Vec<u8>)> = Vec::with_capacity(batch.len());
        for (i, record) in batch.iter().enumerate() {
            let message = match self.message(record, now) {
                Ok(m) => m,
                Err(e) => {
                    rejected.push((i, Outcome::permanent("invalid_payload", None, e)));
                    continue;
                }
            };
            if message.len() > max {
                rejected.push((
                    i,
                    Outcome::permanent(
                        "payload_too_large",
                        None,
                        format!(
                            "syslog message is {} bytes, more than max_message_bytes {max}: \
                             the receiver would truncate or drop it",
                            message.len()
                        ),
                    ),
                ));
                continue;
            }
            framed.push((i, self.frame(message)));
        }
        let sizes: Vec<(usize, usize)> = framed
            .iter()
            .enumerate()
            .map(|(pos, (_, f))| (pos, f.len()))
            .collect();
        let requests = pack(&sizes, self.config.max_request_bytes, usize::MAX, 0, 0)
            .into_iter()
            .map(|chunk| {
                let len = chunk.iter().map(|&p| framed[p].1.len()).sum();
                let mut body = Vec::with_capacity(len);
                let mut records = Vec::with_capacity(chunk.len());
                for p in chunk {
                    body.extend_from_slice(&framed[p].1);
                    records.push(framed[p].0);
                }
                self.request(body, records)
            })
            .collect();
        BuildResult { requests, rejected }
    }

    fn classify(&self, request: &HttpRequest, response: &HttpResponse) -> Classification {
        // The transport answers 200 once the body is written; any other status is not from
        // it (a misrouted request), read by the generic rules.
        classify::by_status(response, request.records.len(), None, &[])
    }

    fn classify_transport_error(
        &self,
        request: &HttpRequest,
        error: &TransportError,
    ) -> Classification {
        // Refused, reset, TLS, timeout: retry every record and count the sink as down, so the
        // circuit opens while the receiver is away and the engine paces the reconnects.
        classify::transport_error(error, request.records.len(), str::to_string)
    }

    fn health_probe(&self) -> Option<HttpRequest> {
        Some(self.request(Vec::new(), Vec::new()))
    }
}
