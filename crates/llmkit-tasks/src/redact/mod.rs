//! Privacy redaction: finds personal data and secrets in text, swaps them for stable
//! placeholders (`<EMAIL_1>`) before a request leaves, and puts the originals back in the
//! answer, streamed or not.
//!
//! Detection is one pass over the bytes that stops only at digits, `@` and `:` (everything
//! else is skipped by a table lookup), plus one literal-prefiltered regex for secrets; the
//! checksum validators run only on those candidates. Text with nothing to redact is not
//! copied.

mod checksums;
mod kind;
mod network;
mod numbers;
mod placeholder;
mod secrets;
mod stream;
mod user;

use std::borrow::Cow;

use llmkit_client::{Redact, Restore};
use llmkit_types::{ChatCompletionRequest, ContentPart, MessageContent};

pub use kind::{Kind, RedactConfig, RedactError};
pub use placeholder::PlaceholderMap;
pub use stream::StreamRestorer;

use numbers::{Hit, NumberKinds};

/// One detected span of personal data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Detection {
    pub kind: Kind,
    pub start: usize,
    pub end: usize,
}

/// A compiled set of detectors. Cheap to share (`Arc`) across requests.
#[derive(Debug, Clone)]
pub struct Redactor {
    numbers: NumberKinds,
    email: bool,
    url_credentials: bool,
    ipv6: bool,
    secrets: Option<secrets::Secrets>,
    deny: Option<user::DenyList>,
    custom: user::Custom,
    /// Byte classes that stop the scan: 1 digit, 2 `@`, 3 `:`; 0 is skipped.
    triggers: [u8; 256],
}

const DIGIT: u8 = 1;
const AT: u8 = 2;
const COLON: u8 = 3;

impl Redactor {
    /// Compiles the detectors the config asks for.
    pub fn new(cfg: RedactConfig) -> Result<Self, RedactError> {
        let on = |k: Kind| cfg.kinds.as_ref().is_none_or(|ks| ks.contains(&k));
        let numbers = NumberKinds {
            phone: on(Kind::Phone),
            card: on(Kind::Card),
            iban: on(Kind::Iban),
            ipv4: on(Kind::Ipv4),
            cn_id: on(Kind::CnId),
            ssn: on(Kind::Ssn),
        };
        let deny = if on(Kind::Deny) {
            user::DenyList::new(&cfg.deny_list)?
        } else {
            None
        };
        let custom = if on(Kind::Custom) {
            user::Custom::new(&cfg.patterns)?
        } else {
            user::Custom::default()
        };
        let mut r = Self {
            numbers,
            email: on(Kind::Email),
            url_credentials: on(Kind::UrlCredentials),
            ipv6: on(Kind::Ipv6),
            secrets: on(Kind::Secret).then(secrets::Secrets::new),
            deny,
            custom,
            triggers: [0; 256],
        };
        if r.numbers.any() {
            r.triggers[usize::from(b'0')..=usize::from(b'9')].fill(DIGIT);
        }
        if r.email {
            r.triggers[usize::from(b'@')] = AT;
        }
        if r.url_credentials || r.ipv6 {
            r.triggers[usize::from(b':')] = COLON;
        }
        Ok(r)
    }

    /// Every kind, no deny list, no custom patterns.
    pub fn all() -> Self {
        Self::new(RedactConfig::all())
            .unwrap_or_else(|_| unreachable!("the default config has no user patterns"))
    }

    /// The spans to redact, sorted and non-overlapping (the earliest, then longest, wins).
    pub fn detect(&self, text: &str) -> Vec<Detection> {
        let mut hits = Vec::new();
        self.scan(text.as_bytes(), &mut hits);
        if let Some(s) = &self.secrets {
            s.find(text, &mut hits);
        }
        if let Some(d) = &self.deny {
            d.find(text, &mut hits);
        }
        self.custom.find(text, &mut hits);
        resolve(hits)
    }

    /// Replaces every detection by its placeholder from `map`.
    pub fn redact(&self, text: &str, map: &mut PlaceholderMap) -> String {
        self.redact_cow(text, map).into_owned()
    }

    /// Like [`Redactor::redact`], without copying a text that has nothing to redact.
    pub fn redact_cow<'a>(&self, text: &'a str, map: &mut PlaceholderMap) -> Cow<'a, str> {
        let found = self.detect(text);
        if found.is_empty() {
            return Cow::Borrowed(text);
        }
        map.reserve_literals(text);
        let mut out = String::with_capacity(text.len() + 16 * found.len());
        let mut last = 0;
        for d in found {
            out.push_str(&text[last..d.start]);
            out.push_str(map.placeholder(d.kind, &text[d.start..d.end]));
            last = d.end;
        }
        out.push_str(&text[last..]);
        Cow::Owned(out)
    }

    /// The byte scan for digits, `@` and `:`.
    fn scan(&self, b: &[u8], out: &mut Vec<Hit>) {
        let mut i = 0;
        while i < b.len() {
            let class = self.triggers[usize::from(b[i])];
            if class == 0 {
                i += 1;
                continue;
            }
            i = match class {
                DIGIT => match numbers::at_digit(b, i, self.numbers) {
                    Some(hit) => {
                        out.push(hit);
                        hit.2.max(i + 1)
                    }
                    None => numbers::skip_after_miss(b, i),
                },
                AT => {
                    if let Some(hit) = network::email_at(b, i) {
                        out.push(hit);
                    }
                    i + 1
                }
                _ => self.at_colon(b, i, out),
            };
        }
    }

    fn at_colon(&self, b: &[u8], c: usize, out: &mut Vec<Hit>) -> usize {
        if self.url_credentials
            && let Some(hit) = network::url_credentials_at(b, c)
        {
            out.push(hit);
            return hit.2;
        }
        if self.ipv6 {
            let (s, e) = network::hex_run(b, c);
            if let Some(hit) = network::ipv6_in(b, s, e) {
                out.push(hit);
            }
            return e.max(c + 1);
        }
        c + 1
    }
}

