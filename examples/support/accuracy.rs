//! How far a CPU mode's scores are from transformers' f32 scores on a fixture with trained
//! weights: the largest absolute difference, and per attribute the Kendall rank correlation of
//! the scores across the pairs (what a ranking reads). Shared by `examples/accuracy_trained.rs`
//! (the full table) and `tests/accuracy_trained.rs` (the bars on the committed slice).

#![allow(dead_code)]

use std::path::Path;
use std::sync::Arc;

use dpa_explorer::model::{DTypeChoice, DeviceChoice, LoadOptions, ModelFiles, RewardModel};
use dpa_explorer::scoring::{Backend, Job, LocalBackend};
use serde::Deserialize;

#[derive(Debug, Deserialize)]
pub struct Case {
    pub prompt: String,
    pub response: String,
    pub input_ids: Vec<u32>,
    pub logits_f32: Vec<f32>,
    #[serde(default)]
    pub logits_bf16: Vec<f32>,
}

#[derive(Debug, Deserialize)]
pub struct Reference {
    pub cases: Vec<Case>,
}

pub fn reference(dir: &Path) -> Reference {
    let text = std::fs::read_to_string(dir.join("reference.json")).expect("reference.json");
    serde_json::from_str(&text).expect("reference.json parses")
}

/// Kendall's τ-b of two equally long score lists (1: same order, −1: reversed).
pub fn kendall_tau(a: &[f32], b: &[f32]) -> f64 {
    assert_eq!(a.len(), b.len());
    let (mut concordant, mut discordant, mut ties_a, mut ties_b) = (0i64, 0i64, 0i64, 0i64);
    for i in 0..a.len() {
        for j in i + 1..a.len() {
            let da = (a[i] - a[j]).signum() as i64 * (a[i] != a[j]) as i64;
            let db = (b[i] - b[j]).signum() as i64 * (b[i] != b[j]) as i64;
            match (da, db) {
                (0, 0) => {}
                (0, _) => ties_a += 1,
                (_, 0) => ties_b += 1,
                _ if da == db => concordant += 1,
                _ => discordant += 1,
            }
        }
    }
    let n_a = (concordant + discordant + ties_b) as f64;
    let n_b = (concordant + discordant + ties_a) as f64;
    if n_a == 0.0 || n_b == 0.0 {
        return 0.0;
    }
    (concordant - discordant) as f64 / (n_a * n_b).sqrt()
}

/// One mode's accuracy against the reference.
#[derive(Debug, Clone, Copy)]
pub struct Accuracy {
    pub max_abs_diff: f32,
    /// The smallest over attributes of Kendall's τ across the pairs.
    pub min_tau: f64,
    /// Their mean: the minimum of ten noisy estimates sits below it by a few standard errors.
    pub mean_tau: f64,
}

/// Compares score rows (one per case) with the reference's f32 rows.
pub fn accuracy(got: &[Vec<f32>], want: &[Vec<f32>]) -> Accuracy {
    assert_eq!(got.len(), want.len());
    let max_abs_diff = got
        .iter()
        .zip(want)
        .flat_map(|(g, w)| g.iter().zip(w).map(|(a, b)| (a - b).abs()))
        .fold(0f32, f32::max);
    let attributes = want[0].len();
    let taus: Vec<f64> = (0..attributes)
        .map(|a| {
            let g: Vec<f32> = got.iter().map(|r| r[a]).collect();
            let w: Vec<f32> = want.iter().map(|r| r[a]).collect();
            kendall_tau(&g, &w)
        })
        .collect();
    Accuracy {
        max_abs_diff,
        min_tau: taus.iter().copied().fold(f64::INFINITY, f64::min),
        mean_tau: taus.iter().sum::<f64>() / attributes as f64,
    }
}

/// How far the smallest τ over attributes moves with the sample of pairs: its 5th and 95th
/// percentiles over `rounds` draws of as many pairs again, with replacement (a fixed seed, so
/// runs compare). A mode a few thousandths from its bar is within this spread of it.
pub fn min_tau_interval(got: &[Vec<f32>], want: &[Vec<f32>], rounds: usize) -> (f64, f64) {
    let n = want.len();
    // SplitMix64: enough to draw indices, and the same draws in every run.
    let mut state = 0x2026_1203_u64;
    let mut next = || {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    };
    let mut mins: Vec<f64> = (0..rounds)
        .map(|_| {
            let pick: Vec<usize> = (0..n).map(|_| (next() % n as u64) as usize).collect();
            let rows = |rows: &[Vec<f32>]| -> Vec<Vec<f32>> {
                pick.iter().map(|&i| rows[i].clone()).collect()
            };
            accuracy(&rows(got), &rows(want)).min_tau
        })
        .collect();
    mins.sort_by(f64::total_cmp);
    let at = |q: f64| mins[((rounds - 1) as f64 * q).round() as usize];
    (at(0.05), at(0.95))
}

pub fn load(dir: &Path, dtype: DTypeChoice, cache: &Path) -> Arc<RewardModel> {
    let files = ModelFiles::from_dir(dir).expect("model files");
    // The pairs are short; a body with a short context (llama2.c's 256) must still load.
    let context = std::fs::read(dir.join("config.json"))
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .and_then(|c| c["max_position_embeddings"].as_u64())
        .unwrap_or(4096) as usize;
    let opts = LoadOptions {
        device: DeviceChoice::Cpu,
        dtype,
        max_tokens: context.min(4096),
    };
    Arc::new(RewardModel::load_with_cache(&files, &opts, Some(cache)).expect("model loads"))
}

/// Scores every case from its reference token ids, one at a time (no padding).
pub fn score_cases(model: &Arc<RewardModel>, reference: &Reference) -> Vec<Vec<f32>> {
    reference
        .cases
        .iter()
        .map(|c| {
            // Nothing kept between cases: each is a pass of its own.
            let mut backend = LocalBackend::new(model.clone(), 0);
            let job = Job {
                ids: &c.input_ids,
                slot: None,
            };
            let mut row = None;
            backend
                .score(&[job], &|| false, &mut |_, r| row = Some(r))
                .expect("scores");
            let row = row.expect("answered").expect("scores");
            assert!(row.iter().all(|v| v.is_finite()), "non-finite score");
            row
        })
        .collect()
}

/// The spread (max − min across the pairs) of each attribute's reference scores, smallest.
pub fn min_spread(want: &[Vec<f32>]) -> f32 {
    (0..want[0].len())
        .map(|a| {
            let (lo, hi) = want.iter().fold((f32::MAX, f32::MIN), |(lo, hi), r| {
                (lo.min(r[a]), hi.max(r[a]))
            });
            hi - lo
        })
        .fold(f32::MAX, f32::min)
}
