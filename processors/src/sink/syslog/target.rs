//! Where a syslog request goes, written as the request's URL so the engine's executor can
//! route it without knowing the sink: `syslog+<transport>://host:port[?tls options]`.

use std::path::PathBuf;

use reqwest::Url;

use super::config::SyslogTransport;

/// Every syslog request URL starts with this (`syslog+tcp://`, `syslog+tls://`,
/// `syslog+udp://`).
pub const URL_SCHEME_PREFIX: &str = "syslog+";

/// A syslog receiver and how to reach it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyslogTarget {
    /// TCP, TLS or UDP.
    pub transport: SyslogTransport,
    /// Host name or IP address (IPv6 without brackets).
    pub host: String,
    /// Port.
    pub port: u16,
    /// TLS: extra trusted CA certificates (PEM file).
    pub ca_file: Option<PathBuf>,
    /// TLS: the name to verify (and send as SNI) instead of `host`.
    pub server_name: Option<String>,
    /// TLS: verify the certificate and name.
    pub verify: bool,
}

impl SyslogTarget {
    /// A target from the sink's `address` (`host:port`, IPv6 in brackets) and TLS settings.
    ///
    /// # Errors
    /// Why `address` is not `host:port`.
    pub fn new(
        transport: SyslogTransport,
        address: &str,
        ca_file: Option<PathBuf>,
        server_name: Option<String>,
        verify: bool,
    ) -> Result<Self, String> {
        let bad = |why: &str| format!("address `{address}` is not host:port ({why})");
        if address.is_empty() || address.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(bad("empty or has spaces"));
        }
        if address.contains(['/', '?', '#', '@']) {
            return Err(bad("give only host and port, no scheme or path"));
        }
        let url = Url::parse(&format!(
            "{URL_SCHEME_PREFIX}{}://{address}",
            transport.as_str()
        ))
        .map_err(|e| bad(&e.to_string()))?;
        let host = host_of(&url).ok_or_else(|| bad("no host"))?;
        let port = url.port().ok_or_else(|| bad("no port"))?;
        if port == 0 {
            return Err(bad("port 0"));
        }
        if let Some(name) = &server_name {
            if name.is_empty() || name.chars().any(|c| c.is_whitespace() || c.is_control()) {
                return Err(format!("tls.server_name `{name}` is not a host name"));
            }
        }
        Ok(SyslogTarget {
            transport,
            host,
            port,
            ca_file,
            server_name,
            verify,
        })
    }

    /// The request URL: `syslog+tcp://host:port`, `syslog+udp://host:port`, or
    /// `syslog+tls://host:port` with `server_name`, `ca_file` (percent-encoded) and
    /// `verify=false` as query parameters when set.
    pub fn to_url(&self) -> String {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        let base = format!(
            "{URL_SCHEME_PREFIX}{}://{host}:{}",
            self.transport.as_str(),
            self.port
        );
        let mut query = Vec::new();
        if let Some(n) = &self.server_name {
            query.push(("server_name", n.clone()));
        }
        if let Some(f) = &self.ca_file {
            query.push(("ca_file", f.to_string_lossy().into_owned()));
        }
        if !self.verify {
            query.push(("verify", "false".to_string()));
        }
        if query.is_empty() {
            return base;
        }
        match Url::parse(&base) {
            Ok(mut url) => {
                url.query_pairs_mut().extend_pairs(query);
                url.to_string()
            }
            // `base` was parsed when the target was made.
            Err(_) => base,
        }
    }

    /// Reads a URL made by [`SyslogTarget::to_url`].
    ///
    /// # Errors
    /// Why the URL is not a syslog target.
    pub fn from_url(url: &str) -> Result<Self, String> {
        let parsed = Url::parse(url).map_err(|e| format!("not a syslog URL: {e}"))?;
        let transport = match parsed.scheme() {
            "syslog+tcp" => SyslogTransport::Tcp,
            "syslog+tls" => SyslogTransport::Tls,
            "syslog+udp" => SyslogTransport::Udp,
            other => return Err(format!("not a syslog URL scheme: `{other}`")),
        };
        let host = host_of(&parsed).ok_or("syslog URL without a host")?;
        let port = parsed.port().ok_or("syslog URL without a port")?;
        let mut target = SyslogTarget {
            transport,
            host,
            port,
            ca_file: None,
            server_name: None,
            verify: true,
        };
        for (k, v) in parsed.query_pairs() {
            match k.as_ref() {
                "server_name" => target.server_name = Some(v.into_owned()),
                "ca_file" => target.ca_file = Some(PathBuf::from(v.as_ref())),
                "verify" => target.verify = v != "false",
                other => return Err(format!("unknown syslog URL parameter `{other}`")),
            }
        }
        Ok(target)
    }

    /// `host:port` (IPv6 in brackets), for messages.
    pub fn address(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// The name the TLS certificate must carry: `server_name`, else the host.
    pub fn tls_name(&self) -> &str {
        self.server_name.as_deref().unwrap_or(&self.host)
    }
}

fn host_of(url: &Url) -> Option<String> {
    let host = url.host_str()?;
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    (!host.is_empty()).then(|| host.to_string())
}

/// Splits octet-counted frames (`<len> <msg><len> <msg>…`, RFC 6587 §3.4.1) into the messages.
///
/// # Errors
/// Where the bytes stop being octet-counted frames.
pub fn split_octet_counted(body: &[u8]) -> Result<Vec<&[u8]>, String> {
    let mut out = Vec::new();
    let mut rest = body;
    while !rest.is_empty() {
        let space = rest
            .iter()
            .position(|b| *b == b' ')
            .filter(|&p| p > 0 && p <= 10)
            .ok_or_else(|| format!("no frame length at byte {}", body.len() - rest.len()))?;
        let len: usize = std::str::from_utf8(&rest[..space])
            .ok()
            .filter(|s| s.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| format!("bad frame length at byte {}", body.len() - rest.len()))?;
        let start = space + 1;
        let end = start
            .checked_add(len)
            .filter(|&e| e <= rest.len())
            .ok_or_else(|| format!("frame of {len} bytes runs past the end"))?;
        out.push(&rest[start..end]);
        rest = &rest[end..];
    }
    Ok(out)
}
