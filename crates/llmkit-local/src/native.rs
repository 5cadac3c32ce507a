//! llmkit-local's own forward pass for the architectures it supports (llama: SmolLM2, Llama,
//! TinyLlama; qwen2; qwen3; phi3; gemma3) when their matrices are Q4_1, Q8_0, Q4_K or Q6_K (the
//! types of Q4_K_M files): it multiplies straight from the memory-mapped GGUF (no copy, no
//! conversion), looks token embeddings up by dequantizing only the needed row, keeps its own
//! f16 KV cache, and follows llama.cpp's CPU arithmetic and graph for each architecture step by
//! step (activations quantized per block like ggml, RMS norm summed in f64, ggml's RoPE modes,
//! flash-attention accumulation and GELU table), so greedy output tracks llama.cpp's.
//!
//! Files with other quant types, or with tensors this engine does not know, run on candle's
//! models instead.

use std::sync::OnceLock;

use candle_core::quantized::GgmlDType;
use candle_core::quantized::gguf_file::Value;
use half::f16;
use rayon::prelude::*;

use crate::error::LocalError;
use crate::generate::Arch;
use crate::gguf::{GgufFile, Meta};
use crate::kernels::{self, ActType, QK, QK_K, WeightType};

/// How this engine builds each architecture's graph (as llama.cpp does).
impl Arch {
    /// ggml's RoPE mode: llama's converted Q/K weights rotate adjacent pairs, the others the
    /// two halves of the rotated part (NeoX mode).
    fn rope_style(self) -> RopeStyle {
        match self {
            Arch::Llama => RopeStyle::Adjacent,
            _ => RopeStyle::Halves,
        }
    }

    /// Whether `name` (without its `blk.N.` prefix for layer tensors) is a tensor this engine
    /// reads for the family. A file with any other tensor runs on candle.
    fn knows(self, name: &str) -> bool {
        let global = matches!(
            name,
            "token_embd.weight" | "output.weight" | "output_norm.weight"
        ) || (self == Arch::Llama && name == "rope_freqs.weight");
        if global {
            return true;
        }
        let Some(rest) = name.strip_prefix("blk.") else {
            return false;
        };
        let Some((index, tensor)) = rest.split_once('.') else {
            return false;
        };
        if index.parse::<usize>().is_err() {
            return false;
        }
        let common = matches!(
            tensor,
            "attn_norm.weight"
                | "attn_output.weight"
                | "ffn_norm.weight"
                | "ffn_up.weight"
                | "ffn_down.weight"
        );
        let separate_qkv = matches!(
            tensor,
            "attn_q.weight" | "attn_k.weight" | "attn_v.weight" | "ffn_gate.weight"
        );
        common
            || match self {
                Arch::Llama => separate_qkv,
                Arch::Qwen2 => {
                    separate_qkv || matches!(tensor, "attn_q.bias" | "attn_k.bias" | "attn_v.bias")
                }
                Arch::Qwen3 => {
                    separate_qkv || matches!(tensor, "attn_q_norm.weight" | "attn_k_norm.weight")
                }
                // Phi-3 files fuse Q, K and V in `attn_qkv` and gate with up in `ffn_up`.
                Arch::Phi3 => tensor == "attn_qkv.weight",
                Arch::Gemma3 => {
                    separate_qkv
                        || matches!(
                            tensor,
                            "attn_q_norm.weight"
                                | "attn_k_norm.weight"
                                | "post_attention_norm.weight"
                                | "post_ffw_norm.weight"
                        )
                }
            }
    }
}

/// How RoPE pairs the values of a head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RopeStyle {
    /// ggml's normal mode: values `2i` and `2i + 1`.
    Adjacent,
    /// ggml's NeoX mode: values `i` and `i + n_rot / 2`.
    Halves,
}

/// The gated feed-forward's activation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FfnAct {
    Silu,
    /// GELU (tanh form) looked up in an f16 table, as ggml's CPU backend computes it.
    Gelu,
}

/// Rotary frequencies: `pos * base^(-2i / n_rot) * freq_scale`.
#[derive(Debug, Clone, Copy, PartialEq)]
struct RopeFreqs {
    base: f32,
    freq_scale: f32,
}

/// Shape facts of the model.
#[derive(Debug, Clone)]
struct Config {
    n_embd: usize,
    n_head: usize,
    n_kv_head: usize,
    head_dim: usize,
    n_ff: usize,
    n_vocab: usize,
    n_rot: usize,
    eps: f32,
    rope: RopeFreqs,
    /// Per-pair divisors of the rotary frequencies (Llama 3.1+ `rope_freqs.weight`).
    rope_factors: Option<Vec<f32>>,
    rope_style: RopeStyle,
    ffn_act: FfnAct,
    /// Token embeddings are multiplied by this (gemma3: `sqrt(n_embd)`).
    embd_scale: Option<f32>,
    /// The attention's score scale.
    attn_scale: f32,
    /// Whether the scale multiplies Q before attention (phi3, gemma3, as llama.cpp's graphs
    /// do) rather than each score.
    q_prescale: bool,
    /// Sliding-window layers (gemma3): keys more than `window - 1` positions back are
    /// masked, and RoPE uses `rope` of the window.
    swa: Option<SlidingWindow>,
}

