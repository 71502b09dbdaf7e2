//! Semantic checks of the producer gate: what the Avro schema cannot say.
//!
//! Every error names the field path (`network.src_ip`, `host.ip[1]`, `mitre.techniques[0].id`).
//! Rules, besides the types the schema already enforces:
//! - required strings are not blank; an optional string, when present, is not empty either
//!   (absent means unknown);
//! - identifiers (`event_id`, `tenant`, host names, ...) contain no whitespace;
//! - times lie in years 1970–9999; IPs parse as `std::net::IpAddr`; ports are 0–65535; sizes,
//!   byte and packet counts, pids and TTLs are not negative; hashes are hex of the right length;
//!   MITRE ids have the ATT&CK shape; e-mail addresses look like `local@domain`;
//! - `kind` / `category` / `activity` agree (see [`allowed_activities`]), alerts carry `rule`,
//!   `malware` and `intrusion_detection` are alerts, and each category of plain events carries
//!   the group its OCSF class requires (see [`SecurityEvent::validate`]).

use std::net::IpAddr;

use super::model::*;
use super::time;
use super::EventError;

/// Return `Err(EventError::Invalid)` with the formatted path if `$res` is an error.
macro_rules! check {
    ($res:expr, $($path:tt)+) => {
        if let Err(reason) = $res {
            return Err(EventError::Invalid { field: format!($($path)+), reason });
        }
    };
}

type Check = Result<(), String>;

fn fail(reason: impl Into<String>) -> Check {
    Err(reason.into())
}

/// Not empty and not only whitespace.
fn text(s: &str) -> Check {
    if s.trim().is_empty() {
        fail("must not be empty")
    } else {
        Ok(())
    }
}

fn opt<T: ?Sized>(v: Option<&T>, f: impl FnOnce(&T) -> Check) -> Check {
    match v {
        Some(v) => f(v),
        None => Ok(()),
    }
}

/// Not empty, no whitespace or control characters, at most `max` bytes.
fn ident(s: &str, max: usize) -> Check {
    if s.is_empty() {
        return fail("must not be empty");
    }
    if s.len() > max {
        return fail(format!("is {} bytes long, at most {max} allowed", s.len()));
    }
    if s.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return fail(format!(
            "`{s}` must not contain whitespace or control characters"
        ));
    }
    Ok(())
}

fn hostname(s: &str) -> Check {
    ident(s, 255)
}

fn ip(s: &str) -> Check {
    match s.parse::<IpAddr>() {
        Ok(_) => Ok(()),
        Err(_) => fail(format!("`{s}` is not an IPv4 or IPv6 address")),
    }
}

fn port(p: i32) -> Check {
    if (0..=65535).contains(&p) {
        Ok(())
    } else {
        fail(format!("port {p} is outside 0-65535"))
    }
}

fn non_negative(n: i64) -> Check {
    if n < 0 {
        fail(format!("{n} is negative"))
    } else {
        Ok(())
    }
}

fn hex(s: &str, len: usize, what: &str) -> Check {
    if s.len() == len && s.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(())
    } else {
        fail(format!("`{s}` is not a {what} ({len} hex digits)"))
    }
}

fn sha256(s: &str) -> Check {
    hex(s, 64, "SHA-256")
}

fn timestamp(ms: i64) -> Check {
    time::check_range(ms)
}

/// Lowercase token: ASCII lowercase letters, digits and `_ - . : +`, starting with a letter or
/// digit.
fn lower_token(s: &str) -> Check {
    let ok = s
        .bytes()
        .next()
        .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        && s.bytes().all(|b| {
            b.is_ascii_lowercase()
                || b.is_ascii_digit()
                || matches!(b, b'_' | b'-' | b'.' | b':' | b'+')
        });
    if ok {
        Ok(())
    } else {
        fail(format!(
            "`{s}` must be a lowercase token (a-z, 0-9, _ - . : +)"
        ))
    }
}

/// Uppercase token: ASCII uppercase letters, digits and `-` (DNS mnemonics, HTTP methods).
fn upper_token(s: &str) -> Check {
    let ok = !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'-');
    if ok {
        Ok(())
    } else {
        fail(format!("`{s}` must be an uppercase token (A-Z, 0-9, -)"))
    }
}

