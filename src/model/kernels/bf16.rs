//! `y = x Wᵀ` with bf16 weights and f32 activations and outputs.
//!
//! The weights are packed once at load time into panels of 16 output columns, with the inner
//! dimension in pairs (`[panel][k / 2][16 columns][2]`), which is the operand layout of the
//! AVX512-BF16 dot-product instruction: one 64-byte load feeds 16 columns × 2 products. The same
//! layout serves the AVX2 kernel (bf16 → f32 is a 16-bit shift) and the portable one.
//!
//! Only the activations are rounded (to bf16, for the AVX512-BF16 kernel); the weights of a bf16
//! checkpoint are used exactly and every sum is accumulated in f32, so this is closer to the f32
//! model than a computation that keeps activations in bf16 throughout.

use super::bytes::WeightBytes;
pub use super::NR;
use super::{Isa, SendPtr};

/// u16 values per (panel, k-pair).
const PAIR: usize = 2 * NR;
/// k-pairs per block: a block of three panels (96 KiB) stays in L2 while every row passes it.
const KC: usize = 512;
/// Below this many multiply-adds a single thread is faster than waking the pool.
const PARALLEL_MIN: usize = 1 << 18;

/// The packed values: made in memory, or in place in a mapped cache file (little-endian u16, at
/// an even offset, as [`PackedBf16::with_bytes`] checks).
enum Values {
    Owned(Vec<u16>),
    Mapped(WeightBytes),
}

impl std::ops::Deref for Values {
    type Target = [u16];

    fn deref(&self) -> &[u16] {
        match self {
            Values::Owned(v) => v,
            // SAFETY: any two bytes are a u16; `with_bytes` admitted only bytes that align.
            Values::Mapped(b) => unsafe { b.align_to::<u16>().1 },
        }
    }
}

/// A weight matrix `W` of shape `[n, k]` packed for [`PackedBf16::matmul`].
pub struct PackedBf16 {
    data: Values,
    n: usize,
    k: usize,
    /// k rounded up to pairs.
    kp: usize,
    panels: usize,
}

impl std::fmt::Debug for PackedBf16 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PackedBf16 {{ n: {}, k: {} }}", self.n, self.k)
    }
}

impl PackedBf16 {
    /// An all-zero `[n, k]` matrix, to be filled with [`PackedBf16::fill_rows`]. Untouched
    /// pages are never faulted in, so filling part by part costs only what is filled.
    pub fn zeroed(n: usize, k: usize) -> Self {
        Self::with_values(n, k, Values::Owned(vec![0u16; Self::packed_len(n, k) / 2]))
    }

    fn with_values(n: usize, k: usize, data: Values) -> Self {
        Self {
            data,
            n,
            k,
            kp: k.div_ceil(2),
            panels: n.div_ceil(NR),
        }
    }

    /// Bytes of the packed form of an `[n, k]` weight.
    pub fn packed_len(n: usize, k: usize) -> usize {
        n.div_ceil(NR) * k.div_ceil(2) * PAIR * 2
    }

    /// A matrix from bytes already in the packed form ([`PackedBf16::packed`] of an equal one),
    /// or `None` when there are not exactly as many as its shape needs, or they are not at an
    /// even address.
    pub fn with_bytes(n: usize, k: usize, data: WeightBytes) -> Option<Self> {
        // SAFETY: only the split is looked at; any two bytes are a u16.
        let (head, _, tail) = unsafe { data.align_to::<u16>() };
        if data.len() != Self::packed_len(n, k) || !head.is_empty() || !tail.is_empty() {
            return None;
        }
        Some(Self::with_values(n, k, Values::Mapped(data)))
    }

    /// The packed form as bytes (little-endian here), to be kept and given back to
    /// [`PackedBf16::with_bytes`].
    pub fn packed(&self) -> &[u8] {
        let v: &[u16] = &self.data;
        // SAFETY: a u16 slice viewed as its bytes: same memory, alignment 1, twice the length.
        unsafe { std::slice::from_raw_parts(v.as_ptr().cast::<u8>(), std::mem::size_of_val(v)) }
    }

    /// Whether the weights are used in place from a mapped file.
    pub fn is_mapped(&self) -> bool {
        matches!(self.data, Values::Mapped(_))
    }

