//! `llmkit kb`: create, fill, sync, search and inspect knowledge bases, and the grounded
//! answers of `llmkit ask --kb NAME`.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Result;
use clap::{Args, Subcommand};
use llmkit_kb::{
    ChunkOptions, DocumentState, Hit, Kb, KbError, Loaded, NewChunk, SearchOptions, chunk_document,
    collect_files, load_file,
};
use llmkit_types::{ChatCompletionRequest, EmbeddingRequest, EmbeddingVector};
use serde_json::json;

use crate::app::{Ctx, Opened, notice};
use crate::cli::AskArgs;
use crate::commands::request::apply_sampling;
use crate::error::CliError;
use crate::output;

#[derive(Debug, Args)]
pub struct KbArgs {
    #[command(subcommand)]
    pub action: KbAction,
}

#[derive(Debug, Subcommand)]
pub enum KbAction {
    /// Create a knowledge base, fixed to one embedding model.
    Create {
        name: String,
        /// `local:minilm` (the default without an API key) or an API embedding model.
        #[arg(long, value_name = "MODEL")]
        embedding_model: Option<String>,
    },
    /// List the knowledge bases.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Delete a knowledge base.
    Remove { name: String },
    /// Documents, chunks, model, dimensions and size on disk.
    Stats {
        name: String,
        #[arg(long)]
        json: bool,
    },
    /// Add files or directories (txt, md, html, pdf, csv, jsonl); unchanged files are skipped.
    Add(AddArgs),
    /// Drop documents whose files no longer exist.
    Sync { name: String },
    /// Search: BM25 and vector results fused with reciprocal-rank fusion.
    Search {
        name: String,
        query: String,
        /// Results to show.
        #[arg(short, default_value_t = 5, value_parser = clap::value_parser!(u16).range(1..=100))]
        k: u16,
        /// Re-rank for diversity (maximal marginal relevance).
        #[arg(long)]
        mmr: bool,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Args)]
pub struct AddArgs {
    pub name: String,
    /// Files and directories (walked recursively, honouring .gitignore).
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
    /// For CSV/JSONL: the column or field holding the text (one document per row).
    #[arg(long, value_name = "NAME")]
    pub text_column: Option<String>,
    /// Texts per embedding request.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u16).range(1..=2048))]
    pub batch_size: u16,
}

/// The `ask` flags for grounded answers.
#[derive(Debug, Args, Clone, Default)]
pub struct KbAskArgs {
    /// Answer from this knowledge base only, citing its sources as [n].
    #[arg(long, value_name = "NAME")]
    pub kb: Option<String>,
    /// With --kb: sources to retrieve.
    #[arg(long, value_name = "N", default_value_t = 5, value_parser = clap::value_parser!(u16).range(1..=50))]
    pub top_k: u16,
    /// With --kb: the least cosine similarity of the best source; below it the answer is
    /// "not in the knowledge base" and no model is asked.
    #[arg(long, value_name = "SCORE", default_value_t = 0.3)]
    pub min_score: f32,
    /// With --kb: a file of extra rules for the answer (tone, format, language).
    #[arg(long, value_name = "FILE")]
    pub rules: Option<PathBuf>,
}

