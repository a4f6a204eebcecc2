//! `y = x Wᵀ` with 8- or 4-bit block-quantised weights (GGML's `Q8_0` and `Q4_0` blocks of 32,
//! each with an f16 scale) and f32 activations, which are quantised per row and block of 32 so
//! that the products are integer dot products: to 16 bits for 8-bit weights, to 8 bits (as GGML
//! does) for 4-bit ones. 8-bit activations were what cost `Q8_0` the ranking on trained weights
//! (outlier activations make a block's step coarse; Kendall's τ 0.86 against f32, 0.96 with
//! 16-bit activations), and `vpdpwssd` takes 16-bit pairs at the rate `vpdpbusd` takes 8-bit
//! quads, so the 8-bit mode does twice the integer instructions for an exact-enough product.
//!
//! The weights are repacked once into panels of 16 output columns: for each block, the 16
//! scales, then the quantised values four k at a time per column, which is the operand layout
//! of AVX512-VNNI's `vpdpbusd` (u8 × i8, four products summed into each 32-bit lane). That
//! instruction wants the weight operand unsigned, so weights are stored with an offset (128 for
//! 8-bit, 8 for 4-bit nibbles) that is taken back out exactly, in integers, per block through
//! the sum of the block's activations. For `vpdpwssd` (i16 × i16, two products per lane) the
//! same quad's even and odd bytes are zero-extended in registers into the pairs (w0, w2) and
//! (w1, w3), and the activations are stored in that order. Only the packed form is kept.
//!
//! A third format, `Q12` (12-bit values in 16-bit words), is this crate's own: a mode more
//! precise than bf16 whose products run on AVX2's integer pairs (`vpmaddwd`, 16 multiply-adds an
//! instruction) where bf16 would run on f32 FMA (8). Its values are stored as the pairs
//! (w0, w1) that instruction multiplies, with 16-bit activations in order.

mod blocks;

use blocks::put_row;
pub(super) use blocks::quantise;
pub use blocks::{dequantize_q12, quantize_into, quantize_q12};

use super::bytes::WeightBytes;
use super::{Isa, SendPtr};

/// Values per quantisation block.
pub const QK: usize = 32;
use super::NR;
/// Blocks per k chunk: all rows pass one chunk of a panel group while it sits in L2.
const KCB: usize = 32;
const PARALLEL_MIN: usize = 1 << 18;

/// The stored formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QFormat {
    /// 8-bit: `w = q · d`, q in -127..=127 (GGML `Q8_0`).
    Q8,
    /// 4-bit: `w = (q - 8) · d`, q in 0..=15 (GGML `Q4_0`).
    Q4,
    /// 12-bit in 16-bit words: `w = q · d`, q in -2047..=2047 (this crate's own; see
    /// [`quantize_q12`]). Sixteen times finer steps than `Q8`, as many bytes as bf16, and on
    /// AVX2 the products run as `Q8`'s do, on integer pairs (`vpmaddwd`): twice the
    /// multiply-adds per instruction of the f32 FMA a bf16 weight needs there.
    Q12,
}

/// The largest 12-bit value: 32 products with 16-bit activations (≤ 32767) sum to at most
/// 2 146 369 568, inside an `i32`, so a block's integer sum never overflows.
pub const Q12_MAX: i32 = 2047;

impl QFormat {
    /// Bytes of quantised values per block of one column.
    const fn q_bytes(self) -> usize {
        match self {
            QFormat::Q8 => QK,
            QFormat::Q4 => QK / 2,
            QFormat::Q12 => 2 * QK,
        }
    }

    /// What the stored unsigned value exceeds the signed one by.
    const fn offset(self) -> i32 {
        match self {
            QFormat::Q8 => 128,
            QFormat::Q4 => 8,
            QFormat::Q12 => 0,
        }
    }

    /// Bytes of one (panel, block): 16 f16 scales, then 16 columns of values.
    const fn block_bytes(self) -> usize {
        2 * NR + NR * self.q_bytes()
    }

    /// Bytes of GGML's own block (`Q8_0`: 34, `Q4_0`: 18; `Q12`, as [`quantize_q12`] writes
    /// it: 66).
    pub const fn ggml_block_bytes(self) -> usize {
        2 + self.q_bytes()
    }
}

