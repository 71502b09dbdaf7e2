//! Canonical event → OCSF 1.8.0 JSON event.
//!
//! Class selection (the record doc of `schemas/security_event.v1.avsc`): every `kind=alert` is a
//! Detection Finding (2004) whose evidences carry the groups of its category; a `kind=event` maps
//! by category: authentication → Authentication (3002), process → Process Activity (1007), file →
//! File System Activity (1001), network → Network Activity (4001), http → HTTP Activity (4002),
//! dns → DNS Activity (4003), email → Email Activity (4009).
//!
//! Every output validates against the OCSF 1.8.0 JSON Schema of its class for exactly the profiles
//! it lists in `metadata.profiles` (`host` when it carries `device`/`actor` in a class that has
//! them only through that profile, `security_control` when it carries a disposition), and its
//! `*_id` / caption pairs, `type_uid` and observables agree with the compiled schema; the tests in
//! `processors/tests/transform_ocsf.rs` check all of that. Canonical data that has no OCSF
//! attribute in the chosen class is kept under `unmapped`, with the canonical field names.
//!
//! The JSON is written directly into one pre-sized buffer (the `json` submodule): fields in a fixed
//! order, maps in key order, so the same event always gives the same bytes.

mod enums;
mod json;
mod text;

use std::borrow::Cow;
use std::net::IpAddr;

use super::TransformError;
use crate::event::{
    http_method_activity, Activity, Direction, Email, EventCategory, EventKind, File, Host,
    Network, ParentProcess, Process, SecurityEvent, User,
};
use enums::{observable as obs, Class, Id};
use json::Json;
use text::{
    base_name, extension, is_ocsf_email, normalize_ip, parse_url, split_account, strip_indexes,
};

/// The OCSF schema version written to `metadata.version`.
pub const OCSF_VERSION: &str = "1.8.0";

/// Transforms one event into an OCSF 1.8.0 JSON object (compact, one line, UTF-8).
///
/// Fails with [`TransformError::Unmappable`] only when the event cannot give its class what OCSF
/// requires: an activity outside the class (the producer gate refuses those), or an e-mail event
/// none of whose sender and recipient addresses is an OCSF `email_t` (`local@domain.tld`, ASCII).
pub fn to_ocsf(event: &SecurityEvent) -> Result<Vec<u8>, TransformError> {
    let class = class_of(event.kind, event.category);
    let activity = activity_of(class, event)?;
    if class == Class::EmailActivity {
        let mappable = event.email.as_ref().is_some_and(email_mappable);
        if !mappable {
            return Err(unmappable(
                "email",
                "Email Activity needs email.from or one email.to address in OCSF email_t form \
                 (ASCII local@domain.tld)",
            ));
        }
    }
    let mut m = Mapper {
        e: event,
        class,
        places: Places::of(class, event.target_user.is_some()),
        w: Json::object(capacity(event)),
        obs: Vec::with_capacity(16),
    };
    m.write(activity)?;
    Ok(m.w.finish())
}

fn unmappable(field: &str, reason: &str) -> TransformError {
    TransformError::Unmappable {
        format: "ocsf",
        field: field.to_owned(),
        reason: reason.to_owned(),
    }
}

/// The OCSF class of a kind and category.
fn class_of(kind: EventKind, category: EventCategory) -> Class {
    match (kind, category) {
        (EventKind::Alert, _)
        | (_, EventCategory::Malware)
        | (_, EventCategory::IntrusionDetection) => Class::DetectionFinding,
        (EventKind::Event, EventCategory::Authentication) => Class::Authentication,
        (EventKind::Event, EventCategory::Process) => Class::ProcessActivity,
        (EventKind::Event, EventCategory::File) => Class::FileActivity,
        (EventKind::Event, EventCategory::Network) => Class::NetworkActivity,
        (EventKind::Event, EventCategory::Dns) => Class::DnsActivity,
        (EventKind::Event, EventCategory::Http) => Class::HttpActivity,
        (EventKind::Event, EventCategory::Email) => Class::EmailActivity,
    }
}

/// `activity_id` / `activity_name`. An HTTP event whose activity is unknown but whose method OCSF
/// names gets the method's activity: that is what the activity of HTTP Activity means.
fn activity_of(class: Class, e: &SecurityEvent) -> Result<Id, TransformError> {
    let mut activity = e.activity;
    if class == Class::HttpActivity && activity == Activity::Unknown {
        if let Some(a) = e
            .http
            .as_ref()
            .and_then(|h| h.method.as_deref())
            .and_then(http_method_activity)
        {
            activity = a;
        }
    }
    class.activity(activity).ok_or_else(|| {
        let (_, class_name) = class.id();
        unmappable(
            "activity",
            &format!("`{activity}` is not an activity of OCSF {class_name}"),
        )
    })
}

/// A starting size for the output buffer: the fixed part of each group present plus the text
/// that the output repeats (objects and their observables), so that the buffer is allocated once
/// for nearly every event.
fn capacity(e: &SecurityEvent) -> usize {
    let len = |s: &Option<String>| s.as_ref().map_or(0, String::len);
    let groups = [
        e.host.is_some(),
        e.user.is_some(),
        e.target_user.is_some(),
        e.auth.is_some(),
        e.process.is_some(),
        e.file.is_some(),
        e.network.is_some(),
        e.dns.is_some(),
        e.http.is_some(),
        e.email.is_some(),
        e.rule.is_some(),
        e.mitre.is_some(),
        e.malware.is_some(),
    ]
    .iter()
    .filter(|present| **present)
    .count();
    let process = e.process.as_ref().map_or(0, |p| {
        let parent = p.parent.as_ref().map_or(0, |pp| {
            len(&pp.command_line) + len(&pp.executable) + len(&pp.name)
        });
        len(&p.command_line) + len(&p.executable) + len(&p.name) + 2 * parent
    });
    let text = e.message.len()
        + len(&e.raw)
        + e.file.as_ref().map_or(0, |f| f.path.len())
        + e.http
            .as_ref()
            .map_or(0, |h| h.url.len() + len(&h.user_agent));
    1024 + 448 * groups
        + 2 * (text + process)
        + 400 * e.enrichments.len()
        + e.labels
            .iter()
            .map(|(k, v)| k.len() + v.len() + 8)
            .sum::<usize>()
        + e.tags.iter().map(|t| t.len() + 4).sum::<usize>()
}

/// An observable collected while writing: `name` is `<at>.<field>`, an OCSF attribute path.
#[derive(Debug)]
struct Observable<'a> {
    at: &'static str,
    field: &'static str,
    kind: Id,
    value: Cow<'a, str>,
}

