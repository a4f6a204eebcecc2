//! Every 8-, 4- and 12-bit kernel against an f64 reference of the same integer scheme
//! (dequantised weights times the activations as quantised), on random and edge-case shapes.

use super::*;
use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::{Device, Tensor};

use crate::model::kernels::test_values as values;

fn packed(fmt: QFormat, w: &[f32], n: usize, k: usize) -> (PackedQ, Vec<f32>) {
    let t = Tensor::from_vec(w.to_vec(), (n, k), &Device::Cpu).unwrap();
    let (bytes, deq) = match fmt {
        QFormat::Q12 => {
            let b = quantize_q12(w);
            let deq = dequantize_q12(&b);
            (b, deq)
        }
        QFormat::Q8 | QFormat::Q4 => {
            let g = if fmt == QFormat::Q8 {
                GgmlDType::Q8_0
            } else {
                GgmlDType::Q4_0
            };
            let q = QTensor::quantize(&t, g).unwrap();
            let deq = q
                .dequantize(&Device::Cpu)
                .unwrap()
                .flatten_all()
                .unwrap()
                .to_vec1::<f32>()
                .unwrap();
            (q.data().unwrap().into_owned(), deq)
        }
    };
    let mut p = PackedQ::zeroed(fmt, n, k);
    // Fill in two parts, as a fused projection is.
    let split = n / 3;
    let row_bytes = k / QK * fmt.ggml_block_bytes();
    p.fill_ggml_rows(0, split, &bytes[..split * row_bytes]);
    p.fill_ggml_rows(split, n - split, &bytes[split * row_bytes..]);
    (p, deq)
}

/// The exact result of the integer scheme, in f64, from the dequantised weights and the
/// activations quantised as the kernels do.
fn reference(fmt: QFormat, x: &[f32], deq: &[f32], m: usize, n: usize, k: usize) -> Vec<f32> {
    let acts = QuantizedActs::new(x, m, k, fmt);
    let mut out = vec![0f32; m * n];
    for i in 0..m {
        for j in 0..n {
            let mut s = 0f64;
            for t in 0..k {
                let a = acts.value(i, t) as f64 * acts.d[i * (k / QK) + t / QK] as f64;
                s += a * deq[j * k + t] as f64;
            }
            out[i * n + j] = s as f32;
        }
    }
    out
}

fn check(fmt: QFormat, isa: Isa, m: usize, n: usize, k: usize) {
    let w = values(n * k, 11);
    let x = values(m * k, 12);
    let (p, deq) = packed(fmt, &w, n, k);
    let mut got = vec![f32::NAN; m * n];
    p.matmul_with(isa, &x, m, &mut got);
    let want = reference(fmt, &x, &deq, m, n, k);
    let scale = (k as f32).sqrt();
    for (i, (g, r)) in got.iter().zip(&want).enumerate() {
        assert!(
            (g - r).abs() <= 2e-5 * scale * (1.0 + r.abs()),
            "{fmt:?} {isa:?} {m}×{n}×{k}: element {i}: {g} vs {r}"
        );
    }
    // And the whole scheme stays near the exact f32 product.
    let exact: Vec<f32> = (0..m * n)
        .map(|e| {
            let (i, j) = (e / n, e % n);
            (0..k).map(|t| x[i * k + t] * w[j * k + t]).sum()
        })
        .collect();
    let err = got
        .iter()
        .zip(&exact)
        .map(|(a, b)| (a - b).abs())
        .fold(0f32, f32::max);
    let tol = match fmt {
        QFormat::Q8 => 0.02,
        QFormat::Q4 => 0.25,
        QFormat::Q12 => 0.002,
    } * scale;
    assert!(err <= tol, "{fmt:?}: error {err} vs exact");
}

fn available_isas() -> Vec<Isa> {
    [Isa::Avx512Vnni, Isa::Avx2, Isa::Scalar]
        .into_iter()
        .filter(|&i| match i {
            Isa::Avx512Vnni => vnni_available(),
            Isa::Avx2 => avx2_available(),
            _ => true,
        })
        .collect()
}

