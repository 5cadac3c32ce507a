//! The client group (endpoint, key, timeouts, retries) and the model group (default models,
//! the price catalogue with the user's overrides, the context strategy).

use std::time::Duration;

use llmkit_client::{
    AzureConfig, ClientConfig, ModelCatalog, ModelInfo, ResponsesOptions, RetryPolicy,
    SecretString, Timeouts, WireApi,
};
use llmkit_tasks::conversation::ContextStrategy;

use super::{Env, Layered, OPENAI_BASE_URL, Sourced, pick};
use crate::cli::{ApiChoice, GlobalArgs};
use crate::config_file::FileConfig;
use crate::error::CliError;

/// Where requests go and how they are sent.
#[derive(Debug)]
pub(crate) struct ClientSettings {
    pub api_key: Option<Sourced<SecretString>>,
    /// `OPENAI_ADMIN_KEY`, for the organisation reports only.
    pub admin_key: Option<SecretString>,
    pub base_url: Sourced<String>,
    pub organization: Option<String>,
    pub project: Option<String>,
    pub azure: Option<AzureConfig>,
    pub timeouts: Timeouts,
    pub retry: RetryPolicy,
    /// `--api`.
    pub api: ApiChoice,
    /// `--store`: let the provider keep Responses API responses.
    pub store: bool,
    /// `--show-reasoning`.
    pub show_reasoning: bool,
}

impl ClientSettings {
    pub(super) fn resolve(
        args: &GlobalArgs,
        env: &Env,
        layer: &Layered<'_>,
    ) -> Result<Self, CliError> {
        let api_key = pick(
            None,
            env.openai_api_key.clone(),
            layer.get(|p| p.api_key.clone()),
            "OPENAI_API_KEY",
        )
        .map(|s| Sourced {
            value: SecretString::from(s.value),
            source: s.source,
        });
        let base_url = pick(
            args.base_url.clone(),
            env.openai_base_url.clone(),
            layer.get(|p| p.base_url.clone()),
            "OPENAI_BASE_URL",
        )
        .unwrap_or(Sourced {
            value: OPENAI_BASE_URL.to_string(),
            source: "default",
        });
        validate_url(&base_url.value)?;
        let azure = layer.get(|p| p.azure_api_version.clone()).map(|version| {
            let mut a = AzureConfig::new(version);
            if let Some(d) = layer.get(|p| p.azure_deployment.clone()) {
                a = a.deployment(d);
            }
            a
        });
        let mut timeouts = Timeouts::default();
        if let Some(s) = args.timeout.or(layer.get(|p| p.timeout)) {
            timeouts.request = secs(s, "timeout")?;
        }
        if let Some(s) = layer.get(|p| p.connect_timeout) {
            timeouts.connect = secs(s, "connect_timeout")?;
        }
        if let Some(s) = args.stall_timeout.or(layer.get(|p| p.stall_timeout)) {
            timeouts.stall = secs(s, "stall_timeout")?;
        }
        let mut retry = RetryPolicy::default();
        if let Some(n) = args.max_retries.or(layer.get(|p| p.max_retries)) {
            retry.max_retries = n;
        }
        Ok(Self {
            api_key,
            admin_key: env.openai_admin_key.clone().map(SecretString::from),
            base_url,
            organization: env
                .openai_org_id
                .clone()
                .or_else(|| layer.get(|p| p.organization.clone())),
            project: env
                .openai_project_id
                .clone()
                .or_else(|| layer.get(|p| p.project.clone())),
            azure,
            timeouts,
            retry,
            api: args.api.unwrap_or_default(),
            store: args.store,
            show_reasoning: args.show_reasoning,
        })
    }

    /// The API chat requests go to: `auto` is the Responses API (falling back to chat) on
    /// OpenAI's own endpoint, and chat elsewhere (Azure included) except for Responses-only
    /// models.
    pub(crate) fn wire_api(&self) -> WireApi {
        match self.api {
            ApiChoice::Chat => WireApi::Chat,
            ApiChoice::Responses => WireApi::Responses,
            ApiChoice::Auto if self.is_openai() => WireApi::ResponsesOrChat,
            ApiChoice::Auto => WireApi::ChatUnlessResponsesOnly,
        }
    }

    /// True when the base URL is OpenAI's own endpoint (which always needs a key).
    pub(crate) fn is_openai(&self) -> bool {
        self.base_url.value.starts_with(OPENAI_BASE_URL) && self.azure.is_none()
    }

    /// True when no request could reach an API (OpenAI without a key): the default model is
    /// then the embedded one.
    pub(crate) fn needs_local_fallback(&self) -> bool {
        self.api_key.is_none() && self.is_openai()
    }

    /// The HTTP client configuration.
    pub(crate) fn config(&self) -> ClientConfig {
        let mut cfg = ClientConfig::new(self.base_url.value.clone())
            .api_key_secret(self.api_key.as_ref().map(|k| k.value.clone()))
            .timeouts(self.timeouts)
            .retry(self.retry)
            .api(self.wire_api())
            .responses_options(ResponsesOptions {
                store: self.store,
                reasoning_summary: self.show_reasoning.then(|| "auto".to_string()),
            })
            .notice(|msg| crate::app::notice(&format!("notice: {msg}")));
        if let Some(o) = &self.organization {
            cfg = cfg.organization(o.clone());
        }
        if let Some(p) = &self.project {
            cfg = cfg.project(p.clone());
        }
        if let Some(a) = &self.azure {
            cfg = cfg.azure(a.clone());
        }
        cfg
    }

