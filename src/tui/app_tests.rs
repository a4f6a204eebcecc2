//! State and update, without a terminal: focus, editing, candidates, the dial, scoring
//! requests, supersession and staleness, the engine's cache, sessions and presets.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers, MouseButton, MouseEvent, MouseEventKind};

use super::*;
use ratatui_textarea::{Input, TextArea};

use crate::engine::{Engine, EngineEvent, LoadStage, Loader, RequestId, ScoreItem};
use crate::model::{ModelInfo, DPA_LABELS};
use crate::preference::Direction;
use crate::scoring::fake::FakeBackend;
use crate::scoring::Scored;
use crate::tui::layout;
use crate::tui::widgets::{candidates, dial};

/// Records every request; answers nothing by itself.
pub type Requests = Rc<RefCell<Vec<(RequestId, Vec<ScoreItem>)>>>;

/// A trajectory request as the fake scorer records it: (id, slot, prompt, response).
pub type TrajectoryRequest = (RequestId, u64, String, String);

#[derive(Default, Clone)]
pub struct FakeScorer {
    pub requests: Requests,
    pub forgotten: Rc<RefCell<Vec<u64>>>,
    /// Trajectory requests: (id, slot, prompt, response); ids from 1001 on.
    pub trajectories: Rc<RefCell<Vec<TrajectoryRequest>>>,
}

impl Scorer for FakeScorer {
    fn score(&mut self, items: Vec<ScoreItem>) -> RequestId {
        let mut r = self.requests.borrow_mut();
        let id = r.len() as RequestId + 1;
        r.push((id, items));
        id
    }

    fn trajectory(&mut self, slot: u64, prompt: String, response: String) -> RequestId {
        let mut t = self.trajectories.borrow_mut();
        let id = 1001 + t.len() as RequestId;
        t.push((id, slot, prompt, response));
        id
    }

    fn forget(&mut self, slot: u64) {
        self.forgotten.borrow_mut().push(slot);
    }
}

/// Prefix scores for a response cut after every word, from [`fake_scores`] of each prefix.
pub fn fake_trajectory(prompt: &str, response: &str) -> Vec<crate::scoring::Point> {
    let ends = crate::scoring::boundaries(response, crate::scoring::Every::Word, |_| Ok(vec![]))
        .expect("word boundaries");
    ends.into_iter()
        .map(|end| crate::scoring::Point {
            end,
            scores: fake_scores(prompt, &response[..end]),
            tokens: end,
            truncated: false,
        })
        .collect()
}

/// Answers trajectory request `id` as the engine would.
pub fn answer_trajectory(app: &mut App, scorer: &FakeScorer, id: RequestId, now: Instant) {
    let (_, slot, prompt, response) = scorer
        .trajectories
        .borrow()
        .iter()
        .find(|(i, ..)| *i == id)
        .cloned()
        .expect("trajectory request exists");
    app.handle(
        Event::Engine(EngineEvent::Trajectory {
            request: id,
            slot,
            result: Ok(fake_trajectory(&prompt, &response)),
        }),
        now,
    );
}

/// The screen at `w`×`h` as text, a line per row.
pub fn screen(app: &App, w: u16, h: u16) -> String {
    let mut term =
        ratatui::Terminal::new(ratatui::backend::TestBackend::new(w, h)).expect("terminal");
    term.draw(|f| crate::tui::view::view(app, f))
        .expect("drawn");
    let buf = term.backend().buffer().clone();
    let mut out = String::new();
    for y in 0..h {
        for x in 0..w {
            out.push_str(buf[(x, y)].symbol());
        }
        out.push('\n');
    }
    out
}

/// The status-line message, or nothing.
pub fn flash(app: &App) -> String {
    app.flash
        .as_ref()
        .map(|f| f.text.clone())
        .unwrap_or_default()
}

pub fn labels() -> Vec<String> {
    DPA_LABELS.iter().map(|s| s.to_string()).collect()
}

pub fn info() -> ModelInfo {
    ModelInfo {
        labels: labels(),
        gating: false,
        device: "cpu".into(),
        dtype: "f32".into(),
        stored_dtype: "bf16".into(),
        parameters: 7_110_000_000,
        layers: 32,
        max_tokens: 4096,
        context: 32768,
    }
}

/// Deterministic scores that depend on the text, in 0–100.
pub fn fake_scores(prompt: &str, response: &str) -> Vec<f32> {
    let mut h: u64 = 1469598103934665603;
    for b in prompt.bytes().chain([0]).chain(response.bytes()) {
        h = (h ^ b as u64).wrapping_mul(1099511628211);
    }
    (0..10)
        .map(|i| {
            let x = (h.rotate_left(i * 6) % 10_000) as f32 / 100.0;
            (x * 100.0).round() / 100.0
        })
        .collect()
}

pub fn config() -> AppConfig {
    AppConfig {
        model_name: "RLHFlow/RewardModel-Mistral-7B-for-DPA-v1".into(),
        demo: false,
        direction: Direction::default(),
        axes: None,
        device: "auto".into(),
        dtype: "auto".into(),
        paths: Paths::default(),
    }
}

pub fn new_app() -> (App, FakeScorer) {
    let scorer = FakeScorer::default();
    let mut app = App::new(config(), Box::new(scorer.clone()));
    app.size = (160, 48);
    (app, scorer)
}

pub fn ready(app: &mut App, now: Instant) {
    app.handle(
        Event::Engine(EngineEvent::Ready {
            info: info(),
            warnings: vec![],
        }),
        now,
    );
}

