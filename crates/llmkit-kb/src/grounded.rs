//! Grounded prompts: the retrieved sources numbered [1]..[k] with instructions to answer
//! only from them and cite them, and the check that every citation in an answer exists.

use std::sync::LazyLock;

use llmkit_types::ChatMessage;
use regex::Regex;

use crate::search::Hit;

/// The answer given, without asking a model, when nothing relevant was retrieved.
pub const NO_ANSWER: &str = "The knowledge base does not contain an answer to this question.";

/// The citations found in an answer.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Citations {
    /// Valid source numbers cited, in first-cited order.
    pub used: Vec<usize>,
    /// Cited numbers with no such source.
    pub invalid: Vec<usize>,
}

/// The chat messages for a grounded answer: a system message holding the rules and the
/// numbered sources, then the question as the user message. `rules` adds the user's own
/// instructions.
pub fn grounded_messages(question: &str, hits: &[Hit], rules: Option<&str>) -> Vec<ChatMessage> {
    vec![
        ChatMessage::system(grounded_system(hits, rules)),
        ChatMessage::user(question),
    ]
}

/// The system text of a grounded turn: the instructions, `rules`, and the sources numbered
/// `[1]`..`[k]` with their path and location.
pub fn grounded_system(hits: &[Hit], rules: Option<&str>) -> String {
    let mut system = String::from(
        "Answer the user's question using ONLY the numbered sources below. Cite the sources \
         that support each statement as [n] (for example [1] or [2][3]). If the sources do not \
         contain the answer, say that the knowledge base does not contain it; do not use \
         outside knowledge and do not invent sources.\n",
    );
    if let Some(r) = rules.map(str::trim).filter(|r| !r.is_empty()) {
        system.push_str("\nAdditional rules:\n");
        system.push_str(r);
        system.push('\n');
    }
    system.push_str("\nSources:\n");
    for (i, h) in hits.iter().enumerate() {
        let place = if h.location.is_empty() {
            h.source.clone()
        } else {
            format!("{}, {}", h.source, h.location)
        };
        system.push_str(&format!("\n[{}] ({place})\n{}\n", i + 1, h.text.trim()));
    }
    system
}

static CITATION: LazyLock<Option<Regex>> =
    LazyLock::new(|| Regex::new(r"\[(\d{1,4}(?:\s*,\s*\d{1,4})*)\]").ok());

/// Finds `[n]` and `[n, m]` citations in `answer` and checks them against `sources` sources.
pub fn check_citations(answer: &str, sources: usize) -> Citations {
    let mut out = Citations::default();
    let Some(re) = CITATION.as_ref() else {
        return out;
    };
    for cap in re.captures_iter(answer) {
        for n in cap[1]
            .split(',')
            .filter_map(|s| s.trim().parse::<usize>().ok())
        {
            let list = if (1..=sources).contains(&n) {
                &mut out.used
            } else {
                &mut out.invalid
            };
            if !list.contains(&n) {
                list.push(n);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn citations_are_checked() {
        let c = check_citations("A [1]. B [2, 3][1]. C [7]. Not [x] nor [0].", 3);
        assert_eq!(c.used, vec![1, 2, 3]);
        assert_eq!(c.invalid, vec![7, 0]);
    }

    #[test]
    fn prompt_numbers_sources() {
        let hit = |s: &str| Hit {
            chunk_id: 1,
            source: s.into(),
            location: "Intro".into(),
            text: "text".into(),
            score: 0.1,
            bm25_rank: None,
            similarity: None,
        };
        let m = grounded_messages("Q?", &[hit("a.md"), hit("b.md")], Some("Be brief."));
        let sys = m[0]
            .content
            .as_ref()
            .map(|c| format!("{c:?}"))
            .unwrap_or_default();
        assert!(sys.contains("[1] (a.md, Intro)") && sys.contains("[2] (b.md, Intro)"));
        assert!(sys.contains("Be brief."));
        assert_eq!(m.len(), 2);
    }
}
