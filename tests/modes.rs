//! The CPU modes beyond f32 (bf16 kernels, quantised q8_0 / q4_0) on the parity fixtures:
//! each stays close to transformers' f32 scores, and quantised weights are kept on disk and
//! read back on the next load, with a damaged cache file simply made anew.

mod common;

use std::path::Path;

use common::*;
use dpa_explorer::model::{DTypeChoice, RewardModel};

/// Max |score − transformers f32 score| over a fixture's cases, and the largest |score|.
fn worst(model: &std::sync::Arc<RewardModel>, dir: &Path) -> (f32, f32) {
    let reference = reference(dir);
    let mut worst = 0f32;
    let mut scale = 0f32;
    for case in &reference.cases {
        let got = model
            .score(&[(&case.prompt, &case.response)])
            .unwrap()
            .remove(0);
        worst = worst.max(max_abs_diff(&got.scores, &case.logits_f32));
        scale = case.logits_f32.iter().fold(scale, |a, v| a.max(v.abs()));
    }
    (worst, scale)
}

/// Whether bf16 runs on this crate's packed kernel here (AVX2 or better), which is cached.
fn bf16_packed() -> bool {
    use dpa_explorer::model::kernels::{bf16::PackedBf16, Isa};
    PackedBf16::best_isa() != Isa::Scalar
}