#[test]
fn every_available_kernel_matches_the_integer_reference() {
    let isas = available_isas();
    for fmt in [QFormat::Q8, QFormat::Q4, QFormat::Q12] {
        for &isa in &isas {
            for &(m, n, k) in &[
                (1, 1, 32),
                (3, 17, 64),
                (7, 40, 96),
                // Every tile height up to the widest kernel's (six rows; 11 = 6 + 5).
                (2, 16, 32),
                (4, 48, 64),
                (5, 24, 96),
                (11, 16, 64),
                (13, 33, 32 * (KCB + 3)),
                (6, 32, 256),
                // More rows than the AVX2 kernel's row block, many panels.
                (67, 16 * 40, 64),
            ] {
                check(fmt, isa, m, n, k);
            }
        }
    }
}

#[test]
fn an_activation_outlier_leaves_its_block_exact_enough_for_8_bit_weights() {
    // One large activation beside small ones: 8-bit steps of 100/127 would round the
    // small values to a step or two (an error of ~20 % of their part); 16-bit steps keep
    // them to well under 1 %.
    let (n, k) = (16, 64);
    let w = values(n * k, 5);
    let mut x: Vec<f32> = values(k, 6).iter().map(|v| v * 0.3).collect();
    x[3] = 100.0;
    let isas = available_isas();
    let (p, deq) = packed(QFormat::Q8, &w, n, k);
    for isa in isas {
        let mut got = vec![0f32; n];
        p.matmul_with(isa, &x, 1, &mut got);
        for j in 0..n {
            let row = &deq[j * k..(j + 1) * k];
            let exact: f64 = row.iter().zip(&x).map(|(a, b)| *a as f64 * *b as f64).sum();
            let small: f64 = row
                .iter()
                .zip(&x)
                .skip(4)
                .map(|(a, b)| (*a as f64 * *b as f64).abs())
                .sum();
            assert!(
                (got[j] as f64 - exact).abs() <= 0.01 * small,
                "{isa:?} column {j}: {} vs {exact} (small part {small})",
                got[j]
            );
        }
    }
}

#[test]
fn activations_round_half_away_from_zero_as_f32_round_does() {
    // A block whose largest value is 127 has step 1, so each value is rounded as it is.
    let edges = [
        0.5f32,
        1.5,
        2.5,
        63.5,
        126.5,
        0.499_999_97,
        1.499_999_9,
        2.500_000_2,
        1e-30,
    ];
    let mut probes: Vec<f32> = edges.iter().flat_map(|&v| [v, -v]).collect();
    probes.extend((0..2000).map(|i| (i as f32 * 0.618).sin() * 126.9));
    for chunk in probes.chunks(QK - 1) {
        let mut x = vec![127f32; QK];
        x[1..=chunk.len()].copy_from_slice(chunk);
        let (q, d, _) = quantise(&x, 1, QK, 127.0, 0, |j| j, |r| r);
        assert_eq!(d[0], 1.0);
        for (&v, &r) in x.iter().zip(&q) {
            assert_eq!(r, v.round() as i32, "{v}");
        }
    }
}

/// The activations' vectorisable rounding equals `f32::round`'s wherever a block's values can
/// fall (|t| ≤ 32767, the 16-bit step's largest), next to every half and far from them.
#[test]
fn small_rounding_equals_round_on_every_edge() {
    use super::blocks::round_small;
    let mut probes = vec![
        0.0f32,
        -0.0,
        1e-30,
        -1e-30,
        0.499_999_97,
        32_767.0,
        32_767.5,
    ];
    for k in 0..=32_768 {
        let half = k as f32 + 0.5;
        let below = f32::from_bits(half.to_bits() - 1);
        let above = f32::from_bits(half.to_bits() + 1);
        probes.extend([half, below, above, k as f32]);
    }
    // A sweep of bit patterns between 2⁻²⁰ and 2¹⁶.
    let (lo, hi) = ((2f32).powi(-20).to_bits(), (2f32).powi(16).to_bits());
    probes.extend((lo..hi).step_by(997).map(f32::from_bits));
    for t in probes {
        for t in [t, -t] {
            assert_eq!(round_small(t), t.round() as i32, "{t}");
        }
    }
    assert_eq!(round_small(f32::NAN), 0);
}

