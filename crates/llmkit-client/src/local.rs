//! `LocalBackend`: the embedded local model (llmkit-local) answering like an OpenAI server.
//!
//! Generation runs on tokio's blocking pool; streamed tokens come back through a channel,
//! and dropping the stream closes the channel, which stops generation at the next token.
//! Responses and chunks have OpenAI's shape (`chatcmpl-local-…` ids, usage, finish reasons)
//! so that callers cannot tell the backends apart by their output. Tools are called through
//! constrained decoding (`local_tools`). Parameters the local model does not support
//! (logprobs, penalties...) are ignored without error.

use std::collections::VecDeque;
use std::fmt;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use llmkit_local::{
    ChatTurn, Embedder, GenerateOutput, GenerateRequest, JsonConstraint, LocalError, LocalModel,
};
use llmkit_types::{
    ApiErrorBody, ChatCompletionChunk, ChatCompletionRequest, ChatCompletionResponse, Choice,
    ChunkChoice, CompletionChoice, CompletionRequest, CompletionResponse, ContentPart, Delta,
    Embedding, EmbeddingRequest, EmbeddingResponse, EmbeddingUsage, EmbeddingVector, FinishReason,
    Model, ModelList, Prompt, ResponseFormat, ResponseMessage, Role, Usage,
};
use serde_json::{Map, Value, json};
use tokio::sync::mpsc;

use crate::error::ClientError;
use crate::http::{Response, ResponseMeta};
use crate::local_tools;
use crate::stream::{ChatStream, StreamEvent};

/// The local chat model and embedder behind the [`crate::Backend`] methods. Cheap to clone.
#[derive(Clone)]
pub struct LocalBackend {
    model: Option<LocalModel>,
    embedder: Option<Embedder>,
}

impl LocalBackend {
    /// A backend serving chat and completions with `model` and embeddings with `embedder`;
    /// a call needing a part that is `None` fails with a hint.
    pub fn new(model: Option<LocalModel>, embedder: Option<Embedder>) -> Self {
        Self { model, embedder }
    }

    pub fn model(&self) -> Option<&LocalModel> {
        self.model.as_ref()
    }

    pub fn embedder(&self) -> Option<&Embedder> {
        self.embedder.as_ref()
    }

    /// `local:<chat model>` (or `local:<embedder>`, or `local`).
    pub fn name(&self) -> String {
        match (&self.model, &self.embedder) {
            (Some(m), _) => format!("local:{}", m.name()),
            (None, Some(e)) => format!("local:{}", e.model_name()),
            (None, None) => "local".to_string(),
        }
    }

    /// The chat model's context window in tokens, if a chat model is loaded.
    pub fn context_window(&self) -> Option<u32> {
        self.model()
            .map(|m| u32::try_from(m.context_window()).unwrap_or(u32::MAX))
    }

    /// Prompt tokens of `messages` as the chat model sees them (its chat template and its
    /// own tokenizer), if a chat model is loaded.
    pub fn count_chat_tokens(&self, messages: &[llmkit_types::ChatMessage]) -> Option<usize> {
        let turns: Vec<ChatTurn> = messages
            .iter()
            .map(|m| ChatTurn::new(m.role.as_str(), m.text_content()))
            .collect();
        self.model()?.count_chat_tokens(&turns).ok()
    }

    /// A chat completion; `n > 1` runs `n` generations with seeds `seed`, `seed + 1`...
    pub async fn chat(
        &self,
        req: &ChatCompletionRequest,
    ) -> Result<Response<ChatCompletionResponse>, ClientError> {
        let started = Instant::now();
        let model = self.chat_model()?;
        refuse_attachments(req)?;
        if let Some(offer) = local_tools::offered(req) {
            return self.chat_with_tools(&model, req, &offer, started).await;
        }
        let jobs = chat_jobs(req);
        check_context(&model, &jobs[0])?;
        let outputs = run_blocking(model.clone(), jobs).await?;
        let usage = usage_of(&outputs);
        let choices = outputs
            .into_iter()
            .enumerate()
            .map(|(i, out)| Choice {
                index: index_u32(i),
                message: ResponseMessage {
                    role: Role::Assistant,
                    content: Some(out.text),
                    ..ResponseMessage::default()
                },
                finish_reason: Some(finish(out.finish_reason)),
                logprobs: None,
            })
            .collect();
        let body = ChatCompletionResponse {
            id: new_id("chatcmpl-local"),
            object: "chat.completion".into(),
            created: now_secs(),
            model: model.name().to_string(),
            choices,
            usage: Some(usage),
            system_fingerprint: None,
            service_tier: None,
            extra: Map::new(),
        };
        Ok(Response {
            body,
            meta: local_meta(started, None),
        })
    }