fn mac(s: &str) -> Check {
    let b = s.as_bytes();
    let sep = b.get(2).copied();
    let ok = b.len() == 17
        && matches!(sep, Some(b'-' | b':'))
        && b.iter().enumerate().all(|(i, c)| {
            if i % 3 == 2 {
                Some(*c) == sep
            } else {
                c.is_ascii_hexdigit()
            }
        });
    if ok {
        Ok(())
    } else {
        fail(format!(
            "`{s}` is not a MAC address (six hex octets separated by - or :)"
        ))
    }
}

fn email_addr(s: &str) -> Check {
    let ok = s.len() <= 320
        && !s
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == '<' || c == '>')
        && match s.rsplit_once('@') {
            Some((local, domain)) => {
                !local.is_empty() && !domain.is_empty() && !domain.contains('@')
            }
            None => false,
        };
    if ok {
        Ok(())
    } else {
        fail(format!("`{s}` is not an e-mail address (local@domain)"))
    }
}

fn url(s: &str) -> Check {
    let ok = match s.split_once("://") {
        Some((scheme, rest)) => {
            scheme
                .bytes()
                .next()
                .is_some_and(|b| b.is_ascii_alphabetic())
                && scheme
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
                && !rest.is_empty()
                && !s.chars().any(|c| c.is_whitespace() || c.is_control())
        }
        None => false,
    };
    if ok {
        Ok(())
    } else {
        fail(format!(
            "`{s}` is not an absolute URL (scheme://...) without spaces"
        ))
    }
}

/// `prefix` followed by exactly `digits` ASCII digits.
fn id_shape(s: &str, prefix: &str, digits: usize) -> bool {
    s.strip_prefix(prefix)
        .is_some_and(|rest| rest.len() == digits && rest.bytes().all(|b| b.is_ascii_digit()))
}

fn tactic_id(s: &str) -> Check {
    if id_shape(s, "TA", 4) {
        Ok(())
    } else {
        fail(format!(
            "`{s}` is not an ATT&CK tactic id (TA and 4 digits)"
        ))
    }
}

fn technique_id(s: &str) -> Check {
    if id_shape(s, "T", 4) {
        Ok(())
    } else {
        fail(format!(
            "`{s}` is not an ATT&CK technique id (T and 4 digits)"
        ))
    }
}

fn subtechnique_id(s: &str, technique: &str) -> Check {
    match s.split_once('.') {
        Some((t, sub))
            if id_shape(t, "T", 4) && sub.len() == 3 && sub.bytes().all(|b| b.is_ascii_digit()) =>
        {
            if t == technique {
                Ok(())
            } else {
                fail(format!("`{s}` does not belong to technique `{technique}`"))
            }
        }
        _ => fail(format!(
            "`{s}` is not an ATT&CK sub-technique id (T, 4 digits, dot, 3 digits)"
        )),
    }
}

const TLP: &[&str] = &["clear", "white", "green", "amber", "amber+strict", "red"];

fn tlp(s: &str) -> Check {
    if TLP.contains(&s) {
        Ok(())
    } else {
        fail(format!("`{s}` is not a TLP marking ({})", TLP.join(", ")))
    }
}

use Activity as A;

const ALERT: &[Activity] = &[A::Unknown, A::Other, A::Create, A::Update, A::Close];
const AUTHENTICATION: &[Activity] = &[
    A::Unknown,
    A::Other,
    A::Logon,
    A::Logoff,
    A::AuthenticationTicket,
    A::ServiceTicketRequest,
    A::ServiceTicketRenew,
    A::Preauth,
    A::AccountSwitch,
];
const PROCESS: &[Activity] = &[
    A::Unknown,
    A::Other,
    A::Launch,
    A::Terminate,
    A::Open,
    A::Inject,
    A::SetUserId,
];
const FILE: &[Activity] = &[
    A::Unknown,
    A::Other,
    A::Create,
    A::Read,
    A::Update,
    A::Delete,
    A::Rename,
    A::SetAttributes,
    A::SetSecurity,
    A::GetAttributes,
    A::GetSecurity,
    A::Encrypt,
    A::Decrypt,
    A::Mount,
    A::Unmount,
    A::Open,
];
const NETWORK: &[Activity] = &[
    A::Unknown,
    A::Other,
    A::Open,
    A::Close,
    A::Reset,
    A::Fail,
    A::Refuse,
    A::Traffic,
    A::Listen,
];
const DNS: &[Activity] = &[A::Unknown, A::Other, A::Query, A::Response, A::Traffic];
const HTTP: &[Activity] = &[
    A::Unknown,
    A::Other,
    A::Connect,
    A::Delete,
    A::Get,
    A::Head,
    A::Options,
    A::Post,
    A::Put,
    A::Trace,
    A::Patch,
];
const EMAIL: &[Activity] = &[
    A::Unknown,
    A::Other,
    A::Send,
    A::Receive,
    A::Scan,
    A::Trace,
    A::MtaRelay,
];