/// Where the canonical groups live in the chosen class (OCSF attribute paths); `None` means the
/// class has no attribute for the group, which then goes to `unmapped`.
#[derive(Debug, Clone, Copy)]
struct Places {
    /// The canonical `user`.
    user: &'static str,
    /// The canonical `target_user` (Authentication only).
    target_user: Option<&'static str>,
    /// The canonical `process`.
    process: &'static str,
    /// Prefix of `src_endpoint` / `dst_endpoint` / `connection_info` (`""` or `"evidences."`).
    network: Option<&'static str>,
    /// The canonical `file`.
    file: Option<&'static str>,
    /// The canonical `dns` query (`query`).
    dns: Option<&'static str>,
    /// The canonical `http` request (`http_request`).
    http: Option<&'static str>,
    /// The canonical `email`.
    email: Option<&'static str>,
}

impl Places {
    fn of(class: Class, has_target_user: bool) -> Places {
        match class {
            Class::DetectionFinding => Places {
                user: "evidences.user",
                target_user: None,
                process: "evidences.process",
                network: Some("evidences."),
                file: Some("evidences.file"),
                dns: Some("evidences.query"),
                http: Some("evidences.http_request"),
                email: Some("evidences.email"),
            },
            Class::Authentication => Places {
                // When another account is involved, that account is the one authenticated
                // (OCSF `user`) and the canonical user is the actor who asked for it.
                user: if has_target_user {
                    "actor.user"
                } else {
                    "user"
                },
                target_user: if has_target_user { Some("user") } else { None },
                process: "actor.process",
                network: Some(""),
                file: None,
                dns: None,
                http: Some("http_request"),
                email: None,
            },
            Class::ProcessActivity => Places {
                user: "actor.user",
                target_user: None,
                process: "process",
                network: None,
                file: None,
                dns: None,
                http: None,
                email: None,
            },
            Class::FileActivity => Places {
                user: "actor.user",
                target_user: None,
                process: "actor.process",
                network: None,
                file: Some("file"),
                dns: None,
                http: None,
                email: None,
            },
            Class::NetworkActivity | Class::HttpActivity | Class::DnsActivity => Places {
                user: "actor.user",
                target_user: None,
                process: "actor.process",
                network: Some(""),
                file: if class == Class::HttpActivity {
                    Some("file")
                } else {
                    None
                },
                dns: if class == Class::DnsActivity {
                    Some("query")
                } else {
                    None
                },
                http: if class == Class::HttpActivity {
                    Some("http_request")
                } else {
                    None
                },
                email: None,
            },
            Class::EmailActivity => Places {
                user: "actor.user",
                target_user: None,
                process: "actor.process",
                network: Some(""),
                file: None,
                dns: None,
                http: None,
                email: Some("email"),
            },
        }
    }
}

struct Mapper<'a> {
    e: &'a SecurityEvent,
    class: Class,
    places: Places,
    w: Json,
    obs: Vec<Observable<'a>>,
}

impl<'a> Mapper<'a> {
    /// Records an observable unless the same type and value is already listed: observables
    /// are there to find events by value, and one entry (at the first place the value appears,
    /// in output order) serves that.
    fn observe(&mut self, at: &'static str, field: &'static str, kind: Id, value: &'a str) {
        self.push_observable(at, field, kind, Cow::Borrowed(value));
    }

    fn push_observable(
        &mut self,
        at: &'static str,
        field: &'static str,
        kind: Id,
        value: Cow<'a, str>,
    ) {
        if self
            .obs
            .iter()
            .any(|o| o.kind.0 == kind.0 && o.value == value)
        {
            return;
        }
        self.obs.push(Observable {
            at,
            field,
            kind,
            value,
        });
    }

    /// `"<id_key>":id,"<caption_key>":"caption"`.
    fn id(&mut self, id_key: &str, caption_key: &str, (id, caption): Id) {
        self.w.int(id_key, id);
        self.w.str(caption_key, caption);
    }

    fn write(&mut self, activity: Id) -> Result<(), TransformError> {
        let e = self.e;
        let class = self.class;
        let (class_uid, class_name) = class.id();
        let (activity_id, activity_name) = activity;
        self.id("class_uid", "class_name", (class_uid, class_name));
        self.id("category_uid", "category_name", class.category());
        self.id("activity_id", "activity_name", activity);
        self.w.int("type_uid", class_uid * 100 + activity_id);
        self.w
            .str_joined("type_name", class_name, ": ", activity_name);
        self.w.int("time", e.event_time);
        self.id("severity_id", "severity", enums::severity(e.severity));
        let status = if class == Class::DetectionFinding {
            enums::finding_status(e.activity)
        } else {
            enums::outcome_status(e.outcome)
        };
        self.id("status_id", "status", status);
        self.w.str("message", &e.message);
        self.metadata();

        match class {
            Class::DetectionFinding => self.finding(),
            Class::Authentication => self.authentication(),
            Class::ProcessActivity => self.process_activity(),
            Class::FileActivity => self.file_activity(),
            Class::NetworkActivity => self.network_activity(),
            Class::HttpActivity => self.http_activity(),
            Class::DnsActivity => self.dns_activity(),
            Class::EmailActivity => self.email_activity(),
        }

        if let Some(h) = &e.host {
            self.device(h);
        }
        if let Some(d) = e.disposition {
            self.id("disposition_id", "disposition", enums::disposition(d));
            self.id("action_id", "action", enums::action(d));
        }
        self.observables();
        self.enrichments();
        self.w.opt_str("raw_data", e.raw.as_deref());
        self.unmapped()
    }

    /// Whether the output uses the `host` and the `security_control` profile.
    fn profiles(&self) -> (bool, bool) {
        let e = self.e;
        let host = self.class.device_needs_host_profile()
            && (e.host.is_some()
                || (self.class != Class::Authentication
                    && (e.user.is_some() || e.process.is_some())));
        let security_control = e.disposition.is_some();
        (host, security_control)
    }

    fn metadata(&mut self) {
        let e = self.e;
        self.w.obj("metadata");
        self.w.str("version", OCSF_VERSION);
        let (host, security_control) = self.profiles();
        if host || security_control {
            self.w.arr("profiles");
            if host {
                self.w.elem_str("host");
            }
            if security_control {
                self.w.elem_str("security_control");
            }
            self.w.end_arr();
        }
        self.w.str("uid", &e.event_id);
        self.w.obj("product");
        self.w.str("name", &e.product.name);
        self.w.str("vendor_name", &e.product.vendor);
        self.w.opt_str("version", e.product.version.as_deref());
        self.w.end_obj();
        self.w.str("tenant_uid", &e.tenant);
        self.w.int("logged_time", e.observed_time);
        self.w.str("event_code", &e.action);
        if !e.tags.is_empty() {
            self.w.arr("labels");
            for t in &e.tags {
                self.w.elem_str(t);
            }
            self.w.end_arr();
        }
        self.w.end_obj();
    }