    /// A streamed chat completion: a role chunk, content chunks, a finish chunk per choice,
    /// then a usage chunk.
    pub async fn chat_stream(
        &self,
        req: &ChatCompletionRequest,
    ) -> Result<ChatStream, ClientError> {
        let started = Instant::now();
        let model = self.chat_model()?;
        refuse_attachments(req)?;
        if let Some(offer) = local_tools::offered(req) {
            // A call is known only once its arguments are complete: the answer is made
            // whole and sent as one chunk.
            let whole = self.chat_with_tools(&model, req, &offer, started).await?;
            return Ok(local_tools::replay_stream(whole));
        }
        let jobs = chat_jobs(req);
        check_context(&model, &jobs[0])?;
        let (tx, rx) = mpsc::unbounded_channel();
        let worker_model = model.clone();
        let worker = tokio::task::spawn_blocking(move || {
            for (index, job) in jobs.iter().enumerate() {
                if tx.send(Worker::Start { index }).is_err() {
                    return;
                }
                let result = worker_model.generate(job, &mut |piece| {
                    tx.send(Worker::Token {
                        index,
                        text: piece.to_string(),
                    })
                    .is_ok()
                });
                let msg = match result {
                    Ok(out) => Worker::Finished { index, out },
                    Err(e) => Worker::Failed(local_error(e)),
                };
                let failed = matches!(msg, Worker::Failed(_));
                if tx.send(msg).is_err() || failed {
                    return;
                }
            }
        });
        // The worker ends by itself once the receiver is gone; nobody awaits it.
        drop(worker);
        let state = LocalStreamState {
            rx,
            pending: VecDeque::new(),
            id: new_id("chatcmpl-local"),
            created: now_secs(),
            model: model.name().to_string(),
            outputs: Vec::new(),
            started,
            meta: local_meta(started, None),
            done: false,
        };
        let meta = state.meta.clone();
        let events = futures::stream::unfold(state, |mut st| async move {
            let ev = st.next_event().await?;
            Some((ev, st))
        });
        Ok(ChatStream::from_events(events, meta))
    }

    /// A legacy text completion: each prompt is continued as is, without chat template.
    pub async fn completions(
        &self,
        req: &CompletionRequest,
    ) -> Result<Response<CompletionResponse>, ClientError> {
        let started = Instant::now();
        let model = self.chat_model()?;
        let prompts = match &req.prompt {
            Prompt::Text(s) => vec![s.clone()],
            Prompt::Texts(v) => v.clone(),
            Prompt::Tokens(_) | Prompt::TokenBatches(_) => {
                return Err(invalid_request(
                    "the local model takes text prompts, not token ids",
                    "prompt",
                ));
            }
        };
        let n = req.n.unwrap_or(1).max(1);
        let mut jobs = Vec::new();
        for prompt in &prompts {
            for k in 0..n {
                jobs.push(GenerateRequest {
                    raw_prompt: Some(prompt.clone()),
                    max_tokens: Some(req.max_tokens.unwrap_or(16)),
                    temperature: req.temperature,
                    top_p: req.top_p,
                    top_k: extra_top_k(&req.extra),
                    repeat_penalty: extra_repeat_penalty(&req.extra),
                    seed: req.seed.map(|s| (s as u64).wrapping_add(u64::from(k))),
                    stop: stop_list(req.stop.as_ref()),
                    ..GenerateRequest::default()
                });
            }
        }
        if let Some(first) = jobs.first() {
            check_context(&model, first)?;
        }
        let echo = req.echo == Some(true);
        let outputs = run_blocking(model.clone(), jobs.clone()).await?;
        let mut usage = Usage::default();
        let choices = outputs
            .into_iter()
            .zip(&jobs)
            .enumerate()
            .map(|(i, (out, job))| {
                usage.prompt_tokens += u64::from(out.prompt_tokens);
                usage.completion_tokens += u64::from(out.completion_tokens);
                let text = match (&job.raw_prompt, echo) {
                    (Some(p), true) => format!("{p}{}", out.text),
                    _ => out.text,
                };
                CompletionChoice {
                    text,
                    index: index_u32(i),
                    logprobs: None,
                    finish_reason: Some(finish(out.finish_reason)),
                }
            })
            .collect();
        usage.total_tokens = usage.prompt_tokens + usage.completion_tokens;
        let body = CompletionResponse {
            id: new_id("cmpl-local"),
            object: "text_completion".into(),
            created: now_secs(),
            model: model.name().to_string(),
            choices,
            usage: Some(usage),
            system_fingerprint: None,
            extra: Map::new(),
        };
        Ok(Response {
            body,
            meta: local_meta(started, None),
        })
    }