/// A weight matrix `W` `[n, k]` (k a multiple of 32) packed for [`PackedQ::matmul`].
pub struct PackedQ {
    format: QFormat,
    data: WeightBytes,
    n: usize,
    k: usize,
    /// Blocks per column.
    nb: usize,
    panels: usize,
}

impl std::fmt::Debug for PackedQ {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "PackedQ {{ {:?}, n: {}, k: {} }}",
            self.format, self.n, self.k
        )
    }
}

impl PackedQ {
    /// An all-zero matrix, filled by [`PackedQ::fill_ggml_rows`].
    pub fn zeroed(format: QFormat, n: usize, k: usize) -> Self {
        assert!(k.is_multiple_of(QK), "k = {k} is not a multiple of {QK}");
        Self::with_bytes(
            format,
            n,
            k,
            WeightBytes::zeroed(Self::packed_len(format, n, k)),
        )
        .expect("sized for it")
    }

    /// Bytes of the packed form of an `[n, k]` weight.
    pub fn packed_len(format: QFormat, n: usize, k: usize) -> usize {
        n.div_ceil(NR) * (k / QK) * format.block_bytes()
    }

    /// A matrix from bytes already in the packed form ([`PackedQ::packed`] of an equal one),
    /// or `None` when there are not exactly as many as its shape needs.
    pub fn with_bytes(format: QFormat, n: usize, k: usize, data: WeightBytes) -> Option<Self> {
        if !k.is_multiple_of(QK) || data.len() != Self::packed_len(format, n, k) {
            return None;
        }
        Some(Self {
            format,
            data,
            n,
            k,
            nb: k / QK,
            panels: n.div_ceil(NR),
        })
    }

    /// The packed form, to be kept and given back to [`PackedQ::with_bytes`].
    pub fn packed(&self) -> &[u8] {
        &self.data
    }

    /// Whether the weights are used in place from a mapped file.
    pub fn is_mapped(&self) -> bool {
        self.data.is_mapped()
    }

    /// Packs rows `row0..row0 + rows` from GGML blocks (`Q8_0` or `Q4_0` as `format` says, or
    /// [`quantize_q12`]'s), row-major: `rows × k / 32` blocks.
    pub fn fill_ggml_rows(&mut self, row0: usize, rows: usize, ggml: &[u8]) {
        let (nb, fmt) = (self.nb, self.format);
        let gb = fmt.ggml_block_bytes();
        assert_eq!(ggml.len(), rows * nb * gb, "block bytes for {rows} rows");
        assert!(row0 + rows <= self.n);
        let bb = fmt.block_bytes();
        let data = self.data.owned_mut();
        super::fill_panel_rows(
            data,
            nb * bb,
            row0,
            rows,
            || (),
            |_, panel, c, i| put_row(fmt, &ggml[i * nb * gb..(i + 1) * nb * gb], panel, c),
        );
    }

    /// Quantises rows `row0..row0 + rows` to this matrix's format and packs them: `row(i,
    /// dst)` writes row `i`'s `k` values. `Q8` and `Q4` round as GGML's (and candle's)
    /// quantisers do, byte for byte; see [`quantize_into`]. Nothing but one row per thread is
    /// held beside the packed form.
    pub fn fill_rows(&mut self, row0: usize, rows: usize, row: impl Fn(usize, &mut [f32]) + Sync) {
        assert!(row0 + rows <= self.n);
        let (fmt, k, bb) = (self.format, self.k, self.format.block_bytes());
        let data = self.data.owned_mut();
        super::fill_panel_rows(
            data,
            self.nb * bb,
            row0,
            rows,
            || (vec![0f32; k], vec![0u8; k / QK * fmt.ggml_block_bytes()]),
            |(buf, blocks), panel, c, i| {
                row(i, buf);
                quantize_into(fmt, buf, blocks);
                put_row(fmt, blocks, panel, c);
            },
        );
    }

