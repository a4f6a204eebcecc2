//! Every `Q4_K` kernel against an f64 reference of the same scheme (dequantised weights times
//! the activations as quantised), on random and edge-case shapes, in the manner of llama.cpp's
//! `test-backend-ops`.

use super::*;
use crate::model::kernels::test_values as values;
use crate::model::kquant::{dequantize_q4k, quantize_q4k};

/// The GGML blocks of `w` `[n, k]`, each row padded to whole super-blocks, and the
/// dequantised weights `[n, k]`.
fn blocks(w: &[f32], n: usize, k: usize) -> (Vec<u8>, Vec<f32>) {
    let kp = padded_k(k);
    let mut padded = vec![0f32; n * kp];
    for r in 0..n {
        padded[r * kp..r * kp + k].copy_from_slice(&w[r * k..(r + 1) * k]);
    }
    let bytes = quantize_q4k(&padded);
    let deq = dequantize_q4k(&bytes);
    let deq = (0..n)
        .flat_map(|r| deq[r * kp..r * kp + k].to_vec())
        .collect();
    (bytes, deq)
}

fn packed(w: &[f32], n: usize, k: usize) -> (PackedQ4K, Vec<f32>) {
    let (bytes, deq) = blocks(w, n, k);
    let mut p = PackedQ4K::zeroed(n, k);
    // Filled in two parts, as a fused projection is.
    let rb = padded_k(k) / QK_K * Q4K_BLOCK_BYTES;
    let split = n / 3;
    p.fill_ggml_rows(0, split, &bytes[..split * rb]);
    p.fill_ggml_rows(split, n - split, &bytes[split * rb..]);
    (p, deq)
}

fn reference(x: &[f32], deq: &[f32], m: usize, n: usize, k: usize) -> Vec<f64> {
    let acts = Acts::new(x, m, k);
    let mut out = vec![0f64; m * n];
    for i in 0..m {
        for j in 0..n {
            out[i * n + j] = (0..k)
                .map(|t| {
                    let a = acts.value(i, t) as f64 * acts.d[i * (k / QK) + t / QK] as f64;
                    a * deq[j * k + t] as f64
                })
                .sum();
        }
    }
    out
}

fn isas() -> Vec<Isa> {
    [Isa::Avx512Vnni, Isa::Scalar]
        .into_iter()
        .filter(|&i| i == Isa::Scalar || super::super::int8::vnni_available())
        .collect()
}

fn check(isa: Isa, x: &[f32], w: &[f32], m: usize, n: usize, k: usize, near_exact: bool) {
    let (p, deq) = packed(w, n, k);
    let mut got = vec![f32::NAN; m * n];
    p.matmul_with(isa, x, m, &mut got);
    let want = reference(x, &deq, m, n, k);
    let scale = (k as f64).sqrt();
    for (i, (&g, &r)) in got.iter().zip(&want).enumerate() {
        assert!(
            (g as f64 - r).abs() <= 2e-5 * scale * (1.0 + r.abs()),
            "{isa:?} {m}×{n}×{k}: element {i}: {g} vs {r}"
        );
    }
    if !near_exact {
        return;
    }
    // And the whole scheme stays near the exact product (of values of like size).
    let err = (0..m * n)
        .map(|e| {
            let (i, j) = (e / n, e % n);
            let exact: f64 = (0..k)
                .map(|t| x[i * k + t] as f64 * w[j * k + t] as f64)
                .sum();
            (got[e] as f64 - exact).abs()
        })
        .fold(0f64, f64::max);
    assert!(
        err <= 0.15 * scale,
        "{isa:?} {m}×{n}×{k}: error {err} vs exact"
    );
}

#[test]
fn every_available_kernel_matches_the_reference() {
    for isa in isas() {
        for &(m, n, k) in &[
            (1, 1, 256),
            (1, 17, 512),
            (5, 40, 256),
            (6, 32, 256 * (KCB + 1)),
            (7, 33, 1024),
            (128, 48, 512),
            // k not a whole number of super-blocks: padded, the padding never read.
            (3, 20, 576),
            (5, 16, 96),
            (2, 9, 32),
        ] {
            check(isa, &values(m * k, 12), &values(n * k, 11), m, n, k, true);
        }
    }
}

#[test]
fn outliers_zeros_and_constant_blocks() {
    let (m, n, k) = (5, 18, 768);
    let mut w = values(n * k, 3);
    for v in w.iter_mut().step_by(101) {
        *v *= 40.0;
    }
    // A row of zeros, a constant negative row, a constant positive sub-block.
    w[..k].fill(0.0);
    w[k..2 * k].fill(-0.3);
    w[2 * k..2 * k + 32].fill(0.7);
    let mut x = values(m * k, 4);
    x[7] = 300.0;
    x[k..2 * k].fill(0.0);
    for isa in isas() {
        // Outliers make their blocks' steps coarse: only the scheme itself is checked.
        check(isa, &x, &w, m, n, k, false);
    }
}

#[test]
fn the_kernels_agree_with_each_other() {
    let (m, n, k) = (9, 37, 1280);
    let (x, w) = (values(m * k, 21), values(n * k, 22));
    let (p, _) = packed(&w, n, k);
    let mut a = vec![0f32; m * n];
    p.matmul_with(Isa::Scalar, &x, m, &mut a);
    for isa in isas() {
        let mut b = vec![0f32; m * n];
        p.matmul_with(isa, &x, m, &mut b);
        for (u, v) in a.iter().zip(&b) {
            assert!(
                (u - v).abs() <= 1e-4 * (1.0 + u.abs()),
                "{isa:?}: {u} vs {v}"
            );
        }
    }
}

#[test]
fn packed_size_is_within_a_few_percent_of_ggml() {
    let (n, k) = (64, 4096);
    let p = PackedQ4K::zeroed(n, k);
    let ggml = n * k / QK_K * Q4K_BLOCK_BYTES;
    assert!(
        p.bytes() as f64 <= 1.03 * ggml as f64,
        "{} vs {ggml}",
        p.bytes()
    );
}
