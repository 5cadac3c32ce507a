//! What the NLP task commands share: reading inputs (text, files, directories, stdin),
//! building the task runner (model, window, token counter, pipeline, templates, progress bar)
//! and turning task errors into CLI errors.

pub(crate) mod classify;
pub(crate) mod extract;
pub(crate) mod qa;
pub(crate) mod sentiment;
pub(crate) mod summarize;
pub(crate) mod translate;
pub(crate) mod write;

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Result;
use indicatif::{ProgressBar, ProgressStyle};
use llmkit_client::Backend;
use llmkit_tasks::{Progress, RunStats, StructuredMode, TaskRunner, Templates, TokenCounter};
use llmkit_types::ChatCompletionRequest;
use serde_json::{Value, json};

use crate::app::Ctx;
use crate::app::PipelineSpec;
use crate::cli::{JsonMode, ModelArgs, StructuredArgs};
use crate::commands::request::{apply_sampling, stop_of};
use crate::error::CliError;
use crate::input;

/// One input: where it came from and its cleaned text.
pub(crate) struct Item {
    pub name: String,
    pub text: String,
}

/// Window used for a remote model the catalogue does not know.
const UNKNOWN_WINDOW: usize = 8192;

/// Reads the inputs: consecutive text arguments form one item, each file is an item,
/// directories are read recursively (hidden and binary files skipped), `-` or no argument
/// reads stdin. Every item is cleaned (HTML, NFC, whitespace); empty input is an error.
pub(crate) fn read_inputs(args: &[String], force_html: bool) -> Result<Vec<Item>, CliError> {
    let mut items = Vec::new();
    let mut words: Vec<&str> = Vec::new();
    let flush = |words: &mut Vec<&str>, items: &mut Vec<Item>| {
        if !words.is_empty() {
            let text = words.join(" ");
            items.push(Item {
                name: "text".to_string(),
                text: llmkit_tasks::prepare(&text, force_html.then_some(true)),
            });
            words.clear();
        }
    };
    if args.is_empty() {
        if !input::stdin_is_piped() {
            return Err(CliError::usage(
                "no input given",
                "pass text, files or directories, or pipe text on stdin",
            ));
        }
        items.push(stdin_item(force_html)?);
    }
    for arg in args {
        let path = Path::new(arg);
        if arg == "-" {
            flush(&mut words, &mut items);
            items.push(stdin_item(force_html)?);
        } else if path.is_dir() {
            flush(&mut words, &mut items);
            let mut files = Vec::new();
            walk(path, &mut files);
            files.sort();
            for f in files {
                match file_item(&f, force_html) {
                    Ok(item) => items.push(item),
                    // A directory may hold images or archives: skip what is not text.
                    Err(e) => {
                        crate::app::notice(&format!("skipping {}: {}", f.display(), e.message))
                    }
                }
            }
        } else if path.is_file() {
            flush(&mut words, &mut items);
            items.push(file_item(path, force_html)?);
        } else if looks_like_path(arg) {
            return Err(CliError::usage(
                format!("no such file or directory: {arg}"),
                "check the path; to pass the text itself, quote it together with other words or pipe it on stdin",
            ));
        } else {
            words.push(arg);
        }
    }
    flush(&mut words, &mut items);
    items.retain(|i| !i.text.trim().is_empty());
    if items.is_empty() {
        return Err(CliError::usage(
            "the input is empty",
            "pass some text, a non-empty file, or pipe text on stdin",
        ));
    }
    Ok(items)
}

/// True for an argument that can only be meant as a path: one word that starts like a path
/// (`/`, `./`, `../`, `~/`) or ends in a text file's extension. Such an argument that names
/// no file is a mistake, not text to process.
fn looks_like_path(arg: &str) -> bool {
    const EXTENSIONS: &[&str] = &[
        "txt", "md", "markdown", "html", "htm", "pdf", "csv", "tsv", "json", "jsonl", "xml", "rst",
        "log", "docx",
    ];
    if arg.chars().any(char::is_whitespace) {
        return false;
    }
    if ["/", "./", "../", "~/"].iter().any(|p| arg.starts_with(p)) {
        return true;
    }
    Path::new(arg)
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
        && Path::new(arg).file_stem().is_some_and(|s| !s.is_empty())
}

/// All inputs as one document (files headed by their names when there are several).
pub(crate) fn joined(items: &[Item]) -> String {
    if items.len() == 1 {
        return items[0].text.clone();
    }
    items
        .iter()
        .map(|i| format!("# {}\n\n{}", i.name, i.text))
        .collect::<Vec<_>>()
        .join("\n\n")
}

fn stdin_item(force_html: bool) -> Result<Item, CliError> {
    let text = input::read_stdin()?;
    Ok(Item {
        name: "stdin".to_string(),
        text: llmkit_tasks::prepare(&text, force_html.then_some(true)),
    })
}

fn file_item(path: &Path, force_html: bool) -> Result<Item, CliError> {
    let text = input::read_text_file(path)?;
    let ext_html = path
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("html") || e.eq_ignore_ascii_case("htm"));
    let html = if force_html || ext_html {
        Some(true)
    } else {
        None
    };
    Ok(Item {
        name: path.display().to_string(),
        text: llmkit_tasks::prepare(&text, html),
    })
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.filter_map(Result::ok) {
        let p = e.path();
        let hidden = p
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with('.'));
        if hidden {
            continue;
        }
        if p.is_dir() {
            walk(&p, out);
        } else if p.is_file() {
            out.push(p);
        }
    }
}

