//! Quantized dot products in ggml's block formats, and the f16 vector operations of attention:
//! the weight and activation types, CPU feature detection, and the dispatch of every operation
//! to the reference kernels or to the x86 SIMD ones, including the tile driver that multiplies
//! several weight rows by several activation rows per kernel call.
//!
//! One job a file, as ggml (`quants.c`, `arch/x86/quants.c`) and candle (`k_quants.rs`,
//! `avx.rs`) lay theirs out: `blocks.rs` the typed blocks, `kquants.rs` K-quant format helpers,
//! `scalar.rs` the reference kernels (the only ones on CPUs without AVX2, and on other
//! architectures), `x86.rs` the AVX2/VNNI kernels. Those four never import this module; a NEON
//! file would sit beside `x86.rs`.
//!
//! The SIMD kernels round and sum in the same order as llama.cpp's, and every SIMD level gives
//! the same bits in every tile shape (tested against `scalar.rs`). The unsafe code is in
//! `x86.rs` and in the calls into it here, each call guarded by runtime feature detection.
#![allow(unsafe_code)]

pub(crate) mod blocks;
mod kquants;
mod scalar;
#[cfg(test)]
mod tests;
#[cfg(target_arch = "x86_64")]
mod x86;

use blocks::{BlockQ4_1, BlockQ4K, BlockQ6K, BlockQ8_0, BlockQ8_1, BlockQ8K, blocks, blocks_mut};

pub(crate) use blocks::QK;
pub(crate) use kquants::QK_K;

/// A weight format this module multiplies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WeightType {
    Q4_1,
    Q8_0,
    /// K-quants, the bulk of Q4_K_M files.
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
    /// Every weight format, for tests and benchmarks.
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) const ALL: [WeightType; 4] = [
        WeightType::Q4_1,
        WeightType::Q8_0,
        WeightType::Q4K,
        WeightType::Q6K,
    ];

    pub(crate) fn block_bytes(self) -> usize {
        match self {
            WeightType::Q4_1 => size_of::<BlockQ4_1>(),
            WeightType::Q8_0 => size_of::<BlockQ8_0>(),
            WeightType::Q4K => size_of::<BlockQ4K>(),
            WeightType::Q6K => size_of::<BlockQ6K>(),
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
            ActType::Q8_0 => size_of::<BlockQ8_0>(),
            ActType::Q8_1 => size_of::<BlockQ8_1>(),
            ActType::Q8K => size_of::<BlockQ8K>(),
        }
    }

    /// Values per block: 32, or 256 for Q8_K.
    pub(crate) fn block_values(self) -> usize {
        match self {
            ActType::Q8_0 | ActType::Q8_1 => QK,
            ActType::Q8K => QK_K,
        }
    }
}

/// The widest integer dot-product instructions the kernels use on this CPU.
///
/// All levels give bit-identical results: VNNI's `vpdpbusd` sums four byte products into an
/// i32 lane exactly, as `vpmaddubsw` + `vpmaddwd` do in two steps (no pair of products here
/// can saturate 16 bits), so only the speed differs. The K-quant kernels use AVX2 at every
/// level above `Scalar`.
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

impl SimdLevel {
    /// Every level, for tests and benchmarks (filter with [`supported`]).
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) const ALL: [SimdLevel; 4] = [
        SimdLevel::Scalar,
        SimdLevel::Avx2,
        SimdLevel::AvxVnni,
        SimdLevel::Avx512Vnni,
    ];
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
pub(crate) fn supported(level: SimdLevel) -> bool {
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
#[cfg(target_arch = "x86_64")]
fn simd() -> bool {
    simd_level() != SimdLevel::Scalar
}

/// Quantizes `x` (a multiple of `act.block_values()` long) into `out` as `act` blocks, as
/// llama.cpp's `quantize_row_q8_0` / `quantize_row_q8_1` / `quantize_row_q8_K` do (scale
/// `max|x| / 127`, round half to even).
pub(crate) fn quantize(act: ActType, x: &[f32], out: &mut [u8]) {
    debug_assert_eq!(x.len() % act.block_values(), 0);
    debug_assert_eq!(out.len(), x.len() / act.block_values() * act.block_bytes());
    match act {
        ActType::Q8K => scalar::quantize_q8_k(x, blocks_mut(out)),
        ActType::Q8_0 => {
            #[cfg(target_arch = "x86_64")]
            if simd() {
                // SAFETY: the CPU has AVX2, FMA and F16C (checked just above).
                unsafe { x86::quantize_q8_0(x, blocks_mut(out)) };
                return;
            }
            scalar::quantize_q8_0(x, blocks_mut(out));
        }
        ActType::Q8_1 => {
            #[cfg(target_arch = "x86_64")]
            if simd() {
                // SAFETY: as above.
                unsafe { x86::quantize_q8_1(x, blocks_mut(out)) };
                return;
            }
            scalar::quantize_q8_1(x, blocks_mut(out));
        }
    }
}

/// A shape of the SIMD tile driver: weight rows × activation rows per kernel call. Each
/// (row, activation) sum is formed in the same order whatever the shape, so every shape gives
/// the same bits; only the speed differs (`benches/local/README.md` has the measurements).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tile {
    /// Decoding (one activation row) on Q4_1 and Q8_0.
    T8x1,
    /// Prompt processing on Q8_0.
    T4x2,
    /// Prompt processing on Q4_1.
    T2x2,
    /// K-quants: a 256-value super-block is enough work per row, and four activations share
    /// each unpacked weight block.
    T1x4,
    /// One pair per call, what the other shapes fall back to at the edges.
    T1x1,
}

