//! `y = x Wᵀ` with GGML `Q4_K` weights (super-blocks of 256 in 8 sub-blocks of 32; per
//! sub-block `w = d·sc·q − dmin·m`, q in 0..=15, sc and m 6-bit) and f32 activations quantised
//! per row and block of 32 to 16 bits, as for the 8-bit weights in [`super::int8`]: 8-bit
//! activations would cost the ranking there and here alike. The product of a sub-block is
//! `da·(d·sc·Σ q·a − dmin·m·Σ a)`: one integer dot product (`vpdpwssd`, nibbles widened to 16
//! bits in registers) and the block's activation sum, which the quantiser already has.
//!
//! The weights are repacked once into panels of 16 output columns; per super-block: the 16
//! columns' `d`, their `dmin` (f16), then per sub-block their 16 scales and 16 minimums (u8),
//! then per sub-block 4 groups of 64 bytes, group g holding for each column values 8g..8g+4
//! in the low nibbles and 8g+4..8g+8 in the high ones. That is 4.625 bits per weight against
//! GGML's 4.5. A `k` that is not a whole number of super-blocks is padded with zero columns
//! (whole sub-blocks of 32) that the kernels never read.

use super::bytes::WeightBytes;
use super::int8::{q16_slot, quantise, QK};
use super::{Isa, SendPtr, NR};
use crate::model::kquant::{padded_k, scale_min, Q4K_BLOCK_BYTES, QK_K};

/// Sub-blocks per super-block.
const NSUB: usize = QK_K / QK;
/// Bytes of one (panel, super-block).
const SB_BYTES: usize = 2 * NR + 2 * NR + 2 * NSUB * NR + NSUB * NR * QK / 2;
/// Offsets inside one (panel, super-block).
const DMIN_AT: usize = 2 * NR;
const SC_AT: usize = 4 * NR;
const M_AT: usize = SC_AT + NSUB * NR;
const Q_AT: usize = M_AT + NSUB * NR;
/// Bytes of one sub-block's nibbles for 16 columns.
const SUB_Q_BYTES: usize = NR * QK / 2;
/// Super-blocks per k chunk: all rows pass one chunk of a panel group while it sits in L2.
const KCB: usize = 4;
const PARALLEL_MIN: usize = 1 << 18;

/// A weight matrix `W` `[n, k]` (k a multiple of 32) packed for [`PackedQ4K::matmul`].
pub struct PackedQ4K {
    data: WeightBytes,
    n: usize,
    k: usize,
    /// Super-blocks per column (the last one padded when k is not a multiple of 256).
    nsb: usize,
    panels: usize,
}

impl std::fmt::Debug for PackedQ4K {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PackedQ4K {{ n: {}, k: {} }}", self.n, self.k)
    }
}

/// Activations for the kernels: 16-bit values per block of 32 in [`q16_slot`] order, the
/// blocks' scales, and each block's sum times its scale.
struct Acts {
    q: Vec<i16>,
    d: Vec<f32>,
    dsum: Vec<f32>,
    k: usize,
    nb: usize,
}

impl Acts {
    fn new(x: &[f32], m: usize, k: usize) -> Self {
        let (q, d, sum) = quantise(x, m, k, 32767.0, 1, q16_slot, |r| r as i16);
        let dsum = d.iter().zip(&sum).map(|(d, &s)| d * s as f32).collect();
        Self {
            q,
            d,
            dsum,
            k,
            nb: k / QK,
        }
    }

    fn value(&self, row: usize, j: usize) -> i32 {
        self.q[row * self.k + (j / QK) * QK + q16_slot(j % QK)] as i32
    }
}

impl PackedQ4K {
    /// An all-zero matrix, filled by [`PackedQ4K::fill_ggml_rows`].
    pub fn zeroed(n: usize, k: usize) -> Self {
        assert!(k.is_multiple_of(QK), "k = {k} is not a multiple of {QK}");
        Self::with_bytes(n, k, WeightBytes::zeroed(Self::packed_len(n, k))).expect("sized for it")
    }

    /// Bytes of the packed form of an `[n, k]` weight.
    pub fn packed_len(n: usize, k: usize) -> usize {
        n.div_ceil(NR) * (padded_k(k) / QK_K) * SB_BYTES
    }

