//! A deterministic, seeded generator of labelled synthetic text for the redaction quality test
//! and benchmark: prose with positives of every kind and hard negatives (order numbers,
//! dates, versions, ISBNs, UUIDs, checksum-failing cards/IBANs/IDs, invalid SSNs, timestamps,
//! prices).
//!
//! Shared by `tests/it/redact.rs` and `examples/redact_bench.rs` (via `#[path]`).

#![allow(dead_code)]

use llmkit_tasks::Kind;

/// One labelled span: a positive (`Some(kind)`) or a hard negative (`None`).
#[derive(Debug, Clone)]
pub(crate) struct Label {
    pub kind: Option<Kind>,
    pub start: usize,
    pub end: usize,
}

/// Generated text and its labels.
#[derive(Debug, Default)]
pub(crate) struct Corpus {
    pub text: String,
    pub labels: Vec<Label>,
}

/// The generator: `llmkit_testkit`'s, so that a seed names the same corpus on every machine.
pub(crate) use llmkit_testkit::rng::SplitMix64;

/// The corpus's own draws on top of the generator's.
trait Draws {
    /// `n` decimal digits.
    fn digits(&mut self, n: usize) -> String;
    /// `n` characters drawn from `alphabet`.
    fn chars(&mut self, alphabet: &[u8], n: usize) -> String;
}

impl Draws for SplitMix64 {
    fn digits(&mut self, n: usize) -> String {
        (0..n)
            .map(|_| char::from(b'0' + self.below(10) as u8))
            .collect()
    }
    fn chars(&mut self, alphabet: &[u8], n: usize) -> String {
        (0..n).map(|_| char::from(*self.pick(alphabet))).collect()
    }
}

const WORDS: &[&str] = &[
    "the",
    "report",
    "shows",
    "that",
    "our",
    "team",
    "will",
    "review",
    "budget",
    "meeting",
    "customer",
    "please",
    "send",
    "update",
    "for",
    "project",
    "and",
    "with",
    "about",
    "next",
    "week",
    "results",
    "were",
    "better",
    "than",
    "expected",
    "deadline",
    "contract",
    "signed",
    "invoice",
    "attached",
    "question",
    "answer",
    "summary",
    "details",
    "market",
    "growth",
    "data",
    "model",
    "training",
    "server",
    "deploy",
    "release",
    "notes",
    "in",
    "on",
    "a",
    "is",
    "café",
    "naïve",
    "数据",
    "报告",
    "überprüfen",
    "résumé",
];

const ALNUM_UPPER: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
const B64URL: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
const HEX: &[u8] = b"0123456789abcdef";

/// Generates about `bytes` of text. `pii` is the share of sentences carrying a positive,
/// `negatives` the share carrying a hard negative.
pub(crate) fn generate(seed: u64, bytes: usize, pii: f64, negatives: f64) -> Corpus {
    let mut rng = SplitMix64::new(seed);
    let mut c = Corpus {
        text: String::with_capacity(bytes + 1024),
        labels: Vec::new(),
    };
    while c.text.len() < bytes {
        prose(&mut rng, &mut c.text, 4, 12);
        if rng.chance(pii) {
            let kind = *rng.pick(&POSITIVE_KINDS);
            let (value, inner) = positive(&mut rng, kind);
            push_item(&mut c, &value, inner, Some(kind));
        } else if rng.chance(negatives / (1.0 - pii).max(1e-9)) {
            let value = negative(&mut rng);
            push_item(&mut c, &value, (0, value.len()), None);
        }
        prose(&mut rng, &mut c.text, 2, 8);
        c.text.push_str(if rng.chance(0.15) { ".\n" } else { ". " });
    }
    c
}

fn push_item(c: &mut Corpus, value: &str, inner: (usize, usize), kind: Option<Kind>) {
    c.text.push(' ');
    let start = c.text.len();
    c.text.push_str(value);
    c.labels.push(Label {
        kind,
        start: start + inner.0,
        end: start + inner.1,
    });
    c.text.push(' ');
}

