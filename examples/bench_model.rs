//! Times dpa-explorer's forward pass on fixed token ids, one model in one mode per process (so
//! that its peak memory is that mode's own), and prints one JSON object. Driven by
//! `scripts/bench_vs_pytorch.py`, which times transformers on the same files and inputs.
//!
//! ```text
//! bench_model --model DIR --dtype q8_0 --inputs inputs.json --runs 5
//! bench_model --smoke        # tiny random model, every CPU mode, a few seconds
//! ```

#[path = "../benches/common/mod.rs"]
mod common;

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use clap::Parser;
use dpa_explorer::model::{DTypeChoice, DeviceChoice, LoadOptions, ModelFiles, RewardModel};

#[derive(Debug, Parser)]
struct Args {
    /// Model directory (config.json, tokenizer.json, weights).
    #[arg(long)]
    model: Option<PathBuf>,
    #[arg(long, default_value = "f32")]
    dtype: DTypeChoice,
    #[arg(long, default_value = "cpu")]
    device: DeviceChoice,
    /// JSON file `{"inputs": [[token ids], ...]}`; without it, random ids of `--tokens` lengths.
    #[arg(long)]
    inputs: Option<PathBuf>,
    #[arg(long, value_delimiter = ',', default_value = "128,512")]
    tokens: Vec<usize>,
    /// Timed passes per input (after one warm-up pass).
    #[arg(long, default_value_t = 5)]
    runs: usize,
    /// Batch sizes: each input is scored as this many copies in one pass.
    #[arg(long, value_delimiter = ',', default_value = "1")]
    batch: Vec<usize>,
    /// Where quantised weights are kept (default: dpa-explorer's cache directory).
    #[arg(long)]
    quant_cache: Option<PathBuf>,
    /// On a GPU, leave out the fused kernels (candle's generic kernels only), to compare.
    #[arg(long)]
    unfused: bool,
    /// Check the model on this device: fused against unfused kernels, a batch against single
    /// inputs, and a cached prefix plus the rest against a full pass; prints the largest
    /// differences as JSON.
    #[arg(long)]
    check: bool,
    /// Build a tiny random model, run every CPU mode on it, check they agree; seconds.
    #[arg(long)]
    smoke: bool,
}

#[derive(serde::Deserialize)]
struct Inputs {
    inputs: Vec<Vec<u32>>,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if args.smoke {
        return smoke();
    }
    let dir = args.model.clone().context("--model DIR is needed")?;
    dpa_explorer::model::gpu::set_enabled(!args.unfused);
    let inputs: Vec<Vec<u32>> = match &args.inputs {
        Some(p) => {
            serde_json::from_str::<Inputs>(&std::fs::read_to_string(p)?)
                .with_context(|| format!("reading {}", p.display()))?
                .inputs
        }
        None => args
            .tokens
            .iter()
            .enumerate()
            .map(|(i, &n)| common::token_ids(n, i as u64))
            .collect(),
    };
    let files = ModelFiles::from_dir(&dir)?;
    let opts = LoadOptions {
        device: args.device,
        dtype: args.dtype,
        ..LoadOptions::default()
    };
    let cache = args
        .quant_cache
        .clone()
        .unwrap_or_else(dpa_explorer::assets::quant_cache);
    let t0 = Instant::now();
    let model = RewardModel::load_with_cache(&files, &opts, Some(&cache))?;
    let load_s = t0.elapsed().as_secs_f64();
    let rss_loaded = common::peak_rss();
    let decoder = model.decoder();
    if args.check {
        return check(decoder, &inputs);
    }
    let mut results = Vec::new();
    for ids in &inputs {
        for &b in &args.batch {
            let seqs: Vec<&[u32]> = (0..b).map(|_| ids.as_slice()).collect();
            let run = || -> anyhow::Result<(f64, Vec<f32>)> {
                let t = Instant::now();
                let out = decoder.forward(None, &seqs, false, &|| false)?;
                // Reading the logits waits for the device.
                let logits = out.logits.to_vec2::<f32>()?;
                Ok((t.elapsed().as_secs_f64(), logits[0].clone()))
            };
            run()?;
            let mut times = Vec::with_capacity(args.runs);
            let mut scores = Vec::new();
            for _ in 0..args.runs.max(1) {
                let (t, s) = run()?;
                times.push(t);
                scores = s;
            }
            let mut sorted = times.clone();
            sorted.sort_by(f64::total_cmp);
            results.push(serde_json::json!({
                "tokens": ids.len(),
                "batch": b,
                "median_s": sorted[sorted.len() / 2],
                "min_s": sorted[0],
                "times_s": times,
                "scores": scores,
            }));
        }
    }
    let info = model.info();
    let out = serde_json::json!({
        "engine": "dpa-explorer",
        "mode": info.dtype,
        "requested": args.dtype.name(),
        "device": info.device,
        "load_s": load_s,
        "weight_bytes": decoder.weight_bytes(),
        "peak_rss_after_load": rss_loaded,
        "peak_rss": common::peak_rss(),
        "threads": rayon::current_num_threads(),
        "fused_kernels": !args.unfused,
        "results": results,
    });
    println!("{out}");
    Ok(())
}

