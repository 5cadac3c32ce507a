//! Checksum and structure validators run on candidates only: Luhn and card prefixes, IBAN
//! mod-97 with the country length table, the Chinese resident ID (ISO 7064 MOD 11-2 and birth
//! date), US SSN area/group/serial rules, and the JWT header check.

/// Luhn check over ASCII digits.
pub(super) fn luhn(digits: &[u8]) -> bool {
    let mut sum = 0u32;
    for (i, d) in digits.iter().rev().enumerate() {
        let mut v = u32::from(d - b'0');
        if i % 2 == 1 {
            v *= 2;
            if v > 9 {
                v -= 9;
            }
        }
        sum += v;
    }
    sum.is_multiple_of(10)
}

/// True when the digits start with a known issuer prefix and have a length that issuer uses.
pub(super) fn card_issuer_ok(d: &[u8]) -> bool {
    let n = d.len();
    let p = |k: usize| -> u32 {
        d.iter()
            .take(k)
            .fold(0u32, |acc, c| acc * 10 + u32::from(c - b'0'))
    };
    let (p1, p2, p3, p4, p6) = (p(1), p(2), p(3), p(4), p(6));
    match p1 {
        // Visa.
        4 => matches!(n, 13 | 16 | 19),
        // Mastercard (51-55, 2221-2720).
        5 if (51..=55).contains(&p2) => n == 16,
        2 if (2221..=2720).contains(&p4) => n == 16,
        3 => {
            // Amex, Diners Club, JCB.
            (matches!(p2, 34 | 37) && n == 15)
                || ((300..=305).contains(&p3) || matches!(p2, 36 | 38 | 39))
                    && (14..=19).contains(&n)
                || (3528..=3589).contains(&p4) && (16..=19).contains(&n)
        }
        6 => {
            // Discover, UnionPay, Maestro.
            (p4 == 6011 || p2 == 65 || (644..=649).contains(&p3) || (622126..=622925).contains(&p6))
                && (16..=19).contains(&n)
                || p2 == 62 && (16..=19).contains(&n)
                || matches!(p2, 63 | 67) && (12..=19).contains(&n)
        }
        // Maestro 50, 56-58.
        5 => (p2 == 50 || (56..=58).contains(&p2)) && (12..=19).contains(&n),
        _ => false,
    }
}

/// The IBAN length of a country (ISO 13616 registry), or `None` for an unknown country.
pub(super) fn iban_length(cc: &[u8]) -> Option<usize> {
    const TABLE: &[(&[u8; 2], usize)] = &[
        (b"AD", 24),
        (b"AE", 23),
        (b"AL", 28),
        (b"AT", 20),
        (b"AZ", 28),
        (b"BA", 20),
        (b"BE", 16),
        (b"BG", 22),
        (b"BH", 22),
        (b"BR", 29),
        (b"BY", 28),
        (b"CH", 21),
        (b"CR", 22),
        (b"CY", 28),
        (b"CZ", 24),
        (b"DE", 22),
        (b"DK", 18),
        (b"DO", 28),
        (b"EE", 20),
        (b"EG", 29),
        (b"ES", 24),
        (b"FI", 18),
        (b"FO", 18),
        (b"FR", 27),
        (b"GB", 22),
        (b"GE", 22),
        (b"GI", 23),
        (b"GL", 18),
        (b"GR", 27),
        (b"GT", 28),
        (b"HR", 21),
        (b"HU", 28),
        (b"IE", 22),
        (b"IL", 23),
        (b"IQ", 23),
        (b"IS", 26),
        (b"IT", 27),
        (b"JO", 30),
        (b"KW", 30),
        (b"KZ", 20),
        (b"LB", 28),
        (b"LC", 32),
        (b"LI", 21),
        (b"LT", 20),
        (b"LU", 20),
        (b"LV", 21),
        (b"MC", 27),
        (b"MD", 24),
        (b"ME", 22),
        (b"MK", 19),
        (b"MR", 27),
        (b"MT", 31),
        (b"MU", 30),
        (b"NL", 18),
        (b"NO", 15),
        (b"PK", 24),
        (b"PL", 28),
        (b"PS", 29),
        (b"PT", 25),
        (b"QA", 29),
        (b"RO", 24),
        (b"RS", 22),
        (b"SA", 24),
        (b"SC", 31),
        (b"SE", 24),
        (b"SI", 19),
        (b"SK", 24),
        (b"SM", 27),
        (b"ST", 25),
        (b"SV", 28),
        (b"TL", 23),
        (b"TN", 24),
        (b"TR", 26),
        (b"UA", 29),
        (b"VA", 22),
        (b"VG", 24),
        (b"XK", 20),
    ];
    TABLE
        .iter()
        .find(|(c, _)| c.as_slice() == cc)
        .map(|(_, n)| *n)
}

