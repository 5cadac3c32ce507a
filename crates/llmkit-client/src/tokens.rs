//! Token counting for OpenAI models with tiktoken (o200k_base / cl100k_base), loaded lazily once.
//!
//! The encodings ship inside tiktoken-rs, so counting works offline. Loading one takes
//! about 120-160 ms in release builds; tiktoken-rs's `*_singleton` functions load each at
//! most once per process (behind a `OnceLock`) and only when first used.

use llmkit_types::{ChatMessage, ContentPart, MessageContent};

use crate::image_tokens::{data_uri_image_size, image_tokens};
use tiktoken_rs::CoreBPE;

/// A tiktoken encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Encoding {
    /// GPT-4o, GPT-4.1, GPT-4.5, GPT-5 and the o-series.
    O200kBase,
    /// GPT-4, GPT-3.5 and the OpenAI embedding models.
    Cl100kBase,
}

impl Encoding {
    /// The encoding's tiktoken name.
    pub fn name(self) -> &'static str {
        match self {
            Self::O200kBase => "o200k_base",
            Self::Cl100kBase => "cl100k_base",
        }
    }

    fn bpe(self) -> &'static CoreBPE {
        match self {
            Self::O200kBase => tiktoken_rs::o200k_base_singleton(),
            Self::Cl100kBase => tiktoken_rs::cl100k_base_singleton(),
        }
    }
}

/// The encoding a model uses. A provider prefix such as `openai/` is ignored; unknown models
/// get `o200k_base`, the encoding of every current OpenAI model.
pub fn encoding_for_model(model: &str) -> Encoding {
    let m = model
        .rsplit('/')
        .next()
        .unwrap_or(model)
        .to_ascii_lowercase();
    const O200K: [&str; 8] = [
        "gpt-4o",
        "gpt-4.1",
        "gpt-4.5",
        "gpt-5",
        "o1",
        "o3",
        "o4",
        "chatgpt-4o",
    ];
    const CL100K: [&str; 6] = [
        "gpt-4",
        "gpt-3.5",
        "gpt-35",
        "text-embedding-3",
        "text-embedding-ada-002",
        "ft:gpt-3.5",
    ];
    if O200K.iter().any(|p| m.starts_with(p)) || m.starts_with("ft:gpt-4o") {
        Encoding::O200kBase
    } else if CL100K.iter().any(|p| m.starts_with(p)) {
        Encoding::Cl100kBase
    } else {
        Encoding::O200kBase
    }
}

/// The number of tokens in `text`. Special-token text such as `<|endoftext|>` is counted as
/// ordinary text, which is how the API treats it inside a message.
pub fn count_tokens(encoding: Encoding, text: &str) -> usize {
    if text.is_empty() {
        return 0;
    }
    encoding.bpe().encode_ordinary(text).len()
}

/// The prompt tokens a chat request will be billed for, by the OpenAI cookbook's rule:
/// 3 tokens per message plus the tokens of its role, content and name (+1 when a name is
/// set), plus 3 that prime the reply.
///
/// Images count by OpenAI's published rule for the model ([`crate::image_tokens`]), from the
/// size inside a `data:` URI (an image by URL counts as the largest the rule allows). The
/// rest is an estimate for what the rule does not cover: audio and file parts are not
/// counted (a PDF is billed as its extracted text plus an image of each page, unknown before
/// the server reads it), and an assistant message's tool calls count as the tokens of their
/// function names and arguments. Tool definitions in the request are not counted either.
pub fn count_chat_tokens(model: &str, messages: &[ChatMessage]) -> usize {
    let enc = encoding_for_model(model);
    let mut n = 3;
    for m in messages {
        n += 3;
        n += count_tokens(enc, m.role.as_str());
        if let Some(content) = &m.content {
            n += match content {
                MessageContent::Text(s) => count_tokens(enc, s),
                MessageContent::Parts(parts) => {
                    let images: u64 = parts
                        .iter()
                        .filter_map(|p| match p {
                            ContentPart::ImageUrl { image_url } => Some(image_tokens(
                                model,
                                data_uri_image_size(&image_url.url),
                                image_url.detail.as_ref(),
                            )),
                            _ => None,
                        })
                        .sum();
                    count_tokens(enc, &content.to_text())
                        + usize::try_from(images).unwrap_or(usize::MAX)
                }
            };
        }
        if let Some(name) = &m.name {
            n += count_tokens(enc, name) + 1;
        }
        for call in m.tool_calls.iter().flatten() {
            n += count_tokens(enc, &call.function.name)
                + count_tokens(enc, &call.function.arguments);
        }
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodings_by_model() {
        use Encoding::*;
        for (m, e) in [
            ("gpt-4o-mini-2024-07-18", O200kBase),
            ("gpt-4.1-nano", O200kBase),
            ("gpt-5", O200kBase),
            ("o3-mini", O200kBase),
            ("o1", O200kBase),
            ("chatgpt-4o-latest", O200kBase),
            ("gpt-4", Cl100kBase),
            ("gpt-4-0613", Cl100kBase),
            ("gpt-4-turbo", Cl100kBase),
            ("gpt-3.5-turbo", Cl100kBase),
            ("text-embedding-3-small", Cl100kBase),
            ("text-embedding-ada-002", Cl100kBase),
            ("openai/gpt-4", Cl100kBase),
            ("llama-3-8b", O200kBase),
        ] {
            assert_eq!(encoding_for_model(m), e, "{m}");
        }
    }

    #[test]
    fn empty_text_costs_nothing() {
        assert_eq!(count_tokens(Encoding::O200kBase, ""), 0);
        assert_eq!(count_chat_tokens("gpt-4o", &[]), 3);
    }
}
