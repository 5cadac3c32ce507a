//! Detectors that start at a digit: phone numbers, payment cards, IBANs (whose digits follow
//! the country code), IPv4 addresses, Chinese resident IDs and US SSNs. Each works on bytes
//! from a candidate position and only then runs its checksum.

use super::checksums;
use super::kind::Kind;

/// Which digit-started kinds are enabled.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct NumberKinds {
    pub phone: bool,
    pub card: bool,
    pub iban: bool,
    pub ipv4: bool,
    pub cn_id: bool,
    pub ssn: bool,
}

impl NumberKinds {
    pub(super) fn any(&self) -> bool {
        self.phone || self.card || self.iban || self.ipv4 || self.cn_id || self.ssn
    }
}

/// A detection at a digit: `(kind, start, end)`.
pub(super) type Hit = (Kind, usize, usize);

/// Tries every enabled kind at the digit `b[i]`, most specific first.
pub(super) fn at_digit(b: &[u8], i: usize, k: NumberKinds) -> Option<Hit> {
    let prev = i.checked_sub(1).map(|p| b[p]);
    // An IBAN's first digit follows its two-letter country code.
    if k.iban && i >= 2 && b[i - 1].is_ascii_uppercase() && b[i - 2].is_ascii_uppercase() {
        if (i == 2 || !is_word(b[i - 3]))
            && let Some(end) = iban(b, i - 2)
        {
            return Some((Kind::Iban, i - 2, end));
        }
        return None;
    }
    match prev {
        Some(b'+') => {
            if i >= 2 && is_word(b[i - 2]) {
                return None;
            }
            return k
                .phone
                .then(|| phone(b, i, true))
                .flatten()
                .map(|e| (Kind::Phone, i - 1, e));
        }
        Some(p) if !starts_token(b, i, p) => return None,
        _ => {}
    }
    if k.ssn
        && let Some(e) = ssn(b, i)
    {
        return Some((Kind::Ssn, i, e));
    }
    if k.cn_id
        && let Some(e) = cn_id(b, i)
    {
        return Some((Kind::CnId, i, e));
    }
    if k.card
        && let Some(e) = card(b, i)
    {
        return Some((Kind::Card, i, e));
    }
    if k.ipv4
        && let Some(e) = ipv4(b, i)
    {
        return Some((Kind::Ipv4, i, e));
    }
    if k.phone {
        let paren = prev == Some(b'(');
        let s = if paren { i - 1 } else { i };
        if let Some(e) = phone(b, s, false) {
            return Some((Kind::Phone, s, e));
        }
    }
    None
}

/// Where to resume after no kind matched at the digit `b[i]`: past the word it is in, or
/// past the whole IBAN-shaped run (so a bad IBAN's digit groups are not read as a phone).
pub(super) fn skip_after_miss(b: &[u8], i: usize) -> usize {
    let mut j = i + 1;
    let iban_shaped = i >= 2 && b[i - 1].is_ascii_uppercase() && b[i - 2].is_ascii_uppercase();
    while j < b.len() {
        let c = b[j];
        let more = c.is_ascii_alphanumeric()
            || (iban_shaped && c == b' ' && b.get(j + 1).is_some_and(u8::is_ascii_alphanumeric));
        if !more {
            break;
        }
        j += 1;
    }
    j
}