pub async fn run(ctx: &Ctx, args: KbArgs) -> Result<()> {
    let dir = kb_dir(ctx);
    match args.action {
        KbAction::Create {
            name,
            embedding_model,
        } => {
            Kb::path_for(&dir, &name).map_err(kb_error)?;
            let model = embedding_model.unwrap_or_else(|| default_model(ctx));
            let kb = Kb::create(&dir, &name, &model).map_err(kb_error)?;
            output::line(&format!(
                "created knowledge base `{name}` (embedding model {model}) at {}",
                kb.stats().map_err(kb_error)?.path.display()
            ))
        }
        KbAction::List { json } => {
            let names = Kb::list(&dir).map_err(kb_error)?;
            if json {
                return output::json(&names);
            }
            if names.is_empty() {
                notice("no knowledge bases yet: create one with `llmkit kb create NAME`");
            }
            names.iter().try_for_each(|n| output::line(n))
        }
        KbAction::Remove { name } => {
            Kb::remove(&dir, &name).map_err(kb_error)?;
            output::line(&format!("removed knowledge base `{name}`"))
        }
        KbAction::Stats { name, json } => {
            let s = Kb::open(&dir, &name)
                .map_err(kb_error)?
                .stats()
                .map_err(kb_error)?;
            if json {
                return output::json(&s);
            }
            output::line(&format!(
                "name: {}\nmodel: {}\ndimensions: {}\ndocuments: {}\nchunks: {}\nsize: {} bytes\npath: {}",
                s.name,
                s.model,
                s.dims.map_or("-".to_string(), |d| d.to_string()),
                s.documents,
                s.chunks,
                s.size_bytes,
                s.path.display()
            ))
        }
        KbAction::Add(a) => add(ctx, &dir, a).await,
        KbAction::Sync { name } => sync(&dir, &name),
        KbAction::Search {
            name,
            query,
            k,
            mmr,
            json,
        } => {
            let kb = Kb::open(&dir, &name).map_err(kb_error)?;
            let opts = SearchOptions {
                k: usize::from(k),
                mmr,
                ..SearchOptions::default()
            };
            let hits = retrieve(ctx, &kb, &query, &opts).await?;
            if json {
                return output::json(&json!({"query": query, "results": hits}));
            }
            for (i, h) in hits.iter().enumerate() {
                output::line(&format!(
                    "{}. score {:.4}  similarity {}  {}",
                    i + 1,
                    h.score,
                    h.similarity.map_or("-".into(), |s| format!("{s:.3}")),
                    place(h)
                ))?;
                output::line(&format!("   {}", preview(&h.text, 160)))?;
            }
            Ok(())
        }
    }
}

/// `ask --kb NAME`: retrieve, refuse below the threshold, else ask with numbered sources
/// and check the citations in the answer.
pub async fn ask(ctx: &Ctx, args: &AskArgs, name: &str, question: &str) -> Result<()> {
    let kb = Kb::open(&kb_dir(ctx), name).map_err(kb_error)?;
    let opts = SearchOptions {
        k: usize::from(args.kb.top_k),
        ..SearchOptions::default()
    };
    let hits = retrieve(ctx, &kb, question, &opts).await?;
    let best = hits
        .iter()
        .filter_map(|h| h.similarity)
        .fold(f32::NEG_INFINITY, f32::max);
    let sources = |hits: &[Hit]| -> Vec<serde_json::Value> {
        hits.iter()
            .enumerate()
            .map(|(i, h)| {
                json!({"n": i + 1, "path": h.source, "location": h.location,
                       "score": h.score, "similarity": h.similarity})
            })
            .collect()
    };
    if hits.is_empty() || best < args.kb.min_score {
        if args.json {
            return output::json(&json!({
                "text": llmkit_kb::NO_ANSWER, "answered": false, "best_similarity": best.max(-1.0),
                "sources": [],
            }));
        }
        return output::line(llmkit_kb::NO_ANSWER);
    }
    let rules = match &args.kb.rules {
        Some(p) => Some(crate::input::read_text_file(p)?),
        None => None,
    };
    let mut messages = llmkit_kb::grounded_messages(question, &hits, rules.as_deref());
    if let Some(extra) = &args.system {
        messages.insert(0, llmkit_types::ChatMessage::system(extra.clone()));
    }
    let opened = ctx.open_chat(args.model.model.as_deref()).await?;
    let pipe = ctx.pipeline(opened.backend, "ask")?;
    let req = apply_sampling(
        ChatCompletionRequest::new(opened.model, messages),
        &args.model,
    )?;
    let res = pipe.chat(&req).await?;
    ctx.show_redactions(&res.redactions);
    let text = res.response.text().trim_end().to_string();
    let cites = llmkit_kb::check_citations(&text, hits.len());
    if !cites.invalid.is_empty() {
        let list: Vec<String> = cites.invalid.iter().map(|n| format!("[{n}]")).collect();
        notice(&format!(
            "warning: the answer cites sources that do not exist: {} (there are {})",
            list.join(" "),
            hits.len()
        ));
    }
    if args.json {
        let used: Vec<Hit> = cites.used.iter().map(|n| hits[n - 1].clone()).collect();
        return output::json(&json!({
            "text": text,
            "answered": true,
            "citations": cites,
            "sources": sources(&hits),
            "cited_sources": sources(&used),
            "model": res.response.model,
        }));
    }
    output::line(&text)?;
    if !cites.used.is_empty() {
        output::line("")?;
        for n in &cites.used {
            output::line(&format!("[{n}] {}", place(&hits[n - 1])))?;
        }
    }
    Ok(())
}

