//! Running a row's chat requests through the request pipeline gated by the scheduler: the
//! tasks of `llmkit-tasks` for text rows (structured results validated), and whole chat
//! requests for `ask` rows and raw `/v1/chat/completions` rows.

use std::sync::Arc;

use llmkit_client::{ClientError, Pipeline};
use llmkit_tasks::{
    ClassifyOptions, Glossary, Length, StructuredMode, SummarizeOptions, SummaryFormat, TaskError,
    TaskRunner, Templates, TokenCounter, TranslateOptions,
};
use llmkit_tools::{Approval, ToolLoop, Toolbox};
use llmkit_types::{ChatCompletionRequest, Stop, Usage};
use serde_json::{Value, json};

use crate::gate::{RowGate, failure_message};
use crate::request::{Sampling, Structured, Task};
use crate::runner::Scheduler;

/// What task rows need besides the job's options: the pipeline (redaction, cache, budgets,
/// ledger; its backend must not retry, the scheduler does) and the task settings.
#[derive(Clone)]
pub struct TaskSetup {
    pub pipeline: Pipeline,
    /// Built-in prompts plus the user's overrides.
    pub templates: Templates,
    /// The model's context window (sizes chunks of long rows).
    pub window: usize,
    pub counter: TokenCounter,
    /// Redaction is on: rows that cannot go through the pipeline are refused, not sent.
    pub redacting: bool,
    /// Tools the model may call on `ask` rows: each row runs the tool loop (no approval: a
    /// batch has no one to ask).
    pub tools: Option<RowTools>,
}

/// The tools of a batch's `ask` rows.
#[derive(Clone)]
pub struct RowTools {
    pub toolbox: Arc<Toolbox>,
    /// The most tool calls one row may make.
    pub max_calls: usize,
}

/// How a row ended: its result (or failure) and what its requests cost.
pub(crate) struct Outcome {
    pub result: Result<Value, Failure>,
    pub cost: f64,
    pub usage: Usage,
}

/// Why a row failed for good.
pub(crate) struct Failure {
    pub message: String,
    pub status: Option<u16>,
    pub code: Option<String>,
}

impl Failure {
    fn client(e: &ClientError) -> Self {
        Self {
            message: failure_message(e),
            status: e.status(),
            code: e.code(),
        }
    }

    fn task(e: TaskError) -> Self {
        match e {
            TaskError::Client(c) => Self::client(&c),
            other => Self {
                code: Some(task_code(&other).to_string()),
                message: match other.hint() {
                    Some(h) => format!("{other} (hint: {h})"),
                    None => other.to_string(),
                },
                status: None,
            },
        }
    }
}

fn task_code(e: &TaskError) -> &'static str {
    match e {
        TaskError::InvalidOutput { .. } => "invalid_output",
        TaskError::GlossaryViolation { .. } => "glossary_violation",
        TaskError::EmptyInput => "empty_input",
        _ => "task_failed",
    }
}

/// A pipeline whose chat requests go through a fresh row gate.
pub(crate) fn gated(shared: &Arc<Scheduler>, setup: &TaskSetup) -> (Pipeline, Arc<RowGate>) {
    let gate = shared.gate();
    let pipeline = setup.pipeline.clone().with_gate(gate.clone());
    (pipeline, gate)
}

/// Sends one whole chat request; the result is the response body. With `tools`, the
/// request runs the tool loop (every step through the gate, so the limits and the cost cap
/// count each one) and the result is the final step's answer.
pub(crate) async fn run_chat(
    shared: &Arc<Scheduler>,
    setup: &TaskSetup,
    req: &ChatCompletionRequest,
    tools: Option<&RowTools>,
) -> Outcome {
    let (pipeline, gate) = gated(shared, setup);
    let result = match tools {
        None => pipeline.chat(req).await.map_err(|e| Failure::client(&e)),
        Some(t) => {
            let tool_loop = ToolLoop {
                toolbox: &t.toolbox,
                max_calls: t.max_calls,
                approval: Approval::Never,
                approver: None,
                observer: None,
            };
            let mut transcript = Vec::new();
            tool_loop
                .run(&pipeline, req.clone(), &mut transcript)
                .await
                .map(|done| done.result)
                .map_err(|e| match e.client_error() {
                    Some(c) => Failure::client(c),
                    None => Failure {
                        message: e.to_string(),
                        status: None,
                        code: Some("tool_failed".into()),
                    },
                })
        }
    };
    let (cost, usage) = gate.spent();
    let result = result.and_then(|r| {
        serde_json::to_value(&r.response).map_err(|e| Failure {
            message: format!("internal: cannot encode the response: {e}"),
            status: None,
            code: None,
        })
    });
    Outcome {
        result,
        cost,
        usage,
    }
}