    /// A matrix from bytes already in the packed form ([`PackedQ4K::packed`] of an equal one),
    /// or `None` when there are not exactly as many as its shape needs.
    pub fn with_bytes(n: usize, k: usize, data: WeightBytes) -> Option<Self> {
        if !k.is_multiple_of(QK) || data.len() != Self::packed_len(n, k) {
            return None;
        }
        Some(Self {
            data,
            n,
            k,
            nsb: padded_k(k) / QK_K,
            panels: n.div_ceil(NR),
        })
    }

    /// The packed form, to be kept and given back to [`PackedQ4K::with_bytes`].
    pub fn packed(&self) -> &[u8] {
        &self.data
    }

    /// Whether the weights are used in place from a mapped file.
    pub fn is_mapped(&self) -> bool {
        self.data.is_mapped()
    }

    /// Packs rows `row0..row0 + rows` from GGML `Q4_K` blocks, row-major, each row
    /// [`padded_k`] values long.
    pub fn fill_ggml_rows(&mut self, row0: usize, rows: usize, ggml: &[u8]) {
        let nsb = self.nsb;
        let rb = nsb * Q4K_BLOCK_BYTES;
        assert_eq!(ggml.len(), rows * rb, "block bytes for {rows} rows");
        assert!(row0 + rows <= self.n);
        let data = self.data.owned_mut();
        super::fill_panel_rows(
            data,
            nsb * SB_BYTES,
            row0,
            rows,
            || (),
            |_, panel, c, i| {
                let src_row = &ggml[i * rb..(i + 1) * rb];
                for s in 0..nsb {
                    let src = &src_row[s * Q4K_BLOCK_BYTES..(s + 1) * Q4K_BLOCK_BYTES];
                    let dst = &mut panel[s * SB_BYTES..(s + 1) * SB_BYTES];
                    pack_block(src, dst, c);
                }
            },
        );
    }

    pub fn out_features(&self) -> usize {
        self.n
    }

    pub fn in_features(&self) -> usize {
        self.k
    }

    pub fn bytes(&self) -> usize {
        self.data.len()
    }

    /// The kernel [`PackedQ4K::matmul`] uses on this processor.
    pub fn best_isa() -> Isa {
        // The same instructions as the 8-bit kernels.
        super::int8::PackedQ::best_isa()
    }

    /// `out[m, n] = x[m, k] · Wᵀ`.
    pub fn matmul(&self, x: &[f32], m: usize, out: &mut [f32]) {
        self.matmul_with(Self::best_isa(), x, m, out)
    }

    /// As [`PackedQ4K::matmul`] with a chosen kernel: `Avx512Vnni` (where available) or
    /// `Scalar`.
    pub fn matmul_with(&self, isa: Isa, x: &[f32], m: usize, out: &mut [f32]) {
        let (n, k, nsb) = (self.n, self.k, self.nsb);
        super::assert_matmul_shapes(x, out, m, n, k);
        if m == 0 || n == 0 {
            return;
        }
        if k == 0 {
            out.fill(0.0);
            return;
        }
        assert!(
            isa != Isa::Avx512Vnni || super::int8::vnni_available(),
            "AVX512-VNNI is not available"
        );
        let acts = Acts::new(x, m, k);
        let nsub = k / QK;
        let c = SendPtr(out.as_mut_ptr());
        let (mr_max, np_max) = match isa {
            Isa::Avx512Vnni => (6, 2),
            _ => (4, 1),
        };
        super::drive(
            self.panels,
            nsb,
            KCB,
            m,
            mr_max,
            np_max,
            m * n * k >= PARALLEL_MIN,
            |r0, mr, p0, np, s0, nsbk, acc| {
                let ncols = (n - p0 * NR).min(np * NR);
                // Sub-blocks of this chunk that hold real columns of k.
                let subs = (nsub - s0 * NSUB).min(nsbk * NSUB);
                let w = &self.data[(p0 * nsb + s0) * SB_BYTES..];
                let tile = Tile {
                    acts: &acts,
                    r0,
                    sub0: s0 * NSUB,
                    subs,
                    c: c.get().wrapping_add(r0 * n + p0 * NR),
                    ldc: n,
                    ncols,
                    accumulate: acc,
                };
                match isa {
                    #[cfg(target_arch = "x86_64")]
                    Isa::Avx512Vnni => {
                        // SAFETY: VNNI checked above; every pointer stays inside its buffer
                        // (rows r0..r0+mr, sub-blocks of this chunk, panels p0..p0+np),
                        // and this tile of `out` is written by this call only.
                        unsafe { vnni::tile_any(mr, np, &tile, w.as_ptr(), nsb * SB_BYTES) }
                    }
                    _ => scalar_tile(&tile, mr, w),
                }
            },
        );
    }
}

