//! The projections alone, in every weight format, at the widths of Mistral-7B's MLP
//! (`[tokens, 4096] × [4096, 14336]`): `cargo bench --bench linear`.

use candle_core::quantized::{GgmlDType, QMatMul, QTensor};
use candle_core::{DType, Device, Tensor};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use dpa_explorer::model::kernels::bf16::PackedBf16;
use dpa_explorer::model::kernels::int8::{PackedQ, QFormat};
use dpa_explorer::model::kernels::q4k::PackedQ4K;
use dpa_explorer::model::kernels::Isa;
use dpa_explorer::model::kquant;
use dpa_explorer::model::linear::Linear;

fn bench(c: &mut Criterion) {
    let (k, n) = (4096, 14336);
    let dev = Device::Cpu;
    let w = Tensor::randn(0f32, 0.02, (n, k), &dev).unwrap();
    let w_bf16 = w.to_dtype(DType::BF16).unwrap();
    let bits: Vec<u16> = w_bf16
        .flatten_all()
        .unwrap()
        .to_vec1::<half::bf16>()
        .unwrap()
        .into_iter()
        .map(|v| v.to_bits())
        .collect();
    let packed = std::sync::Arc::new(PackedBf16::from_rows(&bits, n, k));
    let mut formats: Vec<(String, Linear, DType)> = vec![
        (
            "candle f32".into(),
            Linear::Dense { weight: w.clone() },
            DType::F32,
        ),
        (
            "candle bf16".into(),
            Linear::Dense {
                weight: w_bf16.clone(),
            },
            DType::BF16,
        ),
        (
            "packed bf16".into(),
            Linear::PackedBf16(packed.clone()),
            DType::F32,
        ),
    ];
    for (fmt, g) in [
        (QFormat::Q8, GgmlDType::Q8_0),
        (QFormat::Q4, GgmlDType::Q4_0),
    ] {
        let t = QTensor::quantize(&w, g).unwrap();
        let mut p = PackedQ::zeroed(fmt, n, k);
        p.fill_ggml_rows(0, n, &t.data().unwrap());
        formats.push((
            format!("packed {fmt:?}"),
            Linear::PackedQ(std::sync::Arc::new(p)),
            DType::F32,
        ));
    }
    let mut q4k = PackedQ4K::zeroed(n, k);
    let values = w.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    q4k.fill_ggml_rows(0, n, &kquant::quantize_q4k(&values));
    formats.push((
        "packed Q4K".into(),
        Linear::PackedQ4K(std::sync::Arc::new(q4k)),
        DType::F32,
    ));
    for q in [GgmlDType::Q8_0, GgmlDType::Q4K] {
        let t = QTensor::quantize(&w, q).unwrap();
        formats.push((
            format!("candle {q:?}"),
            Linear::Quantized {
                weight: QMatMul::from_qtensor(t).unwrap(),
                out: n,
            },
            DType::F32,
        ));
    }
    for m in [1usize, 128, 512] {
        let mut g = c.benchmark_group(format!("linear {m}x{k}x{n}"));
        g.sample_size(10);
        g.throughput(Throughput::Elements((2 * m * k * n) as u64));
        let x = Tensor::randn(0f32, 1.0, (m, k), &dev).unwrap();
        for (name, lin, dtype) in &formats {
            let x = x.to_dtype(*dtype).unwrap();
            g.bench_function(BenchmarkId::from_parameter(name), |b| {
                b.iter(|| lin.forward(&x).unwrap())
            });
        }
        // The packed kernel on every instruction set this processor has, for comparison.
        let xs = x.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let mut out = vec![0f32; m * n];
        for isa in [Isa::Avx512Bf16, Isa::Avx512, Isa::Avx2] {
            if !isa.is_available() {
                continue;
            }
            g.bench_function(BenchmarkId::new("packed bf16 kernel", isa.name()), |b| {
                b.iter(|| packed.matmul_with(isa, &xs, m, &mut out))
            });
        }
        g.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
