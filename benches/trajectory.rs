//! What a prefix trajectory costs on a 2-layer model of Mistral-7B's widths, per CPU mode:
//! one full pass, the trajectory every word and every sentence, and (once) scoring every
//! word's prefix as its own input, which is what the trajectory replaces.
//! `cargo bench --bench trajectory` (a few minutes); `-- --quick` skips the every-prefix run.

mod common;

use std::time::{Duration, Instant};

use dpa_explorer::model::{DTypeChoice, DeviceChoice, LoadOptions, ModelFiles, RewardModel};
use dpa_explorer::scoring::{Every, Pipeline};

const PROMPT: &str = "Explain how a bill becomes a law in the United States, step by step.";

/// About 300 tokens of plain prose.
fn response() -> String {
    let sentences = [
        "A bill starts when a member of Congress introduces it in the House or the Senate.",
        "It goes to a committee, which studies it, holds hearings and may change it.",
        "If the committee approves, the full chamber debates the bill and votes on it.",
        "The other chamber then does the same, and the two versions must match exactly.",
        "Differences are settled by a conference committee, and both chambers vote again.",
        "The president can sign the bill into law or veto it within ten days.",
        "Congress may override a veto with a two-thirds vote in each chamber.",
    ];
    let mut s = String::new();
    while s.len() < 1250 {
        for x in sentences {
            s.push_str(x);
            s.push(' ');
        }
    }
    s.truncate(s[..1250].rfind(". ").map_or(1250, |i| i + 1));
    s
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn time(runs: usize, mut f: impl FnMut()) -> Duration {
    f();
    median(
        (0..runs)
            .map(|_| {
                let t = Instant::now();
                f();
                t.elapsed()
            })
            .collect(),
    )
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let dir = tempfile::tempdir().unwrap();
    common::write_model(dir.path(), &common::Shape::mistral_7b(2)).unwrap();
    let files = ModelFiles::from_dir(dir.path()).unwrap();
    let response = response();
    let cache = tempfile::tempdir().unwrap();
    println!("| mode | input tokens | full pass | every sentence (points) | every word (points) | every word's prefix scored alone |");
    println!("|---|---:|---:|---:|---:|---:|");
    for dtype in [DTypeChoice::F32, DTypeChoice::BF16, DTypeChoice::Q8_0] {
        let opts = LoadOptions {
            device: DeviceChoice::Cpu,
            dtype,
            ..LoadOptions::default()
        };
        let model = RewardModel::load_with_cache(&files, &opts, Some(cache.path())).unwrap();
        let full = model.encode(PROMPT, &response).unwrap();
        // Nothing kept between calls: every call computes from scratch.
        let mut model = Pipeline::local_uncached(model);
        let one = time(3, || {
            model
                .score_pairs(&[(PROMPT, response.as_str())])
                .remove(0)
                .unwrap();
        });
        let mut n = (0, 0);
        let sentence = time(3, || {
            n.0 = model
                .trajectory(PROMPT, &response, Every::Sentence, &|| false)
                .unwrap()
                .len();
        });
        let mut words = Vec::new();
        let word = time(3, || {
            words = model
                .trajectory(PROMPT, &response, Every::Word, &|| false)
                .unwrap();
            n.1 = words.len();
        });
        let alone = if quick {
            "–".to_string()
        } else {
            let t = Instant::now();
            for p in &words {
                model
                    .score_pairs(&[(PROMPT, &response[..p.end])])
                    .remove(0)
                    .unwrap();
            }
            let s = t.elapsed().as_secs_f64();
            format!("{s:.1} s ({:.0}×)", s / one.as_secs_f64())
        };
        let x = |d: Duration| d.as_secs_f64() / one.as_secs_f64();
        println!(
            "| {} | {} | {:.0} ms | {:.0} ms = {:.2}× ({}) | {:.0} ms = {:.2}× ({}) | {} |",
            dtype.name(),
            full.ids.len(),
            one.as_secs_f64() * 1e3,
            sentence.as_secs_f64() * 1e3,
            x(sentence),
            n.0,
            word.as_secs_f64() * 1e3,
            x(word),
            n.1,
            alone
        );
    }
}
