//! The field paths privacy rules can name, what each one is, and how to reach it in a
//! [`SecurityEvent`] without going through JSON.
//!
//! Each path has a [`Class`] (which actions keep the value valid for the event gate), a
//! [`Presence`] (whether it may be removed at all) and a visitor that hands every slot holding the
//! value to a callback: one slot for `host.os_name`, one per element for `dns.answers.ttl`, none
//! when the enclosing group is absent. The visitors are plain `fn` pointers, so applying a rule is
//! a direct walk of the structs.

use std::collections::BTreeMap;

use crate::event::*;

/// What a slot holding a field's value can do: be removed, or hand out its strings.
pub(crate) trait Slot {
    /// Remove the value: `None` for an optional value, empty for a list or map. A required value
    /// is left alone (the rule check never lets a rule drop one).
    fn clear(&mut self);
    /// Call `f` on every string of the value (itself, each element of a list, each map value).
    fn for_each_str(&mut self, f: &mut dyn FnMut(&mut String));
}

/// A value inside an `Option` or a `Vec`: a string, or something without strings to rewrite.
pub(crate) trait Leaf {
    /// Call `f` on the value if it is a string.
    fn leaf_str(&mut self, f: &mut dyn FnMut(&mut String));
}

impl Leaf for String {
    fn leaf_str(&mut self, f: &mut dyn FnMut(&mut String)) {
        f(self)
    }
}

macro_rules! no_strings {
    ($($t:ty),* $(,)?) => {
        $(impl Leaf for $t {
            fn leaf_str(&mut self, _f: &mut dyn FnMut(&mut String)) {}
        })*
    };
}

no_strings!(
    i32,
    i64,
    bool,
    Disposition,
    HostType,
    OsType,
    AuthProtocol,
    LogonType,
    FileType,
    Direction,
    MalwareClass,
    Host,
    User,
    Auth,
    Process,
    ParentProcess,
    File,
    Network,
    Dns,
    DnsAnswer,
    Http,
    Email,
    Attachment,
    Rule,
    Mitre,
    MitreTactic,
    MitreTechnique,
    MitreSubtechnique,
    Malware,
    Enrichment,
);

impl Slot for String {
    fn clear(&mut self) {}
    fn for_each_str(&mut self, f: &mut dyn FnMut(&mut String)) {
        f(self)
    }
}

impl<T: Leaf> Slot for Option<T> {
    fn clear(&mut self) {
        *self = None;
    }
    fn for_each_str(&mut self, f: &mut dyn FnMut(&mut String)) {
        if let Some(v) = self {
            v.leaf_str(f)
        }
    }
}

impl<T: Leaf> Slot for Vec<T> {
    fn clear(&mut self) {
        Vec::clear(self)
    }
    fn for_each_str(&mut self, f: &mut dyn FnMut(&mut String)) {
        for v in self {
            v.leaf_str(f)
        }
    }
}

impl Slot for BTreeMap<String, String> {
    fn clear(&mut self) {
        BTreeMap::clear(self)
    }
    fn for_each_str(&mut self, f: &mut dyn FnMut(&mut String)) {
        for v in self.values_mut() {
            f(v)
        }
    }
}

/// Hands every slot of one field path in an event to the callback.
pub(crate) type Visit = fn(&mut SecurityEvent, &mut dyn FnMut(&mut dyn Slot));

