//! Faults: crafted model directories. Each case is a copy of a tiny fixture with one file
//! replaced; the load must refuse it with a message naming the bad value or file, and must
//! neither panic, abort, block nor allocate what the files do not back.

use std::path::Path;
use std::time::Duration;

use dpa_explorer::model::{
    DTypeChoice, DeviceChoice, LoadOptions, ModelError, ModelFiles, RewardModel,
};
use safetensors::Dtype;
use serde_json::{json, Value};

use crate::common::{
    edited_checkpoint, fixture, model_copy, rewrite_json, Scoring, Tensors, SHARDS,
};

mod fuzz;
mod pickle;

fn load_with(dir: &Path, dtype: DTypeChoice) -> Result<RewardModel, String> {
    let files = ModelFiles::from_dir(dir).map_err(|e| e.to_string())?;
    let opts = LoadOptions {
        device: DeviceChoice::Cpu,
        dtype,
        max_tokens: 512,
    };
    RewardModel::load_with_cache(&files, &opts, None).map_err(|e| e.to_string())
}

/// The refusal of loading `dir`, on another thread so that a load that blocks (on a FIFO) fails
/// the test instead of hanging it.
fn refusal_with(dir: &Path, dtype: DTypeChoice) -> String {
    let (tx, rx) = std::sync::mpsc::channel();
    let d = dir.to_path_buf();
    std::thread::spawn(move || {
        let _ = tx.send(load_with(&d, dtype).map(|_| ()));
    });
    match rx.recv_timeout(Duration::from_secs(60)) {
        Ok(Ok(())) => panic!("{} loaded", dir.display()),
        Ok(Err(e)) => e,
        Err(_) => panic!("loading {} blocked or panicked", dir.display()),
    }
}

fn refusal(dir: &Path) -> String {
    refusal_with(dir, DTypeChoice::F32)
}

/// tiny-mha with its config.json replaced by `edit` applied to the original.
fn with_config(edit: impl FnOnce(&mut Value)) -> tempfile::TempDir {
    model_copy(&fixture("tiny-mha"), |d| {
        rewrite_json(&d.join("config.json"), edit)
    })
}

fn set(cfg: &mut Value, key: &str, v: Value) {
    cfg.as_object_mut().unwrap().insert(key.into(), v);
}

fn bf16_at(t: &mut Tensors, name: &str, index: usize, value: f32) {
    let (dtype, _, data) = t.get_mut(name).unwrap();
    assert_eq!(*dtype, Dtype::BF16, "the fixture is stored in bf16");
    data[2 * index..2 * index + 2].copy_from_slice(&half::bf16::from_f32(value).to_le_bytes());
}

#[test]
fn config_values_that_cannot_give_finite_scores_are_refused_naming_them() {
    let rope = |t: Value| json!({"rope_theta": t, "rope_type": "default"});
    let cases: Vec<(&str, Value, &str)> = vec![
        ("rope_parameters", rope(json!(0.0)), "rope_theta is 0"),
        (
            "rope_parameters",
            rope(json!(-10000.0)),
            "rope_theta is -10000",
        ),
        (
            "rope_parameters",
            rope(json!(1e-60)),
            "e-60; it must be a positive finite number",
        ),
        (
            "rope_parameters",
            rope(json!(1e300)),
            "e300; it must be a positive finite number",
        ),
        ("rms_norm_eps", json!(0.0), "rms_norm_eps is 0"),
        ("rms_norm_eps", json!(-1e-5), "rms_norm_eps is -1e-5"),
        ("rms_norm_eps", json!(1e-50), "e-5"),
        (
            "rms_norm_eps",
            json!(1e-50),
            "a positive number that f32 can hold",
        ),
        ("sliding_window", json!(0), "sliding_window is 0"),
        ("head_dim", json!(0), "head_dim (0) must be positive"),
        ("intermediate_size", json!(0), "intermediate_size is 0"),
        ("vocab_size", json!(0), "vocab_size is 0"),
        (
            "max_position_embeddings",
            json!(0),
            "max_position_embeddings is 0",
        ),
    ];
    for (key, value, expect) in cases {
        let dir = with_config(|c| set(c, key, value.clone()));
        let e = refusal(dir.path());
        assert!(e.starts_with("bad config "), "{key}={value}: {e}");
        assert!(e.contains(expect), "{key}={value}: {e}");
    }
    // Positive, but with 64-wide heads the fastest rotary frequency times 32768 positions
    // overflows f32.
    let dir = with_config(|c| {
        set(c, "head_dim", json!(64));
        set(c, "rope_parameters", rope(json!(1e-38)));
    });
    let e = refusal(dir.path());
    assert!(
        e.contains(
            "rope_theta is 1e-38: with max_position_embeddings 32768 the rotary angles overflow"
        ),
        "{e}"
    );
}

