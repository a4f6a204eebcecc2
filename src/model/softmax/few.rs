//! The whole attention for a few query rows, as when a word is appended to a cached input. A
//! block of query rows shares each key's and value's load, and sums sit in registers across the
//! head dimension: one row at a time, each dot product waited on its own chain of adds and each
//! value row was added through memory, which made attention a tenth of an append. Several keys'
//! dot products are reduced across lanes together, and the softmax runs down the block's rows
//! at once (`benches/attention.rs`).

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
        _ => group::<simd::Scalar, 1, 2>(g, out, probs),
    }
}

/// Four keys' scores at once: their 16 sums fill half the registers and are reduced together.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
unsafe fn group_avx512(g: Group<'_>, out: &mut [f32], probs: &mut [f32]) {
    if g.d.is_multiple_of(Isa::Avx512.wide()) {
        group::<simd::Avx512, 4, 4>(g, out, probs)
    } else {
        group::<simd::Avx512, 1, 4>(g, out, probs)
    }
}

/// Two keys' scores at once: sixteen 8-lane registers hold no more beside the rows' vectors.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn group_avx2(g: Group<'_>, out: &mut [f32], probs: &mut [f32]) {
    if g.d.is_multiple_of(Isa::Avx2.wide()) {
        group::<simd::Avx2, 2, 2>(g, out, probs)
    } else {
        group::<simd::Avx2, 1, 2>(g, out, probs)
    }
}

/// One group's attention in blocks of [`BLOCK`] query rows; `PV` vectors of each row's output
/// stay in registers over the values (`d` a multiple of `PV` vectors), and `KEYS` keys' scores
/// are summed at once. `probs` holds a block's scores key by key, `[keys][BLOCK]`, so that
/// the softmax runs down four rows' columns at once.
#[inline(always)]
fn group<S: simd::Lanes, const PV: usize, const KEYS: usize>(
    g: Group<'_>,
    out: &mut [f32],
    probs: &mut [f32],
) {
    let d = g.d;
    let rows = out.len() / d;
    let keys = g.k.len() / d;
    assert!(d.is_multiple_of(S::N * PV) && g.q.len() == rows * d && g.v.len() == keys * d);
    assert!(probs.len() >= BLOCK * keys && rows > 0 && keys > 0 && KEYS > 0);
    let mut first = 0;
    while first < rows {
        let n = BLOCK.min(rows - first);
        // A short last block repeats its last row; the repeat's output is not written.
        let row = |r: usize| first + r.min(n - 1);
        let span: [(usize, usize); BLOCK] = std::array::from_fn(|r| visible(g.at, row(r)));
        let lo = span.iter().map(|s| s.0).min().unwrap_or(0);
        let hi = span.iter().map(|s| s.1).max().unwrap_or(0).min(keys - 1);
        let q: [&[f32]; BLOCK] = std::array::from_fn(|r| &g.q[row(r) * d..][..d]);
        let p = &mut probs[..(hi + 1 - lo) * BLOCK];
        // SAFETY: rows of q are d long, keys lo..=hi lie in k and v, p holds their BLOCK
        // scores each, and d is whole vectors (all asserted above).
        unsafe { scores::<S, KEYS>(q, g.k, lo, hi, d, p) };
        // Keys the block reads that a row may not see weigh nothing.
        for (r, &(a, b)) in span.iter().enumerate() {
            for j in (lo..a).chain(b + 1..=hi) {
                p[(j - lo) * BLOCK + r] = f32::NEG_INFINITY;
            }
        }
        let inv = softmax_columns(p, g.scale);
        let dst = &mut out[first * d..(first + n) * d];
        // SAFETY: as for the scores, and dst holds n ≤ BLOCK rows of d.
        unsafe { weighted::<S, PV>(p, g.v, lo, d, &inv, dst) };
        first += n;
    }
}

/// Lanes of [`softmax_columns`]' running max and sums: four keys of [`BLOCK`] rows.
const W: usize = 4 * BLOCK;

