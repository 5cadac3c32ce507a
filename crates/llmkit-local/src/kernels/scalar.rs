//! The reference kernels in plain Rust, like ggml's `quants.c` `*_generic` functions: activation
//! quantization, every dot product (K-quants included), dequantization and the f16 vector
//! operations. They run on CPUs without AVX2/FMA/F16C and on other architectures.
//!
//! The K-quant dot products form ggml's AVX2 integer lanes and float sums in the same order, so
//! they give the same bits as the SIMD kernels; the Q4_1 and Q8_0 ones sum block by block as
//! ggml's scalar code does. For those two, `lanes` (test-only) models the SIMD order.

use half::f16;

use super::blocks::{BlockQ4_1, BlockQ4K, BlockQ6K, BlockQ8_0, BlockQ8_1, BlockQ8K, QK, f16_bytes};
use super::kquants::{QK_K, q6, unpack_scales};

/// A block of 32 values rounded to signed bytes with scale `max|x| / 127` (round half to
/// even): the scale, the quants and their sum.
fn round_block(xs: &[f32]) -> (f32, [u8; QK], i32) {
    let amax = xs.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    let d = amax / 127.0;
    let id = if amax != 0.0 { 127.0 / amax } else { 0.0 };
    let mut qs = [0u8; QK];
    let mut sum = 0i32;
    for (q, v) in qs.iter_mut().zip(xs) {
        let r = (v * id).round_ties_even() as i32;
        sum += r;
        *q = r as i8 as u8;
    }
    (d, qs, sum)
}

/// llama.cpp's `quantize_row_q8_0_ref`.
pub(crate) fn quantize_q8_0(x: &[f32], out: &mut [BlockQ8_0]) {
    for (xs, block) in x.chunks_exact(QK).zip(out) {
        let (d, qs, _) = round_block(xs);
        block.d = f16_bytes(d);
        block.qs = qs;
    }
}

/// llama.cpp's `quantize_row_q8_1_ref`.
pub(crate) fn quantize_q8_1(x: &[f32], out: &mut [BlockQ8_1]) {
    for (xs, block) in x.chunks_exact(QK).zip(out) {
        let (d, qs, sum) = round_block(xs);
        block.d = f16_bytes(d);
        block.s = f16_bytes(d * sum as f32);
        block.qs = qs;
    }
}

/// Quantizes `x` (a multiple of 256 long) into Q8_K blocks, as ggml's `quantize_row_q8_K_ref`:
/// the scale comes from the value of largest magnitude, sign included, and quants round to
/// nearest, ties to even.
pub(crate) fn quantize_q8_k(x: &[f32], out: &mut [BlockQ8K]) {
    for (xs, block) in x.chunks_exact(QK_K).zip(out) {
        let (mut amax, mut max) = (0.0f32, 0.0f32);
        for &v in xs {
            if v.abs() > amax {
                amax = v.abs();
                max = v;
            }
        }
        if amax == 0.0 {
            *block = bytemuck::Zeroable::zeroed();
            continue;
        }
        let iscale = -127.0 / max;
        for (q, v) in block.qs.iter_mut().zip(xs) {
            let r = ((iscale * v).round_ties_even() as i32).min(127);
            *q = r as i8 as u8;
        }
        for (g, sum) in block
            .qs
            .chunks_exact(16)
            .zip(block.bsums.chunks_exact_mut(2))
        {
            let s: i32 = g.iter().map(|&q| i32::from(q as i8)).sum();
            sum.copy_from_slice(&(s as i16).to_le_bytes());
        }
        block.d = (1.0 / iscale).to_le_bytes();
    }
}

/// ggml's `ggml_vec_dot_q4_1_q8_1`, scalar.
pub(crate) fn dot_q4_1_q8_1(row: &[BlockQ4_1], act: &[BlockQ8_1]) -> f32 {
    let mut sum = 0.0f32;
    let mut summs = 0.0f32;
    for (x, y) in row.iter().zip(act) {
        let mut sumi = 0i32;
        for j in 0..QK / 2 {
            let lo = i32::from(x.qs[j] & 0x0f);
            let hi = i32::from(x.qs[j] >> 4);
            sumi += lo * i32::from(y.qs[j] as i8) + hi * i32::from(y.qs[j + QK / 2] as i8);
        }
        sum += x.d() * y.d() * sumi as f32;
        summs += x.m() * y.s();
    }
    sum + summs
}

/// ggml's `ggml_vec_dot_q8_0_q8_0`, scalar.
pub(crate) fn dot_q8_0_q8_0(row: &[BlockQ8_0], act: &[BlockQ8_0]) -> f32 {
    let mut sum = 0.0f32;
    for (x, y) in row.iter().zip(act) {
        let sumi: i32 =
            x.qs.iter()
                .zip(&y.qs)
                .map(|(&a, &b)| i32::from(a as i8) * i32::from(b as i8))
                .sum();
        sum += x.d() * y.d() * sumi as f32;
    }
    sum
}

