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
use llmkit_types::{ChatCompletionRequest, ChatMessage};
use tokio::io::AsyncBufReadExt;

use crate::accounting::{store, store_error};
use crate::app::{Ctx, notice};
use crate::cli::{ChatArgs, ModelArgs};
use crate::commands::kb::grounded::{Prepared, TurnGuard};
use crate::commands::request::{apply_sampling, stop_of};
use crate::commands::roles;
use crate::commands::sessions::label;
use crate::output;
use crate::settings::ContextStrategy;

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
Multi-line input: end a line with \\ to continue it, or wrap lines in \"\"\".
Ctrl-C stops a reply without leaving.";

pub async fn run(ctx: &Ctx, args: ChatArgs) -> Result<()> {
    let store = store(ctx)?;
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
    let mut session = match &args.session {
        Some(name) => match store.find_session(name).map_err(store_error)? {
            Some(s) => s,
            None => store
                .create_session(Some(name), "chat", None, system.as_deref())
                .map_err(store_error)?,
        },
        None => store
            .create_session(None, "chat", None, system.as_deref())
            .map_err(store_error)?,
    };
    if system.is_some() && session.system != system {
        session.system = system;
    }
    let model_flag = margs.model.clone().or_else(|| session.model.clone());
    let opened = ctx.open_chat(model_flag.as_deref()).await?;
    session.model = Some(opened.model.clone());
    store.update_session(&session).map_err(store_error)?;
    let pipe = ctx.pipeline_in_session(opened.backend, "chat", Some(session.id.clone()))?;
    let mut chat = Chat {
        ctx,
        store,
        session,
        margs,
        pipe,
        model: opened.model,
        interactive: std::io::stdin().is_terminal(),
        guard,
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
}

/// What a line of input asks for.
enum Flow {
    Continue,
    Exit,
}

impl Chat<'_> {
    async fn repl(&mut self) -> Result<()> {
        let mut rl = rustyline::DefaultEditor::new()?;
        let history = self.ctx.settings.store_path.with_file_name("chat_history");
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
        let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
        let mut joiner = LineJoiner::default();
        while let Some(line) = lines.next_line().await? {
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
        self.store
            .add_message(&self.session.id, "user", text)
            .map_err(store_error)?;
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
                self.pipe = self.ctx.pipeline_in_session(
                    opened.backend,
                    "chat",
                    Some(self.session.id.clone()),
                )?;
                self.model = opened.model.clone();
                self.session.model = Some(opened.model);
                self.save()?;
                notice(&format!("model: {}", self.model));
            }
            "model" => notice(&format!("model: {}", self.model)),
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
                self.store
                    .rename_session(&self.session.id, arg)
                    .map_err(store_error)?;
                self.session.name = Some(arg.to_string());
                notice(&format!(
                    "saved as `{arg}` (resume with `llmkit chat -s {arg}`)"
                ));
            }
            "load" if !arg.is_empty() => {
                let s = self.store.get_session(arg).map_err(store_error)?;
                if let Some(m) = s.model.clone().filter(|m| *m != self.model) {
                    let opened = self.ctx.open_chat(Some(&m)).await?;
                    self.model = opened.model;
                    self.pipe =
                        self.ctx
                            .pipeline_in_session(opened.backend, "chat", Some(s.id.clone()))?;
                } else {
                    self.pipe = self.ctx.pipeline_in_session(
                        self.pipe.backend().clone(),
                        "chat",
                        Some(s.id.clone()),
                    )?;
                }
                let n = self.store.messages(&s.id).map_err(store_error)?.len();
                notice(&format!("loaded {} ({n} messages)", label(&s)));
                self.session = s;
            }
            "clear" => {
                self.store
                    .clear_session(&self.session.id)
                    .map_err(store_error)?;
                self.session.summary = None;
                self.session.context_from = 0;
                notice("cleared");
            }
            "retry" => {
                let messages = self.store.messages(&self.session.id).map_err(store_error)?;
                let Some(last_user) = messages.iter().rev().find(|m| m.role == "user") else {
                    notice("nothing to retry");
                    return Ok(Flow::Continue);
                };
                self.store
                    .truncate_messages(&self.session.id, last_user.id + 1)
                    .map_err(store_error)?;
                self.reply().await?;
            }
            "tokens" => {
                let history = self.store.messages(&self.session.id).map_err(store_error)?;
                let msgs = compose(
                    &self.session,
                    &in_context(&history, self.session.context_from),
                );
                let n = llmkit_client::count_chat_tokens(&self.model, &msgs);
                let window = self
                    .ctx
                    .settings
                    .model_info(&self.model)
                    .map_or_else(|| "unknown".to_string(), |i| i.context_window.to_string());
                output::line(&format!("{n} tokens in context (window: {window})"))?;
            }
            "cost" => {
                let session = self
                    .store
                    .session_cost(&self.session.id)
                    .map_err(store_error)?;
                let (today, month) = self.store.spent_today_and_month().map_err(store_error)?;
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
            .map_err(store_error)
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
                        .map_err(store_error);
                }
            }
        }
        let mut req = ChatCompletionRequest::new(self.model.clone(), messages);
        req = apply_sampling(req, &self.margs)?;
        let mut stream = self.pipe.chat_stream(&req).await?;
        let mut text = String::new();
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
            self.store
                .add_message(&self.session.id, "assistant", &text)
                .map_err(store_error)?;
        }
        Ok(())
    }
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

