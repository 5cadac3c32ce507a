//! `llmkit chat`: multi-turn conversations stored as sessions. A REPL (rustyline, streamed
//! replies, `/commands`, Ctrl-C stops a reply) on a terminal; one turn per line when stdin
//! is piped. Also the context management `ask -c` shares: fitting history into the window.

use std::io::IsTerminal;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Result;
use futures::StreamExt;
use llmkit_client::{ClientError, Pipeline};
use llmkit_store::{Message, Session, Store};
use llmkit_tasks::conversation::{self, History, Turn, Window};
use llmkit_types::{ChatCompletionRequest, ChatMessage, ContentPart, REASONING_ITEMS_FIELD};
use tokio::io::AsyncBufReadExt;

use crate::app::PipelineSpec;
use crate::app::{Ctx, notice};
use crate::cli::{ChatArgs, ModelArgs};
use crate::commands::kb::grounded::{Prepared, TurnGuard};
use crate::commands::request::{apply_sampling, stop_of};
use crate::commands::sessions::label;
use crate::commands::{attach, roles};
use crate::output;

const HELP: &str = "\
/help            this help
/exit            leave (Ctrl-D too)
/model NAME      switch model
/system TEXT     set the system prompt (empty clears it)
/save NAME       name this session (resume with `llmkit chat -s NAME`)
/load NAME       switch to another session
/clear           forget this session's messages
/retry           answer the last message again
/tokens          tokens in the context sent with the next turn
/cost            spend of this session and in total
/attach FILE|URL attach a file or image to your next message (/attach alone lists them)
/detach          drop the attachments not sent yet
Multi-line input: end a line with \\ to continue it, or wrap lines in \"\"\".
Ctrl-C stops a reply without leaving.";

pub(crate) async fn run(ctx: &Ctx, args: ChatArgs) -> Result<()> {
    let store = ctx.store()?;
    let mut margs = args.model.clone();
    let mut system = args.system.clone();
    let mut kb_args = args.kb.clone();
    if let Some(name) = &args.role {
        let (role, _) = roles::load(ctx, name)?;
        role.apply_defaults(&mut margs);
        if system.is_none() {
            system = Some(role.system_prompt()?);
        }
        if kb_args.kb.is_none() {
            kb_args.kb = role.kb;
        }
    }
    stop_of(&margs)?;
    let guard = TurnGuard::open(ctx, kb_args.kb.as_deref(), &kb_args).await?;
    let toolbox = if args.tools.any() {
        Some(crate::commands::tools::open(ctx, &args.tools).await?)
    } else {
        None
    };
    let mut session = match &args.session {
        Some(name) => match store.find_session(name)? {
            Some(s) => s,
            None => store.create_session(Some(name), "chat", None, system.as_deref())?,
        },
        None => store.create_session(None, "chat", None, system.as_deref())?,
    };
    if system.is_some() && session.system != system {
        session.system = system;
    }
    let model_flag = margs.model.clone().or_else(|| session.model.clone());
    let opened = ctx.open_chat(model_flag.as_deref()).await?;
    // `-a` attaches to the first message; checked before the session is touched.
    let pending = attach::parts(
        ctx,
        &args.attach,
        &args.attach.attach,
        &opened.model,
        &opened.backend,
    )?;
    session.model = Some(opened.model.clone());
    store.update_session(&session)?;
    let pipe = ctx.pipeline(
        opened.backend,
        PipelineSpec::new("chat").in_session(session.id.clone()),
    )?;
    let mut chat = Chat {
        ctx,
        store,
        session,
        margs,
        pipe,
        model: opened.model,
        interactive: std::io::stdin().is_terminal(),
        guard,
        toolbox,
        tool_args: args.tools.clone(),
        attach_args: args.attach.clone(),
        pending,
    };
    if chat.interactive {
        chat.repl().await
    } else {
        chat.piped().await
    }
}

