//! A syslog receiver standing in for an ArcSight SmartConnector, a QRadar event collector or
//! the rsyslog forwarder of Sentinel's Azure Monitor Agent: TCP (RFC 6587), TLS (RFC 5425,
//! with a self-signed certificate made at start) or UDP (RFC 5426).
//!
//! - Framing is detected per frame, as rsyslog does: a frame that starts with a digit is
//!   octet-counted (`<len> <msg>`), one that starts with `<` runs to the next LF. Anything
//!   else cannot be resynchronised: it is recorded as a problem and the connection closed.
//! - Each message is parsed as RFC 5424 or RFC 3164 and its MSG must be a CEF line
//!   (`CEF:0|` and seven header fields). Valid messages are recorded with their header
//!   fields; invalid ones are recorded as problems with the reason.
//! - [`SyslogSim::stop`] shuts down like a well-behaved receiver restarting: it stops
//!   accepting, closes its side of every connection (FIN, or TLS close_notify), keeps reading
//!   what the senders had in flight for `drain_grace`, then closes. [`SyslogSim::restart`]
//!   listens again on the same port. [`SyslogSim::abort`] closes everything at once (a crash:
//!   unread bytes are lost, as with a real receiver).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use processors::sink::event_fields::{cef_extension, cef_header};
use serde::Serialize;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};

use super::SimError;
use crate::tls::TlsMaterial;

/// What the simulator listens on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SyslogSimTransport {
    /// Plain TCP.
    Tcp,
    /// TLS over TCP, with a self-signed certificate for `localhost`, `127.0.0.1` and `::1`.
    Tls,
    /// UDP: one message per datagram.
    Udp,
}

impl SyslogSimTransport {
    /// `tcp`, `tls` or `udp`.
    pub fn as_str(self) -> &'static str {
        match self {
            SyslogSimTransport::Tcp => "tcp",
            SyslogSimTransport::Tls => "tls",
            SyslogSimTransport::Udp => "udp",
        }
    }
}

/// Settings of a syslog simulator.
#[derive(Debug, Clone)]
pub struct SyslogSimConfig {
    /// Where to listen; port 0 picks a free one (kept across restarts).
    pub addr: SocketAddr,
    /// TCP, TLS or UDP.
    pub transport: SyslogSimTransport,
    /// On [`SyslogSim::stop`], how long connections are still read after the simulator closed
    /// its side (what the senders had in flight).
    pub drain_grace: Duration,
    /// Largest frame (octet-counted length, or LF line) accepted; a larger one is a problem and
    /// closes the connection.
    pub max_frame_bytes: usize,
}

impl SyslogSimConfig {
    /// Loopback, free port, the given transport.
    pub fn new(transport: SyslogSimTransport) -> Self {
        SyslogSimConfig {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            transport,
            drain_grace: Duration::from_millis(500),
            max_frame_bytes: 1024 * 1024,
        }
    }
}

/// How a message was delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SyslogFraming {
    /// `<len> <msg>` (RFC 6587 §3.4.1).
    OctetCounting,
    /// `<msg>\n` (RFC 6587 §3.4.2).
    Lf,
    /// One UDP datagram.
    Datagram,
}

/// Which syslog header a message had.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SyslogHeader {
    /// RFC 5424.
    Rfc5424,
    /// RFC 3164 (BSD).
    Rfc3164,
}

/// A syslog message's header fields and its CEF line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ParsedSyslog {
    /// RFC 5424 or RFC 3164.
    pub header: SyslogHeader,
    /// Facility (PRI / 8).
    pub facility: u8,
    /// Severity (PRI % 8).
    pub severity: u8,
    /// The timestamp as written, `None` when absent (`-` or left out).
    pub timestamp: Option<String>,
    /// HOSTNAME (`-` when the sender wrote the NILVALUE).
    pub hostname: String,
    /// APP-NAME (RFC 5424) or TAG (RFC 3164).
    pub app_name: String,
    /// The MSG: the CEF line.
    pub cef: String,
}

