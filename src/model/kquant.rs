//! GGML's `Q4_K` blocks made as llama.cpp makes them (`quantize_row_q4_K_ref`): super-blocks of
//! 256 values in 8 sub-blocks of 32, each sub-block with a 6-bit scale and a 6-bit minimum
//! (`w = d·sc·q − dmin·m`, q in 0..=15), the scales and minimums searched per sub-block by
//! weighted least squares (`make_qkx2_quants`). candle's own `Q4_K` quantiser uses the older
//! unweighted search, whose error is larger on trained weights' outliers.

use half::f16;
use rayon::prelude::*;

/// Values per super-block.
pub const QK_K: usize = 256;
/// Bytes of one GGML `block_q4_K`: f16 d, f16 dmin, 12 bytes of packed 6-bit scales and
/// minimums, 128 bytes of nibbles.
pub const Q4K_BLOCK_BYTES: usize = 144;

/// `k` rounded up to whole super-blocks.
pub fn padded_k(k: usize) -> usize {
    k.div_ceil(QK_K) * QK_K
}

/// Quantises `x` (a whole number of super-blocks) to GGML `Q4_K` block bytes.
pub fn quantize_q4k(x: &[f32]) -> Vec<u8> {
    assert!(
        x.len().is_multiple_of(QK_K),
        "{} values are not whole super-blocks",
        x.len()
    );
    let mut out = vec![0u8; x.len() / QK_K * Q4K_BLOCK_BYTES];
    // The search is ~40 passes over each value: spread over the cores for a first load.
    x.par_chunks_exact(QK_K)
        .zip(out.par_chunks_exact_mut(Q4K_BLOCK_BYTES))
        .for_each(|(xb, yb)| quantize_block(xb, yb));
    out
}

fn nearest(v: f32) -> i32 {
    v.round() as i32
}

fn quantize_block(x: &[f32], y: &mut [u8]) {
    let mut scales = [0f32; 8];
    let mut mins = [0f32; 8];
    for (j, xs) in x.chunks_exact(32).enumerate() {
        let av = (xs.iter().map(|v| v * v).sum::<f32>() / 32.0).sqrt();
        let mut w = [0f32; 32];
        for (wi, &v) in w.iter_mut().zip(xs) {
            *wi = av + v.abs();
        }
        (scales[j], mins[j]) = make_qkx2(xs, &w);
    }
    let max_scale = scales.iter().fold(0f32, |a, &v| a.max(v));
    let max_min = mins.iter().fold(0f32, |a, &v| a.max(v));
    let inv_scale = if max_scale > 0.0 {
        63.0 / max_scale
    } else {
        0.0
    };
    let inv_min = if max_min > 0.0 { 63.0 / max_min } else { 0.0 };
    let mut ls = [0u8; 8];
    let mut lm = [0u8; 8];
    for j in 0..8 {
        ls[j] = nearest(inv_scale * scales[j]).clamp(0, 63) as u8;
        lm[j] = nearest(inv_min * mins[j]).clamp(0, 63) as u8;
    }
    let d = f16::from_f32(max_scale / 63.0);
    let dmin = f16::from_f32(max_min / 63.0);
    y[0..2].copy_from_slice(&d.to_le_bytes());
    y[2..4].copy_from_slice(&dmin.to_le_bytes());
    let sc = &mut y[4..16];
    sc.fill(0);
    for j in 0..8 {
        if j < 4 {
            sc[j] = ls[j];
            sc[j + 4] = lm[j];
        } else {
            sc[j + 4] = (ls[j] & 0xf) | ((lm[j] & 0xf) << 4);
            sc[j - 4] |= (ls[j] >> 4) << 6;
            sc[j] |= (lm[j] >> 4) << 6;
        }
    }
    let mut l = [0u8; QK_K];
    for j in 0..8 {
        let dj = d.to_f32() * ls[j] as f32;
        if dj == 0.0 {
            continue;
        }
        let mj = dmin.to_f32() * lm[j] as f32;
        for i in 0..32 {
            l[32 * j + i] = nearest((x[32 * j + i] + mj) / dj).clamp(0, 15) as u8;
        }
    }
    let qs = &mut y[16..];
    for c in 0..4 {
        for i in 0..32 {
            qs[c * 32 + i] = l[64 * c + i] | (l[64 * c + 32 + i] << 4);
        }
    }
}