impl Tile {
    /// Every shape, for tests and benchmarks.
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) const ALL: [Tile; 5] = [Tile::T8x1, Tile::T4x2, Tile::T2x2, Tile::T1x4, Tile::T1x1];

    /// The fastest measured shape for `n_act` activations of `wt` (`benches/local/README.md`).
    pub(crate) fn best(wt: WeightType, n_act: usize) -> Tile {
        match wt {
            WeightType::Q4K | WeightType::Q6K => Tile::T1x4,
            _ if n_act == 1 => Tile::T8x1,
            WeightType::Q8_0 => Tile::T4x2,
            WeightType::Q4_1 => Tile::T2x2,
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
    let tile = Tile::best(wt, n_act);
    dot_rows_with(simd_level(), tile, wt, rows, row_bytes, acts, n_act, out);
}

/// [`dot_rows`] with the kernels of `level` (which the CPU must support: [`supported`]) in
/// tiles of `tile` (ignored by the scalar kernels). Tests and benchmarks compare levels and
/// shapes through this.
#[allow(clippy::too_many_arguments)]
pub(crate) fn dot_rows_with(
    level: SimdLevel,
    tile: Tile,
    wt: WeightType,
    rows: &[u8],
    row_bytes: usize,
    acts: &[u8],
    n_act: usize,
    out: &mut [f32],
) {
    let n_blocks = row_bytes / wt.block_bytes();
    let act_bytes = n_blocks * wt.act_type().block_bytes();
    debug_assert_eq!(rows.len() % row_bytes, 0);
    debug_assert_eq!(acts.len(), act_bytes * n_act);
    debug_assert_eq!(out.len(), rows.len() / row_bytes * n_act);
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (level, tile);
    #[cfg(target_arch = "x86_64")]
    if level != SimdLevel::Scalar && supported(level) {
        let shape = Shape {
            n_rows: rows.len() / row_bytes,
            n_act,
            n_blocks,
        };
        let (shape, rows, acts) = (&shape, rows, acts);
        // SAFETY: the CPU supports `level` (just checked), the level of each arm's kernel.
        unsafe {
            match (wt, level) {
                (WeightType::Q4_1, SimdLevel::AvxVnni) => {
                    simd_rows::<Q4_1Vex>(tile, shape, rows, acts, out)
                }
                (WeightType::Q4_1, SimdLevel::Avx512Vnni) => {
                    simd_rows::<Q4_1Evex>(tile, shape, rows, acts, out)
                }
                (WeightType::Q4_1, _) => simd_rows::<Q4_1Avx2>(tile, shape, rows, acts, out),
                (WeightType::Q8_0, SimdLevel::AvxVnni) => {
                    simd_rows::<Q8_0Vex>(tile, shape, rows, acts, out)
                }
                (WeightType::Q8_0, SimdLevel::Avx512Vnni) => {
                    simd_rows::<Q8_0Evex>(tile, shape, rows, acts, out)
                }
                (WeightType::Q8_0, _) => simd_rows::<Q8_0Avx2>(tile, shape, rows, acts, out),
                (WeightType::Q4K, _) => simd_rows::<Q4KAvx2>(tile, shape, rows, acts, out),
                (WeightType::Q6K, _) => simd_rows::<Q6KAvx2>(tile, shape, rows, acts, out),
            }
        }
        return;
    }
    for (row, out) in rows
        .chunks_exact(row_bytes)
        .zip(out.chunks_exact_mut(n_act))
    {
        for (act, o) in acts.chunks_exact(act_bytes).zip(out.iter_mut()) {
            *o = match wt {
                WeightType::Q4_1 => scalar::dot_q4_1_q8_1(blocks(row), blocks(act)),
                WeightType::Q8_0 => scalar::dot_q8_0_q8_0(blocks(row), blocks(act)),
                WeightType::Q4K => scalar::dot_q4_k_q8_k(blocks(row), blocks(act)),
                WeightType::Q6K => scalar::dot_q6_k_q8_k(blocks(row), blocks(act)),
            };
        }
    }
}

/// What every tile of one [`dot_rows`] call shares.
#[cfg(target_arch = "x86_64")]
struct Shape {
    n_rows: usize,
    n_act: usize,
    /// Blocks per row, of weights and of activations alike.
    n_blocks: usize,
}

/// One weight format's SIMD kernel at one [`SimdLevel`], for any tile shape: the dot products
/// of `R` weight rows with `A` activation rows.
#[cfg(target_arch = "x86_64")]
trait TileKernel {
    /// The weight block.
    type W: bytemuck::Pod;
    /// The activation block.
    type Y: bytemuck::Pod;

    /// # Safety
    /// The CPU must support the kernel's level.
    unsafe fn tile<const R: usize, const A: usize>(
        rows: [&[Self::W]; R],
        acts: [&[Self::Y]; A],
    ) -> [[f32; A]; R];
}

/// Declares the [`TileKernel`] `$name`: `$kernel` of `x86.rs` on `$w` rows and `$y` activations.
#[cfg(target_arch = "x86_64")]
macro_rules! tile_kernel {
    ($name:ident, $w:ty, $y:ty, $kernel:ident) => {
        struct $name;

        impl TileKernel for $name {
            type W = $w;
            type Y = $y;

            #[inline]
            unsafe fn tile<const R: usize, const A: usize>(
                rows: [&[$w]; R],
                acts: [&[$y]; A],
            ) -> [[f32; A]; R] {
                // SAFETY: the caller guarantees the CPU features `$kernel` is compiled with.
                unsafe { x86::$kernel(rows, acts) }
            }
        }
    };
}

#[cfg(target_arch = "x86_64")]
tile_kernel!(Q4_1Avx2, BlockQ4_1, BlockQ8_1, q4_1_avx2);
#[cfg(target_arch = "x86_64")]
tile_kernel!(Q4_1Vex, BlockQ4_1, BlockQ8_1, q4_1_vex);
#[cfg(target_arch = "x86_64")]
tile_kernel!(Q4_1Evex, BlockQ4_1, BlockQ8_1, q4_1_evex);
#[cfg(target_arch = "x86_64")]
tile_kernel!(Q8_0Avx2, BlockQ8_0, BlockQ8_0, q8_0_avx2);
#[cfg(target_arch = "x86_64")]
tile_kernel!(Q8_0Vex, BlockQ8_0, BlockQ8_0, q8_0_vex);
#[cfg(target_arch = "x86_64")]
tile_kernel!(Q8_0Evex, BlockQ8_0, BlockQ8_0, q8_0_evex);
#[cfg(target_arch = "x86_64")]
tile_kernel!(Q4KAvx2, BlockQ4K, BlockQ8K, q4_k_tile);
#[cfg(target_arch = "x86_64")]
tile_kernel!(Q6KAvx2, BlockQ6K, BlockQ8K, q6_k_tile);

/// The SIMD path of [`dot_rows_with`] for kernel `K`: the buffers cast to blocks once, then
/// tiles of the given shape.
///
/// # Safety
/// The CPU must support `K`'s level.
#[cfg(target_arch = "x86_64")]
unsafe fn simd_rows<K: TileKernel>(
    tile: Tile,
    shape: &Shape,
    rows: &[u8],
    acts: &[u8],
    out: &mut [f32],
) {
    let (rows, acts) = (blocks::<K::W>(rows), blocks::<K::Y>(acts));
    // SAFETY: the caller's contract, passed on.
    unsafe {
        match tile {
            Tile::T8x1 => tiles::<K, 8, 1>(shape, rows, acts, out),
            Tile::T4x2 => tiles::<K, 4, 2>(shape, rows, acts, out),
            Tile::T2x2 => tiles::<K, 2, 2>(shape, rows, acts, out),
            Tile::T1x4 => tiles::<K, 1, 4>(shape, rows, acts, out),
            Tile::T1x1 => tiles::<K, 1, 1>(shape, rows, acts, out),
        }
    }
}

/// Tiles of `R` rows × `A` activations, then the leftover rows and activations one at a time
/// (the same per-pair arithmetic in every case).
///
/// # Safety
/// The CPU must support `K`'s level.
#[cfg(target_arch = "x86_64")]
unsafe fn tiles<K: TileKernel, const R: usize, const A: usize>(
    shape: &Shape,
    rows: &[K::W],
    acts: &[K::Y],
    out: &mut [f32],
) {
    let full_r = shape.n_rows / R * R;
    let full_a = shape.n_act / A * A;
    // SAFETY: the caller's contract, passed on to each call below.
    unsafe {
        for r in (0..shape.n_rows).step_by(R) {
            if r < full_r {
                for t in (0..full_a).step_by(A) {
                    tile::<K, R, A>(shape, rows, r, acts, t, out);
                }
                for t in full_a..shape.n_act {
                    tile::<K, R, 1>(shape, rows, r, acts, t, out);
                }
            } else {
                for rr in r..shape.n_rows {
                    for t in 0..shape.n_act {
                        tile::<K, 1, 1>(shape, rows, rr, acts, t, out);
                    }
                }
            }
        }
    }
}

/// One tile of `R` rows from row `r` and `A` activations from activation `t`, cut from the
/// block buffers with bounds checks; the kernels read only inside those slices.
///
/// # Safety
/// The CPU must support `K`'s level.
#[cfg(target_arch = "x86_64")]
#[inline]
unsafe fn tile<K: TileKernel, const R: usize, const A: usize>(
    shape: &Shape,
    rows: &[K::W],
    r: usize,
    acts: &[K::Y],
    t: usize,
    out: &mut [f32],
) {
    let nb = shape.n_blocks;
    let w: [&[K::W]; R] = std::array::from_fn(|i| &rows[(r + i) * nb..(r + i + 1) * nb]);
    let y: [&[K::Y]; A] = std::array::from_fn(|j| &acts[(t + j) * nb..(t + j + 1) * nb]);
    // SAFETY: the caller's contract, passed on.
    let sums = unsafe { K::tile(w, y) };
    for (i, row) in sums.iter().enumerate() {
        for (j, v) in row.iter().enumerate() {
            out[(r + i) * shape.n_act + t + j] = *v;
        }
    }
}

/// Dequantizes one row of `wt` blocks into `out` (as llama.cpp's `dequantize_row_*`).
pub(crate) fn dequantize_row(wt: WeightType, row: &[u8], out: &mut [f32]) {
    match wt {
        WeightType::Q4_1 => scalar::dequantize_q4_1(blocks(row), out),
        WeightType::Q8_0 => scalar::dequantize_q8_0(blocks(row), out),
        WeightType::Q4K => scalar::dequantize_q4_k(blocks(row), out),
        WeightType::Q6K => scalar::dequantize_q6_k(blocks(row), out),
    }
}

/// `x` rounded to f16 (round half to even), as bits.
pub(crate) fn to_f16(x: &[f32], out: &mut [u16]) {
    debug_assert_eq!(x.len(), out.len());
    #[cfg(target_arch = "x86_64")]
    if simd() {
        // SAFETY: the CPU has AVX2, FMA and F16C (checked).
        unsafe { x86::to_f16(x, out) };
        return;
    }
    scalar::to_f16(x, out);
}

/// f16 bits widened to f32.
pub(crate) fn from_f16(x: &[u16], out: &mut [f32]) {
    debug_assert_eq!(x.len(), out.len());
    scalar::from_f16(x, out);
}

/// Dot product of two f16 vectors, summed in f32 like ggml's `ggml_vec_dot_f16`.
pub(crate) fn dot_f16(a: &[u16], b: &[u16]) -> f32 {
    debug_assert_eq!(a.len(), b.len());
    #[cfg(target_arch = "x86_64")]
    if simd() {
        // SAFETY: the CPU has AVX2, FMA and F16C (checked).
        return unsafe { x86::dot_f16(a, b) };
    }
    scalar::dot_f16(a, b)
}

/// `y = f16(y + x * v)` element-wise, with a fused multiply-add (ggml's `ggml_vec_mad_f16`).
pub(crate) fn mad_f16(y: &mut [u16], x: &[u16], v: f32) {
    debug_assert_eq!(x.len(), y.len());
    #[cfg(target_arch = "x86_64")]
    if simd() {
        // SAFETY: the CPU has AVX2, FMA and F16C (checked).
        unsafe { x86::mad_f16(y, x, v) };
        return;
    }
    scalar::mad_f16(y, x, v);
}

/// `y = f16(y * v)` element-wise (ggml's `ggml_vec_scale_f16`).
pub(crate) fn scale_f16(y: &mut [u16], v: f32) {
    #[cfg(target_arch = "x86_64")]
    if simd() {
        // SAFETY: the CPU has AVX2, FMA and F16C (checked).
        unsafe { x86::scale_f16(y, v) };
        return;
    }
    scalar::scale_f16(y, v);
}
