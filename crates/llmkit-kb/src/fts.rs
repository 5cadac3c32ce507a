//! The user's question as an FTS5 query: quoted terms (no user text read as FTS syntax),
//! stopwords dropped, identifiers also matched by their letter and digit runs.

/// Words common enough to add nothing but cost to a BM25 OR-query.
const STOPWORDS: &[&str] = &[
    "a", "an", "and", "are", "as", "at", "be", "by", "can", "do", "does", "for", "from", "how",
    "i", "in", "is", "it", "of", "on", "or", "the", "to", "what", "when", "where", "which", "who",
    "why", "with", "you", "your",
];

/// The query's words as quoted FTS5 terms (so no user text is read as FTS syntax), in
/// order and without repeats; empty when only stopwords are left.
pub(crate) fn terms(query: &str) -> Vec<String> {
    let lower = query.to_lowercase();
    let mut terms: Vec<String> = Vec::new();
    for w in lower
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty() && !STOPWORDS.contains(w))
    {
        terms.push(format!("\"{w}\""));
        // An identifier typed without its separator ("e1042") also matches the indexed
        // tokens of "E-1042": the phrase of its letter and digit runs.
        let runs = alnum_runs(w);
        if runs.len() > 1 {
            terms.push(format!("\"{}\"", runs.join(" ")));
        }
    }
    let mut seen = std::collections::HashSet::new();
    terms.retain(|t| seen.insert(t.clone()));
    terms
}

/// A word cut where letters meet digits: "kx5102" → ["kx", "5102"].
fn alnum_runs(word: &str) -> Vec<&str> {
    let mut runs = Vec::new();
    let mut start = 0;
    let mut prev: Option<bool> = None;
    for (i, c) in word.char_indices() {
        let digit = c.is_ascii_digit();
        if prev.is_some_and(|p| p != digit) {
            runs.push(&word[start..i]);
            start = i;
        }
        prev = Some(digit);
    }
    runs.push(&word[start..]);
    runs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fts_query_quotes_words() {
        assert_eq!(terms("What is \"NEAR\" OR x*?"), ["\"near\"", "\"x\""]);
        assert!(terms("the?").is_empty());
        assert_eq!(terms("e1042 e1042 x"), ["\"e1042\"", "\"e 1042\"", "\"x\""]);
    }
}