/// `(scale, min)` with `x ≈ scale·q − min`, q in 0..=15, min ≥ 0: GGML's `make_qkx2_quants`
/// with its `Q4_K` settings (21 candidate steps from `15 − 1` to `15 + 1`, squared error).
fn make_qkx2(x: &[f32], w: &[f32]) -> (f32, f32) {
    const NMAX: f32 = 15.0;
    let mut min = x.iter().fold(f32::INFINITY, |a, &v| a.min(v));
    let max = x.iter().fold(f32::NEG_INFINITY, |a, &v| a.max(v));
    let sum_w: f32 = w.iter().sum();
    let sum_x: f32 = w.iter().zip(x).map(|(a, b)| a * b).sum();
    if min > 0.0 {
        min = 0.0;
    }
    if max == min {
        return (0.0, -min);
    }
    let level = |iscale: f32, v: f32| nearest(iscale * (v - min)).clamp(0, 15) as f32;
    let mut iscale = NMAX / (max - min);
    let mut scale = 1.0 / iscale;
    let mut best: f32 = x
        .iter()
        .zip(w)
        .map(|(&v, &wi)| {
            let diff = scale * level(iscale, v) + min - v;
            wi * diff * diff
        })
        .sum();
    let mut best_min = min;
    for step in 0..=20 {
        iscale = (-1.0 + 0.1 * step as f32 + NMAX) / (max - min);
        let mut q = [0f32; 32];
        let (mut sum_l, mut sum_l2, mut sum_xl) = (0f32, 0f32, 0f32);
        for ((qi, &v), &wi) in q.iter_mut().zip(x).zip(w) {
            *qi = level(iscale, v);
            sum_l += wi * *qi;
            sum_l2 += wi * *qi * *qi;
            sum_xl += wi * *qi * v;
        }
        let det = sum_w * sum_l2 - sum_l * sum_l;
        if det > 0.0 {
            let mut this_scale = (sum_w * sum_xl - sum_x * sum_l) / det;
            let mut this_min = (sum_l2 * sum_x - sum_l * sum_xl) / det;
            if this_min > 0.0 {
                this_min = 0.0;
                this_scale = sum_xl / sum_l2;
            }
            let err: f32 = q
                .iter()
                .zip(x)
                .zip(w)
                .map(|((&qi, &v), &wi)| {
                    let diff = this_scale * qi + this_min - v;
                    wi * diff * diff
                })
                .sum();
            if err < best {
                best = err;
                scale = this_scale;
                best_min = this_min;
            }
        }
    }
    (scale, -best_min)
}

/// Sub-block `j`'s 6-bit scale and minimum from a block's 12 packed bytes (GGML's
/// `get_scale_min_k4`).
pub fn scale_min(j: usize, sc: &[u8]) -> (u8, u8) {
    if j < 4 {
        (sc[j] & 63, sc[j + 4] & 63)
    } else {
        (
            (sc[j + 4] & 0xf) | ((sc[j - 4] >> 6) << 4),
            (sc[j + 4] >> 4) | ((sc[j] >> 6) << 4),
        )
    }
}

/// Value `i` (0..256) of a `Q4_K` block as its 4-bit level.
pub fn level(block: &[u8], i: usize) -> u8 {
    let (sub, e) = (i / 32, i % 32);
    let byte = block[16 + (sub / 2) * 32 + e];
    if sub % 2 == 0 {
        byte & 0xf
    } else {
        byte >> 4
    }
}

/// Dequantises `Q4_K` block bytes (for tests and references).
pub fn dequantize_q4k(bytes: &[u8]) -> Vec<f32> {
    let mut out = Vec::with_capacity(bytes.len() / Q4K_BLOCK_BYTES * QK_K);
    for b in bytes.chunks_exact(Q4K_BLOCK_BYTES) {
        let d = f16::from_le_bytes([b[0], b[1]]).to_f32();
        let dmin = f16::from_le_bytes([b[2], b[3]]).to_f32();
        for i in 0..QK_K {
            let (sc, m) = scale_min(i / 32, &b[4..16]);
            out.push(d * sc as f32 * level(b, i) as f32 - dmin * m as f32);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::quantized::{GgmlDType, QTensor};
    use candle_core::{Device, Tensor};

    /// Bell-shaped values (a sum of four uniform ones) with an outlier every 97, as trained
    /// weights have.
    fn values(n: usize, seed: u64) -> Vec<f32> {
        let mut s = seed;
        let mut uniform = move || {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (s >> 40) as f32 / (1u64 << 23) as f32 - 1.0
        };
        (0..n)
            .map(|i| {
                let v = (0..4).map(|_| uniform()).sum::<f32>() * 0.03;
                if i % 97 == 0 {
                    v * 20.0
                } else {
                    v
                }
            })
            .collect()
    }

    #[test]
    fn candle_reads_our_blocks_as_we_do() {
        let x = values(4 * QK_K, 3);
        let bytes = quantize_q4k(&x);
        let ours = dequantize_q4k(&bytes);
        let t =
            crate::model::quant::qtensor(bytes, (4, QK_K), GgmlDType::Q4K, &Device::Cpu).unwrap();
        let theirs = t
            .dequantize(&Device::Cpu)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        assert_eq!(ours, theirs);
    }

    #[test]
    fn the_weighted_search_errs_less_than_candles_quantiser() {
        // In GGML's measure: squared error weighted by rms(sub-block) + |x|, which leans
        // towards the large weights that matter most to a product.
        let x = values(64 * QK_K, 5);
        let weight: Vec<f64> = x
            .chunks_exact(32)
            .flat_map(|s| {
                let rms = (s.iter().map(|v| (v * v) as f64).sum::<f64>() / 32.0).sqrt();
                s.iter().map(move |v| rms + v.abs() as f64)
            })
            .collect();
        let err = |d: &[f32]| -> f64 {
            d.iter()
                .zip(&x)
                .zip(&weight)
                .map(|((a, b), w)| w * ((a - b) as f64).powi(2))
                .sum()
        };
        let ours = err(&dequantize_q4k(&quantize_q4k(&x)));
        let t = Tensor::from_vec(x.clone(), (64, QK_K), &Device::Cpu).unwrap();
        let q = QTensor::quantize(&t, GgmlDType::Q4K).unwrap();
        let theirs = err(&q
            .dequantize(&Device::Cpu)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap());
        assert!(ours < theirs, "ours {ours} vs candle's {theirs}");
    }

    #[test]
    fn constant_and_zero_blocks_round_trip() {
        for c in [0.0f32, -0.5, 0.25] {
            let x = vec![c; QK_K];
            let d = dequantize_q4k(&quantize_q4k(&x));
            for v in d {
                assert!((v - c).abs() <= 0.01, "{c}: {v}");
            }
        }
    }
}