/// One valid message received.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SyslogMessage {
    /// Which connection (counted from 1 over the simulator's life; 0 for UDP).
    pub connection: u64,
    /// How it was delimited.
    pub framing: SyslogFraming,
    /// The parsed message.
    #[serde(flatten)]
    pub parsed: ParsedSyslog,
    /// The CEF `externalId` (secflow writes the event id there).
    pub event_id: Option<String>,
    /// When it was read, milliseconds since the Unix epoch.
    pub received_at_ms: i64,
}

/// Something received that is not a valid syslog CEF message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SyslogProblem {
    /// Which connection (0 for UDP).
    pub connection: u64,
    /// Why it was refused.
    pub reason: String,
    /// The start of the bytes (lossy UTF-8, at most 200 bytes).
    pub raw: String,
}

#[derive(Debug, Default)]
struct Recorded {
    messages: Vec<SyslogMessage>,
    problems: Vec<SyslogProblem>,
    connections: u64,
    per_event: HashMap<String, u64>,
}

#[derive(Debug, Default)]
struct State {
    recorded: Mutex<Recorded>,
}

impl State {
    fn lock(&self) -> MutexGuard<'_, Recorded> {
        self.recorded.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn accept(&self, connection: u64, framing: SyslogFraming, frame: &[u8]) {
        let parsed = parse_message(frame);
        let mut r = self.lock();
        match parsed {
            Ok(parsed) => {
                let event_id = cef_extension(&parsed.cef, "externalId");
                if let Some(id) = &event_id {
                    *r.per_event.entry(id.clone()).or_default() += 1;
                }
                r.messages.push(SyslogMessage {
                    connection,
                    framing,
                    parsed,
                    event_id,
                    received_at_ms: now_ms(),
                });
            }
            Err(reason) => r.problems.push(problem(connection, reason, frame)),
        }
    }

    fn problem(&self, connection: u64, reason: String, raw: &[u8]) {
        self.lock().problems.push(problem(connection, reason, raw));
    }
}