/// Answers request `id` for all its items, as the engine would.
pub fn answer(app: &mut App, scorer: &FakeScorer, id: RequestId, now: Instant) {
    let items = scorer
        .requests
        .borrow()
        .iter()
        .find(|(i, _)| *i == id)
        .map(|(_, items)| items.clone())
        .expect("request exists");
    app.handle(
        Event::Engine(EngineEvent::Started {
            request: id,
            items: items.len(),
        }),
        now,
    );
    for item in items {
        let scores = fake_scores(&item.prompt, &item.response);
        app.handle(
            Event::Engine(EngineEvent::Scored {
                request: id,
                item,
                result: Ok(Scored {
                    gating: None,
                    tokens: 42,
                    truncated: false,
                    scores,
                    warnings: vec![],
                }),
                cached: false,
                elapsed: Duration::from_millis(850),
            }),
            now,
        );
    }
    app.handle(
        Event::Engine(EngineEvent::Finished {
            request: id,
            elapsed: Duration::from_millis(900),
        }),
        now,
    );
}

pub fn press(app: &mut App, code: KeyCode, mods: KeyModifiers, now: Instant) {
    app.handle(Event::Key(KeyEvent::new(code, mods)), now);
}

pub fn key(app: &mut App, code: KeyCode, now: Instant) {
    press(app, code, KeyModifiers::NONE, now);
}

pub fn type_text(app: &mut App, text: &str, now: Instant) {
    for c in text.chars() {
        let code = if c == '\n' {
            KeyCode::Enter
        } else {
            KeyCode::Char(c)
        };
        key(app, code, now);
    }
}

/// Types a prompt and a response, lets the pause pass and answers the request.
pub fn scored_app(prompt: &str, responses: &[&str]) -> (App, FakeScorer, Instant) {
    let (mut app, scorer) = new_app();
    let t = Instant::now();
    ready(&mut app, t);
    let texts: Vec<String> = responses.iter().map(|s| s.to_string()).collect();
    app.set_texts(prompt, &texts);
    app.rescore_at = Some(t);
    app.handle(Event::Tick, t);
    let id = scorer.requests.borrow().last().expect("a request").0;
    answer(&mut app, &scorer, id, t);
    (app, scorer, t)
}

fn requests(s: &FakeScorer) -> usize {
    s.requests.borrow().len()
}

#[test]
fn focus_starts_in_the_prompt_and_tab_cycles() {
    let (mut app, _) = new_app();
    let t = Instant::now();
    assert_eq!(app.focus, Focus::Prompt);
    key(&mut app, KeyCode::Tab, t);
    assert_eq!(app.focus, Focus::Response);
    key(&mut app, KeyCode::Tab, t);
    assert_eq!(app.focus, Focus::Dial);
    key(&mut app, KeyCode::Tab, t);
    assert_eq!(app.focus, Focus::Prompt);
    press(&mut app, KeyCode::BackTab, KeyModifiers::SHIFT, t);
    assert_eq!(app.focus, Focus::Dial);
    key(&mut app, KeyCode::BackTab, t);
    assert_eq!(app.focus, Focus::Response);
    key(&mut app, KeyCode::Esc, t);
    assert_eq!(app.focus, Focus::Dial);
}

#[test]
fn q_and_question_mark_in_an_editor_are_text() {
    let (mut app, _) = new_app();
    let t = Instant::now();
    type_text(&mut app, "q?", t);
    assert!(!app.quit);
    assert!(app.overlay.is_none());
    assert_eq!(app.prompt_text(), "q?");
    key(&mut app, KeyCode::Tab, t);
    type_text(&mut app, "?q", t);
    assert_eq!(app.candidates[0].text(), "?q");
    assert!(!app.quit && app.overlay.is_none());
}

#[test]
fn outside_editors_q_does_not_quit_and_question_mark_helps() {
    let (mut app, _) = new_app();
    let t = Instant::now();
    app.apply(Action::Focus(Focus::Dial), t);
    key(&mut app, KeyCode::Char('?'), t);
    assert!(matches!(app.overlay, Some(Overlay::Help { .. })));
    key(&mut app, KeyCode::Esc, t);
    assert!(app.overlay.is_none());
    // A stray `q` (typed while the dial has focus) says how to quit instead of quitting.
    key(&mut app, KeyCode::Char('q'), t);
    assert!(!app.quit);
    assert!(app.flash.as_ref().unwrap().text.contains("Ctrl-Q"));
}

#[test]
fn ctrl_q_and_ctrl_c_quit_from_anywhere() {
    for (code, overlay) in [('q', false), ('c', false), ('q', true), ('c', true)] {
        let (mut app, _) = new_app();
        let t = Instant::now();
        if overlay {
            key(&mut app, KeyCode::F(1), t);
            assert!(app.overlay.is_some());
        }
        press(&mut app, KeyCode::Char(code), KeyModifiers::CONTROL, t);
        assert!(app.quit, "Ctrl-{code} (overlay: {overlay})");
    }
}

#[test]
fn f1_shows_help_even_in_an_editor() {
    let (mut app, _) = new_app();
    let t = Instant::now();
    key(&mut app, KeyCode::F(1), t);
    assert!(matches!(app.overlay, Some(Overlay::Help { scroll: 0 })));
    key(&mut app, KeyCode::Down, t);
    assert!(matches!(app.overlay, Some(Overlay::Help { scroll: 1 })));
    // Keys typed while help is open do not reach the editor.
    key(&mut app, KeyCode::Char('x'), t);
    assert_eq!(app.prompt_text(), "");
    key(&mut app, KeyCode::F(1), t);
    assert!(app.overlay.is_none());
}

