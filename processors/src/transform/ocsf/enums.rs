//! OCSF 1.8.0 enum ids and their captions for every canonical enum the transform maps.
//!
//! The captions are the `caption` of each enum value in the compiled OCSF 1.8.0 schema; the
//! integration test checks every `*_id` / caption pair the transform writes against
//! `shared/validation/ocsf/compiled.json`, so a typo here fails the build's tests.

use crate::event::{
    Activity, AuthProtocol, Direction, Disposition, EventCategory, FileType, HostType, LogonType,
    MalwareClass, OsType, Outcome, Severity,
};

/// An OCSF enum value: the integer id and its caption (the `*_name` / sibling string).
pub(super) type Id = (i64, &'static str);

/// The OCSF event classes secflow emits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Class {
    /// Detection Finding (2004): every `kind=alert`.
    DetectionFinding,
    /// Network Activity (4001).
    NetworkActivity,
    /// HTTP Activity (4002).
    HttpActivity,
    /// DNS Activity (4003).
    DnsActivity,
    /// Email Activity (4009).
    EmailActivity,
    /// Authentication (3002).
    Authentication,
    /// Process Activity (1007).
    ProcessActivity,
    /// File System Activity (1001).
    FileActivity,
}

impl Class {
    /// `class_uid` and `class_name`.
    pub(super) fn id(self) -> Id {
        match self {
            Class::DetectionFinding => (2004, "Detection Finding"),
            Class::NetworkActivity => (4001, "Network Activity"),
            Class::HttpActivity => (4002, "HTTP Activity"),
            Class::DnsActivity => (4003, "DNS Activity"),
            Class::EmailActivity => (4009, "Email Activity"),
            Class::Authentication => (3002, "Authentication"),
            Class::ProcessActivity => (1007, "Process Activity"),
            Class::FileActivity => (1001, "File System Activity"),
        }
    }

    /// `category_uid` and `category_name`.
    pub(super) fn category(self) -> Id {
        match self {
            Class::ProcessActivity | Class::FileActivity => (1, "System Activity"),
            Class::DetectionFinding => (2, "Findings"),
            Class::Authentication => (3, "Identity & Access Management"),
            Class::NetworkActivity
            | Class::HttpActivity
            | Class::DnsActivity
            | Class::EmailActivity => (4, "Network Activity"),
        }
    }

    /// Whether `device` and `actor` exist only under the `host` profile in this class.
    pub(super) fn device_needs_host_profile(self) -> bool {
        matches!(
            self,
            Class::NetworkActivity
                | Class::HttpActivity
                | Class::DnsActivity
                | Class::EmailActivity
                | Class::Authentication
        )
    }