/// The sliding-window attention of some layers.
#[derive(Debug, Clone, Copy, PartialEq)]
struct SlidingWindow {
    window: usize,
    rope: RopeFreqs,
}

impl Config {
    fn q_dim(&self) -> usize {
        self.n_head * self.head_dim
    }

    fn kv_dim(&self) -> usize {
        self.n_kv_head * self.head_dim
    }
}

/// A weight matrix inside the mapped file: `rows` rows of `row_bytes` bytes each.
#[derive(Debug, Clone, Copy)]
struct Matrix {
    wt: WeightType,
    start: usize,
    rows: usize,
    row_bytes: usize,
}

impl Matrix {
    /// `rows` rows of this matrix from row `first` (a part of a fused matrix).
    fn slice(&self, first: usize, rows: usize) -> Matrix {
        Matrix {
            start: self.start + first * self.row_bytes,
            rows,
            ..*self
        }
    }

    fn bytes<'a>(&self, file: &'a [u8]) -> &'a [u8] {
        &file[self.start..self.start + self.rows * self.row_bytes]
    }
}

struct Layer {
    attn_norm: Vec<f32>,
    ffn_norm: Vec<f32>,
    q: Matrix,
    k: Matrix,
    v: Matrix,
    o: Matrix,
    gate: Matrix,
    up: Matrix,
    down: Matrix,
    /// qwen2's attention biases.
    qkv_bias: Option<[Vec<f32>; 3]>,
    /// Per-head RMS norms of Q and K (qwen3, gemma3).
    qk_norm: Option<[Vec<f32>; 2]>,
    /// RMS norms after the attention and after the feed-forward, before each residual add
    /// (gemma3).
    post_norms: Option<[Vec<f32>; 2]>,
    /// Whether the layer attends through the sliding window.
    swa: bool,
}

/// The KV cache of one layer, f16 like llama.cpp's: `[position][kv_head * head_dim]`.
#[derive(Default)]
struct LayerCache {
    k: Vec<u16>,
    v: Vec<u16>,
}

/// One sequence's KV cache (a slot): every layer's, and how many positions it holds.
#[derive(Default)]
struct Sequence {
    layers: Vec<LayerCache>,
    len: usize,
}

/// Tokens of one sequence to run in a batched step.
pub(crate) struct Entry<'a> {
    /// The sequence's cache slot.
    pub(crate) slot: usize,
    /// Its new tokens.
    pub(crate) tokens: &'a [u32],
    /// The position of the first of them.
    pub(crate) pos: usize,
}

/// A loaded model with its cache and worker pool.
pub(crate) struct Native {
    file: GgufFile,
    cfg: Config,
    embd: Matrix,
    output: Matrix,
    output_norm: Vec<f32>,
    layers: Vec<Layer>,
    /// KV caches by slot; a slot is created on first use.
    seqs: Vec<Sequence>,
    pool: rayon::ThreadPool,
    threads: usize,
}

/// Whether the native engine can run `file`: an architecture it knows, Q4_1/Q8_0/Q4_K/Q6_K
/// matrices, f32 vectors, only tensors it reads, and no rope scaling it does not implement.
pub(crate) fn supports(file: &GgufFile) -> bool {
    let meta = Meta(file.content());
    let Some(arch) = meta.str("general.architecture") else {
        return false;
    };
    let Some(family) = Arch::from_name(arch) else {
        return false;
    };
    if let Some(kind) = meta.str(&format!("{arch}.rope.scaling.type"))
        && kind != "none"
        && kind != "linear"
    {
        return false;
    }
    // Mixture-of-experts files have expert tensors this engine does not know.
    if meta
        .u64(&format!("{arch}.expert_count"))
        .is_some_and(|n| n > 0)
    {
        return false;
    }
    file.content().tensor_infos.iter().all(|(name, info)| {
        let dims = info.shape.dims();
        family.knows(name)
            && match info.ggml_dtype {
                GgmlDType::F32 => dims.len() == 1,
                GgmlDType::Q4_1 | GgmlDType::Q8_0 => dims.len() == 2,
                // K-quant rows are whole 256-value super-blocks.
                GgmlDType::Q4K | GgmlDType::Q6K => {
                    dims.len() == 2 && dims[1].is_multiple_of(QK_K)
                }
                _ => false,
            }
    })
}

