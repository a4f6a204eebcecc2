//! The AVX512-VNNI tiles: 8- and 4-bit weights against 16- and 8-bit activations
//! (`vpdpwssd`, `vpdpbusd`), 12-bit weights on `vpdpwssd` as stored.

use std::arch::x86_64::*;

use super::{QFormat, QuantizedActs, NR, QK};

/// How far ahead of the weights in use they are fetched, in bytes.
const PREFETCH: usize = 4 * 544;

/// Near the end of a panel's weights, fetches block `blk`'s lines `dist` bytes on in the
/// next panel group's (`w` is at block `b0` of the group's first panel, panels `w_panel`
/// apart, blocks `bb` bytes): the group a thread most often takes next, whose start would
/// otherwise wait on memory (a few percent of an appended word). The tiles' own fetches run
/// as far past each panel's end, which within a group is its next panel. Wrapping arithmetic:
/// the last group's land outside the weights, where a prefetch does nothing.
#[inline(always)]
unsafe fn fetch_next_group<const NP: usize>(
    w: *const u8,
    (b0, blk): (usize, usize),
    bb: usize,
    w_panel: usize,
    dist: usize,
) {
    if (blk + 1) * bb + dist < w_panel {
        return;
    }
    let first = w.wrapping_sub(b0 * bb);
    for p in 0..NP {
        for line in (0..bb).step_by(64) {
            let rel = blk * bb + line + dist;
            // Lines still inside the panel are the tile's own fetches; past it, the same
            // distance into panel `p + NP`.
            let at = match rel.checked_sub(w_panel) {
                None => first.wrapping_add(p * w_panel + rel),
                Some(over) => first.wrapping_add((p + NP) * w_panel + over),
            };
            _mm_prefetch::<_MM_HINT_T0>(at as *const i8);
        }
    }
}

/// One `MR × NP·16` tile over `nbk` blocks.
#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
unsafe fn tile<const MR: usize, const NP: usize, const Q4: bool>(
    acts: &QuantizedActs,
    r0: usize,
    b0: usize,
    nbk: usize,
    w: *const u8,
    w_panel: usize,
    c: *mut f32,
    ldc: usize,
    ncols: usize,
    accumulate: bool,
) {
    let fmt = if Q4 { QFormat::Q4 } else { QFormat::Q8 };
    let bb = fmt.block_bytes();
    let low = _mm512_set1_epi8(0x0f);
    let even_bytes = _mm512_set1_epi16(0x00ff);
    let mut acc = [[_mm512_setzero_ps(); NP]; MR];
    for b in 0..nbk {
        let blk = b0 + b;
        // The weights are stored with an offset: each row's sums start at less its
        // correction, which spares a subtraction per row and panel in `add_blocks`.
        let mut iacc = [[_mm512_setzero_si512(); NP]; MR];
        for (r, row) in iacc.iter_mut().enumerate() {
            let corr = *acts.corr.get_unchecked((r0 + r) * acts.nb + blk);
            *row = [_mm512_set1_epi32(corr.wrapping_neg()); NP];
        }
        fetch_next_group::<NP>(w, (b0, blk), bb, w_panel, PREFETCH);
        let quads = QK / 4;
        let mut qd = 0;
        while qd < quads {
            // Weights for quads qd (and qd + 1 for 4-bit, from the same 64 bytes).
            let mut wa = [_mm512_setzero_si512(); NP];
            let mut wb = [_mm512_setzero_si512(); NP];
            for p in 0..NP {
                let base = w.add(p * w_panel + b * bb + 2 * NR);
                // A few blocks ahead: with few rows the loop outruns the hardware's own
                // prefetch of these panel streams and waits on memory.
                _mm_prefetch::<_MM_HINT_T0>(base.wrapping_add(qd * 64 + PREFETCH) as *const i8);
                if Q4 {
                    let raw = _mm512_loadu_si512(base.add((qd / 2) * 64) as *const _);
                    wa[p] = _mm512_and_si512(raw, low);
                    wb[p] = _mm512_and_si512(_mm512_srli_epi16(raw, 4), low);
                } else {
                    // Each lane's quad w0..w3 as the 16-bit pairs (w0, w2) and (w1, w3).
                    let raw = _mm512_loadu_si512(base.add(qd * 64) as *const _);
                    wa[p] = _mm512_and_si512(raw, even_bytes);
                    wb[p] = _mm512_srli_epi16(raw, 8);
                }
            }
            for (r, row) in iacc.iter_mut().enumerate() {
                let at = (r0 + r) * acts.k + blk * QK + qd * 4;
                if Q4 {
                    let a = acts.q8.as_ptr().add(at);
                    let av = _mm512_set1_epi32((a as *const i32).read_unaligned());
                    for p in 0..NP {
                        row[p] = _mm512_dpbusd_epi32(row[p], wa[p], av);
                    }
                    let av = _mm512_set1_epi32((a.add(4) as *const i32).read_unaligned());
                    for p in 0..NP {
                        row[p] = _mm512_dpbusd_epi32(row[p], wb[p], av);
                    }
                } else {
                    // Stored (a0, a2, a1, a3): one word per pair.
                    let a = acts.q16.as_ptr().add(at);
                    let even = _mm512_set1_epi32((a as *const i32).read_unaligned());
                    let odd = _mm512_set1_epi32((a.add(2) as *const i32).read_unaligned());
                    for p in 0..NP {
                        row[p] = crate::model::kernels::dpwssd(row[p], wa[p], even);
                        row[p] = crate::model::kernels::dpwssd(row[p], wb[p], odd);
                    }
                }
            }
            qd += if Q4 { 2 } else { 1 };
        }
        add_blocks::<MR, NP>(acts, r0, blk, w.add(b * bb), w_panel, &iacc, &mut acc);
    }
    crate::model::kernels::avx512_store_tile(&acc, c, ldc, ncols, accumulate);
}

