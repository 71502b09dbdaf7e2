//! The record and enum types of the canonical event, one per named type of
//! `schemas/security_event.v1.avsc`, fields in schema order. Docs are the schema's docs.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::codec::TsMillis;

avro_enum! {
    /// ECS event.kind. event: a record of activity (OCSF class chosen by category). alert: a
    /// detection produced by a rule or engine (OCSF Detection Finding 2004, ECS event.kind=alert);
    /// an alert must carry rule.
    pub enum EventKind {
        /// `event`
        Event = "event",
        /// `alert`
        Alert = "alert",
    }
}

avro_enum! {
    /// What the event is about. ECS event.category / OCSF class for kind=event: authentication ->
    /// authentication / Authentication 3002; process -> process / Process Activity 1007; file ->
    /// file / File System Activity 1001; network -> network / Network Activity 4001; dns -> network
    /// (event.type protocol, network.protocol dns) / DNS Activity 4003; http -> web / HTTP Activity
    /// 4002; email -> email / Email Activity 4009; malware -> malware and intrusion_detection ->
    /// intrusion_detection are detections only (kind must be alert) / Detection Finding 2004. For
    /// kind=alert every category maps to Detection Finding 2004 and the groups of the category
    /// become its evidences.
    pub enum EventCategory {
        /// `authentication`
        Authentication = "authentication",
        /// `process`
        Process = "process",
        /// `file`
        File = "file",
        /// `network`
        Network = "network",
        /// `dns`
        Dns = "dns",
        /// `http`
        Http = "http",
        /// `email`
        Email = "email",
        /// `malware`
        Malware = "malware",
        /// `intrusion_detection`
        IntrusionDetection = "intrusion_detection",
    }
}

avro_enum! {
    /// Normalised activity, one symbol per OCSF activity. Valid symbols depend on kind and category
    /// (the producer gate rejects other pairs): unknown and other always; kind=alert: create,
    /// update, close (state of the finding); authentication: logon, logoff, authentication_ticket,
    /// service_ticket_request, service_ticket_renew, preauth, account_switch; process: launch,
    /// terminate, open, inject, set_user_id; file: create, read, update, delete, rename,
    /// set_attributes, set_security, get_attributes, get_security, encrypt, decrypt, mount,
    /// unmount, open; network: open, close, reset, fail, refuse, traffic, listen; dns: query,
    /// response, traffic; http: connect, delete, get, head, options, post, put, trace, patch (must
    /// agree with http.method); email: send, receive, scan, trace, mta_relay. Mapped to OCSF
    /// activity_id with the class table and to ECS event.type (e.g. logon -> start, logoff -> end,
    /// launch -> start, terminate -> end, create -> creation, delete -> deletion,
    /// update/rename/set_* -> change, open/traffic -> connection, refuse -> denied, query/response
    /// -> protocol, http methods -> access, alerts -> info).
    pub enum Activity {
        /// `unknown`
        Unknown = "unknown",
        /// `other`
        Other = "other",
        /// `create`
        Create = "create",
        /// `update`
        Update = "update",
        /// `close`
        Close = "close",
        /// `logon`
        Logon = "logon",
        /// `logoff`
        Logoff = "logoff",
        /// `authentication_ticket`
        AuthenticationTicket = "authentication_ticket",
        /// `service_ticket_request`
        ServiceTicketRequest = "service_ticket_request",
        /// `service_ticket_renew`
        ServiceTicketRenew = "service_ticket_renew",
        /// `preauth`
        Preauth = "preauth",
        /// `account_switch`
        AccountSwitch = "account_switch",
        /// `launch`
        Launch = "launch",
        /// `terminate`
        Terminate = "terminate",
        /// `open`
        Open = "open",
        /// `inject`
        Inject = "inject",
        /// `set_user_id`
        SetUserId = "set_user_id",
        /// `read`
        Read = "read",
        /// `delete`
        Delete = "delete",
        /// `rename`
        Rename = "rename",
        /// `set_attributes`
        SetAttributes = "set_attributes",
        /// `set_security`
        SetSecurity = "set_security",
        /// `get_attributes`
        GetAttributes = "get_attributes",
        /// `get_security`
        GetSecurity = "get_security",
        /// `encrypt`
        Encrypt = "encrypt",
        /// `decrypt`
        Decrypt = "decrypt",
        /// `mount`
        Mount = "mount",
        /// `unmount`
        Unmount = "unmount",
        /// `reset`
        Reset = "reset",
        /// `fail`
        Fail = "fail",
        /// `refuse`
        Refuse = "refuse",
        /// `traffic`
        Traffic = "traffic",
        /// `listen`
        Listen = "listen",
        /// `query`
        Query = "query",
        /// `response`
        Response = "response",
        /// `connect`
        Connect = "connect",
        /// `get`
        Get = "get",
        /// `head`
        Head = "head",
        /// `options`
        Options = "options",
        /// `post`
        Post = "post",
        /// `put`
        Put = "put",
        /// `trace`
        Trace = "trace",
        /// `patch`
        Patch = "patch",
        /// `send`
        Send = "send",
        /// `receive`
        Receive = "receive",
        /// `scan`
        Scan = "scan",
        /// `mta_relay`
        MtaRelay = "mta_relay",
    }
}

