//! Reusing keys and values gives the scores of a full pass: incremental rescoring through many
//! edit sequences, candidates sharing their prompt, the `score` command's grouping, left
//! truncation, the sliding window, the memory budget and cancellation.

mod common;

use std::cell::Cell;
use std::path::Path;

use common::*;
use dpa_explorer::cli::score::{parse_jsonl, score_records, Record};
use dpa_explorer::engine::ScoreItem;
use dpa_explorer::model::{DTypeChoice, DeviceChoice, LoadOptions, RewardModel};
use dpa_explorer::scoring::{Input, LocalBackend, Pipeline, ScoreError, Scored};

/// Incremental scores must equal a full recompute this closely (f32).
const TOL: f32 = 1e-4;

/// The explorer's way of scoring: the pipeline over the local backend, items by slot.
struct IncrementalBackend {
    pipeline: Pipeline,
    model: std::sync::Arc<RewardModel>,
}

impl IncrementalBackend {
    fn new(model: std::sync::Arc<RewardModel>, budget: usize) -> Self {
        let backend = LocalBackend::new(model.clone(), budget);
        let pipeline = Pipeline::new(model.encoder().clone(), Box::new(backend));
        Self { pipeline, model }
    }

    fn score(
        &mut self,
        items: &[ScoreItem],
        stop: &dyn Fn() -> bool,
        done: &mut dyn FnMut(usize, Result<Scored, ScoreError>),
    ) -> Result<(), ScoreError> {
        let inputs: Vec<Result<Input, ScoreError>> =
            items.iter().map(|it| Ok(it.input())).collect();
        self.pipeline.score(&inputs, stop, done)
    }

    fn model(&self) -> &std::sync::Arc<RewardModel> {
        &self.model
    }

    fn local(&self) -> &LocalBackend {
        self.pipeline.backend_as().expect("local")
    }

    fn options(&self) -> &dpa_explorer::model::ReuseOptions {
        self.local().options()
    }

    fn last_stats(&self) -> &dpa_explorer::model::ReuseStats {
        self.local().last_stats()
    }

    fn cache_bytes(&self) -> usize {
        self.pipeline.backend().cache_bytes()
    }

    fn store(&self) -> &dpa_explorer::model::KvStore {
        self.local().store()
    }
}

/// A small deterministic generator (xorshift), so that every run edits the same way.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    fn word(&mut self) -> &'static str {
        const WORDS: [&str; 16] = [
            "the", "model", "answers", "clearly,", "with", "care.", "Paris", "is", "not", "a",
            "city?", "naïve", "42", "très", "bien", "\n-",
        ];
        WORDS[self.below(WORDS.len())]
    }
}

/// One random edit of a word list: append, insert, delete, replace, cut the end, or start over.
fn edit(rng: &mut Rng, words: &mut Vec<String>) -> &'static str {
    let n = words.len();
    match rng.below(7) {
        0 | 1 => {
            words.push(rng.word().into());
            "append"
        }
        2 => {
            let at = rng.below(n + 1);
            words.insert(at, rng.word().into());
            "insert"
        }
        3 if n > 1 => {
            words.remove(rng.below(n));
            "delete"
        }
        4 if n > 0 => {
            let at = rng.below(n);
            words[at] = rng.word().into();
            "replace"
        }
        5 if n > 2 => {
            words.truncate(1 + rng.below(n - 1));
            "cut"
        }
        6 => {
            *words = (0..1 + rng.below(4)).map(|_| rng.word().into()).collect();
            "retype"
        }
        _ => {
            words.push(rng.word().into());
            "append"
        }
    }
}

/// Scores `items` through the backend and checks each against a full pass of the same model.
fn check(backend: &mut IncrementalBackend, items: &[ScoreItem], what: &str) {
    let mut got = vec![None; items.len()];
    backend
        .score(items, &|| false, &mut |i, r| got[i] = Some(r))
        .expect("scores");
    for (item, got) in items.iter().zip(got) {
        let got = got.expect("every item answered").expect("scored");
        let full = backend
            .model()
            .score(&[(&item.prompt, &item.response)])
            .expect("full pass")
            .remove(0);
        assert_eq!(got.tokens, full.tokens);
        assert_eq!(got.truncated, full.truncated);
        let d = max_abs_diff(&got.scores, &full.scores);
        assert!(
            d <= TOL,
            "{what}: incremental differs from a full pass by {d} for {:?}",
            item.response
        );
    }
}

