//! Command dispatch and the per-invocation context: resolved settings and backend construction.

use std::io::Write;
use std::sync::Arc;

use anyhow::Result;
use llmkit_accounting::CachePolicy;
use llmkit_client::{Accounting, Backend, HttpClient, LocalBackend, Pipeline, RequestInfo};
use llmkit_local::{Embedder, KvCache, LoadOptions, LocalModel};
use llmkit_store::Store;

use crate::accounting::StoreHandle;
use crate::cli::{Cli, Command, UsageAction};
use crate::commands;
use crate::error::CliError;
use crate::settings::{Env, ModelChoice, Settings};

/// Runs the parsed command line.
pub(crate) async fn run(cli: Cli) -> Result<()> {
    let env = Env::from_process();
    let editing = matches!(cli.command, Command::Config(_));
    let mut settings = Settings::resolve(&cli.global, &env, editing)?;
    if let Command::Serve(args) = &cli.command {
        settings
            .gateway
            .resolve_master_key(args.master_key_env.as_deref(), &env)?;
    }
    for warning in &settings.warnings {
        notice(warning);
    }
    let ctx = Ctx {
        settings,
        store: std::sync::OnceLock::new(),
        kv_cache: std::sync::OnceLock::new(),
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
        Command::Config(args) => commands::config::run(ctx, args),
        Command::Chat(args) => commands::chat::run(ctx, args).await,
        Command::Sessions(args) => commands::sessions::run(ctx, args),
        Command::Usage(mut args) => match args.action.take() {
            Some(UsageAction::Reconcile(r)) => commands::usage_reconcile::run(ctx, r).await,
            None => commands::usage::run(ctx, args),
        },
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
        Command::Serve(args) => commands::gateway::serve(ctx, args).await,
        Command::Keys(args) => commands::gateway::keys(ctx, args).await,
    }
}

/// What every command gets: the resolved settings and ways to open backends, the store
/// and the request pipeline.
pub(crate) struct Ctx {
    pub settings: Settings,
    /// The store and this invocation's accounting, opened on first use.
    store: std::sync::OnceLock<StoreHandle>,
    /// The local models' KV prefix cache (one cap for every model this invocation loads),
    /// made on first use; `None` when `kv_cache_mb` is 0.
    kv_cache: std::sync::OnceLock<Option<KvCache>>,
}

/// What a command's request pipeline is for: the ledger's labels and the limits it holds.
#[derive(Debug, Clone)]
pub(crate) struct PipelineSpec {
    /// The command named in ledger rows (`ask`, `batch`...).
    pub command: String,
    /// The conversation the ledger rows belong to.
    pub session: Option<String>,
    /// Whether this pipeline holds `--max-cost` itself.
    pub cap: Cap,
    /// A cache policy of the command's own (`eval run --fresh` reads no cache).
    pub cache: Option<CachePolicy>,
    /// The `prompt_cache_key` its requests carry on OpenAI's endpoint: one per conversation
    /// and per batch job.
    pub prompt_cache_key: Option<String>,
}

/// Who enforces `--max-cost`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cap {
    /// The pipeline: every request of this invocation counts against it.
    Invocation,
    /// The command, over a whole resumable job (batch, eval): a per-request refusal would
    /// turn rows into errors where the job should stop resumably.
    Job,
}

impl PipelineSpec {
    /// A pipeline for `command`, capped per invocation, with the configured cache.
    pub(crate) fn new(command: &str) -> Self {
        Self {
            command: command.to_string(),
            session: None,
            cap: Cap::Invocation,
            cache: None,
            prompt_cache_key: None,
        }
    }

    /// Tags the ledger rows with a conversation, whose turns share a `prompt_cache_key`.
    pub(crate) fn in_session(mut self, session: String) -> Self {
        self.prompt_cache_key = Some(format!("llmkit-session-{session}"));
        self.session = Some(session);
        self
    }

    /// The `prompt_cache_key` of a batch job's requests.
    pub(crate) fn batch_job(mut self, job: &str) -> Self {
        self.prompt_cache_key = Some(format!("llmkit-batch-{job}"));
        self
    }

    /// The command enforces `--max-cost` itself (see [`Cap::Job`]).
    pub(crate) fn job(mut self) -> Self {
        self.cap = Cap::Job;
        self
    }

    /// Uses this cache policy instead of the configured one.
    pub(crate) fn cache(mut self, policy: CachePolicy) -> Self {
        self.cache = Some(policy);
        self
    }
}

/// A backend ready to serve one command, with the model name to put in requests.
pub(crate) struct Opened {
    pub backend: Backend,
    pub model: String,
}

