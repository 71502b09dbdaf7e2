//! Header value templates: `security/{tenant}/{severity}`.

/// What a template can name about one event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventMeta<'a> {
    /// The record's tenant.
    pub tenant: Option<&'a str>,
    /// The event's severity name.
    pub severity: Option<&'a str>,
    /// The payload format name.
    pub format: &'a str,
    /// The event's host name.
    pub host: Option<&'a str>,
}

/// What a placeholder with no value renders as.
pub const UNKNOWN: &str = "unknown";

/// A parsed header template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderTemplate {
    parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Lit(String),
    Tenant,
    Severity,
    Format,
    Host,
}

impl HeaderTemplate {
    /// Parses `template`.
    ///
    /// # Errors
    /// Unknown, empty or unclosed placeholders, control characters, or an empty template.
    pub fn parse(template: &str) -> Result<Self, String> {
        if template.trim().is_empty() {
            return Err("empty template".to_string());
        }
        if template.chars().any(char::is_control) {
            return Err(format!("template `{template}` has a control character"));
        }
        let mut parts = Vec::new();
        let mut rest = template;
        while !rest.is_empty() {
            match rest.find(['{', '}']) {
                None => {
                    parts.push(Part::Lit(rest.to_string()));
                    rest = "";
                }
                Some(pos) if rest.as_bytes()[pos] == b'}' => {
                    return Err(format!("template `{template}`: unmatched `}}`"));
                }
                Some(pos) => {
                    if pos > 0 {
                        parts.push(Part::Lit(rest[..pos].to_string()));
                    }
                    let after = &rest[pos + 1..];
                    let end = after
                        .find('}')
                        .ok_or_else(|| format!("template `{template}`: unclosed `{{`"))?;
                    parts.push(match &after[..end] {
                        "tenant" => Part::Tenant,
                        "severity" => Part::Severity,
                        "format" => Part::Format,
                        "host" => Part::Host,
                        other => {
                            return Err(format!(
                                "template `{template}`: unknown placeholder `{{{other}}}` \
                                 (known: {{tenant}}, {{severity}}, {{format}}, {{host}})"
                            ))
                        }
                    });
                    rest = &after[end + 1..];
                }
            }
        }
        Ok(HeaderTemplate { parts })
    }

    /// The value for one event; control characters in event values become spaces.
    pub fn render(&self, meta: &EventMeta<'_>) -> String {
        let mut out = String::new();
        for p in &self.parts {
            let value = match p {
                Part::Lit(s) => {
                    out.push_str(s);
                    continue;
                }
                Part::Tenant => meta.tenant,
                Part::Severity => meta.severity,
                Part::Format => Some(meta.format),
                Part::Host => meta.host,
            };
            let value = value.map(str::trim).filter(|v| !v.is_empty());
            out.extend(
                value
                    .unwrap_or(UNKNOWN)
                    .chars()
                    .map(|c| if c.is_control() { ' ' } else { c }),
            );
        }
        out.trim().to_string()
    }
}
