//! Parity with transformers for the models beyond DPA: Llama, Qwen2 and Gemma-2 sequence
//! classifiers and ArmoRM (`LlamaForRewardModelWithGating`, as its `modeling_custom.py` computes it), on
//! tiny random checkpoints made by `scripts/make_family_fixtures.py` with real tokenizers
//! (Llama 3's from `llama-models`, Mistral's) and the models' own chat templates.

mod common;

use std::path::Path;

use common::*;
use dpa_explorer::model::{DTypeChoice, DeviceChoice, LoadOptions, ModelFiles, RewardModel};
use dpa_explorer::scoring::{Input, Pipeline, Scored};
use serde_json::Value;

const TOL: f32 = 1e-3;

fn json(dir: &Path) -> Value {
    let text = std::fs::read_to_string(dir.join("reference.json")).expect("reference.json");
    serde_json::from_str(&text).expect("reference.json parses")
}

fn floats(v: &Value) -> Vec<f32> {
    v.as_array()
        .expect("a list")
        .iter()
        .map(|x| x.as_f64().expect("a number") as f32)
        .collect()
}

fn ids(v: &Value) -> Vec<u32> {
    v.as_array()
        .expect("a list")
        .iter()
        .map(|x| x.as_u64().expect("an id") as u32)
        .collect()
}

fn try_load(dir: &Path) -> Result<RewardModel, String> {
    let files = ModelFiles::from_dir(dir).map_err(|e| e.to_string())?;
    let opts = LoadOptions {
        device: DeviceChoice::Cpu,
        dtype: DTypeChoice::F32,
        max_tokens: 4096,
    };
    RewardModel::load(&files, &opts).map_err(|e| e.to_string())
}