/// What a field's value looks like to the event gate, which decides the rewrites that keep it
/// valid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Class {
    /// Free text, only required not to be blank: mask, hash and replace.
    Text,
    /// An identifier without whitespace or control characters: mask (`*` is neither), hash
    /// (hex) and replace.
    Token,
    /// A lowercase token (`a-z 0-9 _ - . : +`): hash (lowercase hex) and replace, not mask.
    LowerToken,
    /// A value with a checked syntax (IP address, hash, URL...): only replace, with a value of
    /// that syntax.
    Checked(&'static str),
    /// A value no rewrite may touch (number, time, enum, a value other fields refer to).
    Fixed(&'static str),
    /// A group of fields or a list of records: only drop.
    Group,
}

impl Class {
    /// The rewrite actions that keep a value of this class valid.
    pub(crate) fn rewrites(self) -> &'static [&'static str] {
        match self {
            Class::Text | Class::Token => &["mask", "hash", "replace"],
            Class::LowerToken => &["hash", "replace"],
            Class::Checked(_) => &["replace"],
            Class::Fixed(_) | Class::Group => &[],
        }
    }

    /// Why a rewrite does not apply to a value of this class (for the check messages).
    pub(crate) fn refusal(self, action: &str) -> String {
        match self {
            Class::Text | Class::Token => format!("`{action}` is not a privacy action"),
            Class::LowerToken => format!(
                "its value must be a lowercase token (a-z, 0-9, _ - . : +), which a `{action}` \
                 result is not"
            ),
            Class::Checked(what) => format!(
                "its value must be {what}, which a `{action}` result is not, and the event would \
                 be refused downstream"
            ),
            Class::Fixed(what) => format!("it is {what}, not text"),
            Class::Group => "it is a group of fields or a list of records, not a value".to_owned(),
        }
    }
}

/// Whether a field may be removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Presence {
    /// Required by the schema wherever its group is present: never removed.
    Required,
    /// Optional in the schema, but the event gate requires it for some events (the reason says
    /// which): never removed, kept in allow-list mode.
    Gate(&'static str),
    /// May be removed.
    Optional,
}

/// One field path.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Field {
    /// Canonical path, e.g. `process.parent.command_line`.
    pub path: &'static str,
    /// What its value looks like.
    pub class: Class,
    /// Whether it may be removed.
    pub presence: Presence,
    /// How to reach it; `None` for fields no rule can change (required and fixed).
    pub visit: Option<Visit>,
}

/// Fields are equal when their paths are (the table has one entry per path).
impl PartialEq for Field {
    fn eq(&self, other: &Self) -> bool {
        self.path == other.path
    }
}

impl Eq for Field {}

/// Calls `f` on the value of an optional group when it is present.
fn on<T>(group: &mut Option<T>, f: impl FnOnce(&mut T)) {
    if let Some(g) = group {
        f(g)
    }
}

const NUMBER: Class = Class::Fixed("a number");
const TIME: Class = Class::Fixed("a time");
const ENUM: Class = Class::Fixed("one of the symbols of an enum");
const IP: Class = Class::Checked("an IP address");
const SHA256: Class = Class::Checked("a SHA-256 (64 hex digits)");
const EMAIL: Class = Class::Checked("an e-mail address");
const URL: Class = Class::Checked("an absolute URL");
const MNEMONIC: Class = Class::Checked("an uppercase mnemonic (A-Z, 0-9, -)");
const ATTACK_ID: Class = Class::Fixed("an ATT&CK id other fields refer to");

const REQ: Presence = Presence::Required;
const OPT: Presence = Presence::Optional;
const HOST: Presence = Presence::Gate("process and file events need host");
const USER: Presence = Presence::Gate(
    "authentication events need user, and process and file events without another actor use it",
);
const AUTH: Presence = Presence::Gate(
    "authentication events need auth.service unless they have a network destination",
);
const PROCESS: Presence =
    Presence::Gate("process events need process, and file events without user use it");
const PROCESS_ID: Presence = Presence::Gate("a process needs pid or entity_id");
const PARENT: Presence = Presence::Gate("process events without user use it as the actor");
const PARENT_ID: Presence = Presence::Gate("a parent process needs pid or entity_id");
const FILE: Presence = Presence::Gate("file events need file");
const ENDPOINT: Presence = Presence::Gate(
    "network and dns events need a source or destination (ip or hostname), and authentication \
     events without auth.service a destination",
);
const DNS: Presence = Presence::Gate("dns events need dns");
const HTTP: Presence = Presence::Gate("http events need http");
const EMAIL_GROUP: Presence = Presence::Gate("email events need email");
const RECIPIENTS: Presence = Presence::Gate("an e-mail needs a recipient in to or cc");
const RULE: Presence = Presence::Gate("alerts need rule");
const MALWARE: Presence = Presence::Gate("malware alerts need malware");
const TACTICS: Presence = Presence::Gate("mitre.techniques.tactic_ids refer to the tactics");

