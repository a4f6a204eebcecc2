//! The dial's plane chosen by the user, directions that wait for the model's attributes, a
//! gating model's own direction on the dial, and the bars' group names while they scroll.

use std::time::{Duration, Instant};

use crossterm::event::KeyCode;

use super::tests::{config, flash, info, key, new_app, scored_app, screen, FakeScorer};
use super::*;
use crate::engine::EngineEvent;
use crate::model::config::ARMO_LABELS;
use crate::model::ModelInfo;
use crate::preference::Direction;
use crate::scoring::{Gating, Scored};

fn armo_labels() -> Vec<String> {
    ARMO_LABELS.iter().map(|s| s.to_string()).collect()
}

fn armo_ready(app: &mut App, now: Instant) {
    app.handle(
        Event::Engine(EngineEvent::Ready {
            info: ModelInfo {
                labels: armo_labels(),
                gating: true,
                ..info()
            },
            warnings: vec![],
        }),
        now,
    );
}

/// ArmoRM-shaped scores and gating for the selected candidate's text.
fn armo_scored(app: &mut App, scorer: &FakeScorer, now: Instant) -> Gating {
    app.rescore_at = Some(now);
    app.handle(Event::Tick, now);
    let (id, items) = scorer.requests.borrow().last().cloned().expect("a request");
    let scores: Vec<f32> = (0..19).map(|i| 0.05 * i as f32 - 0.3).collect();
    let weights = vec![1.0 / 19.0; 19];
    // Mostly helpfulness and correctness, a little against verbosity.
    let mut coefficients = vec![0.01f32; 19];
    coefficients[0] = 0.6;
    coefficients[1] = 0.5;
    coefficients[4] = -0.2;
    let score = scores.iter().zip(&coefficients).map(|(r, c)| r * c).sum();
    let gating = Gating {
        weights,
        coefficients,
        score,
    };
    for item in items {
        app.handle(
            Event::Engine(EngineEvent::Scored {
                request: id,
                item,
                result: Ok(Scored {
                    gating: Some(gating.clone()),
                    tokens: 30,
                    truncated: false,
                    scores: scores.clone(),
                    warnings: vec![],
                }),
                cached: false,
                elapsed: Duration::from_millis(10),
            }),
            now,
        );
    }
    gating
}

#[test]
fn x_and_y_choose_the_plane_and_r_follows() {
    let (mut app, _scorer, t) = scored_app("p", &["a"]);
    app.apply(Action::Focus(Focus::Dial), t);
    let r = app.candidate_views()[0].scores.clone().unwrap();
    key(&mut app, KeyCode::Char('x'), t);
    assert_eq!(app.plane_axes(), Some((1, 4)));
    assert!(
        flash(&app).contains("correctness × verbosity"),
        "{}",
        flash(&app)
    );
    // θ = 0° now weighs correctness alone.
    let got = app.candidate_views()[0].reward.unwrap();
    assert!((got - r[1] as f64).abs() < 1e-6, "{got} vs {}", r[1]);
    assert_eq!(
        app.dial.direction(&app.labels).describe(),
        "θ = 0° over correctness × verbosity"
    );
    // The dial and the scatter name the new plane.
    assert!(screen(&app, 160, 48).contains("corr"));
    app.apply(Action::SetView(View::Scatter), t);
    assert!(screen(&app, 160, 48).contains("correctness × verbosity"));
    // y passes over the x axis's attribute; X goes back; the default plane is no choice.
    key(&mut app, KeyCode::Char('y'), t);
    assert_eq!(app.plane_axes(), Some((1, 5)));
    key(&mut app, KeyCode::Char('X'), t);
    key(&mut app, KeyCode::Char('Y'), t);
    assert_eq!(app.plane_axes(), Some((0, 4)));
    assert_eq!(app.dial.axes, None);
    // y onto the x axis's attribute swaps the two.
    for _ in 0..6 {
        key(&mut app, KeyCode::Char('y'), t);
    }
    assert_eq!(app.plane_axes(), Some((0, 1)));
}

