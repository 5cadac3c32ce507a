//! Quantized dot products in ggml's block formats: Q4_1 and Q8_0 weight rows against
//! activations quantized to Q8_1 and Q8_0, with AVX2 (and VNNI) kernels that round and sum in
//! the same order as llama.cpp's, and scalar fallbacks for CPUs without AVX2/FMA/F16C; the
//! dispatch for every weight format, K-quants (`kquants.rs`) included.
//!
//! This module, `kquants.rs` and `gguf.rs` are the only ones that use `unsafe`: here for SIMD
//! intrinsics, each call guarded by runtime feature detection.
#![allow(unsafe_code)]

use half::f16;

use crate::kquants;

/// Values per quantization block.
pub(crate) const QK: usize = 32;
/// `block_q4_1`: f16 scale, f16 minimum, 16 bytes of nibbles.
pub(crate) const Q4_1_BYTES: usize = 20;
/// `block_q8_0`: f16 scale, 32 signed bytes.
pub(crate) const Q8_0_BYTES: usize = 34;
/// `block_q8_1`: f16 scale, f16 scale × sum of the quants, 32 signed bytes.
pub(crate) const Q8_1_BYTES: usize = 36;

/// A weight format this module multiplies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WeightType {
    Q4_1,
    Q8_0,
    /// K-quants (`kquants.rs`), the bulk of Q4_K_M files.
    Q4K,
    Q6K,
}

/// The format activations are quantized to before a dot product with a weight format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ActType {
    Q8_0,
    Q8_1,
    Q8K,
}

impl WeightType {
    pub(crate) fn block_bytes(self) -> usize {
        match self {
            WeightType::Q4_1 => Q4_1_BYTES,
            WeightType::Q8_0 => Q8_0_BYTES,
            WeightType::Q4K => kquants::Q4_K_BYTES,
            WeightType::Q6K => kquants::Q6_K_BYTES,
        }
    }

    /// Values per block: 32, or 256 for K-quants.
    pub(crate) fn block_values(self) -> usize {
        self.act_type().block_values()
    }

    /// llama.cpp's `vec_dot_type` for the format.
    pub(crate) fn act_type(self) -> ActType {
        match self {
            WeightType::Q4_1 => ActType::Q8_1,
            WeightType::Q8_0 => ActType::Q8_0,
            WeightType::Q4K | WeightType::Q6K => ActType::Q8K,
        }
    }
}

impl ActType {
    pub(crate) fn block_bytes(self) -> usize {
        match self {
            ActType::Q8_0 => Q8_0_BYTES,
            ActType::Q8_1 => Q8_1_BYTES,
            ActType::Q8K => kquants::Q8_K_BYTES,
        }
    }

    /// Values per block: 32, or 256 for Q8_K.
    pub(crate) fn block_values(self) -> usize {
        match self {
            ActType::Q8_0 | ActType::Q8_1 => QK,
            ActType::Q8K => kquants::QK_K,
        }
    }
}

/// The widest integer dot-product instructions the kernels use on this CPU.
///
/// All levels give bit-identical results: VNNI's `vpdpbusd` sums four byte products into an
/// i32 lane exactly, as `vpmaddubsw` + `vpmaddwd` do in two steps (no pair of products here
/// can saturate 16 bits), so only the speed differs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SimdLevel {
    /// No AVX2/FMA/F16C: the scalar fallbacks.
    Scalar,
    /// AVX2 with FMA and F16C: `vpmaddubsw` + `vpmaddwd`.
    Avx2,
    /// AVX2 plus AVX-VNNI (VEX-encoded `vpdpbusd`; Alder Lake, Sapphire Rapids, Zen 5).
    AvxVnni,
    /// AVX2 plus AVX512-VNNI with AVX512VL (EVEX `vpdpbusd` on 256-bit registers; Ice Lake,
    /// Cascade Lake, Zen 4).
    Avx512Vnni,
}

/// This CPU's [`SimdLevel`] (detected once).
pub(crate) fn simd_level() -> SimdLevel {
    static LEVEL: std::sync::OnceLock<SimdLevel> = std::sync::OnceLock::new();
    *LEVEL.get_or_init(detect_level)
}

/// The best level this CPU supports: VEX VNNI before EVEX VNNI (no AVX512 frequency cost).
fn detect_level() -> SimdLevel {
    [SimdLevel::AvxVnni, SimdLevel::Avx512Vnni, SimdLevel::Avx2]
        .into_iter()
        .find(|&level| supported(level))
        .unwrap_or(SimdLevel::Scalar)
}

/// Whether this CPU has the instructions of `level`.
fn supported(level: SimdLevel) -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::is_x86_feature_detected as has;
        let avx2 = has!("avx2") && has!("fma") && has!("f16c");
        match level {
            SimdLevel::Scalar => true,
            SimdLevel::Avx2 => avx2,
            SimdLevel::AvxVnni => avx2 && has!("avxvnni"),
            SimdLevel::Avx512Vnni => avx2 && has!("avx512vnni") && has!("avx512vl"),
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        level == SimdLevel::Scalar
    }
}

/// Whether the AVX2 kernels can run on this CPU.
#[inline]
fn simd() -> bool {
    simd_level() != SimdLevel::Scalar
}

/// The little-endian f16 at `bytes[at..at + 2]`, widened.
#[inline]
pub(crate) fn f16_at(bytes: &[u8], at: usize) -> f32 {
    f16::from_le_bytes([bytes[at], bytes[at + 1]]).to_f32()
}

/// Quantizes `x` (a multiple of `act.block_values()` long) into `out` as `act` blocks, as
/// llama.cpp's `quantize_row_q8_0` / `quantize_row_q8_1` / `quantize_row_q8_K` do (scale
/// `max|x| / 127`, round half to even).
pub(crate) fn quantize(act: ActType, x: &[f32], out: &mut [u8]) {
    debug_assert_eq!(x.len() % act.block_values(), 0);
    debug_assert_eq!(out.len(), x.len() / act.block_values() * act.block_bytes());
    if act == ActType::Q8K {
        kquants::quantize_q8_k(x, out);
        return;
    }
    #[cfg(target_arch = "x86_64")]
    if simd() {
        // SAFETY: the CPU has AVX2, FMA and F16C (checked just above); the function only
        // touches memory through the bounds of the slices it is given.
        unsafe { avx2::quantize(act, x, out) };
        return;
    }
    quantize_scalar(act, x, out);
}