impl Native {
    /// Builds the engine over `file` (which `supports` accepted), with `threads` workers.
    pub(crate) fn load(file: GgufFile, threads: usize) -> Result<Self, LocalError> {
        let invalid = |detail: String| LocalError::InvalidModel {
            path: file.path().to_path_buf(),
            detail,
        };
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

        let bytes = file.bytes();
        let data_start = usize::try_from(file.content().tensor_data_offset)
            .map_err(|_| invalid("the tensor data offset is too large".into()))?;
        let infos = &file.content().tensor_infos;
        let vector = |name: &str, len: usize| -> Result<Vec<f32>, LocalError> {
            let info = infos
                .get(name)
                .ok_or_else(|| invalid(format!("tensor `{name}` is missing")))?;
            if info.ggml_dtype != GgmlDType::F32 || info.shape.elem_count() != len {
                return Err(invalid(format!(
                    "tensor `{name}` should be {len} f32 values, found {:?} {:?}",
                    info.ggml_dtype,
                    info.shape.dims()
                )));
            }
            let start = data_start + info.offset as usize;
            let raw = bytes
                .get(start..start + len * 4)
                .ok_or_else(|| invalid(format!("tensor `{name}` runs past the end of the file")))?;
            Ok(raw
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect())
        };
        let matrix = |name: &str, rows: usize, cols: usize| -> Result<Matrix, LocalError> {
            let info = infos
                .get(name)
                .ok_or_else(|| invalid(format!("tensor `{name}` is missing")))?;
            let wt = match info.ggml_dtype {
                GgmlDType::Q4_1 => WeightType::Q4_1,
                GgmlDType::Q8_0 => WeightType::Q8_0,
                GgmlDType::Q4K => WeightType::Q4K,
                GgmlDType::Q6K => WeightType::Q6K,
                other => return Err(invalid(format!("tensor `{name}` is {other:?}"))),
            };
            let dims = info.shape.dims();
            let whole_blocks = cols.is_multiple_of(wt.block_values());
            if dims.len() != 2 || dims[0] != rows || dims[1] != cols || !whole_blocks {
                return Err(invalid(format!(
                    "tensor `{name}` has shape {dims:?}, expected [{rows}, {cols}]"
                )));
            }
            let row_bytes = cols / wt.block_values() * wt.block_bytes();
            let start = data_start + info.offset as usize;
            if bytes.len() < start + rows * row_bytes {
                return Err(invalid(format!(
                    "tensor `{name}` runs past the end of the file"
                )));
            }
            Ok(Matrix {
                wt,
                start,
                rows,
                row_bytes,
            })
        };

        let n_vocab = infos
            .get("token_embd.weight")
            .map(|i| i.shape.dims()[0])
            .ok_or_else(|| invalid("tensor `token_embd.weight` is missing".into()))?;
        let embd = matrix("token_embd.weight", n_vocab, n_embd)?;
        let output = if infos.contains_key("output.weight") {
            matrix("output.weight", n_vocab, n_embd)?
        } else {
            embd
        };
        let (q_dim, kv_dim) = (n_head * head_dim, n_kv_head * head_dim);
        let mut layers = Vec::with_capacity(n_layer);
        for i in 0..n_layer {
            let t = |s: &str| format!("blk.{i}.{s}.weight");
            let has = |s: &str| infos.contains_key(&t(s));
            let (q, k, v) = if has("attn_qkv") {
                let qkv = matrix(&t("attn_qkv"), q_dim + 2 * kv_dim, n_embd)?;
                (
                    qkv.slice(0, q_dim),
                    qkv.slice(q_dim, kv_dim),
                    qkv.slice(q_dim + kv_dim, kv_dim),
                )
            } else {
                (
                    matrix(&t("attn_q"), q_dim, n_embd)?,
                    matrix(&t("attn_k"), kv_dim, n_embd)?,
                    matrix(&t("attn_v"), kv_dim, n_embd)?,
                )
            };
            let (gate, up) = if has("ffn_gate") {
                (
                    matrix(&t("ffn_gate"), n_ff, n_embd)?,
                    matrix(&t("ffn_up"), n_ff, n_embd)?,
                )
            } else {
                // Fused (phi3): the first half of `ffn_up` is the gate.
                let fused = matrix(&t("ffn_up"), 2 * n_ff, n_embd)?;
                (fused.slice(0, n_ff), fused.slice(n_ff, n_ff))
            };
            let bias = |s: &str, len: usize| vector(&format!("blk.{i}.{s}.bias"), len);
            let qkv_bias = infos
                .contains_key(&format!("blk.{i}.attn_q.bias"))
                .then(|| -> Result<_, LocalError> {
                    Ok([
                        bias("attn_q", q_dim)?,
                        bias("attn_k", kv_dim)?,
                        bias("attn_v", kv_dim)?,
                    ])
                })
                .transpose()?;
            // A pair of norm vectors, present when the first one is.
            let pair = |a: &str, b: &str, len: usize| {
                has(a)
                    .then(|| Ok([vector(&t(a), len)?, vector(&t(b), len)?]))
                    .transpose()
            };
            let qk_norm = pair("attn_q_norm", "attn_k_norm", head_dim)?;
            let post_norms = pair("post_attention_norm", "post_ffw_norm", n_embd)?;
            layers.push(Layer {
                attn_norm: vector(&t("attn_norm"), n_embd)?,
                ffn_norm: vector(&t("ffn_norm"), n_embd)?,
                q,
                k,
                v,
                o: matrix(&t("attn_output"), n_embd, q_dim)?,
                gate,
                up,
                down: matrix(&t("ffn_down"), n_embd, n_ff)?,
                qkv_bias,
                qk_norm,
                post_norms,
                swa: swa.is_some() && i % 6 < 5,
            });
        }
        let output_norm = vector("output_norm.weight", n_embd)?;
        let rope_factors = if infos.contains_key("rope_freqs.weight") {
            Some(vector("rope_freqs.weight", n_rot / 2)?)
        } else {
            None
        };
        let threads = threads.max(1);
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .thread_name(|i| format!("llmkit-local-{i}"))
            .build()
            .map_err(|e| LocalError::Inference(format!("cannot start worker threads: {e}")))?;
        let cfg = Config {
            n_embd,
            n_head,
            n_kv_head,
            head_dim,
            n_ff,
            n_vocab,
            n_rot,
            eps,
            rope,
            rope_factors,
            rope_style: family.rope_style(),
            ffn_act,
            embd_scale: gemma.then(|| (n_embd as f32).sqrt()),
            attn_scale,
            q_prescale: matches!(family, Arch::Phi3 | Arch::Gemma3),
            swa,
        };
        Ok(Self {
            seqs: Vec::new(),
            file,
            cfg,
            embd,
            output,
            output_norm,
            layers,
            pool,
            threads,
        })
    }

