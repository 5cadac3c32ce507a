//! Turning a row into a request (a task or a raw OpenAI Batch body), estimating its tokens
//! and cost, and formatting its output line.

use std::path::Path;

use llmkit_client::ModelCatalog;
use llmkit_tasks::attachment::{self, Attachment};
use llmkit_types::{ChatCompletionResponse, ChatMessage, ContentPart, Usage};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::input::{Row, RowItem};

/// Output tokens assumed for a row that sets no `max_tokens`, for estimates and the cost cap.
pub const ASSUMED_OUTPUT_TOKENS: u64 = 256;
/// The field (JSONL) or column (CSV) of an `ask` row's attachments.
pub(crate) const ATTACHMENTS_FIELD: &str = "attachments";

/// The task applied to text rows. Every task but `ask` runs through `llmkit-tasks` (its
/// prompts, chunking, structured output with validation and repair), so a row may take
/// several requests; each of them goes through the scheduler.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Task {
    /// The row's text is the user message, after an optional system prompt.
    Ask { system: Option<String> },
    /// A summary (`llmkit_tasks::summarize`); `length` is short, medium or long and
    /// `format` paragraph or bullets.
    Summarize {
        length: String,
        words: Option<u32>,
        format: String,
        focus: Option<String>,
    },
    /// A translation into `to`, with glossary terms (source, target) put in the prompt.
    Translate {
        to: String,
        from: Option<String>,
        #[serde(default)]
        glossary: Vec<(String, String)>,
        /// A glossary term missing from the output makes the row an error.
        #[serde(default)]
        strict: bool,
    },
    /// A validated sentiment verdict.
    Sentiment,
    /// One label (or with `multi` several) from `labels`, validated.
    Classify { labels: Vec<String>, multi: bool },
    /// An object valid against `schema`.
    Extract { schema: Value },
}

impl Task {
    /// The task's name, as on the command line.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Ask { .. } => "ask",
            Self::Summarize { .. } => "summarize",
            Self::Translate { .. } => "translate",
            Self::Sentiment => "sentiment",
            Self::Classify { .. } => "classify",
            Self::Extract { .. } => "extract",
        }
    }

    /// Output tokens a row is expected to take without `max_tokens` (for estimates and the
    /// cost cap): the tasks' own output budgets, the input length for a translation.
    fn expected_output(&self, input_tokens: u64) -> u64 {
        match self {
            Self::Ask { .. } => ASSUMED_OUTPUT_TOKENS,
            Self::Summarize { .. } => 300,
            Self::Translate { .. } => input_tokens * 6 / 5 + 16,
            Self::Sentiment | Self::Classify { .. } => 64,
            Self::Extract { .. } => 256,
        }
    }
}

/// Tokens a task's own instructions add to the row's text, roughly (their templates are a
/// few hundred characters; a schema adds its own length).
const TASK_OVERHEAD: u64 = 150;

/// How task rows ask for structured output and repair invalid answers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Structured {
    /// Follow-up requests quoting the validation error when an answer is invalid.
    pub repair_attempts: u32,
    /// JSON mode plus the schema in the prompt instead of strict `json_schema`.
    pub prompt_mode: bool,
}

impl Default for Structured {
    fn default() -> Self {
        Self {
            repair_attempts: 2,
            prompt_mode: false,
        }
    }
}

/// Sampling settings applied to task rows (raw requests carry their own).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Sampling {
    pub temperature: Option<f64>,
    pub top_p: Option<f64>,
    pub max_tokens: Option<u32>,
    pub seed: Option<i64>,
    pub stop: Vec<String>,
    /// Other request fields (`--reasoning-effort`, `--service-tier`, `--option KEY=VALUE`),
    /// already checked against the request type by the caller.
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub extra: serde_json::Map<String, Value>,
}

/// A row ready to send.
#[derive(Debug, Clone, PartialEq)]
pub struct Prepared {
    /// Path relative to the client's base URL, e.g. `chat/completions`.
    pub path: String,
    /// The request body; `Null` for task rows other than `ask`, whose requests
    /// `llmkit-tasks` builds (the other fields are then the estimate).
    pub body: Value,
    pub model: String,
    /// Prompt tokens as counted here (tiktoken).
    pub prompt_tokens: u64,
    /// The request's `max_tokens` (or `max_completion_tokens`), when set.
    pub max_tokens: Option<u64>,
}

