//! Tokenizer following the lexer rules of the OASIS `STIXPattern.g4` grammar (STIX 2.1).
//!
//! Like ANTLR, it takes the longest match at each position, and keywords win over identifiers
//! of the same length. Keywords are case-sensitive (`AND`, `true`). Whitespace, `/* … */` and
//! `// …` comments are skipped. A character sequence that no parser rule can use (a stray
//! quote, `+`, `-`, `^`, `/`, a malformed `t'…'`/`h'…'`/`b'…'` literal, any other character)
//! becomes one [`TokenKind::Invalid`] token, and tokenizing stops there: the pattern cannot be
//! valid past that point.

/// Keywords of the pattern language (case-sensitive).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Keyword {
    And,
    Or,
    Not,
    FollowedBy,
    Like,
    Matches,
    IsSuperset,
    IsSubset,
    Exists,
    Last,
    In,
    Start,
    Stop,
    Seconds,
    Within,
    Repeats,
    Times,
}

impl Keyword {
    fn from_ident(s: &str) -> Option<Keyword> {
        Some(match s {
            "AND" => Keyword::And,
            "OR" => Keyword::Or,
            "NOT" => Keyword::Not,
            "FOLLOWEDBY" => Keyword::FollowedBy,
            "LIKE" => Keyword::Like,
            "MATCHES" => Keyword::Matches,
            "ISSUPERSET" => Keyword::IsSuperset,
            "ISSUBSET" => Keyword::IsSubset,
            "EXISTS" => Keyword::Exists,
            "LAST" => Keyword::Last,
            "IN" => Keyword::In,
            "START" => Keyword::Start,
            "STOP" => Keyword::Stop,
            "SECONDS" => Keyword::Seconds,
            "WITHIN" => Keyword::Within,
            "REPEATS" => Keyword::Repeats,
            "TIMES" => Keyword::Times,
            _ => return None,
        })
    }
}

/// Token kinds. Number tokens keep their text in [`Token::text`].
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum TokenKind {
    IntPos,
    IntNeg,
    FloatPos,
    FloatNeg,
    Hex(Vec<u8>),
    Binary(Vec<u8>),
    /// Decoded string contents.
    Str(String),
    Bool(bool),
    /// Timestamp text between the quotes.
    Timestamp(String),
    Keyword(Keyword),
    /// `IdentifierWithoutHyphen`: `[a-zA-Z_][a-zA-Z0-9_]*`, not a keyword.
    Ident,
    /// `IdentifierWithHyphen`: contains at least one `-`; only valid as an object type.
    IdentHyphen,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Colon,
    Dot,
    Comma,
    LParen,
    RParen,
    LBrack,
    RBrack,
    Asterisk,
    /// Something no parser rule accepts; the message says what.
    Invalid(String),
    Eof,
}

/// A token: kind, source text (as written) and 0-based character offset.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Token {
    pub kind: TokenKind,
    pub text: String,
    pub start: usize,
}

fn is_ident_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_'
}

fn is_ident_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

fn is_digit(c: Option<&char>) -> bool {
    c.is_some_and(|c| c.is_ascii_digit())
}

fn hex_val(c: char) -> Option<u8> {
    c.to_digit(16).and_then(|d| u8::try_from(d).ok())
}

fn b64_val(c: char) -> Option<u32> {
    match c {
        'A'..='Z' => Some(c as u32 - 'A' as u32),
        'a'..='z' => Some(c as u32 - 'a' as u32 + 26),
        '0'..='9' => Some(c as u32 - '0' as u32 + 52),
        '+' => Some(62),
        '/' => Some(63),
        _ => None,
    }
}

struct Lexer<'a> {
    chars: &'a [char],
    pos: usize,
    tokens: Vec<Token>,
}

