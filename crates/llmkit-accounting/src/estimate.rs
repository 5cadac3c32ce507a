//! Cost estimates before a request is sent (the budget check) from the model catalogue's
//! prices and offline token counts. A model without a known price is [`Estimate::Unpriced`],
//! never $0: a spending limit must not pass a request it cannot price.

use llmkit_client::ModelCatalog;
use llmkit_types::{
    ChatCompletionRequest, CompletionRequest, EmbeddingInput, EmbeddingRequest, Prompt,
};

/// What a request will cost at most, before it is sent.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Estimate {
    /// Nothing: the embedded local model.
    Free,
    /// At most this many USD.
    Usd(f64),
    /// The catalogue (with the user's overrides) has no price for the model.
    Unpriced,
}

impl Estimate {
    /// The amount in USD, `None` when unknown.
    pub fn usd(self) -> Option<f64> {
        match self {
            Self::Free => Some(0.0),
            Self::Usd(x) => Some(x),
            Self::Unpriced => None,
        }
    }
}

/// True for models served in-process, which cost nothing.
pub fn is_local(model: &str) -> bool {
    model.starts_with("local:")
}

/// The estimated cost of a request before it is sent: its prompt tokens plus its output
/// budget (or `default_output` tokens) for each of its `n` answers.
pub fn estimate_cost(
    catalog: &ModelCatalog,
    req: &ChatCompletionRequest,
    default_output: u32,
) -> Estimate {
    if is_local(&req.model) {
        return Estimate::Free;
    }
    let Some(info) = catalog.price(&req.model) else {
        return Estimate::Unpriced;
    };
    let prompt = llmkit_client::count_chat_tokens(&req.model, &req.messages) as u64;
    let mut out = u64::from(req.output_budget().unwrap_or(default_output));
    if info.max_output > 0 {
        out = out.min(u64::from(info.max_output));
    }
    let n = u64::from(req.n.unwrap_or(1).max(1));
    Estimate::Usd(info.cost_of(prompt, 0, out * n, false))
}

/// The tokens of a legacy completion's prompts and how many prompts it has (each gets
/// `n` answers; token-id prompts count one token per id).
pub fn completion_prompt_tokens(req: &CompletionRequest) -> (u64, u64) {
    let enc = llmkit_client::encoding_for_model(&req.model);
    let (tokens, prompts) = match &req.prompt {
        Prompt::Text(t) => (llmkit_client::count_tokens(enc, t), 1),
        Prompt::Texts(ts) => (
            ts.iter().map(|t| llmkit_client::count_tokens(enc, t)).sum(),
            ts.len(),
        ),
        Prompt::Tokens(ids) => (ids.len(), 1),
        Prompt::TokenBatches(b) => (b.iter().map(Vec::len).sum(), b.len()),
    };
    (tokens as u64, prompts.max(1) as u64)
}

/// The estimated cost of a legacy completion: its prompt tokens plus its `max_tokens` (or
/// `default_output` tokens) for each of the `max(n, best_of)` answers of each prompt.
pub fn estimate_completion_cost(
    catalog: &ModelCatalog,
    req: &CompletionRequest,
    default_output: u32,
) -> Estimate {
    if is_local(&req.model) {
        return Estimate::Free;
    }
    let Some(info) = catalog.price(&req.model) else {
        return Estimate::Unpriced;
    };
    let (prompt, prompts) = completion_prompt_tokens(req);
    let mut out = u64::from(req.max_tokens.unwrap_or(default_output));
    if info.max_output > 0 {
        out = out.min(u64::from(info.max_output));
    }
    let answers = u64::from(req.n.unwrap_or(1).max(req.best_of.unwrap_or(1)).max(1));
    Estimate::Usd(info.cost_of(prompt, 0, out * answers * prompts, false))
}

/// The estimated cost of an embeddings request: its input tokens at the model's input
/// price (token-id inputs count one token per id).
pub fn estimate_embedding_cost(catalog: &ModelCatalog, req: &EmbeddingRequest) -> Estimate {
    if is_local(&req.model) {
        return Estimate::Free;
    }
    let Some(info) = catalog.price(&req.model) else {
        return Estimate::Unpriced;
    };
    let enc = llmkit_client::encoding_for_model(&req.model);
    let tokens: usize = match &req.input {
        EmbeddingInput::Text(t) => llmkit_client::count_tokens(enc, t),
        EmbeddingInput::Texts(ts) => ts.iter().map(|t| llmkit_client::count_tokens(enc, t)).sum(),
        EmbeddingInput::Tokens(ids) => ids.len(),
        EmbeddingInput::TokenBatches(b) => b.iter().map(Vec::len).sum(),
    };
    Estimate::Usd(info.cost_of(tokens as u64, 0, 0, false))
}

#[cfg(test)]
mod tests {
    use llmkit_client::ModelInfo;
    use llmkit_types::ChatMessage;

    use super::*;

    fn req(model: &str) -> ChatCompletionRequest {
        ChatCompletionRequest::new(model, vec![ChatMessage::user("hi")]).max_tokens(100)
    }

    #[test]
    fn completions_count_every_prompt_and_answer() {
        let cat = ModelCatalog::builtin();
        let mut one = CompletionRequest::new("gpt-4o-mini", "hello there");
        one.max_tokens = Some(100);
        let mut two = one.clone();
        two.prompt = Prompt::Texts(vec!["hello there".into(), "hello there".into()]);
        assert_eq!(completion_prompt_tokens(&one), (2, 1));
        assert_eq!(completion_prompt_tokens(&two), (4, 2));
        let usd = |r: &CompletionRequest| estimate_completion_cost(&cat, r, 16).usd().unwrap();
        assert!((usd(&two) - 2.0 * usd(&one)).abs() < 1e-12);
        let mut best = one.clone();
        best.best_of = Some(3);
        assert!(usd(&best) > usd(&one));
        one.model = "gpt-5.1-mini".into();
        assert_eq!(estimate_completion_cost(&cat, &one, 16), Estimate::Unpriced);
    }

    #[test]
    fn unknown_models_are_unpriced_not_free() {
        let cat = ModelCatalog::builtin();
        assert_eq!(
            estimate_cost(&cat, &req("gpt-5.1-mini"), 1),
            Estimate::Unpriced
        );
        assert_eq!(
            estimate_cost(&cat, &req("local:smollm2-135m"), 1),
            Estimate::Free
        );
        assert!(matches!(estimate_cost(&cat, &req("gpt-4o"), 1), Estimate::Usd(x) if x > 0.0));
        // A model described only by its window is still unpriced.
        let cat = cat.with_overrides([ModelInfo::unknown("gpt-5.1-mini")]);
        assert_eq!(
            estimate_cost(&cat, &req("gpt-5.1-mini"), 1),
            Estimate::Unpriced
        );
    }
}
