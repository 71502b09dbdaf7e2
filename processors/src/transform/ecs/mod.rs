//! Canonical event → Elastic Common Schema 9.4.0 JSON document.
//!
//! The field-by-field mapping is in `docs/formats.md` (ECS section) and pinned by the golden
//! files `processors/tests/golden/*.ecs.json`. In short:
//!
//! - Only ECS 9.4.0 fields are written (checked against the official field set by
//!   `tests/transform_ecs.rs`), as nested JSON objects, in a fixed order.
//! - `event.kind` / `event.category` / `event.type` use ECS's allowed values, and every
//!   `event.type` is one ECS expects for at least one of the emitted categories; `allowed` /
//!   `denied` (from `disposition`) are added only where a category admits them.
//! - Values are copied, not reinterpreted, except where ECS asks for a normal form: MAC addresses
//!   upper-case with `-`, IP addresses in their canonical text form, hashes lower-case, TLP
//!   upper-case, indicator confidence on the STIX None/Low/Medium/High scale.
//! - `related.*` collects every IP, host name, user and hash of the event, sorted and
//!   deduplicated.
//!
//! The output is built in one pre-sized buffer by a small JSON writer (`json`): about 1 µs per
//! event, so that Avro decode + ECS stays above 300k events/s on one core.

mod json;
mod url;

/// A JSON object key as the writer wants it: quoted, with its colon (`k!("kind")` is
/// `"\"kind\":"`), built at compile time so writing a key is one copy.
macro_rules! k {
    ($name:literal) => {
        json::Key(concat!("\"", $name, "\":"))
    };
}

use std::borrow::Cow;
use std::net::IpAddr;

use super::TransformError;
use crate::event::{
    Activity, Direction, Disposition, EventCategory, EventKind, FileType, Host, HostType, OsType,
    Outcome, SecurityEvent, Severity, User,
};
use json::JsonWriter;

/// The ECS version the documents follow (`ecs.version`).
pub const ECS_VERSION: &str = "9.4.0";

/// Transforms one event into an ECS 9.4.0 JSON document (UTF-8, one object, no trailing
/// newline).
///
/// Fails with [`TransformError::Unmappable`] only for values an ECS document cannot hold and
/// that the producer gate ([`SecurityEvent::validate`]) would have refused anyway: a time outside
/// years 1970–9999, or text that is not an IP address in an IP field.
pub fn to_ecs(event: &SecurityEvent) -> Result<Vec<u8>, TransformError> {
    // One allocation for the whole document: the fixed part plus the long free-text values
    // (a realloc costs more than the few hundred bytes overestimated here).
    let opt_len = |s: Option<&String>| s.map_or(0, String::len);
    let capacity = 1280
        + event.message.len()
        + opt_len(event.raw.as_ref())
        + event.process.as_ref().map_or(0, |p| {
            opt_len(p.command_line.as_ref())
                + opt_len(p.parent.as_ref().and_then(|pp| pp.command_line.as_ref()))
        })
        + event.http.as_ref().map_or(0, |h| {
            3 * h.url.len() + opt_len(h.user_agent.as_ref()) + opt_len(h.referrer.as_ref())
        })
        + event.mitre.as_ref().map_or(0, |_| 768)
        + 384 * event.enrichments.len()
        + event
            .labels
            .iter()
            .map(|(k, v)| k.len() + v.len() + 6)
            .sum::<usize>();
    let mut m = Mapper {
        w: JsonWriter::new(capacity),
        related: Related::default(),
    };
    m.document(event)?;
    Ok(m.w.finish())
}

/// Shorthand for the one error this transform reports.
fn unmappable(field: &str, reason: impl Into<String>) -> TransformError {
    TransformError::Unmappable {
        format: "ecs",
        field: field.to_owned(),
        reason: reason.into(),
    }
}

/// `related.*` values gathered while the document is written, emitted last.
#[derive(Default)]
struct Related<'a> {
    /// Each address with the text it was parsed from (see `json::push_ip`).
    ip: Vec<(IpAddr, &'a str)>,
    hosts: Vec<Cow<'a, str>>,
    user: Vec<&'a str>,
    hash: Vec<Cow<'a, str>>,
}

struct Mapper<'a> {
    w: JsonWriter,
    related: Related<'a>,
}

/// A short list of ECS keywords (categories or types) without duplicates, on the stack. At most
/// three categories (`web`, `network`, `intrusion_detection`) and three types
/// (`connection`, `denied`, `allowed`) are ever pushed.
#[derive(Default)]
struct Keywords {
    items: [&'static str; 4],
    len: usize,
}

impl Keywords {
    fn push(&mut self, k: &'static str) {
        if !self.as_slice().contains(&k) {
            if let Some(slot) = self.items.get_mut(self.len) {
                *slot = k;
                self.len += 1;
            }
        }
    }

    fn as_slice(&self) -> &[&'static str] {
        self.items.get(..self.len).unwrap_or(&[])
    }
}

/// ECS 9.4.0 `expected_event_types` of the categories this mapper emits (from `ecs_flat.yml`).
fn expected_types(category: &str) -> &'static [&'static str] {
    match category {
        "authentication" => &["start", "end", "info"],
        "email" => &["info"],
        "file" => &["access", "change", "creation", "deletion", "info"],
        "intrusion_detection" => &["allowed", "denied", "info"],
        "malware" => &["info"],
        "network" => &[
            "access",
            "allowed",
            "connection",
            "denied",
            "end",
            "info",
            "protocol",
            "start",
        ],
        "process" => &["access", "change", "end", "info", "start"],
        "web" => &["access", "error", "info"],
        _ => &[],
    }
}

