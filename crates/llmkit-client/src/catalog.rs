//! The model catalogue: context windows, output limits and list prices of OpenAI models, with user overrides.
//!
//! The built-in table is data, `prices.toml` beside this file, embedded at build time and
//! parsed once. Should it ever fail to parse (a unit test guards against that), the built-in
//! catalogue is empty, so every model is unpriced and a spending limit refuses it rather than
//! counting it as free, and [`ModelCatalog::builtin_error`] says why.

use std::sync::OnceLock;

use llmkit_types::Usage;
use serde::{Deserialize, Serialize};

/// The embedded price list.
const PRICES_TOML: &str = include_str!("prices.toml");

/// A kind of content a model reads or writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Modality {
    Text,
    Image,
    Audio,
}

impl Modality {
    /// The name used in the price list and in JSON output.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Text => "text",
            Self::Image => "image",
            Self::Audio => "audio",
        }
    }
}

/// What llmkit knows about one model. Prices are USD per 1M tokens.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelInfo {
    pub id: String,
    /// Input + output tokens the model accepts.
    pub context_window: u32,
    /// Most output tokens per request (0 for embedding models).
    pub max_output: u32,
    pub input_per_mtok: f64,
    /// Price of prompt tokens served from the prompt cache, when the model has one.
    pub cached_input_per_mtok: Option<f64>,
    pub output_per_mtok: f64,
    /// Fraction taken off the list price in the Batch API (0.5 = half price).
    pub batch_discount: f64,
    /// False for an entry whose prices nobody set (a model the user described only by its
    /// window): its cost is unknown, not zero.
    pub priced: bool,
    /// Multiplier of the standard price on the Flex tier, where OpenAI offers it.
    pub flex_multiplier: Option<f64>,
    /// Multiplier of the standard price on the Priority tier, where OpenAI offers it.
    pub priority_multiplier: Option<f64>,
    /// Served only on the Responses API (the `-pro`, codex and deep-research models), not on
    /// Chat Completions.
    pub responses_only: bool,
    /// What the model reads.
    pub input_modalities: Vec<Modality>,
    /// What the model writes (empty for embedding models).
    pub output_modalities: Vec<Modality>,
}

impl ModelInfo {
    fn new(
        id: &str,
        context_window: u32,
        max_output: u32,
        input: f64,
        cached: Option<f64>,
        output: f64,
    ) -> Self {
        Self {
            id: id.to_string(),
            context_window,
            max_output,
            input_per_mtok: input,
            cached_input_per_mtok: cached,
            output_per_mtok: output,
            batch_discount: 0.5,
            priced: true,
            flex_multiplier: None,
            priority_multiplier: None,
            responses_only: false,
            input_modalities: vec![Modality::Text],
            output_modalities: vec![Modality::Text],
        }
    }

    /// The entry for a model the catalogue does not know, before the user's overrides: an
    /// 8k window, 4k of output, no known price.
    pub fn unknown(id: &str) -> Self {
        Self {
            priced: false,
            ..Self::new(id, 8192, 4096, 0.0, None, 0.0)
        }
    }

    /// USD for the given token counts (`cached` is the part of `prompt` read from cache).
    pub fn cost_of(&self, prompt: u64, cached: u64, completion: u64, batch: bool) -> f64 {
        let cached = cached.min(prompt);
        let cached_price = self.cached_input_per_mtok.unwrap_or(self.input_per_mtok);
        let usd = (prompt - cached) as f64 * self.input_per_mtok
            + cached as f64 * cached_price
            + completion as f64 * self.output_per_mtok;
        let usd = usd / 1_000_000.0;
        if batch {
            usd * (1.0 - self.batch_discount)
        } else {
            usd
        }
    }
}

/// A table of models, looked up by longest matching prefix, so that dated snapshots such as
/// `gpt-4o-mini-2024-07-18` find `gpt-4o-mini`.
///
/// The built-in prices are OpenAI's public list prices (standard tier), from the embedded
/// `prices.toml`, which records the date they were checked and their source
/// ([`ModelCatalog::checked`], [`ModelCatalog::source`]). Prices change: callers should let
/// the user override them ([`ModelCatalog::with_overrides`]).
#[derive(Debug, Clone)]
pub struct ModelCatalog {
    models: Vec<ModelInfo>,
    checked: Option<String>,
    source: Option<String>,
}

