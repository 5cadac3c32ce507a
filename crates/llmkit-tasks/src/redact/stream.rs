//! Restoring streamed answers: a placeholder may arrive split across deltas, so the restorer
//! holds back a tail that could still become one.

use llmkit_client::Restore;

use super::placeholder::{PlaceholderMap, is_placeholder_byte};

/// The longest placeholder body we wait for before giving up on a `<...` tail.
const MAX_PENDING: usize = 48;

/// A [`PlaceholderMap`] plus the text held back between deltas.
#[derive(Debug, Clone, Default)]
pub struct StreamRestorer {
    map: PlaceholderMap,
    pending: String,
}

impl StreamRestorer {
    pub fn new(map: PlaceholderMap) -> Self {
        Self {
            map,
            pending: String::new(),
        }
    }

    pub fn map(&self) -> &PlaceholderMap {
        &self.map
    }

    /// Adds a delta; returns the restored text that can no longer be part of a placeholder.
    pub fn push(&mut self, delta: &str) -> String {
        if self.map.is_empty() {
            return delta.to_string();
        }
        self.pending.push_str(delta);
        let cut = hold_back_from(&self.pending);
        let ready = self.map.restore(&self.pending[..cut]);
        self.pending.drain(..cut);
        ready
    }

    /// Ends the stream: whatever is held back, restored.
    pub fn finish(&mut self) -> String {
        let rest = std::mem::take(&mut self.pending);
        self.map.restore(&rest)
    }
}

/// Where the possible start of a placeholder begins (the last `<` followed only by
/// placeholder bytes), or the text's length when none can be.
fn hold_back_from(s: &str) -> usize {
    match s.rfind('<') {
        Some(i)
            if s.len() - i <= MAX_PENDING
                && s.as_bytes()[i + 1..]
                    .iter()
                    .all(|c| is_placeholder_byte(*c)) =>
        {
            i
        }
        _ => s.len(),
    }
}

impl Restore for StreamRestorer {
    fn restore(&self, text: &str) -> String {
        self.map.restore(text)
    }

    fn push(&mut self, delta: &str) -> String {
        StreamRestorer::push(self, delta)
    }

    fn finish(&mut self) -> String {
        StreamRestorer::finish(self)
    }

    fn counts(&self) -> Vec<(String, usize)> {
        self.map.counts()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::redact::Kind;

    #[test]
    fn split_placeholders_are_held_back() {
        let mut m = PlaceholderMap::new();
        m.placeholder(Kind::Email, "a@b.io");
        let mut r = StreamRestorer::new(m);
        let mut out = String::new();
        for d in ["mail <", "EMA", "IL_", "1", "> now <b>x</b> <EM"] {
            out.push_str(&r.push(d));
        }
        assert_eq!(out, "mail a@b.io now <b>x</b> ");
        out.push_str(&r.finish());
        assert_eq!(out, "mail a@b.io now <b>x</b> <EM");
    }
}
