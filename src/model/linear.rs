//! The projections of the decoder. Projections that read the same input (q/k/v, gate/up) are
//! stored as one matrix so that each is a single matrix product.
//!
//! A projection's weights are held in one of several formats (see [`WeightFormat`]); every
//! format takes and returns activations in the model's compute dtype except the CPU-specific
//! ones (packed bf16, quantised), which take and return f32.

use std::sync::Arc;

use candle_core::quantized::{GgmlDType, QMatMul};
use candle_core::{CpuStorage, CustomOp1, DType, Device, Layout, Module, Shape, Tensor};

use super::kernels::bf16::{f32_to_bf16, PackedBf16};
use super::kernels::f32::PackedF32;
use super::kernels::int8::{self, PackedQ, QFormat};
use super::kernels::q4k::PackedQ4K;
use super::quant::{self, QuantCache};
use super::weights::Checkpoint;
use super::ModelError;

/// How projection weights are held in memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WeightFormat {
    /// A plain tensor in this dtype, multiplied by candle (any device).
    Dense(DType),
    /// bf16, packed for this crate's CPU kernels (f32 activations).
    PackedBf16,
    /// f32, packed for this crate's AVX2 kernel.
    PackedF32,
    /// 12-bit blocks of 32 in 16-bit words ([`QFormat::Q12`]), packed for this crate's integer
    /// kernels (f32 activations in and out, 16-bit inside the products).
    PackedQ12,
    /// GGML block quantisation (f32 activations): `Q8_0` and `Q4_0` on this crate's AVX512-VNNI
    /// or AVX2 kernels where the CPU has them, `Q4K` on this crate's kernel on any CPU (AVX512-VNNI or
    /// portable), everything else on candle's.
    Quantized(GgmlDType),
}

/// Builds one projection from the named `[out_i, in]` checkpoint tensors, stacked along `out`.
pub type LinearLoader<'a> =
    dyn Fn(&mut Checkpoint, &[&str], &[usize], usize) -> Result<Linear, ModelError> + 'a;

/// `y = x Wᵀ` for a weight `W` of shape `[out, in]`.
#[derive(Debug)]
pub enum Linear {
    Dense {
        weight: Tensor,
    },
    PackedBf16(Arc<PackedBf16>),
    PackedF32(Arc<PackedF32>),
    /// 8/4-bit blocks packed for this crate's AVX512-VNNI and AVX2 kernels.
    PackedQ(Arc<PackedQ>),
    /// `Q4_K` super-blocks packed for this crate's kernels.
    PackedQ4K(Arc<PackedQ4K>),
    /// Candle's quantised matrix product.
    Quantized {
        weight: QMatMul,
        out: usize,
    },
}

impl Linear {
    pub fn forward(&self, x: &Tensor) -> Result<Tensor, ModelError> {
        let dims = x.dims();
        let (rows, k) = (
            dims[..dims.len() - 1].iter().product::<usize>(),
            dims[dims.len() - 1],
        );
        let x2 = x.reshape((rows, k))?;
        let y = match self {
            Linear::Dense { weight } => dense_matmul(&x2, weight)?,
            Linear::PackedBf16(w) => packed_forward(&x2, w)?,
            Linear::PackedF32(w) => packed_forward(&x2, w)?,
            Linear::PackedQ(w) => packed_forward(&x2, w)?,
            Linear::PackedQ4K(w) => packed_forward(&x2, w)?,
            Linear::Quantized { weight, .. } => weight.forward(&x2.to_dtype(DType::F32)?)?,
        };
        let mut shape = dims.to_vec();
        *shape.last_mut().unwrap_or(&mut 0) = self.out_features();
        Ok(y.reshape(shape)?)
    }

