//! The scan of each weight tensor as it is read: one NaN or infinity gives NaN scores for every
//! input, and so does a finite value that the compute dtype cannot hold (a bf16 or f32 weight
//! above 65504 loaded as f16). Used by the checkpoint loader only.
//!
//! The scan works on the stored bits: for IEEE formats the magnitude bits order finite values by
//! size and put every NaN and infinity above them, so one maximum over the masked bits answers
//! both questions; only a damaged tensor is scanned a second time, to say where.

use candle_core::{DType, Tensor};
use rayon::prelude::*;

/// Bytes per parallel piece: large enough that threads are not woken for small tensors.
const PIECE: usize = 1 << 20;

/// What the scan of one tensor found.
#[derive(Debug, Clone, PartialEq)]
pub struct Scan {
    /// Count of NaN and infinite elements, and the first one (index, value).
    pub non_finite: usize,
    pub first: Option<(usize, f32)>,
    /// Largest magnitude among the finite elements (valid when `non_finite` is 0).
    pub max_abs: f32,
}

/// One storage format's bit layout.
struct Format {
    width: usize,
    /// Sign cleared.
    magnitude: u32,
    /// The smallest magnitude bits of a non-finite value (all exponent bits set).
    non_finite: u32,
    value: fn(u32) -> f32,
}

fn format(dtype: DType) -> Option<Format> {
    match dtype {
        DType::BF16 => Some(Format {
            width: 2,
            magnitude: 0x7FFF,
            non_finite: 0x7F80,
            value: |b| f32::from_bits(b << 16),
        }),
        DType::F16 => Some(Format {
            width: 2,
            magnitude: 0x7FFF,
            non_finite: 0x7C00,
            value: |b| half::f16::from_bits(b as u16).to_f32(),
        }),
        DType::F32 => Some(Format {
            width: 4,
            magnitude: 0x7FFF_FFFF,
            non_finite: 0x7F80_0000,
            value: f32::from_bits,
        }),
        _ => None,
    }
}

fn bits(chunk: &[u8]) -> u32 {
    match *chunk {
        [a, b] => u16::from_le_bytes([a, b]) as u32,
        [a, b, c, d] => u32::from_le_bytes([a, b, c, d]),
        _ => 0,
    }
}

/// Scans a tensor's little-endian bytes as stored in `dtype` (bf16, f16 or f32; others pass).
pub fn scan_bytes(bytes: &[u8], dtype: DType) -> Scan {
    let Some(f) = format(dtype) else {
        return Scan {
            non_finite: 0,
            first: None,
            max_abs: 0.0,
        };
    };
    let piece = PIECE - PIECE % f.width;
    let max_bits = bytes
        .par_chunks(piece)
        .map(|p| {
            p.chunks_exact(f.width)
                .map(|c| bits(c) & f.magnitude)
                .max()
                .unwrap_or(0)
        })
        .max()
        .unwrap_or(0);
    if max_bits < f.non_finite {
        return Scan {
            non_finite: 0,
            first: None,
            max_abs: (f.value)(max_bits),
        };
    }
    let mut non_finite = 0;
    let mut first = None;
    for (i, c) in bytes.chunks_exact(f.width).enumerate() {
        let b = bits(c);
        if b & f.magnitude >= f.non_finite {
            non_finite += 1;
            first.get_or_insert((i, (f.value)(b)));
        }
    }
    Scan {
        non_finite,
        first,
        max_abs: f32::NAN,
    }
}

/// Scans a tensor already read into memory on the CPU (PyTorch checkpoints).
pub fn scan_tensor(t: &Tensor) -> candle_core::Result<Scan> {
    if format(t.dtype()).is_none() {
        return Ok(scan_bytes(&[], t.dtype()));
    }
    let values = t.flatten_all()?.to_dtype(DType::F32)?.to_vec1::<f32>()?;
    let mut scan = Scan {
        non_finite: 0,
        first: None,
        max_abs: 0.0,
    };
    for (i, &v) in values.iter().enumerate() {
        if !v.is_finite() {
            scan.non_finite += 1;
            scan.first.get_or_insert((i, v));
        } else {
            scan.max_abs = scan.max_abs.max(v.abs());
        }
    }
    Ok(scan)
}

/// The refusal for a tensor whose scan found values that give non-finite scores once converted
/// to `target` (`None`: kept as stored).
pub fn check(scan: &Scan, name: &str, target: Option<DType>) -> Result<(), String> {
    let name = super::shown(name);
    if let Some((i, v)) = scan.first {
        return Err(format!(
            "tensor `{name}` holds {} NaN or infinite value(s) (the first, element {i}, is {v}); \
             the checkpoint is damaged",
            scan.non_finite
        ));
    }
    let (limit, dtype) = match target {
        Some(DType::F16) => (half::f16::MAX.to_f32(), "f16"),
        Some(DType::BF16) => (half::bf16::MAX.to_f32(), "bf16"),
        _ => return Ok(()),
    };
    if scan.max_abs > limit {
        return Err(format!(
            "tensor `{name}` holds values up to {:e}, beyond what {dtype} can hold (±{limit:e}); \
             load it with --dtype f32",
            scan.max_abs
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f32_bytes(v: &[f32]) -> Vec<u8> {
        v.iter().flat_map(|x| x.to_le_bytes()).collect()
    }

    #[test]
    fn finds_nan_and_infinity_in_every_format_and_the_largest_magnitude() {
        let s = scan_bytes(&f32_bytes(&[1.0, -3.5, 2.0]), DType::F32);
        assert_eq!((s.non_finite, s.max_abs), (0, 3.5));
        let s = scan_bytes(&f32_bytes(&[1.0, f32::NAN, f32::NEG_INFINITY]), DType::F32);
        assert_eq!(s.non_finite, 2);
        assert_eq!(s.first.map(|f| f.0), Some(1));
        let bf: Vec<u8> = [1.0f32, -70000.0, f32::INFINITY]
            .iter()
            .flat_map(|x| half::bf16::from_f32(*x).to_le_bytes())
            .collect();
        let s = scan_bytes(&bf[..4], DType::BF16);
        assert_eq!(s.non_finite, 0);
        assert!(s.max_abs > 65504.0);
        assert!(check(&s, "w", Some(DType::F16))
            .unwrap_err()
            .contains("f16"));
        assert!(check(&s, "w", Some(DType::F32)).is_ok());
        assert_eq!(scan_bytes(&bf, DType::BF16).first.map(|f| f.0), Some(2));
        let h: Vec<u8> = [0.5f32, f32::NAN]
            .iter()
            .flat_map(|x| half::f16::from_f32(*x).to_le_bytes())
            .collect();
        assert_eq!(scan_bytes(&h, DType::F16).non_finite, 1);
    }
}
