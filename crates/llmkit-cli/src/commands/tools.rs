//! The tool flags (`--tool`, `--tools`, `--mcp`, `--mcp-url`, `--max-tool-calls`,
//! `--approve`, `--tools-debug`), shared by the commands that call tools: they become a
//! `llmkit_tools::Toolbox`, a terminal approver and a debug printer for the tool loop.

use std::io::{BufRead, IsTerminal, Write};
use std::time::Duration;

use anyhow::Result;
use clap::Args;
use llmkit_client::Pipeline;
use llmkit_tools::{Approval, Approve, LoopResult, Observe, ToolLoop, ToolOutput, Toolbox};
use llmkit_types::{ChatCompletionRequest, ChatMessage, ToolChoice};

use crate::app::{Ctx, notice};
use crate::error::CliError;
use crate::input;

/// How long an MCP server may take to start and list its tools (`npx` may install it first).
const MCP_CONNECT_TIMEOUT: Duration = Duration::from_secs(120);
/// How long one MCP tool call may take.
const MCP_CALL_TIMEOUT: Duration = Duration::from_secs(60);
/// The most of a tool result `--tools-debug` prints.
const DEBUG_CHARS: usize = 400;

/// The tool loop as the way a task command sends its requests (`summarize --tool ...`):
/// each of the task's requests may call tools before it is answered.
pub(crate) struct ToolStep {
    pub toolbox: Toolbox,
    pub args: ToolArgs,
    pub interactive: bool,
}

impl llmkit_tasks::ChatStep for ToolStep {
    fn chat<'a>(
        &'a self,
        pipeline: &'a Pipeline,
        req: ChatCompletionRequest,
    ) -> futures::future::BoxFuture<'a, Result<llmkit_client::ChatResult, llmkit_tasks::TaskError>>
    {
        Box::pin(async move {
            // A task keeps no conversation: the tool turns live only in this request.
            let mut transcript = Vec::new();
            let done = run(
                pipeline,
                &self.toolbox,
                &self.args,
                self.interactive,
                req,
                &mut transcript,
            )
            .await;
            done.map(|d| d.result).map_err(|e| {
                let typed = crate::error::typed(&e);
                llmkit_tasks::TaskError::Step {
                    message: typed
                        .as_ref()
                        .map_or_else(|| format!("{e:#}"), |c| c.message.clone()),
                    hint: typed.and_then(|c| c.hint),
                }
            })
        })
    }
}

/// Tools the model may call.
#[derive(Debug, Clone, Default, Args)]
pub(crate) struct ToolArgs {
    /// A tool backed by a command: NAME=COMMAND (the arguments arrive as JSON on stdin,
    /// stdout is the result). Repeatable.
    #[arg(long = "tool", value_name = "NAME=COMMAND")]
    pub tools: Vec<String>,
    /// A tools file of `[tools.NAME]` tables (command, description, parameters, timeout_secs).
    #[arg(long = "tools", value_name = "FILE")]
    pub tools_file: Option<std::path::PathBuf>,
    /// An MCP server over stdio ("COMMAND ARGS"), or the name of a `[mcp.NAME]` table in the
    /// config file. Repeatable.
    #[arg(long = "mcp", value_name = "COMMAND|NAME")]
    pub mcp: Vec<String>,
    /// An MCP server over streamable HTTP. Repeatable.
    #[arg(long = "mcp-url", value_name = "URL")]
    pub mcp_url: Vec<String>,
    /// The most tool calls one answer may make.
    #[arg(long, value_name = "N", default_value_t = llmkit_tools::DEFAULT_MAX_CALLS,
          value_parser = max_calls)]
    pub max_tool_calls: usize,
    /// Whether the model must call a tool: `auto` (default), `required`, `none`, or a tool's
    /// name.
    #[arg(long, value_name = "auto|required|none|NAME")]
    pub tool_choice: Option<String>,
    /// Ask before each tool call.
    #[arg(long)]
    pub approve: bool,
    /// Show each tool call and its result on stderr.
    #[arg(long)]
    pub tools_debug: bool,
}

fn max_calls(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if (1..=1000).contains(&n) => Ok(n),
        _ => Err(format!(
            "`{s}` is not a number of tool calls from 1 to 1000"
        )),
    }
}

impl ToolArgs {
    pub(crate) fn any(&self) -> bool {
        !self.tools.is_empty()
            || self.tools_file.is_some()
            || !self.mcp.is_empty()
            || !self.mcp_url.is_empty()
    }
}

