//! Fitting a conversation into a model's context window: the system prompt and the running
//! summary are always sent; the oldest turns are dropped, or folded into the summary, until
//! the rest fits with room for the answer. The CLI's `chat` and `ask -s` use it, and so will
//! the gateway.

use llmkit_client::Pipeline;
use llmkit_types::{ChatCompletionRequest, ChatMessage, ContentPart, MessageContent, ToolCall};

use crate::error::TaskError;
use crate::templates::Templates;

/// What a conversation does when it outgrows the model's context window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ContextStrategy {
    /// Drop the oldest turns (the system prompt is always kept).
    #[default]
    Drop,
    /// Summarise older turns into a running summary.
    Summarize,
}

/// One stored message of a conversation.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Turn {
    /// Increasing with time; the conversation's `context_from` refers to it.
    pub id: i64,
    /// `user`, `assistant` or `tool`.
    pub role: String,
    pub content: String,
    /// The tools an assistant turn called (its results follow as `tool` turns).
    pub tool_calls: Option<Vec<ToolCall>>,
    /// The call a `tool` turn answers.
    pub tool_call_id: Option<String>,
    /// A user turn's attachments (image, file and audio parts), sent after its text.
    pub attachments: Vec<ContentPart>,
    /// The turn's own extra fields, sent back with it (an assistant turn's encrypted
    /// reasoning items, `llmkit_types::REASONING_ITEMS_FIELD`).
    pub extra: serde_json::Map<String, serde_json::Value>,
}

/// A conversation as stored: its system prompt, running summary, where its context starts,
/// and its turns.
#[derive(Debug, Clone, Copy)]
pub struct History<'a> {
    pub system: Option<&'a str>,
    pub summary: Option<&'a str>,
    /// Turns with a smaller id are no longer sent (dropped or summarised earlier).
    pub context_from: i64,
    pub turns: &'a [Turn],
}

/// The model's limits for one fit.
#[derive(Debug, Clone, Copy)]
pub struct Window<'a> {
    pub model: &'a str,
    /// The context window in tokens; `None`: unknown, send everything.
    pub tokens: Option<u64>,
    /// Tokens kept free for the answer.
    pub reserve: u32,
    pub strategy: ContextStrategy,
}

/// The messages to send, and what the conversation should remember of the fit.
#[derive(Debug, Clone, PartialEq)]
pub struct Fitted {
    pub messages: Vec<ChatMessage>,
    /// The running summary after the fit (new when turns were summarised).
    pub summary: Option<String>,
    /// Where the conversation's context now starts.
    pub context_from: i64,
    /// Turns dropped by this fit.
    pub dropped: usize,
    /// Turns folded into the summary by this fit.
    pub summarised: usize,
}

impl Fitted {
    /// True when the fit changed the conversation (the caller should save it).
    pub fn trimmed(&self) -> bool {
        self.dropped + self.summarised > 0
    }
}

/// The turns still in context: from `context_from` on, never starting with an answer.
pub fn in_context(turns: &[Turn], context_from: i64) -> Vec<Turn> {
    let mut v: Vec<Turn> = turns
        .iter()
        .filter(|m| m.id >= context_from)
        .cloned()
        .collect();
    while v.len() > 1 && v[0].role != "user" {
        v.remove(0);
    }
    v
}

/// The messages sent: system prompt, running summary, then the turns.
pub fn compose(system: Option<&str>, summary: Option<&str>, turns: &[Turn]) -> Vec<ChatMessage> {
    let mut out = Vec::with_capacity(turns.len() + 2);
    if let Some(s) = system {
        out.push(ChatMessage::system(s.to_string()));
    }
    if let Some(sum) = summary {
        out.push(ChatMessage::system(format!(
            "Summary of the earlier conversation: {sum}"
        )));
    }
    for m in turns {
        let mut msg = match (m.role.as_str(), &m.tool_calls) {
            ("assistant", Some(calls)) if !calls.is_empty() => {
                let mut msg = ChatMessage::assistant_tool_calls(calls.clone());
                if !m.content.is_empty() {
                    msg.content = Some(MessageContent::Text(m.content.clone()));
                }
                msg
            }
            ("assistant", _) => ChatMessage::assistant(m.content.clone()),
            ("tool", _) => ChatMessage::tool_result(
                m.tool_call_id.clone().unwrap_or_default(),
                m.content.clone(),
            ),
            _ if !m.attachments.is_empty() => {
                let mut parts = vec![ContentPart::Text {
                    text: m.content.clone(),
                }];
                parts.extend(m.attachments.iter().cloned());
                ChatMessage::user_parts(parts)
            }
            _ => ChatMessage::user(m.content.clone()),
        };
        msg.extra.extend(m.extra.clone());
        out.push(msg);
    }
    out
}

