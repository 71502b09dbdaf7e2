//! What sinks read from inside a payload for routing and metadata: the normalised severity and
//! the host name, in every payload format (ECS, OCSF, canonical JSON, CEF).
//!
//! The mappings follow the canonical schema (`schemas/security_event.v1.avsc`, `Severity`):
//! ECS `event.severity` info 1, low 21, medium 47, high 73, critical 99; OCSF `severity_id` 1–5
//! (6 fatal counts as critical); CEF header severity info 1, low 3, medium 5, high 8,
//! critical 10. Values between those points fall to the level below, so a producer's own scale
//! (e.g. ECS 60) still lands somewhere sensible.

use serde::Deserialize;
use serde_json::Value;

use super::PayloadFormat;

/// Normalised severity of an event, ordered from `info` (lowest) to `critical`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Informational.
    Info,
    /// Low.
    Low,
    /// Medium.
    Medium,
    /// High.
    High,
    /// Critical (OCSF fatal included).
    Critical,
}

impl Severity {
    /// Lower-case name: `info`, `low`, `medium`, `high`, `critical`.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }

    /// Reads a severity name as products write it (case-insensitive): the canonical names,
    /// OCSF captions (`Informational`, `Fatal`) and ArcSight's `Very-High`.
    pub fn from_name(name: &str) -> Option<Severity> {
        match name.trim().to_ascii_lowercase().as_str() {
            "info" | "informational" => Some(Severity::Info),
            "low" => Some(Severity::Low),
            "medium" => Some(Severity::Medium),
            "high" => Some(Severity::High),
            "critical" | "fatal" | "very-high" | "very high" => Some(Severity::Critical),
            _ => None,
        }
    }

    fn from_ecs(n: f64) -> Option<Severity> {
        if !n.is_finite() || n < 0.0 {
            return None;
        }
        Some(if n >= 99.0 {
            Severity::Critical
        } else if n >= 73.0 {
            Severity::High
        } else if n >= 47.0 {
            Severity::Medium
        } else if n >= 21.0 {
            Severity::Low
        } else {
            Severity::Info
        })
    }

    fn from_ocsf_id(id: i64) -> Option<Severity> {
        match id {
            1 => Some(Severity::Info),
            2 => Some(Severity::Low),
            3 => Some(Severity::Medium),
            4 => Some(Severity::High),
            5 | 6 => Some(Severity::Critical),
            // 0 Unknown, 99 Other: the caption may still say something.
            _ => None,
        }
    }

    fn from_cef(n: i64) -> Option<Severity> {
        match n {
            0 | 1 => Some(Severity::Info),
            2 | 3 => Some(Severity::Low),
            4..=6 => Some(Severity::Medium),
            7 | 8 => Some(Severity::High),
            9 | 10 => Some(Severity::Critical),
            _ => None,
        }
    }
}

/// The severity of a JSON payload (`doc` is the parsed payload, `format` says which schema).
pub fn json_severity(format: PayloadFormat, doc: &Value) -> Option<Severity> {
    match format {
        PayloadFormat::Ecs => doc
            .pointer("/event/severity")
            .and_then(Value::as_f64)
            .and_then(Severity::from_ecs),
        PayloadFormat::Ocsf => doc
            .get("severity_id")
            .and_then(Value::as_i64)
            .and_then(Severity::from_ocsf_id)
            .or_else(|| {
                doc.get("severity")
                    .and_then(Value::as_str)
                    .and_then(Severity::from_name)
            }),
        PayloadFormat::Canonical => doc
            .get("severity")
            .and_then(Value::as_str)
            .and_then(Severity::from_name),
        PayloadFormat::Cef => None,
    }
}