#[test]
fn a_pad_or_bos_token_outside_the_vocabulary_is_refused_at_load() {
    for (key, expect) in [
        (
            "pad_token_id",
            "pad_token_id 32001 is outside the vocabulary of 32001 entries",
        ),
        (
            "bos_token_id",
            "bos_token_id 32001 is outside the vocabulary of 32001 entries",
        ),
    ] {
        let dir = with_config(|c| set(c, key, json!(32001)));
        let e = refusal(dir.path());
        assert!(e.contains(expect), "{e}");
    }
}

#[test]
fn crafted_sizes_are_refused_naming_the_value_without_aborting() {
    let two_layers = "the checkpoint has 2 layer(s), model.layers.0 to model.layers.1";
    for (key, value, expect) in [
        (
            "num_hidden_layers",
            json!(1_000_000_000u64),
            format!("config.json does not match the checkpoint: num_hidden_layers is 1000000000 but {two_layers}"),
        ),
        (
            "num_hidden_layers",
            json!(1u64 << 62),
            "more parameters than can be counted (num_hidden_layers 4611686018427387904".into(),
        ),
        (
            "num_hidden_layers",
            json!(1),
            format!("num_hidden_layers is 1 but {two_layers}"),
        ),
        // 4 × (2^62 + 8) wraps to 32, the real q_proj size.
        (
            "head_dim",
            json!((1u64 << 62) + 8),
            "num_attention_heads × head_dim (4 × 4611686018427387912) is too large".into(),
        ),
        (
            "vocab_size",
            json!(1u64 << 62),
            "vocab_size × hidden_size (4611686018427387904 × 32) is too large".into(),
        ),
        (
            "intermediate_size",
            json!(u64::MAX),
            "intermediate_size × hidden_size (18446744073709551615 × 32) is too large".into(),
        ),
    ] {
        let dir = with_config(|c| set(c, key, value.clone()));
        let e = refusal(dir.path());
        assert!(e.contains(&expect), "{key}={value}: {e}");
    }
    // A huge label count would size the label table before any weight is read.
    let dir = with_config(|c| {
        c.as_object_mut().unwrap().remove("id2label");
        set(c, "num_labels", json!(1u64 << 40));
    });
    let e = refusal(dir.path());
    assert!(e.contains("num_labels is 1099511627776"), "{e}");
}

#[test]
fn a_model_larger_than_memory_and_swap_is_refused_before_loading() {
    use candle_core::Device;
    use dpa_explorer::model::{check_fits, DTypeChoice};
    let gib = 1u64 << 30;
    let seven_b = 7_241_732_096u64;
    let f32_dense = DTypeChoice::F32.plan(&Device::Cpu);
    let e = check_fits(seven_b, f32_dense, 32, "f32", Some(16 * gib))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("7241732096 parameters need about 27.0 GiB as f32")
            && e.contains("16.0 GiB of memory and swap"),
        "{e}"
    );
    assert!(check_fits(seven_b, f32_dense, 32, "f32", Some(32 * gib)).is_ok());
    let q4 = DTypeChoice::Q4_0.plan(&Device::Cpu);
    assert!(check_fits(seven_b, q4, 32, "q4_0", Some(16 * gib)).is_ok());
    assert!(check_fits(u64::MAX, f32_dense, 32, "f32", None).is_ok());
    // q8_0's edges in q12 count: 7.6 GiB, not the 7.2 GiB of all q8_0.
    let q8 = DTypeChoice::Q8_0.plan(&Device::Cpu);
    let e = check_fits(seven_b, q8, 32, "q8_0", Some(4 * gib))
        .unwrap_err()
        .to_string();
    let want = if dpa_explorer::model::kernels::int8::own_kernel_available() {
        "need about 7.6 GiB"
    } else {
        "need about 7.2 GiB"
    };
    assert!(e.contains(want), "{e}");
}

