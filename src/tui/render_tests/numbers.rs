//! Every number on screen in full and the right one: θ, v, R and each bar's value and change at
//! every size from 80×24 (negative and three-digit values), R as v · r in weights mode,
//! emptied and stale candidates kept apart from fresh ones, and charts that can be read.

use std::time::Instant;

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;

use super::{draw, scene, screen_text};
use crate::preference::{self, Direction};
use crate::tui::app::tests::scored_app;
use crate::tui::app::{Action, App, Focus, View};
use crate::tui::layout;

const FOUR_SIZES: [(u16, u16); 4] = [(80, 24), (100, 30), (160, 48), (220, 60)];

/// Scores with negative and three-digit values, and big moves since the previous ones.
const WIDE: [f32; 10] = [
    -112.5, 104.27, -118.4, 33.49, 135.85, 63.83, -5.59, 100.0, 59.55, 46.47,
];
const BEFORE: [f32; 10] = [
    87.5, 4.27, 0.0, 33.49, 35.85, 64.83, 5.59, 0.0, 59.55, 46.47,
];

/// The scene with candidate A holding `WIDE` (moved from `BEFORE`) at θ = −15°.
fn wide_scene() -> App {
    let mut app = scene();
    app.candidates[0].result.as_mut().unwrap().scored.scores = WIDE.to_vec();
    app.candidates[0].previous = Some(BEFORE.to_vec());
    app.apply(Action::SetAngle(-15.0), Instant::now());
    app
}

/// The text of the cells inside `r`, one line per row.
fn region(buf: &Buffer, r: Rect) -> String {
    let mut out = String::new();
    for y in r.y..r.bottom() {
        for x in r.x..r.right() {
            out.push_str(buf[(x, y)].symbol());
        }
        out.push('\n');
    }
    out
}

fn unit(app: &App) -> Vec<f64> {
    app.unit().expect("a direction")
}

#[test]
fn headline_numbers_are_never_cut() {
    for (w, h) in FOUR_SIZES {
        let mut app = wide_scene();
        let buf = draw(&mut app, w, h);
        let text = screen_text(&buf);
        let r = preference::reward(&unit(&app), &WIDE).unwrap();
        let a = layout::areas(buf.area).unwrap();
        let dial = region(&buf, a.dial);
        for want in [
            "θ = -15°".to_string(),
            "v = (0.97, -0.26)".to_string(),
            format!("R = {r:.2}"),
        ] {
            assert!(dial.contains(&want), "{w}x{h}: {want} missing:\n{dial}");
        }
        let bars = region(&buf, a.bars);
        for (v, p) in WIDE.iter().zip(BEFORE) {
            let value = format!("{v:.2}");
            assert!(bars.contains(&value), "{w}x{h}: {value} missing:\n{bars}");
            let d = *v as f64 - p as f64;
            let change = format!("{d:+.2}");
            assert!(bars.contains(&change), "{w}x{h}: {change} missing:\n{bars}");
        }
        insta::assert_snapshot!(format!("numbers_{w}x{h}"), text);
    }
}

#[test]
fn weights_mode_r_is_never_cut() {
    for (w, h) in FOUR_SIZES {
        let mut app = wide_scene();
        app.apply(Action::ToggleDialMode, Instant::now());
        let buf = draw(&mut app, w, h);
        let a = layout::areas(buf.area).unwrap();
        let dial = region(&buf, a.dial);
        let r = preference::reward(&unit(&app), &WIDE).unwrap();
        assert!(
            dial.contains(&format!("R = {r:.2}")),
            "{w}x{h}: R = {r:.2} missing:\n{dial}"
        );
    }
}

#[test]
fn the_dial_knob_shows_at_every_angle() {
    for (w, h) in FOUR_SIZES {
        for deg in [-90.0, -45.0, 0.0, 45.0, 90.0, 135.0, 180.0] {
            let mut app = scene();
            app.apply(Action::SetAngle(deg), Instant::now());
            let buf = draw(&mut app, w, h);
            let a = layout::areas(buf.area).unwrap();
            assert!(
                region(&buf, a.dial).contains('●'),
                "{w}x{h} at {deg}°:\n{}",
                region(&buf, a.dial)
            );
        }
    }
}

/// Empties candidate `i`'s text, keeping its old result.
fn empty(app: &mut App, i: usize) {
    app.candidates[i].editor = Default::default();
    app.rescore_at = None;
}

