//! Bad input is refused with a message that says what is wrong, and loses nothing: wrong
//! paths, incomplete model directories, damaged or mismatched checkpoints (built here, in
//! temporary directories, from the tiny fixture), unknown tensors (warned, not refused) and
//! bad JSON lines.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};

use common::*;
use dpa_explorer::hub::ModelSource;
use dpa_explorer::model::{
    DTypeChoice, DeviceChoice, LoadOptions, ModelFiles, RewardModel, WeightFiles,
};
use safetensors::Dtype;
use serde_json::Value;

fn load(dir: &Path) -> Result<RewardModel, String> {
    let files = ModelFiles::from_dir(dir).map_err(|e| e.to_string())?;
    let opts = LoadOptions {
        device: DeviceChoice::Cpu,
        dtype: DTypeChoice::F32,
        max_tokens: 512,
    };
    RewardModel::load(&files, &opts).map_err(|e| e.to_string())
}

fn load_err(dir: &Path) -> String {
    match load(dir) {
        Ok(_) => panic!("{} loaded", dir.display()),
        Err(e) => e,
    }
}

/// Runs the binary with a clean hub environment; returns (exit code, stdout, stderr).
fn run(args: &[&str], stdin: Option<&[u8]>) -> (i32, String, String) {
    let scratch = tempfile::tempdir().unwrap();
    let mut c = Command::new(env!("CARGO_BIN_EXE_dpa-explorer"));
    for var in [
        "HF_TOKEN",
        "HF_HUB_OFFLINE",
        "HF_HUB_CACHE",
        "HF_ENDPOINT",
        "DPA_LOG",
    ] {
        c.env_remove(var);
    }
    c.env("HF_HOME", scratch.path().join("hf"))
        .env("XDG_CACHE_HOME", scratch.path().join("cache"))
        .args(args)
        .args(["--device", "cpu", "--dtype", "f32", "--log"])
        .arg(scratch.path().join("log.txt"))
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = c.spawn().expect("run dpa-explorer");
    if let Some(bytes) = stdin {
        use std::io::Write;
        let mut pipe = child.stdin.take().unwrap();
        pipe.write_all(bytes).unwrap();
    }
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_wrong_model_path_is_named_and_never_sent_to_the_hub() {
    let (code, out, err) = run(
        &[
            "score",
            "--model",
            "./no/such/model",
            "--prompt",
            "p",
            "--response",
            "r",
        ],
        None,
    );
    assert_eq!(code, 2);
    assert!(out.is_empty());
    // The error first, on one line, then the ways forward; nothing else (no hub request).
    let mut lines = err.lines();
    assert_eq!(
        lines.next(),
        Some("error: no such model directory: ./no/such/model")
    );
    let rest: String = lines.collect::<Vec<_>>().join("\n");
    assert!(
        rest.contains("Ways forward:") && rest.contains("--demo"),
        "{err}"
    );
    assert!(!rest.to_lowercase().contains("download"), "{err}");

    let e = ModelSource::parse("/definitely/not/here", None)
        .unwrap_err()
        .to_string();
    assert_eq!(e, "no such model directory: /definitely/not/here");
    let config = fixture("tiny-mha").join("config.json");
    let e = ModelSource::parse(config.to_str().unwrap(), None)
        .unwrap_err()
        .to_string();
    assert!(e.contains("is a file"), "{e}");
}

#[test]
fn a_model_directory_without_config_tokenizer_or_weights_is_refused_by_name() {
    for (gone, expect) in [
        (&["config.json"][..], "missing config.json ("),
        (
            &["tokenizer.json"][..],
            "missing tokenizer.json (the fast tokenizer file) (",
        ),
        (
            &["model.safetensors.index.json", SHARDS[0], SHARDS[1]][..],
            "missing weights: none of model.safetensors, model.safetensors.index.json, \
             pytorch_model.bin or pytorch_model.bin.index.json is there",
        ),
    ] {
        let copy = model_copy(&fixture("tiny-mha"), |d| {
            for f in gone {
                std::fs::remove_file(d.join(f)).unwrap();
            }
        });
        let e = load_err(copy.path());
        assert!(e.contains(expect), "{gone:?}: {e}");
        assert!(e.contains(&copy.path().display().to_string()), "{e}");
    }

    // And as the user sees it.
    let copy = model_copy(&fixture("tiny-mha"), |d| {
        std::fs::remove_file(d.join("config.json")).unwrap()
    });
    let (code, out, err) = run(
        &[
            "score",
            "--model",
            copy.path().to_str().unwrap(),
            "--prompt",
            "p",
            "--response",
            "r",
        ],
        None,
    );
    assert_eq!(code, 2);
    assert!(out.is_empty());
    assert!(err.contains("missing config.json"), "{err}");
}

#[test]
fn a_truncated_safetensors_file_is_refused_as_truncated() {
    for keep in [5usize, 4096, 1_000_000] {
        let copy = model_copy(&fixture("tiny-mha"), |d| {
            let bytes = std::fs::read(fixture("tiny-mha").join(SHARDS[0])).unwrap();
            std::fs::remove_file(d.join(SHARDS[0])).unwrap();
            std::fs::write(d.join(SHARDS[0]), &bytes[..keep]).unwrap();
        });
        let e = load_err(copy.path());
        assert!(
            e.contains(&format!(
                "bad checkpoint {}",
                copy.path().join(SHARDS[0]).display()
            )),
            "{e}"
        );
        assert!(e.contains("truncated or corrupt"), "{keep}: {e}");
    }
}

#[test]
fn a_shard_named_by_the_index_but_absent_is_named() {
    let copy = model_copy(&fixture("tiny-mha"), |d| {
        std::fs::remove_file(d.join(SHARDS[1])).unwrap()
    });
    let e = load_err(copy.path());
    assert_eq!(
        e,
        format!(
            "missing a weight shard named by {} ({})",
            copy.path().join("model.safetensors.index.json").display(),
            copy.path().join(SHARDS[1]).display()
        )
    );
}

#[test]
fn a_misshapen_tensor_is_refused_with_both_shapes() {
    let name = "model.layers.1.mlp.up_proj.weight";
    let dir = edited_checkpoint(|t| {
        let (_, shape, data) = t.get_mut(name).unwrap();
        assert_eq!(shape, &[64, 32]);
        *shape = vec![32, 32];
        data.truncate(data.len() / 2);
    });
    assert_eq!(
        load_err(dir.path()),
        format!(
            "tensor `{name}` has shape [32, 32] in the checkpoint, but config.json implies [64, 32]"
        )
    );
}

#[test]
fn a_missing_tensor_is_refused_naming_it_and_the_unknown_ones() {
    let name = "model.layers.0.self_attn.q_proj.weight";
    let renamed = "model.layers.0.self_attn.query.weight";
    let dir = edited_checkpoint(|t| {
        let v = t.remove(name).unwrap();
        t.insert(renamed.into(), v);
    });
    assert_eq!(
        load_err(dir.path()),
        format!(
            "the checkpoint has no tensor `{name}` (expected shape [32, 32]); \
             tensors the port does not know: {renamed}"
        )
    );
}

#[test]
fn an_unknown_tensor_loads_with_a_warning_that_reaches_the_score_output() {
    let extra = "model.layers.0.self_attn.gate_scale";
    let dir = edited_checkpoint(|t| {
        t.insert(extra.into(), (Dtype::F32, vec![4], vec![0u8; 16]));
    });
    let model =
        std::sync::Arc::new(load(dir.path()).expect("an unknown tensor does not stop the load"));
    assert_eq!(model.warnings().len(), 1);
    assert!(
        model.warnings()[0].contains(extra),
        "{:?}",
        model.warnings()
    );
    assert!(
        model.warnings()[0].contains("does not use"),
        "{:?}",
        model.warnings()
    );
    let pair = [("Hello", "Hi there!")];
    let scored = model.score(&pair).unwrap().remove(0);
    assert!(scored.warnings.iter().any(|w| w.contains(extra)));
    // Ignoring it changes nothing else: same scores as the untouched checkpoint.
    let plain = std::sync::Arc::new(load(&fixture("tiny-mha")).unwrap())
        .score(&pair)
        .unwrap()
        .remove(0);
    assert_eq!(scored.scores, plain.scores);
    assert!(plain.warnings.is_empty());

    let (code, out, err) = run(
        &[
            "score",
            "--model",
            dir.path().to_str().unwrap(),
            "--prompt",
            "Hello",
            "--response",
            "Hi there!",
        ],
        None,
    );
    assert_eq!(code, 0, "{err}");
    let v: Value = serde_json::from_str(out.trim()).unwrap();
    let warnings = v["warnings"]
        .as_array()
        .expect("\"warnings\" in the output");
    assert!(
        warnings.iter().any(|w| w.as_str().unwrap().contains(extra)),
        "{warnings:?}"
    );
    assert_eq!(v["scores"].as_object().unwrap().len(), 10);
}

#[test]
fn a_bad_jsonl_line_is_named_and_the_good_lines_are_still_scored() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.jsonl");
    let output = dir.path().join("out.jsonl");
    std::fs::write(
        &input,
        concat!(
            "{\"prompt\": \"What is 2+2?\", \"response\": \"4\", \"id\": \"a\"}\n",
            "{\"prompt\": \"broken\", \n",
            "\n",
            "{\"prompt\": \"Name a colour.\", \"response\": \"Blue.\", \"id\": \"b\"}\n",
            "{\"prompt\": \"no response\"}\n",
        ),
    )
    .unwrap();
    let model = fixture("tiny-mha");
    let (code, out, err) = run(
        &[
            "score",
            "--model",
            model.to_str().unwrap(),
            "--input",
            input.to_str().unwrap(),
            "--output",
            output.to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(code, 1, "{err}");
    assert!(out.is_empty());
    assert!(err.contains("line 2: not valid JSON"), "{err}");
    assert!(err.contains("line 5: missing \"response\""), "{err}");
    assert!(err.contains("2 of 4 line(s) could not be scored"), "{err}");
    let lines: Vec<Value> = std::fs::read_to_string(&output)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 4);
    assert_eq!(lines[0]["id"], "a");
    assert_eq!(lines[0]["scores"].as_object().unwrap().len(), 10);
    assert_eq!(lines[1]["line"], 2);
    assert!(lines[1]["error"].as_str().unwrap().contains("JSON"));
    assert_eq!(lines[2]["id"], "b");
    assert_eq!(lines[2]["scores"].as_object().unwrap().len(), 10);
    assert_eq!(lines[3]["line"], 5);

    // The good lines score as they do alone.
    let (code, single, err) = run(
        &[
            "score",
            "--model",
            model.to_str().unwrap(),
            "--prompt",
            "Name a colour.",
            "--response",
            "Blue.",
        ],
        None,
    );
    assert_eq!(code, 0, "{err}");
    let single: Value = serde_json::from_str(single.trim()).unwrap();
    // Within float rounding: scored with the file, the pair reuses the template's keys and
    // values computed once for all lines.
    let (alone, in_file) = (
        single["scores"].as_object().unwrap(),
        lines[2]["scores"].as_object().unwrap(),
    );
    assert_eq!(
        alone.keys().collect::<Vec<_>>(),
        in_file.keys().collect::<Vec<_>>()
    );
    for (k, v) in alone {
        let d = (v.as_f64().unwrap() - in_file[k].as_f64().unwrap()).abs();
        assert!(d <= 1e-4, "{k}: {v} alone, {} in the file", in_file[k]);
    }
}

#[test]
fn a_non_utf8_line_is_named_and_the_rest_still_scored() {
    let mut input = b"{\"prompt\": \"Hi\", \"response\": \"Hello!\"}\n".to_vec();
    input.extend_from_slice(b"{\"prompt\": \"caf\xe9\", \"response\": \"ok\"}\n");
    input.extend_from_slice(b"{\"prompt\": \"Bye\", \"response\": \"See you.\"}\n");
    let model = fixture("tiny-mha");
    let (code, out, err) = run(
        &["score", "--model", model.to_str().unwrap(), "--input", "-"],
        Some(&input),
    );
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("line 2: not valid UTF-8 (bad byte at column 16)"),
        "{err}"
    );
    let lines: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[0]["prompt"], "Hi");
    assert!(lines[0]["scores"].is_object());
    assert_eq!(lines[1]["line"], 2);
    assert!(lines[1]["error"].as_str().unwrap().contains("UTF-8"));
    assert_eq!(lines[2]["prompt"], "Bye");
    assert!(lines[2]["scores"].is_object());
}

#[test]
fn a_non_utf8_argument_is_refused() {
    use std::os::unix::ffi::OsStrExt;
    let out = Command::new(env!("CARGO_BIN_EXE_dpa-explorer"))
        .args(["score", "--model", "x", "--response", "r", "--prompt"])
        .arg(std::ffi::OsStr::from_bytes(b"caf\xe9"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("invalid UTF-8"), "{err}");
}

#[test]
fn weights_found_in_a_plain_directory_are_the_indexed_shards() {
    // The refusals above start from a directory that does load.
    let files = ModelFiles::from_dir(&fixture("tiny-mha")).unwrap();
    assert_eq!(
        files.weights,
        WeightFiles::Safetensors(SHARDS.iter().map(|s| fixture("tiny-mha").join(s)).collect())
    );
    assert!(load(&fixture("tiny-mha")).unwrap().warnings().is_empty());
}