    /// `activity_id` and `activity_name` of a canonical activity in this class; `None` if the
    /// class has no such activity (the producer gate never lets such an event through).
    pub(super) fn activity(self, a: Activity) -> Option<Id> {
        use Activity as A;
        match a {
            A::Unknown => return Some((0, "Unknown")),
            A::Other => return Some((99, "Other")),
            _ => {}
        }
        Some(match (self, a) {
            (Class::DetectionFinding, A::Create) => (1, "Create"),
            (Class::DetectionFinding, A::Update) => (2, "Update"),
            (Class::DetectionFinding, A::Close) => (3, "Close"),

            (Class::Authentication, A::Logon) => (1, "Logon"),
            (Class::Authentication, A::Logoff) => (2, "Logoff"),
            (Class::Authentication, A::AuthenticationTicket) => (3, "Authentication Ticket"),
            (Class::Authentication, A::ServiceTicketRequest) => (4, "Service Ticket Request"),
            (Class::Authentication, A::ServiceTicketRenew) => (5, "Service Ticket Renew"),
            (Class::Authentication, A::Preauth) => (6, "Preauth"),
            (Class::Authentication, A::AccountSwitch) => (7, "Account Switch"),

            (Class::ProcessActivity, A::Launch) => (1, "Launch"),
            (Class::ProcessActivity, A::Terminate) => (2, "Terminate"),
            (Class::ProcessActivity, A::Open) => (3, "Open"),
            (Class::ProcessActivity, A::Inject) => (4, "Inject"),
            (Class::ProcessActivity, A::SetUserId) => (5, "Set User ID"),

            (Class::FileActivity, A::Create) => (1, "Create"),
            (Class::FileActivity, A::Read) => (2, "Read"),
            (Class::FileActivity, A::Update) => (3, "Update"),
            (Class::FileActivity, A::Delete) => (4, "Delete"),
            (Class::FileActivity, A::Rename) => (5, "Rename"),
            (Class::FileActivity, A::SetAttributes) => (6, "Set Attributes"),
            (Class::FileActivity, A::SetSecurity) => (7, "Set Security"),
            (Class::FileActivity, A::GetAttributes) => (8, "Get Attributes"),
            (Class::FileActivity, A::GetSecurity) => (9, "Get Security"),
            (Class::FileActivity, A::Encrypt) => (10, "Encrypt"),
            (Class::FileActivity, A::Decrypt) => (11, "Decrypt"),
            (Class::FileActivity, A::Mount) => (12, "Mount"),
            (Class::FileActivity, A::Unmount) => (13, "Unmount"),
            (Class::FileActivity, A::Open) => (14, "Open"),

            (Class::NetworkActivity, A::Open) => (1, "Open"),
            (Class::NetworkActivity, A::Close) => (2, "Close"),
            (Class::NetworkActivity, A::Reset) => (3, "Reset"),
            (Class::NetworkActivity, A::Fail) => (4, "Fail"),
            (Class::NetworkActivity, A::Refuse) => (5, "Refuse"),
            (Class::NetworkActivity, A::Traffic) => (6, "Traffic"),
            (Class::NetworkActivity, A::Listen) => (7, "Listen"),

            (Class::DnsActivity, A::Query) => (1, "Query"),
            (Class::DnsActivity, A::Response) => (2, "Response"),
            (Class::DnsActivity, A::Traffic) => (6, "Traffic"),

            (Class::HttpActivity, A::Connect) => (1, "Connect"),
            (Class::HttpActivity, A::Delete) => (2, "Delete"),
            (Class::HttpActivity, A::Get) => (3, "Get"),
            (Class::HttpActivity, A::Head) => (4, "Head"),
            (Class::HttpActivity, A::Options) => (5, "Options"),
            (Class::HttpActivity, A::Post) => (6, "Post"),
            (Class::HttpActivity, A::Put) => (7, "Put"),
            (Class::HttpActivity, A::Trace) => (8, "Trace"),
            (Class::HttpActivity, A::Patch) => (9, "Patch"),

            (Class::EmailActivity, A::Send) => (1, "Send"),
            (Class::EmailActivity, A::Receive) => (2, "Receive"),
            (Class::EmailActivity, A::Scan) => (3, "Scan"),
            (Class::EmailActivity, A::Trace) => (4, "Trace"),
            (Class::EmailActivity, A::MtaRelay) => (5, "MTA Relay"),
            _ => return None,
        })
    }
}

/// `severity_id` / `severity`.
pub(super) fn severity(s: Severity) -> Id {
    match s {
        Severity::Info => (1, "Informational"),
        Severity::Low => (2, "Low"),
        Severity::Medium => (3, "Medium"),
        Severity::High => (4, "High"),
        Severity::Critical => (5, "Critical"),
    }
}

/// `status_id` / `status` of activity classes (Success / Failure).
pub(super) fn outcome_status(o: Outcome) -> Id {
    match o {
        Outcome::Success => (1, "Success"),
        Outcome::Failure => (2, "Failure"),
        Outcome::Unknown => (0, "Unknown"),
    }
}

/// `status_id` / `status` of a Detection Finding: the finding's workflow state, not an outcome.
/// Only a newly created finding has a known state (New); after an update or a close the event
/// does not say whether it is in progress, resolved or suppressed.
pub(super) fn finding_status(a: Activity) -> Id {
    match a {
        Activity::Create => (1, "New"),
        _ => (0, "Unknown"),
    }
}

/// `disposition_id` / `disposition` (security_control profile).
pub(super) fn disposition(d: Disposition) -> Id {
    match d {
        Disposition::Allowed => (1, "Allowed"),
        Disposition::Blocked => (2, "Blocked"),
        Disposition::Quarantined => (3, "Quarantined"),
        Disposition::Isolated => (4, "Isolated"),
        Disposition::Deleted => (5, "Deleted"),
        Disposition::Dropped => (6, "Dropped"),
        Disposition::Detected => (15, "Detected"),
        Disposition::NoAction => (16, "No Action"),
        Disposition::Logged => (17, "Logged"),
        Disposition::Other => (99, "Other"),
    }
}