fn prose(rng: &mut SplitMix64, out: &mut String, lo: u64, hi: u64) {
    for i in 0..rng.range(lo, hi) {
        if i > 0 || !out.is_empty() && !out.ends_with(' ') && !out.ends_with('\n') {
            out.push(' ');
        }
        out.push_str(rng.pick::<&str>(WORDS));
    }
}

/// The kinds the generator produces positives for.
pub(crate) const POSITIVE_KINDS: [Kind; 10] = [
    Kind::Email,
    Kind::Phone,
    Kind::Card,
    Kind::Iban,
    Kind::Ipv4,
    Kind::Ipv6,
    Kind::CnId,
    Kind::Ssn,
    Kind::Secret,
    Kind::UrlCredentials,
];

/// A positive value and the byte range inside it that is the labelled span.
pub(crate) fn positive(rng: &mut SplitMix64, kind: Kind) -> (String, (usize, usize)) {
    let whole = |s: String| {
        let n = s.len();
        (s, (0, n))
    };
    match kind {
        Kind::Email => {
            let user = format!(
                "{}.{}{}",
                rng.pick(&["jane", "li", "omar", "sara"]),
                rng.pick(&["doe", "wei", "khan"]),
                rng.below(1000)
            );
            whole(format!(
                "{user}@{}.{}",
                rng.pick(&["example", "mail-box", "corp.example"]),
                rng.pick(&["com", "org", "co.uk", "de"])
            ))
        }
        Kind::Phone => whole(phone(rng)),
        Kind::Card => whole(format_card(&card(rng, true), rng)),
        Kind::Iban => whole(format_iban(&iban(rng, true), rng)),
        Kind::Ipv4 => whole(format!(
            "{}.{}.{}.{}",
            rng.range(1, 255),
            rng.below(256),
            rng.below(256),
            rng.range(1, 254)
        )),
        Kind::Ipv6 => whole(if rng.chance(0.5) {
            (0..8)
                .map(|_| format!("{:x}", rng.below(0x10000)))
                .collect::<Vec<_>>()
                .join(":")
        } else {
            format!(
                "2001:db8:{:x}::{:x}",
                rng.below(0x10000),
                rng.range(1, 0xffff)
            )
        }),
        Kind::CnId => whole(cn_id(rng, true)),
        Kind::Ssn => whole(ssn(rng, true)),
        Kind::Secret => secret(rng),
        _ => {
            let user = format!("svc{}", rng.below(100));
            let pass = rng.chars(ALNUM, 12);
            let s = format!(
                "postgres://{user}:{pass}@db{}.example.com:5432/app",
                rng.below(10)
            );
            let start = "postgres://".len();
            (s, (start, start + user.len() + 1 + pass.len()))
        }
    }
}

fn phone(rng: &mut SplitMix64) -> String {
    let nanp = |rng: &mut SplitMix64| format!("{}{}", rng.range(2, 9), rng.digits(2));
    match rng.below(8) {
        0 => format!("+1{}{}{}", nanp(rng), nanp(rng), rng.digits(4)),
        1 => format!("1{}{}", rng.range(3, 9), rng.digits(9)),
        2 => format!(
            "+86 1{}{} {} {}",
            rng.range(3, 9),
            rng.digits(1),
            rng.digits(4),
            rng.digits(4)
        ),
        3 => format!("({}) {}-{}", nanp(rng), nanp(rng), rng.digits(4)),
        4 => format!("{}-{}-{}", nanp(rng), nanp(rng), rng.digits(4)),
        5 => {
            let n = rng.range(6, 8) as usize;
            format!("+49 30 {}", rng.digits(n))
        }
        6 => format!(
            "+33 {} {} {} {} {}",
            rng.range(1, 9),
            rng.digits(2),
            rng.digits(2),
            rng.digits(2),
            rng.digits(2)
        ),
        _ => format!("0044 20 {} {}", rng.digits(4), rng.digits(4)),
    }
}

fn luhn_digit(body: &str) -> u8 {
    let sum: u32 = body
        .bytes()
        .rev()
        .enumerate()
        .map(|(i, c)| {
            let mut v = u32::from(c - b'0');
            if i % 2 == 0 {
                v *= 2;
                if v > 9 {
                    v -= 9;
                }
            }
            v
        })
        .sum();
    ((10 - sum % 10) % 10) as u8
}