#[test]
fn editing_moves_undoes_and_pastes() {
    let (mut app, _) = new_app();
    let t = Instant::now();
    type_text(&mut app, "hello\nworld", t);
    assert_eq!(app.prompt_text(), "hello\nworld");
    press(&mut app, KeyCode::Char('z'), KeyModifiers::CONTROL, t);
    assert_ne!(app.prompt_text(), "hello\nworld", "undo changed something");
    press(&mut app, KeyCode::Char('y'), KeyModifiers::CONTROL, t);
    assert_eq!(app.prompt_text(), "hello\nworld");
    key(&mut app, KeyCode::Home, t);
    type_text(&mut app, ">", t);
    assert_eq!(app.prompt_text(), "hello\n>world");
    // Bracketed paste: line breaks of any kind become newlines, q is text.
    app.handle(Event::Paste("a\r\nq\rz".into()), t);
    assert_eq!(app.prompt_text(), "hello\n>a\nq\nzworld");
    // Select all, then typing replaces the selection.
    press(&mut app, KeyCode::Char('a'), KeyModifiers::CONTROL, t);
    type_text(&mut app, "new", t);
    assert_eq!(app.prompt_text(), "new");
}

#[test]
fn paste_on_the_dial_changes_no_text() {
    let (mut app, _) = new_app();
    let t = Instant::now();
    app.apply(Action::Focus(Focus::Dial), t);
    app.handle(Event::Paste("x".into()), t);
    assert_eq!(app.prompt_text(), "");
    assert_eq!(app.candidates[0].text(), "");
    assert!(app.flash.is_some());
}

#[test]
fn candidates_are_added_switched_and_keep_their_own_text_and_scores() {
    let (mut app, scorer, t) = scored_app("Name a colour.", &["Blue."]);
    let a_scores = app.candidates[0].result.clone().unwrap().scored.scores;
    press(&mut app, KeyCode::Char('n'), KeyModifiers::CONTROL, t);
    assert_eq!(app.candidates.len(), 2);
    assert_eq!(app.selected, 1);
    assert_eq!(app.focus, Focus::Response);
    assert_eq!(app.candidates[1].name, "B");
    type_text(&mut app, "Red, like a fire engine.", t);
    assert_eq!(app.candidates[0].text(), "Blue.");
    assert_eq!(app.candidates[1].text(), "Red, like a fire engine.");
    let t2 = t + DEBOUNCE;
    app.handle(Event::Tick, t2);
    let (id, items) = scorer.requests.borrow().last().cloned().unwrap();
    assert_eq!(items.len(), 1, "only B is stale: {items:?}");
    assert_eq!(items[0].slot, app.candidates[1].slot);
    answer(&mut app, &scorer, id, t2);
    let views = app.candidate_views();
    assert_eq!(views[0].scores.as_ref().unwrap(), &a_scores);
    assert_eq!(
        views[1].scores.as_ref().unwrap(),
        &fake_scores("Name a colour.", "Red, like a fire engine.")
    );
    assert!(views.iter().all(|v| v.freshness == Freshness::Fresh));
    press(&mut app, KeyCode::Up, KeyModifiers::ALT, t2);
    assert_eq!(app.selected, 0);
    press(&mut app, KeyCode::Char('2'), KeyModifiers::ALT, t2);
    assert_eq!(app.selected, 1);
}

#[test]
fn slots_stay_stable_and_deleting_asks_first() {
    let (mut app, scorer) = new_app();
    let t = Instant::now();
    app.set_texts("p", &["a".into(), "b".into(), "c".into()]);
    let slots: Vec<u64> = app.candidates.iter().map(|c| c.slot).collect();
    app.apply(Action::SelectCandidate(1), t);
    key(&mut app, KeyCode::F(8), t);
    assert!(matches!(app.overlay, Some(Overlay::ConfirmDelete { .. })));
    key(&mut app, KeyCode::Char('n'), t);
    assert_eq!(app.candidates.len(), 3, "kept");
    key(&mut app, KeyCode::F(8), t);
    key(&mut app, KeyCode::Char('y'), t);
    assert_eq!(app.candidates.len(), 2);
    let names: Vec<&str> = app.candidates.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["A", "C"]);
    assert_eq!(app.candidates[1].slot, slots[2]);
    assert_eq!(
        *scorer.forgotten.borrow(),
        [slots[1]],
        "the engine may drop B's cache"
    );
    // A new candidate takes the free name and a new slot.
    app.apply(Action::NewCandidate, t);
    assert_eq!(app.candidates[2].name, "B");
    assert!(!slots.contains(&app.candidates[2].slot));
    // An empty candidate goes without asking; the last one is replaced by an empty one.
    app.apply(Action::DeleteCandidate, t);
    assert_eq!(app.candidates.len(), 2);
}

#[test]
fn arrows_turn_the_dial_and_r_follows_without_a_model_call() {
    let (mut app, scorer, t) = scored_app("Name a colour.", &["Blue.", "Red."]);
    let before = requests(&scorer);
    app.apply(Action::Focus(Focus::Dial), t);
    for _ in 0..3 {
        key(&mut app, KeyCode::Right, t);
    }
    assert_eq!(app.dial.degrees, 15.0);
    press(&mut app, KeyCode::Right, KeyModifiers::SHIFT, t);
    assert_eq!(app.dial.degrees, 16.0);
    press(&mut app, KeyCode::Left, KeyModifiers::SHIFT, t);
    key(&mut app, KeyCode::Left, t);
    assert_eq!(app.dial.degrees, 10.0);
    let views = app.candidate_views();
    for v in &views {
        let s = v.scores.as_ref().unwrap();
        let theta = 10f64.to_radians();
        let expect = theta.cos() * s[0] as f64 + theta.sin() * s[4] as f64;
        assert!((v.reward.unwrap() - expect).abs() < 1e-9);
    }
    app.handle(Event::Tick, t + Duration::from_secs(5));
    assert_eq!(requests(&scorer), before, "turning never scores");
}