/// `<data dir>/kb`: beside the llmkit store.
fn kb_dir(ctx: &Ctx) -> PathBuf {
    ctx.settings
        .store_path
        .parent()
        .map_or_else(|| PathBuf::from("kb"), |p| p.join("kb"))
}

/// The embedding model a new knowledge base gets when none is named.
fn default_model(ctx: &Ctx) -> String {
    if let Some(m) = &ctx.settings.embedding_model {
        return m.clone();
    }
    if ctx.settings.api_key.is_none() && ctx.settings.is_openai() {
        format!("local:{}", llmkit_local::DEFAULT_EMBEDDING_MODEL)
    } else {
        crate::settings::DEFAULT_API_EMBEDDING_MODEL.to_string()
    }
}

/// Embeds the query with the knowledge base's model and runs the hybrid search.
async fn retrieve(ctx: &Ctx, kb: &Kb, query: &str, opts: &SearchOptions) -> Result<Vec<Hit>> {
    if kb.chunk_count().map_err(kb_error)? == 0 {
        return Err(kb_error(KbError::Empty(kb.name().to_string())));
    }
    let opened = ctx.open_embedding(Some(&kb.info().model)).await?;
    let mut v = embed(&opened, vec![query.to_string()]).await?;
    let qv = v.pop().unwrap_or_default();
    kb.search(query, Some(&qv), opts).map_err(kb_error)
}

async fn embed(opened: &Opened, texts: Vec<String>) -> Result<Vec<Vec<f32>>> {
    let n = texts.len();
    let req = EmbeddingRequest::new(opened.model.clone(), texts);
    let resp = opened.backend.embeddings(&req).await?;
    let mut data = resp.body.data;
    data.sort_by_key(|e| e.index);
    let vectors: Vec<Vec<f32>> = data
        .into_iter()
        .filter_map(|e| match e.embedding {
            EmbeddingVector::Float(v) => Some(v),
            EmbeddingVector::Base64(_) => None,
        })
        .collect();
    if vectors.len() != n {
        return Err(CliError::failure(
            format!(
                "the embedding server returned {} vectors for {n} texts",
                vectors.len()
            ),
            None,
        )
        .into());
    }
    Ok(vectors)
}

/// A file read and chunked, waiting for its vectors.
struct Pending {
    loaded: Loaded,
    chunks: Vec<NewChunk>,
}

#[derive(Default)]
struct Tally {
    indexed: usize,
    unchanged: usize,
    duplicates: usize,
    failed: usize,
    chunks: usize,
}

