//! Syntax tree of a STIX 2.1 pattern.
//!
//! The tree keeps what matters for evaluation and reduction: operator precedence is already
//! resolved, runs of the same boolean operator are flattened into one n-ary node, and
//! parentheses are kept only around observation expressions (where they change what a
//! qualifier applies to). Every tree produced by [`parse`](super::parse) prints back (through
//! `Display`) as a canonical pattern that parses to an equal tree.

use std::fmt;

/// A parsed, validated STIX pattern.
#[derive(Debug, Clone, PartialEq)]
pub struct Pattern {
    /// The top-level observation expression.
    pub expression: ObservationExpr,
}

/// An observation expression: what has to be observed, and how observations combine.
#[derive(Debug, Clone, PartialEq)]
pub enum ObservationExpr {
    /// `[ comparison ]`: one observation whose objects satisfy the comparison expression.
    Observation(ComparisonExpr),
    /// `( … )`: a parenthesised observation expression.
    Group(Box<ObservationExpr>),
    /// Two or more observation expressions joined by `AND`.
    And(Vec<ObservationExpr>),
    /// Two or more observation expressions joined by `OR`.
    Or(Vec<ObservationExpr>),
    /// Two or more observation expressions joined by `FOLLOWEDBY`, in order.
    FollowedBy(Vec<ObservationExpr>),
    /// An observation (or group) followed by one or more qualifiers, in source order.
    Qualified(Box<ObservationExpr>, Vec<Qualifier>),
}

/// A qualifier applied to an observation expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Qualifier {
    /// `WITHIN n SECONDS`.
    Within {
        /// The window length in seconds (an integer or decimal in the pattern; finite, a
        /// value beyond `f64::MAX` saturates).
        seconds: f64,
    },
    /// `REPEATS n TIMES`.
    Repeats {
        /// How many times the expression must match (a count beyond `u64::MAX` saturates).
        times: u64,
    },
    /// `START t'…' STOP t'…'`.
    StartStop {
        /// Start timestamp, RFC 3339 text as written (always UTC, `Z`).
        start: String,
        /// Stop timestamp, RFC 3339 text as written (always UTC, `Z`).
        stop: String,
    },
}

impl Qualifier {
    /// The qualifier's keyword(s), e.g. `"WITHIN"` or `"START/STOP"`.
    pub fn name(&self) -> &'static str {
        match self {
            Qualifier::Within { .. } => "WITHIN",
            Qualifier::Repeats { .. } => "REPEATS",
            Qualifier::StartStop { .. } => "START/STOP",
        }
    }
}

/// A comparison expression: the inside of an observation's square brackets.
#[derive(Debug, Clone, PartialEq)]
pub enum ComparisonExpr {
    /// A single property test.
    Test(PropTest),
    /// Two or more comparison expressions joined by `AND`.
    And(Vec<ComparisonExpr>),
    /// Two or more comparison expressions joined by `OR`.
    Or(Vec<ComparisonExpr>),
}

/// One property test.
#[derive(Debug, Clone, PartialEq)]
pub enum PropTest {
    /// `path [NOT] op value`.
    Comparison(Comparison),
    /// `EXISTS path`.
    Exists(ObjectPath),
}

/// `path [NOT] op value`.
#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    /// The object path on the left.
    pub path: ObjectPath,
    /// Whether the operator is preceded by `NOT`.
    pub negated: bool,
    /// The operator.
    pub op: Operator,
    /// The right-hand side: a literal, or for `IN` a set of literals.
    pub value: Value,
}

/// Comparison operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operator {
    /// `=` (or `==`).
    Eq,
    /// `!=` (or `<>`).
    Ne,
    /// `<`.
    Lt,
    /// `<=`.
    Le,
    /// `>`.
    Gt,
    /// `>=`.
    Ge,
    /// `IN (…)`.
    In,
    /// `LIKE` (SQL-style wildcards).
    Like,
    /// `MATCHES` (PCRE regular expression).
    Matches,
    /// `ISSUBSET` (CIDR containment).
    IsSubset,
    /// `ISSUPERSET` (CIDR containment).
    IsSuperset,
}

impl Operator {
    /// The operator as written in canonical patterns.
    pub fn as_str(self) -> &'static str {
        match self {
            Operator::Eq => "=",
            Operator::Ne => "!=",
            Operator::Lt => "<",
            Operator::Le => "<=",
            Operator::Gt => ">",
            Operator::Ge => ">=",
            Operator::In => "IN",
            Operator::Like => "LIKE",
            Operator::Matches => "MATCHES",
            Operator::IsSubset => "ISSUBSET",
            Operator::IsSuperset => "ISSUPERSET",
        }
    }
}

