//! Fused GPU kernels (`gpu.cu`) for the memory-bound steps between the matrix products, in bf16
//! on CUDA: splitting the fused q/k/v projection into heads with the rotary embedding applied,
//! merging heads back, the masked softmax of attention, and SwiGLU. candle's generic kernels do
//! these as several passes, most of them through its strided path, which on an H200 ran at about a
//! tenth of the memory bandwidth and made a batch of 32 inputs 1.8× slower than PyTorch.
//!
//! Every function returns `None` where it does not apply (CPU, another dtype, a strided input,
//! a build without CUDA, or fused kernels switched off), and the caller then takes the unfused path.

use std::sync::atomic::{AtomicBool, Ordering};

use candle_core::{DType, Result, Tensor};

static ENABLED: AtomicBool = AtomicBool::new(true);

/// Turns the fused kernels on or off for this process (on by default; `DPA_FUSED_KERNELS=0` in
/// the environment turns them off at start). For comparing both paths on one device.
pub fn set_enabled(on: bool) {
    ENABLED.store(on, Ordering::Relaxed);
}

/// Whether `x` can go through the fused kernels.
pub fn applies(x: &Tensor) -> bool {
    static FROM_ENV: std::sync::Once = std::sync::Once::new();
    FROM_ENV.call_once(|| {
        if std::env::var("DPA_FUSED_KERNELS").is_ok_and(|v| v == "0") {
            set_enabled(false);
        }
    });
    cfg!(feature = "cuda")
        && ENABLED.load(Ordering::Relaxed)
        && x.device().is_cuda()
        && x.dtype() == DType::BF16
        && x.is_contiguous()
        // Some kernels read pairs of values: 4-byte aligned.
        && x.layout().start_offset().is_multiple_of(2)
        // The kernels index with 32-bit integers.
        && x.elem_count() < (1 << 31)
}

/// Attention heads: query heads, key/value heads, and the width of each.
#[derive(Debug, Clone, Copy)]
pub struct Heads {
    pub heads: usize,
    pub kv_heads: usize,
    pub head_dim: usize,
}

/// `qkv: [b, t, (h + 2 kvh) d]` → q `[b, h, t, d]`, k and v `[b, kvh, t, d]`, q and k rotated
/// with `cos`, `sin: [t, d / 2]`.
pub fn split_heads_rope(
    qkv: &Tensor,
    cos: &Tensor,
    sin: &Tensor,
    shape: Heads,
) -> Result<Option<(Tensor, Tensor, Tensor)>> {
    if !applies(qkv) || !applies(cos) || !applies(sin) || !shape.head_dim.is_multiple_of(2) {
        return Ok(None);
    }
    imp::split_heads_rope(qkv, cos, sin, shape).map(Some)
}

/// `x: [b, h, t, d]` → `[b, t, h d]`.
pub fn merge_heads(x: &Tensor) -> Result<Option<Tensor>> {
    if !applies(x) || x.rank() != 4 || !x.dim(3)?.is_multiple_of(2) {
        return Ok(None);
    }
    imp::merge_heads(x).map(Some)
}

/// Where each row of a block of attention scores sits: see [`causal_softmax`].
#[derive(Debug, Clone, Copy)]
pub struct RowPlacement {
    /// Rows of each (batch, key head) group in this block.
    pub rows: usize,
    /// The block's first row among the group's stacked `n_rep × t` query rows.
    pub first_row: usize,
    /// New tokens (query rows per stacked head).
    pub tokens: usize,
    /// Cached prefix length: token `i` is at position `prefix + i`.
    pub prefix: usize,
    pub window: Option<usize>,
}

/// Softmax of `scale × scores` over the keys each query may see (causal, and within the sliding
/// window), for `scores: [b, kv_heads, rows, keys]`.
pub fn causal_softmax(scores: &Tensor, scale: f64, at: RowPlacement) -> Result<Option<Tensor>> {
    if !applies(scores) {
        return Ok(None);
    }
    imp::causal_softmax(scores, scale, at).map(Some)
}

/// `gate_up: [.., 2 i]` (gate, then up) → `silu(gate) × up: [.., i]`.
pub fn silu_mul(gate_up: &Tensor) -> Result<Option<Tensor>> {
    if !applies(gate_up) || !gate_up.dim(candle_core::D::Minus1)?.is_multiple_of(4) {
        return Ok(None);
    }
    imp::silu_mul(gate_up).map(Some)
}

#[cfg(not(feature = "cuda"))]
mod imp {
    //! Never reached: [`super::applies`] is false without CUDA.
    use super::{Heads, RowPlacement};
    use candle_core::{Result, Tensor};

    fn unavailable<T>() -> Result<T> {
        Err(candle_core::Error::Msg(
            "fused GPU kernels need the cuda feature".into(),
        ))
    }

    pub fn split_heads_rope(
        _: &Tensor,
        _: &Tensor,
        _: &Tensor,
        _: Heads,
    ) -> Result<(Tensor, Tensor, Tensor)> {
        unavailable()
    }

    pub fn merge_heads(_: &Tensor) -> Result<Tensor> {
        unavailable()
    }

