//! Normalisers shared by the stored IOCs and the observed event values, so that both sides of a
//! comparison are in the same form. Each returns `None` (or a reason) for a value that is not a
//! well-formed instance of its type; such a value never matches anything.
//!
//! | type | normal form |
//! | --- | --- |
//! | IPv4 / IPv6 | parsed with `std::net`; IPv4-mapped IPv6 (`::ffff:a.b.c.d`) is the IPv4 address; a CIDR keeps its network only (host bits cleared), `/32` and `/128` are plain addresses |
//! | domain | trimmed, lower-case, one trailing `.` removed; labels of letters, digits, `-`, `_` or non-ASCII characters (IDNs are compared in the form given: `xn--…` and Unicode forms do not match each other) |
//! | URL | see [`normalize_url`] |
//! | e-mail | trimmed, optional `mailto:` removed, lower-case, `local@domain` |
//! | hashes | trimmed, lower-case hex of the algorithm's length (MD5 32, SHA-1 40, SHA-256 64, SHA-512 128) |

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::intel::pattern::IocType;

/// Where an IP IOC is indexed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum IpIoc {
    /// One address (also `/32` and `/128`).
    Exact(IpAddr),
    /// A network: the address with the host bits cleared, and the prefix length (shorter than
    /// the address length).
    Net(IpAddr, u8),
}

/// Parses an address as observed in an event (no CIDR), IPv4-mapped IPv6 as IPv4.
pub fn parse_observed_ip(value: &str) -> Option<IpAddr> {
    value
        .trim()
        .parse::<IpAddr>()
        .ok()
        .map(|ip| ip.to_canonical())
}

/// Parses a stored IPv4 / IPv6 IOC (address or CIDR) of type `ioc_type`.
pub(crate) fn parse_ip_ioc(ioc_type: IocType, value: &str) -> Result<IpIoc, String> {
    let value = value.trim();
    let (addr, len) = match value.split_once('/') {
        None => (value, None),
        Some((a, l)) => {
            if l.is_empty() || l.len() > 3 || !l.bytes().all(|b| b.is_ascii_digit()) {
                return Err(format!("`{l}` is not a prefix length"));
            }
            let len: u8 = l
                .parse()
                .map_err(|_| format!("`{l}` is not a prefix length"))?;
            (a, Some(len))
        }
    };
    let ip: IpAddr = addr
        .parse()
        .map_err(|_| format!("`{addr}` is not an IP address"))?;
    match (ioc_type, ip) {
        (IocType::Ipv4, IpAddr::V4(_)) | (IocType::Ipv6, IpAddr::V6(_)) => {}
        (IocType::Ipv4, IpAddr::V6(_)) => return Err("an IPv6 value in an ipv4 IOC".into()),
        (IocType::Ipv6, IpAddr::V4(_)) => return Err("an IPv4 value in an ipv6 IOC".into()),
        _ => return Err(format!("{ioc_type} is not an IP IOC type")),
    }
    let max = match ip {
        IpAddr::V4(_) => 32,
        IpAddr::V6(_) => 128,
    };
    let len = len.unwrap_or(max);
    if len > max {
        return Err(format!("prefix length /{len} is longer than {max}"));
    }
    // IPv4-mapped IPv6 networks inside ::ffff:0:0/96 are IPv4 networks (observed addresses
    // are canonicalised the same way).
    if let IpAddr::V6(v6) = ip {
        if len >= 96 {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return Ok(ip_ioc(IpAddr::V4(v4), len - 96));
            }
        }
    }
    Ok(ip_ioc(ip, len))
}

fn ip_ioc(ip: IpAddr, len: u8) -> IpIoc {
    match ip {
        IpAddr::V4(_) if len >= 32 => IpIoc::Exact(ip),
        IpAddr::V6(_) if len >= 128 => IpIoc::Exact(ip),
        _ => IpIoc::Net(mask(ip, len), len),
    }
}

/// The address with all bits after the first `len` cleared.
pub(crate) fn mask(ip: IpAddr, len: u8) -> IpAddr {
    match ip {
        IpAddr::V4(a) => {
            let bits = u32::from(a);
            let m = if len == 0 {
                0
            } else {
                u32::MAX << (32 - u32::from(len.min(32)))
            };
            IpAddr::V4(Ipv4Addr::from(bits & m))
        }
        IpAddr::V6(a) => {
            let bits = u128::from(a);
            let m = if len == 0 {
                0
            } else {
                u128::MAX << (128 - u32::from(len.min(128)))
            };
            IpAddr::V6(Ipv6Addr::from(bits & m))
        }
    }
}