/// Tokenizes `chars`. The result always ends with an `Eof` token, directly after the first
/// `Invalid` token if there is one.
pub(crate) fn tokenize(chars: &[char]) -> Vec<Token> {
    let mut lx = Lexer {
        chars,
        pos: 0,
        tokens: Vec::new(),
    };
    lx.run();
    let end = lx.chars.len();
    lx.tokens.push(Token {
        kind: TokenKind::Eof,
        text: String::new(),
        start: end,
    });
    lx.tokens
}

impl Lexer<'_> {
    fn at(&self, i: usize) -> Option<char> {
        self.chars.get(i).copied()
    }

    fn text(&self, from: usize, to: usize) -> String {
        self.chars
            .get(from..to)
            .unwrap_or_default()
            .iter()
            .collect()
    }

    fn push(&mut self, kind: TokenKind, start: usize, end: usize) {
        let text = self.text(start, end);
        self.tokens.push(Token { kind, text, start });
        self.pos = end;
    }

    /// Pushes an invalid token at `at` (the offending position) and reports that lexing stops.
    fn invalid(&mut self, message: String, start: usize, at: usize) -> bool {
        let end = (start + 1).min(self.chars.len()).max(start);
        let text = self.text(start, end);
        self.tokens.push(Token {
            kind: TokenKind::Invalid(message),
            text,
            start: at,
        });
        false
    }

    fn run(&mut self) {
        while let Some(c) = self.at(self.pos) {
            if !self.step(c) {
                return;
            }
        }
    }

    /// Lexes one token (or skips whitespace / a comment). Returns false to stop.
    fn step(&mut self, c: char) -> bool {
        let i = self.pos;
        let next = self.at(i + 1);
        match c {
            c if c.is_whitespace() => {
                self.pos += 1;
                true
            }
            '/' if next == Some('*') => {
                // '/*' .*? '*/'
                let mut j = i + 2;
                while j + 1 < self.chars.len() {
                    if self.at(j) == Some('*') && self.at(j + 1) == Some('/') {
                        self.pos = j + 2;
                        return true;
                    }
                    j += 1;
                }
                self.invalid("unterminated comment".into(), i, i)
            }
            '/' if next == Some('/') => {
                let mut j = i + 2;
                while let Some(c) = self.at(j) {
                    if c == '\r' || c == '\n' {
                        break;
                    }
                    j += 1;
                }
                self.pos = j;
                true
            }
            '\'' => self.string(i),
            't' | 'h' | 'b' if next == Some('\'') => match c {
                't' => self.timestamp(i),
                'h' => self.hex(i),
                _ => self.binary(i),
            },
            c if is_ident_start(c) => {
                self.identifier(i);
                true
            }
            '0'..='9' | '+' | '-' => self.number(i),
            '.' if is_digit(next.as_ref()) => self.number(i),
            '=' => {
                let end = if next == Some('=') { i + 2 } else { i + 1 };
                self.push(TokenKind::Eq, i, end);
                true
            }
            '!' if next == Some('=') => {
                self.push(TokenKind::Ne, i, i + 2);
                true
            }
            '<' => {
                match next {
                    Some('=') => self.push(TokenKind::Le, i, i + 2),
                    Some('>') => self.push(TokenKind::Ne, i, i + 2),
                    _ => self.push(TokenKind::Lt, i, i + 1),
                }
                true
            }
            '>' => {
                if next == Some('=') {
                    self.push(TokenKind::Ge, i, i + 2);
                } else {
                    self.push(TokenKind::Gt, i, i + 1);
                }
                true
            }
            ':' | '.' | ',' | '(' | ')' | '[' | ']' | '*' => {
                let kind = match c {
                    ':' => TokenKind::Colon,
                    '.' => TokenKind::Dot,
                    ',' => TokenKind::Comma,
                    '(' => TokenKind::LParen,
                    ')' => TokenKind::RParen,
                    '[' => TokenKind::LBrack,
                    ']' => TokenKind::RBrack,
                    _ => TokenKind::Asterisk,
                };
                self.push(kind, i, i + 1);
                true
            }
            '"' => self.invalid(
                "unexpected '\"': strings are quoted with single quotes".into(),
                i,
                i,
            ),
            c => self.invalid(format!("unexpected character {c:?}"), i, i),
        }
    }

    /// `'…'` with the escapes `\'` and `\\` only.
    fn string(&mut self, start: usize) -> bool {
        let mut value = String::new();
        let mut j = start + 1;
        loop {
            match self.at(j) {
                None => return self.invalid("unterminated string literal".into(), start, start),
                Some('\'') => {
                    self.push(TokenKind::Str(value), start, j + 1);
                    return true;
                }
                Some('\\') => match self.at(j + 1) {
                    Some(e @ ('\'' | '\\')) => {
                        value.push(e);
                        j += 2;
                    }
                    Some(other) => {
                        return self.invalid(
                            format!(
                                "invalid escape '\\{other}' in string literal (only \\' and \\\\ \
                                 are allowed)"
                            ),
                            start,
                            j,
                        )
                    }
                    None => {
                        return self.invalid("unterminated string literal".into(), start, start)
                    }
                },
                Some(c) => {
                    value.push(c);
                    j += 1;
                }
            }
        }
    }

    fn identifier(&mut self, start: usize) {
        let mut j = start + 1;
        while self.at(j).is_some_and(is_ident_char) {
            j += 1;
        }
        let plain_end = j;
        while self.at(j).is_some_and(|c| is_ident_char(c) || c == '-') {
            j += 1;
        }
        if j > plain_end {
            self.push(TokenKind::IdentHyphen, start, j);
            return;
        }
        let text = self.text(start, j);
        let kind = match text.as_str() {
            "true" => TokenKind::Bool(true),
            "false" => TokenKind::Bool(false),
            other => Keyword::from_ident(other).map_or(TokenKind::Ident, TokenKind::Keyword),
        };
        self.push(kind, start, j);
    }

    /// `[+-]?` then the longest of `('0' | [1-9][0-9]*)` and `[0-9]* '.' [0-9]+`.
    fn number(&mut self, start: usize) -> bool {
        let sign = self.at(start).filter(|c| *c == '+' || *c == '-');
        let body = start + usize::from(sign.is_some());
        let int_end = match self.at(body) {
            Some('0') => Some(body + 1),
            Some('1'..='9') => {
                let mut k = body + 1;
                while is_digit(self.chars.get(k)) {
                    k += 1;
                }
                Some(k)
            }
            _ => None,
        };
        let mut k = body;
        while is_digit(self.chars.get(k)) {
            k += 1;
        }
        let float_end = if self.at(k) == Some('.') && is_digit(self.chars.get(k + 1)) {
            k += 2;
            while is_digit(self.chars.get(k)) {
                k += 1;
            }
            Some(k)
        } else {
            None
        };
        let negative = sign == Some('-');
        match (int_end, float_end) {
            (_, Some(f)) if int_end.is_none_or(|i| f > i) => {
                let kind = if negative {
                    TokenKind::FloatNeg
                } else {
                    TokenKind::FloatPos
                };
                self.push(kind, start, f);
                true
            }
            (Some(i), _) => {
                let kind = if negative {
                    TokenKind::IntNeg
                } else {
                    TokenKind::IntPos
                };
                self.push(kind, start, i);
                true
            }
            _ => {
                let what = sign.unwrap_or('?');
                self.invalid(format!("unexpected '{what}'"), start, start)
            }
        }
    }

    /// `t'YYYY-MM-DDTHH:MM:SS(.s+)?Z'` with the field ranges of the grammar.
    fn timestamp(&mut self, start: usize) -> bool {
        let s = start + 2;
        let d = |k: usize| self.at(s + k).filter(char::is_ascii_digit);
        let lit = |k: usize, c: char| self.at(s + k) == Some(c);
        let two = |k: usize| -> Option<(char, char)> { Some((d(k)?, d(k + 1)?)) };
        let ok_fixed = (0..4).all(|k| d(k).is_some())
            && lit(4, '-')
            && matches!(two(5), Some(('0', '1'..='9') | ('1', '0'..='2')))
            && lit(7, '-')
            && matches!(
                two(8),
                Some(('0', '1'..='9') | ('1' | '2', _) | ('3', '0' | '1'))
            )
            && lit(10, 'T')
            && matches!(two(11), Some(('0' | '1', _) | ('2', '0'..='3')))
            && lit(13, ':')
            && matches!(two(14), Some(('0'..='5', _)))
            && lit(16, ':')
            && matches!(two(17), Some(('0'..='5', _) | ('6', '0')));
        if ok_fixed {
            let mut k = 19;
            let mut frac_ok = true;
            if lit(k, '.') {
                k += 1;
                let digits_from = k;
                while d(k).is_some() {
                    k += 1;
                }
                frac_ok = k > digits_from;
            }
            if frac_ok && lit(k, 'Z') && lit(k + 1, '\'') {
                let value = self.text(s, s + k + 1);
                self.push(TokenKind::Timestamp(value), start, s + k + 2);
                return true;
            }
        }
        self.invalid(
            "invalid timestamp literal: expected t'YYYY-MM-DDTHH:MM:SS[.fraction]Z' with valid \
             month (01-12), day (01-31), hour (00-23), minute (00-59) and second (00-60)"
                .into(),
            start,
            start,
        )
    }

    /// `h'…'` with an even number of hex digits.
    fn hex(&mut self, start: usize) -> bool {
        let mut bytes = Vec::new();
        let mut j = start + 2;
        loop {
            match self.at(j) {
                Some('\'') => {
                    self.push(TokenKind::Hex(bytes), start, j + 1);
                    return true;
                }
                Some(a) => match (hex_val(a), self.at(j + 1).and_then(hex_val)) {
                    (Some(hi), Some(lo)) => {
                        bytes.push((hi << 4) | lo);
                        j += 2;
                    }
                    _ => break,
                },
                None => break,
            }
        }
        self.invalid(
            "invalid hex literal: expected h'…' with pairs of hex digits".into(),
            start,
            start,
        )
    }

    /// `b'…'`: padded base64, at least one 4-character group.
    fn binary(&mut self, start: usize) -> bool {
        let mut bytes = Vec::new();
        let mut j = start + 2;
        let mut groups = 0usize;
        loop {
            if groups > 0 && self.at(j) == Some('\'') {
                self.push(TokenKind::Binary(bytes), start, j + 1);
                return true;
            }
            let q: Vec<Option<char>> = (0..4).map(|k| self.at(j + k)).collect();
            let v: Vec<Option<u32>> = q.iter().map(|c| c.and_then(b64_val)).collect();
            let (Some(Some(a)), Some(Some(b))) = (v.first(), v.get(1)) else {
                break;
            };
            let (c, dd) = (v.get(2).copied().flatten(), v.get(3).copied().flatten());
            let third = q.get(2).copied().flatten();
            let fourth = q.get(3).copied().flatten();
            let n = (a << 18) | (b << 12) | (c.unwrap_or(0) << 6) | dd.unwrap_or(0);
            let [_, b0, b1, b2] = n.to_be_bytes();
            groups += 1;
            j += 4;
            match (c, dd) {
                (Some(_), Some(_)) => bytes.extend_from_slice(&[b0, b1, b2]),
                (Some(_), None) if fourth == Some('=') => {
                    bytes.extend_from_slice(&[b0, b1]);
                    // Padding ends the data.
                    if self.at(j) == Some('\'') {
                        continue;
                    }
                    break;
                }
                (None, None) if third == Some('=') && fourth == Some('=') => {
                    bytes.push(b0);
                    if self.at(j) == Some('\'') {
                        continue;
                    }
                    break;
                }
                _ => break,
            }
        }
        self.invalid(
            "invalid binary literal: expected b'…' with padded base64 data".into(),
            start,
            start,
        )
    }
}
