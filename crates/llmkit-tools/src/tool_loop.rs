//! The tool loop: send, run the tool calls the answer asks for (in parallel, after approval),
//! send their results back, until the model answers in text. Every step goes through the
//! caller's request pipeline, so redaction, the cache, budgets and `--max-cost` (checked
//! before each step is sent) and the ledger (one row per step) hold through the whole loop.

use llmkit_client::{ChatResult, Pipeline};
use llmkit_types::{ChatCompletionRequest, ChatMessage, MessageContent, ToolCall, ToolChoice};

use crate::error::ToolError;
use crate::toolbox::{ToolOutput, Toolbox};

/// `--max-tool-calls` when not given.
pub const DEFAULT_MAX_CALLS: usize = 10;
/// Malformed calls (bad JSON, schema mismatch, unknown tool) returned to the model as errors
/// before the loop gives up.
pub const MALFORMED_RETRIES: usize = 2;

/// Asks before a tool runs. `false` declines the call; the model is told so.
pub trait Approve: Send + Sync {
    fn approve(&self, tool: &str, arguments: &str, destructive: bool) -> bool;
}

/// Sees each call and result (`--tools-debug`).
pub trait Observe: Send + Sync {
    fn call(&self, tool: &str, arguments: &str);
    fn result(&self, tool: &str, output: &ToolOutput);
}

/// Which calls need approval.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Approval {
    /// None: every call runs.
    #[default]
    Never,
    /// Tools that say they are destructive (MCP annotations).
    Destructive,
    /// Every call.
    Always,
}

/// One run of the loop's settings.
pub struct ToolLoop<'a> {
    pub toolbox: &'a Toolbox,
    /// The most tool calls in one run.
    pub max_calls: usize,
    pub approval: Approval,
    pub approver: Option<&'a dyn Approve>,
    pub observer: Option<&'a dyn Observe>,
}

/// The final answer and what it took.
#[derive(Debug)]
pub struct LoopResult {
    /// The last step's answer (text, no tool calls).
    pub result: ChatResult,
    /// Requests sent.
    pub steps: usize,
    /// Tools called.
    pub calls: usize,
}

impl ToolLoop<'_> {
    /// Runs `req` (its own tools are replaced by the toolbox's) to a text answer. Each
    /// assistant tool-call turn and tool result is appended to `transcript` as it happens,
    /// so a caller keeps them when a later step fails.
    pub async fn run(
        &self,
        pipe: &Pipeline,
        mut req: ChatCompletionRequest,
        transcript: &mut Vec<ChatMessage>,
    ) -> Result<LoopResult, ToolError> {
        if !self.toolbox.is_empty() {
            req.tools = Some(self.toolbox.definitions());
        }
        let (mut steps, mut calls, mut malformed) = (0usize, 0usize, 0usize);
        loop {
            let result = pipe.chat(&req).await.map_err(|source| ToolError::Step {
                steps,
                source: Box::new(source),
            })?;
            steps += 1;
            let message = result
                .response
                .choices
                .first()
                .map(|c| c.message.clone())
                .unwrap_or_default();
            let asked: Vec<ToolCall> = message.tool_calls.clone().unwrap_or_default();
            if asked.is_empty() {
                return Ok(LoopResult {
                    result,
                    steps,
                    calls,
                });
            }
            if calls + asked.len() > self.max_calls {
                return Err(ToolError::TooManyCalls {
                    limit: self.max_calls,
                });
            }
            calls += asked.len();
            // A forced call (`required` or a named tool) is made once: forced again, the
            // model could only call tools forever (the OpenAI Agents SDK resets it too).
            if matches!(&req.tool_choice, Some(c) if *c != ToolChoice::Mode("auto".into())) {
                req.tool_choice = Some(ToolChoice::Mode("auto".into()));
            }
            let mut turn = ChatMessage::assistant_tool_calls(asked.clone());
            if let Some(text) = message.content.as_deref().filter(|t| !t.is_empty()) {
                turn.content = Some(MessageContent::Text(text.to_string()));
            }
            // A reasoning model's calls go back with the reasoning that made them (the
            // Responses API asks for both with `store: false`).
            if let Some(items) = message.extra.get(llmkit_types::REASONING_ITEMS_FIELD) {
                turn.extra
                    .insert(llmkit_types::REASONING_ITEMS_FIELD.into(), items.clone());
            }
            req.messages.push(turn.clone());
            transcript.push(turn);
            let outputs = self.run_calls(&asked, &mut malformed).await?;
            for (call, out) in asked.iter().zip(outputs) {
                let msg = ChatMessage::tool_result(call.id.clone(), out.for_model());
                req.messages.push(msg.clone());
                transcript.push(msg);
            }
        }
    }

    /// The outputs of one answer's calls, in order: checked and approved one by one, then
    /// run together.
    async fn run_calls(
        &self,
        asked: &[ToolCall],
        malformed: &mut usize,
    ) -> Result<Vec<ToolOutput>, ToolError> {
        enum Plan {
            Done(ToolOutput),
            Run(serde_json::Map<String, serde_json::Value>),
        }
        let mut plans = Vec::with_capacity(asked.len());
        for call in asked {
            let name = call.function.name.as_str();
            let args = call.function.arguments.as_str();
            if let Some(o) = self.observer {
                o.call(name, args);
            }
            let plan = match self.toolbox.check(name, args) {
                Err(bad) => {
                    *malformed += 1;
                    if *malformed > MALFORMED_RETRIES {
                        return Err(ToolError::MalformedArguments {
                            name: name.to_string(),
                            count: *malformed,
                            message: bad.0,
                        });
                    }
                    Plan::Done(ToolOutput::error(bad.0))
                }
                Ok(map) => {
                    let destructive = self.toolbox.info(name).is_some_and(|i| i.destructive);
                    let ask = match self.approval {
                        Approval::Never => false,
                        Approval::Destructive => destructive,
                        Approval::Always => true,
                    };
                    match (ask, self.approver) {
                        (true, Some(a)) if !a.approve(name, args, destructive) => Plan::Done(
                            ToolOutput::error(format!("the user declined the call to `{name}`")),
                        ),
                        _ => Plan::Run(map),
                    }
                }
            };
            plans.push(plan);
        }
        let runs = asked.iter().zip(plans).map(|(call, plan)| async move {
            match plan {
                Plan::Done(out) => Ok(out),
                Plan::Run(map) => self.toolbox.call(&call.function.name, map).await,
            }
        });
        let outputs: Vec<ToolOutput> = futures::future::join_all(runs)
            .await
            .into_iter()
            .collect::<Result<_, _>>()?;
        if let Some(o) = self.observer {
            for (call, out) in asked.iter().zip(&outputs) {
                o.result(&call.function.name, out);
            }
        }
        Ok(outputs)
    }
}
