//! Field templates: text with `{placeholders}` filled from an event's fields, for dedup keys,
//! aliases, summaries, links.
//!
//! # Syntax
//!
//! - `{path}` is replaced by the event's value at `path` ([`AlertEvent::field`]): a payload
//!   path such as `{rule.id}`, `{host.name}`, `{finding_info.title}`, a CEF key such as
//!   `{dvchost}`, or one of secflow's normalised values, the same in every format:
//!   `{secflow.tenant}`, `{secflow.event_id}`, `{secflow.format}`, `{secflow.severity}`,
//!   `{secflow.host}`, `{secflow.rule_id}`, `{secflow.rule_name}`, `{secflow.message}`,
//!   `{secflow.status}`, `{secflow.time}`.
//! - `{a|b|'text'}` tries the alternatives in order and takes the first with a value; a quoted
//!   alternative (`'…'`) is literal text, e.g. `{host.name|'unknown host'}`.
//! - A placeholder with no value renders as nothing.
//! - `{{` and `}}` are literal braces.
//!
//! Values have control characters replaced by spaces. In link `href`s, values are
//! percent-encoded ([`FieldTemplate::render_url`]).

use super::event::{AlertEvent, SECFLOW_FIELDS};

/// A parsed field template; see the module documentation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldTemplate {
    source: String,
    parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Lit(String),
    Field(Vec<Alternative>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Alternative {
    Path(String),
    Lit(String),
}

impl FieldTemplate {
    /// Parses `template`.
    ///
    /// # Errors
    /// An unclosed or unmatched brace, an empty placeholder or alternative, an unknown
    /// `secflow.` name, an unclosed quote, or a control character.
    pub fn parse(template: &str) -> Result<Self, String> {
        let err = |m: String| Err(format!("template `{template}`: {m}"));
        if template.chars().any(char::is_control) {
            return err("control characters are not allowed".to_string());
        }
        let mut parts = Vec::new();
        let mut lit = String::new();
        let mut chars = template.char_indices().peekable();
        while let Some((i, c)) = chars.next() {
            match c {
                '{' if chars.peek().map(|(_, n)| *n) == Some('{') => {
                    chars.next();
                    lit.push('{');
                }
                '}' if chars.peek().map(|(_, n)| *n) == Some('}') => {
                    chars.next();
                    lit.push('}');
                }
                '}' => return err("unmatched `}` (write `}}` for a literal brace)".to_string()),
                '{' => {
                    let rest = &template[i + 1..];
                    let Some(end) = closing_brace(rest) else {
                        return err("unclosed `{`".to_string());
                    };
                    let inner = &rest[..end];
                    let alternatives = match parse_alternatives(inner) {
                        Ok(a) => a,
                        Err(m) => return err(m),
                    };
                    if !lit.is_empty() {
                        parts.push(Part::Lit(std::mem::take(&mut lit)));
                    }
                    parts.push(Part::Field(alternatives));
                    // Skip the placeholder's characters and its closing brace.
                    let stop = i + 1 + end;
                    while chars.peek().is_some_and(|(j, _)| *j <= stop) {
                        chars.next();
                    }
                }
                _ => lit.push(c),
            }
        }
        if !lit.is_empty() {
            parts.push(Part::Lit(lit));
        }
        Ok(FieldTemplate {
            source: template.to_string(),
            parts,
        })
    }

    /// The template as written.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// Whether the template has no placeholder (a constant).
    pub fn is_constant(&self) -> bool {
        self.parts.iter().all(|p| matches!(p, Part::Lit(_)))
    }

    /// The text for `event`, trimmed.
    pub fn render(&self, event: &AlertEvent<'_>) -> String {
        self.render_with(event, |v, out| out.push_str(v))
    }

    /// The text for `event` with each value percent-encoded (RFC 3986 unreserved characters
    /// kept), for URLs.
    pub fn render_url(&self, event: &AlertEvent<'_>) -> String {
        self.render_with(event, |v, out| out.push_str(&percent_encode(v)))
    }

    fn render_with(&self, event: &AlertEvent<'_>, push: impl Fn(&str, &mut String)) -> String {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Lit(s) => out.push_str(s),
                Part::Field(alternatives) => {
                    let value = alternatives.iter().find_map(|a| match a {
                        Alternative::Path(p) => event.field(p),
                        Alternative::Lit(s) => Some(s.clone()),
                    });
                    if let Some(v) = value {
                        let clean: String = v
                            .chars()
                            .map(|c| if c.is_control() { ' ' } else { c })
                            .collect();
                        push(&clean, &mut out);
                    }
                }
            }
        }
        out.trim().to_string()
    }
}

/// Index of the `}` closing a placeholder that starts right after a `{`, skipping quoted text.
fn closing_brace(rest: &str) -> Option<usize> {
    let mut quoted = false;
    for (i, c) in rest.char_indices() {
        match c {
            '\'' => quoted = !quoted,
            '}' if !quoted => return Some(i),
            _ => {}
        }
    }
    None
}

fn parse_alternatives(inner: &str) -> Result<Vec<Alternative>, String> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut quoted = false;
    let mut was_quoted = false;
    let finish = |current: &mut String, was_quoted: &mut bool, out: &mut Vec<Alternative>| {
        let text = std::mem::take(current);
        if std::mem::take(was_quoted) {
            out.push(Alternative::Lit(text));
            return Ok(());
        }
        let path = text.trim();
        if path.is_empty() {
            return Err("empty placeholder or alternative".to_string());
        }
        if path.split('.').any(|s| s.trim().is_empty()) || path.contains(char::is_whitespace) {
            return Err(format!("`{path}` is not a field path"));
        }
        if let Some(name) = path.strip_prefix("secflow.") {
            if !SECFLOW_FIELDS.contains(&name) {
                return Err(format!(
                    "unknown `secflow.{name}` (known: {})",
                    SECFLOW_FIELDS
                        .iter()
                        .map(|n| format!("secflow.{n}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
        }
        out.push(Alternative::Path(path.to_string()));
        Ok(())
    };
    for c in inner.chars() {
        match c {
            '\'' if quoted => quoted = false,
            '\'' => {
                if !current.trim().is_empty() {
                    return Err(format!("a quote in the middle of `{inner}`"));
                }
                current.clear();
                quoted = true;
                was_quoted = true;
            }
            '|' if !quoted => finish(&mut current, &mut was_quoted, &mut out)?,
            _ if was_quoted && !quoted => {
                if !c.is_whitespace() {
                    return Err(format!("text after a closing quote in `{inner}`"));
                }
            }
            _ => current.push(c),
        }
    }
    if quoted {
        return Err(format!("unclosed quote in `{inner}`"));
    }
    finish(&mut current, &mut was_quoted, &mut out)?;
    Ok(out)
}

/// Percent-encodes everything but RFC 3986 unreserved characters (`A-Z a-z 0-9 - . _ ~`).
pub fn percent_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