fn problem(connection: u64, reason: String, raw: &[u8]) -> SyslogProblem {
    let cut = &raw[..raw.len().min(200)];
    SyslogProblem {
        connection,
        reason,
        raw: String::from_utf8_lossy(cut).into_owned(),
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

#[derive(Debug)]
struct Running {
    stop: watch::Sender<StopMode>,
    task: JoinHandle<()>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StopMode {
    Run,
    Graceful,
    Abort,
}

/// A running (or stopped) syslog simulator; see the module documentation.
#[derive(Debug)]
pub struct SyslogSim {
    config: SyslogSimConfig,
    addr: SocketAddr,
    state: Arc<State>,
    tls: Option<TlsMaterial>,
    running: Option<Running>,
}

impl SyslogSim {
    /// Binds `config.addr` and receives in a tokio task until [`stop`](Self::stop).
    ///
    /// # Errors
    /// [`SimError::Bind`] when the address cannot be bound, [`SimError::Config`] when the TLS
    /// certificate cannot be made.
    pub async fn start(config: SyslogSimConfig) -> Result<SyslogSim, SimError> {
        let tls = match config.transport {
            SyslogSimTransport::Tls => Some(TlsMaterial::self_signed().map_err(SimError::Config)?),
            _ => None,
        };
        let mut sim = SyslogSim {
            addr: config.addr,
            config,
            state: Arc::new(State::default()),
            tls,
            running: None,
        };
        sim.listen(sim.config.addr).await?;
        tracing::info!(addr = %sim.addr, transport = sim.config.transport.as_str(), "syslog simulator listening");
        Ok(sim)
    }

    async fn listen(&mut self, addr: SocketAddr) -> Result<(), SimError> {
        let bind_err = |source| SimError::Bind { addr, source };
        let (tx, rx) = watch::channel(StopMode::Run);
        let state = self.state.clone();
        let task = match self.config.transport {
            SyslogSimTransport::Udp => {
                let socket = UdpSocket::bind(addr).await.map_err(bind_err)?;
                self.addr = socket.local_addr().map_err(SimError::LocalAddr)?;
                tokio::spawn(serve_udp(socket, state, rx))
            }
            SyslogSimTransport::Tcp | SyslogSimTransport::Tls => {
                let listener = TcpListener::bind(addr).await.map_err(bind_err)?;
                self.addr = listener.local_addr().map_err(SimError::LocalAddr)?;
                let settings = StreamSettings {
                    tls: self.tls.as_ref().map(|t| t.acceptor.clone()),
                    grace: self.config.drain_grace,
                    max_frame: self.config.max_frame_bytes,
                };
                tokio::spawn(serve_streams(listener, state, settings, rx))
            }
        };
        self.running = Some(Running { stop: tx, task });
        Ok(())
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// `host:port`, as the sink's `address`.
    pub fn address(&self) -> String {
        self.addr.to_string()
    }

    /// TCP, TLS or UDP.
    pub fn transport(&self) -> SyslogSimTransport {
        self.config.transport
    }

    /// TLS: the simulator's self-signed certificate (PEM), which is its own CA: give it to the
    /// sink as `tls.ca_file`.
    pub fn ca_pem(&self) -> Option<&str> {
        self.tls.as_ref().map(|t| t.cert_pem.as_str())
    }

    /// Whether it is listening.
    pub fn is_running(&self) -> bool {
        self.running.is_some()
    }

    /// Stops like a receiver that shuts down cleanly (see the module documentation) and waits
    /// until every connection is closed. The port is free afterwards.
    pub async fn stop(&mut self) {
        self.halt(StopMode::Graceful).await;
    }

    /// Stops at once: connections are closed without reading what is in flight (a crash).
    pub async fn abort(&mut self) {
        self.halt(StopMode::Abort).await;
    }

    async fn halt(&mut self, mode: StopMode) {
        if let Some(Running { stop, task }) = self.running.take() {
            let _ = stop.send(mode);
            if let Err(e) = task.await {
                tracing::error!(error = %e, "syslog simulator task failed");
            }
            tracing::info!(addr = %self.addr, "syslog simulator stopped");
        }
    }

    /// Listens again on the same address and port (after [`stop`](Self::stop)); what was
    /// received so far is kept.
    ///
    /// # Errors
    /// [`SimError::Bind`] when the port was taken meanwhile.
    pub async fn restart(&mut self) -> Result<(), SimError> {
        self.halt(StopMode::Graceful).await;
        self.listen(self.addr).await?;
        tracing::info!(addr = %self.addr, "syslog simulator restarted");
        Ok(())
    }

    /// Every valid message received, in order of arrival.
    pub fn messages(&self) -> Vec<SyslogMessage> {
        self.state.lock().messages.clone()
    }

    /// Valid messages received after the first `skip`.
    pub fn messages_since(&self, skip: usize) -> Vec<SyslogMessage> {
        self.state
            .lock()
            .messages
            .get(skip..)
            .map(<[SyslogMessage]>::to_vec)
            .unwrap_or_default()
    }

    /// How many valid messages arrived.
    pub fn message_count(&self) -> usize {
        self.state.lock().messages.len()
    }

    /// Everything refused, with the reasons.
    pub fn problems(&self) -> Vec<SyslogProblem> {
        self.state.lock().problems.clone()
    }

    /// TCP/TLS connections accepted over the simulator's life (restarts included).
    pub fn connections(&self) -> u64 {
        self.state.lock().connections
    }

    /// How often each CEF `externalId` (event id) arrived.
    pub fn event_counts(&self) -> HashMap<String, u64> {
        self.state.lock().per_event.clone()
    }

    /// Event ids that arrived more than once, with how often.
    pub fn duplicate_event_ids(&self) -> HashMap<String, u64> {
        self.state
            .lock()
            .per_event
            .iter()
            .filter(|(_, n)| **n > 1)
            .map(|(k, n)| (k.clone(), *n))
            .collect()
    }
}

impl Drop for SyslogSim {
    fn drop(&mut self) {
        if let Some(r) = &self.running {
            let _ = r.stop.send(StopMode::Abort);
        }
    }
}

#[derive(Clone)]
struct StreamSettings {
    tls: Option<tokio_native_tls::TlsAcceptor>,
    grace: Duration,
    max_frame: usize,
}

async fn serve_streams(
    listener: TcpListener,
    state: Arc<State>,
    settings: StreamSettings,
    mut stop: watch::Receiver<StopMode>,
) {
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            accepted = listener.accept() => {
                let (stream, _) = match accepted {
                    Ok(s) => s,
                    Err(e) => {
                        tracing::warn!(error = %e, "syslog simulator accept failed");
                        tokio::time::sleep(Duration::from_millis(10)).await;
                        continue;
                    }
                };
                let id = {
                    let mut r = state.lock();
                    r.connections += 1;
                    r.connections
                };
                let (state, settings, stop) = (state.clone(), settings.clone(), stop.clone());
                conns.spawn(async move {
                    match &settings.tls {
                        None => read_stream(stream, id, &state, &settings, stop).await,
                        Some(acceptor) => {
                            let handshake = tokio::time::timeout(
                                Duration::from_secs(10),
                                acceptor.accept(stream),
                            )
                            .await;
                            match handshake {
                                Ok(Ok(tls)) => read_stream(tls, id, &state, &settings, stop).await,
                                Ok(Err(e)) => state.problem(id, format!("TLS handshake failed: {e}"), b""),
                                Err(_) => state.problem(id, "TLS handshake timed out".to_string(), b""),
                            }
                        }
                    }
                });
            }
        }
    }
    // Free the port before draining, so a restart can bind it.
    drop(listener);
    while conns.join_next().await.is_some() {}
}

/// Reads frames from one connection until the sender closes it, a frame is invalid beyond
/// resynchronisation, or the simulator stops.
async fn read_stream<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    id: u64,
    state: &State,
    settings: &StreamSettings,
    mut stop: watch::Receiver<StopMode>,
) {
    let mut buf: Vec<u8> = Vec::with_capacity(64 * 1024);
    let mut chunk = vec![0u8; 64 * 1024];
    let mut deadline: Option<tokio::time::Instant> = None;
    loop {
        let read = match deadline {
            None => tokio::select! {
                changed = stop.changed() => {
                    let mode = if changed.is_ok() { *stop.borrow() } else { StopMode::Abort };
                    if mode == StopMode::Abort {
                        return;
                    }
                    // Close our side; keep reading what is in flight for the grace period.
                    let _ = stream.shutdown().await;
                    deadline = Some(tokio::time::Instant::now() + settings.grace);
                    continue;
                }
                r = stream.read(&mut chunk) => r,
            },
            Some(at) => match tokio::time::timeout_at(at, stream.read(&mut chunk)).await {
                Ok(r) => r,
                Err(_) => break,
            },
        };
        let n = match read {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        buf.extend_from_slice(&chunk[..n]);
        loop {
            match next_frame(&buf, settings.max_frame) {
                Frame::Incomplete => break,
                Frame::Complete {
                    framing,
                    start,
                    end,
                    consumed,
                } => {
                    state.accept(id, framing, &buf[start..end]);
                    buf.drain(..consumed);
                }
                Frame::Invalid(reason) => {
                    state.problem(id, reason, &buf);
                    return;
                }
            }
        }
    }
    if !buf.iter().all(|b| matches!(b, b'\n' | b'\r')) {
        state.problem(
            id,
            format!(
                "connection closed in the middle of a frame ({} bytes)",
                buf.len()
            ),
            &buf,
        );
    }
}

async fn serve_udp(socket: UdpSocket, state: Arc<State>, mut stop: watch::Receiver<StopMode>) {
    let mut buf = vec![0u8; 65_536];
    loop {
        tokio::select! {
            _ = stop.changed() => return,
            r = socket.recv_from(&mut buf) => match r {
                Ok((n, _)) => state.accept(0, SyslogFraming::Datagram, &buf[..n]),
                // A previous ICMP error surfacing; nothing to do.
                Err(_) => continue,
            }
        }
    }
}

/// The result of looking for one frame at the start of a buffer.
#[derive(Debug, PartialEq, Eq)]
pub enum Frame {
    /// More bytes are needed.
    Incomplete,
    /// A whole frame: the message is `buf[start..end]`, the frame (and its delimiter)
    /// `buf[..consumed]`.
    Complete {
        /// How it was delimited.
        framing: SyslogFraming,
        /// Where the message starts.
        start: usize,
        /// Where it ends.
        end: usize,
        /// Bytes to drop from the buffer.
        consumed: usize,
    },
    /// The stream cannot be read as syslog frames any more.
    Invalid(String),
}

/// The first frame in `buf`: octet-counted when it starts with a digit, else LF-terminated
/// (which must start with `<`). Stray CR/LF between frames are skipped.
pub fn next_frame(buf: &[u8], max_frame: usize) -> Frame {
    let skip = buf
        .iter()
        .take_while(|b| matches!(b, b'\n' | b'\r'))
        .count();
    let rest = &buf[skip..];
    let Some(&first) = rest.first() else {
        return Frame::Incomplete;
    };
    if first.is_ascii_digit() {
        let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
        if digits == rest.len() {
            return if digits > 9 {
                Frame::Invalid("octet count longer than 9 digits".to_string())
            } else {
                Frame::Incomplete
            };
        }
        if rest[digits] != b' ' || digits > 9 {
            return Frame::Invalid("octet count not followed by a space".to_string());
        }
        let len: usize = std::str::from_utf8(&rest[..digits])
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(usize::MAX);
        if len > max_frame {
            return Frame::Invalid(format!(
                "octet-counted frame of {len} bytes exceeds {max_frame}"
            ));
        }
        let start = skip + digits + 1;
        if buf.len() < start + len {
            return Frame::Incomplete;
        }
        Frame::Complete {
            framing: SyslogFraming::OctetCounting,
            start,
            end: start + len,
            consumed: start + len,
        }
    } else if first == b'<' {
        match rest.iter().position(|b| *b == b'\n') {
            Some(lf) => {
                let mut end = skip + lf;
                if end > skip && buf[end - 1] == b'\r' {
                    end -= 1;
                }
                Frame::Complete {
                    framing: SyslogFraming::Lf,
                    start: skip,
                    end,
                    consumed: skip + lf + 1,
                }
            }
            None if rest.len() > max_frame => {
                Frame::Invalid(format!("LF-framed message longer than {max_frame} bytes"))
            }
            None => Frame::Incomplete,
        }
    } else {
        Frame::Invalid(format!(
            "frame starts with byte {first:#04x}: neither an octet count nor `<PRI>`"
        ))
    }
}

/// Parses one syslog message (RFC 5424 or RFC 3164) whose MSG must be a CEF line.
///
/// # Errors
/// Why the message is not valid syslog CEF.
pub fn parse_message(frame: &[u8]) -> Result<ParsedSyslog, String> {
    let text = std::str::from_utf8(frame).map_err(|e| format!("not UTF-8: {e}"))?;
    let rest = text.strip_prefix('<').ok_or("no `<PRI>`")?;
    let close = rest
        .find('>')
        .filter(|&i| (1..=3).contains(&i))
        .ok_or("bad PRI")?;
    let pri: u8 = rest[..close]
        .parse()
        .ok()
        .filter(|p| *p <= 191)
        .ok_or("PRI is not 0..191")?;
    if close > 1 && rest.starts_with('0') {
        return Err("PRI has a leading zero".to_string());
    }
    let rest = &rest[close + 1..];
    let (header, timestamp, hostname, app_name, msg) = match rest.strip_prefix("1 ") {
        Some(r5424) => parse_5424(r5424)?,
        None => parse_3164(rest)?,
    };
    let (fields, _) = cef_header(msg).ok_or("MSG is not a CEF line (7 header fields)")?;
    if !msg.starts_with("CEF:0|") {
        return Err(format!(
            "MSG does not start with `CEF:0|`: {}",
            msg.chars().take(20).collect::<String>()
        ));
    }
    if fields.len() != 7 {
        return Err("CEF header incomplete".to_string());
    }
    Ok(ParsedSyslog {
        header,
        facility: pri / 8,
        severity: pri % 8,
        timestamp,
        hostname: hostname.to_string(),
        app_name: app_name.to_string(),
        cef: msg.to_string(),
    })
}

type Header<'a> = (SyslogHeader, Option<String>, &'a str, &'a str, &'a str);

fn printable(field: &str, max: usize, what: &str) -> Result<(), String> {
    if field.is_empty() || field.len() > max || !field.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(format!(
            "{what} `{field}` is not 1..{max} printable ASCII characters"
        ));
    }
    Ok(())
}

