//! Arbitrary valid canonical events for property tests: [`arb_event`].
//!
//! Every optional group is sometimes present and sometimes absent, and free-text values are
//! hostile on purpose: `|`, `=`, `\`, CR, LF, tabs, quotes, `<>`, non-ASCII (accents, CJK, an
//! emoji, NBSP, U+2028) and a few control characters, with lengths from one character to just
//! over 4000 so that every format's length limits are crossed. Values still pass
//! [`SecurityEvent::validate`]: identifiers carry no whitespace or control characters, IPs, MACs,
//! hashes, URLs, e-mail addresses, MITRE ids and tokens have their required shapes, and the
//! kind / category / activity / required-group rules are enforced by a fix-up step that draws
//! any missing required group from spare values generated alongside. The strategy panics if it
//! ever produces an event the gate refuses, so a bug here cannot silently thin out the tests.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, Ipv6Addr};

use proptest::collection::{btree_map, vec};
use proptest::option;
use proptest::prelude::*;
use proptest::sample::select;

use processors::event::*;

/// Characters of free text: separators and escapes of every output format, line breaks,
/// quotes, non-ASCII, whitespace that is not ASCII, a few controls, and plain letters.
const TEXT: &[char] = &[
    'a', 'b', 'Z', '0', '7', ' ', ' ', '|', '=', '\\', '\r', '\n', '\t', '"', '\'', '<', '>', ':',
    '/', '.', ',', '-', '_', '%', '#', '{', '}', '[', ']', 'é', 'ß', '日', '本', '🦀', '\u{a0}',
    '\u{2028}', '\u{1}', '\u{7f}',
];

/// Characters of identifiers (no whitespace, no control characters, as the gate requires), still
/// with every format's special characters.
const IDENT: &[char] = &[
    'a', 'b', 'Z', '0', '7', '|', '=', '\\', '"', '\'', '<', '>', ':', '/', '.', ',', '-', '_',
    '%', '#', '{', '}', 'é', '日', '🦀',
];

const TLP: &[&str] = &["clear", "white", "green", "amber", "amber+strict", "red"];

const HTTP_METHODS: &[&str] = &[
    "GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS", "PATCH", "TRACE", "CONNECT", "PROPFIND",
];

fn chars_of(pool: &'static [char], len: std::ops::Range<usize>) -> BoxedStrategy<String> {
    vec(select(pool), len)
        .prop_map(|v| v.into_iter().collect())
        .boxed()
}

/// Strings of `pool` characters: mostly short, sometimes around 63 characters, 512 and 1023, and
/// rarely just over 4000 (the longest CEF limit).
fn sized(pool: &'static [char]) -> BoxedStrategy<String> {
    prop_oneof![
        20 => chars_of(pool, 1..24),
        4 => chars_of(pool, 40..90),
        2 => chars_of(pool, 480..1100),
        1 => chars_of(pool, 3990..4100),
    ]
    .boxed()
}

/// Free text that is not blank.
pub fn arb_text() -> BoxedStrategy<String> {
    sized(TEXT)
        .prop_map(|mut s| {
            if s.trim().is_empty() {
                s.insert(0, 'x');
            }
            s
        })
        .boxed()
}

/// An identifier of at most `max_bytes` UTF-8 bytes: no whitespace or control characters.
pub fn arb_ident(max_bytes: usize) -> BoxedStrategy<String> {
    sized(IDENT)
        .prop_map(move |mut s| {
            while s.len() > max_bytes {
                s.pop();
            }
            s
        })
        .boxed()
}

/// A lowercase token (`action`, `network.transport`, `ioc_type`...).
pub fn arb_lower_token() -> BoxedStrategy<String> {
    "[a-z0-9][a-z0-9_.:+-]{0,20}".boxed()
}

/// An uppercase token (DNS mnemonics).
pub fn arb_upper_token() -> BoxedStrategy<String> {
    "[A-Z0-9-]{1,10}".boxed()
}

/// An IPv4 or IPv6 address as text, IPv4-mapped IPv6 included.
pub fn arb_ip() -> BoxedStrategy<String> {
    prop_oneof![
        any::<Ipv4Addr>().prop_map(|a| a.to_string()),
        any::<Ipv6Addr>().prop_map(|a| a.to_string()),
        any::<Ipv4Addr>().prop_map(|a| a.to_ipv6_mapped().to_string()),
    ]
    .boxed()
}