/// ggml's `hsum_float_8` on eight lanes: `((a0+a4)+(a2+a6)) + ((a1+a5)+(a3+a7))`.
#[inline]
fn hsum8(a: &[f32; 8]) -> f32 {
    let r = [a[0] + a[4], a[1] + a[5], a[2] + a[6], a[3] + a[7]];
    (r[0] + r[2]) + (r[1] + r[3])
}

/// The Q4_K × Q8_K dot product of one row with one activation row, in ggml's AVX2 lanes.
pub(crate) fn dot_q4_k_q8_k(row: &[BlockQ4K], act: &[BlockQ8K]) -> f32 {
    let mut acc = [0.0f32; 8];
    let mut acc_m = [0.0f32; 4];
    for (x, y) in row.iter().zip(act) {
        let yd = y.d();
        let d = yd * x.d();
        let dmin = -yd * x.dmin();
        let (scales, mins) = unpack_scales(&x.scales);
        for (i, m) in acc_m.iter_mut().enumerate() {
            let q8s = |s: usize| y.bsum(2 * s) + y.bsum(2 * s + 1);
            let prod =
                i32::from(mins[2 * i]) * q8s(2 * i) + i32::from(mins[2 * i + 1]) * q8s(2 * i + 1);
            *m = dmin.mul_add(prod as f32, *m);
        }
        let mut lanes = [0i32; 8];
        for j in 0..4 {
            let (lo_scale, hi_scale) = (i32::from(scales[2 * j]), i32::from(scales[2 * j + 1]));
            for (k, lane) in lanes.iter_mut().enumerate() {
                let (mut lo, mut hi) = (0i32, 0i32);
                for b in 4 * k..4 * k + 4 {
                    let q = x.qs[32 * j + b];
                    lo += i32::from(q & 0x0f) * i32::from(y.qs[64 * j + b] as i8);
                    hi += i32::from(q >> 4) * i32::from(y.qs[64 * j + 32 + b] as i8);
                }
                *lane += lo_scale * lo + hi_scale * hi;
            }
        }
        for (a, l) in acc.iter_mut().zip(lanes) {
            *a = d.mul_add(l as f32, *a);
        }
    }
    let m = (acc_m[0] + acc_m[2]) + (acc_m[1] + acc_m[3]);
    hsum8(&acc) + m
}

/// The Q6_K × Q8_K dot product of one row with one activation row, in ggml's AVX2 lanes.
pub(crate) fn dot_q6_k_q8_k(row: &[BlockQ6K], act: &[BlockQ8K]) -> f32 {
    let mut acc = [0.0f32; 8];
    for (x, y) in row.iter().zip(act) {
        let d = y.d() * x.d();
        let mut lanes = [0i32; 8];
        for c in 0..2 {
            let (ql, qh, sc) = (&x.ql[64 * c..], &x.qh[32 * c..], &x.scales[8 * c..]);
            for quarter in 0..4 {
                for (k, lane) in lanes.iter_mut().enumerate() {
                    let mut sum = 0i32;
                    for b in 4 * k..4 * k + 4 {
                        let v = 32 * quarter + b;
                        sum += (q6(ql, qh, v) - 32) * i32::from(y.qs[128 * c + v] as i8);
                    }
                    let scale = i32::from(sc[2 * quarter + usize::from(k >= 4)] as i8);
                    *lane += scale * sum;
                }
            }
        }
        for (a, l) in acc.iter_mut().zip(lanes) {
            *a = d.mul_add(l as f32, *a);
        }
    }
    hsum8(&acc)
}

/// ggml's `dequantize_row_q4_1`.
pub(crate) fn dequantize_q4_1(row: &[BlockQ4_1], out: &mut [f32]) {
    for (x, ys) in row.iter().zip(out.chunks_exact_mut(QK)) {
        let (d, m) = (x.d(), x.m());
        for j in 0..QK / 2 {
            ys[j] = f32::from(x.qs[j] & 0x0f) * d + m;
            ys[j + QK / 2] = f32::from(x.qs[j] >> 4) * d + m;
        }
    }
}

/// ggml's `dequantize_row_q8_0`.
pub(crate) fn dequantize_q8_0(row: &[BlockQ8_0], out: &mut [f32]) {
    for (x, ys) in row.iter().zip(out.chunks_exact_mut(QK)) {
        let d = x.d();
        for (y, &q) in ys.iter_mut().zip(&x.qs) {
            *y = f32::from(q as i8) * d;
        }
    }
}