    /// Sets rows `row0..row0 + rows`: `row(i, dst)` writes the bf16 bits of row `row0 + i`.
    pub fn fill_rows(&mut self, row0: usize, rows: usize, row: impl Fn(usize, &mut [u16]) + Sync) {
        assert!(
            row0 + rows <= self.n,
            "rows {row0}..{} of {}",
            row0 + rows,
            self.n
        );
        let k = self.k;
        let Values::Owned(data) = &mut self.data else {
            panic!("mapped weights are read-only");
        };
        let panel_len = self.kp * PAIR;
        super::fill_panel_rows(
            data,
            panel_len,
            row0,
            rows,
            || vec![0u16; k],
            |buf, panel, c, i| {
                row(i, buf);
                for (kk, &v) in buf.iter().enumerate() {
                    panel[(kk / 2) * PAIR + c * 2 + (kk & 1)] = v;
                }
            },
        );
    }

    /// Packs `W` given row by row: `row(i, dst)` writes the bf16 bits of row `i` (`k` values).
    pub fn pack(n: usize, k: usize, row: impl Fn(usize, &mut [u16]) + Sync) -> Self {
        let mut p = Self::zeroed(n, k);
        p.fill_rows(0, n, row);
        p
    }

    /// Packs a row-major `[n, k]` matrix of bf16 bit patterns.
    pub fn from_rows(w: &[u16], n: usize, k: usize) -> Self {
        assert_eq!(w.len(), n * k, "weight has {} values, not {n}×{k}", w.len());
        Self::pack(n, k, |i, dst| dst.copy_from_slice(&w[i * k..(i + 1) * k]))
    }

    pub fn out_features(&self) -> usize {
        self.n
    }

    pub fn in_features(&self) -> usize {
        self.k
    }

    /// Bytes of the packed weights.
    pub fn bytes(&self) -> usize {
        self.data.len() * 2
    }

    /// The kernel [`PackedBf16::matmul`] uses on this processor.
    pub fn best_isa() -> Isa {
        [Isa::Avx512Bf16, Isa::Avx2]
            .into_iter()
            .find(|i| i.is_available())
            .unwrap_or(Isa::Scalar)
    }

    /// `out[m, n] = x[m, k] · Wᵀ` with the best kernel this processor has.
    pub fn matmul(&self, x: &[f32], m: usize, out: &mut [f32]) {
        self.matmul_with(Self::best_isa(), x, m, out)
    }

    /// As [`PackedBf16::matmul`] with a chosen kernel; `isa` must be one this processor runs.
    pub fn matmul_with(&self, isa: Isa, x: &[f32], m: usize, out: &mut [f32]) {
        let (n, k, kp) = (self.n, self.k, self.kp);
        super::assert_matmul_shapes(x, out, m, n, k);
        assert!(isa.is_available(), "{isa:?} is not available");
        if m == 0 || n == 0 {
            return;
        }
        if k == 0 {
            out.fill(0.0);
            return;
        }
        let parallel = m * n * k >= PARALLEL_MIN;
        let c = SendPtr(out.as_mut_ptr());
        match isa {
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512Bf16 => {
                let a = avx512::to_bf16_pairs(x, m, k, kp);
                let a_ptr = a.as_ptr() as usize;
                super::drive(
                    self.panels,
                    self.kp,
                    KC,
                    m,
                    8,
                    3,
                    parallel,
                    |r0, mr, p0, np, j0, nj, acc| {
                        let ncols = (n - p0 * NR).min(np * NR);
                        // SAFETY: the kernel reads rows r0..r0+mr of `a` and pairs j0..j0+nj of
                        // panels p0..p0+np, all inside the buffers, and writes only its own tile.
                        unsafe {
                            avx512::tile_any(
                                mr,
                                np,
                                (a_ptr as *const u32).add(r0 * kp + j0),
                                kp,
                                self.data.as_ptr().add((p0 * kp + j0) * PAIR),
                                kp * PAIR,
                                nj,
                                c.get().add(r0 * n + p0 * NR),
                                n,
                                ncols,
                                acc,
                            )
                        }
                    },
                );
            }
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => {
                let padded;
                let a: &[f32] = if k == 2 * kp {
                    x
                } else {
                    padded = pad_rows(x, m, k, 2 * kp);
                    &padded
                };
                let a_ptr = a.as_ptr() as usize;
                // Rows in blocks whose f32 activations for one k block (60 rows: 240 KiB)
                // stay in L2.
                super::drive_blocked(
                    self.panels,
                    self.kp,
                    KC,
                    (m, 60),
                    avx2::MR,
                    1,
                    parallel,
                    |r0, mr, p0, _np, j0, nj, acc| {
                        let ncols = (n - p0 * NR).min(NR);
                        // SAFETY: as above.
                        unsafe {
                            avx2::tile_any(
                                mr,
                                r0 == 0,
                                (a_ptr as *const f32).add(r0 * 2 * kp + 2 * j0),
                                2 * kp,
                                self.data.as_ptr().add((p0 * kp + j0) * PAIR),
                                nj,
                                c.get().add(r0 * n + p0 * NR),
                                n,
                                ncols,
                                acc,
                            )
                        }
                    },
                );
            }
            _ => {
                let a = pad_rows(x, m, k, 2 * kp);
                super::drive(
                    self.panels,
                    self.kp,
                    KC,
                    m,
                    4,
                    1,
                    parallel,
                    |r0, mr, p0, _np, j0, nj, acc| {
                        let ncols = (n - p0 * NR).min(NR);
                        for r in r0..r0 + mr {
                            let arow = &a[r * 2 * kp..(r + 1) * 2 * kp];
                            for col in 0..ncols {
                                let mut s = 0f32;
                                for j in j0..j0 + nj {
                                    let w = &self.data[(p0 * kp + j) * PAIR + col * 2..][..2];
                                    s += arow[2 * j] * bf16_to_f32(w[0]);
                                    s += arow[2 * j + 1] * bf16_to_f32(w[1]);
                                }
                                // SAFETY: (r, p0 * NR + col) is inside this tile of `out`.
                                unsafe {
                                    let dst = c.get().add(r * n + p0 * NR + col);
                                    *dst = if acc { *dst + s } else { s };
                                }
                            }
                        }
                    },
                );
            }
        }
    }
}