/// `action_id` / `action` (security_control profile). A control that only detected, logged or
/// did nothing neither allowed nor denied the activity: OCSF 1.8 calls that Observed (3).
pub(super) fn action(d: Disposition) -> Id {
    match d {
        Disposition::Allowed => (1, "Allowed"),
        Disposition::Blocked | Disposition::Dropped => (2, "Denied"),
        Disposition::Detected | Disposition::NoAction | Disposition::Logged => (3, "Observed"),
        Disposition::Quarantined | Disposition::Isolated | Disposition::Deleted => (4, "Modified"),
        Disposition::Other => (99, "Other"),
    }
}

/// `device.type_id` / `device.type`; unknown when the host does not say.
pub(super) fn host_type(t: Option<HostType>) -> Id {
    match t {
        None => (0, "Unknown"),
        Some(HostType::Server) => (1, "Server"),
        Some(HostType::Desktop) => (2, "Desktop"),
        Some(HostType::Laptop) => (3, "Laptop"),
        Some(HostType::Tablet) => (4, "Tablet"),
        Some(HostType::Mobile) => (5, "Mobile"),
        Some(HostType::Virtual) => (6, "Virtual"),
        Some(HostType::Iot) => (7, "IOT"),
        Some(HostType::Firewall) => (9, "Firewall"),
        Some(HostType::Router) => (12, "Router"),
        Some(HostType::Ids) => (13, "IDS"),
        Some(HostType::Ips) => (14, "IPS"),
        Some(HostType::LoadBalancer) => (15, "Load Balancer"),
        Some(HostType::Other) => (99, "Other"),
    }
}

/// `os.type_id` / `os.type`. OCSF has no Unix id: Unix is Other (99) with the source's own label,
/// as OCSF prescribes for Other.
pub(super) fn os_type(t: OsType) -> Id {
    match t {
        OsType::Windows => (100, "Windows"),
        OsType::Linux => (200, "Linux"),
        OsType::Android => (201, "Android"),
        OsType::Macos => (300, "macOS"),
        OsType::Ios => (301, "iOS"),
        OsType::Unix => (99, "Unix"),
        OsType::Other => (99, "Other"),
    }
}

/// `auth_protocol_id` / `auth_protocol`.
pub(super) fn auth_protocol(p: Option<AuthProtocol>) -> Id {
    match p {
        None => (0, "Unknown"),
        Some(AuthProtocol::Ntlm) => (1, "NTLM"),
        Some(AuthProtocol::Kerberos) => (2, "Kerberos"),
        Some(AuthProtocol::Digest) => (3, "Digest"),
        Some(AuthProtocol::Openid) => (4, "OpenID"),
        Some(AuthProtocol::Saml) => (5, "SAML"),
        Some(AuthProtocol::Oauth2) => (6, "OAUTH 2.0"),
        Some(AuthProtocol::Pap) => (7, "PAP"),
        Some(AuthProtocol::Chap) => (8, "CHAP"),
        Some(AuthProtocol::Eap) => (9, "EAP"),
        Some(AuthProtocol::Radius) => (10, "RADIUS"),
        Some(AuthProtocol::Basic) => (11, "Basic Authentication"),
        Some(AuthProtocol::Ldap) => (12, "LDAP"),
        Some(AuthProtocol::Other) => (99, "Other"),
    }
}

/// `logon_type_id` / `logon_type`.
pub(super) fn logon_type(t: Option<LogonType>) -> Id {
    match t {
        None => (0, "Unknown"),
        Some(LogonType::System) => (1, "System"),
        Some(LogonType::Interactive) => (2, "Interactive"),
        Some(LogonType::Network) => (3, "Network"),
        Some(LogonType::Batch) => (4, "Batch"),
        Some(LogonType::Service) => (5, "OS Service"),
        Some(LogonType::Unlock) => (7, "Unlock"),
        Some(LogonType::NetworkCleartext) => (8, "Network Cleartext"),
        Some(LogonType::NewCredentials) => (9, "New Credentials"),
        Some(LogonType::RemoteInteractive) => (10, "Remote Interactive"),
        Some(LogonType::CachedInteractive) => (11, "Cached Interactive"),
        Some(LogonType::CachedRemoteInteractive) => (12, "Cached Remote Interactive"),
        Some(LogonType::CachedUnlock) => (13, "Cached Unlock"),
        Some(LogonType::Other) => (99, "Other"),
    }
}

