//! The model's tensors as the forward pass reads them: matrices located in the memory-mapped
//! file (never copied), the norm and bias vectors copied out as f32, every layer's set, and
//! the token-embedding lookup that dequantizes only the rows it needs.

use candle_core::quantized::GgmlDType;

use super::config::{Config, invalid};
use crate::error::LocalError;
use crate::gguf::GgufFile;
use crate::kernels::{self, WeightType};

/// A weight matrix inside the mapped file: `rows` rows of `row_bytes` bytes each.
#[derive(Debug, Clone, Copy)]
pub(super) struct Matrix {
    pub(super) wt: WeightType,
    start: usize,
    pub(super) rows: usize,
    pub(super) row_bytes: usize,
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

    pub(super) fn bytes<'a>(&self, file: &'a [u8]) -> &'a [u8] {
        &file[self.start..self.start + self.rows * self.row_bytes]
    }
}

/// One transformer block's weights.
pub(super) struct Layer {
    pub(super) attn_norm: Vec<f32>,
    pub(super) ffn_norm: Vec<f32>,
    pub(super) q: Matrix,
    pub(super) k: Matrix,
    pub(super) v: Matrix,
    pub(super) o: Matrix,
    pub(super) gate: Matrix,
    pub(super) up: Matrix,
    pub(super) down: Matrix,
    /// qwen2's attention biases.
    pub(super) qkv_bias: Option<[Vec<f32>; 3]>,
    /// Per-head RMS norms of Q and K (qwen3, gemma3).
    pub(super) qk_norm: Option<[Vec<f32>; 2]>,
    /// RMS norms after the attention and after the feed-forward, before each residual add
    /// (gemma3).
    pub(super) post_norms: Option<[Vec<f32>; 2]>,
    /// Whether the layer attends through the sliding window.
    pub(super) swa: bool,
}

/// Every weight of the model.
pub(super) struct Weights {
    embd: Matrix,
    pub(super) output: Matrix,
    pub(super) output_norm: Vec<f32>,
    pub(super) layers: Vec<Layer>,
}

impl Weights {
    /// Locates and checks every tensor `cfg` calls for; also returns the rotary frequency
    /// factors (`rope_freqs.weight`) when the file has them.
    pub(super) fn read(
        file: &GgufFile,
        cfg: &Config,
    ) -> Result<(Weights, Option<Vec<f32>>), LocalError> {
        let t = Tensors::new(file)?;
        let (n_embd, n_ff, head_dim) = (cfg.n_embd, cfg.n_ff, cfg.head_dim);
        let embd = t.matrix("token_embd.weight", cfg.n_vocab, n_embd)?;
        let output = if t.has("output.weight") {
            t.matrix("output.weight", cfg.n_vocab, n_embd)?
        } else {
            embd
        };
        let (q_dim, kv_dim) = (cfg.q_dim(), cfg.kv_dim());
        let mut layers = Vec::with_capacity(cfg.n_layer);
        for i in 0..cfg.n_layer {
            let name = |s: &str| format!("blk.{i}.{s}.weight");
            let has = |s: &str| t.has(&name(s));
            let (q, k, v) = if has("attn_qkv") {
                let qkv = t.matrix(&name("attn_qkv"), q_dim + 2 * kv_dim, n_embd)?;
                (
                    qkv.slice(0, q_dim),
                    qkv.slice(q_dim, kv_dim),
                    qkv.slice(q_dim + kv_dim, kv_dim),
                )
            } else {
                (
                    t.matrix(&name("attn_q"), q_dim, n_embd)?,
                    t.matrix(&name("attn_k"), kv_dim, n_embd)?,
                    t.matrix(&name("attn_v"), kv_dim, n_embd)?,
                )
            };
            let (gate, up) = if has("ffn_gate") {
                (
                    t.matrix(&name("ffn_gate"), n_ff, n_embd)?,
                    t.matrix(&name("ffn_up"), n_ff, n_embd)?,
                )
            } else {
                // Fused (phi3): the first half of `ffn_up` is the gate.
                let fused = t.matrix(&name("ffn_up"), 2 * n_ff, n_embd)?;
                (fused.slice(0, n_ff), fused.slice(n_ff, n_ff))
            };
            let bias = |s: &str, len: usize| t.vector(&format!("blk.{i}.{s}.bias"), len);
            let qkv_bias = t
                .has(&format!("blk.{i}.attn_q.bias"))
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
                    .then(|| Ok([t.vector(&name(a), len)?, t.vector(&name(b), len)?]))
                    .transpose()
            };
            let qk_norm = pair("attn_q_norm", "attn_k_norm", head_dim)?;
            let post_norms = pair("post_attention_norm", "post_ffw_norm", n_embd)?;
            layers.push(Layer {
                attn_norm: t.vector(&name("attn_norm"), n_embd)?,
                ffn_norm: t.vector(&name("ffn_norm"), n_embd)?,
                q,
                k,
                v,
                o: t.matrix(&name("attn_output"), n_embd, q_dim)?,
                gate,
                up,
                down: t.matrix(&name("ffn_down"), n_embd, n_ff)?,
                qkv_bias,
                qk_norm,
                post_norms,
                swa: cfg.swa.is_some() && i % 6 < 5,
            });
        }
        let output_norm = t.vector("output_norm.weight", n_embd)?;
        let rope_factors = if t.has("rope_freqs.weight") {
            Some(t.vector("rope_freqs.weight", cfg.n_rot / 2)?)
        } else {
            None
        };
        let weights = Weights {
            embd,
            output,
            output_norm,
            layers,
        };
        Ok((weights, rope_factors))
    }

    /// Token `token`'s embedding (a valid id), dequantized into `row`.
    pub(super) fn embed(&self, file: &[u8], token: u32, row: &mut [f32]) {
        let embd = &self.embd;
        let at = embd.start + token as usize * embd.row_bytes;
        kernels::dequantize_row(embd.wt, &file[at..at + embd.row_bytes], row);
    }
}