impl ModelCatalog {
    /// The built-in table of current OpenAI models (parsed from the embedded price list on
    /// first use). When the embedded list cannot be parsed this is an empty catalogue, in
    /// which every model is unpriced; [`ModelCatalog::builtin_error`] then says why.
    pub fn builtin() -> Self {
        match builtin_list() {
            Ok(list) => list.clone(),
            Err(_) => Self::empty(),
        }
    }

    /// Why the embedded price list could not be used, if it could not (a build defect that
    /// the unit tests catch; callers may show it as a warning).
    pub fn builtin_error() -> Option<&'static str> {
        builtin_list().as_ref().err().map(String::as_str)
    }

    /// Parses a price list in the format of the embedded `prices.toml`.
    pub fn from_toml(text: &str) -> Result<Self, String> {
        let file: PriceFile = toml::from_str(text).map_err(|e| e.message().trim().to_string())?;
        let models = file
            .model
            .into_iter()
            .map(PriceEntry::into_info)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            models,
            checked: Some(file.checked),
            source: Some(file.source),
        })
    }

    /// An empty catalogue (for servers whose models llmkit cannot know).
    pub fn empty() -> Self {
        Self {
            models: Vec::new(),
            checked: None,
            source: None,
        }
    }

    /// The date (YYYY-MM-DD) the built-in list was checked against its source.
    pub fn checked(&self) -> Option<&str> {
        self.checked.as_deref()
    }

    /// Where the built-in prices come from (OpenAI's published pricing page).
    pub fn source(&self) -> Option<&str> {
        self.source.as_deref()
    }

    /// Adds models or replaces those with the same id.
    pub fn with_overrides(mut self, overrides: impl IntoIterator<Item = ModelInfo>) -> Self {
        for info in overrides {
            match self.models.iter_mut().find(|m| m.id == info.id) {
                Some(slot) => *slot = info,
                None => self.models.push(info),
            }
        }
        self
    }

    /// The entry whose id is `model`, or the longest id that is a prefix of `model` followed
    /// by `-` (so `gpt-4o-2024-08-06` finds `gpt-4o` but `gpt-4.5` does not find `gpt-4`).
    /// A provider prefix such as `openai/` is ignored.
    ///
    /// A fine-tuned name `ft:BASE:ORG:SUFFIX:ID` finds the `ft:BASE` entry (fine-tuned
    /// prices), else BASE's own entry (its window, at the base price).
    pub fn get(&self, model: &str) -> Option<&ModelInfo> {
        if let Some(rest) = model.strip_prefix("ft:") {
            let base = rest.split(':').next().unwrap_or(rest);
            return self
                .lookup(&format!("ft:{base}"))
                .or_else(|| self.lookup(base));
        }
        self.lookup(model.rsplit('/').next().unwrap_or(model))
    }

    /// Like [`ModelCatalog::get`], only for an entry with known prices: what a spending
    /// limit needs. A fine-tuned id takes its own entry or its base's fine-tuned (`ft:BASE`)
    /// price, never the base model's own price, which is lower.
    pub fn price(&self, model: &str) -> Option<&ModelInfo> {
        if let Some(rest) = model.strip_prefix("ft:") {
            let base = rest.split(':').next().unwrap_or(rest);
            return self
                .models
                .iter()
                .find(|m| m.id == model)
                .or_else(|| self.lookup(&format!("ft:{base}")))
                .filter(|m| m.priced);
        }
        self.get(model).filter(|m| m.priced)
    }

    fn lookup(&self, model: &str) -> Option<&ModelInfo> {
        self.models
            .iter()
            .filter(|m| {
                model == m.id
                    || model
                        .strip_prefix(m.id.as_str())
                        .is_some_and(|rest| rest.starts_with('-'))
            })
            .max_by_key(|m| m.id.len())
    }

    /// USD for `usage` on `model` (cached prompt tokens at the cached price), or `None` when
    /// the model is unknown.
    pub fn cost(&self, model: &str, usage: &Usage, batch: bool) -> Option<f64> {
        let info = self.price(model)?;
        Some(info.cost_of(
            usage.prompt_tokens,
            usage.cached_tokens(),
            usage.completion_tokens,
            batch,
        ))
    }

    /// Every entry, in table order.
    pub fn list(&self) -> impl Iterator<Item = &ModelInfo> {
        self.models.iter()
    }
}

