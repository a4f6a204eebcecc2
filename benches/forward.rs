//! One forward pass of a 2-layer model with Mistral-7B's widths, per CPU mode:
//! `cargo bench --bench forward`. The whole-model comparison with PyTorch is
//! `scripts/bench_vs_pytorch.py`.

mod common;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use dpa_explorer::model::{DTypeChoice, DeviceChoice, LoadOptions, ModelFiles, RewardModel};

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    common::write_model(dir.path(), &common::Shape::mistral_7b(2)).unwrap();
    let files = ModelFiles::from_dir(dir.path()).unwrap();
    let ids = common::token_ids(128, 0);
    let mut g = c.benchmark_group("forward 2 layers, 128 tokens");
    g.sample_size(10);
    for dtype in [
        DTypeChoice::F32,
        DTypeChoice::BF16,
        DTypeChoice::Q8_0,
        DTypeChoice::Q4K,
        DTypeChoice::Q4_0,
    ] {
        let opts = LoadOptions {
            device: DeviceChoice::Cpu,
            dtype,
            ..LoadOptions::default()
        };
        let model = RewardModel::load_with_cache(&files, &opts, None).unwrap();
        g.bench_function(BenchmarkId::from_parameter(dtype.name()), |b| {
            b.iter(|| {
                model
                    .decoder()
                    .forward(None, &[&ids], false, &|| false)
                    .unwrap()
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