/// Reads the file's tensors by name, checking type, shape and extent.
struct Tensors<'a> {
    file: &'a GgufFile,
    data_start: usize,
}

impl<'a> Tensors<'a> {
    fn new(file: &'a GgufFile) -> Result<Self, LocalError> {
        let data_start = usize::try_from(file.content().tensor_data_offset)
            .map_err(|_| invalid(file, "the tensor data offset is too large".into()))?;
        Ok(Tensors { file, data_start })
    }

    fn has(&self, name: &str) -> bool {
        self.file.content().tensor_infos.contains_key(name)
    }

    fn info(
        &self,
        name: &str,
    ) -> Result<&'a candle_core::quantized::gguf_file::TensorInfo, LocalError> {
        self.file
            .content()
            .tensor_infos
            .get(name)
            .ok_or_else(|| invalid(self.file, format!("tensor `{name}` is missing")))
    }

    /// The f32 vector `name` of `len` values, copied out.
    fn vector(&self, name: &str, len: usize) -> Result<Vec<f32>, LocalError> {
        let info = self.info(name)?;
        if info.ggml_dtype != GgmlDType::F32 || info.shape.elem_count() != len {
            return Err(invalid(
                self.file,
                format!(
                    "tensor `{name}` should be {len} f32 values, found {:?} {:?}",
                    info.ggml_dtype,
                    info.shape.dims()
                ),
            ));
        }
        let start = self.data_start + info.offset as usize;
        let raw = self
            .file
            .bytes()
            .get(start..start + len * 4)
            .ok_or_else(|| {
                invalid(
                    self.file,
                    format!("tensor `{name}` runs past the end of the file"),
                )
            })?;
        Ok(raw
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect())
    }

    /// The quantized matrix `name` of `rows` × `cols`, located in the file.
    fn matrix(&self, name: &str, rows: usize, cols: usize) -> Result<Matrix, LocalError> {
        let info = self.info(name)?;
        let invalid = |detail: String| invalid(self.file, detail);
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
        let start = self.data_start + info.offset as usize;
        if self.file.bytes().len() < start + rows * row_bytes {
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
    }
}