    pub fn out_features(&self) -> usize {
        match self {
            Linear::Dense { weight } => weight.dims()[0],
            Linear::PackedBf16(w) => w.out_features(),
            Linear::PackedF32(w) => w.out_features(),
            Linear::PackedQ(w) => w.out_features(),
            Linear::PackedQ4K(w) => w.out_features(),
            Linear::Quantized { out, .. } => *out,
        }
    }

    /// Bytes the weights occupy in memory.
    pub fn weight_bytes(&self) -> usize {
        match self {
            Linear::Dense { weight } => weight.elem_count() * weight.dtype().size_in_bytes(),
            Linear::PackedBf16(w) => w.bytes(),
            Linear::PackedF32(w) => w.bytes(),
            Linear::PackedQ(w) => w.bytes(),
            Linear::PackedQ4K(w) => w.bytes(),
            Linear::Quantized { weight, .. } => match weight {
                QMatMul::QTensor(t) => t.storage_size_in_bytes(),
                QMatMul::Tensor(t) | QMatMul::TensorF16(t) => {
                    t.elem_count() * t.dtype().size_in_bytes()
                }
            },
        }
    }

    /// The packed form, as a cache keeps it (`None` for weights in candle's tensors).
    fn packed_bytes(&self) -> Option<&[u8]> {
        match self {
            Linear::PackedBf16(w) => Some(w.packed()),
            Linear::PackedQ(w) => Some(w.packed()),
            Linear::PackedQ4K(w) => Some(w.packed()),
            _ => None,
        }
    }

    /// Whether the weights are used in place from a mapped cache file (nothing was copied).
    pub fn is_mapped(&self) -> bool {
        match self {
            Linear::PackedBf16(w) => w.is_mapped(),
            Linear::PackedQ(w) => w.is_mapped(),
            Linear::PackedQ4K(w) => w.is_mapped(),
            _ => false,
        }
    }
}

/// A packed product on f32 activations: `(in, out, out[m, out] = x[m, in] · Wᵀ)`, and its
/// name as a candle operation.
trait PackedMatmul: Send + Sync + 'static {
    const NAME: &'static str;
    fn dims(&self) -> (usize, usize);
    fn run(&self, x: &[f32], m: usize, out: &mut [f32]);
}

/// Each packed weight's `PackedMatmul`: its own shape and `matmul`, under `name`.
macro_rules! packed_matmul {
    ($($ty:ty => $name:literal),* $(,)?) => {$(
        impl PackedMatmul for $ty {
            const NAME: &'static str = $name;
            fn dims(&self) -> (usize, usize) {
                (self.in_features(), self.out_features())
            }
            fn run(&self, x: &[f32], m: usize, out: &mut [f32]) {
                self.matmul(x, m, out)
            }
        }
    )*};
}

packed_matmul! {
    PackedBf16 => "packed-bf16-linear",
    PackedF32 => "packed-f32-linear",
    PackedQ => "packed-q-linear",
    PackedQ4K => "packed-q4k-linear",
}

/// A packed product as a candle operation on a contiguous `[rows, in]` f32 tensor.
fn packed_cpu_fwd(
    w: &impl PackedMatmul,
    storage: &CpuStorage,
    layout: &Layout,
) -> candle_core::Result<(CpuStorage, Shape)> {
    let (m, k) = layout.shape().dims2()?;
    let (inf, n) = w.dims();
    if k != inf {
        candle_core::bail!("packed linear takes {inf} inputs, got {k}")
    }
    let CpuStorage::F32(all) = storage else {
        candle_core::bail!("packed linear takes f32 activations")
    };
    let Some((a, b)) = layout.contiguous_offsets() else {
        candle_core::bail!("packed linear takes contiguous activations")
    };
    let mut out = vec![0f32; m * n];
    w.run(&all[a..b], m, &mut out);
    Ok((CpuStorage::F32(out), Shape::from((m, n))))
}

struct PackedOp<W>(Arc<W>);

impl<W: PackedMatmul> CustomOp1 for PackedOp<W> {
    fn name(&self) -> &'static str {
        W::NAME
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        packed_cpu_fwd(self.0.as_ref(), s, l)
    }
}

