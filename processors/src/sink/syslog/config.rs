//! Topology configuration of a syslog CEF sink.

use std::path::PathBuf;

use serde::Deserialize;

/// Syslog CEF: each CEF line becomes one syslog message (RFC 5424 or RFC 3164 header) sent over
/// TCP (RFC 6587 octet counting or LF framing), TLS (RFC 5425) or UDP (RFC 5426, one datagram
/// per message) to a syslog receiver: an ArcSight SmartConnector, a QRadar event collector, the
/// rsyslog/syslog-ng forwarder of Microsoft Sentinel's Azure Monitor Agent.
///
/// The stage must read the `cef` topic. The delivery engine keeps one connection per target
/// open and reconnects with its backoff after a failure.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyslogConfig {
    /// The receiver as `host:port` (an IPv6 address in brackets: `[2001:db8::1]:6514`).
    pub address: String,
    /// `tcp` (default), `tls` or `udp`.
    #[serde(default)]
    pub transport: SyslogTransport,
    /// How messages are delimited on a TCP or TLS stream: `octet_counting` (the default) or
    /// `lf`. Not allowed with `udp`, where each message is one datagram.
    #[serde(default)]
    pub framing: Option<SyslogFraming>,
    /// The syslog header: `rfc5424` (default) or `rfc3164` (BSD).
    #[serde(default)]
    pub format: SyslogFormat,
    /// APP-NAME (RFC 5424) or TAG (RFC 3164) of every message (default `secflow`).
    #[serde(default = "default_app_name")]
    pub app_name: String,
    /// Facility of every message (default `authpriv`, the facility for security messages that
    /// may carry private data).
    #[serde(default)]
    pub facility: SyslogFacility,
    /// HOSTNAME of messages whose CEF line names no device host (`dvchost`); absent: `-`
    /// (the NILVALUE: the receiver uses the sender's address).
    #[serde(default)]
    pub hostname: Option<String>,
    /// TLS settings (only with `transport: tls`).
    #[serde(default)]
    pub tls: SyslogTlsConfig,
    /// Largest syslog message (header and CEF line, without framing), in bytes (default
    /// 8192, rsyslog's default maximum). A record whose message is larger is dead-lettered
    /// (`payload_too_large`) rather than truncated by the receiver. At most 65507 with `udp`.
    #[serde(default = "default_max_message_bytes")]
    pub max_message_bytes: usize,
    /// Largest write (framed messages of one request), in bytes (default 65536). A batch is
    /// sent as one or more writes of at most this size; a failed write is retried as a whole.
    #[serde(default = "default_max_request_bytes")]
    pub max_request_bytes: usize,
}

/// The transport to the syslog receiver.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SyslogTransport {
    /// Plain TCP (RFC 6587), one persistent connection.
    #[default]
    Tcp,
    /// TCP with TLS (RFC 5425), server certificate verified by default.
    Tls,
    /// UDP (RFC 5426), one datagram per message: no acknowledgement at all, a message is lost
    /// when the receiver is down.
    Udp,
}

impl SyslogTransport {
    /// `tcp`, `tls` or `udp`.
    pub fn as_str(self) -> &'static str {
        match self {
            SyslogTransport::Tcp => "tcp",
            SyslogTransport::Tls => "tls",
            SyslogTransport::Udp => "udp",
        }
    }
}

/// How messages are delimited on a stream (RFC 6587).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SyslogFraming {
    /// `<length> <message>`: any byte may appear in a message (RFC 6587 §3.4.1, RFC 5425).
    OctetCounting,
    /// `<message>\n`: the traditional framing, one message per line (RFC 6587 §3.4.2).
    Lf,
}

/// The syslog header written before the CEF line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SyslogFormat {
    /// `<PRI>1 TIMESTAMP HOSTNAME APP-NAME - - - CEF:…` (RFC 5424, timestamp in UTC with
    /// milliseconds).
    #[default]
    Rfc5424,
    /// `<PRI>Mmm dd hh:mm:ss HOSTNAME TAG: CEF:…` (RFC 3164, BSD syslog, timestamp in UTC).
    Rfc3164,
}

/// Syslog facility (RFC 5424 §6.2.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SyslogFacility {
    /// 0, kernel messages.
    Kern,
    /// 1, user-level messages.
    User,
    /// 2, mail system.
    Mail,
    /// 3, system daemons.
    Daemon,
    /// 4, security/authorization messages.
    Auth,
    /// 5, messages generated internally by syslogd.
    Syslog,
    /// 6, line printer subsystem.
    Lpr,
    /// 7, network news subsystem.
    News,
    /// 8, UUCP subsystem.
    Uucp,
    /// 9, clock daemon.
    Cron,
    /// 10, security/authorization messages that may carry private data.
    #[default]
    Authpriv,
    /// 11, FTP daemon.
    Ftp,
    /// 12, NTP subsystem.
    Ntp,
    /// 13, log audit.
    Audit,
    /// 14, log alert.
    Alert,
    /// 15, clock daemon (note 2).
    Clock,
    /// 16, local use 0.
    Local0,
    /// 17, local use 1.
    Local1,
    /// 18, local use 2.
    Local2,
    /// 19, local use 3.
    Local3,
    /// 20, local use 4.
    Local4,
    /// 21, local use 5.
    Local5,
    /// 22, local use 6.
    Local6,
    /// 23, local use 7.
    Local7,
}

impl SyslogFacility {
    /// The facility's number (0–23).
    pub fn code(self) -> u8 {
        self as u8
    }
}

/// TLS settings of a syslog sink.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyslogTlsConfig {
    /// PEM file with the CA certificate(s) that signed the receiver's certificate, in addition
    /// to the system's trust store (e.g. QRadar's self-signed collector certificate).
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// The name the receiver's certificate must carry, when it differs from the host of
    /// `address` (e.g. `address` is an IP address); also sent as SNI.
    #[serde(default)]
    pub server_name: Option<String>,
    /// Verify the receiver's certificate and name (default on). Turning it off accepts any
    /// certificate: the stream is encrypted but anyone on the path can read it.
    #[serde(default = "default_true")]
    pub verify: bool,
}

impl Default for SyslogTlsConfig {
    fn default() -> Self {
        SyslogTlsConfig {
            ca_file: None,
            server_name: None,
            verify: true,
        }
    }
}

/// Largest UDP payload over IPv4 (65535 − 8 UDP − 20 IP header bytes).
pub const MAX_UDP_MESSAGE_BYTES: usize = 65_507;

fn default_app_name() -> String {
    "secflow".to_string()
}

fn default_max_message_bytes() -> usize {
    8192
}

fn default_max_request_bytes() -> usize {
    65_536
}

fn default_true() -> bool {
    true
}