fn item(slot: u64, prompt: &[String], response: &[String]) -> ScoreItem {
    ScoreItem {
        slot,
        prompt: prompt.join(" "),
        response: response.join(" "),
    }
}

/// Three candidates under one prompt, edited at random one at a time, with now and then a
/// prompt edit that rescores them all together.
fn edit_sequences(dir: &Path, seed: u64, steps: usize) {
    let mut backend = IncrementalBackend::new(load(dir, 4096), 64 << 20);
    let mut rng = Rng(seed);
    let mut prompt: Vec<String> = "Explain why the sky is blue , in simple words for a child ."
        .split(' ')
        .map(String::from)
        .collect();
    let mut responses: Vec<Vec<String>> = (0..3)
        .map(|_| (0..6).map(|_| rng.word().to_string()).collect())
        .collect();
    let all: Vec<ScoreItem> = (0..3)
        .map(|s| item(s, &prompt, &responses[s as usize]))
        .collect();
    check(&mut backend, &all, "first scoring");
    let (mut tokens, mut computed) = (0, 0);
    for step in 0..steps {
        if step % 9 == 8 {
            let kind = edit(&mut rng, &mut prompt);
            let all: Vec<ScoreItem> = (0..3)
                .map(|s| item(s, &prompt, &responses[s as usize]))
                .collect();
            check(&mut backend, &all, &format!("step {step}: prompt {kind}"));
        } else {
            let slot = rng.below(3);
            let kind = edit(&mut rng, &mut responses[slot]);
            let one = [item(slot as u64, &prompt, &responses[slot])];
            check(&mut backend, &one, &format!("step {step}: response {kind}"));
            let stats = backend.last_stats();
            assert!(
                stats.computed >= backend.options().min_fed,
                "the tail is always fed"
            );
            tokens += stats.tokens;
            computed += stats.computed;
        }
    }
    // Single-response edits must mostly reuse their slot's cache.
    assert!(
        computed * 3 < tokens,
        "{}: computed {computed} of {tokens} tokens",
        dir.display()
    );
}

#[test]
fn edits_give_the_scores_of_a_full_pass() {
    for seed in [7, 1234567] {
        edit_sequences(&fixture("tiny-mha"), seed, 60);
    }
}

#[test]
fn edits_give_the_scores_of_a_full_pass_with_a_sliding_window() {
    let dir = fixture("tiny-gqa-window");
    let cfg = std::fs::read_to_string(dir.join("config.json")).unwrap();
    assert!(
        cfg.contains("\"sliding_window\": 24"),
        "inputs are longer than the window"
    );
    for seed in [99, 31337] {
        edit_sequences(&dir, seed, 60);
    }
}

#[test]
fn appending_a_word_feeds_only_the_word_and_the_tail() {
    for name in ["tiny-mha", "tiny-gqa-window"] {
        let mut backend = IncrementalBackend::new(load(&fixture(name), 4096), 64 << 20);
        let tail = backend.options().min_fed;
        assert_eq!(tail, 4, "` [/INST]` is four tokens");
        let prompt = "Write a short poem about the sea.";
        let mut response = String::from("The waves roll in and the gulls cry over the grey water");
        let item = |r: &str| ScoreItem {
            slot: 0,
            prompt: prompt.into(),
            response: r.into(),
        };
        check(&mut backend, &[item(&response)], "first");
        assert_eq!(
            backend.last_stats().computed,
            backend.last_stats().tokens,
            "nothing to reuse yet"
        );
        response.push_str(" tonight");
        check(&mut backend, &[item(&response)], "append");
        let s = backend.last_stats();
        assert_eq!((s.passes, s.padding), (1, 0));
        assert!(
            s.computed <= tail + 2,
            "{name}: fed {} tokens for one word",
            s.computed
        );
        // The same input again (no score cache here) still recomputes exactly the tail.
        check(&mut backend, &[item(&response)], "again");
        assert_eq!(backend.last_stats().computed, tail);
    }
}

