//! The whole attention for a few query rows, as when a word is appended to a cached input. A
//! block of query rows shares each key's and value's load, and sums sit in registers across the
//! head dimension: one row at a time, each dot product waited on its own chain of adds and each
//! value row was added through memory, which made attention a tenth of an append.

use candle_core::{DType, Result, Tensor};
use rayon::prelude::*;

use super::{exp_nonpositive, f32_values, f32s, visible};

mod simd;
use crate::model::gpu::RowPlacement;

/// Query rows (per batch and key head) up to which [`attend_few`] is used.
pub const FEW_ROWS: usize = 64;

/// Query rows that share each key's load (a grouped head's rows for one token, in Mistral).
const BLOCK: usize = 4;

/// The whole attention for a few query rows: `softmax(scale × q·kᵀ)·v` over the keys each row
/// may see, for `q: [b, kv_heads, rows, d]` (rows placed as `at` says, all of a group's rows)
/// and `k`, `v: [b, kv_heads, keys, d]`, f32 on the CPU; `None` for anything else. The general
/// path's three small batched products cost more in thread hand-offs than in arithmetic here.
pub fn attend_few(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    scale: f64,
    at: RowPlacement,
) -> Result<Option<Tensor>> {
    let on_cpu_f32 = [q, k, v]
        .iter()
        .all(|t| t.device().is_cpu() && t.dtype() == DType::F32);
    if !on_cpu_f32 || !q.is_contiguous() || scale <= 0.0 {
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
    let (Some(qv), Some(kg), Some(vg)) = (
        f32_values(&qs, ql, q.elem_count()),
        groups(&ks, kl, keys, d),
        groups(&vs, vl, keys, d),
    ) else {
        return Ok(None);
    };
    let mut out = vec![0f32; b * heads * rows * d];
    let scale = scale as f32;
    let isa = Isa::detect(d);
    out.par_chunks_mut(rows * d).enumerate().for_each_init(
        || vec![0f32; BLOCK * keys],
        |probs, (g, dst)| {
            let qg = &qv[g * rows * d..(g + 1) * rows * d];
            let group = Group {
                q: qg,
                k: kg[g],
                v: vg[g],
                d,
                scale,
                at,
            };
            attend_group(isa, group, dst, probs);
        },
    );
    Ok(Some(Tensor::from_vec(
        out,
        (b, heads, rows, d),
        q.device(),
    )?))
}

/// Each (batch, head) group's `[keys, d]` rows of `[b, heads, keys, d]` in `s` laid out as
/// `l`: contiguous within a group, groups anywhere (a cache with room to grow spaces its
/// heads by its capacity).
fn groups<'a>(
    s: &'a candle_core::Storage,
    l: &candle_core::Layout,
    keys: usize,
    d: usize,
) -> Option<Vec<&'a [f32]>> {
    let all = f32s(s)?;
    let (dims, stride) = (l.dims(), l.stride());
    if dims.len() != 4 || (keys > 1 && stride[2] != d) || (d > 1 && stride[3] != 1) {
        return None;
    }
    let mut out = Vec::with_capacity(dims[0] * dims[1]);
    for bi in 0..dims[0] {
        for h in 0..dims[1] {
            let at = l.start_offset() + bi * stride[0] + h * stride[1];
            out.push(all.get(at..at.checked_add(keys * d)?)?);
        }
    }
    Some(out)
}

/// One (batch, key head) group's inputs: `q: [rows, d]`, `k` and `v: [keys, d]`.
#[derive(Clone, Copy)]
struct Group<'a> {
    q: &'a [f32],
    k: &'a [f32],
    v: &'a [f32],
    d: usize,
    scale: f32,
    at: RowPlacement,
}

/// The vector code a head dimension can run here.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Isa {
    /// 16 lanes (`d` a multiple of 16).
    Avx512,
    /// 8 lanes with FMA (`d` a multiple of 8).
    Avx2,
    /// One lane, any `d`, no FMA instruction assumed.
    Scalar,
}