/// The host name of a JSON payload: ECS `host.name` (else `host.hostname`), OCSF
/// `device.hostname` (else `device.name`), canonical `host.hostname`. Empty names count as none.
pub fn json_hostname(format: PayloadFormat, doc: &Value) -> Option<&str> {
    let pointers: &[&str] = match format {
        PayloadFormat::Ecs => &["/host/name", "/host/hostname"],
        PayloadFormat::Ocsf => &["/device/hostname", "/device/name"],
        PayloadFormat::Canonical => &["/host/hostname"],
        PayloadFormat::Cef => &[],
    };
    pointers
        .iter()
        .filter_map(|p| doc.pointer(p).and_then(Value::as_str))
        .map(str::trim)
        .find(|s| !s.is_empty())
}

/// The header fields of a CEF line (`CEF:Version|Vendor|Product|Version|SignatureID|Name|
/// Severity|`), unescaped, and the extension after the seventh unescaped `|`. `None` when the
/// line is not CEF. A syslog prefix before `CEF:` is skipped.
pub fn cef_header(line: &str) -> Option<(Vec<String>, &str)> {
    let start = line.find("CEF:")?;
    let body = &line[start..];
    let mut fields = Vec::with_capacity(7);
    let mut current = String::new();
    let mut chars = body.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some((_, e @ ('|' | '\\'))) => current.push(e),
                Some((_, other)) => {
                    current.push('\\');
                    current.push(other);
                }
                None => current.push('\\'),
            },
            '|' => {
                fields.push(std::mem::take(&mut current));
                if fields.len() == 7 {
                    return Some((fields, &body[i + 1..]));
                }
            }
            _ => current.push(c),
        }
    }
    None
}

/// The severity in a CEF line's header: a number 0–10 or a name (`Low`, `Medium`, `High`,
/// `Very-High`).
pub fn cef_severity(line: &str) -> Option<Severity> {
    let (header, _) = cef_header(line)?;
    let raw = header.get(6)?.trim();
    match raw.parse::<i64>() {
        Ok(n) => Severity::from_cef(n),
        Err(_) => Severity::from_name(raw),
    }
}

/// The value of extension key `key` in a CEF line, unescaped (`\=`, `\\`, `\n`, `\r`). The value
/// runs to the next ` otherkey=` or the end of the line.
pub fn cef_extension(line: &str, key: &str) -> Option<String> {
    let (_, ext) = cef_header(line)?;
    let tokens: Vec<&str> = ext.split(' ').collect();
    let starts_key = |t: &str| -> Option<usize> {
        // `name=` with an unescaped `=`, name made of the characters CEF keys use.
        let eq = t.find('=')?;
        let name = &t[..eq];
        let ok = !name.is_empty()
            && !name.ends_with('\\')
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '[' | ']'));
        ok.then_some(eq)
    };
    let mut i = 0;
    while i < tokens.len() {
        let t = tokens[i];
        if let Some(eq) = starts_key(t) {
            if &t[..eq] == key {
                let mut value = t[eq + 1..].to_string();
                let mut j = i + 1;
                while j < tokens.len() && starts_key(tokens[j]).is_none() {
                    value.push(' ');
                    value.push_str(tokens[j]);
                    j += 1;
                }
                return Some(unescape_cef_value(value.trim_end()));
            }
        }
        i += 1;
    }
    None
}

fn unescape_cef_value(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    let mut chars = v.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('=') => out.push('='),
            Some('\\') => out.push('\\'),
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some(other) => {
                out.push('\\');
                out.push(other);
            }
            None => out.push('\\'),
        }
    }
    out
}