/// Right-hand side of a comparison.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// A single literal.
    Literal(Literal),
    /// The set of an `IN` comparison (may be empty).
    Set(Vec<Literal>),
}

/// A literal value.
#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    /// A quoted string, with the escapes `\'` and `\\` decoded.
    String(String),
    /// An integer, as written (optional sign, no leading zeros; any size).
    Int(String),
    /// A decimal number, as written (optional sign, e.g. `-.5`, `3.25`).
    Float(String),
    /// `true` or `false`.
    Bool(bool),
    /// `h'…'`: the decoded bytes.
    Hex(Vec<u8>),
    /// `b'…'`: the decoded bytes.
    Binary(Vec<u8>),
    /// `t'…'`: RFC 3339 UTC timestamp text as written between the quotes.
    Timestamp(String),
}

impl Literal {
    /// The string value, if this is a string literal.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Literal::String(s) => Some(s),
            _ => None,
        }
    }

    /// The value of an integer literal, if it is one and fits in `i64`.
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Literal::Int(s) => s.strip_prefix('+').unwrap_or(s).parse().ok(),
            _ => None,
        }
    }

    /// The value of an integer or decimal literal as `f64`.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Literal::Int(s) | Literal::Float(s) => s.strip_prefix('+').unwrap_or(s).parse().ok(),
            _ => None,
        }
    }

    /// A short name for the literal's kind, for messages.
    pub fn kind_name(&self) -> &'static str {
        match self {
            Literal::String(_) => "string",
            Literal::Int(_) => "integer",
            Literal::Float(_) => "float",
            Literal::Bool(_) => "boolean",
            Literal::Hex(_) => "hex",
            Literal::Binary(_) => "binary",
            Literal::Timestamp(_) => "timestamp",
        }
    }
}

/// An object path such as `file:hashes.'SHA-256'` or `network-traffic:protocols[*]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ObjectPath {
    /// The object type, e.g. `file` or `x-custom-type`.
    pub object_type: String,
    /// The property steps. The first one is always a [`PathStep::Key`].
    pub steps: Vec<PathStep>,
}

impl ObjectPath {
    /// The keys of the path if it consists of keys only (no list indexes).
    pub fn keys(&self) -> Option<Vec<&str>> {
        self.steps
            .iter()
            .map(|s| match s {
                PathStep::Key(k) => Some(k.as_str()),
                _ => None,
            })
            .collect()
    }
}

/// One step of an object path.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PathStep {
    /// A property key (`.name` or `.'quoted-name'`; also the first component).
    Key(String),
    /// A list index `[n]` (negative counts from the end; beyond `i64` saturates).
    Index(i64),
    /// Any list element `[*]`.
    AnyIndex,
}

// ---------------------------------------------------------------------------------------------
// Canonical printing

/// Keywords of the pattern language: a key spelled like one must be quoted.
pub(crate) const KEYWORDS: &[&str] = &[
    "AND",
    "OR",
    "NOT",
    "FOLLOWEDBY",
    "LIKE",
    "MATCHES",
    "ISSUPERSET",
    "ISSUBSET",
    "EXISTS",
    "LAST",
    "IN",
    "START",
    "STOP",
    "SECONDS",
    "true",
    "false",
    "WITHIN",
    "REPEATS",
    "TIMES",
];

fn is_plain_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    match chars.next() {
        Some(c) if c.is_ascii_alphabetic() || c == '_' => {}
        _ => return false,
    }
    chars.all(|c| c.is_ascii_alphanumeric() || c == '_') && !KEYWORDS.contains(&s)
}

fn write_quoted(f: &mut fmt::Formatter<'_>, s: &str) -> fmt::Result {
    f.write_str("'")?;
    for c in s.chars() {
        match c {
            '\'' => f.write_str("\\'")?,
            '\\' => f.write_str("\\\\")?,
            c => write!(f, "{c}")?,
        }
    }
    f.write_str("'")
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

fn b64_char(v: u32) -> char {
    B64.get((v & 63) as usize).map_or('A', |b| char::from(*b))
}

fn write_base64(f: &mut fmt::Formatter<'_>, bytes: &[u8]) -> fmt::Result {
    for chunk in bytes.chunks(3) {
        let b0 = u32::from(chunk.first().copied().unwrap_or(0));
        let b1 = u32::from(chunk.get(1).copied().unwrap_or(0));
        let b2 = u32::from(chunk.get(2).copied().unwrap_or(0));
        let n = (b0 << 16) | (b1 << 8) | b2;
        write!(f, "{}{}", b64_char(n >> 18), b64_char(n >> 12))?;
        if chunk.len() > 1 {
            write!(f, "{}", b64_char(n >> 6))?;
        } else {
            f.write_str("=")?;
        }
        if chunk.len() > 2 {
            write!(f, "{}", b64_char(n))?;
        } else {
            f.write_str("=")?;
        }
    }
    Ok(())
}

impl fmt::Display for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.expression.fmt(f)
    }
}

