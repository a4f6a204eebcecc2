//! The accuracy table on trained weights: every CPU mode against transformers' f32 scores,
//! as the largest absolute difference and the smallest over attributes of Kendall's τ across
//! the pairs. The model directory and its `reference.json` come from
//! `scripts/accuracy_trained.py` (the full model is not committed; its slice is).
//!
//! ```text
//! cargo run --release --example accuracy_trained -- /tmp/acc-model/full [MODE ...]
//! ```

#[path = "support/accuracy.rs"]
mod accuracy;

use std::path::PathBuf;
use std::time::Instant;

use accuracy::*;
use dpa_explorer::model::DTypeChoice;

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let dir = PathBuf::from(
        args.next()
            .ok_or_else(|| anyhow::anyhow!("usage: accuracy_trained MODEL_DIR [MODE ...]"))?,
    );
    let mut modes: Vec<DTypeChoice> = args
        .map(|a| a.parse().map_err(anyhow::Error::msg))
        .collect::<Result<_, _>>()?;
    if modes.is_empty() {
        modes = DTypeChoice::CPU_MODES.to_vec();
    }
    let reference = reference(&dir);
    let want: Vec<Vec<f32>> = reference
        .cases
        .iter()
        .map(|c| c.logits_f32.clone())
        .collect();
    println!(
        "{} pairs; smallest spread of an attribute's scores across them: {:.2}",
        want.len(),
        min_spread(&want)
    );
    // The first 72 pairs were the whole set from 2026-12-02 to 2026-12-04: their τ stays
    // comparable with the tables of those days.
    let first = want.len().min(72);
    println!(
        "| mode | max abs Δ | τ, min over attributes | its 90 % interval, pairs drawn again | τ, mean | min τ, first {first} pairs | bar | load + score s |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    let row = |got: &[Vec<f32>]| {
        let a = accuracy(got, &want);
        let (lo, hi) = min_tau_interval(got, &want, 400);
        let early = accuracy(&got[..first], &want[..first]);
        format!(
            "{:.3} | {:.3} | {lo:.3}–{hi:.3} | {:.3} | {:.3}",
            a.max_abs_diff, a.min_tau, a.mean_tau, early.min_tau
        )
    };
    if reference.cases.iter().all(|c| !c.logits_bf16.is_empty()) {
        let torch: Vec<Vec<f32>> = reference
            .cases
            .iter()
            .map(|c| c.logits_bf16.clone())
            .collect();
        println!("| PyTorch bf16 | {} | | |", row(&torch));
    }
    let cache = tempfile::tempdir()?;
    for mode in modes {
        let t = Instant::now();
        let model = load(&dir, mode, cache.path());
        let got = score_cases(&model, &reference);
        println!(
            "| dpa-explorer {} ({}) | {} | {} | {:.1} |",
            mode.name(),
            model.info().dtype,
            row(&got),
            mode.rank_bar().map_or("–".into(), |b| format!("{b:.2}")),
            t.elapsed().as_secs_f64()
        );
    }
    Ok(())
}
