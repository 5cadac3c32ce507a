//! The kinds of personal data the redactor knows, its configuration and its errors.

use std::fmt;
use std::str::FromStr;

/// One kind of personal or secret data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    Email,
    Phone,
    Card,
    Iban,
    Ipv4,
    Ipv6,
    CnId,
    Ssn,
    Secret,
    UrlCredentials,
    Deny,
    Custom,
}

impl Kind {
    /// Every kind, in the order the README lists them.
    pub const ALL: [Kind; 12] = [
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
        Kind::Deny,
        Kind::Custom,
    ];

    /// The name used on the command line, in the config and in `--show-redactions`.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Email => "email",
            Kind::Phone => "phone",
            Kind::Card => "card",
            Kind::Iban => "iban",
            Kind::Ipv4 => "ipv4",
            Kind::Ipv6 => "ipv6",
            Kind::CnId => "cn_id",
            Kind::Ssn => "ssn",
            Kind::Secret => "secret",
            Kind::UrlCredentials => "url_credentials",
            Kind::Deny => "deny",
            Kind::Custom => "custom",
        }
    }

    /// The placeholder label: `<LABEL_N>`. IPv4 and IPv6 share `IP` (and its numbering).
    pub fn label(self) -> &'static str {
        match self {
            Kind::Email => "EMAIL",
            Kind::Phone => "PHONE",
            Kind::Card => "CARD",
            Kind::Iban => "IBAN",
            Kind::Ipv4 | Kind::Ipv6 => "IP",
            Kind::CnId => "CN_ID",
            Kind::Ssn => "SSN",
            Kind::Secret => "SECRET",
            Kind::UrlCredentials => "URL",
            Kind::Deny => "DENY",
            Kind::Custom => "CUSTOM",
        }
    }

    fn valid_names() -> String {
        Kind::ALL.map(Kind::name).join(", ")
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Kind {
    type Err = RedactError;

    /// Case-insensitive; `-` may stand for `_` (`cn-id`, `url-credentials`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let norm = s.trim().to_ascii_lowercase().replace('-', "_");
        Kind::ALL
            .into_iter()
            .find(|k| k.name() == norm)
            .ok_or_else(|| RedactError::UnknownKind {
                name: s.to_string(),
                valid: Kind::valid_names(),
            })
    }
}

/// What to redact.
#[derive(Debug, Clone, Default)]
pub struct RedactConfig {
    /// The kinds to detect; `None` means all of them.
    pub kinds: Option<Vec<Kind>>,
    /// Terms always redacted (case-insensitive, whole word) as `<DENY_N>`.
    pub deny_list: Vec<String>,
    /// User patterns `(label, regex)`, redacted as `<CUSTOM_N>`.
    pub patterns: Vec<(String, String)>,
}

impl RedactConfig {
    /// Every kind.
    pub fn all() -> Self {
        Self::default()
    }

    /// Only these kinds.
    pub fn kinds(mut self, kinds: Vec<Kind>) -> Self {
        self.kinds = Some(kinds);
        self
    }

    pub fn deny_list(mut self, terms: Vec<String>) -> Self {
        self.deny_list = terms;
        self
    }

    pub fn patterns(mut self, patterns: Vec<(String, String)>) -> Self {
        self.patterns = patterns;
        self
    }
}

/// Why a redactor could not be built. All three are mistakes in the flags or the config.
#[derive(Debug, thiserror::Error)]
pub enum RedactError {
    #[error("unknown redaction kind `{name}`")]
    UnknownKind { name: String, valid: String },
    #[error("invalid redaction pattern `{label}`: {source}")]
    InvalidPattern {
        label: String,
        #[source]
        source: regex::Error,
    },
    #[error("the redaction deny list could not be compiled: {0}")]
    DenyList(#[source] regex::Error),
}

impl RedactError {
    /// A one-line suggestion for the user.
    pub fn hint(&self) -> Option<String> {
        Some(match self {
            Self::UnknownKind { valid, .. } => format!("valid kinds: {valid}"),
            Self::InvalidPattern { .. } => "fix the regex in `redact_patterns` in the config file (Rust `regex` syntax, e.g. `EMP-[0-9]{6}`)".to_string(),
            Self::DenyList(_) => "shorten `redact_deny` in the config file".to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_unknown_lists_valid_names() {
        for k in Kind::ALL {
            assert_eq!(k.name().parse::<Kind>().unwrap(), k);
        }
        assert_eq!("CN-ID".parse::<Kind>().unwrap(), Kind::CnId);
        let err = "passport".parse::<Kind>().unwrap_err();
        assert!(err.to_string().contains("passport"), "{err}");
        assert!(
            err.hint().is_some_and(|h| h.contains("email, phone")),
            "{err}"
        );
    }
}