/// `x Wᵀ` for `x: [rows, in]` through a packed kernel, on f32 activations.
fn packed_forward<W: PackedMatmul>(x: &Tensor, w: &Arc<W>) -> Result<Tensor, ModelError> {
    Ok(x.to_dtype(DType::F32)?
        .contiguous()?
        .apply_op1_no_bwd(&PackedOp(w.clone()))?)
}

/// Loads the named `[out_i, in_features]` weights as one projection in `format`.
pub fn load(
    ckpt: &mut Checkpoint,
    names: &[&str],
    outs: &[usize],
    in_features: usize,
    format: WeightFormat,
    device: &Device,
    mut cache: Option<&mut QuantCache>,
) -> Result<Linear, ModelError> {
    match format {
        WeightFormat::Dense(dtype) => load_dense(ckpt, names, outs, in_features, dtype, device),
        WeightFormat::PackedBf16 => match cache {
            Some(cache) => load_packed_bf16_cached(ckpt, names, outs, in_features, cache),
            None => load_packed_bf16(ckpt, names, outs, in_features),
        },
        WeightFormat::PackedF32 => load_packed_f32(ckpt, names, outs, in_features),
        WeightFormat::PackedQ12 if !in_features.is_multiple_of(int8::QK) => {
            // Too narrow for a block: stays exact.
            load_dense(ckpt, names, outs, in_features, DType::F32, device)
        }
        WeightFormat::PackedQ12 => load_packed_q12(ckpt, names, outs, in_features, cache),
        WeightFormat::Quantized(want) => {
            let Some(dtype) = quant::format_for(want, in_features, device.is_cpu()) else {
                // Too narrow for any block format: stays exact.
                return load_dense(ckpt, names, outs, in_features, DType::F32, device);
            };
            let rows: usize = outs.iter().sum();
            // A warm cache stands in for these tensors: they are used, and must fit, even when
            // none of their bytes is read.
            for (name, &out) in names.iter().zip(outs) {
                ckpt.mark_taken(name, &[out, in_features])?;
            }
            let own = match dtype {
                GgmlDType::Q8_0 => Some(QFormat::Q8),
                GgmlDType::Q4_0 => Some(QFormat::Q4),
                _ => None,
            }
            .filter(|_| device.is_cpu() && int8::own_kernel_available());
            let own_q4k = dtype == GgmlDType::Q4K && device.is_cpu();
            let mut make = |sink: &mut quant::RowSink<'_>| {
                quant::quantize_rows(ckpt, names, outs, in_features, dtype, sink)
            };
            let key = names.join("+");
            let shape = (rows, quant::stored_k(dtype, in_features));
            if own_q4k || own.is_some() {
                // This crate's kernels: a warm cache holds their packed form, used in place.
                let len = match own {
                    Some(fmt) => PackedQ::packed_len(fmt, rows, in_features),
                    None => PackedQ4K::packed_len(rows, in_features),
                };
                let kept = cache
                    .as_deref_mut()
                    .and_then(|c| c.packed(&key, shape, dtype, len));
                let found = kept.and_then(|b| match own {
                    Some(fmt) => PackedQ::with_bytes(fmt, rows, in_features, b)
                        .map(|p| Linear::PackedQ(Arc::new(p))),
                    None => PackedQ4K::with_bytes(rows, in_features, b)
                        .map(|p| Linear::PackedQ4K(Arc::new(p))),
                });
                if let Some(found) = found {
                    return Ok(found);
                }
                // Rows go straight into the packed form: no second copy of the weight.
                let made = match own {
                    Some(fmt) => {
                        // Quantised as GGML's quantisers do, on all threads, one row each.
                        let mut p = PackedQ::zeroed(fmt, rows, in_features);
                        let k = in_features;
                        for_each_part(ckpt, names, outs, k, |row0, out, part| {
                            p.fill_rows(row0, out, |i, dst| part.row_into(i, k, dst))
                        })?;
                        Linear::PackedQ(Arc::new(p))
                    }
                    None => {
                        let mut p = PackedQ4K::zeroed(rows, in_features);
                        make(&mut |r0, n, b| {
                            p.fill_ggml_rows(r0, n, b);
                            Ok(())
                        })?;
                        Linear::PackedQ4K(Arc::new(p))
                    }
                };
                if let (Some(cache), Some(bytes)) = (cache, made.packed_bytes()) {
                    cache.keep_packed(&key, shape, dtype, bytes);
                }
                return Ok(made);
            }
            // Placed by row: rows found damaged in the cache are delivered again.
            let rb = quant::row_bytes(dtype, in_features);
            let mut bytes = vec![0u8; rows * rb];
            let mut place = |r0: usize, _: usize, b: &[u8]| {
                bytes[r0 * rb..r0 * rb + b.len()].copy_from_slice(b);
                Ok(())
            };
            match cache {
                Some(cache) => cache.rows(&key, shape, dtype, &mut place, make)?,
                None => make(&mut place)?,
            }
            let t = quant::qtensor(bytes, shape, dtype, device)?;
            Ok(Linear::Quantized {
                weight: QMatMul::from_arc(Arc::new(t))?,
                out: rows,
            })
        }
    }
}