/// A valid timestamp (years 1970-9999) in epoch milliseconds.
pub fn arb_time() -> BoxedStrategy<i64> {
    prop_oneof![
        4 => 1_500_000_000_000i64..1_900_000_000_000,
        1 => MIN_MILLIS..=MAX_MILLIS,
    ]
    .boxed()
}

fn arb_count() -> BoxedStrategy<i64> {
    prop_oneof![4 => 0i64..100_000, 1 => 0i64..=i64::MAX].boxed()
}

fn arb_hex(len: usize) -> BoxedStrategy<String> {
    proptest::string::string_regex(&format!("[0-9a-fA-F]{{{len}}}"))
        .expect("hex regex")
        .boxed()
}

fn arb_mac() -> BoxedStrategy<String> {
    ("[0-9a-fA-F]{2}(-[0-9a-fA-F]{2}){5}|[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}").boxed()
}

fn arb_email() -> BoxedStrategy<String> {
    (
        chars_of(IDENT, 1..12),
        "[a-z0-9]([a-z0-9.-]{0,10}[a-z0-9])?",
    )
        .prop_map(|(local, domain)| {
            // The gate refuses `<` and `>` in addresses.
            let local: String = local
                .chars()
                .map(|c| if matches!(c, '<' | '>' | '@') { '_' } else { c })
                .collect();
            format!("{local}@{domain}")
        })
        .boxed()
}

fn arb_url() -> BoxedStrategy<String> {
    ("[a-z][a-z0-9+.-]{0,5}", arb_ident(2000))
        .prop_map(|(scheme, rest)| format!("{scheme}://{rest}"))
        .boxed()
}

fn opt<T: std::fmt::Debug + 'static>(s: BoxedStrategy<T>) -> BoxedStrategy<Option<T>> {
    option::of(s).boxed()
}

fn arb_enum<T: Clone + std::fmt::Debug + 'static>(all: &'static [T]) -> BoxedStrategy<T> {
    select(all).boxed()
}

prop_compose! {
    fn arb_product()(vendor in arb_text(), name in arb_text(), version in opt(arb_text()))
        -> Product {
        Product { vendor, name, version }
    }
}