struct Chat<'a> {
    ctx: &'a Ctx,
    store: Arc<Store>,
    session: Session,
    margs: ModelArgs,
    pipe: Pipeline,
    model: String,
    interactive: bool,
    /// `--kb` and `--rules`, applied to every turn.
    guard: Option<TurnGuard>,
    /// The tools the model may call, and the flags of the loop.
    toolbox: Option<llmkit_tools::Toolbox>,
    tool_args: crate::commands::tools::ToolArgs,
    /// `--image-detail` and `--pdf`, for `/attach`.
    attach_args: attach::AttachArgs,
    /// Attachments (`-a`, `/attach`) that go with the next message.
    pending: Vec<ContentPart>,
}

/// What a line of input asks for.
enum Flow {
    Continue,
    Exit,
}

impl Chat<'_> {
    async fn repl(&mut self) -> Result<()> {
        let mut rl = rustyline::DefaultEditor::new()?;
        let history = self.ctx.settings.paths.store.with_file_name("chat_history");
        let _ = rl.load_history(&history);
        notice(&format!(
            "chat session {} with {} (/help for commands, Ctrl-D to leave)",
            label(&self.session),
            self.model
        ));
        let mut joiner = LineJoiner::default();
        loop {
            let prompt = if joiner.pending() { "... " } else { ">>> " };
            let line = tokio::task::block_in_place(|| rl.readline(prompt));
            let line = match line {
                Ok(l) => l,
                Err(rustyline::error::ReadlineError::Interrupted) => {
                    joiner = LineJoiner::default();
                    continue;
                }
                Err(rustyline::error::ReadlineError::Eof) => break,
                Err(e) => return Err(e.into()),
            };
            let Some(text) = joiner.push(&line) else {
                continue;
            };
            if text.trim().is_empty() {
                continue;
            }
            let _ = rl.add_history_entry(text.as_str());
            match self.handle(&text).await {
                Ok(Flow::Exit) => break,
                Ok(Flow::Continue) => {}
                Err(e) => report(&e),
            }
        }
        let _ = rl.save_history(&history);
        Ok(())
    }

    async fn piped(&mut self) -> Result<()> {
        let mut reader = tokio::io::BufReader::new(tokio::io::stdin());
        let mut joiner = LineJoiner::default();
        let mut number = 0;
        loop {
            let mut buf = Vec::new();
            if reader.read_until(b'\n', &mut buf).await? == 0 {
                break;
            }
            number += 1;
            if buf.last() == Some(&b'\n') {
                buf.pop();
                if buf.last() == Some(&b'\r') {
                    buf.pop();
                }
            }
            // Bytes that are not UTF-8 are bad input (exit 2), named by their line.
            let line = crate::input::decode(buf, &format!("stdin line {number}"))?;
            let Some(text) = joiner.push(&line) else {
                continue;
            };
            if text.trim().is_empty() {
                continue;
            }
            if let Flow::Exit = self.handle(&text).await? {
                break;
            }
        }
        Ok(())
    }

    async fn handle(&mut self, text: &str) -> Result<Flow> {
        let trimmed = text.trim();
        if let Some(cmd) = trimmed.strip_prefix('/')
            && !cmd.starts_with('/')
        {
            return self.command(cmd).await;
        }
        if self.pending.is_empty() {
            self.store.add_message(&self.session.id, "user", text)?;
        } else {
            let mut parts = vec![ContentPart::Text {
                text: text.to_string(),
            }];
            parts.append(&mut self.pending);
            self.store
                .add_chat_message(&self.session.id, &ChatMessage::user_parts(parts))?;
        }
        self.reply().await?;
        Ok(Flow::Continue)
    }

    async fn command(&mut self, cmd: &str) -> Result<Flow> {
        let (name, arg) = match cmd.split_once(char::is_whitespace) {
            Some((n, a)) => (n, a.trim()),
            None => (cmd, ""),
        };
        match name {
            "help" | "?" => output::line(HELP)?,
            "exit" | "quit" | "q" => return Ok(Flow::Exit),
            "model" if !arg.is_empty() => {
                let opened = self.ctx.open_chat(Some(arg)).await?;
                self.pipe = self.ctx.pipeline(
                    opened.backend,
                    PipelineSpec::new("chat").in_session(self.session.id.clone()),
                )?;
                self.model = opened.model.clone();
                self.session.model = Some(opened.model);
                self.save()?;
                notice(&format!("model: {}", self.model));
            }
            "model" => notice(&format!("model: {}", self.model)),
            "attach" if !arg.is_empty() => {
                let parts = attach::parts(
                    self.ctx,
                    &self.attach_args,
                    &[arg.to_string()],
                    &self.model,
                    self.pipe.backend(),
                )?;
                self.pending.extend(parts);
                notice(&format!(
                    "attached {arg} ({} waiting for your next message)",
                    self.pending.len()
                ));
            }
            "attach" => notice(&match self.pending.len() {
                0 => "no attachments waiting (/attach FILE|URL adds one)".to_string(),
                n => format!("{n} attachment(s) go with your next message (/detach drops them)"),
            }),
            "detach" => {
                let n = std::mem::take(&mut self.pending).len();
                notice(&format!("dropped {n} attachment(s)"));
            }
            "system" => {
                self.session.system = (!arg.is_empty()).then(|| arg.to_string());
                self.save()?;
                notice(if arg.is_empty() {
                    "system prompt cleared"
                } else {
                    "system prompt set"
                });
            }
            "save" if !arg.is_empty() => {
                self.store.rename_session(&self.session.id, arg)?;
                self.session.name = Some(arg.to_string());
                notice(&format!(
                    "saved as `{arg}` (resume with `llmkit chat -s {arg}`)"
                ));
            }
            "load" if !arg.is_empty() => {
                let s = self.store.get_session(arg)?;
                if let Some(m) = s.model.clone().filter(|m| *m != self.model) {
                    let opened = self.ctx.open_chat(Some(&m)).await?;
                    self.model = opened.model;
                    self.pipe = self.ctx.pipeline(
                        opened.backend,
                        PipelineSpec::new("chat").in_session(s.id.clone()),
                    )?;
                } else {
                    self.pipe = self.ctx.pipeline(
                        self.pipe.backend().clone(),
                        PipelineSpec::new("chat").in_session(s.id.clone()),
                    )?;
                }
                let n = self.store.messages(&s.id)?.len();
                notice(&format!("loaded {} ({n} messages)", label(&s)));
                self.session = s;
            }
            "clear" => {
                self.store.clear_session(&self.session.id)?;
                self.session.summary = None;
                self.session.context_from = 0;
                notice("cleared");
            }
            "retry" => {
                let messages = self.store.messages(&self.session.id)?;
                let Some(last_user) = messages.iter().rev().find(|m| m.role == "user") else {
                    notice("nothing to retry");
                    return Ok(Flow::Continue);
                };
                self.store
                    .truncate_messages(&self.session.id, last_user.id + 1)?;
                self.reply().await?;
            }
            "tokens" => {
                let history = self.store.messages(&self.session.id)?;
                let msgs = conversation::compose(
                    self.session.system.as_deref(),
                    self.session.summary.as_deref(),
                    &conversation::in_context(&turns(&history), self.session.context_from),
                );
                let n = llmkit_client::count_chat_tokens(&self.model, &msgs);
                let window = self
                    .ctx
                    .settings
                    .models
                    .info(&self.model)
                    .map_or_else(|| "unknown".to_string(), |i| i.context_window.to_string());
                output::line(&format!("{n} tokens in context (window: {window})"))?;
            }
            "cost" => {
                let session = self.store.session_cost(&self.session.id)?;
                let (today, month) = self.store.spent_today_and_month()?;
                output::line(&format!(
                    "this session: ${session:.6}; today: ${today:.6}; this month: ${month:.6}"
                ))?;
            }
            _ => notice(&format!("unknown command /{name} (try /help)")),
        }
        Ok(Flow::Continue)
    }

    fn save(&self) -> Result<()> {
        self.store
            .update_session(&self.session)
            .map_err(anyhow::Error::from)
    }

    /// Sends the conversation and streams the answer, which is stored when it ends (or when
    /// Ctrl-C stops it: what arrived so far is kept).
    async fn reply(&mut self) -> Result<()> {
        let reserve = self.margs.max_tokens.unwrap_or(0);
        let messages = fit_history(
            self.ctx,
            &self.pipe,
            &self.store,
            &mut self.session,
            &self.model,
            reserve,
        )
        .await?;
        let mut messages = messages;
        let mut hits = Vec::new();
        if let Some(g) = &self.guard {
            let question = messages.last().map(ChatMessage::text_content);
            match g
                .prepare(&mut messages, &question.unwrap_or_default())
                .await?
            {
                Prepared::Ready(h) => hits = h,
                Prepared::Refused(r) => {
                    output::line(&r.text)?;
                    return self
                        .store
                        .add_message(&self.session.id, "assistant", &r.text)
                        .map(|_| ())
                        .map_err(anyhow::Error::from);
                }
            }
        }
        let mut req = ChatCompletionRequest::new(self.model.clone(), messages);
        req = apply_sampling(req, &self.margs)?;
        if let Some(toolbox) = &self.toolbox {
            return self.reply_with_tools(toolbox, req).await;
        }
        let mut stream = self.pipe.chat_stream(&req).await?;
        let mut text = String::new();
        let mut reasoning: Vec<serde_json::Value> = Vec::new();
        let ctrl_c = tokio::signal::ctrl_c();
        tokio::pin!(ctrl_c);
        let mut interrupted = false;
        loop {
            tokio::select! {
                _ = &mut ctrl_c => {
                    interrupted = true;
                    break;
                }
                item = stream.next() => match item {
                    None => break,
                    Some(Ok(chunk)) => {
                        if let Some(t) = chunk.delta_text() {
                            output::write(t)?;
                            text.push_str(t);
                        }
                        if let Some(serde_json::Value::Array(items)) = chunk
                            .choices
                            .first()
                            .and_then(|c| c.delta.extra.get(REASONING_ITEMS_FIELD))
                        {
                            reasoning.extend(items.iter().cloned());
                        }
                    }
                    Some(Err(e)) => {
                        if !text.is_empty() {
                            output::write("\n")?;
                        }
                        return Err(e.into());
                    }
                },
            }
        }
        drop(stream);
        if !text.ends_with('\n') {
            output::write("\n")?;
        }
        if interrupted {
            notice("[interrupted]");
        }
        if let Some(g) = &self.guard
            && !text.is_empty()
        {
            g.finish(hits, &text)?;
        }
        if !text.is_empty() {
            let reasoning = (!reasoning.is_empty()).then_some(serde_json::Value::Array(reasoning));
            store_reply(&self.store, &self.session.id, &text, reasoning)?;
        }
        Ok(())
    }
}