/// The activities valid for a kind and category (always including `unknown` and `other`):
/// alerts use the finding lifecycle (create, update, close), plain events the activities of
/// their OCSF class. `malware` and `intrusion_detection` exist only as alerts, so as events
/// they allow nothing.
pub fn allowed_activities(kind: EventKind, category: EventCategory) -> &'static [Activity] {
    match (kind, category) {
        (EventKind::Alert, _) => ALERT,
        (EventKind::Event, EventCategory::Authentication) => AUTHENTICATION,
        (EventKind::Event, EventCategory::Process) => PROCESS,
        (EventKind::Event, EventCategory::File) => FILE,
        (EventKind::Event, EventCategory::Network) => NETWORK,
        (EventKind::Event, EventCategory::Dns) => DNS,
        (EventKind::Event, EventCategory::Http) => HTTP,
        (EventKind::Event, EventCategory::Email) => EMAIL,
        (EventKind::Event, EventCategory::Malware | EventCategory::IntrusionDetection) => &[],
    }
}

/// The HTTP activity that names `method`, if OCSF has one.
pub fn http_method_activity(method: &str) -> Option<Activity> {
    Some(match method {
        "CONNECT" => A::Connect,
        "DELETE" => A::Delete,
        "GET" => A::Get,
        "HEAD" => A::Head,
        "OPTIONS" => A::Options,
        "POST" => A::Post,
        "PUT" => A::Put,
        "TRACE" => A::Trace,
        "PATCH" => A::Patch,
        _ => return None,
    })
}

fn required(present: bool, what: &str) -> Check {
    if present {
        Ok(())
    } else {
        fail(format!("is required {what}"))
    }
}

fn process_identified(pid: Option<i64>, entity_id: Option<&String>) -> Check {
    if pid.is_some() || entity_id.is_some() {
        Ok(())
    } else {
        fail("needs pid or entity_id")
    }
}

impl SecurityEvent {
    /// Check everything the schema cannot express (see the module docs); the first problem is
    /// returned as [`EventError::Invalid`] with its field path.
    ///
    /// Per category, plain events (kind=event) must carry what their OCSF class requires:
    /// authentication: `user`, and `auth.service` or a network destination; process: `process`,
    /// `host`, and an actor (`process.parent` or `user`); file: `file`, `host`, and an actor
    /// (`process` or `user`); network and dns: a network source or destination (ip or hostname);
    /// dns: `dns`; http: `http`; email: `email`. Alerts must carry `rule`; category malware needs
    /// `malware`.
    pub fn validate(&self) -> Result<(), EventError> {
        self.validate_fields()?;
        self.validate_semantics()
    }

