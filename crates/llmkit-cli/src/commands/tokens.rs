//! `llmkit tokens`: offline token count, context-window fit and estimated input cost.

use anyhow::Result;
use serde_json::json;

use crate::app::Ctx;
use crate::cli::TokensArgs;
use crate::settings::ModelChoice;
use crate::{input, output};

pub(crate) async fn run(ctx: &Ctx, args: TokensArgs) -> Result<()> {
    let text = match &args.file {
        Some(p) => input::read_text_file(p)?,
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
    let (model, encoding, tokens, window, cost) = match choice {
        ModelChoice::Remote(model) => {
            let enc = llmkit_client::encoding_for_model(&model);
            let tokens = llmkit_client::count_tokens(enc, &text) as u64;
            let info = ctx.settings.models.info(&model);
            let window = info.map(|i| u64::from(i.context_window));
            let cost = info.map(|i| i.cost_of(tokens, 0, 0, false));
            (model, enc.name().to_string(), tokens, window, cost)
        }
        ModelChoice::Local(spec) => {
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
        }));
    }
    output::line(&format!("tokens:          {tokens}"))?;
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
