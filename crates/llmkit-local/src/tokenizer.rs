//! Builds the text tokenizer of a GGUF model (from its metadata, or a `tokenizer.json` beside it)
//! so that token ids match llama.cpp's, and knows the model's special tokens.

use std::path::{Path, PathBuf};

use candle_core::quantized::tokenizer::TokenizerFromGguf;
use tokenizers::pre_tokenizers::PreTokenizerWrapper;
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::digits::Digits;
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::pre_tokenizers::split::{Split, SplitPattern};
use tokenizers::{SplitDelimiterBehavior, Tokenizer};

use crate::error::{LocalError, candle_message, guard};
use crate::gguf::{GgufFile, Meta};

/// Token texts that end a turn or a document in the model families we support. Each one that is
/// in the vocabulary stops generation, besides the ids the GGUF names.
const END_TOKENS: &[&str] = &[
    "<|im_end|>",
    "<|eot_id|>",
    "<|eom_id|>",
    "<|end_of_text|>",
    "<end_of_turn>",
    "<|end|>",
    "<|endoftext|>",
    "</s>",
];

/// llama.cpp's Llama 3 split regex (also used for `smaug-bpe`).
const REGEX_LLAMA3: &str = r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

/// The tokenizer plus what generation needs to know about special tokens.
pub(crate) struct TextCodec {
    tokenizer: Tokenizer,
    /// The beginning-of-sequence token, as text and id.
    pub(crate) bos: Option<(String, u32)>,
    /// The end-of-sequence token text (templates use it).
    pub(crate) eos_text: Option<String>,
    /// Whether the model wants a BOS token in front of every prompt.
    add_bos: bool,
    /// Every id that ends generation.
    pub(crate) stop_ids: Vec<u32>,
    /// Each id's text alone, made on first use by JSON-constrained decoding (`None`: a
    /// special token, or part of a character).
    pieces: std::sync::OnceLock<Vec<Option<String>>>,
}

impl TextCodec {
    /// Builds the tokenizer for `gguf`.
    pub(crate) fn load(gguf: &GgufFile, original_path: &Path) -> Result<Self, LocalError> {
        let meta = Meta(gguf.content());
        let tokenizer = match meta.str("tokenizer.ggml.model") {
            Some("gpt2") => from_gguf_bpe(gguf)?,
            kind => from_json_beside(original_path, kind)?,
        };
        let tokens = meta.string_array("tokenizer.ggml.tokens");
        let token_text = |key: &str| -> Option<(String, u32)> {
            let id = u32::try_from(meta.u64(key)?).ok()?;
            let text = match &tokens {
                Some(tokens) => tokens.get(id as usize).map(|s| (*s).to_string()),
                None => tokenizer.id_to_token(id),
            }?;
            Some((text, id))
        };
        let bos = token_text("tokenizer.ggml.bos_token_id");
        let eos = token_text("tokenizer.ggml.eos_token_id");
        let mut stop_ids: Vec<u32> = Vec::new();
        for key in [
            "tokenizer.ggml.eos_token_id",
            "tokenizer.ggml.eot_token_id",
            "tokenizer.ggml.eom_token_id",
        ] {
            if let Some((_, id)) = token_text(key) {
                stop_ids.push(id);
            }
        }
        stop_ids.extend(END_TOKENS.iter().filter_map(|t| tokenizer.token_to_id(t)));
        stop_ids.sort_unstable();
        stop_ids.dedup();
        Ok(Self {
            tokenizer,
            bos,
            eos_text: eos.map(|(text, _)| text),
            add_bos: meta.bool("tokenizer.ggml.add_bos_token").unwrap_or(false),
            stop_ids,
            pieces: std::sync::OnceLock::new(),
        })
    }

    /// Every id's text decoded alone (about 50 ms for a 50k vocabulary, once).
    pub(crate) fn pieces(&self) -> &[Option<String>] {
        self.pieces.get_or_init(|| {
            let n = self.tokenizer.get_vocab_size(true) as u32;
            (0..n)
                .map(|id| {
                    let text = self.tokenizer.decode(&[id], true).ok()?;
                    (!text.is_empty() && !text.contains('\u{FFFD}')).then_some(text)
                })
                .collect()
        })
    }

    /// Token ids of `text` with no BOS/EOS added. Special-token texts in `text` (such as
    /// `<|im_start|>`) become their special ids, as in llama.cpp's templated prompts.
    pub(crate) fn encode(&self, text: &str) -> Result<Vec<u32>, LocalError> {
        let encoding = self
            .tokenizer
            .encode(text, false)
            .map_err(|e| LocalError::Tokenizer(e.to_string()))?;
        Ok(encoding.get_ids().to_vec())
    }

