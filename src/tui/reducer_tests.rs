//! The explorer's input- and persistence-facing behaviour: asking before work is replaced,
//! undoing a deletion, refusing missing directories, results filed by revision, exact
//! angle/weight round trips, input warnings, true progress and latency, the no-model panel
//! and F5, and keys that do not surprise.

use std::cell::Cell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use super::tests::{
    answer, answer_trajectory, config, fake_scores, flash, key, new_app, press, ready, scored_app,
    screen, type_text, FakeScorer,
};
use super::*;
use crate::engine::{EngineEvent, RequestId, ScoreItem};
use crate::scoring::Scored;
use crate::tui::{keys, session, view};

fn ctrl(app: &mut App, c: char, t: Instant) {
    press(app, KeyCode::Char(c), KeyModifiers::CONTROL, t);
}

fn alt(app: &mut App, c: char, t: Instant) {
    press(app, KeyCode::Char(c), KeyModifiers::ALT, t);
}

/// Opens the path box for `purpose` (by its key), replaces the default with `path`, accepts.
fn enter_path(app: &mut App, open_key: char, path: &std::path::Path, t: Instant) {
    ctrl(app, open_key, t);
    assert!(matches!(app.overlay, Some(Overlay::Input { .. })));
    ctrl(app, 'a', t);
    key(app, KeyCode::Backspace, t);
    type_text(app, &path.display().to_string(), t);
    key(app, KeyCode::Enter, t);
}

#[test]
fn opening_a_session_over_unsaved_work_asks_first() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("other.json");
    let (mut other, _) = new_app();
    other.set_texts("other prompt", &["other response".into()]);
    session::save(&file, &other.session()).unwrap();

    let (mut app, _) = new_app();
    let t = Instant::now();
    type_text(&mut app, "my unsaved prompt", t);
    assert!(app.unsaved);
    enter_path(&mut app, 'o', &file, t);
    assert!(
        matches!(app.overlay, Some(Overlay::Confirm(Pending::Open(_)))),
        "{:?}",
        app.overlay
    );
    assert!(screen(&app, 120, 40).contains("unsaved changes will be replaced"));
    key(&mut app, KeyCode::Char('n'), t);
    assert_eq!(app.prompt_text(), "my unsaved prompt", "kept on no");
    enter_path(&mut app, 'o', &file, t);
    key(&mut app, KeyCode::Char('y'), t);
    assert_eq!(app.prompt_text(), "other prompt");
    assert!(!app.unsaved, "just opened: nothing unsaved");
    // With nothing unsaved, opening does not ask.
    enter_path(&mut app, 'o', &file, t);
    assert!(app.overlay.is_none());
}

#[test]
fn a_new_session_asks_when_there_are_unsaved_changes() {
    let (mut app, _) = new_app();
    let t = Instant::now();
    type_text(&mut app, "keep me", t);
    alt(&mut app, 'n', t);
    assert!(matches!(
        app.overlay,
        Some(Overlay::Confirm(Pending::NewSession))
    ));
    key(&mut app, KeyCode::Esc, t);
    assert_eq!(app.prompt_text(), "keep me");
    alt(&mut app, 'n', t);
    key(&mut app, KeyCode::Enter, t);
    assert_eq!(app.prompt_text(), "");
    assert_eq!(app.candidates.len(), 1);
}