/// `event.category` and `event.type`.
fn classify(e: &SecurityEvent) -> (Keywords, Keywords) {
    use Activity as A;
    let mut cats = Keywords::default();
    match e.category {
        EventCategory::Authentication => cats.push("authentication"),
        EventCategory::Process => cats.push("process"),
        EventCategory::File => cats.push("file"),
        EventCategory::Network | EventCategory::Dns => cats.push("network"),
        // HTTP is web activity carried over the network; `network` also admits allowed/denied.
        EventCategory::Http => {
            cats.push("web");
            cats.push("network");
        }
        EventCategory::Email => cats.push("email"),
        // As Elastic Defend does for malware alerts: the detection, and the file it is about.
        EventCategory::Malware => {
            cats.push("malware");
            cats.push("intrusion_detection");
            if e.file.is_some() {
                cats.push("file");
            }
        }
        EventCategory::IntrusionDetection => {
            cats.push("intrusion_detection");
            if e.network.is_some() {
                cats.push("network");
            }
        }
    }

    let mut types = Keywords::default();
    if e.kind == EventKind::Alert {
        // A detection about the activity, whatever the activity was.
        cats.push("intrusion_detection");
        types.push("info");
    } else {
        let t: &[&'static str] = match (e.category, e.activity) {
            (EventCategory::Authentication, A::Logon | A::AccountSwitch) => &["start"],
            (EventCategory::Authentication, A::Logoff) => &["end"],
            (EventCategory::Process, A::Launch) => &["start"],
            (EventCategory::Process, A::Terminate) => &["end"],
            (EventCategory::Process, A::Open) => &["access"],
            (EventCategory::Process, A::Inject | A::SetUserId) => &["change"],
            (EventCategory::File, A::Create) => &["creation"],
            (EventCategory::File, A::Delete) => &["deletion"],
            (EventCategory::File, A::Read | A::Open | A::GetAttributes | A::GetSecurity) => {
                &["access"]
            }
            (
                EventCategory::File,
                A::Update | A::Rename | A::SetAttributes | A::SetSecurity | A::Encrypt | A::Decrypt,
            ) => &["change"],
            (EventCategory::Network, A::Open) => &["connection", "start"],
            (EventCategory::Network, A::Close | A::Reset) => &["connection", "end"],
            (EventCategory::Network, A::Fail | A::Traffic) => &["connection"],
            (EventCategory::Network, A::Refuse) => &["connection", "denied"],
            (EventCategory::Dns, _) => &["protocol"],
            (EventCategory::Http, _) => &["access"],
            _ => &["info"],
        };
        for t in t {
            types.push(t);
        }
    }
    let disposition_type = match e.disposition {
        Some(Disposition::Allowed) => Some("allowed"),
        Some(Disposition::Blocked | Disposition::Dropped) => Some("denied"),
        _ => None,
    };
    if let Some(t) = disposition_type {
        types.push(t);
    }
    // Keep only types some emitted category expects: this drops allowed/denied where no
    // category admits them (authentication, process, file, email events), and makes an
    // activity that does not belong to its category (refused by the gate) fall back to `info`.
    let mut checked = Keywords::default();
    for t in types.as_slice() {
        if cats
            .as_slice()
            .iter()
            .any(|c| expected_types(c).contains(t))
        {
            checked.push(t);
        }
    }
    if checked.len == 0 {
        checked.push("info");
    }
    (cats, checked)
}

/// ECS `event.severity`: the canonical scale spread over 1–99 as the schema prescribes.
fn severity_number(s: Severity) -> i64 {
    match s {
        Severity::Info => 1,
        Severity::Low => 21,
        Severity::Medium => 47,
        Severity::High => 73,
        Severity::Critical => 99,
    }
}

fn outcome_str(o: Outcome) -> &'static str {
    match o {
        Outcome::Success => "success",
        Outcome::Failure => "failure",
        Outcome::Unknown => "unknown",
    }
}

/// Appends `s` as a lower-case ASCII slug (`Palo Alto Networks` → `palo_alto_networks`), for
/// `event.dataset`: runs of other characters become one `_`, none leading or trailing.
fn push_slug(out: &mut String, s: &str) {
    let mut wrote = false;
    let mut pending_sep = false;
    for c in s.chars() {
        if c.is_ascii_alphanumeric() {
            if pending_sep && wrote {
                out.push('_');
            }
            pending_sep = false;
            wrote = true;
            out.push(c.to_ascii_lowercase());
        } else {
            pending_sep = true;
        }
    }
}

/// MAC address in the ECS form: upper-case hex octets separated by `-`.
fn ecs_mac(mac: &str) -> Cow<'_, str> {
    if mac.bytes().any(|b| b == b':' || b.is_ascii_lowercase()) {
        Cow::Owned(
            mac.chars()
                .map(|c| {
                    if c == ':' {
                        '-'
                    } else {
                        c.to_ascii_uppercase()
                    }
                })
                .collect(),
        )
    } else {
        Cow::Borrowed(mac)
    }
}

/// Hex digest in lower case (ECS hash fields are compared as keywords).
fn lower_hex(h: &str) -> Cow<'_, str> {
    if h.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(h.to_ascii_lowercase())
    } else {
        Cow::Borrowed(h)
    }
}

/// The last component of a path, for either separator.
fn last_component(path: &str) -> &str {
    path.rsplit(['/', '\\']).next().unwrap_or("")
}

/// The account name of `DOMAIN\name` or `name`.
fn short_user(s: &str) -> &str {
    s.rsplit('\\').next().unwrap_or(s)
}

/// Parses an IP field; `field` names it in the error (a closure, so that the indexed path of
/// `host.ip[i]` is only formatted on failure).
fn parse_ip(s: &str, field: impl FnOnce() -> String) -> Result<IpAddr, TransformError> {
    s.parse()
        .map_err(|_| unmappable(&field(), format!("`{s}` is not an IPv4 or IPv6 address")))
}