/// Runs a task (other than `ask`) on one row's text; the result is the task's validated,
/// structured answer.
pub(crate) async fn run_task(
    shared: &Arc<Scheduler>,
    setup: &TaskSetup,
    task: &Task,
    model: &str,
    sampling: &Sampling,
    structured: &Structured,
    text: &str,
) -> Outcome {
    let (pipeline, gate) = gated(shared, setup);
    let mut runner = TaskRunner::new(
        pipeline,
        prototype(model, sampling),
        setup.templates.clone(),
    )
    .window(setup.window)
    .counter(setup.counter.clone())
    .repair_attempts(structured.repair_attempts);
    if structured.prompt_mode {
        runner = runner.structured_mode(StructuredMode::Prompt);
    }
    let result = perform(&runner, task, text).await.map_err(Failure::task);
    let (cost, usage) = gate.spent();
    Outcome {
        result,
        cost,
        usage,
    }
}

/// The request every task request starts from: model and sampling.
pub fn prototype(model: &str, sampling: &Sampling) -> ChatCompletionRequest {
    let mut req = ChatCompletionRequest::new(model.to_string(), Vec::new());
    req.temperature = sampling.temperature;
    req.top_p = sampling.top_p;
    req.max_tokens = sampling.max_tokens;
    req.seed = sampling.seed;
    if !sampling.stop.is_empty() {
        req.stop = Some(Stop::Many(sampling.stop.clone()));
    }
    if sampling.extra.is_empty() {
        return req;
    }
    // Through the JSON form, so that known fields land in their typed slots; the caller
    // checked that they fit, and a request that did not stays as it was.
    let mut body = serde_json::to_value(&req).unwrap_or(Value::Null);
    if let Value::Object(map) = &mut body {
        for (k, v) in &sampling.extra {
            map.insert(k.clone(), v.clone());
        }
    }
    serde_json::from_value(body).unwrap_or(req)
}

async fn perform(runner: &TaskRunner, task: &Task, text: &str) -> Result<Value, TaskError> {
    match task {
        Task::Ask { system } => {
            let out = runner.output_budget(1024);
            let answer = runner
                .ask(system.as_deref().unwrap_or(""), text, out)
                .await?;
            Ok(json!({ "text": answer }))
        }
        Task::Summarize {
            length,
            words,
            format,
            focus,
        } => {
            let opts = SummarizeOptions {
                length: match length.as_str() {
                    "short" => Length::Short,
                    "long" => Length::Long,
                    _ => Length::Medium,
                },
                words: *words,
                format: if format == "bullets" {
                    SummaryFormat::Bullets
                } else {
                    SummaryFormat::Paragraph
                },
                focus: focus.clone(),
            };
            let summary = llmkit_tasks::summarize(runner, text, &opts).await?;
            Ok(json!({ "summary": summary }))
        }
        Task::Translate {
            to,
            from,
            glossary,
            strict,
        } => {
            let opts = TranslateOptions {
                to: to.clone(),
                from: from.clone(),
                glossary: Glossary {
                    terms: glossary.clone(),
                },
                strict: *strict,
            };
            let t = llmkit_tasks::translate(runner, text, &opts).await?;
            Ok(json!({
                "translation": t.text,
                "glossary_missing": t.glossary_missing.iter()
                    .map(|(s, t)| json!({"source": s, "target": t}))
                    .collect::<Vec<_>>(),
                "lost_spans": t.lost_spans,
            }))
        }
        Task::Sentiment => {
            let s = llmkit_tasks::sentiment(runner, text).await?;
            Ok(json!({"label": s.label, "score": s.score, "evidence": s.evidence}))
        }
        Task::Classify { labels, multi } => {
            let opts = ClassifyOptions::new(labels, *multi)?;
            Ok(llmkit_tasks::classify(runner, text, &opts).await?.to_json())
        }
        Task::Extract { schema } => llmkit_tasks::extract(runner, text, schema).await,
    }
}