#[test]
fn the_last_deleted_candidate_comes_back_with_undo() {
    let (mut app, _scorer, t) = scored_app("p", &["first", "second", "third"]);
    let scores_b = app.candidates[1].result.clone().unwrap();
    app.apply(Action::SelectCandidate(1), t);
    alt(&mut app, 'd', t);
    key(&mut app, KeyCode::Char('y'), t);
    let names: Vec<&str> = app.candidates.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["A", "C"]);
    assert!(flash(&app).contains("undo"), "{}", flash(&app));
    alt(&mut app, 'u', t);
    let names: Vec<&str> = app.candidates.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["A", "B", "C"]);
    assert_eq!(app.candidates[1].text(), "second");
    assert_eq!(app.selected, 1);
    // Its scores come back too, still for its text.
    assert_eq!(app.candidates[1].result.as_ref(), Some(&scores_b));
    assert_eq!(app.candidate_views()[1].freshness, Freshness::Fresh);
    // `u` on the dial undoes as well; with nothing deleted it says so.
    app.apply(Action::Focus(Focus::Dial), t);
    key(&mut app, KeyCode::Char('u'), t);
    assert!(flash(&app).contains("nothing to undo"));
}

#[test]
fn undo_brings_back_the_only_candidate_in_place_of_the_empty_one() {
    let (mut app, _scorer, t) = scored_app("p", &["only"]);
    app.apply(Action::DeleteCandidate, t);
    key(&mut app, KeyCode::Enter, t);
    assert_eq!(app.candidates.len(), 1);
    assert_eq!(app.candidates[0].text(), "");
    app.apply(Action::UndoDelete, t);
    assert_eq!(app.candidates.len(), 1);
    assert_eq!(app.candidates[0].text(), "only");
}

#[test]
fn the_delete_confirmation_says_what_its_keys_do() {
    let t = Instant::now();
    let confirm = |app: &mut App| {
        app.apply(Action::SelectCandidate(0), t);
        app.apply(Action::DeleteCandidate, t);
        assert!(matches!(app.overlay, Some(Overlay::ConfirmDelete { .. })));
    };
    let (mut app, _) = new_app();
    app.set_texts("p", &["a".into(), "b".into(), "c".into(), "d".into()]);
    confirm(&mut app);
    let text = screen(&app, 120, 40);
    assert!(text.contains(view::CONFIRM_DELETE_KEYS), "{text}");
    // Each key the box names as "delete" deletes…
    for k in [
        KeyEvent::new(KeyCode::Char('y'), KeyModifiers::NONE),
        KeyEvent::new(KeyCode::Enter, KeyModifiers::NONE),
        KeyEvent::new(KeyCode::F(8), KeyModifiers::NONE),
    ] {
        let before = app.candidates.len();
        confirm(&mut app);
        app.handle(Event::Key(k), t);
        assert_eq!(app.candidates.len(), before - 1, "{k:?} deletes");
    }
    // … and the ones it names as "keep" keep.
    app.set_texts("p", &["a".into(), "b".into()]);
    for code in [KeyCode::Char('n'), KeyCode::Esc, KeyCode::Char('x')] {
        confirm(&mut app);
        key(&mut app, code, t);
        assert_eq!(app.candidates.len(), 2, "{code:?} keeps");
        assert!(app.overlay.is_none());
    }
    assert!(view::CONFIRM_DELETE_KEYS.contains("F8"));
}

#[test]
fn saving_or_exporting_into_a_missing_directory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nonexistent/dir");
    let (mut app, _scorer, t) = scored_app("p", &["r"]);
    type_text(&mut app, "unsaved ", t);
    enter_path(&mut app, 's', &missing.join("x.json"), t);
    assert!(!missing.exists(), "no directory was created");
    assert!(flash(&app).contains("does not exist"), "{}", flash(&app));
    assert!(app.flash.as_ref().unwrap().error);
    assert!(app.unsaved, "still unsaved");
    assert_eq!(app.paths.session, None);
    enter_path(&mut app, 'e', &missing.join("x.jsonl"), t);
    assert!(!missing.exists());
    assert!(flash(&app).contains("does not exist"), "{}", flash(&app));
    // Into a directory that exists it saves, and the marker goes.
    let ok = dir.path().join("x.json");
    enter_path(&mut app, 's', &ok, t);
    assert!(ok.is_file());
    assert!(!app.unsaved);
}