/// A card number (digits only); `valid` false gives a Luhn-failing one.
pub(crate) fn card(rng: &mut SplitMix64, valid: bool) -> String {
    let (prefix, len) = *rng.pick(&[
        ("4", 16usize),
        ("51", 16),
        ("55", 16),
        ("2221", 16),
        ("34", 15),
        ("37", 15),
        ("6011", 16),
        ("3530", 16),
        ("4", 13),
    ]);
    let body = format!("{prefix}{}", rng.digits(len - 1 - prefix.len()));
    let check = luhn_digit(&body);
    let check = if valid {
        check
    } else {
        (check + 1 + rng.below(9) as u8) % 10
    };
    format!("{body}{check}")
}

fn format_card(d: &str, rng: &mut SplitMix64) -> String {
    match (d.len(), rng.below(3)) {
        (16, 1) => d
            .as_bytes()
            .chunks(4)
            .map(|c| String::from_utf8_lossy(c).into_owned())
            .collect::<Vec<_>>()
            .join(" "),
        (16, 2) => d
            .as_bytes()
            .chunks(4)
            .map(|c| String::from_utf8_lossy(c).into_owned())
            .collect::<Vec<_>>()
            .join("-"),
        (15, 1) => format!("{} {} {}", &d[..4], &d[4..10], &d[10..]),
        _ => d.to_string(),
    }
}

fn mod97(s: &str) -> u32 {
    s.bytes().fold(0u32, |r, c| match c {
        b'0'..=b'9' => (r * 10 + u32::from(c - b'0')) % 97,
        _ => (r * 100 + u32::from(c - b'A' + 10)) % 97,
    })
}

