//! ggml's K-quant formats, as most published GGUF files use them (Q4_K_M: Q4_K with some Q6_K):
//! activations quantized to Q8_K, Q4_K and Q6_K rows dotted with them, and rows dequantized.
//! The AVX2 kernels form the same integer lanes and the same float sums, in the same order, as
//! ggml's `ggml_vec_dot_q4_K_q8_K` / `ggml_vec_dot_q6_K_q8_K`; the scalar versions reproduce
//! those lanes too, so both give the same bits (tested).
#![allow(unsafe_code)]

use crate::kernels::f16_at;

/// Values per K-quant super-block.
pub(crate) const QK_K: usize = 256;
/// `block_q4_K`: f16 d, f16 dmin, 12 bytes of packed 6-bit scales and mins, 128 bytes of nibbles.
pub(crate) const Q4_K_BYTES: usize = 144;
/// `block_q6_K`: 128 bytes of low nibbles, 64 of high bit pairs, 16 i8 scales, f16 d.
pub(crate) const Q6_K_BYTES: usize = 210;
/// `block_q8_K`: f32 d, 256 i8 quants, 16 i16 sums of 16 quants each.
pub(crate) const Q8_K_BYTES: usize = 292;

/// The eight 6-bit scales and the eight 6-bit mins of a Q4_K block's 12 packed bytes (ggml's
/// `get_scale_min_k4` for all eight sub-blocks at once).
#[inline]
fn unpack_scales(packed: &[u8]) -> ([u8; 8], [u8; 8]) {
    let word = |i: usize| {
        u32::from_le_bytes([
            packed[4 * i],
            packed[4 * i + 1],
            packed[4 * i + 2],
            packed[4 * i + 3],
        ])
    };
    let (w0, w1, w2) = (word(0), word(1), word(2));
    let scales_lo = w0 & 0x3f3f_3f3f;
    let scales_hi = (w2 & 0x0f0f_0f0f) | (((w0 >> 6) & 0x0303_0303) << 4);
    let mins_lo = w1 & 0x3f3f_3f3f;
    let mins_hi = ((w2 >> 4) & 0x0f0f_0f0f) | (((w1 >> 6) & 0x0303_0303) << 4);
    let bytes = |lo: u32, hi: u32| (u64::from(lo) | (u64::from(hi) << 32)).to_le_bytes();
    (bytes(scales_lo, scales_hi), bytes(mins_lo, mins_hi))
}

/// Quantizes `x` (a multiple of 256 long) into Q8_K blocks, as ggml's `quantize_row_q8_K_ref`:
/// the scale comes from the value of largest magnitude, sign included, and quants round to
/// nearest, ties to even.
pub(crate) fn quantize_q8_k(x: &[f32], out: &mut [u8]) {
    for (xs, block) in x.chunks_exact(QK_K).zip(out.chunks_exact_mut(Q8_K_BYTES)) {
        let (mut amax, mut max) = (0.0f32, 0.0f32);
        for &v in xs {
            if v.abs() > amax {
                amax = v.abs();
                max = v;
            }
        }
        if amax == 0.0 {
            block.fill(0);
            continue;
        }
        let iscale = -127.0 / max;
        let (head, rest) = block.split_at_mut(4);
        let (qs, sums) = rest.split_at_mut(QK_K);
        for (q, v) in qs.iter_mut().zip(xs) {
            let r = ((iscale * v).round_ties_even() as i32).min(127);
            *q = r as i8 as u8;
        }
        for (g, sum) in qs.chunks_exact(16).zip(sums.chunks_exact_mut(2)) {
            let s: i32 = g.iter().map(|&q| i32::from(q as i8)).sum();
            sum.copy_from_slice(&(s as i16).to_le_bytes());
        }
        head.copy_from_slice(&(1.0 / iscale).to_le_bytes());
    }
}

/// A Q8_K block's scale, quants and sums.
#[inline]
fn q8_k(y: &[u8]) -> (f32, &[u8], &[u8]) {
    let d = f32::from_le_bytes([y[0], y[1], y[2], y[3]]);
    (d, &y[4..4 + QK_K], &y[4 + QK_K..Q8_K_BYTES])
}

