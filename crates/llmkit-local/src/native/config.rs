//! The model's shape and arithmetic settings, read from the GGUF metadata (the first half of
//! loading): sizes, head layout, RMS epsilon, RoPE frequencies and scaling, the sliding window
//! and the score scale, each checked against what the forward pass supports.

use candle_core::quantized::gguf_file::Value;

use super::arch::RopeStyle;
use crate::error::LocalError;
use crate::generate::Arch;
use crate::gguf::{GgufFile, Meta};
use crate::kernels::QK;

/// The gated feed-forward's activation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum FfnAct {
    Silu,
    /// GELU (tanh form) looked up in an f16 table, as ggml's CPU backend computes it.
    Gelu,
}

/// Rotary frequencies: `pos * base^(-2i / n_rot) * freq_scale`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct RopeFreqs {
    pub(super) base: f32,
    pub(super) freq_scale: f32,
}

/// Shape facts of the model.
#[derive(Debug, Clone)]
pub(super) struct Config {
    pub(super) n_embd: usize,
    pub(super) n_head: usize,
    pub(super) n_kv_head: usize,
    pub(super) head_dim: usize,
    pub(super) n_layer: usize,
    pub(super) n_ff: usize,
    pub(super) n_vocab: usize,
    pub(super) n_rot: usize,
    pub(super) eps: f32,
    pub(super) rope: RopeFreqs,
    /// Per-pair divisors of the rotary frequencies (Llama 3.1+ `rope_freqs.weight`).
    pub(super) rope_factors: Option<Vec<f32>>,
    pub(super) rope_style: RopeStyle,
    pub(super) ffn_act: FfnAct,
    /// Token embeddings are multiplied by this (gemma3: `sqrt(n_embd)`).
    pub(super) embd_scale: Option<f32>,
    /// The attention's score scale.
    pub(super) attn_scale: f32,
    /// Whether the scale multiplies Q before attention (phi3, gemma3, as llama.cpp's graphs
    /// do) rather than each score.
    pub(super) q_prescale: bool,
    /// Sliding-window layers (gemma3): keys more than `window - 1` positions back are
    /// masked, and RoPE uses `rope` of the window.
    pub(super) swa: Option<SlidingWindow>,
}

/// The sliding-window attention of some layers.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct SlidingWindow {
    pub(super) window: usize,
    pub(super) rope: RopeFreqs,
}

/// A model file this engine cannot run as it is.
pub(super) fn invalid(file: &GgufFile, detail: String) -> LocalError {
    LocalError::InvalidModel {
        path: file.path().to_path_buf(),
        detail,
    }
}

impl Config {
    pub(super) fn q_dim(&self) -> usize {
        self.n_head * self.head_dim
    }

    pub(super) fn kv_dim(&self) -> usize {
        self.n_kv_head * self.head_dim
    }

    /// Reads the configuration of `file` (without `rope_factors`, a tensor the weights
    /// supply).
    pub(super) fn read(file: &GgufFile) -> Result<Config, LocalError> {
        let invalid = |detail: String| invalid(file, detail);
        let meta = Meta(file.content());
        let arch = meta
            .str("general.architecture")
            .ok_or_else(|| invalid("the GGUF metadata has no `general.architecture`".into()))?
            .to_string();
        let family = Arch::from_name(&arch)
            .ok_or_else(|| invalid(format!("the native engine does not run `{arch}`")))?;
        let key = |name: &str| format!("{arch}.{name}");
        let count = |name: &str| {
            meta.u64(&key(name))
                .and_then(|n| usize::try_from(n).ok())
                .filter(|&n| n > 0)
        };
        let need = |name: &str| -> Result<usize, LocalError> {
            count(name).ok_or_else(|| invalid(format!("the GGUF metadata has no `{}`", key(name))))
        };
        let n_embd = need("embedding_length")?;
        let n_head = need("attention.head_count")?;
        let n_kv_head = count("attention.head_count_kv").unwrap_or(n_head);
        let n_layer = need("block_count")?;
        let n_ff = need("feed_forward_length")?;
        if !n_head.is_multiple_of(n_kv_head) {
            return Err(invalid(format!(
                "{n_kv_head} KV heads do not divide {n_head} heads"
            )));
        }
        // qwen3 and gemma3 state the head size; the others derive it.
        let head_dim = match count("attention.key_length") {
            Some(k) => k,
            None if n_embd.is_multiple_of(n_head) => n_embd / n_head,
            None => {
                return Err(invalid(format!(
                    "{n_head} heads do not divide {n_embd} dimensions"
                )));
            }
        };
        if count("attention.value_length").is_some_and(|v| v != head_dim) {
            return Err(invalid(
                "keys and values of different sizes are not supported".into(),
            ));
        }
        let n_rot = count("rope.dimension_count").unwrap_or(head_dim);
        if n_rot > head_dim || !n_rot.is_multiple_of(2) || !head_dim.is_multiple_of(QK) {
            return Err(invalid(format!(
                "unsupported head size {head_dim} with {n_rot} rotary dimensions"
            )));
        }
        let f32_of = |name: &str, default: f32| match file.content().metadata.get(&key(name)) {
            Some(Value::F32(v)) => *v,
            Some(Value::F64(v)) => *v as f32,
            _ => default,
        };
        let eps = f32_of("attention.layer_norm_rms_epsilon", 1e-5);
        let freq_scale = match meta.str(&key("rope.scaling.type")) {
            Some("linear") => {
                let factor = f32_of("rope.scaling.factor", 1.0);
                if factor > 0.0 { 1.0 / factor } else { 1.0 }
            }
            _ => 1.0,
        };
        let rope = RopeFreqs {
            base: f32_of("rope.freq_base", 10_000.0),
            freq_scale,
        };
        let gemma = family == Arch::Gemma3;
        // llama.cpp's gemma3: five sliding-window layers, then a global one; the window's
        // RoPE has base 10000 and no scaling. Its 27B model scales scores by the model width.
        let swa = match count("attention.sliding_window") {
            Some(window) if gemma => Some(SlidingWindow {
                window,
                rope: RopeFreqs {
                    base: 10_000.0,
                    freq_scale: 1.0,
                },
            }),
            _ => None,
        };
        let attn_scale = if gemma && n_layer == 62 {
            1.0 / ((n_embd / n_head) as f32).sqrt()
        } else {
            1.0 / (head_dim as f32).sqrt()
        };
        let ffn_act = if gemma { FfnAct::Gelu } else { FfnAct::Silu };

        let n_vocab = file
            .content()
            .tensor_infos
            .get("token_embd.weight")
            .map(|i| i.shape.dims()[0])
            .ok_or_else(|| invalid("tensor `token_embd.weight` is missing".into()))?;
        Ok(Config {
            n_embd,
            n_head,
            n_kv_head,
            head_dim,
            n_layer,
            n_ff,
            n_vocab,
            n_rot,
            eps,
            rope,
            rope_factors: None,
            rope_style: family.rope_style(),
            ffn_act,
            embd_scale: gemma.then(|| (n_embd as f32).sqrt()),
            attn_scale,
            q_prescale: matches!(family, Arch::Phi3 | Arch::Gemma3),
            swa,
        })
    }
}
