//! Checkpoints stored as f32, f16 or a PyTorch pickle load and score like the bf16 original.

mod common;

use common::*;
use dpa_explorer::model::{
    DTypeChoice, DeviceChoice, LoadOptions, ModelFiles, RewardModel, WeightFiles,
};
use half::{bf16, f16};
use safetensors::tensor::TensorView;
use safetensors::Dtype;

fn load(dir: &std::path::Path, dtype: DTypeChoice) -> std::sync::Arc<RewardModel> {
    let files = ModelFiles::from_dir(dir).expect("model files");
    let opts = LoadOptions {
        device: DeviceChoice::Cpu,
        dtype,
        max_tokens: 4096,
    };
    std::sync::Arc::new(RewardModel::load(&files, &opts).expect("model loads"))
}

/// Rewrites every bf16 tensor of `src`'s shards into one `model.safetensors` of `to`.
fn convert(src: &std::path::Path, to: Dtype) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for name in ["config.json", "tokenizer.json"] {
        std::fs::copy(src.join(name), dir.path().join(name)).unwrap();
    }
    let WeightFiles::Safetensors(shards) = WeightFiles::find(src).unwrap() else {
        panic!("fixture is safetensors")
    };
    let mut tensors: Vec<(String, Vec<usize>, Vec<u8>)> = Vec::new();
    for shard in shards {
        let bytes = std::fs::read(shard).unwrap();
        let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
        for (name, view) in st.tensors() {
            assert_eq!(view.dtype(), Dtype::BF16);
            let vals = view
                .data()
                .chunks_exact(2)
                .map(|c| bf16::from_le_bytes([c[0], c[1]]).to_f32());
            let data: Vec<u8> = match to {
                Dtype::F32 => vals.flat_map(|v| v.to_le_bytes()).collect(),
                Dtype::F16 => vals.flat_map(|v| f16::from_f32(v).to_le_bytes()).collect(),
                _ => unreachable!(),
            };
            tensors.push((name, view.shape().to_vec(), data));
        }
    }
    let views: Vec<(String, TensorView)> = tensors
        .iter()
        .map(|(n, s, d)| (n.clone(), TensorView::new(to, s.clone(), d).unwrap()))
        .collect();
    safetensors::serialize_to_file(views, None, &dir.path().join("model.safetensors")).unwrap();
    dir
}

fn assert_scores_close(model: &std::sync::Arc<RewardModel>, tol: f32) {
    let reference = reference(&fixture("tiny-mha"));
    for case in &reference.cases {
        let got = model
            .score(&[(&case.prompt, &case.response)])
            .unwrap()
            .remove(0);
        let d = max_abs_diff(&got.scores, &case.logits_f32);
        assert!(d <= tol, "|Δ| = {d} for {:?}", case.prompt);
    }
}

#[test]
fn f32_storage_scores_exactly_like_bf16_storage() {
    let dir = convert(&fixture("tiny-mha"), Dtype::F32);
    let model = load(dir.path(), DTypeChoice::F32);
    assert_eq!(model.info().stored_dtype, "f32");
    assert_scores_close(&model, 1e-3);
}

#[test]
fn f16_storage_loads_and_scores_closely() {
    let dir = convert(&fixture("tiny-mha"), Dtype::F16);
    let model = load(dir.path(), DTypeChoice::F32);
    assert_eq!(model.info().stored_dtype, "f16");
    // bf16 → f16 is exact for these weights except the smallest magnitudes.
    assert_scores_close(&model, 2e-2);
}

#[test]
fn pytorch_pickle_checkpoint_matches_transformers() {
    let dir = fixture("tiny-mha-bin");
    assert!(matches!(
        WeightFiles::find(&dir).unwrap(),
        WeightFiles::PyTorch(_)
    ));
    let model = load(&dir, DTypeChoice::F32);
    assert!(model.warnings().is_empty(), "{:?}", model.warnings());
    assert_scores_close(&model, 1e-3);
}

#[test]
fn f16_compute_runs() {
    let model = load(&fixture("tiny-mha"), DTypeChoice::F16);
    assert_eq!(model.info().dtype, "f16");
    let s = model.score(&[("p", "r")]).unwrap().remove(0);
    assert!(s.scores.iter().all(|x| x.is_finite()));
}