    pub fn causal_softmax(_: &Tensor, _: f64, _: RowPlacement) -> Result<Tensor> {
        unavailable()
    }

    pub fn silu_mul(_: &Tensor) -> Result<Tensor> {
        unavailable()
    }
}

#[cfg(feature = "cuda")]
mod imp {
    use super::{Heads, RowPlacement};
    use candle_core::backend::BackendStorage;
    use candle_core::cuda_backend::cudarc::driver::{CudaView, LaunchConfig, PushKernelArg};
    use candle_core::cuda_backend::WrapErr;
    use candle_core::{
        CpuStorage, CudaStorage, CustomOp1, CustomOp3, Error, Layout, Result, Shape, Tensor,
    };
    use half::bf16;

    const PTX: &str = include_str!(concat!(env!("OUT_DIR"), "/gpu.ptx"));
    const MODULE: &str = "dpa_explorer_gpu";

    fn cpu_unsupported<T>(name: &str) -> Result<T> {
        Err(Error::Msg(format!("{name} runs on CUDA only")))
    }

    /// A grid-stride launch over `n` work items.
    fn grid(n: usize) -> LaunchConfig {
        let threads = 256u32;
        let blocks = n.div_ceil(threads as usize).clamp(1, 1 << 16) as u32;
        LaunchConfig {
            grid_dim: (blocks, 1, 1),
            block_dim: (threads, 1, 1),
            shared_mem_bytes: 0,
        }
    }

