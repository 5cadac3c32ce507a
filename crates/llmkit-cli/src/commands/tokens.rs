//! `llmkit tokens`: offline token count, context-window fit and estimated input cost.

use anyhow::Result;
use serde_json::json;

use llmkit_tasks::attachment::Kind;
use llmkit_types::ContentPart;

use crate::app::Ctx;
use crate::cli::TokensArgs;
use crate::commands::attach;
use crate::error::CliError;
use crate::settings::ModelChoice;
use crate::{input, output};

pub(crate) async fn run(ctx: &Ctx, args: TokensArgs) -> Result<()> {
    let attachments = args
        .attach
        .iter()
        .map(|a| attach::load(a))
        .collect::<Result<Vec<_>, _>>()?;
    let text = match &args.file {
        Some(p) => input::read_text_file(p)?,
        None if !attachments.is_empty() && !input::stdin_is_piped() => String::new(),
        None => {
            if !input::stdin_is_piped() {
                return Err(crate::error::CliError::usage(
                    "no input given",
                    "pass a FILE, or pipe text on stdin: `cat notes.txt | llmkit tokens`",
                )
                .into());
            }
            input::read_stdin()?
        }
    };
    let (choice, _) = ctx.settings.choose_model(args.model.as_deref());
    let mut images = 0u64;
    let (model, encoding, tokens, window, cost) = match choice {
        ModelChoice::Remote(model) => {
            let enc = llmkit_client::encoding_for_model(&model);
            let detail = args.image_detail.map(attach::Detail::wire);
            let mut tokens = llmkit_client::count_tokens(enc, &text) as u64;
            for a in &attachments {
                match a.kind() {
                    Kind::Image(_) => {
                        images +=
                            llmkit_client::image_tokens(&model, a.image_size(), detail.as_ref());
                    }
                    Kind::Text => {
                        if let ContentPart::Text { text } = a.to_part(None) {
                            tokens += llmkit_client::count_tokens(enc, &text) as u64;
                        }
                    }
                    Kind::Pdf | Kind::Audio(_) => {
                        return Err(CliError::usage(
                            format!(
                                "{} is {}: its tokens are known only once the server reads it",
                                a.name(),
                                a.kind().describe()
                            ),
                            "count a PDF's text with `pdftotext FILE - | llmkit tokens`",
                        )
                        .into());
                    }
                }
            }
            let tokens = tokens + images;
            let info = ctx.settings.models.info(&model);
            let window = info.map(|i| u64::from(i.context_window));
            let cost = info.map(|i| i.cost_of(tokens, 0, 0, false));
            (model, enc.name().to_string(), tokens, window, cost)
        }
        ModelChoice::Local(spec) => {
            if attachments.iter().any(|a| a.kind() != Kind::Text) {
                return Err(CliError::usage(
                    "the embedded local model reads text only",
                    "count images for an API model: llmkit tokens -m gpt-4o-mini -a FILE",
                )
                .into());
            }
            let text = attachments.iter().fold(text.clone(), |mut t, a| {
                if let ContentPart::Text { text } = a.to_part(None) {
                    t.push('\n');
                    t.push_str(&text);
                }
                t
            });
            let m = ctx.load_local(&spec).await?;
            let tokens = m.count_tokens(&text)? as u64;
            let name = format!("local:{}", m.name());
            (
                name.clone(),
                name,
                tokens,
                Some(m.context_window() as u64),
                Some(0.0),
            )
        }
    };
    let fits = window.map(|w| tokens <= w);
    if args.json {
        return output::json(&json!({
            "tokens": tokens,
            "encoding": encoding,
            "model": model,
            "context_window": window,
            "fits": fits,
            "estimated_input_cost_usd": cost,
            "characters": text.chars().count(),
            "image_tokens": images,
        }));
    }
    output::line(&format!("tokens:          {tokens}"))?;
    if images > 0 {
        output::line(&format!("of which images: {images}"))?;
    }
    output::line(&format!("encoding:        {encoding}"))?;
    output::line(&format!("model:           {model}"))?;
    match window {
        Some(w) => {
            let verdict = if tokens <= w { "fits" } else { "does NOT fit" };
            output::line(&format!(
                "context window:  {w} ({verdict}; {:.1}% used)",
                tokens as f64 * 100.0 / w.max(1) as f64
            ))?;
        }
        None => output::line(
            "context window:  unknown for this model (add it under [models] in the config)",
        )?,
    }
    match cost {
        Some(c) => output::line(&format!("input cost:      ${c:.6}"))?,
        None => output::line("input cost:      unknown for this model")?,
    }
    Ok(())
}
