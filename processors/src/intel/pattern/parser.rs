//! Recursive-descent parser for STIX 2.1 patterns, plus the checks the OASIS validator
//! (`stix2patterns`) makes beyond the grammar.
//!
//! Grammar (`STIXPattern.g4`), loosest binding first:
//!
//! ```text
//! pattern      := obs_followed EOF
//! obs_followed := obs_or ('FOLLOWEDBY' obs_or)*
//! obs_or       := obs_and ('OR' obs_and)*
//! obs_and      := obs_qual ('AND' obs_qual)*
//! obs_qual     := ('[' cmp_or ']' | '(' obs_followed ')') qualifier*
//! qualifier    := 'WITHIN' (int|float) 'SECONDS' | 'REPEATS' int 'TIMES'
//!               | 'START' timestamp 'STOP' timestamp
//! cmp_or       := cmp_and ('OR' cmp_and)*
//! cmp_and      := test ('AND' test)*
//! test         := '(' cmp_or ')' | 'EXISTS' path | path 'NOT'? op literal
//! ```
//!
//! Validator checks on top of the grammar, in the validator's order of reporting:
//! 1. the first character that is not `(` or whitespace must be `[` ("missing square brackets");
//! 2. syntax errors;
//! 3. the same qualifier type twice directly on one `[…]` observation;
//! 4. for a path containing a `hashes` key whose last key names a known algorithm, the value
//!    must look like a hash of that algorithm.

use super::ast::{
    Comparison, ComparisonExpr, Literal, ObjectPath, ObservationExpr, Operator, PathStep, Pattern,
    PropTest, Qualifier, Value,
};
use super::lexer::{tokenize, Keyword, Token, TokenKind};
use super::PatternError;

/// Maximum nesting of parentheses and brackets. Deeper input is rejected with an error instead
/// of risking the stack.
pub const MAX_DEPTH: usize = 100;

/// Parses and validates a pattern. See [`super::parse`].
pub(crate) fn parse(pattern: &str) -> Result<Pattern, PatternError> {
    if !brackets_check(pattern) {
        return Err(PatternError::new("input is missing square brackets", 0));
    }
    let chars: Vec<char> = pattern.chars().collect();
    let tokens = tokenize(&chars);
    let mut p = Parser {
        tokens: &tokens,
        pos: 0,
        depth: 0,
        qualifier_error: None,
        hash_error: None,
    };
    let expression = p.obs_followed()?;
    let tok = p.peek();
    if tok.kind != TokenKind::Eof {
        return Err(p.unexpected(
            tok,
            "AND, OR, FOLLOWEDBY, a qualifier or the end of the pattern",
        ));
    }
    if let Some(e) = p.qualifier_error.or(p.hash_error) {
        return Err(e);
    }
    Ok(Pattern { expression })
}

/// The validator's "missing square brackets" test: after any `(` and whitespace, `[`.
fn brackets_check(pattern: &str) -> bool {
    pattern
        .chars()
        .find(|c| *c != '(' && !c.is_whitespace())
        .is_some_and(|c| c == '[')
}

struct Parser<'t> {
    tokens: &'t [Token],
    pos: usize,
    depth: usize,
    qualifier_error: Option<PatternError>,
    hash_error: Option<PatternError>,
}

fn describe(tok: &Token) -> String {
    match &tok.kind {
        TokenKind::Eof => "end of input".to_string(),
        _ => {
            let mut shown: String = tok.text.chars().take(40).collect();
            if tok.text.chars().nth(40).is_some() {
                shown.push('…');
            }
            format!("'{shown}'")
        }
    }
}