/// The host name of a CEF line: `dvchost`, the device the event happened on (secflow's CEF
/// writes the canonical `host.hostname` there). `shost` and `dhost` name the two ends of a
/// connection, not the reporting host, so they are not used.
pub fn cef_hostname(line: &str) -> Option<String> {
    cef_extension(line, "dvchost").filter(|h| !h.trim().is_empty())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    const CEF: &str = r"CEF:0|Elastic|Elastic Defend|8.17.3|c9f8|Suspicious \| PowerShell|8|rt=1741950943000 msg=Office app a\=b spawned it dvchost=ws-fin-042.corp.example.com dvc=192.0.2.42 cs6Label=commandLine cs6=powershell.exe -Enc SQB\=";

    #[test]
    fn severity_per_format() {
        assert_eq!(
            json_severity(PayloadFormat::Ecs, &json!({"event": {"severity": 73}})),
            Some(Severity::High)
        );
        assert_eq!(
            json_severity(PayloadFormat::Ecs, &json!({"event": {"severity": 60}})),
            Some(Severity::Medium)
        );
        assert_eq!(
            json_severity(PayloadFormat::Ecs, &json!({"event": {"severity": 1}})),
            Some(Severity::Info)
        );
        assert_eq!(
            json_severity(PayloadFormat::Ecs, &json!({"event": {"severity": "x"}})),
            None
        );
        assert_eq!(
            json_severity(PayloadFormat::Ocsf, &json!({"severity_id": 6})),
            Some(Severity::Critical)
        );
        assert_eq!(
            json_severity(
                PayloadFormat::Ocsf,
                &json!({"severity_id": 99, "severity": "Low"})
            ),
            Some(Severity::Low)
        );
        assert_eq!(
            json_severity(PayloadFormat::Canonical, &json!({"severity": "medium"})),
            Some(Severity::Medium)
        );
        assert_eq!(cef_severity(CEF), Some(Severity::High));
        assert_eq!(
            cef_severity("CEF:0|a|b|1|x|n|Very-High|"),
            Some(Severity::Critical)
        );
        assert_eq!(cef_severity("CEF:0|a|b|1|x|n|11|"), None);
        assert_eq!(cef_severity("not cef"), None);
        assert!(Severity::Critical > Severity::High && Severity::Low > Severity::Info);
    }

    #[test]
    fn hostnames_per_format() {
        let ecs = json!({"host": {"hostname": "short", "name": "fqdn.example"}});
        assert_eq!(
            json_hostname(PayloadFormat::Ecs, &ecs),
            Some("fqdn.example")
        );
        let ocsf = json!({"device": {"hostname": " ", "name": "dev1"}});
        assert_eq!(json_hostname(PayloadFormat::Ocsf, &ocsf), Some("dev1"));
        assert_eq!(
            json_hostname(PayloadFormat::Canonical, &json!({"host": null})),
            None
        );
        assert_eq!(
            cef_hostname(CEF).as_deref(),
            Some("ws-fin-042.corp.example.com")
        );
        assert_eq!(cef_hostname("CEF:0|a|b|1|x|n|3|src=1.2.3.4"), None);
    }

    #[test]
    fn cef_header_and_extension_unescape() {
        let (header, ext) = cef_header(CEF).unwrap();
        assert_eq!(header[5], "Suspicious | PowerShell");
        assert!(ext.starts_with("rt="));
        assert_eq!(
            cef_extension(CEF, "msg").as_deref(),
            Some("Office app a=b spawned it")
        );
        assert_eq!(
            cef_extension(CEF, "cs6").as_deref(),
            Some("powershell.exe -Enc SQB=")
        );
        assert_eq!(cef_extension(CEF, "nope"), None);
        // A syslog prefix is skipped; truncated lines are not CEF.
        assert_eq!(
            cef_severity("<134>Mar 14 11:15:43 host CEF:0|a|b|1|x|n|5|k=v"),
            Some(Severity::Medium)
        );
        assert_eq!(cef_header("CEF:0|a|b"), None);
    }

    #[test]
    fn severity_names_deserialize_in_snake_case() {
        let s: Severity = serde_json::from_str(r#""high""#).unwrap();
        assert_eq!(s, Severity::High);
        assert!(serde_json::from_str::<Severity>(r#""High""#).is_err());
        assert_eq!(Severity::from_name("Informational"), Some(Severity::Info));
    }
}
