//! The screen as drawn on ratatui's TestBackend: snapshots of the main screen, help, scatter
//! and sweep at two sizes, and checks of what must be on screen.

use std::time::Instant;

use crossterm::event::{KeyCode, KeyModifiers};
use ratatui::backend::TestBackend;
use ratatui::buffer::Buffer;
use ratatui::style::Modifier;
use ratatui::Terminal;

use super::app::tests::{answer, fake_scores, key, new_app, press, scored_app, type_text};
use super::app::{Action, App, Event, Focus, Overlay, View};
use super::view::view;
use crate::engine::{EngineEvent, LoadStage};
use crate::preference::short_name;

mod numbers;

const SIZES: [(u16, u16); 2] = [(100, 32), (160, 48)];

/// The buffer as text, one line per row, trailing blanks trimmed.
pub fn screen_text(buf: &Buffer) -> String {
    let mut out = String::new();
    for y in 0..buf.area.height {
        let mut line = String::new();
        let mut skip = 0u16;
        for x in 0..buf.area.width {
            let c = &buf[(x, y)];
            if skip == 0 {
                line.push_str(c.symbol());
            }
            let w = unicode_width::UnicodeWidthStr::width(c.symbol()) as u16;
            skip = skip.max(w).saturating_sub(1);
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

fn draw(app: &mut App, w: u16, h: u16) -> Buffer {
    app.size = (w, h);
    let mut terminal = Terminal::new(TestBackend::new(w, h)).expect("test terminal");
    terminal.draw(|f| view(app, f)).expect("draw");
    terminal.backend().buffer().clone()
}

/// Three scored candidates at θ = 15°; A was edited and rescored (so its bars show how they
/// moved), C was edited since its score (so it is stale); A is selected.
fn scene() -> App {
    let prompt = "What are some synonyms for the word \"beautiful\"?";
    let (mut app, scorer, t) = scored_app(
        prompt,
        &[
            "Nicely, Beautifully, Handsome, Stunning, Wonderful, Gorgeous, Pretty, Stunning, Elegant",
            "Attractive, gorgeous, lovely, stunning, pretty and exquisite; each with its own shade.",
            "Pretty.",
        ],
    );
    app.apply(Action::Focus(Focus::Response), t);
    type_text(&mut app, " Lovely.", t);
    app.apply(Action::RescoreNow, t);
    let id = scorer.requests.borrow().last().unwrap().0;
    answer(&mut app, &scorer, id, t);
    app.apply(Action::SelectCandidate(2), t);
    type_text(&mut app, " Very pretty.", t);
    app.rescore_at = None;
    app.apply(Action::SelectCandidate(0), t);
    app.apply(Action::Focus(Focus::Dial), t);
    app.apply(Action::SetAngle(15.0), t);
    app.flash = None;
    app.autosave_at = None;
    app
}

#[test]
fn snapshot_main_screen() {
    for (w, h) in SIZES {
        let mut app = scene();
        let text = screen_text(&draw(&mut app, w, h));
        insta::assert_snapshot!(format!("main_{w}x{h}"), text);
    }
}

#[test]
fn snapshot_help() {
    for (w, h) in SIZES {
        let mut app = scene();
        app.apply(Action::ShowHelp, Instant::now());
        let text = screen_text(&draw(&mut app, w, h));
        assert!(text.contains("Ctrl-Q"), "{text}");
        insta::assert_snapshot!(format!("help_{w}x{h}"), text);
    }
}

#[test]
fn help_descriptions_are_never_cut_in_two_columns() {
    let mut app = scene();
    app.apply(Action::ShowHelp, Instant::now());
    let text = screen_text(&draw(&mut app, 160, 48));
    // Rows past the bottom scroll into view; a row that shows must show whole.
    let mut shown = 0;
    for (_, keys) in crate::tui::keymap::HELP {
        for (_, what) in *keys {
            let start: String = what.chars().take(12).collect();
            if text.contains(&start) {
                shown += 1;
                assert!(text.contains(what), "{what:?} cut:\n{text}");
            }
        }
    }
    assert!(shown > 40, "only {shown} rows on screen:\n{text}");
}

#[test]
fn snapshot_scatter() {
    for (w, h) in SIZES {
        let mut app = scene();
        app.apply(Action::SetView(View::Scatter), Instant::now());
        let text = screen_text(&draw(&mut app, w, h));
        assert!(text.contains("help") && text.contains("→"), "{text}");
        insta::assert_snapshot!(format!("scatter_{w}x{h}"), text);
    }
}

#[test]
fn snapshot_sweep() {
    for (w, h) in SIZES {
        let mut app = scene();
        app.apply(Action::SetView(View::Sweep), Instant::now());
        let text = screen_text(&draw(&mut app, w, h));
        assert!(text.contains("-90°") && text.contains("90°"), "{text}");
        assert!(text.contains("best:") && text.contains("flips"), "{text}");
        insta::assert_snapshot!(format!("sweep_{w}x{h}"), text);
    }
}

#[test]
fn the_ten_names_values_and_r_are_on_screen() {
    let mut app = scene();
    let text = screen_text(&draw(&mut app, 160, 48));
    for label in &app.labels {
        assert!(text.contains(short_name(label)), "{label} missing:\n{text}");
    }
    assert!(
        text.matches("helpfulness ").count() >= 2,
        "both helpfulness rows"
    );
    let c = &app.candidates[0];
    let o = c.result.as_ref().unwrap();
    assert_eq!(o.scored.scores, fake_scores(&o.prompt, &o.response));
    for v in &o.scored.scores {
        let shown = format!("{v:.2}");
        assert!(text.contains(&shown), "value {shown} missing:\n{text}");
    }
    let (s, co) = 15f64.to_radians().sin_cos();
    let r = co * o.scored.scores[0] as f64 + s * o.scored.scores[4] as f64;
    let line = format!("θ = 15°  v = (0.97, 0.26)  R = {r:.2}");
    assert!(text.contains(&line), "{line} missing:\n{text}");
    // Every candidate's R in the ranking.
    for v in app.candidate_views() {
        assert!(
            text.contains(&format!("{:.2}", v.reward.unwrap())),
            "{}",
            v.name
        );
    }
}

#[test]
fn turning_the_dial_changes_r_in_the_same_frame() {
    let mut app = scene();
    let before = screen_text(&draw(&mut app, 160, 48));
    key(&mut app, KeyCode::Right, Instant::now());
    let after = screen_text(&draw(&mut app, 160, 48));
    assert!(before.contains("θ = 15°") && after.contains("θ = 20°"));
    let o = app.candidates[0].result.as_ref().unwrap();
    let (s, c) = 20f64.to_radians().sin_cos();
    let r = c * o.scored.scores[0] as f64 + s * o.scored.scores[4] as f64;
    assert!(after.contains(&format!("R = {r:.2}")), "{after}");
}

#[test]
fn stale_scores_look_stale() {
    let mut app = scene();
    app.apply(Action::SelectCandidate(2), Instant::now());
    let buf = draw(&mut app, 160, 48);
    let text = screen_text(&buf);
    assert!(text.contains("stale: text changed"), "{text}");
    // The value cells of the bars are dimmed; a fresh candidate's are not.
    let value = format!(
        "{:.2}",
        app.candidates[2].result.as_ref().unwrap().scored.scores[0]
    );
    let dim_at = |buf: &Buffer, needle: &str| {
        let text = screen_text(buf);
        let (row, line) = text
            .lines()
            .enumerate()
            .find(|(_, l)| l.contains(needle) && l.contains("helpfulness"))
            .expect("bar row");
        let col = line[..line.find(needle).unwrap()].chars().count() as u16;
        buf[(col, row as u16)].modifier.contains(Modifier::DIM)
    };
    assert!(dim_at(&buf, &value));
    app.apply(Action::SelectCandidate(1), Instant::now());
    let buf = draw(&mut app, 160, 48);
    let fresh = format!(
        "{:.2}",
        app.candidates[1].result.as_ref().unwrap().scored.scores[0]
    );
    assert!(!dim_at(&buf, &fresh));
}

#[test]
fn helpsteer_scale_shows_zero_to_four() {
    let mut app = scene();
    press(&mut app, KeyCode::F(2), KeyModifiers::NONE, Instant::now());
    let text = screen_text(&draw(&mut app, 160, 48));
    let s = &app.candidates[0].result.as_ref().unwrap().scored.scores;
    let hs = (s[0] as f64 - 10.0) / 20.0;
    assert!(text.contains(&format!("{hs:.2}")), "{text}");
    assert!(text.contains("HelpSteer 0–4"));
    // UltraFeedback stays on 0–100.
    assert!(text.contains(&format!("{:.2}", s[5])));
}

#[test]
fn demo_title_says_the_weights_are_random() {
    let mut c = super::app::tests::config();
    c.demo = true;
    let mut app = App::new(c, Box::new(super::app::tests::FakeScorer::default()));
    let text = screen_text(&draw(&mut app, 100, 32));
    assert!(
        text.lines().next().unwrap().contains("RANDOM weights"),
        "{text}"
    );
}

#[test]
fn a_model_that_cannot_load_explains_what_to_do() {
    let (mut app, _) = new_app();
    app.handle(
        Event::Engine(EngineEvent::LoadFailed {
            error: crate::scoring::LoadError::Model(
                "hub download of RLHFlow/RewardModel-Mistral-7B-for-DPA-v1 failed: no network"
                    .into(),
            ),
        }),
        Instant::now(),
    );
    type_text(&mut app, "typing still works", Instant::now());
    for (w, h) in [(80, 24), (160, 48)] {
        let text = screen_text(&draw(&mut app, w, h));
        assert!(text.contains("--model DIR"), "{w}x{h}:\n{text}");
        assert!(text.contains("--demo"), "{w}x{h}:\n{text}");
        assert!(text.contains("typing still works"));
        assert!(text.contains("error"));
    }
}

#[test]
fn download_progress_is_drawn() {
    let (mut app, _) = new_app();
    app.handle(
        Event::Engine(EngineEvent::Progress(LoadStage::Downloading {
            file: "model-00002-of-00003.safetensors".into(),
            index: 2,
            files: 3,
            bytes: 4_500_000_000,
            total: 10_000_000_000,
        })),
        Instant::now(),
    );
    let text = screen_text(&draw(&mut app, 160, 48));
    assert!(text.contains("downloading 45%"), "{text}");
    assert!(text.contains("file 2 of 3: model-00002-of-00003.safetensors"));
    assert!(text.contains("4.50 GB / 10.00 GB"), "{text}");
}

#[test]
fn small_terminals_get_a_message_and_never_a_panic() {
    let mut app = scene();
    for (w, h) in [(0, 0), (1, 1), (10, 3), (60, 20), (79, 40), (200, 23)] {
        let text = screen_text(&draw(&mut app, w, h));
        if w >= 20 && h >= 3 {
            assert!(text.contains("too small"), "{w}x{h}:\n{text}");
        }
    }
    // Every size from the minimum up, every page and overlay.
    let overlays: [fn(&mut App); 4] = [
        |_| {},
        |a| a.apply(Action::ShowHelp, Instant::now()),
        |a| a.apply(Action::OpenPresets, Instant::now()),
        |a| a.apply(Action::SaveSession, Instant::now()),
    ];
    for w in (80..=220).step_by(13) {
        for h in (24..=70).step_by(7) {
            for v in [View::Ranking, View::Scatter, View::Sweep] {
                for o in overlays {
                    app.overlay = None;
                    app.view = v;
                    o(&mut app);
                    draw(&mut app, w, h);
                }
            }
        }
    }
    // The weights mode draws at the smallest size too.
    app.overlay = None;
    app.apply(Action::ToggleDialMode, Instant::now());
    let text = screen_text(&draw(&mut app, 80, 24));
    assert!(text.contains("Direction · weights"), "{text}");
}

#[test]
fn overlays_show_presets_and_inputs() {
    let mut app = scene();
    app.apply(Action::OpenPresets, Instant::now());
    let text = screen_text(&draw(&mut app, 100, 32));
    assert!(text.contains("paper default (θ = −15°)"), "{text}");
    assert!(text.contains("concise (0.8, −0.6)"));
    app.apply(Action::SavePresetAs, Instant::now());
    assert!(matches!(app.overlay, Some(Overlay::Input { .. })));
    let text = screen_text(&draw(&mut app, 100, 32));
    assert!(
        text.contains("Save the current direction as preset named"),
        "{text}"
    );
}

#[test]
fn weights_mode_lists_every_attribute() {
    let mut app = scene();
    app.apply(Action::ToggleDialMode, Instant::now());
    let text = screen_text(&draw(&mut app, 160, 48));
    assert!(
        text.contains("hs helpfulness") && text.contains("uf helpfulness"),
        "{text}"
    );
    assert!(text.contains("|w| = 1.00"), "{text}");
}

#[test]
fn snapshot_trajectory() {
    for (w, h) in [(100, 30), (160, 48)] {
        trajectory_at(w, h);
    }
}

fn trajectory_at(w: u16, h: u16) {
    let mut app = scene();
    app.apply(Action::SetView(View::Trajectory), Instant::now());
    let computing = screen_text(&draw(&mut app, w, h));
    assert!(
        computing.contains("computing the trajectory…"),
        "{computing}"
    );
    let id = scorer_trajectory_id(&app);
    app.handle(
        Event::Engine(EngineEvent::Trajectory {
            request: id,
            slot: app.candidates[0].slot,
            result: Ok(super::app::tests::fake_trajectory(
                &app.prompt_text(),
                &app.candidates[0].text(),
            )),
        }),
        Instant::now(),
    );
    let text = screen_text(&draw(&mut app, w, h));
    // The label whole (on one line, or wrapped by words), the R sparkline, a rise and a drop.
    for part in [
        "prefix scores:",
        "the model's",
        "cut here",
        "— not per-word credit",
    ] {
        assert!(text.contains(part), "{part:?} missing:\n{text}");
    }
    let r_row = text.lines().find(|l| l.contains("R of A")).expect(&text);
    assert!(r_row.contains('▁') && r_row.contains('█'), "{r_row}");
    assert!(text.contains("rise +") && text.contains("drop −"), "{text}");
    // Nothing runs into the border.
    for l in text.lines() {
        assert!(!l.contains("…”│") || l.contains("“"), "{l}");
    }
    insta::assert_snapshot!(format!("trajectory_{w}x{h}"), text);
}

/// The id of the trajectory request in flight.
fn scorer_trajectory_id(app: &App) -> crate::engine::RequestId {
    app.trajectory_inflight
        .as_ref()
        .expect("a trajectory request")
        .id
}

#[test]
fn the_trajectory_view_notes_what_a_trajectory_costs_only_when_the_backend_says() {
    const NOTE: &str = "one request per prefix";
    let mut app = scene();
    let now = Instant::now();
    app.apply(Action::SetView(View::Trajectory), now);
    let id = scorer_trajectory_id(&app);
    app.handle(
        Event::Engine(EngineEvent::Trajectory {
            request: id,
            slot: app.candidates[0].slot,
            result: Ok(super::app::tests::fake_trajectory(
                &app.prompt_text(),
                &app.candidates[0].text(),
            )),
        }),
        now,
    );
    for (w, h) in [(100, 30), (160, 48)] {
        let text = screen_text(&draw(&mut app, w, h));
        assert!(text.contains("R of A") && !text.contains("cost:"), "{text}");
    }
    app.handle(Event::Engine(EngineEvent::TrajectoryNote(NOTE.into())), now);
    for (w, h) in [(100, 30), (160, 48)] {
        let text = screen_text(&draw(&mut app, w, h));
        let at = |s: &str| text.lines().position(|l| l.contains(s));
        let (note, r) = (at("cost: one request per prefix"), at("R of A"));
        assert!(
            note.is_some() && note < r,
            "under the label, above R:\n{text}"
        );
    }
    // A model loaded again says anew whether it has a note.
    app.handle(
        Event::Engine(EngineEvent::Ready {
            info: super::app::tests::info(),
            warnings: vec![],
        }),
        now,
    );
    let text = screen_text(&draw(&mut app, 160, 48));
    assert!(!text.contains("cost:"), "{text}");
}
