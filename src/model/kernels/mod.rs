//! Hand-written CPU matrix kernels for the projections, used where candle's own CPU paths are
//! slow (bf16 weights). Every instruction-set-specific kernel is chosen at run time from what
//! the processor reports, and each has a portable fallback computing the same thing.

pub mod bf16;
pub mod bytes;
pub mod f32;
pub mod int8;
pub mod q4k;

use std::sync::OnceLock;

/// The contract of every kernel's `matmul`: `x` holds `m × k` values and `out` `m × n`.
fn assert_matmul_shapes(x: &[f32], out: &[f32], m: usize, n: usize, k: usize) {
    assert_eq!(x.len(), m * k, "input has {} values, not {m}×{k}", x.len());
    assert_eq!(
        out.len(),
        m * n,
        "output has {} values, not {m}×{n}",
        out.len()
    );
}

/// Deterministic test values in about [-1, 1), from a seeded linear congruential sequence.
#[cfg(test)]
pub(crate) fn test_values(n: usize, seed: u64) -> Vec<f32> {
    let step = |s: u64| {
        s.wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407)
    };
    let mut s = step(seed);
    (0..n)
        .map(|_| {
            s = step(s);
            ((s >> 40) as f32 / (1u64 << 23) as f32) - 1.0
        })
        .collect()
}

/// The instruction sets a kernel can be built on, best first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Isa {
    /// Plain Rust: any processor.
    Scalar,
    /// x86-64 AVX2 + FMA (most laptops of the last decade).
    Avx2,
    /// x86-64 AVX-512 with the BF16 dot-product instructions (Zen 4+, Cooper Lake, Sapphire Rapids+).
    Avx512Bf16,
    /// x86-64 AVX-512 with the 8-bit integer dot-product instructions (Ice Lake+, Zen 4+).
    Avx512Vnni,
    /// x86-64 AVX-512 F (512-bit f32 FMA): on CPUs with two 512-bit FMA units (Intel Xeons)
    /// twice AVX2's f32 rate; on Zen 4, which splits them in two, the same rate in half the
    /// instructions.
    Avx512,
}

impl Isa {
    /// Every instruction set this processor can run, best first.
    pub fn available() -> Vec<Isa> {
        let mut v = Vec::new();
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx512f")
                && std::arch::is_x86_feature_detected!("avx512bw")
                && std::arch::is_x86_feature_detected!("avx512bf16")
            {
                v.push(Isa::Avx512Bf16);
            }
            if std::arch::is_x86_feature_detected!("avx512f")
                && std::arch::is_x86_feature_detected!("avx512bw")
                && std::arch::is_x86_feature_detected!("avx512vnni")
            {
                v.push(Isa::Avx512Vnni);
            }
            if std::arch::is_x86_feature_detected!("avx512f") {
                v.push(Isa::Avx512);
            }
            if std::arch::is_x86_feature_detected!("avx2")
                && std::arch::is_x86_feature_detected!("fma")
            {
                v.push(Isa::Avx2);
            }
        }
        v.push(Isa::Scalar);
        v
    }

    /// Whether this processor runs `self` (detected once).
    pub fn is_available(self) -> bool {
        static AVAILABLE: OnceLock<Vec<Isa>> = OnceLock::new();
        AVAILABLE.get_or_init(Isa::available).contains(&self)
    }

    pub fn name(self) -> &'static str {
        match self {
            Isa::Scalar => "portable",
            Isa::Avx2 => "AVX2+FMA",
            Isa::Avx512Bf16 => "AVX512-BF16",
            Isa::Avx512Vnni => "AVX512-VNNI",
            Isa::Avx512 => "AVX-512",
        }
    }
}

/// Output columns per panel: one 512-bit register of f32 (two 256-bit ones for AVX2).
pub const NR: usize = 16;