impl<'t> Parser<'t> {
    fn peek(&self) -> &'t Token {
        let tokens: &'t [Token] = self.tokens;
        // The token list always ends with Eof and the parser never moves past it.
        match tokens.get(self.pos).or_else(|| tokens.last()) {
            Some(t) => t,
            None => &EOF,
        }
    }

    fn bump(&mut self) -> &'t Token {
        let t = self.peek();
        if t.kind != TokenKind::Eof {
            self.pos += 1;
        }
        t
    }

    fn eat(&mut self, kind: &TokenKind) -> bool {
        if &self.peek().kind == kind {
            self.bump();
            true
        } else {
            false
        }
    }

    fn eat_keyword(&mut self, kw: Keyword) -> bool {
        self.eat(&TokenKind::Keyword(kw))
    }

    fn unexpected(&self, tok: &Token, expected: &str) -> PatternError {
        match &tok.kind {
            TokenKind::Invalid(msg) => PatternError::new(msg.clone(), tok.start),
            _ => PatternError::new(
                format!("expected {expected}, found {}", describe(tok)),
                tok.start,
            ),
        }
    }

    fn expect(&mut self, kind: &TokenKind, expected: &str) -> Result<&'t Token, PatternError> {
        let tok = self.peek();
        if &tok.kind == kind {
            Ok(self.bump())
        } else {
            Err(self.unexpected(tok, expected))
        }
    }

    fn enter(&mut self, at: &Token) -> Result<(), PatternError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(PatternError::new(
                format!("nesting deeper than {MAX_DEPTH} levels"),
                at.start,
            ));
        }
        Ok(())
    }

    fn leave(&mut self) {
        self.depth = self.depth.saturating_sub(1);
    }

    // -- observation expressions ------------------------------------------------------------

    fn obs_followed(&mut self) -> Result<ObservationExpr, PatternError> {
        let first = self.obs_or()?;
        if self.peek().kind != TokenKind::Keyword(Keyword::FollowedBy) {
            return Ok(first);
        }
        let mut items = vec![first];
        while self.eat_keyword(Keyword::FollowedBy) {
            items.push(self.obs_or()?);
        }
        Ok(ObservationExpr::FollowedBy(items))
    }

    fn obs_or(&mut self) -> Result<ObservationExpr, PatternError> {
        let first = self.obs_and()?;
        if self.peek().kind != TokenKind::Keyword(Keyword::Or) {
            return Ok(first);
        }
        let mut items = vec![first];
        while self.eat_keyword(Keyword::Or) {
            items.push(self.obs_and()?);
        }
        Ok(ObservationExpr::Or(items))
    }

    fn obs_and(&mut self) -> Result<ObservationExpr, PatternError> {
        let first = self.obs_qualified()?;
        if self.peek().kind != TokenKind::Keyword(Keyword::And) {
            return Ok(first);
        }
        let mut items = vec![first];
        while self.eat_keyword(Keyword::And) {
            items.push(self.obs_qualified()?);
        }
        Ok(ObservationExpr::And(items))
    }

    fn obs_qualified(&mut self) -> Result<ObservationExpr, PatternError> {
        let tok = self.peek();
        let (base, simple) = match tok.kind {
            TokenKind::LBrack => {
                self.bump();
                self.enter(tok)?;
                let cmp = self.cmp_or()?;
                self.expect(&TokenKind::RBrack, "']' or AND/OR")?;
                self.leave();
                (ObservationExpr::Observation(cmp), true)
            }
            TokenKind::LParen => {
                self.bump();
                self.enter(tok)?;
                let inner = self.obs_followed()?;
                self.expect(&TokenKind::RParen, "')' or AND/OR/FOLLOWEDBY")?;
                self.leave();
                (ObservationExpr::Group(Box::new(inner)), false)
            }
            _ => return Err(self.unexpected(tok, "'[' or '(' (an observation expression)")),
        };
        let mut quals: Vec<Qualifier> = Vec::new();
        loop {
            let at = self.peek();
            let q = match at.kind {
                TokenKind::Keyword(Keyword::Within) => self.within()?,
                TokenKind::Keyword(Keyword::Repeats) => self.repeats()?,
                TokenKind::Keyword(Keyword::Start) => self.start_stop()?,
                _ => break,
            };
            // The validator rejects a repeated qualifier type directly on a `[…]` observation;
            // on a parenthesised group it allows anything.
            if simple
                && self.qualifier_error.is_none()
                && quals
                    .iter()
                    .any(|x| std::mem::discriminant(x) == std::mem::discriminant(&q))
            {
                let name = match q {
                    Qualifier::StartStop { .. } => "STARTSTOP",
                    _ => q.name(),
                };
                self.qualifier_error = Some(PatternError::new(
                    format!("Duplicate qualifier type encountered: {name}"),
                    at.start,
                ));
            }
            quals.push(q);
        }
        if quals.is_empty() {
            Ok(base)
        } else {
            Ok(ObservationExpr::Qualified(Box::new(base), quals))
        }
    }

    fn within(&mut self) -> Result<Qualifier, PatternError> {
        self.bump();
        let tok = self.peek();
        let seconds = match tok.kind {
            TokenKind::IntPos | TokenKind::FloatPos => {
                self.bump();
                let seconds = tok.text.parse::<f64>().map_err(|_| {
                    PatternError::new(format!("invalid number {}", describe(tok)), tok.start)
                })?;
                // A window too long for f64 saturates instead of becoming infinite.
                seconds.min(f64::MAX)
            }
            _ => return Err(self.unexpected(tok, "a non-negative number of seconds after WITHIN")),
        };
        self.expect(&TokenKind::Keyword(Keyword::Seconds), "SECONDS")?;
        Ok(Qualifier::Within { seconds })
    }

    fn repeats(&mut self) -> Result<Qualifier, PatternError> {
        self.bump();
        let tok = self.peek();
        let times = match tok.kind {
            TokenKind::IntPos => {
                self.bump();
                // Counts beyond u64 saturate: such a pattern can never match in practice.
                let digits = tok.text.strip_prefix('+').unwrap_or(&tok.text);
                digits.parse::<u64>().unwrap_or(u64::MAX)
            }
            _ => return Err(self.unexpected(tok, "a non-negative integer after REPEATS")),
        };
        self.expect(&TokenKind::Keyword(Keyword::Times), "TIMES")?;
        Ok(Qualifier::Repeats { times })
    }

    fn start_stop(&mut self) -> Result<Qualifier, PatternError> {
        self.bump();
        let start = self.timestamp("a timestamp t'…' after START")?;
        self.expect(&TokenKind::Keyword(Keyword::Stop), "STOP")?;
        let stop = self.timestamp("a timestamp t'…' after STOP")?;
        Ok(Qualifier::StartStop { start, stop })
    }

    fn timestamp(&mut self, expected: &str) -> Result<String, PatternError> {
        let tok = self.peek();
        match &tok.kind {
            TokenKind::Timestamp(t) => {
                self.bump();
                Ok(t.clone())
            }
            _ => Err(self.unexpected(tok, expected)),
        }
    }

    // -- comparison expressions -------------------------------------------------------------

    fn cmp_or(&mut self) -> Result<ComparisonExpr, PatternError> {
        let mut items = Vec::new();
        loop {
            match self.cmp_and()? {
                ComparisonExpr::Or(inner) => items.extend(inner),
                other => items.push(other),
            }
            if !self.eat_keyword(Keyword::Or) {
                break;
            }
        }
        Ok(single_or(items, ComparisonExpr::Or))
    }

    fn cmp_and(&mut self) -> Result<ComparisonExpr, PatternError> {
        let mut items = Vec::new();
        loop {
            match self.prop_test()? {
                ComparisonExpr::And(inner) => items.extend(inner),
                other => items.push(other),
            }
            if !self.eat_keyword(Keyword::And) {
                break;
            }
        }
        Ok(single_or(items, ComparisonExpr::And))
    }

    fn prop_test(&mut self) -> Result<ComparisonExpr, PatternError> {
        let tok = self.peek();
        match tok.kind {
            TokenKind::LParen => {
                self.bump();
                self.enter(tok)?;
                let inner = self.cmp_or()?;
                self.expect(&TokenKind::RParen, "')' or AND/OR")?;
                self.leave();
                Ok(inner)
            }
            TokenKind::Keyword(Keyword::Exists) => {
                self.bump();
                let path = self.object_path()?;
                Ok(ComparisonExpr::Test(PropTest::Exists(path)))
            }
            _ => {
                let path = self.object_path()?;
                let negated = self.eat_keyword(Keyword::Not);
                let op_tok = self.peek();
                let op = match op_tok.kind {
                    TokenKind::Eq => Operator::Eq,
                    TokenKind::Ne => Operator::Ne,
                    TokenKind::Lt => Operator::Lt,
                    TokenKind::Le => Operator::Le,
                    TokenKind::Gt => Operator::Gt,
                    TokenKind::Ge => Operator::Ge,
                    TokenKind::Keyword(Keyword::In) => Operator::In,
                    TokenKind::Keyword(Keyword::Like) => Operator::Like,
                    TokenKind::Keyword(Keyword::Matches) => Operator::Matches,
                    TokenKind::Keyword(Keyword::IsSubset) => Operator::IsSubset,
                    TokenKind::Keyword(Keyword::IsSuperset) => Operator::IsSuperset,
                    _ => {
                        let expected = if negated {
                            "a comparison operator after NOT"
                        } else {
                            "a comparison operator (=, !=, <, <=, >, >=, IN, LIKE, MATCHES, \
                             ISSUBSET, ISSUPERSET) or NOT"
                        };
                        return Err(self.unexpected(op_tok, expected));
                    }
                };
                self.bump();
                let value_start = self.peek().start;
                let (value, raw) = match op {
                    Operator::Eq | Operator::Ne => {
                        let (lit, raw) = self.literal(true, false)?;
                        (Value::Literal(lit), raw)
                    }
                    Operator::Lt | Operator::Le | Operator::Gt | Operator::Ge => {
                        let (lit, raw) = self.literal(false, false)?;
                        (Value::Literal(lit), raw)
                    }
                    Operator::In => self.set()?,
                    _ => {
                        let (lit, raw) = self.literal(false, true)?;
                        (Value::Literal(lit), raw)
                    }
                };
                self.check_hash(&path, &raw, value_start);
                Ok(ComparisonExpr::Test(PropTest::Comparison(Comparison {
                    path,
                    negated,
                    op,
                    value,
                })))
            }
        }
    }

    /// A literal and its source text. `allow_bool`: primitive (vs orderable) literal;
    /// `string_only`: LIKE / MATCHES / ISSUBSET / ISSUPERSET.
    fn literal(
        &mut self,
        allow_bool: bool,
        string_only: bool,
    ) -> Result<(Literal, String), PatternError> {
        let tok = self.peek();
        let lit = match &tok.kind {
            TokenKind::Str(s) => Literal::String(s.clone()),
            _ if string_only => return Err(self.unexpected(tok, "a string literal")),
            TokenKind::IntPos | TokenKind::IntNeg => Literal::Int(tok.text.clone()),
            TokenKind::FloatPos | TokenKind::FloatNeg => Literal::Float(tok.text.clone()),
            TokenKind::Hex(b) => Literal::Hex(b.clone()),
            TokenKind::Binary(b) => Literal::Binary(b.clone()),
            TokenKind::Timestamp(t) => Literal::Timestamp(t.clone()),
            TokenKind::Bool(b) if allow_bool => Literal::Bool(*b),
            TokenKind::Bool(_) => {
                return Err(PatternError::new(
                    "a boolean cannot be compared with <, <=, > or >=",
                    tok.start,
                ))
            }
            _ => {
                let expected = if allow_bool {
                    "a literal (string, number, boolean, h'…', b'…' or t'…')"
                } else {
                    "an orderable literal (string, number, h'…', b'…' or t'…')"
                };
                return Err(self.unexpected(tok, expected));
            }
        };
        self.bump();
        Ok((lit, tok.text.clone()))
    }

    /// `( )` or `( literal (, literal)* )`; the raw text is the tokens joined without spaces.
    fn set(&mut self) -> Result<(Value, String), PatternError> {
        self.expect(&TokenKind::LParen, "'(' to start the IN set")?;
        let mut raw = String::from("(");
        let mut items = Vec::new();
        if !self.eat(&TokenKind::RParen) {
            loop {
                let (lit, text) = self.literal(true, false)?;
                items.push(lit);
                raw.push_str(&text);
                if self.eat(&TokenKind::Comma) {
                    raw.push(',');
                    continue;
                }
                self.expect(&TokenKind::RParen, "',' or ')' in the IN set")?;
                break;
            }
        }
        raw.push(')');
        Ok((Value::Set(items), raw))
    }

    // -- object paths -----------------------------------------------------------------------

    fn object_path(&mut self) -> Result<ObjectPath, PatternError> {
        let tok = self.peek();
        let object_type = match tok.kind {
            TokenKind::Ident | TokenKind::IdentHyphen => {
                self.bump();
                tok.text.clone()
            }
            _ => {
                return Err(self.unexpected(
                    tok,
                    "an object path (object-type:property) or EXISTS or '('",
                ))
            }
        };
        self.expect(&TokenKind::Colon, "':' after the object type")?;
        let mut steps = vec![PathStep::Key(self.key("a property name after ':'")?)];
        loop {
            let tok = self.peek();
            match tok.kind {
                TokenKind::Dot => {
                    self.bump();
                    steps.push(PathStep::Key(self.key("a property name after '.'")?));
                }
                // `.5` lexes as a number, as in the reference grammar.
                TokenKind::LBrack => {
                    self.bump();
                    let idx = self.peek();
                    let step = match idx.kind {
                        TokenKind::Asterisk => PathStep::AnyIndex,
                        TokenKind::IntPos | TokenKind::IntNeg => {
                            // Indexes beyond i64 saturate; no list is that long.
                            let digits = idx.text.strip_prefix('+').unwrap_or(&idx.text);
                            let fallback = if idx.kind == TokenKind::IntNeg {
                                i64::MIN
                            } else {
                                i64::MAX
                            };
                            PathStep::Index(digits.parse::<i64>().unwrap_or(fallback))
                        }
                        _ => return Err(self.unexpected(idx, "a list index (integer or '*')")),
                    };
                    self.bump();
                    self.expect(&TokenKind::RBrack, "']' after the list index")?;
                    steps.push(step);
                }
                _ => break,
            }
        }
        Ok(ObjectPath { object_type, steps })
    }

    fn key(&mut self, expected: &str) -> Result<String, PatternError> {
        let tok = self.peek();
        match &tok.kind {
            TokenKind::Ident => {
                self.bump();
                Ok(tok.text.clone())
            }
            TokenKind::Str(s) => {
                self.bump();
                Ok(s.clone())
            }
            TokenKind::IdentHyphen => Err(PatternError::new(
                format!(
                    "property name {} contains '-': quote it, e.g. '{}'",
                    describe(tok),
                    tok.text
                ),
                tok.start,
            )),
            _ => Err(self.unexpected(tok, expected)),
        }
    }

    // -- validator checks -------------------------------------------------------------------

    /// The validator's hash check (`object_validator.verify_object`): when the path has a
    /// `hashes` key and ends in a key naming a known algorithm, the value's source text with
    /// all `'` removed must match that algorithm's format (Python `re.match` semantics).
    fn check_hash(&mut self, path: &ObjectPath, raw: &str, at: usize) {
        if self.hash_error.is_some()
            || !path
                .steps
                .iter()
                .any(|s| matches!(s, PathStep::Key(k) if k == "hashes"))
        {
            return;
        }
        let Some(PathStep::Key(selector)) = path.steps.last() else {
            return;
        };
        let algo: String = selector
            .to_uppercase()
            .chars()
            .filter(|c| *c != '-' && *c != '\'')
            .collect();
        let value: String = raw.chars().filter(|c| *c != '\'').collect();
        if let Some(false) = hash_format_ok(&algo, &value) {
            self.hash_error = Some(PatternError::new(
                format!("'{value}' is not a valid {selector} hash"),
                at,
            ));
        }
    }
}

