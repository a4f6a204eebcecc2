//! The attention softmax on the CPU, fused (and, for a few query rows, the whole attention in
//! one pass: [`attend_few`]): `softmax(scale × scores)` over the keys each query
//! row may see (causal, and within a sliding window), in one pass per row that writes zeros
//! for the rest. It stands in for scaling, adding a `[rows, keys]` mask and candle's softmax,
//! which made four score-sized buffers and a mask per layer; at 512 tokens a layer's scores
//! are 34 MB.

use candle_core::{DType, Result, Tensor};
use rayon::prelude::*;

use super::gpu::RowPlacement;

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
    let candle_core::Storage::Cpu(candle_core::CpuStorage::F32(all)) = &*storage else {
        return Ok(None);
    };
    let n = b * heads * rows * keys;
    let start = layout.start_offset();
    let Some(values) = all.get(start..start + n) else {
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

/// Query rows (per batch and key head) up to which [`attend_few`] is used.
pub const FEW_ROWS: usize = 64;

/// The whole attention for a few query rows, as when a word is appended to a cached input:
/// `softmax(scale × q·kᵀ)·v` over the keys each row may see, for `q: [b, kv_heads, rows, d]`
/// (rows placed as `at` says, all of a group's rows) and `k`, `v: [b, kv_heads, keys, d]`, f32
/// on the CPU; `None` for anything else. The general path's three small batched products cost
/// more in thread hand-offs than in arithmetic here (about a sixth of an append at 32 layers).
pub fn attend_few(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    scale: f64,
    at: RowPlacement,
) -> Result<Option<Tensor>> {
    let all_f32 = [q, k, v]
        .iter()
        .all(|t| t.device().is_cpu() && t.dtype() == DType::F32 && t.is_contiguous());
    if !all_f32 || scale <= 0.0 {
        return Ok(None);
    }
    let (b, heads, rows, d) = q.dims4()?;
    let (kb, kh, keys, kd) = k.dims4()?;
    if (kb, kh, kd) != (b, heads, d)
        || v.dims4()? != (b, heads, keys, d)
        || rows != at.rows
        || rows > FEW_ROWS
        || at.first_row != 0
        || at.tokens == 0
        || at.prefix + at.tokens != keys
    {
        return Ok(None);
    }
    let (qs, ql) = q.storage_and_layout();
    let (ks, kl) = k.storage_and_layout();
    let (vs, vl) = v.storage_and_layout();
    fn slice<'a>(
        s: &'a candle_core::Storage,
        l: &candle_core::Layout,
        n: usize,
    ) -> Option<&'a [f32]> {
        match s {
            candle_core::Storage::Cpu(candle_core::CpuStorage::F32(all)) => {
                all.get(l.start_offset()..l.start_offset() + n)
            }
            _ => None,
        }
    }
    let (Some(qv), Some(kv), Some(vv)) = (
        slice(&qs, ql, b * heads * rows * d),
        slice(&ks, kl, b * heads * keys * d),
        slice(&vs, vl, b * heads * keys * d),
    ) else {
        return Ok(None);
    };
    let mut out = vec![0f32; b * heads * rows * d];
    let scale = scale as f32;
    out.par_chunks_mut(rows * d).enumerate().for_each_init(
        || vec![0f32; keys],
        |probs, (g, dst)| {
            let qg = &qv[g * rows * d..(g + 1) * rows * d];
            let kg = &kv[g * keys * d..(g + 1) * keys * d];
            let vg = &vv[g * keys * d..(g + 1) * keys * d];
            attend_group(qg, kg, vg, dst, probs, d, scale, at);
        },
    );
    Ok(Some(Tensor::from_vec(
        out,
        (b, heads, rows, d),
        q.device(),
    )?))
}