#[test]
fn non_finite_weights_are_refused_naming_the_tensor() {
    let name = "model.layers.1.mlp.up_proj.weight";
    for (value, what) in [(f32::NAN, "NaN"), (f32::NEG_INFINITY, "-inf")] {
        let dir = edited_checkpoint(|t| bf16_at(t, name, 5, value));
        let e = refusal(dir.path());
        assert_eq!(
            e,
            format!(
                "bad checkpoint {}: tensor `{name}` holds 1 NaN or infinite value(s) (the first, \
                 element 5, is {what}); the checkpoint is damaged",
                dir.path().join("model.safetensors").display()
            )
        );
    }
    // The same in the embedding table, which is read as it is stored.
    let dir = edited_checkpoint(|t| bf16_at(t, "model.embed_tokens.weight", 100, f32::NAN));
    assert!(refusal(dir.path()).contains("tensor `model.embed_tokens.weight` holds 1 NaN"));
    // And in every quantised mode, which reads the weights as stored.
    let dir = edited_checkpoint(|t| bf16_at(t, name, 7, f32::INFINITY));
    for mode in [DTypeChoice::Q8_0, DTypeChoice::BF16] {
        let e = refusal_with(dir.path(), mode);
        assert!(e.contains(&format!("tensor `{name}` holds 1 NaN")), "{e}");
    }
}

#[test]
fn a_weight_too_large_for_f16_is_refused_when_loading_as_f16_only() {
    let name = "model.layers.0.self_attn.o_proj.weight";
    let dir = edited_checkpoint(|t| bf16_at(t, name, 0, 1e5));
    let e = refusal_with(dir.path(), DTypeChoice::F16);
    assert!(
        e.contains(&format!(
            "tensor `{name}` holds values up to 9.984e4, beyond what f16 can hold (±6.5504e4)"
        )),
        "{e}"
    );
    // Finite as stored: f32 holds it, and the model scores finitely.
    let model = std::sync::Arc::new(load_with(dir.path(), DTypeChoice::F32).unwrap());
    let scored = model.score(&[("Hello", "Hi")]).unwrap();
    assert!(scored[0].scores.iter().all(|s| s.is_finite()));
}

#[test]
fn an_index_naming_shards_outside_the_model_directory_is_refused() {
    let outside = tempfile::tempdir().unwrap();
    std::fs::copy(
        fixture("tiny-mha").join(SHARDS[1]),
        outside.path().join("x.safetensors"),
    )
    .unwrap();
    let escape = format!(
        "../{}/x.safetensors",
        outside.path().file_name().unwrap().to_str().unwrap()
    );
    for bad in [
        escape.as_str(),
        "/etc/passwd",
        "sub/../../x.safetensors",
        "./model-00002-of-00002.safetensors",
        "..\\x.safetensors",
        "",
    ] {
        let dir = model_copy(&fixture("tiny-mha"), |d| {
            let index = d.join("model.safetensors.index.json");
            let text = std::fs::read_to_string(&index).unwrap();
            let mut v: Value = serde_json::from_str(&text).unwrap();
            v["weight_map"]["model.norm.weight"] = json!(bad);
            std::fs::remove_file(&index).unwrap();
            std::fs::write(&index, v.to_string()).unwrap();
        });
        let e = refusal(dir.path());
        let index = dir.path().join("model.safetensors.index.json");
        assert!(
            e.starts_with(&format!(
                "bad checkpoint {}: it names a shard",
                index.display()
            )),
            "{bad:?}: {e}"
        );
        assert!(
            e.contains("outside the model directory") || e.contains("empty name"),
            "{bad:?}: {e}"
        );
    }
}

#[test]
fn a_ten_megabyte_shard_name_is_cut_short_in_the_message() {
    let long = "a".repeat(10 << 20);
    let dir = model_copy(&fixture("tiny-mha"), |d| {
        let index = d.join("model.safetensors.index.json");
        std::fs::remove_file(&index).unwrap();
        let v = json!({"weight_map": {"model.norm.weight": long}});
        std::fs::write(&index, v.to_string()).unwrap();
    });
    let e = refusal(dir.path());
    assert!(e.len() < 1000, "{} bytes of message", e.len());
    assert!(e.contains("a name of 10485760 bytes"), "{e}");
    assert!(e.contains("… (10485760 bytes in all)"), "{e}");
}