avro_enum! {
    /// Result of the activity. ECS event.outcome (same values); OCSF status_id: success -> 1
    /// Success, failure -> 2 Failure, unknown -> 0 Unknown; CEF outcome.
    pub enum Outcome {
        /// `success`
        Success = "success",
        /// `failure`
        Failure = "failure",
        /// `unknown`
        Unknown = "unknown",
    }
}

avro_enum! {
    /// Normalised severity. OCSF severity_id: info 1, low 2, medium 3, high 4, critical 5. ECS
    /// event.severity: info 1, low 21, medium 47, high 73, critical 99. CEF Severity header: info
    /// 1, low 3, medium 5, high 8, critical 10.
    pub enum Severity {
        /// `info`
        Info = "info",
        /// `low`
        Low = "low",
        /// `medium`
        Medium = "medium",
        /// `high`
        High = "high",
        /// `critical`
        Critical = "critical",
    }
}

avro_enum! {
    /// What the reporting product did about the activity. OCSF disposition_id: allowed 1, blocked
    /// 2, quarantined 3, isolated 4, deleted 5, dropped 6, detected 15, no_action 16, logged 17,
    /// other 99; OCSF action_id: allowed/detected/no_action/logged -> 1 Allowed, blocked/dropped ->
    /// 2 Denied, quarantined/isolated/deleted -> 4 Modified, other -> 99 Other. ECS event.type adds
    /// allowed (allowed) or denied (blocked, dropped).
    pub enum Disposition {
        /// `allowed`
        Allowed = "allowed",
        /// `blocked`
        Blocked = "blocked",
        /// `quarantined`
        Quarantined = "quarantined",
        /// `isolated`
        Isolated = "isolated",
        /// `deleted`
        Deleted = "deleted",
        /// `dropped`
        Dropped = "dropped",
        /// `detected`
        Detected = "detected",
        /// `no_action`
        NoAction = "no_action",
        /// `logged`
        Logged = "logged",
        /// `other`
        Other = "other",
    }
}

avro_enum! {
    /// Kind of device. OCSF device.type_id: server 1, desktop 2, laptop 3, tablet 4, mobile 5,
    /// virtual 6, iot 7, firewall 9, router 12, ids 13, ips 14, load_balancer 15, other 99. ECS
    /// host.type (same string).
    pub enum HostType {
        /// `server`
        Server = "server",
        /// `desktop`
        Desktop = "desktop",
        /// `laptop`
        Laptop = "laptop",
        /// `tablet`
        Tablet = "tablet",
        /// `mobile`
        Mobile = "mobile",
        /// `virtual`
        Virtual = "virtual",
        /// `iot`
        Iot = "iot",
        /// `firewall`
        Firewall = "firewall",
        /// `router`
        Router = "router",
        /// `ids`
        Ids = "ids",
        /// `ips`
        Ips = "ips",
        /// `load_balancer`
        LoadBalancer = "load_balancer",
        /// `other`
        Other = "other",
    }
}

avro_enum! {
    /// Operating system family. ECS host.os.type (same values); OCSF device.os.type_id: windows
    /// 100, linux 200, android 201, macos 300, ios 301, unix and other 99.
    pub enum OsType {
        /// `windows`
        Windows = "windows",
        /// `linux`
        Linux = "linux",
        /// `macos`
        Macos = "macos",
        /// `unix`
        Unix = "unix",
        /// `ios`
        Ios = "ios",
        /// `android`
        Android = "android",
        /// `other`
        Other = "other",
    }
}

avro_enum! {
    /// Authentication protocol. OCSF auth_protocol_id: ntlm 1, kerberos 2, digest 3, openid 4, saml
    /// 5, oauth2 6, pap 7, chap 8, eap 9, radius 10, basic 11, ldap 12, other 99.
    pub enum AuthProtocol {
        /// `ntlm`
        Ntlm = "ntlm",
        /// `kerberos`
        Kerberos = "kerberos",
        /// `digest`
        Digest = "digest",
        /// `openid`
        Openid = "openid",
        /// `saml`
        Saml = "saml",
        /// `oauth2`
        Oauth2 = "oauth2",
        /// `pap`
        Pap = "pap",
        /// `chap`
        Chap = "chap",
        /// `eap`
        Eap = "eap",
        /// `radius`
        Radius = "radius",
        /// `basic`
        Basic = "basic",
        /// `ldap`
        Ldap = "ldap",
        /// `other`
        Other = "other",
    }
}

avro_enum! {
    /// Logon type (Windows semantics, usable for any OS). OCSF logon_type_id: system 1, interactive
    /// 2, network 3, batch 4, service 5, unlock 7, network_cleartext 8, new_credentials 9,
    /// remote_interactive 10, cached_interactive 11, cached_remote_interactive 12, cached_unlock
    /// 13, other 99.
    pub enum LogonType {
        /// `system`
        System = "system",
        /// `interactive`
        Interactive = "interactive",
        /// `network`
        Network = "network",
        /// `batch`
        Batch = "batch",
        /// `service`
        Service = "service",
        /// `unlock`
        Unlock = "unlock",
        /// `network_cleartext`
        NetworkCleartext = "network_cleartext",
        /// `new_credentials`
        NewCredentials = "new_credentials",
        /// `remote_interactive`
        RemoteInteractive = "remote_interactive",
        /// `cached_interactive`
        CachedInteractive = "cached_interactive",
        /// `cached_remote_interactive`
        CachedRemoteInteractive = "cached_remote_interactive",
        /// `cached_unlock`
        CachedUnlock = "cached_unlock",
        /// `other`
        Other = "other",
    }
}

