//! Times dpa-explorer's forward pass on fixed token ids, one model in one mode per process (so
//! that its peak memory is that mode's own), and prints one JSON object. Driven by
//! `scripts/bench_vs_pytorch.py`, which times transformers on the same files and inputs.
//!
//! ```text
//! bench_model --model DIR --dtype q8_0 --inputs inputs.json --runs 5
//! bench_model --model DIR --dtype bf16 --tokens 364 --runs 3 --append 5 --append-runs 15 --cold
//!                            # also: one word appended to a cached input, the first pass after
//!                            # the load, read bandwidth and the weight-reading floor
//! bench_model --model DIR --dtype q4_0 --load-only   # the load alone (first start: quantising)
//! bench_model --smoke        # tiny random model, every CPU mode, a few seconds
//! ```

#[path = "../benches/common/mod.rs"]
mod common;

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use clap::Parser;
use dpa_explorer::model::mistral::{KvCache, Mistral};
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
    /// Load the model, report the load and exit, with no pass.
    #[arg(long)]
    load_only: bool,
    /// The explorer's as-you-type path: each input's warm-up pass keeps its key/value cache,
    /// then this many further tokens are scored against that cache, `--runs` times after one
    /// warm-up (0: off). Implies `--bandwidth`.
    #[arg(long, default_value_t = 0)]
    append: usize,
    /// Timed appends (after one warm-up), when not `--runs`: an append costs a fraction of a
    /// pass, and on a shared machine a median needs more than a few.
    #[arg(long)]
    append_runs: Option<usize>,
    /// Report the very first pass after the load (the first input's warm-up pass, timed, with
    /// any wait for the weights' background check) as `cold_s`: what a user waits for while
    /// the weights are first touched.
    #[arg(long)]
    cold: bool,
    /// Measure read bandwidth with every thread, after the passes, and report the floor of a
    /// few-token pass: the weights it reads once over that bandwidth.
    #[arg(long)]
    bandwidth: bool,
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
    let loaded = Instant::now();
    let rss_loaded = common::peak_rss();
    let decoder = model.decoder();
    if args.check {
        return check(decoder, &inputs);
    }
    let info = model.info();
    // What every report says of the model and its load.
    let mut out = serde_json::json!({
        "engine": "dpa-explorer",
        "mode": info.dtype,
        "requested": args.dtype.name(),
        "device": info.device,
        "load_s": load_s,
        "weight_bytes": decoder.weight_bytes(),
        "peak_rss_after_load": rss_loaded,
    });
    if args.load_only {
        // The background check of the weights used in place, which a first score waits for.
        model
            .integrity()
            .wait()
            .map_err(|d| anyhow::anyhow!("damaged: {d:?}"))?;
        out["check_s"] = loaded.elapsed().as_secs_f64().into();
        out["peak_rss"] = common::peak_rss().into();
        out["results"] = serde_json::json!([]);
        println!("{out}");
        return Ok(());
    }
    // The appended tokens: deterministic ordinary ids (no BOS), the same for every input.
    let extra = common::token_ids(args.append + 1, 7)[1..].to_vec();
    let mut cold = None;
    let mut results = Vec::new();
    for ids in &inputs {
        for &b in &args.batch {
            let seqs: Vec<&[u32]> = (0..b).map(|_| ids.as_slice()).collect();
            let run = |keep: bool| -> anyhow::Result<(f64, Vec<f32>, Option<KvCache>)> {
                let t = Instant::now();
                let out = decoder.forward(None, &seqs, keep, &|| false)?;
                // Reading the logits waits for the device.
                let logits = out.logits.to_vec2::<f32>()?;
                let cache = out.caches.and_then(|c| c.into_iter().next());
                Ok((t.elapsed().as_secs_f64(), logits[0].clone(), cache))
            };
            // The warm-up; with --append it keeps its cache, as the explorer's scoring does.
            let started = Instant::now();
            let (first_s, _, cache) = run(args.append > 0)?;
            if cold.is_none() {
                // No score is shown before the weights used in place pass their check.
                model
                    .integrity()
                    .wait()
                    .map_err(|d| anyhow::anyhow!("damaged: {d:?}"))?;
                let shown_s = started.elapsed().as_secs_f64();
                out["cold_check_wait_s"] = (shown_s - first_s).into();
                cold = Some((shown_s, ids.len(), b));
            }
            let mut times = Vec::with_capacity(args.runs);
            let mut scores = Vec::new();
            for _ in 0..args.runs.max(1) {
                let (t, s, _) = run(false)?;
                times.push(t);
                scores = s;
            }
            let (median_s, min_s) = median_min(&times);
            let mut result = serde_json::json!({
                "tokens": ids.len(),
                "batch": b,
                "median_s": median_s,
                "min_s": min_s,
                "times_s": times,
                "scores": scores,
            });
            if let Some(cache) = cache {
                let runs = args.append_runs.unwrap_or(args.runs);
                let times = time_append(decoder, &cache, &extra, runs)?;
                let (median_s, min_s) = median_min(&times);
                result["append_tokens"] = extra.len().into();
                result["append_median_s"] = median_s.into();
                result["append_min_s"] = min_s.into();
                result["append_times_s"] = times.into();
                result["cache_bytes"] = cache.bytes().into();
            }
            results.push(result);
        }
    }
    // Read before the bandwidth buffer adds its own gigabyte.
    let peak_rss = common::peak_rss();
    out["peak_rss"] = peak_rss.into();
    out["threads"] = rayon::current_num_threads().into();
    out["fused_kernels"] = (!args.unfused).into();
    out["results"] = results.into();
    if let (true, Some((s, tokens, batch))) = (args.cold, cold) {
        out["cold_s"] = s.into();
        out["cold_tokens"] = tokens.into();
        out["cold_batch"] = batch.into();
    }
    if args.bandwidth || args.append > 0 {
        let gbs = read_bandwidth();
        // A pass over a few tokens reads every projection, norm and the head once, and only
        // its tokens' rows of the embedding table.
        let bytes = decoder.pass_weight_bytes();
        out["bandwidth_gbs"] = gbs.into();
        out["pass_weight_bytes"] = bytes.into();
        out["floor_s"] = (bytes as f64 / (gbs * 1e9)).into();
    }
    println!("{out}");
    Ok(())
}

