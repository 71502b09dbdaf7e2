//! Canonical event → one ArcSight CEF:0 line ("Implementing ArcSight CEF", revision 25), without
//! syslog framing (see [`frame_rfc5424`], [`frame_rfc3164`] and [`octet_count`] for that).
//!
//! `CEF:0|Device Vendor|Device Product|Device Version|Device Event Class ID|Name|Severity|ext`
//!
//! - Header: product vendor, name and version (empty when null); Device Event Class ID =
//!   `rule.id`, else `action`; Name = `rule.name` for alerts, else `message`; Severity from
//!   [`cef_severity`].
//! - Extension: standard keys of the guide's dictionary where one fits, then the custom fields
//!   (`cs1`..`cs6`, `cn1`..`cn3`, `c6a1`..`c6a3`, `flexString1`..`2`), each always preceded by its
//!   `…Label`. The keys come in one fixed order (the order of the code below, the same as the
//!   table in `docs/formats.md`); absent values leave their key out, and no key is ever empty.
//! - Escaping and limits: see the `line` module. Header fields: `\\`, `\|`, line breaks → one space;
//!   extension values: `\\`, `\=`, `\n`, `\r`, pipes literal. Every text value is cut to the
//!   guide's length for its key (UTF-16 units, before escaping), so the output never holds a raw
//!   CR or LF and never splits an escape sequence.
//!
//! Which host name goes where: `host` is the device that observed the event (`dvchost`, `dvc`,
//! `dvcmac`, `deviceExternalId`). It is also the destination (`dhost`) of events without a
//! network group (the machine the process ran on, the file lives on, the user logged on to), and
//! in network events it is the source or destination whose IP it owns (`host.ip` contains
//! `network.src_ip` / `network.dst_ip`), unless the network group names that side's host itself.
//! A firewall or sensor that only watched the traffic stays `dvchost` only.

mod line;
mod syslog;

use std::net::IpAddr;

pub use syslog::{
    frame_rfc3164, frame_rfc3164_pri, frame_rfc5424, frame_rfc5424_pri, octet_count, syslog_pri,
    syslog_severity, SYSLOG_FACILITY,
};

use self::line::Line;
use super::TransformError;
use crate::event::{EventCategory, EventKind, SecurityEvent, Severity};

/// The CEF Severity header value: info 1, low 3, medium 5, high 8, critical 10 (ArcSight reads
/// 0-3 Low, 4-6 Medium, 7-8 High, 9-10 Very-High).
pub fn cef_severity(severity: Severity) -> u8 {
    match severity {
        Severity::Info => 1,
        Severity::Low => 3,
        Severity::Medium => 5,
        Severity::High => 8,
        Severity::Critical => 10,
    }
}

/// Length limits of the guide (header fields and the extension keys used here), in UTF-16 code
/// units.
pub mod limits {
    /// Device Vendor, Device Product, Device Version.
    pub const DEVICE: usize = 63;
    /// Device Event Class ID (signature id).
    pub const SIGNATURE_ID: usize = 1023;
    /// Name.
    pub const NAME: usize = 512;
    /// `externalId`.
    pub const EXTERNAL_ID: usize = 40;
    /// `act`, `outcome`.
    pub const SHORT: usize = 63;
    /// `proto`, `app`.
    pub const PROTOCOL: usize = 31;
    /// `dvchost`.
    pub const DEVICE_HOST: usize = 100;
    /// `sntdom`, `dntdom`, `destinationDnsDomain`, `deviceExternalId`, `fileHash`.
    pub const DOMAIN: usize = 255;
    /// `requestContext`.
    pub const REQUEST_CONTEXT: usize = 2048;
    /// `cs1`..`cs6`, `rawEvent`.
    pub const CUSTOM_STRING: usize = 4000;
    /// Every other string key used here (`msg`, `cat`, `shost`, `dhost`, `suser`, `duser`,
    /// `suid`, `duid`, `sproc`, `dproc`, `fname`, `filePath`, `fileType`, `request`,
    /// `requestMethod`, `requestClientApplication`, `destinationServiceName`, `flexString1`,
    /// `flexString2`, and the `…Label` keys of `cs`, `cn` and `c6a`).
    pub const STRING: usize = 1023;
    /// `flexString1Label`, `flexString2Label`.
    pub const FLEX_LABEL: usize = 128;
}

use limits::*;

fn unmappable(field: String, reason: &str) -> TransformError {
    TransformError::Unmappable {
        format: "cef",
        field,
        reason: reason.to_owned(),
    }
}