/// `TIMESTAMP HOSTNAME APP-NAME PROCID MSGID SD [MSG]` after `<PRI>1 `.
fn parse_5424(s: &str) -> Result<Header<'_>, String> {
    let mut parts = s.splitn(6, ' ');
    let mut next = |what: &str| parts.next().ok_or(format!("RFC 5424: no {what}"));
    let ts = next("TIMESTAMP")?;
    let host = next("HOSTNAME")?;
    let app = next("APP-NAME")?;
    let procid = next("PROCID")?;
    let msgid = next("MSGID")?;
    let rest = next("STRUCTURED-DATA")?;
    let timestamp = if ts == "-" {
        None
    } else if is_rfc3339(ts) {
        Some(ts.to_string())
    } else {
        return Err(format!("RFC 5424: TIMESTAMP `{ts}` is not RFC 3339"));
    };
    printable(host, 255, "HOSTNAME")?;
    printable(app, 48, "APP-NAME")?;
    printable(procid, 128, "PROCID")?;
    printable(msgid, 32, "MSGID")?;
    let msg = if let Some(after) = rest.strip_prefix('-') {
        after
    } else if rest.starts_with('[') {
        skip_structured_data(rest)?
    } else {
        return Err("RFC 5424: STRUCTURED-DATA is neither `-` nor `[…]`".to_string());
    };
    let msg = match msg.strip_prefix(' ') {
        Some(m) => m,
        None if msg.is_empty() => msg,
        None => return Err("RFC 5424: no space before MSG".to_string()),
    };
    // A BOM marks UTF-8 MSG (RFC 5424 §6.4).
    let msg = msg.strip_prefix('\u{feff}').unwrap_or(msg);
    Ok((SyslogHeader::Rfc5424, timestamp, host, app, msg))
}

