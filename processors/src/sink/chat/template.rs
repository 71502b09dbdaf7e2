//! Text and URL templates of the chat sinks: `{rule.id}:{host.name}`,
//! `https://siem.example/alerts?id={event.id}`. Placeholders name an [`Alert`] value
//! ([`Alert::value`]).

use super::alert::Alert;

/// What a missing value renders as in text templates.
pub const UNKNOWN: &str = "unknown";

/// A parsed template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    source: String,
    parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Lit(String),
    Value(String),
}

impl Template {
    /// Parses `template`: literal text with `{name}` placeholders (names of letters, digits,
    /// `_`, `-`, `.`, `@`).
    ///
    /// # Errors
    /// Empty template, unclosed or unmatched braces, an empty or malformed placeholder name, or
    /// a control character.
    pub fn parse(template: &str) -> Result<Template, String> {
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
                Some(pos) if rest[pos..].starts_with('}') => {
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
                    let name = after[..end].trim();
                    let ok = !name.is_empty()
                        && name.chars().all(|c| {
                            c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '@')
                        });
                    if !ok {
                        return Err(format!(
                            "template `{template}`: placeholder `{{{}}}` must name a field, \
                             e.g. {{rule.id}} or {{host.name}}",
                            &after[..end]
                        ));
                    }
                    parts.push(Part::Value(name.to_string()));
                    rest = &after[end + 1..];
                }
            }
        }
        Ok(Template {
            source: template.to_string(),
            parts,
        })
    }

    /// Parses a URL template: like [`Template::parse`], and it must start with `http://` or
    /// `https://` (literally, not from a placeholder: an event must not choose where a link
    /// points).
    ///
    /// # Errors
    /// As [`Template::parse`], or not an `http(s)://` URL.
    pub fn parse_url(template: &str) -> Result<Template, String> {
        let t = Template::parse(template)?;
        let host_is_literal = match t.parts.first() {
            Some(Part::Lit(l)) => ["http://", "https://"]
                .iter()
                .any(|s| l.len() > s.len() && l.starts_with(s)),
            _ => false,
        };
        if !host_is_literal {
            return Err(format!(
                "link `{template}` must start with http:// or https:// and a host"
            ));
        }
        Ok(t)
    }

    /// The template as written.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// The text for `alert`: missing values render as [`UNKNOWN`], control characters as
    /// spaces.
    pub fn render(&self, alert: &Alert) -> String {
        let mut out = String::new();
        for p in &self.parts {
            match p {
                Part::Lit(s) => out.push_str(s),
                Part::Value(name) => {
                    let v = alert.value(name);
                    let v = v.as_deref().map(str::trim).filter(|v| !v.is_empty());
                    out.extend(v.unwrap_or(UNKNOWN).chars().map(|c| {
                        if c.is_control() {
                            ' '
                        } else {
                            c
                        }
                    }));
                }
            }
        }
        out
    }

    /// The URL for `alert`, values percent-encoded; `None` when a named value is missing.
    pub fn render_url(&self, alert: &Alert) -> Option<String> {
        let mut out = String::new();
        for p in &self.parts {
            match p {
                Part::Lit(s) => out.push_str(s),
                Part::Value(name) => {
                    let v = alert.value(name)?;
                    let v = v.trim();
                    if v.is_empty() {
                        return None;
                    }
                    percent_encode(v, &mut out);
                }
            }
        }
        Some(out)
    }
}

/// Appends `value` percent-encoded (everything but RFC 3986 unreserved characters), so a value
/// cannot add a path segment, a query parameter or a fragment.
pub fn percent_encode(value: &str, out: &mut String) {
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
}