#[test]
fn q12_blocks_keep_every_scale_and_bound_their_integer_sums() {
    // Tiny (below f16's normal range), ordinary, huge and non-finite blocks.
    let mut w = Vec::new();
    for scale in [1e-9f32, 3e-6, 0.02, 1.0, 3e4] {
        w.extend(values(QK, 9).iter().map(|v| v * scale));
    }
    let bytes = quantize_q12(&w);
    let deq = dequantize_q12(&bytes);
    for (b, (wb, db)) in w.chunks(QK).zip(deq.chunks(QK)).enumerate() {
        let amax = wb.iter().fold(0f32, |a, v| a.max(v.abs()));
        for (x, y) in wb.iter().zip(db) {
            // Half a step of amax / 2047, and f16's smallest step for the tiniest block.
            let step = (amax / Q12_MAX as f32).max(6e-8);
            assert!((x - y).abs() <= 0.5 * step * 1.01, "block {b}: {x} vs {y}");
        }
    }
    let odd = quantize_q12(&[f32::NAN; QK]);
    assert!(dequantize_q12(&odd).iter().all(|&v| v == 0.0));
    let inf = quantize_q12(&[f32::INFINITY; QK]);
    assert!(dequantize_q12(&inf).iter().all(|v| v.is_finite()));
    // The largest block sum: every weight at ±2047 and every activation at ±32767.
    let (n, k) = (16, 2 * QK);
    let w: Vec<f32> = (0..n * k)
        .map(|i| if i % k % 3 == 0 { -1.0 } else { 1.0 })
        .collect();
    let x: Vec<f32> = (0..k)
        .map(|i| if i % 3 == 0 { -1.0 } else { 1.0 })
        .collect();
    let mut p = PackedQ::zeroed(QFormat::Q12, n, k);
    p.fill_ggml_rows(0, n, &quantize_q12(&w));
    for isa in available_isas() {
        let mut got = vec![0f32; n];
        p.matmul_with(isa, &x, 1, &mut got);
        for g in got {
            assert!((g - k as f32).abs() < 1e-3, "{isa:?}: {g}");
        }
    }
}

#[test]
fn zero_rows_quantise_to_zero() {
    let (p, _) = packed(QFormat::Q8, &values(16 * 32, 3), 16, 32);
    let mut out = vec![1f32; 2 * 16];
    p.matmul(&[0f32; 64], 2, &mut out);
    assert!(out.iter().all(|&v| v == 0.0));
}

#[test]
fn q12_quantising_matches_its_definition_byte_for_byte() {
    // The definition, with the library's rounding: an f16 scale absmax / 2047 (zero for a
    // non-finite block, at least the smallest step for a tiny one), each value rounded half
    // away from zero against the scale as stored and clamped.
    fn reference(x: &[f32]) -> Vec<u8> {
        let mut out = Vec::new();
        for xb in x.chunks_exact(QK) {
            let amax = xb.iter().fold(0f32, |a, v| a.max(v.abs()));
            let mut d = half::f16::from_f32(amax / Q12_MAX as f32);
            if !d.is_finite() {
                d = half::f16::ZERO;
            } else if d == half::f16::ZERO && amax > 0.0 {
                d = half::f16::from_bits(1);
            }
            out.extend(d.to_le_bytes());
            let inv = if d == half::f16::ZERO {
                0.0
            } else {
                1.0 / d.to_f32()
            };
            for &v in xb {
                let q = (v * inv).round().clamp(-2047.0, 2047.0) as i16;
                out.extend(q.to_le_bytes());
            }
        }
        out
    }
    let mut x = Vec::new();
    for scale in [1e-9f32, 3e-6, 0.02, 1.0, 3e4, 1e9] {
        x.extend(values(4 * QK, 21).iter().map(|v| v * scale));
    }
    // Exact halves: with absmax 2047 the scale is 1, so these land on ties.
    let mut ties: Vec<f32> = (0..QK - 1).map(|i| i as f32 * 37.0 - 1000.5).collect();
    ties.push(2047.0);
    x.extend(ties.iter().map(|v| -v));
    x.extend(ties);
    x.extend([f32::NAN; QK]);
    let mut mixed = values(QK, 22);
    mixed[5] = f32::INFINITY;
    mixed[9] = f32::NAN;
    x.extend(mixed);
    assert_eq!(quantize_q12(&x), reference(&x));
    // Loading row by row into the packed form equals packing the quantised rows.
    let (n, k) = (19, 3 * QK);
    let w = values(n * k, 23);
    let mut direct = PackedQ::zeroed(QFormat::Q12, n, k);
    direct.fill_rows(0, n, |i, dst| dst.copy_from_slice(&w[i * k..(i + 1) * k]));
    let mut via = PackedQ::zeroed(QFormat::Q12, n, k);
    via.fill_ggml_rows(0, n, &quantize_q12(&w));
    assert_eq!(direct.packed(), via.packed());
}