#[test]
fn every_cpu_mode_stays_close_to_transformers_f32() {
    let cache = tempfile::tempdir().unwrap();
    let mut failures = Vec::new();
    for dir in [fixture("tiny-mha"), fixture("tiny-gqa-window"), demo()] {
        let name = dir.file_name().unwrap().to_string_lossy().to_string();
        let (f32_err, scale) = worst(&load_mode(&dir, DTypeChoice::F32, cache.path()), &dir);
        assert!(f32_err <= 1e-3, "f32 drifted: {f32_err}");
        let torch_bf16 = reference(&dir)
            .cases
            .iter()
            .filter(|c| !c.logits_bf16.is_empty())
            .map(|c| max_abs_diff(&c.logits_bf16, &c.logits_f32))
            .fold(0f32, f32::max);
        eprintln!("{name}: transformers bf16: max |score - f32| = {torch_bf16:.4} (largest |score| {scale:.2})");
        // Bounds relative to the largest score. These tiny random models amplify errors
        // (transformers' own bf16 is off by ~1.5% here) and their width of 32 gives one block
        // per row, the worst case for 4-bit blocks; what each mode measured is printed.
        for (mode, tol) in [
            (DTypeChoice::BF16, 0.01),
            (DTypeChoice::Q8_0, 0.04),
            (DTypeChoice::Q4K, 0.45),
            (DTypeChoice::Q4_0, 0.45),
        ] {
            let model = load_mode(&dir, mode, cache.path());
            let (err, _) = worst(&model, &dir);
            eprintln!(
                "{name}: {} ({}): max |score - transformers f32| = {err:.4}",
                mode.name(),
                model.info().dtype
            );
            if err > tol * scale {
                failures.push(format!("{name} {}: {err} > {tol} × {scale}", mode.name()));
            }
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

#[test]
fn quantised_weights_are_kept_and_read_back() {
    let cache = tempfile::tempdir().unwrap();
    let dir = fixture("tiny-gqa-window");
    let case = &reference(&dir).cases[0];
    let pair = [(case.prompt.as_str(), case.response.as_str())];
    let first = load_mode(&dir, DTypeChoice::Q8_0, cache.path())
        .score(&pair)
        .unwrap();
    let files: Vec<_> = std::fs::read_dir(cache.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1, "one cache file and no leftovers: {files:?}");
    assert!(files[0].to_string_lossy().ends_with("-q8_0.gguf"));
    let modified = std::fs::metadata(&files[0]).unwrap().modified().unwrap();

    let second = load_mode(&dir, DTypeChoice::Q8_0, cache.path())
        .score(&pair)
        .unwrap();
    assert_eq!(first[0].scores, second[0].scores, "read back exactly");
    assert_eq!(
        std::fs::metadata(&files[0]).unwrap().modified().unwrap(),
        modified,
        "a warm cache is not rewritten"
    );

    // A damaged file is not trusted: the weights are made again and the file replaced.
    let len = std::fs::metadata(&files[0]).unwrap().len();
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(&files[0])
        .unwrap();
    f.set_len(len / 2).unwrap();
    drop(f);
    let third = load_mode(&dir, DTypeChoice::Q8_0, cache.path())
        .score(&pair)
        .unwrap();
    assert_eq!(first[0].scores, third[0].scores);
    assert_eq!(
        std::fs::metadata(&files[0]).unwrap().len(),
        len,
        "file made anew"
    );
}

/// Cache files of an older format can never be read again: the next file written removes
/// them (gigabytes each for a 7B). Other files in the directory stay.
#[test]
fn cache_files_of_an_older_format_are_removed() {
    let cache = tempfile::tempdir().unwrap();
    let dir = fixture("tiny-gqa-window");
    load_mode(&dir, DTypeChoice::Q4_0, cache.path());
    let made = std::fs::read_dir(cache.path())
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let mut bytes = std::fs::read(&made).unwrap();
    std::fs::remove_file(&made).unwrap();
    // The same file as an older build wrote it: its format number one less.
    let key = b"dpa_explorer.cache_format";
    let at = bytes.windows(key.len()).position(|w| w == key).unwrap() + key.len() + 4;
    let format = u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap());
    bytes[at..at + 4].copy_from_slice(&(format - 1).to_le_bytes());
    let old = cache.path().join("0123456789abcdef-q4_0.gguf");
    std::fs::write(&old, &bytes).unwrap();
    let others = [
        cache.path().join("notes.gguf"),
        cache.path().join("fedcba9876543210-q8_0.gguf"),
    ];
    for o in &others {
        std::fs::write(o, b"not a cache file").unwrap();
    }
    load_mode(&dir, DTypeChoice::Q8_0, cache.path());
    assert!(!old.exists(), "the older format's file is removed");
    for o in &others {
        assert!(o.exists(), "{} is kept", o.display());
    }
    assert_eq!(std::fs::read_dir(cache.path()).unwrap().count(), 3);
}

#[test]
fn another_checkpoint_gets_its_own_cache_file() {
    let cache = tempfile::tempdir().unwrap();
    load_mode(&fixture("tiny-mha"), DTypeChoice::Q4_0, cache.path());
    load_mode(&fixture("tiny-gqa-window"), DTypeChoice::Q4_0, cache.path());
    load_mode(&fixture("tiny-gqa-window"), DTypeChoice::Q8_0, cache.path());
    assert_eq!(std::fs::read_dir(cache.path()).unwrap().count(), 3);
}

#[test]
fn mode_names_parse_and_show() {
    for (text, mode) in [
        ("q8_0", DTypeChoice::Q8_0),
        ("Q4_0", DTypeChoice::Q4_0),
        ("q4_k", DTypeChoice::Q4K),
        // Asking for 4 bits gets the 4-bit mode that keeps the ranking best.
        ("q4", DTypeChoice::Q4K),
        ("bf16", DTypeChoice::BF16),
        ("Q12", DTypeChoice::Q12),
    ] {
        assert_eq!(text.parse::<DTypeChoice>().unwrap(), mode);
        assert_eq!(mode.name().parse::<DTypeChoice>().unwrap(), mode);
    }
    let err = "q3".parse::<DTypeChoice>().unwrap_err();
    assert!(err.contains("q8_0") && err.contains("q4_0"), "{err}");
    let model = load_mode(
        &fixture("tiny-mha"),
        DTypeChoice::BF16,
        tempfile::tempdir().unwrap().path(),
    );
    assert!(
        model.info().dtype.starts_with("bf16"),
        "{}",
        model.info().dtype
    );
}

#[test]
fn modes_below_their_rank_bar_say_so_with_every_result() {
    let cache = tempfile::tempdir().unwrap();
    let below: Vec<DTypeChoice> = DTypeChoice::CPU_MODES
        .into_iter()
        .filter(|m| !m.meets_rank_bar())
        .collect();
    assert!(below.contains(&DTypeChoice::Q4_0));
    assert!(below.contains(&DTypeChoice::Q4K));
    // On this crate's kernels (16-bit activations) q8_0 keeps the ranking; candle's, with 8-bit
    // activations, does not.
    assert_eq!(
        below.contains(&DTypeChoice::Q8_0),
        !dpa_explorer::model::kernels::int8::own_kernel_available()
    );
    for mode in below {
        let model = load_mode(&fixture("tiny-mha"), mode, cache.path());
        let says = |w: &String| w.contains(mode.name()) && w.contains("may not keep the ranking");
        assert!(model.warnings().iter().any(says), "{:?}", model.warnings());
        let s = model.score(&[("p", "r")]).unwrap().remove(0);
        assert!(s.warnings.iter().any(says), "travels with each result");
    }
    for mode in DTypeChoice::CPU_MODES
        .into_iter()
        .filter(|m| m.meets_rank_bar())
    {
        let model = load_mode(&fixture("tiny-mha"), mode, cache.path());
        assert!(
            model.warnings().is_empty(),
            "{mode:?}: {:?}",
            model.warnings()
        );
    }
}

#[test]
fn a_second_start_warns_only_when_true_in_every_mode() {
    let cache = tempfile::tempdir().unwrap();
    let dir = fixture("tiny-gqa-window");
    for mode in DTypeChoice::CPU_MODES {
        for start in ["first", "second"] {
            let model = load_mode(&dir, mode, cache.path());
            let false_warnings: Vec<_> = model
                .warnings()
                .iter()
                .filter(|w| w.contains("does not use"))
                .collect();
            assert!(
                false_warnings.is_empty(),
                "{} {start} start: {false_warnings:?}",
                mode.name()
            );
        }
    }
    // Beside them, bf16's kernel choice is kept (`kernel_choices.rs`).
    let cache_files = std::fs::read_dir(cache.path())
        .unwrap()
        .filter(|e| e.as_ref().unwrap().path().extension() == Some("gguf".as_ref()))
        .count();
    assert_eq!(
        cache_files,
        4 + usize::from(bf16_packed()),
        "the second starts of bf16, q12, q8_0, q4_k and q4_0 read their cache files"
    );
}

/// A warm start uses the quantised weights where they lie in the mapped cache file: nothing
/// is copied (14.2: start in seconds), and the scores are the first start's, bit for bit.
#[test]
fn a_warm_start_uses_the_cached_weights_in_place() {
    let cache = tempfile::tempdir().unwrap();
    let dir = fixture("tiny-gqa-window");
    let case = &reference(&dir).cases[0];
    let pair = [(case.prompt.as_str(), case.response.as_str())];
    // q8_0 and q4_0 run on this crate's kernels only where AVX512-VNNI or AVX2 is; q4_k and
    // bf16 everywhere.
    let vnni = dpa_explorer::model::kernels::int8::own_kernel_available();
    for (mode, own) in [
        (DTypeChoice::BF16, bf16_packed()),
        (DTypeChoice::Q12, true),
        (DTypeChoice::Q8_0, vnni),
        (DTypeChoice::Q4K, true),
        (DTypeChoice::Q4_0, vnni),
    ] {
        let first = load_mode(&dir, mode, cache.path());
        assert_eq!(
            first.decoder().mapped_bytes(),
            0,
            "{mode:?}: made, not mapped"
        );
        let second = load_mode(&dir, mode, cache.path());
        let mapped = second.decoder().mapped_bytes();
        if own {
            assert!(mapped > 0, "{mode:?}: the warm start copied its weights");
        } else {
            assert_eq!(
                mapped, 0,
                "{mode:?}: candle's own layout is read, not mapped"
            );
        }
        assert_eq!(
            first.score(&pair).unwrap()[0].scores,
            second.score(&pair).unwrap()[0].scores,
            "{mode:?}: mapped weights score as made ones"
        );
    }
}

/// A load says how far it has come, layer by layer, and what it is doing: reading the
/// checkpoint, quantising it (a first start) or reading the weights an earlier start kept.
#[test]
fn loads_report_each_layer_and_what_they_do() {
    use dpa_explorer::model::{DeviceChoice, LoadOptions, LoadPhase, ModelFiles, RewardModel};
    use std::cell::RefCell;
    let cache = tempfile::tempdir().unwrap();
    let dir = fixture("tiny-gqa-window");
    let files = ModelFiles::from_dir(&dir).unwrap();
    let load = |dtype| {
        let seen = RefCell::new(Vec::new());
        let opts = LoadOptions {
            device: DeviceChoice::Cpu,
            dtype,
            ..LoadOptions::default()
        };
        let model = RewardModel::load_with_progress(&files, &opts, Some(cache.path()), &|p| {
            seen.borrow_mut().push(p)
        })
        .unwrap();
        let layers = model.info().layers;
        let seen = seen.into_inner();
        let steps: Vec<usize> = seen.iter().map(|p| p.layer).collect();
        assert_eq!(steps, (0..=layers).collect::<Vec<_>>());
        assert!(seen
            .iter()
            .all(|p| p.layers == layers && p.phase == seen[0].phase));
        seen[0].phase
    };
    assert_eq!(load(DTypeChoice::F32), LoadPhase::Reading);
    assert_eq!(load(DTypeChoice::Q8_0), LoadPhase::Quantising);
    assert_eq!(load(DTypeChoice::Q8_0), LoadPhase::ReadingCache);
    assert_eq!(load(DTypeChoice::Q12), LoadPhase::Quantising);
    assert_eq!(load(DTypeChoice::Q12), LoadPhase::ReadingCache);
    // bf16 packs (no quantising) and keeps the packed form too.
    if bf16_packed() {
        assert_eq!(load(DTypeChoice::BF16), LoadPhase::Reading);
        assert_eq!(load(DTypeChoice::BF16), LoadPhase::ReadingCache);
    }
}

/// `q8_0` holds its first and last decoder layers in `q12`, kept in its cache file beside the
/// 8-bit middle layers: a warm start finds both there, in place, and scores as the first start.
#[test]
fn q8_0_keeps_its_edge_layers_in_q12() {
    use candle_core::quantized::{gguf_file, GgmlDType};
    use dpa_explorer::model::kernels::int8::own_kernel_available;
    if !own_kernel_available() {
        eprintln!("skipped: q8_0 runs on candle's kernel here, which has no q12");
        return;
    }
    // tiny-mha's two layers twice over: four, so there is a middle between the edges.
    let mut tensors = fixture_tensors();
    let copies: Vec<_> = tensors
        .iter()
        .filter_map(|(k, v)| {
            let rest = k.strip_prefix("model.layers.")?;
            let (i, tail) = rest.split_once('.')?;
            let i: usize = i.parse().ok()?;
            Some((format!("model.layers.{}.{tail}", i + 2), v.clone()))
        })
        .collect();
    tensors.extend(copies);
    let dir = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(
        fixture("tiny-mha").join("tokenizer.json"),
        dir.path().join("tokenizer.json"),
    )
    .unwrap();
    let mut config: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(fixture("tiny-mha").join("config.json")).unwrap(),
    )
    .unwrap();
    config["num_hidden_layers"] = 4.into();
    std::fs::write(dir.path().join("config.json"), config.to_string()).unwrap();
    write_tensors(&tensors, &dir.path().join("model.safetensors"));

    let cases = reference(&fixture("tiny-mha")).cases;
    let pairs: Vec<(&str, &str)> = cases
        .iter()
        .map(|c| (c.prompt.as_str(), c.response.as_str()))
        .collect();
    let scores = |m: &std::sync::Arc<RewardModel>| -> Vec<Vec<f32>> {
        m.score(&pairs)
            .unwrap()
            .into_iter()
            .map(|s| s.scores)
            .collect()
    };
    let cache = tempfile::tempdir().unwrap();
    let exact = scores(&load_mode(dir.path(), DTypeChoice::F32, cache.path()));
    let first = load_mode(dir.path(), DTypeChoice::Q8_0, cache.path());
    let only_accuracy = |m: &RewardModel| {
        m.warnings()
            .iter()
            .all(|w| w.contains("may not keep the ranking"))
    };
    assert!(only_accuracy(&first), "{:?}", first.warnings());
    let made = scores(&first);
    let scale = exact.iter().flatten().fold(0f32, |a, v| a.max(v.abs()));
    let err = exact
        .iter()
        .zip(&made)
        .map(|(a, b)| max_abs_diff(a, b))
        .fold(0f32, f32::max);
    assert!(
        err <= 0.04 * scale,
        "q8_0 off by {err} (largest score {scale})"
    );

    let files: Vec<_> = std::fs::read_dir(cache.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(
        files.len(),
        1,
        "one cache file holds both formats: {files:?}"
    );
    let mut file = std::fs::File::open(&files[0]).unwrap();
    let header = gguf_file::Content::read(&mut file).unwrap();
    let mut held: Vec<(usize, GgmlDType)> = header
        .tensor_infos
        .iter()
        .map(|(key, info)| {
            let layer = key["model.layers.".len()..].split('.').next().unwrap();
            (layer.parse().unwrap(), info.ggml_dtype)
        })
        .collect();
    held.sort_by_key(|(layer, _)| *layer);
    assert_eq!(
        held.len(),
        4 * 4,
        "q/k/v, o, gate/up and down of each layer"
    );
    for (layer, dtype) in held {
        // q12 is kept under GGML's F16 type id.
        let want = if layer == 0 || layer == 3 {
            GgmlDType::F16
        } else {
            GgmlDType::Q8_0
        };
        assert_eq!(dtype, want, "layer {layer}");
    }

    let modified = std::fs::metadata(&files[0]).unwrap().modified().unwrap();
    let second = load_mode(dir.path(), DTypeChoice::Q8_0, cache.path());
    assert!(second.decoder().mapped_bytes() > 0, "the warm start copied");
    assert!(only_accuracy(&second), "{:?}", second.warnings());
    assert_eq!(scores(&second), made, "mapped weights score as made ones");
    assert_eq!(
        std::fs::metadata(&files[0]).unwrap().modified().unwrap(),
        modified,
        "the warm start found everything it needed: nothing made again"
    );
}
