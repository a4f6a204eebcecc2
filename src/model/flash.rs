//! Attention through flash-attention 2 on CUDA (feature `flash-attn`), for bf16/f16 models.
//! Same result as the eager path: causal (queries aligned to the end of the keys, so a prefix
//! cache works unchanged) and, with a sliding window, only the last `window` positions.

use candle_core::{DType, Tensor};

use super::ModelError;

/// `q`: `[b, heads, t, d]`, `k`/`v`: `[b, kv_heads, total, d]` (total ≥ t, the queries being
/// the last t positions). `[b, t, heads · d]`, or `None` where flash-attention does not apply
/// (not on CUDA, or not a 16-bit dtype) and the eager path must run.
pub fn attend(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    window: Option<usize>,
) -> Result<Option<Tensor>, ModelError> {
    if !q.device().is_cuda() || !matches!(q.dtype(), DType::BF16 | DType::F16) {
        return Ok(None);
    }
    let (b, h, t, d) = q.dims4()?;
    let scale = 1.0 / (d as f32).sqrt();
    let q = q.transpose(1, 2)?.contiguous()?;
    let k = k.transpose(1, 2)?.contiguous()?;
    let v = v.transpose(1, 2)?.contiguous()?;
    // transformers' window w lets a query see itself and the w - 1 positions before it.
    let out = candle_flash_attn::flash_attn_windowed(
        &q,
        &k,
        &v,
        scale,
        window.map(|w| w.saturating_sub(1)),
        Some(0),
    )?;
    Ok(Some(out.reshape((b, t, h * d))?))
}