#[test]
fn left_truncation_shifts_everything_and_stays_exact() {
    for name in ["tiny-mha", "tiny-gqa-window"] {
        let mut backend = IncrementalBackend::new(load(&fixture(name), 64), 64 << 20);
        let prompt = "Summarise the following text for me please.";
        // Distinct words, so that a shifted window lines up nowhere.
        let mut response = (0..30)
            .map(|i| format!("item{i}"))
            .collect::<Vec<_>>()
            .join(" ");
        let item = |r: &str| ScoreItem {
            slot: 0,
            prompt: prompt.into(),
            response: r.into(),
        };
        check(&mut backend, &[item(&response)], "truncated");
        response.push_str(" more");
        let items = [item(&response)];
        let mut got = None;
        backend
            .score(&items, &|| false, &mut |_, r| got = Some(r))
            .unwrap();
        assert!(got.unwrap().unwrap().truncated);
        let s = backend.last_stats();
        // Only BOS stays in place when the window slides.
        assert!(
            s.computed >= s.tokens - 1,
            "{name}: reused {} of {} tokens of a shifted input",
            s.tokens - s.computed,
            s.tokens
        );
        check(&mut backend, &items, "truncated append");
    }
}

#[test]
fn candidates_of_one_prompt_compute_it_once() {
    for name in ["tiny-mha", "tiny-gqa-window"] {
        let mut backend = IncrementalBackend::new(load(&fixture(name), 4096), 64 << 20);
        let prompt = "List three facts about the moon and explain each one in a sentence or two, \
                      with an example a ten year old would understand."
            .to_string();
        let items: Vec<ScoreItem> = (0..8)
            .map(|c| ScoreItem {
                slot: c,
                prompt: prompt.clone(),
                response: format!("Candidate {c}: the moon is {} km away.", 384_400 + c * 11),
            })
            .collect();
        check(&mut backend, &items, "eight candidates");
        let s = backend.last_stats().clone();
        assert_eq!(s.passes, 2, "{name}: one prefix pass, one batch: {s:?}");
        let lens: Vec<usize> = items
            .iter()
            .map(|it| {
                backend
                    .model()
                    .encode(&it.prompt, &it.response)
                    .unwrap()
                    .ids
                    .len()
            })
            .collect();
        let shortest = *lens.iter().min().unwrap();
        assert!(
            s.computed < shortest + 8 * 20,
            "{name}: computed {} tokens for 8 inputs of {lens:?}",
            s.computed
        );
        // A ninth candidate continues the prompt cached by the others.
        let ninth = ScoreItem {
            slot: 8,
            prompt: prompt.clone(),
            response: "I do not know.".into(),
        };
        check(&mut backend, &[ninth], "a new candidate");
        assert!(backend.last_stats().computed < 20);
    }
}

#[test]
fn the_budget_bounds_the_cached_bytes() {
    let dir = fixture("tiny-gqa-window");
    let mut backend = IncrementalBackend::new(load(&dir, 4096), usize::MAX);
    let item = |slot: u64, r: &str| ScoreItem {
        slot,
        prompt: "How do I bake bread?".into(),
        response: r.into(),
    };
    check(
        &mut backend,
        &[item(0, "Mix flour, water, salt and yeast.")],
        "one",
    );
    let one = backend.cache_bytes();
    assert!(one > 0);
    // Room for about two such caches.
    let mut backend = IncrementalBackend::new(load(&dir, 4096), one * 5 / 2);
    for slot in 0..6 {
        let r = format!("Step {slot}: mix flour, water, salt and yeast, then wait.");
        check(&mut backend, &[item(slot, &r)], "bounded");
        assert!(backend.cache_bytes() <= one * 5 / 2);
    }
    let slots = backend.store().slots();
    assert!(slots.len() <= 2, "{slots:?}");
    assert!(slots.contains(&5), "the newest is kept: {slots:?}");
    // An evicted slot is scored from scratch, and right.
    check(&mut backend, &[item(0, "Mix flour and water.")], "evicted");
}