impl Chat<'_> {
    /// A turn through the tool loop: every tool call and result is stored as it happens,
    /// then the answer. The REPL asks before MCP tools marked destructive.
    async fn reply_with_tools(
        &self,
        toolbox: &llmkit_tools::Toolbox,
        req: ChatCompletionRequest,
    ) -> Result<()> {
        let mut transcript = Vec::new();
        let done = crate::commands::tools::run(
            &self.pipe,
            toolbox,
            &self.tool_args,
            self.interactive,
            req,
            &mut transcript,
        )
        .await;
        for m in &transcript {
            self.store.add_chat_message(&self.session.id, m)?;
        }
        let response = done?.result.response;
        let text = response.text().to_string();
        output::line(text.trim_end())?;
        if !text.is_empty() {
            let reasoning = response
                .choices
                .first()
                .and_then(|c| c.message.extra.get(REASONING_ITEMS_FIELD))
                .cloned();
            store_reply(&self.store, &self.session.id, &text, reasoning)?;
        }
        Ok(())
    }
}

/// Stores an assistant reply, with the encrypted reasoning items that came with it (the
/// Responses API's, sent back on the next turn so that the model keeps its reasoning with
/// nothing stored at the provider).
pub(crate) fn store_reply(
    store: &Store,
    session: &str,
    text: &str,
    reasoning: Option<serde_json::Value>,
) -> Result<()> {
    match reasoning {
        Some(items) => {
            let mut m = ChatMessage::assistant(text);
            m.extra.insert(REASONING_ITEMS_FIELD.into(), items);
            store.add_chat_message(session, &m)?;
        }
        None => {
            store.add_message(session, "assistant", text)?;
        }
    }
    Ok(())
}