#[test]
fn the_dial_wraps_around() {
    let (mut app, _) = new_app();
    let t = Instant::now();
    app.apply(Action::SetAngle(178.0), t);
    app.apply(Action::Turn(5.0), t);
    assert_eq!(app.dial.degrees, -177.0);
    app.apply(Action::Turn(-3.0), t);
    assert_eq!(app.dial.degrees, 180.0);
    app.apply(Action::ResetDirection, t);
    assert_eq!(app.dial.degrees, 0.0);
}

#[test]
fn weights_mode_normalises_and_round_trips_the_angle() {
    let (mut app, _scorer, t) = scored_app("p", &["r"]);
    app.apply(Action::SetAngle(15.0), t);
    let r_angle = app.candidate_views()[0].reward.unwrap();
    app.apply(Action::Focus(Focus::Dial), t);
    key(&mut app, KeyCode::F(4), t);
    assert_eq!(app.dial.mode, DialMode::Weights);
    assert_eq!(app.dial.weights[0], 0.97);
    assert_eq!(app.dial.weights[4], 0.26);
    // Back unchanged: exactly the same angle and R.
    key(&mut app, KeyCode::F(4), t);
    assert_eq!(app.dial.degrees, 15.0);
    assert_eq!(app.candidate_views()[0].reward.unwrap(), r_angle);
    // A free vector: correctness up, verbosity down.
    key(&mut app, KeyCode::F(4), t);
    key(&mut app, KeyCode::Down, t);
    for _ in 0..10 {
        key(&mut app, KeyCode::Right, t);
    }
    assert_eq!(app.dial.cursor, 1);
    assert_eq!(app.dial.weights[1], 1.0);
    let u = app.unit().unwrap();
    let norm: f64 = u.iter().map(|x| x * x).sum();
    assert!((norm - 1.0).abs() < 1e-12);
    let s = app.candidates[0]
        .result
        .as_ref()
        .unwrap()
        .scored
        .scores
        .clone();
    let expect: f64 = u.iter().zip(&s).map(|(w, x)| w * *x as f64).sum();
    assert!((app.candidate_views()[0].reward.unwrap() - expect).abs() < 1e-9);
    // All zero: no direction, no R, and a reason.
    app.dial.weights = vec![0.0; 10];
    assert!(app.unit().is_err());
    assert_eq!(app.candidate_views()[0].reward, None);
}

#[test]
fn starting_direction_comes_from_the_command_line() {
    let mut c = config();
    c.direction = Direction::Weights {
        weights: vec![("correctness".into(), 1.0), ("verbosity".into(), -0.5)],
    };
    let app = App::new(c, Box::new(FakeScorer::default()));
    assert_eq!(app.dial.mode, DialMode::Weights);
    assert_eq!(app.dial.weights[1], 1.0);
    assert_eq!(app.dial.weights[4], -0.5);
    let mut c = config();
    c.direction = Direction::angle(-15.0);
    let app = App::new(c, Box::new(FakeScorer::default()));
    assert_eq!((app.dial.mode, app.dial.degrees), (DialMode::Angle, -15.0));
}

#[test]
fn rescoring_waits_for_a_pause_in_typing() {
    let (mut app, scorer) = new_app();
    let t = Instant::now();
    ready(&mut app, t);
    type_text(&mut app, "Hi", t);
    key(&mut app, KeyCode::Tab, t);
    type_text(&mut app, "Hello", t);
    assert_eq!(requests(&scorer), 0);
    app.handle(Event::Tick, t + DEBOUNCE / 2);
    assert_eq!(requests(&scorer), 0, "too soon");
    // More typing pushes the deadline back.
    let t1 = t + DEBOUNCE / 2;
    type_text(&mut app, "!", t1);
    app.handle(Event::Tick, t + DEBOUNCE);
    assert_eq!(requests(&scorer), 0, "the pause restarted");
    app.handle(Event::Tick, t1 + DEBOUNCE);
    assert_eq!(requests(&scorer), 1);
    let (_, items) = scorer.requests.borrow()[0].clone();
    assert_eq!(items.len(), 1);
    assert_eq!(
        (items[0].prompt.as_str(), items[0].response.as_str()),
        ("Hi", "Hello!")
    );
    // The same text is not sent again while it is being scored.
    app.apply(Action::Edit(Input::default()), t1);
    app.rescore_at = Some(t1);
    app.handle(Event::Tick, t1 + DEBOUNCE * 3);
    assert_eq!(requests(&scorer), 1);
}

#[test]
fn f5_rescores_at_once_and_selected_goes_first() {
    let (mut app, scorer) = new_app();
    let t = Instant::now();
    ready(&mut app, t);
    app.set_texts("p", &["a".into(), "b".into(), "c".into()]);
    app.apply(Action::SelectCandidate(2), t);
    app.apply(Action::Focus(Focus::Dial), t);
    key(&mut app, KeyCode::F(5), t);
    let (_, items) = scorer.requests.borrow()[0].clone();
    let order: Vec<&str> = items.iter().map(|i| i.response.as_str()).collect();
    assert_eq!(order, ["c", "a", "b"]);
    assert_eq!(app.rescore_at, None);
}

#[test]
fn nothing_is_requested_before_the_model_is_ready() {
    let (mut app, scorer) = new_app();
    let t = Instant::now();
    key(&mut app, KeyCode::Tab, t);
    type_text(&mut app, "Hello", t);
    app.handle(Event::Tick, t + DEBOUNCE);
    assert_eq!(requests(&scorer), 0);
    app.handle(
        Event::Engine(EngineEvent::Progress(LoadStage::Loading {
            what: "weights".into(),
        })),
        t,
    );
    assert!(matches!(
        app.model,
        ModelState::Loading(LoadStage::Loading { .. })
    ));
    ready(&mut app, t);
    assert_eq!(requests(&scorer), 1, "ready sends what waited");
}

