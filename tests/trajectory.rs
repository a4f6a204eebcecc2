//! Prefix trajectories equal independent scoring of each prefix: on both fixtures (one with a
//! sliding window shorter than the inputs), on Unicode text, at every granularity, and when the
//! prefixes grow past `--max-tokens` so that left truncation moves with their length.

mod common;

use common::{fixture, load, Scoring};
use dpa_explorer::model::RewardModel;
use dpa_explorer::scoring::Every;

/// Trajectory points must equal a full pass over each prefix this closely (f32).
const TOL: f32 = 1e-4;

const PROMPT: &str = "What colour is the sky, and why?";
const RESPONSE: &str = "Blue, on a clear day. Sunlight scatters off the air: short (blue) \
    waves scatter most!  At sunset the light crosses more air, so the sky turns red… très \
    beau, n'est-ce pas?\nGrey when it rains.";

fn check(model: &std::sync::Arc<RewardModel>, every: Every) -> usize {
    let points = model
        .trajectory(PROMPT, RESPONSE, every, &|| false)
        .expect("trajectory");
    assert_eq!(points.last().map(|p| p.end), Some(RESPONSE.len()));
    assert!(points.windows(2).all(|w| w[0].end < w[1].end));
    for p in &points {
        let prefix = &RESPONSE[..p.end];
        let want = model.score(&[(PROMPT, prefix)]).unwrap().remove(0);
        assert_eq!(p.tokens, want.tokens, "{prefix:?}");
        assert_eq!(p.truncated, want.truncated, "{prefix:?}");
        let diff = p
            .scores
            .iter()
            .zip(&want.scores)
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        assert!(diff <= TOL, "{every:?} {prefix:?}: off by {diff}");
    }
    points.len()
}

#[test]
fn every_point_equals_scoring_its_prefix_alone() {
    for name in ["tiny-mha", "tiny-gqa-window"] {
        let model = load(&fixture(name), 4096);
        let words = check(&model, Every::Word);
        assert_eq!(words, RESPONSE.split_whitespace().count(), "{name}");
        let sentences = check(&model, Every::Sentence);
        assert_eq!(sentences, 5, "{name}");
        let tokens = check(&model, Every::Token);
        assert!(tokens > words, "{name}: {tokens} token points");
    }
}

#[test]
fn truncated_prefixes_are_exact_too() {
    // The whole input is cut from the left; shorter prefixes are cut less or not at all.
    let model = load(&fixture("tiny-gqa-window"), 48);
    let points = model
        .trajectory(PROMPT, RESPONSE, Every::Word, &|| false)
        .unwrap();
    assert!(points.last().unwrap().truncated);
    check(&model, Every::Word);
}

#[test]
fn an_empty_response_has_no_points_and_a_stop_cancels() {
    let model = load(&fixture("tiny-mha"), 4096);
    assert!(model
        .trajectory(PROMPT, "", Every::Word, &|| false)
        .unwrap()
        .is_empty());
    let e = model
        .trajectory(PROMPT, RESPONSE, Every::Word, &|| true)
        .unwrap_err();
    assert!(e.to_string().contains("cancel"), "{e}");
}

#[test]
fn score_writes_the_trajectory_with_byte_ends_scores_and_r() {
    let dir = fixture("tiny-mha");
    let home = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_dpa-explorer"))
        .args(["score", "--model"])
        .arg(&dir)
        .args(["--prompt", PROMPT, "--response", RESPONSE, "--angle", "-15"])
        .args(["--trajectory", "--every", "sentence"])
        .env("HOME", home.path())
        .env("XDG_CACHE_HOME", home.path().join("cache"))
        .output()
        .expect("run score");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON line");
    let points = line["trajectory"].as_array().expect("trajectory");
    assert_eq!(points.len(), 5);
    let model = load(&dir, 4096);
    let labels = &model.info().labels;
    let (s, c) = (-15f64).to_radians().sin_cos();
    for p in points {
        let end = p["end"].as_u64().unwrap() as usize;
        let want = model
            .score(&[(PROMPT, &RESPONSE[..end])])
            .unwrap()
            .remove(0);
        let scores = &p["scores"];
        for (l, w) in labels.iter().zip(&want.scores) {
            let got = scores[l].as_f64().unwrap() as f32;
            assert!((got - w).abs() <= TOL, "{l} at {end}: {got} vs {w}");
        }
        let h = want.scores[0] as f64;
        let v = want.scores[labels
            .iter()
            .position(|l| l.ends_with("verbosity"))
            .unwrap()] as f64;
        let r = p["weighted"].as_f64().unwrap();
        assert!((r - (c * h + s * v)).abs() < 1e-3, "R at {end}: {r}");
    }
    // The last point is the whole response, as the line's own scores.
    assert_eq!(
        points.last().unwrap()["end"].as_u64(),
        Some(RESPONSE.len() as u64)
    );
    assert_eq!(points.last().unwrap()["weighted"], line["weighted"]);
}