    fn validate_fields(&self) -> Result<(), EventError> {
        check!(ident(&self.event_id, 512), "event_id");
        check!(timestamp(self.event_time), "event_time");
        check!(timestamp(self.observed_time), "observed_time");
        check!(ident(&self.tenant, 256), "tenant");
        check!(
            text(&self.action).and_then(|()| lower_token(&self.action)),
            "action"
        );
        check!(text(&self.message), "message");

        check!(text(&self.product.vendor), "product.vendor");
        check!(text(&self.product.name), "product.name");
        check!(
            opt(self.product.version.as_deref(), text),
            "product.version"
        );

        if let Some(h) = &self.host {
            check!(hostname(&h.hostname), "host.hostname");
            check!(opt(h.id.as_deref(), |s| ident(s, 256)), "host.id");
            for (i, a) in h.ip.iter().enumerate() {
                check!(ip(a), "host.ip[{i}]");
            }
            check!(opt(h.mac.as_deref(), mac), "host.mac");
            check!(opt(h.os_name.as_deref(), text), "host.os_name");
            check!(opt(h.os_version.as_deref(), text), "host.os_version");
        }

        for (name, user) in [("user", &self.user), ("target_user", &self.target_user)] {
            if let Some(u) = user {
                check!(text(&u.name), "{name}.name");
                check!(opt(u.id.as_deref(), text), "{name}.id");
                check!(opt(u.domain.as_deref(), text), "{name}.domain");
                check!(opt(u.email.as_deref(), email_addr), "{name}.email");
            }
        }

        if let Some(a) = &self.auth {
            check!(opt(a.service.as_deref(), text), "auth.service");
        }

        if let Some(p) = &self.process {
            check!(process_identified(p.pid, p.entity_id.as_ref()), "process");
            check!(opt(p.pid.as_ref(), |n| non_negative(*n)), "process.pid");
            check!(
                opt(p.entity_id.as_deref(), |s| ident(s, 256)),
                "process.entity_id"
            );
            check!(opt(p.name.as_deref(), text), "process.name");
            check!(opt(p.executable.as_deref(), text), "process.executable");
            check!(opt(p.command_line.as_deref(), text), "process.command_line");
            check!(opt(p.sha256.as_deref(), sha256), "process.sha256");
            check!(opt(p.user.as_deref(), text), "process.user");
            check!(
                opt(p.start_time.as_ref(), |t| timestamp(*t)),
                "process.start_time"
            );
            if let Some(pp) = &p.parent {
                check!(
                    process_identified(pp.pid, pp.entity_id.as_ref()),
                    "process.parent"
                );
                check!(
                    opt(pp.pid.as_ref(), |n| non_negative(*n)),
                    "process.parent.pid"
                );
                check!(
                    opt(pp.entity_id.as_deref(), |s| ident(s, 256)),
                    "process.parent.entity_id"
                );
                check!(opt(pp.name.as_deref(), text), "process.parent.name");
                check!(
                    opt(pp.executable.as_deref(), text),
                    "process.parent.executable"
                );
                check!(
                    opt(pp.command_line.as_deref(), text),
                    "process.parent.command_line"
                );
            }
        }

        if let Some(f) = &self.file {
            check!(text(&f.path), "file.path");
            check!(opt(f.name.as_deref(), text), "file.name");
            check!(opt(f.directory.as_deref(), text), "file.directory");
            check!(opt(f.size.as_ref(), |n| non_negative(*n)), "file.size");
            check!(opt(f.md5.as_deref(), |s| hex(s, 32, "MD5")), "file.md5");
            check!(opt(f.sha1.as_deref(), |s| hex(s, 40, "SHA-1")), "file.sha1");
            check!(opt(f.sha256.as_deref(), sha256), "file.sha256");
            check!(opt(f.mime_type.as_deref(), text), "file.mime_type");
        }

        if let Some(n) = &self.network {
            check!(opt(n.src_ip.as_deref(), ip), "network.src_ip");
            check!(opt(n.src_port.as_ref(), |p| port(*p)), "network.src_port");
            check!(
                opt(n.src_hostname.as_deref(), hostname),
                "network.src_hostname"
            );
            check!(opt(n.dst_ip.as_deref(), ip), "network.dst_ip");
            check!(opt(n.dst_port.as_ref(), |p| port(*p)), "network.dst_port");
            check!(
                opt(n.dst_hostname.as_deref(), hostname),
                "network.dst_hostname"
            );
            check!(
                opt(n.transport.as_deref(), lower_token),
                "network.transport"
            );
            check!(opt(n.protocol.as_deref(), lower_token), "network.protocol");
            check!(
                opt(n.bytes_in.as_ref(), |n| non_negative(*n)),
                "network.bytes_in"
            );
            check!(
                opt(n.bytes_out.as_ref(), |n| non_negative(*n)),
                "network.bytes_out"
            );
            check!(
                opt(n.packets.as_ref(), |n| non_negative(*n)),
                "network.packets"
            );
        }

        if let Some(d) = &self.dns {
            check!(hostname(&d.query), "dns.query");
            check!(opt(d.query_type.as_deref(), upper_token), "dns.query_type");
            check!(opt(d.rcode.as_deref(), upper_token), "dns.rcode");
            for (i, a) in d.answers.iter().enumerate() {
                check!(text(&a.data), "dns.answers[{i}].data");
                check!(
                    opt(a.r#type.as_deref(), upper_token),
                    "dns.answers[{i}].type"
                );
                check!(
                    opt(a.ttl.as_ref(), |n| non_negative(*n)),
                    "dns.answers[{i}].ttl"
                );
            }
        }

        if let Some(h) = &self.http {
            check!(opt(h.method.as_deref(), upper_token), "http.method");
            check!(url(&h.url), "http.url");
            check!(
                opt(h.status.as_ref(), |s| if (100..=599).contains(s) {
                    Ok(())
                } else {
                    fail(format!("status {s} is outside 100-599"))
                }),
                "http.status"
            );
            check!(opt(h.version.as_deref(), text), "http.version");
            check!(opt(h.user_agent.as_deref(), text), "http.user_agent");
            check!(opt(h.referrer.as_deref(), text), "http.referrer");
            check!(
                opt(h.request_bytes.as_ref(), |n| non_negative(*n)),
                "http.request_bytes"
            );
            check!(
                opt(h.response_bytes.as_ref(), |n| non_negative(*n)),
                "http.response_bytes"
            );
        }

        if let Some(e) = &self.email {
            check!(email_addr(&e.from), "email.from");
            for (i, a) in e.to.iter().enumerate() {
                check!(email_addr(a), "email.to[{i}]");
            }
            for (i, a) in e.cc.iter().enumerate() {
                check!(email_addr(a), "email.cc[{i}]");
            }
            check!(
                required(
                    !e.to.is_empty() || !e.cc.is_empty(),
                    "(at least one recipient in to or cc)"
                ),
                "email.to"
            );
            check!(opt(e.subject.as_deref(), text), "email.subject");
            check!(opt(e.message_id.as_deref(), text), "email.message_id");
            for (i, a) in e.attachments.iter().enumerate() {
                check!(text(&a.name), "email.attachments[{i}].name");
                check!(
                    opt(a.size.as_ref(), |n| non_negative(*n)),
                    "email.attachments[{i}].size"
                );
                check!(
                    opt(a.mime_type.as_deref(), text),
                    "email.attachments[{i}].mime_type"
                );
                check!(
                    opt(a.sha256.as_deref(), sha256),
                    "email.attachments[{i}].sha256"
                );
            }
        }

        if let Some(r) = &self.rule {
            check!(opt(r.id.as_deref(), text), "rule.id");
            check!(text(&r.name), "rule.name");
            check!(opt(r.description.as_deref(), text), "rule.description");
            check!(opt(r.ruleset.as_deref(), text), "rule.ruleset");
            check!(opt(r.version.as_deref(), text), "rule.version");
            check!(opt(r.reference.as_deref(), url), "rule.reference");
        }

        if let Some(m) = &self.mitre {
            for (i, t) in m.tactics.iter().enumerate() {
                check!(tactic_id(&t.id), "mitre.tactics[{i}].id");
                check!(text(&t.name), "mitre.tactics[{i}].name");
            }
            for (i, t) in m.techniques.iter().enumerate() {
                check!(technique_id(&t.id), "mitre.techniques[{i}].id");
                check!(text(&t.name), "mitre.techniques[{i}].name");
                if let Some(s) = &t.subtechnique {
                    check!(
                        subtechnique_id(&s.id, &t.id),
                        "mitre.techniques[{i}].subtechnique.id"
                    );
                    check!(text(&s.name), "mitre.techniques[{i}].subtechnique.name");
                }
                for (j, id) in t.tactic_ids.iter().enumerate() {
                    check!(
                        if m.tactics.iter().any(|t| &t.id == id) {
                            Ok(())
                        } else {
                            fail(format!("`{id}` is not one of mitre.tactics"))
                        },
                        "mitre.techniques[{i}].tactic_ids[{j}]"
                    );
                }
            }
        }

        if let Some(m) = &self.malware {
            check!(text(&m.name), "malware.name");
            check!(opt(m.family.as_deref(), text), "malware.family");
        }

        for (k, v) in &self.labels {
            check!(
                text(k).map_err(|_| "label key must not be empty".to_owned()),
                "labels"
            );
            check!(text(v), "labels.{k}");
        }
        for (i, t) in self.tags.iter().enumerate() {
            check!(text(t), "tags[{i}]");
        }

        self.validate_enrichments_from(0)?;

        check!(opt(self.raw.as_deref(), text), "raw");
        Ok(())
    }

    /// Checks `enrichments[from..]` only, as [`SecurityEvent::validate`] checks them. The enrich
    /// stage decodes (and so validates) an event, appends its matches and checks just those
    /// before it writes the event again.
    pub fn validate_enrichments_from(&self, from: usize) -> Result<(), EventError> {
        for (i, e) in self.enrichments.iter().enumerate().skip(from) {
            check!(ident(&e.indicator_id, 512), "enrichments[{i}].indicator_id");
            check!(lower_token(&e.ioc_type), "enrichments[{i}].ioc_type");
            check!(text(&e.ioc_value), "enrichments[{i}].ioc_value");
            check!(text(&e.matched_field), "enrichments[{i}].matched_field");
            check!(
                opt(e.confidence.as_ref(), |c| if (0..=100).contains(c) {
                    Ok(())
                } else {
                    fail(format!("confidence {c} is outside 0-100"))
                }),
                "enrichments[{i}].confidence"
            );
            check!(opt(e.tlp.as_deref(), tlp), "enrichments[{i}].tlp");
            check!(
                opt(e.valid_until.as_ref(), |t| timestamp(*t)),
                "enrichments[{i}].valid_until"
            );
            check!(text(&e.provider), "enrichments[{i}].provider");
        }
        Ok(())
    }

    fn validate_semantics(&self) -> Result<(), EventError> {
        let allowed = allowed_activities(self.kind, self.category);
        if matches!(
            self.category,
            EventCategory::Malware | EventCategory::IntrusionDetection
        ) && self.kind != EventKind::Alert
        {
            check!(
                fail(format!(
                    "category `{}` exists only as a detection: kind must be `alert`",
                    self.category
                )),
                "kind"
            );
        }
        if !allowed.contains(&self.activity) {
            let names: Vec<&str> = allowed.iter().map(|a| a.as_str()).collect();
            check!(
                fail(format!(
                    "`{}` is not an activity of kind `{}` category `{}` (allowed: {})",
                    self.activity,
                    self.kind,
                    self.category,
                    names.join(", ")
                )),
                "activity"
            );
        }
        if self.kind == EventKind::Alert {
            check!(required(self.rule.is_some(), "for kind `alert`"), "rule");
        }
        if self.category == EventCategory::Malware {
            check!(
                required(self.malware.is_some(), "for category `malware`"),
                "malware"
            );
        }
        if self.kind == EventKind::Alert {
            return Ok(());
        }

        let endpoint = self.network.as_ref().is_some_and(|n| {
            n.src_ip.is_some()
                || n.src_hostname.is_some()
                || n.dst_ip.is_some()
                || n.dst_hostname.is_some()
        });
        match self.category {
            EventCategory::Authentication => {
                check!(
                    required(self.user.is_some(), "for category `authentication`"),
                    "user"
                );
                let service = self.auth.as_ref().is_some_and(|a| a.service.is_some());
                let destination = self
                    .network
                    .as_ref()
                    .is_some_and(|n| n.dst_ip.is_some() || n.dst_hostname.is_some());
                check!(
                    required(
                        service || destination,
                        "for category `authentication` unless network.dst_ip or \
                         network.dst_hostname is set (what was authenticated to)"
                    ),
                    "auth.service"
                );
            }
            EventCategory::Process => {
                check!(
                    required(self.process.is_some(), "for category `process`"),
                    "process"
                );
                check!(
                    required(self.host.is_some(), "for category `process`"),
                    "host"
                );
                let actor = self.user.is_some()
                    || self.process.as_ref().is_some_and(|p| p.parent.is_some());
                check!(
                    required(
                        actor,
                        "for category `process` unless user is set (the actor)"
                    ),
                    "process.parent"
                );
            }
            EventCategory::File => {
                check!(required(self.file.is_some(), "for category `file`"), "file");
                check!(required(self.host.is_some(), "for category `file`"), "host");
                check!(
                    required(
                        self.process.is_some() || self.user.is_some(),
                        "for category `file` unless user is set (the actor)"
                    ),
                    "process"
                );
            }
            EventCategory::Network => {
                check!(
                    required(
                        endpoint,
                        "with a source or destination (ip or hostname) for category `network`"
                    ),
                    "network"
                );
            }
            EventCategory::Dns => {
                check!(required(self.dns.is_some(), "for category `dns`"), "dns");
                check!(
                    required(
                        endpoint,
                        "with a source or destination (ip or hostname) for category `dns`"
                    ),
                    "network"
                );
            }
            EventCategory::Http => {
                check!(required(self.http.is_some(), "for category `http`"), "http");
                let method = self.http.as_ref().and_then(|h| h.method.as_deref());
                if let Some(m) = method {
                    let expected = http_method_activity(m);
                    let ok = match expected {
                        Some(a) => self.activity == a || self.activity == A::Unknown,
                        None => matches!(self.activity, A::Other | A::Unknown),
                    };
                    if !ok {
                        let want = expected.map_or("other", |a| a.as_str());
                        check!(
                            fail(format!(
                                "`{}` does not match http.method `{m}` (expected `{want}`)",
                                self.activity
                            )),
                            "activity"
                        );
                    }
                }
            }
            EventCategory::Email => {
                check!(
                    required(self.email.is_some(), "for category `email`"),
                    "email"
                );
            }
            EventCategory::Malware | EventCategory::IntrusionDetection => {}
        }
        Ok(())
    }
}
