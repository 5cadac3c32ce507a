//! Token-aware chunking: text split at paragraph, then sentence, then word boundaries into
//! pieces of at most a token budget, consecutive chunks sharing a small overlap.

use std::fmt;
use std::sync::Arc;

use llmkit_client::{Encoding, count_tokens, encoding_for_model};

/// Counts tokens the way the target model does (tiktoken for API models, the model's own
/// tokenizer for local ones), or approximately.
#[derive(Clone)]
pub enum TokenCounter {
    Tiktoken(Encoding),
    /// About four characters per token, rounded up: for models without a known tokenizer.
    Approx,
    Custom(Arc<dyn Fn(&str) -> usize + Send + Sync>),
}

impl fmt::Debug for TokenCounter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Tiktoken(e) => write!(f, "Tiktoken({})", e.name()),
            Self::Approx => f.write_str("Approx"),
            Self::Custom(_) => f.write_str("Custom"),
        }
    }
}

impl TokenCounter {
    /// tiktoken's encoding for an API model name.
    pub fn for_model(model: &str) -> Self {
        Self::Tiktoken(encoding_for_model(model))
    }

    pub fn count(&self, text: &str) -> usize {
        match self {
            Self::Tiktoken(e) => count_tokens(*e, text),
            Self::Approx => text.chars().count().div_ceil(4),
            Self::Custom(f) => f(text),
        }
    }
}

/// Splits `text` into chunks of at most `max_tokens` tokens (as `counter` counts them),
/// each starting with up to `overlap` tokens from the end of the previous one. Boundaries
/// prefer paragraphs, then sentences, then words; a single over-long word is cut by
/// characters. Joined without their overlaps, the chunks give back `text`.
pub fn chunk_text(
    text: &str,
    counter: &TokenCounter,
    max_tokens: usize,
    overlap: usize,
) -> Vec<String> {
    let max_tokens = max_tokens.max(1);
    // The overlap must leave room for progress in every chunk.
    let overlap = overlap.min(max_tokens / 2);
    if text.is_empty() {
        return Vec::new();
    }
    if counter.count(text) <= max_tokens {
        return vec![text.to_string()];
    }
    let atoms = atoms(text, counter, max_tokens);
    let mut chunks = Vec::new();
    let mut start = 0;
    while start < atoms.len() {
        // The overlap first: trailing atoms of the previous chunk, within `overlap` tokens.
        let mut from = start;
        let mut used = 0;
        while from > 0 && !chunks.is_empty() && used + atoms[from - 1].1 <= overlap {
            used += atoms[from - 1].1;
            from -= 1;
        }
        // Then new atoms; at least one, so every chunk makes progress.
        let mut end = start;
        while end < atoms.len() && (end == start || used + atoms[end].1 <= max_tokens) {
            used += atoms[end].1;
            end += 1;
        }
        // A first new atom too big to share the chunk with the overlap drops the overlap.
        if used > max_tokens {
            from = start;
        }
        chunks.push(atoms[from..end].iter().map(|(s, _)| *s).collect::<String>());
        start = end;
    }
    chunks
}

/// The text cut into pieces of at most `max` tokens each, with their counts; the pieces
/// concatenate to the text.
fn atoms<'a>(text: &'a str, counter: &TokenCounter, max: usize) -> Vec<(&'a str, usize)> {
    let mut out = Vec::new();
    for para in split_keep(text, "\n\n") {
        push_fitting(para, counter, max, 0, &mut out);
    }
    out
}

/// Adds `piece` whole if it fits, else split at the next finer level.
fn push_fitting<'a>(
    piece: &'a str,
    counter: &TokenCounter,
    max: usize,
    level: u8,
    out: &mut Vec<(&'a str, usize)>,
) {
    let n = counter.count(piece);
    if n <= max {
        out.push((piece, n));
        return;
    }
    let parts: Vec<&str> = match level {
        0 => split_keep(piece, "\n"),
        1 => sentences(piece),
        2 => piece.split_inclusive(' ').collect(),
        _ => {
            // A single token-dense run without spaces: cut by characters, proportionally.
            let chars: Vec<(usize, char)> = piece.char_indices().collect();
            let per = (chars.len() * max / n.max(1)).max(1);
            let mut cuts = Vec::new();
            let mut i = 0;
            while i < chars.len() {
                let a = chars[i].0;
                let b = chars.get(i + per).map_or(piece.len(), |c| c.0);
                cuts.push(&piece[a..b]);
                i += per;
            }
            for c in cuts {
                let n = counter.count(c);
                out.push((c, n));
            }
            return;
        }
    };
    if parts.len() <= 1 {
        push_fitting(piece, counter, max, level + 1, out);
        return;
    }
    for p in parts {
        push_fitting(p, counter, max, level + 1, out);
    }
}

/// Splits after each `sep`, keeping it with the piece before.
fn split_keep<'a>(text: &'a str, sep: &str) -> Vec<&'a str> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find(sep) {
        let mut end = at + sep.len();
        // Keep a run of separators together.
        while rest[end..].starts_with(sep) {
            end += sep.len();
        }
        out.push(&rest[..end]);
        rest = &rest[end..];
    }
    if !rest.is_empty() {
        out.push(rest);
    }
    out
}

/// Splits after sentence ends (`.`, `!`, `?`, `。` followed by a space).
fn sentences(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut prev_end = false;
    for (i, c) in text.char_indices() {
        if prev_end && c.is_whitespace() {
            let end = i + c.len_utf8();
            out.push(&text[start..end]);
            start = end;
        }
        prev_end = matches!(c, '.' | '!' | '?' | '。' | '！' | '？');
    }
    if start < text.len() {
        out.push(&text[start..]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(n: usize) -> String {
        (0..n)
            .map(|i| {
                if i % 12 == 11 {
                    format!("word{i}.\n\n")
                } else {
                    format!("word{i} ")
                }
            })
            .collect()
    }

    #[test]
    fn small_text_is_one_chunk() {
        let c = chunk_text("hello world", &TokenCounter::Approx, 100, 10);
        assert_eq!(c, vec!["hello world"]);
    }

    #[test]
    fn chunks_fit_and_cover_the_text() {
        let text = words(2000);
        let counter = TokenCounter::for_model("gpt-4o");
        let chunks = chunk_text(&text, &counter, 300, 0);
        assert!(chunks.len() > 5);
        for c in &chunks {
            assert!(counter.count(c) <= 310, "{}", counter.count(c));
        }
        assert_eq!(chunks.concat(), text);
    }

    #[test]
    fn overlap_repeats_the_tail() {
        let text = words(600);
        let chunks = chunk_text(&text, &TokenCounter::Approx, 200, 40);
        assert!(chunks.len() > 2);
        let first_tail: String = chunks[0]
            .chars()
            .rev()
            .take(20)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        assert!(chunks[1].contains(first_tail.trim()), "{first_tail:?}");
    }

    #[test]
    fn long_runs_without_spaces_are_cut() {
        let text = "x".repeat(10_000);
        let chunks = chunk_text(&text, &TokenCounter::Approx, 100, 0);
        assert!(chunks.iter().all(|c| TokenCounter::Approx.count(c) <= 100));
        assert_eq!(chunks.concat(), text);
        let cjk = "漢字".repeat(3000);
        let chunks = chunk_text(&cjk, &TokenCounter::for_model("gpt-4o"), 100, 0);
        assert_eq!(chunks.concat(), cjk);
    }
}