async fn add(ctx: &Ctx, dir: &Path, args: AddArgs) -> Result<()> {
    let mut kb = Kb::open(dir, &args.name).map_err(kb_error)?;
    let collected = collect_files(&args.paths);
    for w in &collected.warnings {
        notice(&format!("warning: {w}"));
    }
    if collected.unsupported > 0 {
        notice(&format!(
            "skipped {} file(s) of unsupported types in directories",
            collected.unsupported
        ));
    }
    let bar = progress_bar(collected.files.len() as u64);
    let started = Instant::now();
    let batch = usize::from(args.batch_size);
    let mut opened: Option<Opened> = None;
    let mut pending: Vec<Pending> = Vec::new();
    let mut waiting = 0usize;
    let mut tally = Tally {
        failed: collected.warnings.len(),
        ..Tally::default()
    };
    let opts = ChunkOptions::default();
    for path in &collected.files {
        bar.inc(1);
        let loaded = match load_file(path, args.text_column.as_deref()) {
            Ok(l) => l,
            Err(e) => {
                tally.failed += 1;
                bar.suspend(|| warn(&e));
                continue;
            }
        };
        match kb
            .document_state(&loaded.source, &loaded.hash)
            .map_err(kb_error)?
        {
            DocumentState::Unchanged => tally.unchanged += 1,
            DocumentState::Duplicate(original) => {
                kb.record_duplicate(&loaded.source, &loaded.hash, &original)
                    .map_err(kb_error)?;
                tally.duplicates += 1;
            }
            DocumentState::New | DocumentState::Changed => {
                let chunks: Vec<NewChunk> = loaded
                    .docs
                    .iter()
                    .flat_map(|d| chunk_document(d, &opts))
                    .collect();
                if chunks.is_empty() {
                    tally.failed += 1;
                    bar.suspend(|| notice(&format!("warning: {}: no text found", path.display())));
                    continue;
                }
                waiting += chunks.len();
                pending.push(Pending { loaded, chunks });
            }
        }
        if waiting >= batch {
            flush(ctx, &mut kb, &mut opened, &mut pending, batch, &mut tally).await?;
            waiting = 0;
            let rate = tally.chunks as f64 / started.elapsed().as_secs_f64().max(1e-3);
            bar.set_message(format!("{} chunks  {rate:.0} chunks/s", tally.chunks));
        }
    }
    flush(ctx, &mut kb, &mut opened, &mut pending, batch, &mut tally).await?;
    bar.finish_and_clear();
    output::line(&format!(
        "{}: {} file(s) indexed ({} chunks), {} unchanged, {} duplicate(s), {} skipped with warnings",
        args.name, tally.indexed, tally.chunks, tally.unchanged, tally.duplicates, tally.failed
    ))
}

/// Embeds the pending files' chunks in requests of `batch` texts and stores each file.
async fn flush(
    ctx: &Ctx,
    kb: &mut Kb,
    opened: &mut Option<Opened>,
    pending: &mut Vec<Pending>,
    batch: usize,
    tally: &mut Tally,
) -> Result<()> {
    if pending.is_empty() {
        return Ok(());
    }
    if opened.is_none() {
        *opened = Some(ctx.open_embedding(Some(&kb.info().model)).await?);
    }
    let Some(o) = opened.as_ref() else {
        return Ok(());
    };
    let texts: Vec<String> = pending
        .iter()
        .flat_map(|p| p.chunks.iter().map(NewChunk::embed_text))
        .collect();
    let mut vectors = Vec::with_capacity(texts.len());
    for part in texts.chunks(batch) {
        vectors.extend(embed(o, part.to_vec()).await?);
    }
    let mut rest = vectors.into_iter();
    for p in pending.drain(..) {
        let v: Vec<Vec<f32>> = rest.by_ref().take(p.chunks.len()).collect();
        kb.replace_document(&p.loaded.source, &p.loaded.hash, &p.chunks, &v)
            .map_err(kb_error)?;
        tally.indexed += 1;
        tally.chunks += p.chunks.len();
    }
    Ok(())
}

fn sync(dir: &Path, name: &str) -> Result<()> {
    let mut kb = Kb::open(dir, name).map_err(kb_error)?;
    let mut dropped = 0;
    for source in kb.sources().map_err(kb_error)? {
        if !Path::new(&source).exists() {
            kb.remove_document(&source).map_err(kb_error)?;
            output::line(&format!("dropped {source}"))?;
            dropped += 1;
        }
    }
    output::line(&format!(
        "{name}: {dropped} document(s) dropped; run `llmkit kb add {name} PATH` to re-index changed files"
    ))
}

fn progress_bar(files: u64) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::with_draw_target(
        Some(files),
        indicatif::ProgressDrawTarget::stderr_with_hz(4),
    );
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:30} {pos}/{len} files  {msg}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    bar
}

fn warn(e: &KbError) {
    match e.hint() {
        Some(h) => notice(&format!("warning: {e} ({h})")),
        None => notice(&format!("warning: {e}")),
    }
}

fn place(h: &Hit) -> String {
    if h.location.is_empty() {
        h.source.clone()
    } else {
        format!("{} ({})", h.source, h.location)
    }
}

fn preview(text: &str, max: usize) -> String {
    let flat: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    match flat.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &flat[..i]),
        None => flat,
    }
}

/// A knowledge-base error as a CLI error with its hint.
fn kb_error(e: KbError) -> anyhow::Error {
    CliError::failure(e.to_string(), e.hint()).into()
}
