//! The x86-64 SIMD kernels, like ggml's `arch/x86/quants.c`: AVX2 activation quantization and
//! f16 vector operations, the Q4_1 and Q8_0 tile kernels in one generic body per format
//! instantiated per integer dot-product instruction set (AVX2, AVX-VNNI, AVX512-VNNI), and the
//! AVX2 K-quant kernels. Each forms ggml's integer lanes and float sums in ggml's order.
//!
//! Every kernel takes typed block slices and reads only inside them. The functions marked
//! `#[target_feature]` are safe to call once the CPU is known to have their features; the
//! dispatch in `mod.rs` checks that before each call.
#![allow(unsafe_code)]

use std::arch::x86_64::*;

use bytemuck::Pod;

use super::blocks::{BlockQ4_1, BlockQ4K, BlockQ6K, BlockQ8_0, BlockQ8_1, BlockQ8K, QK};
use super::kquants::{QK_K, unpack_scales};

/// The f16 values in the first four bytes of `block` widened to f32 (lanes 0 and 1): `d` and
/// `m` of a Q4_1 block, `d` and `s` of a Q8_1 block, `d` (and two quants) of a Q8_0 block.
///
/// One 32-bit load into a zeroed register: converting one u16 through `_mm_cvtsi32_si128`
/// let LLVM emit `vpinsrw` into a live register, a false dependency that serialised the
/// dot-product loops.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn f16x2<B: Pod>(block: &B) -> __m128 {
    let b = bytemuck::bytes_of(block);
    let bits = i32::from_le_bytes([b[0], b[1], b[2], b[3]]);
    _mm_cvtph_ps(_mm_cvtsi32_si128(bits))
}

#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn f32_to_f16(x: f32) -> [u8; 2] {
    let h = _mm_cvtps_ph::<_MM_FROUND_TO_NEAREST_INT>(_mm_set_ss(x));
    (_mm_extract_epi16::<0>(h) as u16).to_le_bytes()
}

/// How far ahead of the block being read the weight rows are prefetched, in bytes (measured,
/// see `benches/local/README.md`: reading several rows at once defeats the hardware
/// prefetcher).
const PREFETCH_AHEAD: usize = 320;

/// Asks for the cache line `PREFETCH_AHEAD` bytes after `block` (a hint: it never faults, so
/// running past the end of the weights is harmless).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn prefetch<B>(block: &B) {
    let p = std::ptr::from_ref(block).cast::<i8>();
    // `wrapping_add` keeps the address computation defined whatever it points at.
    _mm_prefetch::<_MM_HINT_T0>(p.wrapping_add(PREFETCH_AHEAD));
}

/// Asks for the cache lines a few blocks ahead of a K-quant `block` (3 lines cover a Q4_K or
/// Q6_K block; a hint that never faults).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn prefetch_k<B>(block: &B) {
    const AHEAD: usize = 512;
    let p = std::ptr::from_ref(block).cast::<i8>().wrapping_add(AHEAD);
    for line in 0..3 {
        _mm_prefetch::<_MM_HINT_T0>(p.wrapping_add(64 * line));
    }
}

/// ggml's `hsum_float_8`.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn hsum_float_8(x: __m256) -> f32 {
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

/// Rounds 8-float groups with F16C, the rest one by one (same rounding).
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) fn to_f16(x: &[f32], out: &mut [u16]) {
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

/// Eight f16 values widened.
///
/// # Safety
/// Eight values must be readable at `p`.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn load_ph(p: *const u16) -> __m256 {
    // SAFETY: the caller guarantees 8 readable values at `p`.
    unsafe { _mm256_cvtph_ps(_mm_loadu_si128(p.cast())) }
}