    /// Embeddings from the local embedder, whatever model the request names. `dimensions`
    /// shortens the vectors (and renormalises them), as OpenAI's v3 models do;
    /// `encoding_format: "base64"` is honoured.
    pub async fn embeddings(
        &self,
        req: &EmbeddingRequest,
    ) -> Result<Response<EmbeddingResponse>, ClientError> {
        let started = Instant::now();
        let embedder = self
            .embedder
            .clone()
            .ok_or_else(|| ClientError::NoLocalModel("embedding"))?;
        let texts = match &req.input {
            llmkit_types::EmbeddingInput::Text(_) | llmkit_types::EmbeddingInput::Texts(_) => {
                req.input.texts()
            }
            _ => {
                return Err(invalid_request(
                    "the local embedder takes text input, not token ids",
                    "input",
                ));
            }
        };
        let dims = embedder.dimensions();
        let want = match req.dimensions {
            None => dims,
            Some(d) if d == 0 || d as usize > dims => {
                return Err(invalid_request(
                    &format!("dimensions must be between 1 and {dims} for the local embedder"),
                    "dimensions",
                ));
            }
            Some(d) => d as usize,
        };
        let base64 = req.encoding_format.as_deref() == Some("base64");
        let name = embedder.model_name().to_string();
        let result = tokio::task::spawn_blocking(move || {
            let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
            embedder.embed_with_usage(&refs)
        })
        .await
        .map_err(|e| ClientError::LocalWorker(format!("the embedding task failed: {e}")))?
        .map_err(|e| ClientError::LocalEmbed(Box::new(e)))?;
        let data = result
            .vectors
            .into_iter()
            .enumerate()
            .map(|(i, v)| {
                let v = shorten(v, want);
                Embedding {
                    object: "embedding".into(),
                    index: index_u32(i),
                    embedding: if base64 {
                        EmbeddingVector::Base64(base64_f32(&v))
                    } else {
                        EmbeddingVector::Float(v)
                    },
                }
            })
            .collect();
        let tokens = result.prompt_tokens as u64;
        let body = EmbeddingResponse {
            object: "list".into(),
            data,
            model: name,
            usage: EmbeddingUsage {
                prompt_tokens: tokens,
                total_tokens: tokens,
            },
        };
        Ok(Response {
            body,
            meta: local_meta(started, None),
        })
    }

    /// The loaded models, as `/v1/models` would list them.
    pub async fn models(&self) -> Result<Response<ModelList>, ClientError> {
        let started = Instant::now();
        let entry = |id: &str, extra: Map<String, Value>| Model {
            id: id.to_string(),
            object: "model".into(),
            created: 0,
            owned_by: "llmkit-local".into(),
            extra,
        };
        let mut data = Vec::new();
        if let Some(m) = &self.model {
            let mut extra = Map::new();
            extra.insert("context_window".into(), json!(m.context_window()));
            extra.insert("architecture".into(), json!(m.architecture()));
            data.push(entry(m.name(), extra));
        }
        if let Some(e) = &self.embedder {
            let mut extra = Map::new();
            extra.insert("dimensions".into(), json!(e.dimensions()));
            data.push(entry(e.model_name(), extra));
        }
        Ok(Response {
            body: ModelList {
                object: "list".into(),
                data,
            },
            meta: local_meta(started, None),
        })
    }