/// Parse an IP, IPv4-mapped IPv6 (`::ffff:a.b.c.d`) as the IPv4 address it carries: CEF
/// consumers match `src`/`dst` as IPv4.
fn parse_ip(text: &str, field: impl FnOnce() -> String) -> Result<IpAddr, TransformError> {
    match text.parse::<IpAddr>() {
        Ok(IpAddr::V6(v6)) => Ok(v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4)),
        Ok(ip) => Ok(ip),
        Err(_) => Err(unmappable(field(), "is not an IPv4 or IPv6 address")),
    }
}

fn opt_ip(text: Option<&str>, field: &str) -> Result<Option<IpAddr>, TransformError> {
    text.map(|t| parse_ip(t, || field.to_owned())).transpose()
}

/// `ipv4_key=a.b.c.d`, or for IPv6 the custom address `v6_key` with its label.
fn push_ip(
    l: &mut Line,
    ip: IpAddr,
    ipv4_key: &str,
    v6_key: &str,
    v6_label_key: &str,
    label: &str,
) {
    match ip {
        IpAddr::V4(_) => l.plain(ipv4_key, ip),
        IpAddr::V6(_) => {
            l.text(v6_label_key, label, STRING);
            l.plain(v6_key, ip);
        }
    }
}

/// Last component of a Windows or POSIX path (empty if it ends with a separator).
fn base_name(path: &str) -> &str {
    path.rsplit(['/', '\\']).next().unwrap_or(path)
}

/// Append `items` joined by `,` to `out`.
fn join<'a>(items: impl Iterator<Item = &'a str>) -> String {
    let mut out = String::new();
    for (i, s) in items.enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(s);
    }
    out
}

