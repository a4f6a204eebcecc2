//! `y = x Wᵀ` with f32 weights, activations and outputs: the exact mode's products.
//!
//! The weights are packed once at load time into panels of 16 output columns (`[panel][k][16]`),
//! so that one 64-byte load feeds 16 columns and a product streams each panel in order. A
//! general GEMM (candle's) packs its operand on every call instead: for a projection of
//! Mistral-7B's width that is the weight's bytes read and written again per pass, which the
//! exact mode, with the largest weights, can least afford.
//!
//! Every kernel sums each output in f32 in k order, chunk by chunk; only the order of additions
//! differs from a plain loop, as it does between any two GEMMs.

pub use super::NR;
use super::{Isa, SendPtr};

/// k values per block: a block of a panel (16 KiB) stays in L1 while every row passes it.
const KC: usize = 256;
/// Rows per block: a block's activations for one k chunk (120 KiB) stay in L2.
const MC: usize = 120;
/// Below this many multiply-adds a single thread is faster than waking the pool.
const PARALLEL_MIN: usize = 1 << 18;

/// A weight matrix `W` of shape `[n, k]` packed for [`PackedF32::matmul`].
pub struct PackedF32 {
    data: Vec<f32>,
    n: usize,
    k: usize,
    panels: usize,
}

impl std::fmt::Debug for PackedF32 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PackedF32 {{ n: {}, k: {} }}", self.n, self.k)
    }
}

impl PackedF32 {
    /// An all-zero `[n, k]` matrix, to be filled with [`PackedF32::fill_rows`]. Untouched pages
    /// are never faulted in, so filling part by part costs only what is filled.
    pub fn zeroed(n: usize, k: usize) -> Self {
        Self {
            data: vec![0f32; Self::packed_len(n, k) / 4],
            n,
            k,
            panels: n.div_ceil(NR),
        }
    }

    /// Bytes of the packed form of an `[n, k]` weight.
    pub fn packed_len(n: usize, k: usize) -> usize {
        n.div_ceil(NR) * k * NR * 4
    }

    /// Sets rows `row0..row0 + rows`: `row(i, dst)` writes row `row0 + i` (`k` values).
    pub fn fill_rows(&mut self, row0: usize, rows: usize, row: impl Fn(usize, &mut [f32]) + Sync) {
        assert!(
            row0 + rows <= self.n,
            "rows {row0}..{} of {}",
            row0 + rows,
            self.n
        );
        let k = self.k;
        super::fill_panel_rows(
            &mut self.data,
            k * NR,
            row0,
            rows,
            || vec![0f32; k],
            |buf, panel, c, i| {
                row(i, buf);
                for (kk, &v) in buf.iter().enumerate() {
                    panel[kk * NR + c] = v;
                }
            },
        );
    }

    /// Packs a row-major `[n, k]` matrix.
    pub fn from_rows(w: &[f32], n: usize, k: usize) -> Self {
        assert_eq!(w.len(), n * k, "weight has {} values, not {n}×{k}", w.len());
        let mut p = Self::zeroed(n, k);
        p.fill_rows(0, n, |i, dst| dst.copy_from_slice(&w[i * k..(i + 1) * k]));
        p
    }

    pub fn out_features(&self) -> usize {
        self.n
    }

    pub fn in_features(&self) -> usize {
        self.k
    }

    /// Bytes of the packed weights.
    pub fn bytes(&self) -> usize {
        self.data.len() * 4
    }

    /// The kernel [`PackedF32::matmul`] uses on this processor.
    pub fn best_isa() -> Isa {
        [Isa::Avx512, Isa::Avx2]
            .into_iter()
            .find(|isa| isa.is_available())
            .unwrap_or(Isa::Scalar)
    }

    /// `out[m, n] = x[m, k] · Wᵀ` with the best kernel this processor has.
    pub fn matmul(&self, x: &[f32], m: usize, out: &mut [f32]) {
        self.matmul_with(Self::best_isa(), x, m, out)
    }