    fn chat_model(&self) -> Result<LocalModel, ClientError> {
        self.model
            .clone()
            .ok_or_else(|| ClientError::NoLocalModel("chat"))
    }
}

impl fmt::Debug for LocalBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalBackend")
            .field("model", &self.model.as_ref().map(LocalModel::name))
            .field(
                "embedder",
                &self.embedder.as_ref().map(Embedder::model_name),
            )
            .finish()
    }
}

/// Messages from the generation thread to the stream.
enum Worker {
    Start { index: usize },
    Token { index: usize, text: String },
    Finished { index: usize, out: GenerateOutput },
    Failed(ClientError),
}

struct LocalStreamState {
    rx: mpsc::UnboundedReceiver<Worker>,
    pending: VecDeque<StreamEvent>,
    id: String,
    created: u64,
    model: String,
    outputs: Vec<GenerateOutput>,
    started: Instant,
    meta: ResponseMeta,
    done: bool,
}

impl LocalStreamState {
    async fn next_event(&mut self) -> Option<StreamEvent> {
        loop {
            if let Some(ev) = self.pending.pop_front() {
                return Some(ev);
            }
            if self.done {
                return None;
            }
            match self.rx.recv().await {
                Some(Worker::Start { index }) => {
                    let delta = Delta {
                        role: Some(Role::Assistant),
                        content: Some(String::new()),
                        ..Delta::default()
                    };
                    self.push(index, delta, None);
                }
                Some(Worker::Token { index, text }) => {
                    if self.meta.ttft.is_none() {
                        self.meta.ttft = Some(self.started.elapsed());
                        self.pending.push_back(StreamEvent::Meta(self.meta.clone()));
                    }
                    let delta = Delta {
                        content: Some(text),
                        ..Delta::default()
                    };
                    self.push(index, delta, None);
                }
                Some(Worker::Finished { index, out }) => {
                    self.push(index, Delta::default(), Some(finish(out.finish_reason)));
                    self.outputs.push(out);
                }
                Some(Worker::Failed(e)) => {
                    self.pending.push_back(StreamEvent::Error(e));
                    self.done = true;
                }
                None => {
                    // The worker finished every choice: send usage, as `include_usage` asks.
                    let mut last = self.chunk(Vec::new());
                    last.usage = Some(usage_of(&self.outputs));
                    self.pending.push_back(StreamEvent::Chunk(Box::new(last)));
                    self.meta.latency = self.started.elapsed();
                    self.pending.push_back(StreamEvent::Meta(self.meta.clone()));
                    self.done = true;
                }
            }
        }
    }

    fn push(&mut self, index: usize, delta: Delta, finish_reason: Option<FinishReason>) {
        let chunk = self.chunk(vec![ChunkChoice {
            index: index_u32(index),
            delta,
            finish_reason,
            logprobs: None,
        }]);
        self.pending.push_back(StreamEvent::Chunk(Box::new(chunk)));
    }

    fn chunk(&self, choices: Vec<ChunkChoice>) -> ChatCompletionChunk {
        ChatCompletionChunk {
            id: self.id.clone(),
            object: "chat.completion.chunk".into(),
            created: self.created,
            model: self.model.clone(),
            choices,
            usage: None,
            system_fingerprint: None,
            service_tier: None,
            extra: Map::new(),
        }
    }
}

/// The embedded models read text only: an image, file or audio part is refused before
/// anything is generated, rather than silently dropped.
fn refuse_attachments(req: &ChatCompletionRequest) -> Result<(), ClientError> {
    let non_text = req.messages.iter().find_map(|m| match &m.content {
        Some(llmkit_types::MessageContent::Parts(parts)) => parts.iter().find_map(|p| match p {
            ContentPart::Text { .. } | ContentPart::Refusal { .. } => None,
            ContentPart::ImageUrl { .. } => Some("an image"),
            ContentPart::InputAudio { .. } => Some("audio"),
            ContentPart::File { .. } => Some("a file"),
            ContentPart::Other(_) => Some("a non-text part"),
        }),
        _ => None,
    });
    match non_text {
        None => Ok(()),
        Some(what) => Err(ClientError::Unsupported {
            what: format!("the embedded local model reads text only; the request carries {what}"),
            hint: "set OPENAI_API_KEY and use a model that reads it (e.g. -m gpt-4o-mini); \
                   text files and PDFs (--pdf text) attach as text"
                .into(),
            options: true,
        }),
    }
}