/// Skips `[id k="v"…]…` and returns what follows.
fn skip_structured_data(s: &str) -> Result<&str, String> {
    let bytes = s.as_bytes();
    let mut i = 0;
    while bytes.get(i) == Some(&b'[') {
        let mut in_value = false;
        i += 1;
        loop {
            match bytes.get(i) {
                None => return Err("RFC 5424: unterminated STRUCTURED-DATA".to_string()),
                Some(b'\\') if in_value => i += 2,
                Some(b'"') => {
                    in_value = !in_value;
                    i += 1;
                }
                Some(b']') if !in_value => {
                    i += 1;
                    break;
                }
                Some(_) => i += 1,
            }
        }
    }
    Ok(&s[i..])
}

/// `YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)`.
fn is_rfc3339(ts: &str) -> bool {
    let b = ts.as_bytes();
    let digits =
        |r: std::ops::Range<usize>| b.get(r).is_some_and(|s| s.iter().all(u8::is_ascii_digit));
    if b.len() < 20
        || !digits(0..4)
        || b[4] != b'-'
        || !digits(5..7)
        || b[7] != b'-'
        || !digits(8..10)
        || b[10] != b'T'
        || !digits(11..13)
        || b[13] != b':'
        || !digits(14..16)
        || b[16] != b':'
        || !digits(17..19)
    {
        return false;
    }
    let mut i = 19;
    if b[i] == b'.' {
        let frac = b[i + 1..].iter().take_while(|c| c.is_ascii_digit()).count();
        if !(1..=6).contains(&frac) {
            return false;
        }
        i += 1 + frac;
    }
    match &b[i..] {
        [b'Z'] => true,
        [b'+' | b'-', h1, h2, b':', m1, m2] => [h1, h2, m1, m2].iter().all(|c| c.is_ascii_digit()),
        _ => false,
    }
}