/// The embedded list, parsed once.
fn builtin_list() -> &'static Result<ModelCatalog, String> {
    static LIST: OnceLock<Result<ModelCatalog, String>> = OnceLock::new();
    LIST.get_or_init(|| {
        ModelCatalog::from_toml(PRICES_TOML)
            .map_err(|e| format!("the built-in price list (prices.toml) is malformed: {e}"))
    })
}

/// The price list file.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PriceFile {
    checked: String,
    source: String,
    #[serde(default)]
    model: Vec<PriceEntry>,
}

/// One `[[model]]` of the price list; absent prices make an unpriced entry.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PriceEntry {
    id: String,
    context_window: u32,
    max_output: u32,
    input: Option<f64>,
    cached_input: Option<f64>,
    output: Option<f64>,
    #[serde(default = "half")]
    batch: f64,
    flex: Option<f64>,
    priority: Option<f64>,
    #[serde(default)]
    responses_only: bool,
    #[serde(default = "text_only")]
    input_modalities: Vec<Modality>,
    #[serde(default = "text_only")]
    output_modalities: Vec<Modality>,
}

fn half() -> f64 {
    0.5
}

fn text_only() -> Vec<Modality> {
    vec![Modality::Text]
}

impl PriceEntry {
    fn into_info(self) -> Result<ModelInfo, String> {
        let bad = |what: &str| Err(format!("model `{}`: {what}", self.id));
        let priced = match (self.input, self.output) {
            (Some(_), Some(_)) => true,
            (None, None) if self.cached_input.is_none() => false,
            _ => return bad("give both `input` and `output` prices, or neither"),
        };
        let prices = [self.input, self.cached_input, self.output];
        let multipliers = [Some(self.batch), self.flex, self.priority];
        let valid = |v: &Option<f64>| v.is_none_or(|v| v.is_finite() && v >= 0.0);
        if !prices.iter().chain(&multipliers).all(valid) {
            return bad("prices and multipliers must be finite and not negative");
        }
        if self.id.is_empty() || self.context_window == 0 {
            return bad("needs an id and a context window");
        }
        Ok(ModelInfo {
            context_window: self.context_window,
            max_output: self.max_output,
            input_per_mtok: self.input.unwrap_or(0.0),
            cached_input_per_mtok: self.cached_input,
            output_per_mtok: self.output.unwrap_or(0.0),
            batch_discount: 1.0 - self.batch,
            priced,
            flex_multiplier: self.flex,
            priority_multiplier: self.priority,
            responses_only: self.responses_only,
            input_modalities: self.input_modalities,
            output_modalities: self.output_modalities,
            id: self.id,
        })
    }
}

/// OpenAI's training price (USD per 1M training tokens) for supervised fine-tuning of a
/// base model (a dated snapshot finds its family), when known.
pub fn training_price_per_mtok(base: &str) -> Option<f64> {
    const PRICES: [(&str, f64); 6] = [
        ("gpt-4.1-mini", 5.0),
        ("gpt-4.1-nano", 1.50),
        ("gpt-4.1", 25.0),
        ("gpt-4o-mini", 3.0),
        ("gpt-4o", 25.0),
        ("gpt-3.5-turbo", 8.0),
    ];
    PRICES
        .iter()
        .filter(|(id, _)| base == *id || base.strip_prefix(id).is_some_and(|r| r.starts_with('-')))
        .max_by_key(|(id, _)| id.len())
        .map(|(_, p)| *p)
}

impl Default for ModelCatalog {
    fn default() -> Self {
        Self::builtin()
    }
}

#[cfg(test)]
mod tests {
    use llmkit_types::PromptTokensDetails;

    use super::*;

    #[test]
    fn longest_prefix_resolves_snapshots() {
        let c = ModelCatalog::builtin();
        let id = |m: &str| c.get(m).map(|i| i.id.as_str());
        assert_eq!(id("gpt-4o-mini-2024-07-18"), Some("gpt-4o-mini"));
        assert_eq!(id("gpt-4o-2024-08-06"), Some("gpt-4o"));
        assert_eq!(id("gpt-4o-2024-05-13"), Some("gpt-4o-2024-05-13"));
        assert_eq!(id("gpt-4-0613"), Some("gpt-4"));
        assert_eq!(id("gpt-4-turbo-2024-04-09"), Some("gpt-4-turbo"));
        assert_eq!(id("gpt-4.1-mini-2025-04-14"), Some("gpt-4.1-mini"));
        assert_eq!(id("o3-mini-2025-01-31"), Some("o3-mini"));
        assert_eq!(id("openai/gpt-5-nano"), Some("gpt-5-nano"));
        assert_eq!(id("gpt-4.5-preview"), None);
        assert_eq!(id("llama3"), None);
    }