/// Transforms one event into a CEF:0 line (no trailing newline, no syslog header).
///
/// Fails with [`TransformError::Unmappable`] only for an IP address that does not parse, which
/// the producer gate already refuses.
pub fn to_cef(event: &SecurityEvent) -> Result<Vec<u8>, TransformError> {
    let e = event;
    let raw_len = e.raw.as_ref().map_or(0, |r| r.len().min(3 * CUSTOM_STRING));
    let mut l = Line::new(768 + 2 * e.message.len() + raw_len);

    // Header.
    l.header(&e.product.vendor, DEVICE);
    l.header(&e.product.name, DEVICE);
    l.header(e.product.version.as_deref().unwrap_or(""), DEVICE);
    let rule = e.rule.as_ref();
    let signature = rule.and_then(|r| r.id.as_deref()).unwrap_or(&e.action);
    l.header(signature, SIGNATURE_ID);
    let name = match (e.kind, rule) {
        (EventKind::Alert, Some(r)) => &r.name,
        _ => &e.message,
    };
    l.header(name, NAME);
    l.header_int(cef_severity(e.severity));

    // What happened.
    l.plain("rt", e.event_time);
    l.text("externalId", &e.event_id, EXTERNAL_ID);
    l.text("cat", e.category.as_str(), STRING);
    l.text("act", &e.action, SHORT);
    l.text("outcome", e.outcome.as_str(), SHORT);
    l.text("msg", &e.message, STRING);

    // Endpoints. Parse every IP first: the host's role depends on them.
    let net = e.network.as_ref();
    let host = e.host.as_ref();
    let src_ip = opt_ip(net.and_then(|n| n.src_ip.as_deref()), "network.src_ip")?;
    let dst_ip = opt_ip(net.and_then(|n| n.dst_ip.as_deref()), "network.dst_ip")?;
    let mut host_ips = Vec::new();
    if let Some(h) = host {
        for (i, ip) in h.ip.iter().enumerate() {
            host_ips.push(parse_ip(ip, || format!("host.ip[{i}]"))?);
        }
    }
    let owns = |ip: Option<IpAddr>| ip.is_some_and(|ip| host_ips.contains(&ip));
    let host_name = host.map(|h| h.hostname.as_str());
    let shost = net
        .and_then(|n| n.src_hostname.as_deref())
        .or(if owns(src_ip) { host_name } else { None });
    let dhost = net
        .and_then(|n| n.dst_hostname.as_deref())
        .or(if net.is_none() || owns(dst_ip) {
            host_name
        } else {
            None
        });

    if let Some(ip) = src_ip {
        push_ip(
            &mut l,
            ip,
            "src",
            "c6a2",
            "c6a2Label",
            "Source IPv6 Address",
        );
    }
    if let Some(p) = net.and_then(|n| n.src_port) {
        l.plain("spt", p);
    }
    if let Some(h) = shost {
        l.text("shost", h, STRING);
    }
    if let Some(ip) = dst_ip {
        push_ip(
            &mut l,
            ip,
            "dst",
            "c6a3",
            "c6a3Label",
            "Destination IPv6 Address",
        );
    }
    if let Some(p) = net.and_then(|n| n.dst_port) {
        l.plain("dpt", p);
    }
    if let Some(h) = dhost {
        l.text("dhost", h, STRING);
    }
    if let Some(d) = &e.dns {
        l.text("destinationDnsDomain", &d.query, DOMAIN);
    }
    if let Some(s) = e.auth.as_ref().and_then(|a| a.service.as_deref()) {
        l.text("destinationServiceName", s, STRING);
    }
    if let Some(t) = net.and_then(|n| n.transport.as_deref()) {
        // ArcSight expects TCP / UDP, upper case.
        l.text("proto", &t.to_ascii_uppercase(), PROTOCOL);
    }
    if let Some(p) = net.and_then(|n| n.protocol.as_deref()) {
        l.text("app", p, PROTOCOL);
    }
    match net.and_then(|n| n.direction) {
        Some(crate::event::Direction::Inbound) => l.plain("deviceDirection", 0),
        Some(crate::event::Direction::Outbound) => l.plain("deviceDirection", 1),
        _ => {}
    }
    let http = e.http.as_ref();
    let bytes_in = net
        .and_then(|n| n.bytes_in)
        .or(http.and_then(|h| h.response_bytes));
    if let Some(n) = bytes_in {
        l.plain("in", n);
    }
    let bytes_out = net
        .and_then(|n| n.bytes_out)
        .or(http.and_then(|h| h.request_bytes));
    if let Some(n) = bytes_out {
        l.plain("out", n);
    }

    // Accounts: the actor is the source user, the account acted upon the destination user. An
    // e-mail without them: sender and recipients (the guide puts addresses in the user names).
    let email = e.email.as_ref();
    match (&e.user, email) {
        (Some(u), _) => {
            l.text("suser", &u.name, STRING);
            if let Some(id) = &u.id {
                l.text("suid", id, STRING);
            }
            if let Some(d) = &u.domain {
                l.text("sntdom", d, DOMAIN);
            }
        }
        (None, Some(m)) => l.text("suser", &m.from, STRING),
        (None, None) => {}
    }
    match (&e.target_user, email) {
        (Some(u), _) => {
            l.text("duser", &u.name, STRING);
            if let Some(id) = &u.id {
                l.text("duid", id, STRING);
            }
            if let Some(d) = &u.domain {
                l.text("dntdom", d, DOMAIN);
            }
        }
        (None, Some(m)) => {
            let rcpt = join(m.to.iter().chain(&m.cc).map(String::as_str));
            l.text("duser", &rcpt, STRING);
        }
        (None, None) => {}
    }

    // Processes: for category process the event is about `process` (destination) and its parent
    // acted (source); otherwise `process` is the actor.
    let process = e.process.as_ref();
    if let Some(p) = process {
        if e.category == EventCategory::Process {
            if let Some(pp) = &p.parent {
                if let Some(n) = &pp.name {
                    l.text("sproc", n, STRING);
                }
                if let Some(pid) = pp.pid {
                    l.plain("spid", pid);
                }
            }
            if let Some(n) = &p.name {
                l.text("dproc", n, STRING);
            }
            if let Some(pid) = p.pid {
                l.plain("dpid", pid);
            }
        } else {
            if let Some(n) = &p.name {
                l.text("sproc", n, STRING);
            }
            if let Some(pid) = p.pid {
                l.plain("spid", pid);
            }
        }
    }

    // The file: the file group, else the first e-mail attachment, else, when the event is
    // about a process, its executable (an actor's executable would read as a touched file).
    let attachment = email.and_then(|m| m.attachments.first());
    if let Some(f) = &e.file {
        let name = f.name.as_deref().unwrap_or_else(|| base_name(&f.path));
        if !name.is_empty() {
            l.text("fname", name, STRING);
        }
        l.text("filePath", &f.path, STRING);
        if let Some(n) = f.size {
            l.plain("fsize", n);
        }
        if let Some(h) = f
            .sha256
            .as_deref()
            .or(f.sha1.as_deref())
            .or(f.md5.as_deref())
        {
            l.text("fileHash", h, DOMAIN);
        }
        if let Some(m) = &f.mime_type {
            l.text("fileType", m, STRING);
        }
    } else if let Some(a) = attachment {
        l.text("fname", &a.name, STRING);
        if let Some(n) = a.size {
            l.plain("fsize", n);
        }
        if let Some(h) = &a.sha256 {
            l.text("fileHash", h, DOMAIN);
        }
        if let Some(m) = &a.mime_type {
            l.text("fileType", m, STRING);
        }
    } else if let Some(p) = process.filter(|_| e.category == EventCategory::Process) {
        if let Some(x) = &p.executable {
            l.text("filePath", x, STRING);
        }
        if let Some(h) = &p.sha256 {
            l.text("fileHash", h, DOMAIN);
        }
    }

    // HTTP.
    if let Some(h) = http {
        l.text("request", &h.url, STRING);
        if let Some(m) = &h.method {
            l.text("requestMethod", m, STRING);
        }
        if let Some(ua) = &h.user_agent {
            l.text("requestClientApplication", ua, STRING);
        }
        if let Some(r) = &h.referrer {
            l.text("requestContext", r, REQUEST_CONTEXT);
        }
    }

    // The observing device.
    if let Some(h) = host {
        l.text("dvchost", &h.hostname, DEVICE_HOST);
        if let Some(ip) = host_ips.iter().find(|ip| ip.is_ipv4()) {
            l.plain("dvc", ip);
        }
        if let Some(ip) = host_ips.iter().find(|ip| ip.is_ipv6()) {
            l.text("c6a1Label", "Device IPv6 Address", STRING);
            l.plain("c6a1", ip);
        }
        if let Some(mac) = &h.mac {
            // The guide's MAC form: colon separated, upper case.
            let mac: String = mac
                .chars()
                .map(|c| {
                    if c == '-' {
                        ':'
                    } else {
                        c.to_ascii_uppercase()
                    }
                })
                .collect();
            l.text("dvcmac", &mac, STRING);
        }
        if let Some(id) = &h.id {
            l.text("deviceExternalId", id, DOMAIN);
        }
    }

    // Custom fields, one fixed meaning per slot.
    l.custom("cs1", "cs1Label", "tenant", &e.tenant, CUSTOM_STRING);
    if let Some(d) = e.disposition {
        l.custom("cs2", "cs2Label", "disposition", d.as_str(), CUSTOM_STRING);
    }
    if let Some(id) = host.and_then(|h| h.id.as_deref()) {
        l.custom("cs3", "cs3Label", "hostId", id, CUSTOM_STRING);
    }
    if let Some(m) = e.mitre.as_ref().filter(|m| !m.techniques.is_empty()) {
        // The most specific id of each technique: T1059.001 says T1059 too.
        let ids = join(m.techniques.iter().map(|t| {
            t.subtechnique
                .as_ref()
                .map_or(t.id.as_str(), |s| s.id.as_str())
        }));
        l.custom("cs4", "cs4Label", "mitreTechniques", &ids, CUSTOM_STRING);
    }
    if !e.enrichments.is_empty() {
        let ids = join(e.enrichments.iter().map(|x| x.indicator_id.as_str()));
        l.custom("cs5", "cs5Label", "threatIndicators", &ids, CUSTOM_STRING);
    }
    if let Some(c) = process.and_then(|p| p.command_line.as_deref()) {
        l.custom("cs6", "cs6Label", "commandLine", c, CUSTOM_STRING);
    }
    let first_match = e.enrichments.first();
    if let Some(c) = first_match.and_then(|x| x.confidence) {
        l.custom_int("cn1", "cn1Label", "threatConfidence", i64::from(c));
    }
    if let Some(s) = http.and_then(|h| h.status) {
        l.custom_int("cn2", "cn2Label", "httpStatus", i64::from(s));
    }
    if let Some(c) = process.and_then(|p| p.exit_code) {
        l.custom_int("cn3", "cn3Label", "exitCode", i64::from(c));
    }
    if let Some(x) = first_match {
        l.text("flexString1Label", "threatIoc", FLEX_LABEL);
        l.text("flexString1", &x.ioc_value, STRING);
        l.text("flexString2Label", "threatProvider", FLEX_LABEL);
        l.text("flexString2", &x.provider, STRING);
    }

    if let Some(r) = &e.raw {
        l.text("rawEvent", r, CUSTOM_STRING);
    }
    Ok(l.finish())
}