/// `[Mmm dd hh:mm:ss ]HOSTNAME TAG: MSG` after `<PRI>`.
fn parse_3164(s: &str) -> Result<Header<'_>, String> {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let (timestamp, rest) = match s.get(..16) {
        Some(ts) if MONTHS.iter().any(|m| ts.starts_with(m)) => {
            let b = ts.as_bytes();
            let day_ok = ts
                .get(4..6)
                .and_then(|d| d.trim_start().parse::<u8>().ok())
                .is_some_and(|d| (1..=31).contains(&d));
            let time_ok = b[7..15].iter().enumerate().all(|(i, c)| {
                if i == 2 || i == 5 {
                    *c == b':'
                } else {
                    c.is_ascii_digit()
                }
            });
            if b[3] != b' ' || !day_ok || b[6] != b' ' || !time_ok || b[15] != b' ' {
                return Err(format!(
                    "RFC 3164: TIMESTAMP `{}` is not `Mmm dd hh:mm:ss`",
                    ts.get(..15).unwrap_or(ts)
                ));
            }
            (Some(ts[..15].to_string()), &s[16..])
        }
        _ => (None, s),
    };
    let (host, rest) = rest.split_once(' ').ok_or("RFC 3164: no HOSTNAME")?;
    printable(host, 255, "HOSTNAME")?;
    let (tag, msg) = rest.split_once(": ").ok_or("RFC 3164: no `TAG: `")?;
    if tag.is_empty()
        || tag.len() > 32
        || !tag
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
    {
        return Err(format!(
            "RFC 3164: TAG `{tag}` is not 1..32 letters, digits, `-_.`"
        ));
    }
    Ok((SyslogHeader::Rfc3164, timestamp, host, tag, msg))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    const CEF: &str =
        "CEF:0|Elastic|Defend|8|sig|Suspicious \\| name|8|externalId=evt-1 dvchost=h1";

    #[test]
    fn frames_are_detected_per_frame() {
        let m1 = format!("<83>1 2025-03-04T05:06:07.089Z h1 secflow - - - {CEF}");
        let mut buf = format!("{} {m1}", m1.len()).into_bytes();
        buf.extend_from_slice(format!("<83>Mar  4 05:06:07 h1 secflow: {CEF}\r\n").as_bytes());
        let Frame::Complete {
            framing,
            start,
            end,
            consumed,
        } = next_frame(&buf, 1 << 20)
        else {
            panic!()
        };
        assert_eq!(framing, SyslogFraming::OctetCounting);
        assert_eq!(&buf[start..end], m1.as_bytes());
        let rest = &buf[consumed..];
        let Frame::Complete {
            framing,
            start,
            end,
            consumed,
        } = next_frame(rest, 1 << 20)
        else {
            panic!()
        };
        assert_eq!(framing, SyslogFraming::Lf);
        assert!(rest[start..end].ends_with(b"dvchost=h1"), "CR stripped");
        assert_eq!(consumed, rest.len());
        assert_eq!(next_frame(b"12", 100), Frame::Incomplete);
        assert_eq!(next_frame(b"12 <8", 100), Frame::Incomplete);
        assert_eq!(next_frame(b"<13>no newline yet", 100), Frame::Incomplete);
        assert_eq!(next_frame(b"\n\n", 100), Frame::Incomplete);
        assert!(matches!(next_frame(b"hello\n", 100), Frame::Invalid(_)));
        assert!(matches!(next_frame(b"12x", 100), Frame::Invalid(_)));
        assert!(matches!(next_frame(b"500 <1>", 100), Frame::Invalid(_)));
        assert!(matches!(next_frame(b"1234567890", 100), Frame::Invalid(_)));
    }

    #[test]
    fn rfc5424_and_rfc3164_cef_messages_parse() {
        let p = parse_message(
            format!("<83>1 2025-03-04T05:06:07.089Z h1 secflow - - - {CEF}").as_bytes(),
        )
        .unwrap();
        assert_eq!(p.header, SyslogHeader::Rfc5424);
        assert_eq!((p.facility, p.severity), (10, 3));
        assert_eq!(p.timestamp.as_deref(), Some("2025-03-04T05:06:07.089Z"));
        assert_eq!(
            (p.hostname.as_str(), p.app_name.as_str()),
            ("h1", "secflow")
        );
        assert_eq!(p.cef, CEF);
        let p = parse_message(
            format!("<165>1 2025-03-04T05:06:07+01:00 - app 42 ID47 [x@1 a=\"b]\\\"\"][y@2] \u{feff}{CEF}").as_bytes(),
        )
        .unwrap();
        assert_eq!((p.facility, p.severity), (20, 5));
        assert_eq!(p.cef, CEF);
        let p =
            parse_message(format!("<163>Mar  4 05:06:07 h1 soc-feed: {CEF}").as_bytes()).unwrap();
        assert_eq!(p.header, SyslogHeader::Rfc3164);
        assert_eq!(p.timestamp.as_deref(), Some("Mar  4 05:06:07"));
        assert_eq!(p.app_name, "soc-feed");
        let p = parse_message(format!("<86>- -: {CEF}").as_bytes()).unwrap();
        assert_eq!(p.timestamp, None);
    }

    #[test]
    fn invalid_messages_say_why() {
        for (msg, why) in [
            ("no pri", "`<PRI>`"),
            ("<192>1 - h a - - - CEF:0|a|b|c|d|e|1|", "0..191"),
            ("<013>1 - h a - - - CEF:0|a|b|c|d|e|1|", "leading zero"),
            (
                "<13>1 2025-03-04 05:06:07 h a - - - CEF:0|a|b|c|d|e|1|",
                "RFC 3339",
            ),
            ("<13>1 - h a - - x CEF:0|a|b|c|d|e|1|", "STRUCTURED-DATA"),
            ("<13>1 - h a - - - hello", "not a CEF line"),
            ("<13>1 - h a - - - CEF:1|a|b|c|d|e|1|", "CEF:0|"),
            ("<13>1 - h a - - - CEF:0|a|b|c", "not a CEF line"),
            ("<13>Mar 44 05:06:07 h t: CEF:0|a|b|c|d|e|1|", "TIMESTAMP"),
            ("<13>h tag with space: CEF:0|a|b|c|d|e|1|", "TAG"),
        ] {
            let e = parse_message(msg.as_bytes()).unwrap_err();
            assert!(e.contains(why), "{msg}: {e}");
        }
    }

    #[test]
    fn the_self_signed_certificate_is_made() {
        let m = TlsMaterial::self_signed().unwrap();
        assert!(m.cert_pem.starts_with("-----BEGIN CERTIFICATE-----"));
    }
}