/// Each row's `exp(scale × (x − max))` over its column of `p: [keys][BLOCK]`, in place (a key
/// scored −∞ gives 0), and 1 / each column's sum. Sixteen lanes at a time, so that the max and
/// the sums run as vectors, not as one chain of dependent instructions per row.
#[inline(always)]
fn softmax_columns(p: &mut [f32], scale: f32) -> [f32; BLOCK] {
    let mut m = [f32::NEG_INFINITY; W];
    let mut chunks = p.chunks_exact(W);
    for c in &mut chunks {
        for i in 0..W {
            m[i] = m[i].max(c[i]);
        }
    }
    for (m, &x) in m.iter_mut().zip(chunks.remainder()) {
        *m = m.max(x);
    }
    let max: [f32; W] = std::array::from_fn(|i| {
        (i % BLOCK..W)
            .step_by(BLOCK)
            .map(|j| m[j])
            .fold(f32::NEG_INFINITY, f32::max)
    });
    let mut s = [0f32; W];
    let mut chunks = p.chunks_exact_mut(W);
    for c in &mut chunks {
        for i in 0..W {
            c[i] = exp_nonpositive((c[i] - max[i]) * scale);
            s[i] += c[i];
        }
    }
    for (i, x) in chunks.into_remainder().iter_mut().enumerate() {
        *x = exp_nonpositive((*x - max[i]) * scale);
        s[i] += *x;
    }
    std::array::from_fn(|r| 1.0 / (r..W).step_by(BLOCK).map(|j| s[j]).sum::<f32>())
}

/// `p[(j − lo)·BLOCK + r] = q[r] · k[j]` for `j` in `lo..=hi`, `KEYS` keys at a time: their
/// `KEYS × BLOCK` sums stay in registers over `d` and are reduced across lanes together.
///
/// # Safety
/// The caller has `S`'s instructions, rows of `q` and `k` are `d` long, `hi` is a key of `k`,
/// `p` holds `(hi + 1 − lo) · BLOCK` floats and `d` is a multiple of `S::N`.
#[inline(always)]
unsafe fn scores<S: simd::Lanes, const KEYS: usize>(
    q: [&[f32]; BLOCK],
    k: &[f32],
    lo: usize,
    hi: usize,
    d: usize,
    p: &mut [f32],
) {
    let mut j = lo;
    while j <= hi {
        let n = KEYS.min(hi + 1 - j);
        // A short last group repeats its last key; the repeat's scores are not written.
        let kp: [*const f32; KEYS] =
            std::array::from_fn(|i| k.as_ptr().add((j + i.min(n - 1)) * d));
        let mut acc = [[S::zero(); BLOCK]; KEYS];
        for c in (0..d).step_by(S::N) {
            // Loops, not closures: a closure would not inherit the caller's target features,
            // and the intrinsics in it would become calls.
            let mut y = [S::zero(); BLOCK];
            for (y, q) in y.iter_mut().zip(&q) {
                *y = S::load(q.as_ptr().add(c));
            }
            for (kp, acc) in kp.iter().zip(&mut acc) {
                let x = S::load(kp.add(c));
                for (a, &y) in acc.iter_mut().zip(&y) {
                    *a = S::fma(y, x, *a);
                }
            }
        }
        let dst = p.as_mut_ptr().add((j - lo) * BLOCK);
        if n == KEYS {
            S::sums(&acc, dst);
        } else {
            let mut t = [[0f32; BLOCK]; KEYS];
            S::sums(&acc, t.as_mut_ptr() as *mut f32);
            std::ptr::copy_nonoverlapping(t.as_ptr() as *const f32, dst, n * BLOCK);
        }
        j += n;
    }
}

/// `out[r] = inv[r] · Σⱼ p[(j − lo)·BLOCK + r] · v[j]` over the block's keys, for its `n`
/// rows (`out: [n, d]`), `PV` vectors of output at a time.
///
/// # Safety
/// As [`scores`], with `out` holding at most [`BLOCK`] rows of `d`, a multiple of `PV` vectors.
#[inline(always)]
unsafe fn weighted<S: simd::Lanes, const PV: usize>(
    p: &[f32],
    v: &[f32],
    lo: usize,
    d: usize,
    inv: &[f32; BLOCK],
    out: &mut [f32],
) {
    let n = out.len() / d;
    let width = p.len() / BLOCK;
    for c in (0..d).step_by(S::N * PV) {
        let mut acc = [[S::zero(); PV]; BLOCK];
        for j in 0..width {
            let x = v.as_ptr().add((lo + j) * d + c);
            let mut xs = [S::zero(); PV];
            for (i, xs) in xs.iter_mut().enumerate() {
                *xs = S::load(x.add(i * S::N));
            }
            for (r, acc) in acc.iter_mut().enumerate() {
                let w = S::splat(*p.get_unchecked(j * BLOCK + r));
                for (a, &x) in acc.iter_mut().zip(&xs) {
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
