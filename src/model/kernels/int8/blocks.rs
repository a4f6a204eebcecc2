//! Rounding to blocks of 32 and laying blocks out: the activations' per-row quantiser, the
//! weights' quantisers (GGML's `Q8_0` and `Q4_0`, and `Q12` with its inverse), and the copy of
//! one row's blocks into its panel column.

use rayon::prelude::*;

use super::{QFormat, NR, PARALLEL_MIN, Q12_MAX, QK};

/// Quantises each row's blocks of 32 to `±qmax` steps, value `j` of a block stored at
/// `slot(j)`; returns the values, the scales and `offset` times each block's sum.
pub(in crate::model::kernels) fn quantise<T: Copy + Send + Sync>(
    x: &[f32],
    m: usize,
    k: usize,
    qmax: f32,
    offset: i32,
    slot: impl Fn(usize) -> usize + Sync,
    cast: impl Fn(i32) -> T + Sync,
) -> (Vec<T>, Vec<f32>, Vec<i32>) {
    let nb = k / QK;
    let mut q = vec![cast(0); m * k];
    let mut d = vec![0f32; m * nb];
    let mut corr = vec![0i32; m * nb];
    let wide = avx512_available();
    let row = |row: Row<'_, T>| {
        #[cfg(target_arch = "x86_64")]
        if wide {
            // SAFETY: AVX-512 F and BW were detected.
            return unsafe { quantise_row_avx512(row, qmax, offset, &slot, &cast) };
        }
        quantise_row(row, qmax, offset, &slot, &cast)
    };
    if m * k >= PARALLEL_MIN {
        x.par_chunks_exact(k)
            .zip(q.par_chunks_exact_mut(k))
            .zip(d.par_chunks_exact_mut(nb))
            .zip(corr.par_chunks_exact_mut(nb))
            .for_each(row);
    } else {
        x.chunks_exact(k)
            .zip(q.chunks_exact_mut(k))
            .zip(d.chunks_exact_mut(nb))
            .zip(corr.chunks_exact_mut(nb))
            .for_each(row);
    }
    (q, d, corr)
}

/// Whether [`quantise_row_avx512`] runs here.
fn avx512_available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx512f")
            && std::arch::is_x86_feature_detected!("avx512bw")
    }
    #[cfg(not(target_arch = "x86_64"))]
    false
}

/// One row of [`quantise`]: its values, blocks, scales and corrections.
type Row<'a, T> = (((&'a [f32], &'a mut [T]), &'a mut [f32]), &'a mut [i32]);

/// [`quantise_row`] compiled for 512-bit vectors: a few rows' quantising (as when a word is
/// appended) runs on one thread, and the portable build's 128-bit code took about 2 % of it.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw")]
unsafe fn quantise_row_avx512<T: Copy>(
    row: Row<'_, T>,
    qmax: f32,
    offset: i32,
    slot: &impl Fn(usize) -> usize,
    cast: &impl Fn(i32) -> T,
) {
    quantise_row(row, qmax, offset, slot, cast)
}

#[inline(always)]
fn quantise_row<T: Copy>(
    (((xr, qr), dr), cr): Row<'_, T>,
    qmax: f32,
    offset: i32,
    slot: &impl Fn(usize) -> usize,
    cast: &impl Fn(i32) -> T,
) {
    for ((xb, qb), (db, cb)) in xr
        .chunks_exact(QK)
        .zip(qr.chunks_exact_mut(QK))
        .zip(dr.iter_mut().zip(cr.iter_mut()))
    {
        let amax = xb.iter().fold(0f32, |a, v| a.max(v.abs()));
        let scale = amax / qmax;
        let inv = if scale > 0.0 { 1.0 / scale } else { 0.0 };
        let mut r = [0i32; QK];
        for (r, &v) in r.iter_mut().zip(xb) {
            *r = round_small(v * inv);
        }
        for (j, &r) in r.iter().enumerate() {
            qb[slot(j)] = cast(r);
        }
        *db = scale;
        *cb = offset * r.iter().sum::<i32>();
    }
}

