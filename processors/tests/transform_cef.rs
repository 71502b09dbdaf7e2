//! CEF:0 transform: a strict CEF parser written from the ArcSight guide (rev. 25) reads every
//! line back, and every mapped value must come back equal to the canonical value, cut to the
//! guide's length limit for its key (the documented truncation) and, in the header, with line
//! breaks turned into one space. Property test over arbitrary hostile events, goldens for every
//! example (`SECFLOW_BLESS=1` rewrites them), and unit tests for the nasty cases.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::IpAddr;
use std::path::PathBuf;

use proptest::prelude::*;

use processors::event::{
    Activity, Direction, EventCategory, EventKind, Mitre, MitreTechnique, Network, Rule,
    SecurityEvent, Severity,
};
use processors::transform::cef::to_cef;
use processors::transform::{Format, TransformError};

// ---------------------------------------------------------------------------------------------
// Strict parser.

/// A parsed CEF line: the 6 header fields after `CEF:0` (unescaped) and the extension pairs in
/// line order (values unescaped).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Cef {
    vendor: String,
    product: String,
    version: String,
    signature: String,
    name: String,
    severity: String,
    ext: Vec<(String, String)>,
}

impl Cef {
    fn get(&self, key: &str) -> Option<&str> {
        self.ext
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// Parse one CEF:0 line strictly: no raw CR or LF anywhere; exactly 7 header fields (`CEF:0`
/// and the 6 others) separated by unescaped pipes, header escapes `\\` and `\|` only; extension
/// `key=value` pairs separated by one space, a key being `[A-Za-z0-9_]+` right after a space
/// (or at the start) and right before an unescaped `=`; value escapes `\\`, `\=`, `\n`, `\r`
/// only; any other unescaped `=` (one not preceded by ` key`) is an error; no empty value, no
/// duplicate key.
fn parse(line: &str) -> Result<Cef, String> {
    if line.contains(['\r', '\n']) {
        return Err("raw CR or LF in the line".into());
    }
    let rest = line
        .strip_prefix("CEF:0|")
        .ok_or("does not start with CEF:0|")?;

    // Header: 6 more fields, each ended by an unescaped pipe.
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut chars = rest.char_indices();
    let mut ext_start = None;
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some((_, c @ ('\\' | '|'))) => field.push(c),
                Some((_, c)) => return Err(format!("unknown header escape \\{c}")),
                None => return Err("header ends with a lone backslash".into()),
            },
            '|' => {
                fields.push(std::mem::take(&mut field));
                if fields.len() == 6 {
                    ext_start = Some(i + 1);
                    break;
                }
            }
            c => field.push(c),
        }
    }
    let ext_start = ext_start.ok_or_else(|| format!("only {} header fields", fields.len() + 1))?;
    let ext = &rest[ext_start..];

    // Extension: find the unescaped `=`; each one ends a key.
    let bytes = ext.as_bytes();
    let mut eqs = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b'=' => {
                eqs.push(i);
                i += 1;
            }
            _ => i += 1,
        }
    }
    let is_key = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    // (key start, `=` position) of every pair.
    let mut keys = Vec::new();
    for &eq in &eqs {
        let mut start = eq;
        while start > 0 && is_key(bytes[start - 1]) {
            start -= 1;
        }
        if start == eq {
            return Err(format!("unescaped `=` in a value at byte {eq} of {ext:?}"));
        }
        if keys.is_empty() {
            if start != 0 {
                return Err(format!("extension does not start with a key: {ext:?}"));
            }
        } else if bytes[start - 1] != b' ' {
            return Err(format!("unescaped `=` in a value at byte {eq} of {ext:?}"));
        }
        keys.push((start, eq));
    }
    if keys.is_empty() && !ext.is_empty() {
        return Err(format!("extension without any key: {ext:?}"));
    }
    let mut pairs: Vec<(String, String)> = Vec::new();
    for (n, &(start, eq)) in keys.iter().enumerate() {
        let end = keys.get(n + 1).map_or(ext.len(), |&(next, _)| next - 1);
        let key = &ext[start..eq];
        let raw = &ext[eq + 1..end];
        if raw.is_empty() {
            return Err(format!("empty value for {key}"));
        }
        let mut value = String::new();
        let mut cs = raw.chars();
        while let Some(c) = cs.next() {
            match c {
                '\\' => match cs.next() {
                    Some('\\') => value.push('\\'),
                    Some('=') => value.push('='),
                    Some('n') => value.push('\n'),
                    Some('r') => value.push('\r'),
                    Some(c) => return Err(format!("unknown extension escape \\{c} in {key}")),
                    None => return Err(format!("value of {key} ends with a lone backslash")),
                },
                c => value.push(c),
            }
        }
        if pairs.iter().any(|(k, _)| k == key) {
            return Err(format!("duplicate key {key}"));
        }
        pairs.push((key.to_owned(), value));
    }
    let mut f = fields.into_iter();
    let mut next = || f.next().unwrap_or_default();
    Ok(Cef {
        vendor: next(),
        product: next(),
        version: next(),
        signature: next(),
        name: next(),
        severity: next(),
        ext: pairs,
    })
}