#[test]
fn a_result_for_old_text_is_never_fresh() {
    let (mut app, scorer) = new_app();
    let t = Instant::now();
    ready(&mut app, t);
    key(&mut app, KeyCode::Tab, t);
    type_text(&mut app, "Hello", t);
    app.handle(Event::Tick, t + DEBOUNCE);
    assert_eq!(requests(&scorer), 1);
    // The user keeps typing before the answer arrives.
    type_text(&mut app, " there", t + DEBOUNCE);
    answer(&mut app, &scorer, 1, t + DEBOUNCE);
    let v = &app.candidate_views()[0];
    assert_eq!(v.freshness, Freshness::Stale);
    assert!(v.scores.is_some(), "old scores still shown, as stale");
    // The newer request brings the fresh result.
    app.handle(Event::Tick, t + DEBOUNCE * 2);
    assert_eq!(requests(&scorer), 2);
    answer(&mut app, &scorer, 2, t + DEBOUNCE * 2);
    let v = &app.candidate_views()[0];
    assert_eq!(v.freshness, Freshness::Fresh);
    assert_eq!(v.scores.as_ref().unwrap(), &fake_scores("", "Hello there"));
    assert_eq!(v.previous.as_ref().unwrap(), &fake_scores("", "Hello"));
    // A late answer to the old request changes nothing.
    answer(&mut app, &scorer, 1, t + DEBOUNCE * 2);
    let v = &app.candidate_views()[0];
    assert_eq!(v.freshness, Freshness::Fresh);
    assert_eq!(v.scores.as_ref().unwrap(), &fake_scores("", "Hello there"));
}

#[test]
fn going_back_to_the_scored_text_is_a_new_revision_rescored() {
    let (mut app, scorer, t) = scored_app("p", &["abc"]);
    let before = app.candidates[0].result.clone().unwrap().scored.scores;
    app.apply(Action::Focus(Focus::Response), t);
    type_text(&mut app, "d", t);
    assert_eq!(app.candidate_views()[0].freshness, Freshness::Stale);
    key(&mut app, KeyCode::Backspace, t);
    // Freshness is by revision, not by comparing texts: the undo is a new revision, scored
    // again after the pause (the engine's cache answers it at once).
    assert_eq!(app.candidate_views()[0].freshness, Freshness::Stale);
    app.handle(Event::Tick, t + DEBOUNCE);
    let id = scorer.requests.borrow().last().unwrap().0;
    answer(&mut app, &scorer, id, t + DEBOUNCE);
    assert_eq!(app.candidate_views()[0].freshness, Freshness::Fresh);
    assert_eq!(app.candidate_views()[0].scores.as_ref(), Some(&before));
}

#[test]
fn a_prompt_edit_makes_every_candidate_stale() {
    let (mut app, _scorer, t) = scored_app("p", &["a", "b"]);
    type_text(&mut app, "!", t);
    assert!(app
        .candidate_views()
        .iter()
        .all(|v| v.freshness == Freshness::Stale));
}

#[test]
fn supersession_and_the_status_of_the_request() {
    let (mut app, scorer) = new_app();
    let t = Instant::now();
    ready(&mut app, t);
    app.set_texts("p", &["a".into()]);
    app.apply(Action::RescoreNow, t);
    assert_eq!(app.inflight.as_ref().unwrap().id, 1);
    app.apply(Action::Focus(Focus::Response), t);
    type_text(&mut app, "b", t);
    app.apply(Action::RescoreNow, t);
    assert_eq!(app.inflight.as_ref().unwrap().id, 2);
    // The engine reports that the first was superseded: the newer one stays in flight.
    app.handle(Event::Engine(EngineEvent::Superseded { request: 1 }), t);
    assert_eq!(app.inflight.as_ref().unwrap().id, 2);
    assert!(app.candidate_views()[0].scoring);
    answer(&mut app, &scorer, 2, t);
    assert!(app.inflight.is_none());
    // The whole batch as the engine timed it, not one item's time.
    assert_eq!(
        app.latency,
        Some(Latency {
            elapsed: Duration::from_millis(900),
            cached: false
        })
    );
}

#[test]
fn a_failed_score_is_shown_and_retried_only_on_request() {
    let (mut app, scorer) = new_app();
    let t = Instant::now();
    ready(&mut app, t);
    app.set_texts("p", &["a".into()]);
    app.apply(Action::RescoreNow, t);
    let item = scorer.requests.borrow()[0].1[0].clone();
    app.handle(
        Event::Engine(EngineEvent::Scored {
            request: 1,
            item,
            result: Err(crate::scoring::ScoreError::Input("input too long".into())),
            cached: false,
            elapsed: Duration::ZERO,
        }),
        t,
    );
    app.handle(
        Event::Engine(EngineEvent::Finished {
            request: 1,
            elapsed: Duration::ZERO,
        }),
        t,
    );
    assert_eq!(
        app.candidate_views()[0].freshness,
        Freshness::Failed("input too long".into())
    );
    app.rescore_at = Some(t);
    app.handle(Event::Tick, t);
    assert_eq!(requests(&scorer), 1, "not retried automatically");
    app.apply(Action::RescoreNow, t);
    assert_eq!(requests(&scorer), 2, "F5 retries");
}

#[test]
fn a_model_that_fails_to_load_leaves_the_editors_usable() {
    let (mut app, scorer) = new_app();
    let t = Instant::now();
    app.handle(
        Event::Engine(EngineEvent::LoadFailed {
            error: crate::scoring::LoadError::Model("no such model".into()),
        }),
        t,
    );
    assert!(matches!(app.model, ModelState::Failed { .. }));
    type_text(&mut app, "still typing", t);
    assert_eq!(app.prompt_text(), "still typing");
    // F5 asks for the model again; this stand-in cannot, and says so.
    app.apply(Action::RescoreNow, t);
    assert_eq!(requests(&scorer), 0);
    assert!(app
        .flash
        .as_ref()
        .unwrap()
        .text
        .contains("cannot be loaded again"));
}