/// One GGML block's column `c` into its place in a packed (panel, super-block).
fn pack_block(src: &[u8], dst: &mut [u8], c: usize) {
    dst[2 * c..2 * c + 2].copy_from_slice(&src[0..2]);
    dst[DMIN_AT + 2 * c..DMIN_AT + 2 * c + 2].copy_from_slice(&src[2..4]);
    for j in 0..NSUB {
        let (sc, m) = scale_min(j, &src[4..16]);
        dst[SC_AT + j * NR + c] = sc;
        dst[M_AT + j * NR + c] = m;
        let q = &mut dst[Q_AT + j * SUB_Q_BYTES..Q_AT + (j + 1) * SUB_Q_BYTES];
        let lvl = |i: usize| crate::model::kquant::level(src, 32 * j + i);
        for g in 0..4 {
            for e in 0..4 {
                q[g * 64 + c * 4 + e] = lvl(8 * g + e) | (lvl(8 * g + 4 + e) << 4);
            }
        }
    }
}

/// Where one kernel call reads and writes.
struct Tile<'a> {
    acts: &'a Acts,
    r0: usize,
    /// First sub-block (in k) of this chunk, and how many of them hold real columns.
    sub0: usize,
    subs: usize,
    c: *mut f32,
    ldc: usize,
    ncols: usize,
    accumulate: bool,
}

