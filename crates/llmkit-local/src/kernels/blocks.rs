//! ggml's quantization blocks as typed `#[repr(C)]` structs of byte arrays (the file layout,
//! little-endian, alignment 1), each size asserted at compile time, and their safe casts from
//! and to the byte slices the memory-mapped weights and activation buffers are.

use bytemuck::{Pod, Zeroable};
use half::f16;

use super::kquants::QK_K;

/// Values per block of the 32-value formats.
pub(crate) const QK: usize = 32;

/// `block_q4_1`: 32 weights as `d * q + m`, with 4-bit `q`.
#[derive(Debug, Clone, Copy, Pod, Zeroable)]
#[repr(C)]
pub(crate) struct BlockQ4_1 {
    /// The scale (f16).
    pub(crate) d: [u8; 2],
    /// The minimum (f16).
    pub(crate) m: [u8; 2],
    /// Byte `j` holds value `j` in its low nibble and value `j + 16` in its high one.
    pub(crate) qs: [u8; QK / 2],
}

/// `block_q8_0`: 32 values as `d * q`, with signed 8-bit `q`.
#[derive(Debug, Clone, Copy, Pod, Zeroable)]
#[repr(C)]
pub(crate) struct BlockQ8_0 {
    /// The scale (f16).
    pub(crate) d: [u8; 2],
    /// The quants, as `i8`.
    pub(crate) qs: [u8; QK],
}

/// `block_q8_1`: a [`BlockQ8_0`] that also carries `d` times the sum of its quants (the
/// activation format of Q4_1 rows, whose minimum multiplies that sum).
#[derive(Debug, Clone, Copy, Pod, Zeroable)]
#[repr(C)]
pub(crate) struct BlockQ8_1 {
    /// The scale (f16).
    pub(crate) d: [u8; 2],
    /// `d * sum(qs)` (f16).
    pub(crate) s: [u8; 2],
    /// The quants, as `i8`.
    pub(crate) qs: [u8; QK],
}

/// `block_q4_K`: 256 weights in eight sub-blocks of 32, each with a 6-bit scale and a 6-bit
/// minimum (both times the block's `d` and `dmin`), and 4-bit quants.
#[derive(Debug, Clone, Copy, Pod, Zeroable)]
#[repr(C)]
pub(crate) struct BlockQ4K {
    /// The scale of the sub-block scales (f16).
    pub(crate) d: [u8; 2],
    /// The scale of the sub-block minimums (f16).
    pub(crate) dmin: [u8; 2],
    /// The eight scales and eight minimums, packed (see `kquants::unpack_scales`).
    pub(crate) scales: [u8; 12],
    /// Chunk `j` of 32 bytes holds sub-block `2j` in its low nibbles and `2j + 1` in its high.
    pub(crate) qs: [u8; QK_K / 2],
}

/// `block_q6_K`: 256 weights in sixteen sub-blocks of 16, each with a signed 8-bit scale, and
/// 6-bit quants stored as four low bits and two high bits, offset by 32.
#[derive(Debug, Clone, Copy, Pod, Zeroable)]
#[repr(C)]
pub(crate) struct BlockQ6K {
    /// The low four bits of every quant (see `kquants::q6`).
    pub(crate) ql: [u8; QK_K / 2],
    /// The high two bits of every quant, four quants a byte.
    pub(crate) qh: [u8; QK_K / 4],
    /// The sub-block scales, as `i8`.
    pub(crate) scales: [u8; QK_K / 16],
    /// The scale of the sub-block scales (f16).
    pub(crate) d: [u8; 2],
}

/// `block_q8_K`: 256 activations as `d * q`, with the sums of each 16 quants (the activation
/// format of K-quant rows).
#[derive(Debug, Clone, Copy, Pod, Zeroable)]
#[repr(C)]
pub(crate) struct BlockQ8K {
    /// The scale (f32).
    pub(crate) d: [u8; 4],
    /// The quants, as `i8`.
    pub(crate) qs: [u8; QK_K],
    /// `sum(qs[16i..16i + 16])` for each `i`, as `i16`.
    pub(crate) bsums: [u8; QK_K / 8],
}

// The sizes of ggml's `block_*` structs; a field of the wrong length fails the build.
const _: () = assert!(size_of::<BlockQ4_1>() == 20);
const _: () = assert!(size_of::<BlockQ8_0>() == 34);
const _: () = assert!(size_of::<BlockQ8_1>() == 36);
const _: () = assert!(size_of::<BlockQ4K>() == 144);
const _: () = assert!(size_of::<BlockQ6K>() == 210);
const _: () = assert!(size_of::<BlockQ8K>() == 292);

/// The little-endian f16 `bits`, widened.
#[inline]
pub(crate) fn f16_of(bits: [u8; 2]) -> f32 {
    f16::from_le_bytes(bits).to_f32()
}

/// `x` rounded to f16 (round half to even), little-endian.
#[inline]
pub(crate) fn f16_bytes(x: f32) -> [u8; 2] {
    f16::from_f32(x).to_le_bytes()
}

impl BlockQ4_1 {
    pub(crate) fn d(&self) -> f32 {
        f16_of(self.d)
    }

    pub(crate) fn m(&self) -> f32 {
        f16_of(self.m)
    }
}

impl BlockQ8_0 {
    pub(crate) fn d(&self) -> f32 {
        f16_of(self.d)
    }
}

impl BlockQ8_1 {
    pub(crate) fn d(&self) -> f32 {
        f16_of(self.d)
    }

    pub(crate) fn s(&self) -> f32 {
        f16_of(self.s)
    }
}

impl BlockQ4K {
    pub(crate) fn d(&self) -> f32 {
        f16_of(self.d)
    }

    pub(crate) fn dmin(&self) -> f32 {
        f16_of(self.dmin)
    }
}

impl BlockQ6K {
    pub(crate) fn d(&self) -> f32 {
        f16_of(self.d)
    }
}

impl BlockQ8K {
    pub(crate) fn d(&self) -> f32 {
        f32::from_le_bytes(self.d)
    }

    /// `bsums[i]`, widened.
    #[inline]
    pub(crate) fn bsum(&self, i: usize) -> i32 {
        i32::from(i16::from_le_bytes([
            self.bsums[2 * i],
            self.bsums[2 * i + 1],
        ]))
    }
}

/// The whole blocks at the start of `bytes` (a trailing partial block is left out, as
/// `chunks_exact` leaves it).
#[inline]
pub(crate) fn blocks<B: Pod>(bytes: &[u8]) -> &[B] {
    let whole = bytes.len() / size_of::<B>() * size_of::<B>();
    bytemuck::cast_slice(&bytes[..whole])
}

/// [`blocks`], mutable.
#[inline]
pub(crate) fn blocks_mut<B: Pod>(bytes: &mut [u8]) -> &mut [B] {
    let whole = bytes.len() / size_of::<B>() * size_of::<B>();
    bytemuck::cast_slice_mut(&mut bytes[..whole])
}