fn cef_of(e: &SecurityEvent) -> (String, Cef) {
    let bytes = to_cef(e).unwrap_or_else(|err| panic!("to_cef failed: {err}"));
    let line = String::from_utf8(bytes).expect("CEF output is not UTF-8");
    let parsed = parse(&line).unwrap_or_else(|err| panic!("unparsable CEF ({err}):\n{line}"));
    (line, parsed)
}

// ---------------------------------------------------------------------------------------------
// The expected mapping, written from the table in docs/formats.md.

/// The guide's length limit of each extension key we emit (UTF-16 units); `None`: not a string.
fn limit_of(key: &str) -> Option<usize> {
    Some(match key {
        "externalId" => 40,
        "act" | "outcome" => 63,
        "proto" | "app" => 31,
        "dvchost" => 100,
        "sntdom" | "dntdom" | "destinationDnsDomain" | "deviceExternalId" | "fileHash" => 255,
        "requestContext" => 2048,
        "cs1" | "cs2" | "cs3" | "cs4" | "cs5" | "cs6" | "rawEvent" => 4000,
        "flexString1Label" | "flexString2Label" => 128,
        "rt" | "spt" | "dpt" | "in" | "out" | "spid" | "dpid" | "fsize" | "deviceDirection"
        | "cn1" | "cn2" | "cn3" | "src" | "dst" | "dvc" | "c6a1" | "c6a2" | "c6a3" => return None,
        _ => 1023,
    })
}

/// `s` cut to at most `limit` UTF-16 code units, never splitting a character.
fn cut(s: &str, limit: usize) -> String {
    let mut units = 0;
    s.chars()
        .take_while(|c| {
            units += c.len_utf16();
            units <= limit
        })
        .collect()
}

/// A header value: CR LF, CR and LF each become one space, then the cut.
fn header_value(s: &str, limit: usize) -> String {
    cut(&s.replace("\r\n", " ").replace(['\r', '\n'], " "), limit)
}

fn norm_ip(s: &str) -> IpAddr {
    match s.parse::<IpAddr>().unwrap() {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        ip => ip,
    }
}