/// Messages still in the context (from `context_from` on), never starting with an answer.
fn in_context(history: &[Message], context_from: i64) -> Vec<Message> {
    let mut v: Vec<Message> = history
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
fn compose(session: &Session, turns: &[Message]) -> Vec<ChatMessage> {
    let mut out = Vec::with_capacity(turns.len() + 2);
    if let Some(s) = &session.system {
        out.push(ChatMessage::system(s.clone()));
    }
    if let Some(sum) = &session.summary {
        out.push(ChatMessage::system(format!(
            "Summary of the earlier conversation: {sum}"
        )));
    }
    for m in turns {
        out.push(if m.role == "assistant" {
            ChatMessage::assistant(m.content.clone())
        } else {
            ChatMessage::user(m.content.clone())
        });
    }
    out
}

static TRIM_REPORTED: AtomicBool = AtomicBool::new(false);

/// The session's messages fitted into the model's window (with `reserve` output tokens):
/// the system prompt is always kept; older turns are dropped or summarised, as configured,
/// and the session remembers where its context now starts.
pub(crate) async fn fit_history(
    ctx: &Ctx,
    pipe: &Pipeline,
    store: &Store,
    session: &mut Session,
    model: &str,
    reserve: u32,
) -> Result<Vec<ChatMessage>> {
    let history = store.messages(&session.id).map_err(store_error)?;
    let mut turns = in_context(&history, session.context_from);
    let Some(window) = ctx
        .settings
        .model_info(model)
        .map(|i| i.context_window)
        .or_else(|| pipe.backend().context_window())
        .map(u64::from)
    else {
        return Ok(compose(session, &turns));
    };
    let limit = window.saturating_sub(u64::from(reserve));
    let fits = |s: &Session, t: &[Message]| {
        pipe.backend().count_chat_tokens(model, &compose(s, t)) as u64 <= limit
    };
    let mut dropped = 0usize;
    let mut summarised = 0usize;
    while !fits(session, &turns) && turns.len() > 1 {
        let strategy = ctx.settings.context_strategy;
        let cut = match strategy {
            ContextStrategy::Drop => 1,
            ContextStrategy::Summarize => (turns.len() / 2).max(1),
        };
        let cut = cut.min(turns.len() - 1);
        let mut done = false;
        if strategy == ContextStrategy::Summarize
            && let Ok(summary) =
                summarise(pipe, model, session.summary.as_deref(), &turns[..cut]).await
        {
            session.summary = Some(summary);
            summarised += cut;
            done = true;
        }
        if !done {
            dropped += cut;
        }
        turns.drain(..cut);
        while turns.len() > 1 && turns[0].role != "user" {
            turns.remove(0);
            dropped += 1;
        }
    }
    if dropped + summarised > 0 {
        session.context_from = turns.first().map_or(session.context_from, |m| m.id);
        store.update_session(session).map_err(store_error)?;
        if !TRIM_REPORTED.swap(true, Ordering::Relaxed) {
            let what = if summarised > 0 {
                format!("summarised the oldest {summarised} messages")
            } else {
                format!("dropped the oldest {dropped} messages")
            };
            notice(&format!(
                "note: the conversation exceeds {model}'s context window ({window} tokens): {what}; the system prompt is kept"
            ));
        }
    }
    Ok(compose(session, &turns))
}

/// Folds `turns` (and the previous summary) into a new running summary.
async fn summarise(
    pipe: &Pipeline,
    model: &str,
    previous: Option<&str>,
    turns: &[Message],
) -> Result<String> {
    let mut transcript = String::new();
    if let Some(p) = previous {
        transcript.push_str(&format!("Earlier summary: {p}\n\n"));
    }
    for m in turns {
        transcript.push_str(&format!("{}: {}\n", m.role, m.content));
    }
    let req = ChatCompletionRequest::new(
        model.to_string(),
        vec![
            ChatMessage::system(
                "Summarise this conversation in a few sentences for your own later reference. \
                 Keep facts, names, numbers, decisions and open questions.",
            ),
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

    #[test]
    fn context_never_starts_with_an_answer() {
        let m = |id, role: &str| Message {
            id,
            role: role.into(),
            content: "x".into(),
            created: 0.0,
        };
        let h = vec![m(1, "user"), m(2, "assistant"), m(3, "user")];
        assert_eq!(in_context(&h, 2).len(), 1);
        assert_eq!(in_context(&h, 0).len(), 3);
    }
}
