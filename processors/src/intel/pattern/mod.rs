//! STIX 2.1 patterning: parser, validator and atomic-IOC reducer.
//!
//! [`parse`] accepts exactly what the OASIS reference validator (`stix2patterns`
//! 2.1.2, `run_validator(.., stix_version='2.1')`) accepts:
//!
//! - the ANTLR grammar `STIXPattern.g4`: observation expressions `[ … ]` combined with `AND`,
//!   `OR` and `FOLLOWEDBY` (`AND` binds tightest, `FOLLOWEDBY` loosest) and parentheses;
//!   qualifiers `WITHIN n SECONDS`, `REPEATS n TIMES`, `START t'…' STOP t'…'`; inside the
//!   brackets comparisons joined by `AND` / `OR` (with parentheses), the operators `=` (`==`),
//!   `!=` (`<>`), `<`, `<=`, `>`, `>=`, `IN (…)`, `LIKE`, `MATCHES`, `ISSUBSET`, `ISSUPERSET`,
//!   optionally preceded by `NOT`, and `EXISTS path`; object paths with `.key`, `.'quoted key'`,
//!   `[n]` and `[*]` steps; string, integer, decimal, boolean, `h'…'`, `b'…'` and `t'…'`
//!   literals. Keywords are case-sensitive. Whitespace and `/* */`, `//` comments are ignored.
//! - the validator's extra checks: the pattern must start (after `(` and whitespace) with `[`;
//!   one `[…]` observation may not carry the same qualifier type twice; and values compared
//!   with `…hashes.<algorithm>` must have that algorithm's format (`'f00'` is not a SHA-256).
//!
//! Like the validator, it does not check that values make sense (`[ipv4-addr:value = 'foo']`
//! is valid), nor that object types exist, nor that one observation uses one object type.
//! Timestamps are checked field by field as in the grammar (month 01–12, day 01–31, hour
//! 00–23, minute 00–59, second 00–60, `Z`), not against the calendar.
//!
//! Parsing never panics; nesting deeper than [`MAX_DEPTH`] is an error. Error offsets are
//! 0-based character (not byte) positions, like the validator's columns.
//!
//! [`reduce`] turns a pattern into atomic IOCs where that is exact, and [`analyze`] does both
//! and returns the JSON report printed by `secflow intel pattern`.

mod ast;
mod lexer;
mod parser;
mod reduce;

use serde::Serialize;

pub use ast::{
    Comparison, ComparisonExpr, Literal, ObjectPath, ObservationExpr, Operator, PathStep, Pattern,
    PropTest, Qualifier, Value,
};
pub use parser::MAX_DEPTH;
pub use reduce::{reduce, AtomicIoc, IocType, Reduction};

/// Why a pattern is invalid, and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message} at column {offset}")]
pub struct PatternError {
    /// What is wrong.
    pub message: String,
    /// 0-based character offset of the problem in the pattern.
    pub offset: usize,
}

impl PatternError {
    pub(crate) fn new(message: impl Into<String>, offset: usize) -> PatternError {
        PatternError {
            message: message.into(),
            offset,
        }
    }
}

/// Parses and validates a STIX 2.1 pattern.
///
/// ```
/// use processors::intel::pattern::{parse, reduce, Reduction};
/// let p = parse("[ipv4-addr:value = '198.51.100.0/24' OR domain-name:value = 'Example.COM']")?;
/// let Reduction::Atomic(iocs) = reduce(&p) else { unreachable!() };
/// assert_eq!(iocs[1].value, "example.com");
/// assert!(parse("[file:hashes.'SHA-256' = 'f00']").is_err());
/// # Ok::<(), processors::intel::pattern::PatternError>(())
/// ```
pub fn parse(pattern: &str) -> Result<Pattern, PatternError> {
    parser::parse(pattern)
}

/// The JSON line `secflow intel pattern` prints for one pattern:
/// `{"pattern","valid","error","iocs":[..]|null,"not_joinable":reason|null}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PatternReport {
    /// The pattern as given.
    pub pattern: String,
    /// Whether the pattern is valid.
    pub valid: bool,
    /// The parse / validation error, for an invalid pattern.
    pub error: Option<String>,
    /// The atomic IOCs, for a valid pattern that reduces to them.
    pub iocs: Option<Vec<AtomicIoc>>,
    /// Why a valid pattern does not reduce to atomic IOCs.
    pub not_joinable: Option<String>,
}

/// Parses, validates and reduces a pattern into a [`PatternReport`].
pub fn analyze(pattern: &str) -> PatternReport {
    let (valid, error, iocs, not_joinable) = match parse(pattern) {
        Err(e) => (false, Some(e.to_string()), None, None),
        Ok(p) => match reduce(&p) {
            Reduction::Atomic(iocs) => (true, None, Some(iocs), None),
            Reduction::NotJoinable(reason) => (true, None, None, Some(reason)),
        },
    };
    PatternReport {
        pattern: pattern.to_string(),
        valid,
        error,
        iocs,
        not_joinable,
    }
}

#[cfg(test)]
mod tests;