    /// Empties slot 0's KV cache (keeping its memory for the next request).
    #[cfg(test)]
    pub(crate) fn reset(&mut self) {
        if let Some(seq) = self.seqs.get_mut(0) {
            for c in &mut seq.layers {
                c.k.clear();
                c.v.clear();
            }
            seq.len = 0;
        }
    }

    /// Runs `tokens` at positions `pos..` in slot 0 and returns the logits after the last one.
    #[cfg(test)]
    pub(crate) fn logits(&mut self, tokens: &[u32], pos: usize) -> Result<Vec<f32>, LocalError> {
        let entry = Entry {
            slot: 0,
            tokens,
            pos,
        };
        self.step(&[entry])
            .pop()
            .unwrap_or_else(|| Err(LocalError::Inference("no result".into())))
    }

    /// Runs several sequences' new tokens in one forward pass (their matrix products share
    /// each weight read) and returns each entry's logits after its last token. Every token's
    /// arithmetic is the same as when its sequence runs alone.
    pub(crate) fn step(&mut self, entries: &[Entry<'_>]) -> Vec<Result<Vec<f32>, LocalError>> {
        let n_layer = self.layers.len();
        let mut results: Vec<Option<Result<Vec<f32>, LocalError>>> =
            entries.iter().map(|_| None).collect();
        let mut valid = Vec::new();
        for (i, e) in entries.iter().enumerate() {
            if self.seqs.len() <= e.slot {
                self.seqs.resize_with(e.slot + 1, Sequence::default);
            }
            let seq = &mut self.seqs[e.slot];
            if seq.layers.len() != n_layer {
                seq.layers = (0..n_layer).map(|_| LayerCache::default()).collect();
            }
            let error = if e.tokens.is_empty() {
                Some("no tokens to run".to_string())
            } else if let Some(bad) = e.tokens.iter().find(|&&t| t as usize >= self.cfg.n_vocab) {
                Some(format!(
                    "token id {bad} is outside the vocabulary of {}",
                    self.cfg.n_vocab
                ))
            } else if e.pos > seq.len {
                Some(format!(
                    "position {} is past the {} cached positions",
                    e.pos, seq.len
                ))
            } else if valid.iter().any(|&j: &usize| entries[j].slot == e.slot) {
                Some("a sequence appears twice in one step".to_string())
            } else {
                None
            };
            match error {
                Some(msg) => results[i] = Some(Err(LocalError::Inference(msg))),
                None => valid.push(i),
            }
        }
        if !valid.is_empty() {
            let batch: Vec<&Entry<'_>> = valid.iter().map(|&i| &entries[i]).collect();
            let Self {
                file,
                cfg,
                embd,
                output,
                output_norm,
                layers,
                seqs,
                pool,
                threads,
            } = self;
            let ctx = Ctx {
                bytes: file.bytes(),
                cfg,
                threads: *threads,
            };
            let logits =
                pool.install(|| ctx.forward(&batch, embd, output, output_norm, layers, seqs));
            for ((&i, e), l) in valid.iter().zip(&batch).zip(logits) {
                seqs[e.slot].len = e.pos + e.tokens.len();
                results[i] = Some(Ok(l));
            }
        }
        results
            .into_iter()
            .map(|r| r.unwrap_or_else(|| Err(LocalError::Inference("no result".into()))))
            .collect()
    }
}

/// What every step of a forward pass reads.
struct Ctx<'a> {
    bytes: &'a [u8],
    cfg: &'a Config,
    threads: usize,
}

/// Activations quantized for the matrices that read them.
#[derive(Default)]
struct Acts {
    q8_0: Vec<u8>,
    q8_1: Vec<u8>,
    q8_k: Vec<u8>,
}

impl Acts {
    /// Quantizes `x` (`n` rows) for every weight type among `mats`.
    fn fill(&mut self, x: &[f32], cols: usize, mats: &[&Matrix]) {
        for act in [ActType::Q8_0, ActType::Q8_1, ActType::Q8K] {
            if !mats.iter().any(|m| m.wt.act_type() == act) {
                continue;
            }
            let buf = match act {
                ActType::Q8_0 => &mut self.q8_0,
                ActType::Q8_1 => &mut self.q8_1,
                ActType::Q8K => &mut self.q8_k,
            };
            let row = cols / act.block_values() * act.block_bytes();
            buf.resize(x.len() / cols * row, 0);
            buf.par_chunks_mut(row)
                .zip(x.par_chunks(cols))
                .for_each(|(out, xs)| kernels::quantize(act, xs, out));
        }
    }

