//! Features of the OpenAI API that some compatible servers lack (`json_schema`,
//! `stream_options`, the Responses API, `tools`): telling a server's rejection of one from
//! other errors, the request rewritten without it, and the set of features a client knows
//! its server lacks (given by the caller, learnt during the run, handed back to the caller's
//! [`CapabilityMemory`]).

use std::fmt;
use std::sync::atomic::{AtomicU8, Ordering};

use llmkit_types::{
    ApiErrorBody, ChatCompletionRequest, ChatMessage, MessageContent, ResponseFormat, Role,
};
use serde_json::Value;

use crate::error::ClientError;
use crate::http::HttpClient;

/// A feature some OpenAI-compatible servers do not have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Feature {
    /// `response_format: {"type": "json_schema"}` (servers that take only `text` and
    /// `json_object`). Falls back to `json_object` with the schema in the instructions.
    JsonSchema,
    /// `stream_options` (`include_usage`) on streamed chat. Falls back to a stream without
    /// it, whose usage the pipeline counts with the tokenizer.
    StreamOptions,
    /// `POST /responses`. Falls back to chat completions (in `WireApi::ResponsesOrChat`).
    Responses,
    /// `tools`: nothing can stand in for tool calling, so a rejection is a clear error.
    Tools,
}

impl Feature {
    /// Every feature, in the order of their bits.
    pub const ALL: [Feature; 4] = [
        Feature::JsonSchema,
        Feature::StreamOptions,
        Feature::Responses,
        Feature::Tools,
    ];

    /// The name kept in the store and shown to users.
    pub fn name(self) -> &'static str {
        match self {
            Feature::JsonSchema => "json_schema",
            Feature::StreamOptions => "stream_options",
            Feature::Responses => "responses",
            Feature::Tools => "tools",
        }
    }

    /// The feature called `name`, if any.
    pub fn parse(name: &str) -> Option<Feature> {
        Feature::ALL.into_iter().find(|f| f.name() == name)
    }

    /// What the request carried, as the notice names it.
    fn sent(self) -> &'static str {
        match self {
            Feature::JsonSchema => "`response_format: json_schema`",
            Feature::StreamOptions => "`stream_options`",
            Feature::Responses => "POST /responses",
            Feature::Tools => "`tools`",
        }
    }

    /// What is sent instead, as the notice names it.
    fn instead(self) -> &'static str {
        match self {
            Feature::JsonSchema => {
                "sending `json_object` with the schema in the instructions (answers are checked locally where the caller validates)"
            }
            Feature::StreamOptions => {
                "streaming without it (usage is counted locally with the tokenizer)"
            }
            Feature::Responses => "using chat completions",
            Feature::Tools => "nothing can stand in for tool calling",
        }
    }

    fn bit(self) -> u8 {
        match self {
            Feature::JsonSchema => 1,
            Feature::StreamOptions => 2,
            Feature::Responses => 4,
            Feature::Tools => 8,
        }
    }
}

impl fmt::Display for Feature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A server's refusal of a feature: which one, and how it said so.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub feature: Feature,
    /// The HTTP status of the refusal.
    pub status: u16,
    /// The server's error message.
    pub message: String,
}

/// Keeps what a client learns about its server beyond the run (the CLI: a table in the
/// store, per base URL). The client itself never persists anything.
pub trait CapabilityMemory: Send + Sync {
    /// The server rejected `rejection.feature`; called once per feature and client, not for
    /// [`Feature::Tools`] (there is no fallback to remember, and the fix is on the server).
    fn remember(&self, rejection: &Rejection);

    /// How a user makes the memory forget, for the notice (`None`: not said).
    fn how_to_forget(&self) -> Option<String> {
        None
    }
}

/// The features a client knows its server lacks; shared by its clones, lock-free.
#[derive(Debug, Default)]
pub(crate) struct Missing(AtomicU8);

impl Missing {
    pub(crate) fn new(known: &[Feature]) -> Self {
        Self(AtomicU8::new(known.iter().fold(0, |acc, f| acc | f.bit())))
    }

    pub(crate) fn contains(&self, f: Feature) -> bool {
        self.0.load(Ordering::Relaxed) & f.bit() != 0
    }

    /// Adds `f`; true when this call added it (so its notice is given once).
    pub(crate) fn insert(&self, f: Feature) -> bool {
        self.0.fetch_or(f.bit(), Ordering::Relaxed) & f.bit() == 0
    }