/// Expected header (vendor, product, version, signature, name, severity) and extension pairs,
/// in order, with the cut applied.
fn expected(e: &SecurityEvent) -> ([String; 6], Vec<(String, String)>) {
    let rule = e.rule.as_ref();
    let header = [
        header_value(&e.product.vendor, 63),
        header_value(&e.product.name, 63),
        header_value(e.product.version.as_deref().unwrap_or(""), 63),
        header_value(
            rule.and_then(|r| r.id.as_deref()).unwrap_or(&e.action),
            1023,
        ),
        header_value(
            if e.kind == EventKind::Alert {
                &rule.unwrap().name
            } else {
                &e.message
            },
            512,
        ),
        match e.severity {
            Severity::Info => "1",
            Severity::Low => "3",
            Severity::Medium => "5",
            Severity::High => "8",
            Severity::Critical => "10",
        }
        .to_owned(),
    ];

    let mut x: Vec<(String, String)> = Vec::new();
    let mut put = |k: &str, v: String| x.push((k.to_owned(), v));
    put("rt", e.event_time.to_string());
    put("externalId", e.event_id.clone());
    put("cat", e.category.as_str().into());
    put("act", e.action.clone());
    put("outcome", e.outcome.as_str().into());
    put("msg", e.message.clone());

    let net = e.network.as_ref();
    let host = e.host.as_ref();
    let host_ips: Vec<IpAddr> = host.map_or(vec![], |h| h.ip.iter().map(|s| norm_ip(s)).collect());
    let src = net.and_then(|n| n.src_ip.as_deref()).map(norm_ip);
    let dst = net.and_then(|n| n.dst_ip.as_deref()).map(norm_ip);
    let owns = |ip: Option<IpAddr>| ip.is_some_and(|ip| host_ips.contains(&ip));
    let hostname = host.map(|h| h.hostname.clone());
    let shost = net.and_then(|n| n.src_hostname.clone()).or(if owns(src) {
        hostname.clone()
    } else {
        None
    });
    let dhost = net
        .and_then(|n| n.dst_hostname.clone())
        .or(if net.is_none() || owns(dst) {
            hostname.clone()
        } else {
            None
        });
    let ip =
        |put: &mut dyn FnMut(&str, String), ip: IpAddr, v4: &str, v6: &str, label: &str| match ip {
            IpAddr::V4(_) => put(v4, ip.to_string()),
            IpAddr::V6(_) => {
                put(&format!("{v6}Label"), label.into());
                put(v6, ip.to_string());
            }
        };
    if let Some(a) = src {
        ip(&mut put, a, "src", "c6a2", "Source IPv6 Address");
    }
    if let Some(p) = net.and_then(|n| n.src_port) {
        put("spt", p.to_string());
    }
    if let Some(h) = shost {
        put("shost", h);
    }
    if let Some(a) = dst {
        ip(&mut put, a, "dst", "c6a3", "Destination IPv6 Address");
    }
    if let Some(p) = net.and_then(|n| n.dst_port) {
        put("dpt", p.to_string());
    }
    if let Some(h) = dhost {
        put("dhost", h);
    }
    if let Some(d) = &e.dns {
        put("destinationDnsDomain", d.query.clone());
    }
    if let Some(s) = e.auth.as_ref().and_then(|a| a.service.clone()) {
        put("destinationServiceName", s);
    }
    if let Some(t) = net.and_then(|n| n.transport.as_deref()) {
        put("proto", t.to_uppercase());
    }
    if let Some(p) = net.and_then(|n| n.protocol.clone()) {
        put("app", p);
    }
    match net.and_then(|n| n.direction) {
        Some(Direction::Inbound) => put("deviceDirection", "0".into()),
        Some(Direction::Outbound) => put("deviceDirection", "1".into()),
        _ => {}
    }
    let http = e.http.as_ref();
    if let Some(n) = net
        .and_then(|n| n.bytes_in)
        .or(http.and_then(|h| h.response_bytes))
    {
        put("in", n.to_string());
    }
    if let Some(n) = net
        .and_then(|n| n.bytes_out)
        .or(http.and_then(|h| h.request_bytes))
    {
        put("out", n.to_string());
    }
    let email = e.email.as_ref();
    if let Some(u) = &e.user {
        put("suser", u.name.clone());
        u.id.iter().for_each(|v| put("suid", v.clone()));
        u.domain.iter().for_each(|v| put("sntdom", v.clone()));
    } else if let Some(m) = email {
        put("suser", m.from.clone());
    }
    if let Some(u) = &e.target_user {
        put("duser", u.name.clone());
        u.id.iter().for_each(|v| put("duid", v.clone()));
        u.domain.iter().for_each(|v| put("dntdom", v.clone()));
    } else if let Some(m) = email {
        let all: Vec<&str> = m.to.iter().chain(&m.cc).map(String::as_str).collect();
        put("duser", all.join(","));
    }
    let process = e.process.as_ref();
    if let Some(p) = process {
        if e.category == EventCategory::Process {
            if let Some(pp) = &p.parent {
                pp.name.iter().for_each(|v| put("sproc", v.clone()));
                pp.pid.iter().for_each(|v| put("spid", v.to_string()));
            }
            p.name.iter().for_each(|v| put("dproc", v.clone()));
            p.pid.iter().for_each(|v| put("dpid", v.to_string()));
        } else {
            p.name.iter().for_each(|v| put("sproc", v.clone()));
            p.pid.iter().for_each(|v| put("spid", v.to_string()));
        }
    }
    if let Some(f) = &e.file {
        let name = f
            .name
            .clone()
            .unwrap_or_else(|| f.path.rsplit(['/', '\\']).next().unwrap().to_owned());
        if !name.is_empty() {
            put("fname", name);
        }
        put("filePath", f.path.clone());
        f.size.iter().for_each(|v| put("fsize", v.to_string()));
        if let Some(h) = f.sha256.clone().or(f.sha1.clone()).or(f.md5.clone()) {
            put("fileHash", h);
        }
        f.mime_type.iter().for_each(|v| put("fileType", v.clone()));
    } else if let Some(a) = email.and_then(|m| m.attachments.first()) {
        put("fname", a.name.clone());
        a.size.iter().for_each(|v| put("fsize", v.to_string()));
        a.sha256.iter().for_each(|v| put("fileHash", v.clone()));
        a.mime_type.iter().for_each(|v| put("fileType", v.clone()));
    } else if let Some(p) = process.filter(|_| e.category == EventCategory::Process) {
        p.executable.iter().for_each(|v| put("filePath", v.clone()));
        p.sha256.iter().for_each(|v| put("fileHash", v.clone()));
    }
    if let Some(h) = http {
        put("request", h.url.clone());
        h.method
            .iter()
            .for_each(|v| put("requestMethod", v.clone()));
        h.user_agent
            .iter()
            .for_each(|v| put("requestClientApplication", v.clone()));
        h.referrer
            .iter()
            .for_each(|v| put("requestContext", v.clone()));
    }
    if let Some(h) = host {
        put("dvchost", h.hostname.clone());
        if let Some(a) = host_ips.iter().find(|a| a.is_ipv4()) {
            put("dvc", a.to_string());
        }
        if let Some(a) = host_ips.iter().find(|a| a.is_ipv6()) {
            put("c6a1Label", "Device IPv6 Address".into());
            put("c6a1", a.to_string());
        }
        if let Some(m) = &h.mac {
            put("dvcmac", m.replace('-', ":").to_uppercase());
        }
        h.id.iter().for_each(|v| put("deviceExternalId", v.clone()));
    }
    put("cs1Label", "tenant".into());
    put("cs1", e.tenant.clone());
    if let Some(d) = e.disposition {
        put("cs2Label", "disposition".into());
        put("cs2", d.as_str().into());
    }
    if let Some(id) = host.and_then(|h| h.id.clone()) {
        put("cs3Label", "hostId".into());
        put("cs3", id);
    }
    if let Some(m) = e.mitre.as_ref().filter(|m| !m.techniques.is_empty()) {
        let ids: Vec<&str> = m
            .techniques
            .iter()
            .map(|t| t.subtechnique.as_ref().map_or(&t.id, |s| &s.id).as_str())
            .collect();
        put("cs4Label", "mitreTechniques".into());
        put("cs4", ids.join(","));
    }
    if !e.enrichments.is_empty() {
        let ids: Vec<&str> = e
            .enrichments
            .iter()
            .map(|x| x.indicator_id.as_str())
            .collect();
        put("cs5Label", "threatIndicators".into());
        put("cs5", ids.join(","));
    }
    if let Some(c) = process.and_then(|p| p.command_line.clone()) {
        put("cs6Label", "commandLine".into());
        put("cs6", c);
    }
    let first = e.enrichments.first();
    if let Some(c) = first.and_then(|x| x.confidence) {
        put("cn1Label", "threatConfidence".into());
        put("cn1", c.to_string());
    }
    if let Some(s) = http.and_then(|h| h.status) {
        put("cn2Label", "httpStatus".into());
        put("cn2", s.to_string());
    }
    if let Some(c) = process.and_then(|p| p.exit_code) {
        put("cn3Label", "exitCode".into());
        put("cn3", c.to_string());
    }
    if let Some(f) = first {
        put("flexString1Label", "threatIoc".into());
        put("flexString1", f.ioc_value.clone());
        put("flexString2Label", "threatProvider".into());
        put("flexString2", f.provider.clone());
    }
    if let Some(r) = &e.raw {
        put("rawEvent", r.clone());
    }

    for (k, v) in &mut x {
        if let Some(limit) = limit_of(k) {
            *v = cut(v, limit);
        }
    }
    (header, x)
}