    // ----- classes -------------------------------------------------------------------------

    fn finding(&mut self) {
        let e = self.e;
        self.w.obj("finding_info");
        self.w.str("uid", &e.event_id);
        if let Some(r) = &e.rule {
            self.w.str("title", &r.name);
            self.w.opt_str("desc", r.description.as_deref());
        } else {
            // The producer gate makes alerts carry a rule; without one the summary is the title.
            self.w.str("title", &e.message);
        }
        self.w.arr("types");
        self.w.elem_str(enums::finding_type(e.category));
        self.w.end_arr();
        if let Some(r) = &e.rule {
            self.w.opt_str("src_url", r.reference.as_deref());
            self.w.obj("analytic");
            self.w.str("name", &r.name);
            self.w.opt_str("uid", r.id.as_deref());
            self.id("type_id", "type", enums::ANALYTIC_RULE);
            self.w.opt_str("category", r.ruleset.as_deref());
            self.w.opt_str("version", r.version.as_deref());
            self.w.end_obj();
        }
        self.attacks();
        self.w.end_obj();
        self.w.bool("is_alert", true);

        if let Some(mw) = &e.malware {
            self.w.arr("malware");
            self.w.elem_obj();
            self.w.str("name", &mw.name);
            self.w.arr("classification_ids");
            if mw.classifications.is_empty() {
                self.w.elem_int(0);
            }
            for c in &mw.classifications {
                self.w.elem_int(enums::malware_class(*c).0);
            }
            self.w.end_arr();
            self.w.arr("classifications");
            if mw.classifications.is_empty() {
                self.w.elem_str("Unknown");
            }
            for c in &mw.classifications {
                self.w.elem_str(enums::malware_class(*c).1);
            }
            self.w.end_arr();
            self.w.str("provider", &e.product.name);
            self.w.end_obj();
            self.w.end_arr();
        }

        let qualifies = self.has_evidence();
        let http = e.http.as_ref();
        if qualifies || http.is_some() {
            self.w.arr("evidences");
            self.w.elem_obj();
            if let Some(u) = &e.user {
                self.user("user", self.places.user, u);
            }
            if let Some(p) = &e.process {
                self.process("process", self.places.process, p);
            }
            if let Some(f) = &e.file {
                self.file("file", "evidences.file", f);
            }
            if let Some(n) = &e.network {
                self.endpoints(n);
                if n.transport.is_some() || n.direction.is_some() {
                    self.connection_info(n);
                }
            }
            if let Some(d) = &e.dns {
                self.dns_query("query", "evidences.query", d);
            }
            if let Some(h) = http {
                self.http("evidences.http_request", h);
                if !qualifies {
                    // An evidence needs one of OCSF's listed attributes and the HTTP request
                    // is not one of them: the URL object is.
                    self.w.obj("url");
                    self.w.str("url_string", &h.url);
                    self.w.end_obj();
                }
            }
            if let Some(em) = &e.email {
                if email_mappable(em) {
                    self.email("email", "evidences.email", em);
                }
            }
            self.w.end_obj();
            self.w.end_arr();
        }
    }

    /// Whether an evidence object gets at least one of the attributes OCSF requires one of
    /// (`http_request` / `http_response` are not among them).
    fn has_evidence(&self) -> bool {
        let e = self.e;
        e.user.is_some()
            || e.process.is_some()
            || e.file.is_some()
            || e.network
                .as_ref()
                .is_some_and(|n| has_endpoint(n) || n.transport.is_some() || n.direction.is_some())
            || e.dns.is_some()
            || e.email.as_ref().is_some_and(email_mappable)
    }

    /// `finding_info.attacks`: one entry per technique and tactic it serves (a technique with no
    /// known tactic gets one entry without tactic), then one per tactic no technique refers to.
    fn attacks(&mut self) {
        let Some(m) = &self.e.mitre else { return };
        if m.tactics.is_empty() && m.techniques.is_empty() {
            return;
        }
        self.w.arr("attacks");
        for t in &m.techniques {
            let mut tactics = t
                .tactic_ids
                .iter()
                .map(|id| m.tactics.iter().find(|x| &x.id == id))
                .peekable();
            if tactics.peek().is_none() {
                self.attack(None, Some(t));
            }
            for tactic in tactics {
                match tactic {
                    Some(tc) => self.attack(Some((&tc.id, &tc.name)), Some(t)),
                    None => self.attack(None, Some(t)),
                }
            }
        }
        for tc in &m.tactics {
            let used = m.techniques.iter().any(|t| t.tactic_ids.contains(&tc.id));
            if !used {
                self.attack(Some((&tc.id, &tc.name)), None);
            }
        }
        self.w.end_arr();
    }

    fn attack(
        &mut self,
        tactic: Option<(&str, &str)>,
        technique: Option<&crate::event::MitreTechnique>,
    ) {
        self.w.elem_obj();
        if let Some((id, name)) = tactic {
            self.w.obj("tactic");
            self.w.str("name", name);
            self.w.str("uid", id);
            self.w.end_obj();
        }
        if let Some(t) = technique {
            self.w.obj("technique");
            self.w.str("name", &t.name);
            self.w.str("uid", &t.id);
            self.w.end_obj();
            if let Some(s) = &t.subtechnique {
                self.w.obj("sub_technique");
                self.w.str("name", &s.name);
                self.w.str("uid", &s.id);
                self.w.end_obj();
            }
        }
        self.w.end_obj();
    }

    fn authentication(&mut self) {
        let e = self.e;
        // `user` is required by the class; the producer gate requires it for authentication.
        match (&e.target_user, &e.user) {
            (Some(t), _) => self.user("user", "user", t),
            (None, Some(u)) => self.user("user", "user", u),
            (None, None) => {}
        }
        let actor_user = e.target_user.as_ref().and(e.user.as_ref());
        if actor_user.is_some() || e.process.is_some() {
            self.w.obj("actor");
            if let Some(p) = &e.process {
                self.process("process", "actor.process", p);
            }
            if let Some(u) = actor_user {
                self.user("user", "actor.user", u);
            }
            self.w.end_obj();
        }
        let auth = e.auth.as_ref();
        self.id(
            "auth_protocol_id",
            "auth_protocol",
            enums::auth_protocol(auth.and_then(|a| a.protocol)),
        );
        let logon_type = auth.and_then(|a| a.logon_type);
        self.id("logon_type_id", "logon_type", enums::logon_type(logon_type));
        if let Some(remote) = logon_type.and_then(enums::logon_is_remote) {
            self.w.bool("is_remote", remote);
        }
        if let Some(mfa) = auth.and_then(|a| a.mfa) {
            self.w.bool("is_mfa", mfa);
        }
        if let Some(service) = auth.and_then(|a| a.service.as_deref()) {
            self.w.obj("service");
            self.w.str("name", service);
            self.w.end_obj();
        }
        if let Some(n) = &e.network {
            self.endpoints(n);
        }
        if let Some(h) = &e.http {
            self.http("http_request", h);
        }
    }