/// Fits `history` into `window`: drops (or, with [`ContextStrategy::Summarize`], summarises
/// through `pipe`) the oldest turns until the messages leave `reserve` tokens free. A failed
/// summary falls back to dropping those turns. The last turn is always kept.
pub async fn fit(
    pipe: &Pipeline,
    templates: &Templates,
    window: Window<'_>,
    history: History<'_>,
) -> Result<Fitted, TaskError> {
    let mut turns = in_context(history.turns, history.context_from);
    let mut summary = history.summary.map(str::to_string);
    let mut fitted = Fitted {
        messages: Vec::new(),
        summary: None,
        context_from: history.context_from,
        dropped: 0,
        summarised: 0,
    };
    if let Some(tokens) = window.tokens {
        let limit = tokens.saturating_sub(u64::from(window.reserve));
        let fits = |summary: Option<&str>, t: &[Turn]| {
            let msgs = compose(history.system, summary, t);
            pipe.backend().count_chat_tokens(window.model, &msgs) as u64 <= limit
        };
        while !fits(summary.as_deref(), &turns) && turns.len() > 1 {
            let cut = match window.strategy {
                ContextStrategy::Drop => 1,
                ContextStrategy::Summarize => (turns.len() / 2).max(1),
            };
            let cut = cut.min(turns.len() - 1);
            let folded = match window.strategy {
                ContextStrategy::Summarize => summarise(
                    pipe,
                    templates,
                    window.model,
                    summary.as_deref(),
                    &turns[..cut],
                )
                .await
                .ok(),
                ContextStrategy::Drop => None,
            };
            match folded {
                Some(s) => {
                    summary = Some(s);
                    fitted.summarised += cut;
                }
                None => fitted.dropped += cut,
            }
            turns.drain(..cut);
            while turns.len() > 1 && turns[0].role != "user" {
                turns.remove(0);
                fitted.dropped += 1;
            }
        }
        if fitted.trimmed() {
            fitted.context_from = turns.first().map_or(history.context_from, |m| m.id);
        }
    }
    fitted.messages = compose(history.system, summary.as_deref(), &turns);
    fitted.summary = summary;
    Ok(fitted)
}

/// Folds `turns` (and the previous summary) into a new running summary, with the
/// `chat-summary` template as the instructions.
async fn summarise(
    pipe: &Pipeline,
    templates: &Templates,
    model: &str,
    previous: Option<&str>,
    turns: &[Turn],
) -> Result<String, TaskError> {
    let mut transcript = String::new();
    if let Some(p) = previous {
        transcript.push_str(&format!("Earlier summary: {p}\n\n"));
    }
    for m in turns {
        transcript.push_str(&format!("{}: {}\n", m.role, m.content));
    }
    let instructions = templates.render("chat-summary", &serde_json::json!({}))?;
    let req = ChatCompletionRequest::new(
        model.to_string(),
        vec![
            ChatMessage::system(instructions.trim().to_string()),
            ChatMessage::user(transcript),
        ],
    )
    .temperature(0.0);
    let res = pipe.chat(&req).await?;
    Ok(res.response.text().trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn turn(id: i64, role: &str) -> Turn {
        Turn {
            id,
            tool_calls: None,
            tool_call_id: None,
            attachments: Vec::new(),
            extra: serde_json::Map::new(),
            role: role.into(),
            content: "x".into(),
        }
    }

    #[test]
    fn context_never_starts_with_an_answer() {
        let h = vec![turn(1, "user"), turn(2, "assistant"), turn(3, "user")];
        assert_eq!(in_context(&h, 2).len(), 1);
        assert_eq!(in_context(&h, 0).len(), 3);
    }

    #[test]
    fn compose_puts_system_and_summary_first() {
        let h = vec![turn(1, "user"), turn(2, "assistant")];
        let m = compose(Some("be brief"), Some("we met"), &h);
        assert_eq!(m.len(), 4);
        assert_eq!(m[0].text_content(), "be brief");
        assert!(m[1].text_content().contains("we met"));
    }
}
