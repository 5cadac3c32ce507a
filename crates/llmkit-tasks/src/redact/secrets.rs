//! API keys, tokens and private keys: one regex whose branches all start with a literal (so
//! the regex engine scans with a SIMD literal prefilter), then a check per candidate.

use regex::Regex;

use super::checksums;
use super::kind::Kind;
use super::numbers::{Hit, is_word};

const PATTERN: &str = concat!(
    r"sk-[A-Za-z0-9_-]{20,}",
    r"|(?:AKIA|ASIA)[A-Z0-9]{16}",
    r"|gh[opsur]_[A-Za-z0-9]{36,}",
    r"|github_pat_[A-Za-z0-9_]{40,}",
    r"|eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]*",
    r"|-----BEGIN[ A-Z0-9]*PRIVATE KEY-----",
    r#"|(?:aws_secret_access_key|AWS_SECRET_ACCESS_KEY)["']?[ \t]*[:=][ \t]*["']?[A-Za-z0-9/+=]{40}"#,
);

/// The compiled secret detector.
#[derive(Debug, Clone)]
pub(super) struct Secrets {
    re: Regex,
}

impl Secrets {
    pub(super) fn new() -> Self {
        #[expect(clippy::expect_used, reason = "constant pattern, covered by tests")]
        let re = Regex::new(PATTERN).expect("the secret pattern compiles");
        Self { re }
    }

    pub(super) fn find(&self, text: &str, out: &mut Vec<Hit>) {
        let b = text.as_bytes();
        let mut at = 0;
        while let Some(m) = self.re.find_at(text, at) {
            at = m.end();
            if let Some(hit) = check(text, m.start(), m.end()) {
                at = at.max(hit.2);
                out.push(hit);
            } else if m.start() + 1 < b.len() {
                at = next_char(text, m.start() + 1);
            }
        }
    }
}

impl Default for Secrets {
    fn default() -> Self {
        Self::new()
    }
}

fn next_char(text: &str, mut i: usize) -> usize {
    while i < text.len() && !text.is_char_boundary(i) {
        i += 1;
    }
    i
}

/// Validates one candidate and returns the span to replace.
fn check(text: &str, s: usize, e: usize) -> Option<Hit> {
    let b = text.as_bytes();
    let m = &b[s..e];
    if m.starts_with(b"-----BEGIN") {
        return Some((Kind::Secret, s, pem_end(text, s, e)));
    }
    if m[0] == b'a' || (m[0] == b'A' && m[1] == b'W') {
        // Only the 40-character value after `aws_secret_access_key=` is secret.
        let ok = b
            .get(e)
            .is_none_or(|c| !c.is_ascii_alphanumeric() && *c != b'/' && *c != b'+');
        return ok.then_some((Kind::Secret, e - 40, e));
    }
    if s > 0 && is_word(b[s - 1]) {
        return None;
    }
    let ok = match m[0] {
        b'A' => b.get(e).is_none_or(|c| !c.is_ascii_alphanumeric()),
        b'e' => {
            let dot = m.iter().position(|c| *c == b'.').unwrap_or(m.len());
            checksums::jwt_header_ok(&m[..dot])
        }
        _ => true,
    };
    ok.then_some((Kind::Secret, s, e))
}

/// The end of a PEM private key: its matching END line, or else the base64 lines after BEGIN.
fn pem_end(text: &str, s: usize, e: usize) -> usize {
    let label = &text[s + "-----BEGIN".len()..e - "-----".len()];
    let end_line = format!("-----END{label}-----");
    if let Some(p) = text[e..].find(&end_line) {
        return e + p + end_line.len();
    }
    let Some(nl) = text[e..].find('\n') else {
        return e;
    };
    let (mut pos, mut end) = (e + nl + 1, e);
    for line in text[pos..].split_inclusive('\n') {
        let body = line.trim_end();
        if body.is_empty()
            || !body
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'+' | b'/' | b'='))
        {
            break;
        }
        pos += line.len();
        end = pos;
    }
    end
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(text: &str) -> Vec<&str> {
        let mut out = Vec::new();
        Secrets::new().find(text, &mut out);
        out.iter().map(|(_, s, e)| &text[*s..*e]).collect()
    }

    #[test]
    fn finds_keys_and_tokens() {
        let openai = "sk-proj-abcdefghijklmnopqrstuvwxyz0123";
        let ant = "sk-ant-api03-abcdefghijklmnopqrstuvwxyz";
        let aws = "AKIAIOSFODNN7EXAMPLE";
        let gh = "ghp_0123456789abcdefghijklmnopqrstuvwxyz";
        let jwt = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0In0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U";
        let text = format!("k={openai} a {ant}, {aws} / {gh}\nAuthorization: Bearer {jwt}\n");
        assert_eq!(found(&text), vec![openai, ant, aws, gh, jwt]);
        let env = "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\n";
        assert_eq!(found(env), vec!["wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"]);
    }

    #[test]
    fn pem_blocks() {
        let pem = "-----BEGIN RSA PRIVATE KEY-----\nMIIBOgIBAAJBAKj34GkxFhD90vcNLYLInFEX6Ppy1tPf9Cnzj4p4WGeKLs1Pt8Qu\nKUpRKfFLfRYC9AIKjbJTWit+CqvjWYzvQwECAwEAAQ==\n-----END RSA PRIVATE KEY-----";
        assert_eq!(found(&format!("key:\n{pem}\nthanks")), vec![pem]);
        let cut = "-----BEGIN PRIVATE KEY-----\nMIIBOgIBAAJBAKj34Gkx\nAbc=\n\nthanks";
        assert_eq!(
            found(cut),
            vec!["-----BEGIN PRIVATE KEY-----\nMIIBOgIBAAJBAKj34Gkx\nAbc=\n"]
        );
    }

    #[test]
    fn negatives() {
        assert!(found("a task-abcdefghijklmnopqrstuvwxyz0123 here").is_empty());
        assert!(found("eyJmb28iOiJiYXIifQ.eyJzdWIiOiIxMjM0In0.abc").is_empty());
        assert!(found("AKIAIOSFODNN7EXAMPLEX").is_empty());
    }
}
