//! The attention softmax on the CPU, fused: `softmax(scale × scores)` over the keys each query
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
    out.par_chunks_mut(keys)
        .zip(values.par_chunks(keys))
        .enumerate()
        .for_each(|(i, (dst, src))| {
            let (lo, hi) = visible(at, i % rows);
            row_softmax(&src[lo..=hi], &mut dst[lo..=hi], scale);
        });
    Ok(Some(Tensor::from_vec(
        out,
        (b, heads, rows, keys),
        scores.device(),
    )?))
}

/// The keys `lo..=hi` that block row `r` may see.
fn visible(at: RowPlacement, r: usize) -> (usize, usize) {
    let q = at.prefix + (at.first_row + r) % at.tokens;
    let lo = at.window.map_or(0, |w| (q + 1).saturating_sub(w));
    (lo, q)
}

/// `dst = softmax(scale × src)`.
fn row_softmax(src: &[f32], dst: &mut [f32], scale: f32) {
    let max = src.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut sum = 0f32;
    for (d, &s) in dst.iter_mut().zip(src) {
        let e = ((s - max) * scale).exp();
        *d = e;
        sum += e;
    }
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
            let diff = (got - want)
                .unwrap()
                .abs()
                .unwrap()
                .flatten_all()
                .unwrap()
                .max(0)
                .unwrap()
                .to_scalar::<f32>()
                .unwrap();
            assert!(diff < 1e-6, "{tokens} {prefix} {n_rep} {window:?}: {diff}");
        }
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
