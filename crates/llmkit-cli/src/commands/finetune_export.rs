//! `llmkit finetune from-sessions`: stored chat sessions (one example per session: its
//! system prompt, then its turns) or a saved eval run's passed items, to chat fine-tuning
//! JSONL checked by the validator.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use llmkit_store::{Message, Session};
use serde_json::{Value, json};

use crate::app::{Ctx, notice};
use crate::commands::finetune::{check_file, findings_text};
use crate::error::CliError;

#[derive(Debug, Args)]
pub(crate) struct FromSessionsArgs {
    /// Sessions to export, by name or id.
    #[arg(value_name = "NAME")]
    pub names: Vec<String>,
    /// Export every stored session.
    #[arg(long, conflicts_with = "names")]
    pub all: bool,
    /// Export the items of a saved eval run that passed instead (an id from `llmkit eval
    /// list`, or a run JSON file): the prompt each item was asked and its passing answer.
    #[arg(long, value_name = "RUN", conflicts_with_all = ["names", "all"])]
    pub from_eval: Option<String>,
    /// With --from-eval: only this variant's items.
    #[arg(long, value_name = "NAME", requires = "from_eval")]
    pub variant: Option<String>,
    /// With --from-eval: what passing means per item, such as `rouge_l>=0.5` or `judge>=4`
    /// (repeatable; default: every pass/fail metric of the run is 1).
    #[arg(long, value_name = "METRIC>=VALUE", requires = "from_eval")]
    pub pass: Vec<String>,
    /// The training JSONL to write.
    #[arg(short, long, value_name = "FILE")]
    pub output: PathBuf,
    /// The system prompt of sessions that have none.
    #[arg(short, long, value_name = "TEXT")]
    pub system: Option<String>,
    /// The model to count tokens for in the check after writing.
    #[arg(short, long, default_value = "gpt-4o-mini")]
    pub model: String,
}

pub(super) fn from_sessions(ctx: &Ctx, a: &FromSessionsArgs) -> Result<()> {
    if let Some(run) = &a.from_eval {
        return from_eval(ctx, a, run);
    }
    if a.names.is_empty() && !a.all {
        return Err(CliError::usage(
            "name the sessions to export, pass --all, or export an eval run with --from-eval RUN",
            "`llmkit sessions list` shows the stored sessions; `llmkit eval list` the saved runs",
        )
        .into());
    }
    let store = ctx.store()?;
    let sessions: Vec<Session> = if a.all {
        store
            .list_sessions()?
            .into_iter()
            .map(|s| s.session)
            .collect()
    } else {
        let mut found = Vec::new();
        for n in &a.names {
            let s = store.find_session(n)?.ok_or_else(|| {
                CliError::failure(
                    format!("no session named `{n}`"),
                    Some("`llmkit sessions list` shows the stored sessions".into()),
                )
            })?;
            found.push(s);
        }
        found
    };
    let mut lines = String::new();
    let (mut written, mut skipped) = (0usize, 0usize);
    for s in &sessions {
        let messages = store.messages(&s.id)?;
        match example(s, &messages, a.system.as_deref()) {
            Some(v) => {
                lines.push_str(&v.to_string());
                lines.push('\n');
                written += 1;
            }
            None => {
                skipped += 1;
                notice(&format!(
                    "skipped session {}: it has no assistant reply",
                    s.name.as_deref().unwrap_or(&s.id)
                ));
            }
        }
    }
    write_and_check(a, &lines)?;
    notice(&format!(
        "wrote {written} example(s) to {} ({skipped} session(s) skipped)",
        a.output.display()
    ));
    report(a)
}

/// `--from-eval RUN`: the run's passed items as examples.
fn from_eval(ctx: &Ctx, a: &FromSessionsArgs, run: &str) -> Result<()> {
    let record = crate::commands::eval::load_run(ctx, run)?;
    let pass = a
        .pass
        .iter()
        .map(|p| llmkit_eval::Threshold::parse(p))
        .collect::<Result<Vec<_>, _>>()?;
    let opts = llmkit_eval::ExportOptions {
        variant: a.variant.clone(),
        pass,
        system: a.system.clone(),
    };
    let out = llmkit_eval::passed_examples(&record, &opts)?;
    if out.examples.is_empty() {
        return Err(CliError::failure(
            format!(
                "no item of run {} passed ({} looked at); nothing was written",
                record.id, out.items
            ),
            Some("loosen --pass, or choose another run or --variant".into()),
        )
        .into());
    }
    let mut lines = String::new();
    for e in &out.examples {
        lines.push_str(&e.to_string());
        lines.push('\n');
    }
    write_and_check(a, &lines)?;
    notice(&format!(
        "wrote {} example(s) to {} from run {}: {} of {} item(s) passed{}",
        out.examples.len(),
        a.output.display(),
        record.id,
        out.passed,
        out.items,
        if out.passed > out.examples.len() {
            format!(", {} repeat(s) dropped", out.passed - out.examples.len())
        } else {
            String::new()
        }
    ));
    report(a)
}

fn write_and_check(a: &FromSessionsArgs, lines: &str) -> Result<()> {
    let write = std::fs::File::create(&a.output).and_then(|mut f| {
        f.write_all(lines.as_bytes())?;
        f.sync_all()
    });
    write.map_err(|e| {
        CliError::failure(
            format!("cannot write {}: {e}", a.output.display()),
            Some("choose a writable path with -o".into()),
        )
    })?;
    Ok(())
}

/// Runs the validator over what was written and prints its findings.
fn report(a: &FromSessionsArgs) -> Result<()> {
    let report = check_file(&a.output, &a.model, 65_536)?;
    let findings = findings_text(&a.output, &report);
    if !findings.is_empty() {
        eprint!("{findings}");
    }
    Ok(())
}

/// One training example from a session, `None` when it has no assistant message.
fn example(s: &Session, messages: &[Message], default_system: Option<&str>) -> Option<Value> {
    let mut out = Vec::new();
    if let Some(sys) = s
        .system
        .as_deref()
        .or(default_system)
        .filter(|t| !t.is_empty())
    {
        out.push(json!({"role": "system", "content": sys}));
    }
    let mut has_assistant = false;
    for m in messages {
        if !matches!(m.role.as_str(), "user" | "assistant" | "system") || m.content.is_empty() {
            continue;
        }
        has_assistant |= m.role == "assistant";
        out.push(json!({"role": m.role, "content": m.content}));
    }
    // A trailing user turn has no answer to learn from.
    while out.last().is_some_and(|m| m["role"] != "assistant") {
        out.pop();
    }
    has_assistant.then(|| json!({"messages": out}))
}