    #[test]
    fn fine_tuned_names_find_their_base() {
        let c = ModelCatalog::builtin();
        let ft = c
            .get("ft:gpt-4o-mini-2024-07-18:my-org:support:7p4lURel")
            .unwrap();
        assert_eq!(
            (ft.id.as_str(), ft.context_window),
            ("ft:gpt-4o-mini", 128_000)
        );
        assert!((ft.input_per_mtok - 0.30).abs() < 1e-9);
        let no_suffix = c.get("ft:gpt-4.1-nano:org::abc").unwrap();
        assert_eq!(no_suffix.id, "ft:gpt-4.1-nano");
        // No fine-tuned price known: the base's entry (window and price).
        assert_eq!(c.get("ft:gpt-5-mini:org:x:y").unwrap().id, "gpt-5-mini");
        assert!(c.get("ft:llama3:org:x:y").is_none());
        // ...but a spending limit needs the fine-tuned price, which is unknown there.
        assert!(c.price("ft:gpt-5-mini:org:x:y").is_none());
        assert_eq!(
            c.price("ft:gpt-4o-mini-2024-07-18:org:x:y")
                .map(|m| m.id.as_str()),
            Some("ft:gpt-4o-mini")
        );
        assert!(c.price("gpt-9").is_none() && c.price("gpt-5").is_some());
        let unpriced = c.with_overrides([ModelInfo::unknown("gpt-9")]);
        assert!(unpriced.get("gpt-9").is_some() && unpriced.price("gpt-9").is_none());
        assert_eq!(training_price_per_mtok("gpt-4o-mini-2024-07-18"), Some(3.0));
        assert_eq!(training_price_per_mtok("gpt-4.1-mini"), Some(5.0));
        assert_eq!(training_price_per_mtok("gpt-5"), None);
    }

    #[test]
    fn cost_uses_cached_and_batch_prices() {
        let c = ModelCatalog::builtin();
        let mut usage = Usage::new(1_000_000, 1_000_000);
        let full = c.cost("gpt-4o-mini", &usage, false).unwrap();
        assert!((full - 0.75).abs() < 1e-9, "{full}");
        let batch = c.cost("gpt-4o-mini", &usage, true).unwrap();
        assert!((batch - 0.375).abs() < 1e-9, "{batch}");
        usage.prompt_tokens_details = Some(PromptTokensDetails {
            cached_tokens: Some(500_000),
            audio_tokens: None,
        });
        let cached = c.cost("gpt-4o-mini", &usage, false).unwrap();
        assert!((cached - (0.075 + 0.0375 + 0.60)).abs() < 1e-9, "{cached}");
        assert!(c.cost("unknown-model", &usage, false).is_none());
    }

    #[test]
    fn overrides_replace_and_add() {
        let c = ModelCatalog::builtin().with_overrides([
            ModelInfo::new("gpt-4o", 1, 1, 1.0, None, 1.0),
            ModelInfo::new("my-vllm-model", 32_768, 4_096, 0.0, None, 0.0),
        ]);
        assert_eq!(c.get("gpt-4o").unwrap().context_window, 1);
        assert_eq!(c.get("my-vllm-model").unwrap().max_output, 4_096);
        assert_eq!(c.list().filter(|m| m.id == "gpt-4o").count(), 1);
    }

