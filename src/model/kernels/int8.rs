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

use rayon::prelude::*;

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

    /// Quantises rows `row0..row0 + rows` to `Q12` and packs them: `row(i, dst)` writes row
    /// `i`'s `k` values. Nothing but one row per thread is held beside the packed form.
    pub fn fill_q12_rows(
        &mut self,
        row0: usize,
        rows: usize,
        row: impl Fn(usize, &mut [f32]) + Sync,
    ) {
        assert_eq!(self.format, QFormat::Q12, "a Q12 matrix");
        assert!(row0 + rows <= self.n);
        let (k, bb) = (self.k, self.format.block_bytes());
        let data = self.data.owned_mut();
        super::fill_panel_rows(
            data,
            self.nb * bb,
            row0,
            rows,
            || {
                (
                    vec![0f32; k],
                    vec![0u8; k / QK * QFormat::Q12.ggml_block_bytes()],
                )
            },
            |(buf, blocks), panel, c, i| {
                row(i, buf);
                quantize_q12_into(buf, blocks);
                put_row(QFormat::Q12, blocks, panel, c);
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

/// Quantises each row's blocks of 32 to `±qmax` steps, value `j` of a block stored at
/// `slot(j)`; returns the values, the scales and `offset` times each block's sum.
pub(super) fn quantise<T: Copy + Send + Sync>(
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
    type Row<'a, T> = (((&'a [f32], &'a mut [T]), &'a mut [f32]), &'a mut [i32]);
    let row = |(((xr, qr), dr), cr): Row<'_, T>| {
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
                *r = round_half_away(v * inv);
            }
            for (j, &r) in r.iter().enumerate() {
                qb[slot(j)] = cast(r);
            }
            *db = scale;
            *cb = offset * r.iter().sum::<i32>();
        }
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

/// Puts one row's GGML blocks (`fmt`'s) as column `c` of its panel.
fn put_row(fmt: QFormat, src_row: &[u8], panel: &mut [u8], c: usize) {
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
    quantize_q12_into(x, &mut out);
    out
}

/// [`quantize_q12`] into `out`, which holds exactly the blocks' bytes (a load quantises row
/// after row into one buffer).
pub fn quantize_q12_into(x: &[f32], out: &mut [u8]) {
    let gb = QFormat::Q12.ggml_block_bytes();
    assert!(x.len().is_multiple_of(QK), "whole blocks of {QK}");
    assert_eq!(
        out.len(),
        x.len() / QK * gb,
        "bytes for {} blocks",
        x.len() / QK
    );
    for (xb, ob) in x.chunks_exact(QK).zip(out.chunks_exact_mut(gb)) {
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
            // |v · inv| stays near 2047 (the scale is absmax / 2047, or the smallest step above
            // it); NaN, from a non-finite block, becomes 0.
            let q = round_half_away(v * inv).clamp(-Q12_MAX, Q12_MAX) as i16;
            dst.copy_from_slice(&q.to_le_bytes());
        }
    }
}

/// `t` rounded half away from zero, as `f32::round` rounds it, for `|t| < 2²³` (NaN gives 0),
/// without its library call: the baseline x86-64 target has no rounding instruction. The
/// largest float below 0.5 is added with `t`'s sign and the sum truncated.
#[inline]
pub(super) fn round_half_away(t: f32) -> i32 {
    const BELOW_HALF: f32 = 0.499_999_97;
    (t + BELOW_HALF.copysign(t)) as i32
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
mod vnni {
    use std::arch::x86_64::*;

    use super::{QFormat, QuantizedActs, NR, QK};

    /// How far ahead of the weights in use they are fetched, in bytes.
    const PREFETCH: usize = 4 * 544;

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
            let mut iacc = [[_mm512_setzero_si512(); NP]; MR];
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
                    _mm_prefetch::<_MM_HINT_T0>(base.add(qd * 64 + PREFETCH) as *const i8);
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
            add_blocks::<MR, NP, true>(acts, r0, blk, w.add(b * bb), w_panel, &iacc, &mut acc);
        }
        crate::model::kernels::avx512_store_tile(&acc, c, ldc, ncols, accumulate);
    }

    /// Adds one block's integer sums `iacc` (of every row and panel) to the float sums `acc`:
    /// less the activations' offset correction (for weights stored with an offset, `OFFSET`),
    /// times the weights' scales (the f16s at the start of each panel's block at `w`, panels
    /// `w_panel` bytes apart) and the activations'.
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw")]
    unsafe fn add_blocks<const MR: usize, const NP: usize, const OFFSET: bool>(
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
            let i = (r0 + r) * acts.nb + blk;
            let corr = _mm512_set1_epi32(*acts.corr.get_unchecked(i));
            let da = _mm512_set1_ps(*acts.d.get_unchecked(i));
            for p in 0..NP {
                let sum = if OFFSET {
                    _mm512_sub_epi32(irow[p], corr)
                } else {
                    irow[p]
                };
                row[p] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sum), _mm512_mul_ps(dw[p], da), row[p]);
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
            for pair in 0..QK / 2 {
                let mut wv = [_mm512_setzero_si512(); NP];
                for (p, v) in wv.iter_mut().enumerate() {
                    let at = w.add(p * w_panel + b * bb + 2 * NR + pair * 64);
                    // Four blocks ahead, as the 8-bit tile does.
                    _mm_prefetch::<_MM_HINT_T0>(at.add(4 * bb) as *const i8);
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
            add_blocks::<MR, NP, false>(acts, r0, blk, w.add(b * bb), w_panel, &iacc, &mut acc);
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
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
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
}

#[cfg(test)]
#[path = "int8_tests.rs"]
mod tests;
