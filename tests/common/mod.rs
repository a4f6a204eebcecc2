//! Helpers shared by the integration tests.
#![allow(dead_code)]

pub mod pty;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use dpa_explorer::scoring::{Every, Pipeline, Point, ScoreError, Scored};

use serde::Deserialize;

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn fixture(name: &str) -> PathBuf {
    root().join("tests/fixtures").join(name)
}

pub fn demo() -> PathBuf {
    root().join("assets/demo")
}

#[derive(Debug, Deserialize)]
pub struct Case {
    pub prompt: String,
    pub response: String,
    pub input_ids: Vec<u32>,
    pub logits_f32: Vec<f32>,
    #[serde(default)]
    pub logits_bf16: Vec<f32>,
    #[serde(default)]
    pub truncated: bool,
}

#[derive(Debug, Deserialize)]
pub struct Reference {
    pub cases: Vec<Case>,
    pub batch_logits_f32: Vec<Vec<f32>>,
    pub truncation_max_tokens: usize,
    pub truncated_cases: Vec<Case>,
}

pub fn reference(dir: &Path) -> Reference {
    let text = std::fs::read_to_string(dir.join("reference.json")).expect("reference.json");
    serde_json::from_str(&text).expect("reference.json parses")
}

pub fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "lengths differ");
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

/// A copy of a model directory (symlinks to its files) in which `edit` may replace files.
pub fn model_copy(src: &Path, edit: impl FnOnce(&Path)) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    for entry in std::fs::read_dir(src).expect("read fixture dir") {
        let entry = entry.expect("entry");
        std::os::unix::fs::symlink(entry.path(), dir.path().join(entry.file_name()))
            .expect("symlink");
    }
    edit(dir.path());
    dir
}

/// The model in `dir` on the CPU in f32, inputs cut to `max_tokens`.
pub fn load(dir: &Path, max_tokens: usize) -> Arc<dpa_explorer::model::RewardModel> {
    use dpa_explorer::model::{DTypeChoice, DeviceChoice, LoadOptions, ModelFiles, RewardModel};
    let files = ModelFiles::from_dir(dir).expect("model files");
    let opts = LoadOptions {
        device: DeviceChoice::Cpu,
        dtype: DTypeChoice::F32,
        max_tokens,
    };
    Arc::new(RewardModel::load(&files, &opts).expect("model loads"))
}

/// The shards of the `tiny-mha` fixture.
pub const SHARDS: [&str; 2] = [
    "model-00001-of-00002.safetensors",
    "model-00002-of-00002.safetensors",
];

/// Tensors by name: dtype, shape and raw bytes.
pub type Tensors = std::collections::BTreeMap<String, (safetensors::Dtype, Vec<usize>, Vec<u8>)>;

/// Every tensor of the tiny-mha checkpoint.
pub fn fixture_tensors() -> Tensors {
    let mut out = Tensors::new();
    for shard in SHARDS {
        read_tensors(&fixture("tiny-mha").join(shard), &mut out);
    }
    out
}

/// Adds the tensors of the safetensors file at `path` to `out`.
pub fn read_tensors(path: &Path, out: &mut Tensors) {
    let bytes = std::fs::read(path).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    for (name, view) in st.tensors() {
        out.insert(
            name,
            (view.dtype(), view.shape().to_vec(), view.data().to_vec()),
        );
    }
}

/// Writes `tensors` as one safetensors file at `path`.
pub fn write_tensors(tensors: &Tensors, path: &Path) {
    let views: Vec<(String, safetensors::tensor::TensorView)> = tensors
        .iter()
        .map(|(k, (dt, shape, data))| {
            let view = safetensors::tensor::TensorView::new(*dt, shape.clone(), data).unwrap();
            (k.clone(), view)
        })
        .collect();
    safetensors::serialize_to_file(views, None, path).unwrap();
}

/// Replaces the JSON file at `path` (in a [`model_copy`], a link to the fixture's) by `edit`
/// applied to its content.
pub fn rewrite_json(path: &Path, edit: impl FnOnce(&mut serde_json::Value)) {
    let text = std::fs::read_to_string(path).unwrap();
    let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
    edit(&mut v);
    std::fs::remove_file(path).unwrap();
    std::fs::write(path, v.to_string()).unwrap();
}

/// tiny-mha's config and tokenizer with its tensors, edited, in one `model.safetensors`.
pub fn edited_checkpoint(edit: impl FnOnce(&mut Tensors)) -> tempfile::TempDir {
    let mut tensors = fixture_tensors();
    edit(&mut tensors);
    let dir = tempfile::tempdir().unwrap();
    for name in ["config.json", "tokenizer.json"] {
        std::os::unix::fs::symlink(fixture("tiny-mha").join(name), dir.path().join(name)).unwrap();
    }
    write_tensors(&tensors, &dir.path().join("model.safetensors"));
    dir
}

/// The model in `dir` on the CPU in `dtype`, keeping quantised weights in `cache`.
pub fn load_mode(
    dir: &Path,
    dtype: dpa_explorer::model::DTypeChoice,
    cache: &Path,
) -> Arc<dpa_explorer::model::RewardModel> {
    use dpa_explorer::model::{DeviceChoice, LoadOptions, ModelFiles, RewardModel};
    let files = ModelFiles::from_dir(dir).expect("model files");
    let opts = LoadOptions {
        device: DeviceChoice::Cpu,
        dtype,
        ..LoadOptions::default()
    };
    Arc::new(RewardModel::load_with_cache(&files, &opts, Some(cache)).expect("model loads"))
}

/// Scoring a loaded model through the pipeline, each call from scratch (a fresh cache), so
/// that it is an independent reference.
#[allow(dead_code)]
pub trait Scoring {
    fn score(&self, pairs: &[(&str, &str)]) -> Result<Vec<Scored>, ScoreError>;
    fn trajectory(
        &self,
        prompt: &str,
        response: &str,
        every: Every,
        stop: &dyn Fn() -> bool,
    ) -> Result<Vec<Point>, ScoreError>;
}

impl Scoring for Arc<dpa_explorer::model::RewardModel> {
    fn score(&self, pairs: &[(&str, &str)]) -> Result<Vec<Scored>, ScoreError> {
        Pipeline::local(self.clone())
            .score_pairs(pairs)
            .into_iter()
            .collect()
    }

    fn trajectory(
        &self,
        prompt: &str,
        response: &str,
        every: Every,
        stop: &dyn Fn() -> bool,
    ) -> Result<Vec<Point>, ScoreError> {
        Pipeline::local(self.clone()).trajectory(prompt, response, every, stop)
    }
}