/// ECS `threat.enrichments.indicator.type` for the canonical `ioc_type` (which uses STIX
/// object names; the short names of the intel pattern reducer are accepted too).
fn indicator_type(ioc_type: &str) -> &str {
    match ioc_type {
        "ipv4-addr" | "ipv4" => "ipv4-addr",
        "ipv6-addr" | "ipv6" => "ipv6-addr",
        "domain-name" | "domain" => "domain-name",
        "url" => "url",
        "email-addr" | "email" => "email-addr",
        "file" | "md5" | "sha1" | "sha-1" | "sha256" | "sha-256" | "sha512" | "sha-512" => "file",
        other => other,
    }
}

/// The `file.hash.*` key (as a writer key) of a file-hash indicator: from the IOC type when it names the
/// algorithm, else from the digest length.
fn hash_key(ioc_type: &str, value: &str) -> Option<json::Key> {
    let by_type = match ioc_type {
        "md5" => Some(k!("md5")),
        "sha1" | "sha-1" => Some(k!("sha1")),
        "sha256" | "sha-256" => Some(k!("sha256")),
        "sha512" | "sha-512" => Some(k!("sha512")),
        _ => None,
    };
    if !value.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    by_type.or(match value.len() {
        32 => Some(k!("md5")),
        40 => Some(k!("sha1")),
        64 => Some(k!("sha256")),
        128 => Some(k!("sha512")),
        _ => None,
    })
}

/// STIX 2.1 Appendix A confidence scale (None/Low/Med/High), as ECS names it.
fn confidence_level(c: i32) -> &'static str {
    match c {
        i32::MIN..=0 => "None",
        1..=29 => "Low",
        30..=69 => "Medium",
        _ => "High",
    }
}

/// The ECS name of a canonical field path (enrichment `matched_field`); array indexes such as
/// `email.to[0]` are dropped, unknown paths are kept as they are.
fn ecs_field_name(canonical: &str) -> Cow<'_, str> {
    let path: Cow<'_, str> = if canonical.contains('[') {
        let mut s = String::with_capacity(canonical.len());
        let mut depth = 0usize;
        for c in canonical.chars() {
            match c {
                '[' => depth += 1,
                ']' => depth = depth.saturating_sub(1),
                _ if depth == 0 => s.push(c),
                _ => {}
            }
        }
        Cow::Owned(s)
    } else {
        Cow::Borrowed(canonical)
    };
    let mapped = match path.as_ref() {
        "network.src_ip" => "source.ip",
        "network.dst_ip" => "destination.ip",
        "network.src_hostname" => "source.domain",
        "network.dst_hostname" => "destination.domain",
        "network.src_port" => "source.port",
        "network.dst_port" => "destination.port",
        "host.hostname" => "host.hostname",
        "host.ip" => "host.ip",
        "host.mac" => "host.mac",
        "dns.query" => "dns.question.name",
        "dns.answers.data" => "dns.answers.data",
        "http.url" => "url.full",
        "http.referrer" => "http.request.referrer",
        "http.user_agent" => "user_agent.original",
        "file.path" => "file.path",
        "file.name" => "file.name",
        "file.md5" => "file.hash.md5",
        "file.sha1" => "file.hash.sha1",
        "file.sha256" => "file.hash.sha256",
        "process.sha256" => "process.hash.sha256",
        "process.executable" => "process.executable",
        "process.name" => "process.name",
        "email.from" => "email.from.address",
        "email.to" => "email.to.address",
        "email.cc" => "email.cc.address",
        "email.attachments.sha256" => "email.attachments.file.hash.sha256",
        "email.attachments.name" => "email.attachments.file.name",
        "user.email" => "user.email",
        "user.name" => "user.name",
        "target_user.email" => "user.target.email",
        "target_user.name" => "user.target.name",
        _ => return path,
    };
    Cow::Borrowed(mapped)
}

const ATTACK_TACTICS: &str = "https://attack.mitre.org/tactics/";
const ATTACK_TECHNIQUES: &str = "https://attack.mitre.org/techniques/";

impl<'a> Mapper<'a> {
    fn timestamp(&mut self, key: json::Key, field: &str, ms: i64) -> Result<(), TransformError> {
        if self.w.timestamp(key, ms) {
            Ok(())
        } else {
            Err(unmappable(
                field,
                format!("{ms} ms is outside the years 1970-9999"),
            ))
        }
    }

    fn host_name(&mut self, s: &'a str) {
        if !s.is_empty() {
            self.related.hosts.push(Cow::Borrowed(s));
        }
    }

    fn user_name(&mut self, s: &'a str) {
        if !s.is_empty() {
            self.related.user.push(s);
        }
    }

    fn hash(&mut self, key: json::Key, h: Option<&'a str>) {
        if let Some(h) = h.filter(|h| !h.is_empty()) {
            let h = lower_hex(h);
            self.w.str(key, &h);
            self.related.hash.push(h);
        }
    }

    fn document(&mut self, e: &'a SecurityEvent) -> Result<(), TransformError> {
        self.timestamp(k!("@timestamp"), "event_time", e.event_time)?;
        let m = self.w.open(k!("ecs"), false);
        self.w.str(k!("version"), ECS_VERSION);
        self.w.close(m, false);
        self.event(e)?;
        self.w.str(k!("message"), &e.message);
        let m = self.w.open(k!("organization"), false);
        self.w.opt_str(k!("id"), Some(&e.tenant));
        self.w.close(m, false);
        self.observer(e)?;
        if let Some(h) = &e.host {
            self.host(h)?;
        }
        self.users(e);
        if let Some(service) = e.auth.as_ref().and_then(|a| a.service.as_deref()) {
            let m = self.w.open(k!("service"), false);
            self.w.opt_str(k!("name"), Some(service));
            self.w.close(m, false);
        }
        self.process(e)?;
        self.file(e);
        self.network(e)?;
        self.dns(e)?;
        self.http(e);
        self.email(e);
        self.rule(e);
        self.threat(e)?;
        self.labels(e);
        self.w
            .str_array(k!("tags"), e.tags.iter().map(String::as_str));
        self.related();
        Ok(())
    }