/// The median (the upper one of an even count) and the smallest of `times`.
fn median_min(times: &[f64]) -> (f64, f64) {
    let mut sorted = times.to_vec();
    sorted.sort_by(f64::total_cmp);
    (sorted[sorted.len() / 2], sorted[0])
}

/// Seconds of scoring `extra` against `cache`, keeping the extended cache as the explorer does
/// for the next word: `runs` times (at least once) after one warm-up, each from the same cache.
fn time_append(
    decoder: &Mistral,
    cache: &KvCache,
    extra: &[u32],
    runs: usize,
) -> anyhow::Result<Vec<f64>> {
    let once = || -> anyhow::Result<f64> {
        let t = Instant::now();
        let out = decoder.forward(Some(cache), &[extra], true, &|| false)?;
        out.logits.to_vec2::<f32>()?;
        Ok(t.elapsed().as_secs_f64())
    };
    once()?;
    (0..runs.max(1)).map(|_| once()).collect()
}

/// Read bandwidth in GB/s: every rayon thread sums its own part of a 1 GiB buffer, far larger
/// than the caches; the best of 20 reads (a busy machine slows some of them).
fn read_bandwidth() -> f64 {
    use rayon::prelude::*;
    const BYTES: usize = 1 << 30;
    // Non-zero, so that every page is really written (and backed) before the reads.
    let buf = vec![1u64; BYTES / 8];
    let part = buf.len().div_ceil(rayon::current_num_threads().max(1));
    let mut best = f64::INFINITY;
    for _ in 0..20 {
        let t = Instant::now();
        let sum: u64 = buf
            .par_chunks(part)
            .map(|c| c.iter().fold(0u64, |a, &x| a.wrapping_add(x)))
            .sum();
        best = best.min(t.elapsed().as_secs_f64());
        assert_eq!(std::hint::black_box(sum), buf.len() as u64);
    }
    BYTES as f64 / best / 1e9
}

fn check(decoder: &Mistral, inputs: &[Vec<u32>]) -> anyhow::Result<()> {
    use dpa_explorer::model::gpu;
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
    // Cache files only: the kept kernel choices lie beside them.
    let mut cached = 0;
    for entry in std::fs::read_dir(dir.path().join("quantized"))? {
        cached += usize::from(entry?.path().extension() == Some("gguf".as_ref()));
    }
    anyhow::ensure!(
        cached == 4,
        "expected 4 cache files (bf16, q8_0, q4_k, q4_0), found {cached}"
    );
    anyhow::ensure!(failed.is_empty(), "modes disagree with f32: {failed:?}");
    println!("smoke: ok");
    Ok(())
}