    /// The configuration of a client for the organisation reports: the same endpoint,
    /// timeouts and retries, with the admin key in place of the API key and no project
    /// header (the reports cover the whole organisation). `None` without an admin key.
    pub(crate) fn admin_config(&self) -> Option<ClientConfig> {
        let key = self.admin_key.clone()?;
        let mut cfg = ClientConfig::new(self.base_url.value.clone())
            .api_key_secret(Some(key))
            .timeouts(self.timeouts)
            .retry(self.retry);
        if let Some(o) = &self.organization {
            cfg = cfg.organization(o.clone());
        }
        Some(cfg)
    }
}

/// Which models commands use by default, and what llmkit knows about models.
#[derive(Debug)]
pub(crate) struct ModelSettings {
    /// The default chat model (`LLMKIT_MODEL` or the config's `model`).
    pub chat: Option<Sourced<String>>,
    /// The default embedding model (the config's `embedding_model`).
    pub embedding: Option<String>,
    /// Context windows and prices, with the config's `[models.NAME]` overrides.
    pub catalog: ModelCatalog,
    /// What a conversation does when it outgrows the model's context window.
    pub context_strategy: ContextStrategy,
}

impl ModelSettings {
    pub(super) fn resolve(
        env: &Env,
        layer: &Layered<'_>,
        file: &FileConfig,
    ) -> Result<Self, CliError> {
        let context_strategy = match layer.get(|p| p.context_strategy.clone()).as_deref() {
            None | Some("drop") => ContextStrategy::Drop,
            Some("summarize" | "summarise") => ContextStrategy::Summarize,
            Some(other) => {
                return Err(CliError::config(
                    format!("`context_strategy` must be `drop` or `summarize`, got `{other}`"),
                    "fix `context_strategy` in the config file",
                ));
            }
        };
        Ok(Self {
            chat: pick(
                None,
                env.llmkit_model.clone(),
                layer.get(|p| p.model.clone()),
                "LLMKIT_MODEL",
            ),
            embedding: layer.get(|p| p.embedding_model.clone()),
            catalog: catalog_with_overrides(file),
            context_strategy,
        })
    }

    /// What the catalogue knows of a remote model (window, prices).
    pub(crate) fn info(&self, model: &str) -> Option<&ModelInfo> {
        self.catalog.get(model)
    }
}

/// Which backend a model name selects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ModelChoice {
    /// An API model served over HTTP.
    Remote(String),
    /// The embedded model: a catalogue name or a file path.
    Local(String),
}

/// `local:NAME` or `local:/path` selects the embedded model; anything else is remote.
pub(crate) fn parse_model(name: &str) -> ModelChoice {
    match name.strip_prefix("local:") {
        Some(rest) if !rest.is_empty() => ModelChoice::Local(rest.to_string()),
        Some(_) => ModelChoice::Local(llmkit_local::DEFAULT_CHAT_MODEL.to_string()),
        None => ModelChoice::Remote(name.to_string()),
    }
}

fn secs(v: f64, name: &str) -> Result<Duration, CliError> {
    Duration::try_from_secs_f64(v)
        .ok()
        .filter(|d| !d.is_zero())
        .ok_or_else(|| {
            CliError::config(
                format!("`{name}` must be a positive number of seconds, got {v}"),
                format!("fix `{name}` in the config file"),
            )
        })
}

fn validate_url(url: &str) -> Result<(), CliError> {
    match url::Url::parse(url) {
        Ok(u) if matches!(u.scheme(), "http" | "https") => Ok(()),
        _ => Err(CliError::usage(
            format!("invalid base URL `{url}`"),
            "use a full http(s) URL such as https://api.openai.com/v1 or http://localhost:8000/v1",
        )),
    }
}

fn catalog_with_overrides(file: &FileConfig) -> ModelCatalog {
    let base = ModelCatalog::builtin();
    let overrides: Vec<ModelInfo> = file
        .models
        .iter()
        .map(|(name, o)| {
            let mut info = base
                .get(name)
                .cloned()
                .unwrap_or_else(|| ModelInfo::unknown(name));
            info.id.clone_from(name);
            if let Some(v) = o.context_window {
                info.context_window = v;
            }
            if let Some(v) = o.max_output {
                info.max_output = v;
            }
            if let Some(v) = o.input_per_mtok {
                info.input_per_mtok = v;
                info.priced = true;
            }
            if o.cached_input_per_mtok.is_some() {
                info.cached_input_per_mtok = o.cached_input_per_mtok;
            }
            if let Some(v) = o.output_per_mtok {
                info.output_per_mtok = v;
                info.priced = true;
            }
            if let Some(v) = o.batch_multiplier {
                info.batch_discount = 1.0 - v;
            }
            if o.flex_multiplier.is_some() {
                info.flex_multiplier = o.flex_multiplier;
            }
            if o.priority_multiplier.is_some() {
                info.priority_multiplier = o.priority_multiplier;
            }
            if let Some(v) = &o.input_modalities {
                info.input_modalities.clone_from(v);
            }
            if let Some(v) = o.responses_only {
                info.responses_only = v;
            }
            info
        })
        .collect();
    base.with_overrides(overrides)
}