#[test]
fn the_title_marks_unsaved_changes() {
    let dir = tempfile::tempdir().unwrap();
    let (mut app, _) = new_app();
    let t = Instant::now();
    assert!(!screen(&app, 120, 40).contains("unsaved"));
    type_text(&mut app, "x", t);
    let first_line = screen(&app, 120, 40).lines().next().unwrap().to_string();
    assert!(first_line.contains("● unsaved"), "{first_line}");
    enter_path(&mut app, 's', &dir.path().join("s.json"), t);
    assert!(!screen(&app, 120, 40).contains("● unsaved"));
}

#[test]
fn an_emptied_candidate_has_no_score_rank_or_export_scores() {
    let (mut app, _scorer, t) = scored_app("p", &["strong answer", "weak"]);
    app.apply(Action::SelectCandidate(0), t);
    app.apply(Action::Focus(Focus::Response), t);
    ctrl(&mut app, 'a', t);
    key(&mut app, KeyCode::Backspace, t);
    assert_eq!(app.candidates[0].text(), "");
    let v = &app.candidate_views()[0];
    assert_eq!(v.freshness, Freshness::Empty);
    assert_eq!((v.reward, v.scores.as_ref(), v.tokens), (None, None, None));
    let rows = app.export_rows();
    assert_eq!(rows[0].candidate, "B", "the scored one ranks first");
    let emptied = rows.iter().find(|r| r.candidate == "A").unwrap();
    assert_eq!(emptied.response, "");
    assert_eq!((emptied.rank, emptied.scores.as_ref()), (None, None));
    assert_eq!(emptied.weighted, None);
}

#[test]
fn a_stale_candidate_exports_its_text_without_the_old_scores() {
    let (mut app, _scorer, t) = scored_app("p", &["scored text"]);
    app.apply(Action::Focus(Focus::Response), t);
    type_text(&mut app, " and more", t);
    let v = &app.candidate_views()[0];
    assert_eq!(v.freshness, Freshness::Stale);
    let row = &app.export_rows()[0];
    assert_eq!(row.response, "scored text and more");
    assert!(!row.fresh);
    assert_eq!((row.scores.as_ref(), row.weighted), (None, None));
}

#[test]
fn a_result_is_filed_under_the_revision_it_was_computed_for() {
    let (mut app, scorer) = new_app();
    let t = Instant::now();
    ready(&mut app, t);
    app.set_texts("p", &["one".into()]);
    app.rescore_at = Some(t);
    app.handle(Event::Tick, t);
    let id = scorer.requests.borrow().last().unwrap().0;
    // Edit and undo while the answer is on its way: the text is the same again, but the
    // answer is for the revision before the edit.
    app.apply(Action::Focus(Focus::Response), t);
    type_text(&mut app, "x", t);
    key(&mut app, KeyCode::Backspace, t);
    assert_eq!(app.candidates[0].text(), "one");
    answer(&mut app, &scorer, id, t);
    assert_eq!(app.candidate_views()[0].freshness, Freshness::Stale);
    // The rescore after the pause makes it fresh.
    app.handle(Event::Tick, t + DEBOUNCE);
    let id2 = scorer.requests.borrow().last().unwrap().0;
    assert_ne!(id, id2);
    answer(&mut app, &scorer, id2, t + DEBOUNCE);
    assert_eq!(app.candidate_views()[0].freshness, Freshness::Fresh);
    // A late answer to the old request never displaces the newer one.
    let old = app.candidates[0].result.clone();
    answer(&mut app, &scorer, id, t + DEBOUNCE);
    assert_eq!(app.candidates[0].result, old);
}