prop_compose! {
    fn arb_host()(
        hostname in arb_ident(255),
        id in opt(arb_ident(256)),
        ip in vec(arb_ip(), 0..4),
        mac in opt(arb_mac()),
        r#type in opt(arb_enum(HostType::ALL)),
        os_type in opt(arb_enum(OsType::ALL)),
        os_name in opt(arb_text()),
        os_version in opt(arb_text()),
    ) -> Host {
        Host { hostname, id, ip, mac, r#type, os_type, os_name, os_version }
    }
}

prop_compose! {
    fn arb_user()(
        name in arb_text(),
        id in opt(arb_text()),
        domain in opt(arb_text()),
        email in opt(arb_email()),
    ) -> User {
        User { name, id, domain, email }
    }
}

prop_compose! {
    fn arb_auth()(
        protocol in opt(arb_enum(AuthProtocol::ALL)),
        logon_type in opt(arb_enum(LogonType::ALL)),
        mfa in opt(any::<bool>().boxed()),
        service in opt(arb_text()),
    ) -> Auth {
        Auth { protocol, logon_type, mfa, service }
    }
}

prop_compose! {
    fn arb_parent()(
        pid in opt(arb_count()),
        entity_id in opt(arb_ident(256)),
        name in opt(arb_text()),
        executable in opt(arb_text()),
        command_line in opt(arb_text()),
        fallback_pid in 0i64..100_000,
    ) -> ParentProcess {
        // The gate wants pid or entity_id.
        let pid = if pid.is_none() && entity_id.is_none() { Some(fallback_pid) } else { pid };
        ParentProcess { pid, entity_id, name, executable, command_line }
    }
}

prop_compose! {
    fn arb_process()(
        pid in opt(arb_count()),
        entity_id in opt(arb_ident(256)),
        name in opt(arb_text()),
        executable in opt(arb_text()),
        command_line in opt(arb_text()),
        sha256 in opt(arb_hex(64)),
        user in opt(arb_text()),
        start_time in opt(arb_time()),
        exit_code in opt(any::<i32>().boxed()),
        parent in opt(arb_parent().boxed()),
        fallback_pid in 0i64..100_000,
    ) -> Process {
        let pid = if pid.is_none() && entity_id.is_none() { Some(fallback_pid) } else { pid };
        Process {
            pid, entity_id, name, executable, command_line, sha256, user, start_time, exit_code,
            parent,
        }
    }
}

prop_compose! {
    fn arb_file()(
        path in arb_text(),
        name in opt(arb_text()),
        directory in opt(arb_text()),
        r#type in opt(arb_enum(FileType::ALL)),
        size in opt(arb_count()),
        md5 in opt(arb_hex(32)),
        sha1 in opt(arb_hex(40)),
        sha256 in opt(arb_hex(64)),
        mime_type in opt(arb_text()),
    ) -> File {
        File { path, name, directory, r#type, size, md5, sha1, sha256, mime_type }
    }
}

prop_compose! {
    fn arb_network()(
        src_ip in opt(arb_ip()),
        src_port in opt((0i32..=65535).boxed()),
        src_hostname in opt(arb_ident(255)),
        dst_ip in opt(arb_ip()),
        dst_port in opt((0i32..=65535).boxed()),
        dst_hostname in opt(arb_ident(255)),
        transport in opt(arb_lower_token()),
        protocol in opt(arb_lower_token()),
        direction in opt(arb_enum(Direction::ALL)),
        bytes_in in opt(arb_count()),
        bytes_out in opt(arb_count()),
        packets in opt(arb_count()),
    ) -> Network {
        Network {
            src_ip, src_port, src_hostname, dst_ip, dst_port, dst_hostname, transport, protocol,
            direction, bytes_in, bytes_out, packets,
        }
    }
}

prop_compose! {
    fn arb_dns_answer()(
        data in arb_text(),
        r#type in opt(arb_upper_token()),
        ttl in opt(arb_count()),
    ) -> DnsAnswer {
        DnsAnswer { data, r#type, ttl }
    }
}

prop_compose! {
    fn arb_dns()(
        query in arb_ident(255),
        query_type in opt(arb_upper_token()),
        rcode in opt(arb_upper_token()),
        answers in vec(arb_dns_answer(), 0..4),
    ) -> Dns {
        Dns { query, query_type, rcode, answers }
    }
}

prop_compose! {
    fn arb_http()(
        method in opt(prop_oneof![
            4 => select(HTTP_METHODS).prop_map(str::to_owned),
            1 => arb_upper_token(),
        ].boxed()),
        url in arb_url(),
        status in opt((100i32..=599).boxed()),
        version in opt(arb_text()),
        user_agent in opt(arb_text()),
        referrer in opt(arb_text()),
        request_bytes in opt(arb_count()),
        response_bytes in opt(arb_count()),
    ) -> Http {
        Http { method, url, status, version, user_agent, referrer, request_bytes, response_bytes }
    }
}

prop_compose! {
    fn arb_attachment()(
        name in arb_text(),
        size in opt(arb_count()),
        mime_type in opt(arb_text()),
        sha256 in opt(arb_hex(64)),
    ) -> Attachment {
        Attachment { name, size, mime_type, sha256 }
    }
}

prop_compose! {
    fn arb_email_group()(
        from in arb_email(),
        mut to in vec(arb_email(), 0..3),
        cc in vec(arb_email(), 0..3),
        fallback_to in arb_email(),
        subject in opt(arb_text()),
        message_id in opt(arb_text()),
        attachments in vec(arb_attachment(), 0..3),
    ) -> Email {
        // The gate wants at least one recipient.
        if to.is_empty() && cc.is_empty() {
            to.push(fallback_to);
        }
        Email { from, to, cc, subject, message_id, attachments }
    }
}

prop_compose! {
    fn arb_rule()(
        id in opt(arb_text()),
        name in arb_text(),
        description in opt(arb_text()),
        ruleset in opt(arb_text()),
        version in opt(arb_text()),
        reference in opt(arb_url()),
    ) -> Rule {
        Rule { id, name, description, ruleset, version, reference }
    }
}

prop_compose! {
    fn arb_mitre()(
        tactics in vec(("[0-9]{4}", arb_text()), 0..4),
        techniques in vec(
            ("[0-9]{4}", arb_text(), opt(("[0-9]{3}", arb_text()).boxed()), vec(any::<usize>(), 0..3)),
            0..4,
        ),
    ) -> Mitre {
        let tactics: Vec<MitreTactic> = tactics
            .into_iter()
            .map(|(digits, name)| MitreTactic { id: format!("TA{digits}"), name })
            .collect();
        let techniques = techniques
            .into_iter()
            .map(|(digits, name, sub, picks)| {
                let id = format!("T{digits}");
                let subtechnique = sub.map(|(d, name)| MitreSubtechnique {
                    id: format!("{id}.{d}"),
                    name,
                });
                // tactic_ids must name tactics of this event: pick among them.
                let mut tactic_ids: Vec<String> = Vec::new();
                if !tactics.is_empty() {
                    for p in picks {
                        let t = &tactics[p % tactics.len()].id;
                        if !tactic_ids.contains(t) {
                            tactic_ids.push(t.clone());
                        }
                    }
                }
                MitreTechnique { id, name, subtechnique, tactic_ids }
            })
            .collect();
        Mitre { tactics, techniques }
    }
}

prop_compose! {
    fn arb_malware()(
        name in arb_text(),
        family in opt(arb_text()),
        classifications in vec(arb_enum(MalwareClass::ALL), 0..4),
    ) -> Malware {
        Malware { name, family, classifications }
    }
}

prop_compose! {
    fn arb_enrichment()(
        indicator_id in arb_ident(512),
        ioc_type in arb_lower_token(),
        ioc_value in arb_text(),
        matched_field in arb_text(),
        confidence in opt((0i32..=100).boxed()),
        tlp in opt(select(TLP).prop_map(str::to_owned).boxed()),
        valid_until in opt(arb_time()),
        provider in arb_text(),
    ) -> Enrichment {
        Enrichment {
            indicator_id, ioc_type, ioc_value, matched_field, confidence, tlp, valid_until,
            provider,
        }
    }
}

/// Scalars of the event, and a seed to pick the activity among the valid ones.
type Head = (
    String,
    i64,
    i64,
    String,
    EventKind,
    EventCategory,
    usize,
    String,
    Outcome,
    Severity,
    Option<Disposition>,
    String,
);

fn arb_head() -> impl Strategy<Value = Head> {
    (
        arb_ident(512),
        arb_time(),
        arb_time(),
        arb_ident(256),
        arb_enum(EventKind::ALL),
        arb_enum(EventCategory::ALL),
        any::<usize>(),
        arb_lower_token(),
        arb_enum(Outcome::ALL),
        arb_enum(Severity::ALL),
        opt(arb_enum(Disposition::ALL)),
        arb_text(),
    )
}

type Groups = (
    Product,
    Option<Host>,
    Option<User>,
    Option<User>,
    Option<Auth>,
    Option<Process>,
    Option<File>,
    Option<Network>,
    Option<Dns>,
    Option<Http>,
    Option<Email>,
    Option<Rule>,
);

fn arb_groups() -> impl Strategy<Value = Groups> {
    (
        arb_product(),
        opt(arb_host().boxed()),
        opt(arb_user().boxed()),
        opt(arb_user().boxed()),
        opt(arb_auth().boxed()),
        opt(arb_process().boxed()),
        opt(arb_file().boxed()),
        opt(arb_network().boxed()),
        opt(arb_dns().boxed()),
        opt(arb_http().boxed()),
        opt(arb_email_group().boxed()),
        opt(arb_rule().boxed()),
    )
}

type Tail = (
    Option<Mitre>,
    Option<Malware>,
    BTreeMap<String, String>,
    Vec<String>,
    Vec<Enrichment>,
    Option<String>,
);

fn arb_tail() -> impl Strategy<Value = Tail> {
    (
        opt(arb_mitre().boxed()),
        opt(arb_malware().boxed()),
        btree_map(arb_text(), arb_text(), 0..4),
        vec(arb_text(), 0..4),
        vec(arb_enrichment(), 0..4),
        opt(arb_text()),
    )
}

/// Always-present values the fix-up step draws from when the category requires a group that
/// was not generated.
#[derive(Debug, Clone)]
struct Spares {
    host: Host,
    user: User,
    service: String,
    process: Process,
    parent: ParentProcess,
    file: File,
    network: Network,
    dst_ip: String,
    dns: Dns,
    http: Http,
    email: Email,
    rule: Rule,
    malware: Malware,
}

fn arb_spares() -> impl Strategy<Value = Spares> {
    (
        (
            arb_host(),
            arb_user(),
            arb_text(),
            arb_process(),
            arb_parent(),
            arb_file(),
        ),
        (
            arb_network(),
            arb_ip(),
            arb_dns(),
            arb_http(),
            arb_email_group(),
            arb_rule(),
            arb_malware(),
        ),
    )
        .prop_map(
            |(
                (host, user, service, process, parent, file),
                (network, dst_ip, dns, http, email, rule, malware),
            )| Spares {
                host,
                user,
                service,
                process,
                parent,
                file,
                network,
                dst_ip,
                dns,
                http,
                email,
                rule,
                malware,
            },
        )
}

/// Make the generated parts agree with the producer gate's semantic rules (see
/// `SecurityEvent::validate`), taking missing required groups from `spares`.
fn assemble(head: Head, groups: Groups, tail: Tail, spares: Spares) -> SecurityEvent {
    let (
        event_id,
        event_time,
        observed_time,
        tenant,
        mut kind,
        category,
        activity_seed,
        action,
        outcome,
        severity,
        disposition,
        message,
    ) = head;
    let (
        product,
        mut host,
        mut user,
        target_user,
        mut auth,
        mut process,
        mut file,
        mut network,
        mut dns,
        mut http,
        mut email,
        mut rule,
    ) = groups;
    let (mitre, mut malware, labels, tags, enrichments, raw) = tail;

    if matches!(
        category,
        EventCategory::Malware | EventCategory::IntrusionDetection
    ) {
        kind = EventKind::Alert;
    }
    let allowed = allowed_activities(kind, category);
    let mut activity = allowed[activity_seed % allowed.len()];
    if kind == EventKind::Alert && rule.is_none() {
        rule = Some(spares.rule);
    }
    if category == EventCategory::Malware && malware.is_none() {
        malware = Some(spares.malware);
    }
    let has_endpoint = |n: &Option<Network>| {
        n.as_ref().is_some_and(|n| {
            n.src_ip.is_some()
                || n.src_hostname.is_some()
                || n.dst_ip.is_some()
                || n.dst_hostname.is_some()
        })
    };
    if kind == EventKind::Event {
        match category {
            EventCategory::Authentication => {
                if user.is_none() {
                    user = Some(spares.user);
                }
                let service = auth.as_ref().is_some_and(|a| a.service.is_some());
                let destination = network
                    .as_ref()
                    .is_some_and(|n| n.dst_ip.is_some() || n.dst_hostname.is_some());
                if !service && !destination {
                    auth.get_or_insert_with(Auth::default).service = Some(spares.service);
                }
            }
            EventCategory::Process => {
                let p = process.get_or_insert(spares.process);
                if host.is_none() {
                    host = Some(spares.host);
                }
                if user.is_none() && p.parent.is_none() {
                    p.parent = Some(spares.parent);
                }
            }
            EventCategory::File => {
                if file.is_none() {
                    file = Some(spares.file);
                }
                if host.is_none() {
                    host = Some(spares.host);
                }
                if process.is_none() && user.is_none() {
                    process = Some(spares.process);
                }
            }
            EventCategory::Network | EventCategory::Dns => {
                if !has_endpoint(&network) {
                    network.get_or_insert(spares.network).dst_ip = Some(spares.dst_ip);
                }
                if category == EventCategory::Dns && dns.is_none() {
                    dns = Some(spares.dns);
                }
            }
            EventCategory::Http => {
                let h = http.get_or_insert(spares.http);
                if let Some(m) = &h.method {
                    if activity != Activity::Unknown {
                        activity = http_method_activity(m).unwrap_or(Activity::Other);
                    }
                }
            }
            EventCategory::Email => {
                if email.is_none() {
                    email = Some(spares.email);
                }
            }
            EventCategory::Malware | EventCategory::IntrusionDetection => {}
        }
    }

    SecurityEvent {
        event_id,
        event_time,
        observed_time,
        tenant,
        kind,
        category,
        activity,
        action,
        outcome,
        severity,
        disposition,
        message,
        product,
        host,
        user,
        target_user,
        auth,
        process,
        file,
        network,
        dns,
        http,
        email,
        rule,
        mitre,
        malware,
        labels,
        tags,
        enrichments,
        raw,
    }
}

/// Arbitrary events that pass [`SecurityEvent::validate`] (checked: the strategy panics
/// otherwise), with every optional group sometimes present and hostile free text everywhere.
pub fn arb_event() -> impl Strategy<Value = SecurityEvent> {
    (arb_head(), arb_groups(), arb_tail(), arb_spares()).prop_map(|(head, groups, tail, spares)| {
        let event = assemble(head, groups, tail, spares);
        if let Err(err) = event.validate() {
            panic!("arb_event generated an event the gate refuses: {err}\n{event:#?}");
        }
        event
    })
}
