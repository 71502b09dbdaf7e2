#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;

fn ok(p: &str) -> Pattern {
    parse(p).unwrap_or_else(|e| panic!("{p:?} should be valid: {e}"))
}

fn err(p: &str) -> PatternError {
    match parse(p) {
        Ok(ast) => panic!("{p:?} should be invalid, parsed as {ast:?}"),
        Err(e) => e,
    }
}

fn atomic(p: &str) -> Vec<(IocType, String)> {
    match reduce(&ok(p)) {
        Reduction::Atomic(v) => v.into_iter().map(|i| (i.ioc_type, i.value)).collect(),
        Reduction::NotJoinable(r) => panic!("{p:?} should reduce, got: {r}"),
    }
}

fn not_joinable(p: &str) -> String {
    match reduce(&ok(p)) {
        Reduction::Atomic(v) => panic!("{p:?} should not reduce, got {v:?}"),
        Reduction::NotJoinable(r) => r,
    }
}

/// The single comparison of `[ … ]`.
fn comparison(p: &str) -> Comparison {
    match ok(p).expression {
        ObservationExpr::Observation(ComparisonExpr::Test(PropTest::Comparison(c))) => c,
        other => panic!("not a single comparison: {other:?}"),
    }
}

fn value(p: &str) -> Literal {
    match comparison(p).value {
        Value::Literal(l) => l,
        other => panic!("not a literal: {other:?}"),
    }
}

/// Shape of an observation tree: `[n]` for an observation whose first value is int n.
fn shape(e: &ObservationExpr) -> String {
    let join = |items: &Vec<ObservationExpr>, op: &str| {
        let parts: Vec<String> = items.iter().map(shape).collect();
        format!("{op}({})", parts.join(","))
    };
    match e {
        ObservationExpr::Observation(c) => format!("[{}]", cmp_shape(c)),
        ObservationExpr::Group(i) => format!("G{}", shape(i)),
        ObservationExpr::And(v) => join(v, "AND"),
        ObservationExpr::Or(v) => join(v, "OR"),
        ObservationExpr::FollowedBy(v) => join(v, "FBY"),
        ObservationExpr::Qualified(i, q) => format!("Q{}{}", q.len(), shape(i)),
    }
}

fn cmp_shape(c: &ComparisonExpr) -> String {
    let join = |items: &Vec<ComparisonExpr>, op: &str| {
        let parts: Vec<String> = items.iter().map(cmp_shape).collect();
        format!("{op}({})", parts.join(","))
    };
    match c {
        ComparisonExpr::Test(PropTest::Comparison(c)) => c.value.to_string(),
        ComparisonExpr::Test(PropTest::Exists(p)) => format!("E {p}"),
        ComparisonExpr::And(v) => join(v, "and"),
        ComparisonExpr::Or(v) => join(v, "or"),
    }
}

// -- precedence ---------------------------------------------------------------------------

#[test]
fn observation_precedence_and_over_or_over_followedby() {
    let p = ok("[a:b=1] OR [a:b=2] AND [a:b=3] FOLLOWEDBY [a:b=4] AND [a:b=5] OR [a:b=6]");
    assert_eq!(
        shape(&p.expression),
        "FBY(OR([1],AND([2],[3])),OR(AND([4],[5]),[6]))"
    );
    let p = ok("([a:b=1] OR [a:b=2]) AND [a:b=3]");
    assert_eq!(shape(&p.expression), "AND(GOR([1],[2]),[3])");
    let p = ok("[a:b=1] FOLLOWEDBY [a:b=2] FOLLOWEDBY [a:b=3]");
    assert_eq!(shape(&p.expression), "FBY([1],[2],[3])");
}

