//! `TaskRunner`: what every task needs to send requests (the pipeline, a prototype request
//! with model and sampling, the window, a token counter, templates) and what it learns
//! (usage, request count, redaction counts).

use std::sync::{Arc, Mutex};

use futures::future::BoxFuture;
use llmkit_client::{ChatResult, Pipeline};
use llmkit_types::{ChatCompletionRequest, ChatMessage};
use serde_json::Value;

use crate::chunk::TokenCounter;
use crate::error::TaskError;
use crate::templates::Templates;

/// How structured output is requested.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StructuredMode {
    /// `response_format: json_schema` (strict), for servers that support it.
    Schema,
    /// `response_format: json_object` plus the schema in the prompt (servers without
    /// schema support); the answer is validated here either way.
    Prompt,
}

/// Receives progress of multi-request tasks (the CLI draws a bar).
pub trait Progress: Send + Sync {
    /// `total` more requests are planned.
    fn add(&self, total: u64);
    /// One request finished.
    fn inc(&self);
    fn finish(&self);
}

/// Sends one of a task's requests the caller's own way (the CLI runs the tool loop, so
/// the model may call tools before it answers); without one, each request goes through the
/// pipeline as it is. The answer's text is what the task reads.
pub trait ChatStep: Send + Sync {
    fn chat<'a>(
        &'a self,
        pipeline: &'a Pipeline,
        req: ChatCompletionRequest,
    ) -> BoxFuture<'a, Result<ChatResult, TaskError>>;
}

/// Totals over the requests of one task.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunStats {
    pub requests: u64,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub cache_hits: u64,
    /// (kind, count) redacted over all requests.
    pub redactions: Vec<(String, usize)>,
}

/// Sends a task's requests.
#[derive(Clone)]
pub struct TaskRunner {
    pipeline: Pipeline,
    prototype: ChatCompletionRequest,
    templates: Templates,
    window: usize,
    counter: TokenCounter,
    mode: StructuredMode,
    repair_attempts: u32,
    concurrency: usize,
    progress: Option<Arc<dyn Progress>>,
    stats: Arc<Mutex<RunStats>>,
    /// The caller's own instructions (such as a rule base), appended to every system prompt.
    system_suffix: Option<String>,
    /// How requests are sent, when not straight through the pipeline.
    step: Option<Arc<dyn ChatStep>>,
}

/// Tokens kept free besides prompt and output: chat framing and counting error.
const FRAMING: usize = 32;

impl TaskRunner {
    /// A runner sending `prototype` (model and sampling set, messages ignored) through
    /// `pipeline`. Defaults: a 4096-token window, tiktoken counting for the model, schema
    /// mode (the local backend honours it with constrained decoding), 2 repair attempts, 1
    /// request at a time.
    pub fn new(pipeline: Pipeline, prototype: ChatCompletionRequest, templates: Templates) -> Self {
        let mode = StructuredMode::Schema;
        let counter = TokenCounter::for_model(&prototype.model);
        Self {
            pipeline,
            prototype,
            templates,
            window: 4096,
            counter,
            mode,
            repair_attempts: 2,
            concurrency: 1,
            progress: None,
            stats: Arc::new(Mutex::new(RunStats::default())),
            system_suffix: None,
            step: None,
        }
    }

    /// Sends every request through `step` (see [`ChatStep`]).
    pub fn chat_step(mut self, step: Arc<dyn ChatStep>) -> Self {
        self.step = Some(step);
        self
    }

    /// Appends `text` to the system prompt of every request (a system message is added
    /// when a request has none).
    pub fn system_suffix(mut self, text: impl Into<String>) -> Self {
        self.system_suffix = Some(text.into()).filter(|t| !t.trim().is_empty());
        self
    }

    pub fn window(mut self, tokens: usize) -> Self {
        self.window = tokens;
        self
    }

    pub fn counter(mut self, counter: TokenCounter) -> Self {
        self.counter = counter;
        self
    }

    pub fn structured_mode(mut self, mode: StructuredMode) -> Self {
        self.mode = mode;
        self
    }

    pub fn repair_attempts(mut self, n: u32) -> Self {
        self.repair_attempts = n;
        self
    }

    /// Requests sent at once by map steps (the local model serves one at a time anyway).
    pub fn concurrency(mut self, n: usize) -> Self {
        self.concurrency = n.max(1);
        self
    }

    pub fn progress(mut self, p: Arc<dyn Progress>) -> Self {
        self.progress = Some(p);
        self
    }

    pub fn templates(&self) -> &Templates {
        &self.templates
    }

    pub fn mode(&self) -> StructuredMode {
        self.mode
    }