impl Ctx {
    /// Opens the backend for a model flag (or the configured/default model).
    pub(crate) async fn open_chat(&self, model_flag: Option<&str>) -> Result<Opened> {
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
    pub(crate) async fn open_embedding(&self, model_flag: Option<&str>) -> Result<Opened> {
        let named = model_flag
            .map(str::to_string)
            .or_else(|| self.settings.models.embedding.clone());
        let local_default = self.settings.client.needs_local_fallback();
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
                let dir = llmkit_local::resolve_model_path(&spec, &self.settings.local.models_dir)?;
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
    /// (cache, budgets, ledger) as the settings and `spec` ask.
    pub(crate) fn pipeline(&self, backend: Backend, spec: PipelineSpec) -> Result<Pipeline> {
        let info = RequestInfo {
            command: spec.command.clone(),
            profile: self.settings.profile.clone(),
            session: spec.session.clone(),
            ..RequestInfo::default()
        };
        // Only OpenAI's endpoint is known to take `prompt_cache_key`; a compatible server
        // may refuse a field it does not know (`-o prompt_cache_key=...` sets it anyway).
        let cache_key = spec
            .prompt_cache_key
            .clone()
            .filter(|_| backend.kind() == "http" && self.settings.client.is_openai());
        let mut p = Pipeline::new(backend, info);
        if let Some(key) = cache_key {
            p = p.with_prompt_cache_key(key);
        }
        if let Some(r) = crate::privacy::redactor(&self.settings.redaction)? {
            p = p.with_redaction(r);
        }
        Ok(p.with_accounting(self.accounting(&spec)?))
    }

    /// The accounting step for `spec`. Every request is recorded in the ledger, so this is
    /// always on. Pipelines capped per invocation share one instance, so that `--max-cost`
    /// covers every request of the process.
    fn accounting(&self, spec: &PipelineSpec) -> Result<Arc<dyn Accounting>> {
        let handle = self.store_handle()?;
        if spec.cap == Cap::Invocation && spec.cache.is_none() {
            return Ok(Arc::clone(&handle.accounting) as Arc<dyn Accounting>);
        }
        let max_cost = match spec.cap {
            Cap::Invocation => self.settings.budgets.max_cost_usd,
            Cap::Job => None,
        };
        let cache = spec.cache.unwrap_or(self.settings.cache.policy);
        let cfg = crate::accounting::config(&self.settings, max_cost, cache);
        Ok(Arc::new(llmkit_accounting::StoreAccounting::new(
            Arc::clone(&handle.store),
            cfg,
        )))
    }

    /// Whether the pipeline redacts (the settings or the config turn it on).
    pub(crate) fn redacting(&self) -> bool {
        self.settings.redaction.enabled
    }

    /// The store, opened on first use. Every command uses this one instance (never a second
    /// `Store::open`): it owns the process's ledger writer, so a batch checkpoint that
    /// flushes the ledger before it commits flushes the rows the pipeline recorded.
    pub(crate) fn store(&self) -> Result<Arc<Store>> {
        Ok(Arc::clone(&self.store_handle()?.store))
    }

    fn store_handle(&self) -> Result<&StoreHandle> {
        if let Some(h) = self.store.get() {
            return Ok(h);
        }
        let handle = StoreHandle::open(&self.settings).map_err(CliError::from)?;
        // Another call may have won the race; either value is equivalent.
        let _ = self.store.set(handle);
        self.store
            .get()
            .ok_or_else(|| anyhow::anyhow!("the store could not be opened"))
    }

    /// Writes queued ledger rows (called once before the process exits).
    pub(crate) fn flush_store(&self) -> Result<()> {
        match self.store.get() {
            Some(h) => h.store.flush().map_err(|e| CliError::from(e).into()),
            None => Ok(()),
        }
    }

    /// The HTTP client, refusing to go to OpenAI without a key, with the capability
    /// fallbacks on and what the store knows of the server.
    pub(crate) fn http(&self) -> Result<HttpClient> {
        if self.settings.client.needs_local_fallback() {
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
        // Commands fall back from features the server lacks, remembered in the store; a store
        // that cannot be opened only costs the memory (commands that need it report it).
        let cfg = crate::capabilities::configure(self.settings.client.config(), self.store().ok());
        Ok(HttpClient::new(cfg)?)
    }

    /// Loads a local GGUF model (by catalogue name or path) on a blocking thread.
    pub(crate) async fn load_local(&self, spec: &str) -> Result<LocalModel> {
        let path = llmkit_local::resolve_model_path(spec, &self.settings.local.models_dir)?;
        let opts = LoadOptions {
            on_notice: Some(Arc::new(|msg: &str| notice(msg))),
            threads: self.settings.local.threads,
            kv_cache: self.kv_cache().clone(),
            ..LoadOptions::default()
        };
        let model = tokio::task::spawn_blocking(move || LocalModel::load(&path, &opts))
            .await
            .map_err(|e| anyhow::anyhow!("loading the local model failed: {e}"))??;
        Ok(model)
    }

    /// The KV prefix cache for local models, sized by `kv_cache_mb` (`None` when it is 0).
    fn kv_cache(&self) -> &Option<KvCache> {
        self.kv_cache.get_or_init(|| {
            let mb = self.settings.local.kv_cache_mb;
            // At most MAX_KV_CACHE_MB (2^20), so the shift fits in 64 bits; a 32-bit target
            // caps it at what it can address.
            (mb > 0).then(|| KvCache::new(usize::try_from(mb << 20).unwrap_or(usize::MAX)))
        })
    }

    /// `--show-redactions`: counts by kind on stderr, never the values.
    pub(crate) fn show_redactions(&self, counts: &[(String, usize)]) {
        if !self.settings.redaction.show_counts {
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
pub(crate) fn notice(msg: &str) {
    let _ = writeln!(std::io::stderr().lock(), "{msg}");
}

/// Prints part of a line on stderr as it arrives (a streamed reasoning summary).
pub(crate) fn notice_part(text: &str) {
    let mut err = std::io::stderr().lock();
    let _ = err.write_all(text.as_bytes()).and_then(|()| err.flush());
}
