//! `translate`: Markdown-preserving translation. Code blocks, inline code, URLs and
//! placeholders are masked with `⟦N⟧` tokens before sending and restored after; the text is
//! chunked by paragraph; glossary terms are put in the prompt and checked in the output.

use std::sync::OnceLock;

use futures::{StreamExt, TryStreamExt};
use regex::Regex;
use serde_json::{Value, json};

use crate::chunk::chunk_text;
use crate::error::TaskError;
use crate::runner::TaskRunner;

/// Source → target terms the translation must use.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Glossary {
    pub terms: Vec<(String, String)>,
}

impl Glossary {
    /// Parses a JSON object `{"source": "target"}` or lines `source<TAB>target` (TSV) or
    /// `source,target` (CSV, fields optionally in double quotes); `#` lines are comments.
    pub fn parse(text: &str) -> Result<Self, TaskError> {
        let trimmed = text.trim();
        if trimmed.starts_with('{') {
            let v: Value = serde_json::from_str(trimmed)
                .map_err(|e| TaskError::Glossary(format!("not valid JSON: {e}")))?;
            let map = v
                .as_object()
                .ok_or_else(|| TaskError::Glossary("the JSON is not an object".into()))?;
            let mut terms = Vec::new();
            for (k, v) in map {
                let t = v.as_str().ok_or_else(|| {
                    TaskError::Glossary(format!("the target of `{k}` is not a string"))
                })?;
                terms.push((k.clone(), t.to_string()));
            }
            return Ok(Self { terms });
        }
        let mut terms = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (s, t) = line
                .split_once('\t')
                .or_else(|| line.split_once(','))
                .ok_or_else(|| {
                    TaskError::Glossary(format!("line {}: expected `source<TAB>target`", i + 1))
                })?;
            let unquote = |f: &str| f.trim().trim_matches('"').trim().to_string();
            let (s, t) = (unquote(s), unquote(t));
            if s.is_empty() || t.is_empty() {
                return Err(TaskError::Glossary(format!(
                    "line {}: an empty term",
                    i + 1
                )));
            }
            terms.push((s, t));
        }
        Ok(Self { terms })
    }

    /// Terms whose source occurs in `text` (ignoring case).
    fn relevant(&self, text: &str) -> Vec<(String, String)> {
        let lower = text.to_lowercase();
        self.terms
            .iter()
            .filter(|(s, _)| lower.contains(&s.to_lowercase()))
            .cloned()
            .collect()
    }
}

/// What `translate` needs.
#[derive(Debug, Clone, Default)]
pub struct TranslateOptions {
    pub to: String,
    pub from: Option<String>,
    pub glossary: Glossary,
    /// Glossary terms missing from the output are an error rather than a warning.
    pub strict: bool,
}

/// The translation and what did not survive it.
#[derive(Debug, Clone, PartialEq)]
pub struct Translation {
    pub text: String,
    /// Glossary terms whose source is in the input but whose target is not in the output.
    pub glossary_missing: Vec<(String, String)>,
    /// Masked spans (code, URLs, placeholders) the model dropped; they are appended to the
    /// chunk they came from so no code is lost.
    pub lost_spans: Vec<String>,
}

/// Translates `text`.
pub async fn translate(
    runner: &TaskRunner,
    text: &str,
    opts: &TranslateOptions,
) -> Result<Translation, TaskError> {
    if text.trim().is_empty() {
        return Err(TaskError::EmptyInput);
    }
    let (masked, spans) = mask(text);
    let all_terms = opts.glossary.relevant(text);
    let system_for = |terms: &[(String, String)]| -> Result<String, TaskError> {
        let glossary: Vec<Value> = terms
            .iter()
            .map(|(s, t)| json!({"source": s, "target": t}))
            .collect();
        runner.render(
            "translate",
            &json!({"target_language": opts.to, "source_language": opts.from, "glossary": glossary}),
        )
    };
    // The output of a chunk is about as long as its input: split what is left evenly.
    let full_system = system_for(&all_terms)?;
    let (chunk_budget, out) = budgets(runner, &full_system)?;
    let chunks = chunk_text(&masked, runner.token_counter(), chunk_budget, 0);
    if chunks.len() > 1 {
        runner.progress_add(chunks.len() as u64);
    }
    let translated: Vec<(String, Vec<String>)> = futures::stream::iter(chunks)
        .map(|chunk| {
            let system_for = &system_for;
            let spans = &spans;
            async move {
                let terms = opts.glossary.relevant(&unmask(&chunk, spans).0);
                let system = system_for(&terms)?;
                let body = chunk.trim();
                let answer = if body.is_empty() {
                    String::new()
                } else {
                    runner.ask(&system, body, out).await?
                };
                runner.progress_inc();
                // Keep the chunk's own leading and trailing whitespace (paragraph breaks).
                let lead = &chunk[..chunk.len() - chunk.trim_start().len()];
                let tail = &chunk[chunk.trim_end().len()..];
                let (restored, lost) = restore_chunk(&chunk, &answer, spans);
                Ok::<_, TaskError>((format!("{lead}{restored}{tail}"), lost))
            }
        })
        .buffered(runner.parallel())
        .try_collect()
        .await?;
    runner.progress_finish();
    let mut text_out = String::new();
    let mut lost_spans = Vec::new();
    for (t, lost) in translated {
        text_out.push_str(&t);
        lost_spans.extend(lost);
    }
    let out_lower = text_out.to_lowercase();
    let glossary_missing: Vec<(String, String)> = all_terms
        .into_iter()
        .filter(|(_, t)| !out_lower.contains(&t.to_lowercase()))
        .collect();
    if opts.strict && !glossary_missing.is_empty() {
        return Err(TaskError::GlossaryViolation {
            missing: glossary_missing,
        });
    }
    Ok(Translation {
        text: text_out.trim().to_string(),
        glossary_missing,
        lost_spans,
    })
}

