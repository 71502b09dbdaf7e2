//! [`PrivacyRules::check`]: everything wrong with a `privacy:` section, before any event sees it.

use std::sync::OnceLock;

use super::config::{PrivacyMode, PrivacyRule, PrivacyRules};
use super::fields::{resolve, suggest, within, Class, Presence, Resolved, RAW};
use super::Issue;
use crate::event::{EventError, SecurityEvent};

/// A valid event with every field of the schema present (every optional group, every list with an
/// element, a label). A `replace` value is tried on it: the event gate decides whether the value
/// is valid for the field, so the check can never disagree with it.
const PROBE_EVENT: &str = r#"{
  "event_id": "probe-1",
  "event_time": 1700000000000,
  "observed_time": 1700000000001,
  "tenant": "probe",
  "kind": "event",
  "category": "process",
  "activity": "launch",
  "action": "process_started",
  "outcome": "success",
  "severity": "info",
  "disposition": "allowed",
  "message": "probe",
  "product": {"vendor": "probe", "name": "probe", "version": "1"},
  "host": {"hostname": "host-1", "id": "h-1", "ip": ["192.0.2.1"], "mac": "00:00:5e:00:53:01",
           "type": "server", "os_type": "linux", "os_name": "Linux", "os_version": "6"},
  "user": {"name": "u", "id": "1", "domain": "D", "email": "u@example.com"},
  "target_user": {"name": "t", "id": "2", "domain": "D", "email": "t@example.com"},
  "auth": {"protocol": "kerberos", "logon_type": "network", "mfa": true, "service": "sshd"},
  "process": {"pid": 2, "entity_id": "p-2", "name": "sh", "executable": "/bin/sh",
              "command_line": "sh -c x", "user": "root",
              "sha256": "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
              "start_time": 1700000000000, "exit_code": 0,
              "parent": {"pid": 1, "entity_id": "p-1", "name": "init", "executable": "/sbin/init",
                         "command_line": "init"}},
  "file": {"path": "/tmp/f", "name": "f", "directory": "/tmp", "type": "file", "size": 1,
           "md5": "d41d8cd98f00b204e9800998ecf8427e",
           "sha1": "da39a3ee5e6b4b0d3255bfef95601890afd80709",
           "sha256": "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
           "mime_type": "text/plain"},
  "network": {"src_ip": "192.0.2.1", "src_port": 1, "src_hostname": "a", "dst_ip": "192.0.2.2",
              "dst_port": 2, "dst_hostname": "b", "transport": "tcp", "protocol": "ssh",
              "direction": "outbound", "bytes_in": 1, "bytes_out": 1, "packets": 1},
  "dns": {"query": "example.com", "query_type": "A", "rcode": "NOERROR",
          "answers": [{"data": "192.0.2.3", "type": "A", "ttl": 1}]},
  "http": {"method": "GET", "url": "https://example.com/", "status": 200, "version": "1.1",
           "user_agent": "ua", "referrer": "r", "request_bytes": 1, "response_bytes": 1},
  "email": {"from": "a@example.com", "to": ["b@example.com"], "cc": ["c@example.com"],
            "subject": "s", "message_id": "m",
            "attachments": [{"name": "n", "size": 1, "mime_type": "text/plain",
              "sha256": "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"}]},
  "rule": {"id": "r", "name": "r", "description": "d", "ruleset": "s", "version": "1",
           "reference": "https://example.com/r"},
  "mitre": {"tactics": [{"id": "TA0002", "name": "Execution"}],
            "techniques": [{"id": "T1059", "name": "C", "tactic_ids": ["TA0002"],
                            "subtechnique": {"id": "T1059.001", "name": "PowerShell"}}]},
  "malware": {"name": "m", "family": "f", "classifications": ["trojan"]},
  "labels": {"env": "prod"},
  "tags": ["t"],
  "enrichments": [{"indicator_id": "indicator--1", "ioc_type": "ipv4-addr",
                   "ioc_value": "192.0.2.1", "matched_field": "network.src_ip", "confidence": 1,
                   "tlp": "green", "valid_until": 1700000000000, "provider": "p"}],
  "raw": "raw"
}"#;

/// The probe event, parsed once.
pub(crate) fn probe_event() -> Result<&'static SecurityEvent, &'static str> {
    static EVENT: OnceLock<Result<SecurityEvent, String>> = OnceLock::new();
    EVENT
        .get_or_init(|| SecurityEvent::from_json(PROBE_EVENT).map_err(|e| e.to_string()))
        .as_ref()
        .map_err(String::as_str)
}

/// `Err(reason)` if writing `value` into `target` of a valid event makes the event gate refuse it.
fn probe_replace(target: Resolved<'_>, value: &str) -> Result<(), String> {
    let mut event = probe_event()
        .map_err(|e| format!("internal error: the probe event is invalid: {e}"))?
        .clone();
    match target {
        Resolved::Field(f) => {
            if let Some(visit) = f.visit {
                visit(&mut event, &mut |slot| {
                    slot.for_each_str(&mut |s| {
                        s.clear();
                        s.push_str(value);
                    })
                });
            }
        }
        Resolved::Label(key) => {
            event.labels.insert(key.to_owned(), value.to_owned());
        }
    }
    match event.validate() {
        Ok(()) => Ok(()),
        Err(EventError::Invalid { reason, .. }) => Err(reason),
        Err(e) => Err(e.to_string()),
    }
}

/// The message for a path that is not a field of the canonical event.
fn unknown(path: &str) -> String {
    let mut msg = format!("`{path}` is not a canonical field path");
    if let Some(s) = suggest(path) {
        msg.push_str(&format!("; did you mean `{s}`?"));
    } else {
        msg.push_str(" (e.g. `user.name`, `process.parent.command_line`, `labels.env`)");
    }
    msg
}