    fn process_activity(&mut self) {
        let e = self.e;
        if let Some(p) = &e.process {
            self.process("process", "process", p);
        }
        let parent = e.process.as_ref().and_then(|p| p.parent.as_ref());
        if parent.is_some() || e.user.is_some() {
            self.w.obj("actor");
            if let Some(pp) = parent {
                // The parent launched (or acted on) the process: it is the actor.
                self.parent_process("process", "actor.process", pp);
            }
            if let Some(u) = &e.user {
                self.user("user", "actor.user", u);
            }
            self.w.end_obj();
        }
        let exit_code = e.process.as_ref().and_then(|p| p.exit_code);
        self.w.opt_int("exit_code", exit_code.map(i64::from));
    }

    fn file_activity(&mut self) {
        let e = self.e;
        if let Some(f) = &e.file {
            self.file("file", "file", f);
        }
        self.actor();
    }

    /// `actor` with the acting process and user (File, Network, HTTP, DNS, Email classes).
    fn actor(&mut self) {
        let e = self.e;
        if e.process.is_none() && e.user.is_none() {
            return;
        }
        self.w.obj("actor");
        if let Some(p) = &e.process {
            self.process("process", "actor.process", p);
        }
        if let Some(u) = &e.user {
            self.user("user", "actor.user", u);
        }
        self.w.end_obj();
    }

    fn network_activity(&mut self) {
        if let Some(n) = &self.e.network {
            self.network_full(n);
        }
        self.actor();
    }

    fn http_activity(&mut self) {
        let e = self.e;
        if let Some(h) = &e.http {
            self.http("http_request", h);
        }
        if let Some(n) = &e.network {
            self.network_full(n);
        }
        if let Some(f) = &e.file {
            self.file("file", "file", f);
        }
        self.actor();
    }