/// Calls `tile::<R, P>(args…)` for a run-time row count `mr ≤ 8` and panel count `np ≤ 3`: the
/// dispatch of the AVX-512 tiles of up to 8 rows × 3 panels (f32's and bf16's). With
/// `tile [, X]`, calls `tile::<R, P, X>` (a further const parameter); with `if first`, calls
/// `tile::<R, P, true>` when `first` holds, else `tile::<R, P, false>`.
macro_rules! tile_8x3 {
    ($tile:ident, $mr:expr, $np:expr, ($($arg:expr),*)) => {
        $crate::model::kernels::tile_8x3!($tile [], $mr, $np, ($($arg),*))
    };
    ($tile:ident, $mr:expr, $np:expr, if $first:expr, ($($arg:expr),*)) => {
        if $first {
            $crate::model::kernels::tile_8x3!($tile [, true], $mr, $np, ($($arg),*))
        } else {
            $crate::model::kernels::tile_8x3!($tile [, false], $mr, $np, ($($arg),*))
        }
    };
    ($tile:ident [$($g:tt)*], $mr:expr, $np:expr, ($($arg:expr),*)) => {
        match $np {
            1 => $crate::model::kernels::tile_8x3!(@rows $tile [$($g)*], 1, $mr, ($($arg),*)),
            2 => $crate::model::kernels::tile_8x3!(@rows $tile [$($g)*], 2, $mr, ($($arg),*)),
            3 => $crate::model::kernels::tile_8x3!(@rows $tile [$($g)*], 3, $mr, ($($arg),*)),
            np => unreachable!("panel group of {np}"),
        }
    };
    (@rows $tile:ident [$($g:tt)*], $p:literal, $mr:expr, ($($arg:expr),*)) => {
        match $mr {
            1 => $tile::<1, $p $($g)*>($($arg),*),
            2 => $tile::<2, $p $($g)*>($($arg),*),
            3 => $tile::<3, $p $($g)*>($($arg),*),
            4 => $tile::<4, $p $($g)*>($($arg),*),
            5 => $tile::<5, $p $($g)*>($($arg),*),
            6 => $tile::<6, $p $($g)*>($($arg),*),
            7 => $tile::<7, $p $($g)*>($($arg),*),
            8 => $tile::<8, $p $($g)*>($($arg),*),
            mr => unreachable!("row block of {mr}"),
        }
    };
}
pub(crate) use tile_8x3;

/// Writes (or, with `accumulate`, adds) an `MR × NP·16` block of f32 accumulators to `c`
/// (row stride `ldc`), keeping only the first `ncols` columns: the epilogue of the AVX-512
/// tile kernels.
///
/// # Safety
/// The processor must support AVX-512F, and `c` must be valid for `MR` rows of `ncols` values.
#[cfg(target_arch = "x86_64")]
#[inline]
#[target_feature(enable = "avx512f")]
unsafe fn avx512_store_tile<const MR: usize, const NP: usize>(
    acc: &[[std::arch::x86_64::__m512; NP]; MR],
    c: *mut f32,
    ldc: usize,
    ncols: usize,
    accumulate: bool,
) {
    use std::arch::x86_64::*;
    for (r, row) in acc.iter().enumerate() {
        for (p, &v) in row.iter().enumerate() {
            let here = ncols.saturating_sub(p * NR).min(NR);
            if here == 0 {
                continue;
            }
            let mask: __mmask16 = if here == NR {
                0xffff
            } else {
                ((1u32 << here) - 1) as u16
            };
            let dst = c.add(r * ldc + p * NR);
            let v = if accumulate {
                _mm512_add_ps(v, _mm512_maskz_loadu_ps(mask, dst))
            } else {
                v
            };
            _mm512_mask_storeu_ps(dst, mask, v);
        }
    }
}

/// Writes (or, with `accumulate`, adds) an `MR × 16` block of f32 sums, each row in two
/// 256-bit registers, to `c` (row stride `ldc`), keeping only the first `ncols` columns: the
/// epilogue of the AVX2 tile kernels.
///
/// # Safety
/// The processor must support AVX, and `c` must be valid for `MR` rows of `ncols` values.
#[cfg(target_arch = "x86_64")]
#[inline]
#[target_feature(enable = "avx")]
unsafe fn avx2_store_tile<const MR: usize>(
    acc: &[[std::arch::x86_64::__m256; 2]; MR],
    c: *mut f32,
    ldc: usize,
    ncols: usize,
    accumulate: bool,
) {
    use std::arch::x86_64::*;
    for (r, row) in acc.iter().enumerate() {
        let dst = c.add(r * ldc);
        if ncols == NR {
            for (h, &v) in row.iter().enumerate() {
                let d = dst.add(8 * h);
                let v = if accumulate {
                    _mm256_add_ps(v, _mm256_loadu_ps(d))
                } else {
                    v
                };
                _mm256_storeu_ps(d, v);
            }
        } else {
            let mut tmp = [0f32; NR];
            _mm256_storeu_ps(tmp.as_mut_ptr(), row[0]);
            _mm256_storeu_ps(tmp.as_mut_ptr().add(8), row[1]);
            for (j, &v) in tmp.iter().enumerate().take(ncols) {
                let d = dst.add(j);
                *d = if accumulate { *d + v } else { v };
            }
        }
    }
}