/// The user template directory: `$XDG_CONFIG_HOME/llmkit/templates`.
pub(crate) fn templates_dir(ctx: &Ctx) -> PathBuf {
    ctx.settings.paths.config_dir.join("templates")
}

/// Opens the model and builds the runner every task uses.
pub(crate) async fn runner(
    ctx: &Ctx,
    model: &ModelArgs,
    window: Option<u32>,
    command: &str,
    structured: Option<&StructuredArgs>,
    tools: &crate::commands::tools::ToolArgs,
) -> Result<TaskRunner> {
    stop_of(model)?;
    // Tools are checked (files parsed, commands found, MCP servers started) first.
    let toolbox = if tools.any() {
        Some(crate::commands::tools::open(ctx, tools).await?)
    } else {
        None
    };
    let opened = ctx.open_chat(model.model.as_deref()).await?;
    let (model_window, counter, parallel) = match &opened.backend {
        Backend::Local(l) => match l.model() {
            Some(m) => {
                let m = m.clone();
                let counter = TokenCounter::Custom(Arc::new(move |t: &str| {
                    m.count_tokens(t)
                        .unwrap_or_else(|_| t.chars().count().div_ceil(3))
                }));
                (
                    l.model().map_or(UNKNOWN_WINDOW, |m| m.context_window()),
                    counter,
                    1,
                )
            }
            None => (UNKNOWN_WINDOW, TokenCounter::Approx, 1),
        },
        Backend::Http(_) | Backend::Pool(_) => (
            ctx.settings
                .models
                .info(&opened.model)
                .map_or(UNKNOWN_WINDOW, |i| i.context_window as usize),
            TokenCounter::for_model(&opened.model),
            4,
        ),
    };
    let window = window.map_or(model_window, |w| w as usize);
    let proto = apply_sampling(
        ChatCompletionRequest::new(opened.model.clone(), Vec::new()),
        model,
    )?;
    let pipe = ctx.pipeline(opened.backend, PipelineSpec::new(command))?;
    let mut r = TaskRunner::new(pipe, proto, Templates::new(Some(templates_dir(ctx))))
        .window(window)
        .counter(counter)
        .concurrency(parallel)
        .progress(Arc::new(Bar::new()));
    if let Some(toolbox) = toolbox {
        r = r.chat_step(Arc::new(crate::commands::tools::ToolStep {
            toolbox,
            args: tools.clone(),
            interactive: std::io::stdin().is_terminal(),
        }));
    }
    if let Some(s) = structured {
        r = r.repair_attempts(s.repair_attempts);
        match s.json_mode {
            JsonMode::Auto => {}
            JsonMode::Schema => r = r.structured_mode(StructuredMode::Schema),
            JsonMode::Prompt => r = r.structured_mode(StructuredMode::Prompt),
        }
    }
    Ok(r)
}

/// After a task: the redaction counts (`--show-redactions`).
pub(crate) fn finish(ctx: &Ctx, runner: &TaskRunner) -> RunStats {
    let stats = runner.stats();
    ctx.show_redactions(&stats.redactions);
    stats
}

/// The run's totals for `--json` output.
pub(crate) fn stats_json(runner: &TaskRunner, stats: &RunStats) -> Value {
    json!({
        "model": runner.model(),
        "requests": stats.requests,
        "usage": {
            "prompt_tokens": stats.prompt_tokens,
            "completion_tokens": stats.completion_tokens,
            "total_tokens": stats.prompt_tokens + stats.completion_tokens,
        },
    })
}

/// An indicatif bar on stderr, shown once more than one request is planned (indicatif
/// draws nothing when stderr is not a terminal).
struct Bar {
    bar: ProgressBar,
}

impl Bar {
    fn new() -> Self {
        let bar = ProgressBar::hidden();
        Self { bar }
    }
}

impl Progress for Bar {
    fn add(&self, total: u64) {
        if self.bar.is_hidden() && total > 1 {
            self.bar
                .set_draw_target(indicatif::ProgressDrawTarget::stderr());
            if let Ok(style) =
                ProgressStyle::with_template("{spinner} {msg} [{bar:30}] {pos}/{len} requests")
            {
                self.bar.set_style(style.progress_chars("=> "));
            }
            self.bar.set_message("working");
        }
        self.bar.inc_length(total);
    }

    fn inc(&self) {
        self.bar.inc(1);
    }

    fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

/// Prints per-input results: with `--json` the validated object for one input, or one
/// JSON line `{"input", "result"}` per input; else the text forms.
pub(crate) fn emit(results: &[(String, Value, String)], json_out: bool) -> Result<()> {
    if json_out {
        if let [(_, v, _)] = results {
            return crate::output::json(v);
        }
        for (name, v, _) in results {
            crate::output::line(&serde_json::to_string(
                &json!({"input": name, "result": v}),
            )?)?;
        }
        return Ok(());
    }
    for (i, (name, _, text)) in results.iter().enumerate() {
        if results.len() > 1 {
            if i > 0 {
                crate::output::line("")?;
            }
            crate::output::line(&format!("== {name}"))?;
        }
        crate::output::line(text)?;
    }
    Ok(())
}