/// ASCII letters, digits and `_`.
pub(super) fn is_word(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

/// Whether a number may start after `p`: not inside a word, a dotted number, a path or a
/// dashed code such as `ORD-1234`.
fn starts_token(b: &[u8], i: usize, p: u8) -> bool {
    match p {
        b'.' | b'/' | b'\\' | b'_' => false,
        b'-' => i < 2 || !is_word(b[i - 2]),
        _ => !p.is_ascii_alphanumeric(),
    }
}

/// A number may end at `e`: not followed by a word character or by `-`, `.` or `/` and a
/// digit (which would make it part of a longer number).
fn ends_number(b: &[u8], e: usize) -> bool {
    match b.get(e) {
        None => true,
        Some(c) if is_word(*c) => false,
        Some(b'-' | b'.' | b'/' | b',') => !b.get(e + 1).is_some_and(u8::is_ascii_digit),
        Some(_) => true,
    }
}

fn digits_at(b: &[u8], i: usize, n: usize) -> bool {
    b.len() >= i + n && b[i..i + n].iter().all(u8::is_ascii_digit)
}

fn num(b: &[u8]) -> u32 {
    b.iter().fold(0u32, |a, c| {
        a.saturating_mul(10).saturating_add(u32::from(c - b'0'))
    })
}

/// `AAA-GG-SSSS` with the SSA's invalid-number rules.
fn ssn(b: &[u8], i: usize) -> Option<usize> {
    let ok = digits_at(b, i, 3)
        && b.get(i + 3) == Some(&b'-')
        && digits_at(b, i + 4, 2)
        && b.get(i + 6) == Some(&b'-')
        && digits_at(b, i + 7, 4)
        && ends_number(b, i + 11)
        && checksums::ssn_ok(
            num(&b[i..i + 3]),
            num(&b[i + 4..i + 6]),
            num(&b[i + 7..i + 11]),
        );
    ok.then_some(i + 11)
}

/// 17 digits and a check character (digit or X).
fn cn_id(b: &[u8], i: usize) -> Option<usize> {
    let ok = b.len() >= i + 18
        && checksums::cn_id_ok(&b[i..i + 18])
        && b.get(i + 18).is_none_or(|c| !is_word(*c));
    ok.then_some(i + 18)
}

/// 13-19 digits, optionally grouped by one kind of separator (space or dash), passing Luhn
/// and an issuer prefix. Shorter readings must end at a group boundary.
fn card(b: &[u8], i: usize) -> Option<usize> {
    let mut digits = [0u8; 19];
    let mut ends = [0usize; 19];
    let (mut n, mut j, mut sep) = (0usize, i, None);
    while j < b.len() {
        let c = b[j];
        if c.is_ascii_digit() {
            if n == 19 {
                // A longer unseparated digit run is not a card; a grouped one may end here.
                sep?;
                break;
            }
            digits[n] = c;
            ends[n] = j + 1;
            n += 1;
            j += 1;
        } else if (c == b' ' || c == b'-') && b.get(j + 1).is_some_and(u8::is_ascii_digit) {
            match sep {
                None => sep = Some(c),
                Some(s) if s != c => break,
                Some(_) => {}
            }
            j += 1;
        } else {
            break;
        }
    }
    (13..=n).rev().find_map(|len| {
        let end = ends[len - 1];
        let d = &digits[..len];
        let boundary = b.get(end).is_none_or(|c| !c.is_ascii_digit()) && ends_number(b, end);
        (boundary && checksums::card_issuer_ok(d) && checksums::luhn(d)).then_some(end)
    })
}

/// An IBAN starting at the country code `b[s]`: the country's length of letters and digits,
/// spaces allowed between them, then mod-97.
fn iban(b: &[u8], s: usize) -> Option<usize> {
    let len = checksums::iban_length(&b[s..s + 2])?;
    let mut compact = Vec::with_capacity(len);
    let mut j = s;
    while compact.len() < len && j < b.len() {
        let c = b[j];
        if c.is_ascii_uppercase() || c.is_ascii_digit() {
            compact.push(c);
            j += 1;
        } else if c == b' '
            && b.get(j + 1)
                .is_some_and(|n| n.is_ascii_uppercase() || n.is_ascii_digit())
        {
            j += 1;
        } else {
            break;
        }
    }
    let ok = compact.len() == len
        && compact[2..4].iter().all(u8::is_ascii_digit)
        && b.get(j).is_none_or(|c| !is_word(*c))
        && checksums::iban_mod97(&compact);
    ok.then_some(j)
}

/// Four dotted octets (0-255, no leading zeros), not part of a longer dotted number and not
/// right after a word such as "version".
fn ipv4(b: &[u8], i: usize) -> Option<usize> {
    let mut j = i;
    for part in 0..4 {
        let start = j;
        while j < b.len() && b[j].is_ascii_digit() && j - start < 4 {
            j += 1;
        }
        let oct = &b[start..j];
        if oct.is_empty() || oct.len() > 3 || (oct.len() > 1 && oct[0] == b'0') || num(oct) > 255 {
            return None;
        }
        if part < 3 {
            if b.get(j) != Some(&b'.') {
                return None;
            }
            j += 1;
        }
    }
    (ends_number(b, j) && !after_version_word(b, i)).then_some(j)
}

/// True when the word before `i` (skipping spaces) says a version number follows.
fn after_version_word(b: &[u8], i: usize) -> bool {
    let mut e = i;
    while e > 0 && b[e - 1] == b' ' {
        e -= 1;
    }
    let mut s = e;
    while s > 0 && b[s - 1].is_ascii_alphabetic() && e - s < 12 {
        s -= 1;
    }
    let w = b[s..e].to_ascii_lowercase();
    matches!(
        w.as_slice(),
        b"v" | b"ver" | b"version" | b"build" | b"firmware"
    )
}

/// A group of digits inside a phone-shaped run.
#[derive(Clone, Copy)]
struct Group {
    start: usize,
    len: usize,
    end: usize,
}

/// Digit groups separated by one space, dash or dot, the first possibly in parentheses.
fn groups(b: &[u8], mut j: usize, out: &mut Vec<Group>) {
    while out.len() < 8 {
        let paren = b.get(j) == Some(&b'(');
        let start = if paren { j + 1 } else { j };
        let mut k = start;
        while k < b.len() && b[k].is_ascii_digit() && k - start < 12 {
            k += 1;
        }
        if k == start {
            return;
        }
        let mut end = k;
        if paren {
            if b.get(k) != Some(&b')') {
                return;
            }
            end = k + 1;
        }
        out.push(Group {
            start,
            len: k - start,
            end,
        });
        let next = match b.get(end) {
            Some(b' ' | b'-' | b'.') => end + 1,
            _ if paren => end,
            _ => return,
        };
        match b.get(next) {
            Some(c) if c.is_ascii_digit() || *c == b'(' => j = next,
            _ => return,
        }
    }
}

/// International numbers (`+` or `00`), US numbers (3-3-4, optional leading 1 or area code in
/// parentheses) and Chinese mobiles (11 digits starting 13-19, optionally 3-4-4). Returns the
/// end; `s` is the first digit, or the `(` before it.
fn phone(b: &[u8], s: usize, plus: bool) -> Option<usize> {
    let mut g = Vec::with_capacity(8);
    groups(b, s, &mut g);
    let first = *g.first()?;
    let lens: Vec<usize> = g.iter().map(|x| x.len).collect();
    let fd = |x: &Group, k: usize| b[x.start + k];
    if plus
        || (first.len >= 3 && b[first.start] == b'0' && b[first.start + 1] == b'0' && g.len() >= 2)
    {
        let skip = if plus { 0 } else { 2 };
        if fd(&first, skip) == b'0' {
            return None;
        }
        let mut total: usize = lens.iter().sum::<usize>() - skip;
        let mut kept = g.len();
        while total > 15 && kept > 1 {
            kept -= 1;
            total -= g[kept].len;
        }
        let end = g[kept - 1].end;
        return ((8..=15).contains(&total) && ends_number(b, end)).then_some(end);
    }
    let nanp =
        |a: &Group, x: &Group| a.len == 3 && x.len == 3 && fd(a, 0) >= b'2' && fd(x, 0) >= b'2';
    let us = match lens.as_slice() {
        [3, 3, 4, ..] if nanp(&g[0], &g[1]) => Some(g[2].end),
        [1, 3, 3, 4, ..] if fd(&g[0], 0) == b'1' && nanp(&g[1], &g[2]) => Some(g[3].end),
        _ => None,
    };
    let cn_ok = |x: &Group| b[x.start] == b'1' && (b'3'..=b'9').contains(&b[x.start + 1]);
    let cn = match lens.as_slice() {
        [11, ..] if cn_ok(&first) && b.get(first.end) != Some(&b'.') => Some(first.end),
        [3, 4, 4, ..] if cn_ok(&first) => Some(g[2].end),
        _ => None,
    };
    us.or(cn).filter(|e| ends_number(b, *e))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: NumberKinds = NumberKinds {
        phone: true,
        card: true,
        iban: true,
        ipv4: true,
        cn_id: true,
        ssn: true,
    };

    fn first(s: &str) -> Option<(Kind, &str)> {
        let b = s.as_bytes();
        let mut i = 0;
        while i < b.len() {
            if !b[i].is_ascii_digit() {
                i += 1;
                continue;
            }
            match at_digit(b, i, ALL) {
                Some((k, st, e)) => return Some((k, &s[st..e])),
                None => i = skip_after_miss(b, i),
            }
        }
        None
    }

    #[test]
    fn positives() {
        let cases = [
            ("call +14155552671 now", Kind::Phone, "+14155552671"),
            ("手机13812345678。", Kind::Phone, "13812345678"),
            ("tel +86 138 1234 5678.", Kind::Phone, "+86 138 1234 5678"),
            ("at (415) 555-2671 today", Kind::Phone, "(415) 555-2671"),
            ("at 415-555-2671.", Kind::Phone, "415-555-2671"),
            ("Berlin +49 30 123456", Kind::Phone, "+49 30 123456"),
            ("Paris +33 1 23 45 67 89", Kind::Phone, "+33 1 23 45 67 89"),
            ("London 0044 20 7946 0958", Kind::Phone, "0044 20 7946 0958"),
            (
                "card 4111 1111 1111 1111 exp",
                Kind::Card,
                "4111 1111 1111 1111",
            ),
            (
                "card 4111-1111-1111-1111",
                Kind::Card,
                "4111-1111-1111-1111",
            ),
            ("amex 378282246310005", Kind::Card, "378282246310005"),
            (
                "iban DE89 3704 0044 0532 0130 00 ok",
                Kind::Iban,
                "DE89 3704 0044 0532 0130 00",
            ),
            (
                "iban GB82WEST12345698765432",
                Kind::Iban,
                "GB82WEST12345698765432",
            ),
            ("host 192.168.1.20.", Kind::Ipv4, "192.168.1.20"),
            ("id 11010519491231002X", Kind::CnId, "11010519491231002X"),
            ("ssn 123-45-6789", Kind::Ssn, "123-45-6789"),
        ];
        for (text, kind, want) in cases {
            assert_eq!(first(text), Some((kind, want)), "{text}");
        }
    }

    #[test]
    fn hard_negatives() {
        for text in [
            "version 1.2.3.4",
            "build 10.0.19041.1",
            "v1.2.3",
            "1.2.3.4.5",
            "4111 1111 1111 1112",
            "DE89 3704 0044 0532 0130 01",
            "110105194912310021",
            "000-12-3456",
            "666-12-3456",
            "123-00-4567",
            "on 2024-01-02 at 10:30",
            "ORD-20240102-5531",
            "price $1,299.99",
            "ISBN 978-3-16-148410-0",
            "256.1.1.1",
            "4155552671",
        ] {
            assert_eq!(first(text), None, "{text}");
        }
    }
}