    pub fn repairs(&self) -> u32 {
        self.repair_attempts
    }

    pub fn model(&self) -> &str {
        &self.prototype.model
    }

    pub fn context_window(&self) -> usize {
        self.window
    }

    pub fn tokens(&self, text: &str) -> usize {
        self.counter.count(text)
    }

    pub fn token_counter(&self) -> &TokenCounter {
        &self.counter
    }

    pub fn parallel(&self) -> usize {
        self.concurrency
    }

    /// Totals so far.
    pub fn stats(&self) -> RunStats {
        self.stats.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// The output budget: `--max-tokens` when given, else `default` (at most a quarter of
    /// the window).
    pub fn output_budget(&self, default: u32) -> u32 {
        self.prototype.output_budget().unwrap_or_else(|| {
            default
                .min(u32::try_from(self.window / 4).unwrap_or(u32::MAX))
                .max(16)
        })
    }

    /// Tokens left for input text once `system` and the output budget are counted.
    pub fn input_budget(&self, system: &str, output: u32) -> Result<usize, TaskError> {
        let suffix = self.system_suffix.as_deref().map_or(0, |s| self.tokens(s));
        let fixed = self.tokens(system) + suffix + output as usize + FRAMING;
        // Counting chunks piece by piece can undercount slightly: keep 5 % spare.
        let spare = self.window / 20;
        let left = self.window.saturating_sub(fixed + spare);
        if left < 64 {
            return Err(TaskError::WindowTooSmall {
                window: self.window,
                needed: fixed + spare + 64,
            });
        }
        Ok(left)
    }

    /// Renders a template.
    pub fn render(&self, name: &str, vars: &Value) -> Result<String, TaskError> {
        self.templates.render(name, vars)
    }

    /// Sends `messages` with `max_tokens` (unless the user set one) and returns the text.
    pub async fn send(
        &self,
        messages: Vec<ChatMessage>,
        max_tokens: u32,
        customize: impl FnOnce(&mut ChatCompletionRequest),
    ) -> Result<String, TaskError> {
        let mut req = self.prototype.clone();
        req.messages = messages;
        if let Some(extra) = &self.system_suffix {
            append_system(&mut req.messages, extra);
        }
        // The user's --max-tokens caps every request; steps that need less ask for less.
        let cap = req
            .output_budget()
            .map_or(max_tokens, |b| b.min(max_tokens));
        if req.max_completion_tokens.is_some() {
            req.max_completion_tokens = Some(cap);
        } else {
            req.max_tokens = Some(cap);
        }
        customize(&mut req);
        let res = match &self.step {
            Some(step) => step.chat(&self.pipeline, req).await?,
            None => self.pipeline.chat(&req).await?,
        };
        if let Ok(mut s) = self.stats.lock() {
            s.requests += 1;
            if let Some(u) = &res.response.usage {
                s.prompt_tokens += u.prompt_tokens;
                s.completion_tokens += u.completion_tokens;
            }
            s.cache_hits += u64::from(res.cache_hit);
            for (kind, n) in &res.redactions {
                match s.redactions.iter_mut().find(|(k, _)| k == kind) {
                    Some(entry) => entry.1 += n,
                    None => s.redactions.push((kind.clone(), *n)),
                }
            }
        }
        Ok(res.response.text().to_string())
    }

    /// A system + user exchange returning the trimmed answer text.
    pub async fn ask(
        &self,
        system: &str,
        user: &str,
        max_tokens: u32,
    ) -> Result<String, TaskError> {
        let mut messages = Vec::with_capacity(2);
        if !system.is_empty() {
            messages.push(ChatMessage::system(system));
        }
        messages.push(ChatMessage::user(user));
        let text = self.send(messages, max_tokens, |_| {}).await?;
        Ok(crate::postprocess::strip_code_fences(&text))
    }

    pub(crate) fn progress_add(&self, n: u64) {
        if let Some(p) = &self.progress {
            p.add(n);
        }
    }

    pub(crate) fn progress_inc(&self) {
        if let Some(p) = &self.progress {
            p.inc();
        }
    }

    pub(crate) fn progress_finish(&self) {
        if let Some(p) = &self.progress {
            p.finish();
        }
    }
}

/// Appends `extra` to the first system message, or puts a system message first.
fn append_system(messages: &mut Vec<ChatMessage>, extra: &str) {
    match messages
        .first_mut()
        .filter(|m| m.role == llmkit_types::Role::System)
    {
        Some(m) => {
            let text = format!("{}\n\n{extra}", m.text_content().trim_end());
            m.content = Some(llmkit_types::MessageContent::Text(text));
        }
        None => messages.insert(0, ChatMessage::system(extra.to_string())),
    }
}