/// `acc + Σ pairs a·b` (`vpdpwssd`), kept one instruction: LLVM otherwise rewrites the
/// intrinsic as `vpmaddwd` + `vpaddd`, two instructions where the 16-bit kernels are bound by
/// instruction count.
///
/// # Safety
/// The processor must have AVX512-VNNI.
#[cfg(target_arch = "x86_64")]
#[inline]
#[target_feature(enable = "avx512f,avx512vnni")]
unsafe fn dpwssd(
    acc: std::arch::x86_64::__m512i,
    a: std::arch::x86_64::__m512i,
    b: std::arch::x86_64::__m512i,
) -> std::arch::x86_64::__m512i {
    let mut acc = acc;
    std::arch::asm!(
        "vpdpwssd {acc}, {a}, {b}",
        acc = inout(zmm_reg) acc,
        a = in(zmm_reg) a,
        b = in(zmm_reg) b,
        options(pure, nomem, nostack, preserves_flags),
    );
    acc
}

/// Calls `fill(scratch, panel, column, i)` for each row `row0 + i` (`i < rows`) of a matrix
/// packed in panels of [`NR`] rows, `panel_len` values each: the panels in parallel, each row
/// at its column in its panel. `scratch` is made once per worker by `init`.
pub(crate) fn fill_panel_rows<T: Send, S>(
    data: &mut [T],
    panel_len: usize,
    row0: usize,
    rows: usize,
    init: impl Fn() -> S + Sync + Send,
    fill: impl Fn(&mut S, &mut [T], usize, usize) + Sync + Send,
) {
    use rayon::prelude::*;
    if rows == 0 || panel_len == 0 {
        return;
    }
    let (first, last) = (row0 / NR, (row0 + rows - 1) / NR);
    data.par_chunks_mut(panel_len)
        .enumerate()
        .skip(first)
        .take(last + 1 - first)
        .for_each_init(init, |scratch, (p, panel)| {
            let lo = (p * NR).max(row0);
            let hi = (p * NR + NR).min(row0 + rows);
            for r in lo..hi {
                fill(scratch, panel, r - p * NR, r - row0);
            }
        });
}

/// A raw output pointer that several threads write disjoint parts of.
#[derive(Clone, Copy)]
struct SendPtr(*mut f32);
// SAFETY: users only ever write disjoint elements through it, while the buffer outlives them.
unsafe impl Send for SendPtr {}
unsafe impl Sync for SendPtr {}

impl SendPtr {
    /// The pointer (a method, so that closures capture the whole `Send` wrapper).
    fn get(self) -> *mut f32 {
        self.0
    }
}

/// The compute-bound product that choices between kernels time: 128 rows against a 1024 × 2048
/// weight (4 MiB in bf16; smaller products measure mostly the threads' hand-offs), as
/// `(m, n, k)`.
pub const TIMING_SHAPE: (usize, usize, usize) = (128, 1024, 2048);

/// Values of a trained layer's size for timing products (what is timed does not depend on them).
pub fn timing_value(i: usize) -> f32 {
    ((i.wrapping_mul(2_654_435_761) >> 7) % 2001) as f32 * 1e-5 - 0.01
}

/// Whether a computation timed at `new` seconds is clearly faster than one timed at `old`: it
/// takes at most `margin` of the time, far enough below 1 that timing noise does not flip the
/// choice between starts. A failed timing (not finite) keeps `old`.
pub fn clearly_faster(new: f64, old: f64, margin: f64) -> bool {
    new.is_finite() && old.is_finite() && new < margin * old
}

/// The best of five timings of each of two computations, alternating, after a round that warms
/// the caches and the threads: seconds each. For choosing between kernels by measuring them.
/// The choices are kept across starts (`model::machine`): a change to a timed kernel bumps
/// that module's `REVISION`, so that they are timed again.
pub fn best_times(a: &mut dyn FnMut(), b: &mut dyn FnMut()) -> (f64, f64) {
    let time = |f: &mut dyn FnMut()| {
        let t = std::time::Instant::now();
        f();
        t.elapsed().as_secs_f64()
    };
    let (mut best_a, mut best_b) = (f64::MAX, f64::MAX);
    for round in 0..6 {
        let (ta, tb) = (time(&mut *a), time(&mut *b));
        if round > 0 {
            best_a = best_a.min(ta);
            best_b = best_b.min(tb);
        }
    }
    (best_a, best_b)
}

