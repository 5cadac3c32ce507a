//! `llmkit sessions list|show|export|delete`: stored conversations.

use anyhow::Result;
use llmkit_store::{Message, Session, Store};

use crate::app::Ctx;
use crate::cli::{ExportFormat, SessionsAction, SessionsArgs};
use crate::error::CliError;
use crate::output;

pub(crate) fn run(ctx: &Ctx, args: SessionsArgs) -> Result<()> {
    let store = ctx.store()?;
    match args.action.unwrap_or(SessionsAction::List { json: false }) {
        SessionsAction::List { json } => list(&store, json),
        SessionsAction::Show { name, json } => {
            let s = store.get_session(&name)?;
            if json {
                return output::json(&store.session_json(&s.id)?);
            }
            let messages = store.messages(&s.id)?;
            output::write(&transcript(&s, &messages))
        }
        SessionsAction::Export {
            name,
            format,
            output: file,
        } => {
            let s = store.get_session(&name)?;
            let text = match format {
                ExportFormat::Json => {
                    serde_json::to_string_pretty(&store.session_json(&s.id)?)? + "\n"
                }
                ExportFormat::Md => markdown(&store, &s, &store.messages(&s.id)?),
            };
            match file {
                None => output::write(&text),
                Some(path) => std::fs::write(&path, text).map_err(|e| {
                    CliError::failure(
                        format!("cannot write {}: {e}", path.display()),
                        Some("check that the directory exists and is writable".into()),
                    )
                    .into()
                }),
            }
        }
        SessionsAction::Delete { name } => {
            let s = store.get_session(&name)?;
            store.delete_session(&s.id)?;
            output::line(&format!("deleted session {}", label(&s)))
        }
    }
}

fn list(store: &Store, json: bool) -> Result<()> {
    let sessions = store.list_sessions()?;
    if json {
        return output::json(&sessions);
    }
    if sessions.is_empty() {
        return output::line("no sessions yet (start one with `llmkit chat -s NAME`)");
    }
    for s in &sessions {
        let first = store
            .messages(&s.session.id)
            .ok()
            .and_then(|m| m.into_iter().find(|m| m.role == "user"))
            .map(|m| preview(&m.content))
            .unwrap_or_default();
        output::line(&format!(
            "{}  {:<16}  {:<4}  {:>3} msgs  {}  {}",
            s.session.id,
            s.session.name.as_deref().unwrap_or("-"),
            s.session.kind,
            s.messages,
            store.local_datetime(s.session.updated),
            first
        ))?;
    }
    Ok(())
}

/// `name (id)` or just the id.
pub(crate) fn label(s: &Session) -> String {
    match &s.name {
        Some(n) => format!("{n} ({})", s.id),
        None => s.id.clone(),
    }
}

fn preview(text: &str) -> String {
    let one_line: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut out: String = one_line.chars().take(48).collect();
    if one_line.chars().count() > 48 {
        out.push('…');
    }
    out
}

/// Plain-text transcript for `sessions show`.
fn transcript(s: &Session, messages: &[Message]) -> String {
    let mut out = String::new();
    if let Some(sys) = &s.system {
        out.push_str(&format!("system: {sys}\n\n"));
    }
    if let Some(sum) = &s.summary {
        out.push_str(&format!("(summary of earlier turns: {sum})\n\n"));
    }
    for m in messages {
        out.push_str(&format!("{}: {}\n\n", m.role, m.content.trim_end()));
    }
    out
}

fn markdown(store: &Store, s: &Session, messages: &[Message]) -> String {
    let mut out = format!("# {}\n\n", s.name.as_deref().unwrap_or(&s.id));
    out.push_str(&format!(
        "- id: `{}`\n- model: {}\n- started: {}\n\n",
        s.id,
        s.model.as_deref().unwrap_or("-"),
        store.local_datetime(s.created)
    ));
    if let Some(sys) = &s.system {
        out.push_str(&format!("**System:** {sys}\n\n"));
    }
    for m in messages {
        let who = match m.role.as_str() {
            "user" => "User",
            "assistant" => "Assistant",
            other => other,
        };
        out.push_str(&format!("## {who}\n\n{}\n\n", m.content.trim_end()));
    }
    out
}