#[test]
fn download_progress_is_tracked() {
    let (mut app, _) = new_app();
    let t = Instant::now();
    app.handle(
        Event::Engine(EngineEvent::Progress(LoadStage::Downloading {
            file: "model-00001-of-00003.safetensors".into(),
            index: 1,
            files: 3,
            bytes: 450,
            total: 1000,
        })),
        t,
    );
    assert!(matches!(
        app.model,
        ModelState::Loading(LoadStage::Downloading {
            bytes: 450,
            total: 1000,
            ..
        })
    ));
    assert!(app.deadline(t).is_some(), "the spinner keeps ticking");
}

#[test]
fn the_scale_toggles_and_views_cycle() {
    let (mut app, _) = new_app();
    let t = Instant::now();
    key(&mut app, KeyCode::F(2), t);
    assert_eq!(app.scale, Scale::HelpSteer);
    key(&mut app, KeyCode::F(2), t);
    assert_eq!(app.scale, Scale::Raw);
    // Narrow: ranking → scatter → sweep → trajectory → ranking.
    app.size = (100, 32);
    let mut seen = Vec::new();
    for _ in 0..4 {
        key(&mut app, KeyCode::F(3), t);
        seen.push(app.view);
    }
    assert_eq!(
        seen,
        [View::Scatter, View::Sweep, View::Trajectory, View::Ranking]
    );
    // Wide: the ranking has its own panel; F3 goes round the charts at once.
    app.size = (200, 60);
    key(&mut app, KeyCode::F(3), t);
    assert_eq!(app.view, View::Sweep);
    key(&mut app, KeyCode::F(3), t);
    assert_eq!(app.view, View::Trajectory);
    key(&mut app, KeyCode::F(3), t);
    assert_eq!(app.view, View::Scatter);
}

#[test]
fn presets_apply_and_user_presets_persist() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = config();
    c.paths.presets = Some(dir.path().join("presets.json"));
    let mut app = App::new(c.clone(), Box::new(FakeScorer::default()));
    let t = Instant::now();
    app.apply(Action::Focus(Focus::Dial), t);
    key(&mut app, KeyCode::Char('p'), t);
    key(&mut app, KeyCode::Down, t);
    key(&mut app, KeyCode::Enter, t);
    assert!(app.overlay.is_none());
    assert_eq!(app.dial.degrees, -15.0);
    // Turn, then save it as a preset of one's own.
    key(&mut app, KeyCode::Left, t);
    key(&mut app, KeyCode::Char('p'), t);
    key(&mut app, KeyCode::Char('s'), t);
    assert!(matches!(app.overlay, Some(Overlay::Input { .. })));
    type_text(&mut app, "terse-ish", t);
    key(&mut app, KeyCode::Enter, t);
    assert!(matches!(app.overlay, Some(Overlay::Presets { .. })));
    key(&mut app, KeyCode::Esc, t);
    let again = App::new(c, Box::new(FakeScorer::default()));
    let mine = again.preset_list();
    let (p, is_mine) = mine.last().unwrap();
    assert!(is_mine);
    assert_eq!(p.name, "terse-ish");
    assert_eq!(p.direction, Direction::angle(-20.0));
    // Built-in presets cannot be deleted; one's own can.
    let mut app = again;
    app.apply(Action::OpenPresets, t);
    app.apply(Action::OverlayDelete, t);
    // The paper's four and HelpSteer2's weights come with DPA, then the user's one.
    assert_eq!(app.preset_list().len(), 6);
    app.overlay = Some(Overlay::Presets { selected: 5 });
    app.apply(Action::OverlayDelete, t);
    assert_eq!(app.preset_list().len(), 5);
}

#[test]
fn sessions_save_and_load_text_scores_and_direction() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.json");
    let (mut app, _scorer, t) = scored_app("Name a colour.", &["Blue.", "Red."]);
    app.apply(Action::SetAngle(-37.0), t);
    app.apply(Action::SelectCandidate(1), t);
    app.apply(Action::SaveSession, t);
    if let Some(Overlay::Input { editor, .. }) = &mut app.overlay {
        **editor = TextArea::from([path.display().to_string()]);
    }
    app.apply(Action::OverlayAccept, t);
    assert!(path.is_file(), "{:?}", app.flash);

    let (mut other, scorer) = new_app();
    ready(&mut other, t);
    other.apply(Action::OpenSession, t);
    if let Some(Overlay::Input { editor, .. }) = &mut other.overlay {
        **editor = TextArea::from([path.display().to_string()]);
    }
    other.apply(Action::OverlayAccept, t);
    assert_eq!(other.prompt_text(), "Name a colour.");
    assert_eq!(other.candidates[1].text(), "Red.");
    assert_eq!(other.selected, 1);
    assert_eq!(other.dial.degrees, -37.0);
    let views = other.candidate_views();
    assert!(views.iter().all(|v| v.freshness == Freshness::Fresh));
    assert_eq!(views[0].reward, app.candidate_views()[0].reward);
    other.handle(Event::Tick, t + DEBOUNCE);
    assert_eq!(
        requests(&scorer),
        0,
        "scores from the same model are reused"
    );
}

#[test]
fn scores_from_another_model_are_not_reused() {
    let (app, _scorer, _t) = scored_app("p", &["a"]);
    let mut s = app.session();
    s.model = "someone/else".into();
    let (mut other, _) = new_app();
    other.apply_session(s);
    assert_eq!(other.candidates[0].text(), "a");
    assert!(other.candidates[0].result.is_none());
}