#[test]
fn q8_and_q4_quantise_as_ggml_does_byte_for_byte() {
    // candle's quantisers are GGML's reference ones: a first load quantising rows itself must
    // make the blocks a checkpoint's `Q8_0` / `Q4_0` would hold, tiny, huge and odd blocks too.
    let mut x = Vec::new();
    for scale in [1e-40f32, 1e-30, 3e-6, 0.02, 1.0, 3e4, 1e30] {
        x.extend(values(4 * QK, 31).iter().map(|v| v * scale));
    }
    // Ties: with absmax 127 the 8-bit step is 1; with the largest value -8 the 4-bit one is 1.
    let mut ties: Vec<f32> = (0..QK - 1).map(|i| i as f32 * 7.0 - 100.5).collect();
    ties.push(127.0);
    x.extend(ties.iter().map(|v| -v));
    x.extend(&ties);
    let mut ties4: Vec<f32> = (0..QK - 1).map(|i| (i % 16) as f32 * 0.5 - 3.5).collect();
    ties4.push(-8.0);
    x.extend(&ties4);
    x.extend([0f32; QK]);
    x.extend([f32::NAN; QK]);
    let mut mixed = values(QK, 32);
    mixed[5] = f32::INFINITY;
    mixed[9] = f32::NAN;
    mixed[12] = f32::NEG_INFINITY;
    x.extend(mixed);
    for (fmt, g) in [
        (QFormat::Q8, GgmlDType::Q8_0),
        (QFormat::Q4, GgmlDType::Q4_0),
    ] {
        let t = Tensor::from_vec(x.clone(), (x.len() / QK, QK), &Device::Cpu).unwrap();
        let want = QTensor::quantize(&t, g).unwrap().data().unwrap().to_vec();
        let mut got = vec![0u8; want.len()];
        quantize_into(fmt, &x, &mut got);
        for (b, (g, w)) in got
            .chunks(fmt.ggml_block_bytes())
            .zip(want.chunks(fmt.ggml_block_bytes()))
            .enumerate()
        {
            assert_eq!(g, w, "{fmt:?} block {b}");
        }
        // Rows quantised while loading pack as the checkpoint's blocks would.
        let (n, k) = (21, 3 * QK);
        let w = values(n * k, 33);
        let mut direct = PackedQ::zeroed(fmt, n, k);
        direct.fill_rows(0, n, |i, dst| dst.copy_from_slice(&w[i * k..(i + 1) * k]));
        let t = Tensor::from_vec(w.clone(), (n, k), &Device::Cpu).unwrap();
        let mut via = PackedQ::zeroed(fmt, n, k);
        via.fill_ggml_rows(0, n, &QTensor::quantize(&t, g).unwrap().data().unwrap());
        assert_eq!(direct.packed(), via.packed(), "{fmt:?}");
    }
}