/// A field no rule can change.
macro_rules! fixed {
    ($path:expr, $class:expr, $presence:expr) => {
        Field {
            path: $path,
            class: $class,
            presence: $presence,
            visit: None,
        }
    };
}

/// A field reached by the visitor `|e, v| ...`.
macro_rules! field {
    ($path:expr, $class:expr, $presence:expr, |$e:ident, $v:ident| $body:expr) => {
        Field {
            path: $path,
            class: $class,
            presence: $presence,
            visit: Some(
                (|$e: &mut SecurityEvent, $v: &mut dyn FnMut(&mut dyn Slot)| $body) as Visit,
            ),
        }
    };
}

/// The fields of a [`User`] under `user` or `target_user`.
macro_rules! user_fields {
    ($group:ident, $prefix:literal, $presence:expr) => {
        [
            field!($prefix, Class::Group, $presence, |e, v| v(&mut e.$group)),
            field!(concat!($prefix, ".name"), Class::Text, REQ, |e, v| on(
                &mut e.$group,
                |u| v(&mut u.name)
            )),
            field!(concat!($prefix, ".id"), Class::Text, OPT, |e, v| on(
                &mut e.$group,
                |u| v(&mut u.id)
            )),
            field!(concat!($prefix, ".domain"), Class::Text, OPT, |e, v| on(
                &mut e.$group,
                |u| v(&mut u.domain)
            )),
            field!(concat!($prefix, ".email"), EMAIL, OPT, |e, v| on(
                &mut e.$group,
                |u| v(&mut u.email)
            )),
        ]
    };
}

const USER_FIELDS: [Field; 5] = user_fields!(user, "user", USER);
const TARGET_USER_FIELDS: [Field; 5] = user_fields!(target_user, "target_user", OPT);

/// The path of the map of labels; `labels.<key>` names one label.
pub(crate) const LABELS: &str = "labels";

/// The path of the original record, kept only with `keep_raw`.
pub(crate) const RAW: &str = "raw";

