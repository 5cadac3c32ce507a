//! The element-wise and per-row operations of the forward pass, each as ggml's CPU backend
//! computes it: RMS norm, RoPE tables and rotation, SiLU and the tabulated GELU.

use std::sync::OnceLock;

use half::f16;

use super::arch::RopeStyle;
use super::config::{Config, RopeFreqs};

/// Cos/sin of every rotary pair at position `pos`, as ggml's `rope_yarn` computes them
/// (no extrapolation mix, attention factor 1).
pub(super) fn rope_table(
    cfg: &Config,
    pos: usize,
    freqs: RopeFreqs,
    factors: Option<&[f32]>,
) -> Vec<(f32, f32)> {
    let theta_scale = freqs.base.powf(-2.0 / cfg.n_rot as f32);
    let mut theta = pos as f32;
    (0..cfg.n_rot / 2)
        .map(|i| {
            let ff = factors.map_or(1.0, |f| f[i]);
            let t = freqs.freq_scale * (theta / ff);
            theta *= theta_scale;
            (t.cos(), t.sin())
        })
        .collect()
}

/// ggml's `rms_norm` (sum of squares in f64, the mean rounded to f32 before `eps` is added, as
/// ggml does) followed by the weight multiply.
pub(super) fn rms_norm(x: &[f32], w: &[f32], eps: f32, out: &mut [f32]) {
    let sum: f64 = x.iter().map(|v| f64::from(v * v)).sum();
    let mean = (sum / x.len() as f64) as f32;
    let scale = 1.0 / (mean + eps).sqrt();
    for ((o, v), g) in out.iter_mut().zip(x).zip(w) {
        *o = (v * scale) * g;
    }
}

/// Rotates each head's first `n_rot` values in pairs: adjacent ones (ggml's normal mode) or
/// `i` with `i + n_rot / 2` (NeoX mode).
pub(super) fn apply_rope(x: &mut [f32], cfg: &Config, table: &[(f32, f32)]) {
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
pub(super) fn post_norm(h: &mut [f32], scratch: &mut [f32], w: &[f32], eps: f32) {
    let d = w.len();
    for (out, xs) in scratch.chunks_exact_mut(d).zip(h.chunks_exact(d)) {
        rms_norm(xs, w, eps, out);
    }
    h.copy_from_slice(&scratch[..h.len()]);
}

pub(super) fn silu(x: f32) -> f32 {
    x / (1.0 + (-x).exp())
}

/// GELU, tanh form, in f32 (ggml's `ggml_gelu_f32`).
fn gelu_f32(x: f32) -> f32 {
    const SQRT_2_OVER_PI: f32 = 0.797_884_6;
    const COEF_A: f32 = 0.044_715;
    0.5 * x * (1.0 + (SQRT_2_OVER_PI * x * (1.0 + COEF_A * x * x)).tanh())
}

/// ggml's `ggml_table_gelu_f16`: the f16 GELU of every f16 value, built on first use.
pub(super) fn gelu_table() -> &'static [u16] {
    static TABLE: OnceLock<Vec<u16>> = OnceLock::new();
    TABLE.get_or_init(|| {
        (0..=u16::MAX)
            .map(|bits| f16::from_f32(gelu_f32(f16::from_bits(bits).to_f32())).to_bits())
            .collect()
    })
}

/// GELU as ggml's CPU backend computes it: 0 below -10, the identity above 10, and between
/// them the entry of `table` ([`gelu_table`]) for `x` rounded to f16.
pub(super) fn gelu(table: &[u16], x: f32) -> f32 {
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
    use crate::native::config::FfnAct;

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
            n_layer: 1,
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
        let tables = [
            rope_table(&cfg, 0, cfg.rope, None),
            rope_table(&cfg, 1, cfg.rope, None),
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
