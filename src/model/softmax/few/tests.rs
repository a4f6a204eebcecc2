//! The few-row attention against the general path, each vector path against the scalar one,
//! and keys in roomy storage.

use super::super::causal_softmax;
use super::super::tests::max_abs_diff;
use super::*;
use candle_core::Device;

/// (tokens, prefix, n_rep, window, head dim): appends to long and empty prefixes, grouped
/// heads, windows, blocks of rows cut short, and head dims for every lane width.
const CASES: [(usize, usize, usize, Option<usize>, usize); 9] = [
    (5, 364, 4, None, 128),
    (1, 12, 4, Some(64), 64),
    (3, 0, 2, None, 8),
    (6, 9, 1, Some(4), 20),
    (16, 40, 4, Some(30), 128),
    (3, 7, 3, None, 80),
    (2, 33, 1, Some(9), 96),
    (7, 5, 1, None, 256),
    (1, 0, 1, None, 16),
];

fn placement(tokens: usize, prefix: usize, n_rep: usize, window: Option<usize>) -> RowPlacement {
    RowPlacement {
        rows: n_rep * tokens,
        first_row: 0,
        tokens,
        prefix,
        window,
    }
}

/// The few-row attention equals the general path: batched products around the fused
/// softmax.
#[test]
fn few_row_attention_equals_products_and_softmax() {
    let dev = Device::Cpu;
    for (tokens, prefix, n_rep, window, d) in CASES {
        let keys = prefix + tokens;
        let at = placement(tokens, prefix, n_rep, window);
        let q = Tensor::randn(0f32, 1.0, (2, 3, at.rows, d), &dev).unwrap();
        let k = Tensor::randn(0f32, 1.0, (2, 3, keys, d), &dev).unwrap();
        let v = Tensor::randn(0f32, 1.0, (2, 3, keys, d), &dev).unwrap();
        let scale = 1.0 / (d as f64).sqrt();
        let got = attend_few(&q, &k, &v, scale, at)
            .unwrap()
            .expect("few rows");
        let scores = q.matmul(&k.t().unwrap()).unwrap();
        let probs = causal_softmax(&scores, scale, at).unwrap().unwrap();
        let want = probs.matmul(&v).unwrap();
        let diff = max_abs_diff(&got, &want);
        assert!(
            diff < 1e-5,
            "{tokens} {prefix} {n_rep} {window:?} {d}: {diff}"
        );
    }
}

/// Every vector path this processor has gives the scalar path's output.
#[test]
fn every_vector_path_equals_the_scalar_one() {
    let dev = Device::Cpu;
    let mut checked = Vec::new();
    for (tokens, prefix, n_rep, window, d) in CASES {
        let keys = prefix + tokens;
        let at = placement(tokens, prefix, n_rep, window);
        let q = Tensor::randn(0f32, 1.0, (at.rows, d), &dev).unwrap();
        let k = Tensor::randn(0f32, 1.0, (keys, d), &dev).unwrap();
        let v = Tensor::randn(0f32, 1.0, (keys, d), &dev).unwrap();
        let [q, k, v] = [q, k, v].map(|t| t.flatten_all().unwrap().to_vec1::<f32>().unwrap());
        let g = Group {
            q: &q,
            k: &k,
            v: &v,
            d,
            scale: 0.3,
            at,
        };
        let run = |isa| {
            let mut out = vec![0f32; at.rows * d];
            attend_group(isa, g, &mut out, &mut vec![0f32; BLOCK * keys]);
            out
        };
        let want = run(Isa::Scalar);
        for isa in [Isa::Avx512, Isa::Avx2] {
            if !isa.runs(d) {
                continue;
            }
            let got = run(isa);
            let diff = got
                .iter()
                .zip(&want)
                .map(|(a, b)| (a - b).abs())
                .fold(0f32, f32::max);
            assert!(diff < 1e-5, "{isa:?} d={d}: {diff}");
            checked.push((isa, d % isa.wide() == 0));
        }
    }
    // On a processor with the instruction sets, both vector paths ran.
    #[cfg(target_arch = "x86_64")]
    if super::super::avx2_fma() {
        // Each with both widths of its weighted sum.
        for wide in [false, true] {
            assert!(checked.contains(&(Isa::Avx2, wide)));
            if std::arch::is_x86_feature_detected!("avx512f") {
                assert!(checked.contains(&(Isa::Avx512, wide)));
            }
        }
    }
}

/// Keys and values that view the start of longer storage (a cache with room) give what
/// their contiguous copies give.
#[test]
fn keys_in_roomy_storage_equal_contiguous_ones() {
    let dev = Device::Cpu;
    let at = placement(5, 40, 4, None);
    let keys = 45;
    let q = Tensor::randn(0f32, 1.0, (1, 2, at.rows, 64), &dev).unwrap();
    let k = Tensor::randn(0f32, 1.0, (1, 2, keys + 19, 64), &dev).unwrap();
    let v = Tensor::randn(0f32, 1.0, (1, 2, keys + 19, 64), &dev).unwrap();
    let (k, v) = (k.narrow(2, 0, keys).unwrap(), v.narrow(2, 0, keys).unwrap());
    assert!(!k.is_contiguous());
    let got = attend_few(&q, &k, &v, 0.125, at).unwrap().expect("views");
    let (kc, vc) = (k.contiguous().unwrap(), v.contiguous().unwrap());
    let want = attend_few(&q, &kc, &vc, 0.125, at).unwrap().unwrap();
    assert_eq!(max_abs_diff(&got, &want), 0.0);
}

#[test]
fn other_inputs_take_the_general_path() {
    let dev = Device::Cpu;
    // Many rows, a block of rows, or another dtype: the general path's.
    let q = Tensor::zeros((1, 1, FEW_ROWS + 1, 8), DType::F32, &dev).unwrap();
    let k = Tensor::zeros((1, 1, FEW_ROWS + 1, 8), DType::F32, &dev).unwrap();
    let many = placement(FEW_ROWS + 1, 0, 1, None);
    assert!(attend_few(&q, &k, &k, 1.0, many).unwrap().is_none());
    let q = Tensor::zeros((1, 1, 2, 8), DType::F32, &dev).unwrap();
    let k = Tensor::zeros((1, 1, 4, 8), DType::F32, &dev).unwrap();
    let block = RowPlacement {
        rows: 2,
        first_row: 2,
        tokens: 4,
        prefix: 0,
        window: None,
    };
    assert!(attend_few(&q, &k, &k, 1.0, block).unwrap().is_none());
    let at = RowPlacement {
        first_row: 0,
        ..block
    };
    let kh = k.to_dtype(DType::BF16).unwrap();
    assert!(attend_few(&q, &kh, &kh, 1.0, at).unwrap().is_none());
}