avro_enum! {
    /// File system object type. ECS file.type: file, dir, symlink (other is not emitted); OCSF
    /// file.type_id: file 1 Regular File, dir 2 Folder, symlink 7 Symbolic Link, other 99.
    pub enum FileType {
        /// `file`
        File = "file",
        /// `dir`
        Dir = "dir",
        /// `symlink`
        Symlink = "symlink",
        /// `other`
        Other = "other",
    }
}

avro_enum! {
    /// Direction relative to the monitored network. ECS network.direction (same values); OCSF
    /// connection_info.direction_id: inbound 1, outbound 2, internal 3 Lateral, external 99 Other,
    /// unknown 0; CEF deviceDirection 0 inbound / 1 outbound.
    pub enum Direction {
        /// `inbound`
        Inbound = "inbound",
        /// `outbound`
        Outbound = "outbound",
        /// `internal`
        Internal = "internal",
        /// `external`
        External = "external",
        /// `unknown`
        Unknown = "unknown",
    }
}

avro_enum! {
    /// Malware classification. OCSF malware.classification_ids: adware 1, backdoor 2, bot 3,
    /// bootkit 4, ddos 5, downloader 6, dropper 7, exploit_kit 8, keylogger 9, ransomware 10,
    /// remote_access_trojan 11, resource_exploitation 13, rogue_security_software 14, rootkit 15,
    /// screen_capture 16, spyware 17, trojan 18, virus 19, webshell 20, wiper 21, worm 22, other
    /// 99.
    pub enum MalwareClass {
        /// `adware`
        Adware = "adware",
        /// `backdoor`
        Backdoor = "backdoor",
        /// `bot`
        Bot = "bot",
        /// `bootkit`
        Bootkit = "bootkit",
        /// `ddos`
        Ddos = "ddos",
        /// `downloader`
        Downloader = "downloader",
        /// `dropper`
        Dropper = "dropper",
        /// `exploit_kit`
        ExploitKit = "exploit_kit",
        /// `keylogger`
        Keylogger = "keylogger",
        /// `ransomware`
        Ransomware = "ransomware",
        /// `remote_access_trojan`
        RemoteAccessTrojan = "remote_access_trojan",
        /// `resource_exploitation`
        ResourceExploitation = "resource_exploitation",
        /// `rogue_security_software`
        RogueSecuritySoftware = "rogue_security_software",
        /// `rootkit`
        Rootkit = "rootkit",
        /// `screen_capture`
        ScreenCapture = "screen_capture",
        /// `spyware`
        Spyware = "spyware",
        /// `trojan`
        Trojan = "trojan",
        /// `virus`
        Virus = "virus",
        /// `webshell`
        Webshell = "webshell",
        /// `wiper`
        Wiper = "wiper",
        /// `worm`
        Worm = "worm",
        /// `other`
        Other = "other",
    }
}