    fn event(&mut self, e: &'a SecurityEvent) -> Result<(), TransformError> {
        let (cats, types) = classify(e);
        let m = self.w.open(k!("event"), false);
        self.w.str(
            k!("kind"),
            match e.kind {
                EventKind::Event => "event",
                EventKind::Alert => "alert",
            },
        );
        self.w
            .str_array(k!("category"), cats.as_slice().iter().copied());
        self.w
            .str_array(k!("type"), types.as_slice().iter().copied());
        self.w.opt_str(k!("action"), Some(&e.action));
        self.w.str(k!("outcome"), outcome_str(e.outcome));
        self.w.int(k!("severity"), severity_number(e.severity));
        self.w.opt_str(k!("id"), Some(&e.event_id));
        self.timestamp(k!("created"), "observed_time", e.observed_time)?;
        self.w.opt_str(k!("provider"), Some(&e.product.name));
        // `<vendor>.<product>` slugs, written straight into the document (no escaping needed).
        self.w.str_with(k!("dataset"), |buf| {
            let start = buf.len();
            push_slug(buf, &e.product.vendor);
            if buf.len() > start {
                buf.push('.');
            }
            let product = buf.len();
            push_slug(buf, &e.product.name);
            if buf.len() == product && product > start {
                buf.pop();
            }
        });
        self.w.opt_str(k!("original"), e.raw.as_deref());
        self.w.close(m, false);
        Ok(())
    }

