//! Small text helpers of the OCSF transform: OCSF scalar types (`email_t`, `ip_t`), URL and path
//! splitting. None allocates unless it must (an IPv6 address not in canonical form, a field path
//! with array indexes).

use std::borrow::Cow;
use std::net::IpAddr;

/// A canonical field path without its array indexes (`email.to[0]` → `email.to`).
pub(super) fn strip_indexes(path: &str) -> Cow<'_, str> {
    if !path.contains('[') {
        return Cow::Borrowed(path);
    }
    let mut out = String::with_capacity(path.len());
    let mut depth = 0u32;
    for c in path.chars() {
        match c {
            '[' => depth += 1,
            ']' => depth = depth.saturating_sub(1),
            _ if depth == 0 => out.push(c),
            _ => {}
        }
    }
    Cow::Owned(out)
}

/// An IP address in its canonical text form (RFC 5952 for IPv6): the form OCSF `ip_t` accepts,
/// and the same address always gives the same string. Text that does not parse is kept as is.
pub(super) fn normalize_ip(s: &str) -> Cow<'_, str> {
    match s.parse::<IpAddr>() {
        // std accepts only plain dotted decimal for IPv4 (no leading zeros, no short forms),
        // which is already the canonical text.
        Ok(IpAddr::V4(_)) | Err(_) => Cow::Borrowed(s),
        Ok(IpAddr::V6(ip)) => {
            let canonical = ip.to_string();
            if canonical == s {
                Cow::Borrowed(s)
            } else {
                Cow::Owned(canonical)
            }
        }
    }
}

/// The last component of a Windows or POSIX path (the whole path if it ends with a separator).
pub(super) fn base_name(path: &str) -> &str {
    match path.rsplit(['/', '\\']).next() {
        Some(last) if !last.is_empty() => last,
        _ => path,
    }
}

/// The extension of a file name without the dot (`exe` of `svchost.exe`); none for dot files.
pub(super) fn extension(name: &str) -> Option<&str> {
    let (stem, ext) = name.rsplit_once('.')?;
    if stem.is_empty() || ext.is_empty() {
        None
    } else {
        Some(ext)
    }
}

/// `DOMAIN\name` → (`DOMAIN`, `name`); anything else is a bare name.
pub(super) fn split_account(account: &str) -> (Option<&str>, &str) {
    match account.split_once('\\') {
        Some((domain, name)) if !domain.is_empty() && !name.is_empty() && !name.contains('\\') => {
            (Some(domain), name)
        }
        _ => (None, account),
    }
}

/// Whether `s` matches OCSF `email_t`:
/// `^[a-zA-Z0-9!#$%&'*+-/=?^_`{|}~.]+@[a-zA-Z0-9-]+\.[a-zA-Z0-9-.]+$` (the `+-/` is a range, so
/// `,` `-` `.` `/` are allowed in the local part).
pub(super) fn is_ocsf_email(s: &str) -> bool {
    let Some((local, domain)) = s.split_once('@') else {
        return false;
    };
    let local_ok = !local.is_empty()
        && local.bytes().all(|b| {
            b.is_ascii_alphanumeric()
                || matches!(
                    b,
                    b'!' | b'#' | b'$' | b'%' | b'&' | b'\'' | b'*' | b'+'
                        ..=b'/' | b'=' | b'?' | b'^' | b'_' | b'`' | b'{' | b'|' | b'}' | b'~'
                )
        });
    let domain_ok = domain
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
        && match domain.split_once('.') {
            Some((first, rest)) => !first.is_empty() && !rest.is_empty(),
            None => false,
        };
    local_ok && domain_ok
}

/// The parts of an absolute URL that OCSF `url` has attributes for.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct UrlParts<'a> {
    pub(super) scheme: &'a str,
    pub(super) host: Option<&'a str>,
    pub(super) port: Option<i64>,
    pub(super) path: Option<&'a str>,
    pub(super) query: Option<&'a str>,
}