/// Whether `c` may appear in a domain label: ASCII letters, digits, `-`, `_`, or any
/// non-ASCII character that is not whitespace or a control character.
fn domain_char(c: char) -> bool {
    if c.is_ascii() {
        c.is_ascii_alphanumeric() || c == '-' || c == '_'
    } else {
        !c.is_whitespace() && !c.is_control()
    }
}

/// Normalises a domain name: trimmed, lower-case, one trailing dot removed; `None` unless
/// every dot-separated label is non-empty and made of letters, digits, `-`, `_` or non-ASCII
/// characters (so wildcards like `*.example.com`, URLs and addresses with ports are refused).
///
/// ```
/// use processors::intel::store::normalize_domain;
/// assert_eq!(normalize_domain(" WWW.Example.COM. ").as_deref(), Some("www.example.com"));
/// assert_eq!(normalize_domain("*.example.com"), None);
/// ```
pub fn normalize_domain(value: &str) -> Option<String> {
    let v = value.trim();
    let v = v.strip_suffix('.').unwrap_or(v);
    if v.is_empty() || v.len() > 1024 {
        return None;
    }
    let lower = v.to_lowercase();
    if lower
        .split('.')
        .all(|label| !label.is_empty() && label.chars().all(domain_char))
    {
        Some(lower)
    } else {
        None
    }
}

/// The domain itself and each parent with at least two labels, longest first:
/// `a.b.example.com` → `a.b.example.com`, `b.example.com`, `example.com`. A single-label name
/// yields only itself (a bare TLD is never reached as a parent). `domain` must be normalised.
pub(crate) fn domain_and_parents(domain: &str) -> impl Iterator<Item = &str> {
    let mut next = Some(domain);
    std::iter::from_fn(move || {
        let cur = next.take()?;
        if let Some((_, rest)) = cur.split_once('.') {
            if rest.contains('.') {
                next = Some(rest);
            }
        }
        Some(cur)
    })
}

/// Normalises an e-mail address: trimmed, a leading `mailto:` removed, lower-case (the local
/// part too: providers treat it case-insensitively in practice); `None` unless it is
/// `local@domain` with one `@`, both parts non-empty, no whitespace, control characters or
/// angle brackets.
pub fn normalize_email(value: &str) -> Option<String> {
    let v = value.trim();
    let v = match v.get(..7) {
        Some(p) if p.eq_ignore_ascii_case("mailto:") => &v[7..],
        _ => v,
    };
    let (local, domain) = v.split_once('@')?;
    let bad = |c: char| c.is_whitespace() || c.is_control() || matches!(c, '<' | '>' | '@');
    if local.is_empty()
        || domain.is_empty()
        || v.len() > 320
        || local.chars().any(bad)
        || domain.chars().any(bad)
    {
        return None;
    }
    let domain = domain.strip_suffix('.').unwrap_or(domain);
    if domain.is_empty() {
        return None;
    }
    Some(format!(
        "{}@{}",
        local.to_lowercase(),
        domain.to_lowercase()
    ))
}

/// Normalises a hash of type `ioc_type` (MD5, SHA-1, SHA-256 or SHA-512): trimmed lower-case
/// hex of the right length, else `None` (also for non-hash types).
pub fn normalize_hash(ioc_type: IocType, value: &str) -> Option<String> {
    let len = match ioc_type {
        IocType::Md5 => 32,
        IocType::Sha1 => 40,
        IocType::Sha256 => 64,
        IocType::Sha512 => 128,
        _ => return None,
    };
    let v = value.trim();
    if v.len() == len && v.bytes().all(|b| b.is_ascii_hexdigit()) {
        Some(v.to_ascii_lowercase())
    } else {
        None
    }
}

/// Default port of a scheme, dropped by [`normalize_url`].
fn default_port(scheme: &str) -> Option<u16> {
    match scheme {
        "http" | "ws" => Some(80),
        "https" | "wss" => Some(443),
        "ftp" => Some(21),
        _ => None,
    }
}

/// A normalised URL and the host it names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NormalUrl {
    /// The whole normalised URL.
    pub url: String,
    /// The host: a lower-case name, or an IP literal without brackets.
    pub host: String,
}

