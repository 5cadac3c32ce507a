//! Micro-benchmark of the quantized dot products: `dot_rows` for every weight type, supported
//! SIMD level and tile shape, on a matrix the shape of SmolLM2-135M's `ffn_down` (576 rows of
//! 1536 values), against one activation row (decoding) and sixteen (prompt processing).
//!
//! `cargo bench -p llmkit-local --bench kernels` (add `-- --sample-count 10` for a quick run,
//! or a filter such as `-- decode`); `benches/local/README.md` has the figures. The throughput
//! column counts weight bytes read, so it compares with memory bandwidth.
//!
//! The kernels are compiled into this benchmark from the crate's source (they are private to
//! the library), so it measures exactly the code the engine runs.

// A benchmark or example: a failed unwrap ends the run, which is what it should do.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fmt;

use divan::Bencher;
use divan::counter::BytesCount;

#[allow(dead_code, unreachable_pub)]
#[path = "../src/kernels/mod.rs"]
mod kernels;

use kernels::{ActType, SimdLevel, Tile, WeightType, blocks};

/// Rows and columns of the benchmarked matrix.
const ROWS: usize = 576;
const COLS: usize = 1536;

/// One benchmarked configuration.
#[derive(Debug, Clone, Copy)]
struct Case {
    wt: WeightType,
    level: SimdLevel,
    tile: Tile,
    /// Whether `dot_rows` picks this shape for the case's activation count.
    default: bool,
}

impl fmt::Display for Case {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let tile = format!("{:?}", self.tile);
        let tile = tile.trim_start_matches('T');
        let mark = if self.default { " (default)" } else { "" };
        write!(f, "{:?} {:?} {tile}{mark}", self.wt, self.level)
    }
}

/// Every weight type × supported level × tile shape (one entry for `Scalar`, which has no
/// tiles).
fn cases(n_act: usize) -> Vec<Case> {
    let mut out = Vec::new();
    for wt in WeightType::ALL {
        for level in SimdLevel::ALL
            .into_iter()
            .filter(|&l| kernels::supported(l))
        {
            if level == SimdLevel::Scalar {
                out.push(Case {
                    wt,
                    level,
                    tile: Tile::T1x1,
                    default: true,
                });
                continue;
            }
            for tile in Tile::ALL {
                let default = tile == Tile::best(wt, n_act);
                out.push(Case {
                    wt,
                    level,
                    tile,
                    default,
                });
            }
        }
    }
    out
}

/// A deterministic pseudo-random byte sequence (SplitMix64).
fn random_bytes(n: usize, seed: u64) -> Vec<u8> {
    let mut s = seed;
    let mut out = Vec::with_capacity(n + 8);
    while out.len() < n {
        s = s.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = s;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        out.extend_from_slice(&(z ^ (z >> 31)).to_le_bytes());
    }
    out.truncate(n);
    out
}

/// A deterministic pseudo-random sequence in [-1, 1).
fn noise(n: usize, seed: u64) -> Vec<f32> {
    random_bytes(4 * n, seed)
        .chunks_exact(4)
        .map(|b| {
            let z = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
            (z >> 8) as f32 / (1u32 << 24) as f32 * 2.0 - 1.0
        })
        .collect()
}

/// `ROWS` rows of `wt` with random quants and small, normal scales (random scales could be
/// subnormal or infinite, which the real weights never are).
fn weights(wt: WeightType) -> Vec<u8> {
    let mut w = random_bytes(ROWS * COLS / wt.block_values() * wt.block_bytes(), 1);
    let d = half::f16::from_f32(1.0 / 64.0).to_le_bytes();
    match wt {
        WeightType::Q4_1 => blocks::blocks_mut::<blocks::BlockQ4_1>(&mut w)
            .iter_mut()
            .for_each(|b| (b.d, b.m) = (d, d)),
        WeightType::Q8_0 => {
            let x = noise(ROWS * COLS, 2);
            kernels::quantize(ActType::Q8_0, &x, &mut w);
        }
        WeightType::Q4K => blocks::blocks_mut::<blocks::BlockQ4K>(&mut w)
            .iter_mut()
            .for_each(|b| (b.d, b.dmin) = (d, d)),
        WeightType::Q6K => blocks::blocks_mut::<blocks::BlockQ6K>(&mut w)
            .iter_mut()
            .for_each(|b| b.d = d),
    }
    w
}

/// `n_act` activation rows for `wt`, quantized as the engine quantizes them.
fn activations(wt: WeightType, n_act: usize) -> Vec<u8> {
    let act = wt.act_type();
    let x = noise(n_act * COLS, 3);
    let mut out = vec![0u8; n_act * COLS / act.block_values() * act.block_bytes()];
    kernels::quantize(act, &x, &mut out);
    out
}

fn run(bencher: Bencher<'_, '_>, case: Case, n_act: usize) {
    let rows = weights(case.wt);
    let acts = activations(case.wt, n_act);
    let row_bytes = rows.len() / ROWS;
    let mut out = vec![0.0f32; ROWS * n_act];
    bencher
        .counter(BytesCount::new(rows.len()))
        .bench_local(|| {
            kernels::dot_rows_with(
                case.level,
                case.tile,
                case.wt,
                divan::black_box(&rows),
                row_bytes,
                divan::black_box(&acts),
                n_act,
                &mut out,
            );
            divan::black_box(&out);
        });
}

/// One activation row: a decoding step.
#[divan::bench(args = cases(1))]
fn decode(bencher: Bencher<'_, '_>, case: Case) {
    run(bencher, case, 1);
}

/// Sixteen activation rows: a slice of prompt processing.
#[divan::bench(args = cases(16))]
fn prefill_16(bencher: Bencher<'_, '_>, case: Case) {
    run(bencher, case, 16);
}

fn main() {
    divan::main();
}