    /// As [`PackedF32::matmul`] with a chosen kernel: `Avx512` or `Avx2` (where available), or
    /// `Scalar`.
    pub fn matmul_with(&self, isa: Isa, x: &[f32], m: usize, out: &mut [f32]) {
        let (n, k) = (self.n, self.k);
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
        let (mr_max, np_max) = match isa {
            Isa::Avx512 => (avx512::MR, avx512::NP),
            Isa::Avx2 => (avx2::MR, 1),
            _ => (4, 1),
        };
        super::drive_blocked(
            self.panels,
            k,
            KC,
            (m, MC),
            mr_max,
            np_max,
            parallel,
            |r0, mr, p0, np, k0, kn, acc| {
                let ncols = (n - p0 * NR).min(np * NR);
                match isa {
                    #[cfg(target_arch = "x86_64")]
                    Isa::Avx512 => {
                        // SAFETY: AVX-512 F checked above; the kernel reads rows r0..r0+mr of
                        // `x` at k0..k0+kn and the same k of panels p0..p0+np, all inside the
                        // buffers, and writes only its own tile of `out`.
                        unsafe {
                            avx512::tile_any(
                                mr,
                                np,
                                x.as_ptr().add(r0 * k + k0),
                                k,
                                self.data.as_ptr().add((p0 * k + k0) * NR),
                                k * NR,
                                kn,
                                c.get().add(r0 * n + p0 * NR),
                                n,
                                ncols,
                                acc,
                            )
                        }
                    }
                    #[cfg(target_arch = "x86_64")]
                    Isa::Avx2 => {
                        // SAFETY: AVX2 and FMA checked above; the kernel reads rows r0..r0+mr
                        // of `x` at k0..k0+kn and the same k of panel p0, all inside the
                        // buffers, and writes only its own tile of `out`.
                        unsafe {
                            avx2::tile_any(
                                mr,
                                x.as_ptr().add(r0 * k + k0),
                                k,
                                self.data.as_ptr().add((p0 * k + k0) * NR),
                                kn,
                                c.get().add(r0 * n + p0 * NR),
                                n,
                                ncols,
                                acc,
                            )
                        }
                    }
                    _ => {
                        let w = &self.data[(p0 * k + k0) * NR..];
                        for r in r0..r0 + mr {
                            let a = &x[r * k + k0..r * k + k0 + kn];
                            for col in 0..ncols {
                                let s = a
                                    .iter()
                                    .enumerate()
                                    .fold(0f32, |s, (t, &av)| s + av * w[t * NR + col]);
                                // SAFETY: (r, p0 * NR + col) is inside this tile of `out`.
                                unsafe {
                                    let dst = c.get().add(r * n + p0 * NR + col);
                                    *dst = if acc { *dst + s } else { s };
                                }
                            }
                        }
                    }
                }
            },
        );
    }
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use std::arch::x86_64::*;

    use super::NR;

    /// Rows and panels per tile: 24 sums, three weight registers and a broadcast within 32.
    pub const MR: usize = 8;
    pub const NP: usize = 3;

    /// One `R × P·16` tile of the product over `kn` values of k; panels `w_panel` values apart.
    #[allow(clippy::too_many_arguments)]
    #[target_feature(enable = "avx512f")]
    unsafe fn tile<const R: usize, const P: usize>(
        a: *const f32,
        lda: usize,
        w: *const f32,
        w_panel: usize,
        kn: usize,
        c: *mut f32,
        ldc: usize,
        ncols: usize,
        accumulate: bool,
    ) {
        let mut acc = [[_mm512_setzero_ps(); P]; R];
        for t in 0..kn {
            let mut wv = [_mm512_setzero_ps(); P];
            for (p, v) in wv.iter_mut().enumerate() {
                *v = _mm512_loadu_ps(w.add(p * w_panel + t * NR));
            }
            for (r, row) in acc.iter_mut().enumerate() {
                let av = _mm512_set1_ps(*a.add(r * lda + t));
                for (s, &v) in row.iter_mut().zip(&wv) {
                    *s = _mm512_fmadd_ps(av, v, *s);
                }
            }
        }
        crate::model::kernels::avx512_store_tile(&acc, c, ldc, ncols, accumulate);
    }