    fn input<'a>(s: &'a CudaStorage, l: &Layout) -> Result<CudaView<'a, bf16>> {
        if !l.is_contiguous() {
            return Err(Error::Msg("fused kernel input must be contiguous".into()));
        }
        Ok(s.as_cuda_slice::<bf16>()?.slice(l.start_offset()..))
    }

    fn u32s(values: &[usize]) -> Result<Vec<u32>> {
        values
            .iter()
            .map(|&n| {
                u32::try_from(n)
                    .map_err(|_| Error::Msg(format!("{n} is too large for a fused kernel")))
            })
            .collect()
    }

    /// Runs kernel `name` with arguments (inputs..., a new bf16 output of `len` values, sizes...,
    /// then `scale` if given) and returns the output.
    fn launch(
        device: &candle_core::CudaDevice,
        name: &str,
        inputs: &[&CudaView<'_, bf16>],
        len: usize,
        sizes: &[usize],
        scale: Option<f32>,
        cfg: LaunchConfig,
    ) -> Result<CudaStorage> {
        let func = device.get_or_load_custom_func(name, MODULE, PTX)?;
        // SAFETY: every element is written by the kernel.
        let out = unsafe { device.alloc::<bf16>(len)? };
        let sizes = u32s(sizes)?;
        let mut builder = func.builder();
        for x in inputs {
            builder.arg(*x);
        }
        builder.arg(&out);
        for v in &sizes {
            builder.arg(v);
        }
        if let Some(scale) = &scale {
            builder.arg(scale);
        }
        // SAFETY: the arguments match the kernel's signature in gpu.cu.
        unsafe { builder.launch(cfg) }.w()?;
        Ok(CudaStorage::wrap_cuda_slice(out, device.clone()))
    }

    struct SplitHeadsRope(Heads);

    impl CustomOp3 for SplitHeadsRope {
        fn name(&self) -> &'static str {
            "dpa-split-heads-rope"
        }

        fn cpu_fwd(
            &self,
            _: &CpuStorage,
            _: &Layout,
            _: &CpuStorage,
            _: &Layout,
            _: &CpuStorage,
            _: &Layout,
        ) -> Result<(CpuStorage, Shape)> {
            cpu_unsupported(self.name())
        }

        fn cuda_fwd(
            &self,
            s1: &CudaStorage,
            l1: &Layout,
            s2: &CudaStorage,
            l2: &Layout,
            s3: &CudaStorage,
            l3: &Layout,
        ) -> Result<(CudaStorage, Shape)> {
            let (b, t, width) = l1.shape().dims3()?;
            let Heads {
                heads: h,
                kv_heads: kvh,
                head_dim: d,
            } = self.0;
            if width != (h + 2 * kvh) * d
                || l2.shape().dims2()? != (t, d / 2)
                || l3.shape().dims2()? != (t, d / 2)
            {
                return Err(Error::Msg("split-heads: unexpected shapes".into()));
            }
            let (qkv, cos, sin) = (input(s1, l1)?, input(s2, l2)?, input(s3, l3)?);
            let n = b * t * width;
            let out = launch(
                s1.device(),
                "dpa_split_heads_rope_bf16",
                &[&qkv, &cos, &sin],
                n,
                &[b, t, h, kvh, d],
                None,
                grid(n / 2),
            )?;
            Ok((out, Shape::from(n)))
        }
    }

    pub fn split_heads_rope(
        qkv: &Tensor,
        cos: &Tensor,
        sin: &Tensor,
        shape: Heads,
    ) -> Result<(Tensor, Tensor, Tensor)> {
        let (b, t, _) = qkv.dims3()?;
        let Heads {
            heads,
            kv_heads,
            head_dim,
        } = shape;
        let flat = qkv.apply_op3_no_bwd(cos, sin, &SplitHeadsRope(shape))?;
        let (nq, nkv) = (b * heads * t * head_dim, b * kv_heads * t * head_dim);
        let q = flat.narrow(0, 0, nq)?.reshape((b, heads, t, head_dim))?;
        let k = flat
            .narrow(0, nq, nkv)?
            .reshape((b, kv_heads, t, head_dim))?;
        let v = flat
            .narrow(0, nq + nkv, nkv)?
            .reshape((b, kv_heads, t, head_dim))?;
        Ok((q, k, v))
    }

    /// The one-input kernels: which, and the launch for an input of a given layout.
    enum Op {
        MergeHeads,
        CausalSoftmax { scale: f32, at: RowPlacement },
        SiluMul,
    }

    impl CustomOp1 for Op {
        fn name(&self) -> &'static str {
            match self {
                Op::MergeHeads => "dpa-merge-heads",
                Op::CausalSoftmax { .. } => "dpa-causal-softmax",
                Op::SiluMul => "dpa-silu-mul",
            }
        }

        fn cpu_fwd(&self, _: &CpuStorage, _: &Layout) -> Result<(CpuStorage, Shape)> {
            cpu_unsupported(self.name())
        }

        fn cuda_fwd(&self, s: &CudaStorage, l: &Layout) -> Result<(CudaStorage, Shape)> {
            let x = input(s, l)?;
            let dev = s.device();
            match *self {
                Op::MergeHeads => {
                    let (b, h, t, d) = l.shape().dims4()?;
                    let n = b * h * t * d;
                    let out = launch(
                        dev,
                        "dpa_merge_heads_bf16",
                        &[&x],
                        n,
                        &[b, h, t, d],
                        None,
                        grid(n / 2),
                    )?;
                    Ok((out, Shape::from((b, t, h * d))))
                }
                Op::CausalSoftmax { scale, at } => {
                    let dims = l.shape().dims();
                    let total = *dims.last().unwrap_or(&0);
                    if dims.len() < 2
                        || dims[dims.len() - 2] != at.rows
                        || at.prefix + at.tokens != total
                    {
                        return Err(Error::Msg("causal-softmax: unexpected shapes".into()));
                    }
                    let rows = l.shape().elem_count() / total.max(1);
                    let sizes = [
                        rows,
                        at.rows,
                        total,
                        at.tokens,
                        at.prefix,
                        at.first_row,
                        at.window.unwrap_or(0),
                    ];
                    // One warp per row, eight rows to a block.
                    let cfg = LaunchConfig {
                        grid_dim: (rows.div_ceil(8).clamp(1, 1 << 20) as u32, 1, 1),
                        block_dim: (256, 1, 1),
                        shared_mem_bytes: 0,
                    };
                    let out = launch(
                        dev,
                        "dpa_causal_softmax_bf16",
                        &[&x],
                        rows * total,
                        &sizes,
                        Some(scale),
                        cfg,
                    )?;
                    Ok((out, l.shape().clone()))
                }
                Op::SiluMul => {
                    let mut dims = l.shape().dims().to_vec();
                    let inter = dims.pop().unwrap_or(0) / 2;
                    let rows: usize = dims.iter().product();
                    let out = launch(
                        dev,
                        "dpa_silu_mul_bf16",
                        &[&x],
                        rows * inter,
                        &[rows, inter],
                        None,
                        grid(rows * inter / 2),
                    )?;
                    dims.push(inter);
                    Ok((out, Shape::from(dims)))
                }
            }
        }
    }

    pub fn merge_heads(x: &Tensor) -> Result<Tensor> {
        x.apply_op1_no_bwd(&Op::MergeHeads)
    }

    pub fn causal_softmax(scores: &Tensor, scale: f64, at: RowPlacement) -> Result<Tensor> {
        let op = Op::CausalSoftmax {
            scale: scale as f32,
            at,
        };
        scores.apply_op1_no_bwd(&op)
    }

    pub fn silu_mul(gate_up: &Tensor) -> Result<Tensor> {
        gate_up.apply_op1_no_bwd(&Op::SiluMul)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn cpu_tensors_take_the_unfused_path() -> Result<()> {
        let x = Tensor::zeros((2, 3, 48), DType::BF16, &Device::Cpu)?;
        let cs = Tensor::zeros((3, 4), DType::BF16, &Device::Cpu)?;
        assert!(!applies(&x));
        let shape = Heads {
            heads: 4,
            kv_heads: 1,
            head_dim: 8,
        };
        assert!(split_heads_rope(&x, &cs, &cs, shape)?.is_none());
        assert!(merge_heads(&x.reshape((2, 3, 6, 8))?)?.is_none());
        assert!(silu_mul(&x)?.is_none());
        let at = RowPlacement {
            rows: 3,
            first_row: 0,
            tokens: 3,
            prefix: 45,
            window: None,
        };
        assert!(causal_softmax(&x, 0.5, at)?.is_none());
        Ok(())
    }
}
