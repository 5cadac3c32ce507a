//! `llmkit embed`: turn text into vectors with the local MiniLM model or an API model.

use anyhow::Result;
use llmkit_types::EmbeddingRequest;
use serde_json::json;

use crate::app::Ctx;
use crate::app::PipelineSpec;
use crate::cli::EmbedArgs;
use crate::error::CliError;
use crate::{input, output};

pub(crate) async fn run(ctx: &Ctx, args: EmbedArgs) -> Result<()> {
    let text = match args.input.as_deref() {
        None | Some("-") => {
            if args.input.is_none() && !input::stdin_is_piped() {
                return Err(CliError::usage(
                    "no input given",
                    "pass TEXT, a FILE, or pipe text on stdin",
                )
                .into());
            }
            input::read_stdin()?
        }
        Some(s) => {
            let p = std::path::Path::new(s);
            if p.is_file() {
                input::read_text_file(p)?
            } else {
                s.to_string()
            }
        }
    };
    let texts: Vec<String> = if args.lines {
        text.lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_string)
            .collect()
    } else {
        vec![text.trim().to_string()]
    };
    if texts.iter().all(String::is_empty) {
        return Err(CliError::usage("the input is empty", "pass some text to embed").into());
    }
    let opened = ctx.open_embedding(args.model.as_deref()).await?;
    let req = EmbeddingRequest::new(opened.model.clone(), texts.clone());
    let pipe = ctx.pipeline(opened.backend, PipelineSpec::new("embed"))?;
    let resp = pipe.embeddings(&req).await?;
    let vectors: Vec<Vec<f32>> = resp
        .body
        .data
        .iter()
        .map(|e| {
            e.embedding.to_floats().ok_or_else(|| {
                CliError::failure(
                    "the server sent a malformed base64 embedding",
                    Some("retry, or ask the server for float vectors".to_string()),
                )
            })
        })
        .collect::<Result<_, _>>()?;
    if args.json {
        let items: Vec<_> = texts
            .iter()
            .zip(&vectors)
            .map(|(t, v)| json!({"text": t, "dimensions": v.len(), "embedding": v}))
            .collect();
        return output::json(&json!({
            "model": resp.body.model,
            "usage": resp.body.usage,
            "data": items,
        }));
    }
    for v in &vectors {
        let cells: Vec<String> = v.iter().map(|x| format!("{x:.6}")).collect();
        output::line(&format!("[{}]", cells.join(", ")))?;
    }
    Ok(())
}