#[test]
fn angle_to_weights_to_angle_keeps_theta_and_every_weight() {
    let (mut app, _scorer, t) = scored_app("p", &["r"]);
    app.apply(Action::SetAngle(-3.0), t);
    app.apply(Action::Focus(Focus::Dial), t);
    key(&mut app, KeyCode::Char('m'), t);
    assert_eq!(app.dial.mode, DialMode::Weights);
    // Add correctness (the second attribute).
    key(&mut app, KeyCode::Down, t);
    for _ in 0..5 {
        key(&mut app, KeyCode::Right, t);
    }
    let weights = app.dial.weights.clone();
    assert_eq!(weights[1], 0.5);
    key(&mut app, KeyCode::Char('m'), t);
    assert_eq!(app.dial.mode, DialMode::Angle);
    assert_eq!(app.dial.degrees, -3.0, "θ exactly as it was");
    key(&mut app, KeyCode::Char('m'), t);
    assert_eq!(
        app.dial.weights, weights,
        "every weight, correctness included"
    );
    key(&mut app, KeyCode::Char('m'), t);
    assert_eq!(app.dial.degrees, -3.0);
}

fn scored_with(tokens: usize, truncated: bool, warnings: Vec<String>) -> App {
    let (mut app, scorer) = new_app();
    let t = Instant::now();
    ready(&mut app, t);
    app.set_texts("p", &["r </s>".into()]);
    app.rescore_at = Some(t);
    app.handle(Event::Tick, t);
    let (id, items) = scorer.requests.borrow().last().cloned().unwrap();
    app.handle(
        Event::Engine(EngineEvent::Scored {
            request: id,
            item: items[0].clone(),
            result: Ok(Scored {
                gating: None,
                tokens,
                truncated,
                scores: fake_scores("p", "r </s>"),
                warnings,
            }),
            cached: false,
            elapsed: Duration::from_millis(5),
        }),
        t,
    );
    app
}

#[test]
fn truncation_and_control_tokens_show_where_the_score_is() {
    let app = scored_with(
        4096,
        true,
        vec![
            "input has 5000 tokens; only the last 4096 were scored".into(),
            "the text contains </s>, read as control token(s) as transformers does".into(),
        ],
    );
    let text = screen(&app, 220, 60);
    let status = text.lines().last().unwrap();
    assert!(status.contains("4096 tokens ✂ start cut"), "{status}");
    assert!(status.contains("⚠ input has 5000 tokens"), "{status}");
    assert!(status.contains("</s>"), "{status}");
    // Not shown for an input without either.
    let plain = scored_with(12, false, vec![]);
    let status = screen(&plain, 220, 60);
    assert!(!status.contains('✂') && !status.contains("</s>, read"));
}

#[test]
fn progress_advances_per_input_and_latency_is_the_whole_batch() {
    let (mut app, scorer) = new_app();
    let t = Instant::now();
    ready(&mut app, t);
    app.set_texts("p", &["a".into(), "b".into(), "c".into(), "d".into()]);
    app.rescore_at = Some(t);
    app.handle(Event::Tick, t);
    let (id, items) = scorer.requests.borrow().last().cloned().unwrap();
    app.handle(
        Event::Engine(EngineEvent::Started {
            request: id,
            items: 4,
        }),
        t,
    );
    assert!(screen(&app, 160, 48).contains("scoring 0/4"));
    for (k, item) in items.iter().enumerate() {
        let at = t + Duration::from_millis(1500 * (k as u64 + 1));
        app.handle(
            Event::Engine(EngineEvent::Scored {
                request: id,
                item: item.clone(),
                result: Ok(Scored {
                    gating: None,
                    tokens: 3,
                    truncated: false,
                    scores: fake_scores("p", &item.response),
                    warnings: vec![],
                }),
                cached: false,
                elapsed: Duration::from_millis(28),
            }),
            at,
        );
        if k < 3 {
            let want = format!("scoring {}/4", k + 1);
            assert!(screen(&app, 160, 48).contains(&want), "{want}");
        }
    }
    app.handle(
        Event::Engine(EngineEvent::Finished {
            request: id,
            elapsed: Duration::from_millis(5900),
        }),
        t + Duration::from_secs(6),
    );
    let latency = app.latency.unwrap();
    assert_eq!(
        latency.elapsed,
        Duration::from_secs(6),
        "not the last item's 28 ms"
    );
    assert!(!latency.cached);
    assert!(screen(&app, 160, 48).contains("last: 6.0 s"));
}