static EOF: Token = Token {
    kind: TokenKind::Eof,
    text: String::new(),
    start: 0,
};

fn single_or(
    mut items: Vec<ComparisonExpr>,
    wrap: fn(Vec<ComparisonExpr>) -> ComparisonExpr,
) -> ComparisonExpr {
    if items.len() == 1 {
        if let Some(only) = items.pop() {
            return only;
        }
    }
    wrap(items)
}

fn is_hex(c: char) -> bool {
    c.is_ascii_hexdigit()
}

/// `^[a-fA-F0-9]{n}$` under Python `re.match` (where `$` also matches before a final `\n`).
fn hex_exactly(value: &str, n: usize) -> bool {
    let body = value.strip_suffix('\n').unwrap_or(value);
    body.chars().count() == n && body.chars().all(is_hex)
}

/// Whether `value` is a valid hash for the (normalised) algorithm name, or `None` when the
/// validator does not know the algorithm.
fn hash_format_ok(algo: &str, value: &str) -> Option<bool> {
    let n = match algo {
        "MD5" => 32,
        "RIPEMD160" | "SHA1" => 40,
        "SHA224" | "SHA3224" => 56,
        "SHA256" | "SHA3256" => 64,
        "SHA384" | "SHA3384" => 96,
        "SHA512" | "SHA3512" | "WHIRLPOOL" => 128,
        "MD6" => {
            // The validator's MD6 expression, `^[hex]{32}|[hex]{40}|…|\<newline>    [hex]{64}|…`,
            // amounts to: 32 leading hex digits, or a newline, four spaces and 64 hex digits.
            let leading_hex = value.chars().take(32).filter(|c| is_hex(*c)).count() == 32;
            let odd = value
                .strip_prefix("\n    ")
                .is_some_and(|rest| rest.chars().take(64).filter(|c| is_hex(*c)).count() == 64);
            return Some(leading_hex || odd);
        }
        "SSDEEP" => {
            let body = value.strip_suffix('\n').unwrap_or(value);
            let len = body.chars().count();
            return Some(
                (1..=128).contains(&len)
                    && body
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '/' | '+' | ':' | '.')),
            );
        }
        _ => return None,
    };
    Some(hex_exactly(value, n))
}
