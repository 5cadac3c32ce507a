//! `qa`: answers from a given context only, with the supporting quote checked against the
//! context; a long context is cut to the chunks sharing most terms with the question.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::chunk::chunk_text;
use crate::error::TaskError;
use crate::runner::TaskRunner;
use crate::structured::{Spec, prompt_vars, request};

/// The answer; `found` is false (and `quote` empty) when the context does not hold it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Answer {
    pub answer: String,
    pub found: bool,
    pub quote: String,
}

/// What `answer` says when the context does not contain the answer.
pub const NOT_FOUND: &str = "The context does not contain the answer.";

/// The JSON Schema of an [`Answer`].
pub fn answer_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "answer": {"type": "string"},
            "found": {"type": "boolean"},
            "quote": {"type": "string"}
        },
        "required": ["answer", "found", "quote"],
        "additionalProperties": false
    })
}

/// Answers `question` from `context` only.
pub async fn qa(runner: &TaskRunner, context: &str, question: &str) -> Result<Answer, TaskError> {
    if context.trim().is_empty() || question.trim().is_empty() {
        return Err(TaskError::EmptyInput);
    }
    let schema = answer_schema();
    let (json_prompt, schema_text) = prompt_vars(runner, &schema);
    let vars = json!({"question": question, "json_prompt": json_prompt, "schema": schema_text});
    let system = runner.render("qa", &vars)?;
    let out = runner.output_budget(400);
    let budget = runner.input_budget(&system, out)?;
    let user = relevant_context(runner, context, question, budget);
    let spec = Spec {
        name: "answer",
        schema: &schema,
        system,
        user: format!("Context:\n{user}"),
        max_tokens: out,
    };
    let value = request(runner, spec, |_| Ok(())).await?;
    let mut a: Answer = serde_json::from_value(value).map_err(|e| TaskError::InvalidOutput {
        what: "answer".to_string(),
        attempts: runner.repairs() + 1,
        error: e.to_string(),
    })?;
    // An answer is only as good as its quote: one that is not in the context is not found.
    if !a.found || a.quote.trim().is_empty() || !contains_loosely(context, &a.quote) {
        a = Answer {
            answer: NOT_FOUND.to_string(),
            found: false,
            quote: String::new(),
        };
    }
    Ok(a)
}

/// The context, or when it exceeds `budget` the best chunks by term overlap with the
/// question, in document order.
fn relevant_context(runner: &TaskRunner, context: &str, question: &str, budget: usize) -> String {
    if runner.tokens(context) <= budget {
        return context.to_string();
    }
    let size = (budget / 4).max(64);
    let chunks = chunk_text(context, runner.token_counter(), size, size / 10);
    let terms = terms(question);
    let mut scored: Vec<(usize, usize, usize)> = chunks
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let words = terms_of(c);
            let score = terms.iter().filter(|t| words.contains(t)).count();
            (score, i, runner.tokens(c))
        })
        .collect();
    scored.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    let mut picked = Vec::new();
    let mut used = 0;
    for (_, i, n) in scored {
        if used + n + 4 > budget {
            continue;
        }
        used += n + 4;
        picked.push(i);
    }
    picked.sort_unstable();
    picked
        .iter()
        .map(|&i| chunks[i].trim())
        .collect::<Vec<_>>()
        .join("\n[...]\n")
}

const STOP_WORDS: &[&str] = &[
    "the", "a", "an", "of", "to", "in", "is", "are", "was", "were", "what", "who", "when", "where",
    "which", "how", "why", "does", "did", "do", "and", "or", "for", "on", "with", "by", "it",
    "this", "that", "be", "as", "at", "from",
];

fn terms(text: &str) -> Vec<String> {
    let mut t: Vec<String> = terms_of(text)
        .into_iter()
        .filter(|w| !STOP_WORDS.contains(&w.as_str()))
        .collect();
    t.sort();
    t.dedup();
    t
}

fn terms_of(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect()
}

/// True when `quote` occurs in `text`, ignoring case, whitespace runs and surrounding quotes.
fn contains_loosely(text: &str, quote: &str) -> bool {
    let squash = |s: &str| {
        s.split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .to_lowercase()
    };
    let q = squash(
        quote
            .trim()
            .trim_matches(|c| c == '"' || c == '“' || c == '”' || c == '\''),
    );
    let q = q.trim_end_matches(['.', ',', ';']);
    !q.is_empty() && squash(text).contains(q)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_match_loosely() {
        assert!(contains_loosely(
            "The  cat sat\non the mat.",
            "\"the cat sat on the mat.\""
        ));
        assert!(!contains_loosely("The cat sat.", "The dog sat."));
        assert!(!contains_loosely("x", "  "));
    }

    #[test]
    fn question_terms_drop_stop_words() {
        assert_eq!(
            terms("What is the capital of France?"),
            vec!["capital", "france"]
        );
    }
}
