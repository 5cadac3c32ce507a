//! ggml's K-quant format helpers, shared by the scalar and the SIMD kernels: the super-block
//! size, the unpacking of Q4_K's 6-bit scales and minimums, and the reading of one Q6_K quant.

/// Values per K-quant super-block.
pub(crate) const QK_K: usize = 256;

/// The eight 6-bit scales and the eight 6-bit mins of a Q4_K block's 12 packed bytes (ggml's
/// `get_scale_min_k4` for all eight sub-blocks at once).
#[inline]
pub(crate) fn unpack_scales(packed: &[u8; 12]) -> ([u8; 8], [u8; 8]) {
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

/// The six-bit quant of value `v` (0..128) of a 128-value chunk of a Q6_K block, unsigned:
/// `ql` and `qh` are the chunk's 64 low-nibble bytes and 32 high-pair bytes (and may run on).
#[inline]
pub(crate) fn q6(ql: &[u8], qh: &[u8], v: usize) -> i32 {
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