/// IBAN mod-97 check over the compact form (uppercase letters and digits, no spaces).
pub(super) fn iban_mod97(compact: &[u8]) -> bool {
    if compact.len() < 5 {
        return false;
    }
    let rotated = compact[4..].iter().chain(&compact[..4]);
    let mut rem = 0u32;
    for &c in rotated {
        match c {
            b'0'..=b'9' => rem = (rem * 10 + u32::from(c - b'0')) % 97,
            b'A'..=b'Z' => rem = (rem * 100 + u32::from(c - b'A' + 10)) % 97,
            _ => return false,
        }
    }
    rem == 1
}

/// Chinese resident ID: 18 chars, region starting 1-8, a real birth date, and the ISO 7064
/// MOD 11-2 check character.
pub(super) fn cn_id_ok(id: &[u8]) -> bool {
    const W: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    const CHECK: &[u8; 11] = b"10X98765432";
    if id.len() != 18 || !id[..17].iter().all(u8::is_ascii_digit) || !(b'1'..=b'8').contains(&id[0])
    {
        return false;
    }
    let num =
        |r: std::ops::Range<usize>| id[r].iter().fold(0u32, |a, c| a * 10 + u32::from(c - b'0'));
    if !valid_date(num(6..10), num(10..12), num(12..14)) {
        return false;
    }
    let sum: u32 = id[..17]
        .iter()
        .zip(W)
        .map(|(c, w)| u32::from(c - b'0') * w)
        .sum();
    CHECK[(sum % 11) as usize] == id[17].to_ascii_uppercase()
}

fn valid_date(y: u32, m: u32, d: u32) -> bool {
    if !(1900..=2099).contains(&y) || !(1..=12).contains(&m) || d == 0 {
        return false;
    }
    let leap = (y.is_multiple_of(4) && !y.is_multiple_of(100)) || y.is_multiple_of(400);
    let days = match m {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    };
    d <= days
}

/// US SSN rules: area not 000, 666 or 9xx; group not 00; serial not 0000.
pub(super) fn ssn_ok(area: u32, group: u32, serial: u32) -> bool {
    area != 0 && area != 666 && area < 900 && group != 0 && serial != 0
}

/// Decodes unpadded base64url; `None` on a character outside the alphabet.
pub(super) fn base64url_decode(s: &[u8]) -> Option<Vec<u8>> {
    let val = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'-' => 62,
            b'_' => 63,
            _ => return None,
        } as u32)
    };
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for &c in s {
        acc = (acc << 6) | val(c)?;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

/// A JWT header: base64url of a JSON object with an `alg` member.
pub(super) fn jwt_header_ok(header: &[u8]) -> bool {
    base64url_decode(header)
        .and_then(|bytes| serde_json::from_slice::<serde_json::Value>(&bytes).ok())
        .is_some_and(|v| v.get("alg").is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn luhn_and_issuers() {
        assert!(luhn(b"4111111111111111") && card_issuer_ok(b"4111111111111111"));
        assert!(!luhn(b"4111111111111112"));
        assert!(luhn(b"378282246310005") && card_issuer_ok(b"378282246310005"));
        assert!(luhn(b"5555555555554444") && card_issuer_ok(b"5555555555554444"));
        assert!(!card_issuer_ok(b"1234567812345670"));
    }

    #[test]
    fn iban_checks() {
        assert!(iban_mod97(b"DE89370400440532013000"));
        assert!(iban_mod97(b"GB82WEST12345698765432"));
        assert!(!iban_mod97(b"DE89370400440532013001"));
        assert_eq!(iban_length(b"DE"), Some(22));
        assert_eq!(iban_length(b"ZZ"), None);
    }

    #[test]
    fn cn_id_checks() {
        assert!(cn_id_ok(b"11010519491231002X"));
        assert!(!cn_id_ok(b"110105194912310021"));
        assert!(!cn_id_ok(b"11010519491331002X"));
    }

    #[test]
    fn ssn_rules() {
        assert!(ssn_ok(123, 45, 6789));
        assert!(!ssn_ok(0, 45, 6789) && !ssn_ok(666, 45, 6789) && !ssn_ok(912, 45, 6789));
        assert!(!ssn_ok(123, 0, 6789) && !ssn_ok(123, 45, 0));
    }

    #[test]
    fn jwt_header() {
        assert!(jwt_header_ok(b"eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9"));
        assert!(!jwt_header_ok(b"eyJmb28iOiJiYXIifQ"));
    }
}