impl ObservationExpr {
    /// Binding strength: FOLLOWEDBY 1 < OR 2 < AND 3 < atoms 4.
    fn precedence(&self) -> u8 {
        match self {
            ObservationExpr::FollowedBy(_) => 1,
            ObservationExpr::Or(_) => 2,
            ObservationExpr::And(_) => 3,
            _ => 4,
        }
    }

    fn fmt_operand(&self, f: &mut fmt::Formatter<'_>, parent: u8) -> fmt::Result {
        if self.precedence() <= parent {
            write!(f, "({self})")
        } else {
            write!(f, "{self}")
        }
    }
}

impl fmt::Display for ObservationExpr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (items, word) = match self {
            ObservationExpr::Observation(c) => return write!(f, "[{c}]"),
            ObservationExpr::Group(inner) => return write!(f, "({inner})"),
            ObservationExpr::Qualified(inner, quals) => {
                inner.fmt_operand(f, 3)?;
                for q in quals {
                    write!(f, " {q}")?;
                }
                return Ok(());
            }
            ObservationExpr::And(items) => (items, " AND "),
            ObservationExpr::Or(items) => (items, " OR "),
            ObservationExpr::FollowedBy(items) => (items, " FOLLOWEDBY "),
        };
        let prec = self.precedence();
        for (i, item) in items.iter().enumerate() {
            if i > 0 {
                f.write_str(word)?;
            }
            item.fmt_operand(f, prec)?;
        }
        Ok(())
    }
}

impl fmt::Display for Qualifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Qualifier::Within { seconds } => write!(f, "WITHIN {seconds} SECONDS"),
            Qualifier::Repeats { times } => write!(f, "REPEATS {times} TIMES"),
            Qualifier::StartStop { start, stop } => write!(f, "START t'{start}' STOP t'{stop}'"),
        }
    }
}

impl fmt::Display for ComparisonExpr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ComparisonExpr::Test(t) => t.fmt(f),
            ComparisonExpr::And(items) => {
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(" AND ")?;
                    }
                    match item {
                        ComparisonExpr::Test(_) => write!(f, "{item}")?,
                        _ => write!(f, "({item})")?,
                    }
                }
                Ok(())
            }
            ComparisonExpr::Or(items) => {
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(" OR ")?;
                    }
                    match item {
                        ComparisonExpr::Or(_) => write!(f, "({item})")?,
                        _ => write!(f, "{item}")?,
                    }
                }
                Ok(())
            }
        }
    }
}

impl fmt::Display for PropTest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PropTest::Comparison(c) => c.fmt(f),
            PropTest::Exists(p) => write!(f, "EXISTS {p}"),
        }
    }
}

impl fmt::Display for Comparison {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.path)?;
        if self.negated {
            f.write_str(" NOT")?;
        }
        write!(f, " {} {}", self.op.as_str(), self.value)
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Literal(l) => l.fmt(f),
            Value::Set(items) => {
                f.write_str("(")?;
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{item}")?;
                }
                f.write_str(")")
            }
        }
    }
}

impl fmt::Display for Literal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Literal::String(s) => write_quoted(f, s),
            Literal::Int(s) | Literal::Float(s) => f.write_str(s),
            Literal::Bool(b) => write!(f, "{b}"),
            Literal::Hex(bytes) => {
                f.write_str("h'")?;
                for b in bytes {
                    write!(f, "{b:02x}")?;
                }
                f.write_str("'")
            }
            Literal::Binary(bytes) => {
                f.write_str("b'")?;
                write_base64(f, bytes)?;
                f.write_str("'")
            }
            Literal::Timestamp(t) => write!(f, "t'{t}'"),
        }
    }
}

impl fmt::Display for ObjectPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:", self.object_type)?;
        for (i, step) in self.steps.iter().enumerate() {
            match step {
                PathStep::Key(k) => {
                    if i > 0 {
                        f.write_str(".")?;
                    }
                    if is_plain_identifier(k) {
                        f.write_str(k)?;
                    } else {
                        write_quoted(f, k)?;
                    }
                }
                PathStep::Index(n) => write!(f, "[{n}]")?,
                PathStep::AnyIndex => f.write_str("[*]")?,
            }
        }
        Ok(())
    }
}
