//! The model catalogue: context windows, output limits and list prices of OpenAI models, with user overrides.

use llmkit_types::Usage;

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
/// The built-in prices are OpenAI's public list prices (standard tier) as published on its
/// pricing page on 2025-08-07, the day GPT-5 launched. Prices change: callers should let the
/// user override them ([`ModelCatalog::with_overrides`]).
#[derive(Debug, Clone)]
pub struct ModelCatalog {
    models: Vec<ModelInfo>,
}

impl ModelCatalog {
    /// The built-in table of current OpenAI models.
    pub fn builtin() -> Self {
        let m = ModelInfo::new;
        let models = vec![
            m("gpt-5", 400_000, 128_000, 1.25, Some(0.125), 10.0),
            m("gpt-5-mini", 400_000, 128_000, 0.25, Some(0.025), 2.0),
            m("gpt-5-nano", 400_000, 128_000, 0.05, Some(0.005), 0.40),
            m("gpt-4.1", 1_047_576, 32_768, 2.0, Some(0.50), 8.0),
            m("gpt-4.1-mini", 1_047_576, 32_768, 0.40, Some(0.10), 1.60),
            m("gpt-4.1-nano", 1_047_576, 32_768, 0.10, Some(0.025), 0.40),
            m("gpt-4o", 128_000, 16_384, 2.50, Some(1.25), 10.0),
            m("gpt-4o-2024-05-13", 128_000, 4_096, 5.0, None, 15.0),
            m("gpt-4o-mini", 128_000, 16_384, 0.15, Some(0.075), 0.60),
            m("chatgpt-4o-latest", 128_000, 16_384, 5.0, None, 15.0),
            m("o1", 200_000, 100_000, 15.0, Some(7.50), 60.0),
            m("o1-mini", 128_000, 65_536, 1.10, Some(0.55), 4.40),
            m("o3", 200_000, 100_000, 2.0, Some(0.50), 8.0),
            m("o3-mini", 200_000, 100_000, 1.10, Some(0.55), 4.40),
            m("o4-mini", 200_000, 100_000, 1.10, Some(0.275), 4.40),
            m("gpt-4-turbo", 128_000, 4_096, 10.0, None, 30.0),
            m("gpt-4-1106-preview", 128_000, 4_096, 10.0, None, 30.0),
            m("gpt-4-0125-preview", 128_000, 4_096, 10.0, None, 30.0),
            m("gpt-4", 8_192, 8_192, 30.0, None, 60.0),
            m("gpt-4-32k", 32_768, 32_768, 60.0, None, 120.0),
            m("gpt-3.5-turbo", 16_385, 4_096, 0.50, None, 1.50),
            m("text-embedding-3-small", 8_191, 0, 0.02, None, 0.0),
            m("text-embedding-3-large", 8_191, 0, 0.13, None, 0.0),
            m("text-embedding-ada-002", 8_191, 0, 0.10, None, 0.0),
            // Fine-tuned models (`ft:BASE:ORG:SUFFIX:ID`): the base's window at the
            // fine-tuned inference price.
            m("ft:gpt-4.1", 1_047_576, 32_768, 3.0, Some(0.75), 12.0),
            m("ft:gpt-4.1-mini", 1_047_576, 32_768, 0.80, Some(0.20), 3.20),
            m("ft:gpt-4.1-nano", 1_047_576, 32_768, 0.20, Some(0.05), 0.80),
            m("ft:gpt-4o", 128_000, 16_384, 3.75, Some(1.875), 15.0),
            m("ft:gpt-4o-mini", 128_000, 16_384, 0.30, Some(0.15), 1.20),
            m("ft:o4-mini", 200_000, 100_000, 4.0, Some(1.0), 16.0),
            m("ft:gpt-3.5-turbo", 16_385, 4_096, 3.0, None, 6.0),
        ];
        Self { models }
    }

    /// An empty catalogue (for servers whose models llmkit cannot know).
    pub fn empty() -> Self {
        Self { models: Vec::new() }
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
        assert!(c.price("gpt-5.1").is_none() && c.price("gpt-5").is_some());
        let unpriced = c.with_overrides([ModelInfo::unknown("gpt-5.1")]);
        assert!(unpriced.get("gpt-5.1").is_some() && unpriced.price("gpt-5.1").is_none());
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
}