impl Isa {
    /// The widest that runs `d` here.
    fn detect(d: usize) -> Isa {
        [Isa::Avx512, Isa::Avx2]
            .into_iter()
            .find(|isa| isa.runs(d))
            .unwrap_or(Isa::Scalar)
    }

    fn lanes(self) -> usize {
        match self {
            Isa::Avx512 => 16,
            Isa::Avx2 => 8,
            Isa::Scalar => 1,
        }
    }

    /// The output lanes of the weighted sum where `d` is a multiple of them (else
    /// [`Isa::lanes`]): four rows' sums of that width fill half the vector registers.
    fn wide(self) -> usize {
        match self {
            Isa::Avx512 => 64,
            Isa::Avx2 => 16,
            Isa::Scalar => 1,
        }
    }

    /// Whether this processor has the instructions and `d` is whole vectors.
    fn runs(self, d: usize) -> bool {
        if !d.is_multiple_of(self.lanes()) {
            return false;
        }
        #[cfg(target_arch = "x86_64")]
        {
            let fma = super::avx2_fma();
            match self {
                Isa::Avx512 => fma && std::arch::is_x86_feature_detected!("avx512f"),
                Isa::Avx2 => fma,
                Isa::Scalar => true,
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            self == Isa::Scalar
        }
    }
}

/// Runs [`group`] on `isa`, which the caller has detected for `g.d`.
fn attend_group(isa: Isa, g: Group<'_>, out: &mut [f32], probs: &mut [f32]) {
    match isa {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: AVX-512F and FMA were detected, and d is a multiple of 16.
        Isa::Avx512 => unsafe { group_avx512(g, out, probs) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: AVX2 and FMA were detected, and d is a multiple of 8.
        Isa::Avx2 => unsafe { group_avx2(g, out, probs) },
        _ => group::<simd::Scalar, 1>(g, out, probs),
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
unsafe fn group_avx512(g: Group<'_>, out: &mut [f32], probs: &mut [f32]) {
    if g.d.is_multiple_of(Isa::Avx512.wide()) {
        group::<simd::Avx512, 4>(g, out, probs)
    } else {
        group::<simd::Avx512, 1>(g, out, probs)
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn group_avx2(g: Group<'_>, out: &mut [f32], probs: &mut [f32]) {
    if g.d.is_multiple_of(Isa::Avx2.wide()) {
        group::<simd::Avx2, 2>(g, out, probs)
    } else {
        group::<simd::Avx2, 1>(g, out, probs)
    }
}

/// One group's attention in blocks of [`BLOCK`] query rows; `PV` vectors of each row's output
/// stay in registers over the values (`d` a multiple of `PV` vectors).
#[inline(always)]
fn group<S: simd::Lanes, const PV: usize>(g: Group<'_>, out: &mut [f32], probs: &mut [f32]) {
    let d = g.d;
    let rows = out.len() / d;
    let keys = g.k.len() / d;
    assert!(d.is_multiple_of(S::N * PV) && g.q.len() == rows * d && g.v.len() == keys * d);
    assert!(probs.len() >= BLOCK * keys && rows > 0 && keys > 0);
    let mut first = 0;
    while first < rows {
        let n = BLOCK.min(rows - first);
        // A short last block repeats its last row; the repeat's output is not written.
        let row = |r: usize| first + r.min(n - 1);
        let span: [(usize, usize); BLOCK] = std::array::from_fn(|r| visible(g.at, row(r)));
        let lo = span.iter().map(|s| s.0).min().unwrap_or(0);
        let hi = span.iter().map(|s| s.1).max().unwrap_or(0).min(keys - 1);
        let q: [&[f32]; BLOCK] = std::array::from_fn(|r| &g.q[row(r) * d..][..d]);
        // SAFETY: rows of q are d long, keys lo..=hi lie in k and v, probs holds BLOCK rows
        // of keys, and d is whole vectors (all asserted above).
        unsafe { scores::<S>(q, g.k, lo, hi, d, probs, keys) };
        let mut inv = [0f32; BLOCK];
        for (r, &(a, b)) in span.iter().enumerate() {
            let p = &mut probs[r * keys..(r + 1) * keys];
            let max = p[a..=b].iter().copied().fold(f32::NEG_INFINITY, f32::max);
            for x in &mut p[a..=b] {
                *x = exp_nonpositive((*x - max) * g.scale);
            }
            // Keys the block reads that this row may not see weigh nothing.
            p[lo..a].fill(0.0);
            p[b + 1..=hi].fill(0.0);
            inv[r] = 1.0 / p[a..=b].iter().sum::<f32>();
        }
        let dst = &mut out[first * d..(first + n) * d];
        // SAFETY: as for the scores, and dst holds n ≤ BLOCK rows of d.
        unsafe { weighted::<S, PV>(probs, keys, g.v, lo, hi, d, &inv, dst) };
        first += n;
    }
}

/// `probs[r·keys + j] = q[r] · k[j]` for `j` in `lo..=hi`, two keys at a time so that eight
/// sums are in flight.
///
/// # Safety
/// The caller has `S`'s instructions, rows of `q` and `k` are `d` long, `hi < keys`, `probs`
/// holds [`BLOCK`] rows of `keys` and `d` is a multiple of `S::N`.
#[inline(always)]
unsafe fn scores<S: simd::Lanes>(
    q: [&[f32]; BLOCK],
    k: &[f32],
    lo: usize,
    hi: usize,
    d: usize,
    probs: &mut [f32],
    keys: usize,
) {
    let mut j = lo;
    while j <= hi {
        let pair = j < hi;
        let k0 = k.as_ptr().add(j * d);
        let k1 = if pair { k0.add(d) } else { k0 };
        let mut a0 = [S::zero(); BLOCK];
        let mut a1 = [S::zero(); BLOCK];
        for c in (0..d).step_by(S::N) {
            let x0 = S::load(k0.add(c));
            let x1 = S::load(k1.add(c));
            for r in 0..BLOCK {
                let y = S::load(q[r].as_ptr().add(c));
                a0[r] = S::fma(y, x0, a0[r]);
                a1[r] = S::fma(y, x1, a1[r]);
            }
        }
        for r in 0..BLOCK {
            *probs.get_unchecked_mut(r * keys + j) = S::sum(a0[r]);
            if pair {
                *probs.get_unchecked_mut(r * keys + j + 1) = S::sum(a1[r]);
            }
        }
        j += if pair { 2 } else { 1 };
    }
}

/// `out[r] = inv[r] · Σⱼ probs[r·keys + j] · v[j]` over `j` in `lo..=hi`, for the block's `n`
/// rows (`out: [n, d]`), `PV` vectors of output at a time.
///
/// # Safety
/// As [`scores`], with `out` holding at most [`BLOCK`] rows of `d`, a multiple of `PV` vectors.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn weighted<S: simd::Lanes, const PV: usize>(
    probs: &[f32],
    keys: usize,
    v: &[f32],
    lo: usize,
    hi: usize,
    d: usize,
    inv: &[f32; BLOCK],
    out: &mut [f32],
) {
    let n = out.len() / d;
    for c in (0..d).step_by(S::N * PV) {
        let mut acc = [[S::zero(); PV]; BLOCK];
        for j in lo..=hi {
            let x = v.as_ptr().add(j * d + c);
            let x: [S::V; PV] = std::array::from_fn(|i| S::load(x.add(i * S::N)));
            for (r, acc) in acc.iter_mut().enumerate() {
                let w = S::splat(*probs.get_unchecked(r * keys + j));
                for (a, &x) in acc.iter_mut().zip(&x) {
                    *a = S::fma(w, x, *a);
                }
            }
        }
        for (r, acc) in acc.iter().enumerate().take(n) {
            let scale = S::splat(inv[r]);
            for (i, &a) in acc.iter().enumerate() {
                S::store(out.as_mut_ptr().add(r * d + c + i * S::N), S::mul(a, scale));
            }
        }
    }
}

#[cfg(test)]
mod tests;