#[test]
fn a_cancelled_pass_leaves_the_caches_usable() {
    let dir = fixture("tiny-mha");
    let mut backend = IncrementalBackend::new(load(&dir, 4096), 64 << 20);
    let items: Vec<ScoreItem> = (0..4)
        .map(|c| ScoreItem {
            slot: c,
            prompt: "Name a colour and say why you like it, in one sentence.".into(),
            response: format!("I like colour number {c} because it is calm."),
        })
        .collect();
    // Let the prefix pass (two layers) finish, then stop part way through the batch.
    let polls = Cell::new(0);
    let stop = || {
        polls.set(polls.get() + 1);
        polls.get() > 3
    };
    let result = backend.score(&items, &stop, &mut |_, _| {});
    assert!(matches!(result, Err(ScoreError::Cancelled)));
    check(&mut backend, &items, "after a cancel");
    let mut edited = items.clone();
    edited[2].response.push_str(" Truly.");
    check(&mut backend, &edited[2..3], "edit after a cancel");
}

#[test]
fn score_command_groups_by_prompt_and_keeps_input_order() {
    let model = load(&fixture("tiny-gqa-window"), 4096);
    let mut lines = String::new();
    let prompts = [
        "What is the capital of France? Answer in one word, then explain.",
        "Give me a recipe for pancakes.",
    ];
    for i in 0..11 {
        if i == 4 {
            lines.push_str("{not json\n");
        }
        let p = prompts[i % 2];
        let r = format!("Answer {i}: {}", "so ".repeat(i));
        lines.push_str(&serde_json::json!({"id": i, "prompt": p, "response": r}).to_string());
        lines.push('\n');
    }
    let records = parse_jsonl(lines.as_bytes());
    for batch in [1, 3, 8] {
        let mut pipeline = Pipeline::local(model.clone());
        pipeline.set_batch(batch);
        let results = score_records(&mut pipeline, &records);
        assert_eq!(results.len(), records.len());
        for (r, got) in records.iter().zip(&results) {
            match r {
                Record::Bad { line, .. } => {
                    assert_eq!(*line, 5);
                    assert!(got.as_ref().unwrap_err().to_string().contains("JSON"));
                }
                Record::Pair {
                    prompt, response, ..
                } => {
                    let full = model.score(&[(prompt, response)]).unwrap().remove(0);
                    let got = got.as_ref().expect("scored");
                    assert_eq!(got.tokens, full.tokens);
                    let d = max_abs_diff(&got.scores, &full.scores);
                    assert!(d <= TOL, "batch {batch}: differs by {d}");
                }
            }
        }
    }
}

#[test]
fn the_engine_rescores_edits_with_the_incremental_backend() {
    use dpa_explorer::engine::{model_loader, Engine, EngineEvent};
    use dpa_explorer::hub::{HubOptions, ModelSource};
    use std::sync::mpsc;
    use std::time::Duration;

    let dir = fixture("tiny-gqa-window");
    let options = LoadOptions {
        device: DeviceChoice::Cpu,
        dtype: DTypeChoice::F32,
        max_tokens: 4096,
    };
    let loader = model_loader(
        ModelSource::Local(dir.clone()),
        HubOptions::from_env(),
        options,
        None,
    );
    let (tx, rx) = mpsc::channel();
    let engine = Engine::spawn(loader, 16, move |ev| {
        let _ = tx.send(ev);
    });
    let reference = load(&dir, 4096);
    let mut response = String::from("Paris is the capital");
    for word in ["", " of", " France", ".", " It is large."] {
        response.push_str(word);
        let id = engine.score(vec![ScoreItem {
            slot: 3,
            prompt: "What is the capital of France?".into(),
            response: response.clone(),
        }]);
        let scores = loop {
            match rx
                .recv_timeout(Duration::from_secs(30))
                .expect("engine answers")
            {
                EngineEvent::Scored {
                    request, result, ..
                } if request == id => break result.expect("scored").scores,
                EngineEvent::LoadFailed { error } => panic!("{error}"),
                _ => {}
            }
        };
        let full = reference
            .score(&[("What is the capital of France?", &response)])
            .unwrap()
            .remove(0);
        assert!(max_abs_diff(&scores, &full.scores) <= TOL, "{response:?}");
    }
}