/// The portable kernel: the same arithmetic, one output at a time.
fn scalar_tile(t: &Tile<'_>, mr: usize, w: &[u8]) {
    let acts = t.acts;
    for r in 0..mr {
        let row = t.r0 + r;
        // One panel: the portable kernel is called with `np = 1`.
        for c in 0..t.ncols {
            let mut s = 0f32;
            for sub in 0..t.subs {
                let blk = &w[(sub / NSUB) * SB_BYTES..];
                let j = sub % NSUB;
                let f16 = |at: usize| half::f16::from_le_bytes([blk[at], blk[at + 1]]).to_f32();
                let d = f16(2 * c) * blk[SC_AT + j * NR + c] as f32;
                let dm = f16(DMIN_AT + 2 * c) * blk[M_AT + j * NR + c] as f32;
                let q = &blk[Q_AT + j * SUB_Q_BYTES..];
                let kb = t.sub0 + sub;
                let mut dot = 0i32;
                for i in 0..QK {
                    let byte = q[(i / 8) * 64 + c * 4 + i % 4];
                    let wq = if i % 8 < 4 { byte & 0x0f } else { byte >> 4 };
                    dot += wq as i32 * acts.value(row, kb * QK + i);
                }
                let bi = row * acts.nb + kb;
                s += dot as f32 * (d * acts.d[bi]) - dm * acts.dsum[bi];
            }
            // SAFETY: (row, col) is inside this tile of the output.
            unsafe {
                let dst = t.c.add(r * t.ldc + c);
                *dst = if t.accumulate { *dst + s } else { s };
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod vnni {
    use std::arch::x86_64::*;

    use super::{Tile, DMIN_AT, M_AT, NR, NSUB, QK, Q_AT, SB_BYTES, SC_AT, SUB_Q_BYTES};

    /// How far ahead of the weights in use they are fetched, in bytes.
    const PREFETCH: usize = 2048;

    /// One `MR × NP·16` tile over the chunk's sub-blocks.
    #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
    unsafe fn tile<const MR: usize, const NP: usize>(t: &Tile<'_>, w: *const u8, w_panel: usize) {
        let acts = t.acts;
        let nib = _mm512_set1_epi16(0x000f);
        let mut acc = [[_mm512_setzero_ps(); NP]; MR];
        let mut d = [_mm512_setzero_ps(); NP];
        let mut dmin = [_mm512_setzero_ps(); NP];
        for sub in 0..t.subs {
            let (sb, j) = (sub / NSUB, sub % NSUB);
            let base = |p: usize| w.add(p * w_panel + sb * SB_BYTES);
            if j == 0 {
                for p in 0..NP {
                    d[p] = _mm512_cvtph_ps(_mm256_loadu_si256(base(p) as *const __m256i));
                    dmin[p] =
                        _mm512_cvtph_ps(_mm256_loadu_si256(base(p).add(DMIN_AT) as *const __m256i));
                }
            }
            let mut scale = [_mm512_setzero_ps(); NP];
            let mut min = [_mm512_setzero_ps(); NP];
            for p in 0..NP {
                let u8s = |at: usize| {
                    let v = _mm_loadu_si128(base(p).add(at + j * NR) as *const __m128i);
                    _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(v))
                };
                scale[p] = _mm512_mul_ps(d[p], u8s(SC_AT));
                min[p] = _mm512_mul_ps(dmin[p], u8s(M_AT));
            }
            let kb = t.sub0 + sub;
            let mut iacc = [[_mm512_setzero_si512(); NP]; MR];
            for g in 0..4 {
                let mut raw = [_mm512_setzero_si512(); NP];
                for (p, r) in raw.iter_mut().enumerate() {
                    let at = base(p).add(Q_AT + j * SUB_Q_BYTES + g * 64);
                    // Ahead of the hardware's prefetch, which few rows outrun (see int8).
                    _mm_prefetch::<_MM_HINT_T0>(at.add(PREFETCH) as *const i8);
                    *r = _mm512_loadu_si512(at as *const _);
                }
                // Quad 2g from the low nibbles, quad 2g + 1 from the high ones; each as the
                // 16-bit pairs (w0, w2) and (w1, w3) that the activations' order meets.
                for (high, quad) in [(false, 2 * g), (true, 2 * g + 1)] {
                    let mut even = [_mm512_setzero_si512(); NP];
                    let mut odd = [_mm512_setzero_si512(); NP];
                    for p in 0..NP {
                        let s = if high {
                            _mm512_srli_epi16(raw[p], 4)
                        } else {
                            raw[p]
                        };
                        even[p] = _mm512_and_si512(s, nib);
                        odd[p] = _mm512_and_si512(_mm512_srli_epi16(s, 8), nib);
                    }
                    for (r, row) in iacc.iter_mut().enumerate() {
                        let a = acts
                            .q
                            .as_ptr()
                            .add((t.r0 + r) * acts.k + kb * QK + quad * 4);
                        let ae = _mm512_set1_epi32((a as *const i32).read_unaligned());
                        let ao = _mm512_set1_epi32((a.add(2) as *const i32).read_unaligned());
                        for p in 0..NP {
                            row[p] = crate::model::kernels::dpwssd(row[p], even[p], ae);
                            row[p] = crate::model::kernels::dpwssd(row[p], odd[p], ao);
                        }
                    }
                }
            }
            for (r, (row, irow)) in acc.iter_mut().zip(&iacc).enumerate() {
                let i = (t.r0 + r) * acts.nb + kb;
                let da = _mm512_set1_ps(*acts.d.get_unchecked(i));
                let ds = _mm512_set1_ps(*acts.dsum.get_unchecked(i));
                for p in 0..NP {
                    let dot = _mm512_cvtepi32_ps(irow[p]);
                    row[p] = _mm512_fmadd_ps(dot, _mm512_mul_ps(scale[p], da), row[p]);
                    row[p] = _mm512_fnmadd_ps(min[p], ds, row[p]);
                }
            }
        }
        crate::model::kernels::avx512_store_tile(&acc, t.c, t.ldc, t.ncols, t.accumulate);
    }

    /// [`tile`] for run-time `mr ≤ 6`, `np ≤ 2`.
    pub unsafe fn tile_any(mr: usize, np: usize, t: &Tile<'_>, w: *const u8, w_panel: usize) {
        macro_rules! go {
            ($np:literal) => {
                match mr {
                    1 => tile::<1, $np>(t, w, w_panel),
                    2 => tile::<2, $np>(t, w, w_panel),
                    3 => tile::<3, $np>(t, w, w_panel),
                    4 => tile::<4, $np>(t, w, w_panel),
                    5 => tile::<5, $np>(t, w, w_panel),
                    6 => tile::<6, $np>(t, w, w_panel),
                    _ => unreachable!("row block of {mr}"),
                }
            };
        }
        match np {
            1 => go!(1),
            2 => go!(2),
            _ => unreachable!("panel group of {np}"),
        }
    }
}

#[cfg(test)]
#[path = "q4k_tests.rs"]
mod tests;