/// ggml's AVX2 `ggml_vec_dot_f16`: four 8-lane accumulators over steps of 32, reduced
/// pairwise; the tail is summed in f64.
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) fn dot_f16(a: &[u16], b: &[u16]) -> f32 {
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
pub(super) fn mad_f16(y: &mut [u16], x: &[u16], v: f32) {
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
pub(super) fn scale_f16(y: &mut [u16], v: f32) {
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

/// One block of llama.cpp's AVX2 `quantize_row_q8_0` / `quantize_row_q8_1`: the scale and the
/// 32 rounded values as four vectors of i32.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn round_block(xs: &[f32; QK]) -> (f32, [__m256i; 4]) {
    let sign = _mm256_set1_ps(-0.0);
    let p = xs.as_ptr();
    // SAFETY: `xs` has 32 floats; the four loads read 8 each.
    let v = unsafe {
        [
            _mm256_loadu_ps(p),
            _mm256_loadu_ps(p.add(8)),
            _mm256_loadu_ps(p.add(16)),
            _mm256_loadu_ps(p.add(24)),
        ]
    };
    let mut max_abs = _mm256_andnot_ps(sign, v[0]);
    max_abs = _mm256_max_ps(max_abs, _mm256_andnot_ps(sign, v[1]));
    max_abs = _mm256_max_ps(max_abs, _mm256_andnot_ps(sign, v[2]));
    max_abs = _mm256_max_ps(max_abs, _mm256_andnot_ps(sign, v[3]));
    let mut max4 = _mm_max_ps(
        _mm256_extractf128_ps::<1>(max_abs),
        _mm256_castps256_ps128(max_abs),
    );
    max4 = _mm_max_ps(max4, _mm_movehl_ps(max4, max4));
    max4 = _mm_max_ss(max4, _mm_movehdup_ps(max4));
    let max = _mm_cvtss_f32(max4);
    let d = max / 127.0;
    let id = if max != 0.0 { 127.0 / max } else { 0.0 };
    let mul = _mm256_set1_ps(id);
    let round = |x: __m256| {
        _mm256_cvtps_epi32(_mm256_round_ps::<_MM_FROUND_TO_NEAREST_INT>(_mm256_mul_ps(
            x, mul,
        )))
    };
    (d, [round(v[0]), round(v[1]), round(v[2]), round(v[3])])
}

/// The four vectors of [`round_block`] packed to 32 signed bytes, in order.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn pack_block(i: [__m256i; 4], qs: &mut [u8; QK]) {
    let perm = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    let packed = _mm256_packs_epi16(
        _mm256_packs_epi32(i[0], i[1]),
        _mm256_packs_epi32(i[2], i[3]),
    );
    let packed = _mm256_permutevar8x32_epi32(packed, perm);
    // SAFETY: `qs` is exactly 32 bytes.
    unsafe { _mm256_storeu_si256(qs.as_mut_ptr().cast(), packed) };
}

/// llama.cpp's AVX2 `quantize_row_q8_0`.
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) fn quantize_q8_0(x: &[f32], out: &mut [BlockQ8_0]) {
    for (xs, block) in x.as_chunks::<QK>().0.iter().zip(out) {
        let (d, ints) = round_block(xs);
        block.d = f32_to_f16(d);
        pack_block(ints, &mut block.qs);
    }
}

/// llama.cpp's AVX2 `quantize_row_q8_1`.
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) fn quantize_q8_1(x: &[f32], out: &mut [BlockQ8_1]) {
    for (xs, block) in x.as_chunks::<QK>().0.iter().zip(out) {
        let (d, i) = round_block(xs);
        block.d = f32_to_f16(d);
        let sum = hsum_i32_8(_mm256_add_epi32(
            _mm256_add_epi32(i[0], i[1]),
            _mm256_add_epi32(i[2], i[3]),
        ));
        block.s = f32_to_f16(d * sum as f32);
        pack_block(i, &mut block.qs);
    }
}

/// Sums of four unsigned × signed byte products in i32 lanes: the integer core of ggml's
/// `mul_sum_us8_pairs_float`, in the instructions of one `SimdLevel`.
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

/// The length of the shortest slice among `rows` and `acts`: the blocks a tile reads.
#[inline(always)]
fn common_len<W, Y, const R: usize, const A: usize>(rows: &[&[W]; R], acts: &[&[Y]; A]) -> usize {
    let r = rows.iter().map(|r| r.len()).min().unwrap_or(0);
    acts.iter().map(|a| a.len()).fold(r, usize::min)
}

// One function per (format, level): `#[target_feature]` turns the level's instructions on for
// the generic kernel body inlined into it.

/// [`q4_1_tile`] with AVX2's `vpmaddubsw` + `vpmaddwd`.
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) fn q4_1_avx2<const R: usize, const A: usize>(
    rows: [&[BlockQ4_1]; R],
    acts: [&[BlockQ8_1]; A],
) -> [[f32; A]; R] {
    // SAFETY: this function's features are AVX2, FMA, F16C and `Madd`'s.
    unsafe { q4_1_tile::<Madd, R, A>(rows, acts) }
}

