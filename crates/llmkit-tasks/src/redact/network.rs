//! Detectors triggered by `@` and `:`: email addresses, credentials in URLs
//! (`scheme://user:pass@host`, only the `user:pass` part is replaced) and IPv6 addresses.

use std::net::Ipv6Addr;

use super::kind::Kind;
use super::numbers::{Hit, is_word};

/// An email address around the `@` at `a`.
pub(super) fn email_at(b: &[u8], a: usize) -> Option<Hit> {
    let local = |c: u8| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'%' | b'+' | b'-');
    let mut s = a;
    while s > 0 && local(b[s - 1]) {
        s -= 1;
        if a - s > 64 {
            return None;
        }
    }
    while s < a && !b[s].is_ascii_alphanumeric() {
        s += 1;
    }
    if s == a || b[a - 1] == b'.' {
        return None;
    }
    let mut e = a + 1;
    while e < b.len() && (b[e].is_ascii_alphanumeric() || b[e] == b'.' || b[e] == b'-') {
        e += 1;
    }
    while e > a + 1 && matches!(b[e - 1], b'.' | b'-') {
        e -= 1;
    }
    let domain = &b[a + 1..e];
    let labels: Vec<&[u8]> = domain.split(|c| *c == b'.').collect();
    let tld = labels.last()?;
    let ok = labels.len() >= 2
        && labels
            .iter()
            .all(|l| !l.is_empty() && l[0] != b'-' && l[l.len() - 1] != b'-')
        && tld.len() >= 2
        && tld.iter().all(u8::is_ascii_alphabetic)
        && b.get(e).is_none_or(|c| *c != b'_' && *c != b'@');
    ok.then_some((Kind::Email, s, e))
}

/// The `user:pass` of `scheme://user:pass@host` when `b[c]` is the scheme's colon.
pub(super) fn url_credentials_at(b: &[u8], c: usize) -> Option<Hit> {
    if !b[c + 1..].starts_with(b"//") {
        return None;
    }
    let mut s = c;
    while s > 0 && (b[s - 1].is_ascii_alphanumeric() || matches!(b[s - 1], b'+' | b'.' | b'-')) {
        s -= 1;
    }
    if c - s < 2 || !b[s].is_ascii_alphabetic() {
        return None;
    }
    let start = c + 3;
    let stop = b[start..]
        .iter()
        .position(|x| {
            x.is_ascii_whitespace() || matches!(x, b'/' | b'?' | b'#' | b'<' | b'>' | b'"' | b'\'')
        })
        .map_or(b.len(), |p| start + p);
    let at = start + b[start..stop].iter().rposition(|x| *x == b'@')?;
    let colon = b[start..at].iter().position(|x| *x == b':')?;
    let ok = colon > 0 && start + colon + 1 < at && at + 1 < stop;
    ok.then_some((Kind::UrlCredentials, start, at))
}

/// The maximal run of hex digits, `:` and `.` around the colon at `c`: where to resume.
pub(super) fn hex_run(b: &[u8], c: usize) -> (usize, usize) {
    let hexish = |x: u8| x.is_ascii_hexdigit() || x == b':' || x == b'.';
    let mut s = c;
    while s > 0 && hexish(b[s - 1]) {
        s -= 1;
    }
    let mut e = c + 1;
    while e < b.len() && hexish(b[e]) {
        e += 1;
    }
    (s, e)
}

/// An IPv6 address in the run `b[s..e]` (as found by [`hex_run`]): parsed by `std`, with at
/// least two groups and one decimal digit (so `std::io` or `a::b` are not addresses).
pub(super) fn ipv6_in(b: &[u8], s: usize, mut e: usize) -> Option<Hit> {
    while e > s && b[e - 1] == b'.' {
        e -= 1;
    }
    let cand = std::str::from_utf8(&b[s..e]).ok()?;
    let groups = cand.split(':').filter(|g| !g.is_empty()).count();
    let ok = groups >= 2
        && cand.bytes().any(|x| x.is_ascii_digit())
        && (s == 0 || !is_word(b[s - 1]))
        && b.get(e).is_none_or(|x| !is_word(*x))
        && cand.parse::<Ipv6Addr>().is_ok();
    ok.then_some((Kind::Ipv6, s, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn email(s: &str) -> Option<&str> {
        let a = s.find('@')?;
        email_at(s.as_bytes(), a).map(|(_, st, e)| &s[st..e])
    }

    fn ipv6(s: &str) -> Option<&str> {
        let c = s.find(':')?;
        let (st, e) = hex_run(s.as_bytes(), c);
        ipv6_in(s.as_bytes(), st, e).map(|(_, st, e)| &s[st..e])
    }

    #[test]
    fn emails() {
        assert_eq!(
            email("mail john.doe+x@mail.example.co.uk."),
            Some("john.doe+x@mail.example.co.uk")
        );
        assert_eq!(email("(<a@b.io>)"), Some("a@b.io"));
        assert_eq!(email("@handle"), None);
        assert_eq!(email("user@localhost"), None);
        assert_eq!(email("x@1.2"), None);
    }

    #[test]
    fn url_credentials() {
        let s = "db postgres://admin:hunter2@db.internal:5432/app";
        let c = s.find(':').unwrap();
        let (_, st, e) = url_credentials_at(s.as_bytes(), c).unwrap();
        assert_eq!(&s[st..e], "admin:hunter2");
        let s = "https://github.com/x and ssh://git@github.com";
        assert!(url_credentials_at(s.as_bytes(), s.find(':').unwrap()).is_none());
    }

    #[test]
    fn ipv6_addresses() {
        assert_eq!(
            ipv6("at 2001:db8::8a2e:370:7334."),
            Some("2001:db8::8a2e:370:7334")
        );
        assert_eq!(ipv6("fe80::1 up"), Some("fe80::1"));
        assert_eq!(ipv6("std::io"), None);
        assert_eq!(ipv6("at 10:30:45"), None);
        assert_eq!(ipv6("mac 00:1a:2b:3c:4d:5e"), None);
    }
}