    fn dns_activity(&mut self) {
        let e = self.e;
        if let Some(d) = &e.dns {
            self.dns_query("query", "query", d);
            if !d.answers.is_empty() {
                self.w.arr("answers");
                for a in &d.answers {
                    self.w.elem_obj();
                    self.w.str("rdata", &a.data);
                    self.w.opt_str("type", a.r#type.as_deref());
                    self.w.opt_int("ttl", a.ttl);
                    self.w.end_obj();
                }
                self.w.end_arr();
            }
            if let Some(rc) = &d.rcode {
                let (id, caption) = enums::rcode(rc);
                self.w.int("rcode_id", id);
                // Other (99): OCSF keeps the source's own label in the caption.
                self.w.str("rcode", if id == 99 { rc } else { caption });
            }
        }
        if let Some(n) = &e.network {
            self.network_full(n);
        }
        self.actor();
    }

    fn email_activity(&mut self) {
        let e = self.e;
        if let Some(em) = &e.email {
            self.email("email", "email", em);
        }
        let n = e.network.as_ref();
        self.id(
            "direction_id",
            "direction",
            enums::email_direction(n.and_then(|n| n.direction)),
        );
        if let Some(n) = n {
            self.w.opt_str("protocol_name", n.protocol.as_deref());
            self.endpoints(n);
        }
        self.actor();
    }

    // ----- objects -------------------------------------------------------------------------

    fn device(&mut self, h: &'a Host) {
        self.w.obj("device");
        self.w.str("hostname", &h.hostname);
        self.observe("device", "hostname", obs::HOSTNAME, &h.hostname);
        self.w.opt_str("uid", h.id.as_deref());
        if let Some(first) = h.ip.first() {
            let ip = normalize_ip(first);
            self.w.str("ip", &ip);
            self.push_observable("device", "ip", obs::IP, ip);
        }
        if let Some(mac) = &h.mac {
            self.w.str("mac", mac);
            self.observe("device", "mac", obs::MAC, mac);
        }
        self.id("type_id", "type", enums::host_type(h.r#type));
        if h.os_name.is_some() || h.os_type.is_some() {
            self.w.obj("os");
            // OCSF requires a name: without one the family's name is the best the event says.
            let (type_id, type_caption) = h.os_type.map_or((0, "Unknown"), enums::os_type);
            self.w
                .str("name", h.os_name.as_deref().unwrap_or(type_caption));
            self.w.int("type_id", type_id);
            self.w.str("type", type_caption);
            self.w.opt_str("version", h.os_version.as_deref());
            self.w.end_obj();
        }
        if h.ip.len() > 1 {
            // OCSF device.ip holds one address; all of them are listed as interfaces.
            self.w.arr("network_interfaces");
            for (i, a) in h.ip.iter().enumerate() {
                let ip = normalize_ip(a);
                self.w.elem_obj();
                self.w.str("ip", &ip);
                self.w.end_obj();
                if i > 0 {
                    self.push_observable("device.network_interfaces", "ip", obs::IP, ip);
                }
            }
            self.w.end_arr();
        }
        self.w.end_obj();
    }

    fn user(&mut self, key: &str, at: &'static str, u: &'a User) {
        self.w.obj(key);
        self.w.str("name", &u.name);
        self.observe(at, "name", obs::USER_NAME, &u.name);
        self.w.opt_str("uid", u.id.as_deref());
        self.w.opt_str("domain", u.domain.as_deref());
        if let Some(mail) = u.email.as_deref().filter(|m| is_ocsf_email(m)) {
            self.w.str("email_addr", mail);
            self.observe(at, "email_addr", obs::EMAIL, mail);
        }
        self.w.end_obj();
    }

    fn process(&mut self, key: &str, at: &'static str, p: &'a Process) {
        let paths = ProcessPaths::of(at);
        self.w.obj(key);
        if let Some(name) = &p.name {
            self.w.str("name", name);
            self.observe(at, "name", obs::PROCESS_NAME, name);
        }
        self.w.opt_int("pid", p.pid);
        self.w.opt_str("uid", p.entity_id.as_deref());
        if let Some(cmd) = &p.command_line {
            self.w.str("cmd_line", cmd);
            self.observe(at, "cmd_line", obs::COMMAND_LINE, cmd);
        }
        if let Some(file_name) = process_file_name(p) {
            self.w.obj("file");
            // No File Name observable: the image name is already the Process Name one.
            self.w.str("name", file_name);
            if let Some(path) = &p.executable {
                self.w.str("path", path);
                self.observe(at, "file.path", obs::FILE_PATH, path);
            }
            self.id("type_id", "type", enums::REGULAR_FILE);
            if let Some(sha) = &p.sha256 {
                self.w.arr("hashes");
                self.fingerprint(enums::SHA256, sha);
                self.w.end_arr();
                self.observe(at, "file.hashes.value", obs::HASH, sha);
            }
            self.w.end_obj();
        }
        if let Some(u) = &p.user {
            self.w.obj("user");
            let (domain, name) = split_account(u);
            self.w.str("name", name);
            self.w.opt_str("domain", domain);
            self.w.end_obj();
            self.observe(at, "user.name", obs::USER_NAME, name);
        }
        self.w.opt_int("created_time", p.start_time);
        if let Some(pp) = &p.parent {
            self.parent_process("parent_process", paths.parent, pp);
        }
        self.w.end_obj();
    }

    fn parent_process(&mut self, key: &str, at: &'static str, pp: &'a ParentProcess) {
        self.w.obj(key);
        if let Some(name) = &pp.name {
            self.w.str("name", name);
            self.observe(at, "name", obs::PROCESS_NAME, name);
        }
        self.w.opt_int("pid", pp.pid);
        self.w.opt_str("uid", pp.entity_id.as_deref());
        if let Some(cmd) = &pp.command_line {
            self.w.str("cmd_line", cmd);
            self.observe(at, "cmd_line", obs::COMMAND_LINE, cmd);
        }
        if let Some(path) = &pp.executable {
            let name = base_name(path);
            self.w.obj("file");
            self.w.str("name", name);
            self.w.str("path", path);
            self.id("type_id", "type", enums::REGULAR_FILE);
            self.w.end_obj();
            self.observe(at, "file.path", obs::FILE_PATH, path);
        }
        self.w.end_obj();
    }

    fn file(&mut self, key: &str, at: &'static str, f: &'a File) {
        let name = f.name.as_deref().unwrap_or_else(|| base_name(&f.path));
        self.w.obj(key);
        self.w.str("name", name);
        self.observe(at, "name", obs::FILE_NAME, name);
        self.w.str("path", &f.path);
        self.observe(at, "path", obs::FILE_PATH, &f.path);
        if let Some(ext) = extension(name) {
            self.w.str("ext", ext);
        }
        self.w.opt_str("parent_folder", f.directory.as_deref());
        self.id("type_id", "type", enums::file_type(f.r#type));
        self.w.opt_int("size", f.size);
        self.w.opt_str("mime_type", f.mime_type.as_deref());
        if f.md5.is_some() || f.sha1.is_some() || f.sha256.is_some() {
            self.w.arr("hashes");
            for (alg, value) in [
                (enums::MD5, &f.md5),
                (enums::SHA1, &f.sha1),
                (enums::SHA256, &f.sha256),
            ] {
                if let Some(v) = value {
                    self.fingerprint(alg, v);
                    self.observe(at, "hashes.value", obs::HASH, v);
                }
            }
            self.w.end_arr();
        }
        self.w.end_obj();
    }

    fn fingerprint(&mut self, alg: Id, value: &str) {
        self.w.elem_obj();
        self.id("algorithm_id", "algorithm", alg);
        self.w.str("value", value);
        self.w.end_obj();
    }

    /// `src_endpoint` and `dst_endpoint` (under the class's network prefix).
    fn endpoints(&mut self, n: &'a Network) {
        let evidence = self.places.network == Some("evidences.");
        let (src_at, dst_at) = if evidence {
            ("evidences.src_endpoint", "evidences.dst_endpoint")
        } else {
            ("src_endpoint", "dst_endpoint")
        };
        self.endpoint(
            "src_endpoint",
            src_at,
            n.src_ip.as_deref(),
            n.src_hostname.as_deref(),
            n.src_port,
        );
        self.endpoint(
            "dst_endpoint",
            dst_at,
            n.dst_ip.as_deref(),
            n.dst_hostname.as_deref(),
            n.dst_port,
        );
    }

    fn endpoint(
        &mut self,
        key: &str,
        at: &'static str,
        ip: Option<&'a str>,
        hostname: Option<&'a str>,
        port: Option<i32>,
    ) {
        // OCSF wants an ip or a hostname (among others) in an endpoint; a bare port stays in
        // `unmapped`.
        if ip.is_none() && hostname.is_none() {
            return;
        }
        self.w.obj(key);
        if let Some(h) = hostname {
            self.w.str("hostname", h);
            self.observe(at, "hostname", obs::HOSTNAME, h);
        }
        if let Some(ip) = ip {
            let ip = normalize_ip(ip);
            self.w.str("ip", &ip);
            self.push_observable(at, "ip", obs::IP, ip);
        }
        self.w.opt_int("port", port.map(i64::from));
        self.w.end_obj();
    }

    fn connection_info(&mut self, n: &Network) {
        self.w.obj("connection_info");
        self.id(
            "direction_id",
            "direction",
            enums::connection_direction(n.direction),
        );
        if let Some(t) = &n.transport {
            self.w.str("protocol_name", t);
            self.w.opt_int("protocol_num", enums::protocol_num(t));
        }
        if let Some(v) = ip_version(n) {
            self.id("protocol_ver_id", "protocol_ver", v);
        }
        self.w.end_obj();
    }

    /// Endpoints, connection, traffic and application protocol (Network, HTTP, DNS classes).
    fn network_full(&mut self, n: &'a Network) {
        self.endpoints(n);
        self.connection_info(n);
        if n.bytes_in.is_some() || n.bytes_out.is_some() || n.packets.is_some() {
            self.w.obj("traffic");
            if let (Some(i), Some(o)) = (n.bytes_in, n.bytes_out) {
                self.w.int("bytes", i.saturating_add(o));
            }
            self.w.opt_int("bytes_in", n.bytes_in);
            self.w.opt_int("bytes_out", n.bytes_out);
            self.w.opt_int("packets", n.packets);
            self.w.end_obj();
        }
        self.w.opt_str("app_protocol_name", n.protocol.as_deref());
    }

    fn dns_query(&mut self, key: &str, at: &'static str, d: &'a crate::event::Dns) {
        self.w.obj(key);
        self.w.str("hostname", &d.query);
        self.observe(at, "hostname", obs::HOSTNAME, &d.query);
        self.w.opt_str("type", d.query_type.as_deref());
        self.w.end_obj();
    }

    /// `http_request` (at `at`) and, with a status, `http_response` beside it.
    fn http(&mut self, at: &'static str, h: &'a crate::event::Http) {
        let url_at = if at.starts_with("evidences.") {
            "evidences.http_request.url"
        } else {
            "http_request.url"
        };
        self.w.obj("http_request");
        if let Some(m) = h.method.as_deref().filter(|m| is_ocsf_http_method(m)) {
            self.w.str("http_method", m);
        }
        self.w.obj("url");
        self.w.str("url_string", &h.url);
        self.observe(url_at, "url_string", obs::URL, &h.url);
        if let Some(u) = parse_url(&h.url) {
            self.w.str("scheme", u.scheme);
            if let Some(host) = u.host {
                self.w.str("hostname", host);
                self.observe(url_at, "hostname", obs::HOSTNAME, host);
            }
            self.w.opt_int("port", u.port);
            self.w.opt_str("path", u.path);
            self.w.opt_str("query_string", u.query);
        }
        self.w.end_obj();
        self.w.opt_str("version", h.version.as_deref());
        if let Some(ua) = &h.user_agent {
            self.w.str("user_agent", ua);
            self.observe(at, "user_agent", obs::USER_AGENT, ua);
        }
        self.w.opt_str("referrer", h.referrer.as_deref());
        self.w.opt_int("length", h.request_bytes);
        self.w.end_obj();
        if let Some(code) = h.status {
            self.w.obj("http_response");
            self.w.int("code", i64::from(code));
            self.w.opt_int("length", h.response_bytes);
            self.w.end_obj();
        }
    }

    /// The `email` object; addresses that are not OCSF `email_t` stay in `unmapped`.
    fn email(&mut self, key: &str, at: &'static str, em: &'a Email) {
        let files_at = if at.starts_with("evidences.") {
            "evidences.email.files"
        } else {
            "email.files"
        };
        self.w.obj(key);
        if is_ocsf_email(&em.from) {
            self.w.str("from", &em.from);
            self.observe(at, "from", obs::EMAIL, &em.from);
        }
        for (k, list) in [("to", &em.to), ("cc", &em.cc)] {
            if list.iter().any(|a| is_ocsf_email(a)) {
                self.w.arr(k);
                for a in list.iter().filter(|a| is_ocsf_email(a)) {
                    self.w.elem_str(a);
                    self.observe(at, k_static(k), obs::EMAIL, a);
                }
                self.w.end_arr();
            }
        }
        self.w.opt_str("subject", em.subject.as_deref());
        self.w.opt_str("message_uid", em.message_id.as_deref());
        if !em.attachments.is_empty() {
            self.w.arr("files");
            for a in &em.attachments {
                self.w.elem_obj();
                self.w.str("name", &a.name);
                self.observe(files_at, "name", obs::FILE_NAME, &a.name);
                if let Some(ext) = extension(&a.name) {
                    self.w.str("ext", ext);
                }
                self.id("type_id", "type", enums::REGULAR_FILE);
                self.w.opt_int("size", a.size);
                self.w.opt_str("mime_type", a.mime_type.as_deref());
                if let Some(sha) = &a.sha256 {
                    self.w.arr("hashes");
                    self.fingerprint(enums::SHA256, sha);
                    self.w.end_arr();
                    self.observe(files_at, "hashes.value", obs::HASH, sha);
                }
                self.w.end_obj();
            }
            self.w.end_arr();
        }
        self.w.end_obj();
    }

    // ----- observables, enrichments, unmapped ------------------------------------------------

    fn observables(&mut self) {
        if self.obs.is_empty() {
            return;
        }
        let list = std::mem::take(&mut self.obs);
        self.w.arr("observables");
        for o in &list {
            self.w.elem_obj();
            self.w.path("name", o.at, o.field);
            self.id("type_id", "type", o.kind);
            self.w.str("value", &o.value);
            self.w.end_obj();
        }
        self.w.end_arr();
    }

    fn enrichments(&mut self) {
        let e = self.e;
        if e.enrichments.is_empty() {
            return;
        }
        self.w.arr("enrichments");
        for en in &e.enrichments {
            self.w.elem_obj();
            match self.ocsf_path(&en.matched_field) {
                Some((a, b)) => self.w.path("name", a, b),
                None => self.w.str("name", &en.matched_field),
            }
            self.w.str("value", &en.ioc_value);
            self.w.str("type", &en.ioc_type);
            self.w.str("provider", &en.provider);
            self.w.obj("data");
            self.w.str("uid", &en.indicator_id);
            self.w.str("matched_field", &en.matched_field);
            self.w.opt_int("confidence", en.confidence.map(i64::from));
            self.w.opt_str("tlp", en.tlp.as_deref());
            self.w.opt_int("expiration_time", en.valid_until);
            self.w.end_obj();
            self.w.end_obj();
        }
        self.w.end_arr();
    }

    /// The OCSF attribute path (two parts joined by a dot) of a canonical field path such as
    /// `network.dst_ip` or `email.to[0]`, in the chosen class; `None` if it has none here.
    fn ocsf_path(&self, canonical: &str) -> Option<(&'static str, &'static str)> {
        let stripped = strip_indexes(canonical);
        let (group, field) = stripped.split_once('.')?;
        let p = self.places;
        let e = self.e;
        // `then` keeps a path only when the event has the value, so that the name always points
        // at something in the output.
        let then = |present: bool, at: &'static str, leaf: &'static str| {
            if present {
                Some((at, leaf))
            } else {
                None
            }
        };
        match group {
            "host" => {
                let h = e.host.as_ref()?;
                match field {
                    "hostname" => then(true, "device", "hostname"),
                    "id" => then(h.id.is_some(), "device", "uid"),
                    "mac" => then(h.mac.is_some(), "device", "mac"),
                    "ip" if h.ip.len() > 1 => then(true, "device.network_interfaces", "ip"),
                    "ip" => then(!h.ip.is_empty(), "device", "ip"),
                    _ => None,
                }
            }
            "user" | "target_user" => {
                let (at, u) = if group == "user" {
                    (p.user, e.user.as_ref()?)
                } else {
                    (p.target_user?, e.target_user.as_ref()?)
                };
                match field {
                    "name" => then(true, at, "name"),
                    "id" => then(u.id.is_some(), at, "uid"),
                    "domain" => then(u.domain.is_some(), at, "domain"),
                    // An address OCSF does not accept stays in unmapped.
                    "email" => then(
                        u.email.as_deref().is_some_and(is_ocsf_email),
                        at,
                        "email_addr",
                    ),
                    _ => None,
                }
            }
            "network" => {
                let n = e.network.as_ref()?;
                let (src, dst) = if p.network?.is_empty() {
                    ("src_endpoint", "dst_endpoint")
                } else {
                    ("evidences.src_endpoint", "evidences.dst_endpoint")
                };
                // A port without an address or name has no endpoint (it stays in unmapped).
                let src_ep = n.src_ip.is_some() || n.src_hostname.is_some();
                let dst_ep = n.dst_ip.is_some() || n.dst_hostname.is_some();
                match field {
                    "src_ip" => then(n.src_ip.is_some(), src, "ip"),
                    "src_hostname" => then(n.src_hostname.is_some(), src, "hostname"),
                    "src_port" => then(src_ep && n.src_port.is_some(), src, "port"),
                    "dst_ip" => then(n.dst_ip.is_some(), dst, "ip"),
                    "dst_hostname" => then(n.dst_hostname.is_some(), dst, "hostname"),
                    "dst_port" => then(dst_ep && n.dst_port.is_some(), dst, "port"),
                    _ => None,
                }
            }
            "dns" => {
                let d = e.dns.as_ref()?;
                match field {
                    "query" => then(true, p.dns?, "hostname"),
                    "answers.data" => then(
                        self.class == Class::DnsActivity && !d.answers.is_empty(),
                        "answers",
                        "rdata",
                    ),
                    _ => None,
                }
            }
            "http" => {
                let h = e.http.as_ref()?;
                let at = p.http?;
                let url_at = if at.starts_with("evidences.") {
                    "evidences.http_request.url"
                } else {
                    "http_request.url"
                };
                match field {
                    "url" => then(true, url_at, "url_string"),
                    "user_agent" => then(h.user_agent.is_some(), at, "user_agent"),
                    "referrer" => then(h.referrer.is_some(), at, "referrer"),
                    _ => None,
                }
            }
            "file" => {
                let f = e.file.as_ref()?;
                let at = p.file?;
                match field {
                    "path" => then(true, at, "path"),
                    "name" => then(true, at, "name"),
                    "directory" => then(f.directory.is_some(), at, "parent_folder"),
                    "md5" => then(f.md5.is_some(), at, "hashes.value"),
                    "sha1" => then(f.sha1.is_some(), at, "hashes.value"),
                    "sha256" => then(f.sha256.is_some(), at, "hashes.value"),
                    _ => None,
                }
            }
            "process" => {
                let pr = e.process.as_ref()?;
                let at = p.process;
                let image = process_file_name(pr).is_some();
                let parent = pr.parent.as_ref();
                let parent_at = ProcessPaths::of(at).parent;
                match field {
                    "name" => then(pr.name.is_some(), at, "name"),
                    "command_line" => then(pr.command_line.is_some(), at, "cmd_line"),
                    "executable" => then(image && pr.executable.is_some(), at, "file.path"),
                    "sha256" => then(image && pr.sha256.is_some(), at, "file.hashes.value"),
                    "parent.name" => then(parent?.name.is_some(), parent_at, "name"),
                    "parent.command_line" => {
                        then(parent?.command_line.is_some(), parent_at, "cmd_line")
                    }
                    "parent.executable" => {
                        then(parent?.executable.is_some(), parent_at, "file.path")
                    }
                    _ => None,
                }
            }
            "email" => {
                let at = p.email?;
                let em = e.email.as_ref().filter(|em| email_mappable(em))?;
                let any_valid = |list: &[String]| list.iter().any(|a| is_ocsf_email(a));
                let files_at = if at.starts_with("evidences.") {
                    "evidences.email.files"
                } else {
                    "email.files"
                };
                let attachments = &em.attachments;
                match field {
                    "from" => then(is_ocsf_email(&em.from), at, "from"),
                    "to" => then(any_valid(&em.to), at, "to"),
                    "cc" => then(any_valid(&em.cc), at, "cc"),
                    "subject" => then(em.subject.is_some(), at, "subject"),
                    "attachments.name" => then(!attachments.is_empty(), files_at, "name"),
                    "attachments.sha256" => then(
                        attachments.iter().any(|a| a.sha256.is_some()),
                        files_at,
                        "hashes.value",
                    ),
                    _ => None,
                }
            }
            "rule" if self.class == Class::DetectionFinding => {
                let r = e.rule.as_ref()?;
                match field {
                    "name" => then(true, "finding_info", "title"),
                    "reference" => then(r.reference.is_some(), "finding_info", "src_url"),
                    _ => None,
                }
            }
            _ => None,
        }
    }

    /// Everything the class has no attribute for, under the canonical field names.
    fn unmapped(&mut self) -> Result<(), TransformError> {
        let e = self.e;
        let p = self.places;
        let class = self.class;
        let finding = class == Class::DetectionFinding;
        let m = self.w.opt_obj("unmapped");

        if finding {
            self.w.str("outcome", e.outcome.as_str());
        }
        if let Some(h) = &e.host {
            if h.os_version.is_some() && h.os_name.is_none() && h.os_type.is_none() {
                let mh = self.w.opt_obj("host");
                self.w.opt_str("os_version", h.os_version.as_deref());
                self.w.end_opt_obj(mh);
            }
        }
        for (key, user, mapped) in [
            ("user", &e.user, true),
            ("target_user", &e.target_user, p.target_user.is_some()),
        ] {
            let Some(u) = user else { continue };
            if !mapped {
                self.serde(key, u)?;
            } else if let Some(mail) = u.email.as_deref().filter(|m| !is_ocsf_email(m)) {
                self.w.obj(key);
                self.w.str("email", mail);
                self.w.end_obj();
            }
        }
        if class != Class::Authentication {
            if let Some(a) = &e.auth {
                self.serde("auth", a)?;
            }
        }
        if let Some(pr) = &e.process {
            let mp = self.w.opt_obj("process");
            if class != Class::ProcessActivity {
                self.w.opt_int("exit_code", pr.exit_code.map(i64::from));
            }
            if process_file_name(pr).is_none() {
                self.w.opt_str("sha256", pr.sha256.as_deref());
            }
            self.w.end_opt_obj(mp);
        }
        if let Some(f) = &e.file {
            if p.file.is_none() {
                self.serde("file", f)?;
            }
        }
        if let Some(n) = &e.network {
            if p.network.is_none() {
                self.serde("network", n)?;
            } else {
                let mn = self.w.opt_obj("network");
                if n.src_ip.is_none() && n.src_hostname.is_none() {
                    self.w.opt_int("src_port", n.src_port.map(i64::from));
                }
                if n.dst_ip.is_none() && n.dst_hostname.is_none() {
                    self.w.opt_int("dst_port", n.dst_port.map(i64::from));
                }
                let full = matches!(
                    class,
                    Class::NetworkActivity | Class::HttpActivity | Class::DnsActivity
                );
                let has_connection_info = full || finding;
                if !has_connection_info && class != Class::EmailActivity {
                    self.w.opt_str("transport", n.transport.as_deref());
                }
                if class == Class::EmailActivity {
                    self.w.opt_str("transport", n.transport.as_deref());
                }
                let protocol_mapped = full || class == Class::EmailActivity;
                if !protocol_mapped {
                    self.w.opt_str("protocol", n.protocol.as_deref());
                }
                let direction_mapped = has_connection_info || class == Class::EmailActivity;
                if !direction_mapped {
                    self.w
                        .opt_str("direction", n.direction.map(Direction::as_str));
                }
                if !full {
                    self.w.opt_int("bytes_in", n.bytes_in);
                    self.w.opt_int("bytes_out", n.bytes_out);
                    self.w.opt_int("packets", n.packets);
                }
                self.w.end_opt_obj(mn);
            }
        }
        if let Some(d) = &e.dns {
            if p.dns.is_none() {
                self.serde("dns", d)?;
            } else if class != Class::DnsActivity {
                let md = self.w.opt_obj("dns");
                self.w.opt_str("rcode", d.rcode.as_deref());
                if !d.answers.is_empty() {
                    self.serde("answers", &d.answers)?;
                }
                self.w.end_opt_obj(md);
            }
        }
        if let Some(h) = &e.http {
            if p.http.is_none() {
                self.serde("http", h)?;
            } else if let Some(method) = h.method.as_deref().filter(|m| !is_ocsf_http_method(m)) {
                self.w.obj("http");
                self.w.str("method", method);
                self.w.end_obj();
            }
        }
        if let Some(em) = &e.email {
            if p.email.is_none() || !email_mappable(em) {
                self.serde("email", em)?;
            } else {
                let me = self.w.opt_obj("email");
                if !is_ocsf_email(&em.from) {
                    self.w.str("from", &em.from);
                }
                for (k, list) in [("to", &em.to), ("cc", &em.cc)] {
                    if list.iter().any(|a| !is_ocsf_email(a)) {
                        self.w.arr(k);
                        for a in list.iter().filter(|a| !is_ocsf_email(a)) {
                            self.w.elem_str(a);
                        }
                        self.w.end_arr();
                    }
                }
                self.w.end_opt_obj(me);
            }
        }
        if !finding {
            if let Some(r) = &e.rule {
                self.serde("rule", r)?;
            }
            if let Some(mi) = &e.mitre {
                self.serde("mitre", mi)?;
            }
            if let Some(mw) = &e.malware {
                self.serde("malware", mw)?;
            }
        } else if let Some(family) = e.malware.as_ref().and_then(|mw| mw.family.as_deref()) {
            self.w.obj("malware");
            self.w.str("family", family);
            self.w.end_obj();
        }
        if !e.labels.is_empty() {
            self.w.obj("labels");
            for (k, v) in &e.labels {
                self.w.dyn_str(k, v);
            }
            self.w.end_obj();
        }
        self.w.end_opt_obj(m);
        Ok(())
    }

    fn serde<T: serde::Serialize + ?Sized>(
        &mut self,
        key: &str,
        value: &T,
    ) -> Result<(), TransformError> {
        self.w
            .serde(key, value)
            .map_err(|err| unmappable(key, &format!("cannot serialize for unmapped: {err}")))
    }
}

/// Observable paths of the objects nested in a process written at some place.
#[derive(Debug, Clone, Copy)]
struct ProcessPaths {
    parent: &'static str,
}

impl ProcessPaths {
    fn of(at: &'static str) -> ProcessPaths {
        ProcessPaths {
            parent: match at {
                "process" => "process.parent_process",
                "evidences.process" => "evidences.process.parent_process",
                _ => "actor.process.parent_process",
            },
        }
    }
}

/// `"to"` / `"cc"` as static strings (observable field names).
fn k_static(k: &str) -> &'static str {
    if k == "to" {
        "to"
    } else {
        "cc"
    }
}

fn has_endpoint(n: &Network) -> bool {
    n.src_ip.is_some() || n.src_hostname.is_some() || n.dst_ip.is_some() || n.dst_hostname.is_some()
}

/// `protocol_ver_id` from the addresses of the connection.
fn ip_version(n: &Network) -> Option<Id> {
    let ip = n
        .src_ip
        .as_deref()
        .or(n.dst_ip.as_deref())?
        .parse::<IpAddr>()
        .ok()?;
    Some(match ip {
        IpAddr::V4(_) => enums::IPV4,
        IpAddr::V6(_) => enums::IPV6,
    })
}

/// The file name of a process image: from the executable path, else the process name when the
/// event has an image hash to attach to it.
fn process_file_name(p: &Process) -> Option<&str> {
    match (&p.executable, &p.name, &p.sha256) {
        (Some(exe), _, _) => Some(base_name(exe)),
        (None, Some(name), Some(_)) => Some(name),
        _ => None,
    }
}

/// The request methods OCSF lists for `http_request.http_method`.
fn is_ocsf_http_method(m: &str) -> bool {
    http_method_activity(m).is_some()
}

/// Whether the e-mail can become an OCSF `email` object (it needs a `from` or a `to`).
fn email_mappable(em: &Email) -> bool {
    is_ocsf_email(&em.from) || em.to.iter().any(|a| is_ocsf_email(a))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn class_selection_follows_the_schema_doc() {
        use EventCategory as C;
        for c in EventCategory::ALL {
            assert_eq!(
                class_of(EventKind::Alert, *c),
                Class::DetectionFinding,
                "{c}"
            );
        }
        let expect = [
            (C::Authentication, 3002),
            (C::Process, 1007),
            (C::File, 1001),
            (C::Network, 4001),
            (C::Dns, 4003),
            (C::Http, 4002),
            (C::Email, 4009),
            (C::Malware, 2004),
            (C::IntrusionDetection, 2004),
        ];
        for (c, uid) in expect {
            assert_eq!(class_of(EventKind::Event, c).id().0, uid, "{c}");
        }
    }

    #[test]
    fn the_buffer_is_allocated_once_for_the_examples() {
        for text in [
            include_str!("../../../../schemas/examples/authentication_account_switch.json"),
            include_str!("../../../../schemas/examples/authentication_logon_failure.json"),
            include_str!("../../../../schemas/examples/authentication_logon_success.json"),
            include_str!("../../../../schemas/examples/dns_query.json"),
            include_str!("../../../../schemas/examples/email_with_attachment.json"),
            include_str!("../../../../schemas/examples/file_create.json"),
            include_str!("../../../../schemas/examples/http_request.json"),
            include_str!("../../../../schemas/examples/intrusion_detection_alert.json"),
            include_str!("../../../../schemas/examples/malware_alert.json"),
            include_str!("../../../../schemas/examples/network_connection_ipv4.json"),
            include_str!("../../../../schemas/examples/network_connection_ipv6.json"),
            include_str!("../../../../schemas/examples/process_alert_enriched.json"),
            include_str!("../../../../schemas/examples/process_launch.json"),
        ] {
            let e = SecurityEvent::from_json(text).unwrap();
            let out = to_ocsf(&e).unwrap();
            assert!(
                capacity(&e) >= out.len(),
                "{}: estimate {} < {} bytes",
                e.event_id,
                capacity(&e),
                out.len()
            );
        }
    }

    #[test]
    fn every_allowed_activity_has_an_ocsf_activity() {
        for k in EventKind::ALL {
            for c in EventCategory::ALL {
                let class = class_of(*k, *c);
                for a in crate::event::allowed_activities(*k, *c) {
                    assert!(class.activity(*a).is_some(), "{k} {c} {a}");
                }
            }
        }
    }
}