/// A cache kept on the CPU grows in place as words are appended, and caches that share its
/// storage keep their own keys: a second extension of the same cache copies instead of
/// writing over the first's, a truncation is extended by copy, and when the first extension
/// goes its room is given back.
#[test]
fn extensions_in_place_keep_every_shared_cache_exact() {
    for name in ["tiny-mha", "tiny-gqa-window"] {
        let model = load(&fixture(name), 4096);
        let dec = model.decoder();
        let ids: Vec<u32> = (0..80).map(|i| 100 + 37 * i).collect();
        let full = |ids: &[u32]| -> Vec<f32> {
            let out = dec.forward(None, &[ids], false, &|| false).unwrap();
            out.logits.to_vec2::<f32>().unwrap().remove(0)
        };
        let extend = |cache: &dpa_explorer::model::KvCache, tail: &[u32]| {
            let out = dec.forward(Some(cache), &[tail], true, &|| false).unwrap();
            let scores = out.logits.to_vec2::<f32>().unwrap().remove(0);
            (scores, out.caches.unwrap().remove(0))
        };
        let close = |got: &[f32], want: &[f32], what: &str| {
            let diff = max_abs_diff(got, want);
            assert!(diff <= TOL, "{name}, {what}: off by {diff}");
        };
        let base = dec
            .forward(None, &[&ids[..30]], true, &|| false)
            .unwrap()
            .caches
            .unwrap()
            .remove(0);
        let (a_scores, a) = extend(&base, &ids[30..35]);
        close(&a_scores, &full(&ids[..35]), "first extension");
        assert!(
            a.shares_storage(&base),
            "{name}: the first word is written in place"
        );
        // Another extension of the same cache while the first lives: its own storage.
        let other: Vec<u32> = [&ids[..30], &[7, 8, 9]].concat();
        let (b_scores, b) = extend(&base, &other[30..]);
        close(&b_scores, &full(&other), "second extension");
        assert!(!b.shares_storage(&base), "{name}: the room was taken");
        // The first extension still reads its own keys, and grows in place.
        let (a2_scores, a2) = extend(&a, &ids[35..40]);
        close(&a2_scores, &full(&ids[..40]), "extension of the first");
        assert!(a2.shares_storage(&base));
        // A truncation is extended by copy and leaves the longer cache intact.
        let cut: Vec<u32> = [&ids[..32], &[11, 12]].concat();
        let (c_scores, _c) = extend(&a.truncate(32).unwrap(), &cut[32..]);
        close(&c_scores, &full(&cut), "extension of a truncation");
        let (a3_scores, _) = extend(&a2, &ids[40..44]);
        close(
            &a3_scores,
            &full(&ids[..44]),
            "after the truncation's extension",
        );
        // With the extensions gone, the room is the base's to give again.
        drop((a, a2, b));
        let (d_scores, d) = extend(&base, &ids[30..33]);
        close(&d_scores, &full(&ids[..33]), "after the room came back");
        assert!(d.shares_storage(&base), "{name}: the room came back");
        // Past the room's end (32 positions after 30): a copy, with new room.
        let (e_scores, e) = extend(&d, &ids[33..70]);
        close(&e_scores, &full(&ids[..70]), "past the room");
        assert!(!e.shares_storage(&base));
        let (f_scores, f) = extend(&e, &ids[70..80]);
        close(&f_scores, &full(&ids[..80]), "in the new room");
        assert!(f.shares_storage(&e));
    }
}