avro_record! {
    /// Canonical security event of secflow (topic security-events.canonical.v1 and, with
    /// enrichments, security-events.enriched.v1). One record is one thing that happened
    /// (kind=event) or one detection about things that happened (kind=alert). It carries everything
    /// the ECS 9.4, CEF and OCSF 1.8 mappers need without guessing: each field doc names its ECS
    /// field, OCSF attribute and CEF key. OCSF class selection: kind=alert -> Detection Finding
    /// (2004); kind=event -> by category: authentication -> Authentication (3002), process ->
    /// Process Activity (1007), file -> File System Activity (1001), network -> Network Activity
    /// (4001), dns -> DNS Activity (4003), http -> HTTP Activity (4002), email -> Email Activity
    /// (4009). Conventions: optional groups are unions with null first and default null; an absent
    /// optional value means unknown, an empty string is never a value; times are UTC epoch
    /// milliseconds; IP addresses are textual IPv4 or IPv6. Evolution: only add fields with
    /// defaults (checked by the schema_compat gate against schemas/history/); adding symbols to an
    /// enum without an enum default needs a new major version.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct SecurityEvent {
        /// Globally unique id of this event, set by the producer (a UUID is recommended).
        /// Idempotency key downstream: Elasticsearch _id, PagerDuty dedup_key, HEC event id. ECS
        /// event.id; OCSF metadata.uid (and finding_info.uid for alerts); CEF externalId.
        pub event_id: String,
        /// When the event happened (or the detection was made), UTC epoch milliseconds. ECS
        /// @timestamp; OCSF time; CEF rt.
        #[serde(with = "super::time::millis")]
        pub event_time: i64 => TsMillis,
        /// When the reporting product observed or collected the event, UTC epoch milliseconds. ECS
        /// event.created; OCSF metadata.logged_time; CEF not mapped (CEF rt carries event_time).
        #[serde(with = "super::time::millis")]
        pub observed_time: i64 => TsMillis,
        /// Tenant (customer, business unit) that owns the event; default Kafka key of the canonical
        /// topic. ECS organization.id; OCSF metadata.tenant_uid; CEF cs1 with cs1Label=tenant.
        pub tenant: String,
        /// Whether this is plain activity (event) or a detection (alert). ECS event.kind; selects
        /// the OCSF class (see the record doc).
        pub kind: EventKind,
        /// Category of the event; decides which group must be present (authentication: user;
        /// process: process; file: file; network and dns: network endpoints; dns: dns; http: http;
        /// email: email; malware: malware). ECS event.category; OCSF class_uid / category_uid; CEF
        /// cat.
        pub category: EventCategory,
        /// Normalised activity (see the Activity enum for the symbols valid per kind and category).
        /// OCSF activity_id / activity_name and type_uid = class_uid * 100 + activity_id; ECS
        /// event.type.
        pub activity: Activity,
        /// The action as the reporting product names it, lowercase with underscores, e.g. logon,
        /// process_started, file_created, connection_allowed, dns_query, malware_detected. Free
        /// text, not an enum: use activity for the normalised form. ECS event.action; CEF act; the
        /// CEF Device Event Class ID when the event has no rule.
        pub action: String,
        /// Whether the activity succeeded (for alerts: whether the detected action succeeded;
        /// unknown if not known). ECS event.outcome; OCSF status_id / status; CEF outcome.
        pub outcome: Outcome,
        /// Normalised severity as assessed by the reporting product. OCSF severity_id / severity;
        /// ECS event.severity; CEF Severity header field.
        pub severity: Severity,
        /// What the reporting control did (allowed, blocked, quarantined...); null if the product
        /// does not enforce anything or does not say. OCSF disposition_id and action_id; ECS
        /// event.type allowed/denied; CEF cs2 with cs2Label=disposition.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub disposition: Option<Disposition>,
        /// One-line human readable summary of the event. ECS message; OCSF message; CEF Name header
        /// field for events (alerts use rule.name) and msg.
        pub message: String,
        /// The reporting source. ECS observer.*; OCSF metadata.product; CEF Device Vendor / Device
        /// Product / Device Version.
        pub product: Product,
        /// Host the event happened on. Required for kind=event with category process or file (OCSF
        /// device). ECS host.*; OCSF device; CEF dhost/dvc/dvchost.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub host: Option<Host>,
        /// The user that acted: the account that authenticates (authentication), runs the process,
        /// touches the file or sends the request. Required for category authentication. ECS user.*;
        /// OCSF user (Authentication 3002) or actor.user (other classes); CEF suser/suid/sntdom.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub user: Option<User>,
        /// The account acted upon, when different from user: the account switched to (runas, sudo,
        /// account_switch), the account whose credentials were used or changed. ECS user.target.*;
        /// OCSF user for account_switch and actor.user otherwise; CEF duser/duid/dntdom.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub target_user: Option<User>,
        /// Authentication details (category authentication). An authentication event needs
        /// auth.service or a network destination (OCSF 3002 requires service or dst_endpoint).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub auth: Option<Auth>,
        /// The process the event is about (category process), or the process that acted (file,
        /// network, dns, http). Process events need pid or entity_id, and an actor (process.parent
        /// or user). ECS process.*; OCSF process (1007) or actor.process.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub process: Option<Process>,
        /// The file the event is about (category file; also the detected file of a malware alert).
        /// File events need host and an actor (process or user). ECS file.*; OCSF file.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub file: Option<File>,
        /// Network endpoints and traffic. Category network and dns events need a source or
        /// destination (ip or hostname). ECS source.*, destination.*, network.*; OCSF src_endpoint,
        /// dst_endpoint, connection_info, traffic.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub network: Option<Network>,
        /// DNS details (required for category dns). ECS dns.*; OCSF query, answers, rcode.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub dns: Option<Dns>,
        /// HTTP details (required for category http). ECS http.*, url.*, user_agent.*; OCSF
        /// http_request, http_response.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub http: Option<Http>,
        /// E-mail details (required for category email); needs at least one recipient in to or cc.
        /// ECS email.*; OCSF email.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub email: Option<Email>,
        /// Detection rule; required when kind=alert. ECS rule.*; OCSF finding_info (analytic type
        /// Rule); CEF Device Event Class ID and Name.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub rule: Option<Rule>,
        /// MITRE ATT&CK tactics and techniques of a detection. ECS threat.framework=MITRE ATT&CK
        /// and threat.*; OCSF attacks; CEF cs4 with cs4Label=mitreTechniques (technique ids).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub mitre: Option<Mitre>,
        /// Malware details; required for category malware. The infected file goes in file, the
        /// process in process. OCSF malware (Detection Finding); ECS threat.software.*.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub malware: Option<Malware>,
        /// Free key/value labels set by the producer (e.g. env, region); keys are not empty. ECS
        /// labels; OCSF unmapped; CEF not mapped.
        #[serde(default)]
        pub labels: BTreeMap<String, String>,
        /// Free tags, each not empty. ECS tags; OCSF metadata.labels.
        #[serde(default)]
        pub tags: Vec<String>,
        /// Threat intelligence matches, empty on the canonical topic and filled on the enriched
        /// topic. ECS threat.enrichments; OCSF enrichments; CEF cs5 with cs5Label=threatIndicators.
        #[serde(default)]
        pub enrichments: Vec<Enrichment>,
        /// The original record as received from the product (a syslog line, vendor JSON, an XML
        /// event), UTF-8 text; null when not kept. ECS event.original; OCSF raw_data; CEF rawEvent.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub raw: Option<String>,
    }
}