/// (chunk budget, output budget) for the window.
fn budgets(runner: &TaskRunner, system: &str) -> Result<(usize, u32), TaskError> {
    let user_out = runner.output_budget(u32::MAX);
    // All that is left after the instructions, shared between input and output.
    let avail = runner.input_budget(system, 0)?;
    if user_out != u32::MAX && (user_out as usize) < avail {
        let chunk = (avail - user_out as usize).max(32);
        return Ok((chunk.min(user_out as usize), user_out));
    }
    let chunk = (avail * 2 / 5).max(32);
    let out = u32::try_from(avail - chunk).unwrap_or(u32::MAX);
    Ok((chunk, out))
}

#[expect(clippy::expect_used, reason = "constant pattern, covered by tests")]
fn mask_regex() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| {
        Regex::new(concat!(
            r"(?s)(?:```.*?```|~~~.*?~~~)", // fenced code blocks
            r"|`[^`\n]+`",                  // inline code
            r"|https?://[^\s<>()\[\]]*[^\s<>()\[\].,;:!?'\x22]", // URLs, without trailing punctuation
            r"|\{\{[^{}\n]+\}\}|\{[A-Za-z0-9_.\-]*\}",           // {{name}} and {name} placeholders
            r"|\$\{[A-Za-z0-9_]+\}|%\d*\$?[sd]",                 // ${VAR}, %s, %1$s, %d
            r"|⟦\d+⟧",                                           // our own token shape, if present
        ))
        .expect("the masking pattern is a valid regex")
    })
}

/// Replaces protected spans by `⟦N⟧` and returns them.
fn mask(text: &str) -> (String, Vec<String>) {
    let mut spans = Vec::new();
    let masked = mask_regex()
        .replace_all(text, |c: &regex::Captures<'_>| {
            spans.push(c[0].to_string());
            format!("⟦{}⟧", spans.len() - 1)
        })
        .into_owned();
    (masked, spans)
}

#[expect(clippy::expect_used, reason = "constant pattern, covered by tests")]
fn token_regex() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| Regex::new(r"⟦(\d+)⟧").expect("the token pattern is a valid regex"))
}

/// Puts the spans back; returns the text and the indices of tokens it contained.
fn unmask(text: &str, spans: &[String]) -> (String, Vec<usize>) {
    let mut seen = Vec::new();
    let out = token_regex()
        .replace_all(text, |c: &regex::Captures<'_>| {
            match c[1]
                .parse::<usize>()
                .ok()
                .and_then(|i| spans.get(i).map(|s| (i, s)))
            {
                Some((i, s)) => {
                    seen.push(i);
                    s.clone()
                }
                None => c[0].to_string(),
            }
        })
        .into_owned();
    (out, seen)
}

/// Restores a translated chunk; spans of the source chunk missing from the answer are
/// appended (and reported) rather than lost.
fn restore_chunk(source: &str, answer: &str, spans: &[String]) -> (String, Vec<String>) {
    let (_, expected) = unmask(source, spans);
    let (mut restored, seen) = unmask(answer, spans);
    let mut lost = Vec::new();
    for i in expected {
        if !seen.contains(&i)
            && let Some(s) = spans.get(i)
        {
            restored.push_str("\n\n");
            restored.push_str(s);
            lost.push(s.clone());
        }
    }
    (restored, lost)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_code_urls_and_placeholders() {
        let text = "Run `cargo test` and see https://example.com/a_b.\n\n```rust\nfn main() {}\n```\nHello {name}, %s!";
        let (masked, spans) = mask(text);
        assert_eq!(
            spans,
            vec![
                "`cargo test`",
                "https://example.com/a_b",
                "```rust\nfn main() {}\n```",
                "{name}",
                "%s"
            ]
        );
        assert!(!masked.contains("cargo") && !masked.contains("fn main"));
        assert_eq!(unmask(&masked, &spans).0, text);
    }

    #[test]
    fn dropped_spans_are_kept() {
        let (masked, spans) = mask("See `x`.");
        let (out, lost) = restore_chunk(&masked, "Voir.", &spans);
        assert_eq!(out, "Voir.\n\n`x`");
        assert_eq!(lost, vec!["`x`"]);
    }

    #[test]
    fn glossary_formats() {
        let g = Glossary::parse("# terms\nlaptop\tordinateur portable\n\"mouse\",\"souris\"\n")
            .unwrap();
        assert_eq!(
            g.terms,
            vec![
                ("laptop".into(), "ordinateur portable".into()),
                ("mouse".into(), "souris".into())
            ]
        );
        let g = Glossary::parse("{\"cat\": \"chat\"}").unwrap();
        assert_eq!(g.terms, vec![("cat".into(), "chat".into())]);
        assert!(Glossary::parse("no separator here").is_err());
        assert!(Glossary::parse("{\"a\": 1}").is_err());
    }
}