impl Prepared {
    /// Tokens the rate limiter charges up front: prompt plus the output budget.
    pub fn estimated_tokens(&self) -> u64 {
        self.prompt_tokens + self.expected_output()
    }

    /// Output tokens expected: `max_tokens`, else [`ASSUMED_OUTPUT_TOKENS`].
    pub fn expected_output(&self) -> u64 {
        self.max_tokens.unwrap_or(ASSUMED_OUTPUT_TOKENS)
    }

    /// The most this row can cost (with the expected output), when the model has a price.
    pub fn estimated_cost(&self, catalog: &ModelCatalog) -> Option<f64> {
        let usage = Usage::new(self.prompt_tokens, self.expected_output());
        catalog.cost(&self.model, &usage, false)
    }

    /// Tokens the server charged against its limit once `usage` is known: the prompt plus
    /// `max_tokens` when set (OpenAI counts the budget, not the output), else the output.
    pub fn charged_tokens(&self, usage: &Usage) -> u64 {
        usage.prompt_tokens + self.max_tokens.unwrap_or(usage.completion_tokens)
    }
}

/// Builds the request for a row, or says why the row cannot be sent. An `ask` row's
/// `attachments` (paths relative to `base`, the input file's folder, or image URLs) are read
/// here and sent as content parts after its text.
pub fn prepare(
    item: &RowItem,
    task: Option<&Task>,
    model: &str,
    sampling: &Sampling,
    base: &Path,
) -> Result<Prepared, String> {
    match item {
        RowItem::Text { text, fields } => {
            let system = match task {
                Some(Task::Ask { system }) => system,
                Some(t) => return Ok(prepare_task(t, text, model, sampling)),
                None => return Err("a text row needs a task (--task ask)".into()),
            };
            let mut messages = Vec::with_capacity(2);
            if let Some(s) = system {
                messages.push(ChatMessage::system(s.clone()));
            }
            let parts = attachments(fields, base)?;
            messages.push(if parts.is_empty() {
                ChatMessage::user(text.clone())
            } else {
                let mut all = vec![ContentPart::Text { text: text.clone() }];
                all.extend(parts);
                ChatMessage::user_parts(all)
            });
            let prompt_tokens = llmkit_client::count_chat_tokens(model, &messages) as u64;
            let mut body = json!({"model": model, "messages": messages});
            let o = body
                .as_object_mut()
                .ok_or("internal: body is not an object")?;
            put(o, "temperature", sampling.temperature.map(Value::from));
            put(o, "top_p", sampling.top_p.map(Value::from));
            put(o, "max_tokens", sampling.max_tokens.map(Value::from));
            put(o, "seed", sampling.seed.map(Value::from));
            if !sampling.stop.is_empty() {
                o.insert("stop".into(), json!(sampling.stop));
            }
            for (k, v) in &sampling.extra {
                o.insert(k.clone(), v.clone());
            }
            Ok(Prepared {
                path: "chat/completions".into(),
                body,
                model: model.to_string(),
                prompt_tokens,
                max_tokens: sampling.max_tokens.map(u64::from),
            })
        }
        RowItem::Raw { url, body } => {
            let path = url
                .trim_start_matches('/')
                .trim_start_matches("v1/")
                .to_string();
            if path.is_empty() {
                return Err("the request's `url` is empty".into());
            }
            let model = body
                .get("model")
                .and_then(Value::as_str)
                .unwrap_or(model)
                .to_string();
            let prompt_tokens = body
                .get("messages")
                .and_then(|m| serde_json::from_value::<Vec<ChatMessage>>(m.clone()).ok())
                .map(|m| llmkit_client::count_chat_tokens(&model, &m) as u64)
                .unwrap_or_else(|| (body.to_string().len() as u64).div_ceil(4));
            let max_tokens = body
                .get("max_completion_tokens")
                .or_else(|| body.get("max_tokens"))
                .and_then(Value::as_u64);
            Ok(Prepared {
                path,
                body: body.clone(),
                model,
                prompt_tokens,
                max_tokens,
            })
        }
    }
}