#[test]
fn an_emptied_candidate_is_ranked_last_unstarred_and_off_the_charts() {
    let mut app = scene();
    // B has the best R in the scene; empty it.
    let best = crate::tui::state::order(&app.candidate_views())[0];
    assert_eq!(best, 1);
    empty(&mut app, 1);
    app.apply(Action::SetView(View::Ranking), Instant::now());
    let text = screen_text(&draw(&mut app, 100, 32));
    let rows: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("A✓") || l.contains("B ") || l.contains("C~"))
        .filter(|l| l.contains("R "))
        .collect();
    let b = rows
        .iter()
        .position(|l| l.contains("(empty)"))
        .unwrap_or_else(|| panic!("no empty row:\n{text}"));
    assert_eq!(b, rows.len() - 1, "empty ranked last:\n{text}");
    assert!(!rows[b].contains('★'), "empty starred:\n{text}");
    assert!(rows[b].contains('—'), "empty shows an R:\n{text}");
    // The stale C comes after the fresh A, and A is the one starred.
    let a = rows.iter().position(|l| l.contains("A✓")).unwrap();
    let c = rows.iter().position(|l| l.contains("C~")).unwrap();
    assert!(a < c, "{text}");
    assert!(rows[a].contains('★') && !rows[c].contains('★'), "{text}");
    assert!(rows[c].contains("(stale)"), "{text}");
    // The dial shows no R for the empty text.
    app.apply(Action::SelectCandidate(1), Instant::now());
    let buf = draw(&mut app, 100, 32);
    let dial = region(&buf, layout::areas(buf.area).unwrap().dial);
    assert!(dial.contains("R = —"), "{dial}");
    // Not on the scatter, not in its legend.
    app.apply(Action::SetView(View::Scatter), Instant::now());
    let text = screen_text(&draw(&mut app, 100, 32));
    assert!(!text.contains("B R="), "{text}");
    assert!(text.contains("C~ stale R="), "{text}");
}

#[test]
fn all_weight_on_correctness_draws_no_projection() {
    let mut app = scene();
    let labels = app.labels.clone();
    app.dial.set_direction(
        &Direction::Weights {
            weights: vec![("correctness".into(), 1.0)],
        },
        &labels,
    );
    app.apply(Action::SetView(View::Scatter), Instant::now());
    let buf = draw(&mut app, 160, 48);
    let text = screen_text(&buf);
    let panel = region(&buf, layout::areas(buf.area).unwrap().panel);
    assert!(!panel.contains('◆'), "projection drawn:\n{panel}");
    assert!(text.contains("no part in this plane"), "{text}");
    // Each fresh candidate's R is its correctness score.
    for v in app.candidate_views().iter().filter(|v| v.name != "C") {
        let r = v.scores.as_ref().unwrap()[1];
        assert!(
            text.contains(&format!("{} R={r:.2}", v.name)),
            "{} R={r:.2} missing:\n{text}",
            v.name
        );
    }
}

#[test]
fn mixed_weights_legend_shows_true_r() {
    let mut app = scene();
    let labels = app.labels.clone();
    app.dial.set_direction(
        &Direction::Weights {
            weights: vec![
                ("correctness".into(), 1.0),
                ("helpsteer-helpfulness".into(), 1.0),
            ],
        },
        &labels,
    );
    app.apply(Action::SetView(View::Scatter), Instant::now());
    let buf = draw(&mut app, 160, 48);
    let text = screen_text(&buf);
    let u = unit(&app);
    for i in [0, 1] {
        let c = &app.candidates[i];
        let s = &c.result.as_ref().unwrap().scored.scores;
        let r = preference::reward(&u, s).unwrap();
        let projected = s[0] as f64;
        assert!((r - projected).abs() > 0.01, "test needs R ≠ projection");
        assert!(
            text.contains(&format!("{} R={r:.2}", c.name)),
            "{} R={r:.2} missing:\n{text}",
            c.name
        );
    }
    let panel = region(&buf, layout::areas(buf.area).unwrap().panel);
    assert!(!panel.contains('◆'), "projection drawn:\n{panel}");
}

