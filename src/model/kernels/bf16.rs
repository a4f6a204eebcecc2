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

    /// The kernel [`PackedBf16::matmul`] uses on this processor: the AVX512-BF16 dot product
    /// unless widening to f32 and 512-bit FMA measures clearly faster (on an Intel Xeon whose
    /// `vdpbf16ps` runs at half the FMA rate), else widening on AVX-512 or AVX2.
    pub fn best_isa() -> Isa {
        if Isa::Avx512Bf16.is_available() && !widening_is_faster() {
            return Isa::Avx512Bf16;
        }
        [Isa::Avx512, Isa::Avx2]
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
                                r0 == 0,
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
            Isa::Avx512 => {
                let a = in_pairs(x, m, k, kp);
                let a_ptr = a.as_ptr() as usize;
                super::drive_blocked(
                    self.panels,
                    self.kp,
                    KC,
                    (m, 60),
                    8,
                    3,
                    parallel,
                    |r0, mr, p0, np, j0, nj, acc| {
                        let ncols = (n - p0 * NR).min(np * NR);
                        // SAFETY: as above.
                        unsafe {
                            avx512::widen_tile_any(
                                mr,
                                np,
                                r0 == 0,
                                (a_ptr as *const f32).add(r0 * 2 * kp + 2 * j0),
                                2 * kp,
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
                let a = in_pairs(x, m, k, kp);
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

/// Whether widening the weights to f32 for 512-bit FMA measures clearly faster than the
/// AVX512-BF16 dot product on this CPU. The dot product does two multiply-adds per lane where
/// FMA does one, but its rate differs by CPU: on a Zen 4 it ran the faster of the two, on an
/// Intel Xeon (Emerald Rapids) at half the FMA rate. Measured once per process, on one
/// compute-bound product (60–80 ms there with its set-up), only where AVX512-BF16 exists,
/// unless a choice kept from an earlier start was given ([`keep_widening_choice`]).
fn widening_is_faster() -> bool {
    *WIDENING.get_or_init(|| {
        let (m, n, _) = super::TIMING_SHAPE;
        let (w, x) = timing_operands();
        let (mut out, mut out2) = (vec![0f32; m * n], vec![0f32; m * n]);
        let (dot, widen) = super::best_times(
            &mut || w.matmul_with(Isa::Avx512Bf16, &x, m, &mut out),
            &mut || w.matmul_with(Isa::Avx512, &x, m, &mut out2),
        );
        let faster = super::clearly_faster(widen, dot, WIDEN_MARGIN);
        tracing::info!(
            "bf16 on this CPU: {:.0} µs widened to f32, {:.0} µs with the dot product; using {}",
            widen * 1e6,
            dot * 1e6,
            if faster { "f32 FMA" } else { "the dot product" }
        );
        faster
    })
}

/// This process's choice between bf16's two AVX-512 kernels (true: widened to f32 FMA), once
/// made.
static WIDENING: std::sync::OnceLock<bool> = std::sync::OnceLock::new();

/// The choice between bf16's AVX-512 kernels this process has made, if it has (true: widened
/// to f32 FMA), to be kept for later starts: the two round differently, so a choice timed
/// again could move every bf16 score.
pub fn widening_choice() -> Option<bool> {
    WIDENING.get().copied()
}

/// Takes a choice kept from an earlier start instead of timing one; false where this process
/// has already chosen.
pub fn keep_widening_choice(widen: bool) -> bool {
    WIDENING.set(widen).is_ok()
}

/// How much faster widening must measure to be chosen over the dot product: the margin keeps
/// timing noise from switching kernels, whose roundings differ, between starts.
const WIDEN_MARGIN: f64 = 0.85;

/// The bf16 operands of the product that choices between kernels time
/// ([`super::TIMING_SHAPE`]): the weight, packed, and the activations.
pub fn timing_operands() -> (PackedBf16, Vec<f32>) {
    let (m, n, k) = super::TIMING_SHAPE;
    let value = super::timing_value;
    let bits: Vec<u16> = (0..n * k).map(|i| f32_to_bf16(value(i))).collect();
    let x = (0..m * k).map(|i| value(i + 7) * 50.0).collect();
    (PackedBf16::from_rows(&bits, n, k), x)
}

/// The f32 activations with each row a whole number (`kp`) of k-pairs: as they are when `k` is
/// even, else copied with a zero after each row.
fn in_pairs(x: &[f32], m: usize, k: usize, kp: usize) -> std::borrow::Cow<'_, [f32]> {
    if k == 2 * kp {
        std::borrow::Cow::Borrowed(x)
    } else {
        std::borrow::Cow::Owned(pad_rows(x, m, k, 2 * kp))
    }
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
mod avx512;

#[cfg(target_arch = "x86_64")]
mod avx2;

#[cfg(test)]
mod tests;