    #[test]
    fn the_embedded_price_list_parses() {
        let parsed = ModelCatalog::from_toml(PRICES_TOML);
        assert!(parsed.is_ok(), "{:?}", parsed.err());
        assert_eq!(ModelCatalog::builtin_error(), None);
        let c = ModelCatalog::builtin();
        let checked = c.checked().unwrap();
        assert!(
            checked.len() == 10 && checked.as_bytes()[4] == b'-',
            "{checked}"
        );
        assert!(c.source().unwrap().contains("pricing"));
        let mut ids: Vec<&str> = c.list().map(|m| m.id.as_str()).collect();
        let n = ids.len();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), n, "duplicate ids in prices.toml");
        assert!(n > 50, "{n}");
    }

    #[test]
    fn a_malformed_price_list_is_an_error_not_a_panic() {
        assert!(ModelCatalog::from_toml("checked = ").is_err());
        assert!(ModelCatalog::from_toml("[[model]]\nid = \"x\"").is_err());
        let half_priced = "checked = \"2026-01-01\"\nsource = \"s\"\n[[model]]\nid = \"x\"\ncontext_window = 1\nmax_output = 1\ninput = 1.0\n";
        let err = ModelCatalog::from_toml(half_priced).err().unwrap();
        assert!(err.contains("`x`"), "{err}");
        let negative = half_priced.replace("input = 1.0", "input = -1.0\noutput = 1.0");
        assert!(ModelCatalog::from_toml(&negative).is_err());
        let modality = half_priced.replace("input = 1.0", "input_modalities = [\"smell\"]");
        assert!(ModelCatalog::from_toml(&modality).is_err());
    }

    #[test]
    fn tiers_flags_and_modalities_come_from_the_list() {
        let c = ModelCatalog::builtin();
        let gpt5 = c.get("gpt-5-2025-08-07").unwrap();
        assert_eq!(
            (gpt5.flex_multiplier, gpt5.priority_multiplier),
            (Some(0.5), Some(2.0))
        );
        assert!((gpt5.batch_discount - 0.5).abs() < 1e-9);
        assert!(gpt5.input_modalities.contains(&Modality::Image));
        for id in [
            "gpt-5-pro",
            "gpt-5.2-pro-2025-12-11",
            "o3-pro",
            "o1-pro",
            "o3-deep-research-2025-06-26",
            "o4-mini-deep-research",
        ] {
            assert!(c.get(id).unwrap().responses_only, "{id}");
        }
        assert!(!c.get("gpt-4o-mini").unwrap().responses_only);
        let embed = c.get("text-embedding-3-small").unwrap();
        assert!(embed.output_modalities.is_empty() && embed.priced);
        let audio = c.get("gpt-4o-audio-preview-2024-12-17").unwrap();
        assert!(audio.output_modalities.contains(&Modality::Audio) && !audio.priced);
        let p = c.price("gpt-5.2").unwrap();
        assert!((p.input_per_mtok - 1.75).abs() < 1e-9 && (p.output_per_mtok - 14.0).abs() < 1e-9);
    }

    /// Every model id the vendored OpenAPI spec names for chat, Responses and embeddings
    /// (`ModelIdsShared`, `ModelIdsResponses`, `CreateEmbeddingRequest.model`), as of the
    /// spec in `shared/openai/openapi.yaml`.
    const SPEC_MODEL_IDS: &[&str] = &[
        "gpt-5.6-sol",
        "gpt-5.6-terra",
        "gpt-5.6-luna",
        "gpt-5.5",
        "gpt-5.5-2026-04-23",
        "gpt-5.4",
        "gpt-5.4-mini",
        "gpt-5.4-nano",
        "gpt-5.4-mini-2026-03-17",
        "gpt-5.4-nano-2026-03-17",
        "gpt-5.3-chat-latest",
        "gpt-5.2",
        "gpt-5.2-2025-12-11",
        "gpt-5.2-chat-latest",
        "gpt-5.2-pro",
        "gpt-5.2-pro-2025-12-11",
        "gpt-5.1",
        "gpt-5.1-2025-11-13",
        "gpt-5.1-codex",
        "gpt-5.1-mini",
        "gpt-5.1-chat-latest",
        "gpt-5",
        "gpt-5-mini",
        "gpt-5-nano",
        "gpt-5-2025-08-07",
        "gpt-5-mini-2025-08-07",
        "gpt-5-nano-2025-08-07",
        "gpt-5-chat-latest",
        "gpt-4.1",
        "gpt-4.1-mini",
        "gpt-4.1-nano",
        "gpt-4.1-2025-04-14",
        "gpt-4.1-mini-2025-04-14",
        "gpt-4.1-nano-2025-04-14",
        "o4-mini",
        "o4-mini-2025-04-16",
        "o3",
        "o3-2025-04-16",
        "o3-mini",
        "o3-mini-2025-01-31",
        "o1",
        "o1-2024-12-17",
        "o1-preview",
        "o1-preview-2024-09-12",
        "o1-mini",
        "o1-mini-2024-09-12",
        "gpt-4o",
        "gpt-4o-2024-11-20",
        "gpt-4o-2024-08-06",
        "gpt-4o-2024-05-13",
        "gpt-4o-audio-preview",
        "gpt-4o-audio-preview-2024-10-01",
        "gpt-4o-audio-preview-2024-12-17",
        "gpt-4o-audio-preview-2025-06-03",
        "gpt-4o-mini-audio-preview",
        "gpt-4o-mini-audio-preview-2024-12-17",
        "gpt-4o-search-preview",
        "gpt-4o-mini-search-preview",
        "gpt-4o-search-preview-2025-03-11",
        "gpt-4o-mini-search-preview-2025-03-11",
        "chatgpt-4o-latest",
        "codex-mini-latest",
        "gpt-4o-mini",
        "gpt-4o-mini-2024-07-18",
        "gpt-4-turbo",
        "gpt-4-turbo-2024-04-09",
        "gpt-4-0125-preview",
        "gpt-4-turbo-preview",
        "gpt-4-1106-preview",
        "gpt-4-vision-preview",
        "gpt-4",
        "gpt-4-0314",
        "gpt-4-0613",
        "gpt-4-32k",
        "gpt-4-32k-0314",
        "gpt-4-32k-0613",
        "gpt-3.5-turbo",
        "gpt-3.5-turbo-16k",
        "gpt-3.5-turbo-0301",
        "gpt-3.5-turbo-0613",
        "gpt-3.5-turbo-1106",
        "gpt-3.5-turbo-0125",
        "gpt-3.5-turbo-16k-0613",
        "o1-pro",
        "o1-pro-2025-03-19",
        "o3-pro",
        "o3-pro-2025-06-10",
        "o3-deep-research",
        "o3-deep-research-2025-06-26",
        "o4-mini-deep-research",
        "o4-mini-deep-research-2025-06-26",
        "computer-use-preview",
        "computer-use-preview-2025-03-11",
        "gpt-5.5-pro",
        "gpt-5.5-pro-2026-04-23",
        "gpt-5-codex",
        "gpt-5-pro",
        "gpt-5-pro-2025-10-06",
        "gpt-5.1-codex-max",
        "gpt-daybreak-blue-latest",
        "gpt-daybreak-red-latest",
        "gpt-5.6-cyber",
        "text-embedding-ada-002",
        "text-embedding-3-small",
        "text-embedding-3-large",
    ];

    /// The spec's ids left unpriced on purpose; `prices.toml` says why for each.
    const UNPRICED_SPEC_IDS: &[&str] = &[
        "gpt-5.6-sol",
        "gpt-5.6-terra",
        "gpt-5.6-luna",
        "gpt-5.6-cyber",
        "gpt-daybreak-blue-latest",
        "gpt-daybreak-red-latest",
        "gpt-5.3-chat-latest",
        "gpt-5.1-mini",
        "gpt-4o-audio-preview",
        "gpt-4o-audio-preview-2024-10-01",
        "gpt-4o-audio-preview-2024-12-17",
        "gpt-4o-audio-preview-2025-06-03",
        "gpt-4o-mini-audio-preview",
        "gpt-4o-mini-audio-preview-2024-12-17",
        "gpt-4o-search-preview",
        "gpt-4o-mini-search-preview",
        "gpt-4o-search-preview-2025-03-11",
        "gpt-4o-mini-search-preview-2025-03-11",
    ];

    #[test]
    fn every_spec_model_is_priced_or_listed_as_left_out() {
        let c = ModelCatalog::builtin();
        for id in SPEC_MODEL_IDS {
            let priced = c.price(id).is_some();
            let left_out = UNPRICED_SPEC_IDS.contains(id);
            assert!(
                priced != left_out,
                "{id}: priced {priced}, listed unpriced {left_out}"
            );
        }
        // Snapshots priced differently from their family resolve to their own entry.
        let id = |m: &str| c.price(m).map(|i| i.id.as_str());
        assert_eq!(id("gpt-3.5-turbo-0613"), Some("gpt-3.5-turbo-0613"));
        assert_eq!(id("gpt-3.5-turbo-16k-0613"), Some("gpt-3.5-turbo-16k"));
        assert_eq!(id("gpt-4-vision-preview"), Some("gpt-4-vision-preview"));
        assert_eq!(id("o1-preview-2024-09-12"), Some("o1-preview"));
        assert_eq!(id("gpt-4-turbo-preview"), Some("gpt-4-turbo"));
    }
}