#[test]
fn weights_that_are_not_files_are_named_for_what_they_are() {
    use std::os::unix::fs::symlink;
    let no_index = |make: &dyn Fn(&Path)| {
        model_copy(&fixture("tiny-mha"), |d| {
            std::fs::remove_file(d.join("model.safetensors.index.json")).unwrap();
            make(&d.join("model.safetensors"));
        })
    };
    let mkfifo = |p: &Path| {
        let c = std::ffi::CString::new(p.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    };
    type Make = Box<dyn Fn(&Path)>;
    let cases: Vec<(Make, &str)> = vec![
        (
            Box::new(|p: &Path| std::fs::create_dir(p).unwrap()),
            "is a directory, not a file (the weights)",
        ),
        (
            Box::new(mkfifo),
            "is a named pipe (FIFO), not a file (the weights)",
        ),
        (
            Box::new(|p: &Path| symlink(p, p).unwrap()),
            "is a symbolic link that loops, not a file (the weights)",
        ),
        (
            Box::new(|p: &Path| symlink(p.with_extension("gone"), p).unwrap()),
            "is a symbolic link to nothing, not a file (the weights)",
        ),
    ];
    for (make, expect) in cases {
        let dir = no_index(&*make);
        let e = refusal(dir.path());
        let path = dir.path().join("model.safetensors");
        assert_eq!(e, format!("{} {expect}", path.display()));
    }
    // A FIFO shard, config or tokenizer is named too, and never waited on.
    for name in [SHARDS[0], "config.json", "tokenizer.json"] {
        let dir = model_copy(&fixture("tiny-mha"), |d| {
            std::fs::remove_file(d.join(name)).unwrap();
            mkfifo(&d.join(name));
        });
        let e = refusal(dir.path());
        assert!(
            e.contains("is a named pipe (FIFO), not a file"),
            "{name}: {e}"
        );
        assert!(e.contains(name), "{e}");
    }
}

#[test]
fn errors_are_printed_once_by_a_chained_printer() {
    let e = ModelError::Io {
        path: "/m/config.json".into(),
        error: std::io::Error::other("Permission denied"),
    };
    assert_eq!(
        format!("{:#}", anyhow::Error::from(e)),
        "/m/config.json: Permission denied"
    );
    // As the user sees a refusal: once, on one line.
    let dir = with_config(|c| set(c, "sliding_window", json!(0)));
    let scratch = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_dpa-explorer"))
        .args([
            "score",
            "--prompt",
            "p",
            "--response",
            "r",
            "--device",
            "cpu",
        ])
        .arg("--model")
        .arg(dir.path())
        .arg("--log")
        .arg(scratch.path().join("log.txt"))
        .env("HF_HUB_OFFLINE", "1")
        .env("HF_HOME", scratch.path().join("hf"))
        .env("XDG_CACHE_HOME", scratch.path().join("cache"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(out.stdout.is_empty());
    assert_eq!(err.matches("sliding_window is 0").count(), 1, "{err}");
}

#[test]
fn the_hub_and_the_loader_choose_weights_by_one_rule() {
    use dpa_explorer::model::files::{plan, WeightPlan};
    let p = |names: &[&str]| plan(names.iter().copied());
    assert_eq!(
        p(&["pytorch_model.bin", "model.safetensors", "x"]),
        Some(WeightPlan::Single("model.safetensors".into()))
    );
    assert_eq!(
        p(&["model.safetensors", "model.safetensors.index.json"]),
        Some(WeightPlan::Index("model.safetensors.index.json".into()))
    );
    assert_eq!(
        p(&["pytorch_model.bin", "pytorch_model.bin.index.json"]),
        Some(WeightPlan::Index("pytorch_model.bin.index.json".into()))
    );
    assert_eq!(p(&["config.json"]), None);
}

#[test]
fn a_safetensors_header_claiming_more_than_the_file_is_refused() {
    let path_of = |d: &Path| d.join("model.safetensors");
    // An embedding of [2^31 - 1, 32] whose bytes are not there, with a config to match.
    let header = json!({"model.embed_tokens.weight":
        {"dtype": "BF16", "shape": [i32::MAX, 32], "data_offsets": [0, 137_438_953_408u64]}})
    .to_string();
    let mut lying = (header.len() as u64).to_le_bytes().to_vec();
    lying.extend_from_slice(header.as_bytes());
    lying.extend_from_slice(&[0; 64]);
    // A header length of 2^64 - 1.
    let mut huge = u64::MAX.to_le_bytes().to_vec();
    huge.extend_from_slice(b"{}");
    for bytes in [lying, huge] {
        let text = std::fs::read_to_string(fixture("tiny-mha").join("config.json")).unwrap();
        let mut cfg: Value = serde_json::from_str(&text).unwrap();
        set(&mut cfg, "vocab_size", json!(i32::MAX));
        let dir = model_copy(&fixture("tiny-mha"), |d| {
            std::fs::remove_file(d.join("model.safetensors.index.json")).unwrap();
            std::fs::remove_file(d.join("config.json")).unwrap();
            std::fs::write(d.join("config.json"), cfg.to_string()).unwrap();
            std::fs::write(path_of(d), &bytes).unwrap();
        });
        let e = refusal(dir.path());
        assert!(
            e.starts_with(&format!(
                "bad checkpoint {}: not a valid safetensors file (truncated or corrupt)",
                path_of(dir.path()).display()
            )),
            "{e}"
        );
    }
}
