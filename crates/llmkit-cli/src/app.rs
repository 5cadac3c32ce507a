//! Command dispatch and the per-invocation context: resolved settings and backend construction.

use std::io::Write;
use std::sync::Arc;

use anyhow::Result;
use llmkit_client::{Backend, HttpClient, LocalBackend, Pipeline, RequestInfo};
use llmkit_local::{Embedder, LoadOptions, LocalModel};

use crate::cli::{Cli, Command};
use crate::commands;
use crate::error::CliError;
use crate::settings::{Env, ModelChoice, Settings};

/// Runs the parsed command line.
pub async fn run(cli: Cli) -> Result<()> {
    let env = Env::from_process();
    let editing = matches!(cli.command, Command::Config(_));
    let settings = Settings::resolve(&cli.global, &env, editing)?;
    let mut global = cli.global.clone();
    if let Command::Eval(a) = &cli.command
        && a.bypasses_cache()
    {
        global.no_cache = true;
    }
    let ctx = Ctx {
        settings,
        global,
        store: std::sync::OnceLock::new(),
    };
    let result = dispatch(&ctx, cli.command).await;
    // Ledger rows are written by a background thread: wait for them before exiting.
    let flushed = ctx.flush_store();
    result.and(flushed)
}

async fn dispatch(ctx: &Ctx, command: Command) -> Result<()> {
    match command {
        Command::Ask(args) => commands::ask::run(ctx, args).await,
        Command::Complete(args) => commands::complete::run(ctx, args).await,
        Command::Models(args) => commands::models::run(ctx, args).await,
        Command::Tokens(args) => commands::tokens::run(ctx, args).await,
        Command::Embed(args) => commands::embed::run(ctx, args).await,
        Command::Config(args) => commands::config::run(ctx, &ctx.global, args),
        Command::Chat(args) => commands::chat::run(ctx, args).await,
        Command::Sessions(args) => commands::sessions::run(ctx, args),
        Command::Usage(args) => commands::usage::run(ctx, args),
        Command::Cache(args) => commands::cache::run(ctx, args),
        Command::Store(args) => commands::store::run(ctx, args),
        Command::Roles(args) => commands::roles::run(ctx, args),
        Command::Summarize(args) => commands::tasks::summarize::run(ctx, args).await,
        Command::Translate(args) => commands::tasks::translate::run(ctx, args).await,
        Command::Sentiment(args) => commands::tasks::sentiment::run(ctx, args).await,
        Command::Classify(args) => commands::tasks::classify::run(ctx, args).await,
        Command::Extract(args) => commands::tasks::extract::run(ctx, args).await,
        Command::Qa(args) => commands::tasks::qa::run(ctx, args).await,
        Command::Write(args) => commands::tasks::write::run(ctx, args).await,
        Command::Templates(args) => commands::templates::run(ctx, args),
        Command::Batch(args) => commands::batch::run(ctx, args).await,
        Command::Kb(args) => commands::kb::run(ctx, args).await,
        Command::Eval(args) => commands::eval::run(ctx, args).await,
        Command::Finetune(args) => commands::finetune::run(ctx, args).await,
    }
}

/// What every command gets: the resolved settings and ways to open backends.
pub struct Ctx {
    pub settings: Settings,
    /// The global flags (redaction, cache, budget), for the request pipeline.
    pub global: crate::cli::GlobalArgs,
    /// The store, opened on first use (see `crate::accounting`).
    pub store: std::sync::OnceLock<crate::accounting::StoreHandle>,
}

/// A backend ready to serve one command, with the model name to put in requests.
pub struct Opened {
    pub backend: Backend,
    pub model: String,
}

impl Ctx {
    /// Opens the backend for a model flag (or the configured/default model).
    pub async fn open_chat(&self, model_flag: Option<&str>) -> Result<Opened> {
        let (choice, fallback) = self.settings.choose_model(model_flag);
        if fallback {
            notice("using the embedded local model (no API key set)");
        }
        match choice {
            ModelChoice::Remote(model) => Ok(Opened {
                backend: Backend::Http(self.http()?),
                model,
            }),
            ModelChoice::Local(spec) => {
                let model = self.load_local(&spec).await?;
                let name = format!("local:{}", model.name());
                Ok(Opened {
                    backend: Backend::Local(LocalBackend::new(Some(model), None)),
                    model: name,
                })
            }
        }
    }

