//! Index name templates: `logs-secflow.{tenant}-{yyyy.MM.dd}`.

use chrono::{DateTime, Datelike, Timelike, Utc};

/// A parsed index name template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexTemplate {
    parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Lit(String),
    Tenant,
    Format,
    Date(Vec<DatePart>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DatePart {
    Year,
    Month,
    Day,
    Hour,
    Sep(char),
}

impl IndexTemplate {
    /// Parses `template`.
    ///
    /// # Errors
    /// Unknown or unclosed placeholders, or a name Elasticsearch would refuse.
    pub fn parse(template: &str) -> Result<Self, String> {
        let mut parts = Vec::new();
        let mut rest = template;
        while !rest.is_empty() {
            match rest.find(['{', '}']) {
                None => {
                    parts.push(Part::Lit(rest.to_string()));
                    rest = "";
                }
                Some(pos) if rest.as_bytes()[pos] == b'}' => {
                    return Err(format!("index template `{template}`: unmatched `}}`"));
                }
                Some(pos) => {
                    if pos > 0 {
                        parts.push(Part::Lit(rest[..pos].to_string()));
                    }
                    let after = &rest[pos + 1..];
                    let end = after
                        .find('}')
                        .ok_or_else(|| format!("index template `{template}`: unclosed `{{`"))?;
                    parts.push(
                        placeholder(&after[..end])
                            .map_err(|e| format!("index template `{template}`: {e}"))?,
                    );
                    rest = &after[end + 1..];
                }
            }
        }
        let t = IndexTemplate { parts };
        let sample = t.render("tenant", "ecs", 0);
        validate_index_name(&sample)
            .map_err(|e| format!("index template `{template}` gives `{sample}`: {e}"))?;
        Ok(t)
    }

    /// The index name for a record (`tenant` already sanitized by [`sanitize_tenant`]).
    pub fn render(&self, tenant: &str, format: &str, time_ms: i64) -> String {
        let dt: DateTime<Utc> = DateTime::from_timestamp_millis(time_ms).unwrap_or_default();
        let mut out = String::new();
        for p in &self.parts {
            match p {
                Part::Lit(s) => out.push_str(s),
                Part::Tenant => out.push_str(tenant),
                Part::Format => out.push_str(format),
                Part::Date(dps) => {
                    for dp in dps {
                        match dp {
                            DatePart::Year => out.push_str(&format!("{:04}", dt.year())),
                            DatePart::Month => out.push_str(&format!("{:02}", dt.month())),
                            DatePart::Day => out.push_str(&format!("{:02}", dt.day())),
                            DatePart::Hour => out.push_str(&format!("{:02}", dt.hour())),
                            DatePart::Sep(c) => out.push(*c),
                        }
                    }
                }
            }
        }
        out
    }
}

fn placeholder(name: &str) -> Result<Part, String> {
    match name {
        "tenant" => return Ok(Part::Tenant),
        "format" => return Ok(Part::Format),
        _ => {}
    }
    let mut dps = Vec::new();
    let mut rest = name;
    while !rest.is_empty() {
        let (dp, len) = if rest.starts_with("yyyy") {
            (DatePart::Year, 4)
        } else if rest.starts_with("MM") {
            (DatePart::Month, 2)
        } else if rest.starts_with("dd") {
            (DatePart::Day, 2)
        } else if rest.starts_with("HH") {
            (DatePart::Hour, 2)
        } else if let Some(c @ ('.' | '-' | '_')) = rest.chars().next() {
            (DatePart::Sep(c), 1)
        } else {
            return Err(format!(
                "unknown placeholder `{{{name}}}` (known: {{tenant}}, {{format}}, dates from \
                 yyyy, MM, dd, HH and . - _)"
            ));
        };
        dps.push(dp);
        rest = &rest[len..];
    }
    if dps.iter().all(|d| matches!(d, DatePart::Sep(_))) {
        return Err("empty placeholder `{}`".to_string());
    }
    Ok(Part::Date(dps))
}

/// A tenant as it can appear in an index (and data stream namespace): lower case, characters
/// other than `a-z 0-9 _` replaced by `_`; empty → `None`.
pub fn sanitize_tenant(tenant: &str) -> Option<String> {
    let s: String = tenant
        .chars()
        .map(|c| {
            let c = c.to_ascii_lowercase();
            if c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    (!s.is_empty()).then_some(s)
}

/// Elasticsearch's rules for index and data stream names.
///
/// # Errors
/// Which rule the name breaks.
pub fn validate_index_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("empty index name".into());
    }
    if name == "." || name == ".." {
        return Err("index name cannot be `.` or `..`".into());
    }
    if name.len() > 255 {
        return Err("index name longer than 255 bytes".into());
    }
    if name.starts_with(['-', '_', '+']) {
        return Err("index name cannot start with `-`, `_` or `+`".into());
    }
    if let Some(c) = name.chars().find(|c| {
        c.is_uppercase()
            || matches!(
                c,
                '\\' | '/' | '*' | '?' | '"' | '<' | '>' | '|' | ' ' | ',' | '#' | ':'
            )
    }) {
        return Err(format!("index name contains `{c}`"));
    }
    Ok(())
}