/// One generation request per choice (`n`), with consecutive seeds.
pub(crate) fn chat_jobs(req: &ChatCompletionRequest) -> Vec<GenerateRequest> {
    let messages: Vec<ChatTurn> = req
        .messages
        .iter()
        .map(|m| ChatTurn::new(m.role.as_str(), m.text_content()))
        .collect();
    let n = req.n.unwrap_or(1).max(1);
    (0..n)
        .map(|k| GenerateRequest {
            messages: messages.clone(),
            raw_prompt: None,
            max_tokens: req.output_budget(),
            temperature: req.temperature,
            top_p: req.top_p,
            top_k: extra_top_k(&req.extra),
            repeat_penalty: extra_repeat_penalty(&req.extra),
            seed: req.seed.map(|s| (s as u64).wrapping_add(u64::from(k))),
            stop: req.stop_list(),
            json: json_constraint(req.response_format.as_ref()),
        })
        .collect()
}

/// `response_format` as the local engine's constrained decoding: `json_object` → any
/// object, `json_schema` → its schema (a format without a schema → any object).
fn json_constraint(format: Option<&ResponseFormat>) -> Option<JsonConstraint> {
    match format? {
        ResponseFormat::Text => None,
        ResponseFormat::JsonObject => Some(JsonConstraint::Object),
        ResponseFormat::JsonSchema { json_schema } => Some(match &json_schema.schema {
            Some(s) => JsonConstraint::Schema(s.clone()),
            None => JsonConstraint::Object,
        }),
    }
}

/// Fails early, like an OpenAI server, when the prompt cannot fit the context window.
pub(crate) fn check_context(model: &LocalModel, job: &GenerateRequest) -> Result<(), ClientError> {
    let counted = match &job.raw_prompt {
        Some(p) => model.count_tokens(p),
        None => model.count_chat_tokens(&job.messages),
    };
    match counted {
        Ok(tokens) if tokens >= model.context_window() => {
            Err(local_error(LocalError::ContextOverflow {
                prompt_tokens: tokens,
                context_window: model.context_window(),
            }))
        }
        // A counting failure shows up again, with its message, when generation runs.
        _ => Ok(()),
    }
}

pub(crate) async fn run_blocking(
    model: LocalModel,
    jobs: Vec<GenerateRequest>,
) -> Result<Vec<GenerateOutput>, ClientError> {
    tokio::task::spawn_blocking(move || {
        jobs.iter()
            .map(|job| model.generate(job, &mut |_| true).map_err(local_error))
            .collect::<Result<Vec<_>, _>>()
    })
    .await
    .map_err(|e| ClientError::LocalWorker(format!("the generation task failed: {e}")))?
}

/// Maps a local failure to the error an OpenAI server would give for it, where one exists.
fn local_error(e: LocalError) -> ClientError {
    match &e {
        LocalError::ContextOverflow { .. } => ClientError::Api {
            retry_after: None,
            rate_limit: None,
            status: 400,
            error: Some(ApiErrorBody {
                message: e.to_string(),
                kind: Some("invalid_request_error".into()),
                param: Some(json!("messages")),
                code: Some(json!("context_length_exceeded")),
            }),
            request_id: None,
            raw: String::new(),
        },
        LocalError::InvalidRequest(msg) => invalid_request(msg, ""),
        _ => ClientError::Local(Box::new(e)),
    }
}

fn invalid_request(message: &str, param: &str) -> ClientError {
    ClientError::Api {
        retry_after: None,
        rate_limit: None,
        status: 400,
        error: Some(ApiErrorBody {
            message: message.to_string(),
            kind: Some("invalid_request_error".into()),
            param: (!param.is_empty()).then(|| json!(param)),
            code: None,
        }),
        request_id: None,
        raw: String::new(),
    }
}