/// ggml's `dequantize_row_q4_K`.
pub(crate) fn dequantize_q4_k(row: &[BlockQ4K], out: &mut [f32]) {
    for (x, ys) in row.iter().zip(out.chunks_exact_mut(QK_K)) {
        let (d, min) = (x.d(), x.dmin());
        let (scales, mins) = unpack_scales(&x.scales);
        for j in 0..4 {
            let (d1, m1) = (d * f32::from(scales[2 * j]), min * f32::from(mins[2 * j]));
            let (d2, m2) = (
                d * f32::from(scales[2 * j + 1]),
                min * f32::from(mins[2 * j + 1]),
            );
            for l in 0..32 {
                let q = x.qs[32 * j + l];
                ys[64 * j + l] = d1 * f32::from(q & 0x0f) - m1;
                ys[64 * j + 32 + l] = d2 * f32::from(q >> 4) - m2;
            }
        }
    }
}

/// ggml's `dequantize_row_q6_K`.
pub(crate) fn dequantize_q6_k(row: &[BlockQ6K], out: &mut [f32]) {
    for (x, ys) in row.iter().zip(out.chunks_exact_mut(QK_K)) {
        let d = x.d();
        for c in 0..2 {
            let (ql, qh, sc) = (&x.ql[64 * c..], &x.qh[32 * c..], &x.scales[8 * c..]);
            for v in 0..128 {
                let scale = f32::from(sc[2 * (v / 32) + (v % 32) / 16] as i8);
                ys[128 * c + v] = d * scale * (q6(ql, qh, v) - 32) as f32;
            }
        }
    }
}

/// `x` rounded to f16 (round half to even), as bits.
pub(crate) fn to_f16(x: &[f32], out: &mut [u16]) {
    for (o, v) in out.iter_mut().zip(x) {
        *o = f16::from_f32(*v).to_bits();
    }
}

/// f16 bits widened to f32.
pub(crate) fn from_f16(x: &[u16], out: &mut [f32]) {
    for (o, v) in out.iter_mut().zip(x) {
        *o = f16::from_bits(*v).to_f32();
    }
}

/// ggml's `ggml_vec_dot_f16`, scalar.
pub(crate) fn dot_f16(a: &[u16], b: &[u16]) -> f32 {
    a.iter()
        .zip(b)
        .map(|(x, y)| f16::from_bits(*x).to_f32() * f16::from_bits(*y).to_f32())
        .sum()
}

/// ggml's `ggml_vec_mad_f16`, scalar.
pub(crate) fn mad_f16(y: &mut [u16], x: &[u16], v: f32) {
    for (o, a) in y.iter_mut().zip(x) {
        let sum = f16::from_bits(*a)
            .to_f32()
            .mul_add(v, f16::from_bits(*o).to_f32());
        *o = f16::from_f32(sum).to_bits();
    }
}

/// ggml's `ggml_vec_scale_f16`, scalar.
pub(crate) fn scale_f16(y: &mut [u16], v: f32) {
    for o in y.iter_mut() {
        *o = f16::from_f32(f16::from_bits(*o).to_f32() * v).to_bits();
    }
}

/// The Q4_1 and Q8_0 dot products in the order of the SIMD kernels (eight i32 lanes of four
/// byte products each, one fused multiply-add per lane and block, ggml's `hsum_float_8`), the
/// reference the SIMD tests compare bits against.
#[cfg(test)]
pub(crate) mod lanes {
    use super::{BlockQ4_1, BlockQ8_0, BlockQ8_1, QK, hsum8};

    /// Eight lanes of `x · y` over 32 bytes: lane `k` sums products `4k..4k + 4`.
    fn lanes(x: impl Fn(usize) -> i32, y: &[u8; QK]) -> [i32; 8] {
        std::array::from_fn(|k| {
            (4 * k..4 * k + 4)
                .map(|i| x(i) * i32::from(y[i] as i8))
                .sum()
        })
    }

    pub(crate) fn dot_q4_1_q8_1(row: &[BlockQ4_1], act: &[BlockQ8_1]) -> f32 {
        let mut acc = [0.0f32; 8];
        let mut summs = 0.0f32;
        for (x, y) in row.iter().zip(act) {
            summs += x.m() * y.s();
            let d = x.d() * y.d();
            let nibble = |i: usize| {
                let q = x.qs[i % (QK / 2)];
                i32::from(if i < QK / 2 { q & 0x0f } else { q >> 4 })
            };
            for (a, l) in acc.iter_mut().zip(lanes(nibble, &y.qs)) {
                *a = d.mul_add(l as f32, *a);
            }
        }
        hsum8(&acc) + summs
    }

    pub(crate) fn dot_q8_0_q8_0(row: &[BlockQ8_0], act: &[BlockQ8_0]) -> f32 {
        let mut acc = [0.0f32; 8];
        for (x, y) in row.iter().zip(act) {
            let d = x.d() * y.d();
            for (a, l) in acc
                .iter_mut()
                .zip(lanes(|i| i32::from(x.qs[i] as i8), &y.qs))
            {
                *a = d.mul_add(l as f32, *a);
            }
        }
        hsum8(&acc)
    }
}