/// The content parts of a row's `attachments`: a JSON array of paths and image URLs, or
/// (a CSV column) one string of them separated by `;`. A bad attachment fails its row only.
fn attachments(fields: &Map<String, Value>, base: &Path) -> Result<Vec<ContentPart>, String> {
    let specs: Vec<String> = match fields.get(ATTACHMENTS_FIELD) {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::String(s)) => s
            .split(';')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect(),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| {
                v.as_str().map(String::from).ok_or_else(|| {
                    format!("`{ATTACHMENTS_FIELD}` holds {v}, not a path or URL string")
                })
            })
            .collect::<Result<_, _>>()?,
        Some(other) => {
            return Err(format!(
                "`{ATTACHMENTS_FIELD}` is {other}; give an array of paths or URLs"
            ));
        }
    };
    let mut loaded = Vec::with_capacity(specs.len());
    for spec in &specs {
        let a = if spec.starts_with("http://") || spec.starts_with("https://") {
            Attachment::from_url(spec.as_str())
        } else {
            let path = base.join(spec);
            let size = std::fs::metadata(&path)
                .map_err(|e| format!("attachment {}: {e}", path.display()))?
                .len();
            Attachment::check_file_size(spec, size).map_err(|e| e.to_string())?;
            let bytes =
                std::fs::read(&path).map_err(|e| format!("attachment {}: {e}", path.display()))?;
            Attachment::from_bytes(spec.as_str(), bytes)
        };
        loaded.push(a.map_err(|e| e.to_string())?);
    }
    attachment::check_total(&loaded).map_err(|e| e.to_string())?;
    Ok(loaded.iter().map(|a| a.to_part(None)).collect())
}

/// The estimate of a task row (the requests themselves are built by `llmkit-tasks`).
fn prepare_task(task: &Task, text: &str, model: &str, sampling: &Sampling) -> Prepared {
    let enc = llmkit_client::encoding_for_model(model);
    let input = llmkit_client::count_tokens(enc, text) as u64;
    let schema = match task {
        Task::Extract { schema } => llmkit_client::count_tokens(enc, &schema.to_string()) as u64,
        _ => 0,
    };
    let expected = task.expected_output(input);
    Prepared {
        path: "chat/completions".into(),
        body: Value::Null,
        model: model.to_string(),
        prompt_tokens: input + schema + TASK_OVERHEAD,
        max_tokens: Some(
            sampling
                .max_tokens
                .map_or(expected, |m| u64::from(m).min(expected)),
        ),
    }
}

/// The output line of a task row that succeeded: its structured result.
pub fn task_line(row: &Row, result: Value, usage: &Usage) -> String {
    let mut out = Map::new();
    out.insert("custom_id".into(), row.id.clone());
    out.insert("line".into(), Value::from(row.line));
    if let Ok(RowItem::Text { fields, .. }) = &row.item
        && !fields.is_empty()
    {
        out.insert("fields".into(), Value::Object(fields.clone()));
    }
    out.insert("result".into(), result);
    out.insert(
        "usage".into(),
        json!({"prompt_tokens": usage.prompt_tokens, "completion_tokens": usage.completion_tokens}),
    );
    Value::Object(out).to_string()
}

/// The output line of a row that succeeded.
pub(crate) fn ok_line(row: &Row, response: &Value) -> String {
    let normal = normalized(response);
    let response = normal.as_ref().unwrap_or(response);
    let mut out = Map::new();
    out.insert("custom_id".into(), row.id.clone());
    out.insert("line".into(), Value::from(row.line));
    match &row.item {
        Ok(RowItem::Raw { .. }) => {
            out.insert(
                "response".into(),
                json!({"status_code": 200, "body": response}),
            );
            out.insert("error".into(), Value::Null);
        }
        Ok(RowItem::Text { fields, .. }) => {
            if !fields.is_empty() {
                out.insert("fields".into(), Value::Object(fields.clone()));
            }
            let choice = response.pointer("/choices/0");
            let text = choice
                .and_then(|c| c.pointer("/message/content"))
                .cloned()
                .unwrap_or(Value::Null);
            let finish = choice
                .and_then(|c| c.get("finish_reason"))
                .cloned()
                .unwrap_or(Value::Null);
            let usage = response.get("usage").cloned().unwrap_or(Value::Null);
            out.insert(
                "result".into(),
                json!({"text": text, "finish_reason": finish, "usage": usage}),
            );
        }
        Err(_) => {}
    }
    Value::Object(out).to_string()
}