/// Splits `scheme://[userinfo@]host[:port][/path][?query][#fragment]`; `None` without `://`.
pub(super) fn parse_url(s: &str) -> Option<UrlParts<'_>> {
    let (scheme, rest) = s.split_once("://")?;
    let rest = rest.split_once('#').map_or(rest, |(before, _)| before);
    let (before_query, query) = match rest.split_once('?') {
        Some((b, q)) => (b, Some(q).filter(|q| !q.is_empty())),
        None => (rest, None),
    };
    let (authority, path) = match before_query.find('/') {
        Some(i) => before_query.split_at(i),
        None => (before_query, ""),
    };
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, hp)| hp);
    let (host, port) = match host_port.strip_prefix('[') {
        Some(v6) => match v6.split_once(']') {
            Some((h, after)) => (h, after.strip_prefix(':')),
            None => (host_port, None),
        },
        None => match host_port.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (host_port, None),
        },
    };
    let port = port
        .filter(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|p| p.parse::<u16>().ok())
        .map(i64::from);
    Some(UrlParts {
        scheme,
        host: Some(host).filter(|h| !h.is_empty()),
        port,
        path: Some(path).filter(|p| !p.is_empty()),
        query,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn email_t_matches_the_ocsf_regex() {
        for ok in [
            "alice@example.com",
            "a.b+c,d/e@mail-1.example.co.uk",
            "x@y.z",
            "!#$%&'*=?^_`{|}~@a.b",
            "a@b.",
        ] {
            // `a@b.` is not valid: the regex needs a character after the first dot.
            assert_eq!(is_ocsf_email(ok), ok != "a@b.", "{ok}");
        }
        for bad in [
            "alice@localhost",
            "alice@@example.com",
            "al ice@example.com",
            "josé@example.com",
            "alice@exämple.com",
            "@example.com",
            "alice@.example.com",
            "alice@example_x.com",
            "a(b)@example.com",
        ] {
            assert!(!is_ocsf_email(bad), "{bad}");
        }
    }

    #[test]
    fn url_parts() {
        let u = parse_url("https://user:pw@www.example.com:8443/a/b?x=1&y=2#frag").unwrap();
        assert_eq!(
            u,
            UrlParts {
                scheme: "https",
                host: Some("www.example.com"),
                port: Some(8443),
                path: Some("/a/b"),
                query: Some("x=1&y=2"),
            }
        );
        let u = parse_url("http://[2001:db8::1]:80").unwrap();
        assert_eq!(
            (u.host, u.port, u.path),
            (Some("2001:db8::1"), Some(80), None)
        );
        let u = parse_url("http://host:99999/x?").unwrap();
        assert_eq!(
            (u.host, u.port, u.path, u.query),
            (Some("host"), None, Some("/x"), None)
        );
        let u = parse_url("file:///etc/passwd").unwrap();
        assert_eq!((u.host, u.path), (None, Some("/etc/passwd")));
        let u = parse_url("x://é:ü@[::1").unwrap();
        assert_eq!(u.scheme, "x");
        assert!(parse_url("no-scheme").is_none());
    }

    #[test]
    fn names_and_paths() {
        assert_eq!(base_name("C:\\Windows\\System32\\cmd.exe"), "cmd.exe");
        assert_eq!(base_name("/usr/bin/sudo"), "sudo");
        assert_eq!(base_name("/tmp/dir/"), "/tmp/dir/");
        assert_eq!(base_name("plain"), "plain");
        assert_eq!(extension("a.tar.gz"), Some("gz"));
        assert_eq!(extension(".bashrc"), None);
        assert_eq!(extension("noext"), None);
        assert_eq!(extension("trailing."), None);
        assert_eq!(split_account("CORP\\alice"), (Some("CORP"), "alice"));
        assert_eq!(split_account("alice"), (None, "alice"));
        assert_eq!(split_account("\\alice"), (None, "\\alice"));
        assert_eq!(split_account("a\\b\\c"), (None, "a\\b\\c"));
        assert_eq!(strip_indexes("email.to[0]"), "email.to");
        assert_eq!(strip_indexes("dns.answers[12].data"), "dns.answers.data");
        assert_eq!(normalize_ip("2001:DB8:0:0::1"), "2001:db8::1");
        assert_eq!(normalize_ip("192.0.2.1"), "192.0.2.1");
        assert_eq!(normalize_ip("::FFFF:192.0.2.1"), "::ffff:192.0.2.1");
        assert!(matches!(normalize_ip("2001:db8::1"), Cow::Borrowed(_)));
    }
}