    pub(crate) fn list(&self) -> Vec<Feature> {
        Feature::ALL
            .into_iter()
            .filter(|f| self.contains(*f))
            .collect()
    }
}

impl HttpClient {
    /// The features this client knows its server lacks (given, or learnt in this run).
    pub fn missing_features(&self) -> Vec<Feature> {
        self.missing().list()
    }

    /// Whether this client fell back from the Responses API to chat completions (or was
    /// told the server has none).
    pub fn fell_back(&self) -> bool {
        self.missing().contains(Feature::Responses)
    }

    /// Notes that the server lacks `r.feature`: the first time, a notice and the caller's
    /// memory hear of it. True when this call learnt it.
    pub(crate) fn learn(&self, r: &Rejection) -> bool {
        if !self.missing().insert(r.feature) {
            return false;
        }
        let memory = self.config().capability_memory.as_ref();
        if let Some(m) = memory {
            m.remember(r);
        }
        if let Some(notice_fn) = &self.config().notice {
            let kept = memory.map(|m| m.how_to_forget());
            notice_fn(&notice(&self.base_url(), r, kept));
        }
        true
    }

    /// `req` as this server takes it (unchanged unless fallbacks are on).
    pub(crate) fn adapted(&self, req: &ChatCompletionRequest) -> ChatCompletionRequest {
        let mut sent = req.clone();
        if self.config().fallbacks {
            adapt(&mut sent, self.missing());
        }
        sent
    }

    /// After chat request `sent` failed with `e`: `Ok` to send it again (re-adapted) when
    /// `e` rejects a feature it used, which is then known; else the error to return (for
    /// `tools`, the clear one). Each `Ok` removes a feature from the next request, so a
    /// caller's loop ends.
    pub(crate) fn fall_back_from(
        &self,
        e: ClientError,
        sent: &ChatCompletionRequest,
    ) -> Result<(), ClientError> {
        if !self.config().fallbacks {
            return Err(e);
        }
        let Some(r) = rejected(&e, sent) else {
            return Err(e);
        };
        if r.feature == Feature::Tools {
            return Err(tools_error(&self.base_url(), &sent.model, &r));
        }
        // Another request of this client may have learnt it first: send again all the same.
        self.learn(&r);
        Ok(())
    }
}

/// The feature a failed chat request's error rejects, if it is one this request used:
/// a 400, 422, 500 or 501 whose message (or `param`) names it. A complaint about the schema
/// itself (OpenAI's "Invalid schema for response_format") is not a missing feature.
pub(crate) fn rejected(e: &ClientError, sent: &ChatCompletionRequest) -> Option<Rejection> {
    let e = match e {
        ClientError::RetriesExhausted { last, .. } => last.as_ref(),
        other => other,
    };
    let ClientError::Api {
        status, error, raw, ..
    } = e
    else {
        return None;
    };
    if !matches!(status, 400 | 422 | 500 | 501) {
        return None;
    }
    let text = error_text(error.as_ref(), raw);
    let schema_asked = matches!(
        sent.response_format,
        Some(ResponseFormat::JsonSchema { .. })
    );
    let feature = if schema_asked
        && (text.contains("response_format") || text.contains("json_schema"))
        && !text.contains("invalid schema")
    {
        Feature::JsonSchema
    } else if sent.stream_options.is_some() && text.contains("stream_options") {
        Feature::StreamOptions
    } else if sent.tools.as_ref().is_some_and(|t| !t.is_empty())
        && [
            "tools",
            "tool_choice",
            "tool choice",
            "tool call",
            "function call",
        ]
        .iter()
        .any(|w| text.contains(w))
    {
        Feature::Tools
    } else {
        return None;
    };
    Some(Rejection {
        feature,
        status: *status,
        message: error
            .as_ref()
            .map_or_else(|| raw.clone(), |b| b.message.clone()),
    })
}

/// Whether an error body names a parameter that some servers lack: a 5xx that does is a
/// server refusing the feature, not a transient failure, so it is not retried.
pub(crate) fn names_optional_parameter(error: Option<&ApiErrorBody>, raw: &str) -> bool {
    let text = error_text(error, raw);
    [
        "response_format",
        "json_schema",
        "stream_options",
        "tool_choice",
        "tools",
    ]
    .iter()
    .any(|w| text.contains(w))
}