avro_record! {
    /// A threat intelligence indicator that matched a value of this event (added by the enrich
    /// stage).
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
    #[serde(deny_unknown_fields)]
    pub struct Enrichment {
        /// STIX id of the indicator, e.g. `indicator--<uuid>`. ECS threat.enrichments.matched.id
        /// and threat.enrichments.indicator.name; OCSF enrichments.data.uid.
        pub indicator_id: String,
        /// Type of the atomic IOC, lowercase: ipv4-addr, ipv6-addr, domain-name, url, email-addr,
        /// file (hash)... ECS threat.enrichments.indicator.type; OCSF enrichments.type.
        pub ioc_type: String,
        /// The IOC value as stored in the indicator (an IP, CIDR, domain, URL, address or hash).
        /// ECS threat.enrichments.matched.atomic; OCSF enrichments.value.
        pub ioc_value: String,
        /// Canonical field path that matched, e.g. network.dst_ip, dns.query, file.sha256. ECS
        /// threat.enrichments.matched.field (mapped to its ECS name); OCSF enrichments.name.
        pub matched_field: String,
        /// Confidence of the indicator, 0-100 (STIX confidence). ECS
        /// threat.enrichments.indicator.confidence (Low/Medium/High); OCSF
        /// enrichments.data.confidence.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub confidence: Option<i32>,
        /// TLP marking, lowercase: clear, white, green, amber, amber+strict, red. ECS
        /// threat.enrichments.indicator.marking.tlp (uppercase).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub tlp: Option<String>,
        /// End of the indicator's validity, UTC epoch milliseconds; null if open-ended. ECS has no
        /// field for it (kept in the enrichment's indicator.description by the mapper if at all);
        /// OCSF enrichments.data.expiration_time. The enrich stage never adds an expired indicator.
        #[serde(default, skip_serializing_if = "Option::is_none", with = "super::time::opt_millis")]
        pub valid_until: Option<i64> => TsMillis,
        /// Intel source (TAXII collection or feed name). ECS threat.enrichments.indicator.provider;
        /// OCSF enrichments.provider.
        pub provider: String,
    }
}

avro_record! {
    /// Malware identified by a detection.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
    #[serde(deny_unknown_fields)]
    pub struct Malware {
        /// Malware or signature name as the engine reports it, e.g. Trojan:Win32/Emotet.RPB!MTB.
        /// OCSF malware.name; ECS threat.software.name (threat.software.type Malware).
        pub name: String,
        /// Malware family, e.g. Emotet. OCSF malware.labels; ECS threat.software.alias.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub family: Option<String>,
        /// Classifications; empty maps to OCSF classification_ids `[0]` Unknown.
        #[serde(default)]
        pub classifications: Vec<MalwareClass>,
    }
}

avro_record! {
    /// MITRE ATT&CK classification of a detection.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
    #[serde(deny_unknown_fields)]
    pub struct Mitre {
        /// Tactics. ECS threat.tactic.*; OCSF attacks.tactic.
        #[serde(default)]
        pub tactics: Vec<MitreTactic>,
        /// Techniques. ECS threat.technique.*; OCSF attacks.technique and sub_technique.
        #[serde(default)]
        pub techniques: Vec<MitreTechnique>,
    }
}

avro_record! {
    /// An ATT&CK technique.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
    #[serde(deny_unknown_fields)]
    pub struct MitreTechnique {
        /// Technique id, T followed by 4 digits, e.g. T1059. ECS threat.technique.id; OCSF
        /// attacks.technique.uid.
        pub id: String,
        /// Technique name, e.g. Command and Scripting Interpreter. ECS threat.technique.name; OCSF
        /// attacks.technique.name.
        pub name: String,
        /// Sub-technique; its id must start with the technique id.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub subtechnique: Option<MitreSubtechnique>,
        /// Ids of the tactics (from tactics) this technique serves, so that OCSF can build one
        /// attacks entry per technique and tactic without guessing; empty if not known.
        #[serde(default)]
        pub tactic_ids: Vec<String>,
    }
}

avro_record! {
    /// An ATT&CK sub-technique.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
    #[serde(deny_unknown_fields)]
    pub struct MitreSubtechnique {
        /// Sub-technique id, technique id followed by a dot and 3 digits, e.g. T1059.001. ECS
        /// threat.technique.subtechnique.id; OCSF attacks.sub_technique.uid.
        pub id: String,
        /// Sub-technique name, e.g. PowerShell. ECS threat.technique.subtechnique.name; OCSF
        /// attacks.sub_technique.name.
        pub name: String,
    }
}

avro_record! {
    /// An ATT&CK tactic.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
    #[serde(deny_unknown_fields)]
    pub struct MitreTactic {
        /// Tactic id, TA followed by 4 digits, e.g. TA0002. ECS threat.tactic.id; OCSF
        /// attacks.tactic.uid.
        pub id: String,
        /// Tactic name, e.g. Execution. ECS threat.tactic.name; OCSF attacks.tactic.name.
        pub name: String,
    }
}

