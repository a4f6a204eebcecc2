use super::*;

use crate::model::kernels::test_values as values;

/// `x Wᵀ` in f64 from the values the kernel sees.
fn reference(x: &[f32], w: &[u16], m: usize, n: usize, k: usize) -> Vec<f32> {
    let mut out = vec![0f32; m * n];
    for i in 0..m {
        for j in 0..n {
            let s: f64 = (0..k)
                .map(|t| x[i * k + t] as f64 * bf16_to_f32(w[j * k + t]) as f64)
                .sum();
            out[i * n + j] = s as f32;
        }
    }
    out
}

fn check(isa: Isa, m: usize, n: usize, k: usize) {
    let w: Vec<u16> = values(n * k, 1).iter().map(|&v| f32_to_bf16(v)).collect();
    let x = values(m * k, 2);
    let packed = PackedBf16::from_rows(&w, n, k);
    let mut got = vec![f32::NAN; m * n];
    packed.matmul_with(isa, &x, m, &mut got);
    // The BF16 kernel rounds the activations to bf16; the others use them as they are.
    let seen: Vec<f32> = if isa == Isa::Avx512Bf16 {
        x.iter().map(|&v| bf16_to_f32(f32_to_bf16(v))).collect()
    } else {
        x.clone()
    };
    let want = reference(&seen, &w, m, n, k);
    let scale = (k as f32).sqrt();
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        assert!(
            (g - w).abs() <= 1e-5 * scale * (1.0 + w.abs()),
            "{isa:?} {m}×{n}×{k}: element {i}: {g} vs {w}"
        );
    }
}

#[test]
fn every_available_kernel_matches_the_reference() {
    // Shapes that exercise partial row blocks, partial panels, odd k and several k blocks.
    let shapes = [
        (1, 1, 1),
        (3, 17, 5),
        (9, 50, 33),
        (8, 48, 64),
        // Every AVX2 tile height (six rows at most): 4, 5, 6 + 5.
        (4, 20, 40),
        (5, 16, 66),
        (11, 33, 18),
        (13, 100, 2 * KC + 7),
        (1, 4096 / 64, 4096),
        (17, 35, 2 * KC * 2 + 2),
        // More rows than the AVX2 kernel's row block, many panels.
        (67, 16 * 40, 70),
    ];
    for isa in [Isa::Avx512Bf16, Isa::Avx512, Isa::Avx2, Isa::Scalar] {
        if !isa.is_available() {
            continue;
        }
        for &(m, n, k) in &shapes {
            check(isa, m, n, k);
        }
    }
}

#[test]
fn large_products_run_in_parallel_and_match() {
    for isa in [Isa::Avx512Bf16, Isa::Avx512, Isa::Avx2, Isa::Scalar] {
        if !isa.is_available() {
            continue;
        }
        check(isa, 37, 200, 300);
    }
}

#[test]
fn widening_is_chosen_only_when_clearly_faster() {
    let clearly_faster = |w, d| crate::model::kernels::clearly_faster(w, d, WIDEN_MARGIN);
    assert!(clearly_faster(1.0, 2.0));
    assert!(!clearly_faster(0.9, 1.0));
    assert!(!clearly_faster(1.0, 1.0));
    assert!(!clearly_faster(f64::NAN, 1.0));
    assert!(!clearly_faster(0.5, f64::INFINITY));
}

#[test]
fn empty_inner_dimension_gives_zeros() {
    let packed = PackedBf16::from_rows(&[], 3, 0);
    let mut out = vec![1f32; 6];
    packed.matmul(&[], 2, &mut out);
    assert_eq!(out, vec![0f32; 6]);
}

#[test]
fn rounding_to_bf16_is_to_nearest_even() {
    assert_eq!(f32_to_bf16(1.0), 0x3f80);
    // 1 + 2^-8 lies halfway between two bf16 values: ties go to the even one.
    assert_eq!(f32_to_bf16(1.0 + 1.0 / 256.0), 0x3f80);
    assert_eq!(f32_to_bf16(1.0 + 3.0 / 256.0), 0x3f82);
    assert_eq!(bf16_to_f32(0xc000), -2.0);
}