/// Up to this many rows, `x Wᵀ` is computed as `(W xᵀ)ᵀ`.
const FEW_ROWS: usize = 32;

/// `x Wᵀ` for `x: [rows, in]`. With few rows (incremental rescoring feeds a handful of tokens)
/// candle's gemm is 2–4× faster reading `W` as the left operand, in its stored row-major order,
/// than as a transposed right operand; with many rows the usual order is faster.
fn dense_matmul(x: &Tensor, weight: &Tensor) -> Result<Tensor, ModelError> {
    let rows = x.dim(0)?;
    if rows > 1 && rows <= FEW_ROWS && weight.device().is_cpu() {
        Ok(weight.matmul(&x.t()?)?.t()?.contiguous()?)
    } else {
        Ok(x.matmul(&weight.t()?)?)
    }
}

/// Loads the named `[out_i, in_features]` weights and stacks them into one dense projection.
pub fn load_dense(
    ckpt: &mut Checkpoint,
    names: &[&str],
    outs: &[usize],
    in_features: usize,
    dtype: DType,
    device: &Device,
) -> Result<Linear, ModelError> {
    let parts = names
        .iter()
        .zip(outs)
        .map(|(name, &out)| ckpt.get(name, &[out, in_features], dtype, device))
        .collect::<Result<Vec<_>, _>>()?;
    let weight = if parts.len() == 1 {
        parts
            .into_iter()
            .next()
            .ok_or_else(|| ModelError::Input("no weights".into()))?
    } else {
        Tensor::cat(&parts, 0)?
    };
    Ok(Linear::Dense { weight })
}

/// Loads the named weights into one packed bf16 projection, one part at a time so that only
/// one part is ever held twice.
/// [`load_packed_bf16`] through a cache of the packed form: a warm start uses it in place in
/// the mapped file, a first start keeps what it packs.
fn load_packed_bf16_cached(
    ckpt: &mut Checkpoint,
    names: &[&str],
    outs: &[usize],
    in_features: usize,
    cache: &mut QuantCache,
) -> Result<Linear, ModelError> {
    for (name, &out) in names.iter().zip(outs) {
        ckpt.mark_taken(name, &[out, in_features])?;
    }
    let key = names.join("+");
    let rows: usize = outs.iter().sum();
    let shape = (rows, in_features);
    let len = PackedBf16::packed_len(rows, in_features);
    let kept = cache.packed(&key, shape, GgmlDType::BF16, len);
    if let Some(p) = kept.and_then(|b| PackedBf16::with_bytes(rows, in_features, b)) {
        return Ok(Linear::PackedBf16(Arc::new(p)));
    }
    let made = load_packed_bf16(ckpt, names, outs, in_features)?;
    if let Some(bytes) = made.packed_bytes() {
        cache.keep_packed(&key, shape, GgmlDType::BF16, bytes);
    }
    Ok(made)
}