avro_record! {
    /// The detection rule or signature that produced an alert.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
    #[serde(deny_unknown_fields)]
    pub struct Rule {
        /// Rule or signature id, e.g. a Suricata sid or a Sigma rule id. ECS rule.id; OCSF
        /// finding_info.analytic.uid; CEF Device Event Class ID header.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub id: Option<String>,
        /// Rule name. ECS rule.name; OCSF finding_info.title and analytic.name; CEF Name header for
        /// alerts.
        pub name: String,
        /// What the rule detects. ECS rule.description; OCSF finding_info.desc.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub description: Option<String>,
        /// Ruleset the rule belongs to. ECS rule.ruleset; OCSF finding_info.analytic.category.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub ruleset: Option<String>,
        /// Rule version. ECS rule.version; OCSF finding_info.analytic.version.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub version: Option<String>,
        /// URL with more about the rule. ECS rule.reference; OCSF finding_info.src_url.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub reference: Option<String>,
    }
}

avro_record! {
    /// An e-mail message.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
    #[serde(deny_unknown_fields)]
    pub struct Email {
        /// Sender address (header From). ECS email.from.address; OCSF email.from.
        pub from: String,
        /// Recipient addresses (header To). ECS email.to.address; OCSF email.to.
        #[serde(default)]
        pub to: Vec<String>,
        /// Carbon-copy addresses. ECS email.cc.address; OCSF email.cc.
        #[serde(default)]
        pub cc: Vec<String>,
        /// Subject line. ECS email.subject; OCSF email.subject.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub subject: Option<String>,
        /// Message-ID header. ECS email.message_id; OCSF email.message_uid.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub message_id: Option<String>,
        /// Attachments. ECS email.attachments; OCSF email.files.
        #[serde(default)]
        pub attachments: Vec<Attachment>,
    }
}

avro_record! {
    /// A file attached to an e-mail.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
    #[serde(deny_unknown_fields)]
    pub struct Attachment {
        /// File name of the attachment. ECS email.attachments.file.name; OCSF email.files.name.
        pub name: String,
        /// Size in bytes, not negative. ECS email.attachments.file.size; OCSF email.files.size.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub size: Option<i64>,
        /// MIME type. ECS email.attachments.file.mime_type; OCSF email.files.mime_type.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub mime_type: Option<String>,
        /// SHA-256, 64 hex digits. ECS email.attachments.file.hash.sha256; OCSF email.files.hashes.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub sha256: Option<String>,
    }
}

avro_record! {
    /// An HTTP request and its response.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
    #[serde(deny_unknown_fields)]
    pub struct Http {
        /// Request method, uppercase, e.g. GET. ECS http.request.method; OCSF
        /// http_request.http_method; CEF requestMethod.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub method: Option<String>,
        /// Full URL with scheme, e.g. `https://www.example.com/login?next=%2F`. ECS url.full (and
        /// url.original); OCSF http_request.url.url_string; CEF request.
        pub url: String,
        /// Response status code, 100-599; null if there was no response. ECS
        /// http.response.status_code; OCSF http_response.code.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub status: Option<i32>,
        /// HTTP version, e.g. 1.1, 2. ECS http.version; OCSF http_request.version.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub version: Option<String>,
        /// User-Agent header. ECS user_agent.original; OCSF http_request.user_agent; CEF
        /// requestClientApplication.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub user_agent: Option<String>,
        /// Referer header. ECS http.request.referrer; OCSF http_request.referrer; CEF
        /// requestContext.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub referrer: Option<String>,
        /// Size of the request (headers and body) in bytes, not negative. ECS http.request.bytes;
        /// OCSF http_request.length.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub request_bytes: Option<i64>,
        /// Size of the response (headers and body) in bytes, not negative. ECS http.response.bytes;
        /// OCSF http_response.length.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub response_bytes: Option<i64>,
    }
}

avro_record! {
    /// A DNS query and its answers.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
    #[serde(deny_unknown_fields)]
    pub struct Dns {
        /// Queried name, e.g. www.example.com. ECS dns.question.name; OCSF query.hostname; CEF
        /// destinationDnsDomain.
        pub query: String,
        /// Query type mnemonic, uppercase: A, AAAA, CNAME, MX, TXT, PTR... ECS dns.question.type;
        /// OCSF query.type.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub query_type: Option<String>,
        /// Response code mnemonic, uppercase: NOERROR, NXDOMAIN, SERVFAIL, REFUSED...; null for a
        /// query without response. ECS dns.response_code; OCSF rcode and rcode_id.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub rcode: Option<String>,
        /// Answer records, in response order. ECS dns.answers; OCSF answers.
        #[serde(default)]
        pub answers: Vec<DnsAnswer>,
    }
}

avro_record! {
    /// One resource record of a DNS answer.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
    #[serde(deny_unknown_fields)]
    pub struct DnsAnswer {
        /// Record data, e.g. 192.0.2.10 or a CNAME target. ECS dns.answers.data (and
        /// dns.resolved_ip for A/AAAA); OCSF answers.rdata.
        pub data: String,
        /// Record type mnemonic, uppercase, e.g. A. ECS dns.answers.type; OCSF answers.type.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub r#type: Option<String>,
        /// Time to live in seconds, not negative. ECS dns.answers.ttl; OCSF answers.ttl.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub ttl: Option<i64>,
    }
}