fn quantize_scalar(act: ActType, x: &[f32], out: &mut [u8]) {
    let bb = act.block_bytes();
    for (xs, block) in x.chunks_exact(QK).zip(out.chunks_exact_mut(bb)) {
        let amax = xs.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        let d = amax / 127.0;
        let id = if amax != 0.0 { 127.0 / amax } else { 0.0 };
        block[..2].copy_from_slice(&f16::from_f32(d).to_le_bytes());
        let qs_at = bb - QK;
        let mut sum = 0i32;
        for (q, v) in block[qs_at..].iter_mut().zip(xs) {
            let r = (v * id).round_ties_even() as i32;
            sum += r;
            *q = r as i8 as u8;
        }
        if act == ActType::Q8_1 {
            block[2..4].copy_from_slice(&f16::from_f32(d * sum as f32).to_le_bytes());
        }
    }
}

/// Dot products of weight rows with quantized activations.
///
/// `rows` holds whole rows of `wt` blocks (`row_bytes` each); `acts` holds `n_act` activation
/// rows in `wt.act_type()`, each as long as one weight row. `out[r * n_act + t]` receives the
/// dot product of row `r` with activation row `t`.
pub(crate) fn dot_rows(
    wt: WeightType,
    rows: &[u8],
    row_bytes: usize,
    acts: &[u8],
    n_act: usize,
    out: &mut [f32],
) {
    dot_rows_at(simd_level(), wt, rows, row_bytes, acts, n_act, out);
}

/// [`dot_rows`] with the kernels of `level` (which the CPU must support; tests compare levels).
fn dot_rows_at(
    level: SimdLevel,
    wt: WeightType,
    rows: &[u8],
    row_bytes: usize,
    acts: &[u8],
    n_act: usize,
    out: &mut [f32],
) {
    let blocks = row_bytes / wt.block_bytes();
    let act_bytes = blocks * wt.act_type().block_bytes();
    debug_assert_eq!(rows.len() % row_bytes, 0);
    debug_assert_eq!(acts.len(), act_bytes * n_act);
    debug_assert_eq!(out.len(), rows.len() / row_bytes * n_act);
    #[cfg(not(target_arch = "x86_64"))]
    let _ = level;
    #[cfg(target_arch = "x86_64")]
    if level != SimdLevel::Scalar {
        if matches!(wt, WeightType::Q4K | WeightType::Q6K) {
            dot_rows_k(wt, rows, row_bytes, acts, act_bytes, out);
            return;
        }
        let n_rows = rows.len() / row_bytes;
        let shape = Shape {
            wt,
            level,
            row_bytes,
            act_bytes,
            blocks,
            n_act,
        };
        // Tile shapes measured on SmolLM2 (1 thread, AVX-VNNI, 3 runs each). Decoding: 8 rows
        // at once gave 47.0–48.5 tok/s on Q8_0 against 36.8–42.8 with 4 and 33.0–41.7 with 2,
        // and 62.3–64.6 on Q4_1 against 57.1–62.7 and 59.8–63.7. Prompt processing (380
        // tokens): Q8_0 105 tok/s with 2×2 tiles, 167 with 4×2 (2×4: 132, 4×4: 157); Q4_1
        // within 5% of 144 for every shape, 2×2 the best.
        if n_act == 1 {
            tiles::<8, 1>(&shape, rows, acts, n_rows, out);
        } else if wt == WeightType::Q8_0 {
            tiles::<4, 2>(&shape, rows, acts, n_rows, out);
        } else {
            tiles::<2, 2>(&shape, rows, acts, n_rows, out);
        }
        return;
    }
    for (row, out) in rows
        .chunks_exact(row_bytes)
        .zip(out.chunks_exact_mut(n_act))
    {
        for (act, o) in acts.chunks_exact(act_bytes).zip(out.iter_mut()) {
            *o = match wt {
                WeightType::Q4_1 => dot_q4_1_q8_1_scalar(row, act),
                WeightType::Q8_0 => dot_q8_0_q8_0_scalar(row, act),
                WeightType::Q4K => kquants::dot_q4_k_scalar(row, act),
                WeightType::Q6K => kquants::dot_q6_k_scalar(row, act),
            };
        }
    }
}

/// The SIMD path of [`dot_rows_at`] for K-quant rows: a row at a time (a super-block is 256
/// values, enough work per call; the kernels prefetch the row ahead), against up to four
/// activations at once so that prompt processing unpacks each weight block once per four
/// tokens. The CPU must have AVX2, FMA and F16C (any level but Scalar).
#[cfg(target_arch = "x86_64")]
fn dot_rows_k(
    wt: WeightType,
    rows: &[u8],
    row_bytes: usize,
    acts: &[u8],
    act_bytes: usize,
    out: &mut [f32],
) {
    let n_act = acts.len() / act_bytes;
    for (row, out) in rows
        .chunks_exact(row_bytes)
        .zip(out.chunks_exact_mut(n_act))
    {
        let mut done = 0;
        for (four, o) in acts
            .chunks_exact(4 * act_bytes)
            .zip(out.chunks_exact_mut(4))
        {
            let a: [&[u8]; 4] = std::array::from_fn(|i| &four[i * act_bytes..(i + 1) * act_bytes]);
            // SAFETY: the caller checked that the CPU has AVX2, FMA and F16C.
            let sums = unsafe {
                match wt {
                    WeightType::Q4K => kquants::avx2::dot_q4_k_n::<4>(row, a),
                    _ => kquants::avx2::dot_q6_k_n::<4>(row, a),
                }
            };
            o.copy_from_slice(&sums);
            done += 4;
        }
        for (act, o) in acts[done * act_bytes..]
            .chunks_exact(act_bytes)
            .zip(&mut out[done..])
        {
            // SAFETY: as above.
            *o = unsafe {
                match wt {
                    WeightType::Q4K => kquants::avx2::dot_q4_k(row, act),
                    _ => kquants::avx2::dot_q6_k(row, act),
                }
            };
        }
    }
}

fn dot_q4_1_q8_1_scalar(row: &[u8], act: &[u8]) -> f32 {
    let mut sum = 0.0f32;
    let mut summs = 0.0f32;
    for (x, y) in row
        .chunks_exact(Q4_1_BYTES)
        .zip(act.chunks_exact(Q8_1_BYTES))
    {
        let (qs, ys) = (&x[4..], &y[4..]);
        let mut sumi = 0i32;
        for j in 0..QK / 2 {
            let lo = i32::from(qs[j] & 0x0f);
            let hi = i32::from(qs[j] >> 4);
            sumi += lo * i32::from(ys[j] as i8) + hi * i32::from(ys[j + QK / 2] as i8);
        }
        sum += f16_at(x, 0) * f16_at(y, 0) * sumi as f32;
        summs += f16_at(x, 2) * f16_at(y, 2);
    }
    sum + summs
}

