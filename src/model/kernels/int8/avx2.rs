//! The AVX2 tiles (with FMA and F16C): integer pairs on `vpmaddwd` for every format.

use std::arch::x86_64::*;

use super::{QFormat, QuantizedActs, NR, QK};

/// Rows per 8-bit tile: each row keeps its 16 columns' integer sums in two registers, with
/// the quad's even and odd weights for both halves (four) and the row's two activation
/// broadcasts 14 of AVX2's sixteen; the float sums, touched once per block, go to the stack.
/// On Zen 3 this ran at 1.5× the rate of three rows of one half at a time (the kernel
/// before), and a hand-written loop without any spill ran no faster: each `vpmaddwd`'s
/// `vpaddd` and the broadcasts share its vector pipes (~105 GFLOP/s a core at most).
pub const MR_Q8: usize = 4;
/// Rows per 4-bit tile: each row keeps its 16 float sums in two registers and one half's
/// integer sums in a third.
pub const MR_Q4: usize = 3;
/// Rows per 12-bit tile: each row's two integer sums, the pair's two weight registers and
/// one broadcast take 15 of the sixteen, and a few-row pass (as-you-type) is one tile.
pub const MR_Q12: usize = 6;

/// `acc` plus one block's integer sums for 8 columns, scaled: `sum` less the activations'
/// offset correction, times the weights' scales `dw` and the activations' scale, where `i`
/// is the block's index among all rows' blocks. Both tiles' epilogue.
#[inline]
#[target_feature(enable = "avx2,fma")]
unsafe fn add_block(
    acts: &QuantizedActs,
    i: usize,
    sum: __m256i,
    dw: __m256,
    acc: __m256,
) -> __m256 {
    let corr = _mm256_set1_epi32(*acts.corr.get_unchecked(i));
    let da = _mm256_set1_ps(*acts.d.get_unchecked(i));
    let t = _mm256_cvtepi32_ps(_mm256_sub_epi32(sum, corr));
    _mm256_fmadd_ps(t, _mm256_mul_ps(dw, da), acc)
}

/// [`add_block`] for both halves of an `R`-row tile whose 16 columns' integer sums are in
/// `iacc`, the weights' scales at the start of the block at `base`.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn add_blocks<const R: usize>(
    acts: &QuantizedActs,
    r0: usize,
    blk: usize,
    base: *const u8,
    iacc: &[[__m256i; 2]; R],
    acc: &mut [[__m256; 2]; R],
) {
    for h in 0..2 {
        let dw = _mm256_cvtph_ps(_mm_loadu_si128(base.add(16 * h) as *const __m128i));
        for (r, (row, sums)) in acc.iter_mut().zip(iacc).enumerate() {
            row[h] = add_block(acts, (r0 + r) * acts.nb + blk, sums[h], dw, row[h]);
        }
    }
}

/// One `R × 16` tile of 8-bit weights over `nbk` blocks: `vpmaddwd` on the 16-bit pairs of
/// the VNNI kernel's scheme, so that every block's integer sum is the same exact value.
#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn tile_q8<const R: usize>(
    acts: &QuantizedActs,
    r0: usize,
    b0: usize,
    nbk: usize,
    w: *const u8,
    c: *mut f32,
    ldc: usize,
    ncols: usize,
    accumulate: bool,
) {
    let bb = QFormat::Q8.block_bytes();
    // As in [`tile_q12`].
    let stream = r0 == 0 && R >= 2;
    let even_bytes = _mm256_set1_epi16(0x00ff);
    let mut acc = [[_mm256_setzero_ps(); 2]; R];
    for b in 0..nbk {
        let blk = b0 + b;
        let base = w.add(b * bb);
        let mut iacc = [[_mm256_setzero_si256(); 2]; R];
        for qd in 0..QK / 4 {
            // Each lane's quad w0..w3 as the 16-bit pairs (w0, w2) and (w1, w3).
            let mut even = [_mm256_setzero_si256(); 2];
            let mut odd = [_mm256_setzero_si256(); 2];
            if stream {
                _mm_prefetch::<_MM_HINT_T0>(base.add(2 * NR + qd * 64 + 4 * bb) as *const i8);
            }
            for h in 0..2 {
                let at = base.add(2 * NR + qd * 64 + h * 32);
                let raw = _mm256_loadu_si256(at as *const __m256i);
                even[h] = _mm256_and_si256(raw, even_bytes);
                odd[h] = _mm256_srli_epi16(raw, 8);
            }
            for (r, sums) in iacc.iter_mut().enumerate() {
                // Stored (a0, a2, a1, a3): one word per pair.
                let a = acts.q16.as_ptr().add((r0 + r) * acts.k + blk * QK + qd * 4);
                let ae = _mm256_set1_epi32((a as *const i32).read_unaligned());
                let ao = _mm256_set1_epi32((a.add(2) as *const i32).read_unaligned());
                for h in 0..2 {
                    sums[h] = _mm256_add_epi32(sums[h], _mm256_madd_epi16(even[h], ae));
                    sums[h] = _mm256_add_epi32(sums[h], _mm256_madd_epi16(odd[h], ao));
                }
            }
        }
        add_blocks(acts, r0, blk, base, &iacc, &mut acc);
    }
    crate::model::kernels::avx2_store_tile(&acc, c, ldc, ncols, accumulate);
}