/// A gating model's weighting comes back with its scores, so the dial's gating R shows
/// after a restart; one that does not fit the attributes, or is not finite, is dropped.
#[test]
fn gating_outputs_are_kept_in_sessions_when_they_fit() {
    let (app, _scorer, _t) = scored_app("p", &["a"]);
    let n = app.labels.len();
    let gating = crate::scoring::Gating {
        weights: vec![0.1; n],
        coefficients: vec![0.2; n],
        score: 1.5,
    };
    let with = |g: Option<crate::scoring::Gating>| {
        let mut s = app.session();
        s.candidates[0].scores.as_mut().unwrap().gating = g;
        let (mut other, _) = new_app();
        other.apply_session(s);
        other.candidates[0]
            .result
            .as_ref()
            .unwrap()
            .scored
            .gating
            .clone()
    };
    assert_eq!(with(Some(gating.clone())), Some(gating.clone()));
    let short = crate::scoring::Gating {
        weights: vec![0.1; n - 1],
        ..gating.clone()
    };
    assert_eq!(with(Some(short)), None);
    let infinite = crate::scoring::Gating {
        score: f32::INFINITY,
        ..gating
    };
    assert_eq!(with(Some(infinite)), None);
}

#[test]
fn autosave_keeps_typed_text_and_is_restored_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = config();
    c.paths.autosave = Some(dir.path().join("data/autosave.json"));
    let mut app = App::new(c.clone(), Box::new(FakeScorer::default()));
    let t = Instant::now();
    type_text(&mut app, "unsaved prompt", t);
    key(&mut app, KeyCode::Tab, t);
    type_text(&mut app, "unsaved response", t);
    assert!(app.deadline(t).unwrap() <= t + AUTOSAVE_DELAY);
    app.handle(Event::Tick, t + AUTOSAVE_DELAY);
    assert!(c.paths.autosave.as_ref().unwrap().is_file());
    let mut next = App::new(c, Box::new(FakeScorer::default()));
    next.restore_start(t);
    assert_eq!(next.prompt_text(), "unsaved prompt");
    assert_eq!(next.candidates[0].text(), "unsaved response");
}

#[test]
fn the_demo_starts_with_samples_and_a_session_file_wins_over_autosave() {
    let mut c = config();
    c.demo = true;
    let mut app = App::new(c.clone(), Box::new(FakeScorer::default()));
    app.restore_start(Instant::now());
    assert_eq!(app.candidates.len(), 3);
    assert!(app.prompt_text().contains("beautiful"));

    let dir = tempfile::tempdir().unwrap();
    let session = dir.path().join("mine.json");
    let mut s = app.session();
    s.prompt = "from the session file".into();
    crate::tui::session::save(&session, &s).unwrap();
    c.paths.session = Some(session);
    let mut app = App::new(c, Box::new(FakeScorer::default()));
    app.restore_start(Instant::now());
    assert_eq!(app.prompt_text(), "from the session file");
}

#[test]
fn unsaved_changes_to_a_session_file_come_back_and_nothing_is_overwritten() {
    let dir = tempfile::tempdir().unwrap();
    let session_path = dir.path().join("work.json");
    let autosave = dir.path().join("data/autosave-x.json");
    let (app, _, _) = scored_app("saved prompt", &["saved"]);
    crate::tui::session::save(&session_path, &app.session()).unwrap();
    let hour_ago = std::time::SystemTime::now() - Duration::from_secs(3600);
    std::fs::File::options()
        .write(true)
        .open(&session_path)
        .unwrap()
        .set_modified(hour_ago)
        .unwrap();
    let mut later = app.session();
    later.prompt = "edited since".into();
    crate::tui::session::save(&autosave, &later).unwrap();
    let mut c = config();
    c.paths.session = Some(session_path.clone());
    c.paths.autosave = Some(autosave.clone());
    let mut app = App::new(c.clone(), Box::new(FakeScorer::default()));
    app.restore_start(Instant::now());
    assert_eq!(app.prompt_text(), "edited since");
    assert!(app.flash.as_ref().unwrap().text.contains("not yet saved"));
    // An autosave older than the file gives way to the file.
    std::fs::File::options()
        .write(true)
        .open(&autosave)
        .unwrap()
        .set_modified(hour_ago - Duration::from_secs(60))
        .unwrap();
    let mut app = App::new(c.clone(), Box::new(FakeScorer::default()));
    app.restore_start(Instant::now());
    assert_eq!(app.prompt_text(), "saved prompt");
    // An unreadable autosave is moved aside, not overwritten later.
    std::fs::write(&autosave, "{broken").unwrap();
    let mut app = App::new(c, Box::new(FakeScorer::default()));
    app.restore_start(Instant::now());
    assert!(!autosave.exists());
    assert!(dir.path().join("data/autosave-x.json.unreadable").is_file());
    assert_eq!(app.prompt_text(), "saved prompt");
}

#[test]
fn export_ranks_under_the_current_direction() {
    let dir = tempfile::tempdir().unwrap();
    let (mut app, _scorer, t) = scored_app("p", &["a", "bb", "ccc"]);
    let rows = app.export_rows();
    let rewards: Vec<f64> = rows.iter().map(|r| r.weighted.unwrap()).collect();
    assert!(rewards.windows(2).all(|w| w[0] >= w[1]), "{rewards:?}");
    assert_eq!(rows[0].rank, Some(1));
    for ext in ["jsonl", "csv"] {
        let path = dir.path().join(format!("out.{ext}"));
        app.apply(Action::Export, t);
        if let Some(Overlay::Input { editor, .. }) = &mut app.overlay {
            **editor = TextArea::from([path.display().to_string()]);
        }
        app.apply(Action::OverlayAccept, t);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("helpsteer-helpfulness"), "{ext}: {text}");
    }
}