/// The toolbox the flags name: definitions parsed, commands checked, MCP servers started.
pub(crate) async fn open(ctx: &Ctx, args: &ToolArgs) -> Result<Toolbox> {
    let mut toolbox = Toolbox::new();
    if let Some(path) = &args.tools_file {
        let text = input::read_text_file(path)?;
        for spec in llmkit_tools::spec::parse_tools_file(&text, &path.display().to_string())? {
            toolbox.add_command(spec).await?;
        }
    }
    for flag in &args.tools {
        toolbox
            .add_command(llmkit_tools::spec::parse_tool_flag(flag)?)
            .await?;
    }
    for m in &args.mcp {
        let spec = match ctx.settings.tools.mcp.get(m.trim()) {
            Some(named) => named.clone(),
            None => llmkit_tools::spec::parse_mcp_command(m)?,
        };
        toolbox
            .add_mcp(&spec, MCP_CONNECT_TIMEOUT, MCP_CALL_TIMEOUT)
            .await?;
    }
    for url in &args.mcp_url {
        let spec = llmkit_tools::spec::parse_mcp_url(url)?;
        toolbox
            .add_mcp(&spec, MCP_CONNECT_TIMEOUT, MCP_CALL_TIMEOUT)
            .await?;
    }
    Ok(toolbox)
}

/// Runs `req` through the tool loop; the tool turns go to `transcript` as they happen.
/// `interactive` (the REPL) asks before MCP tools marked destructive even without
/// `--approve`.
pub(crate) async fn run(
    pipe: &Pipeline,
    toolbox: &Toolbox,
    args: &ToolArgs,
    interactive: bool,
    req: ChatCompletionRequest,
    transcript: &mut Vec<ChatMessage>,
) -> Result<LoopResult> {
    if req.n.is_some_and(|n| n > 1) {
        return Err(CliError::usage(
            "tools cannot be combined with -n",
            "ask for one answer when the model may call tools",
        )
        .into());
    }
    let mut req = req;
    if let Some(choice) = &args.tool_choice {
        req.tool_choice = Some(match choice.as_str() {
            "auto" | "required" | "none" => ToolChoice::Mode(choice.clone()),
            name if toolbox.info(name).is_some() => ToolChoice::function(name),
            other => {
                return Err(CliError::usage(
                    format!("--tool-choice {other}: there is no tool of that name"),
                    "use auto, required, none, or the name of one of the tools",
                )
                .into());
            }
        });
    }
    let approval = match (args.approve, interactive) {
        (true, _) => Approval::Always,
        (false, true) => Approval::Destructive,
        (false, false) => Approval::Never,
    };
    let tool_loop = ToolLoop {
        toolbox,
        max_calls: args.max_tool_calls,
        approval,
        approver: Some(&TerminalApprover),
        observer: args.tools_debug.then_some(&DebugPrinter as &dyn Observe),
    };
    Ok(tool_loop.run(pipe, req, transcript).await?)
}

/// Asks on the terminal (`/dev/tty`, so that piped stdin stays the prompt's); with no
/// terminal, declines.
struct TerminalApprover;

impl Approve for TerminalApprover {
    fn approve(&self, tool: &str, arguments: &str, destructive: bool) -> bool {
        let warn = if destructive {
            " (it may change things)"
        } else {
            ""
        };
        let question = format!("run tool `{tool}`{warn} with {arguments}? [y/N] ");
        let answer = match std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/tty")
        {
            Ok(tty) => {
                let mut w = &tty;
                let _ = w.write_all(question.as_bytes()).and_then(|()| w.flush());
                let mut line = String::new();
                let _ = std::io::BufReader::new(&tty).read_line(&mut line);
                line
            }
            Err(_) if std::io::stdin().is_terminal() => {
                let _ = write!(std::io::stderr(), "{question}");
                let mut line = String::new();
                let _ = std::io::stdin().lock().read_line(&mut line);
                line
            }
            Err(_) => {
                notice(&format!(
                    "declined tool `{tool}`: there is no terminal to ask on"
                ));
                String::new()
            }
        };
        matches!(answer.trim(), "y" | "Y" | "yes" | "Yes")
    }
}

/// `--tools-debug`: each call and result on stderr.
struct DebugPrinter;

impl Observe for DebugPrinter {
    fn call(&self, tool: &str, arguments: &str) {
        notice(&format!("tool call: {tool} {arguments}"));
    }

    fn result(&self, tool: &str, output: &ToolOutput) {
        let text = output.text.trim();
        let shown: String = text.chars().take(DEBUG_CHARS).collect();
        let more = if shown.len() < text.len() { " …" } else { "" };
        let kind = if output.is_error {
            "tool error"
        } else {
            "tool result"
        };
        notice(&format!("{kind}: {tool}: {shown}{more}"));
    }
}