/// A compact IBAN; `valid` false gives wrong check digits.
pub(crate) fn iban(rng: &mut SplitMix64, valid: bool) -> String {
    let (cc, bban) = match rng.below(6) {
        0 => ("DE", rng.digits(18)),
        1 => (
            "GB",
            format!(
                "{}{}",
                rng.chars(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ", 4),
                rng.digits(14)
            ),
        ),
        2 => ("FR", rng.digits(23)),
        3 => (
            "NL",
            format!(
                "{}{}",
                rng.chars(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ", 4),
                rng.digits(10)
            ),
        ),
        4 => ("ES", rng.digits(20)),
        _ => (
            "IT",
            format!(
                "{}{}",
                rng.chars(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ", 1),
                rng.digits(22)
            ),
        ),
    };
    let check = 98 - mod97(&format!("{bban}{cc}00"));
    let check = if valid {
        check
    } else {
        (check + 1 + rng.below(90) as u32) % 97 + 2
    };
    let check = if !valid && check == 98 - mod97(&format!("{bban}{cc}00")) {
        (check + 1) % 97 + 2
    } else {
        check
    };
    format!("{cc}{check:02}{bban}")
}

fn format_iban(s: &str, rng: &mut SplitMix64) -> String {
    if rng.chance(0.5) {
        s.as_bytes()
            .chunks(4)
            .map(|c| String::from_utf8_lossy(c).into_owned())
            .collect::<Vec<_>>()
            .join(" ")
    } else {
        s.to_string()
    }
}

/// A Chinese resident ID; `valid` false gives a wrong check character.
pub(crate) fn cn_id(rng: &mut SplitMix64, valid: bool) -> String {
    const W: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    const CHECK: &[u8; 11] = b"10X98765432";
    let region = rng.pick(&["110105", "310104", "440305", "510107", "330106"]);
    let body = format!(
        "{region}{}{:02}{:02}{}",
        rng.range(1950, 2005),
        rng.range(1, 12),
        rng.range(1, 28),
        rng.digits(3)
    );
    let sum: u32 = body
        .bytes()
        .zip(W)
        .map(|(c, w)| u32::from(c - b'0') * w)
        .sum();
    let mut idx = (sum % 11) as usize;
    if !valid {
        idx = (idx + 1 + rng.below(10) as usize) % 11;
    }
    format!("{body}{}", char::from(CHECK[idx]))
}

/// An SSN; `valid` false breaks one of the area/group/serial rules.
pub(crate) fn ssn(rng: &mut SplitMix64, valid: bool) -> String {
    let mut area = rng.range(1, 899);
    if area == 666 {
        area = 665;
    }
    let (mut g, mut s) = (rng.range(1, 99), rng.range(1, 9999));
    if !valid {
        match rng.below(4) {
            0 => area = 0,
            1 => area = 666,
            2 => area = rng.range(900, 999),
            _ => {
                if rng.chance(0.5) {
                    g = 0
                } else {
                    s = 0
                }
            }
        }
    }
    format!("{area:03}-{g:02}-{s:04}")
}

fn secret(rng: &mut SplitMix64) -> (String, (usize, usize)) {
    let whole = |s: String| {
        let n = s.len();
        (s, (0, n))
    };
    match rng.below(7) {
        0 => whole(format!("sk-proj-{}", rng.chars(ALNUM, 48))),
        1 => whole(format!("sk-ant-api03-{}", rng.chars(B64URL, 40))),
        2 => whole(format!("AKIA{}", rng.chars(ALNUM_UPPER, 16))),
        3 => whole(format!("ghp_{}", rng.chars(ALNUM, 36))),
        4 => whole(format!(
            "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJ{}.{}",
            rng.chars(B64URL, 30),
            rng.chars(B64URL, 43)
        )),
        5 => {
            let key = rng.chars(ALNUM, 40);
            let s = format!("aws_secret_access_key={key}");
            let n = s.len();
            (s, (n - 40, n))
        }
        _ => {
            let lines: Vec<String> = (0..3).map(|_| rng.chars(ALNUM, 64)).collect();
            whole(format!(
                "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----",
                lines.join("\n")
            ))
        }
    }
}

/// A hard negative: something a careless detector would flag.
pub(crate) fn negative(rng: &mut SplitMix64) -> String {
    match rng.below(17) {
        0 => format!("ORD-{}-{}", rng.range(2019, 2025), rng.digits(6)),
        1 => {
            let n = rng.range(4, 8) as usize;
            format!("#{}", rng.digits(n))
        }
        2 => format!(
            "{}-{:02}-{:02}",
            rng.range(1990, 2030),
            rng.range(1, 12),
            rng.range(1, 28)
        ),
        3 => format!(
            "{:02}/{:02}/{}",
            rng.range(1, 28),
            rng.range(1, 12),
            rng.range(1990, 2030)
        ),
        4 => format!(
            "version {}.{}.{}.{}",
            rng.below(20),
            rng.below(20),
            rng.below(100),
            rng.below(100)
        ),
        5 => format!("build 10.0.{}.{}", rng.range(10000, 22000), rng.below(2000)),
        6 => format!(
            "ISBN 978-{}-{}-{}-{}",
            rng.below(10),
            rng.digits(2),
            rng.digits(6),
            rng.below(10)
        ),
        7 => format!(
            "{}-{}-{}-{}-{}",
            rng.chars(HEX, 8),
            rng.chars(HEX, 4),
            rng.chars(HEX, 4),
            rng.chars(HEX, 4),
            rng.chars(HEX, 12)
        ),
        8 => format_card(&card(rng, false), rng),
        9 => format_iban(&iban(rng, false), rng),
        10 => cn_id(rng, false),
        11 => ssn(rng, false),
        12 => format!(
            "{}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
            rng.range(2000, 2030),
            rng.range(1, 12),
            rng.range(1, 28),
            rng.below(24),
            rng.below(60),
            rng.below(60)
        ),
        13 => format!(
            "${},{}.{:02}",
            rng.range(1, 99),
            rng.digits(3),
            rng.below(100)
        ),
        14 => format!(
            "{:02}:{:02}:{:02}",
            rng.below(24),
            rng.below(60),
            rng.below(60)
        ),
        15 => format!("v{}.{}.{}", rng.below(10), rng.below(30), rng.below(100)),
        _ => format!(
            "std::{}::{}",
            rng.pick(&["io", "fs", "net"]),
            rng.pick(&["Read", "File", "Ipv6Addr"])
        ),
    }
}
