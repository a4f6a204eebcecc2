//! The attention softmax on the CPU, fused (and, for a few query rows, the whole attention in
//! one pass: [`attend_few`]): `softmax(scale × scores)` over the keys each query
//! row may see (causal, and within a sliding window), in one pass per row that writes zeros
//! for the rest. It stands in for scaling, adding a `[rows, keys]` mask and candle's softmax,
//! which made four score-sized buffers and a mask per layer; at 512 tokens a layer's scores
//! are 34 MB.

use candle_core::{DType, Result, Tensor};
use rayon::prelude::*;

use super::gpu::RowPlacement;

mod few;

pub use few::{attend_few, FEW_ROWS};

/// The fused softmax of `scores: [b, kv_heads, rows, keys]` (f32, on the CPU), rows placed as
/// `at` says; `None` for anything else (the caller's general path handles it).
pub fn causal_softmax(scores: &Tensor, scale: f64, at: RowPlacement) -> Result<Option<Tensor>> {
    if !scores.device().is_cpu() || scores.dtype() != DType::F32 || scale <= 0.0 {
        return Ok(None);
    }
    let (b, heads, rows, keys) = scores.dims4()?;
    if rows != at.rows || at.tokens == 0 || at.prefix + at.tokens != keys {
        return Ok(None);
    }
    let scores = scores.contiguous()?;
    let (storage, layout) = scores.storage_and_layout();
    let n = b * heads * rows * keys;
    let Some(values) = f32_values(&storage, layout, n) else {
        return Ok(None);
    };
    let mut out = vec![0f32; n];
    let scale = scale as f32;
    let fast = avx2_fma();
    out.par_chunks_mut(keys)
        .zip(values.par_chunks(keys))
        .enumerate()
        .for_each(|(i, (dst, src))| {
            let (lo, hi) = visible(at, i % rows);
            let (src, dst) = (&src[lo..=hi], &mut dst[lo..=hi]);
            #[cfg(target_arch = "x86_64")]
            if fast {
                // SAFETY: AVX2 and FMA were detected.
                return unsafe { row_softmax_avx2(src, dst, scale) };
            }
            row_softmax(src, dst, scale);
        });
    Ok(Some(Tensor::from_vec(
        out,
        (b, heads, rows, keys),
        scores.device(),
    )?))
}

/// The values of a CPU f32 storage.
pub(super) fn f32s(s: &candle_core::Storage) -> Option<&[f32]> {
    match s {
        candle_core::Storage::Cpu(candle_core::CpuStorage::F32(all)) => Some(all),
        _ => None,
    }
}

/// The `n` values of a CPU f32 storage from where `l` starts (`None` for other storage, or
/// where it holds fewer).
pub(super) fn f32_values<'a>(
    s: &'a candle_core::Storage,
    l: &candle_core::Layout,
    n: usize,
) -> Option<&'a [f32]> {
    f32s(s)?.get(l.start_offset()..l.start_offset().checked_add(n)?)
}

/// `eˣ` for `x ≤ 0` (a softmax's shifted scores) within 2 ulp, in straight-line arithmetic that
/// the compiler vectorises, where the library's `expf` is a call per value: `x = n·ln 2 + r`,
/// `eʳ` by Cephes' polynomial on |r| ≤ ln 2 / 2, `2ⁿ` built in the exponent bits. Below -87
/// (under f32's smallest normal) it is 0.
#[inline(always)]
pub(super) fn exp_nonpositive(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    // ln 2 in two parts, so that n·ln 2 is exact enough for r.
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    // Adding and taking away 1.5·2²³ rounds to the nearest integer.
    const ROUND: f32 = 12_582_912.0;
    let under = x < -87.0;
    let x = x.clamp(-87.0, 0.0);
    let shifted = x * LOG2E + ROUND;
    let n = shifted - ROUND;
    let r = x - n * LN2_HI - n * LN2_LO;
    let mut p = 1.987_569_2e-4f32;
    p = p * r + 1.398_199_9e-3;
    p = p * r + 8.333_452e-3;
    p = p * r + 4.166_579_6e-2;
    p = p * r + 1.666_666_5e-1;
    p = p * r + 0.5;
    let er = p * r * r + r + 1.0;
    // n (in -126..=0) sits in the low bits of `shifted`, whose exponent is ROUND's: 2ⁿ's
    // exponent field from integer arithmetic alone. (`n as i32` saturates, which the compiler
    // does one lane at a time.)
    let biased = shifted
        .to_bits()
        .wrapping_sub(ROUND.to_bits())
        .wrapping_add(127);
    let two_n = f32::from_bits(biased << 23);
    if under {
        0.0
    } else {
        er * two_n
    }
}