pub(crate) fn usage_of(outputs: &[GenerateOutput]) -> Usage {
    let prompt = outputs.first().map_or(0, |o| u64::from(o.prompt_tokens));
    let completion = outputs.iter().map(|o| u64::from(o.completion_tokens)).sum();
    Usage::new(prompt, completion)
}

pub(crate) fn finish(reason: llmkit_local::FinishReason) -> FinishReason {
    FinishReason::from(reason.as_str())
}

pub(crate) fn local_meta(started: Instant, ttft: Option<std::time::Duration>) -> ResponseMeta {
    ResponseMeta {
        request_id: None,
        status: 200,
        latency: started.elapsed(),
        ttft,
        attempts: 1,
        rate_limit: Default::default(),
    }
}

fn extra_top_k(extra: &Map<String, Value>) -> Option<usize> {
    extra
        .get("top_k")
        .and_then(Value::as_u64)
        .and_then(|k| usize::try_from(k).ok())
}

fn extra_repeat_penalty(extra: &Map<String, Value>) -> Option<f32> {
    extra
        .get("repeat_penalty")
        .or_else(|| extra.get("repetition_penalty"))
        .and_then(Value::as_f64)
        .map(|p| p as f32)
}

fn stop_list(stop: Option<&llmkit_types::Stop>) -> Vec<String> {
    match stop {
        None => Vec::new(),
        Some(llmkit_types::Stop::One(s)) => vec![s.clone()],
        Some(llmkit_types::Stop::Many(v)) => v.clone(),
    }
}

pub(crate) fn index_u32(i: usize) -> u32 {
    u32::try_from(i).unwrap_or(u32::MAX)
}

pub(crate) fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// An id like OpenAI's, e.g. `chatcmpl-local-3f9a…` (24 hex digits).
pub(crate) fn new_id(prefix: &str) -> String {
    let n: u128 = rand::random();
    format!("{prefix}-{:024x}", n & ((1u128 << 96) - 1))
}

/// Keeps the first `dims` components and rescales to unit length.
fn shorten(mut v: Vec<f32>, dims: usize) -> Vec<f32> {
    if dims >= v.len() {
        return v;
    }
    v.truncate(dims);
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        for x in &mut v {
            *x /= norm;
        }
    }
    v
}

/// Base64 (standard alphabet, padded) of the little-endian f32 bytes, as OpenAI sends them.
fn base64_f32(v: &[f32]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for group in bytes.chunks(3) {
        let b = [
            group[0],
            group.get(1).copied().unwrap_or(0),
            group.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for (k, shift) in [18, 12, 6, 0].into_iter().enumerate() {
            if k <= group.len() {
                out.push(char::from(ALPHABET[((n >> shift) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_known_encodings() {
        // 1.0f32 = 00 00 80 3f; [1.0, -2.0] = 00 00 80 3f 00 00 00 c0.
        assert_eq!(base64_f32(&[1.0]), "AACAPw==");
        assert_eq!(base64_f32(&[1.0, -2.0]), "AACAPwAAAMA=");
        assert_eq!(base64_f32(&[]), "");
    }

    #[test]
    fn shortened_vectors_are_unit_length() {
        let v = shorten(vec![3.0, 4.0, 12.0], 2);
        assert_eq!(v, vec![0.6, 0.8]);
    }

    #[test]
    fn n_choices_get_consecutive_seeds() {
        let req = llmkit_types::ChatCompletionRequest::new(
            "local",
            vec![llmkit_types::ChatMessage::user("hi")],
        )
        .n(3)
        .seed(41);
        let seeds: Vec<_> = chat_jobs(&req).iter().map(|j| j.seed).collect();
        assert_eq!(seeds, [Some(41), Some(42), Some(43)]);
    }

    #[test]
    fn context_overflow_looks_like_openai() {
        let e = local_error(LocalError::ContextOverflow {
            prompt_tokens: 9000,
            context_window: 8192,
        });
        assert!(e.is_context_length_exceeded());
        assert_eq!(e.status(), Some(400));
    }
}