    /// [`tile`] for run-time `mr ≤ MR`, `np ≤ NP`.
    #[allow(clippy::too_many_arguments)]
    pub unsafe fn tile_any(
        mr: usize,
        np: usize,
        a: *const f32,
        lda: usize,
        w: *const f32,
        w_panel: usize,
        kn: usize,
        c: *mut f32,
        ldc: usize,
        ncols: usize,
        accumulate: bool,
    ) {
        crate::model::kernels::tile_8x3!(
            tile,
            mr,
            np,
            (a, lda, w, w_panel, kn, c, ldc, ncols, accumulate)
        )
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;

    use super::NR;

    /// Rows per tile: 2·MR sums, two weight registers and a broadcast within sixteen.
    pub const MR: usize = 6;

    /// One `R × 16` tile of the product over `kn` values of k.
    #[allow(clippy::too_many_arguments)]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn tile<const R: usize>(
        a: *const f32,
        lda: usize,
        w: *const f32,
        kn: usize,
        c: *mut f32,
        ldc: usize,
        ncols: usize,
        accumulate: bool,
    ) {
        let mut acc = [[_mm256_setzero_ps(); 2]; R];
        for t in 0..kn {
            let w0 = _mm256_loadu_ps(w.add(t * NR));
            let w1 = _mm256_loadu_ps(w.add(t * NR + 8));
            for (r, row) in acc.iter_mut().enumerate() {
                let av = _mm256_broadcast_ss(&*a.add(r * lda + t));
                row[0] = _mm256_fmadd_ps(av, w0, row[0]);
                row[1] = _mm256_fmadd_ps(av, w1, row[1]);
            }
        }
        crate::model::kernels::avx2_store_tile(&acc, c, ldc, ncols, accumulate);
    }

    /// [`tile`] for run-time `mr ≤ MR`.
    #[allow(clippy::too_many_arguments)]
    pub unsafe fn tile_any(
        mr: usize,
        a: *const f32,
        lda: usize,
        w: *const f32,
        kn: usize,
        c: *mut f32,
        ldc: usize,
        ncols: usize,
        accumulate: bool,
    ) {
        match mr {
            1 => tile::<1>(a, lda, w, kn, c, ldc, ncols, accumulate),
            2 => tile::<2>(a, lda, w, kn, c, ldc, ncols, accumulate),
            3 => tile::<3>(a, lda, w, kn, c, ldc, ncols, accumulate),
            4 => tile::<4>(a, lda, w, kn, c, ldc, ncols, accumulate),
            5 => tile::<5>(a, lda, w, kn, c, ldc, ncols, accumulate),
            6 => tile::<6>(a, lda, w, kn, c, ldc, ncols, accumulate),
            _ => unreachable!("row block of {mr}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::model::kernels::test_values as values;

    fn check(isa: Isa, m: usize, n: usize, k: usize) {
        let w = values(n * k, 3);
        let x = values(m * k, 4);
        let packed = PackedF32::from_rows(&w, n, k);
        let mut got = vec![f32::NAN; m * n];
        packed.matmul_with(isa, &x, m, &mut got);
        let scale = (k as f32).sqrt();
        for i in 0..m {
            for j in 0..n {
                let want: f64 = (0..k)
                    .map(|t| x[i * k + t] as f64 * w[j * k + t] as f64)
                    .sum();
                let g = got[i * n + j];
                // f32 sums of k terms of size ~1: a few ulps of √k.
                assert!(
                    (g as f64 - want).abs() <= 1e-6 * scale as f64 * (1.0 + want.abs()),
                    "{isa:?} {m}×{n}×{k}: ({i}, {j}): {g} vs {want}"
                );
            }
        }
    }

    #[test]
    fn every_available_kernel_matches_the_reference() {
        // Partial row blocks, partial panels and panel groups, odd k, several k blocks.
        let shapes = [
            (1, 1, 1),
            (3, 17, 5),
            (9, 50, 33),
            (8, 48, 64),
            (13, 100, 2 * KC + 7),
            (1, 4096 / 64, 4096),
            (17, 35, 3 * KC + 2),
            (37, 200, 300),
            // More rows than a row block, and enough panels for several per unit of work.
            (MC + 10, 16 * 40, 64),
        ];
        for isa in [Isa::Avx512, Isa::Avx2, Isa::Scalar] {
            if !isa.is_available() {
                continue;
            }
            for &(m, n, k) in &shapes {
                check(isa, m, n, k);
            }
        }
    }

    #[test]
    fn empty_inner_dimension_gives_zeros() {
        let packed = PackedF32::from_rows(&[], 3, 0);
        let mut out = vec![1f32; 6];
        packed.matmul(&[], 2, &mut out);
        assert_eq!(out, vec![0f32; 6]);
    }

    #[test]
    fn rows_filled_in_parts_equal_rows_packed_at_once() {
        let (n, k) = (40, 24);
        let w = values(n * k, 9);
        let whole = PackedF32::from_rows(&w, n, k);
        let mut parts = PackedF32::zeroed(n, k);
        for (r0, rows) in [(0, 7), (7, 20), (27, 13)] {
            parts.fill_rows(r0, rows, |i, dst| {
                dst.copy_from_slice(&w[(r0 + i) * k..(r0 + i + 1) * k])
            });
        }
        assert_eq!(whole.data, parts.data);
    }
}
