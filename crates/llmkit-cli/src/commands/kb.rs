//! `llmkit kb`: create, fill, sync, search and inspect knowledge bases. Grounded answers
//! (`ask|qa|chat --kb NAME`) are in `kb/grounded.rs`, `--rules` in `kb/rules.rs`, bulk
//! embedding for `kb add` in `kb/embed.rs`.

mod embed;
pub(crate) mod grounded;
pub(crate) mod rules;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Result;
use clap::{Args, Subcommand};
use llmkit_kb::{
    ChunkOptions, DocumentState, Hit, Kb, KbError, Loaded, NewChunk, SearchOptions, chunk_document,
    collect_files, load_file,
};
use serde_json::json;

use crate::app::{Ctx, notice};
use crate::cli::AskArgs;
use crate::error::CliError;
use crate::output;
use embed::{BulkEmbedder, EmbedOptions};
pub(crate) use embed::{Embedder, embed_texts};

#[derive(Debug, Args)]
pub(crate) struct KbArgs {
    #[command(subcommand)]
    pub action: KbAction,
}

#[derive(Debug, Subcommand)]
pub(crate) enum KbAction {
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
pub(crate) struct AddArgs {
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
    /// Embedding requests in flight at once (API models).
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub concurrency: u16,
    /// Requests per minute for an API embedding model (default: learnt from the server's
    /// `x-ratelimit-*` headers).
    #[arg(long, value_name = "N")]
    pub rpm: Option<u32>,
    /// Tokens per minute for an API embedding model (default: learnt from the headers).
    #[arg(long, value_name = "N")]
    pub tpm: Option<u32>,
    /// Attempts per embedding request before the add stops (rerun it to resume).
    #[arg(long, default_value_t = 6, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub max_attempts: u32,
}

/// The `ask` flags for grounded answers.
#[derive(Debug, Args, Clone, Default)]
pub(crate) struct KbAskArgs {
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
    /// A rule base (TOML: `must`, `forbidden`, `[glossary]`) for the system prompt; the
    /// answer is checked against it. Works with or without --kb.
    #[arg(long, value_name = "FILE")]
    pub rules: Option<PathBuf>,
}

pub(crate) async fn run(ctx: &Ctx, args: KbArgs) -> Result<()> {
    let dir = kb_dir(ctx);
    match args.action {
        KbAction::Create {
            name,
            embedding_model,
        } => {
            Kb::path_for(&dir, &name)?;
            let model = embedding_model.unwrap_or_else(|| default_model(ctx));
            let kb = Kb::create(&dir, &name, &model)?;
            output::line(&format!(
                "created knowledge base `{name}` (embedding model {model}) at {}",
                kb.stats()?.path.display()
            ))
        }
        KbAction::List { json } => {
            let names = Kb::list(&dir)?;
            if json {
                return output::json(&names);
            }
            if names.is_empty() {
                notice("no knowledge bases yet: create one with `llmkit kb create NAME`");
            }
            names.iter().try_for_each(|n| output::line(n))
        }
        KbAction::Remove { name } => {
            Kb::remove(&dir, &name)?;
            output::line(&format!("removed knowledge base `{name}`"))
        }
        KbAction::Stats { name, json } => {
            let s = Kb::open(&dir, &name)?.stats()?;
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
            let kb = Kb::open(&dir, &name)?;
            let opts = SearchOptions {
                k: usize::from(k),
                mmr,
                ..SearchOptions::default()
            };
            let hits = retrieve(ctx, kb, &query, &opts).await?;
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

/// `ask --kb NAME`: the grounded one-shot answer (shared with `qa --kb`).
pub(crate) async fn ask(ctx: &Ctx, args: &AskArgs, name: &str, question: &str) -> Result<()> {
    let one = grounded::OneShot {
        command: "ask",
        model: &args.model,
        system: args.system.as_deref(),
        kb_args: &args.kb,
        json: args.json,
    };
    grounded::answer_once(ctx, name, question, one).await
}

/// `<data dir>/kb`: beside the llmkit store.
pub(crate) fn kb_dir(ctx: &Ctx) -> PathBuf {
    ctx.settings
        .paths
        .store
        .parent()
        .map_or_else(|| PathBuf::from("kb"), |p| p.join("kb"))
}

/// The embedding model a new knowledge base gets when none is named.
fn default_model(ctx: &Ctx) -> String {
    if let Some(m) = &ctx.settings.models.embedding {
        return m.clone();
    }
    if ctx.settings.client.needs_local_fallback() {
        format!("local:{}", llmkit_local::DEFAULT_EMBEDDING_MODEL)
    } else {
        crate::settings::DEFAULT_API_EMBEDDING_MODEL.to_string()
    }
}

/// Embeds the query with the knowledge base's model and runs the hybrid search.
async fn retrieve(ctx: &Ctx, kb: Kb, query: &str, opts: &SearchOptions) -> Result<Vec<Hit>> {
    grounded::Grounding::with_kb(ctx, kb, &KbAskArgs::default())
        .await?
        .search(query, opts)
        .await
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
    /// Chunks embedded in this run.
    embedded: usize,
    /// Chunks whose vectors an interrupted earlier add had already computed.
    reused: usize,
}

/// What `flush` needs besides the pending files.
struct Adding<'a> {
    ctx: &'a Ctx,
    kb: Kb,
    embedder: Option<BulkEmbedder>,
    opts: EmbedOptions,
    tally: Tally,
    bar: indicatif::ProgressBar,
    started: Instant,
}

async fn add(ctx: &Ctx, dir: &Path, args: AddArgs) -> Result<()> {
    let kb = Kb::open(dir, &args.name)?;
    // A bad or missing path among others is a warning and the rest are added (README);
    // when none of the paths given is there, nothing can be: a typo, not a skip.
    if !args.paths.is_empty() && args.paths.iter().all(|p| !p.exists()) {
        let missing = &args.paths[0];
        return Err(CliError::usage(
            format!("no such file or directory: {}", missing.display()),
            "check the path; `kb add NAME PATH...` takes files and directories",
        )
        .into());
    }
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
    let opts = EmbedOptions {
        batch: usize::from(args.batch_size),
        concurrency: usize::from(args.concurrency),
        rpm: args.rpm,
        tpm: args.tpm,
        max_attempts: args.max_attempts,
    };
    let mut st = Adding {
        ctx,
        kb,
        embedder: None,
        opts,
        tally: Tally {
            failed: collected.warnings.len(),
            ..Tally::default()
        },
        bar: progress_bar(collected.files.len() as u64),
        started: Instant::now(),
    };
    // Enough chunks for every request in flight to be full.
    let flush_at = opts.batch * opts.concurrency;
    let mut pending: Vec<Pending> = Vec::new();
    let mut waiting = 0usize;
    let chunking = ChunkOptions::default();
    for path in &collected.files {
        st.bar.inc(1);
        let loaded = match load_file(path, args.text_column.as_deref()) {
            Ok(l) => l,
            Err(e) => {
                st.tally.failed += 1;
                st.bar.suspend(|| warn(&e));
                continue;
            }
        };
        match st.kb.document_state(&loaded.source, &loaded.hash)? {
            DocumentState::Unchanged => st.tally.unchanged += 1,
            DocumentState::Duplicate(original) => {
                st.kb
                    .record_duplicate(&loaded.source, &loaded.hash, &original)?;
                st.tally.duplicates += 1;
            }
            DocumentState::New | DocumentState::Changed => {
                let chunks: Vec<NewChunk> = loaded
                    .docs
                    .iter()
                    .flat_map(|d| chunk_document(d, &chunking))
                    .collect();
                if chunks.is_empty() {
                    st.tally.failed += 1;
                    st.bar
                        .suspend(|| notice(&format!("warning: {}: no text found", path.display())));
                    continue;
                }
                waiting += chunks.len();
                pending.push(Pending { loaded, chunks });
            }
        }
        if waiting >= flush_at {
            flush(&mut st, &mut pending).await?;
            waiting = 0;
        }
    }
    flush(&mut st, &mut pending).await?;
    // Everything is stored: the cache of an interrupted run has served its purpose.
    st.kb.clear_vector_cache()?;
    st.bar.finish_and_clear();
    let t = &st.tally;
    let reused = if t.reused > 0 {
        format!(
            ", {} chunk vector(s) reused from an interrupted add",
            t.reused
        )
    } else {
        String::new()
    };
    output::line(&format!(
        "{}: {} file(s) indexed ({} chunks), {} unchanged, {} duplicate(s), {} skipped with warnings{reused}",
        args.name, t.indexed, t.chunks, t.unchanged, t.duplicates, t.failed
    ))
}

/// Embeds the pending files' chunks (reusing vectors an interrupted add left in the cache,
/// and caching each new batch the moment it arrives), then stores each file.
async fn flush(st: &mut Adding<'_>, pending: &mut Vec<Pending>) -> Result<()> {
    if pending.is_empty() {
        return Ok(());
    }
    let keys: Vec<String> = pending
        .iter()
        .flat_map(|p| p.chunks.iter().map(NewChunk::cache_key))
        .collect();
    let mut have: HashMap<String, Vec<f32>> = st.kb.cached_vectors(&keys)?;
    st.tally.reused += have.len();
    let mut seen = HashSet::new();
    let (mut todo_keys, mut todo_texts) = (Vec::new(), Vec::new());
    for (c, k) in pending.iter().flat_map(|p| &p.chunks).zip(&keys) {
        if !have.contains_key(k) && seen.insert(k.clone()) {
            todo_keys.push(k.clone());
            todo_texts.push(c.embed_text());
        }
    }
    if !todo_texts.is_empty() {
        if st.embedder.is_none() {
            let model = st.kb.info().model.clone();
            st.embedder = Some(BulkEmbedder::open(st.ctx, &model, st.opts).await?);
        }
        let Some(embedder) = st.embedder.as_ref() else {
            return Ok(());
        };
        let (kb, tally, bar, started) = (&mut st.kb, &mut st.tally, &st.bar, st.started);
        embedder
            .embed_all(&todo_texts, |start, vectors| {
                let items: Vec<(String, Vec<f32>)> =
                    todo_keys[start..].iter().cloned().zip(vectors).collect();
                kb.cache_vectors(&items)?;
                tally.embedded += items.len();
                let rate = tally.embedded as f64 / started.elapsed().as_secs_f64().max(1e-3);
                bar.set_message(format!(
                    "{} chunks embedded  {rate:.0} chunks/s",
                    tally.embedded
                ));
                have.extend(items);
                Ok(())
            })
            .await?;
    }
    let mut keys = keys.into_iter();
    for p in pending.drain(..) {
        let mut vectors = Vec::with_capacity(p.chunks.len());
        for k in keys.by_ref().take(p.chunks.len()) {
            let v = have.get(&k).cloned().ok_or_else(|| {
                CliError::failure(
                    format!("no vector was computed for a chunk of {}", p.loaded.source),
                    Some("run the add again".into()),
                )
            })?;
            vectors.push(v);
        }
        st.kb
            .replace_document(&p.loaded.source, &p.loaded.hash, &p.chunks, &vectors)?;
        st.tally.indexed += 1;
        st.tally.chunks += p.chunks.len();
    }
    Ok(())
}

fn sync(dir: &Path, name: &str) -> Result<()> {
    let mut kb = Kb::open(dir, name)?;
    let mut dropped = 0;
    for source in kb.sources()? {
        if !Path::new(&source).exists() {
            kb.remove_document(&source)?;
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

pub(crate) fn place(h: &Hit) -> String {
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