#[test]
fn the_plane_is_kept_in_sessions_in_both_modes() {
    let (mut app, _scorer, t) = scored_app("p", &["a"]);
    app.apply(Action::Focus(Focus::Dial), t);
    key(&mut app, KeyCode::Char('x'), t);
    key(&mut app, KeyCode::Right, t);
    for mode in [DialMode::Angle, DialMode::Weights] {
        if mode == DialMode::Weights {
            key(&mut app, KeyCode::Char('m'), t);
        }
        let s = app.session();
        let json = serde_json::to_string(&s).unwrap();
        let back: crate::tui::session::Session = serde_json::from_str(&json).unwrap();
        let (mut other, _) = new_app();
        super::tests::ready(&mut other, t);
        other.apply_session(back);
        assert_eq!(other.dial.mode, mode);
        assert_eq!(other.plane_axes(), Some((1, 4)), "{mode:?}");
        assert_eq!(other.unit().unwrap(), app.unit().unwrap(), "{mode:?}");
    }
}

#[test]
fn in_weights_mode_the_cursor_attribute_goes_on_an_axis() {
    let (mut app, _scorer, t) = scored_app("p", &["a"]);
    app.apply(Action::Focus(Focus::Dial), t);
    key(&mut app, KeyCode::Char('m'), t);
    let before = app.unit().unwrap();
    key(&mut app, KeyCode::Down, t);
    key(&mut app, KeyCode::Down, t);
    key(&mut app, KeyCode::Char('y'), t);
    assert_eq!(app.plane_axes(), Some((0, 2)));
    // Only the charts' plane moved: R keeps the weights.
    assert_eq!(app.unit().unwrap(), before);
    assert!(
        flash(&app).contains("helpfulness × coherence"),
        "{}",
        flash(&app)
    );
    // Back to the angle: θ is read in the new plane, where the weights have no coherence.
    key(&mut app, KeyCode::Char('m'), t);
    assert_eq!(app.dial.degrees, 0.0);
}

#[test]
fn a_direction_naming_another_models_attributes_waits_for_that_model() {
    let mut c = config();
    c.direction = Direction::Weights {
        weights: vec![("is_safe".into(), 1.0), ("prometheus-score".into(), 0.5)],
    };
    c.axes = Some(("prometheus-score".into(), "is_safe".into()));
    let mut app = App::new(c, Box::new(FakeScorer::default()));
    // DPA's attributes are shown until the model is ready: the direction waits.
    assert!(app.pending_direction.is_some());
    let t = Instant::now();
    armo_ready(&mut app, t);
    assert!(app.pending_direction.is_none());
    assert_eq!(app.dial.mode, DialMode::Weights);
    assert_eq!(app.dial.weights[10], 1.0);
    assert_eq!(app.dial.weights[11], 0.5);
    assert_eq!(app.plane_axes(), Some((11, 10)));
    // One that fits no model is said to, and the dial keeps its default.
    let mut c = config();
    c.direction = Direction::Weights {
        weights: vec![("nonsense".into(), 1.0)],
    };
    c.axes = Some(("nonsense".into(), "verbosity".into()));
    let mut app = App::new(c, Box::new(FakeScorer::default()));
    armo_ready(&mut app, t);
    assert!(flash(&app).contains("does not fit") || flash(&app).contains("nonsense"));
    assert_eq!(app.dial.axes, None);
    assert_eq!(app.plane_axes(), Some((0, 4)));
}