/// Normalises a URL (a small RFC 3986 §6.2.2 / §6.2.3 normaliser, no `url` crate):
///
/// - surrounding whitespace trimmed; a URL with inner whitespace or control characters, or
///   without `scheme://`, is refused (`None`): a scheme-less value cannot be told apart from
///   a path and is never guessed;
/// - scheme and host lower-case; one trailing dot of the host removed; user info kept as
///   written;
/// - the port dropped when it is the scheme's default (`http`/`ws` 80, `https`/`wss` 443,
///   `ftp` 21) or empty, written without leading zeros otherwise; a non-numeric port is
///   refused;
/// - an empty path becomes `/` (`http://example.com` = `http://example.com/`);
/// - percent-escapes get upper-case hex digits, and escaped unreserved characters
///   (`A-Z a-z 0-9 - . _ ~`) are decoded;
/// - the fragment (`#…`) is dropped; the path and query are otherwise kept as written
///   (case-sensitive, no dot-segment removal, no query reordering).
///
/// ```
/// use processors::intel::store::normalize_url;
/// assert_eq!(
///     normalize_url("HTTP://Evil.EXAMPLE:80/a%2fB?x=%7e#frag").as_deref(),
///     Some("http://evil.example/a%2FB?x=~")
/// );
/// assert_eq!(normalize_url("evil.example/path"), None);
/// ```
pub fn normalize_url(value: &str) -> Option<String> {
    normalize_url_parts(value).map(|u| u.url)
}

pub(crate) fn normalize_url_parts(value: &str) -> Option<NormalUrl> {
    let v = value.trim();
    if v.is_empty() || v.len() > 16 * 1024 || v.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return None;
    }
    let (scheme, rest) = v.split_once("://")?;
    let mut sb = scheme.bytes();
    if !sb.next().is_some_and(|b| b.is_ascii_alphabetic())
        || !sb.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
    {
        return None;
    }
    let scheme = scheme.to_ascii_lowercase();
    let rest = rest.split('#').next().unwrap_or("");
    let auth_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(auth_end);
    let (userinfo, hostport) = match authority.rsplit_once('@') {
        Some((u, h)) => (Some(u), h),
        None => (None, authority),
    };
    let (host, port, v6) = if let Some(inner) = hostport.strip_prefix('[') {
        let (h, after) = inner.split_once(']')?;
        h.parse::<Ipv6Addr>().ok()?;
        let port = match after {
            "" => None,
            p => Some(p.strip_prefix(':')?),
        };
        (h, port, true)
    } else {
        let (h, p) = match hostport.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (hostport, None),
        };
        if h.contains(':') {
            return None;
        }
        (h, p, false)
    };
    let port = match port {
        None | Some("") => None,
        Some(p) => {
            if p.len() > 5 || !p.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            let n: u16 = p.parse().ok()?;
            (default_port(&scheme) != Some(n)).then_some(n)
        }
    };
    let host = host.strip_suffix('.').unwrap_or(host).to_lowercase();
    if host.is_empty() && scheme != "file" {
        return None;
    }
    if host.contains(['[', ']', '@']) {
        return None;
    }
    let mut url = String::with_capacity(v.len() + 1);
    url.push_str(&scheme);
    url.push_str("://");
    if let Some(u) = userinfo {
        url.push_str(u);
        url.push('@');
    }
    if v6 {
        url.push('[');
        url.push_str(&host);
        url.push(']');
    } else {
        url.push_str(&host);
    }
    if let Some(p) = port {
        url.push(':');
        url.push_str(&p.to_string());
    }
    if !tail.starts_with('/') {
        url.push('/');
    }
    push_percent_normalised(&mut url, tail);
    Some(NormalUrl { url, host })
}

/// Appends `s` with percent-escapes normalised (upper-case hex; unreserved characters
/// decoded). A `%` not followed by two hex digits is kept as is.
fn push_percent_normalised(out: &mut String, s: &str) {
    let b = s.as_bytes();
    let mut i = 0;
    let mut start = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            let (h, l) = (b[i + 1], b[i + 2]);
            if let (Some(hv), Some(lv)) = (hex_val(h), hex_val(l)) {
                out.push_str(&s[start..i]);
                let c = hv * 16 + lv;
                if c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_' | b'~') {
                    out.push(char::from(c));
                } else {
                    out.push('%');
                    out.push(char::from(h.to_ascii_uppercase()));
                    out.push(char::from(l.to_ascii_uppercase()));
                }
                i += 3;
                start = i;
                continue;
            }
        }
        i += 1;
    }
    out.push_str(&s[start..]);
}

fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn urls() {
        let n = |s: &str| normalize_url(s);
        assert_eq!(n("http://Example.com").unwrap(), "http://example.com/");
        assert_eq!(
            n("HTTPS://EXAMPLE.com:443/Path?Q=1#x").unwrap(),
            "https://example.com/Path?Q=1"
        );
        assert_eq!(
            n("https://example.com:8443/").unwrap(),
            "https://example.com:8443/"
        );
        assert_eq!(
            n("https://example.com:08443/").unwrap(),
            "https://example.com:8443/"
        );
        assert_eq!(n("http://example.com:/a").unwrap(), "http://example.com/a");
        assert_eq!(n("http://example.com?q").unwrap(), "http://example.com/?q");
        assert_eq!(
            n("http://User:Pw@Example.com./").unwrap(),
            "http://User:Pw@example.com/"
        );
        assert_eq!(
            n("http://[2001:DB8::1]:80/x").unwrap(),
            "http://[2001:db8::1]/x"
        );
        assert_eq!(
            n("http://a.example/%7e%41%2f%2F%zz%").unwrap(),
            "http://a.example/~A%2F%2F%zz%"
        );
        assert_eq!(n("http://a.example/%4"), Some("http://a.example/%4".into()));
        assert_eq!(n("example.com/x"), None);
        assert_eq!(n("http://exa mple.com/"), None);
        assert_eq!(n("http://example.com:http/"), None);
        assert_eq!(n("http:///x"), None);
        assert_eq!(n("1http://x/"), None);
        let p = normalize_url_parts("http://[2001:db8::1]/").unwrap();
        assert_eq!(p.host, "2001:db8::1");
    }

    #[test]
    fn domains_and_parents() {
        let d = normalize_domain("A.B.Example.COM").unwrap();
        let all: Vec<_> = domain_and_parents(&d).collect();
        assert_eq!(all, ["a.b.example.com", "b.example.com", "example.com"]);
        assert_eq!(
            domain_and_parents("example.com").collect::<Vec<_>>(),
            ["example.com"]
        );
        assert_eq!(domain_and_parents("com").collect::<Vec<_>>(), ["com"]);
        assert_eq!(normalize_domain("a..b"), None);
        assert_eq!(normalize_domain(".a.b"), None);
        assert_eq!(normalize_domain("a.b:80"), None);
        assert_eq!(
            normalize_domain("bücher.example").unwrap(),
            "bücher.example"
        );
    }

    #[test]
    fn emails_and_hashes() {
        assert_eq!(
            normalize_email("MailTo:Bob@Example.COM").unwrap(),
            "bob@example.com"
        );
        assert_eq!(normalize_email("a@b@c"), None);
        assert_eq!(normalize_email("<a@b>"), None);
        assert_eq!(normalize_email("@b"), None);
        assert_eq!(
            normalize_hash(IocType::Md5, &"A".repeat(32)).unwrap(),
            "a".repeat(32)
        );
        assert_eq!(normalize_hash(IocType::Md5, &"a".repeat(31)), None);
        assert_eq!(normalize_hash(IocType::Sha1, &"g".repeat(40)), None);
        assert_eq!(normalize_hash(IocType::Domain, "aa"), None);
    }

    #[test]
    fn ips() {
        use IocType::*;
        let v4 = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(
            parse_ip_ioc(Ipv4, "198.51.100.7").unwrap(),
            IpIoc::Exact(v4("198.51.100.7"))
        );
        assert_eq!(
            parse_ip_ioc(Ipv4, "198.51.100.7/32").unwrap(),
            IpIoc::Exact(v4("198.51.100.7"))
        );
        assert_eq!(
            parse_ip_ioc(Ipv4, "198.51.100.7/24").unwrap(),
            IpIoc::Net(v4("198.51.100.0"), 24)
        );
        assert_eq!(
            parse_ip_ioc(Ipv4, "0.0.0.0/0").unwrap(),
            IpIoc::Net(v4("0.0.0.0"), 0)
        );
        assert_eq!(
            parse_ip_ioc(Ipv6, "2001:DB8::1/32").unwrap(),
            IpIoc::Net(v4("2001:db8::"), 32)
        );
        assert_eq!(
            parse_ip_ioc(Ipv6, "::ffff:198.51.100.7").unwrap(),
            IpIoc::Exact(v4("198.51.100.7"))
        );
        assert_eq!(
            parse_ip_ioc(Ipv6, "::ffff:198.51.100.0/120").unwrap(),
            IpIoc::Net(v4("198.51.100.0"), 24)
        );
        assert!(parse_ip_ioc(Ipv4, "198.51.100.7/33").is_err());
        assert!(parse_ip_ioc(Ipv4, "198.51.100.7/").is_err());
        assert!(parse_ip_ioc(Ipv4, "198.51.100.7/+1").is_err());
        assert!(parse_ip_ioc(Ipv4, "2001:db8::1").is_err());
        assert!(parse_ip_ioc(Ipv6, "198.51.100.7").is_err());
        assert!(parse_ip_ioc(Domain, "198.51.100.7").is_err());
        assert!(parse_ip_ioc(Ipv4, "foo").is_err());
        assert_eq!(parse_observed_ip("::ffff:1.2.3.4"), Some(v4("1.2.3.4")));
    }
}
