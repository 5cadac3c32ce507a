//! llmkit-local's own forward pass for llama-family models (SmolLM2, Llama, TinyLlama) whose
//! weights are Q4_1 or Q8_0: it multiplies straight from the memory-mapped GGUF (no copy, no
//! conversion), looks token embeddings up by dequantizing only the needed row, keeps its own
//! f16 KV cache, and follows llama.cpp's CPU arithmetic step by step (activations quantized per
//! block like ggml, RMS norm summed in f64, ggml's RoPE and flash-attention accumulation), so
//! greedy output tracks llama.cpp's.
//!
//! Files with other quant types, and the other architectures, run on candle's models instead.

use candle_core::quantized::GgmlDType;
use candle_core::quantized::gguf_file::Value;
use rayon::prelude::*;

use crate::error::LocalError;
use crate::gguf::{GgufFile, Meta};
use crate::kernels::{self, ActType, QK, WeightType};

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
    rope_base: f32,
    freq_scale: f32,
    /// Per-pair divisors of the rotary frequencies (Llama 3.1+ `rope_freqs.weight`).
    rope_factors: Option<Vec<f32>>,
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
pub(crate) struct NativeLlama {
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

/// Whether the native engine can run `file` (llama architecture, Q4_1/Q8_0 matrices, f32
/// norms, no rope scaling it does not implement).
pub(crate) fn supports(file: &GgufFile) -> bool {
    let meta = Meta(file.content());
    if meta.str("general.architecture") != Some("llama") {
        return false;
    }
    if let Some(kind) = meta.str("llama.rope.scaling.type")
        && kind != "none"
        && kind != "linear"
    {
        return false;
    }
    // Mixture-of-experts llama files have expert tensors this engine does not know.
    if meta.u64("llama.expert_count").is_some_and(|n| n > 0) {
        return false;
    }
    file.content().tensor_infos.iter().all(|(name, info)| {
        let dims = info.shape.dims();
        match info.ggml_dtype {
            GgmlDType::F32 => dims.len() == 1,
            GgmlDType::Q4_1 | GgmlDType::Q8_0 => {
                dims.len() == 2 && name != "rope_freqs.weight" && !name.ends_with(".bias")
            }
            _ => false,
        }
    })
}

impl NativeLlama {
    /// Builds the engine over `file` (which `supports` accepted), with `threads` workers.
    pub(crate) fn load(file: GgufFile, threads: usize) -> Result<Self, LocalError> {
        let invalid = |detail: String| LocalError::InvalidModel {
            path: file.path().to_path_buf(),
            detail,
        };
        let meta = Meta(file.content());
        let need = |key: &str| -> Result<usize, LocalError> {
            meta.u64(key)
                .and_then(|n| usize::try_from(n).ok())
                .filter(|&n| n > 0)
                .ok_or_else(|| invalid(format!("the GGUF metadata has no `{key}`")))
        };
        let n_embd = need("llama.embedding_length")?;
        let n_head = need("llama.attention.head_count")?;
        let n_kv_head = meta
            .u64("llama.attention.head_count_kv")
            .and_then(|n| usize::try_from(n).ok())
            .filter(|&n| n > 0)
            .unwrap_or(n_head);
        let n_layer = need("llama.block_count")?;
        let n_ff = need("llama.feed_forward_length")?;
        if !n_embd.is_multiple_of(n_head) || !n_head.is_multiple_of(n_kv_head) {
            return Err(invalid(format!(
                "{n_head} heads and {n_kv_head} KV heads do not divide {n_embd} dimensions"
            )));
        }
        let head_dim = n_embd / n_head;
        let n_rot = meta
            .u64("llama.rope.dimension_count")
            .and_then(|n| usize::try_from(n).ok())
            .unwrap_or(head_dim);
        if n_rot > head_dim || !n_rot.is_multiple_of(2) || !head_dim.is_multiple_of(QK) {
            return Err(invalid(format!(
                "unsupported head size {head_dim} with {n_rot} rotary dimensions"
            )));
        }
        let f32_of = |key: &str, default: f32| match file.content().metadata.get(key) {
            Some(Value::F32(v)) => *v,
            Some(Value::F64(v)) => *v as f32,
            _ => default,
        };
        let eps = f32_of("llama.attention.layer_norm_rms_epsilon", 1e-5);
        let rope_base = f32_of("llama.rope.freq_base", 10_000.0);
        let freq_scale = match meta.str("llama.rope.scaling.type") {
            Some("linear") => {
                let factor = f32_of("llama.rope.scaling.factor", 1.0);
                if factor > 0.0 { 1.0 / factor } else { 1.0 }
            }
            _ => 1.0,
        };

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
                other => return Err(invalid(format!("tensor `{name}` is {other:?}"))),
            };
            let dims = info.shape.dims();
            if dims.len() != 2 || dims[0] != rows || dims[1] != cols || !cols.is_multiple_of(QK) {
                return Err(invalid(format!(
                    "tensor `{name}` has shape {dims:?}, expected [{rows}, {cols}]"
                )));
            }
            let row_bytes = cols / QK * wt.block_bytes();
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
        let kv_dim = n_kv_head * head_dim;
        let mut layers = Vec::with_capacity(n_layer);
        for i in 0..n_layer {
            let t = |s: &str| format!("blk.{i}.{s}.weight");
            layers.push(Layer {
                attn_norm: vector(&t("attn_norm"), n_embd)?,
                ffn_norm: vector(&t("ffn_norm"), n_embd)?,
                q: matrix(&t("attn_q"), n_embd, n_embd)?,
                k: matrix(&t("attn_k"), kv_dim, n_embd)?,
                v: matrix(&t("attn_v"), kv_dim, n_embd)?,
                o: matrix(&t("attn_output"), n_embd, n_embd)?,
                gate: matrix(&t("ffn_gate"), n_ff, n_embd)?,
                up: matrix(&t("ffn_up"), n_ff, n_embd)?,
                down: matrix(&t("ffn_down"), n_embd, n_ff)?,
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
            rope_base,
            freq_scale,
            rope_factors,
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
}

impl Acts {
    /// Quantizes `x` (`n` rows) for every weight type among `mats`.
    fn fill(&mut self, x: &[f32], cols: usize, mats: &[&Matrix]) {
        for act in [ActType::Q8_0, ActType::Q8_1] {
            if !mats.iter().any(|m| m.wt.act_type() == act) {
                continue;
            }
            let buf = match act {
                ActType::Q8_0 => &mut self.q8_0,
                ActType::Q8_1 => &mut self.q8_1,
            };
            let row = cols / QK * act.block_bytes();
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
        let (d, kv_dim) = (cfg.n_embd, cfg.n_kv_head * cfg.head_dim);
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
        }
        let rope: Vec<Vec<(f32, f32)>> = places.iter().map(|&(_, p)| self.rope_table(p)).collect();
        let mut h = vec![0.0f32; n * d];
        let mut q = vec![0.0f32; n * d];
        let mut k = vec![0.0f32; n * kv_dim];
        let mut v = vec![0.0f32; n * kv_dim];
        let mut att = vec![0.0f32; n * d];
        let mut tmp = vec![0.0f32; n * d.max(cfg.n_ff)];
        let mut gate = vec![0.0f32; n * cfg.n_ff];
        let mut up = vec![0.0f32; n * cfg.n_ff];
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
            for t in 0..n {
                apply_rope(&mut q[t * d..(t + 1) * d], cfg, &rope[t]);
                apply_rope(&mut k[t * kv_dim..(t + 1) * kv_dim], cfg, &rope[t]);
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
            self.attention(&q, seqs, li, &places, &mut att);

            acts.fill(&att, d, &[&layer.o]);
            self.matmul(&mut [(&layer.o, &mut h)], &acts, n, &mut tmp);
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
            for (g, u) in gate.iter_mut().zip(&up) {
                *g = silu(*g) * *u;
            }
            acts.fill(&gate, cfg.n_ff, &[&layer.down]);
            self.matmul(&mut [(&layer.down, &mut h)], &acts, n, &mut tmp);
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
    fn rope_table(&self, pos: usize) -> Vec<(f32, f32)> {
        let cfg = self.cfg;
        let theta_scale = cfg.rope_base.powf(-2.0 / cfg.n_rot as f32);
        let mut theta = pos as f32;
        (0..cfg.n_rot / 2)
            .map(|i| {
                let ff = cfg.rope_factors.as_ref().map_or(1.0, |f| f[i]);
                let t = cfg.freq_scale * (theta / ff);
                theta *= theta_scale;
                (t.cos(), t.sin())
            })
            .collect()
    }

    /// Causal attention of the new queries (token `i` of the batch sits at `places[i]`: its
    /// slot and position) over their sequences' caches for layer `li`, like ggml's CPU flash
    /// attention: Q rounded to f16, f16 dot products, online softmax with an f16 accumulator.
    fn attention(
        &self,
        q: &[f32],
        seqs: &[Sequence],
        li: usize,
        places: &[(usize, usize)],
        out: &mut [f32],
    ) {
        let cfg = self.cfg;
        let (hd, kv_dim) = (cfg.head_dim, cfg.n_kv_head * cfg.head_dim);
        let group = cfg.n_head / cfg.n_kv_head;
        let scale = 1.0 / (hd as f32).sqrt();
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
            for j in 0..=p {
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

/// ggml's `rms_norm` (sum of squares in f64) followed by the weight multiply.
fn rms_norm(x: &[f32], w: &[f32], eps: f32, out: &mut [f32]) {
    let sum: f64 = x.iter().map(|v| f64::from(v * v)).sum();
    let mean = sum / x.len() as f64;
    let scale = 1.0 / ((mean + f64::from(eps)) as f32).sqrt();
    for ((o, v), g) in out.iter_mut().zip(x).zip(w) {
        *o = (v * scale) * g;
    }
}

/// Rotates adjacent pairs of each head's first `n_rot` values (ggml's normal RoPE mode).
fn apply_rope(x: &mut [f32], cfg: &Config, table: &[(f32, f32)]) {
    for head in x.chunks_exact_mut(cfg.head_dim) {
        for (pair, &(cos, sin)) in head[..cfg.n_rot].chunks_exact_mut(2).zip(table) {
            let (x0, x1) = (pair[0], pair[1]);
            pair[0] = x0 * cos - x1 * sin;
            pair[1] = x0 * sin + x1 * cos;
        }
    }
}

fn silu(x: f32) -> f32 {
    x / (1.0 + (-x).exp())
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
            rope_base: 10_000.0,
            freq_scale: 1.0,
            rope_factors: None,
        };
        let ctx = Ctx {
            bytes: &[],
            cfg: &cfg,
            threads: 1,
        };
        let tables = [ctx.rope_table(0), ctx.rope_table(1)];
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
        let mut engine = NativeLlama::load(file, 2).unwrap();
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