/// A scorer that counts reloads.
#[derive(Default, Clone)]
struct Reloading {
    inner: FakeScorer,
    reloads: Rc<Cell<usize>>,
}

impl Scorer for Reloading {
    fn score(&mut self, items: Vec<ScoreItem>) -> RequestId {
        self.inner.score(items)
    }

    fn reload(&mut self) -> bool {
        self.reloads.set(self.reloads.get() + 1);
        true
    }
}

#[test]
fn f5_loads_a_model_that_failed_again() {
    let scorer = Reloading::default();
    let mut app = App::new(config(), Box::new(scorer.clone()));
    let t = Instant::now();
    app.handle(
        Event::Engine(EngineEvent::LoadFailed {
            error: crate::scoring::LoadError::Model("no network".into()),
        }),
        t,
    );
    key(&mut app, KeyCode::F(5), t);
    assert_eq!(scorer.reloads.get(), 1);
    assert_eq!(app.model, ModelState::Starting);
    // Alt-R does the same for terminals without F-keys.
    app.handle(
        Event::Engine(EngineEvent::LoadFailed {
            error: crate::scoring::LoadError::Model("no network".into()),
        }),
        t,
    );
    alt(&mut app, 'r', t);
    assert_eq!(scorer.reloads.get(), 2);
}

#[test]
fn without_the_model_the_way_forward_comes_first_at_80x24() {
    let (mut app, _) = new_app();
    app.load_hint = vec![
        "dpa-explorer --demo       try it offline".into(),
        "dpa-explorer --model DIR  a local copy".into(),
        "cache: /home/u/.cache/huggingface/hub".into(),
        "hub: https://huggingface.co (HF_ENDPOINT sets a mirror; HF_HUB_OFFLINE=1 ...)".into(),
    ];
    app.handle(
        Event::Engine(EngineEvent::LoadFailed {
            error: crate::scoring::LoadError::Model(
                "cannot reach https://huggingface.co: dns error: failed to lookup address \
                    information: Temporary failure in name resolution"
                    .into(),
            ),
        }),
        Instant::now(),
    );
    let text = screen(&app, 80, 24);
    for want in ["--demo", "--model DIR"] {
        assert!(text.contains(want), "{want} missing at 80×24:\n{text}");
    }
    let text = screen(&app, 160, 48);
    for want in [
        "--demo",
        "--model DIR",
        "cache: /home/u",
        "HF_ENDPOINT",
        "F5",
        "name resolution",
    ] {
        assert!(text.contains(want), "{want} missing at 160×48:\n{text}");
    }
}

#[test]
fn letters_on_the_dial_do_not_quit_or_act_by_surprise() {
    let (mut app, _scorer, t) = scored_app("p", &["r"]);
    app.apply(Action::Focus(Focus::Dial), t);
    key(&mut app, KeyCode::Char('q'), t);
    assert!(!app.quit, "a stray q must not quit");
    assert!(flash(&app).contains("Ctrl-Q"), "{}", flash(&app));
    key(&mut app, KeyCode::Char('w'), t);
    assert!(flash(&app).contains("dial has focus"));
    assert_eq!(app.candidates[0].text(), "r");
    ctrl(&mut app, 'q', t);
    assert!(app.quit);
}