/// One (batch, key head) group of [`attend_few`]: AVX2 with FMA where the processor has them (the
/// loops are written for the compiler to vectorise), else the same code for the baseline.
#[allow(clippy::too_many_arguments)]
fn attend_group(
    q: &[f32],
    k: &[f32],
    v: &[f32],
    out: &mut [f32],
    probs: &mut [f32],
    d: usize,
    scale: f32,
    at: RowPlacement,
) {
    #[cfg(target_arch = "x86_64")]
    if avx2_fma() {
        // SAFETY: AVX2 and FMA were just detected.
        return unsafe { attend_group_avx2(q, k, v, out, probs, d, scale, at) };
    }
    attend_group_any::<false>(q, k, v, out, probs, d, scale, at)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[allow(clippy::too_many_arguments)]
unsafe fn attend_group_avx2(
    q: &[f32],
    k: &[f32],
    v: &[f32],
    out: &mut [f32],
    probs: &mut [f32],
    d: usize,
    scale: f32,
    at: RowPlacement,
) {
    attend_group_any::<true>(q, k, v, out, probs, d, scale, at)
}

/// With `FMA` the products are fused multiply-adds (one instruction where the processor has
/// them, a slow library call where it has not: only the FMA build sets it).
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn attend_group_any<const FMA: bool>(
    q: &[f32],
    k: &[f32],
    v: &[f32],
    out: &mut [f32],
    probs: &mut [f32],
    d: usize,
    scale: f32,
    at: RowPlacement,
) {
    for (r, (qr, or)) in q.chunks_exact(d).zip(out.chunks_exact_mut(d)).enumerate() {
        let (lo, hi) = visible(at, r);
        let p = &mut probs[lo..=hi];
        for (pj, kj) in p.iter_mut().zip(k[lo * d..(hi + 1) * d].chunks_exact(d)) {
            *pj = dot::<FMA>(qr, kj);
        }
        let max = p.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        for pj in p.iter_mut() {
            *pj = exp_nonpositive((*pj - max) * scale);
        }
        let sum: f32 = p.iter().sum();
        let inv = 1.0 / sum;
        or.fill(0.0);
        for (&pj, vj) in p.iter().zip(v[lo * d..(hi + 1) * d].chunks_exact(d)) {
            let w = pj * inv;
            for (o, &x) in or.iter_mut().zip(vj) {
                *o = if FMA { w.mul_add(x, *o) } else { *o + w * x };
            }
        }
    }
}

/// `eˣ` for `x ≤ 0` (a softmax's shifted scores) within 2 ulp, in straight-line arithmetic that
/// the compiler vectorises, where the library's `expf` is a call per value: `x = n·ln 2 + r`,
/// `eʳ` by Cephes' polynomial on |r| ≤ ln 2 / 2, `2ⁿ` built in the exponent bits. Below -87
/// (under f32's smallest normal) it is 0.
#[inline(always)]
fn exp_nonpositive(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    // ln 2 in two parts, so that n·ln 2 is exact enough for r.
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    // Adding and taking away 1.5·2²³ rounds to the nearest integer.
    const ROUND: f32 = 12_582_912.0;
    let under = x < -87.0;
    let x = x.clamp(-87.0, 0.0);
    let n = (x * LOG2E + ROUND) - ROUND;
    let r = x - n * LN2_HI - n * LN2_LO;
    let mut p = 1.987_569_2e-4f32;
    p = p * r + 1.398_199_9e-3;
    p = p * r + 8.333_452e-3;
    p = p * r + 4.166_579_6e-2;
    p = p * r + 1.666_666_5e-1;
    p = p * r + 0.5;
    let er = p * r * r + r + 1.0;
    let two_n = f32::from_bits(((n as i32 + 127) as u32) << 23);
    if under {
        0.0
    } else {
        er * two_n
    }
}

/// `a · b` in 8 interleaved partial sums, which the compiler keeps in one vector register.
#[inline(always)]
fn dot<const FMA: bool>(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    let (ac, bc) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = ac
        .remainder()
        .iter()
        .zip(bc.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in ac.zip(bc) {
        for i in 0..8 {
            acc[i] = if FMA {
                x[i].mul_add(y[i], acc[i])
            } else {
                acc[i] + x[i] * y[i]
            };
        }
    }
    acc.iter().sum::<f32>() + tail
}

/// The keys `lo..=hi` that block row `r` may see.
fn visible(at: RowPlacement, r: usize) -> (usize, usize) {
    let q = at.prefix + (at.first_row + r) % at.tokens;
    let lo = at.window.map_or(0, |w| (q + 1).saturating_sub(w));
    (lo, q)
}

/// Whether the vectorised paths of this file can use AVX2 and FMA here.
fn avx2_fma() -> bool {
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

    fn max_abs_diff(a: &Tensor, b: &Tensor) -> f32 {
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

    /// The few-row attention equals the general path: batched products around the fused
    /// softmax, over prefixes, grouped heads and windows.
    #[test]
    fn few_row_attention_equals_products_and_softmax() {
        let dev = Device::Cpu;
        // (tokens, prefix, n_rep, window, head dim)
        let cases = [
            (5, 364, 4, None, 128),
            (1, 12, 4, Some(64), 64),
            (3, 0, 2, None, 8),
            (6, 9, 1, Some(4), 20),
            (16, 40, 4, Some(30), 128),
        ];
        for (tokens, prefix, n_rep, window, d) in cases {
            let keys = prefix + tokens;
            let rows = n_rep * tokens;
            let at = RowPlacement {
                rows,
                first_row: 0,
                tokens,
                prefix,
                window,
            };
            let q = Tensor::randn(0f32, 1.0, (2, 3, rows, d), &dev).unwrap();
            let k = Tensor::randn(0f32, 1.0, (2, 3, keys, d), &dev).unwrap();
            let v = Tensor::randn(0f32, 1.0, (2, 3, keys, d), &dev).unwrap();
            let scale = 1.0 / (d as f64).sqrt();
            let got = attend_few(&q, &k, &v, scale, at)
                .unwrap()
                .expect("few rows");
            let scores = q.matmul(&k.t().unwrap()).unwrap();
            let probs = causal_softmax(&scores, scale, at).unwrap().unwrap();
            let want = probs.matmul(&v).unwrap();
            let diff = max_abs_diff(&got, &want);
            assert!(
                diff < 1e-5,
                "{tokens} {prefix} {n_rep} {window:?} {d}: {diff}"
            );
        }
        // Many rows, a block of rows, or another dtype: the general path's.
        let q = Tensor::zeros((1, 1, FEW_ROWS + 1, 8), DType::F32, &dev).unwrap();
        let k = Tensor::zeros((1, 1, FEW_ROWS + 1, 8), DType::F32, &dev).unwrap();
        let many = RowPlacement {
            rows: FEW_ROWS + 1,
            first_row: 0,
            tokens: FEW_ROWS + 1,
            prefix: 0,
            window: None,
        };
        assert!(attend_few(&q, &k, &k, 1.0, many).unwrap().is_none());
        let q = Tensor::zeros((1, 1, 2, 8), DType::F32, &dev).unwrap();
        let k = Tensor::zeros((1, 1, 4, 8), DType::F32, &dev).unwrap();
        let block = RowPlacement {
            rows: 2,
            first_row: 2,
            tokens: 4,
            prefix: 0,
            window: None,
        };
        assert!(attend_few(&q, &k, &k, 1.0, block).unwrap().is_none());
        let at = RowPlacement {
            first_row: 0,
            ..block
        };
        let kh = k.to_dtype(DType::BF16).unwrap();
        assert!(attend_few(&q, &kh, &kh, 1.0, at).unwrap().is_none());
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