fn dot_q8_0_q8_0_scalar(row: &[u8], act: &[u8]) -> f32 {
    let mut sum = 0.0f32;
    for (x, y) in row
        .chunks_exact(Q8_0_BYTES)
        .zip(act.chunks_exact(Q8_0_BYTES))
    {
        let sumi: i32 = x[2..]
            .iter()
            .zip(&y[2..])
            .map(|(&a, &b)| i32::from(a as i8) * i32::from(b as i8))
            .sum();
        sum += f16_at(x, 0) * f16_at(y, 0) * sumi as f32;
    }
    sum
}

/// What every tile of one [`dot_rows`] call shares.
#[cfg(target_arch = "x86_64")]
struct Shape {
    wt: WeightType,
    level: SimdLevel,
    row_bytes: usize,
    act_bytes: usize,
    blocks: usize,
    n_act: usize,
}

/// The SIMD path of [`dot_rows`]: tiles of `R` rows × `A` activations, then the leftover rows
/// and activations one at a time (the same per-pair arithmetic in every case).
#[cfg(target_arch = "x86_64")]
fn tiles<const R: usize, const A: usize>(
    shape: &Shape,
    rows: &[u8],
    acts: &[u8],
    n_rows: usize,
    out: &mut [f32],
) {
    let full_r = n_rows / R * R;
    let full_a = shape.n_act / A * A;
    for r in (0..n_rows).step_by(R) {
        if r < full_r {
            for t in (0..full_a).step_by(A) {
                tile::<R, A>(shape, rows, r, acts, t, out);
            }
            for t in full_a..shape.n_act {
                tile::<R, 1>(shape, rows, r, acts, t, out);
            }
        } else {
            for rr in r..n_rows {
                for t in 0..shape.n_act {
                    tile::<1, 1>(shape, rows, rr, acts, t, out);
                }
            }
        }
    }
}

/// One tile of `R` rows from row `r` and `A` activations from activation `t`. The slices are
/// cut here, with bounds checks, so each pointer starts a whole row or activation.
#[cfg(target_arch = "x86_64")]
fn tile<const R: usize, const A: usize>(
    shape: &Shape,
    rows: &[u8],
    r: usize,
    acts: &[u8],
    t: usize,
    out: &mut [f32],
) {
    let (rb, ab) = (shape.row_bytes, shape.act_bytes);
    let rp: [*const u8; R] = std::array::from_fn(|i| rows[(r + i) * rb..(r + i + 1) * rb].as_ptr());
    let ap: [*const u8; A] = std::array::from_fn(|j| acts[(t + j) * ab..(t + j + 1) * ab].as_ptr());
    // SAFETY: the CPU supports `shape.level` (detected, or chosen by a test that checked it),
    // and every pointer starts a slice of exactly `blocks` blocks of its type (cut with bounds
    // checks above).
    let sums = unsafe { avx2::dot_tile::<R, A>(shape.level, shape.wt, rp, ap, shape.blocks) };
    for (i, row) in sums.iter().enumerate() {
        for (j, v) in row.iter().enumerate() {
            out[(r + i) * shape.n_act + t + j] = *v;
        }
    }
}

/// Dequantizes one row of `wt` blocks into `out` (as llama.cpp's `dequantize_row_*`).
pub(crate) fn dequantize_row(wt: WeightType, row: &[u8], out: &mut [f32]) {
    match wt {
        WeightType::Q4_1 => {
            for (x, ys) in row.chunks_exact(Q4_1_BYTES).zip(out.chunks_exact_mut(QK)) {
                let (d, m) = (f16_at(x, 0), f16_at(x, 2));
                for j in 0..QK / 2 {
                    ys[j] = f32::from(x[4 + j] & 0x0f) * d + m;
                    ys[j + QK / 2] = f32::from(x[4 + j] >> 4) * d + m;
                }
            }
        }
        WeightType::Q8_0 => {
            for (x, ys) in row.chunks_exact(Q8_0_BYTES).zip(out.chunks_exact_mut(QK)) {
                let d = f16_at(x, 0);
                for (y, &q) in ys.iter_mut().zip(&x[2..]) {
                    *y = f32::from(q as i8) * d;
                }
            }
        }
        WeightType::Q4K => kquants::dequantize_q4_k(row, out),
        WeightType::Q6K => kquants::dequantize_q6_k(row, out),
    }
}

/// `x` rounded to f16 (round half to even), as bits.
pub(crate) fn to_f16(x: &[f32], out: &mut [u16]) {
    debug_assert_eq!(x.len(), out.len());
    #[cfg(target_arch = "x86_64")]
    if simd() {
        // SAFETY: AVX2/F16C present (checked); reads and writes stay within the slices.
        unsafe { avx2::to_f16(x, out) };
        return;
    }
    for (o, v) in out.iter_mut().zip(x) {
        *o = f16::from_f32(*v).to_bits();
    }
}

/// f16 bits widened to f32.
pub(crate) fn from_f16(x: &[u16], out: &mut [f32]) {
    debug_assert_eq!(x.len(), out.len());
    for (o, v) in out.iter_mut().zip(x) {
        *o = f16::from_bits(*v).to_f32();
    }
}

/// Dot product of two f16 vectors, summed in f32 like ggml's `ggml_vec_dot_f16`.
pub(crate) fn dot_f16(a: &[u16], b: &[u16]) -> f32 {
    debug_assert_eq!(a.len(), b.len());
    #[cfg(target_arch = "x86_64")]
    if simd() {
        // SAFETY: AVX2/F16C present (checked); reads stay within the slices.
        return unsafe { avx2::dot_f16(a, b) };
    }
    a.iter()
        .zip(b)
        .map(|(x, y)| f16::from_bits(*x).to_f32() * f16::from_bits(*y).to_f32())
        .sum()
}

/// `y = f16(y + x * v)` element-wise, with a fused multiply-add (ggml's `ggml_vec_mad_f16`).
pub(crate) fn mad_f16(y: &mut [u16], x: &[u16], v: f32) {
    debug_assert_eq!(x.len(), y.len());
    #[cfg(target_arch = "x86_64")]
    if simd() {
        // SAFETY: AVX2/FMA/F16C present (checked); reads and writes stay within the slices.
        unsafe { avx2::mad_f16(y, x, v) };
        return;
    }
    for (o, a) in y.iter_mut().zip(x) {
        let sum = f16::from_bits(*a)
            .to_f32()
            .mul_add(v, f16::from_bits(*o).to_f32());
        *o = f16::from_f32(sum).to_bits();
    }
}

/// `y = f16(y * v)` element-wise (ggml's `ggml_vec_scale_f16`).
pub(crate) fn scale_f16(y: &mut [u16], v: f32) {
    #[cfg(target_arch = "x86_64")]
    if simd() {
        // SAFETY: AVX2/F16C present (checked); reads and writes stay within the slice.
        unsafe { avx2::scale_f16(y, v) };
        return;
    }
    for o in y.iter_mut() {
        *o = f16::from_f32(f16::from_bits(*o).to_f32() * v).to_bits();
    }
}

