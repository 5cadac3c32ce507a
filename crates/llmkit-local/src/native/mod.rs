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
//!
//! One concern a file, as llama.cpp splits model loading from its per-architecture graphs:
//! `arch.rs` (what differs between architectures, as data), `config.rs` (GGUF metadata to
//! [`Config`]), `weights.rs` (the tensors in the map), `forward.rs` (the pass itself) and
//! `ops.rs` (norms, RoPE, activations). This file loads a model and runs batched steps on it.

mod arch;
mod config;
mod forward;
mod ops;
mod weights;

use candle_core::quantized::GgmlDType;

use crate::error::LocalError;
use crate::generate::Arch;
use crate::gguf::{GgufFile, Meta};
use crate::kernels::QK_K;
use config::Config;
pub(crate) use forward::Entry;
/// A copy of a sequence's KV cache, as the prefix cache keeps it.
pub(crate) use forward::Sequence as KvState;
use forward::Sequence;
use forward::{LayerCache, Pass};
use weights::Weights;

/// A loaded model with its cache and worker pool.
pub(crate) struct Native {
    file: GgufFile,
    cfg: Config,
    weights: Weights,
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
                GgmlDType::Q4K | GgmlDType::Q6K => dims.len() == 2 && dims[1].is_multiple_of(QK_K),
                _ => false,
            }
    })
}

impl Native {
    /// Builds the engine over `file` (which `supports` accepted), with `threads` workers.
    pub(crate) fn load(file: GgufFile, threads: usize) -> Result<Self, LocalError> {
        let mut cfg = Config::read(&file)?;
        let (weights, rope_factors) = Weights::read(&file, &cfg)?;
        cfg.rope_factors = rope_factors;
        let threads = threads.max(1);
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .thread_name(|i| format!("llmkit-local-{i}"))
            .build()
            .map_err(|e| LocalError::Inference(format!("cannot start worker threads: {e}")))?;
        Ok(Self {
            seqs: Vec::new(),
            file,
            cfg,
            weights,
            pool,
            threads,
        })
    }

    /// Empties slot 0's KV cache (keeping its memory for the next request).
    #[cfg(test)]
    pub(crate) fn reset(&mut self) {
        if let Some(seq) = self.seqs.get_mut(0) {
            seq.layers.iter_mut().for_each(LayerCache::clear);
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

    /// Replaces `slot`'s cache with the first `len` positions of `state` (copied: `state` is
    /// left as it was), so the slot's next step may start at position `len`.
    pub(crate) fn restore(&mut self, slot: usize, state: &KvState, len: usize) {
        let n_layer = self.weights.layers.len();
        let kv_dim = self.cfg.kv_dim();
        let len = len.min(state.len);
        if self.seqs.len() <= slot {
            self.seqs.resize_with(slot + 1, Sequence::default);
        }
        let seq = &mut self.seqs[slot];
        if seq.layers.len() != n_layer {
            seq.layers = (0..n_layer).map(|_| LayerCache::default()).collect();
        }
        if state.layers.len() != n_layer {
            // Not this model's state (the cache keys states by model, so this does not
            // happen): start from nothing rather than mix them.
            seq.layers.iter_mut().for_each(LayerCache::clear);
            seq.len = 0;
            return;
        }
        for (dst, src) in seq.layers.iter_mut().zip(&state.layers) {
            dst.k.clear();
            dst.v.clear();
            dst.k.extend_from_slice(&src.k[..len * kv_dim]);
            dst.v.extend_from_slice(&src.v[..len * kv_dim]);
        }
        seq.len = len;
    }

    /// The KV cache memory one position takes: f16 keys and values of every layer.
    pub(crate) fn kv_bytes_per_token(&self) -> usize {
        self.weights.layers.len() * self.cfg.kv_dim() * 2 * std::mem::size_of::<u16>()
    }

    /// A copy of the first `len` positions of `slot`'s cache; `None` when it holds fewer.
    pub(crate) fn snapshot(&self, slot: usize, len: usize) -> Option<KvState> {
        let seq = self.seqs.get(slot).filter(|s| s.len >= len && len > 0)?;
        let kv_dim = self.cfg.kv_dim();
        Some(KvState {
            layers: seq
                .layers
                .iter()
                .map(|c| LayerCache {
                    k: c.k[..len * kv_dim].to_vec(),
                    v: c.v[..len * kv_dim].to_vec(),
                })
                .collect(),
            len,
        })
    }

    /// Runs several sequences' new tokens in one forward pass (their matrix products share
    /// each weight read) and returns each entry's logits after its last token. Every token's
    /// arithmetic is the same as when its sequence runs alone.
    pub(crate) fn step(&mut self, entries: &[Entry<'_>]) -> Vec<Result<Vec<f32>, LocalError>> {
        let n_layer = self.weights.layers.len();
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
                weights,
                seqs,
                pool,
                threads,
            } = self;
            let pass = Pass {
                bytes: file.bytes(),
                cfg,
                threads: *threads,
            };
            let logits = pool.install(|| pass.forward(&batch, weights, seqs));
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