/// Every field path, groups before their fields, in schema order (`labels.<key>` is resolved
/// separately).
pub(crate) static FIELDS: &[Field] = &[
    fixed!(
        "event_id",
        Class::Fixed("the event's idempotency key downstream"),
        REQ
    ),
    fixed!("event_time", TIME, REQ),
    fixed!("observed_time", TIME, REQ),
    fixed!(
        "tenant",
        Class::Fixed("the tenant that owns the event and keys it in Kafka"),
        REQ
    ),
    fixed!("kind", ENUM, REQ),
    fixed!("category", ENUM, REQ),
    fixed!("activity", ENUM, REQ),
    field!("action", Class::LowerToken, REQ, |e, v| v(&mut e.action)),
    fixed!("outcome", ENUM, REQ),
    fixed!("severity", ENUM, REQ),
    field!("disposition", ENUM, OPT, |e, v| v(&mut e.disposition)),
    field!("message", Class::Text, REQ, |e, v| v(&mut e.message)),
    fixed!("product", Class::Group, REQ),
    field!("product.vendor", Class::Text, REQ, |e, v| v(&mut e
        .product
        .vendor)),
    field!("product.name", Class::Text, REQ, |e, v| v(&mut e
        .product
        .name)),
    field!("product.version", Class::Text, OPT, |e, v| v(&mut e
        .product
        .version)),
    // host
    field!("host", Class::Group, HOST, |e, v| v(&mut e.host)),
    field!("host.hostname", Class::Token, REQ, |e, v| on(
        &mut e.host,
        |h| v(&mut h.hostname)
    )),
    field!("host.id", Class::Token, OPT, |e, v| on(&mut e.host, |h| v(
        &mut h.id
    ))),
    field!("host.ip", IP, OPT, |e, v| on(&mut e.host, |h| v(&mut h.ip))),
    field!(
        "host.mac",
        Class::Checked("a MAC address (six hex octets)"),
        OPT,
        |e, v| on(&mut e.host, |h| v(&mut h.mac))
    ),
    field!("host.type", ENUM, OPT, |e, v| on(&mut e.host, |h| v(
        &mut h.r#type
    ))),
    field!("host.os_type", ENUM, OPT, |e, v| on(&mut e.host, |h| v(
        &mut h.os_type
    ))),
    field!("host.os_name", Class::Text, OPT, |e, v| on(
        &mut e.host,
        |h| v(&mut h.os_name)
    )),
    field!("host.os_version", Class::Text, OPT, |e, v| on(
        &mut e.host,
        |h| v(&mut h.os_version)
    )),
    // user, target_user
    USER_FIELDS[0],
    USER_FIELDS[1],
    USER_FIELDS[2],
    USER_FIELDS[3],
    USER_FIELDS[4],
    TARGET_USER_FIELDS[0],
    TARGET_USER_FIELDS[1],
    TARGET_USER_FIELDS[2],
    TARGET_USER_FIELDS[3],
    TARGET_USER_FIELDS[4],
    // auth
    field!("auth", Class::Group, AUTH, |e, v| v(&mut e.auth)),
    field!("auth.protocol", ENUM, OPT, |e, v| on(&mut e.auth, |a| v(
        &mut a.protocol
    ))),
    field!("auth.logon_type", ENUM, OPT, |e, v| on(&mut e.auth, |a| v(
        &mut a.logon_type
    ))),
    field!("auth.mfa", Class::Fixed("a boolean"), OPT, |e, v| on(
        &mut e.auth,
        |a| v(&mut a.mfa)
    )),
    field!("auth.service", Class::Text, AUTH, |e, v| on(
        &mut e.auth,
        |a| v(&mut a.service)
    )),
    // process
    field!("process", Class::Group, PROCESS, |e, v| v(&mut e.process)),
    field!("process.pid", NUMBER, PROCESS_ID, |e, v| on(
        &mut e.process,
        |p| v(&mut p.pid)
    )),
    field!("process.entity_id", Class::Token, PROCESS_ID, |e, v| on(
        &mut e.process,
        |p| v(&mut p.entity_id)
    )),
    field!("process.name", Class::Text, OPT, |e, v| on(
        &mut e.process,
        |p| v(&mut p.name)
    )),
    field!("process.executable", Class::Text, OPT, |e, v| on(
        &mut e.process,
        |p| v(&mut p.executable)
    )),
    field!("process.command_line", Class::Text, OPT, |e, v| on(
        &mut e.process,
        |p| v(&mut p.command_line)
    )),
    field!("process.sha256", SHA256, OPT, |e, v| on(
        &mut e.process,
        |p| v(&mut p.sha256)
    )),
    field!("process.user", Class::Text, OPT, |e, v| on(
        &mut e.process,
        |p| v(&mut p.user)
    )),
    field!("process.start_time", TIME, OPT, |e, v| on(
        &mut e.process,
        |p| v(&mut p.start_time)
    )),
    field!("process.exit_code", NUMBER, OPT, |e, v| on(
        &mut e.process,
        |p| v(&mut p.exit_code)
    )),
    field!("process.parent", Class::Group, PARENT, |e, v| on(
        &mut e.process,
        |p| v(&mut p.parent)
    )),
    field!("process.parent.pid", NUMBER, PARENT_ID, |e, v| on(
        &mut e.process,
        |p| on(&mut p.parent, |pp| v(&mut pp.pid))
    )),
    field!(
        "process.parent.entity_id",
        Class::Token,
        PARENT_ID,
        |e, v| on(&mut e.process, |p| on(&mut p.parent, |pp| v(
            &mut pp.entity_id
        )))
    ),
    field!("process.parent.name", Class::Text, OPT, |e, v| on(
        &mut e.process,
        |p| on(&mut p.parent, |pp| v(&mut pp.name))
    )),
    field!("process.parent.executable", Class::Text, OPT, |e, v| on(
        &mut e.process,
        |p| on(&mut p.parent, |pp| v(&mut pp.executable))
    )),
    field!("process.parent.command_line", Class::Text, OPT, |e, v| on(
        &mut e.process,
        |p| on(&mut p.parent, |pp| v(&mut pp.command_line))
    )),
    // file
    field!("file", Class::Group, FILE, |e, v| v(&mut e.file)),
    field!("file.path", Class::Text, REQ, |e, v| on(
        &mut e.file,
        |f| v(&mut f.path)
    )),
    field!("file.name", Class::Text, OPT, |e, v| on(
        &mut e.file,
        |f| v(&mut f.name)
    )),
    field!("file.directory", Class::Text, OPT, |e, v| on(
        &mut e.file,
        |f| v(&mut f.directory)
    )),
    field!("file.type", ENUM, OPT, |e, v| on(&mut e.file, |f| v(
        &mut f.r#type
    ))),
    field!("file.size", NUMBER, OPT, |e, v| on(&mut e.file, |f| v(
        &mut f.size
    ))),
    field!(
        "file.md5",
        Class::Checked("an MD5 (32 hex digits)"),
        OPT,
        |e, v| on(&mut e.file, |f| v(&mut f.md5))
    ),
    field!(
        "file.sha1",
        Class::Checked("a SHA-1 (40 hex digits)"),
        OPT,
        |e, v| on(&mut e.file, |f| v(&mut f.sha1))
    ),
    field!("file.sha256", SHA256, OPT, |e, v| on(&mut e.file, |f| v(
        &mut f.sha256
    ))),
    field!("file.mime_type", Class::Text, OPT, |e, v| on(
        &mut e.file,
        |f| v(&mut f.mime_type)
    )),
    // network
    field!("network", Class::Group, ENDPOINT, |e, v| v(&mut e.network)),
    field!("network.src_ip", IP, ENDPOINT, |e, v| on(
        &mut e.network,
        |n| v(&mut n.src_ip)
    )),
    field!("network.src_port", NUMBER, OPT, |e, v| on(
        &mut e.network,
        |n| v(&mut n.src_port)
    )),
    field!("network.src_hostname", Class::Token, ENDPOINT, |e, v| on(
        &mut e.network,
        |n| v(&mut n.src_hostname)
    )),
    field!("network.dst_ip", IP, ENDPOINT, |e, v| on(
        &mut e.network,
        |n| v(&mut n.dst_ip)
    )),
    field!("network.dst_port", NUMBER, OPT, |e, v| on(
        &mut e.network,
        |n| v(&mut n.dst_port)
    )),
    field!("network.dst_hostname", Class::Token, ENDPOINT, |e, v| on(
        &mut e.network,
        |n| v(&mut n.dst_hostname)
    )),
    field!("network.transport", Class::LowerToken, OPT, |e, v| on(
        &mut e.network,
        |n| v(&mut n.transport)
    )),
    field!("network.protocol", Class::LowerToken, OPT, |e, v| on(
        &mut e.network,
        |n| v(&mut n.protocol)
    )),
    field!("network.direction", ENUM, OPT, |e, v| on(
        &mut e.network,
        |n| v(&mut n.direction)
    )),
    field!("network.bytes_in", NUMBER, OPT, |e, v| on(
        &mut e.network,
        |n| v(&mut n.bytes_in)
    )),
    field!("network.bytes_out", NUMBER, OPT, |e, v| on(
        &mut e.network,
        |n| v(&mut n.bytes_out)
    )),
    field!("network.packets", NUMBER, OPT, |e, v| on(
        &mut e.network,
        |n| v(&mut n.packets)
    )),
    // dns
    field!("dns", Class::Group, DNS, |e, v| v(&mut e.dns)),
    field!("dns.query", Class::Token, REQ, |e, v| on(
        &mut e.dns,
        |d| v(&mut d.query)
    )),
    field!("dns.query_type", MNEMONIC, OPT, |e, v| on(
        &mut e.dns,
        |d| v(&mut d.query_type)
    )),
    field!("dns.rcode", MNEMONIC, OPT, |e, v| on(&mut e.dns, |d| v(
        &mut d.rcode
    ))),
    field!("dns.answers", Class::Group, OPT, |e, v| on(
        &mut e.dns,
        |d| v(&mut d.answers)
    )),
    field!("dns.answers.data", Class::Text, REQ, |e, v| on(
        &mut e.dns,
        |d| d.answers.iter_mut().for_each(|a| v(&mut a.data))
    )),
    field!("dns.answers.type", MNEMONIC, OPT, |e, v| on(
        &mut e.dns,
        |d| d.answers.iter_mut().for_each(|a| v(&mut a.r#type))
    )),
    field!("dns.answers.ttl", NUMBER, OPT, |e, v| on(&mut e.dns, |d| d
        .answers
        .iter_mut()
        .for_each(|a| v(&mut a.ttl)))),
    // http
    field!("http", Class::Group, HTTP, |e, v| v(&mut e.http)),
    field!(
        "http.method",
        Class::Fixed("a method that must agree with activity"),
        OPT,
        |e, v| on(&mut e.http, |h| v(&mut h.method))
    ),
    field!("http.url", URL, REQ, |e, v| on(&mut e.http, |h| v(
        &mut h.url
    ))),
    field!("http.status", NUMBER, OPT, |e, v| on(&mut e.http, |h| v(
        &mut h.status
    ))),
    field!("http.version", Class::Text, OPT, |e, v| on(
        &mut e.http,
        |h| v(&mut h.version)
    )),
    field!("http.user_agent", Class::Text, OPT, |e, v| on(
        &mut e.http,
        |h| v(&mut h.user_agent)
    )),
    field!("http.referrer", Class::Text, OPT, |e, v| on(
        &mut e.http,
        |h| v(&mut h.referrer)
    )),
    field!("http.request_bytes", NUMBER, OPT, |e, v| on(
        &mut e.http,
        |h| v(&mut h.request_bytes)
    )),
    field!("http.response_bytes", NUMBER, OPT, |e, v| on(
        &mut e.http,
        |h| v(&mut h.response_bytes)
    )),
    // email
    field!("email", Class::Group, EMAIL_GROUP, |e, v| v(&mut e.email)),
    field!("email.from", EMAIL, REQ, |e, v| on(&mut e.email, |m| v(
        &mut m.from
    ))),
    field!("email.to", EMAIL, RECIPIENTS, |e, v| on(
        &mut e.email,
        |m| v(&mut m.to)
    )),
    field!("email.cc", EMAIL, RECIPIENTS, |e, v| on(
        &mut e.email,
        |m| v(&mut m.cc)
    )),
    field!("email.subject", Class::Text, OPT, |e, v| on(
        &mut e.email,
        |m| v(&mut m.subject)
    )),
    field!("email.message_id", Class::Text, OPT, |e, v| on(
        &mut e.email,
        |m| v(&mut m.message_id)
    )),
    field!("email.attachments", Class::Group, OPT, |e, v| on(
        &mut e.email,
        |m| v(&mut m.attachments)
    )),
    field!("email.attachments.name", Class::Text, REQ, |e, v| on(
        &mut e.email,
        |m| m.attachments.iter_mut().for_each(|a| v(&mut a.name))
    )),
    field!("email.attachments.size", NUMBER, OPT, |e, v| on(
        &mut e.email,
        |m| m.attachments.iter_mut().for_each(|a| v(&mut a.size))
    )),
    field!("email.attachments.mime_type", Class::Text, OPT, |e, v| on(
        &mut e.email,
        |m| m.attachments.iter_mut().for_each(|a| v(&mut a.mime_type))
    )),
    field!("email.attachments.sha256", SHA256, OPT, |e, v| on(
        &mut e.email,
        |m| m.attachments.iter_mut().for_each(|a| v(&mut a.sha256))
    )),
    // rule
    field!("rule", Class::Group, RULE, |e, v| v(&mut e.rule)),
    field!("rule.id", Class::Text, OPT, |e, v| on(&mut e.rule, |r| v(
        &mut r.id
    ))),
    field!("rule.name", Class::Text, REQ, |e, v| on(
        &mut e.rule,
        |r| v(&mut r.name)
    )),
    field!("rule.description", Class::Text, OPT, |e, v| on(
        &mut e.rule,
        |r| v(&mut r.description)
    )),
    field!("rule.ruleset", Class::Text, OPT, |e, v| on(
        &mut e.rule,
        |r| v(&mut r.ruleset)
    )),
    field!("rule.version", Class::Text, OPT, |e, v| on(
        &mut e.rule,
        |r| v(&mut r.version)
    )),
    field!("rule.reference", URL, OPT, |e, v| on(&mut e.rule, |r| v(
        &mut r.reference
    ))),
    // mitre
    field!("mitre", Class::Group, OPT, |e, v| v(&mut e.mitre)),
    field!("mitre.tactics", Class::Group, TACTICS, |e, v| on(
        &mut e.mitre,
        |m| v(&mut m.tactics)
    )),
    fixed!("mitre.tactics.id", ATTACK_ID, REQ),
    field!("mitre.tactics.name", Class::Text, REQ, |e, v| on(
        &mut e.mitre,
        |m| m.tactics.iter_mut().for_each(|t| v(&mut t.name))
    )),
    field!("mitre.techniques", Class::Group, OPT, |e, v| on(
        &mut e.mitre,
        |m| v(&mut m.techniques)
    )),
    fixed!("mitre.techniques.id", ATTACK_ID, REQ),
    field!("mitre.techniques.name", Class::Text, REQ, |e, v| on(
        &mut e.mitre,
        |m| m.techniques.iter_mut().for_each(|t| v(&mut t.name))
    )),
    field!(
        "mitre.techniques.subtechnique",
        Class::Group,
        OPT,
        |e, v| on(&mut e.mitre, |m| m
            .techniques
            .iter_mut()
            .for_each(|t| v(&mut t.subtechnique)))
    ),
    fixed!("mitre.techniques.subtechnique.id", ATTACK_ID, REQ),
    field!(
        "mitre.techniques.subtechnique.name",
        Class::Text,
        REQ,
        |e, v| on(&mut e.mitre, |m| m
            .techniques
            .iter_mut()
            .for_each(|t| on(&mut t.subtechnique, |s| v(&mut s.name))))
    ),
    field!("mitre.techniques.tactic_ids", ATTACK_ID, OPT, |e, v| on(
        &mut e.mitre,
        |m| m.techniques.iter_mut().for_each(|t| v(&mut t.tactic_ids))
    )),
    // malware
    field!("malware", Class::Group, MALWARE, |e, v| v(&mut e.malware)),
    field!("malware.name", Class::Text, REQ, |e, v| on(
        &mut e.malware,
        |m| v(&mut m.name)
    )),
    field!("malware.family", Class::Text, OPT, |e, v| on(
        &mut e.malware,
        |m| v(&mut m.family)
    )),
    field!("malware.classifications", ENUM, OPT, |e, v| on(
        &mut e.malware,
        |m| v(&mut m.classifications)
    )),
    // labels, tags, enrichments, raw
    field!("labels", Class::Text, OPT, |e, v| v(&mut e.labels)),
    field!("tags", Class::Text, OPT, |e, v| v(&mut e.tags)),
    field!("enrichments", Class::Group, OPT, |e, v| v(
        &mut e.enrichments
    )),
    field!("enrichments.indicator_id", Class::Token, REQ, |e, v| e
        .enrichments
        .iter_mut()
        .for_each(|x| v(&mut x.indicator_id))),
    field!("enrichments.ioc_type", Class::LowerToken, REQ, |e, v| e
        .enrichments
        .iter_mut()
        .for_each(|x| v(&mut x.ioc_type))),
    field!("enrichments.ioc_value", Class::Text, REQ, |e, v| e
        .enrichments
        .iter_mut()
        .for_each(|x| v(&mut x.ioc_value))),
    field!("enrichments.matched_field", Class::Text, REQ, |e, v| e
        .enrichments
        .iter_mut()
        .for_each(|x| v(&mut x.matched_field))),
    field!("enrichments.confidence", NUMBER, OPT, |e, v| e
        .enrichments
        .iter_mut()
        .for_each(|x| v(&mut x.confidence))),
    field!(
        "enrichments.tlp",
        Class::Checked("a TLP marking"),
        OPT,
        |e, v| e.enrichments.iter_mut().for_each(|x| v(&mut x.tlp))
    ),
    field!("enrichments.valid_until", TIME, OPT, |e, v| e
        .enrichments
        .iter_mut()
        .for_each(|x| v(&mut x.valid_until))),
    field!("enrichments.provider", Class::Text, REQ, |e, v| e
        .enrichments
        .iter_mut()
        .for_each(|x| v(&mut x.provider))),
    field!("raw", Class::Text, OPT, |e, v| v(&mut e.raw)),
];

/// A field path resolved against [`FIELDS`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Resolved<'a> {
    /// A path of the table.
    Field(&'static Field),
    /// `labels.<key>`: one label.
    Label(&'a str),
}

/// Look a path up: a path of the table, or `labels.<key>` with a non-empty key.
pub(crate) fn resolve(path: &str) -> Option<Resolved<'_>> {
    if let Some(f) = FIELDS.iter().find(|f| f.path == path) {
        return Some(Resolved::Field(f));
    }
    match path.strip_prefix("labels.") {
        Some(key) if !key.is_empty() => Some(Resolved::Label(key)),
        _ => None,
    }
}

/// Whether `inner` is `outer` or lies inside it (`user.name` inside `user`, `labels.env` inside
/// `labels`), comparing whole path segments.
pub(crate) fn within(inner: &str, outer: &str) -> bool {
    inner == outer
        || inner
            .strip_prefix(outer)
            .is_some_and(|rest| rest.starts_with('.'))
}

/// The known path closest to `path` by edit distance, if it is close enough to be a typo.
pub(crate) fn suggest(path: &str) -> Option<&'static str> {
    FIELDS
        .iter()
        .map(|f| (edit_distance(path, f.path), f.path))
        .filter(|(d, p)| *d <= 2.max(p.len() / 4))
        .min_by_key(|(d, _)| *d)
        .map(|(_, p)| p)
}

/// Levenshtein distance over characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, ca) in a.chars().enumerate() {
        cur[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_unique_and_groups_come_first() {
        for (i, f) in FIELDS.iter().enumerate() {
            assert!(
                FIELDS[..i].iter().all(|g| g.path != f.path),
                "{} twice",
                f.path
            );
            if let Some((parent, _)) = f.path.rsplit_once('.') {
                let p = FIELDS[..i].iter().find(|g| g.path == parent);
                let p = p.unwrap_or_else(|| panic!("{}: parent {parent} not before", f.path));
                assert_eq!(p.class, Class::Group, "{} is not a group", p.path);
            }
        }
    }

    #[test]
    fn only_unchangeable_fields_have_no_visitor() {
        for f in FIELDS {
            if f.visit.is_none() {
                assert_eq!(f.presence, Presence::Required, "{}", f.path);
                assert!(
                    matches!(f.class, Class::Fixed(_) | Class::Group),
                    "{}",
                    f.path
                );
            }
        }
    }

    #[test]
    fn within_compares_segments() {
        assert!(within("user.name", "user"));
        assert!(within("user", "user"));
        assert!(!within("user_agent", "user"));
        assert!(!within("target_user.name", "user"));
        assert!(within("labels.env", "labels"));
    }

    #[test]
    fn resolve_and_suggest() {
        assert!(matches!(resolve("user.name"), Some(Resolved::Field(_))));
        assert_eq!(resolve("labels.a.b"), Some(Resolved::Label("a.b")));
        assert_eq!(resolve("labels."), None);
        assert_eq!(resolve("user.mail"), None);
        assert_eq!(suggest("user.mail"), Some("user.email"));
        assert_eq!(suggest("proces.command_line"), Some("process.command_line"));
        assert_eq!(suggest("completely.different.thing"), None);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }
}