/// [`q4_1_tile`] with AVX-VNNI.
#[target_feature(enable = "avx2,fma,f16c,avxvnni")]
pub(super) fn q4_1_vex<const R: usize, const A: usize>(
    rows: [&[BlockQ4_1]; R],
    acts: [&[BlockQ8_1]; A],
) -> [[f32; A]; R] {
    // SAFETY: this function's features are AVX2, FMA, F16C and `VnniVex`'s.
    unsafe { q4_1_tile::<VnniVex, R, A>(rows, acts) }
}

/// [`q4_1_tile`] with AVX512-VNNI.
#[target_feature(enable = "avx2,fma,f16c,avx512vnni,avx512vl")]
pub(super) fn q4_1_evex<const R: usize, const A: usize>(
    rows: [&[BlockQ4_1]; R],
    acts: [&[BlockQ8_1]; A],
) -> [[f32; A]; R] {
    // SAFETY: this function's features are AVX2, FMA, F16C and `VnniEvex`'s.
    unsafe { q4_1_tile::<VnniEvex, R, A>(rows, acts) }
}

/// [`q8_0_tile`] with AVX2's `vpmaddubsw` + `vpmaddwd`.
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) fn q8_0_avx2<const R: usize, const A: usize>(
    rows: [&[BlockQ8_0]; R],
    acts: [&[BlockQ8_0]; A],
) -> [[f32; A]; R] {
    // SAFETY: this function's features are AVX2, FMA, F16C and `Madd`'s.
    unsafe { q8_0_tile::<Madd, R, A>(rows, acts) }
}

/// [`q8_0_tile`] with AVX-VNNI.
#[target_feature(enable = "avx2,fma,f16c,avxvnni")]
pub(super) fn q8_0_vex<const R: usize, const A: usize>(
    rows: [&[BlockQ8_0]; R],
    acts: [&[BlockQ8_0]; A],
) -> [[f32; A]; R] {
    // SAFETY: this function's features are AVX2, FMA, F16C and `VnniVex`'s.
    unsafe { q8_0_tile::<VnniVex, R, A>(rows, acts) }
}

/// [`q8_0_tile`] with AVX512-VNNI.
#[target_feature(enable = "avx2,fma,f16c,avx512vnni,avx512vl")]
pub(super) fn q8_0_evex<const R: usize, const A: usize>(
    rows: [&[BlockQ8_0]; R],
    acts: [&[BlockQ8_0]; A],
) -> [[f32; A]; R] {
    // SAFETY: this function's features are AVX2, FMA, F16C and `VnniEvex`'s.
    unsafe { q8_0_tile::<VnniEvex, R, A>(rows, acts) }
}

