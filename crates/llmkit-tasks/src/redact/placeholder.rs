//! Placeholders `<LABEL_N>`: one per distinct value per request, numbered per label, and the
//! way back from placeholders to the original values.

use std::collections::{BTreeMap, HashMap, HashSet};

use super::kind::Kind;

/// The placeholders handed out for one request and the values they stand for.
#[derive(Debug, Clone, Default)]
pub struct PlaceholderMap {
    by_value: HashMap<(&'static str, String), String>,
    by_placeholder: HashMap<String, String>,
    next: HashMap<&'static str, usize>,
    counts: BTreeMap<&'static str, usize>,
    /// Placeholder-shaped text already in the input (`<EMAIL_1>` typed by the user): never
    /// handed out, or restoring would turn that text into a redacted value.
    reserved: HashSet<String>,
}

impl PlaceholderMap {
    pub fn new() -> Self {
        Self::default()
    }

    /// The placeholder for `value` of `kind`: the same value always gets the same one.
    pub fn placeholder(&mut self, kind: Kind, value: &str) -> &str {
        *self.counts.entry(kind.name()).or_insert(0) += 1;
        let label = kind.label();
        let key = (label, value.to_string());
        if !self.by_value.contains_key(&key) {
            let n = self.next.entry(label).or_insert(0);
            let mut ph;
            loop {
                *n += 1;
                ph = format!("<{label}_{n}>");
                if !self.reserved.contains(&ph) {
                    break;
                }
            }
            self.by_placeholder.insert(ph.clone(), value.to_string());
            self.by_value.insert(key.clone(), ph);
        }
        self.by_value.get(&key).map_or("", String::as_str)
    }

    /// Keeps every placeholder-shaped piece of `text` (the text about to be redacted) out of
    /// the placeholders handed out from now on.
    pub fn reserve_literals(&mut self, text: &str) {
        let mut rest = text;
        while let Some(lt) = rest.find('<') {
            let tail = &rest[lt..];
            if let Some(n) = placeholder_len(tail) {
                self.reserved.insert(tail[..n].to_string());
            }
            rest = &tail[1..];
        }
    }

    /// True when nothing was redacted.
    pub fn is_empty(&self) -> bool {
        self.by_placeholder.is_empty()
    }

    /// How many values were replaced, by kind name (occurrences, not distinct values).
    pub fn counts(&self) -> Vec<(String, usize)> {
        self.counts
            .iter()
            .map(|(k, n)| (k.to_string(), *n))
            .collect()
    }

    /// The original value behind a placeholder such as `<EMAIL_1>`.
    pub fn value(&self, placeholder: &str) -> Option<&str> {
        self.by_placeholder.get(placeholder).map(String::as_str)
    }

    /// Replaces every known placeholder in `text` by its value; unknown ones stay as they are.
    pub fn restore(&self, text: &str) -> String {
        if self.by_placeholder.is_empty() {
            return text.to_string();
        }
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(lt) = rest.find('<') {
            out.push_str(&rest[..lt]);
            let tail = &rest[lt..];
            let len = placeholder_len(tail);
            match len.and_then(|n| self.by_placeholder.get(&tail[..n])) {
                Some(v) => {
                    out.push_str(v);
                    rest = &tail[len.unwrap_or(1)..];
                }
                None => {
                    out.push('<');
                    rest = &tail[1..];
                }
            }
        }
        out.push_str(rest);
        out
    }
}

/// The byte length of a complete `<LABEL_N>` at the start of `s`.
fn placeholder_len(s: &str) -> Option<usize> {
    let b = s.as_bytes();
    let body = b
        .iter()
        .skip(1)
        .take_while(|c| is_placeholder_byte(**c))
        .count();
    (b.get(1 + body) == Some(&b'>') && body >= 3).then_some(body + 2)
}

/// Bytes that may appear between `<` and `>` in a placeholder.
pub(crate) fn is_placeholder_byte(c: u8) -> bool {
    c.is_ascii_uppercase() || c.is_ascii_digit() || c == b'_'
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_value_same_placeholder_numbered_per_label() {
        let mut m = PlaceholderMap::new();
        assert_eq!(m.placeholder(Kind::Email, "a@b.io"), "<EMAIL_1>");
        assert_eq!(m.placeholder(Kind::Phone, "+14155552671"), "<PHONE_1>");
        assert_eq!(m.placeholder(Kind::Email, "c@d.io"), "<EMAIL_2>");
        assert_eq!(m.placeholder(Kind::Email, "a@b.io"), "<EMAIL_1>");
        assert_eq!(m.placeholder(Kind::Ipv6, "::1"), "<IP_1>");
        assert_eq!(m.placeholder(Kind::Ipv4, "10.0.0.1"), "<IP_2>");
        assert_eq!(
            m.restore("x <EMAIL_1>, <EMAIL_3> <IP_2><EMAIL_2>> <"),
            "x a@b.io, <EMAIL_3> 10.0.0.1c@d.io> <"
        );
        assert_eq!(m.counts()[0], ("email".to_string(), 3));
    }

    #[test]
    fn placeholders_typed_in_the_input_are_not_handed_out() {
        let mut m = PlaceholderMap::new();
        m.reserve_literals("see <EMAIL_1> and <EMAIL_2 and <IP_1>");
        assert_eq!(m.placeholder(Kind::Email, "a@b.io"), "<EMAIL_2>");
        assert_eq!(m.placeholder(Kind::Ipv4, "10.0.0.1"), "<IP_2>");
        assert_eq!(m.restore("<EMAIL_1> <EMAIL_2>"), "<EMAIL_1> a@b.io");
    }
}