/// The request as a server lacking `missing` takes it.
pub(crate) fn adapt(req: &mut ChatCompletionRequest, missing: &Missing) {
    if missing.contains(Feature::JsonSchema)
        && let Some(ResponseFormat::JsonSchema { json_schema }) = &req.response_format
    {
        let schema = json_schema
            .schema
            .clone()
            .unwrap_or_else(|| serde_json::json!({"type": "object"}));
        req.response_format = Some(ResponseFormat::JsonObject);
        add_instruction(&mut req.messages, &schema_instruction(&schema));
    }
    if missing.contains(Feature::StreamOptions) {
        req.stream_options = None;
    }
}

/// The instruction that carries a schema when the server cannot: the same words the task
/// templates use in their prompt mode.
pub fn schema_instruction(schema: &Value) -> String {
    format!("Reply with JSON only, valid against this JSON Schema:\n{schema}")
}

/// The one-line notice of a fallback: `memory` is `None` when nothing keeps it beyond the
/// run, else how to forget it (if the memory says).
pub(crate) fn notice(base_url: &str, r: &Rejection, memory: Option<Option<String>>) -> String {
    let how = if r.status == 404 || r.status == 405 {
        format!("answered {}", r.status)
    } else {
        format!("was rejected with {}", r.status)
    };
    let span = match memory {
        Some(Some(f)) => format!("for this server from now on (remembered; {f})"),
        Some(None) => "for this server from now on (remembered)".to_string(),
        None => "for the rest of this run".to_string(),
    };
    format!(
        "{base_url}: {} {how}: {} {span}",
        r.feature.sent(),
        r.feature.instead()
    )
}

/// The clear error for a server without tool calling.
pub(crate) fn tools_error(base_url: &str, model: &str, r: &Rejection) -> ClientError {
    let message: String = r.message.chars().take(200).collect();
    ClientError::Unsupported {
        what: format!(
            "{base_url} does not support tool calling for `{model}`: it rejected `tools` ({}: {message})",
            r.status
        ),
        hint: format!(
            "use a model and server with tool calling for `{model}` (vLLM: --enable-auto-tool-choice --tool-call-parser NAME; llama.cpp: --jinja), or send the request without tools"
        ),
        options: false,
    }
}

/// The message, `param` and raw body, lower-cased, for matching names.
fn error_text(error: Option<&ApiErrorBody>, raw: &str) -> String {
    let mut text = String::new();
    if let Some(b) = error {
        text.push_str(&b.message);
        text.push(' ');
        if let Some(p) = &b.param {
            text.push_str(&p.to_string());
        }
        text.push(' ');
    }
    text.push_str(raw);
    text.to_lowercase()
}

/// Appends `text` to the first system message, or puts a system message first.
fn add_instruction(messages: &mut Vec<ChatMessage>, text: &str) {
    let system = messages
        .iter_mut()
        .find(|m| matches!(m.role, Role::System | Role::Developer));
    match system {
        Some(m) => {
            let mut current = m
                .content
                .as_ref()
                .map(MessageContent::to_text)
                .unwrap_or_default();
            if !current.is_empty() {
                current.push_str("\n\n");
            }
            current.push_str(text);
            m.content = Some(MessageContent::Text(current));
        }
        None => messages.insert(0, ChatMessage::system(text)),
    }
}

#[cfg(test)]
mod tests {
    use llmkit_types::{StreamOptions, Tool};
    use serde_json::json;

    use super::*;

    fn api(status: u16, message: &str, param: Option<&str>) -> ClientError {
        let body =
            json!({"error": {"message": message, "type": "x", "param": param, "code": null}});
        let raw = body.to_string();
        ClientError::Api {
            status,
            error: llmkit_types::ErrorResponse::parse_lenient(raw.as_bytes()),
            request_id: None,
            raw,
            retry_after: None,
            rate_limit: None,
        }
    }

    fn schema_request() -> ChatCompletionRequest {
        let mut r = ChatCompletionRequest::new("m", vec![ChatMessage::user("hi")]);
        r.response_format = Some(ResponseFormat::json_schema(
            "s",
            json!({"type": "object", "properties": {"a": {"type": "string"}}}),
        ));
        r
    }