/// Parse `e`'s CEF line and check it against [`expected`], plus the limits and determinism.
fn check(e: &SecurityEvent) -> Result<(), TestCaseError> {
    let (line, cef) = cef_of(e);
    let (header, ext) = expected(e);
    let got = [
        &cef.vendor,
        &cef.product,
        &cef.version,
        &cef.signature,
        &cef.name,
        &cef.severity,
    ];
    for (i, (g, want)) in got.iter().zip(&header).enumerate() {
        prop_assert_eq!(*g, want, "header field {} of {}", i + 1, line);
    }
    for (g, limit) in got.iter().zip([63, 63, 63, 1023, 512]) {
        prop_assert!(
            g.encode_utf16().count() <= limit,
            "header over {}: {}",
            limit,
            line
        );
    }
    prop_assert_eq!(&cef.ext, &ext, "extension of {}", line);
    for (k, v) in &cef.ext {
        if let Some(limit) = limit_of(k) {
            prop_assert!(v.encode_utf16().count() <= limit, "{} over {}", k, limit);
        }
        // Every custom value comes right after its label.
        if let Some(stem) = k.strip_suffix("Label") {
            let pos = cef.ext.iter().position(|(kk, _)| kk == k).unwrap();
            prop_assert_eq!(
                cef.ext.get(pos + 1).map(|(kk, _)| kk.as_str()),
                Some(stem),
                "label {} not followed by its value",
                k
            );
        }
    }
    for custom in [
        "cs1",
        "cs2",
        "cs3",
        "cs4",
        "cs5",
        "cs6",
        "cn1",
        "cn2",
        "cn3",
        "c6a1",
        "c6a2",
        "c6a3",
        "flexString1",
        "flexString2",
    ] {
        if cef.get(custom).is_some() {
            let label = format!("{custom}Label");
            prop_assert!(cef.get(&label).is_some(), "{} without {}", custom, label);
        }
    }
    // Deterministic, and the same after an Avro round trip.
    prop_assert_eq!(to_cef(e).unwrap(), line.as_bytes());
    let back = SecurityEvent::from_avro_datum(&e.to_avro_datum().unwrap()).unwrap();
    prop_assert_eq!(Format::Cef.transform(&back).unwrap(), line.as_bytes());
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn every_value_round_trips_through_a_strict_parser(e in common::arbitrary::arb_event()) {
        check(&e)?;
    }
}

