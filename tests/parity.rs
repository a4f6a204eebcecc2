//! Parity with transformers' `MistralForSequenceClassification` on tiny random checkpoints made
//! by `scripts/make_fixtures.py` with the real Mistral tokenizer.

mod common;

use common::*;
use dpa_explorer::model::{
    DTypeChoice, DeviceChoice, Encoded, LoadOptions, ModelFiles, RewardModel,
};

const TOL_F32: f32 = 1e-3;

fn load(
    dir: &std::path::Path,
    dtype: DTypeChoice,
    max_tokens: usize,
) -> std::sync::Arc<RewardModel> {
    let files = ModelFiles::from_dir(dir).expect("model files");
    let opts = LoadOptions {
        device: DeviceChoice::Cpu,
        dtype,
        max_tokens,
    };
    std::sync::Arc::new(RewardModel::load(&files, &opts).expect("model loads"))
}

fn check_parity(dir: &std::path::Path) {
    let reference = reference(dir);
    let model = load(dir, DTypeChoice::F32, 4096);
    let mut worst = 0f32;
    for case in &reference.cases {
        let enc = model.encode(&case.prompt, &case.response).unwrap();
        assert_eq!(
            enc.ids, case.input_ids,
            "token ids differ for {:?}",
            case.prompt
        );
        let got = model
            .score(&[(&case.prompt, &case.response)])
            .unwrap()
            .remove(0);
        assert_eq!(got.tokens, case.input_ids.len());
        assert!(!got.truncated);
        let d = max_abs_diff(&got.scores, &case.logits_f32);
        worst = worst.max(d);
        assert!(
            d <= TOL_F32,
            "{}: |candle - transformers| = {d} for {:?}",
            dir.display(),
            case.prompt
        );
    }
    eprintln!(
        "{}: max |candle f32 - transformers f32| = {worst:e}",
        dir.display()
    );
}

#[test]
fn tiny_mha_matches_transformers() {
    check_parity(&fixture("tiny-mha"));
}

#[test]
fn tiny_gqa_window_matches_transformers() {
    check_parity(&fixture("tiny-gqa-window"));
}

#[test]
fn demo_model_with_score_bias_matches_transformers() {
    check_parity(&demo());
}

#[test]
fn transformers_4x_config_dialect_gives_the_same_scores() {
    for name in ["tiny-mha", "tiny-gqa-window"] {
        let src = fixture(name);
        let copy = model_copy(&src, |d| {
            std::fs::remove_file(d.join("config.json")).unwrap();
            std::fs::copy(src.join("config.v4.json"), d.join("config.json")).unwrap();
        });
        let text = std::fs::read_to_string(copy.path().join("config.json")).unwrap();
        assert!(text.contains("torch_dtype") && !text.contains("rope_parameters"));
        let reference = reference(&src);
        let model = load(copy.path(), DTypeChoice::F32, 4096);
        for case in &reference.cases {
            let got = model
                .score(&[(&case.prompt, &case.response)])
                .unwrap()
                .remove(0);
            assert!(max_abs_diff(&got.scores, &case.logits_f32) <= TOL_F32);
        }
    }
}

#[test]
fn batched_equals_single_and_transformers_padded_batch() {
    for dir in [fixture("tiny-mha"), fixture("tiny-gqa-window")] {
        let reference = reference(&dir);
        let model = load(&dir, DTypeChoice::F32, 4096);
        let pairs: Vec<(&str, &str)> = reference
            .cases
            .iter()
            .map(|c| (c.prompt.as_str(), c.response.as_str()))
            .collect();
        let batched = model.score(&pairs).unwrap();
        for ((b, case), hf_batch) in batched
            .iter()
            .zip(&reference.cases)
            .zip(&reference.batch_logits_f32)
        {
            let single = model
                .score(&[(&case.prompt, &case.response)])
                .unwrap()
                .remove(0);
            let d = max_abs_diff(&b.scores, &single.scores);
            assert!(d <= 1e-4, "batched differs from single by {d}");
            assert!(max_abs_diff(&b.scores, hf_batch) <= TOL_F32);
        }
    }
}

#[test]
fn left_truncation_matches_transformers() {
    for dir in [fixture("tiny-mha"), fixture("tiny-gqa-window")] {
        let reference = reference(&dir);
        let model = load(&dir, DTypeChoice::F32, reference.truncation_max_tokens);
        for case in &reference.truncated_cases {
            let enc: Encoded = model.encode(&case.prompt, &case.response).unwrap();
            assert_eq!(
                enc.ids, case.input_ids,
                "truncated ids differ for {:?}",
                case.prompt
            );
            let got = model
                .score(&[(&case.prompt, &case.response)])
                .unwrap()
                .remove(0);
            assert_eq!(got.truncated, case.truncated);
            assert_eq!(
                got.tokens,
                reference.truncation_max_tokens.min(case.input_ids.len())
            );
            assert!(got
                .warnings
                .iter()
                .any(|w| w.contains("truncated from the left")));
            assert!(max_abs_diff(&got.scores, &case.logits_f32) <= TOL_F32);
        }
    }
}

#[test]
fn bf16_compute_stays_close_to_transformers_bf16() {
    let dir = fixture("tiny-gqa-window");
    let reference = reference(&dir);
    let model = load(&dir, DTypeChoice::BF16, 4096);
    let mut worst_vs_f32 = 0f32;
    for case in &reference.cases {
        let got = model
            .score(&[(&case.prompt, &case.response)])
            .unwrap()
            .remove(0);
        worst_vs_f32 = worst_vs_f32.max(max_abs_diff(&got.scores, &case.logits_f32));
    }
    let worst_ref = reference
        .cases
        .iter()
        .map(|c| max_abs_diff(&c.logits_bf16, &c.logits_f32))
        .fold(0f32, f32::max);
    eprintln!(
        "bf16: max |candle bf16 - f32 ref| = {worst_vs_f32}, transformers bf16 - f32 = {worst_ref}"
    );
    // bf16 rounding moves these O(50) scores by a few tenths in transformers too.
    assert!(
        worst_vs_f32 <= 2.0 * worst_ref.max(0.25),
        "{worst_vs_f32} vs {worst_ref}"
    );
}

#[test]
fn seed_example_tokenizes_like_the_model_card() {
    let model = load(&fixture("tiny-mha"), DTypeChoice::F32, 4096);
    let enc = model
        .encode(
            "What are some synonyms for the word \"beautiful\"?",
            "Nicely, Beautifully, Handsome, Stunning, Wonderful, Gorgeous, Pretty, Stunning, Elegant",
        )
        .unwrap();
    assert_eq!(enc.ids.len(), 102);
    assert_eq!(&enc.ids[..4], &[1, 733, 16289, 28793]);
    assert_eq!(
        *enc.ids.last().unwrap(),
        28793,
        "ends with `]` of [/INST], no EOS"
    );
}