    #[test]
    fn rejections_are_told_from_other_errors() {
        let req = schema_request();
        let vllm = api(
            400,
            "1 validation error for ChatCompletionRequest\nresponse_format.type\n  Input should be 'text' or 'json_object'",
            None,
        );
        assert_eq!(rejected(&vllm, &req).unwrap().feature, Feature::JsonSchema);
        let llama = api(
            500,
            "response_format type must be one of \"text\" or \"json_object\", but got: json_schema",
            None,
        );
        let r = rejected(&llama, &req).unwrap();
        assert_eq!((r.feature, r.status), (Feature::JsonSchema, 500));
        // A bad schema, a 503 or a request without the feature is not a missing feature.
        let bad = api(
            400,
            "Invalid schema for response_format 's': 'x' is not valid",
            Some("response_format"),
        );
        assert!(rejected(&bad, &req).is_none());
        assert!(rejected(&api(503, "response_format", None), &req).is_none());
        let plain = ChatCompletionRequest::new("m", vec![ChatMessage::user("hi")]);
        assert!(rejected(&llama, &plain).is_none());

        let mut streamed = plain.clone();
        streamed.stream_options = Some(StreamOptions::default());
        let azure = api(
            400,
            "Unrecognized request argument supplied: stream_options",
            None,
        );
        assert_eq!(
            rejected(&azure, &streamed).unwrap().feature,
            Feature::StreamOptions
        );
        assert!(rejected(&azure, &plain).is_none());

        let mut tooled = plain.clone();
        tooled.tools = Some(vec![
            serde_json::from_value::<Tool>(json!({"type": "function", "function": {"name": "f"}}))
                .unwrap(),
        ]);
        let no_tools = api(
            400,
            "\"auto\" tool choice requires --enable-auto-tool-choice and --tool-call-parser to be set",
            None,
        );
        assert_eq!(
            rejected(&no_tools, &tooled).unwrap().feature,
            Feature::Tools
        );
        assert!(rejected(&no_tools, &plain).is_none());
        let exhausted = ClientError::RetriesExhausted {
            attempts: 3,
            last: Box::new(llama),
        };
        assert!(rejected(&exhausted, &req).is_some());
    }

    #[test]
    fn a_missing_schema_goes_into_the_instructions() {
        let missing = Missing::new(&[Feature::JsonSchema, Feature::StreamOptions]);
        let mut req = schema_request();
        req.stream_options = Some(StreamOptions::default());
        adapt(&mut req, &missing);
        assert_eq!(req.response_format, Some(ResponseFormat::JsonObject));
        assert!(req.stream_options.is_none());
        assert_eq!(req.messages[0].role, Role::System);
        let text = req.messages[0].text_content();
        assert!(
            text.contains("JSON Schema") && text.contains("\"properties\""),
            "{text}"
        );
        // An existing system prompt keeps its text, with the schema after it.
        let mut req = schema_request();
        req.messages.insert(0, ChatMessage::system("Be brief."));
        adapt(&mut req, &missing);
        assert_eq!(req.messages.len(), 2);
        assert!(
            req.messages[0]
                .text_content()
                .starts_with("Be brief.\n\nReply with JSON only")
        );
        // Nothing known, nothing changed.
        let mut req = schema_request();
        let before = req.clone();
        adapt(&mut req, &Missing::default());
        assert_eq!(req, before);
    }

    #[test]
    fn the_set_and_the_names() {
        let m = Missing::new(&[Feature::Responses]);
        assert!(m.contains(Feature::Responses) && !m.contains(Feature::Tools));
        assert!(m.insert(Feature::JsonSchema));
        assert!(!m.insert(Feature::JsonSchema));
        assert_eq!(m.list(), [Feature::JsonSchema, Feature::Responses]);
        for f in Feature::ALL {
            assert_eq!(Feature::parse(f.name()), Some(f));
        }
        assert_eq!(Feature::parse("nope"), None);
        assert!(names_optional_parameter(
            None,
            "tools param requires --jinja flag"
        ));
        assert!(!names_optional_parameter(None, "The server had an error"));
    }

    #[test]
    fn notices_say_what_and_for_how_long() {
        let r = Rejection {
            feature: Feature::JsonSchema,
            status: 400,
            message: String::new(),
        };
        let n = notice("http://x/v1", &r, Some(Some("`forget` resets it".into())));
        assert!(
            n.contains("json_object") && n.contains("from now on") && n.contains("forget"),
            "{n}"
        );
        assert!(!n.contains('\n'));
        let r = Rejection {
            feature: Feature::Responses,
            status: 404,
            message: String::new(),
        };
        assert!(
            notice("u", &r, None)
                .contains("answered 404: using chat completions for the rest of this run")
        );
    }
}