fn mouse(app: &mut App, kind: MouseEventKind, x: u16, y: u16, t: Instant) {
    app.handle(
        Event::Mouse(MouseEvent {
            kind,
            column: x,
            row: y,
            modifiers: KeyModifiers::NONE,
        }),
        t,
    );
}

#[test]
fn mouse_focuses_selects_and_turns_the_dial() {
    let (mut app, _scorer, t) = scored_app("p", &["a", "b"]);
    app.size = (160, 48);
    let a = layout::areas(ratatui::layout::Rect::new(0, 0, 160, 48)).unwrap();
    let down = MouseEventKind::Down(MouseButton::Left);
    // Click in the response editor: focus moves there.
    mouse(&mut app, down, a.response.x + 3, a.response.y + 1, t);
    assert_eq!(app.focus, Focus::Response);
    // Click on tab B.
    let names = ["A", "B"];
    let (x, _, _) = candidates::tab_spans(&names, app.selected, a.tabs)[1];
    mouse(&mut app, down, x + 1, a.tabs.y, t);
    assert_eq!(app.selected, 1);
    // Press straight above the dial's centre, then drag to its right.
    let canvas = dial::split(layout::inner(a.dial), app.dial.mode).canvas;
    let (cx, cy) = (canvas.x + canvas.width / 2, canvas.y + canvas.height / 2);
    mouse(&mut app, down, cx, canvas.y, t);
    assert_eq!(app.focus, Focus::Dial);
    assert!(
        (app.dial.degrees - 90.0).abs() <= 3.0,
        "{}",
        app.dial.degrees
    );
    mouse(
        &mut app,
        MouseEventKind::Drag(MouseButton::Left),
        canvas.right() + 5,
        cy,
        t,
    );
    assert!(app.dial.degrees.abs() <= 3.0, "{}", app.dial.degrees);
    mouse(&mut app, MouseEventKind::Up(MouseButton::Left), cx, cy, t);
    assert_eq!(app.drag, None);
    // The wheel over the dial turns it by a degree.
    let before = app.dial.degrees;
    mouse(&mut app, MouseEventKind::ScrollUp, cx, cy, t);
    assert_eq!(app.dial.degrees, before + 1.0);
    // Small terminals ignore the mouse rather than guessing.
    app.size = (40, 10);
    mouse(&mut app, down, 1, 1, t);
    assert_eq!(app.focus, Focus::Dial);
}

#[test]
fn a_click_places_the_editor_cursor() {
    let (mut app, _) = new_app();
    let t = Instant::now();
    app.set_texts("first line\nsecond line", &["r".into()]);
    let a = layout::areas(ratatui::layout::Rect::new(0, 0, 160, 48)).unwrap();
    // The editor records where it was drawn; draw once as the terminal would.
    let mut buf = ratatui::buffer::Buffer::empty(ratatui::layout::Rect::new(0, 0, 160, 48));
    crate::tui::view::render(&app, buf.area, &mut buf);
    let text = layout::inner(a.prompt);
    mouse(
        &mut app,
        MouseEventKind::Down(MouseButton::Left),
        text.x + 3,
        text.y + 1,
        t,
    );
    assert_eq!(app.focus, Focus::Prompt);
    assert_eq!(app.prompt.cursor(), (1, 3));
}

/// Feeds engine events to the app until `done` holds (or fails after a generous wait).
fn pump(
    app: &mut App,
    rx: &std::sync::mpsc::Receiver<EngineEvent>,
    done: impl Fn(&App) -> bool,
) -> Vec<EngineEvent> {
    let mut seen = Vec::new();
    let end = Instant::now() + Duration::from_secs(20);
    while !done(app) {
        let left = end.saturating_duration_since(Instant::now());
        assert!(!left.is_zero(), "timed out; events so far: {seen:?}");
        if let Ok(e) = rx.recv_timeout(left.min(Duration::from_millis(100))) {
            seen.push(e.clone());
            app.handle(Event::Engine(e), Instant::now());
        }
    }
    seen
}

#[test]
fn the_engine_cache_answers_text_seen_before() {
    let backend = FakeBackend::new(&DPA_LABELS, fake_scores);
    let calls = backend.calls.clone();
    let loader: Loader = Box::new(move |_| Ok(backend.pipeline()));
    let (tx, rx) = std::sync::mpsc::channel();
    let engine = Engine::spawn(loader, 16, move |e| {
        let _ = tx.send(e);
    });
    let mut app = App::new(config(), Box::new(engine));
    pump(&mut app, &rx, |a| a.model == ModelState::Ready);
    let t = Instant::now();
    key(&mut app, KeyCode::Tab, t);
    type_text(&mut app, "one", t);
    app.apply(Action::RescoreNow, t);
    let fresh =
        |a: &App| a.candidate_views()[0].freshness == Freshness::Fresh && a.inflight.is_none();
    pump(&mut app, &rx, fresh);
    type_text(&mut app, "!", t);
    app.apply(Action::RescoreNow, t);
    pump(&mut app, &rx, fresh);
    assert_eq!(calls.lock().unwrap().len(), 2);
    // Back to the first text: its own result is gone from the candidate, the engine has it.
    key(&mut app, KeyCode::Backspace, t);
    assert_eq!(app.candidate_views()[0].freshness, Freshness::Stale);
    app.apply(Action::RescoreNow, t);
    let events = pump(&mut app, &rx, fresh);
    assert_eq!(calls.lock().unwrap().len(), 2, "no new model call");
    assert!(events
        .iter()
        .any(|e| matches!(e, EngineEvent::Scored { cached: true, .. })));
    assert!(app.latency.unwrap().cached);
    assert_eq!(
        app.candidate_views()[0].scores.as_ref().unwrap(),
        &fake_scores("", "one")
    );
}