#[test]
fn comparison_precedence_and_over_or_with_parentheses() {
    let p = ok("[a:b=1 OR a:b=2 AND a:b=3 OR a:b=4]");
    assert_eq!(shape(&p.expression), "[or(1,and(2,3),4)]");
    let p = ok("[(a:b=1 OR a:b=2) AND a:b=3]");
    assert_eq!(shape(&p.expression), "[and(or(1,2),3)]");
    // Redundant parentheses and same-operator runs flatten.
    let p = ok("[((a:b=1)) OR (a:b=2 OR (a:b=3))]");
    assert_eq!(shape(&p.expression), "[or(1,2,3)]");
}

#[test]
fn qualifiers_bind_to_the_nearest_observation() {
    let p = ok("[a:b=1] AND [a:b=2] WITHIN 5 SECONDS");
    assert_eq!(shape(&p.expression), "AND([1],Q1[2])");
    let p = ok("([a:b=1] AND [a:b=2]) WITHIN 5 SECONDS REPEATS 2 TIMES");
    assert_eq!(shape(&p.expression), "Q2GAND([1],[2])");
}

// -- literals -----------------------------------------------------------------------------

#[test]
fn string_escapes() {
    assert_eq!(value(r"[a:b = 'it\'s']"), Literal::String("it's".into()));
    assert_eq!(
        value(r"[a:b = 'C:\\Windows\\']"),
        Literal::String(r"C:\Windows\".into())
    );
    assert_eq!(value("[a:b = '']"), Literal::String(String::new()));
    assert_eq!(
        value("[a:b = 'multi\nline é']"),
        Literal::String("multi\nline é".into())
    );
    let e = err(r"[a:b = 'bad\n escape']");
    assert!(e.message.contains("invalid escape"), "{e}");
    assert_eq!(e.offset, 11);
    assert!(err("[a:b = 'open]").message.contains("unterminated"));
    assert!(err(r"[a:b = 'trailing\']").message.contains("unterminated"));
    assert!(err("[a:b = \"double\"]").message.contains("single quotes"));
}

#[test]
fn numeric_and_boolean_literals() {
    assert_eq!(value("[a:b = 42]"), Literal::Int("42".into()));
    assert_eq!(value("[a:b = -7]").as_i64(), Some(-7));
    assert_eq!(value("[a:b = +0]").as_i64(), Some(0));
    assert_eq!(value("[a:b = 3.25]"), Literal::Float("3.25".into()));
    assert_eq!(value("[a:b = -.5]").as_f64(), Some(-0.5));
    assert_eq!(value("[a:b = 00.5]").as_f64(), Some(0.5));
    assert_eq!(
        value("[a:b = 123456789012345678901234567890]").as_i64(),
        None
    );
    assert_eq!(value("[a:b = true]"), Literal::Bool(true));
    assert_eq!(value("[a:b != false]"), Literal::Bool(false));
    err("[a:b = 01]");
    err("[a:b = 1.]");
    err("[a:b = 1e5]");
    err("[a:b = TRUE]");
    err("[a:b > true]");
    err("[a:b = +]");
}

#[test]
fn hex_binary_and_timestamp_literals() {
    assert_eq!(
        value("[a:b = h'00fFa0']"),
        Literal::Hex(vec![0, 0xff, 0xa0])
    );
    assert_eq!(value("[a:b = h'']"), Literal::Hex(vec![]));
    err("[a:b = h'abc']");
    err("[a:b = h'zz']");
    assert_eq!(value("[a:b = b'aGk=']"), Literal::Binary(b"hi".to_vec()));
    assert_eq!(value("[a:b = b'aA==']"), Literal::Binary(b"h".to_vec()));
    assert_eq!(
        value("[a:b = b'aGVsbG8h']"),
        Literal::Binary(b"hello!".to_vec())
    );
    assert_eq!(
        value("[a:b = b'dGhpcyBpcyBhIHRlc3Q=']"),
        Literal::Binary(b"this is a test".to_vec())
    );
    for bad in [
        "b''",
        "b'aGk'",
        "b'a==='",
        "b'aG=k'",
        "b'aGk=aGk='",
        "b'a*k='",
    ] {
        err(&format!("[a:b = {bad}]"));
    }
    assert_eq!(
        value("[a:b = t'2016-06-01T01:30:00.123Z']"),
        Literal::Timestamp("2016-06-01T01:30:00.123Z".into())
    );
    ok("[a:b = t'2016-12-31T23:59:60Z']");
    // Field ranges are checked as in the reference grammar, not against the calendar.
    ok("[a:b = t'2016-02-31T00:00:00Z']");
    for bad in [
        "t'2016-06-01'",
        "t'2016-00-01T00:00:00Z'",
        "t'2016-13-01T00:00:00Z'",
        "t'2016-01-32T00:00:00Z'",
        "t'2016-01-01T24:00:00Z'",
        "t'2016-01-01T00:60:00Z'",
        "t'2016-01-01T00:00:61Z'",
        "t'2016-01-01T00:00:00.Z'",
        "t'2016-01-01T00:00:00+00:00'",
        "t'2016-01-01t00:00:00z'",
        "t'2016/01/01T00:00:00Z'",
    ] {
        let e = err(&format!("[a:b = {bad}]"));
        assert!(e.message.contains("timestamp"), "{bad}: {e}");
    }
}

#[test]
fn operators_and_not() {
    let ops = [
        ("=", Operator::Eq),
        ("==", Operator::Eq),
        ("!=", Operator::Ne),
        ("<>", Operator::Ne),
        ("<", Operator::Lt),
        ("<=", Operator::Le),
        (">", Operator::Gt),
        (">=", Operator::Ge),
        ("LIKE", Operator::Like),
        ("MATCHES", Operator::Matches),
        ("ISSUBSET", Operator::IsSubset),
        ("ISSUPERSET", Operator::IsSuperset),
    ];
    for (text, op) in ops {
        let c = comparison(&format!("[a:b NOT {text} 'x']"));
        assert_eq!((c.op, c.negated), (op, true), "{text}");
    }
    let c = comparison("[a:b IN ('x', 1, true)]");
    assert_eq!(c.op, Operator::In);
    assert_eq!(
        c.value,
        Value::Set(vec![
            Literal::String("x".into()),
            Literal::Int("1".into()),
            Literal::Bool(true)
        ])
    );
    assert_eq!(comparison("[a:b IN ()]").value, Value::Set(vec![]));
    err("[a:b IN (1,)]");
    err("[a:b IN 1]");
    err("[a:b LIKE 1]");
    err("[a:b MATCHES /x/]");
    err("[a:b NOT NOT = 1]");
    err("[NOT a:b = 1]");
    err("[a:b = = 1]");
    err("[a:b =? 1]");
    match ok("[EXISTS a:b.c]").expression {
        ObservationExpr::Observation(ComparisonExpr::Test(PropTest::Exists(p))) => {
            assert_eq!(p.to_string(), "a:b.c")
        }
        other => panic!("{other:?}"),
    }
}

// -- qualifiers ---------------------------------------------------------------------------

fn qualifiers(p: &str) -> Vec<Qualifier> {
    match ok(p).expression {
        ObservationExpr::Qualified(_, q) => q,
        other => panic!("not qualified: {other:?}"),
    }
}

#[test]
fn qualifier_forms() {
    assert_eq!(
        qualifiers("[a:b=1] WITHIN 5 SECONDS"),
        [Qualifier::Within { seconds: 5.0 }]
    );
    assert_eq!(
        qualifiers("[a:b=1] WITHIN .5 SECONDS REPEATS +3 TIMES"),
        [
            Qualifier::Within { seconds: 0.5 },
            Qualifier::Repeats { times: 3 }
        ]
    );
    assert_eq!(
        qualifiers("[a:b=1] START t'2016-06-01T00:00:00Z' STOP t'2016-07-01T00:00:00Z'"),
        [Qualifier::StartStop {
            start: "2016-06-01T00:00:00Z".into(),
            stop: "2016-07-01T00:00:00Z".into()
        }]
    );
    ok("[a:b=1] REPEATS 0 TIMES");
    // Out-of-range numbers are valid for the reference validator: they saturate.
    let huge = "9".repeat(400);
    let q = qualifiers(&format!(
        "[a:b=1] WITHIN {huge} SECONDS REPEATS {huge} TIMES"
    ));
    assert_eq!(
        q,
        [
            Qualifier::Within { seconds: f64::MAX },
            Qualifier::Repeats { times: u64::MAX }
        ]
    );
    let p = ok(&format!("[a:b=1] WITHIN {huge}.5 SECONDS"));
    assert_eq!(parse(&p.to_string()), Ok(p));
    let c = comparison(&format!("[a:b[{huge}][-{huge}] = 1]"));
    assert_eq!(
        c.path.steps[1..],
        [PathStep::Index(i64::MAX), PathStep::Index(i64::MIN)]
    );
    err("[a:b=1] WITHIN -5 SECONDS");
    err("[a:b=1] WITHIN 5");
    err("[a:b=1] REPEATS 1.5 TIMES");
    err("[a:b=1] within 5 seconds");
    err("[a:b=1] START '2016-06-01T00:00:00Z' STOP t'2016-07-01T00:00:00Z'");
    err("[a:b=1] START t'2016-06-01T00:00:00Z'");
    err("WITHIN 5 SECONDS [a:b=1]");
}

#[test]
fn duplicate_qualifiers_only_rejected_directly_on_brackets() {
    let e = err("[a:b=1] REPEATS 2 TIMES REPEATS 3 TIMES");
    assert_eq!(e.message, "Duplicate qualifier type encountered: REPEATS");
    let e = err("[a:b=1] WITHIN 1 SECONDS REPEATS 2 TIMES WITHIN 3 SECONDS");
    assert_eq!(e.message, "Duplicate qualifier type encountered: WITHIN");
    let ss = "START t'2016-06-01T00:00:00Z' STOP t'2016-07-01T00:00:00Z'";
    let e = err(&format!("[a:b=1] {ss} {ss}"));
    assert_eq!(e.message, "Duplicate qualifier type encountered: STARTSTOP");
    err("([a:b=1] REPEATS 2 TIMES REPEATS 3 TIMES)");
    // On a parenthesised group the validator allows it.
    ok("([a:b=1]) WITHIN 1 SECONDS WITHIN 2 SECONDS");
    ok("([a:b=1] WITHIN 1 SECONDS) WITHIN 2 SECONDS");
}

// -- object paths -------------------------------------------------------------------------

#[test]
fn object_paths_and_quoted_keys() {
    let c = comparison("[file:hashes.'SHA-256' = 'aec070645fe53ee3b3763059376134f058cc337247c978add178b6ccdfb0019f']");
    assert_eq!(c.path.object_type, "file");
    assert_eq!(
        c.path.steps,
        [
            PathStep::Key("hashes".into()),
            PathStep::Key("SHA-256".into())
        ]
    );
    let c = comparison("[x-foo-bar:'first key'.list[*].n[-2][7].'it\\'s' = 1]");
    assert_eq!(c.path.object_type, "x-foo-bar");
    assert_eq!(
        c.path.steps,
        [
            PathStep::Key("first key".into()),
            PathStep::Key("list".into()),
            PathStep::AnyIndex,
            PathStep::Key("n".into()),
            PathStep::Index(-2),
            PathStep::Index(7),
            PathStep::Key("it's".into()),
        ]
    );
    assert_eq!(
        c.path.to_string(),
        "x-foo-bar:'first key'.list[*].n[-2][7].'it\\'s'"
    );
    ok("[domain-name:value = 'x']");
    ok("[a : b . c [ * ] = 1]");
    ok("[_:_ = 1]");
    ok("[a:'AND' = 1]");
    // Property names cannot contain unquoted hyphens; keywords cannot be names.
    assert!(err("[file:hashes.SHA-256 = 'x']")
        .message
        .contains("quote it"));
    err("[a:b-c = 1]");
    err("[a:AND = 1]");
    err("[true:b = 1]");
    err("[a:b.5 = 1]");
    err("[a:b[1.5] = 1]");
    err("[file:hashes.\"SHA-256\" = 'x']");
    err("[é:b = 1]");
}

// -- validator checks ---------------------------------------------------------------------

#[test]
fn missing_square_brackets() {
    for p in [
        "file:size = 1280",
        "( file:size = 1280 )",
        "",
        "   ",
        "((",
        "/* comment */ [a:b=1]",
    ] {
        let e = err(p);
        assert_eq!(
            (e.message.as_str(), e.offset),
            ("input is missing square brackets", 0),
            "{p:?}"
        );
    }
    ok(" ( ( [a:b=1] ) ) ");
    ok("[a:b=1] /* trailing comment */");
    ok("[a:b=1 // line comment\n]");
}

#[test]
fn hash_values_are_checked_for_known_algorithms() {
    let e = err("[file:hashes.'SHA-256' = 'f00']");
    assert_eq!(e.message, "'f00' is not a valid SHA-256 hash");
    ok("[file:hashes.MD5 = 'D41D8CD98F00B204E9800998ECF8427E']");
    err("[file:hashes.md5 = 'd41d8cd98f00b204e9800998ecf8427']");
    ok("[file:hashes.'SHA-1' = '2b999e7db890cc77f0098a091de756a1803a3c2b']");
    ok("[file:hashes.ssdeep = '768:mvAFYk0IOqi7RKW1RD1ZCrm82+AnbaAOdoOKL70ehP:cDIOqctz2rBmbZoa71hP']");
    err("[file:hashes.ssdeep = 'not ssdeep']");
    // Unknown algorithms are not checked.
    ok("[file:hashes.'x-custom' = 'anything']");
    // Any comparison on any object's `hashes` is checked, whatever the operator.
    err("[artifact:hashes.MD5 != 'zz']");
    err("[file:hashes.MD5 LIKE 'd41d%']");
    err("[file:hashes.MD5 IN ('d41d8cd98f00b204e9800998ecf8427e')]");
    ok("[file:hashes[*] = 'zz']");
    ok("[EXISTS file:hashes.MD5]");
}

#[test]
fn cross_type_and_in_one_observation_is_valid_like_the_validator() {
    ok("[a:b=1 AND b:c=1]");
    ok("[ipv4-addr:value = '1.2.3.4' AND file:name = 'x']");
}

#[test]
fn error_offsets_are_character_columns() {
    let e = err("[a:b = 'é' AND ]");
    assert_eq!(e.offset, 15);
    assert!(e.to_string().ends_with("at column 15"), "{e}");
    let e = err("[a:b = 1] XOR [a:b = 2]");
    assert_eq!(e.offset, 10);
}

// -- robustness ---------------------------------------------------------------------------

#[test]
fn deep_nesting_is_an_error_not_a_stack_overflow() {
    let deep = "(".repeat(100_000);
    let e = err(&format!("{deep}[a:b=1]"));
    assert!(e.message.contains("nesting"), "{e}");
    let e = err(&format!("[{deep}a:b=1]"));
    assert!(e.message.contains("nesting"), "{e}");
    let e = err(&"[".repeat(100_000));
    assert!(!e.message.is_empty());
    let e = err(&format!(
        "{}[a:b=1]{}",
        "(".repeat(MAX_DEPTH),
        ")".repeat(MAX_DEPTH)
    ));
    assert!(e.message.contains("nesting"), "{e}");
    let n = MAX_DEPTH - 1;
    ok(&format!("{}[a:b=1]{}", "(".repeat(n), ")".repeat(n)));
    ok(&format!("[{}a:b=1{}]", "(".repeat(n), ")".repeat(n)));
}

#[test]
fn long_flat_chains_do_not_recurse() {
    let ors: Vec<String> = (0..20_000)
        .map(|i| format!("ipv4-addr:value = '10.0.{}.{}'", i / 256, i % 256))
        .collect();
    let p = format!("[{}]", ors.join(" OR "));
    assert_eq!(atomic(&p).len(), 20_000);
    let obs: Vec<&str> = std::iter::repeat_n("[a:b=1]", 20_000).collect();
    ok(&obs.join(" FOLLOWEDBY "));
    let quals = " WITHIN 1 SECONDS".repeat(20_000);
    let p = ok(&format!("([a:b=1]){quals}"));
    assert_eq!(not_joinable(&p.to_string()), "WITHIN qualifier");
}

/// Small deterministic PRNG (xorshift64*).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

const PIECES: &[&str] = &[
    "[",
    "]",
    "(",
    ")",
    "'",
    "\\",
    "\\'",
    "\\\\",
    " ",
    "\n",
    "AND",
    " AND ",
    " OR ",
    " FOLLOWEDBY ",
    "NOT ",
    "EXISTS ",
    " IN ",
    " LIKE ",
    " MATCHES ",
    " ISSUBSET ",
    " ISSUPERSET ",
    "=",
    "==",
    "!=",
    "<>",
    "<",
    "<=",
    ">",
    ">=",
    ":",
    ".",
    ",",
    "*",
    "[*]",
    "[0]",
    "[-1]",
    "1",
    "-1",
    "+1",
    ".5",
    "-.5",
    "01",
    "true",
    "h'0a'",
    "h'a'",
    "b'AAAA'",
    "b'AA=='",
    "b'A'",
    "t'2016-01-01T00:00:00Z'",
    "t'2016-13-01T00:00:00Z'",
    " WITHIN 5 SECONDS",
    " REPEATS 2 TIMES",
    " START t'2016-01-01T00:00:00Z' STOP t'2016-01-02T00:00:00Z'",
    "file",
    "x-foo",
    "ipv4-addr",
    "value",
    "hashes",
    "'SHA-256'",
    "MD5",
    "ssdeep",
    "'d41d8cd98f00b204e9800998ecf8427e'",
    "'1.2.3.4'",
    "/*",
    "*/",
    "//",
    "é",
    "\u{0}",
    "\u{3000}",
    "\"",
];

fn random_input(rng: &mut Rng) -> String {
    match rng.below(3) {
        // Raw bytes (lossily decoded).
        0 => {
            let len = rng.below(64);
            let bytes: Vec<u8> = (0..len).map(|_| (rng.next() & 0xff) as u8).collect();
            String::from_utf8_lossy(&bytes).into_owned()
        }
        // Token soup.
        1 => (0..rng.below(24))
            .map(|_| PIECES[rng.below(PIECES.len())])
            .collect(),
        // Mutated valid patterns.
        _ => {
            let seeds = [
                "[ipv4-addr:value = '1.2.3.4' OR domain-name:value = 'x.org']",
                "([file:hashes.MD5 = 'd41d8cd98f00b204e9800998ecf8427e'] AND [a:b IN (1, 2)]) WITHIN 5 SECONDS",
                "[a:b.'c'[*] NOT LIKE 'x%'] FOLLOWEDBY [EXISTS a:c] REPEATS 2 TIMES",
                "[x:t = t'2016-01-01T00:00:00Z' AND x:h = h'00' OR x:b = b'AAAA']",
            ];
            let mut s: Vec<char> = seeds[rng.below(seeds.len())].chars().collect();
            for _ in 0..=rng.below(4) {
                let at = rng.below(s.len() + 1);
                match rng.below(3) {
                    0 => {
                        let piece: Vec<char> = PIECES[rng.below(PIECES.len())].chars().collect();
                        s.splice(at..at, piece);
                    }
                    1 if at < s.len() => {
                        let end = (at + 1 + rng.below(5)).min(s.len());
                        s.drain(at..end);
                    }
                    _ => s.insert(at, char::from(b' ' + (rng.next() % 95) as u8)),
                }
            }
            s.into_iter().collect()
        }
    }
}

#[test]
fn arbitrary_input_never_panics_and_valid_input_round_trips() {
    let mut rng = Rng(0x5eed_cafe_f00d_1234);
    let mut valid = 0;
    for _ in 0..30_000 {
        let input = random_input(&mut rng);
        let report = analyze(&input);
        assert_eq!(report.valid, report.error.is_none());
        if let Ok(p) = parse(&input) {
            valid += 1;
            let printed = p.to_string();
            let again = parse(&printed)
                .unwrap_or_else(|e| panic!("{input:?} printed as {printed:?} fails: {e}"));
            assert_eq!(p, again, "{input:?} printed as {printed:?}");
            assert_eq!(reduce(&p), reduce(&again));
        }
    }
    assert!(
        valid > 500,
        "generator produced too few valid patterns: {valid}"
    );
}

// -- reduction ----------------------------------------------------------------------------

#[test]
fn reduces_or_joined_equality_on_ioc_paths() {
    assert_eq!(
        atomic("[ipv4-addr:value = '198.51.100.0/24' OR ipv6-addr:value = '2001:DB8::/32']"),
        [
            (IocType::Ipv4, "198.51.100.0/24".to_string()),
            (IocType::Ipv6, "2001:DB8::/32".to_string())
        ]
    );
    assert_eq!(
        atomic("([domain-name:value = 'Evil.EXAMPLE'] OR ([url:value = 'http://x/A'])) OR [email-addr:value = 'Bob@X.org']"),
        [
            (IocType::Domain, "evil.example".to_string()),
            (IocType::Url, "http://x/A".to_string()),
            (IocType::Email, "Bob@X.org".to_string())
        ]
    );
    assert_eq!(
        atomic("[url:value IN ('http://a/', 'http://b/', 'http://a/')]"),
        [
            (IocType::Url, "http://a/".to_string()),
            (IocType::Url, "http://b/".to_string())
        ]
    );
    // Deduplicated after normalisation, first-seen order.
    assert_eq!(
        atomic("[domain-name:value = 'b.org' OR domain-name:value = 'A.org'] OR [domain-name:value = 'B.ORG']"),
        [(IocType::Domain, "b.org".to_string()), (IocType::Domain, "a.org".to_string())]
    );
    assert_eq!(
        atomic("[url:value = 'it\\'s' OR url:value == 'back\\\\slash']"),
        [
            (IocType::Url, "it's".to_string()),
            (IocType::Url, "back\\slash".to_string())
        ]
    );
}

#[test]
fn hash_algorithm_names_are_normalised() {
    let md5 = "D41D8CD98F00B204E9800998ECF8427E";
    let sha1 = "2b999e7db890cc77f0098a091de756a1803a3c2b";
    let sha256 = "aec070645fe53ee3b3763059376134f058cc337247c978add178b6ccdfb0019f";
    let sha512 = "a".repeat(128);
    for (key, v, t) in [
        ("MD5", md5, IocType::Md5),
        ("md5", md5, IocType::Md5),
        ("'MD5'", md5, IocType::Md5),
        ("'SHA-1'", sha1, IocType::Sha1),
        ("SHA1", sha1, IocType::Sha1),
        ("'SHA-256'", sha256, IocType::Sha256),
        ("SHA256", sha256, IocType::Sha256),
        ("'sha-256'", sha256, IocType::Sha256),
        ("'SHA-512'", &sha512, IocType::Sha512),
    ] {
        assert_eq!(
            atomic(&format!("[file:hashes.{key} = '{v}']")),
            [(t, v.to_lowercase())],
            "{key}"
        );
    }
    let sha3 = format!("[file:hashes.'SHA3-256' = '{sha256}']");
    assert!(not_joinable(&sha3).contains("SHA3-256"));
    assert!(not_joinable("[file:hashes.ssdeep = '3:a:b']").contains("ssdeep"));
    assert!(not_joinable("[file:hashes[*] = 'x']").contains("file:hashes[*]"));
    assert!(
        not_joinable("[artifact:hashes.MD5 = 'd41d8cd98f00b204e9800998ecf8427e']")
            .contains("not an atomic IOC path")
    );
}

#[test]
fn non_joinable_constructs_are_named() {
    let cases = [
        ("[ipv4-addr:value = '1.2.3.4'] AND [ipv4-addr:value = '1.2.3.5']", "AND"),
        ("[ipv4-addr:value = '1.2.3.4' AND ipv4-addr:value = '1.2.3.5']", "AND"),
        ("[ipv4-addr:value = '1.2.3.4'] FOLLOWEDBY [ipv4-addr:value = '1.2.3.5']", "FOLLOWEDBY"),
        ("[ipv4-addr:value = '1.2.3.4'] WITHIN 5 SECONDS", "WITHIN"),
        ("[ipv4-addr:value = '1.2.3.4'] REPEATS 5 TIMES", "REPEATS"),
        (
            "[ipv4-addr:value = '1.2.3.4'] START t'2016-01-01T00:00:00Z' STOP t'2016-01-02T00:00:00Z'",
            "START/STOP",
        ),
        ("[ipv4-addr:value != '1.2.3.4']", "!="),
        ("[ipv4-addr:value NOT = '1.2.3.4']", "NOT"),
        ("[ipv4-addr:value NOT IN ('1.2.3.4')]", "NOT"),
        ("[ipv4-addr:value ISSUBSET '1.2.3.0/24']", "ISSUBSET"),
        ("[domain-name:value LIKE '%.evil.org']", "LIKE"),
        ("[domain-name:value MATCHES '^evil']", "MATCHES"),
        ("[file:name = 'evil.exe']", "file:name"),
        ("[ipv4-addr:value = 16909060]", "integer"),
        ("[ipv4-addr:value = '']", "empty"),
        ("[ipv4-addr:value IN ()]", "empty IN set"),
        ("[EXISTS ipv4-addr:value]", "EXISTS"),
        ("[ipv4-addr:value = '1.2.3.4'] OR [file:name = 'x']", "file:name"),
    ];
    for (p, needle) in cases {
        let reason = not_joinable(p);
        assert!(
            reason.contains(needle),
            "{p}: {reason:?} should mention {needle}"
        );
    }
}

#[test]
fn report_serialisation() {
    let r = analyze("[domain-name:value = 'X.org']");
    assert_eq!(
        serde_json::to_string(&r).unwrap(),
        r#"{"pattern":"[domain-name:value = 'X.org']","valid":true,"error":null,"iocs":[{"type":"domain","value":"x.org"}],"not_joinable":null}"#
    );
    let r = analyze("[file:hashes.'SHA-256' = 'f00']");
    assert_eq!(
        serde_json::to_string(&r).unwrap(),
        r#"{"pattern":"[file:hashes.'SHA-256' = 'f00']","valid":false,"error":"'f00' is not a valid SHA-256 hash at column 25","iocs":null,"not_joinable":null}"#
    );
    let all = [
        IocType::Ipv4,
        IocType::Ipv6,
        IocType::Domain,
        IocType::Url,
        IocType::Email,
        IocType::Md5,
        IocType::Sha1,
        IocType::Sha256,
        IocType::Sha512,
    ];
    for t in all {
        assert_eq!(serde_json::to_value(t).unwrap(), t.as_str());
    }
}

#[test]
fn canonical_printing() {
    let p = ok("( [a:b=1]OR[ a:'c d'[*] NOT LIKE 'x\\'%' ] )WITHIN 5 SECONDS FOLLOWEDBY [a:b IN (h'0A', b'aGk=', -.5)]");
    assert_eq!(
        p.to_string(),
        "([a:b = 1] OR [a:'c d'[*] NOT LIKE 'x\\'%']) WITHIN 5 SECONDS FOLLOWEDBY [a:b IN (h'0a', b'aGk=', -.5)]"
    );
    let p = ok("[(a:b=1 OR a:b=2) AND a:c=3]");
    assert_eq!(p.to_string(), "[(a:b = 1 OR a:b = 2) AND a:c = 3]");
}