/// One `R × 16` tile of 4-bit weights over `nbk` blocks: `vpmaddubsw` then `vpmaddwd` on
/// 8-bit quads, the VNNI kernel's integer scheme.
#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn tile_q4<const R: usize>(
    acts: &QuantizedActs,
    r0: usize,
    b0: usize,
    nbk: usize,
    w: *const u8,
    c: *mut f32,
    ldc: usize,
    ncols: usize,
    accumulate: bool,
) {
    let bb = QFormat::Q4.block_bytes();
    let low = _mm256_set1_epi8(0x0f);
    let ones = _mm256_set1_epi16(1);
    let mut acc = [[_mm256_setzero_ps(); 2]; R];
    for b in 0..nbk {
        let blk = b0 + b;
        let base = w.add(b * bb);
        // One half (8 columns) at a time, so that few registers hold integer sums.
        for h in 0..2 {
            let q = base.add(2 * NR + h * 32);
            let mut iacc = [_mm256_setzero_si256(); R];
            for qd in (0..QK / 4).step_by(2) {
                let raw = _mm256_loadu_si256(q.add((qd / 2) * 64) as *const __m256i);
                let lo = _mm256_and_si256(raw, low);
                let hi = _mm256_and_si256(_mm256_srli_epi16(raw, 4), low);
                for (r, sum) in iacc.iter_mut().enumerate() {
                    let a = acts.q8.as_ptr().add((r0 + r) * acts.k + blk * QK + qd * 4);
                    let a0 = _mm256_set1_epi32((a as *const i32).read_unaligned());
                    let a1 = _mm256_set1_epi32((a.add(4) as *const i32).read_unaligned());
                    // u8 ≤ 15 times i8: pair sums ≤ 3810, two quads ≤ 7620, no saturation.
                    let p = _mm256_add_epi16(
                        _mm256_maddubs_epi16(lo, a0),
                        _mm256_maddubs_epi16(hi, a1),
                    );
                    *sum = _mm256_add_epi32(*sum, _mm256_madd_epi16(p, ones));
                }
            }
            let dw = _mm256_cvtph_ps(_mm_loadu_si128(base.add(16 * h) as *const __m128i));
            for (r, (row, &sum)) in acc.iter_mut().zip(&iacc).enumerate() {
                row[h] = add_block(acts, (r0 + r) * acts.nb + blk, sum, dw, row[h]);
            }
        }
    }
    crate::model::kernels::avx2_store_tile(&acc, c, ldc, ncols, accumulate);
}

/// One `R × 16` tile of 12-bit weights over `nbk` blocks: `vpmaddwd` on the stored pairs,
/// as [`tile_q8`] without its widening of bytes.
#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn tile_q12<const R: usize>(
    acts: &QuantizedActs,
    r0: usize,
    b0: usize,
    nbk: usize,
    w: *const u8,
    c: *mut f32,
    ldc: usize,
    ncols: usize,
    accumulate: bool,
) {
    let bb = QFormat::Q12.block_bytes();
    // The first rows' tile reads the weights from memory (the others find them in cache):
    // four blocks ahead, or with a few rows (as-you-type) the loop outruns the hardware's
    // prefetch of the panel stream and waits on it (5 rows: 16.5 → 12.6 ms a 7B layer on
    // Zen 3). One row is paced by memory either way, and ran slower with it.
    let stream = r0 == 0 && R >= 2;
    let mut acc = [[_mm256_setzero_ps(); 2]; R];
    for b in 0..nbk {
        let blk = b0 + b;
        let base = w.add(b * bb);
        let mut iacc = [[_mm256_setzero_si256(); 2]; R];
        for pair in 0..QK / 2 {
            let at = base.add(2 * NR + pair * 64);
            if stream {
                _mm_prefetch::<_MM_HINT_T0>(at.add(4 * bb) as *const i8);
            }
            let wv = [
                _mm256_loadu_si256(at as *const __m256i),
                _mm256_loadu_si256(at.add(32) as *const __m256i),
            ];
            for (r, sums) in iacc.iter_mut().enumerate() {
                let a = acts
                    .q16
                    .as_ptr()
                    .add((r0 + r) * acts.k + blk * QK + 2 * pair);
                let av = _mm256_set1_epi32((a as *const i32).read_unaligned());
                for h in 0..2 {
                    sums[h] = _mm256_add_epi32(sums[h], _mm256_madd_epi16(wv[h], av));
                }
            }
        }
        add_blocks(acts, r0, blk, base, &iacc, &mut acc);
    }
    crate::model::kernels::avx2_store_tile(&acc, c, ldc, ncols, accumulate);
}

/// The rows per tile for `fmt`.
pub const fn mr(fmt: QFormat) -> usize {
    match fmt {
        QFormat::Q8 => MR_Q8,
        QFormat::Q12 => MR_Q12,
        QFormat::Q4 => MR_Q4,
    }
}

/// [`tile_q8`] or [`tile_q4`] for run-time `mr ≤ mr(fmt)`.
#[allow(clippy::too_many_arguments)]
pub unsafe fn tile_any(
    fmt: QFormat,
    mr: usize,
    acts: &QuantizedActs,
    r0: usize,
    b0: usize,
    nbk: usize,
    w: *const u8,
    c: *mut f32,
    ldc: usize,
    ncols: usize,
    accumulate: bool,
) {
    macro_rules! go {
        ($tile:ident, $($r:literal),*) => {
            match mr {
                $($r => $tile::<$r>(acts, r0, b0, nbk, w, c, ldc, ncols, accumulate),)*
                _ => unreachable!("row block of {mr}"),
            }
        };
    }
    match fmt {
        QFormat::Q8 => go!(tile_q8, 1, 2, 3, 4),
        QFormat::Q4 => go!(tile_q4, 1, 2, 3),
        QFormat::Q12 => go!(tile_q12, 1, 2, 3, 4, 5, 6),
    }
}