/// Adds one block's integer sums `iacc` (of every row and panel, the activations' offset
/// correction already in them) to the float sums `acc`, times the weights' scales (the f16s
/// at the start of each panel's block at `w`, panels `w_panel` bytes apart) and the
/// activations'.
#[inline]
#[target_feature(enable = "avx512f,avx512bw")]
unsafe fn add_blocks<const MR: usize, const NP: usize>(
    acts: &QuantizedActs,
    r0: usize,
    blk: usize,
    w: *const u8,
    w_panel: usize,
    iacc: &[[__m512i; NP]; MR],
    acc: &mut [[__m512; NP]; MR],
) {
    let mut dw = [_mm512_setzero_ps(); NP];
    for (p, d) in dw.iter_mut().enumerate() {
        *d = _mm512_cvtph_ps(_mm256_loadu_si256(w.add(p * w_panel) as *const __m256i));
    }
    for (r, (row, irow)) in acc.iter_mut().zip(iacc).enumerate() {
        let da = _mm512_set1_ps(*acts.d.get_unchecked((r0 + r) * acts.nb + blk));
        for p in 0..NP {
            row[p] = _mm512_fmadd_ps(
                _mm512_cvtepi32_ps(irow[p]),
                _mm512_mul_ps(dw[p], da),
                row[p],
            );
        }
    }
}

/// [`tile`] for 12-bit weights: each 64-byte row of a block holds one pair of 16-bit
/// weights for all 16 columns, `vpdpwssd`'s operand as stored, against one broadcast pair
/// of activations; a block's sums are exact in i32 (see [`super::Q12_MAX`]).
#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
unsafe fn tile_q12<const MR: usize, const NP: usize>(
    acts: &QuantizedActs,
    r0: usize,
    b0: usize,
    nbk: usize,
    w: *const u8,
    w_panel: usize,
    c: *mut f32,
    ldc: usize,
    ncols: usize,
    accumulate: bool,
) {
    let bb = QFormat::Q12.block_bytes();
    let mut acc = [[_mm512_setzero_ps(); NP]; MR];
    for b in 0..nbk {
        let blk = b0 + b;
        let mut iacc = [[_mm512_setzero_si512(); NP]; MR];
        fetch_next_group::<NP>(w, (b0, blk), bb, w_panel, 4 * bb);
        for pair in 0..QK / 2 {
            let mut wv = [_mm512_setzero_si512(); NP];
            for (p, v) in wv.iter_mut().enumerate() {
                let at = w.add(p * w_panel + b * bb + 2 * NR + pair * 64);
                // Four blocks ahead, as the 8-bit tile does (near the panel's end, the next
                // group's too: `fetch_next_group`).
                _mm_prefetch::<_MM_HINT_T0>(at.wrapping_add(4 * bb) as *const i8);
                *v = _mm512_loadu_si512(at as *const _);
            }
            for (r, row) in iacc.iter_mut().enumerate() {
                let a = acts
                    .q16
                    .as_ptr()
                    .add((r0 + r) * acts.k + blk * QK + 2 * pair);
                let av = _mm512_set1_epi32((a as *const i32).read_unaligned());
                for p in 0..NP {
                    row[p] = crate::model::kernels::dpwssd(row[p], wv[p], av);
                }
            }
        }
        add_blocks::<MR, NP>(acts, r0, blk, w.add(b * bb), w_panel, &iacc, &mut acc);
    }
    crate::model::kernels::avx512_store_tile(&acc, c, ldc, ncols, accumulate);
}

/// [`tile`] for run-time `mr ≤ 6`, `np ≤ 2`.
#[allow(clippy::too_many_arguments)]
pub unsafe fn tile_any(
    fmt: QFormat,
    mr: usize,
    np: usize,
    acts: &QuantizedActs,
    r0: usize,
    b0: usize,
    nbk: usize,
    w: *const u8,
    w_panel: usize,
    c: *mut f32,
    ldc: usize,
    ncols: usize,
    accumulate: bool,
) {
    macro_rules! go {
        ($tile:ident, $np:literal $(, $q4:literal)?) => {
            match mr {
                1 => $tile::<1, $np $(, $q4)?>(
                    acts, r0, b0, nbk, w, w_panel, c, ldc, ncols, accumulate,
                ),
                2 => $tile::<2, $np $(, $q4)?>(
                    acts, r0, b0, nbk, w, w_panel, c, ldc, ncols, accumulate,
                ),
                3 => $tile::<3, $np $(, $q4)?>(
                    acts, r0, b0, nbk, w, w_panel, c, ldc, ncols, accumulate,
                ),
                4 => $tile::<4, $np $(, $q4)?>(
                    acts, r0, b0, nbk, w, w_panel, c, ldc, ncols, accumulate,
                ),
                5 => $tile::<5, $np $(, $q4)?>(
                    acts, r0, b0, nbk, w, w_panel, c, ldc, ncols, accumulate,
                ),
                6 => $tile::<6, $np $(, $q4)?>(
                    acts, r0, b0, nbk, w, w_panel, c, ldc, ncols, accumulate,
                ),
                _ => unreachable!("row block of {mr}"),
            }
        };
    }
    match (fmt, np) {
        (QFormat::Q8, 1) => go!(tile, 1, false),
        (QFormat::Q8, 2) => go!(tile, 2, false),
        (QFormat::Q4, 1) => go!(tile, 1, true),
        (QFormat::Q4, 2) => go!(tile, 2, true),
        (QFormat::Q12, 1) => go!(tile_q12, 1),
        (QFormat::Q12, 2) => go!(tile_q12, 2),
        _ => unreachable!("panel group of {np}"),
    }
}