fn report(e: &anyhow::Error) {
    let mut hint = None;
    for cause in e.chain() {
        if let Some(c) = cause.downcast_ref::<crate::error::CliError>() {
            hint.clone_from(&c.hint);
        }
        if let Some(c) = cause.downcast_ref::<ClientError>() {
            hint = c.hint();
        }
    }
    notice(&format!("error: {e}"));
    if let Some(h) = hint {
        notice(&format!("hint: {h}"));
    }
}

/// Joins continued lines: a trailing `\` continues a line; `"""` opens and closes a block.
#[derive(Default)]
struct LineJoiner {
    buf: Vec<String>,
    in_block: bool,
}

impl LineJoiner {
    fn pending(&self) -> bool {
        self.in_block || !self.buf.is_empty()
    }

    fn push(&mut self, line: &str) -> Option<String> {
        if line.trim() == "\"\"\"" {
            if self.in_block {
                self.in_block = false;
                return Some(std::mem::take(&mut self.buf).join("\n"));
            }
            self.in_block = true;
            return None;
        }
        if self.in_block {
            self.buf.push(line.to_string());
            return None;
        }
        if let Some(head) = line.strip_suffix('\\') {
            self.buf.push(head.to_string());
            return None;
        }
        self.buf.push(line.to_string());
        Some(std::mem::take(&mut self.buf).join("\n"))
    }
}