/// The Q4_1 × Q8_1 dot products (ggml's `ggml_vec_dot_q4_1_q8_1`) of `R` rows against `A`
/// activation rows at once, over the blocks all of them have: each weight block is unpacked
/// once for all activations and each activation block loaded once for all rows, and the
/// dependency chains overlap. Every (row, activation) sum is formed in exactly the single-row
/// order, so results are bit-identical.
///
/// # Safety
/// The CPU must have AVX2, FMA, F16C and `D`'s instructions.
#[inline(always)]
unsafe fn q4_1_tile<D: ByteDot, const R: usize, const A: usize>(
    rows: [&[BlockQ4_1]; R],
    acts: [&[BlockQ8_1]; A],
) -> [[f32; A]; R] {
    let blocks = common_len(&rows, &acts);
    let (rp, ap) = (rows.map(<[_]>::as_ptr), acts.map(<[_]>::as_ptr));
    // SAFETY: the caller guarantees AVX2, FMA, F16C and `D`'s instructions, which every
    // intrinsic in this function needs.
    let (low, mut acc, mut summs) = unsafe {
        (
            _mm256_set1_epi8(0x0f),
            [[_mm256_setzero_ps(); A]; R],
            [[_mm_setzero_ps(); A]; R],
        )
    };
    for b in 0..blocks {
        // SAFETY: `b < blocks`, no more than any slice's length, so every block read below
        // exists; the intrinsics as above.
        unsafe {
            let mut ys = [_mm_setzero_ps(); A];
            let mut qy = [_mm256_setzero_si256(); A];
            for a in 0..A {
                let y = &*ap[a].add(b);
                ys[a] = f16x2(y);
                qy[a] = _mm256_loadu_si256(y.qs.as_ptr().cast());
            }
            for r in 0..R {
                let x = &*rp[r].add(b);
                prefetch(x);
                let xs = f16x2(x);
                let tmp = _mm_loadu_si128(x.qs.as_ptr().cast());
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
            // SAFETY: the intrinsics as above.
            out[r][a] = unsafe { hsum_float_8(acc[r][a]) + _mm_cvtss_f32(summs[r][a]) };
        }
    }
    out
}

/// The Q8_0 × Q8_0 dot products (ggml's `ggml_vec_dot_q8_0_q8_0`) of `R` rows against `A`
/// activation rows at once, over the blocks all of them have (bit-identical per pair, as
/// [`q4_1_tile`]).
///
/// # Safety
/// The CPU must have AVX2, FMA, F16C and `D`'s instructions.
#[inline(always)]
unsafe fn q8_0_tile<D: ByteDot, const R: usize, const A: usize>(
    rows: [&[BlockQ8_0]; R],
    acts: [&[BlockQ8_0]; A],
) -> [[f32; A]; R] {
    let blocks = common_len(&rows, &acts);
    let (rp, ap) = (rows.map(<[_]>::as_ptr), acts.map(<[_]>::as_ptr));
    // SAFETY: the caller guarantees AVX2, FMA, F16C and `D`'s instructions, which every
    // intrinsic in this function needs.
    let mut acc = unsafe { [[_mm256_setzero_ps(); A]; R] };
    for b in 0..blocks {
        // SAFETY: `b < blocks`, no more than any slice's length, so every block read below
        // exists; the intrinsics as above.
        unsafe {
            let mut dy = [_mm_setzero_ps(); A];
            let mut qy = [_mm256_setzero_si256(); A];
            for a in 0..A {
                let y = &*ap[a].add(b);
                dy[a] = f16x2(y);
                qy[a] = _mm256_loadu_si256(y.qs.as_ptr().cast());
            }
            for r in 0..R {
                let x = &*rp[r].add(b);
                prefetch(x);
                let dx = f16x2(x);
                let qx = _mm256_loadu_si256(x.qs.as_ptr().cast());
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
            // SAFETY: the intrinsics as above.
            out[r][a] = unsafe { hsum_float_8(acc[r][a]) };
        }
    }
    out
}

/// Scale `k` of the eight i16 scales in `sc` (both halves), in every i16 lane.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn scale_of(sc: __m256i, k: usize) -> __m256i {
    let lo = (2 * k) as i16;
    _mm256_shuffle_epi8(sc, _mm256_set1_epi16(lo | ((lo + 1) << 8)))
}

/// The Q4_K × Q8_K dot products of `R` rows against `A` activation rows, a row at a time (a
/// super-block is enough work per call; the kernel prefetches the row ahead).
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) fn q4_k_tile<const R: usize, const A: usize>(
    rows: [&[BlockQ4K]; R],
    acts: [&[BlockQ8K]; A],
) -> [[f32; A]; R] {
    let mut out = [[0.0f32; A]; R];
    for r in 0..R {
        out[r] = dot_q4_k_n(rows[r], acts);
    }
    out
}

