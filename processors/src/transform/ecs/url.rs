//! A deliberately small URL splitter for the ECS `url.*` parts.
//!
//! No URL crate is used, so this does not normalise, percent-decode or resolve anything: it
//! only cuts an absolute `scheme://authority/path?query#fragment` at its delimiters (RFC 3986
//! section 3) and gives up (`None`) on anything it is not sure about, in which case the mapper
//! emits only `url.original` / `url.full`. A wrong `url.domain` would mislead an analyst more
//! than a missing one.

use std::borrow::Cow;
use std::net::{IpAddr, Ipv6Addr};

/// The parts of a URL, borrowed from it except where lower-cased.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct UrlParts<'a> {
    /// Scheme, lower-cased, without `:`.
    pub scheme: Cow<'a, str>,
    /// Host as written, lower-cased; an IPv6 literal keeps its brackets (as ECS asks).
    pub domain: Cow<'a, str>,
    /// The host as written (IPv6 without its brackets), not lower-cased.
    pub host: &'a str,
    /// The host as an IP address, when it is a literal IPv4 or bracketed IPv6 address.
    pub ip: Option<IpAddr>,
    /// Explicit port, if the URL has one.
    pub port: Option<u16>,
    /// Path, empty if the URL has none.
    pub path: &'a str,
    /// Query without `?`; `Some("")` for a bare `?` (ECS distinguishes the two).
    pub query: Option<&'a str>,
    /// Fragment without `#`.
    pub fragment: Option<&'a str>,
    /// Extension of the last path segment, without the dot.
    pub extension: Option<&'a str>,
}

fn lower(s: &str) -> Cow<'_, str> {
    if s.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(s.to_ascii_lowercase())
    } else {
        Cow::Borrowed(s)
    }
}

/// Splits an absolute URL with an authority; `None` if it does not look like one.
pub(super) fn parse(url: &str) -> Option<UrlParts<'_>> {
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return None;
    }
    let (scheme, rest) = url.split_once("://")?;
    let mut sb = scheme.bytes();
    if !sb.next().is_some_and(|b| b.is_ascii_alphabetic())
        || !sb.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
    {
        return None;
    }

    let auth_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, after) = rest.split_at(auth_end);
    // Userinfo (`user:password@`) is cut off and not emitted: it may hold a credential.
    let hostport = match authority.rsplit_once('@') {
        Some((_, h)) => h,
        None => authority,
    };
    let (host, bare_host, port_text, ip) = if let Some(inner_and_rest) = hostport.strip_prefix('[')
    {
        let (inner, tail) = inner_and_rest.split_once(']')?;
        let v6: Ipv6Addr = inner.parse().ok()?;
        let host = hostport.get(..inner.len() + 2)?;
        let port_text = if tail.is_empty() {
            ""
        } else {
            tail.strip_prefix(':')?
        };
        (host, inner, port_text, Some(IpAddr::V6(v6)))
    } else {
        let (host, port_text) = hostport.rsplit_once(':').unwrap_or((hostport, ""));
        let ip = host.parse::<IpAddr>().ok().filter(IpAddr::is_ipv4);
        (host, host, port_text, ip)
    };
    if host.is_empty()
        || host.bytes().any(|b| {
            matches!(
                b,
                b'"' | b'<' | b'>' | b'\\' | b'^' | b'`' | b'{' | b'|' | b'}' | b'@' | b'/'
            )
        })
        || (ip.is_none() && host.contains([':', '[', ']']))
    {
        return None;
    }
    let port = if port_text.is_empty() {
        None
    } else if port_text.len() <= 5 && port_text.bytes().all(|b| b.is_ascii_digit()) {
        Some(port_text.parse::<u16>().ok()?)
    } else {
        return None;
    };

    let (before_fragment, fragment) = match after.split_once('#') {
        Some((b, f)) => (b, Some(f)),
        None => (after, None),
    };
    let (path, query) = match before_fragment.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (before_fragment, None),
    };
    Some(UrlParts {
        scheme: lower(scheme),
        domain: lower(host),
        host: bare_host,
        ip,
        port,
        path,
        query,
        fragment,
        extension: extension(path.rsplit('/').next().unwrap_or("")),
    })
}

/// Extension of a file or path-segment name: what follows the last dot, when the dot is not
/// the first character and the rest is 1 to 16 ASCII letters or digits (so `archive.tar.gz` →
/// `gz`, `.bashrc` → none, `v1.2-beta` → none).
pub(super) fn extension(name: &str) -> Option<&str> {
    let (stem, ext) = name.rsplit_once('.')?;
    if stem.is_empty() || ext.is_empty() || ext.len() > 16 {
        return None;
    }
    ext.bytes()
        .all(|b| b.is_ascii_alphanumeric())
        .then_some(ext)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn splits_a_full_url() {
        let u =
            parse("HTTPS://user:pw@Updates.Example.org:8443/client/upd4711.EXE?ref=mail&x=1#top")
                .unwrap();
        assert_eq!(u.scheme, "https");
        assert_eq!(u.domain, "updates.example.org");
        assert_eq!(u.ip, None);
        assert_eq!(u.port, Some(8443));
        assert_eq!(u.path, "/client/upd4711.EXE");
        assert_eq!(u.query, Some("ref=mail&x=1"));
        assert_eq!(u.fragment, Some("top"));
        assert_eq!(u.extension, Some("EXE"));
    }

    #[test]
    fn hosts_and_ports() {
        let u = parse("http://[2001:db8::1]:8080/").unwrap();
        assert_eq!(u.domain, "[2001:db8::1]");
        assert_eq!(u.ip, Some("2001:db8::1".parse().unwrap()));
        assert_eq!(u.port, Some(8080));
        assert_eq!(u.path, "/");

        let u = parse("http://[2001:DB8::1]").unwrap();
        assert_eq!(u.domain, "[2001:db8::1]");
        assert_eq!(u.port, None);

        let u = parse("http://203.0.113.5:80?").unwrap();
        assert_eq!(u.ip, Some("203.0.113.5".parse().unwrap()));
        assert_eq!(u.path, "");
        assert_eq!(u.query, Some(""));
        assert_eq!(u.extension, None);

        let u = parse("http://example.com:/a.b/c").unwrap();
        assert_eq!(u.port, None);
        assert_eq!(u.extension, None);
    }

    #[test]
    fn refuses_what_it_cannot_split_surely() {
        for bad in [
            "example.com/path",
            "mailto:alice@example.com",
            "file:///etc/passwd",
            "http://",
            "http://host:99999/",
            "http://host:8o/",
            "http://[::1/",
            "http://[not-v6]/",
            "http://[::1]x/",
            "http://a:b:c/",
            "http://exa mple.com/",
            "http://ex\\ample.com/",
            "1http://example.com/",
            "ht tp://example.com/",
        ] {
            assert_eq!(parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn extensions() {
        assert_eq!(extension("invoice_0314.docm"), Some("docm"));
        assert_eq!(extension("archive.tar.gz"), Some("gz"));
        assert_eq!(extension(".bashrc"), None);
        assert_eq!(extension("noext"), None);
        assert_eq!(extension("trailing."), None);
        assert_eq!(extension("v1.2-beta"), None);
        assert_eq!(extension("日本.txt"), Some("txt"));
    }
}