fn pairs(reference: &Value) -> Vec<(String, String)> {
    reference["cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["prompt"].as_str().unwrap().to_string(),
                c["response"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// Every case scored alone and all together (shared template and prompt work, padded
/// batches): each must match the reference.
fn scored_both_ways(model: RewardModel, pairs: &[(String, String)]) -> [Vec<Scored>; 2] {
    let model = std::sync::Arc::new(model);
    let alone: Vec<Scored> = pairs
        .iter()
        .map(|(p, r)| {
            let mut pipeline = Pipeline::local_uncached(model.clone());
            pipeline.score_pairs(&[(p, r)]).remove(0).expect("scores")
        })
        .collect();
    let mut pipeline = Pipeline::local(model);
    let refs: Vec<(&str, &str)> = pairs
        .iter()
        .map(|(p, r)| (p.as_str(), r.as_str()))
        .collect();
    let together = pipeline
        .score_pairs(&refs)
        .into_iter()
        .map(|r| r.expect("scores"))
        .collect();
    [alone, together]
}

/// Ids and the rendered template equal transformers' `apply_chat_template`, byte for byte.
fn check_inputs(model: &RewardModel, reference: &Value) {
    for case in reference["cases"].as_array().unwrap() {
        let (p, r) = (
            case["prompt"].as_str().unwrap(),
            case["response"].as_str().unwrap(),
        );
        let text = model.encoder().template().render(p, r).unwrap();
        assert_eq!(text, case["text"].as_str().unwrap(), "template for {p:?}");
        let enc = model.encode(p, r).unwrap();
        assert_eq!(enc.ids, ids(&case["input_ids"]), "ids for {p:?}");
        assert!(enc.control_tokens.is_empty(), "{:?}", enc.control_tokens);
    }
}

fn check_classifier(name: &str, labels: &[&str]) {
    let dir = fixture(name);
    let reference = json(&dir);
    let model = try_load(&dir).expect("loads");
    assert_eq!(model.info().labels, labels);
    assert!(model.warnings().is_empty(), "{:?}", model.warnings());
    check_inputs(&model, &reference);
    let cases = reference["cases"].as_array().unwrap();
    let mut worst = 0f32;
    for results in scored_both_ways(model, &pairs(&reference)) {
        for (got, case) in results.iter().zip(cases) {
            assert!(got.gating.is_none());
            let d = max_abs_diff(&got.scores, &floats(&case["logits"]));
            worst = worst.max(d);
            assert!(d <= TOL, "{name}: |Δ| = {d} for {:?}", case["prompt"]);
        }
    }
    eprintln!("{name}: max |candle f32 - transformers f32| = {worst:e}");
}

#[test]
fn llama_classifier_with_llama3_rope_matches_transformers() {
    check_classifier("tiny-llama-cls", &["safety", "helpfulness", "style"]);
}

#[test]
fn qwen2_classifier_with_qkv_biases_matches_transformers() {
    check_classifier("tiny-qwen2-cls", &["LABEL_0"]);
}

#[test]
fn armorm_rewards_gating_and_score_match_its_reference() {
    let dir = fixture("tiny-armo");
    let reference = json(&dir);
    let model = try_load(&dir).expect("loads");
    let labels: Vec<String> = reference["labels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap().to_string())
        .collect();
    assert_eq!(model.info().labels, labels);
    assert!(model.info().gating);
    // Its modelling code is what this port computes: no warning about unused tensors.
    assert!(model.warnings().is_empty(), "{:?}", model.warnings());
    check_inputs(&model, &reference);
    let cases = reference["cases"].as_array().unwrap();
    let mut worst = 0f32;
    for results in scored_both_ways(model, &pairs(&reference)) {
        for (got, case) in results.iter().zip(cases) {
            let g = got.gating.as_ref().expect("gating outputs");
            for (what, ours, theirs) in [
                ("rewards", &got.scores, &case["rewards"]),
                ("gating", &g.weights, &case["gating"]),
                ("coefficients", &g.coefficients, &case["coefficients"]),
            ] {
                let d = max_abs_diff(ours, &floats(theirs));
                worst = worst.max(d);
                assert!(d <= TOL, "{what}: |Δ| = {d} for {:?}", case["prompt"]);
            }
            let d = (g.score - case["score"].as_f64().unwrap() as f32).abs();
            worst = worst.max(d);
            assert!(d <= TOL, "score: |Δ| = {d} for {:?}", case["prompt"]);
            // The score is the rewards along the model's own direction.
            let along: f32 = got
                .scores
                .iter()
                .zip(&g.coefficients)
                .map(|(r, c)| r * c)
                .sum();
            assert!((along - g.score).abs() <= 1e-4, "{along} vs {}", g.score);
        }
    }
    eprintln!("tiny-armo: max |candle f32 - reference f32| = {worst:e}");
}

/// An edit that keeps the prompt reuses its keys and values; the gating row (at the prompt's
/// end) and the reward row are still computed, so the scores equal a fresh computation.
#[test]
fn armorm_reuse_across_edits_is_exact() {
    let model = std::sync::Arc::new(try_load(&fixture("tiny-armo")).expect("loads"));
    let prompt = "Name a colour of the sea.";
    let responses = ["Blue.", "Blue, mostly.", "Blue, mostly; grey in a storm."];
    let mut cached = Pipeline::local(model.clone());
    for (k, response) in responses.iter().enumerate() {
        let input = Input {
            prompt,
            response,
            slot: Some(7),
        };
        let mut got = None;
        cached
            .score(&[Ok(input)], &|| false, &mut |_, r| got = Some(r))
            .unwrap();
        let got = got.unwrap().expect("scores");
        let fresh = Pipeline::local_uncached(model.clone())
            .score_pairs(&[(prompt, response)])
            .remove(0)
            .unwrap();
        let (a, b) = (got.gating.unwrap(), fresh.gating.unwrap());
        assert!(max_abs_diff(&got.scores, &fresh.scores) <= 1e-5, "edit {k}");
        assert!(max_abs_diff(&a.weights, &b.weights) <= 1e-5, "edit {k}");
        assert!((a.score - b.score).abs() <= 1e-5, "edit {k}");
    }
}

#[test]
fn armorm_without_the_assistant_header_is_refused_as_the_reference_is() {
    let dir = fixture("tiny-armo");
    let reference = json(&dir);
    let case = &reference["no_pattern_case"];
    assert!(case["raises"].as_bool().unwrap_or(true), "{case}");
    let model = try_load(&dir).expect("loads");
    let ids = ids(&case["input_ids"]);
    let e = model
        .decoder()
        .forward(None, &[ids.as_slice()], false, &|| false)
        .err()
        .expect("refused")
        .to_string();
    assert!(e.contains("Token pattern not found"), "{e}");
}

fn edited(name: &str, edit: impl FnOnce(&Path)) -> String {
    let copy = model_copy(&fixture(name), edit);
    try_load(copy.path()).err().expect("refused")
}

/// The checkpoint in a [`model_copy`] with its tensors edited.
fn rewrite_tensors(dir: &Path, edit: impl FnOnce(&mut Tensors)) {
    let path = dir.join("model.safetensors");
    let mut tensors = Tensors::new();
    read_tensors(&path, &mut tensors);
    edit(&mut tensors);
    std::fs::remove_file(&path).unwrap();
    write_tensors(&tensors, &path);
}

#[test]
fn armorm_refusals_name_what_is_wrong() {
    let e = edited("tiny-armo", |d| {
        rewrite_tensors(d, |t| {
            t.remove("gating.layers.3.bias").unwrap();
        })
    });
    assert!(e.contains("gating.layers.3.bias"), "{e}");
    let e = edited("tiny-armo", |d| {
        rewrite_tensors(d, |t| {
            let (dtype, shape, data) = t.get_mut("reward_transform_matrix").unwrap();
            *shape = vec![19, 18];
            data.truncate(19 * 18 * dtype.bitsize() / 8);
        })
    });
    assert!(e.contains("reward_transform_matrix"), "{e}");
    let e = edited("tiny-armo", |d| {
        rewrite_json(&d.join("config.json"), |c| {
            c.as_object_mut().unwrap().remove("num_objectives");
        })
    });
    assert!(e.contains("num_objectives"), "{e}");
}

#[test]
fn a_chat_template_that_fails_is_refused_at_load_or_named_per_input() {
    let e = edited("tiny-llama-cls", |d| {
        rewrite_json(&d.join("tokenizer_config.json"), |c| {
            c["chat_template"] = Value::from("{% for m in messages %}");
        })
    });
    assert!(e.contains("chat template does not compile"), "{e}");
    let copy = model_copy(&fixture("tiny-llama-cls"), |d| {
        rewrite_json(&d.join("tokenizer_config.json"), |c| {
            c["chat_template"] = Value::from("{{ raise_exception('only one turn, please') }}");
        })
    });
    let model = try_load(copy.path()).expect("loads");
    let e = model.encode("p", "r").unwrap_err().to_string();
    assert!(e.contains("only one turn, please"), "{e}");
    // No template at all: only DPA's card template is known without one.
    let e = edited("tiny-llama-cls", |d| {
        rewrite_json(&d.join("tokenizer_config.json"), |c| {
            c.as_object_mut().unwrap().remove("chat_template");
        })
    });
    assert!(e.contains("declares no chat template"), "{e}");
}

#[test]
fn gemma2_classifier_with_softcapping_and_alternating_window_matches_transformers() {
    check_classifier("tiny-gemma2-cls", &["LABEL_0", "LABEL_1"]);
}

#[test]
fn an_unknown_architecture_is_refused_by_name() {
    let e = edited("tiny-qwen2-cls", |d| {
        rewrite_json(&d.join("config.json"), |c| {
            c["model_type"] = Value::from("phi3")
        })
    });
    assert!(e.contains("phi3"), "{e}");
}

/// `score` on the ArmoRM demo writes the 19 rewards, the gating weights by name and the
/// model's own score; `--demo` alone stays DPA's.
#[test]
fn score_writes_armorms_gating_and_preference_score() {
    let home = tempfile::tempdir().unwrap();
    let run = |demo: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_dpa-explorer"))
            .arg("score")
            .args(demo)
            .args([
                "--prompt",
                "Why is the sea salty?",
                "--response",
                "Rivers carry salt.",
            ])
            .env("HOME", home.path())
            .env("XDG_CACHE_HOME", home.path().join("cache"))
            .env("HF_HUB_OFFLINE", "1")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let line: Value = serde_json::from_slice(&out.stdout).unwrap();
        line
    };
    let armo = run(&["--demo", "armo"]);
    let scores = armo["scores"].as_object().unwrap();
    let gating = armo["gating"].as_object().unwrap();
    assert_eq!(scores.len(), 19);
    assert_eq!(
        scores.keys().collect::<Vec<_>>(),
        gating.keys().collect::<Vec<_>>()
    );
    assert!(scores.contains_key("beavertails-is_safe"), "{armo}");
    let sum: f64 = gating.values().map(|v| v.as_f64().unwrap()).sum();
    // Softmax weights times the model's logit scale.
    assert!(sum > 0.0 && sum.is_finite(), "{sum}");
    assert!(armo["preference_score"].as_f64().unwrap().is_finite());
    let dpa = run(&["--demo"]);
    assert_eq!(dpa["scores"].as_object().unwrap().len(), 10);
    assert!(dpa.get("gating").is_none() && dpa.get("preference_score").is_none());
    // θ in a plane of the user's choosing: 90° over (safety, Prometheus) weighs Prometheus.
    let turned = run(&[
        "--demo",
        "armo",
        "--angle",
        "90",
        "--axes",
        "is_safe,prometheus-score",
    ]);
    let prometheus = turned["scores"]["prometheus-score"].as_f64().unwrap();
    let weighted = turned["weighted"].as_f64().unwrap();
    assert!((weighted - prometheus).abs() < 1e-4, "{turned}");
}

/// `--axes` that are not two of the model's attributes are refused by name.
#[test]
fn score_refuses_axes_the_model_lacks() {
    let home = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_dpa-explorer"))
        .args(["score", "--demo", "dpa", "--prompt", "p", "--response", "r"])
        .args(["--angle", "10", "--axes", "is_safe,verbosity"])
        .env("HOME", home.path())
        .env("XDG_CACHE_HOME", home.path().join("cache"))
        .env("HF_HUB_OFFLINE", "1")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("is_safe") && err.contains("helpsteer-verbosity"),
        "{err}"
    );
}

/// Trajectories of every family equal scoring each prefix alone: Gemma-2's alternating
/// window (shorter than the input) and soft-capping through the cached continuations, and
/// ArmoRM through its per-prefix fallback (its gating reads the prompt's end).
#[test]
fn trajectories_equal_scoring_each_prefix_alone() {
    use dpa_explorer::scoring::Every;
    for name in ["tiny-gemma2-cls", "tiny-llama-cls", "tiny-armo"] {
        let model = std::sync::Arc::new(try_load(&fixture(name)).expect("loads"));
        let prompt = "Write a long answer.";
        let response = "First, be clear. Second, be correct; third, be brief when brevity helps.";
        let mut pipeline = Pipeline::local(model.clone());
        let points = pipeline
            .trajectory(prompt, response, Every::Word, &|| false)
            .expect("a trajectory");
        assert!(points.len() > 8, "{name}: {} points", points.len());
        for p in &points {
            let alone = Pipeline::local_uncached(model.clone())
                .score_pairs(&[(prompt, &response[..p.end])])
                .remove(0)
                .expect("scores");
            let d = max_abs_diff(&p.scores, &alone.scores);
            assert!(
                d <= 1e-4,
                "{name}: prefix of {} bytes differs by {d}",
                p.end
            );
        }
    }
}