    fn observer(&mut self, e: &'a SecurityEvent) -> Result<(), TransformError> {
        let m = self.w.open(k!("observer"), false);
        self.w.opt_str(k!("vendor"), Some(&e.product.vendor));
        self.w.opt_str(k!("product"), Some(&e.product.name));
        self.w.opt_str(k!("version"), e.product.version.as_deref());
        // A network appliance that reports traffic it sees is the observer of that traffic,
        // which is where Elastic's network views look for it (it stays in host.* as well).
        if let Some(h) = &e.host {
            let appliance = match h.r#type {
                Some(HostType::Firewall) => Some("firewall"),
                Some(HostType::Router) => Some("router"),
                Some(HostType::Ids) => Some("ids"),
                Some(HostType::Ips) => Some("ips"),
                Some(HostType::LoadBalancer) => Some("load_balancer"),
                _ => None,
            };
            if let Some(kind) = appliance {
                self.w.str(k!("type"), kind);
                self.w.opt_str(k!("hostname"), Some(&h.hostname));
                let a = self.w.open(k!("ip"), true);
                for (i, text) in h.ip.iter().enumerate() {
                    let ip = parse_ip(text, || format!("host.ip[{i}]"))?;
                    self.w.elem_ip(ip, text);
                }
                self.w.close(a, true);
                if let Some(mac) = h.mac.as_deref().filter(|s| !s.is_empty()) {
                    self.w.str_array(k!("mac"), [ecs_mac(mac).as_ref()]);
                }
            }
        }
        self.w.close(m, false);
        Ok(())
    }

    fn host(&mut self, h: &'a Host) -> Result<(), TransformError> {
        let m = self.w.open(k!("host"), false);
        self.w.opt_str(k!("hostname"), Some(&h.hostname));
        self.w.opt_str(k!("name"), Some(&h.hostname));
        self.host_name(&h.hostname);
        self.w.opt_str(k!("id"), h.id.as_deref());
        let a = self.w.open(k!("ip"), true);
        for (i, text) in h.ip.iter().enumerate() {
            let ip = parse_ip(text, || format!("host.ip[{i}]"))?;
            self.w.elem_ip(ip, text);
            self.related.ip.push((ip, text));
        }
        self.w.close(a, true);
        if let Some(mac) = h.mac.as_deref().filter(|s| !s.is_empty()) {
            self.w.str_array(k!("mac"), [ecs_mac(mac).as_ref()]);
        }
        if let Some(t) = h.r#type {
            self.w.str(k!("type"), t.as_str());
        }
        let os = self.w.open(k!("os"), false);
        // ECS knows no `other` OS type: leave it out rather than invent one.
        if let Some(t) = h.os_type.filter(|t| *t != OsType::Other) {
            self.w.str(k!("type"), t.as_str());
        }
        self.w.opt_str(k!("name"), h.os_name.as_deref());
        self.w.opt_str(k!("version"), h.os_version.as_deref());
        self.w.close(os, false);
        self.w.close(m, false);
        Ok(())
    }

    fn user_fields(&mut self, u: &'a User) {
        self.w.opt_str(k!("name"), Some(&u.name));
        self.w.opt_str(k!("id"), u.id.as_deref());
        self.w.opt_str(k!("domain"), u.domain.as_deref());
        self.w.opt_str(k!("email"), u.email.as_deref());
        self.user_name(&u.name);
        if let Some(id) = u.id.as_deref() {
            self.user_name(id);
        }
    }

    fn users(&mut self, e: &'a SecurityEvent) {
        let m = self.w.open(k!("user"), false);
        if let Some(u) = &e.user {
            self.user_fields(u);
        }
        if let Some(t) = &e.target_user {
            let tm = self.w.open(k!("target"), false);
            self.user_fields(t);
            self.w.close(tm, false);
        }
        self.w.close(m, false);
    }

    fn process(&mut self, e: &'a SecurityEvent) -> Result<(), TransformError> {
        let Some(p) = &e.process else {
            return Ok(());
        };
        let m = self.w.open(k!("process"), false);
        self.w.opt_int(k!("pid"), p.pid);
        self.w.opt_str(k!("entity_id"), p.entity_id.as_deref());
        self.w.opt_str(k!("name"), p.name.as_deref());
        self.w.opt_str(k!("executable"), p.executable.as_deref());
        // process.args is left out: splitting a command line into arguments depends on the
        // program and platform (CommandLineToArgvW, shell quoting) and a wrong split misleads.
        self.w
            .opt_str(k!("command_line"), p.command_line.as_deref());
        let h = self.w.open(k!("hash"), false);
        self.hash(k!("sha256"), p.sha256.as_deref());
        self.w.close(h, false);
        if let Some(user) = p.user.as_deref().filter(|s| !s.is_empty()) {
            let u = self.w.open(k!("user"), false);
            self.w.str(k!("name"), user);
            self.w.close(u, false);
            self.user_name(short_user(user));
        }
        if let Some(t) = p.start_time {
            self.timestamp(k!("start"), "process.start_time", t)?;
        }
        self.w.opt_int(k!("exit_code"), p.exit_code.map(i64::from));
        if let Some(pp) = &p.parent {
            let pm = self.w.open(k!("parent"), false);
            self.w.opt_int(k!("pid"), pp.pid);
            self.w.opt_str(k!("entity_id"), pp.entity_id.as_deref());
            self.w.opt_str(k!("name"), pp.name.as_deref());
            self.w.opt_str(k!("executable"), pp.executable.as_deref());
            self.w
                .opt_str(k!("command_line"), pp.command_line.as_deref());
            self.w.close(pm, false);
        }
        self.w.close(m, false);
        Ok(())
    }

    fn file(&mut self, e: &'a SecurityEvent) {
        let Some(f) = &e.file else {
            return;
        };
        let m = self.w.open(k!("file"), false);
        self.w.opt_str(k!("path"), Some(&f.path));
        // The schema lets the mapper take the name from the path when it is not given.
        let name = f
            .name
            .as_deref()
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| last_component(&f.path));
        self.w.opt_str(k!("name"), Some(name));
        self.w.opt_str(k!("extension"), url::extension(name));
        self.w.opt_str(k!("directory"), f.directory.as_deref());
        match f.r#type {
            Some(FileType::File) => self.w.str(k!("type"), "file"),
            Some(FileType::Dir) => self.w.str(k!("type"), "dir"),
            Some(FileType::Symlink) => self.w.str(k!("type"), "symlink"),
            Some(FileType::Other) | None => {}
        }
        self.w.opt_int(k!("size"), f.size);
        self.w.opt_str(k!("mime_type"), f.mime_type.as_deref());
        let h = self.w.open(k!("hash"), false);
        self.hash(k!("md5"), f.md5.as_deref());
        self.hash(k!("sha1"), f.sha1.as_deref());
        self.hash(k!("sha256"), f.sha256.as_deref());
        self.w.close(h, false);
        self.w.close(m, false);
    }

    fn network(&mut self, e: &'a SecurityEvent) -> Result<(), TransformError> {
        let n = e.network.as_ref();
        let mut family = None;
        if let Some(n) = n {
            let ends = [
                (
                    k!("source"),
                    "network.src_ip",
                    &n.src_ip,
                    n.src_port,
                    &n.src_hostname,
                    n.bytes_out,
                ),
                (
                    k!("destination"),
                    "network.dst_ip",
                    &n.dst_ip,
                    n.dst_port,
                    &n.dst_hostname,
                    n.bytes_in,
                ),
            ];
            for (key, field, ip, port, hostname, bytes) in ends {
                let m = self.w.open(key, false);
                let ip = ip.as_deref().filter(|s| !s.is_empty());
                let hostname = hostname.as_deref().filter(|s| !s.is_empty());
                if let Some(ip) = ip {
                    let addr = parse_ip(ip, || field.to_owned())?;
                    self.w.ip(k!("address"), addr, ip);
                    self.w.ip(k!("ip"), addr, ip);
                    self.related.ip.push((addr, ip));
                    family = family.or(Some(addr.is_ipv4()));
                } else if let Some(h) = hostname {
                    self.w.str(k!("address"), h);
                }
                self.w.opt_int(k!("port"), port.map(i64::from));
                if let Some(h) = hostname {
                    self.w.str(k!("domain"), h);
                    self.host_name(h);
                }
                self.w.opt_int(k!("bytes"), bytes);
                self.w.close(m, false);
            }
        }

        let m = self.w.open(k!("network"), false);
        if let Some(n) = n {
            if let Some(t) = n.transport.as_deref().filter(|s| !s.is_empty()) {
                self.w.str(k!("transport"), t);
                let iana = match t {
                    "icmp" => Some("1"),
                    "tcp" => Some("6"),
                    "udp" => Some("17"),
                    "gre" => Some("47"),
                    "ipv6-icmp" => Some("58"),
                    "sctp" => Some("132"),
                    _ => None,
                };
                self.w.opt_str(k!("iana_number"), iana);
            }
        }
        let protocol = n
            .and_then(|n| n.protocol.as_deref())
            .filter(|s| !s.is_empty())
            .or_else(|| (e.category == EventCategory::Dns && e.dns.is_some()).then_some("dns"));
        self.w.opt_str(k!("protocol"), protocol);
        if let Some(n) = n {
            if let Some(d) = n.direction {
                self.w.str(k!("direction"), direction_str(d));
            }
            if let Some(v4) = family {
                self.w.str(k!("type"), if v4 { "ipv4" } else { "ipv6" });
            }
            if let (Some(i), Some(o)) = (n.bytes_in, n.bytes_out) {
                self.w.opt_int(k!("bytes"), i.checked_add(o));
            }
            self.w.opt_int(k!("packets"), n.packets);
        }
        self.w.close(m, false);
        Ok(())
    }

    fn dns(&mut self, e: &'a SecurityEvent) -> Result<(), TransformError> {
        let Some(d) = &e.dns else {
            return Ok(());
        };
        let m = self.w.open(k!("dns"), false);
        // ECS: `query` for a question seen alone, `answer` for the event that carries the
        // response (with or without records).
        let answered = match e.activity {
            Activity::Query => false,
            Activity::Response => true,
            _ => d.rcode.is_some() || !d.answers.is_empty(),
        };
        self.w
            .str(k!("type"), if answered { "answer" } else { "query" });
        let q = self.w.open(k!("question"), false);
        self.w.opt_str(k!("name"), Some(&d.query));
        self.w.opt_str(k!("type"), d.query_type.as_deref());
        self.w.close(q, false);
        self.host_name(&d.query);
        self.w.opt_str(k!("response_code"), d.rcode.as_deref());
        let a = self.w.open(k!("answers"), true);
        for ans in &d.answers {
            let am = self.w.open_elem();
            self.w.opt_str(k!("data"), Some(&ans.data));
            self.w.opt_str(k!("type"), ans.r#type.as_deref());
            self.w.opt_int(k!("ttl"), ans.ttl);
            self.w.close(am, false);
        }
        self.w.close(a, true);
        let r = self.w.open(k!("resolved_ip"), true);
        for ans in &d.answers {
            if let Ok(ip) = ans.data.parse::<IpAddr>() {
                self.w.elem_ip(ip, &ans.data);
                self.related.ip.push((ip, &ans.data));
            } else if matches!(ans.r#type.as_deref(), Some("CNAME" | "NS" | "PTR"))
                && !ans.data.is_empty()
                && !ans.data.contains(char::is_whitespace)
            {
                // Names the query resolved through are hosts of this event too.
                self.related
                    .hosts
                    .push(Cow::Borrowed(ans.data.trim_end_matches('.')));
            }
        }
        self.w.close(r, true);
        self.w.close(m, false);
        Ok(())
    }

    fn http(&mut self, e: &'a SecurityEvent) {
        let Some(h) = &e.http else {
            return;
        };
        let m = self.w.open(k!("http"), false);
        let req = self.w.open(k!("request"), false);
        self.w.opt_str(k!("method"), h.method.as_deref());
        self.w.opt_str(k!("referrer"), h.referrer.as_deref());
        self.w.opt_int(k!("bytes"), h.request_bytes);
        self.w.close(req, false);
        let resp = self.w.open(k!("response"), false);
        self.w.opt_int(k!("status_code"), h.status.map(i64::from));
        self.w.opt_int(k!("bytes"), h.response_bytes);
        self.w.close(resp, false);
        self.w.opt_str(k!("version"), h.version.as_deref());
        self.w.close(m, false);

        let m = self.w.open(k!("url"), false);
        self.w.opt_str(k!("original"), Some(&h.url));
        self.w.opt_str(k!("full"), Some(&h.url));
        if let Some(u) = url::parse(&h.url) {
            self.w.str(k!("scheme"), &u.scheme);
            self.w.str(k!("domain"), &u.domain);
            self.w.opt_int(k!("port"), u.port.map(i64::from));
            self.w.opt_str(k!("path"), Some(u.path));
            if let Some(q) = u.query {
                // ECS keeps an empty query (`?` with nothing after it) as "".
                self.w.str(k!("query"), q);
            }
            self.w.opt_str(k!("fragment"), u.fragment);
            self.w.opt_str(k!("extension"), u.extension);
            match u.ip {
                Some(ip) => self.related.ip.push((ip, u.host)),
                None => self.related.hosts.push(u.domain),
            }
        }
        self.w.close(m, false);

        if let Some(ua) = h.user_agent.as_deref().filter(|s| !s.is_empty()) {
            let m = self.w.open(k!("user_agent"), false);
            self.w.str(k!("original"), ua);
            self.w.close(m, false);
        }
    }

    fn email(&mut self, e: &'a SecurityEvent) {
        let Some(em) = &e.email else {
            return;
        };
        let m = self.w.open(k!("email"), false);
        let f = self.w.open(k!("from"), false);
        self.w.str_array(k!("address"), [em.from.as_str()]);
        self.w.close(f, false);
        let t = self.w.open(k!("to"), false);
        self.w
            .str_array(k!("address"), em.to.iter().map(String::as_str));
        self.w.close(t, false);
        let c = self.w.open(k!("cc"), false);
        self.w
            .str_array(k!("address"), em.cc.iter().map(String::as_str));
        self.w.close(c, false);
        self.w.opt_str(k!("subject"), em.subject.as_deref());
        self.w.opt_str(k!("message_id"), em.message_id.as_deref());
        // The direction of the message is the direction of the traffic that carried it.
        let direction = e.network.as_ref().and_then(|n| n.direction).and_then(|d| {
            matches!(
                d,
                Direction::Inbound | Direction::Outbound | Direction::Internal
            )
            .then(|| direction_str(d))
        });
        self.w.opt_str(k!("direction"), direction);
        let a = self.w.open(k!("attachments"), true);
        for att in &em.attachments {
            let am = self.w.open_elem();
            let fm = self.w.open(k!("file"), false);
            self.w.opt_str(k!("name"), Some(&att.name));
            self.w.opt_str(k!("extension"), url::extension(&att.name));
            self.w.opt_str(k!("mime_type"), att.mime_type.as_deref());
            self.w.opt_int(k!("size"), att.size);
            let hm = self.w.open(k!("hash"), false);
            self.hash(k!("sha256"), att.sha256.as_deref());
            self.w.close(hm, false);
            self.w.close(fm, false);
            self.w.close(am, false);
        }
        self.w.close(a, true);
        self.w.close(m, false);
    }

    fn rule(&mut self, e: &'a SecurityEvent) {
        let Some(r) = &e.rule else {
            return;
        };
        let m = self.w.open(k!("rule"), false);
        self.w.opt_str(k!("id"), r.id.as_deref());
        self.w.opt_str(k!("name"), Some(&r.name));
        self.w.opt_str(k!("description"), r.description.as_deref());
        self.w.opt_str(k!("ruleset"), r.ruleset.as_deref());
        self.w.opt_str(k!("version"), r.version.as_deref());
        self.w.opt_str(k!("reference"), r.reference.as_deref());
        self.w.close(m, false);
    }

    fn threat(&mut self, e: &'a SecurityEvent) -> Result<(), TransformError> {
        let m = self.w.open(k!("threat"), false);
        if let Some(mitre) = e
            .mitre
            .as_ref()
            .filter(|x| !x.tactics.is_empty() || !x.techniques.is_empty())
        {
            self.w.str(k!("framework"), "MITRE ATT&CK");
            // ECS keeps tactics and techniques as parallel keyword arrays; which tactic a
            // technique serves is not representable, a sub-technique id names its technique.
            let t = self.w.open(k!("tactic"), false);
            self.w
                .str_array(k!("id"), mitre.tactics.iter().map(|t| t.id.as_str()));
            self.w
                .str_array(k!("name"), mitre.tactics.iter().map(|t| t.name.as_str()));
            let a = self.w.open(k!("reference"), true);
            for t in mitre.tactics.iter().filter(|t| !t.id.is_empty()) {
                self.w.elem_concat(&[ATTACK_TACTICS, &t.id, "/"]);
            }
            self.w.close(a, true);
            self.w.close(t, false);

            let t = self.w.open(k!("technique"), false);
            self.w
                .str_array(k!("id"), mitre.techniques.iter().map(|t| t.id.as_str()));
            self.w
                .str_array(k!("name"), mitre.techniques.iter().map(|t| t.name.as_str()));
            let a = self.w.open(k!("reference"), true);
            for t in mitre.techniques.iter().filter(|t| !t.id.is_empty()) {
                self.w.elem_concat(&[ATTACK_TECHNIQUES, &t.id, "/"]);
            }
            self.w.close(a, true);
            let subs = || {
                mitre
                    .techniques
                    .iter()
                    .filter_map(|t| t.subtechnique.as_ref())
            };
            let s = self.w.open(k!("subtechnique"), false);
            self.w.str_array(k!("id"), subs().map(|s| s.id.as_str()));
            self.w
                .str_array(k!("name"), subs().map(|s| s.name.as_str()));
            let a = self.w.open(k!("reference"), true);
            for s in subs() {
                // T1059.001 → https://attack.mitre.org/techniques/T1059/001/
                if let Some((tech, sub)) = s.id.split_once('.') {
                    self.w
                        .elem_concat(&[ATTACK_TECHNIQUES, tech, "/", sub, "/"]);
                }
            }
            self.w.close(a, true);
            self.w.close(s, false);
            self.w.close(t, false);
        }

        if let Some(mw) = &e.malware {
            let s = self.w.open(k!("software"), false);
            self.w.opt_str(k!("name"), Some(&mw.name));
            self.w.str(k!("type"), "Malware");
            self.w.str_array(k!("alias"), mw.family.as_deref());
            self.w.close(s, false);
        }

        let a = self.w.open(k!("enrichments"), true);
        for en in &e.enrichments {
            let em = self.w.open_elem();
            let im = self.w.open(k!("indicator"), false);
            let itype = indicator_type(&en.ioc_type);
            self.w.opt_str(k!("type"), Some(itype));
            self.w.opt_str(k!("name"), Some(&en.ioc_value));
            self.w.opt_str(k!("provider"), Some(&en.provider));
            if let Some(c) = en.confidence {
                self.w.str(k!("confidence"), confidence_level(c));
            }
            if let Some(tlp) = en.tlp.as_deref().filter(|s| !s.is_empty()) {
                let mm = self.w.open(k!("marking"), false);
                match tlp {
                    "clear" => self.w.str(k!("tlp"), "CLEAR"),
                    "white" => self.w.str(k!("tlp"), "WHITE"),
                    "green" => self.w.str(k!("tlp"), "GREEN"),
                    "amber" => self.w.str(k!("tlp"), "AMBER"),
                    "amber+strict" => self.w.str(k!("tlp"), "AMBER+STRICT"),
                    "red" => self.w.str(k!("tlp"), "RED"),
                    other => self.w.str(k!("tlp"), &other.to_ascii_uppercase()),
                }
                self.w.close(mm, false);
            }
            // The IOC again in its typed ECS field, so it can be searched as what it is (a CIDR
            // block is not an `ip` value and stays in matched.atomic only).
            match itype {
                "ipv4-addr" | "ipv6-addr" => {
                    if let Ok(ip) = en.ioc_value.parse::<IpAddr>() {
                        self.w.ip(k!("ip"), ip, &en.ioc_value);
                    }
                }
                "domain-name" => {
                    let um = self.w.open(k!("url"), false);
                    self.w.opt_str(k!("domain"), Some(&en.ioc_value));
                    self.w.close(um, false);
                }
                "url" => {
                    let um = self.w.open(k!("url"), false);
                    self.w.opt_str(k!("original"), Some(&en.ioc_value));
                    self.w.opt_str(k!("full"), Some(&en.ioc_value));
                    self.w.close(um, false);
                }
                "email-addr" => {
                    let mm = self.w.open(k!("email"), false);
                    self.w.opt_str(k!("address"), Some(&en.ioc_value));
                    self.w.close(mm, false);
                }
                "file" => {
                    if let Some(k) = hash_key(&en.ioc_type, &en.ioc_value) {
                        let fm = self.w.open(k!("file"), false);
                        let hm = self.w.open(k!("hash"), false);
                        self.w.str(k, &lower_hex(&en.ioc_value));
                        self.w.close(hm, false);
                        self.w.close(fm, false);
                    }
                }
                _ => {}
            }
            self.w.close(im, false);
            let mm = self.w.open(k!("matched"), false);
            self.w.opt_str(k!("atomic"), Some(&en.ioc_value));
            self.w
                .opt_str(k!("field"), Some(&ecs_field_name(&en.matched_field)));
            self.w.opt_str(k!("id"), Some(&en.indicator_id));
            self.w.str(k!("type"), "indicator_match_rule");
            self.w.close(mm, false);
            self.w.close(em, false);
        }
        self.w.close(a, true);
        self.w.close(m, false);
        Ok(())
    }

    fn labels(&mut self, e: &'a SecurityEvent) {
        let m = self.w.open(k!("labels"), false);
        if e.labels.keys().any(|k| k.contains('.')) {
            // Elasticsearch reads a dot in a key as an object path, so `a.b` would turn
            // labels.a into an object and clash with a label `a`: dots become `_`, as Beats
            // and the APM agents do. A key that already exists without dots wins a clash.
            let mut dedotted: std::collections::BTreeMap<Cow<'_, str>, &str> = e
                .labels
                .iter()
                .filter(|(k, _)| !k.contains('.'))
                .map(|(k, v)| (Cow::Borrowed(k.as_str()), v.as_str()))
                .collect();
            for (k, v) in e.labels.iter().filter(|(k, _)| k.contains('.')) {
                dedotted
                    .entry(Cow::Owned(k.replace('.', "_")))
                    .or_insert(v.as_str());
            }
            for (k, v) in dedotted {
                if !k.is_empty() && !v.is_empty() {
                    self.w.str_dyn_key(&k, v);
                }
            }
        } else {
            for (k, v) in &e.labels {
                if !k.is_empty() && !v.is_empty() {
                    self.w.str_dyn_key(k, v);
                }
            }
        }
        self.w.close(m, false);
    }

    fn related(&mut self) {
        let r = &mut self.related;
        // Equal IPv4 addresses have equal (canonical) texts, and an IPv6 text is not used, so
        // which duplicate survives does not change the output.
        r.ip.sort_unstable_by_key(|(ip, _)| *ip);
        r.ip.dedup_by_key(|(ip, _)| *ip);
        r.hosts.sort_unstable();
        r.hosts.dedup();
        r.user.sort_unstable();
        r.user.dedup();
        r.hash.sort_unstable();
        r.hash.dedup();
        let r = std::mem::take(&mut self.related);
        let m = self.w.open(k!("related"), false);
        let a = self.w.open(k!("ip"), true);
        for (ip, text) in &r.ip {
            self.w.elem_ip(*ip, text);
        }
        self.w.close(a, true);
        self.w
            .str_array(k!("hosts"), r.hosts.iter().map(|s| s.as_ref()));
        self.w.str_array(k!("user"), r.user.iter().copied());
        self.w
            .str_array(k!("hash"), r.hash.iter().map(|s| s.as_ref()));
        self.w.close(m, false);
    }
}

fn direction_str(d: Direction) -> &'static str {
    match d {
        Direction::Inbound => "inbound",
        Direction::Outbound => "outbound",
        Direction::Internal => "internal",
        Direction::External => "external",
        Direction::Unknown => "unknown",
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn slugs() {
        let mut s = String::new();
        push_slug(&mut s, "Palo Alto Networks");
        assert_eq!(s, "palo_alto_networks");
        s.clear();
        push_slug(&mut s, "  --Zeek conn.log!! ");
        assert_eq!(s, "zeek_conn_log");
        s.clear();
        push_slug(&mut s, "日本");
        assert_eq!(s, "");
    }

    #[test]
    fn field_names() {
        assert_eq!(ecs_field_name("network.dst_ip"), "destination.ip");
        assert_eq!(ecs_field_name("email.to[3]"), "email.to.address");
        assert_eq!(
            ecs_field_name("email.attachments[0].sha256"),
            "email.attachments.file.hash.sha256"
        );
        assert_eq!(ecs_field_name("something.else"), "something.else");
    }

    #[test]
    fn confidence_scale() {
        assert_eq!(confidence_level(0), "None");
        assert_eq!(confidence_level(1), "Low");
        assert_eq!(confidence_level(29), "Low");
        assert_eq!(confidence_level(30), "Medium");
        assert_eq!(confidence_level(69), "Medium");
        assert_eq!(confidence_level(70), "High");
        assert_eq!(confidence_level(100), "High");
    }

    #[test]
    fn hash_keys() {
        assert_eq!(
            hash_key("file", &"a".repeat(32)),
            Some(json::Key("\"md5\":"))
        );
        assert_eq!(
            hash_key("file", &"A".repeat(64)),
            Some(json::Key("\"sha256\":"))
        );
        assert_eq!(
            hash_key("sha1", &"b".repeat(40)),
            Some(json::Key("\"sha1\":"))
        );
        assert_eq!(hash_key("file", "xyz"), None);
        assert_eq!(hash_key("file", &"a".repeat(33)), None);
    }

    #[test]
    fn macs() {
        assert_eq!(ecs_mac("00:50:56:a1:2b:3c"), "00-50-56-A1-2B-3C");
        assert_eq!(ecs_mac("00-50-56-A1-2B-3C"), "00-50-56-A1-2B-3C");
    }
}