#[test]
fn every_f_key_action_has_a_chord() {
    let (app, _) = new_app();
    let f = |n| keys::key_action(&app, KeyEvent::new(KeyCode::F(n), KeyModifiers::NONE));
    let alt = |c| keys::key_action(&app, KeyEvent::new(KeyCode::Char(c), KeyModifiers::ALT));
    let ctrl = |c| keys::key_action(&app, KeyEvent::new(KeyCode::Char(c), KeyModifiers::CONTROL));
    assert_eq!(f(1), alt('h'));
    assert_eq!(f(2), alt('s'));
    assert_eq!(f(3), alt('v'));
    assert_eq!(f(4), alt('m'));
    assert_eq!(f(5), alt('r'));
    assert_eq!(f(6), alt('p'));
    assert_eq!(f(7), ctrl('n'));
    assert_eq!(f(8), alt('d'));
    // They work from an editor too (focus starts in the prompt).
    assert_eq!(app.focus, Focus::Prompt);
    assert_eq!(alt('h'), Action::ShowHelp);
}

#[test]
fn the_key_bar_follows_focus() {
    let (mut app, _) = new_app();
    let t = Instant::now();
    let title = |app: &App| screen(app, 160, 48).lines().next().unwrap().to_string();
    assert!(title(&app).contains("Esc dial"), "{}", title(&app));
    app.apply(Action::Focus(Focus::Dial), t);
    assert!(title(&app).contains("←→ turn"), "{}", title(&app));
    app.apply(Action::ToggleDialMode, t);
    assert!(title(&app).contains("↑↓ attribute"), "{}", title(&app));
    app.apply(Action::ShowHelp, t);
    assert!(title(&app).contains("Esc close"), "{}", title(&app));
}

#[test]
fn messages_expire() {
    let (mut app, _) = new_app();
    let t = Instant::now();
    app.set_flash("hello".into(), false, t);
    app.handle(Event::Tick, t + FLASH_FOR / 2);
    assert!(app.flash.is_some());
    assert!(app.deadline(t).is_some_and(|d| d <= t + FLASH_FOR));
    app.handle(Event::Tick, t + FLASH_FOR);
    assert!(app.flash.is_none());
}

#[test]
fn ctrl_a_in_a_path_box_selects_all_as_in_the_editors() {
    let (mut app, _) = new_app();
    let t = Instant::now();
    ctrl(&mut app, 's', t);
    ctrl(&mut app, 'a', t);
    type_text(&mut app, "new.json", t);
    let Some(Overlay::Input { editor, .. }) = &app.overlay else {
        panic!("the save box is open");
    };
    assert_eq!(editor.lines().join(""), "new.json");
}

#[test]
fn a_long_prompt_scrolls_and_shows_its_end() {
    // 20,000 characters typed into the prompt all arrive (the pty test checks the terminal
    // side of this).
    let (mut app, _) = new_app();
    let t = Instant::now();
    let text: String = (0..20_000)
        .map(|i| (b'a' + (i % 26) as u8) as char)
        .collect();
    type_text(&mut app, &text, t);
    assert_eq!(app.prompt_text().len(), 20_000);
}

fn trajectories(scorer: &FakeScorer) -> Vec<super::tests::TrajectoryRequest> {
    scorer.trajectories.borrow().clone()
}

fn trajectory_app() -> (App, FakeScorer, Instant) {
    scored_app(
        "Name a colour and say why.",
        &["Blue, because it is calm and deep. Red is loud.", "Green."],
    )
}