/// `scalar::dot_q4_k_q8_k` of one row against `A` activation rows at once (the same bits):
/// each weight block is unpacked once for all of them (prompt processing).
// Not inlined into the tile loop: inlined, Q6_K prompt processing measured 20% slower.
#[inline(never)]
#[target_feature(enable = "avx2,fma,f16c")]
fn dot_q4_k_n<const A: usize>(row: &[BlockQ4K], acts: [&[BlockQ8K]; A]) -> [f32; A] {
    let low = _mm256_set1_epi8(0x0f);
    let mut acc = [_mm256_setzero_ps(); A];
    let mut acc_m = [_mm_setzero_ps(); A];
    for (b, x) in row.iter().enumerate() {
        prefetch_k(x);
        let xd = x.d();
        let xmin = x.dmin();
        let (scales, mins) = unpack_scales(&x.scales);
        // The 8 scales and the 8 mins as i16; the mins dot the sums of the sub-blocks' quants.
        let eight = |b: [u8; 8]| i64::from_le_bytes(b);
        let scales16 = _mm_cvtepu8_epi16(_mm_set_epi64x(0, eight(scales)));
        let mins16 = _mm_cvtepu8_epi16(_mm_set_epi64x(0, eight(mins)));
        let sc = _mm256_broadcastsi128_si256(scales16);
        let ys: [&BlockQ8K; A] = std::array::from_fn(|a| &acts[a][b]);
        for a in 0..A {
            let dmin = -ys[a].d() * xmin;
            // SAFETY: `bsums` is the block's 32 bytes of i16 sums.
            let bs = unsafe { _mm256_loadu_si256(ys[a].bsums.as_ptr().cast()) };
            let q8s = _mm_hadd_epi16(
                _mm256_castsi256_si128(bs),
                _mm256_extracti128_si256::<1>(bs),
            );
            let prod = _mm_madd_epi16(mins16, q8s);
            acc_m[a] = _mm_fmadd_ps(_mm_set1_ps(dmin), _mm_cvtepi32_ps(prod), acc_m[a]);
        }
        let mut sumi = [_mm256_setzero_si256(); A];
        for j in 0..4 {
            // SAFETY: `qs` holds 128 bytes, so the 32-byte load is in bounds (checked by the
            // slice indexing).
            let bits = unsafe { _mm256_loadu_si256(x.qs[32 * j..32 * j + 32].as_ptr().cast()) };
            let q4l = _mm256_and_si256(bits, low);
            let q4h = _mm256_and_si256(_mm256_srli_epi16::<4>(bits), low);
            let (scale_l, scale_h) = (scale_of(sc, 2 * j), scale_of(sc, 2 * j + 1));
            for a in 0..A {
                let q8 = &ys[a].qs;
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
            let d = ys[a].d() * xd;
            acc[a] = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi[a]), acc[a]);
        }
    }
    let mut out = [0.0f32; A];
    for a in 0..A {
        let mut m = _mm_add_ps(acc_m[a], _mm_movehl_ps(acc_m[a], acc_m[a]));
        m = _mm_add_ss(m, _mm_movehdup_ps(m));
        out[a] = hsum_float_8(acc[a]) + _mm_cvtss_f32(m);
    }
    out
}

/// Bits `shift..shift + 2` of each byte of `hb`, moved to bits 4 and 5 (a Q6_K quant's high
/// pair); `two` is 0x03 in every byte.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn high_pair(hb: __m256i, two: __m256i, shift: i32) -> __m256i {
    let shifted = _mm256_srl_epi16(hb, _mm_cvtsi32_si128(shift));
    _mm256_slli_epi16::<4>(_mm256_and_si256(shifted, two))
}

/// The Q6_K × Q8_K dot products of `R` rows against `A` activation rows, a row at a time (as
/// [`q4_k_tile`]).
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) fn q6_k_tile<const R: usize, const A: usize>(
    rows: [&[BlockQ6K]; R],
    acts: [&[BlockQ8K]; A],
) -> [[f32; A]; R] {
    let mut out = [[0.0f32; A]; R];
    for r in 0..R {
        out[r] = dot_q6_k_n(rows[r], acts);
    }
    out
}

/// `scalar::dot_q6_k_q8_k` of one row against `A` activation rows at once (each block
/// unpacked once; the same bits per result).
// Not inlined into the tile loop: inlined, Q6_K prompt processing measured 20% slower.
#[inline(never)]
#[target_feature(enable = "avx2,fma,f16c")]
fn dot_q6_k_n<const A: usize>(row: &[BlockQ6K], acts: [&[BlockQ8K]; A]) -> [f32; A] {
    let low = _mm256_set1_epi8(0x0f);
    let two = _mm256_set1_epi8(0x03);
    let m32 = _mm256_set1_epi8(32);
    let mut acc = [_mm256_setzero_ps(); A];
    for (b, x) in row.iter().enumerate() {
        prefetch_k(x);
        let xd = x.d();
        let ys: [&BlockQ8K; A] = std::array::from_fn(|a| &acts[a][b]);
        let mut sumi = [_mm256_setzero_si256(); A];
        for c in 0..QK_K / 128 {
            let ql = &x.ql[64 * c..64 * c + 64];
            let qh = &x.qh[32 * c..32 * c + 32];
            let sc = &x.scales[8 * c..8 * c + 8];
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
                    let q8v = unsafe { _mm256_loadu_si256(ys[a].qs[at..at + 32].as_ptr().cast()) };
                    let p = _mm256_sub_epi16(
                        _mm256_maddubs_epi16(q, q8v),
                        _mm256_maddubs_epi16(m32, q8v),
                    );
                    sumi[a] = _mm256_add_epi32(sumi[a], _mm256_madd_epi16(scale, p));
                }
            }
        }
        for a in 0..A {
            let d = ys[a].d() * xd;
            acc[a] = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi[a]), acc[a]);
        }
    }
    let mut out = [0.0f32; A];
    for a in 0..A {
        out[a] = hsum_float_8(acc[a]);
    }
    out
}
