//! One appended word's attention at Mistral-7B's shape, per layer: 5 new tokens of 32 query
//! heads (8 key heads, 4 rows each) against a cache of 364 tokens, head dim 128, on the
//! few-row path (`cargo bench --bench attention`). A word runs it once per layer.

use candle_core::{Device, Tensor};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use dpa_explorer::model::gpu::RowPlacement;
use dpa_explorer::model::softmax::attend_few;

fn bench(c: &mut Criterion) {
    let dev = Device::Cpu;
    let (kv_heads, n_rep, d) = (8, 4, 128);
    let mut group = c.benchmark_group("attention, one word");
    for (tokens, prefix) in [(5, 364), (5, 2000)] {
        let keys = prefix + tokens;
        let at = RowPlacement {
            rows: n_rep * tokens,
            first_row: 0,
            tokens,
            prefix,
            window: None,
        };
        let q = Tensor::randn(0f32, 1.0, (1, kv_heads, at.rows, d), &dev).unwrap();
        let k = Tensor::randn(0f32, 1.0, (1, kv_heads, keys, d), &dev).unwrap();
        let v = Tensor::randn(0f32, 1.0, (1, kv_heads, keys, d), &dev).unwrap();
        let scale = 1.0 / (d as f64).sqrt();
        // Each row's products with the keys and the values it sees.
        let flops = 4 * d * kv_heads * (0..at.rows).map(|r| prefix + r % tokens + 1).sum::<usize>();
        group.throughput(Throughput::Elements(flops as u64));
        group.bench_function(format!("{tokens} tokens after {prefix}"), |b| {
            b.iter(|| {
                attend_few(&q, &k, &v, scale, at)
                    .unwrap()
                    .expect("few rows")
            })
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(30);
    targets = bench
}
criterion_main!(benches);