/// The stored messages as conversation turns.
fn turns(history: &[Message]) -> Vec<Turn> {
    history
        .iter()
        .map(|m| Turn {
            id: m.id,
            role: m.role.clone(),
            content: m.content.clone(),
            tool_calls: m.tool_calls.clone(),
            tool_call_id: m.tool_call_id.clone(),
            attachments: m.attachments.clone(),
            extra: m.extra.clone(),
        })
        .collect()
}

static TRIM_REPORTED: AtomicBool = AtomicBool::new(false);

/// The session's messages fitted into the model's window (with `reserve` output tokens) by
/// `llmkit_tasks::conversation`; the session remembers where its context now starts and
/// its running summary, and the first trim of the process is reported once.
pub(crate) async fn fit_history(
    ctx: &Ctx,
    pipe: &Pipeline,
    store: &Store,
    session: &mut Session,
    model: &str,
    reserve: u32,
) -> Result<Vec<ChatMessage>> {
    let history = turns(&store.messages(&session.id)?);
    let tokens = ctx
        .settings
        .models
        .info(model)
        .map(|i| i.context_window)
        .or_else(|| pipe.backend().context_window())
        .map(u64::from);
    let window = Window {
        model,
        tokens,
        reserve,
        strategy: ctx.settings.models.context_strategy,
    };
    let templates = llmkit_tasks::Templates::new(Some(crate::commands::tasks::templates_dir(ctx)));
    let fitted = conversation::fit(
        pipe,
        &templates,
        window,
        History {
            system: session.system.as_deref(),
            summary: session.summary.as_deref(),
            context_from: session.context_from,
            turns: &history,
        },
    )
    .await?;
    if fitted.trimmed() {
        session.context_from = fitted.context_from;
        session.summary.clone_from(&fitted.summary);
        store.update_session(session)?;
        if !TRIM_REPORTED.swap(true, Ordering::Relaxed) {
            let what = if fitted.summarised > 0 {
                format!("summarised the oldest {} messages", fitted.summarised)
            } else {
                format!("dropped the oldest {} messages", fitted.dropped)
            };
            let window = tokens.unwrap_or_default();
            notice(&format!(
                "note: the conversation exceeds {model}'s context window ({window} tokens): {what}; the system prompt is kept"
            ));
        }
    }
    Ok(fitted.messages)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_join() {
        let mut j = LineJoiner::default();
        assert_eq!(j.push("one"), Some("one".into()));
        assert_eq!(j.push("two \\"), None);
        assert_eq!(j.push("three"), Some("two \nthree".into()));
        assert_eq!(j.push("\"\"\""), None);
        assert_eq!(j.push("a"), None);
        assert_eq!(j.push("b\\"), None);
        assert_eq!(j.push("\"\"\""), Some("a\nb\\".into()));
    }
}