    pub fn format(&self) -> QFormat {
        self.format
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

    /// The kernel [`PackedQ::matmul`] uses on this processor.
    pub fn best_isa() -> Isa {
        if vnni_available() {
            Isa::Avx512Vnni
        } else if avx2_available() {
            Isa::Avx2
        } else {
            Isa::Scalar
        }
    }

    /// `out[m, n] = x[m, k] · Wᵀ`.
    pub fn matmul(&self, x: &[f32], m: usize, out: &mut [f32]) {
        self.matmul_with(Self::best_isa(), x, m, out)
    }

    /// As [`PackedQ::matmul`] with a chosen kernel: `Avx512Vnni` or `Avx2` (where available),
    /// or `Scalar`.
    pub fn matmul_with(&self, isa: Isa, x: &[f32], m: usize, out: &mut [f32]) {
        let (n, k, nb) = (self.n, self.k, self.nb);
        super::assert_matmul_shapes(x, out, m, n, k);
        if m == 0 || n == 0 {
            return;
        }
        if k == 0 {
            out.fill(0.0);
            return;
        }
        let acts = QuantizedActs::new(x, m, k, self.format);
        let parallel = m * n * k >= PARALLEL_MIN;
        let c = SendPtr(out.as_mut_ptr());
        let bb = self.format.block_bytes();
        let (mr_max, np_max) = match isa {
            Isa::Avx512Vnni => (6, 2),
            Isa::Avx2 => (avx2::mr(self.format), 1),
            _ => (4, 1),
        };
        assert!(
            match isa {
                Isa::Avx512Vnni => vnni_available(),
                Isa::Avx2 => avx2_available(),
                _ => true,
            },
            "{isa:?} is not available"
        );
        // The AVX2 kernel's rows in blocks whose activations for one k chunk (60 rows: 120 KiB
        // at 16 bits) stay in L2; the VNNI kernel, tuned on a CPU with twice the L2, as before.
        let mc = match isa {
            Isa::Avx2 => 60,
            _ => usize::MAX,
        };
        super::drive_blocked(
            self.panels,
            nb,
            KCB,
            (m, mc),
            mr_max,
            np_max,
            parallel,
            |r0, mr, p0, np, b0, nbk, acc| {
                let ncols = (n - p0 * NR).min(np * NR);
                let w = &self.data[(p0 * nb + b0) * bb..];
                match isa {
                    #[cfg(target_arch = "x86_64")]
                    Isa::Avx512Vnni => {
                        // SAFETY: VNNI checked above; every pointer stays inside its buffer
                        // (rows r0..r0+mr, blocks b0..b0+nbk, panels p0..p0+np), and this
                        // tile of `out` is written by this call only.
                        unsafe {
                            vnni::tile_any(
                                self.format,
                                mr,
                                np,
                                &acts,
                                r0,
                                b0,
                                nbk,
                                w.as_ptr(),
                                nb * bb,
                                c.get().add(r0 * n + p0 * NR),
                                n,
                                ncols,
                                acc,
                            )
                        }
                    }
                    #[cfg(target_arch = "x86_64")]
                    Isa::Avx2 => {
                        // SAFETY: AVX2, FMA and F16C checked above; pointers as for VNNI.
                        unsafe {
                            avx2::tile_any(
                                self.format,
                                mr,
                                &acts,
                                r0,
                                b0,
                                nbk,
                                w.as_ptr(),
                                c.get().add(r0 * n + p0 * NR),
                                n,
                                ncols,
                                acc,
                            )
                        }
                    }
                    _ => scalar_tile(
                        self.format,
                        &acts,
                        r0,
                        mr,
                        b0,
                        nbk,
                        w,
                        c,
                        r0 * n + p0 * NR,
                        n,
                        ncols,
                        acc,
                    ),
                }
            },
        );
    }
}

pub fn vnni_available() -> bool {
    Isa::Avx512Vnni.is_available()
}

/// Whether the AVX2 kernel runs here (AVX2 and FMA, with F16C for the block scales).
pub fn avx2_available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        Isa::Avx2.is_available() && std::arch::is_x86_feature_detected!("f16c")
    }
    #[cfg(not(target_arch = "x86_64"))]
    false
}

/// Whether a vector kernel of this crate runs the 8- and 4-bit products here (the integer
/// scheme with 16-bit activations for 8-bit weights, which keeps the ranking); without one,
/// candle's kernels run them, with 8-bit activations.
pub fn own_kernel_available() -> bool {
    PackedQ::best_isa() != Isa::Scalar
}

/// Where value `j` of a block of 32 activations is stored for 8-bit weights: each quad as
/// (a0, a2, a1, a3), so one 32-bit word holds the pair that meets the quad's even (odd) bytes.
pub(super) const fn q16_slot(j: usize) -> usize {
    let e = j % 4;
    (j - e) + (e & 1) * 2 + (e >> 1)
}