/// `(class, presence)` of a resolved path.
fn traits(target: Resolved<'_>) -> (Class, Presence) {
    match target {
        Resolved::Field(f) => (f.class, f.presence),
        Resolved::Label(_) => (Class::Text, Presence::Optional),
    }
}

/// "; allowed here: mask, hash, replace" — or that nothing is.
fn allowed_hint(path: &str, class: Class, presence: Presence) -> String {
    let mut actions: Vec<&str> = Vec::new();
    if presence == Presence::Optional && path != RAW {
        actions.push("drop");
    }
    actions.extend_from_slice(class.rewrites());
    if actions.is_empty() {
        "; no privacy action applies to it".to_owned()
    } else {
        format!("; allowed here: {}", actions.join(", "))
    }
}

impl PrivacyRules {
    /// Everything wrong with these rules, as `(index, path in the config, message)`, in config
    /// order; empty when the rules are valid.
    ///
    /// The path is relative to the `privacy:` section and names the offending key:
    /// `rules[2].field`, `rules[2].with`, `allow[0]` or `allow`. The index is the position in the
    /// list the path names (`rules` or `allow`), 0 for `allow` as a whole.
    ///
    /// Refused: unknown field paths (with a suggestion for typos); `drop` of a field the schema
    /// requires, or one the event gate requires for some events (a group a category needs, the
    /// network endpoints, `process.pid` / `entity_id`, e-mail recipients...); `mask`, `hash` and
    /// `replace` on values that are not text (numbers, times, enums, groups); `mask` and `hash`
    /// on values with a checked syntax (IP and MAC addresses, hashes, URLs, e-mail addresses,
    /// mnemonics), where only `replace` with a valid value applies; a `replace` value the event
    /// gate would refuse for the field; two rules on one field, or on a group and a field inside
    /// it; a rule on `raw` without `keep_raw: true`; `allow` outside `allow_list` mode, unknown
    /// or repeated `allow` entries, and `raw` in `allow`. Applying valid rules to a valid event
    /// always leaves it valid.
    pub fn check(&self) -> Vec<Issue> {
        let mut out: Vec<Issue> = Vec::new();

        if self.mode == PrivacyMode::DenyList && !self.allow.is_empty() {
            out.push((
                0,
                "allow".to_owned(),
                "`allow` is only read in `mode: allow_list`; set the mode or remove the list"
                    .to_owned(),
            ));
        }
        for (i, path) in self.allow.iter().enumerate() {
            let at = format!("allow[{i}]");
            if path == RAW {
                out.push((
                    i,
                    at,
                    "`raw` is kept by `keep_raw: true`, not by `allow`".to_owned(),
                ));
            } else if resolve(path).is_none() {
                out.push((i, at, unknown(path)));
            } else if let Some(j) = self.allow[..i].iter().position(|p| p == path) {
                out.push((i, at, format!("`{path}` is already listed (allow[{j}])")));
            }
        }

        for (i, rule) in self.rules.iter().enumerate() {
            let path = rule.field();
            let action = rule.action();
            let at = format!("rules[{i}].field");
            let Some(target) = resolve(path) else {
                out.push((i, at, unknown(path)));
                continue;
            };
            let earlier = self.rules[..i]
                .iter()
                .enumerate()
                .find(|(_, r)| within(path, r.field()) || within(r.field(), path));
            if let Some((j, other)) = earlier {
                let msg = if other.field() == path {
                    format!("`{path}` already has a rule (rules[{j}]); one rule per field")
                } else {
                    format!(
                        "`{path}` overlaps rules[{j}] on `{}`; one rule per field, and none on a \
                         group and a field inside it",
                        other.field()
                    )
                };
                out.push((i, at, msg));
                continue;
            }
            if path == RAW {
                let msg = if !self.keep_raw {
                    Some("`raw` is dropped unless `keep_raw: true`, so this rule would never apply")
                } else if matches!(rule, PrivacyRule::Drop(_)) {
                    Some("drop `raw` by leaving `keep_raw` off")
                } else {
                    None
                };
                if let Some(msg) = msg {
                    out.push((i, at, msg.to_owned()));
                    continue;
                }
            }
            let (class, presence) = traits(target);
            match rule {
                PrivacyRule::Drop(_) => {
                    let msg = match presence {
                        Presence::Optional => None,
                        Presence::Required => {
                            let mut m = format!("`{path}` is required by the schema");
                            if let Some((group, _)) = path.rsplit_once('.') {
                                m.push_str(&format!(" in `{group}`"));
                            }
                            m.push_str(" and cannot be dropped");
                            Some(m)
                        }
                        Presence::Gate(reason) => {
                            Some(format!("`{path}` cannot be dropped: {reason}"))
                        }
                    };
                    if let Some(mut m) = msg {
                        m.push_str(&allowed_hint(path, class, presence));
                        out.push((i, at, m));
                    }
                }
                PrivacyRule::Mask(_) | PrivacyRule::Hash(_) | PrivacyRule::Replace(_) => {
                    if !class.rewrites().contains(&action) {
                        let mut m = format!(
                            "`{action}` cannot apply to `{path}`: {}",
                            class.refusal(action)
                        );
                        m.push_str(&allowed_hint(path, class, presence));
                        out.push((i, at, m));
                    } else if let PrivacyRule::Replace(r) = rule {
                        if let Err(reason) = probe_replace(target, &r.with) {
                            out.push((
                                i,
                                format!("rules[{i}].with"),
                                format!("`{}` is not a valid value for `{path}`: {reason}", r.with),
                            ));
                        }
                    }
                }
            }
        }
        out
    }
}