    fn get(&self, wt: WeightType) -> &[u8] {
        match wt.act_type() {
            ActType::Q8_0 => &self.q8_0,
            ActType::Q8_1 => &self.q8_1,
            ActType::Q8K => &self.q8_k,
        }
    }
}

impl Ctx<'_> {
    /// One forward pass over the new tokens of every entry (their slots already exist and
    /// hold `pos` positions or more); returns each entry's logits after its last token.
    fn forward(
        &self,
        entries: &[&Entry<'_>],
        embd: &Matrix,
        output: &Matrix,
        output_norm: &[f32],
        layers: &[Layer],
        seqs: &mut [Sequence],
    ) -> Vec<Vec<f32>> {
        let cfg = self.cfg;
        let (d, q_dim, kv_dim, hd) = (cfg.n_embd, cfg.q_dim(), cfg.kv_dim(), cfg.head_dim);
        // Every token's sequence slot and absolute position, in batch order.
        let places: Vec<(usize, usize)> = entries
            .iter()
            .flat_map(|e| (0..e.tokens.len()).map(move |t| (e.slot, e.pos + t)))
            .collect();
        let n = places.len();
        let mut x = vec![0.0f32; n * d];
        let tokens = entries.iter().flat_map(|e| e.tokens.iter());
        for (row, &t) in x.chunks_exact_mut(d).zip(tokens) {
            let at = embd.start + t as usize * embd.row_bytes;
            kernels::dequantize_row(embd.wt, &self.bytes[at..at + embd.row_bytes], row);
            if let Some(scale) = cfg.embd_scale {
                row.iter_mut().for_each(|v| *v *= scale);
            }
        }
        let tables = |freqs: RopeFreqs, factors: Option<&[f32]>| -> Vec<Vec<(f32, f32)>> {
            places
                .iter()
                .map(|&(_, p)| self.rope_table(p, freqs, factors))
                .collect()
        };
        let rope = tables(cfg.rope, cfg.rope_factors.as_deref());
        let rope_swa = cfg.swa.map(|w| tables(w.rope, None));
        let mut h = vec![0.0f32; n * d];
        let mut normed = vec![0.0f32; n * d];
        let mut q = vec![0.0f32; n * q_dim];
        let mut k = vec![0.0f32; n * kv_dim];
        let mut v = vec![0.0f32; n * kv_dim];
        let mut att = vec![0.0f32; n * q_dim];
        let mut tmp = vec![0.0f32; n * d.max(cfg.n_ff).max(q_dim)];
        let mut gate = vec![0.0f32; n * cfg.n_ff];
        let mut up = vec![0.0f32; n * cfg.n_ff];
        let mut head = vec![0.0f32; hd];
        let mut acts = Acts::default();

        for (li, layer) in layers.iter().enumerate() {
            for (hs, xs) in h.chunks_exact_mut(d).zip(x.chunks_exact(d)) {
                rms_norm(xs, &layer.attn_norm, cfg.eps, hs);
            }
            acts.fill(&h, d, &[&layer.q, &layer.k, &layer.v]);
            self.matmul(
                &mut [(&layer.q, &mut q), (&layer.k, &mut k), (&layer.v, &mut v)],
                &acts,
                n,
                &mut tmp,
            );
            if let Some([bq, bk, bv]) = &layer.qkv_bias {
                for (out, b) in [(&mut q, bq), (&mut k, bk), (&mut v, bv)] {
                    for row in out.chunks_exact_mut(b.len()) {
                        row.iter_mut().zip(b).for_each(|(o, b)| *o += b);
                    }
                }
            }
            if let Some([nq, nk]) = &layer.qk_norm {
                for (out, w) in [(&mut q, nq), (&mut k, nk)] {
                    for h in out.chunks_exact_mut(hd) {
                        head.copy_from_slice(h);
                        rms_norm(&head, w, cfg.eps, h);
                    }
                }
            }
            let rope = match &rope_swa {
                Some(tables) if layer.swa => tables,
                _ => &rope,
            };
            for t in 0..n {
                apply_rope(&mut q[t * q_dim..(t + 1) * q_dim], cfg, &rope[t]);
                apply_rope(&mut k[t * kv_dim..(t + 1) * kv_dim], cfg, &rope[t]);
            }
            if cfg.q_prescale {
                q.iter_mut().for_each(|v| *v *= cfg.attn_scale);
            }
            let mut first = 0;
            for e in entries {
                let lc = &mut seqs[e.slot].layers[li];
                let (start, len) = (e.pos * kv_dim, e.tokens.len() * kv_dim);
                lc.k.resize(start + len, 0);
                lc.v.resize(start + len, 0);
                kernels::to_f16(&k[first..first + len], &mut lc.k[start..]);
                kernels::to_f16(&v[first..first + len], &mut lc.v[start..]);
                first += len;
            }
            let window = cfg.swa.filter(|_| layer.swa).map(|w| w.window);
            self.attention(&q, seqs, li, &places, window, &mut att);

            acts.fill(&att, q_dim, &[&layer.o]);
            self.matmul(&mut [(&layer.o, &mut h)], &acts, n, &mut tmp);
            if let Some([post_attn, _]) = &layer.post_norms {
                post_norm(&mut h, &mut normed, post_attn, cfg.eps);
            }
            for (a, b) in x.iter_mut().zip(&h) {
                *a += *b;
            }

            for (hs, xs) in h.chunks_exact_mut(d).zip(x.chunks_exact(d)) {
                rms_norm(xs, &layer.ffn_norm, cfg.eps, hs);
            }
            acts.fill(&h, d, &[&layer.gate, &layer.up]);
            self.matmul(
                &mut [(&layer.gate, &mut gate), (&layer.up, &mut up)],
                &acts,
                n,
                &mut tmp,
            );
            match cfg.ffn_act {
                FfnAct::Silu => {
                    for (g, u) in gate.iter_mut().zip(&up) {
                        *g = silu(*g) * *u;
                    }
                }
                FfnAct::Gelu => {
                    let table = gelu_table();
                    for (g, u) in gate.iter_mut().zip(&up) {
                        *g = gelu(table, *g) * *u;
                    }
                }
            }
            acts.fill(&gate, cfg.n_ff, &[&layer.down]);
            self.matmul(&mut [(&layer.down, &mut h)], &acts, n, &mut tmp);
            if let Some([_, post_ffn]) = &layer.post_norms {
                post_norm(&mut h, &mut normed, post_ffn, cfg.eps);
            }
            for (a, b) in x.iter_mut().zip(&h) {
                *a += *b;
            }
        }

        // The last token of each entry goes through the output layer, all in one product.
        let m = entries.len();
        let mut normed = vec![0.0f32; m * d];
        let mut last = 0;
        for (e, out) in entries.iter().zip(normed.chunks_exact_mut(d)) {
            last += e.tokens.len();
            rms_norm(&x[(last - 1) * d..last * d], output_norm, cfg.eps, out);
        }
        acts.fill(&normed, d, &[output]);
        let mut logits = vec![0.0f32; m * cfg.n_vocab];
        let mut scratch = vec![0.0f32; m * cfg.n_vocab];
        self.matmul(&mut [(output, &mut logits)], &acts, m, &mut scratch);
        logits
            .chunks_exact(cfg.n_vocab)
            .map(<[f32]>::to_vec)
            .collect()
    }

    /// `outs[i] = mats[i] × acts` for `n` activation rows, all matrices in one parallel pass.
    /// Each output is `[n][rows]`; `tmp` must hold `n × rows` of the largest matrix.
    fn matmul(
        &self,
        jobs: &mut [(&Matrix, &mut Vec<f32>)],
        acts: &Acts,
        n: usize,
        tmp: &mut [f32],
    ) {
        // Results come out as [row][token]; with one token that is already the final layout.
        let total_rows: usize = jobs.iter().map(|(m, _)| m.rows).sum();
        let target_tasks = self.threads * 8;
        let chunk = total_rows
            .div_ceil(target_tasks)
            .clamp(16, 4096)
            .div_ceil(4)
            * 4;
        if n == 1 {
            let mut tasks: Vec<(&Matrix, usize, &mut [f32])> = Vec::new();
            for (m, out) in jobs.iter_mut() {
                for (i, o) in out[..m.rows].chunks_mut(chunk).enumerate() {
                    tasks.push((m, i * chunk, o));
                }
            }
            tasks.into_par_iter().for_each(|(m, r0, o)| {
                let rows = &m.bytes(self.bytes)[r0 * m.row_bytes..(r0 + o.len()) * m.row_bytes];
                kernels::dot_rows(m.wt, rows, m.row_bytes, acts.get(m.wt), 1, o);
            });
            return;
        }
        for (m, out) in jobs.iter_mut() {
            let tmp = &mut tmp[..m.rows * n];
            tmp.par_chunks_mut(chunk * n)
                .enumerate()
                .for_each(|(i, o)| {
                    let r0 = i * chunk;
                    let r1 = r0 + o.len() / n;
                    let rows = &m.bytes(self.bytes)[r0 * m.row_bytes..r1 * m.row_bytes];
                    kernels::dot_rows(m.wt, rows, m.row_bytes, acts.get(m.wt), n, o);
                });
            for r in 0..m.rows {
                for t in 0..n {
                    out[t * m.rows + r] = tmp[r * n + t];
                }
            }
        }
    }

    /// Cos/sin of every rotary pair at position `pos`, as ggml's `rope_yarn` computes them
    /// (no extrapolation mix, attention factor 1).
    fn rope_table(&self, pos: usize, freqs: RopeFreqs, factors: Option<&[f32]>) -> Vec<(f32, f32)> {
        let theta_scale = freqs.base.powf(-2.0 / self.cfg.n_rot as f32);
        let mut theta = pos as f32;
        (0..self.cfg.n_rot / 2)
            .map(|i| {
                let ff = factors.map_or(1.0, |f| f[i]);
                let t = freqs.freq_scale * (theta / ff);
                theta *= theta_scale;
                (t.cos(), t.sin())
            })
            .collect()
    }

    /// Causal attention of the new queries (token `i` of the batch sits at `places[i]`: its
    /// slot and position) over their sequences' caches for layer `li`, like ggml's CPU flash
    /// attention: Q rounded to f16, f16 dot products, online softmax with an f16 accumulator.
    /// With a `window`, each query sees only its last `window` positions.
    fn attention(
        &self,
        q: &[f32],
        seqs: &[Sequence],
        li: usize,
        places: &[(usize, usize)],
        window: Option<usize>,
        out: &mut [f32],
    ) {
        let cfg = self.cfg;
        let (hd, kv_dim) = (cfg.head_dim, cfg.kv_dim());
        let group = cfg.n_head / cfg.n_kv_head;
        let scale = if cfg.q_prescale { 1.0 } else { cfg.attn_scale };
        out.par_chunks_mut(hd).enumerate().for_each(|(i, o)| {
            let (t, head) = (i / cfg.n_head, i % cfg.n_head);
            let (slot, p) = places[t];
            let lc = &seqs[slot].layers[li];
            let kvh = head / group;
            let mut qh = vec![0u16; hd];
            kernels::to_f16(&q[i * hd..(i + 1) * hd], &mut qh);
            let mut acc = vec![0u16; hd];
            let mut s_sum = 0.0f32;
            let mut m = f32::NEG_INFINITY;
            let from = window.map_or(0, |w| (p + 1).saturating_sub(w));
            for j in from..=p {
                let at = j * kv_dim + kvh * hd;
                let s = kernels::dot_f16(&lc.k[at..at + hd], &qh) * scale;
                let mut ms = 1.0f32;
                let mut vs = 1.0f32;
                if s > m {
                    let old = m;
                    m = s;
                    ms = (old - m).exp();
                    kernels::scale_f16(&mut acc, ms);
                } else {
                    vs = (s - m).exp();
                }
                kernels::mad_f16(&mut acc, &lc.v[at..at + hd], vs);
                s_sum = s_sum * ms + vs;
            }
            kernels::from_f16(&acc, o);
            let inv = if s_sum == 0.0 { 0.0 } else { 1.0 / s_sum };
            for v in o.iter_mut() {
                *v *= inv;
            }
        });
    }
}