/// bf16 bit pattern to f32 (exact).
#[inline]
pub fn bf16_to_f32(b: u16) -> f32 {
    f32::from_bits((b as u32) << 16)
}

/// f32 to the nearest bf16 bit pattern (ties to even), as the hardware conversion does.
#[inline]
pub fn f32_to_bf16(x: f32) -> u16 {
    half::bf16::from_f32(x).to_bits()
}

/// Rows of `k` values copied into rows of `width ≥ k`, zero-filled.
fn pad_rows(x: &[f32], m: usize, k: usize, width: usize) -> Vec<f32> {
    let mut a = vec![0f32; m * width];
    for r in 0..m {
        a[r * width..r * width + k].copy_from_slice(&x[r * k..(r + 1) * k]);
    }
    a
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use std::arch::x86_64::*;

    /// Activations rounded to bf16, each row padded to `kp` pairs, as 32-bit pairs.
    pub fn to_bf16_pairs(x: &[f32], m: usize, k: usize, kp: usize) -> Vec<u32> {
        use rayon::prelude::*;
        let mut a = vec![0u32; m * kp];
        let convert = |(src, row): (&[f32], &mut [u32])| {
            // SAFETY: `row` holds 2·kp ≥ k u16 values; the caller checked avx512bf16.
            unsafe { convert_row(src, row.as_mut_ptr() as *mut u16) }
        };
        if m * k >= super::PARALLEL_MIN {
            x.par_chunks_exact(k)
                .zip(a.par_chunks_exact_mut(kp))
                .for_each(convert);
        } else {
            x.chunks_exact(k)
                .zip(a.chunks_exact_mut(kp))
                .for_each(convert);
        }
        a
    }

    #[target_feature(enable = "avx512f,avx512bw,avx512bf16")]
    unsafe fn convert_row(src: &[f32], dst: *mut u16) {
        let mut i = 0;
        while i + 16 <= src.len() {
            let v = _mm512_loadu_ps(src.as_ptr().add(i));
            let h: __m256i = std::mem::transmute(_mm512_cvtneps_pbh(v));
            _mm256_storeu_si256(dst.add(i) as *mut __m256i, h);
            i += 16;
        }
        for (j, &v) in src.iter().enumerate().skip(i) {
            *dst.add(j) = super::f32_to_bf16(v);
        }
    }

    /// One `MR × NP·16` tile of the product over `nj` k-pairs.
    #[allow(clippy::too_many_arguments)]
    #[target_feature(enable = "avx512f,avx512bw,avx512bf16")]
    unsafe fn tile<const MR: usize, const NP: usize>(
        a: *const u32,
        lda: usize,
        b: *const u16,
        b_panel: usize,
        nj: usize,
        c: *mut f32,
        ldc: usize,
        ncols: usize,
        accumulate: bool,
    ) {
        let mut acc = [[_mm512_setzero_ps(); NP]; MR];
        for j in 0..nj {
            let mut bv = [_mm512_setzero_si512(); NP];
            for (p, v) in bv.iter_mut().enumerate() {
                *v = _mm512_loadu_si512(b.add(p * b_panel + j * super::PAIR) as *const _);
            }
            for (r, row) in acc.iter_mut().enumerate() {
                let av = _mm512_set1_epi32(*a.add(r * lda + j) as i32);
                for (p, acc) in row.iter_mut().enumerate() {
                    *acc = _mm512_dpbf16_ps(
                        *acc,
                        std::mem::transmute::<__m512i, __m512bh>(av),
                        std::mem::transmute::<__m512i, __m512bh>(bv[p]),
                    );
                }
            }
        }
        crate::model::kernels::avx512_store_tile(&acc, c, ldc, ncols, accumulate);
    }

    /// [`tile`] for run-time `mr ≤ 8`, `np ≤ 3`.
    #[allow(clippy::too_many_arguments)]
    pub unsafe fn tile_any(
        mr: usize,
        np: usize,
        a: *const u32,
        lda: usize,
        b: *const u16,
        b_panel: usize,
        nj: usize,
        c: *mut f32,
        ldc: usize,
        ncols: usize,
        accumulate: bool,
    ) {
        crate::model::kernels::tile_8x3!(
            tile,
            mr,
            np,
            (a, lda, b, b_panel, nj, c, ldc, ncols, accumulate)
        )
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;

    /// One `MR × 16` tile over `nj` k-pairs: bf16 weights widened to f32, f32 FMA. `first`:
    /// the first rows' tile, which reads the weights from memory (the others find them in
    /// cache) and so prefetches them, as the 12-bit kernel does.
    #[allow(clippy::too_many_arguments)]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn tile<const MR: usize>(
        first: bool,
        a: *const f32,
        lda: usize,
        b: *const u16,
        nj: usize,
        c: *mut f32,
        ldc: usize,
        ncols: usize,
        accumulate: bool,
    ) {
        let high = _mm256_set1_epi32(0xffff_0000u32 as i32);
        let stream = first && MR >= 2;
        let mut acc = [[_mm256_setzero_ps(); 2]; MR];
        for j in 0..nj {
            if stream {
                _mm_prefetch::<_MM_HINT_T0>(b.add(j * super::PAIR + PREFETCH) as *const i8);
            }
            let lo = _mm256_loadu_si256(b.add(j * super::PAIR) as *const __m256i);
            let hi = _mm256_loadu_si256(b.add(j * super::PAIR + 16) as *const __m256i);
            // Each 32-bit lane holds (W[col][2j], W[col][2j+1]); a bf16 is the top half of an
            // f32. The even weights for every row, then the odd ones: two weight registers
            // live at a time, so that six rows' sums fit beside them.
            let even = [
                _mm256_castsi256_ps(_mm256_slli_epi32(lo, 16)),
                _mm256_castsi256_ps(_mm256_slli_epi32(hi, 16)),
            ];
            for (r, row) in acc.iter_mut().enumerate() {
                let a0 = _mm256_broadcast_ss(&*a.add(r * lda + 2 * j));
                for h in 0..2 {
                    row[h] = _mm256_fmadd_ps(a0, even[h], row[h]);
                }
            }
            let odd = [
                _mm256_castsi256_ps(_mm256_and_si256(lo, high)),
                _mm256_castsi256_ps(_mm256_and_si256(hi, high)),
            ];
            for (r, row) in acc.iter_mut().enumerate() {
                let a1 = _mm256_broadcast_ss(&*a.add(r * lda + 2 * j + 1));
                for h in 0..2 {
                    row[h] = _mm256_fmadd_ps(a1, odd[h], row[h]);
                }
            }
        }
        crate::model::kernels::avx2_store_tile(&acc, c, ldc, ncols, accumulate);
    }

    /// Rows per tile: 2·MR sums, two weight registers and a broadcast within sixteen.
    pub const MR: usize = 6;

    /// Weights ahead of the loop, in `u16`s (4 KiB).
    const PREFETCH: usize = 2048;

    /// [`tile`] for run-time `mr ≤` [`MR`].
    #[allow(clippy::too_many_arguments)]
    pub unsafe fn tile_any(
        mr: usize,
        first: bool,
        a: *const f32,
        lda: usize,
        b: *const u16,
        nj: usize,
        c: *mut f32,
        ldc: usize,
        ncols: usize,
        accumulate: bool,
    ) {
        match mr {
            1 => tile::<1>(first, a, lda, b, nj, c, ldc, ncols, accumulate),
            2 => tile::<2>(first, a, lda, b, nj, c, ldc, ncols, accumulate),
            3 => tile::<3>(first, a, lda, b, nj, c, ldc, ncols, accumulate),
            4 => tile::<4>(first, a, lda, b, nj, c, ldc, ncols, accumulate),
            5 => tile::<5>(first, a, lda, b, nj, c, ldc, ncols, accumulate),
            6 => tile::<6>(first, a, lda, b, nj, c, ldc, ncols, accumulate),
            _ => unreachable!("row block of {mr}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::model::kernels::test_values as values;

    /// `x Wᵀ` in f64 from the values the kernel sees.
    fn reference(x: &[f32], w: &[u16], m: usize, n: usize, k: usize) -> Vec<f32> {
        let mut out = vec![0f32; m * n];
        for i in 0..m {
            for j in 0..n {
                let s: f64 = (0..k)
                    .map(|t| x[i * k + t] as f64 * bf16_to_f32(w[j * k + t]) as f64)
                    .sum();
                out[i * n + j] = s as f32;
            }
        }
        out
    }

    fn check(isa: Isa, m: usize, n: usize, k: usize) {
        let w: Vec<u16> = values(n * k, 1).iter().map(|&v| f32_to_bf16(v)).collect();
        let x = values(m * k, 2);
        let packed = PackedBf16::from_rows(&w, n, k);
        let mut got = vec![f32::NAN; m * n];
        packed.matmul_with(isa, &x, m, &mut got);
        // The BF16 kernel rounds the activations to bf16; the others use them as they are.
        let seen: Vec<f32> = if isa == Isa::Avx512Bf16 {
            x.iter().map(|&v| bf16_to_f32(f32_to_bf16(v))).collect()
        } else {
            x.clone()
        };
        let want = reference(&seen, &w, m, n, k);
        let scale = (k as f32).sqrt();
        for (i, (g, w)) in got.iter().zip(&want).enumerate() {
            assert!(
                (g - w).abs() <= 1e-5 * scale * (1.0 + w.abs()),
                "{isa:?} {m}×{n}×{k}: element {i}: {g} vs {w}"
            );
        }
    }

    #[test]
    fn every_available_kernel_matches_the_reference() {
        // Shapes that exercise partial row blocks, partial panels, odd k and several k blocks.
        let shapes = [
            (1, 1, 1),
            (3, 17, 5),
            (9, 50, 33),
            (8, 48, 64),
            // Every AVX2 tile height (six rows at most): 4, 5, 6 + 5.
            (4, 20, 40),
            (5, 16, 66),
            (11, 33, 18),
            (13, 100, 2 * KC + 7),
            (1, 4096 / 64, 4096),
            (17, 35, 2 * KC * 2 + 2),
            // More rows than the AVX2 kernel's row block, many panels.
            (67, 16 * 40, 70),
        ];
        for isa in [Isa::Avx512Bf16, Isa::Avx2, Isa::Scalar] {
            if !isa.is_available() {
                continue;
            }
            for &(m, n, k) in &shapes {
                check(isa, m, n, k);
            }
        }
    }

    #[test]
    fn large_products_run_in_parallel_and_match() {
        for isa in [Isa::Avx512Bf16, Isa::Avx2, Isa::Scalar] {
            if !isa.is_available() {
                continue;
            }
            check(isa, 37, 200, 300);
        }
    }

    #[test]
    fn empty_inner_dimension_gives_zeros() {
        let packed = PackedBf16::from_rows(&[], 3, 0);
        let mut out = vec![1f32; 6];
        packed.matmul(&[], 2, &mut out);
        assert_eq!(out, vec![0f32; 6]);
    }

    #[test]
    fn rounding_to_bf16_is_to_nearest_even() {
        assert_eq!(f32_to_bf16(1.0), 0x3f80);
        // 1 + 2^-8 lies halfway between two bf16 values: ties go to the even one.
        assert_eq!(f32_to_bf16(1.0 + 1.0 / 256.0), 0x3f80);
        assert_eq!(f32_to_bf16(1.0 + 3.0 / 256.0), 0x3f82);
        assert_eq!(bf16_to_f32(0xc000), -2.0);
    }
}