    /// Token ids of a full prompt: like [`Self::encode`], plus the BOS token when the model asks
    /// for one and the text (a rendered template) does not already start with it.
    pub(crate) fn encode_prompt(&self, text: &str) -> Result<Vec<u32>, LocalError> {
        let mut ids = self.encode(text)?;
        if self.add_bos
            && let Some((bos_text, bos_id)) = &self.bos
            && !text.starts_with(bos_text.as_str())
        {
            ids.insert(0, *bos_id);
        }
        Ok(ids)
    }

    pub(crate) fn tokenizer(&self) -> &Tokenizer {
        &self.tokenizer
    }
}

/// Byte-level BPE vocabularies stored in the GGUF (SmolLM, Qwen, Llama 3, GPT-2 style).
fn from_gguf_bpe(gguf: &GgufFile) -> Result<Tokenizer, LocalError> {
    let built = guard("building the tokenizer", || {
        Tokenizer::from_gguf(gguf.content())
    })
    .map_err(LocalError::Tokenizer)?;
    let mut tokenizer = built.map_err(|e| LocalError::Tokenizer(candle_message(&e)))?;
    let pre = Meta(gguf.content())
        .str("tokenizer.ggml.pre")
        .unwrap_or("gpt2")
        .to_string();
    if let Some(pre_tokenizer) = pre_tokenizer_for(&pre)? {
        tokenizer.with_pre_tokenizer(Some(pre_tokenizer));
    }
    Ok(tokenizer)
}

/// The pre-tokenizer that reproduces llama.cpp's split for `pre` (the GGUF's
/// `tokenizer.ggml.pre`), or `None` to keep candle's.
///
/// candle only knows `qwen2`, `llama3`, `smaug-bpe` and `lfm2`; everything else falls back to
/// GPT-2 *with a prefix space*, which adds a spurious space token and shifts every id. llama.cpp
/// never adds that space, and splits digits one by one for the StarCoder-derived vocabularies
/// (SmolLM among them).
fn pre_tokenizer_for(pre: &str) -> Result<Option<PreTokenizerWrapper>, LocalError> {
    let byte_level = || ByteLevel::new(false, true, true);
    Ok(match pre {
        "qwen2" | "llama3" | "smaug-bpe" | "lfm2" => None,
        "llama-bpe" | "llama-v3" | "falcon3" => {
            let split = Split::new(
                SplitPattern::Regex(REGEX_LLAMA3.to_string()),
                SplitDelimiterBehavior::Isolated,
                false,
            )
            .map_err(|e| LocalError::Tokenizer(e.to_string()))?;
            Some(
                Sequence::new(vec![
                    split.into(),
                    ByteLevel::new(false, true, false).into(),
                ])
                .into(),
            )
        }
        "smollm" | "starcoder" | "refact" | "command-r" | "codeshell" | "exaone" | "minerva" => {
            Some(Sequence::new(vec![Digits::new(true).into(), byte_level().into()]).into())
        }
        _ => Some(byte_level().into()),
    })
}

/// SentencePiece and other vocabularies: use a `tokenizer.json` beside the model.
fn from_json_beside(model_path: &Path, kind: Option<&str>) -> Result<Tokenizer, LocalError> {
    let candidates = tokenizer_json_candidates(model_path);
    for candidate in &candidates {
        if candidate.is_file() {
            return Tokenizer::from_file(candidate).map_err(|e| {
                LocalError::Tokenizer(format!("cannot load {}: {e}", candidate.display()))
            });
        }
    }
    let kind = kind.unwrap_or("unknown");
    let wanted = candidates
        .first()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| "tokenizer.json".into());
    Err(LocalError::Tokenizer(format!(
        "the model's `{kind}` vocabulary cannot be read from the GGUF; put the model's tokenizer.json at {wanted}"
    )))
}

/// `<dir>/<stem>.tokenizer.json`, then `<dir>/tokenizer.json`.
fn tokenizer_json_candidates(model_path: &Path) -> Vec<PathBuf> {
    let dir = model_path.parent().unwrap_or_else(|| Path::new("."));
    let mut out = Vec::new();
    if let Some(stem) = model_path.file_stem().and_then(|s| s.to_str()) {
        out.push(dir.join(format!("{stem}.tokenizer.json")));
    }
    out.push(dir.join("tokenizer.json"));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_pre_tokenizers_are_mapped() {
        assert!(pre_tokenizer_for("qwen2").unwrap().is_none());
        assert!(pre_tokenizer_for("smollm").unwrap().is_some());
        assert!(pre_tokenizer_for("llama-bpe").unwrap().is_some());
        assert!(pre_tokenizer_for("something-new").unwrap().is_some());
    }

    #[test]
    fn tokenizer_json_is_looked_for_beside_the_model() {
        let c = tokenizer_json_candidates(Path::new("/m/TinyLlama.Q4_0.gguf"));
        assert_eq!(
            c,
            vec![
                PathBuf::from("/m/TinyLlama.Q4_0.tokenizer.json"),
                PathBuf::from("/m/tokenizer.json")
            ]
        );
    }
}