    /// Opens the backend for embeddings: `local:minilm` (the default without a key) or an
    /// API embedding model.
    pub async fn open_embedding(&self, model_flag: Option<&str>) -> Result<Opened> {
        let named = model_flag
            .map(str::to_string)
            .or_else(|| self.settings.embedding_model.clone());
        let local_default = self.settings.api_key.is_none() && self.settings.is_openai();
        let choice = match named {
            Some(n) => crate::settings::parse_model(&n),
            None if local_default => {
                notice("using the embedded local embedding model (no API key set)");
                ModelChoice::Local(llmkit_local::DEFAULT_EMBEDDING_MODEL.to_string())
            }
            None => ModelChoice::Remote(crate::settings::DEFAULT_API_EMBEDDING_MODEL.to_string()),
        };
        match choice {
            ModelChoice::Remote(model) => Ok(Opened {
                backend: Backend::Http(self.http()?),
                model,
            }),
            ModelChoice::Local(spec) => {
                let dir = llmkit_local::resolve_model_path(&spec, &self.settings.models_dir)?;
                let embedder = tokio::task::spawn_blocking(move || Embedder::load(&dir))
                    .await
                    .map_err(|e| anyhow::anyhow!("loading the embedding model failed: {e}"))??;
                let name = format!("local:{}", embedder.model_name());
                Ok(Opened {
                    backend: Backend::Local(LocalBackend::new(None, Some(embedder))),
                    model: name,
                })
            }
        }
    }

    /// The request pipeline for a command: the backend plus redaction and accounting
    /// (cache, budgets, ledger) as the flags and config ask.
    pub fn pipeline(&self, backend: Backend, command: &str) -> Result<Pipeline> {
        self.pipeline_in_session(backend, command, None)
    }

    /// Like [`Ctx::pipeline`], with the ledger rows tagged with a conversation.
    pub fn pipeline_in_session(
        &self,
        backend: Backend,
        command: &str,
        session: Option<String>,
    ) -> Result<Pipeline> {
        let info = RequestInfo {
            command: command.to_string(),
            profile: self.settings.profile.clone(),
            session,
            ..RequestInfo::default()
        };
        let mut p = Pipeline::new(backend, info);
        if let Some(r) = crate::privacy::redactor(self)? {
            p = p.with_redaction(r);
        }
        if let Some(a) = crate::accounting::accounting(self)? {
            p = p.with_accounting(a);
        }
        Ok(p)
    }

    /// Like [`Ctx::pipeline`] for commands that enforce `--max-cost` themselves over a
    /// resumable job (batch, eval).
    pub fn pipeline_uncapped(&self, backend: Backend, command: &str) -> Result<Pipeline> {
        let info = RequestInfo {
            command: command.to_string(),
            profile: self.settings.profile.clone(),
            ..RequestInfo::default()
        };
        let mut p = Pipeline::new(backend, info);
        if let Some(r) = crate::privacy::redactor(self)? {
            p = p.with_redaction(r);
        }
        Ok(p.with_accounting(crate::accounting::accounting_uncapped(self)?))
    }

    /// The HTTP client, refusing to go to OpenAI without a key.
    pub fn http(&self) -> Result<HttpClient> {
        if self.settings.api_key.is_none() && self.settings.is_openai() {
            return Err(CliError::failure(
                "no API key set for the OpenAI API",
                Some(
                    "set OPENAI_API_KEY, run `llmkit config set api_key sk-...`, or use the \
                     embedded model with `-m local:smollm2-135m`"
                        .to_string(),
                ),
            )
            .into());
        }
        Ok(HttpClient::new(self.settings.client_config())?)
    }

    /// Loads a local GGUF model (by catalogue name or path) on a blocking thread.
    pub async fn load_local(&self, spec: &str) -> Result<LocalModel> {
        let path = llmkit_local::resolve_model_path(spec, &self.settings.models_dir)?;
        let opts = LoadOptions {
            on_notice: Some(Arc::new(|msg: &str| notice(msg))),
            threads: self.settings.local_threads,
            ..LoadOptions::default()
        };
        let model = tokio::task::spawn_blocking(move || LocalModel::load(&path, &opts))
            .await
            .map_err(|e| anyhow::anyhow!("loading the local model failed: {e}"))??;
        Ok(model)
    }
}

impl Ctx {
    /// `--show-redactions`: counts by kind on stderr, never the values.
    pub fn show_redactions(&self, counts: &[(String, usize)]) {
        if !self.global.show_redactions {
            return;
        }
        if counts.is_empty() {
            notice("redactions: none");
        } else {
            let parts: Vec<String> = counts.iter().map(|(k, n)| format!("{k}={n}")).collect();
            notice(&format!("redactions: {}", parts.join(" ")));
        }
    }
}

/// Prints a one-line notice on stderr (never on stdout, which carries results).
pub fn notice(msg: &str) {
    let _ = writeln!(std::io::stderr().lock(), "{msg}");
}
