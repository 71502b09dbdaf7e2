//! Reduction of a pattern to atomic IOCs (indicator values that can be matched one by one).

use std::collections::HashSet;
use std::fmt;

use serde::{Deserialize, Serialize};

use super::ast::{
    Comparison, ComparisonExpr, Literal, ObservationExpr, Operator, PathStep, Pattern, PropTest,
    Value,
};

/// Kind of an atomic IOC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IocType {
    /// `ipv4-addr:value`: an address or CIDR block, as written.
    Ipv4,
    /// `ipv6-addr:value`: an address or CIDR block, as written.
    Ipv6,
    /// `domain-name:value`, lower-cased.
    Domain,
    /// `url:value`, as written.
    Url,
    /// `email-addr:value`, as written.
    Email,
    /// `file:hashes.MD5`, lower-case hex.
    Md5,
    /// `file:hashes.'SHA-1'`, lower-case hex.
    Sha1,
    /// `file:hashes.'SHA-256'`, lower-case hex.
    Sha256,
    /// `file:hashes.'SHA-512'`, lower-case hex.
    Sha512,
}

impl IocType {
    /// The serialised name (`"ipv4"`, `"sha256"`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            IocType::Ipv4 => "ipv4",
            IocType::Ipv6 => "ipv6",
            IocType::Domain => "domain",
            IocType::Url => "url",
            IocType::Email => "email",
            IocType::Md5 => "md5",
            IocType::Sha1 => "sha1",
            IocType::Sha256 => "sha256",
            IocType::Sha512 => "sha512",
        }
    }

    /// The IOC type of a `file:hashes.<algorithm>` key, accepting the usual spellings
    /// (`MD5`, `md5`, `SHA-1`, `SHA1`, `SHA-256`, `sha256`, `SHA-512`, …). `None` for other
    /// algorithms.
    pub fn from_hash_algorithm(name: &str) -> Option<IocType> {
        let norm: String = name
            .chars()
            .filter(|c| *c != '-' && *c != '_')
            .map(|c| c.to_ascii_lowercase())
            .collect();
        match norm.as_str() {
            "md5" => Some(IocType::Md5),
            "sha1" => Some(IocType::Sha1),
            "sha256" => Some(IocType::Sha256),
            "sha512" => Some(IocType::Sha512),
            _ => None,
        }
    }

    /// Normalises a value of this type: lower-case for hashes and domains, unchanged otherwise.
    pub fn normalize(self, value: &str) -> String {
        match self {
            IocType::Domain | IocType::Md5 | IocType::Sha1 | IocType::Sha256 | IocType::Sha512 => {
                value.to_lowercase()
            }
            IocType::Ipv4 | IocType::Ipv6 | IocType::Url | IocType::Email => value.to_string(),
        }
    }
}

impl fmt::Display for IocType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One atomic indicator value.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct AtomicIoc {
    /// What kind of value it is.
    #[serde(rename = "type")]
    pub ioc_type: IocType,
    /// The normalised value (see [`IocType::normalize`]).
    pub value: String,
}

/// Result of [`reduce`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reduction {
    /// The pattern matches exactly when any of these values is observed (deduplicated,
    /// first-seen order; never empty).
    Atomic(Vec<AtomicIoc>),
    /// The pattern cannot be expressed as a list of values; the reason names the construct.
    NotJoinable(String),
}

/// Reduces a pattern to atomic IOCs.
///
/// Reducible: one observation, or observations joined by `OR` (parentheses allowed), whose
/// comparisons are joined by `OR` and are each `path = 'string'` or `path IN ('string', …)`,
/// without `NOT`, on one of `ipv4-addr:value`, `ipv6-addr:value`, `domain-name:value`,
/// `url:value`, `email-addr:value` or `file:hashes.<MD5|SHA-1|SHA-256|SHA-512>`. Anything
/// else (`AND`, `FOLLOWEDBY`, qualifiers, other operators, other paths or hash algorithms,
/// non-string values, empty strings) gives [`Reduction::NotJoinable`] with a short reason.
pub fn reduce(p: &Pattern) -> Reduction {
    let mut out = Collector::default();
    match out.observation(&p.expression) {
        Ok(()) if out.iocs.is_empty() => Reduction::NotJoinable("no values".to_string()),
        Ok(()) => Reduction::Atomic(out.iocs),
        Err(reason) => Reduction::NotJoinable(reason),
    }
}

