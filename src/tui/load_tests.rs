//! What the explorer says while a model loads: its layers, the time the rest should take, and
//! how long the first score will take from this machine's measured rate.

use std::time::{Duration, Instant};

use super::tests::{config, new_app, screen, FakeScorer};
use super::*;
use crate::engine::EngineEvent;

#[test]
fn loading_shows_its_layers_and_the_time_left() {
    use crate::engine::LoadStage;
    use crate::model::LoadPhase;
    let (mut app, _) = new_app();
    let t0 = Instant::now();
    let layers = |app: &mut App, layer: usize, at: Instant| {
        app.handle(
            Event::Engine(EngineEvent::Progress(LoadStage::Layers {
                phase: LoadPhase::Quantising,
                layer,
                layers: 32,
            })),
            at,
        );
    };
    layers(&mut app, 0, t0);
    assert_eq!(app.load_eta, None);
    layers(&mut app, 8, t0 + Duration::from_secs(4));
    // Eight layers in four seconds: 24 to go at that pace.
    assert_eq!(app.load_eta, Some(Duration::from_secs(12)));
    let s = screen(&app, 160, 48);
    assert!(s.contains("Quantising the weights"), "{s}");
    assert!(s.contains("layer 8 of 32 · about 12.0 s left"), "{s}");
    assert!(s.contains("The first score is timed"), "{s}");
    assert!(s.contains("loading 8/32"), "{s}");
}

#[test]
fn the_first_score_is_timed_and_estimated_at_the_next_start() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = config();
    c.paths.autosave = Some(dir.path().join("autosave.json"));
    let scorer = FakeScorer::default();
    let mut app = App::new(c.clone(), Box::new(scorer.clone()));
    let t = Instant::now();
    super::tests::ready(&mut app, t);
    app.set_texts("What is two plus two?", &["Four.".into(), "4".into()]);
    app.rescore_at = Some(t);
    app.handle(Event::Tick, t);
    let id = scorer.requests.borrow().last().unwrap().0;
    super::tests::answer(&mut app, &scorer, id, t);
    // Two inputs of 42 tokens in the engine's 900 ms.
    let rate = app.rates.get(&app.rate_key()).expect("measured");
    assert!((rate.tokens_per_s - 84.0 / 0.9).abs() < 1e-6, "{rate:?}");
    assert!(dir.path().join("rates.json").is_file());
    // Only the first scoring after a load is the first score.
    app.set_texts("What is two plus two?", &["Four!".into()]);
    app.rescore_at = Some(t);
    app.handle(Event::Tick, t);
    let id = scorer.requests.borrow().last().unwrap().0;
    super::tests::answer(&mut app, &scorer, id, t);
    assert_eq!(app.rates.get(&app.rate_key()).unwrap(), rate);
    // The next start, while loading, says what the first score will take.
    let mut again = App::new(c, Box::new(FakeScorer::default()));
    let text = again.first_score_estimate();
    assert!(text.contains("about 93 tokens/s"), "{text}");
    again.set_texts("What is two plus two?", &["Four.".into()]);
    let text = again.first_score_estimate();
    assert!(text.starts_with("First score: about"), "{text}");
    assert!(text.contains("93 tokens/s"), "{text}");
}

#[test]
fn the_kept_weights_check_shows_until_it_ends_with_what_is_left_at_its_rate() {
    let (mut app, _) = new_app();
    let t0 = Instant::now();
    let check = |app: &mut App, checked: u64, done: bool, at: Duration| {
        app.handle(
            Event::Engine(EngineEvent::WeightCheck {
                checked,
                total: 4 << 30,
                done,
            }),
            t0 + at,
        );
    };
    check(&mut app, 1 << 30, false, Duration::ZERO);
    let s = screen(&app, 160, 48);
    assert!(s.contains("checking kept weights 25% "), "no rate yet: {s}");
    // Too soon for a rate to go by.
    check(&mut app, 3 << 29, false, Duration::from_millis(500));
    let s = screen(&app, 160, 48);
    assert!(!s.contains("left"), "{s}");
    // 1 GiB more in 2 s: the 2 GiB still to check take about 4 s.
    check(&mut app, 2 << 30, false, Duration::from_secs(2));
    let s = screen(&app, 160, 48);
    assert!(
        s.contains("checking kept weights 50%, about 4 s left"),
        "{s}"
    );
    check(&mut app, 4 << 30, true, Duration::from_secs(4));
    let s = screen(&app, 160, 48);
    assert!(!s.contains("checking kept weights"), "{s}");
    // A later check (a reload after damage) measures its own rate.
    check(&mut app, 0, false, Duration::from_secs(60));
    let s = screen(&app, 160, 48);
    assert!(s.contains("checking kept weights 0% "), "{s}");
}