#[test]
fn scatter_ticks_follow_scores_near_zero() {
    let mut app = scene();
    let near_zero = [(0.82f32, -0.31f32), (-0.44, 0.57), (0.12, 0.93)];
    for (i, (x, y)) in near_zero.iter().enumerate() {
        let s = &mut app.candidates[i].result.as_mut().unwrap().scored.scores;
        s[0] = *x;
        s[4] = *y;
    }
    app.apply(Action::SetView(View::Scatter), Instant::now());
    let buf = draw(&mut app, 160, 48);
    let a = layout::areas(buf.area).unwrap();
    let panel = region(&buf, a.panel);
    // Ticks at values that fit the data, not 0–100.
    assert!(
        panel.contains("0.5"),
        "no tick values near the data:\n{panel}"
    );
    assert!(!panel.contains("100"), "a 0–100 axis:\n{panel}");
    // Three markers in three cells.
    let markers = panel.chars().filter(|c| *c == '●' || *c == '○').count();
    assert_eq!(markers, 3, "{panel}");
}

#[test]
fn twelve_candidates_get_labels_that_do_not_collide() {
    let responses: Vec<String> = (0..12).map(|i| format!("response number {i}")).collect();
    let refs: Vec<&str> = responses.iter().map(|s| s.as_str()).collect();
    let (mut app, _, t) = scored_app("a prompt", &refs);
    // All close together, as a held-out model scores them.
    for i in 0..12 {
        let s = &mut app.candidates[i].result.as_mut().unwrap().scored.scores;
        s[0] = 40.0 + (i % 4) as f32 * 3.0;
        s[4] = 40.0 + (i / 4) as f32 * 3.0;
    }
    app.apply(Action::SetView(View::Scatter), t);
    app.apply(Action::Focus(Focus::Dial), t);
    let buf = draw(&mut app, 160, 48);
    let a = layout::areas(buf.area).unwrap();
    let plot = Rect {
        height: a.panel.height - 5,
        ..layout::inner(a.panel)
    };
    let text = region(&buf, plot);
    for c in &app.candidates {
        assert_eq!(
            text.matches(c.name.as_str()).count(),
            1,
            "label {} missing or doubled:\n{text}",
            c.name
        );
    }
}

#[test]
fn sweep_is_drawn_and_its_tab_readable_at_80x24() {
    let mut app = scene();
    app.apply(Action::SetView(View::Sweep), Instant::now());
    let buf = draw(&mut app, 80, 24);
    let a = layout::areas(buf.area).unwrap();
    let title = region(
        &buf,
        Rect {
            height: 1,
            ..a.panel
        },
    );
    assert!(title.contains("Sweep"), "tab cut: {title}");
    let inside = region(&buf, layout::inner(a.panel));
    let braille = inside
        .chars()
        .filter(|c| ('\u{2801}'..='\u{28ff}').contains(c))
        .count();
    assert!(braille > 10, "no curves:\n{inside}");
    assert!(
        inside.contains("-90°") && inside.contains("90°"),
        "{inside}"
    );
}

#[test]
fn sweep_ticks_sit_under_their_angle() {
    let mut app = scene();
    app.apply(Action::SetView(View::Sweep), Instant::now());
    app.apply(Action::SetAngle(0.0), Instant::now());
    let buf = draw(&mut app, 160, 48);
    let text = screen_text(&buf);
    // The "now" line at θ = 0 and the "0°" tick share a column.
    let a = layout::areas(buf.area).unwrap();
    let tick_row = text
        .lines()
        .enumerate()
        .skip(a.panel.y as usize)
        .find(|(_, l)| l.contains("-90°"))
        .map(|(i, _)| i)
        .expect("tick row");
    let line: Vec<char> = text.lines().nth(tick_row).unwrap().chars().collect();
    let zero = (0..line.len() - 1)
        .find(|&i| line[i] == '0' && line[i + 1] == '°' && (i == 0 || line[i - 1] == ' '))
        .expect("0° tick");
    // The vertical axis at θ = 0 runs through the column of the tick's 0 or its °.
    let above: Vec<char> = text.lines().nth(tick_row - 2).unwrap().chars().collect();
    assert!(
        [zero, zero + 1].iter().any(|&c| above
            .get(c)
            .is_some_and(|ch| ('\u{2801}'..='\u{28ff}').contains(ch))),
        "0° tick not under θ = 0:\n{}",
        text.lines()
            .skip(tick_row - 3)
            .take(4)
            .collect::<Vec<_>>()
            .join("\n")
    );
}

#[test]
fn snapshot_charts_at_the_smallest_size() {
    for v in [View::Ranking, View::Scatter, View::Sweep] {
        let mut app = wide_scene();
        app.apply(Action::SetView(v), Instant::now());
        let text = screen_text(&draw(&mut app, 80, 24));
        insta::assert_snapshot!(format!("charts_{v:?}_80x24"), text);
    }
}