/// Activations quantised per row and block of 32: `x ≈ q · d`; 8-bit for 4-bit weights
/// (`q8`, in order), 16-bit for 8-bit weights (`q16`, quads in [`q16_slot`] order) and for
/// 12-bit ones (`q16`, in order).
struct QuantizedActs {
    fmt: QFormat,
    /// `[m, k]` (empty for 8-bit weights)
    q8: Vec<i8>,
    /// `[m, k]` (empty for 4-bit weights)
    q16: Vec<i16>,
    /// `[m, k / 32]`
    d: Vec<f32>,
    /// `[m, k / 32]`: the weight offset times the block's sum of `q`.
    corr: Vec<i32>,
    k: usize,
    nb: usize,
}

impl QuantizedActs {
    fn new(x: &[f32], m: usize, k: usize, fmt: QFormat) -> Self {
        let nb = k / QK;
        let offset = fmt.offset();
        match fmt {
            QFormat::Q4 => {
                let (q8, d, corr) = quantise(x, m, k, 127.0, offset, |j| j, |r| r as i8);
                Self {
                    fmt,
                    q8,
                    q16: Vec::new(),
                    d,
                    corr,
                    k,
                    nb,
                }
            }
            QFormat::Q8 => {
                let (q16, d, corr) = quantise(x, m, k, 32767.0, offset, q16_slot, |r| r as i16);
                Self {
                    fmt,
                    q8: Vec::new(),
                    q16,
                    d,
                    corr,
                    k,
                    nb,
                }
            }
            QFormat::Q12 => {
                let (q16, d, corr) = quantise(x, m, k, 32767.0, offset, |j| j, |r| r as i16);
                Self {
                    fmt,
                    q8: Vec::new(),
                    q16,
                    d,
                    corr,
                    k,
                    nb,
                }
            }
        }
    }

    /// Activation `j` of row `row` as an integer (for the portable kernel and the tests).
    fn value(&self, row: usize, j: usize) -> i32 {
        let base = row * self.k + (j / QK) * QK;
        match self.fmt {
            QFormat::Q4 => self.q8[base + j % QK] as i32,
            QFormat::Q8 => self.q16[base + q16_slot(j % QK)] as i32,
            QFormat::Q12 => self.q16[base + j % QK] as i32,
        }
    }
}

/// The portable kernel: the same integer arithmetic, one output at a time.
#[allow(clippy::too_many_arguments)]
fn scalar_tile(
    fmt: QFormat,
    acts: &QuantizedActs,
    r0: usize,
    mr: usize,
    b0: usize,
    nbk: usize,
    w: &[u8],
    c: SendPtr,
    c_off: usize,
    ldc: usize,
    ncols: usize,
    accumulate: bool,
) {
    let bb = fmt.block_bytes();
    for r in 0..mr {
        let row = r0 + r;
        for col in 0..ncols {
            let mut s = 0f32;
            for b in 0..nbk {
                let blk = &w[b * bb..(b + 1) * bb];
                let dw = half::f16::from_le_bytes([blk[2 * col], blk[2 * col + 1]]).to_f32();
                let q = &blk[2 * NR..];
                let mut dot = 0i32;
                for j in 0..QK {
                    let av = acts.value(row, (b0 + b) * QK + j);
                    let wq = match fmt {
                        QFormat::Q8 => q[(j / 4) * 64 + col * 4 + j % 4] as i32,
                        QFormat::Q4 => {
                            let byte = q[(j / 8) * 64 + col * 4 + j % 4];
                            (if j % 8 < 4 { byte & 0x0f } else { byte >> 4 }) as i32
                        }
                        QFormat::Q12 => {
                            let at = (j / 2) * 64 + col * 4 + (j % 2) * 2;
                            i16::from_le_bytes([q[at], q[at + 1]]) as i32
                        }
                    };
                    dot += wq * av;
                }
                let t = dot - acts.corr[row * acts.nb + b0 + b];
                s += t as f32 * (dw * acts.d[row * acts.nb + b0 + b]);
            }
            // SAFETY: (row, col) is inside this tile of the output.
            unsafe {
                let dst = c.get().add(c_off + r * ldc + col);
                *dst = if accumulate { *dst + s } else { s };
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod vnni;

#[cfg(target_arch = "x86_64")]
mod avx2;

#[cfg(test)]
mod tests;