/// Sorts hits and drops those overlapping an earlier (or, at the same start, longer) one.
fn resolve(mut hits: Vec<Hit>) -> Vec<Detection> {
    hits.sort_unstable_by_key(|(_, s, e)| (*s, std::cmp::Reverse(*e)));
    let mut out: Vec<Detection> = Vec::with_capacity(hits.len());
    for (kind, start, end) in hits {
        if out.last().is_none_or(|l| start >= l.end) {
            out.push(Detection { kind, start, end });
        }
    }
    out
}

impl Redact for Redactor {
    /// Redacts the text of every message (system prompt included) and every text part, with
    /// one placeholder map for the whole request.
    fn redact_request(&self, req: &mut ChatCompletionRequest) -> Box<dyn Restore> {
        let mut map = PlaceholderMap::new();
        for msg in &mut req.messages {
            match &mut msg.content {
                Some(MessageContent::Text(t)) => redact_in_place(self, t, &mut map),
                Some(MessageContent::Parts(parts)) => {
                    for p in parts {
                        if let ContentPart::Text { text } = p {
                            redact_in_place(self, text, &mut map);
                        }
                    }
                }
                None => {}
            }
            // Earlier tool calls carry the real values the tools saw; placeholders are
            // plain text, so they can stand in a JSON string as they are.
            for call in msg.tool_calls.iter_mut().flatten() {
                redact_in_place(self, &mut call.function.arguments, &mut map);
            }
        }
        Box::new(StreamRestorer::new(map))
    }
}

fn redact_in_place(r: &Redactor, text: &mut String, map: &mut PlaceholderMap) {
    if let Cow::Owned(new) = r.redact_cow(text, map) {
        *text = new;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_and_restores_a_mixed_text() {
        let r = Redactor::all();
        let text = "Mail bob@example.com or call +1 415 555 2671; card 4111 1111 1111 1111, \
                    again bob@example.com from 10.1.2.3 with sk-abcdefghijklmnopqrstuvwx.";
        let mut map = PlaceholderMap::new();
        let red = r.redact(text, &mut map);
        assert_eq!(
            red,
            "Mail <EMAIL_1> or call <PHONE_1>; card <CARD_1>, again <EMAIL_1> from <IP_1> with <SECRET_1>."
        );
        assert_eq!(map.restore(&red), text);
        assert_eq!(
            map.counts(),
            vec![
                ("card".into(), 1),
                ("email".into(), 2),
                ("ipv4".into(), 1),
                ("phone".into(), 1),
                ("secret".into(), 1)
            ]
        );
    }

    #[test]
    fn kinds_filter_and_user_rules() {
        let cfg = RedactConfig::all()
            .kinds(vec![Kind::Email, Kind::Deny, Kind::Custom])
            .deny_list(vec!["Falcon".into()])
            .patterns(vec![("emp".into(), r"EMP-\d{6}".into())]);
        let r = Redactor::new(cfg).unwrap();
        let mut map = PlaceholderMap::new();
        let red = r.redact("falcon: a@b.io, 415-555-2671, EMP-123456", &mut map);
        assert_eq!(red, "<DENY_1>: <EMAIL_1>, 415-555-2671, <CUSTOM_1>");
    }

    #[test]
    fn url_credentials_beat_the_email_inside_them() {
        let mut map = PlaceholderMap::new();
        let red = Redactor::all().redact("use https://ann:s3cret@db.example.com/x", &mut map);
        assert_eq!(red, "use https://<URL_1>@db.example.com/x");
    }

    #[test]
    fn a_placeholder_typed_in_the_text_survives_restore() {
        // Found by the `redact` fuzz target (issue 22): the text held `<EMAIL_1>` itself,
        // the email got the same placeholder, and restoring turned both into the email.
        let text = "\u{4}nothi+( here:\0\0\0\0 12 apples s3cret@db.exat 3 pm <b>tag</b> \
                    ttps://ann:s3cret@db.example.com/x and fe8<EMAIL_1>";
        let mut map = PlaceholderMap::new();
        let red = Redactor::all().redact(text, &mut map);
        assert_eq!(map.restore(&red), text);
        let mut streamed = StreamRestorer::new(map);
        let mut out = streamed.push(&red);
        out.push_str(&streamed.finish());
        assert_eq!(out, text);
    }

    #[test]
    fn clean_text_is_borrowed() {
        let mut map = PlaceholderMap::new();
        let r = Redactor::all();
        assert!(matches!(
            r.redact_cow("nothing here: 12 apples at 3 pm", &mut map),
            Cow::Borrowed(_)
        ));
    }
}
