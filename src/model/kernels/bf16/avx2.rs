//! The AVX2 tile: the weights widened to f32 for FMA.

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
