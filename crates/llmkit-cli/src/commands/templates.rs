//! `llmkit templates list|show|edit`: the prompt templates and their user overrides in
//! `$XDG_CONFIG_HOME/llmkit/templates/NAME.j2`.

use anyhow::Result;
use llmkit_tasks::{TemplateSource, Templates};
use serde_json::json;

use crate::app::Ctx;
use crate::cli::{TemplatesAction, TemplatesArgs};
use crate::commands::tasks::templates_dir;
use crate::error::CliError;
use crate::output;

pub(crate) fn run(ctx: &Ctx, args: TemplatesArgs) -> Result<()> {
    let templates = Templates::new(Some(templates_dir(ctx)));
    match args.action {
        TemplatesAction::List { json } => list(&templates, json),
        TemplatesAction::Show { name } => {
            let (text, _) = templates.source(&name)?;
            output::write(&text)?;
            if !text.ends_with('\n') {
                output::write("\n")?;
            }
            Ok(())
        }
        TemplatesAction::Edit { name } => edit(&templates, &name, ctx.settings.editor.as_deref()),
    }
}

fn source_text(s: &TemplateSource) -> String {
    match s {
        TemplateSource::Builtin => "built-in".to_string(),
        TemplateSource::File(p) => p.display().to_string(),
    }
}

fn list(templates: &Templates, as_json: bool) -> Result<()> {
    let all = templates.list();
    if as_json {
        let v: Vec<_> = all
            .iter()
            .map(|t| json!({"name": t.name, "description": t.description, "source": source_text(&t.source)}))
            .collect();
        return output::json(&v);
    }
    let width = all.iter().map(|t| t.name.len()).max().unwrap_or(0);
    for t in &all {
        output::line(&format!(
            "{:width$}  {:10}  {}",
            t.name,
            source_text(&t.source),
            t.description
        ))?;
    }
    Ok(())
}

/// Copies the template to the user directory if needed, then opens `$EDITOR` (or prints
/// the path when no editor is set).
fn edit(templates: &Templates, name: &str, editor: Option<&str>) -> Result<()> {
    let path = templates.ensure_user_copy(name)?;
    let Some(editor) = editor else {
        return output::line(&path.display().to_string());
    };
    // EDITOR may carry arguments ("code --wait").
    let mut parts = editor.split_whitespace();
    let program = parts.next().unwrap_or("vi");
    let status = std::process::Command::new(program)
        .args(parts)
        .arg(&path)
        .status()
        .map_err(|e| {
            CliError::failure(
                format!("cannot start the editor `{editor}`: {e}"),
                Some("set EDITOR to an installed editor".to_string()),
            )
        })?;
    if !status.success() {
        return Err(CliError::failure(
            format!("the editor `{editor}` exited with {status}"),
            Some(format!("the template is at {}", path.display())),
        )
        .into());
    }
    Ok(())
}
