//! The kernels' tests: one table over every weight type × supported SIMD level × tile shape
//! that asserts the bits of the reference kernels, on proptest-generated blocks and on extreme
//! quants; quantization and the f16 operations against their scalar definitions; the dot
//! products against f64 sums of the dequantized values; K-quants against candle's port of
//! ggml's quantizers.

use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::{Device, Tensor};
use half::f16;
use proptest::prelude::*;

use super::*;

/// A deterministic pseudo-random sequence in [-1, 1) (SplitMix64).
fn noise(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed;
    (0..n)
        .map(|_| {
            s = s.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = s;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^= z >> 31;
            ((z >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect()
}

/// The bits of one (row, activation) dot product that every SIMD level and tile shape must
/// give: the scalar K-quant kernels, and for Q4_1 and Q8_0 the scalar model of the SIMD lanes.
fn simd_reference(wt: WeightType, row: &[u8], act: &[u8]) -> f32 {
    match wt {
        WeightType::Q4_1 => scalar::lanes::dot_q4_1_q8_1(blocks(row), blocks(act)),
        WeightType::Q8_0 => scalar::lanes::dot_q8_0_q8_0(blocks(row), blocks(act)),
        WeightType::Q4K => scalar::dot_q4_k_q8_k(blocks(row), blocks(act)),
        WeightType::Q6K => scalar::dot_q6_k_q8_k(blocks(row), blocks(act)),
    }
}

/// The scalar fallback's result for one pair.
fn scalar_reference(wt: WeightType, row: &[u8], act: &[u8]) -> f32 {
    match wt {
        WeightType::Q4_1 => scalar::dot_q4_1_q8_1(blocks(row), blocks(act)),
        WeightType::Q8_0 => scalar::dot_q8_0_q8_0(blocks(row), blocks(act)),
        WeightType::Q4K => scalar::dot_q4_k_q8_k(blocks(row), blocks(act)),
        WeightType::Q6K => scalar::dot_q6_k_q8_k(blocks(row), blocks(act)),
    }
}

/// Checks [`dot_rows_with`] at every supported level in every tile shape against the
/// per-pair references, bit for bit.
fn check_table(wt: WeightType, rows: &[u8], row_bytes: usize, acts: &[u8], n_act: usize) {
    let n_rows = rows.len() / row_bytes;
    let act_bytes = acts.len() / n_act;
    for level in SimdLevel::ALL.into_iter().filter(|&l| supported(l)) {
        let reference = if level == SimdLevel::Scalar {
            scalar_reference
        } else {
            simd_reference
        };
        for tile in Tile::ALL {
            let mut out = vec![f32::NAN; n_rows * n_act];
            dot_rows_with(level, tile, wt, rows, row_bytes, acts, n_act, &mut out);
            for r in 0..n_rows {
                for t in 0..n_act {
                    let want = reference(
                        wt,
                        &rows[r * row_bytes..(r + 1) * row_bytes],
                        &acts[t * act_bytes..(t + 1) * act_bytes],
                    );
                    let got = out[r * n_act + t];
                    assert_eq!(
                        got.to_bits(),
                        want.to_bits(),
                        "{wt:?} {level:?} {tile:?}: row {r} of {n_rows}, activation {t} of \
                         {n_act}: {got} against {want}"
                    );
                }
            }
        }
    }
}

/// An f16 scale in [-1, 1) from two arbitrary bytes.
fn scale(bits: [u8; 2]) -> [u8; 2] {
    let x = f32::from(u16::from_le_bytes(bits)) / 32768.0 - 1.0;
    f16::from_f32(x).to_le_bytes()
}

/// Signed quants in ggml's range, -127..=127 (its quantizers never write -128, and the SIMD
/// sign trick assumes so).
fn clamp_i8(qs: &mut [u8]) {
    for q in qs {
        if *q == 0x80 {
            *q = 0x81;
        }
    }
}

/// Makes arbitrary bytes valid blocks of `wt`: finite scales of a sane size, quants in range.
fn valid_rows(wt: WeightType, bytes: &mut [u8]) {
    match wt {
        WeightType::Q4_1 => blocks_mut::<BlockQ4_1>(bytes).iter_mut().for_each(|b| {
            (b.d, b.m) = (scale(b.d), scale(b.m));
        }),
        WeightType::Q8_0 => valid_acts(ActType::Q8_0, bytes),
        WeightType::Q4K => blocks_mut::<BlockQ4K>(bytes).iter_mut().for_each(|b| {
            (b.d, b.dmin) = (scale(b.d), scale(b.dmin));
        }),
        WeightType::Q6K => blocks_mut::<BlockQ6K>(bytes)
            .iter_mut()
            .for_each(|b| b.d = scale(b.d)),
    }
}

/// Makes arbitrary bytes valid `act` blocks (Q8_K's sums agree with its quants).
fn valid_acts(act: ActType, bytes: &mut [u8]) {
    match act {
        ActType::Q8_0 => blocks_mut::<BlockQ8_0>(bytes).iter_mut().for_each(|b| {
            b.d = scale(b.d);
            clamp_i8(&mut b.qs);
        }),
        ActType::Q8_1 => blocks_mut::<BlockQ8_1>(bytes).iter_mut().for_each(|b| {
            (b.d, b.s) = (scale(b.d), scale(b.s));
            clamp_i8(&mut b.qs);
        }),
        ActType::Q8K => blocks_mut::<BlockQ8K>(bytes).iter_mut().for_each(|b| {
            let d = f16_of(scale([b.d[0], b.d[1]])) / 64.0;
            b.d = d.to_le_bytes();
            clamp_i8(&mut b.qs);
            for (g, sum) in b.qs.chunks_exact(16).zip(b.bsums.chunks_exact_mut(2)) {
                let s: i32 = g.iter().map(|&q| i32::from(q as i8)).sum();
                sum.copy_from_slice(&(s as i16).to_le_bytes());
            }
        }),
    }
}

use blocks::f16_of;

/// Up to 19 rows (8-, 4- and 2-row tiles plus leftovers) of up to 3 blocks against up to 5
/// activations (2- and 4-activation tiles plus leftovers), as raw bytes for the largest
/// formats; each weight type takes what it needs from the front.
fn table_case() -> impl Strategy<Value = (usize, usize, usize, Vec<u8>, Vec<u8>)> {
    (1..=19usize, 1..=5usize, 1..=3usize).prop_flat_map(|(n_rows, n_act, blocks)| {
        let max_row = size_of::<BlockQ6K>().max(size_of::<BlockQ4K>());
        (
            Just(n_rows),
            Just(n_act),
            Just(blocks),
            proptest::collection::vec(any::<u8>(), n_rows * blocks * max_row),
            proptest::collection::vec(any::<u8>(), n_act * blocks * size_of::<BlockQ8K>()),
        )
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn every_type_level_and_tile_gives_the_reference_bits(
        (n_rows, n_act, blocks, raw_rows, raw_acts) in table_case()
    ) {
        for wt in WeightType::ALL {
            let row_bytes = blocks * wt.block_bytes();
            let act_bytes = blocks * wt.act_type().block_bytes();
            let mut rows = raw_rows[..n_rows * row_bytes].to_vec();
            let mut acts = raw_acts[..n_act * act_bytes].to_vec();
            valid_rows(wt, &mut rows);
            valid_acts(wt.act_type(), &mut acts);
            check_table(wt, &rows, row_bytes, &acts, n_act);
        }
    }
}

#[test]
fn extreme_quants_give_the_reference_bits() {
    // The largest pair sums the byte kernels form: all-15 nibbles, all-63 six-bit quants and
    // ±127 weights against ±127 activations, with the largest scales.
    let (n_rows, n_act, blocks) = (19, 5, 2);
    for wt in WeightType::ALL {
        let mut rows = vec![0u8; n_rows * blocks * wt.block_bytes()];
        let one = f16::from_f32(1.0).to_le_bytes();
        match wt {
            WeightType::Q4_1 => blocks_mut::<BlockQ4_1>(&mut rows).iter_mut().for_each(|b| {
                *b = BlockQ4_1 {
                    d: one,
                    m: one,
                    qs: [0xff; 16],
                }
            }),
            WeightType::Q8_0 => blocks_mut::<BlockQ8_0>(&mut rows)
                .iter_mut()
                .enumerate()
                .for_each(|(i, b)| {
                    let q = if i % 2 == 0 { 127i8 } else { -127 };
                    *b = BlockQ8_0 {
                        d: one,
                        qs: [q as u8; 32],
                    };
                }),
            WeightType::Q4K => blocks_mut::<BlockQ4K>(&mut rows).iter_mut().for_each(|b| {
                *b = BlockQ4K {
                    d: one,
                    dmin: one,
                    scales: [0xff; 12],
                    qs: [0xff; 128],
                };
            }),
            WeightType::Q6K => blocks_mut::<BlockQ6K>(&mut rows)
                .iter_mut()
                .enumerate()
                .for_each(|(i, b)| {
                    let s = if i % 2 == 0 { 127i8 } else { -128 };
                    *b = BlockQ6K {
                        ql: [0xff; 128],
                        qh: [0xff; 64],
                        scales: [s as u8; 16],
                        d: one,
                    };
                }),
        }
        let act = wt.act_type();
        let acts: Vec<u8> = (0..n_act as u64)
            .flat_map(|t| {
                let mut x = noise(blocks * act.block_values(), 800 + t);
                x.iter_mut()
                    .for_each(|v| *v = if *v < 0.0 { -1.0 } else { 1.0 });
                let mut out = vec![0u8; blocks * act.block_bytes()];
                quantize(act, &x, &mut out);
                out
            })
            .collect();
        check_table(wt, &rows, blocks * wt.block_bytes(), &acts, n_act);
    }
}

/// ggml's `quantize_row_q4_1_ref`, to make Q4_1 rows from real values.
fn q4_1_row(x: &[f32]) -> Vec<u8> {
    let mut out = vec![0u8; x.len() / QK * size_of::<BlockQ4_1>()];
    for (xs, b) in x.chunks_exact(QK).zip(blocks_mut::<BlockQ4_1>(&mut out)) {
        let min = xs.iter().copied().fold(f32::INFINITY, f32::min);
        let max = xs.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let d = (max - min) / 15.0;
        let id = if d != 0.0 { 1.0 / d } else { 0.0 };
        b.d = f16::from_f32(d).to_le_bytes();
        b.m = f16::from_f32(min).to_le_bytes();
        for j in 0..QK / 2 {
            let lo = (((xs[j] - min) * id + 0.5) as u8).min(15);
            let hi = (((xs[j + QK / 2] - min) * id + 0.5) as u8).min(15);
            b.qs[j] = lo | (hi << 4);
        }
    }
    out
}

/// `x` quantized by candle (a port of ggml's quantizers) into `dtype`'s bytes.
fn candle_quantized(dtype: GgmlDType, x: &[f32]) -> Vec<u8> {
    let t = Tensor::from_vec(x.to_vec(), (1, x.len()), &Device::Cpu).unwrap();
    QTensor::quantize(&t, dtype)
        .unwrap()
        .data()
        .unwrap()
        .to_vec()
}

fn candle_dequantized(dtype: GgmlDType, x: &[f32]) -> Vec<f32> {
    let t = Tensor::from_vec(x.to_vec(), (1, x.len()), &Device::Cpu).unwrap();
    let q = QTensor::quantize(&t, dtype).unwrap();
    q.dequantize(&Device::Cpu)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1()
        .unwrap()
}

fn quantized(act: ActType, x: &[f32]) -> Vec<u8> {
    let mut out = vec![0u8; x.len() / act.block_values() * act.block_bytes()];
    quantize(act, x, &mut out);
    out
}

/// Activations dequantized: `d * q` per block.
fn act_values(act: ActType, bytes: &[u8]) -> Vec<f32> {
    match act {
        ActType::Q8_0 => {
            let mut out = vec![0.0; bytes.len() / size_of::<BlockQ8_0>() * QK];
            dequantize_row(WeightType::Q8_0, bytes, &mut out);
            out
        }
        ActType::Q8_1 => blocks::<BlockQ8_1>(bytes)
            .iter()
            .flat_map(|b| b.qs.map(|q| f32::from(q as i8) * b.d()))
            .collect(),
        ActType::Q8K => blocks::<BlockQ8K>(bytes)
            .iter()
            .flat_map(|b| b.qs.map(|q| f32::from(q as i8) * b.d()))
            .collect(),
    }
}

#[test]
fn dot_products_match_f64_sums_of_the_dequantized_values() {
    for wt in WeightType::ALL {
        for seed in 0..6 {
            let n = 4 * QK_K;
            let w = noise(n, 100 + seed);
            let x = noise(n, 200 + seed);
            let row = match wt {
                WeightType::Q4_1 => q4_1_row(&w),
                WeightType::Q8_0 => quantized(ActType::Q8_0, &w),
                WeightType::Q4K => candle_quantized(GgmlDType::Q4K, &w),
                WeightType::Q6K => candle_quantized(GgmlDType::Q6K, &w),
            };
            let acts = quantized(wt.act_type(), &x);
            let mut wd = vec![0.0; n];
            dequantize_row(wt, &row, &mut wd);
            let xd = act_values(wt.act_type(), &acts);
            let exact: f64 = wd
                .iter()
                .zip(&xd)
                .map(|(p, q)| f64::from(*p) * f64::from(*q))
                .sum();
            let scale: f64 = wd
                .iter()
                .zip(&xd)
                .map(|(p, q)| f64::from((p * q).abs()))
                .sum();
            for level in [SimdLevel::Scalar, simd_level()] {
                let mut out = [0.0f32];
                let tile = Tile::best(wt, 1);
                dot_rows_with(level, tile, wt, &row, row.len(), &acts, 1, &mut out);
                assert!(
                    (f64::from(out[0]) - exact).abs() <= 1e-4 * scale.max(1.0),
                    "{wt:?} {level:?} seed {seed}: {} against {exact}",
                    out[0]
                );
            }
        }
    }
}

#[test]
fn simd_quantization_equals_the_scalar_reference() {
    let mut x = noise(32 * 12, 7);
    x[5] = 0.0;
    // A block of zeros quantizes to a zero scale.
    x[32..64].fill(0.0);
    let mut scalar_q8_0: Vec<BlockQ8_0> = vec![bytemuck::Zeroable::zeroed(); 12];
    scalar::quantize_q8_0(&x, &mut scalar_q8_0);
    assert_eq!(
        quantized(ActType::Q8_0, &x),
        bytemuck::cast_slice::<_, u8>(&scalar_q8_0)
    );
    let mut scalar_q8_1: Vec<BlockQ8_1> = vec![bytemuck::Zeroable::zeroed(); 12];
    scalar::quantize_q8_1(&x, &mut scalar_q8_1);
    assert_eq!(
        quantized(ActType::Q8_1, &x),
        bytemuck::cast_slice::<_, u8>(&scalar_q8_1)
    );
}

#[test]
fn q8_quantization_round_trips_within_half_a_step() {
    let x = noise(64, 3);
    let q = quantized(ActType::Q8_0, &x);
    let mut back = vec![0.0; 64];
    dequantize_row(WeightType::Q8_0, &q, &mut back);
    for (block, (xs, bs)) in blocks::<BlockQ8_0>(&q)
        .iter()
        .zip(x.chunks(QK).zip(back.chunks(QK)))
    {
        let d = block.d();
        for (a, b) in xs.iter().zip(bs) {
            assert!((a - b).abs() <= d * 0.5 + 1e-3, "{a} vs {b}");
        }
    }
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
fn q8_k_quantization_matches_candle() {
    let mut x = noise(2 * QK_K, 3);
    x[300] = -2.5; // the largest magnitude is negative in the second block
    assert_eq!(
        quantized(ActType::Q8K, &x),
        candle_quantized(GgmlDType::Q8K, &x)
    );
    let mut zeros = vec![1u8; size_of::<BlockQ8K>()];
    quantize(ActType::Q8K, &[0.0; QK_K], &mut zeros);
    assert!(zeros.iter().all(|&b| b == 0));
}

#[test]
fn k_quant_dequantization_matches_candle() {
    let x = noise(3 * QK_K, 5);
    for (dtype, wt) in [
        (GgmlDType::Q4K, WeightType::Q4K),
        (GgmlDType::Q6K, WeightType::Q6K),
    ] {
        let mut ours = vec![0.0f32; x.len()];
        dequantize_row(wt, &candle_quantized(dtype, &x), &mut ours);
        let theirs = candle_dequantized(dtype, &x);
        for (i, (a, b)) in ours.iter().zip(&theirs).enumerate() {
            assert!(
                (a - b).abs() <= 1e-6 * b.abs().max(1.0),
                "{dtype:?} {i}: {a} vs {b}"
            );
        }
    }
}