/// [`round_half_away`] for `|t| < 2²²` (NaN gives 0), in integer and float arithmetic the
/// compiler vectorises: the saturating float-to-integer cast went one lane at a time. Adding
/// 1.5·2²³ rounds `|t|` plus just under a half to the nearest integer, which sits in the sum's
/// low bits; one less where that overshot is the truncation [`round_half_away`] takes.
#[inline(always)]
pub(super) fn round_small(t: f32) -> i32 {
    const MAGIC: f32 = 12_582_912.0;
    let a = t.abs() + BELOW_HALF;
    let near = (a + MAGIC).to_bits().wrapping_sub(MAGIC.to_bits()) as i32;
    let whole = near - i32::from(near as f32 > a);
    if t.is_nan() {
        0
    } else if t < 0.0 {
        -whole
    } else {
        whole
    }
}

/// Puts one row's GGML blocks (`fmt`'s) as column `c` of its panel.
pub(super) fn put_row(fmt: QFormat, src_row: &[u8], panel: &mut [u8], c: usize) {
    let (gb, bb) = (fmt.ggml_block_bytes(), fmt.block_bytes());
    for (src, dst) in src_row.chunks_exact(gb).zip(panel.chunks_exact_mut(bb)) {
        dst[2 * c..2 * c + 2].copy_from_slice(&src[..2]);
        let q = &mut dst[2 * NR..];
        match fmt {
            QFormat::Q8 => {
                // value j goes to quad j / 4, lane c, byte j % 4
                for j in 0..QK {
                    let v = (src[2 + j] as i8 as i32 + 128) as u8;
                    q[(j / 4) * 64 + c * 4 + j % 4] = v;
                }
            }
            QFormat::Q4 => {
                // GGML: byte j holds value j (low nibble) and j + 16 (high).
                let nib = |j: usize| {
                    let byte = src[2 + j % 16];
                    if j < 16 {
                        byte & 0x0f
                    } else {
                        byte >> 4
                    }
                };
                // Here: 64-byte group g holds quad 2g (low) and 2g + 1 (high).
                for g in 0..4 {
                    for e in 0..4 {
                        let lo = nib(8 * g + e);
                        let hi = nib(8 * g + 4 + e);
                        q[g * 64 + c * 4 + e] = lo | (hi << 4);
                    }
                }
            }
            QFormat::Q12 => {
                // Pair p of lane c, its two values as stored: the operand layout of `vpmaddwd`.
                for p in 0..QK / 2 {
                    let at = p * 64 + c * 4;
                    q[at..at + 4].copy_from_slice(&src[2 + 4 * p..6 + 4 * p]);
                }
            }
        }
    }
}

/// Quantises rows of `x` (whole blocks of 32) to `Q12` blocks: an f16 scale `d` (little
/// endian), then 32 values `q` as little-endian `i16`, `|q| ≤` [`Q12_MAX`]. Each `q` is rounded
/// against the scale as stored, so the f16's rounding costs nothing but a step a little off
/// `absmax / 2047`; a scale below f16's range is held at its smallest step rather than zero.
/// Non-finite weights give zeros, not a panic.
pub fn quantize_q12(x: &[f32]) -> Vec<u8> {
    assert!(x.len().is_multiple_of(QK), "whole blocks of {QK}");
    let mut out = vec![0u8; x.len() / QK * QFormat::Q12.ggml_block_bytes()];
    quantize_into(QFormat::Q12, x, &mut out);
    out
}