/// `is_remote` of a logon type: the logon came over the network (including a remote desktop
/// logon with cached credentials); `None` when the logon type says nothing about it.
pub(super) fn logon_is_remote(t: LogonType) -> Option<bool> {
    match t {
        LogonType::Network
        | LogonType::NetworkCleartext
        | LogonType::RemoteInteractive
        | LogonType::CachedRemoteInteractive => Some(true),
        LogonType::System
        | LogonType::Interactive
        | LogonType::Batch
        | LogonType::Service
        | LogonType::Unlock
        | LogonType::CachedInteractive
        | LogonType::CachedUnlock => Some(false),
        LogonType::NewCredentials | LogonType::Other => None,
    }
}

/// `file.type_id` / `file.type`.
pub(super) fn file_type(t: Option<FileType>) -> Id {
    match t {
        None => (0, "Unknown"),
        Some(FileType::File) => (1, "Regular File"),
        Some(FileType::Dir) => (2, "Folder"),
        Some(FileType::Symlink) => (7, "Symbolic Link"),
        Some(FileType::Other) => (99, "Other"),
    }
}

/// The type of a file known to be a regular file (process images, e-mail attachments).
pub(super) const REGULAR_FILE: Id = (1, "Regular File");

/// `fingerprint.algorithm_id` / `algorithm`.
pub(super) const MD5: Id = (1, "MD5");
/// SHA-1 fingerprint.
pub(super) const SHA1: Id = (2, "SHA-1");
/// SHA-256 fingerprint.
pub(super) const SHA256: Id = (3, "SHA-256");

/// `connection_info.direction_id` / `direction` (Network, HTTP, DNS classes and evidences).
pub(super) fn connection_direction(d: Option<Direction>) -> Id {
    match d {
        None | Some(Direction::Unknown) => (0, "Unknown"),
        Some(Direction::Inbound) => (1, "Inbound"),
        Some(Direction::Outbound) => (2, "Outbound"),
        Some(Direction::Internal) => (3, "Lateral"),
        Some(Direction::External) => (99, "External"),
    }
}

/// `direction_id` / `direction` of Email Activity (its own enum: 3 is Internal there).
pub(super) fn email_direction(d: Option<Direction>) -> Id {
    match d {
        None | Some(Direction::Unknown) => (0, "Unknown"),
        Some(Direction::Inbound) => (1, "Inbound"),
        Some(Direction::Outbound) => (2, "Outbound"),
        Some(Direction::Internal) => (3, "Internal"),
        Some(Direction::External) => (99, "External"),
    }
}

/// `connection_info.protocol_num` of a lowercase IANA transport keyword.
pub(super) fn protocol_num(transport: &str) -> Option<i64> {
    Some(match transport {
        "icmp" => 1,
        "igmp" => 2,
        "tcp" => 6,
        "udp" => 17,
        "gre" => 47,
        "esp" => 50,
        "ah" => 51,
        "ipv6-icmp" => 58,
        "sctp" => 132,
        _ => return None,
    })
}

/// `connection_info.protocol_ver_id` / `protocol_ver`.
pub(super) const IPV4: Id = (4, "Internet Protocol version 4 (IPv4)");
/// IPv6.
pub(super) const IPV6: Id = (6, "Internet Protocol version 6 (IPv6)");