/// The keys `lo..=hi` that block row `r` may see.
pub(super) fn visible(at: RowPlacement, r: usize) -> (usize, usize) {
    let q = at.prefix + (at.first_row + r) % at.tokens;
    let lo = at.window.map_or(0, |w| (q + 1).saturating_sub(w));
    (lo, q)
}

/// Whether the vectorised paths of this file can use AVX2 and FMA here.
pub(super) fn avx2_fma() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
    }
    #[cfg(not(target_arch = "x86_64"))]
    false
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn row_softmax_avx2(src: &[f32], dst: &mut [f32], scale: f32) {
    row_softmax(src, dst, scale)
}

/// `dst = softmax(scale × src)`: the exponentials in one loop the compiler vectorises, their sum
/// in another.
#[inline(always)]
fn row_softmax(src: &[f32], dst: &mut [f32], scale: f32) {
    let max = src.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    for (d, &s) in dst.iter_mut().zip(src) {
        *d = exp_nonpositive((s - max) * scale);
    }
    let sum: f32 = dst.iter().sum();
    let inv = 1.0 / sum;
    for d in dst.iter_mut() {
        *d *= inv;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    /// The general path: scale, an additive mask by position, candle's softmax.
    fn reference(scores: &Tensor, scale: f64, at: RowPlacement) -> Tensor {
        let (_, _, rows, keys) = scores.dims4().unwrap();
        let mask: Vec<f32> = (0..rows)
            .flat_map(|r| {
                let (lo, hi) = visible(at, r);
                (0..keys).map(move |k| {
                    if (lo..=hi).contains(&k) {
                        0.0
                    } else {
                        f32::NEG_INFINITY
                    }
                })
            })
            .collect();
        let mask = Tensor::from_vec(mask, (rows, keys), &Device::Cpu).unwrap();
        let s = (scores * scale).unwrap().broadcast_add(&mask).unwrap();
        candle_nn::ops::softmax_last_dim(&s).unwrap()
    }

    pub(super) fn max_abs_diff(a: &Tensor, b: &Tensor) -> f32 {
        (a - b)
            .unwrap()
            .abs()
            .unwrap()
            .flatten_all()
            .unwrap()
            .max(0)
            .unwrap()
            .to_scalar::<f32>()
            .unwrap()
    }

    #[test]
    fn equals_scaling_masking_and_softmax() {
        let dev = Device::Cpu;
        // (tokens, prefix, n_rep, window, block rows, first row)
        let cases = [
            (7, 0, 1, None, 7, 0),
            (5, 3, 4, None, 20, 0),
            (6, 0, 2, Some(3), 12, 0),
            (4, 9, 3, Some(5), 5, 6),
            (1, 12, 4, Some(64), 4, 0),
            (9, 2, 2, Some(1), 7, 10),
        ];
        for (tokens, prefix, n_rep, window, rows, first_row) in cases {
            let keys = prefix + tokens;
            assert!(first_row + rows <= n_rep * tokens);
            let at = RowPlacement {
                rows,
                first_row,
                tokens,
                prefix,
                window,
            };
            let scores = Tensor::randn(0f32, 3.0, (2, 3, rows, keys), &dev).unwrap();
            let got = causal_softmax(&scores, 0.125, at).unwrap().expect("fused");
            let want = reference(&scores, 0.125, at);
            let diff = max_abs_diff(&got, &want);
            assert!(diff < 1e-6, "{tokens} {prefix} {n_rep} {window:?}: {diff}");
        }
    }

    #[test]
    fn exp_of_shifted_scores_is_within_two_ulp() {
        let mut worst = 0f32;
        for i in 0..=200_000 {
            let x = -90.0 * i as f32 / 200_000.0;
            let want = x.exp();
            let got = exp_nonpositive(x);
            if x < -87.0 {
                assert_eq!(got, 0.0);
                continue;
            }
            let ulp = f32::from_bits(want.to_bits() + 1) - want;
            worst = worst.max((got - want).abs() / ulp);
        }
        assert!(worst <= 2.0, "{worst} ulp");
        assert_eq!(exp_nonpositive(0.0), 1.0);
        assert_eq!(exp_nonpositive(-1000.0), 0.0);
        assert_eq!(exp_nonpositive(f32::NEG_INFINITY), 0.0);
    }

    #[test]
    fn other_inputs_take_the_general_path() {
        let dev = Device::Cpu;
        let at = RowPlacement {
            rows: 2,
            first_row: 0,
            tokens: 2,
            prefix: 0,
            window: None,
        };
        let bf16 = Tensor::zeros((1, 1, 2, 2), DType::BF16, &dev).unwrap();
        assert!(causal_softmax(&bf16, 1.0, at).unwrap().is_none());
        let wrong_keys = Tensor::zeros((1, 1, 2, 3), DType::F32, &dev).unwrap();
        assert!(causal_softmax(&wrong_keys, 1.0, at).unwrap().is_none());
    }
}
