//! The forward pass, one for every architecture (optional pieces per layer: QKV biases, Q/K
//! norms, post-norms, the sliding window): embeddings, the layers with their matrix products
//! spread over the worker pool, flash-style attention over each sequence's f16 KV cache, and
//! the output layer for the last token of each sequence.

use rayon::prelude::*;

use super::config::{Config, FfnAct, RopeFreqs};
use super::ops::{apply_rope, gelu, gelu_table, post_norm, rms_norm, rope_table, silu};
use super::weights::{Matrix, Weights};
use crate::kernels::{self, ActType, WeightType};

/// The KV cache of one layer, f16 like llama.cpp's: `[position][kv_head * head_dim]`.
#[derive(Default)]
pub(super) struct LayerCache {
    pub(super) k: Vec<u16>,
    pub(super) v: Vec<u16>,
}

impl LayerCache {
    pub(super) fn clear(&mut self) {
        self.k.clear();
        self.v.clear();
    }
}

/// One sequence's KV cache (a slot): every layer's, and how many positions it holds.
#[derive(Default)]
pub(crate) struct Sequence {
    pub(super) layers: Vec<LayerCache>,
    pub(super) len: usize,
}

impl Sequence {
    /// The memory its positions take (f16 keys and values of every layer).
    pub(crate) fn bytes(&self) -> usize {
        self.layers
            .iter()
            .map(|c| (c.k.len() + c.v.len()) * std::mem::size_of::<u16>())
            .sum()
    }
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

/// What every step of a forward pass reads: the mapped file, the configuration and the size
/// of the worker pool it runs on.
pub(super) struct Pass<'a> {
    pub(super) bytes: &'a [u8],
    pub(super) cfg: &'a Config,
    pub(super) threads: usize,
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

impl Pass<'_> {
    /// One forward pass over the new tokens of every entry (their slots already exist and
    /// hold `pos` positions or more); returns each entry's logits after its last token.
    pub(super) fn forward(
        &self,
        entries: &[&Entry<'_>],
        weights: &Weights,
        seqs: &mut [Sequence],
    ) -> Vec<Vec<f32>> {
        let Weights {
            output,
            output_norm,
            layers,
            ..
        } = weights;
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
            weights.embed(self.bytes, t, row);
            if let Some(scale) = cfg.embd_scale {
                row.iter_mut().for_each(|v| *v *= scale);
            }
        }
        let tables = |freqs: RopeFreqs, factors: Option<&[f32]>| -> Vec<Vec<(f32, f32)>> {
            places
                .iter()
                .map(|&(_, p)| rope_table(cfg, p, freqs, factors))
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