fn check(
    decoder: &dpa_explorer::model::mistral::Mistral,
    inputs: &[Vec<u32>],
) -> anyhow::Result<()> {
    use dpa_explorer::model::gpu;
    use dpa_explorer::model::mistral::KvCache;
    let logits = |prefix: Option<&KvCache>, seqs: &[&[u32]]| -> anyhow::Result<Vec<Vec<f32>>> {
        Ok(decoder
            .forward(prefix, seqs, false, &|| false)?
            .logits
            .to_vec2::<f32>()?)
    };
    let max_diff = |a: &[Vec<f32>], b: &[Vec<f32>]| {
        a.iter()
            .flatten()
            .zip(b.iter().flatten())
            .map(|(x, y)| (x - y).abs())
            .fold(0f32, f32::max)
    };
    let mut rows = Vec::new();
    for ids in inputs {
        let one = [ids.as_slice()];
        gpu::set_enabled(false);
        let unfused = logits(None, &one)?;
        gpu::set_enabled(true);
        let fused = logits(None, &one)?;
        // Ragged batch: this input beside a shorter one (right padding).
        let short = &ids[..ids.len() / 2];
        let batch = logits(None, &[ids.as_slice(), short])?;
        let short_alone = logits(None, &[short])?;
        // Prefix of 2/3, then the rest on its cache.
        let cut = ids.len() * 2 / 3;
        let out = decoder.forward(None, &[&ids[..cut]], true, &|| false)?;
        let cache = out.caches.and_then(|c| c.into_iter().next());
        let cache = cache.context("no cache returned")?;
        let resumed = logits(Some(&cache), &[&ids[cut..]])?;
        let scale = unfused
            .iter()
            .flatten()
            .map(|v| v.abs())
            .fold(0f32, f32::max);
        rows.push(serde_json::json!({
            "tokens": ids.len(),
            "max_abs_score": scale,
            "fused_vs_unfused": max_diff(&fused, &unfused),
            "batch_vs_single": max_diff(&batch[..1], &fused)
                .max(max_diff(&batch[1..], &short_alone)),
            "prefix_vs_full": max_diff(&resumed, &fused),
        }));
    }
    println!("{}", serde_json::json!({"check": rows}));
    Ok(())
}

/// Every CPU mode on a tiny random model: runs, agrees with f32, and the quantised cache is
/// read back on a second load.
fn smoke() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let shape = common::Shape::smoke();
    common::write_model(dir.path(), &shape)?;
    let files = ModelFiles::from_dir(dir.path())?;
    let inputs = [common::token_ids(24, 1), common::token_ids(90, 2)];
    let score = |dtype: DTypeChoice| -> anyhow::Result<(Vec<Vec<f32>>, f64, usize, f64)> {
        let opts = LoadOptions {
            device: DeviceChoice::Cpu,
            dtype,
            ..LoadOptions::default()
        };
        let t = Instant::now();
        let model =
            RewardModel::load_with_cache(&files, &opts, Some(&dir.path().join("quantized")))?;
        let load_s = t.elapsed().as_secs_f64();
        let t = Instant::now();
        let mut rows = Vec::new();
        for ids in &inputs {
            let out = model.decoder().forward(None, &[ids], false, &|| false)?;
            rows.push(out.logits.to_vec2::<f32>()?.remove(0));
        }
        Ok((
            rows,
            t.elapsed().as_secs_f64(),
            model.decoder().weight_bytes(),
            load_s,
        ))
    };
    let (reference, ..) = score(DTypeChoice::F32)?;
    let scale = reference
        .iter()
        .flatten()
        .map(|v| v.abs())
        .fold(0f32, f32::max);
    println!("smoke: {shape:?}; max |f32 score| = {scale:.4}");
    println!(
        "{:<6} {:>9} {:>9} {:>12} {:>10}",
        "mode", "load ms", "pass ms", "weights", "max |Δ|"
    );
    let mut failed = Vec::new();
    // Allowed error relative to the largest score: bf16 activations, 8-bit, 4-bit weights.
    for (mode, tol) in [
        (DTypeChoice::F32, 0.0),
        (DTypeChoice::BF16, 0.03),
        (DTypeChoice::Q8_0, 0.05),
        (DTypeChoice::Q4K, 0.35),
        (DTypeChoice::Q4_0, 0.35),
        // Again: read back from the cache this time.
        (DTypeChoice::Q4K, 0.35),
        (DTypeChoice::Q4_0, 0.35),
    ] {
        let (rows, pass_s, bytes, load_s) = score(mode)?;
        let diff = rows
            .iter()
            .flatten()
            .zip(reference.iter().flatten())
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        println!(
            "{:<6} {:>9.1} {:>9.1} {:>12} {:>10.2e}",
            mode.name(),
            load_s * 1e3,
            pass_s * 1e3 / inputs.len() as f64,
            bytes,
            diff
        );
        if diff > tol * scale {
            failed.push(format!("{}: {diff} > {}", mode.name(), tol * scale));
        }
    }
    let cached = std::fs::read_dir(dir.path().join("quantized"))?.count();
    anyhow::ensure!(
        cached == 4,
        "expected 4 cache files (bf16, q8_0, q4_k, q4_0), found {cached}"
    );
    anyhow::ensure!(failed.is_empty(), "modes disagree with f32: {failed:?}");
    println!("smoke: ok");
    Ok(())
}