avro_record! {
    /// A network connection or flow, seen from its initiator (src) to its responder (dst).
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
    #[serde(deny_unknown_fields)]
    pub struct Network {
        /// Source (initiator) IP, IPv4 or IPv6. ECS source.ip; OCSF src_endpoint.ip; CEF src (c6a2
        /// for IPv6).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub src_ip: Option<String>,
        /// Source port, 0-65535. ECS source.port; OCSF src_endpoint.port; CEF spt.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub src_port: Option<i32>,
        /// Source host name. ECS source.domain; OCSF src_endpoint.hostname; CEF shost.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub src_hostname: Option<String>,
        /// Destination (responder) IP, IPv4 or IPv6. ECS destination.ip; OCSF dst_endpoint.ip; CEF
        /// dst (c6a3 for IPv6).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub dst_ip: Option<String>,
        /// Destination port, 0-65535. ECS destination.port; OCSF dst_endpoint.port; CEF dpt.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub dst_port: Option<i32>,
        /// Destination host name. ECS destination.domain; OCSF dst_endpoint.hostname; CEF dhost.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub dst_hostname: Option<String>,
        /// Transport protocol, lowercase IANA keyword: tcp, udp, icmp, ipv6-icmp, sctp, gre... ECS
        /// network.transport; OCSF connection_info.protocol_name and protocol_num (tcp 6, udp 17,
        /// icmp 1, ipv6-icmp 58, sctp 132, gre 47); CEF proto.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub transport: Option<String>,
        /// Application protocol, lowercase: https, dns, smtp, ssh, rdp... ECS network.protocol;
        /// OCSF app_protocol_name; CEF app.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub protocol: Option<String>,
        /// Direction of the traffic. ECS network.direction; OCSF connection_info.direction_id.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub direction: Option<Direction>,
        /// Bytes sent from destination to source (responder to initiator), not negative. ECS
        /// destination.bytes; OCSF traffic.bytes_in; CEF in.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub bytes_in: Option<i64>,
        /// Bytes sent from source to destination (initiator to responder), not negative. ECS
        /// source.bytes; OCSF traffic.bytes_out; CEF out.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub bytes_out: Option<i64>,
        /// Packets in both directions, not negative. ECS network.packets; OCSF traffic.packets.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub packets: Option<i64>,
    }
}

avro_record! {
    /// A file.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
    #[serde(deny_unknown_fields)]
    pub struct File {
        /// Full path of the file. ECS file.path; OCSF file.path; CEF filePath.
        pub path: String,
        /// File name with extension; if null the mappers take the last path component. ECS
        /// file.name; OCSF file.name; CEF fname.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub name: Option<String>,
        /// Directory that holds the file. ECS file.directory; OCSF file.parent_folder.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub directory: Option<String>,
        /// Object type; null maps to OCSF file.type_id 0 Unknown. ECS file.type; OCSF file.type_id.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub r#type: Option<FileType>,
        /// Size in bytes, not negative. ECS file.size; OCSF file.size; CEF fsize.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub size: Option<i64>,
        /// MD5, 32 hex digits. ECS file.hash.md5; OCSF file.hashes (algorithm_id 1); CEF fileHash
        /// when no sha256.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub md5: Option<String>,
        /// SHA-1, 40 hex digits. ECS file.hash.sha1; OCSF file.hashes (algorithm_id 2).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub sha1: Option<String>,
        /// SHA-256, 64 hex digits. ECS file.hash.sha256; OCSF file.hashes (algorithm_id 3); CEF
        /// fileHash.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub sha256: Option<String>,
        /// MIME type, e.g. application/x-dosexec. ECS file.mime_type; OCSF file.mime_type; CEF
        /// fileType.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub mime_type: Option<String>,
    }
}

avro_record! {
    /// A process.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
    #[serde(deny_unknown_fields)]
    pub struct Process {
        /// Process id. ECS process.pid; OCSF process.pid; CEF dpid (spid for actor processes).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub pid: Option<i64>,
        /// Unique process id that survives pid reuse (e.g. Sysmon ProcessGuid). ECS
        /// process.entity_id; OCSF process.uid.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub entity_id: Option<String>,
        /// Executable file name, e.g. powershell.exe. ECS process.name; OCSF process.name; CEF
        /// dproc.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub name: Option<String>,
        /// Absolute path of the executable. ECS process.executable; OCSF process.file.path; CEF
        /// filePath when no file group.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub executable: Option<String>,
        /// Full command line. ECS process.command_line; OCSF process.cmd_line.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub command_line: Option<String>,
        /// SHA-256 of the executable, 64 hex digits. ECS process.hash.sha256; OCSF
        /// process.file.hashes (algorithm_id 3).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub sha256: Option<String>,
        /// Account the process runs as (name, optionally DOMAIN\name). ECS process.user.name; OCSF
        /// process.user.name.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub user: Option<String>,
        /// When the process started, UTC epoch milliseconds. ECS process.start; OCSF
        /// process.created_time.
        #[serde(default, skip_serializing_if = "Option::is_none", with = "super::time::opt_millis")]
        pub start_time: Option<i64> => TsMillis,
        /// Exit code, for terminated processes. ECS process.exit_code; OCSF exit_code (Process
        /// Activity).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub exit_code: Option<i32>,
        /// Parent process; for Process Activity it is also the OCSF actor.process. ECS
        /// process.parent.*; OCSF process.parent_process.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub parent: Option<ParentProcess>,
    }
}