#[test]
fn the_trajectory_view_asks_once_per_revision_and_the_dial_recolours_without_asking() {
    let (mut app, scorer, t) = trajectory_app();
    assert!(trajectories(&scorer).is_empty());
    app.apply(Action::SetView(View::Trajectory), t);
    let sent = trajectories(&scorer);
    assert_eq!(sent.len(), 1, "{sent:?}");
    let (id, slot, prompt, response) = sent[0].clone();
    assert_eq!(slot, app.candidates[0].slot);
    assert_eq!(prompt, "Name a colour and say why.");
    assert_eq!(response, "Blue, because it is calm and deep. Red is loud.");
    assert!(
        matches!(&app.trajectory_shown(), TrajectoryShown::Note { text, busy: true } if text == "computing the trajectory…")
    );
    // Nothing else asks again while it computes…
    app.handle(Event::Tick, t);
    app.apply(Action::Turn(5.0), t);
    assert_eq!(trajectories(&scorer).len(), 1);
    answer_trajectory(&mut app, &scorer, id, t);
    let TrajectoryShown::Ready(before) = app.trajectory_shown() else {
        panic!("not shown: {:?}", app.trajectory_shown());
    };
    assert_eq!(before.rewards.len(), 10, "one point per word");
    assert!(!before.rises.is_empty() || !before.drops.is_empty());
    // …nor once it is there: not a tick, not another view and back.
    app.handle(Event::Tick, t);
    app.apply(Action::SetView(View::Scatter), t);
    app.apply(Action::SetView(View::Trajectory), t);
    // Turning the dial changes R at once, without a model call.
    app.apply(Action::Turn(60.0), t);
    let TrajectoryShown::Ready(after) = app.trajectory_shown() else {
        panic!("not shown after turning");
    };
    assert_ne!(before.rewards, after.rewards);
    assert_eq!(trajectories(&scorer).len(), 1);
    // Another candidate asks for its own.
    app.apply(Action::SelectCandidate(1), t);
    let sent = trajectories(&scorer);
    assert_eq!(sent.len(), 2);
    assert_eq!(sent[1].1, app.candidates[1].slot);
}

#[test]
fn a_trajectory_for_an_older_revision_is_never_shown_as_fresh() {
    let (mut app, scorer, t) = trajectory_app();
    app.apply(Action::SetView(View::Trajectory), t);
    let id = trajectories(&scorer)[0].0;
    app.apply(Action::Focus(Focus::Response), t);
    type_text(&mut app, " Mauve", t);
    // The old answer arrives after the edit: filed under its revision, shown as stale.
    answer_trajectory(&mut app, &scorer, id, t);
    let c = &app.candidates[0];
    assert_ne!(c.trajectory.as_ref().map(|o| o.revision), Some(c.revision));
    let shown = app.trajectory_shown();
    assert!(
        matches!(&shown, TrajectoryShown::Note { text, .. } if text.starts_with("stale")),
        "{shown:?}"
    );
    // Not asked for until the new text has a fresh score, and then for the new text.
    assert_eq!(trajectories(&scorer).len(), 1);
    app.handle(Event::Tick, t + DEBOUNCE);
    let sid = scorer.requests.borrow().last().unwrap().0;
    assert_eq!(trajectories(&scorer).len(), 1, "scoring is in flight");
    answer(&mut app, &scorer, sid, t + DEBOUNCE);
    let sent = trajectories(&scorer);
    assert_eq!(sent.len(), 2);
    assert!(sent[1].3.ends_with(" Mauve"), "{sent:?}");
    // A late answer to the first request again changes nothing.
    answer_trajectory(&mut app, &scorer, id, t);
    assert!(matches!(
        app.trajectory_shown(),
        TrajectoryShown::Note { busy: true, .. }
    ));
    answer_trajectory(&mut app, &scorer, sent[1].0, t);
    assert!(matches!(app.trajectory_shown(), TrajectoryShown::Ready(_)));
}

#[test]
fn other_views_never_ask_for_a_trajectory() {
    let (mut app, scorer, t) = trajectory_app();
    for v in [View::Ranking, View::Scatter, View::Sweep] {
        app.apply(Action::SetView(v), t);
        app.handle(Event::Tick, t);
    }
    assert!(trajectories(&scorer).is_empty());
    // Switching away before a fresh score arrives: the new score asks for nothing.
    app.apply(Action::Focus(Focus::Response), t);
    type_text(&mut app, " Mauve", t);
    app.apply(Action::SetView(View::Trajectory), t);
    app.apply(Action::SetView(View::Sweep), t);
    app.handle(Event::Tick, t + DEBOUNCE);
    let sid = scorer.requests.borrow().last().unwrap().0;
    answer(&mut app, &scorer, sid, t + DEBOUNCE);
    assert!(trajectories(&scorer).is_empty());
}
