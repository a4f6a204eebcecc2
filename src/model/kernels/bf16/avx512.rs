//! The AVX-512 tiles: the AVX512-BF16 dot product, and the weights widened to f32 for FMA.

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

/// One `R × P·16` tile over `nj` k-pairs with f32 activations: the bf16 weights widened
/// to f32 (a bf16 is the top half of an f32) and f32 FMA, the even weights into every row,
/// then the odd ones. Each is loaded where it is widened, so that only `P` weight registers
/// live beside the `R·P` sums.
#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "avx512f")]
unsafe fn widen_tile<const R: usize, const P: usize, const FIRST: bool>(
    a: *const f32,
    lda: usize,
    b: *const u16,
    b_panel: usize,
    nj: usize,
    c: *mut f32,
    ldc: usize,
    ncols: usize,
    accumulate: bool,
) {
    let high = _mm512_set1_epi32(0xffff_0000u32 as i32);
    let load =
        |p: usize, j: usize| _mm512_loadu_si512(b.add(p * b_panel + j * super::PAIR) as *const _);
    let mut acc = [[_mm512_setzero_ps(); P]; R];
    for j in 0..nj {
        let mut w = [_mm512_setzero_ps(); P];
        for (p, v) in w.iter_mut().enumerate() {
            if FIRST {
                _mm_prefetch::<_MM_HINT_T0>(
                    b.add(p * b_panel + j * super::PAIR + PREFETCH) as *const i8
                );
            }
            *v = _mm512_castsi512_ps(_mm512_slli_epi32::<16>(load(p, j)));
        }
        for (r, row) in acc.iter_mut().enumerate() {
            let a0 = _mm512_set1_ps(*a.add(r * lda + 2 * j));
            for (s, &v) in row.iter_mut().zip(&w) {
                *s = _mm512_fmadd_ps(a0, v, *s);
            }
        }
        for (p, v) in w.iter_mut().enumerate() {
            *v = _mm512_castsi512_ps(_mm512_and_si512(load(p, j), high));
        }
        for (r, row) in acc.iter_mut().enumerate() {
            let a1 = _mm512_set1_ps(*a.add(r * lda + 2 * j + 1));
            for (s, &v) in row.iter_mut().zip(&w) {
                *s = _mm512_fmadd_ps(a1, v, *s);
            }
        }
    }
    crate::model::kernels::avx512_store_tile(&acc, c, ldc, ncols, accumulate);
}

/// Weights ahead of the loop, in `u16`s (4 KiB): with few rows the tiles outrun the
/// hardware's prefetch of their panel streams. Only the first rows' tile, which reads the
/// weights from memory, fetches them (the others find them in cache, where prefetching
/// measured slower).
const PREFETCH: usize = 2048;

/// [`widen_tile`] for run-time `mr ≤ 8`, `np ≤ 3`.
#[allow(clippy::too_many_arguments)]
pub unsafe fn widen_tile_any(
    mr: usize,
    np: usize,
    first: bool,
    a: *const f32,
    lda: usize,
    b: *const u16,
    b_panel: usize,
    nj: usize,
    c: *mut f32,
    ldc: usize,
    ncols: usize,
    accumulate: bool,
) {
    // The first rows' tile as its own instance: a test inside the loop slowed every tile.
    crate::model::kernels::tile_8x3!(
        widen_tile,
        mr,
        np,
        if first,
        (a, lda, b, b_panel, nj, c, ldc, ncols, accumulate)
    )
}

/// One `MR × NP·16` tile of the product over `nj` k-pairs.
#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "avx512f,avx512bw,avx512bf16")]
unsafe fn tile<const MR: usize, const NP: usize, const FIRST: bool>(
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
            let at = b.add(p * b_panel + j * super::PAIR);
            if FIRST {
                _mm_prefetch::<_MM_HINT_T0>(at.add(PREFETCH) as *const i8);
            }
            *v = _mm512_loadu_si512(at as *const _);
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
    first: bool,
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
    // The first rows' tile as its own instance: a test inside the loop slowed every tile.
    crate::model::kernels::tile_8x3!(
        tile,
        mr,
        np,
        if first,
        (a, lda, b, b_panel, nj, c, ldc, ncols, accumulate)
    )
}
