//! The user's own rules: deny-list terms (case-insensitive, whole word) and custom regexes.

use regex::Regex;

use super::kind::{Kind, RedactError};
use super::numbers::Hit;

/// Deny-list terms compiled into one case-insensitive alternation (longest first).
#[derive(Debug, Clone)]
pub(super) struct DenyList {
    re: Regex,
}

impl DenyList {
    /// `None` when there are no (non-blank) terms.
    pub(super) fn new(terms: &[String]) -> Result<Option<Self>, RedactError> {
        let mut terms: Vec<&str> = terms
            .iter()
            .map(|t| t.trim())
            .filter(|t| !t.is_empty())
            .collect();
        if terms.is_empty() {
            return Ok(None);
        }
        terms.sort_by_key(|t| std::cmp::Reverse(t.len()));
        let alts: Vec<String> = terms.iter().map(|t| regex::escape(t)).collect();
        let re = Regex::new(&format!("(?i:{})", alts.join("|"))).map_err(RedactError::DenyList)?;
        Ok(Some(Self { re }))
    }

    pub(super) fn find(&self, text: &str, out: &mut Vec<Hit>) {
        for m in self.re.find_iter(text) {
            let before = text[..m.start()].chars().next_back();
            let after = text[m.end()..].chars().next();
            let first = m.as_str().chars().next();
            let last = m.as_str().chars().next_back();
            // A side needs a boundary only where the term itself starts (ends) with a word char.
            let edge = |inner: Option<char>, outer: Option<char>| {
                !inner.is_some_and(is_word) || !outer.is_some_and(is_word)
            };
            if edge(first, before) && edge(last, after) {
                out.push((Kind::Deny, m.start(), m.end()));
            }
        }
    }
}

fn is_word(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// User regexes, each labelled for error messages.
#[derive(Debug, Clone, Default)]
pub(super) struct Custom {
    patterns: Vec<Regex>,
}

impl Custom {
    pub(super) fn new(patterns: &[(String, String)]) -> Result<Self, RedactError> {
        let patterns = patterns
            .iter()
            .map(|(label, re)| {
                Regex::new(re).map_err(|source| RedactError::InvalidPattern {
                    label: label.clone(),
                    source,
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(Self { patterns })
    }

    pub(super) fn find(&self, text: &str, out: &mut Vec<Hit>) {
        for re in &self.patterns {
            out.extend(
                re.find_iter(text)
                    .filter(|m| !m.is_empty())
                    .map(|m| (Kind::Custom, m.start(), m.end())),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deny_terms_are_whole_words_case_insensitive() {
        let d = DenyList::new(&["Project Falcon".into(), "acme".into(), " ".into()])
            .unwrap()
            .unwrap();
        let text = "ACME and project falcon, not acmes or bacme";
        let mut out = Vec::new();
        d.find(text, &mut out);
        let got: Vec<&str> = out.iter().map(|(_, s, e)| &text[*s..*e]).collect();
        assert_eq!(got, vec!["ACME", "project falcon"]);
    }

    #[test]
    fn bad_custom_pattern_names_its_label() {
        let err = Custom::new(&[("emp".into(), "EMP-[".into())]).unwrap_err();
        assert!(err.to_string().contains("`emp`"), "{err}");
        assert!(err.hint().is_some_and(|h| h.contains("regex")), "{err}");
    }
}