/// Quantises `x` (whole blocks of 32) to `fmt`'s blocks in `out`, which holds exactly their
/// bytes (a load quantises row after row into one buffer). `Q8` and `Q4` are GGML's `Q8_0` and
/// `Q4_0`, rounded as GGML's reference quantisers (and candle's) round, byte for byte: `Q8`
/// `d = absmax / 127`, `q = round(x / d)`; `Q4` `d = -m / 8` for the value `m` of largest
/// magnitude, `q = min(15, trunc(x / d + 8.5))`, values `j` and `j + 16` in byte `j`. `Q12`:
/// see [`quantize_q12`].
pub fn quantize_into(fmt: QFormat, x: &[f32], out: &mut [u8]) {
    let gb = fmt.ggml_block_bytes();
    assert!(x.len().is_multiple_of(QK), "whole blocks of {QK}");
    assert_eq!(
        out.len(),
        x.len() / QK * gb,
        "bytes for {} blocks",
        x.len() / QK
    );
    let blocks = x.chunks_exact(QK).zip(out.chunks_exact_mut(gb));
    match fmt {
        QFormat::Q8 => {
            for (xb, ob) in blocks {
                let amax = xb.iter().fold(0f32, |a, v| a.max(v.abs()));
                let d = amax / 127.0;
                let id = if d != 0.0 { 1.0 / d } else { 0.0 };
                ob[..2].copy_from_slice(&half::f16::from_f32(d).to_le_bytes());
                for (dst, &v) in ob[2..].iter_mut().zip(xb) {
                    // Saturating, as `f32::round(t) as i8` is (a tiny scale's inverse is ∞).
                    *dst = biased(v * id) as i8 as u8;
                }
            }
        }
        QFormat::Q4 => {
            for (xb, ob) in blocks {
                let (mut amax, mut max) = (0f32, 0f32);
                for &v in xb {
                    if amax < v.abs() {
                        amax = v.abs();
                        max = v;
                    }
                }
                let d = max / -8.0;
                let id = if d != 0.0 { 1.0 / d } else { 0.0 };
                ob[..2].copy_from_slice(&half::f16::from_f32(d).to_le_bytes());
                let q = |v: f32| ((v * id + 8.5) as u8).min(15);
                for (j, dst) in ob[2..].iter_mut().enumerate() {
                    *dst = q(xb[j]) | (q(xb[QK / 2 + j]) << 4);
                }
            }
        }
        QFormat::Q12 => {
            for (xb, ob) in blocks {
                let amax = xb.iter().fold(0f32, |a, v| a.max(v.abs()));
                let mut d = half::f16::from_f32(amax / Q12_MAX as f32);
                if !d.is_finite() || amax.is_nan() {
                    d = half::f16::ZERO;
                } else if d == half::f16::ZERO && amax > 0.0 {
                    d = half::f16::from_bits(1);
                }
                ob[..2].copy_from_slice(&d.to_le_bytes());
                let inv = if d == half::f16::ZERO {
                    0.0
                } else {
                    1.0 / d.to_f32()
                };
                for (dst, &v) in ob[2..].chunks_exact_mut(2).zip(xb) {
                    // |v · inv| stays near 2047 (the scale is absmax / 2047, or the smallest
                    // step above it); NaN, from a non-finite block, becomes 0.
                    let q = round_half_away(v * inv).clamp(-Q12_MAX, Q12_MAX) as i16;
                    dst.copy_from_slice(&q.to_le_bytes());
                }
            }
        }
    }
}

/// The largest float below 0.5: added to `|t|` before truncating, it rounds half away from
/// zero without carrying values just under a half up.
const BELOW_HALF: f32 = 0.499_999_97;

/// `t` rounded half away from zero, as `f32::round` rounds it, for `|t| < 2²³` (NaN gives 0),
/// without its library call: the baseline x86-64 target has no rounding instruction.
#[inline]
pub(super) fn round_half_away(t: f32) -> i32 {
    biased(t) as i32
}

/// `t` moved half a step less a little away from zero, so that truncating it rounds `t` half
/// away from zero (the largest float below 0.5 is added with `t`'s sign); an integer cast of
/// it equals that cast of `f32::round(t)`, saturation and NaN included.
#[inline]
fn biased(t: f32) -> f32 {
    t + BELOW_HALF.copysign(t)
}

/// The values `Q12` blocks stand for (the tests' and the accuracy tools' reference).
pub fn dequantize_q12(bytes: &[u8]) -> Vec<f32> {
    let gb = QFormat::Q12.ggml_block_bytes();
    bytes
        .chunks_exact(gb)
        .flat_map(|b| {
            let d = half::f16::from_le_bytes([b[0], b[1]]).to_f32();
            (0..QK).map(move |j| i16::from_le_bytes([b[2 + 2 * j], b[3 + 2 * j]]) as f32 * d)
        })
        .collect()
}