/// ggml's `rms_norm` (sum of squares in f64, the mean rounded to f32 before `eps` is added, as
/// ggml does) followed by the weight multiply.
fn rms_norm(x: &[f32], w: &[f32], eps: f32, out: &mut [f32]) {
    let sum: f64 = x.iter().map(|v| f64::from(v * v)).sum();
    let mean = (sum / x.len() as f64) as f32;
    let scale = 1.0 / (mean + eps).sqrt();
    for ((o, v), g) in out.iter_mut().zip(x).zip(w) {
        *o = (v * scale) * g;
    }
}

/// Rotates each head's first `n_rot` values in pairs: adjacent ones (ggml's normal mode) or
/// `i` with `i + n_rot / 2` (NeoX mode).
fn apply_rope(x: &mut [f32], cfg: &Config, table: &[(f32, f32)]) {
    let half = cfg.n_rot / 2;
    for head in x.chunks_exact_mut(cfg.head_dim) {
        match cfg.rope_style {
            RopeStyle::Adjacent => {
                for (pair, &(cos, sin)) in head[..cfg.n_rot].chunks_exact_mut(2).zip(table) {
                    let (x0, x1) = (pair[0], pair[1]);
                    pair[0] = x0 * cos - x1 * sin;
                    pair[1] = x0 * sin + x1 * cos;
                }
            }
            RopeStyle::Halves => {
                for (i, &(cos, sin)) in table.iter().enumerate() {
                    let (x0, x1) = (head[i], head[i + half]);
                    head[i] = x0 * cos - x1 * sin;
                    head[i + half] = x0 * sin + x1 * cos;
                }
            }
        }
    }
}