pub fn load_packed_bf16(
    ckpt: &mut Checkpoint,
    names: &[&str],
    outs: &[usize],
    in_features: usize,
) -> Result<Linear, ModelError> {
    let rows: usize = outs.iter().sum();
    let mut packed = PackedBf16::zeroed(rows, in_features);
    let k = in_features;
    // An f32 or f16 checkpoint is rounded once, here.
    for_each_part(ckpt, names, outs, in_features, |row0, out, part| {
        packed.fill_rows(row0, out, |i, dst| part.row_into(i, k, dst))
    })?;
    Ok(Linear::PackedBf16(Arc::new(packed)))
}

/// Loads the named weights into one `Q12` projection, quantising row by row straight into the
/// packed form; through `cache` a warm start uses a kept packed form in place.
fn load_packed_q12(
    ckpt: &mut Checkpoint,
    names: &[&str],
    outs: &[usize],
    in_features: usize,
    mut cache: Option<&mut QuantCache>,
) -> Result<Linear, ModelError> {
    // A warm cache stands in for these tensors: they are used even when none of their bytes is.
    for (name, &out) in names.iter().zip(outs) {
        ckpt.mark_taken(name, &[out, in_features])?;
    }
    let (key, rows, k) = (names.join("+"), outs.iter().sum::<usize>(), in_features);
    let shape = (rows, k);
    let len = PackedQ::packed_len(QFormat::Q12, rows, k);
    let kept = cache
        .as_deref_mut()
        .and_then(|c| c.packed(&key, shape, quant::Q12_CACHE_TYPE, len))
        .and_then(|b| PackedQ::with_bytes(QFormat::Q12, rows, k, b));
    if let Some(p) = kept {
        return Ok(Linear::PackedQ(Arc::new(p)));
    }
    let mut packed = PackedQ::zeroed(QFormat::Q12, rows, k);
    for_each_part(ckpt, names, outs, k, |row0, out, part| {
        packed.fill_rows(row0, out, |i, dst| part.row_into(i, k, dst))
    })?;
    if let Some(cache) = cache {
        cache.keep_packed(&key, shape, quant::Q12_CACHE_TYPE, packed.packed());
    }
    Ok(Linear::PackedQ(Arc::new(packed)))
}

/// Loads the named weights into one packed f32 projection, one part at a time, converting
/// row by row so that no part is held twice.
pub fn load_packed_f32(
    ckpt: &mut Checkpoint,
    names: &[&str],
    outs: &[usize],
    in_features: usize,
) -> Result<Linear, ModelError> {
    let rows: usize = outs.iter().sum();
    let mut packed = PackedF32::zeroed(rows, in_features);
    let k = in_features;
    for_each_part(ckpt, names, outs, in_features, |row0, out, part| {
        packed.fill_rows(row0, out, |i, dst| part.row_into(i, k, dst))
    })?;
    Ok(Linear::PackedF32(Arc::new(packed)))
}