/// A chat completion body in the one form every path writes: decoded into the wire type and
/// encoded again (known fields that are null are dropped, unknown ones kept), so a row's line
/// does not depend on whether it came through the pipeline or from a Batch API output file.
fn normalized(body: &Value) -> Option<Value> {
    if body.get("object").and_then(Value::as_str) != Some("chat.completion") {
        return None;
    }
    let typed: ChatCompletionResponse = serde_json::from_value(body.clone()).ok()?;
    serde_json::to_value(typed).ok()
}

/// The output line of a row that failed for good.
pub(crate) fn error_line(
    row: &Row,
    message: &str,
    status: Option<u16>,
    code: Option<String>,
) -> String {
    let mut err = Map::new();
    err.insert("message".into(), Value::from(message));
    if let Some(s) = status {
        err.insert("status".into(), Value::from(s));
    }
    if let Some(c) = code {
        err.insert("code".into(), Value::from(c));
    }
    let mut out = Map::new();
    out.insert("custom_id".into(), row.id.clone());
    out.insert("line".into(), Value::from(row.line));
    out.insert("error".into(), Value::Object(err));
    Value::Object(out).to_string()
}

/// The `usage` of a response body, zero when absent.
pub(crate) fn usage_of(response: &Value) -> Usage {
    response
        .get("usage")
        .and_then(|u| serde_json::from_value::<Usage>(u.clone()).ok())
        .unwrap_or_else(|| Usage::new(0, 0))
}

fn put(o: &mut Map<String, Value>, key: &str, v: Option<Value>) {
    if let Some(v) = v {
        o.insert(key.into(), v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ask_rows_become_chat_requests() {
        let item = RowItem::Text {
            text: "hi".into(),
            fields: Map::new(),
        };
        let task = Task::Ask {
            system: Some("be brief".into()),
        };
        let sampling = Sampling {
            max_tokens: Some(10),
            ..Sampling::default()
        };
        let p = prepare(&item, Some(&task), "gpt-4o-mini", &sampling, Path::new(".")).unwrap();
        assert_eq!(p.path, "chat/completions");
        assert_eq!(p.body["messages"][0]["role"], "system");
        assert_eq!(p.body["max_tokens"], 10);
        assert!(p.prompt_tokens > 0);
        assert_eq!(p.estimated_tokens(), p.prompt_tokens + 10);
        assert!(p.estimated_cost(&ModelCatalog::builtin()).unwrap() > 0.0);
        assert_eq!(p.charged_tokens(&Usage::new(5, 3)), 15);
    }

    #[test]
    fn ask_rows_carry_their_attachments() {
        let dir = std::env::temp_dir().join(format!("llmkit-batch-att-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("n.txt"), "note").unwrap();
        let task = Task::Ask { system: None };
        let row = |v: Value| RowItem::Text {
            text: "look".into(),
            fields: serde_json::from_value(json!({ "attachments": v })).unwrap(),
        };
        let p = prepare(
            &row(json!(["n.txt", "https://example.com/a.png"])),
            Some(&task),
            "gpt-4o",
            &Sampling::default(),
            &dir,
        )
        .unwrap();
        let content = &p.body["messages"][0]["content"];
        assert_eq!(content[0]["text"], "look");
        assert_eq!(content[1]["text"], "--- n.txt ---\nnote");
        assert_eq!(content[2]["image_url"]["url"], "https://example.com/a.png");
        // The URL image counts as the largest the tile rule allows.
        assert!(p.prompt_tokens > 1445, "{}", p.prompt_tokens);
        // CSV's `;`-separated form, and the errors that fail only the row.
        assert!(
            prepare(
                &row(json!("n.txt; n.txt")),
                Some(&task),
                "m",
                &Sampling::default(),
                &dir
            )
            .is_ok()
        );
        for (bad, needle) in [
            (json!(["missing.png"]), "missing.png"),
            (json!([3]), "not a path"),
            (json!({"a": 1}), "give an array"),
        ] {
            let e = prepare(&row(bad), Some(&task), "m", &Sampling::default(), &dir).unwrap_err();
            assert!(e.contains(needle), "{e}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn raw_rows_keep_their_body() {
        let item = RowItem::Raw {
            url: "/v1/chat/completions".into(),
            body: json!({"model": "gpt-4o", "messages": [{"role":"user","content":"x"}], "max_tokens": 7}),
        };
        let p = prepare(&item, None, "other", &Sampling::default(), Path::new(".")).unwrap();
        assert_eq!(
            (p.path.as_str(), p.model.as_str(), p.max_tokens),
            ("chat/completions", "gpt-4o", Some(7))
        );
    }
}