/// `rcode_id` / `rcode` of a DNS response code mnemonic (RFC 6895 names, uppercase). Codes OCSF
/// has no id for are Other (99) with the mnemonic kept as the caption.
pub(super) fn rcode(mnemonic: &str) -> Id {
    match mnemonic {
        "NOERROR" => (0, "NoError"),
        "FORMERR" => (1, "FormError"),
        "SERVFAIL" => (2, "ServError"),
        "NXDOMAIN" => (3, "NXDomain"),
        "NOTIMP" => (4, "NotImp"),
        "REFUSED" => (5, "Refused"),
        "YXDOMAIN" => (6, "YXDomain"),
        "YXRRSET" => (7, "YXRRSet"),
        "NXRRSET" => (8, "NXRRSet"),
        "NOTAUTH" => (9, "NotAuth"),
        "NOTZONE" => (10, "NotZone"),
        "DSOTYPENI" => (11, "DSOTYPENI"),
        "BADSIG" | "BADVERS" => (16, "BADSIG_VERS"),
        "BADKEY" => (17, "BADKEY"),
        "BADTIME" => (18, "BADTIME"),
        "BADMODE" => (19, "BADMODE"),
        "BADNAME" => (20, "BADNAME"),
        "BADALG" => (21, "BADALG"),
        "BADTRUNC" => (22, "BADTRUNC"),
        "BADCOOKIE" => (23, "BADCOOKIE"),
        _ => (99, ""),
    }
}

/// `malware.classification_ids` / `classifications`.
pub(super) fn malware_class(c: MalwareClass) -> Id {
    match c {
        MalwareClass::Adware => (1, "Adware"),
        MalwareClass::Backdoor => (2, "Backdoor"),
        MalwareClass::Bot => (3, "Bot"),
        MalwareClass::Bootkit => (4, "Bootkit"),
        MalwareClass::Ddos => (5, "DDOS"),
        MalwareClass::Downloader => (6, "Downloader"),
        MalwareClass::Dropper => (7, "Dropper"),
        MalwareClass::ExploitKit => (8, "Exploit-Kit"),
        MalwareClass::Keylogger => (9, "Keylogger"),
        MalwareClass::Ransomware => (10, "Ransomware"),
        MalwareClass::RemoteAccessTrojan => (11, "Remote-Access-Trojan"),
        MalwareClass::ResourceExploitation => (13, "Resource-Exploitation"),
        MalwareClass::RogueSecuritySoftware => (14, "Rogue-Security-Software"),
        MalwareClass::Rootkit => (15, "Rootkit"),
        MalwareClass::ScreenCapture => (16, "Screen-Capture"),
        MalwareClass::Spyware => (17, "Spyware"),
        MalwareClass::Trojan => (18, "Trojan"),
        MalwareClass::Virus => (19, "Virus"),
        MalwareClass::Webshell => (20, "Webshell"),
        MalwareClass::Wiper => (21, "Wiper"),
        MalwareClass::Worm => (22, "Worm"),
        MalwareClass::Other => (99, "Other"),
    }
}

/// `finding_info.types` entry: what kind of detection the canonical category describes.
pub(super) fn finding_type(c: EventCategory) -> &'static str {
    match c {
        EventCategory::Authentication => "Authentication",
        EventCategory::Process => "Process",
        EventCategory::File => "File",
        EventCategory::Network => "Network",
        EventCategory::Dns => "DNS",
        EventCategory::Http => "HTTP",
        EventCategory::Email => "Email",
        EventCategory::Malware => "Malware",
        EventCategory::IntrusionDetection => "Intrusion Detection",
    }
}

/// `analytic.type_id` / `type` of a detection rule.
pub(super) const ANALYTIC_RULE: Id = (1, "Rule");

/// Observable `type_id` / `type` values used by the transform.
pub(super) mod observable {
    use super::Id;
    /// Hostname.
    pub(in super::super) const HOSTNAME: Id = (1, "Hostname");
    /// IP Address.
    pub(in super::super) const IP: Id = (2, "IP Address");
    /// MAC Address.
    pub(in super::super) const MAC: Id = (3, "MAC Address");
    /// User Name.
    pub(in super::super) const USER_NAME: Id = (4, "User Name");
    /// Email Address.
    pub(in super::super) const EMAIL: Id = (5, "Email Address");
    /// URL String.
    pub(in super::super) const URL: Id = (6, "URL String");
    /// File Name.
    pub(in super::super) const FILE_NAME: Id = (7, "File Name");
    /// Hash.
    pub(in super::super) const HASH: Id = (8, "Hash");
    /// Process Name.
    pub(in super::super) const PROCESS_NAME: Id = (9, "Process Name");
    /// Command Line.
    pub(in super::super) const COMMAND_LINE: Id = (13, "Command Line");
    /// HTTP User-Agent.
    pub(in super::super) const USER_AGENT: Id = (16, "HTTP User-Agent");
    /// File Path.
    pub(in super::super) const FILE_PATH: Id = (45, "File Path");
}
