//! Sentence embeddings with all-MiniLM-L6-v2 (BERT via candle): tokenize, mean-pool, L2-normalise.
// Loading the weights through a memory map needs `unsafe`; it is allowed in this file only.
#![allow(unsafe_code)]

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{BertModel, Config};
use tokenizers::{Tokenizer, TruncationParams};

/// The model name reported when the model directory has no usable name of its own;
/// also the directory name the catalog gives all-MiniLM-L6-v2.
pub const FALLBACK_MODEL_NAME: &str = "all-MiniLM-L6-v2";

/// Inputs are cut to this many word pieces, `[CLS]` and `[SEP]` included, as
/// sentence-transformers does for all-MiniLM-L6-v2 (`max_seq_length` 256): the
/// model was trained on that length, although its position table has 512 slots.
pub const MAX_SEQ_LEN: usize = 256;

/// How many texts go through the model in one forward pass. Texts are sorted by
/// length first, so each chunk pads to a similar length.
const CHUNK: usize = 32;

const WEIGHTS_FILE: &str = "model.safetensors";
const TOKENIZER_FILE: &str = "tokenizer.json";
const CONFIG_FILE: &str = "config.json";
const FETCH_HINT: &str = "run scripts/fetch-models.sh to download the default models";

/// Errors from loading or running the embedding model.
#[derive(Debug, thiserror::Error)]
pub enum EmbedError {
    /// The model directory or one of its files does not exist.
    #[error("embedding model file {} not found", path.display())]
    Missing { path: PathBuf },
    /// A model file exists but could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// `config.json` is not a BERT configuration.
    #[error("invalid model config {}: {source}", path.display())]
    Config {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    /// The tokenizer could not be loaded or failed on an input.
    #[error("tokenizer error: {0}")]
    Tokenizer(#[source] tokenizers::Error),
    /// The tensor runtime failed (bad weights, shape mismatch, out of memory).
    #[error("embedding model error: {0}")]
    Model(#[from] candle_core::Error),
}

impl EmbedError {
    /// A line telling the user what to do next, when there is something useful to say.
    pub fn hint(&self) -> Option<String> {
        match self {
            Self::Missing { .. } => Some(FETCH_HINT.to_string()),
            Self::Config { .. } => Some(format!("{FETCH_HINT} again")),
            Self::Io { .. } => Some("check that the file exists and is readable".to_string()),
            Self::Tokenizer(_) | Self::Model(_) => None,
        }
    }
}

/// Vectors for a batch of texts plus the number of tokens the model processed.
#[derive(Debug, Clone, PartialEq)]
pub struct Embeddings {
    /// One unit-length vector per input text, in input order.
    pub vectors: Vec<Vec<f32>>,
    /// Tokens fed to the model over all inputs: `[CLS]` and `[SEP]` included,
    /// padding excluded, after truncation to [`MAX_SEQ_LEN`].
    pub prompt_tokens: usize,
}

/// A loaded sentence-embedding model. Cloning is cheap and shares the weights;
/// `embed` takes `&self`, so one instance can serve several threads.
#[derive(Clone)]
pub struct Embedder {
    inner: Arc<Inner>,
}

struct Inner {
    name: String,
    dimensions: usize,
    model: BertModel,
    /// Truncates to [`MAX_SEQ_LEN`]; padding is done per chunk in [`Embedder::embed_chunk`].
    tokenizer: Tokenizer,
    /// Neither truncates nor pads, so `count_tokens` reports the full length.
    counter: Tokenizer,
    device: Device,
}

impl Embedder {
    /// Loads `model.safetensors`, `tokenizer.json` and `config.json` from `dir`.
    pub fn load(dir: &Path) -> Result<Embedder, EmbedError> {
        let weights = existing(dir, WEIGHTS_FILE)?;
        let tokenizer_path = existing(dir, TOKENIZER_FILE)?;
        let config_path = existing(dir, CONFIG_FILE)?;

        let config_text = fs::read_to_string(&config_path).map_err(|source| EmbedError::Io {
            path: config_path.clone(),
            source,
        })?;
        let config: Config =
            serde_json::from_str(&config_text).map_err(|source| EmbedError::Config {
                path: config_path,
                source,
            })?;

        let mut counter = Tokenizer::from_file(&tokenizer_path).map_err(EmbedError::Tokenizer)?;
        // The shipped tokenizer.json pads every input to a fixed 128 and truncates at 128.
        counter.with_padding(None);
        counter
            .with_truncation(None)
            .map_err(EmbedError::Tokenizer)?;
        let mut tokenizer = counter.clone();
        let max_length = MAX_SEQ_LEN.min(config.max_position_embeddings);
        tokenizer
            .with_truncation(Some(TruncationParams {
                max_length,
                ..TruncationParams::default()
            }))
            .map_err(EmbedError::Tokenizer)?;

        let device = Device::Cpu;
        // SAFETY: the file is mapped read-only and candle copies every tensor out of
        // the map while `BertModel::load` runs; the map is dropped with the builder.
        // Changing the file on disk during those milliseconds is the only hazard,
        // as with any memory-mapped read.
        let vb = unsafe { VarBuilder::from_mmaped_safetensors(&[&weights], DType::F32, &device)? };
        // BertModel::load accepts tensor names with or without a `bert.` prefix.
        let model = BertModel::load(vb, &config)?;

        let name = dir
            .file_name()
            .and_then(|n| n.to_str())
            .filter(|n| !n.is_empty())
            .unwrap_or(FALLBACK_MODEL_NAME)
            .to_owned();
        Ok(Embedder {
            inner: Arc::new(Inner {
                name,
                dimensions: config.hidden_size,
                model,
                tokenizer,
                counter,
                device,
            }),
        })
    }

    /// The model's name: the name of the directory it was loaded from.
    pub fn model_name(&self) -> &str {
        &self.inner.name
    }

    /// Length of every vector (384 for all-MiniLM-L6-v2).
    pub fn dimensions(&self) -> usize {
        self.inner.dimensions
    }

    /// Embeds `texts` into unit-length vectors, in input order.
    pub fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, EmbedError> {
        Ok(self.embed_with_usage(texts)?.vectors)
    }

    /// Like [`Embedder::embed`], and also counts the tokens the model processed.
    pub fn embed_with_usage(&self, texts: &[&str]) -> Result<Embeddings, EmbedError> {
        let inner = &self.inner;
        let encodings = inner
            .tokenizer
            .encode_batch(texts.to_vec(), true)
            .map_err(EmbedError::Tokenizer)?;
        let prompt_tokens = encodings.iter().map(|e| e.get_ids().len()).sum();

        // Sort by length so each chunk pads little, then restore the input order.
        let mut order: Vec<usize> = (0..encodings.len()).collect();
        order.sort_by_key(|&i| encodings[i].get_ids().len());
        let mut vectors = vec![Vec::new(); encodings.len()];
        for chunk in order.chunks(CHUNK) {
            let ids: Vec<&[u32]> = chunk.iter().map(|&i| encodings[i].get_ids()).collect();
            for (&i, v) in chunk.iter().zip(self.embed_chunk(&ids)?) {
                vectors[i] = v;
            }
        }
        Ok(Embeddings {
            vectors,
            prompt_tokens,
        })
    }

    /// Number of tokens `text` becomes, `[CLS]` and `[SEP]` included, before truncation:
    /// a result above [`MAX_SEQ_LEN`] means the tail of the text would be ignored.
    pub fn count_tokens(&self, text: &str) -> Result<usize, EmbedError> {
        let encoding = self
            .inner
            .counter
            .encode(text, true)
            .map_err(EmbedError::Tokenizer)?;
        Ok(encoding.get_ids().len())
    }

    /// Runs one padded batch through BERT and returns mean-pooled, normalised vectors.
    fn embed_chunk(&self, ids: &[&[u32]]) -> Result<Vec<Vec<f32>>, EmbedError> {
        let inner = &self.inner;
        let width = ids.iter().map(|s| s.len()).max().unwrap_or(0);
        let (flat_ids, flat_mask) = pad(ids, width);
        let shape = (ids.len(), width);
        let input_ids = Tensor::from_vec(flat_ids, shape, &inner.device)?;
        let mask = Tensor::from_vec(flat_mask, shape, &inner.device)?;
        let token_types = input_ids.zeros_like()?;

        let hidden = inner.model.forward(&input_ids, &token_types, Some(&mask))?;
        let mask = mask.to_dtype(DType::F32)?.unsqueeze(2)?;
        let summed = hidden.broadcast_mul(&mask)?.sum(1)?;
        let counts = mask.sum(1)?.clamp(1e-9f32, f32::MAX)?;
        let mean = summed.broadcast_div(&counts)?;
        let norms = mean
            .sqr()?
            .sum_keepdim(1)?
            .sqrt()?
            .clamp(1e-12f32, f32::MAX)?;
        Ok(mean.broadcast_div(&norms)?.to_vec2::<f32>()?)
    }
}

/// Cosine similarity of two vectors; 0 when either is all zeros or the lengths differ.
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    if a.len() != b.len() {
        return 0.0;
    }
    let (mut dot, mut na, mut nb) = (0.0f32, 0.0f32, 0.0f32);
    for (x, y) in a.iter().zip(b) {
        dot += x * y;
        na += x * x;
        nb += y * y;
    }
    let denom = (na * nb).sqrt();
    if denom == 0.0 { 0.0 } else { dot / denom }
}

/// `dir/file`, or [`EmbedError::Missing`] naming the first thing that is absent.
fn existing(dir: &Path, file: &str) -> Result<PathBuf, EmbedError> {
    if !dir.is_dir() {
        return Err(EmbedError::Missing {
            path: dir.to_path_buf(),
        });
    }
    let path = dir.join(file);
    if path.is_file() {
        Ok(path)
    } else {
        Err(EmbedError::Missing { path })
    }
}

/// Right-pads each id sequence with 0 ([PAD]) to `width`; returns ids and the attention mask, flattened.
fn pad(ids: &[&[u32]], width: usize) -> (Vec<u32>, Vec<u32>) {
    let mut flat_ids = Vec::with_capacity(ids.len() * width);
    let mut flat_mask = Vec::with_capacity(ids.len() * width);
    for seq in ids {
        flat_ids.extend_from_slice(seq);
        flat_ids.resize(flat_ids.len() + width - seq.len(), 0);
        flat_mask.resize(flat_mask.len() + seq.len(), 1);
        flat_mask.resize(flat_mask.len() + width - seq.len(), 0);
    }
    (flat_ids, flat_mask)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The embedder, or `None` (with a message; a failure under `LLMKIT_REQUIRE_MODELS=1`)
    /// when the model has not been fetched.
    #[track_caller]
    fn embedder() -> Option<Embedder> {
        let weights = llmkit_testkit::fixtures::require_model(&format!(
            "{FALLBACK_MODEL_NAME}/{WEIGHTS_FILE}"
        ))?;
        let dir = weights.parent()?.to_path_buf();
        match Embedder::load(&dir) {
            Ok(e) => Some(e),
            Err(e) => panic!("loading {}: {e}", dir.display()),
        }
    }

    fn norm(v: &[f32]) -> f32 {
        v.iter().map(|x| x * x).sum::<f32>().sqrt()
    }

    #[test]
    fn cosine_basics() {
        assert!((cosine(&[1.0, 0.0], &[1.0, 0.0]) - 1.0).abs() < 1e-6);
        assert!(cosine(&[1.0, 0.0], &[0.0, 2.0]).abs() < 1e-6);
        assert!((cosine(&[1.0, 1.0], &[-1.0, -1.0]) + 1.0).abs() < 1e-6);
        assert_eq!(cosine(&[0.0, 0.0], &[1.0, 0.0]), 0.0);
        assert_eq!(cosine(&[1.0], &[1.0, 0.0]), 0.0);
    }

    #[test]
    fn embedder_is_shareable_across_threads() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Embedder>();
    }

    #[test]
    fn pad_builds_ids_and_mask() {
        let (ids, mask) = pad(&[&[101, 7, 102], &[101, 102]], 3);
        assert_eq!(ids, vec![101, 7, 102, 101, 102, 0]);
        assert_eq!(mask, vec![1, 1, 1, 1, 1, 0]);
    }

    #[test]
    fn missing_dir_has_hint() {
        let err = Embedder::load(Path::new("/nonexistent/llmkit/all-MiniLM-L6-v2"))
            .err()
            .expect("a missing directory fails");
        let hint = err.hint().unwrap_or_default();
        assert!(hint.contains("scripts/fetch-models.sh"), "{hint}");
        assert!(!err.to_string().contains("hint"), "{err}");
    }

    #[test]
    fn embed_shape_norm_and_name() {
        let Some(e) = embedder() else { return };
        assert_eq!(e.model_name(), "all-MiniLM-L6-v2");
        assert_eq!(e.dimensions(), 384);
        let out = e.embed_with_usage(&["Hello world", ""]).unwrap();
        assert_eq!(out.vectors.len(), 2);
        for v in &out.vectors {
            assert_eq!(v.len(), 384);
            assert!((norm(v) - 1.0).abs() < 1e-4, "norm {}", norm(v));
        }
        // "hello", "world" plus [CLS] [SEP]; the empty string is [CLS] [SEP].
        assert_eq!(out.prompt_tokens, 4 + 2);
        assert!(e.embed(&[]).unwrap().is_empty());
    }

    #[test]
    fn paraphrases_are_close_and_unrelated_texts_are_not() {
        let Some(e) = embedder() else { return };
        let v = e
            .embed(&[
                "A man is playing a guitar.",
                "Someone plays the guitar.",
                "The stock market fell sharply on Monday.",
            ])
            .unwrap();
        let para = cosine(&v[0], &v[1]);
        let unrelated = cosine(&v[0], &v[2]);
        eprintln!("paraphrase {para:.4}, unrelated {unrelated:.4}");
        assert!(para > 0.5, "paraphrase cosine {para}");
        assert!(unrelated < 0.2, "unrelated cosine {unrelated}");
    }

    #[test]
    fn batch_matches_single() {
        let Some(e) = embedder() else { return };
        let texts = [
            "short",
            "A considerably longer sentence, so that the batch needs padding.",
            "Rust is a systems programming language.",
        ];
        let batch = e.embed(&texts).unwrap();
        for (text, b) in texts.iter().zip(&batch) {
            let single = e.embed(&[text]).unwrap();
            let max_diff = single[0]
                .iter()
                .zip(b)
                .map(|(x, y)| (x - y).abs())
                .fold(0.0f32, f32::max);
            assert!(max_diff < 1e-4, "{text:?}: max diff {max_diff}");
        }
    }

    /// Compares against tests/fixtures/minilm_reference.json, written by
    /// benches/local/minilm_reference.py with an independent NumPy BERT.
    #[test]
    fn matches_numpy_reference() {
        let Some(e) = embedder() else { return };
        let path =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/minilm_reference.json");
        let text = fs::read_to_string(&path).unwrap();
        let reference: serde_json::Value = serde_json::from_str(&text).unwrap();
        let items = reference["items"].as_array().unwrap();
        let texts: Vec<&str> = items.iter().map(|i| i["text"].as_str().unwrap()).collect();
        let ours = e.embed(&texts).unwrap();
        let mut worst = 0.0f32;
        for (item, v) in items.iter().zip(&ours) {
            let ids: Vec<u32> = serde_json::from_value(item["ids"].clone()).unwrap();
            let enc = e
                .inner
                .tokenizer
                .encode(item["text"].as_str().unwrap(), true)
                .unwrap();
            assert_eq!(enc.get_ids(), ids.as_slice(), "ids of {:?}", item["text"]);
            let want: Vec<f32> = serde_json::from_value(item["vector"].clone()).unwrap();
            assert_eq!(want.len(), v.len());
            let diff = want
                .iter()
                .zip(v)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0, f32::max);
            worst = worst.max(diff);
        }
        eprintln!("max abs difference to the NumPy reference: {worst:e}");
        assert!(worst < 1e-5, "max abs difference {worst}");
    }

    #[test]
    fn count_tokens_is_untruncated_and_embedding_truncates() {
        let Some(e) = embedder() else { return };
        assert_eq!(e.count_tokens("Hello world").unwrap(), 4);
        let long = "word ".repeat(600);
        assert_eq!(e.count_tokens(&long).unwrap(), 602);
        let out = e.embed_with_usage(&[&long]).unwrap();
        assert_eq!(out.prompt_tokens, MAX_SEQ_LEN);
        assert!((norm(&out.vectors[0]) - 1.0).abs() < 1e-4);
    }
}