#[test]
fn a_dpa_direction_carries_over_to_another_model_by_name() {
    let (mut app, _) = new_app();
    let t = Instant::now();
    app.apply(Action::Focus(Focus::Dial), t);
    key(&mut app, KeyCode::Char('m'), t);
    key(&mut app, KeyCode::Down, t);
    key(&mut app, KeyCode::Right, t);
    // correctness +0.1 beside helpfulness 1.0, by name, onto ArmoRM's 19.
    armo_ready(&mut app, t);
    assert_eq!(app.dial.weights.len(), 19);
    assert_eq!(app.dial.weights[0], 1.0);
    assert_eq!(app.dial.weights[1], 0.1);
}

#[test]
fn a_gating_models_direction_is_drawn_and_can_be_taken() {
    let (mut app, scorer) = new_app();
    let t = Instant::now();
    armo_ready(&mut app, t);
    app.set_texts("p", &["a".into()]);
    let gating = armo_scored(&mut app, &scorer, t);
    let view = &app.candidate_views()[0];
    assert!(view.model_direction.is_some());
    let s = screen(&app, 160, 48);
    assert!(s.contains("gating R = "), "{s}");
    assert!(s.contains('◆'), "{s}");
    // atan2(−0.2, 0.6) ≈ −18°; the plane holds √(0.6² + 0.2²) of the length.
    assert!(s.contains("◆ θ -18°"), "{s}");
    assert!(s.contains("% in plane"), "{s}");
    app.apply(Action::Focus(Focus::Dial), t);
    key(&mut app, KeyCode::Char('g'), t);
    assert_eq!(app.dial.mode, DialMode::Weights);
    let c: Vec<f64> = gating.coefficients.iter().map(|&c| c as f64).collect();
    assert_eq!(app.dial.weights, c);
    let norm = c.iter().map(|w| w * w).sum::<f64>().sqrt();
    let r = app.candidate_views()[0].reward.unwrap();
    assert!(
        (r * norm - gating.score as f64).abs() < 1e-4,
        "{r} · {norm}"
    );
    assert!(flash(&app).contains("gating direction"), "{}", flash(&app));
    // A model without gating says why nothing happened.
    let (mut dpa, _, t) = scored_app("p", &["a"]);
    dpa.apply(Action::Focus(Focus::Dial), t);
    key(&mut dpa, KeyCode::Char('g'), t);
    assert_eq!(dpa.dial.mode, DialMode::Angle);
    assert!(flash(&dpa).contains("no direction of its own"));
}

#[test]
fn scrolled_bars_name_the_group_of_their_first_row() {
    let (mut app, scorer) = new_app();
    let t = Instant::now();
    armo_ready(&mut app, t);
    app.set_texts("p", &["a".into()]);
    armo_scored(&mut app, &scorer, t);
    app.apply(Action::Focus(Focus::Dial), t);
    key(&mut app, KeyCode::Char('m'), t);
    for _ in 0..16 {
        key(&mut app, KeyCode::Down, t);
    }
    // At 80×24 the bars show eleven lines: the group of the first attribute shown (its
    // header scrolled away) is named in the note above, the others have their headers.
    let s = screen(&app, 80, 24);
    let top = s.lines().find(|l| l.contains('↑')).expect("a note above");
    assert!(top.contains("BeaverTails (cont.) · ↑ 10 more"), "{s}");
    let next = s.lines().skip_while(|l| !l.contains('↑')).nth(1).unwrap();
    assert!(next.contains("is_safe"), "{s}");
    for header in ["Prometheus", "Argilla", "Code"] {
        assert!(
            s.lines().any(|l| l.contains(&format!("│{header} "))),
            "{header}: {s}"
        );
    }
}

#[test]
fn only_dpa_offers_the_helpsteer_view() {
    let (mut app, _) = new_app();
    let t = Instant::now();
    app.apply(Action::ToggleScale, t);
    assert_eq!(app.scale, Scale::HelpSteer);
    app.apply(Action::ToggleScale, t);
    armo_ready(&mut app, t);
    app.apply(Action::ToggleScale, t);
    assert_eq!(app.scale, Scale::Raw);
    assert!(flash(&app).contains("only DPA"), "{}", flash(&app));
}
