//! The fused q/k/v product split into heads with the rotary embedding applied, on the CPU, in
//! one pass: each head's rows are read once from the product and written once where attention
//! reads them. Candle's path (three strided views, three copies to make them contiguous, then
//! its `rope` into fresh buffers) cost 1–2 % of an appended word on the 7B, mostly in
//! hand-offs and allocations for a few rows.

use candle_core::{DType, Result, Tensor};
use rayon::prelude::*;

use super::gpu::Heads;
use super::softmax::f32_values;

/// Values from which the heads go to the thread pool.
const PARALLEL_MIN: usize = 1 << 18;

/// `qkv: [b, t, (h + 2 kvh) d]` → q `[b, h, t, d]`, k and v `[b, kvh, t, d]`, q and k rotated
/// with `cos`, `sin: [t, d / 2]` (the halves of each head rotated as pairs, as candle's `rope`
/// and transformers' `rotate_half` do, with the same arithmetic); f32 on the CPU, else `None`.
pub fn split_heads_rope(
    qkv: &Tensor,
    cos: &Tensor,
    sin: &Tensor,
    shape: Heads,
) -> Result<Option<(Tensor, Tensor, Tensor)>> {
    let Heads {
        heads: h,
        kv_heads: kvh,
        head_dim: d,
    } = shape;
    let all_f32 = [qkv, cos, sin]
        .iter()
        .all(|t| t.device().is_cpu() && t.dtype() == DType::F32);
    if !all_f32 || d == 0 || !d.is_multiple_of(2) || qkv.rank() != 3 || qkv.elem_count() == 0 {
        return Ok(None);
    }
    let (b, t, width) = qkv.dims3()?;
    let half = d / 2;
    if width != (h + 2 * kvh) * d || cos.dims() != [t, half] || sin.dims() != [t, half] {
        return Ok(None);
    }
    let (qkv, cos, sin) = (qkv.contiguous()?, cos.contiguous()?, sin.contiguous()?);
    let (qs, ql) = qkv.storage_and_layout();
    let (cs, cl) = cos.storage_and_layout();
    let (ss, sl) = sin.storage_and_layout();
    let (Some(src), Some(cos), Some(sin)) = (
        f32_values(&qs, ql, b * t * width),
        f32_values(&cs, cl, t * half),
        f32_values(&ss, sl, t * half),
    ) else {
        return Ok(None);
    };
    let mut q = vec![0f32; b * h * t * d];
    let mut k = vec![0f32; b * kvh * t * d];
    let mut v = vec![0f32; b * kvh * t * d];
    // Every (batch, head) of the three outputs, each `t × d`, with the column of the product
    // its rows come from and whether they are rotated.
    let n = t * d;
    let q_jobs = (q.chunks_exact_mut(n).enumerate()).map(|(i, o)| (o, i / h, i % h, true));
    let k_jobs = (k.chunks_exact_mut(n).enumerate()).map(|(i, o)| (o, i / kvh, h + i % kvh, true));
    let v_jobs =
        (v.chunks_exact_mut(n).enumerate()).map(|(i, o)| (o, i / kvh, h + kvh + i % kvh, false));
    let jobs: Vec<_> = q_jobs.chain(k_jobs).chain(v_jobs).collect();
    let job = |(dst, bi, col, rotated): (&mut [f32], usize, usize, bool)| {
        for (ti, out) in dst.chunks_exact_mut(d).enumerate() {
            let at = (bi * t + ti) * width + col * d;
            let x = &src[at..at + d];
            if !rotated {
                out.copy_from_slice(x);
                continue;
            }
            let (c, s) = (&cos[ti * half..][..half], &sin[ti * half..][..half]);
            let (x1, x2) = x.split_at(half);
            let (o1, o2) = out.split_at_mut(half);
            for i in 0..half {
                o1[i] = x1[i] * c[i] - x2[i] * s[i];
                o2[i] = x1[i] * s[i] + x2[i] * c[i];
            }
        }
    };
    if b * t * width >= PARALLEL_MIN {
        jobs.into_par_iter().for_each(job);
    } else {
        jobs.into_iter().for_each(job);
    }
    let dev = qkv.device();
    Ok(Some((
        Tensor::from_vec(q, (b, h, t, d), dev)?,
        Tensor::from_vec(k, (b, kvh, t, d), dev)?,
        Tensor::from_vec(v, (b, kvh, t, d), dev)?,
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, D};

    /// Candle's path, as the model took it before.
    fn general(
        qkv: &Tensor,
        cos: &Tensor,
        sin: &Tensor,
        (h, kvh, d): (usize, usize, usize),
    ) -> (Tensor, Tensor, Tensor) {
        let (b, t, _) = qkv.dims3().unwrap();
        let part = |from: usize, n: usize| {
            qkv.narrow(D::Minus1, from * d, n * d)
                .unwrap()
                .reshape((b, t, n, d))
                .unwrap()
                .transpose(1, 2)
                .unwrap()
                .contiguous()
                .unwrap()
        };
        let rope = |x: Tensor| candle_nn::rotary_emb::rope(&x, cos, sin).unwrap();
        (rope(part(0, h)), rope(part(h, kvh)), part(h + kvh, kvh))
    }

    #[test]
    fn equals_candles_path_bit_for_bit() {
        let dev = Device::Cpu;
        for &(b, t, h, kvh, d) in &[(1, 1, 4, 2, 8), (2, 3, 4, 2, 8), (1, 7, 6, 3, 16)] {
            let width = (h + 2 * kvh) * d;
            let vals = crate::model::kernels::test_values;
            let qkv = Tensor::from_vec(vals(b * t * width, 1), (b, t, width), &dev).unwrap();
            let cos = Tensor::from_vec(vals(t * d / 2, 2), (t, d / 2), &dev).unwrap();
            let sin = Tensor::from_vec(vals(t * d / 2, 3), (t, d / 2), &dev).unwrap();
            let shape = Heads {
                heads: h,
                kv_heads: kvh,
                head_dim: d,
            };
            let (q, k, v) = split_heads_rope(&qkv, &cos, &sin, shape)
                .unwrap()
                .expect("f32 on the CPU");
            let (wq, wk, wv) = general(&qkv, &cos, &sin, (h, kvh, d));
            for (got, want) in [(q, wq), (k, wk), (v, wv)] {
                assert_eq!(got.dims(), want.dims());
                let bits = |x: &Tensor| -> Vec<u32> {
                    let x = x.flatten_all().unwrap().to_vec1::<f32>().unwrap();
                    x.iter().map(|v| v.to_bits()).collect()
                };
                assert_eq!(bits(&got), bits(&want), "b {b} t {t} h {h} kvh {kvh} d {d}");
            }
        }
    }

    #[test]
    fn other_shapes_and_types_are_left_to_the_general_path() {
        let dev = Device::Cpu;
        let shape = Heads {
            heads: 2,
            kv_heads: 1,
            head_dim: 4,
        };
        let cos = Tensor::zeros((3, 2), DType::F32, &dev).unwrap();
        let wrong_width = Tensor::zeros((1, 3, 15), DType::F32, &dev).unwrap();
        assert!(split_heads_rope(&wrong_width, &cos, &cos, shape)
            .unwrap()
            .is_none());
        let half = Tensor::zeros((1, 3, 16), DType::BF16, &dev).unwrap();
        assert!(split_heads_rope(&half, &cos, &cos, shape)
            .unwrap()
            .is_none());
    }
}