/// Runs `tile(row0, rows, panel0, panels, k0, kn, accumulate)` over a packed product of
/// `panels` column panels and `kblocks` blocks along k: threads take groups of `np_max`
/// panels, and within one group the k blocks go in chunks of `kc`, in order (so each tile
/// adds to what the previous chunk stored), over all `m` rows, `mr_max` at a time.
#[allow(clippy::too_many_arguments, clippy::type_complexity)]
pub(crate) fn drive(
    panels: usize,
    kblocks: usize,
    kc: usize,
    m: usize,
    mr_max: usize,
    np_max: usize,
    parallel: bool,
    tile: impl Fn(usize, usize, usize, usize, usize, usize, bool) + Sync,
) {
    drive_blocked(
        panels,
        kblocks,
        kc,
        (m, usize::MAX),
        mr_max,
        np_max,
        parallel,
        tile,
    )
}

/// [`drive`] with the rows in blocks of `mc`: a thread takes several panel groups, and for
/// each k chunk passes one block of rows over all of them before the next block, so that a
/// block's activations stay in L2 while the groups' weights are read from a nearer cache than
/// memory; with all `m` rows at once (`mc ≥ m`), many rows' activations for one chunk
/// outgrow L2 and are fetched again for every panel group.
#[allow(clippy::too_many_arguments, clippy::type_complexity)]
pub(crate) fn drive_blocked(
    panels: usize,
    kblocks: usize,
    kc: usize,
    (m, mc): (usize, usize),
    mr_max: usize,
    np_max: usize,
    parallel: bool,
    tile: impl Fn(usize, usize, usize, usize, usize, usize, bool) + Sync,
) {
    use rayon::prelude::*;
    let groups = panels.div_ceil(np_max);
    // Groups per unit of work: one when all rows go at once (each group's chunk stays in L1
    // for every row); else enough for several units per thread, at most 8.
    let per = if mc >= m {
        1
    } else {
        (groups / (8 * rayon::current_num_threads().max(1))).clamp(1, 8)
    };
    // With one block of rows nothing reuses a chunk of weights: each tile takes the whole k,
    // storing its sums once instead of adding them up through memory chunk by chunk.
    let kc = if m <= mr_max { kblocks.max(1) } else { kc };
    let work = |u: usize| {
        let (g0, g1) = (u * per, ((u + 1) * per).min(groups));
        let mut k0 = 0;
        while k0 < kblocks {
            let kn = kc.min(kblocks - k0);
            let mut m0 = 0;
            while m0 < m {
                let m1 = m0 + mc.min(m - m0);
                for g in g0..g1 {
                    let p0 = g * np_max;
                    let np = np_max.min(panels - p0);
                    let mut r0 = m0;
                    while r0 < m1 {
                        let mr = mr_max.min(m1 - r0);
                        tile(r0, mr, p0, np, k0, kn, k0 > 0);
                        r0 += mr;
                    }
                }
                m0 = m1;
            }
            k0 += kn;
        }
    };
    let units = groups.div_ceil(per);
    if parallel {
        (0..units).into_par_iter().for_each(work);
    } else {
        (0..units).for_each(work);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    /// Every (row, panel) is visited once per k chunk, chunks in order, the first one storing
    /// and the rest adding: whatever the row blocks, panel groups and threads (and a single
    /// row block takes the whole k as one chunk).
    #[test]
    fn drive_blocked_covers_every_tile_once_per_chunk_in_order() {
        for &(panels, kblocks, kc, m, mc, mr, np, parallel) in &[
            (40, 10, 3, 130, 60, 6, 1, true),
            (40, 10, 3, 130, usize::MAX, 6, 1, true),
            (7, 5, 5, 9, 4, 3, 2, false),
            (64, 4, 1, 61, 60, 3, 3, true),
            (1, 1, 1, 1, 1, 1, 1, false),
            // One row block: the whole k at once.
            (10, 9, 2, 5, usize::MAX, 6, 2, true),
        ] {
            let seen = Mutex::new(vec![Vec::new(); m * panels]);
            super::drive_blocked(
                panels,
                kblocks,
                kc,
                (m, mc),
                mr,
                np,
                parallel,
                |r0, rows, p0, nps, k0, kn, acc| {
                    assert!(rows >= 1 && rows <= mr && nps >= 1 && nps <= np);
                    assert_eq!(acc, k0 > 0);
                    let mut seen = seen.lock().unwrap();
                    for r in r0..r0 + rows {
                        for p in p0..p0 + nps {
                            seen[r * panels + p].push((k0, kn));
                        }
                    }
                },
            );
            let kc = if m <= mr { kblocks } else { kc };
            let want: Vec<(usize, usize)> = (0..kblocks)
                .step_by(kc)
                .map(|k0| (k0, kc.min(kblocks - k0)))
                .collect();
            for (i, chunks) in seen.into_inner().unwrap().iter().enumerate() {
                assert_eq!(chunks, &want, "row {} panel {}", i / panels, i % panels);
            }
        }
    }
}