#[derive(Default)]
struct Collector {
    iocs: Vec<AtomicIoc>,
    seen: HashSet<AtomicIoc>,
}

impl Collector {
    fn observation(&mut self, e: &ObservationExpr) -> Result<(), String> {
        match e {
            ObservationExpr::Observation(c) => self.comparison_expr(c),
            ObservationExpr::Group(inner) => self.observation(inner),
            ObservationExpr::Or(items) => items.iter().try_for_each(|i| self.observation(i)),
            ObservationExpr::And(_) => Err("observation expressions joined by AND".to_string()),
            ObservationExpr::FollowedBy(_) => {
                Err("observation expressions joined by FOLLOWEDBY".to_string())
            }
            ObservationExpr::Qualified(_, quals) => {
                let name = quals.first().map_or("a", |q| q.name());
                Err(format!("{name} qualifier"))
            }
        }
    }

    fn comparison_expr(&mut self, c: &ComparisonExpr) -> Result<(), String> {
        match c {
            ComparisonExpr::Test(PropTest::Comparison(cmp)) => self.comparison(cmp),
            ComparisonExpr::Test(PropTest::Exists(path)) => Err(format!("EXISTS {path}")),
            ComparisonExpr::Or(items) => items.iter().try_for_each(|i| self.comparison_expr(i)),
            ComparisonExpr::And(_) => Err("comparisons joined by AND".to_string()),
        }
    }

    fn comparison(&mut self, c: &Comparison) -> Result<(), String> {
        if c.negated {
            return Err(format!("NOT {} on {}", c.op.as_str(), c.path));
        }
        if !matches!(c.op, Operator::Eq | Operator::In) {
            return Err(format!("operator {} on {}", c.op.as_str(), c.path));
        }
        let ioc_type = ioc_type_of(c)?;
        match &c.value {
            Value::Literal(lit) => self.push(c, ioc_type, lit),
            Value::Set(items) if items.is_empty() => Err(format!("empty IN set on {}", c.path)),
            Value::Set(items) => items.iter().try_for_each(|lit| self.push(c, ioc_type, lit)),
        }
    }

    fn push(&mut self, c: &Comparison, ioc_type: IocType, lit: &Literal) -> Result<(), String> {
        let Some(raw) = lit.as_str() else {
            return Err(format!(
                "{} value compared with {}",
                lit.kind_name(),
                c.path
            ));
        };
        if raw.is_empty() {
            return Err(format!("empty string compared with {}", c.path));
        }
        let ioc = AtomicIoc {
            ioc_type,
            value: ioc_type.normalize(raw),
        };
        if self.seen.insert(ioc.clone()) {
            self.iocs.push(ioc);
        }
        Ok(())
    }
}

fn ioc_type_of(c: &Comparison) -> Result<IocType, String> {
    let path = &c.path;
    let keys = path.keys();
    let simple = match keys.as_deref() {
        Some(["value"]) => match path.object_type.as_str() {
            "ipv4-addr" => Some(IocType::Ipv4),
            "ipv6-addr" => Some(IocType::Ipv6),
            "domain-name" => Some(IocType::Domain),
            "url" => Some(IocType::Url),
            "email-addr" => Some(IocType::Email),
            _ => None,
        },
        Some(["hashes", algo]) if path.object_type == "file" => {
            return IocType::from_hash_algorithm(algo)
                .ok_or_else(|| format!("hash algorithm '{algo}' is not supported ({path})"));
        }
        _ => None,
    };
    simple.ok_or_else(|| {
        if path.object_type == "file"
            && matches!(path.steps.first(), Some(PathStep::Key(k)) if k == "hashes")
        {
            format!("{path} is not a single hash algorithm")
        } else {
            format!("{path} is not an atomic IOC path")
        }
    })
}