/// The values of one stored weight, in its stored dtype.
enum Part<'a> {
    F32(&'a [f32]),
    BF16(&'a [half::bf16]),
    F16(&'a [half::f16]),
}

impl Part<'_> {
    /// Row `i` (of `k` values) into `dst`, converted to the packed form's element.
    fn row_into<T: FromStored>(&self, i: usize, k: usize, dst: &mut [T]) {
        let span = i * k..(i + 1) * k;
        match self {
            Part::F32(v) => dst
                .iter_mut()
                .zip(&v[span])
                .for_each(|(d, &s)| *d = T::from_f32(s)),
            Part::BF16(v) => dst
                .iter_mut()
                .zip(&v[span])
                .for_each(|(d, &s)| *d = T::from_bf16(s)),
            Part::F16(v) => dst
                .iter_mut()
                .zip(&v[span])
                .for_each(|(d, &s)| *d = T::from_f16(s)),
        }
    }
}

/// An element of a packed weight, made from a stored value.
trait FromStored {
    fn from_f32(v: f32) -> Self;
    fn from_bf16(v: half::bf16) -> Self;
    fn from_f16(v: half::f16) -> Self;
}

/// bf16 bits: a bf16 value as it is, any other rounded once.
impl FromStored for u16 {
    fn from_f32(v: f32) -> Self {
        f32_to_bf16(v)
    }
    fn from_bf16(v: half::bf16) -> Self {
        v.to_bits()
    }
    fn from_f16(v: half::f16) -> Self {
        f32_to_bf16(v.to_f32())
    }
}

impl FromStored for f32 {
    fn from_f32(v: f32) -> Self {
        v
    }
    fn from_bf16(v: half::bf16) -> Self {
        v.to_f32()
    }
    fn from_f16(v: half::f16) -> Self {
        v.to_f32()
    }
}

/// Calls `fill(row0, rows, part)` for each named `[out_i, in_features]` weight in turn, as
/// stored, read on the CPU; each is dropped before the next is read.
fn for_each_part(
    ckpt: &mut Checkpoint,
    names: &[&str],
    outs: &[usize],
    in_features: usize,
    mut fill: impl FnMut(usize, usize, Part<'_>),
) -> Result<(), ModelError> {
    let mut row0 = 0;
    for (name, &out) in names.iter().zip(outs) {
        let part = ckpt.get_stored(name, &[out, in_features])?;
        let part = match part.dtype() {
            DType::F32 | DType::BF16 | DType::F16 => part,
            // Any other float dtype (f64) is widened or rounded to f32 first.
            _ => part.to_dtype(DType::F32)?,
        };
        let (storage, layout) = part.storage_and_layout();
        let candle_core::Storage::Cpu(cpu) = &*storage else {
            return Err(ModelError::Device("packed weights live on the CPU".into()));
        };
        let (a, b) = layout
            .contiguous_offsets()
            .ok_or_else(|| ModelError::Input("non-contiguous weight".into()))?;
        let values = match cpu {
            CpuStorage::F32(v) => Part::F32(&v[a..b]),
            CpuStorage::BF16(v) => Part::BF16(&v[a..b]),
            CpuStorage::F16(v) => Part::F16(&v[a..b]),
            _ => return Err(ModelError::Input("unexpected weight dtype".into())),
        };
        fill(row0, out, values);
        row0 += out;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tensor(n: usize, k: usize, seed: u64) -> Tensor {
        let mut s = seed;
        let v: Vec<f32> = (0..n * k)
            .map(|_| {
                s = s
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((s >> 40) as f32 / (1u64 << 23) as f32 - 1.0) * 0.1
            })
            .collect();
        Tensor::from_vec(v, (n, k), &Device::Cpu).unwrap()
    }

    fn max_rel(a: &Tensor, b: &Tensor) -> f32 {
        let d = (a - b).unwrap().abs().unwrap().max_all().unwrap();
        let s = b.abs().unwrap().max_all().unwrap();
        d.to_scalar::<f32>().unwrap() / s.to_scalar::<f32>().unwrap()
    }

    /// Writes weights to a safetensors file and opens it as a checkpoint.
    fn checkpoint(parts: &[(&str, &Tensor)], dtype: DType) -> (tempfile::TempDir, Checkpoint) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("model.safetensors");
        let map: std::collections::HashMap<String, Tensor> = parts
            .iter()
            .map(|(n, t)| (n.to_string(), t.to_dtype(dtype).unwrap()))
            .collect();
        candle_core::safetensors::save(&map, &path).unwrap();
        let ckpt = Checkpoint::open(&super::super::WeightFiles::Safetensors(vec![path])).unwrap();
        (dir, ckpt)
    }

    #[test]
    fn every_format_computes_the_dense_product() {
        let (k, outs) = (512, [96, 32]);
        let w0 = tensor(outs[0], k, 1);
        let w1 = tensor(outs[1], k, 2);
        let x = tensor(2 * 5, k, 3).reshape((2, 5, k)).unwrap();
        let (_dir, mut ckpt) = checkpoint(&[("a", &w0), ("b", &w1)], DType::BF16);
        let dev = Device::Cpu;
        let dense = load(
            &mut ckpt,
            &["a", "b"],
            &outs,
            k,
            WeightFormat::Dense(DType::F32),
            &dev,
            None,
        )
        .unwrap();
        let want = dense.forward(&x).unwrap();
        assert_eq!(want.dims(), &[2, 5, 128]);
        // Tolerances: bf16 rounding of activations; 8-bit blocks; 4-bit blocks.
        for (format, tol) in [
            (WeightFormat::PackedBf16, 1e-2),
            (WeightFormat::PackedQ12, 1e-3),
            (WeightFormat::Quantized(GgmlDType::Q8_0), 2e-2),
            (WeightFormat::Quantized(GgmlDType::Q4_0), 0.2),
            (WeightFormat::Quantized(GgmlDType::Q4K), 0.15),
        ] {
            let lin = load(&mut ckpt, &["a", "b"], &outs, k, format, &dev, None).unwrap();
            assert_eq!(lin.out_features(), 128);
            let got = lin.forward(&x).unwrap();
            assert_eq!(got.dims(), want.dims());
            let err = max_rel(&got, &want);
            assert!(err <= tol, "{format:?}: relative error {err}");
        }
    }

    #[test]
    fn quantised_rows_past_the_first_chunk_of_an_f32_checkpoint_are_its_own() {
        // More rows than one quantisation chunk (512), stored in f32 so that no conversion
        // copy is made: each chunk must quantise its own rows.
        let (k, n) = (64, 600);
        let w = tensor(n, k, 11);
        let x = tensor(3, k, 12);
        let (_dir, mut ckpt) = checkpoint(&[("w", &w)], DType::F32);
        let dev = Device::Cpu;
        let want = x.matmul(&w.t().unwrap()).unwrap();
        for (format, tol) in [
            (WeightFormat::PackedQ12, 1e-3),
            (WeightFormat::Quantized(GgmlDType::Q8_0), 2e-2),
            (WeightFormat::Quantized(GgmlDType::Q4K), 0.15),
        ] {
            let lin = load(&mut ckpt, &["w"], &[n], k, format, &dev, None).unwrap();
            let got = lin.forward(&x).unwrap();
            let tail = |t: &Tensor| t.narrow(1, 512, n - 512).unwrap();
            let err = max_rel(&tail(&got), &tail(&want));
            assert!(err <= tol, "{format:?}: rows past 512 off by {err}");
        }
    }

    #[test]
    fn packed_bf16_from_an_f32_checkpoint_rounds_the_weights_once() {
        let (k, n) = (64, 20);
        let w = tensor(n, k, 7);
        let x = tensor(3, k, 8);
        let (_dir, mut ckpt) = checkpoint(&[("w", &w)], DType::F32);
        let lin = load_packed_bf16(&mut ckpt, &["w"], &[n], k).unwrap();
        let rounded = w
            .to_dtype(DType::BF16)
            .unwrap()
            .to_dtype(DType::F32)
            .unwrap();
        let want = x.matmul(&rounded.t().unwrap()).unwrap();
        let got = lin.forward(&x).unwrap();
        assert!(max_rel(&got, &want) <= 1e-2);
        assert_eq!(
            lin.weight_bytes(),
            2 * k * 32,
            "two panels of 16 rows, bf16"
        );
    }
}