/// RMS-normalises each row of `h` in place with weight `w` (`scratch` as long as `h`).
fn post_norm(h: &mut [f32], scratch: &mut [f32], w: &[f32], eps: f32) {
    let d = w.len();
    for (out, xs) in scratch.chunks_exact_mut(d).zip(h.chunks_exact(d)) {
        rms_norm(xs, w, eps, out);
    }
    h.copy_from_slice(&scratch[..h.len()]);
}

fn silu(x: f32) -> f32 {
    x / (1.0 + (-x).exp())
}

/// GELU, tanh form, in f32 (ggml's `ggml_gelu_f32`).
fn gelu_f32(x: f32) -> f32 {
    const SQRT_2_OVER_PI: f32 = 0.797_884_6;
    const COEF_A: f32 = 0.044_715;
    0.5 * x * (1.0 + (SQRT_2_OVER_PI * x * (1.0 + COEF_A * x * x)).tanh())
}

/// ggml's `ggml_table_gelu_f16`: the f16 GELU of every f16 value, built on first use.
fn gelu_table() -> &'static [u16] {
    static TABLE: OnceLock<Vec<u16>> = OnceLock::new();
    TABLE.get_or_init(|| {
        (0..=u16::MAX)
            .map(|bits| f16::from_f32(gelu_f32(f16::from_bits(bits).to_f32())).to_bits())
            .collect()
    })
}