// ---------------------------------------------------------------------------------------------
// Goldens.

fn examples() -> Vec<(String, SecurityEvent)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../schemas/examples");
    let mut out: Vec<(String, SecurityEvent)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|d| d.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .map(|p| {
            let stem = p.file_stem().unwrap().to_string_lossy().into_owned();
            let text = std::fs::read_to_string(&p).unwrap();
            (stem, SecurityEvent::from_json(&text).unwrap())
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    assert!(out.len() >= 13, "example set not found");
    out
}

fn example(stem: &str) -> SecurityEvent {
    examples()
        .into_iter()
        .find(|(s, _)| s == stem)
        .unwrap_or_else(|| panic!("no example {stem}"))
        .1
}

/// Golden files hold the line and a newline (so that they are text files).
#[test]
fn goldens() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
    let bless = std::env::var_os("SECFLOW_BLESS").is_some_and(|v| v == "1");
    let mut failures = Vec::new();
    for (stem, e) in examples() {
        check(&e).unwrap();
        let mut got = to_cef(&e).unwrap();
        got.push(b'\n');
        let path = dir.join(format!("{stem}.cef"));
        if bless {
            std::fs::write(&path, &got).unwrap();
            continue;
        }
        match std::fs::read(&path) {
            Ok(want) if want == got => {}
            Ok(want) => failures.push(format!(
                "{stem}.cef differs:\n want {}\n  got {}",
                String::from_utf8_lossy(&want),
                String::from_utf8_lossy(&got)
            )),
            Err(err) => failures.push(format!("{stem}.cef: {err} (run with SECFLOW_BLESS=1)")),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

// ---------------------------------------------------------------------------------------------
// Nasty values.

fn line_of(e: &SecurityEvent) -> String {
    String::from_utf8(to_cef(e).unwrap()).unwrap()
}

#[test]
fn header_escapes_pipe_and_backslash_and_flattens_line_breaks() {
    let mut e = example("process_launch");
    e.product.vendor = r"Ven|dor\ =x".into();
    e.product.name = "multi\r\nline\nname\rend".into();
    e.product.version = Some(r"1.0\|".into());
    e.message = "a|b=c\\d\r\ne".into();
    let line = line_of(&e);
    assert!(
        line.starts_with(
            r"CEF:0|Ven\|dor\\ =x|multi line name end|1.0\\\||process_created|a\|b=c\\d e|1|"
        ),
        "{line}"
    );
    // In the extension the same message keeps its pipe, escapes `=` and the line break.
    assert!(line.contains(r" msg=a|b\=c\\d\r\ne "), "{line}");
    check(&e).unwrap();
}

#[test]
fn extension_escapes_equals_backslash_and_newlines_not_pipes() {
    let mut e = example("process_launch");
    let p = e.process.as_mut().unwrap();
    p.command_line = Some("cmd.exe /c \"echo a=b | findstr \\x\"\r\nnext\nline\r".into());
    let line = line_of(&e);
    assert!(
        line.contains(
            r#"cs6Label=commandLine cs6=cmd.exe /c "echo a\=b | findstr \\x"\r\nnext\nline\r"#
        ),
        "{line}"
    );
    // A value ending in a backslash before the next key.
    e.user.as_mut().unwrap().domain = Some("CORP\\".into());
    let line = line_of(&e);
    assert!(line.contains(r" sntdom=CORP\\ "), "{line}");
    check(&e).unwrap();
    // A value that looks like a key=value pair.
    e.user.as_mut().unwrap().name = "x suser=root".into();
    let (line, cef) = cef_of(&e);
    assert!(line.contains(r" suser=x suser\=root "), "{line}");
    assert_eq!(cef.get("suser"), Some("x suser=root"));
    check(&e).unwrap();
}

#[test]
fn non_ascii_passes_through_unchanged() {
    let mut e = example("file_create");
    e.file.as_mut().unwrap().path = "C:\\Users\\jürgen\\文档\\🦀.exe".into();
    e.file.as_mut().unwrap().name = None;
    e.message = "Ärger: 日本語 🦀\u{2028}ok".into();
    let (_, cef) = cef_of(&e);
    assert_eq!(cef.get("fname"), Some("🦀.exe"));
    assert_eq!(cef.get("filePath"), Some("C:\\Users\\jürgen\\文档\\🦀.exe"));
    assert_eq!(cef.name, "Ärger: 日本語 🦀\u{2028}ok");
    check(&e).unwrap();
}

#[test]
fn long_names_are_cut_at_the_limits_without_splitting() {
    let mut e = example("malware_alert");
    for (len, want) in [(511, 511), (512, 512), (513, 512), (2000, 512)] {
        e.rule.as_mut().unwrap().name = "n".repeat(len);
        let (_, cef) = cef_of(&e);
        assert_eq!(cef.name.len(), want, "{len}");
        check(&e).unwrap();
    }
    // An escape right at the limit is kept whole or dropped whole.
    let mut name = "n".repeat(511);
    name.push('|');
    name.push('|');
    e.rule.as_mut().unwrap().name = name;
    let (line, cef) = cef_of(&e);
    assert_eq!(cef.name, format!("{}|", "n".repeat(511)));
    assert!(
        line.contains(&format!("|{}\\||8|", "n".repeat(511))),
        "{line}"
    );
    // A character outside the BMP is two UTF-16 units: it does not fit in the last unit.
    e.rule.as_mut().unwrap().name = format!("{}🦀", "n".repeat(511));
    let (_, cef) = cef_of(&e);
    assert_eq!(cef.name, "n".repeat(511));
    e.rule.as_mut().unwrap().name = format!("{}🦀", "n".repeat(510));
    let (_, cef) = cef_of(&e);
    assert_eq!(cef.name, format!("{}🦀", "n".repeat(510)));
    // Vendor / product / version: 63.
    e.product.vendor = "v".repeat(64);
    e.product.version = Some(format!("{}\\", "1".repeat(62)));
    let (_, cef) = cef_of(&e);
    assert_eq!(cef.vendor, "v".repeat(63));
    assert_eq!(cef.version, format!("{}\\", "1".repeat(62)));
    // msg: 1023, an escape at the boundary.
    e.message = format!("{}=tail", "m".repeat(1022));
    let (line, cef) = cef_of(&e);
    assert_eq!(
        cef.get("msg"),
        Some(format!("{}=", "m".repeat(1022)).as_str())
    );
    assert!(
        line.contains(&format!("msg={}\\= ", "m".repeat(1022))),
        "{line}"
    );
    // externalId: 40.
    e.event_id = "x".repeat(41);
    let (_, cef) = cef_of(&e);
    assert_eq!(cef.get("externalId"), Some("x".repeat(40).as_str()));
    check(&e).unwrap();
}

fn with_network(src: &str, dst: &str) -> SecurityEvent {
    let mut e = example("network_connection_ipv4");
    let n = e.network.as_mut().unwrap();
    n.src_ip = Some(src.into());
    n.dst_ip = Some(dst.into());
    e
}

#[test]
fn ipv4_goes_to_src_dst_and_ipv6_to_labelled_custom_addresses() {
    let (_, cef) = cef_of(&with_network("192.0.2.1", "203.0.113.9"));
    assert_eq!(cef.get("src"), Some("192.0.2.1"));
    assert_eq!(cef.get("dst"), Some("203.0.113.9"));
    assert_eq!(cef.get("c6a2"), None);

    let e = with_network("2001:DB8:0:0::17", "fe80::1");
    let (_, cef) = cef_of(&e);
    assert_eq!(cef.get("src"), None);
    assert_eq!(cef.get("dst"), None);
    assert_eq!(cef.get("c6a2Label"), Some("Source IPv6 Address"));
    assert_eq!(cef.get("c6a2"), Some("2001:db8::17"));
    assert_eq!(cef.get("c6a3Label"), Some("Destination IPv6 Address"));
    assert_eq!(cef.get("c6a3"), Some("fe80::1"));
    check(&e).unwrap();

    // IPv4-mapped IPv6 is the IPv4 address it carries.
    let (_, cef) = cef_of(&with_network("::ffff:192.0.2.7", "2001:db8::1"));
    assert_eq!(cef.get("src"), Some("192.0.2.7"));
    assert_eq!(cef.get("c6a3"), Some("2001:db8::1"));

    // Device addresses: first IPv4 in dvc, first IPv6 in c6a1.
    let mut e = example("authentication_logon_failure");
    let (_, cef) = cef_of(&e);
    assert_eq!(cef.get("dvc"), Some("192.0.2.10"));
    assert_eq!(cef.get("c6a1"), Some("2001:db8:10::a"));
    e.host.as_mut().unwrap().ip = vec!["2001:db8::5".into()];
    let (_, cef) = cef_of(&e);
    assert_eq!(cef.get("dvc"), None);
    assert_eq!(cef.get("c6a1Label"), Some("Device IPv6 Address"));
}

#[test]
fn host_is_source_destination_or_only_the_device() {
    // The firewall owns neither address: only dvchost.
    let (_, cef) = cef_of(&example("network_connection_ipv4"));
    assert_eq!(cef.get("dvchost"), Some("pa-fw-edge-01"));
    assert_eq!(cef.get("shost"), Some("ws-fin-042.corp.example.com"));
    assert_eq!(cef.get("dhost"), Some("updates.example.org"));
    let mut e = example("intrusion_detection_alert");
    let (_, cef) = cef_of(&e);
    assert_eq!(cef.get("dvchost"), Some("ids-sensor-02"));
    assert_eq!(cef.get("shost"), None);
    assert_eq!(cef.get("dhost"), None);
    // The endpoint owns the source address of its outbound connection.
    let (_, cef) = cef_of(&example("process_alert_enriched"));
    assert_eq!(cef.get("shost"), Some("ws-fin-042.corp.example.com"));
    assert_eq!(cef.get("dhost"), Some("updates.example.org"));
    // The server owns the destination address of an inbound logon.
    let (_, cef) = cef_of(&example("authentication_logon_failure"));
    assert_eq!(cef.get("dhost"), Some("bastion-01.example.net"));
    assert_eq!(cef.get("shost"), None);
    // No network group: the host is where it happened.
    let (_, cef) = cef_of(&example("process_launch"));
    assert_eq!(cef.get("dhost"), Some("ws-fin-042.corp.example.com"));
    // Matching is on the address, not its spelling.
    e.host.as_mut().unwrap().ip = vec!["::ffff:192.0.2.42".into()];
    let (_, cef) = cef_of(&e);
    assert_eq!(cef.get("shost"), Some("ids-sensor-02"));
}

#[test]
fn severity_signature_and_name() {
    let mut e = example("intrusion_detection_alert");
    for (s, want) in [
        (Severity::Info, "1"),
        (Severity::Low, "3"),
        (Severity::Medium, "5"),
        (Severity::High, "8"),
        (Severity::Critical, "10"),
    ] {
        e.severity = s;
        assert_eq!(cef_of(&e).1.severity, want);
    }
    let (_, cef) = cef_of(&e);
    assert_eq!(cef.signature, "2049871");
    assert_eq!(
        cef.name,
        "ET MALWARE Observed Wacatac downloader User-Agent"
    );
    // An alert rule without id: the action is the signature.
    e.rule.as_mut().unwrap().id = None;
    e.rule.as_mut().unwrap().name = "Rule name".into();
    let (_, cef) = cef_of(&e);
    assert_eq!(cef.signature, "signature_matched");
    assert_eq!(cef.name, "Rule name");
    // A plain event: action and message.
    let (_, cef) = cef_of(&example("dns_query"));
    assert_eq!(cef.signature, "dns_query");
    assert_eq!(
        cef.name,
        "updates.example.org A -> CNAME cdn.example.net, A 203.0.113.50"
    );
    // A plain event with a rule keeps its message as the name but takes the rule id.
    let mut e = example("network_connection_ipv4");
    e.rule = Some(Rule {
        id: Some("allow-web-out".into()),
        name: "Allow web out".into(),
        ..Rule::default()
    });
    let (_, cef) = cef_of(&e);
    assert_eq!(cef.signature, "allow-web-out");
    assert!(cef.name.starts_with("TRAFFIC end"));
}

#[test]
fn several_enrichments_list_every_id_and_detail_the_first() {
    let (_, cef) = cef_of(&example("process_alert_enriched"));
    assert_eq!(
        cef.get("cs5"),
        Some(
            "indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f,\
             indicator--2f9b4a6c-3d1e-4b7a-a0c5-6e8d9f1b2c3a"
        )
    );
    assert_eq!(cef.get("cn1"), Some("85"));
    assert_eq!(cef.get("flexString1"), Some("updates.example.org"));
    assert_eq!(
        cef.get("flexString2"),
        Some("taxii:acme-intel/collections/c2-domains")
    );
    assert_eq!(cef.get("cs4"), Some("T1566.001,T1059.001"));
}

#[test]
fn mitre_without_subtechnique_and_without_techniques() {
    let mut e = example("intrusion_detection_alert");
    e.mitre = Some(Mitre {
        tactics: e.mitre.as_ref().unwrap().tactics.clone(),
        techniques: vec![MitreTechnique {
            id: "T1071".into(),
            name: "Application Layer Protocol".into(),
            ..MitreTechnique::default()
        }],
    });
    assert_eq!(cef_of(&e).1.get("cs4"), Some("T1071"));
    e.mitre.as_mut().unwrap().techniques.clear();
    assert_eq!(cef_of(&e).1.get("cs4"), None);
    assert_eq!(cef_of(&e).1.get("cs4Label"), None);
}

#[test]
fn email_sender_recipients_and_first_attachment() {
    let (_, cef) = cef_of(&example("email_with_attachment"));
    assert_eq!(cef.get("suser"), Some("billing@example.net"));
    assert_eq!(
        cef.get("duser"),
        Some("alice@example.com,accounts-payable@example.com")
    );
    assert_eq!(cef.get("fname"), Some("invoice_0314.docm"));
    assert_eq!(cef.get("fsize"), Some("48211"));
}

#[test]
fn unparsable_ip_is_unmappable_not_a_panic() {
    let mut e = example("network_connection_ipv4");
    e.network = Some(Network {
        src_ip: Some("999.1.1.1".into()),
        ..Network::default()
    });
    assert_eq!(
        to_cef(&e),
        Err(TransformError::Unmappable {
            format: "cef",
            field: "network.src_ip".into(),
            reason: "is not an IPv4 or IPv6 address".into(),
        })
    );
    let mut e = example("process_launch");
    e.host.as_mut().unwrap().ip.push("nope".into());
    assert!(matches!(
        to_cef(&e),
        Err(TransformError::Unmappable { field, .. }) if field == "host.ip[1]"
    ));
}

#[test]
fn http_status_and_byte_fallbacks() {
    let mut e = example("http_request");
    e.network = None;
    e.activity = Activity::Get;
    let (_, cef) = cef_of(&e);
    assert_eq!(cef.get("cn2Label"), Some("httpStatus"));
    assert_eq!(cef.get("cn2"), Some("200"));
    assert_eq!(cef.get("in"), Some("185012"));
    assert_eq!(cef.get("out"), Some("912"));
    assert_eq!(cef.get("requestContext"), Some("https://mail.example.com/"));
    check(&e).unwrap();
}

// ---------------------------------------------------------------------------------------------
// The parser itself must be strict, or the round trip proves nothing.

#[test]
fn parser_rejects_malformed_lines() {
    let ok = r"CEF:0|V|P|1|sig|name|5|a=1 b=x\=y c=p|q\\ d=\n";
    let cef = parse(ok).unwrap();
    assert_eq!(cef.get("b"), Some("x=y"));
    assert_eq!(cef.get("c"), Some(r"p|q\"));
    assert_eq!(cef.get("d"), Some("\n"));
    assert_eq!(parse("CEF:0|V|P|1|sig|name|5|").unwrap().ext, vec![]);
    for bad in [
        "CEF:0|V|P|1|sig|name|5|a=1\n",
        "CEF:0|V|P|1|sig|name|5|a=1\rb",
        "CEF:0|V|P|1|sig|name|5",
        "CEF:1|V|P|1|sig|name|5|",
        r"CEF:0|V|P|1|s\ig|name|5|",
        r"CEF:0|V|P|1|sig|name|5|a=x\t",
        r"CEF:0|V|P|1|sig|name|5|a=x\",
        "CEF:0|V|P|1|sig|name|5|a=x=y",
        "CEF:0|V|P|1|sig|name|5|a=x b==y",
        "CEF:0|V|P|1|sig|name|5| a=x",
        "CEF:0|V|P|1|sig|name|5|a= b=1",
        "CEF:0|V|P|1|sig|name|5|a=1 a=2",
        "CEF:0|V|P|1|sig|name|5|novalue",
    ] {
        assert!(parse(bad).is_err(), "accepted {bad:?}");
    }
}