#[inline]
fn bsum(sums: &[u8], i: usize) -> i32 {
    i32::from(i16::from_le_bytes([sums[2 * i], sums[2 * i + 1]]))
}

/// ggml's `hsum_float_8` on eight lanes: `((a0+a4)+(a2+a6)) + ((a1+a5)+(a3+a7))`.
#[inline]
fn hsum8(a: &[f32; 8]) -> f32 {
    let r = [a[0] + a[4], a[1] + a[5], a[2] + a[6], a[3] + a[7]];
    (r[0] + r[2]) + (r[1] + r[3])
}

/// The Q4_K × Q8_K dot product of one row with one activation row, in ggml's AVX2 lanes.
pub(crate) fn dot_q4_k_scalar(row: &[u8], act: &[u8]) -> f32 {
    let mut acc = [0.0f32; 8];
    let mut acc_m = [0.0f32; 4];
    for (x, y) in row
        .chunks_exact(Q4_K_BYTES)
        .zip(act.chunks_exact(Q8_K_BYTES))
    {
        let (yd, q8, sums) = q8_k(y);
        let d = yd * f16_at(x, 0);
        let dmin = -yd * f16_at(x, 2);
        let qs = &x[16..];
        let (scales, mins) = unpack_scales(&x[4..16]);
        for (i, m) in acc_m.iter_mut().enumerate() {
            let q8s = |s: usize| bsum(sums, 2 * s) + bsum(sums, 2 * s + 1);
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
                    let q = qs[32 * j + b];
                    lo += i32::from(q & 0x0f) * i32::from(q8[64 * j + b] as i8);
                    hi += i32::from(q >> 4) * i32::from(q8[64 * j + 32 + b] as i8);
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

/// The six-bit quant of value `v` (0..128) of a 128-value chunk of a Q6_K block, unsigned.
#[inline]
fn q6(ql: &[u8], qh: &[u8], v: usize) -> i32 {
    let (quarter, l) = (v / 32, v % 32);
    let low = match quarter {
        0 => ql[l] & 0x0f,
        1 => ql[l + 32] & 0x0f,
        2 => ql[l] >> 4,
        _ => ql[l + 32] >> 4,
    };
    let high = (qh[l] >> (2 * quarter)) & 3;
    i32::from(low | (high << 4))
}

/// The Q6_K × Q8_K dot product of one row with one activation row, in ggml's AVX2 lanes.
pub(crate) fn dot_q6_k_scalar(row: &[u8], act: &[u8]) -> f32 {
    let mut acc = [0.0f32; 8];
    for (x, y) in row
        .chunks_exact(Q6_K_BYTES)
        .zip(act.chunks_exact(Q8_K_BYTES))
    {
        let (yd, q8, _) = q8_k(y);
        let d = yd * f16_at(x, 208);
        let mut lanes = [0i32; 8];
        for c in 0..2 {
            let (ql, qh, sc) = (&x[64 * c..], &x[128 + 32 * c..], &x[192 + 8 * c..]);
            for quarter in 0..4 {
                for (k, lane) in lanes.iter_mut().enumerate() {
                    let mut sum = 0i32;
                    for b in 4 * k..4 * k + 4 {
                        let v = 32 * quarter + b;
                        sum += (q6(ql, qh, v) - 32) * i32::from(q8[128 * c + v] as i8);
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

/// Dequantizes a Q4_K row (ggml's `dequantize_row_q4_K`).
pub(crate) fn dequantize_q4_k(row: &[u8], out: &mut [f32]) {
    for (x, ys) in row.chunks_exact(Q4_K_BYTES).zip(out.chunks_exact_mut(QK_K)) {
        let (d, min) = (f16_at(x, 0), f16_at(x, 2));
        let qs = &x[16..];
        let (scales, mins) = unpack_scales(&x[4..16]);
        for j in 0..4 {
            let (d1, m1) = (d * f32::from(scales[2 * j]), min * f32::from(mins[2 * j]));
            let (d2, m2) = (
                d * f32::from(scales[2 * j + 1]),
                min * f32::from(mins[2 * j + 1]),
            );
            for l in 0..32 {
                let q = qs[32 * j + l];
                ys[64 * j + l] = d1 * f32::from(q & 0x0f) - m1;
                ys[64 * j + 32 + l] = d2 * f32::from(q >> 4) - m2;
            }
        }
    }
}

/// Dequantizes a Q6_K row (ggml's `dequantize_row_q6_K`).
pub(crate) fn dequantize_q6_k(row: &[u8], out: &mut [f32]) {
    for (x, ys) in row.chunks_exact(Q6_K_BYTES).zip(out.chunks_exact_mut(QK_K)) {
        let d = f16_at(x, 208);
        for c in 0..2 {
            let (ql, qh, sc) = (&x[64 * c..], &x[128 + 32 * c..], &x[192 + 8 * c..]);
            for v in 0..128 {
                let scale = f32::from(sc[2 * (v / 32) + (v % 32) / 16] as i8);
                ys[128 * c + v] = d * scale * (q6(ql, qh, v) - 32) as f32;
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
pub(crate) mod avx2 {
    use std::arch::x86_64::*;

    use super::{Q4_K_BYTES, Q6_K_BYTES, Q8_K_BYTES, QK_K, q8_k, unpack_scales};
    use crate::kernels::{f16_at, hsum_float_8};

    /// Asks for the cache lines a few blocks ahead of `block` (3 lines cover a Q4_K or Q6_K
    /// block; a hint that never faults).
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    fn prefetch_block(block: &[u8]) {
        const AHEAD: usize = 512;
        let p = block.as_ptr().wrapping_add(AHEAD);
        for line in 0..3 {
            // A hint with no memory access semantics (safe to call here); `wrapping_add` keeps
            // the address computation defined whatever it points at.
            _mm_prefetch::<_MM_HINT_T0>(p.wrapping_add(64 * line).cast());
        }
    }

    /// Scale `k` of the eight i16 scales in `sc` (both halves), in every i16 lane.
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    fn scale_of(sc: __m256i, k: usize) -> __m256i {
        let lo = (2 * k) as i16;
        _mm256_shuffle_epi8(sc, _mm256_set1_epi16(lo | ((lo + 1) << 8)))
    }

    /// [`super::dot_q4_k_scalar`] with AVX2 (the same bits).
    ///
    /// # Safety
    /// The CPU must have AVX2, FMA and F16C.
    #[target_feature(enable = "avx2,fma,f16c")]
    pub(crate) unsafe fn dot_q4_k(row: &[u8], act: &[u8]) -> f32 {
        // SAFETY: the caller's contract, passed on.
        unsafe { dot_q4_k_n::<1>(row, [act])[0] }
    }

    /// [`dot_q4_k`] of one row against `A` activation rows at once: each weight block is
    /// unpacked once for all of them (prompt processing); every result has the same bits as
    /// [`dot_q4_k`] gives alone.
    ///
    /// # Safety
    /// The CPU must have AVX2, FMA and F16C.
    #[target_feature(enable = "avx2,fma,f16c")]
    pub(crate) unsafe fn dot_q4_k_n<const A: usize>(row: &[u8], acts: [&[u8]; A]) -> [f32; A] {
        let low = _mm256_set1_epi8(0x0f);
        let mut acc = [_mm256_setzero_ps(); A];
        let mut acc_m = [_mm_setzero_ps(); A];
        for (b, x) in row.chunks_exact(Q4_K_BYTES).enumerate() {
            prefetch_block(x);
            let xd = f16_at(x, 0);
            let xmin = f16_at(x, 2);
            let qs = &x[16..];
            let (scales, mins) = unpack_scales(&x[4..16]);
            // The 8 scales and the 8 mins as i16; the mins dot the sums of the sub-blocks' quants.
            let eight = |b: [u8; 8]| i64::from_le_bytes(b);
            let scales16 = _mm_cvtepu8_epi16(_mm_set_epi64x(0, eight(scales)));
            let mins16 = _mm_cvtepu8_epi16(_mm_set_epi64x(0, eight(mins)));
            let sc = _mm256_broadcastsi128_si256(scales16);
            let ys: [(f32, &[u8], &[u8]); A] =
                std::array::from_fn(|a| q8_k(&acts[a][b * Q8_K_BYTES..(b + 1) * Q8_K_BYTES]));
            for a in 0..A {
                let (yd, _, sums) = ys[a];
                let dmin = -yd * xmin;
                // SAFETY: `sums` is the block's 32 bytes of i16 sums.
                let bs = unsafe { _mm256_loadu_si256(sums.as_ptr().cast()) };
                let q8s = _mm_hadd_epi16(
                    _mm256_castsi256_si128(bs),
                    _mm256_extracti128_si256::<1>(bs),
                );
                let prod = _mm_madd_epi16(mins16, q8s);
                acc_m[a] = _mm_fmadd_ps(_mm_set1_ps(dmin), _mm_cvtepi32_ps(prod), acc_m[a]);
            }
            let mut sumi = [_mm256_setzero_si256(); A];
            for j in 0..4 {
                // SAFETY: `qs` holds 128 bytes, so the 32-byte load is in bounds (checked by
                // the slice indexing).
                let bits = unsafe { _mm256_loadu_si256(qs[32 * j..32 * j + 32].as_ptr().cast()) };
                let q4l = _mm256_and_si256(bits, low);
                let q4h = _mm256_and_si256(_mm256_srli_epi16::<4>(bits), low);
                let (scale_l, scale_h) = (scale_of(sc, 2 * j), scale_of(sc, 2 * j + 1));
                for a in 0..A {
                    let q8 = ys[a].1;
                    // SAFETY: `q8` holds 256 bytes; both loads are in bounds.
                    let (q8l, q8h) = unsafe {
                        (
                            _mm256_loadu_si256(q8[64 * j..64 * j + 32].as_ptr().cast()),
                            _mm256_loadu_si256(q8[64 * j + 32..64 * j + 64].as_ptr().cast()),
                        )
                    };
                    let pl = _mm256_madd_epi16(scale_l, _mm256_maddubs_epi16(q4l, q8l));
                    let ph = _mm256_madd_epi16(scale_h, _mm256_maddubs_epi16(q4h, q8h));
                    sumi[a] = _mm256_add_epi32(sumi[a], _mm256_add_epi32(pl, ph));
                }
            }
            for a in 0..A {
                let d = ys[a].0 * xd;
                acc[a] = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi[a]), acc[a]);
            }
        }
        std::array::from_fn(|a| {
            let mut m = _mm_add_ps(acc_m[a], _mm_movehl_ps(acc_m[a], acc_m[a]));
            m = _mm_add_ss(m, _mm_movehdup_ps(m));
            hsum_float_8(acc[a]) + _mm_cvtss_f32(m)
        })
    }

    /// Bits `shift..shift + 2` of each byte of `hb`, moved to bits 4 and 5 (a Q6_K quant's high
    /// pair); `two` is 0x03 in every byte.
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    fn high_pair(hb: __m256i, two: __m256i, shift: i32) -> __m256i {
        let shifted = _mm256_srl_epi16(hb, _mm_cvtsi32_si128(shift));
        _mm256_slli_epi16::<4>(_mm256_and_si256(shifted, two))
    }

    /// [`super::dot_q6_k_scalar`] with AVX2 (the same bits).
    ///
    /// # Safety
    /// The CPU must have AVX2, FMA and F16C.
    #[target_feature(enable = "avx2,fma,f16c")]
    pub(crate) unsafe fn dot_q6_k(row: &[u8], act: &[u8]) -> f32 {
        // SAFETY: the caller's contract, passed on.
        unsafe { dot_q6_k_n::<1>(row, [act])[0] }
    }

    /// [`dot_q6_k`] of one row against `A` activation rows at once (each block unpacked once;
    /// the same bits per result).
    ///
    /// # Safety
    /// The CPU must have AVX2, FMA and F16C.
    #[target_feature(enable = "avx2,fma,f16c")]
    pub(crate) unsafe fn dot_q6_k_n<const A: usize>(row: &[u8], acts: [&[u8]; A]) -> [f32; A] {
        let low = _mm256_set1_epi8(0x0f);
        let two = _mm256_set1_epi8(0x03);
        let m32 = _mm256_set1_epi8(32);
        let mut acc = [_mm256_setzero_ps(); A];
        for (b, x) in row.chunks_exact(Q6_K_BYTES).enumerate() {
            prefetch_block(x);
            let xd = f16_at(x, 208);
            let ys: [(f32, &[u8], &[u8]); A] =
                std::array::from_fn(|a| q8_k(&acts[a][b * Q8_K_BYTES..(b + 1) * Q8_K_BYTES]));
            let mut sumi = [_mm256_setzero_si256(); A];
            for c in 0..QK_K / 128 {
                let ql = &x[64 * c..64 * c + 64];
                let qh = &x[128 + 32 * c..160 + 32 * c];
                let sc = &x[192 + 8 * c..200 + 8 * c];
                // SAFETY: each load reads 32 bytes of a slice at least that long.
                let (l1, l2, hb) = unsafe {
                    (
                        _mm256_loadu_si256(ql[..32].as_ptr().cast()),
                        _mm256_loadu_si256(ql[32..].as_ptr().cast()),
                        _mm256_loadu_si256(qh.as_ptr().cast()),
                    )
                };
                let quants = [
                    _mm256_or_si256(_mm256_and_si256(l1, low), high_pair(hb, two, 0)),
                    _mm256_or_si256(_mm256_and_si256(l2, low), high_pair(hb, two, 2)),
                    _mm256_or_si256(
                        _mm256_and_si256(_mm256_srli_epi16::<4>(l1), low),
                        high_pair(hb, two, 4),
                    ),
                    _mm256_or_si256(
                        _mm256_and_si256(_mm256_srli_epi16::<4>(l2), low),
                        high_pair(hb, two, 6),
                    ),
                ];
                for (quarter, q) in quants.into_iter().enumerate() {
                    let scale = _mm256_setr_m128i(
                        _mm_set1_epi16(i16::from(sc[2 * quarter] as i8)),
                        _mm_set1_epi16(i16::from(sc[2 * quarter + 1] as i8)),
                    );
                    let at = 128 * c + 32 * quarter;
                    for a in 0..A {
                        // SAFETY: 32 bytes of the 256-byte quants.
                        let q8v =
                            unsafe { _mm256_loadu_si256(ys[a].1[at..at + 32].as_ptr().cast()) };
                        let p = _mm256_sub_epi16(
                            _mm256_maddubs_epi16(q, q8v),
                            _mm256_maddubs_epi16(m32, q8v),
                        );
                        sumi[a] = _mm256_add_epi32(sumi[a], _mm256_madd_epi16(scale, p));
                    }
                }
            }
            for a in 0..A {
                let d = ys[a].0 * xd;
                acc[a] = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi[a]), acc[a]);
            }
        }
        std::array::from_fn(|a| hsum_float_8(acc[a]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::quantized::{GgmlDType, QTensor};
    use candle_core::{Device, Tensor};

    fn noise(n: usize, seed: u64) -> Vec<f32> {
        let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        (0..n)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
            })
            .collect()
    }

    /// `x` quantized by candle (a port of ggml's quantizers) into `dtype`'s bytes.
    fn quantized(dtype: GgmlDType, x: &[f32]) -> Vec<u8> {
        let t = Tensor::from_vec(x.to_vec(), (1, x.len()), &Device::Cpu).unwrap();
        QTensor::quantize(&t, dtype)
            .unwrap()
            .data()
            .unwrap()
            .to_vec()
    }

    fn dequantized(dtype: GgmlDType, x: &[f32]) -> Vec<f32> {
        let t = Tensor::from_vec(x.to_vec(), (1, x.len()), &Device::Cpu).unwrap();
        let q = QTensor::quantize(&t, dtype).unwrap();
        q.dequantize(&Device::Cpu)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap()
    }

    #[test]
    fn q8_k_quantization_matches_candle() {
        let mut x = noise(2 * QK_K, 3);
        x[300] = -2.5; // the largest magnitude is negative in the second block
        let mut ours = vec![0u8; 2 * Q8_K_BYTES];
        quantize_q8_k(&x, &mut ours);
        assert_eq!(ours, quantized(GgmlDType::Q8K, &x));
        let mut zeros = vec![1u8; Q8_K_BYTES];
        quantize_q8_k(&[0.0; QK_K], &mut zeros);
        assert!(zeros.iter().all(|&b| b == 0));
    }

    #[test]
    fn dequantization_matches_candle() {
        let x = noise(3 * QK_K, 5);
        for (dtype, f) in [
            (GgmlDType::Q4K, dequantize_q4_k as fn(&[u8], &mut [f32])),
            (GgmlDType::Q6K, dequantize_q6_k),
        ] {
            let mut ours = vec![0.0f32; x.len()];
            f(&quantized(dtype, &x), &mut ours);
            let theirs = dequantized(dtype, &x);
            for (i, (a, b)) in ours.iter().zip(&theirs).enumerate() {
                assert!(
                    (a - b).abs() <= 1e-6 * b.abs().max(1.0),
                    "{dtype:?} {i}: {a} vs {b}"
                );
            }
        }
    }

    #[test]
    fn dot_products_match_the_dequantized_reference_and_simd_matches_scalar() {
        for seed in 0..6 {
            let w = noise(4 * QK_K, 10 + seed);
            let a = noise(4 * QK_K, 20 + seed);
            let mut act = vec![0u8; 4 * Q8_K_BYTES];
            quantize_q8_k(&a, &mut act);
            let a_deq = dequantized(GgmlDType::Q8K, &a);
            for dtype in [GgmlDType::Q4K, GgmlDType::Q6K] {
                let row = quantized(dtype, &w);
                let w_deq = dequantized(dtype, &w);
                let exact: f64 = w_deq
                    .iter()
                    .zip(&a_deq)
                    .map(|(p, q)| f64::from(*p) * f64::from(*q))
                    .sum();
                let scale: f64 = w_deq
                    .iter()
                    .zip(&a_deq)
                    .map(|(p, q)| f64::from((p * q).abs()))
                    .sum();
                let scalar = match dtype {
                    GgmlDType::Q4K => dot_q4_k_scalar(&row, &act),
                    _ => dot_q6_k_scalar(&row, &act),
                };
                assert!(
                    (f64::from(scalar) - exact).abs() <= 1e-4 * scale.max(1.0),
                    "{dtype:?}: {scalar} vs {exact}"
                );
                #[cfg(target_arch = "x86_64")]
                if std::arch::is_x86_feature_detected!("avx2")
                    && std::arch::is_x86_feature_detected!("fma")
                    && std::arch::is_x86_feature_detected!("f16c")
                {
                    // SAFETY: the features were just detected.
                    let simd = unsafe {
                        match dtype {
                            GgmlDType::Q4K => avx2::dot_q4_k(&row, &act),
                            _ => avx2::dot_q6_k(&row, &act),
                        }
                    };
                    assert_eq!(simd.to_bits(), scalar.to_bits(), "{dtype:?} seed {seed}");
                    // Four activations at once: each result has the same bits as alone.
                    let mut others = [act.clone(), act.clone(), act.clone(), act.clone()];
                    for (i, o) in others.iter_mut().enumerate().skip(1) {
                        quantize_q8_k(&noise(4 * QK_K, 30 + seed * 4 + i as u64), o);
                    }
                    let refs: [&[u8]; 4] = std::array::from_fn(|i| others[i].as_slice());
                    // SAFETY: the features were detected above.
                    let four = unsafe {
                        match dtype {
                            GgmlDType::Q4K => avx2::dot_q4_k_n::<4>(&row, refs),
                            _ => avx2::dot_q6_k_n::<4>(&row, refs),
                        }
                    };
                    for (i, other) in others.iter().enumerate() {
                        let alone = match dtype {
                            GgmlDType::Q4K => dot_q4_k_scalar(&row, other),
                            _ => dot_q6_k_scalar(&row, other),
                        };
                        assert_eq!(four[i].to_bits(), alone.to_bits(), "{dtype:?} act {i}");
                    }
                }
            }
        }
    }
}