/// GELU as ggml's CPU backend computes it: 0 below -10, the identity above 10, and between
/// them the entry of `table` ([`gelu_table`]) for `x` rounded to f16.
fn gelu(table: &[u16], x: f32) -> f32 {
    if x <= -10.0 {
        0.0
    } else if x >= 10.0 {
        x
    } else {
        f16::from_bits(table[usize::from(f16::from_f32(x).to_bits())]).to_f32()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rms_norm_matches_the_definition() {
        let x = [1.0f32, -2.0, 3.0, 0.5];
        let w = [1.0f32, 2.0, 0.5, 1.0];
        let mut out = [0.0; 4];
        rms_norm(&x, &w, 1e-5, &mut out);
        let rms = ((1.0 + 4.0 + 9.0 + 0.25) / 4.0 + 1e-5f64).sqrt() as f32;
        for i in 0..4 {
            assert!((out[i] - x[i] / rms * w[i]).abs() < 1e-6);
        }
    }

    #[test]
    fn rope_at_position_zero_is_the_identity() {
        let cfg = Config {
            n_embd: 4,
            n_head: 1,
            n_kv_head: 1,
            head_dim: 4,
            n_ff: 4,
            n_vocab: 1,
            n_rot: 4,
            eps: 1e-5,
            rope: RopeFreqs {
                base: 10_000.0,
                freq_scale: 1.0,
            },
            rope_factors: None,
            rope_style: RopeStyle::Adjacent,
            ffn_act: FfnAct::Silu,
            embd_scale: None,
            attn_scale: 0.5,
            q_prescale: false,
            swa: None,
        };
        let ctx = Ctx {
            bytes: &[],
            cfg: &cfg,
            threads: 1,
        };
        let tables = [
            ctx.rope_table(0, cfg.rope, None),
            ctx.rope_table(1, cfg.rope, None),
        ];
        let mut x = [1.0f32, 2.0, 3.0, 4.0];
        apply_rope(&mut x, &cfg, &tables[0]);
        assert_eq!(x, [1.0, 2.0, 3.0, 4.0]);
        // Position 1 rotates the first pair by 1 radian and keeps the norm of each pair.
        apply_rope(&mut x, &cfg, &tables[1]);
        assert!((x[0] - (1.0f32.cos() - 2.0 * 1.0f32.sin())).abs() < 1e-6);
        assert!(((x[2] * x[2] + x[3] * x[3]) - 25.0).abs() < 1e-4);
    }
}

/// A diagnostic, run by hand: `LLMKIT_PROBE_MODEL=model.gguf LLMKIT_PROBE_IN=llama.json
/// LLMKIT_PROBE_OUT=ours.json cargo test --release -p llmkit-local --lib probe -- --ignored`.
/// Runs each case's prompt and llama.cpp's tokens (from `benches/local/probe_probabilities.mjs`)
/// through this engine and writes the top-10 next-token probabilities of every step, so the two
/// engines' distributions can be compared.
#[cfg(test)]
mod probe {
    use super::*;

    #[test]
    #[ignore = "diagnostic; needs a model and a llama.cpp probe file"]
    fn probe_probabilities() {
        let var = |k: &str| std::env::var(k).unwrap_or_else(|_| panic!("set {k}"));
        let file = GgufFile::open(std::path::Path::new(&var("LLMKIT_PROBE_MODEL"))).unwrap();
        let mut engine = Native::load(file, 2).unwrap();
        let input: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(var("LLMKIT_PROBE_IN")).unwrap())
                .unwrap();
        let mut cases = Vec::new();
        for case in input["cases"].as_array().unwrap() {
            let ids = |v: &serde_json::Value| -> Vec<u32> {
                v.as_array()
                    .unwrap()
                    .iter()
                    .map(|x| x.as_u64().unwrap() as u32)
                    .collect()
            };
            let prompt = ids(&case["prompt_ids"]);
            let forced: Vec<u32> = case["steps"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| s["token"].as_u64().unwrap() as u32)
                .collect();
            engine.reset();
            let mut one_by_one = Vec::new();
            for (i, &t) in prompt.iter().enumerate() {
                one_by_one = engine.logits(&[t], i).unwrap();
            }
            engine.reset();
            let mut logits = engine.logits(&prompt, 0).unwrap();
            let diff = logits
                .iter()
                .zip(&one_by_one)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0f32, f32::max);
            eprintln!("prefill vs one by one: max |dlogit| {diff}");
            let mut steps = Vec::new();
            for (pos, &tok) in (prompt.len()..).zip(&forced) {
                let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                let sum: f64 = logits.iter().map(|l| f64::from((l - max).exp())).sum();
                let mut idx: Vec<usize> = (0..logits.len()).collect();
                idx.sort_by(|&a, &b| logits[b].total_cmp(&logits[a]));
                let top: Vec<(usize, f64)> = idx[..10]
                    .iter()
                    .map(|&i| (i, f64::from((logits[i] - max).exp()) / sum))
                    .collect();
                steps.push(serde_json::json!({ "token": idx[0], "top": top }));
                logits = engine.logits(&[tok], pos).unwrap();
            }
            cases.push(serde_json::json!({ "user": case["user"], "steps": steps }));
        }
        std::fs::write(
            var("LLMKIT_PROBE_OUT"),
            serde_json::json!({ "cases": cases }).to_string(),
        )
        .unwrap();
    }
}
