//! The projections of the decoder. Projections that read the same input (q/k/v, gate/up) are
//! stored as one matrix so that each is a single matrix product.

use candle_core::{DType, Device, Tensor};

use super::weights::Checkpoint;
use super::ModelError;

/// Builds one projection from the named `[out_i, in]` checkpoint tensors, stacked along `out`.
pub type LinearLoader<'a> =
    dyn Fn(&mut Checkpoint, &[&str], &[usize], usize) -> Result<Linear, ModelError> + 'a;

/// `y = x Wᵀ` for a weight `W` of shape `[out, in]`.
#[derive(Debug)]
pub enum Linear {
    Dense { weight: Tensor },
}

impl Linear {
    pub fn forward(&self, x: &Tensor) -> Result<Tensor, ModelError> {
        match self {
            Linear::Dense { weight } => {
                let dims = x.dims();
                let (rows, k) = (
                    dims[..dims.len() - 1].iter().product::<usize>(),
                    dims[dims.len() - 1],
                );
                let out = weight.dim(0)?;
                let y = dense_matmul(&x.reshape((rows, k))?, weight)?;
                let mut shape = dims.to_vec();
                *shape.last_mut().unwrap_or(&mut 0) = out;
                Ok(y.reshape(shape)?)
            }
        }
    }

    pub fn out_features(&self) -> usize {
        match self {
            Linear::Dense { weight } => weight.dims()[0],
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