avro_record! {
    /// The parent of a process.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
    #[serde(deny_unknown_fields)]
    pub struct ParentProcess {
        /// Parent process id. ECS process.parent.pid; OCSF process.parent_process.pid and
        /// actor.process.pid.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub pid: Option<i64>,
        /// Unique id of the parent process. ECS process.parent.entity_id; OCSF parent_process.uid.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub entity_id: Option<String>,
        /// Parent executable file name. ECS process.parent.name; OCSF parent_process.name; CEF
        /// sproc.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub name: Option<String>,
        /// Parent executable path. ECS process.parent.executable; OCSF parent_process.file.path.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub executable: Option<String>,
        /// Parent command line. ECS process.parent.command_line; OCSF parent_process.cmd_line.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub command_line: Option<String>,
    }
}

avro_record! {
    /// Details of an authentication.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
    #[serde(deny_unknown_fields)]
    pub struct Auth {
        /// Authentication protocol; null maps to OCSF auth_protocol_id 0 Unknown. OCSF
        /// auth_protocol_id / auth_protocol; ECS has no field for it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub protocol: Option<AuthProtocol>,
        /// Logon type; null maps to OCSF logon_type_id 0 Unknown. OCSF logon_type_id / logon_type;
        /// OCSF is_remote = network, network_cleartext or remote_interactive.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub logon_type: Option<LogonType>,
        /// Whether multi-factor authentication was used; null if not known. OCSF is_mfa.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub mfa: Option<bool>,
        /// Service or application authenticated to, e.g. sshd, Microsoft Entra ID, vpn-gateway.
        /// OCSF service.name; ECS service.name.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub service: Option<String>,
    }
}

avro_record! {
    /// A user account.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
    #[serde(deny_unknown_fields)]
    pub struct User {
        /// Account name without domain, e.g. alice. ECS user.name; OCSF user.name; CEF suser (duser
        /// for target_user).
        pub name: String,
        /// Unique account id, e.g. a Windows SID or a Unix uid. ECS user.id; OCSF user.uid; CEF
        /// suid (duid for target_user).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub id: Option<String>,
        /// Domain or realm of the account, e.g. CORP. ECS user.domain; OCSF user.domain; CEF sntdom
        /// (dntdom for target_user).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub domain: Option<String>,
        /// E-mail address of the account. ECS user.email; OCSF user.email_addr.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub email: Option<String>,
    }
}

avro_record! {
    /// The host the event happened on (where the process ran, the file lives, the user logged on).
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
    #[serde(deny_unknown_fields)]
    pub struct Host {
        /// Host name as reported (short name or FQDN). ECS host.hostname and host.name; OCSF
        /// device.hostname; CEF dhost (or shost for outbound network events).
        pub hostname: String,
        /// Stable unique id of the host (agent or CMDB id). ECS host.id; OCSF device.uid; CEF cs3
        /// with cs3Label=hostId.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub id: Option<String>,
        /// IP addresses of the host (IPv4 or IPv6 text). ECS host.ip; OCSF device.ip (first); CEF
        /// dvc (first).
        #[serde(default)]
        pub ip: Vec<String>,
        /// MAC address of the host's primary interface, six hex octets separated by - or :. ECS
        /// host.mac; OCSF device.mac; CEF dvcmac.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub mac: Option<String>,
        /// Kind of device; null maps to OCSF device.type_id 0 Unknown. ECS host.type; OCSF
        /// device.type_id / type.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub r#type: Option<HostType>,
        /// Operating system family. ECS host.os.type; OCSF device.os.type_id / type.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub os_type: Option<OsType>,
        /// Operating system name, e.g. Windows Server 2022, Ubuntu. ECS host.os.name; OCSF
        /// device.os.name.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub os_name: Option<String>,
        /// Operating system version, e.g. 10.0.20348, 24.04. ECS host.os.version; OCSF
        /// device.os.version.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub os_version: Option<String>,
    }
}

avro_record! {
    /// The product that reported the event (the log source), not the host it ran on.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
    #[serde(deny_unknown_fields)]
    pub struct Product {
        /// Vendor of the reporting product, e.g. Microsoft. ECS observer.vendor; OCSF
        /// metadata.product.vendor_name; CEF Device Vendor header.
        pub vendor: String,
        /// Name of the reporting product, e.g. Windows Security Auditing, Sysmon, Suricata. ECS
        /// observer.product; OCSF metadata.product.name; CEF Device Product header.
        pub name: String,
        /// Version of the reporting product. ECS observer.version; OCSF metadata.product.version;
        /// CEF Device Version header (empty when null).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub version: Option<String>,
    }
}