/// ggml's horizontal sum, shared with `kquants.rs`.
#[cfg(target_arch = "x86_64")]
pub(crate) use avx2::hsum_float_8;

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;

    use super::{ActType, Q4_1_BYTES, Q8_0_BYTES, Q8_1_BYTES, QK, SimdLevel, WeightType};

    /// The two f16 values at `p` widened to f32 (in lanes 0 and 1).
    ///
    /// A 32-bit load into a zeroed register: converting one u16 through `_mm_cvtsi32_si128`
    /// let LLVM emit `vpinsrw` into a live register, a false dependency that serialised the
    /// dot-product loops.
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn f16x2(p: *const u8) -> __m128 {
        // SAFETY: the caller guarantees four readable bytes at `p`.
        unsafe {
            let bits = std::ptr::read_unaligned(p.cast::<i32>());
            _mm_cvtph_ps(_mm_cvtsi32_si128(bits))
        }
    }

    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    fn f32_to_f16(x: f32) -> [u8; 2] {
        let h = _mm_cvtps_ph::<_MM_FROUND_TO_NEAREST_INT>(_mm_set_ss(x));
        (_mm_extract_epi16::<0>(h) as u16).to_le_bytes()
    }

    /// How far ahead of the block being read the weight rows are prefetched, in bytes.
    ///
    /// Reading several rows at once (the tiles) defeats the hardware prefetcher: measured on a
    /// 2-core Sapphire Rapids VM, a 4-row Q8_0 tile streamed 576-wide rows at 5.8 GB/s and
    /// 1536-wide ones at 3.7 GB/s without software prefetch, 7.8 and 7.9 GB/s with it at
    /// 256–384 bytes (one row at a time, as ggml reads them: 6.6 and 6.1 GB/s).
    const PREFETCH_AHEAD: usize = 320;

    /// Asks for the cache line `PREFETCH_AHEAD` bytes after `p` (a hint: it never faults, so
    /// running past the end of the weights is harmless).
    #[inline(always)]
    unsafe fn prefetch(p: *const u8) {
        // SAFETY: prefetching is a hint with no memory access semantics; `wrapping_add` keeps
        // the address computation defined whatever it points at.
        unsafe { _mm_prefetch::<_MM_HINT_T0>(p.wrapping_add(PREFETCH_AHEAD).cast()) }
    }

    /// ggml's `hsum_float_8`.
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    pub(crate) fn hsum_float_8(x: __m256) -> f32 {
        let mut res = _mm256_extractf128_ps::<1>(x);
        res = _mm_add_ps(res, _mm256_castps256_ps128(x));
        res = _mm_add_ps(res, _mm_movehl_ps(res, res));
        res = _mm_add_ss(res, _mm_movehdup_ps(res));
        _mm_cvtss_f32(res)
    }

    /// ggml's `hsum_i32_8`.
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    fn hsum_i32_8(a: __m256i) -> i32 {
        let sum128 = _mm_add_epi32(_mm256_castsi256_si128(a), _mm256_extractf128_si256::<1>(a));
        let hi64 = _mm_unpackhi_epi64(sum128, sum128);
        let sum64 = _mm_add_epi32(hi64, sum128);
        let hi32 = _mm_shuffle_epi32::<0b10_11_00_01>(sum64);
        _mm_cvtsi128_si32(_mm_add_epi32(sum64, hi32))
    }

    /// Sums of four unsigned × signed byte products in i32 lanes: the integer core of ggml's
    /// `mul_sum_us8_pairs_float`, in the instructions of one [`super::SimdLevel`].
    trait ByteDot {
        /// # Safety
        /// The CPU must have the instructions of the implementing level.
        unsafe fn sum4(ax: __m256i, sy: __m256i) -> __m256i;
    }

    /// AVX2: `vpmaddubsw` (pairs into i16) then `vpmaddwd` by ones (pairs of pairs into i32).
    struct Madd;
    /// AVX-VNNI: one VEX `vpdpbusd`.
    struct VnniVex;
    /// AVX512-VNNI + AVX512VL: one EVEX `vpdpbusd` on 256-bit registers.
    struct VnniEvex;

    impl ByteDot for Madd {
        #[inline(always)]
        unsafe fn sum4(ax: __m256i, sy: __m256i) -> __m256i {
            // SAFETY: the caller guarantees AVX2.
            unsafe { _mm256_madd_epi16(_mm256_set1_epi16(1), _mm256_maddubs_epi16(ax, sy)) }
        }
    }

    impl ByteDot for VnniVex {
        #[inline(always)]
        unsafe fn sum4(ax: __m256i, sy: __m256i) -> __m256i {
            // SAFETY: the caller guarantees AVX-VNNI.
            unsafe { _mm256_dpbusd_avx_epi32(_mm256_setzero_si256(), ax, sy) }
        }
    }

    impl ByteDot for VnniEvex {
        #[inline(always)]
        unsafe fn sum4(ax: __m256i, sy: __m256i) -> __m256i {
            // SAFETY: the caller guarantees AVX512-VNNI and AVX512VL.
            unsafe { _mm256_dpbusd_epi32(_mm256_setzero_si256(), ax, sy) }
        }
    }

    /// Rounds 8-float groups with F16C, the rest one by one (same rounding).
    #[target_feature(enable = "avx2,fma,f16c")]
    pub(super) unsafe fn to_f16(x: &[f32], out: &mut [u16]) {
        let n = x.len().min(out.len());
        let mut i = 0;
        while i + 8 <= n {
            // SAFETY: `i + 8 <= n` keeps the 8-wide load and store inside both slices.
            unsafe {
                let v = _mm256_loadu_ps(x.as_ptr().add(i));
                let h = _mm256_cvtps_ph::<_MM_FROUND_TO_NEAREST_INT>(v);
                _mm_storeu_si128(out.as_mut_ptr().add(i).cast(), h);
            }
            i += 8;
        }
        for j in i..n {
            out[j] = u16::from_le_bytes(f32_to_f16(x[j]));
        }
    }

    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn load_ph(p: *const u16) -> __m256 {
        // SAFETY: the caller guarantees 8 readable values at `p`.
        unsafe { _mm256_cvtph_ps(_mm_loadu_si128(p.cast())) }
    }

    /// ggml's AVX2 `ggml_vec_dot_f16`: four 8-lane accumulators over steps of 32, reduced
    /// pairwise; the tail is summed in f64.
    #[target_feature(enable = "avx2,fma,f16c")]
    pub(super) unsafe fn dot_f16(a: &[u16], b: &[u16]) -> f32 {
        let n = a.len().min(b.len());
        let np = n & !31;
        let mut sum = [_mm256_setzero_ps(); 4];
        let mut i = 0;
        while i < np {
            for (j, s) in sum.iter_mut().enumerate() {
                // SAFETY: `i + 32 <= np <= n`, so each 8-wide load is inside both slices.
                unsafe {
                    let ax = load_ph(a.as_ptr().add(i + j * 8));
                    let ay = load_ph(b.as_ptr().add(i + j * 8));
                    *s = _mm256_fmadd_ps(ax, ay, *s);
                }
            }
            i += 32;
        }
        sum[0] = _mm256_add_ps(sum[0], sum[2]);
        sum[1] = _mm256_add_ps(sum[1], sum[3]);
        sum[0] = _mm256_add_ps(sum[0], sum[1]);
        let t0 = _mm_add_ps(
            _mm256_castps256_ps128(sum[0]),
            _mm256_extractf128_ps::<1>(sum[0]),
        );
        let t1 = _mm_hadd_ps(t0, t0);
        let mut total = f64::from(_mm_cvtss_f32(_mm_hadd_ps(t1, t1)));
        for k in np..n {
            let x = half::f16::from_bits(a[k]).to_f32();
            let y = half::f16::from_bits(b[k]).to_f32();
            total += f64::from(x * y);
        }
        total as f32
    }

    /// ggml's AVX2 `ggml_vec_mad_f16`.
    #[target_feature(enable = "avx2,fma,f16c")]
    pub(super) unsafe fn mad_f16(y: &mut [u16], x: &[u16], v: f32) {
        let n = x.len().min(y.len());
        let vx = _mm256_set1_ps(v);
        let mut i = 0;
        while i + 8 <= n {
            // SAFETY: `i + 8 <= n` keeps the loads and the store inside both slices.
            unsafe {
                let ax = load_ph(x.as_ptr().add(i));
                let ay = load_ph(y.as_ptr().add(i));
                let r = _mm256_fmadd_ps(ax, vx, ay);
                let h = _mm256_cvtps_ph::<_MM_FROUND_TO_NEAREST_INT>(r);
                _mm_storeu_si128(y.as_mut_ptr().add(i).cast(), h);
            }
            i += 8;
        }
        for j in i..n {
            let a = half::f16::from_bits(x[j]).to_f32();
            let b = half::f16::from_bits(y[j]).to_f32();
            y[j] = u16::from_le_bytes(f32_to_f16(a.mul_add(v, b)));
        }
    }

    /// ggml's AVX2 `ggml_vec_scale_f16`.
    #[target_feature(enable = "avx2,fma,f16c")]
    pub(super) unsafe fn scale_f16(y: &mut [u16], v: f32) {
        let n = y.len();
        let vx = _mm256_set1_ps(v);
        let mut i = 0;
        while i + 8 <= n {
            // SAFETY: `i + 8 <= n` keeps the load and the store inside the slice.
            unsafe {
                let ay = load_ph(y.as_ptr().add(i));
                let h = _mm256_cvtps_ph::<_MM_FROUND_TO_NEAREST_INT>(_mm256_mul_ps(ay, vx));
                _mm_storeu_si128(y.as_mut_ptr().add(i).cast(), h);
            }
            i += 8;
        }
        for o in &mut y[i..n] {
            let b = half::f16::from_bits(*o).to_f32();
            *o = u16::from_le_bytes(f32_to_f16(b * v));
        }
    }

    /// llama.cpp's AVX2 `quantize_row_q8_0` / `quantize_row_q8_1`.
    #[target_feature(enable = "avx2,fma,f16c")]
    pub(super) unsafe fn quantize(act: ActType, x: &[f32], out: &mut [u8]) {
        let bb = act.block_bytes();
        let sign = _mm256_set1_ps(-0.0);
        let perm = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
        for (xs, block) in x.chunks_exact(QK).zip(out.chunks_exact_mut(bb)) {
            let p = xs.as_ptr();
            // SAFETY: `xs` has 32 floats; the four loads read 8 each.
            let (mut v0, mut v1, mut v2, mut v3) = unsafe {
                (
                    _mm256_loadu_ps(p),
                    _mm256_loadu_ps(p.add(8)),
                    _mm256_loadu_ps(p.add(16)),
                    _mm256_loadu_ps(p.add(24)),
                )
            };
            let mut max_abs = _mm256_andnot_ps(sign, v0);
            max_abs = _mm256_max_ps(max_abs, _mm256_andnot_ps(sign, v1));
            max_abs = _mm256_max_ps(max_abs, _mm256_andnot_ps(sign, v2));
            max_abs = _mm256_max_ps(max_abs, _mm256_andnot_ps(sign, v3));
            let mut max4 = _mm_max_ps(
                _mm256_extractf128_ps::<1>(max_abs),
                _mm256_castps256_ps128(max_abs),
            );
            max4 = _mm_max_ps(max4, _mm_movehl_ps(max4, max4));
            max4 = _mm_max_ss(max4, _mm_movehdup_ps(max4));
            let max = _mm_cvtss_f32(max4);
            let d = max / 127.0;
            block[..2].copy_from_slice(&f32_to_f16(d));
            let id = if max != 0.0 { 127.0 / max } else { 0.0 };
            let mul = _mm256_set1_ps(id);
            v0 = _mm256_round_ps::<_MM_FROUND_TO_NEAREST_INT>(_mm256_mul_ps(v0, mul));
            v1 = _mm256_round_ps::<_MM_FROUND_TO_NEAREST_INT>(_mm256_mul_ps(v1, mul));
            v2 = _mm256_round_ps::<_MM_FROUND_TO_NEAREST_INT>(_mm256_mul_ps(v2, mul));
            v3 = _mm256_round_ps::<_MM_FROUND_TO_NEAREST_INT>(_mm256_mul_ps(v3, mul));
            let i0 = _mm256_cvtps_epi32(v0);
            let i1 = _mm256_cvtps_epi32(v1);
            let i2 = _mm256_cvtps_epi32(v2);
            let i3 = _mm256_cvtps_epi32(v3);
            if act == ActType::Q8_1 {
                let sum = hsum_i32_8(_mm256_add_epi32(
                    _mm256_add_epi32(i0, i1),
                    _mm256_add_epi32(i2, i3),
                ));
                block[2..4].copy_from_slice(&f32_to_f16(d * sum as f32));
            }
            let packed = _mm256_packs_epi16(_mm256_packs_epi32(i0, i1), _mm256_packs_epi32(i2, i3));
            let packed = _mm256_permutevar8x32_epi32(packed, perm);
            let qs = &mut block[bb - QK..];
            // SAFETY: `qs` is exactly 32 bytes.
            unsafe { _mm256_storeu_si256(qs.as_mut_ptr().cast(), packed) };
        }
    }

    /// The dot products of `R` rows against `A` activations with `level`'s kernels.
    ///
    /// SAFETY (caller): the CPU supports `level` (not [`SimdLevel::Scalar`]); every pointer in
    /// `rows` starts `blocks` blocks of `wt` and every pointer in `acts` `blocks` blocks of
    /// `wt.act_type()`.
    #[inline]
    pub(super) unsafe fn dot_tile<const R: usize, const A: usize>(
        level: SimdLevel,
        wt: WeightType,
        rows: [*const u8; R],
        acts: [*const u8; A],
        blocks: usize,
    ) -> [[f32; A]; R] {
        // SAFETY: the caller's contract, passed on; each wrapper enables exactly the features
        // of its level.
        unsafe {
            match (wt, level) {
                (WeightType::Q4_1, SimdLevel::AvxVnni) => q4_1_vex(rows, acts, blocks),
                (WeightType::Q4_1, SimdLevel::Avx512Vnni) => q4_1_evex(rows, acts, blocks),
                (WeightType::Q4_1, _) => q4_1_avx2(rows, acts, blocks),
                (WeightType::Q8_0, SimdLevel::AvxVnni) => q8_0_vex(rows, acts, blocks),
                (WeightType::Q8_0, SimdLevel::Avx512Vnni) => q8_0_evex(rows, acts, blocks),
                (WeightType::Q8_0, _) => q8_0_avx2(rows, acts, blocks),
                (WeightType::Q4K | WeightType::Q6K, _) => {
                    unreachable!("K-quant rows go through dot_rows_k, not tiles")
                }
            }
        }
    }

    // One function per (format, level): `#[target_feature]` turns the level's instructions on
    // for the generic kernel body inlined into it.

    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn q4_1_avx2<const R: usize, const A: usize>(
        rows: [*const u8; R],
        acts: [*const u8; A],
        blocks: usize,
    ) -> [[f32; A]; R] {
        // SAFETY: see `dot_tile`.
        unsafe { q4_1_tile::<Madd, R, A>(rows, acts, blocks) }
    }

    #[target_feature(enable = "avx2,fma,f16c,avxvnni")]
    unsafe fn q4_1_vex<const R: usize, const A: usize>(
        rows: [*const u8; R],
        acts: [*const u8; A],
        blocks: usize,
    ) -> [[f32; A]; R] {
        // SAFETY: see `dot_tile`.
        unsafe { q4_1_tile::<VnniVex, R, A>(rows, acts, blocks) }
    }

    #[target_feature(enable = "avx2,fma,f16c,avx512vnni,avx512vl")]
    unsafe fn q4_1_evex<const R: usize, const A: usize>(
        rows: [*const u8; R],
        acts: [*const u8; A],
        blocks: usize,
    ) -> [[f32; A]; R] {
        // SAFETY: see `dot_tile`.
        unsafe { q4_1_tile::<VnniEvex, R, A>(rows, acts, blocks) }
    }

    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn q8_0_avx2<const R: usize, const A: usize>(
        rows: [*const u8; R],
        acts: [*const u8; A],
        blocks: usize,
    ) -> [[f32; A]; R] {
        // SAFETY: see `dot_tile`.
        unsafe { q8_0_tile::<Madd, R, A>(rows, acts, blocks) }
    }

    #[target_feature(enable = "avx2,fma,f16c,avxvnni")]
    unsafe fn q8_0_vex<const R: usize, const A: usize>(
        rows: [*const u8; R],
        acts: [*const u8; A],
        blocks: usize,
    ) -> [[f32; A]; R] {
        // SAFETY: see `dot_tile`.
        unsafe { q8_0_tile::<VnniVex, R, A>(rows, acts, blocks) }
    }

    #[target_feature(enable = "avx2,fma,f16c,avx512vnni,avx512vl")]
    unsafe fn q8_0_evex<const R: usize, const A: usize>(
        rows: [*const u8; R],
        acts: [*const u8; A],
        blocks: usize,
    ) -> [[f32; A]; R] {
        // SAFETY: see `dot_tile`.
        unsafe { q8_0_tile::<VnniEvex, R, A>(rows, acts, blocks) }
    }

    /// The Q4_1 × Q8_1 dot products (ggml's `ggml_vec_dot_q4_1_q8_1`) of `R` rows against `A` activation rows at once: each weight block
    /// is unpacked once for all activations and each activation block loaded once for all
    /// rows, and the dependency chains overlap. Every (row, activation) sum is formed in
    /// exactly the single-row order, so results are bit-identical.
    ///
    /// SAFETY (caller): the CPU has AVX2, FMA, F16C and `D`'s instructions; every pointer in `rows` is the start of `blocks` Q4_1 blocks and every
    /// pointer in `acts` the start of `blocks` Q8_1 blocks.
    #[inline(always)]
    unsafe fn q4_1_tile<D: ByteDot, const R: usize, const A: usize>(
        rows: [*const u8; R],
        acts: [*const u8; A],
        blocks: usize,
    ) -> [[f32; A]; R] {
        // SAFETY (all intrinsics below): the caller guarantees AVX2, FMA and F16C.
        let low = unsafe { _mm256_set1_epi8(0x0f) };
        let mut acc = [[unsafe { _mm256_setzero_ps() }; A]; R];
        let mut summs = [[unsafe { _mm_setzero_ps() }; A]; R];
        for b in 0..blocks {
            // SAFETY: `b < blocks`, so every block read below exists (see the contract above).
            unsafe {
                let mut ys = [_mm_setzero_ps(); A];
                let mut qy = [_mm256_setzero_si256(); A];
                for a in 0..A {
                    let y = acts[a].add(b * Q8_1_BYTES);
                    ys[a] = f16x2(y);
                    qy[a] = _mm256_loadu_si256(y.add(4).cast());
                }
                for r in 0..R {
                    let x = rows[r].add(b * Q4_1_BYTES);
                    prefetch(x);
                    let xs = f16x2(x);
                    let tmp = _mm_loadu_si128(x.add(4).cast());
                    let bytes = _mm256_insertf128_si256::<1>(
                        _mm256_castsi128_si256(tmp),
                        _mm_srli_epi16::<4>(tmp),
                    );
                    let qx = _mm256_and_si256(low, bytes);
                    for a in 0..A {
                        // [d0 * d1, m0 * s1]: the same products ggml forms one by one.
                        let prod = _mm_mul_ps(xs, ys[a]);
                        summs[r][a] = _mm_add_ss(summs[r][a], _mm_movehdup_ps(prod));
                        let d0d1 = _mm256_broadcastss_ps(prod);
                        let xy = _mm256_cvtepi32_ps(D::sum4(qx, qy[a]));
                        acc[r][a] = _mm256_fmadd_ps(d0d1, xy, acc[r][a]);
                    }
                }
            }
        }
        let mut out = [[0.0f32; A]; R];
        for r in 0..R {
            for a in 0..A {
                // SAFETY: as above.
                out[r][a] = unsafe { hsum_float_8(acc[r][a]) + _mm_cvtss_f32(summs[r][a]) };
            }
        }
        out
    }

    /// The Q8_0 × Q8_0 dot products (ggml's `ggml_vec_dot_q8_0_q8_0`) of `R` rows against `A` activation rows at once (bit-identical per
    /// pair, see above).
    ///
    /// SAFETY (caller): the CPU has AVX2, FMA, F16C and `D`'s instructions; every pointer in `rows` and in `acts` is the start of `blocks` Q8_0
    /// blocks.
    #[inline(always)]
    unsafe fn q8_0_tile<D: ByteDot, const R: usize, const A: usize>(
        rows: [*const u8; R],
        acts: [*const u8; A],
        blocks: usize,
    ) -> [[f32; A]; R] {
        // SAFETY (all intrinsics below): the caller guarantees AVX2, FMA and F16C.
        let mut acc = [[unsafe { _mm256_setzero_ps() }; A]; R];
        for b in 0..blocks {
            // SAFETY: `b < blocks`, so every block read below exists (see the contract above).
            unsafe {
                let mut dy = [_mm_setzero_ps(); A];
                let mut qy = [_mm256_setzero_si256(); A];
                for a in 0..A {
                    let y = acts[a].add(b * Q8_0_BYTES);
                    dy[a] = f16x2(y);
                    qy[a] = _mm256_loadu_si256(y.add(2).cast());
                }
                for r in 0..R {
                    let x = rows[r].add(b * Q8_0_BYTES);
                    prefetch(x);
                    let dx = f16x2(x);
                    let qx = _mm256_loadu_si256(x.add(2).cast());
                    let ax = _mm256_sign_epi8(qx, qx);
                    for a in 0..A {
                        let d = _mm256_broadcastss_ps(_mm_mul_ss(dx, dy[a]));
                        // ggml's mul_sum_i8_pairs_float, with |x| shared by the activations.
                        let sy = _mm256_sign_epi8(qy[a], qx);
                        let q = _mm256_cvtepi32_ps(D::sum4(ax, sy));
                        acc[r][a] = _mm256_fmadd_ps(d, q, acc[r][a]);
                    }
                }
            }
        }
        let mut out = [[0.0f32; A]; R];
        for r in 0..R {
            for a in 0..A {
                // SAFETY: as above.
                out[r][a] = unsafe { hsum_float_8(acc[r][a]) };
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A deterministic pseudo-random sequence in [-1, 1).
    fn noise(n: usize, seed: u32) -> Vec<f32> {
        let mut s = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
        (0..n)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 17;
                s ^= s << 5;
                (s as f32 / u32::MAX as f32) * 2.0 - 1.0
            })
            .collect()
    }

    fn q4_1_row(x: &[f32]) -> Vec<u8> {
        let mut out = Vec::new();
        for xs in x.chunks_exact(QK) {
            let min = xs.iter().copied().fold(f32::INFINITY, f32::min);
            let max = xs.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let d = (max - min) / 15.0;
            let id = if d != 0.0 { 1.0 / d } else { 0.0 };
            out.extend_from_slice(&f16::from_f32(d).to_le_bytes());
            out.extend_from_slice(&f16::from_f32(min).to_le_bytes());
            for j in 0..QK / 2 {
                let lo = (((xs[j] - min) * id + 0.5) as u8).min(15);
                let hi = (((xs[j + QK / 2] - min) * id + 0.5) as u8).min(15);
                out.push(lo | (hi << 4));
            }
        }
        out
    }

    fn quantized(act: ActType, x: &[f32], simd_path: bool) -> Vec<u8> {
        let mut out = vec![0u8; x.len() / QK * act.block_bytes()];
        if simd_path {
            quantize(act, x, &mut out);
        } else {
            quantize_scalar(act, x, &mut out);
        }
        out
    }

    #[test]
    fn f16_helpers_agree_with_the_scalar_definitions() {
        let a = noise(70, 11);
        let b = noise(70, 12);
        let mut ha = vec![0u16; 70];
        let mut hb = vec![0u16; 70];
        to_f16(&a, &mut ha);
        to_f16(&b, &mut hb);
        for (h, x) in ha.iter().zip(&a) {
            assert_eq!(*h, f16::from_f32(*x).to_bits());
        }
        let mut wa = vec![0.0; 70];
        let mut wb = vec![0.0; 70];
        from_f16(&ha, &mut wa);
        from_f16(&hb, &mut wb);
        let exact: f32 = wa.iter().zip(&wb).map(|(x, y)| x * y).sum();
        assert!((dot_f16(&ha, &hb) - exact).abs() < 1e-4);

        let mut y = hb.clone();
        mad_f16(&mut y, &ha, 0.5);
        for k in 0..70 {
            let want = f16::from_f32(wa[k].mul_add(0.5, wb[k])).to_bits();
            assert_eq!(y[k], want, "mad at {k}");
        }
        let mut y = hb.clone();
        scale_f16(&mut y, 0.25);
        for k in 0..70 {
            assert_eq!(y[k], f16::from_f32(wb[k] * 0.25).to_bits(), "scale at {k}");
        }
    }

    #[test]
    fn simd_quantization_equals_the_scalar_reference() {
        let mut x = noise(32 * 12, 7);
        x[5] = 0.0;
        // A block of zeros quantizes to a zero scale.
        for v in &mut x[32..64] {
            *v = 0.0;
        }
        for act in [ActType::Q8_0, ActType::Q8_1] {
            assert_eq!(
                quantized(act, &x, true),
                quantized(act, &x, false),
                "{act:?}"
            );
        }
    }

    #[test]
    fn q8_quantization_round_trips_within_half_a_step() {
        let x = noise(64, 3);
        let q = quantized(ActType::Q8_0, &x, false);
        let mut back = vec![0.0; 64];
        dequantize_row(WeightType::Q8_0, &q, &mut back);
        for (block, (xs, bs)) in x.chunks(QK).zip(back.chunks(QK)).enumerate() {
            let d = f16_at(&q, block * Q8_0_BYTES);
            for (a, b) in xs.iter().zip(bs) {
                assert!((a - b).abs() <= d * 0.5 + 1e-3, "{a} vs {b}");
            }
        }
    }

    fn check_dot(wt: WeightType, row_f32: &[f32], row: &[u8], x: &[f32]) {
        let act = wt.act_type();
        let n = row_f32.len();
        let acts = quantized(act, x, false);
        let mut simd_out = [0.0f32; 1];
        dot_rows(wt, row, row.len(), &acts, 1, &mut simd_out);
        let scalar = match wt {
            WeightType::Q4_1 => dot_q4_1_q8_1_scalar(row, &acts),
            WeightType::Q8_0 => dot_q8_0_q8_0_scalar(row, &acts),
            WeightType::Q4K | WeightType::Q6K => unreachable!("tested in kquants"),
        };
        // The scalar reference over the dequantized values, in f64.
        let mut w = vec![0.0; n];
        dequantize_row(wt, row, &mut w);
        let mut a = vec![0.0; n];
        dequantize_row(
            WeightType::Q8_0,
            &quantized(ActType::Q8_0, x, false),
            &mut a,
        );
        let exact: f64 = w
            .iter()
            .zip(&a)
            .map(|(p, q)| f64::from(*p) * f64::from(*q))
            .sum();
        let scale: f64 = w
            .iter()
            .zip(&a)
            .map(|(p, q)| f64::from((p * q).abs()))
            .sum();
        let tol = 1e-4 * scale.max(1.0);
        assert!(
            (f64::from(scalar) - exact).abs() <= tol,
            "{wt:?} scalar {scalar} vs {exact}"
        );
        assert!(
            (f64::from(simd_out[0]) - exact).abs() <= tol,
            "{wt:?} simd {} vs {exact}",
            simd_out[0]
        );
    }

    #[test]
    fn q4_1_dot_matches_the_reference() {
        for seed in 0..8 {
            let w = noise(32 * 18, 100 + seed);
            let x = noise(32 * 18, 200 + seed);
            check_dot(WeightType::Q4_1, &w, &q4_1_row(&w), &x);
        }
    }

    #[test]
    fn q8_0_dot_matches_the_reference() {
        for seed in 0..8 {
            let w = noise(32 * 18, 300 + seed);
            let x = noise(32 * 18, 400 + seed);
            let row = quantized(ActType::Q8_0, &w, false);
            check_dot(WeightType::Q8_0, &w, &row, &x);
        }
    }

    #[test]
    fn grouped_rows_are_bit_identical_to_single_rows() {
        // 19 rows (8- and 4-row tiles plus leftover rows) against 1 to 3 activations.
        for wt in [WeightType::Q4_1, WeightType::Q8_0] {
            let blocks = 18;
            let rows: Vec<u8> = (0..19)
                .flat_map(|r| {
                    let w = noise(32 * blocks, 500 + r);
                    match wt {
                        WeightType::Q4_1 => q4_1_row(&w),
                        WeightType::Q8_0 => quantized(ActType::Q8_0, &w, false),
                        WeightType::Q4K | WeightType::Q6K => unreachable!("tested in kquants"),
                    }
                })
                .collect();
            let row_bytes = rows.len() / 19;
            for n_act in 1..=3usize {
                let acts: Vec<u8> = (0..n_act as u32)
                    .flat_map(|t| quantized(wt.act_type(), &noise(32 * blocks, 600 + t), false))
                    .collect();
                let mut grouped = vec![0.0f32; 19 * n_act];
                dot_rows(wt, &rows, row_bytes, &acts, n_act, &mut grouped);
                let act_bytes = acts.len() / n_act;
                for r in 0..19 {
                    for t in 0..n_act {
                        let mut one = [0.0f32];
                        dot_rows(
                            wt,
                            &rows[r * row_bytes..(r + 1) * row_bytes],
                            row_bytes,
                            &acts[t * act_bytes..(t + 1) * act_bytes],
                            1,
                            &mut one,
                        );
                        let got = grouped[r * n_act + t];
                        assert_eq!(got.to_bits(), one[0].to_bits(), "{wt:?} {n_act} {r} {t}");
                    }
                }
            }
        }
    }

    #[test]
    fn every_simd_level_gives_the_same_bits() {
        // Extreme quants too: |q| = 127 activations against all-15 nibbles and ±127 weights,
        // the largest pair sums the byte kernels form.
        let blocks = 9;
        let mut x = noise(32 * blocks, 31);
        x[..32]
            .iter_mut()
            .for_each(|v| *v = if *v < 0.0 { -1.0 } else { 1.0 });
        for wt in [WeightType::Q4_1, WeightType::Q8_0] {
            let rows: Vec<u8> = (0..19)
                .flat_map(|r| {
                    let mut w = noise(32 * blocks, 700 + r);
                    w[..32].iter_mut().for_each(|v| *v = v.signum());
                    match wt {
                        WeightType::Q4_1 => q4_1_row(&w),
                        WeightType::Q8_0 => quantized(ActType::Q8_0, &w, false),
                        WeightType::Q4K | WeightType::Q6K => unreachable!("tested in kquants"),
                    }
                })
                .collect();
            let row_bytes = rows.len() / 19;
            for n_act in [1usize, 3] {
                let acts: Vec<u8> = (0..n_act as u32)
                    .flat_map(|t| {
                        let mut a = noise(32 * blocks, 800 + t);
                        a[..32].copy_from_slice(&x[..32]);
                        quantized(wt.act_type(), &a, false)
                    })
                    .collect();
                let run = |level| {
                    let mut out = vec![0.0f32; 19 * n_act];
                    dot_rows_at(level, wt, &rows, row_bytes, &acts, n_act, &mut out);
                    out.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
                };
                if !supported(SimdLevel::Avx2) {
                    continue;
                }
                let base = run(SimdLevel::Avx2);
                for level in [SimdLevel::AvxVnni, SimdLevel::Avx512Vnni] {
                    if supported(level) {
                        assert_eq!(
                            run(level),
                            base,
                            "{wt:?} {level:?} with {n_act} activations"
                        );
                    } else {
                        eprintln!("skipped {level:?}: this CPU lacks its instructions");
                    }
                }
            }
        }
    }

    #[test]
    fn dot_rows_fills_row_major_by_activation() {
        let w = noise(32 * 4, 9);
        let rows = quantized(ActType::Q8_0, &w, false);
        let acts: Vec<u8> = [noise(64, 1), noise(64, 2)]
            .iter()
            .flat_map(|x| quantized(ActType::Q8_0, x, false))
            .collect();
        let mut out = [0.0f32; 4];
        dot_rows(WeightType::Q8_0, &rows, 2 * Q8_0_BYTES, &acts, 2, &mut out);
        let row_bytes = 2 * Q8_0_BYTES;
        let act_bytes = 2 * Q8_0_BYTES;
        for r in 0..2 {
            for t in 0..2 {
                let expect = dot_q8_0_q8_0_scalar(
                    &rows[r * row_bytes..(r + 1) * row_bytes],
                    &acts[t * act_bytes..(t + 1) * act_bytes],
                );
                assert!((out[r * 2 + t] - expect).abs() <= 1e-4 * expect.abs().max(1.0));
            }
        }
    }
}
