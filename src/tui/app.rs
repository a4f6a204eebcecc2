//! The explorer's state and how events change it. Nothing here touches a terminal: `view`
//! draws an [`App`], `keys` turns key presses and mouse events into [`Action`]s, and the event
//! loop in `mod.rs` feeds it terminal input, engine events and ticks.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use crossterm::event::{KeyEvent, KeyEventKind, MouseEvent};
use ratatui::style::{Modifier, Style};
use ratatui_textarea::{CursorMove, Input, Key, Scrolling, TextArea, WrapMode};

use crate::engine::{EngineEvent, LoadStage, RequestId, ScoreItem};
use crate::model::{ModelInfo, Scored, DPA_LABELS};
use crate::preference::{
    self, angle_of, find_attribute, paper_presets, raw_weights, weights_direction, wrap_degrees,
    Direction, PreferenceError, Preset, HELPFULNESS, VERBOSITY,
};

use super::keys;
use super::presets::UserPresets;
use super::session::{self, Session};

/// How long typing must pause before the text is rescored.
pub const DEBOUNCE: Duration = Duration::from_millis(400);
/// How long after the last change the autosave is written.
pub const AUTOSAVE_DELAY: Duration = Duration::from_millis(300);
/// How long a message stays in the status line.
pub const FLASH_FOR: Duration = Duration::from_secs(6);
/// How often the spinner moves while something runs in the background.
pub const SPIN_EVERY: Duration = Duration::from_millis(120);

/// Whatever scores text for the explorer: the engine, or a stand-in in tests.
pub trait Scorer {
    /// Asks for `items` to be scored; supersedes every earlier request.
    fn score(&mut self, items: Vec<ScoreItem>) -> RequestId;
    /// The candidate of `slot` is gone: whatever is kept for it can go.
    fn forget(&mut self, _slot: u64) {}
}

impl Scorer for crate::engine::Engine {
    fn score(&mut self, items: Vec<ScoreItem>) -> RequestId {
        crate::engine::Engine::score(self, items)
    }

    fn forget(&mut self, slot: u64) {
        crate::engine::Engine::forget(self, slot)
    }
}

/// Everything that reaches the explorer.
#[derive(Debug, Clone)]
pub enum Event {
    Key(KeyEvent),
    Mouse(MouseEvent),
    /// Text pasted into the terminal (bracketed paste).
    Paste(String),
    Resize(u16, u16),
    Engine(EngineEvent),
    /// Time passed; deadlines (rescoring, autosave, messages) may be due.
    Tick,
}

/// Which part of the screen takes keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Focus {
    Prompt,
    Response,
    Dial,
}

impl Focus {
    pub fn is_editor(self) -> bool {
        matches!(self, Focus::Prompt | Focus::Response)
    }
}

/// The scale the attribute bars show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scale {
    /// The model's own 0–100.
    Raw,
    /// HelpSteer attributes as (score − 10) / 20 on 0–4; UltraFeedback stays 0–100.
    HelpSteer,
}

/// The tabbed panel's page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    Ranking,
    Scatter,
    Sweep,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DialMode {
    /// v = (cos θ, sin θ) over (helpfulness, verbosity).
    Angle,
    /// A free weight vector over all attributes, normalised.
    Weights,
}

/// The preference direction as the user edits it.
#[derive(Debug, Clone, PartialEq)]
pub struct Dial {
    pub mode: DialMode,
    /// θ in degrees, in (−180°, 180°].
    pub degrees: f64,
    /// Raw weights in weights mode, one per attribute (normalised when used).
    pub weights: Vec<f64>,
    /// The attribute whose weight the arrows change.
    pub cursor: usize,
}

impl Dial {
    pub fn new(direction: &Direction, labels: &[String]) -> Self {
        let mut d = Dial {
            mode: DialMode::Angle,
            degrees: 0.0,
            weights: default_weights(labels, 0.0),
            cursor: 0,
        };
        d.set_direction(direction, labels);
        d
    }

    /// The direction as it would be saved or exported.
    pub fn direction(&self, labels: &[String]) -> Direction {
        match self.mode {
            DialMode::Angle => Direction::Angle {
                degrees: self.degrees,
            },
            DialMode::Weights => weights_direction(labels, &self.weights),
        }
    }

    /// The unit weight vector over `labels`.
    pub fn unit(&self, labels: &[String]) -> Result<Vec<f64>, PreferenceError> {
        match self.mode {
            DialMode::Angle => self.direction(labels).resolve(labels),
            DialMode::Weights => preference::normalise(&self.weights),
        }
    }

    pub fn turn(&mut self, delta: f64) {
        self.degrees = wrap_degrees(self.degrees + delta);
    }

    pub fn set_angle(&mut self, degrees: f64) {
        if degrees.is_finite() {
            self.degrees = wrap_degrees(degrees);
        }
    }

    /// Takes on `direction`; a direction that does not fit `labels` changes nothing.
    pub fn set_direction(&mut self, direction: &Direction, labels: &[String]) -> bool {
        match direction {
            Direction::Angle { degrees } if degrees.is_finite() => {
                self.mode = DialMode::Angle;
                self.degrees = wrap_degrees(*degrees);
                true
            }
            Direction::Angle { .. } => false,
            Direction::Weights { .. } => match raw_weights(direction, labels) {
                Ok(w) => {
                    self.mode = DialMode::Weights;
                    self.weights = w;
                    self.cursor = self.cursor.min(labels.len().saturating_sub(1));
                    true
                }
                Err(_) => false,
            },
        }
    }

    /// Switches between the angle and the weight vector, carrying the direction across as
    /// far as it goes: an angle becomes its two weights; weights become the angle of their
    /// helpfulness/verbosity part.
    pub fn toggle_mode(&mut self, labels: &[String]) {
        match self.mode {
            DialMode::Angle => {
                self.weights = default_weights(labels, self.degrees);
                self.mode = DialMode::Weights;
            }
            DialMode::Weights => {
                // Unchanged weights give back the exact angle they came from.
                if self.weights != default_weights(labels, self.degrees) {
                    if let (Ok(x), Ok(y)) = (
                        find_attribute(labels, HELPFULNESS),
                        find_attribute(labels, VERBOSITY),
                    ) {
                        let (wx, wy) = (self.weights[x], self.weights[y]);
                        if wx != 0.0 || wy != 0.0 {
                            self.degrees = (angle_of(wx, wy) * 10.0).round() / 10.0;
                        }
                    }
                }
                self.mode = DialMode::Angle;
            }
        }
    }

    pub fn adjust_weight(&mut self, delta: f64) {
        if let Some(w) = self.weights.get_mut(self.cursor) {
            // Round to the step so repeated presses land on clean values.
            *w = ((*w + delta) * 100.0).round() / 100.0;
        }
    }

    pub fn move_cursor(&mut self, delta: i32) {
        let n = self.weights.len();
        if n > 0 {
            self.cursor = (self.cursor as i64 + delta as i64).rem_euclid(n as i64) as usize;
        }
    }

    /// Makes the weight vector as long as `labels`, keeping what it can.
    fn fit(&mut self, labels: &[String]) {
        if self.weights.len() != labels.len() {
            self.weights = default_weights(labels, self.degrees);
            self.cursor = 0;
        }
    }
}

/// (cos θ, sin θ) on helpfulness and verbosity, zero elsewhere.
fn default_weights(labels: &[String], degrees: f64) -> Vec<f64> {
    let rounded = |x: f64| (x * 100.0).round() / 100.0;
    Direction::Angle { degrees }
        .resolve(labels)
        .map(|v| v.into_iter().map(rounded).collect())
        .unwrap_or_else(|_| vec![0.0; labels.len()])
}

/// Where the model stands.
#[derive(Debug, Clone, PartialEq)]
pub enum ModelState {
    Starting,
    /// Downloading or reading weights, as the engine last reported.
    Loading(LoadStage),
    Ready,
    Failed {
        error: String,
    },
}

/// A result the engine sent for one candidate.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// The text these scores belong to; the result is fresh only while it is the current text.
    pub prompt: String,
    pub response: String,
    pub request: RequestId,
    pub scored: Scored,
    pub cached: bool,
}

/// A failure to score one text.
#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    pub prompt: String,
    pub response: String,
    pub message: String,
}

/// One candidate response with its own editor and scores.
#[derive(Debug)]
pub struct Candidate {
    /// Stable id, sent with every score request for this candidate.
    pub slot: u64,
    /// Stable short name (A, B, …).
    pub name: String,
    pub editor: TextArea<'static>,
    /// The newest result received, which may belong to an older text (then it shows stale).
    pub result: Option<Outcome>,
    /// The scores the newest result replaced, for the movement markers.
    pub previous: Option<Vec<f32>>,
    pub failure: Option<Failure>,
}

impl Candidate {
    pub fn text(&self) -> String {
        self.editor.lines().join("\n")
    }
}

/// How a candidate's shown scores relate to its current text.
#[derive(Debug, Clone, PartialEq)]
pub enum Freshness {
    /// No response text yet.
    Empty,
    /// Text, but no result yet.
    Unscored,
    /// The shown scores belong to the current text.
    Fresh,
    /// The text changed since the shown scores.
    Stale,
    /// Scoring the current text failed.
    Failed(String),
}

/// What the view needs of one candidate, computed once per frame.
#[derive(Debug, Clone)]
pub struct CandidateView {
    pub index: usize,
    pub name: String,
    pub freshness: Freshness,
    pub scores: Option<Vec<f32>>,
    pub previous: Option<Vec<f32>>,
    pub tokens: Option<usize>,
    pub truncated: bool,
    pub warnings: Vec<String>,
    /// R = v · r under the current direction.
    pub reward: Option<f64>,
    /// The first line of the response, for lists.
    pub preview: String,
    /// Whether this candidate is being scored right now.
    pub scoring: bool,
}

impl CandidateView {
    /// (helpfulness, verbosity) of the shown scores, for the dial plane.
    pub fn point(&self, axes: Option<(usize, usize)>) -> Option<(f64, f64)> {
        let (x, y) = axes?;
        let s = self.scores.as_ref()?;
        Some((*s.get(x)? as f64, *s.get(y)? as f64))
    }
}

/// A request sent and not yet finished.
#[derive(Debug, Clone)]
pub struct Inflight {
    pub id: RequestId,
    pub items: Vec<ScoreItem>,
    /// Items the engine had to compute (cache hits excluded), once it said so.
    pub computing: Option<usize>,
    pub answered: usize,
}

/// How long the last score took.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Latency {
    pub elapsed: Duration,
    pub cached: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Flash {
    pub text: String,
    pub error: bool,
    pub until: Instant,
}

/// What a one-line input box is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputPurpose {
    SaveSession,
    OpenSession,
    Export,
    PresetName,
}

impl InputPurpose {
    pub fn title(self) -> &'static str {
        match self {
            InputPurpose::SaveSession => "Save session as (JSON)",
            InputPurpose::OpenSession => "Open session file",
            InputPurpose::Export => "Export scores to (.jsonl or .csv)",
            InputPurpose::PresetName => "Save the current direction as preset named",
        }
    }
}

/// A box drawn over the main screen that takes the keys while open.
#[derive(Debug)]
pub enum Overlay {
    Help {
        scroll: u16,
    },
    Presets {
        selected: usize,
    },
    Input {
        purpose: InputPurpose,
        editor: Box<TextArea<'static>>,
    },
    ConfirmDelete {
        slot: u64,
    },
}

/// What a mouse drag is moving.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Drag {
    Dial,
}

/// What the user asked for; produced by `keys`, applied by [`App::apply`].
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    None,
    Quit,
    ShowHelp,
    CloseOverlay,
    FocusNext,
    FocusPrev,
    Focus(Focus),
    ToggleScale,
    NextView,
    SetView(View),
    ToggleDialMode,
    RescoreNow,
    OpenPresets,
    NewCandidate,
    DeleteCandidate,
    SelectCandidate(usize),
    /// Moves the selection by this many candidates (wrapping).
    StepCandidate(i32),
    /// Selects the candidate at this place in the ranking.
    SelectRank(usize),
    Turn(f64),
    SetAngle(f64),
    WeightCursor(i32),
    SelectWeight(usize),
    AdjustWeight(f64),
    ResetDirection,
    SaveSession,
    OpenSession,
    Export,
    /// A key for the focused editor.
    Edit(Input),
    Undo,
    Redo,
    SelectAll,
    /// Paste the editor's own clipboard (what it last cut or copied).
    PasteYank,
    /// A click in an editor at a position relative to its text area.
    ClickEditor {
        focus: Focus,
        row: u16,
        col: u16,
    },
    /// Wheel over an editor: lines to scroll (negative is up).
    ScrollEditor {
        focus: Focus,
        lines: i16,
    },
    /// A press on the dial: point it at this angle and follow the drag.
    StartDragAt(f64),
    EndDrag,
    HelpScroll(i32),
    OverlayMove(i32),
    OverlayAccept,
    OverlayDelete,
    OverlayInput(Input),
    /// In the presets list: save the current direction under a new name.
    SavePresetAs,
}

/// Where the explorer keeps its files; `None` keeps that thing in memory only.
#[derive(Debug, Clone, Default)]
pub struct Paths {
    pub autosave: Option<PathBuf>,
    pub presets: Option<PathBuf>,
    /// The `--session` file: opened at start when it exists, the default for saving.
    pub session: Option<PathBuf>,
}

/// How the explorer starts.
#[derive(Debug, Clone)]
pub struct AppConfig {
    /// The model as the user named it (hub id or directory).
    pub model_name: String,
    pub demo: bool,
    pub direction: Direction,
    /// The device and dtype asked for, shown until the model says what it got.
    pub device: String,
    pub dtype: String,
    pub paths: Paths,
}

pub struct App {
    pub model_name: String,
    pub demo: bool,
    pub requested_device: String,
    pub requested_dtype: String,
    pub model: ModelState,
    pub info: Option<ModelInfo>,
    pub model_warnings: Vec<String>,
    pub labels: Vec<String>,
    pub prompt: TextArea<'static>,
    pub candidates: Vec<Candidate>,
    pub selected: usize,
    pub focus: Focus,
    pub dial: Dial,
    pub scale: Scale,
    pub view: View,
    pub overlay: Option<Overlay>,
    pub inflight: Option<Inflight>,
    /// When the current text should be sent for scoring.
    pub rescore_at: Option<Instant>,
    pub latency: Option<Latency>,
    pub flash: Option<Flash>,
    /// The terminal size, for mouse hit-testing and layout choices.
    pub size: (u16, u16),
    pub drag: Option<Drag>,
    pub quit: bool,
    pub presets: UserPresets,
    pub paths: Paths,
    /// When unsaved changes should be written to the autosave file.
    pub autosave_at: Option<Instant>,
    /// Advances while something runs in the background, for the spinner.
    pub spinner: u64,
    scorer: Box<dyn Scorer>,
    next_slot: u64,
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App")
            .field("model", &self.model)
            .field("focus", &self.focus)
            .field("selected", &self.selected)
            .field("candidates", &self.candidates.len())
            .finish_non_exhaustive()
    }
}

fn new_editor(text: &str, placeholder: &str) -> TextArea<'static> {
    let mut t = if text.is_empty() {
        TextArea::default()
    } else {
        TextArea::from(text.split('\n').map(String::from).collect::<Vec<_>>())
    };
    t.set_wrap_mode(WrapMode::WordOrGlyph);
    t.set_cursor_line_style(Style::default());
    t.set_placeholder_text(placeholder);
    t.move_cursor(CursorMove::Bottom);
    t.move_cursor(CursorMove::End);
    t
}

const PROMPT_PLACEHOLDER: &str = "Type the user's prompt here…";
const RESPONSE_PLACEHOLDER: &str = "Type a candidate response here…";

/// The name of the n-th candidate: A … Z, then AA, AB, …
pub fn candidate_name(mut n: usize) -> String {
    let mut s = Vec::new();
    loop {
        s.push(b'A' + (n % 26) as u8);
        if n < 26 {
            break;
        }
        n = n / 26 - 1;
    }
    s.reverse();
    String::from_utf8(s).unwrap_or_default()
}

/// Sample text for the demo: the model card's example and two variations.
pub fn demo_samples() -> (String, Vec<String>) {
    (
        "What are some synonyms for the word \"beautiful\"?".into(),
        vec![
            "Nicely, Beautifully, Handsome, Stunning, Wonderful, Gorgeous, Pretty, Stunning, Elegant"
                .into(),
            "Some synonyms for \"beautiful\" are: attractive, gorgeous, lovely, stunning, pretty, \
             exquisite, elegant and graceful. Each has its own shade: \"stunning\" is stronger, \
             \"pretty\" is lighter and \"elegant\" points at refinement."
                .into(),
            "Pretty.".into(),
        ],
    )
}

impl App {
    pub fn new(config: AppConfig, scorer: Box<dyn Scorer>) -> Self {
        let labels: Vec<String> = DPA_LABELS.iter().map(|s| s.to_string()).collect();
        let dial = Dial::new(&config.direction, &labels);
        let presets = UserPresets::load(config.paths.presets.clone());
        let mut app = App {
            model_name: config.model_name,
            demo: config.demo,
            requested_device: config.device,
            requested_dtype: config.dtype,
            model: ModelState::Starting,
            info: None,
            model_warnings: Vec::new(),
            labels,
            prompt: new_editor("", PROMPT_PLACEHOLDER),
            candidates: Vec::new(),
            selected: 0,
            focus: Focus::Prompt,
            dial,
            scale: Scale::Raw,
            view: View::Ranking,
            overlay: None,
            inflight: None,
            rescore_at: None,
            latency: None,
            flash: None,
            size: (0, 0),
            drag: None,
            quit: false,
            presets,
            paths: config.paths,
            autosave_at: None,
            spinner: 0,
            scorer,
            next_slot: 1,
        };
        if let Some(e) = app.presets.error.take() {
            app.set_flash(e, true, Instant::now());
        }
        app.add_candidate("");
        app.apply_focus_styles();
        app
    }

    /// Puts `prompt` and `responses` in the editors, replacing what is there.
    pub fn set_texts(&mut self, prompt: &str, responses: &[String]) {
        self.prompt = new_editor(prompt, PROMPT_PLACEHOLDER);
        self.candidates.clear();
        for r in responses {
            self.add_candidate(r);
        }
        if self.candidates.is_empty() {
            self.add_candidate("");
        }
        self.selected = 0;
        self.apply_focus_styles();
    }

    /// Where the app starts from: the `--session` file (or its autosave, when that is newer),
    /// else the last autosave, else (demo) the samples; says which in the status line.
    pub fn restore_start(&mut self, now: Instant) {
        let modified = |p: &std::path::Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
        let session_file = self.paths.session.clone().filter(|p| p.is_file());
        let autosave_file = self.paths.autosave.clone().filter(|p| p.is_file());
        let autosaved = match &autosave_file {
            Some(p) => match session::load(p) {
                Ok(s) if !s.is_blank() => Some(s),
                Ok(_) => None,
                Err(e) => {
                    // Keep it for the user rather than overwrite it at the next change.
                    let kept = match session::set_aside(p) {
                        Ok(aside) => format!("kept as {}", aside.display()),
                        Err(e) => format!("could not move it aside: {e}"),
                    };
                    self.set_flash(
                        format!("could not read the autosave ({e:#}); {kept}"),
                        true,
                        now,
                    );
                    None
                }
            },
            None => None,
        };
        let newer = match (&session_file, &autosave_file) {
            (Some(s), Some(a)) => modified(a) > modified(s),
            _ => false,
        };
        match (session_file, autosaved) {
            (Some(path), Some(a)) if newer => {
                self.apply_session(a);
                self.set_flash(
                    format!(
                        "restored changes to {} not yet saved (Ctrl-S saves)",
                        path.display()
                    ),
                    false,
                    now,
                );
            }
            (Some(path), autosaved) => match (session::load(&path), autosaved) {
                (Ok(s), _) => {
                    self.apply_session(s);
                    self.set_flash(format!("opened {}", path.display()), false, now);
                }
                // The file is broken: its autosave is the best there is, and starting blank
                // would let the next save replace it.
                (Err(e), Some(a)) => {
                    self.apply_session(a);
                    self.set_flash(format!("restored its autosave: {e:#}"), true, now);
                }
                (Err(e), None) => self.set_flash(format!("{e:#}"), true, now),
            },
            (None, Some(a)) => {
                self.apply_session(a);
                self.set_flash("restored your last session".to_string(), false, now);
            }
            (None, None) => {
                if self.demo {
                    let (p, rs) = demo_samples();
                    self.set_texts(&p, &rs);
                }
            }
        }
        self.rescore_at = Some(now);
    }

    fn add_candidate(&mut self, text: &str) -> usize {
        let used: Vec<&str> = self.candidates.iter().map(|c| c.name.as_str()).collect();
        let name = (0..)
            .map(candidate_name)
            .find(|n| !used.contains(&n.as_str()))
            .unwrap_or_default();
        let slot = self.next_slot;
        self.next_slot += 1;
        self.candidates.push(Candidate {
            slot,
            name,
            editor: new_editor(text, RESPONSE_PLACEHOLDER),
            result: None,
            previous: None,
            failure: None,
        });
        self.candidates.len() - 1
    }

    pub fn prompt_text(&self) -> String {
        self.prompt.lines().join("\n")
    }

    pub fn selected_candidate(&self) -> &Candidate {
        &self.candidates[self.selected]
    }

    /// Indices of (helpfulness, verbosity) among the labels.
    pub fn plane_axes(&self) -> Option<(usize, usize)> {
        Some((
            find_attribute(&self.labels, HELPFULNESS).ok()?,
            find_attribute(&self.labels, VERBOSITY).ok()?,
        ))
    }

    /// The unit direction over the labels, or why there is none.
    pub fn unit(&self) -> Result<Vec<f64>, PreferenceError> {
        self.dial.unit(&self.labels)
    }

    /// Everything the view shows about each candidate, in list order.
    pub fn candidate_views(&self) -> Vec<CandidateView> {
        let prompt = self.prompt_text();
        let unit = self.unit().ok();
        let inflight = self.inflight.as_ref();
        self.candidates
            .iter()
            .enumerate()
            .map(|(index, c)| {
                let text = c.text();
                let result = c.result.as_ref();
                let current =
                    |p: &str, r: &str| -> bool { p == prompt.as_str() && r == text.as_str() };
                let freshness = match (&c.failure, result) {
                    _ if text.trim().is_empty() => Freshness::Empty,
                    (Some(f), _) if current(&f.prompt, &f.response) => {
                        Freshness::Failed(f.message.clone())
                    }
                    (_, Some(o)) if current(&o.prompt, &o.response) => Freshness::Fresh,
                    (_, Some(_)) => Freshness::Stale,
                    (_, None) => Freshness::Unscored,
                };
                let scores = result.map(|o| o.scored.scores.clone());
                let reward = match (&unit, &scores) {
                    (Some(u), Some(s)) if u.len() == s.len() => Some(preference::weighted(u, s)),
                    _ => None,
                };
                let scoring = inflight.is_some_and(|f| {
                    f.items
                        .iter()
                        .any(|i| i.slot == c.slot && current(&i.prompt, &i.response))
                }) && freshness != Freshness::Fresh;
                CandidateView {
                    index,
                    name: c.name.clone(),
                    freshness,
                    scores,
                    previous: c.previous.clone(),
                    tokens: result.map(|o| o.scored.tokens),
                    truncated: result.is_some_and(|o| o.scored.truncated),
                    warnings: result
                        .map(|o| o.scored.warnings.clone())
                        .unwrap_or_default(),
                    reward,
                    preview: text.lines().next().unwrap_or("").to_string(),
                    scoring,
                }
            })
            .collect()
    }

    /// The next moment something is due (rescoring, autosave, a message to clear, the
    /// spinner), so the event loop can sleep until then.
    pub fn deadline(&self, now: Instant) -> Option<Instant> {
        let busy = self.inflight.is_some()
            || matches!(self.model, ModelState::Starting | ModelState::Loading(_));
        [
            self.rescore_at,
            self.autosave_at,
            self.flash.as_ref().map(|f| f.until),
            busy.then(|| now + SPIN_EVERY),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Applies one event. `now` is passed in so tests control time.
    pub fn handle(&mut self, event: Event, now: Instant) {
        match event {
            Event::Key(key) => {
                if key.kind == KeyEventKind::Release {
                    return;
                }
                let action = keys::key_action(self, key);
                self.apply(action, now);
            }
            Event::Mouse(m) => {
                let action = keys::mouse_action(self, m);
                self.apply(action, now);
            }
            Event::Paste(text) => self.paste(&text, now),
            Event::Resize(w, h) => self.size = (w, h),
            Event::Engine(e) => self.engine_event(e, now),
            Event::Tick => self.tick(now),
        }
    }

    fn tick(&mut self, now: Instant) {
        if self.rescore_at.is_some_and(|t| t <= now) {
            self.rescore_at = None;
            self.request_scores(false, now);
        }
        if self.flash.as_ref().is_some_and(|f| f.until <= now) {
            self.flash = None;
        }
        if self.autosave_at.is_some_and(|t| t <= now) {
            self.autosave(now);
        }
        self.spinner = self.spinner.wrapping_add(1);
    }

    pub fn set_flash(&mut self, text: String, error: bool, now: Instant) {
        if error {
            tracing::warn!("{text}");
        }
        self.flash = Some(Flash {
            text,
            error,
            until: now + FLASH_FOR,
        });
    }

    /// Text changed: rescore after a pause, autosave soon.
    fn edited(&mut self, now: Instant) {
        self.rescore_at = Some(now + DEBOUNCE);
        self.changed(now);
    }

    /// Something worth keeping changed.
    fn changed(&mut self, now: Instant) {
        if self.autosave_at.is_none() {
            self.autosave_at = Some(now + AUTOSAVE_DELAY);
        }
    }

    /// Writes the autosave file now, if there is one.
    pub fn autosave(&mut self, now: Instant) {
        self.autosave_at = None;
        let Some(path) = self.paths.autosave.clone() else {
            return;
        };
        if let Err(e) = session::save(&path, &self.session()) {
            self.set_flash(format!("autosave failed: {e:#}"), true, now);
        }
    }

    fn paste(&mut self, text: &str, now: Instant) {
        let text = text.replace("\r\n", "\n").replace('\r', "\n");
        if let Some(Overlay::Input { editor, .. }) = &mut self.overlay {
            editor.insert_str(text.replace('\n', " "));
            return;
        }
        if self.overlay.is_some() {
            return;
        }
        match self.focus {
            Focus::Prompt | Focus::Response => {
                let editor = self.editor_mut(self.focus);
                let held: usize = editor.lines().iter().map(|l| l.len() + 1).sum();
                if held.saturating_add(text.len()) > session::MAX_TEXT_BYTES {
                    let limit = session::MAX_TEXT_BYTES >> 10;
                    self.set_flash(
                        format!("not pasted: a text holds at most {limit} KiB"),
                        true,
                        now,
                    );
                } else if editor.insert_str(&text) {
                    self.edited(now);
                }
            }
            Focus::Dial => self.set_flash(
                "paste goes into an editor: Tab to the prompt or response first".into(),
                false,
                now,
            ),
        }
    }

    fn editor_mut(&mut self, focus: Focus) -> &mut TextArea<'static> {
        match focus {
            Focus::Prompt => &mut self.prompt,
            _ => &mut self.candidates[self.selected].editor,
        }
    }

    /// Shows the text cursor only in the focused editor.
    fn apply_focus_styles(&mut self) {
        let on = Style::default().add_modifier(Modifier::REVERSED);
        let off = Style::default();
        let focus = self.focus;
        self.prompt
            .set_cursor_style(if focus == Focus::Prompt { on } else { off });
        for (i, c) in self.candidates.iter_mut().enumerate() {
            let shown = focus == Focus::Response && i == self.selected;
            c.editor.set_cursor_style(if shown { on } else { off });
        }
    }

    fn set_focus(&mut self, focus: Focus) {
        self.focus = focus;
        self.apply_focus_styles();
    }

    fn select(&mut self, index: usize) {
        if index < self.candidates.len() {
            self.selected = index;
            self.apply_focus_styles();
        }
    }

    /// Applies an action.
    pub fn apply(&mut self, action: Action, now: Instant) {
        match action {
            Action::None => {}
            Action::Quit => self.quit = true,
            Action::ShowHelp => self.overlay = Some(Overlay::Help { scroll: 0 }),
            Action::CloseOverlay => self.overlay = None,
            Action::FocusNext => self.set_focus(match self.focus {
                Focus::Prompt => Focus::Response,
                Focus::Response => Focus::Dial,
                Focus::Dial => Focus::Prompt,
            }),
            Action::FocusPrev => self.set_focus(match self.focus {
                Focus::Prompt => Focus::Dial,
                Focus::Response => Focus::Prompt,
                Focus::Dial => Focus::Response,
            }),
            Action::Focus(f) => self.set_focus(f),
            Action::ToggleScale => {
                self.scale = match self.scale {
                    Scale::Raw => Scale::HelpSteer,
                    Scale::HelpSteer => Scale::Raw,
                }
            }
            Action::NextView => {
                // Cycle through the pages the panel offers at this size.
                let elsewhere = super::layout::is_wide(self.size);
                let pages = super::widgets::tabs::pages(elsewhere);
                let shown = super::widgets::tabs::shown(self.view, elsewhere);
                let at = pages.iter().position(|v| *v == shown).unwrap_or(0);
                self.view = pages[(at + 1) % pages.len()];
            }
            Action::SetView(v) => self.view = v,
            Action::ToggleDialMode => {
                self.dial.toggle_mode(&self.labels);
                self.changed(now);
            }
            Action::RescoreNow => {
                self.rescore_at = None;
                self.request_scores(true, now);
            }
            Action::OpenPresets => self.overlay = Some(Overlay::Presets { selected: 0 }),
            Action::NewCandidate if self.candidates.len() >= session::MAX_CANDIDATES => self
                .set_flash(
                    format!("at most {} candidates", session::MAX_CANDIDATES),
                    true,
                    now,
                ),
            Action::NewCandidate => {
                let i = self.add_candidate("");
                self.select(i);
                self.set_focus(Focus::Response);
                self.changed(now);
            }
            Action::DeleteCandidate => {
                let c = self.selected_candidate();
                if c.text().trim().is_empty() {
                    let slot = c.slot;
                    self.delete_candidate(slot, now);
                } else {
                    self.overlay = Some(Overlay::ConfirmDelete { slot: c.slot });
                }
            }
            Action::SelectCandidate(i) => self.select(i),
            Action::StepCandidate(d) => {
                let n = self.candidates.len() as i64;
                self.select((self.selected as i64 + d as i64).rem_euclid(n) as usize);
            }
            Action::SelectRank(r) => {
                let rewards: Vec<Option<f64>> =
                    self.candidate_views().iter().map(|c| c.reward).collect();
                if let Some(&i) = preference::ranking(&rewards).get(r) {
                    self.select(i);
                }
            }
            Action::Turn(d) => {
                if self.dial.mode == DialMode::Weights {
                    self.dial.mode = DialMode::Angle;
                }
                self.dial.turn(d);
                self.changed(now);
            }
            Action::SetAngle(d) => {
                self.dial.mode = DialMode::Angle;
                self.dial.set_angle(d);
                self.changed(now);
            }
            Action::WeightCursor(d) => self.dial.move_cursor(d),
            Action::SelectWeight(i) => {
                if i < self.dial.weights.len() {
                    self.dial.cursor = i;
                }
            }
            Action::AdjustWeight(d) => {
                self.dial.adjust_weight(d);
                self.changed(now);
            }
            Action::ResetDirection => {
                match self.dial.mode {
                    DialMode::Angle => self.dial.degrees = 0.0,
                    DialMode::Weights => self.dial.weights = default_weights(&self.labels, 0.0),
                }
                self.changed(now);
            }
            Action::SaveSession => self.open_input(InputPurpose::SaveSession),
            Action::OpenSession => self.open_input(InputPurpose::OpenSession),
            Action::Export => self.open_input(InputPurpose::Export),
            Action::Edit(input) => {
                if self.focus.is_editor() {
                    let focus = self.focus;
                    if self.editor_mut(focus).input(input) {
                        self.edited(now);
                    }
                }
            }
            Action::Undo | Action::Redo | Action::SelectAll | Action::PasteYank => {
                if self.focus.is_editor() {
                    let focus = self.focus;
                    let e = self.editor_mut(focus);
                    let changed = match action {
                        Action::Undo => e.undo(),
                        Action::Redo => e.redo(),
                        Action::PasteYank => e.paste(),
                        _ => {
                            e.select_all();
                            false
                        }
                    };
                    if changed {
                        self.edited(now);
                    }
                }
            }
            Action::ClickEditor { focus, row, col } => {
                self.set_focus(focus);
                let e = self.editor_mut(focus);
                e.cancel_selection();
                let (top, left) = e.scroll_offset();
                let at =
                    e.screen_to_data(row as usize + top as usize, col as usize + left as usize);
                e.move_cursor(CursorMove::Jump(
                    at.0.min(u16::MAX as usize) as u16,
                    at.1.min(u16::MAX as usize) as u16,
                ));
            }
            Action::ScrollEditor { focus, lines } => {
                self.editor_mut(focus).scroll(Scrolling::Delta {
                    rows: lines,
                    cols: 0,
                });
            }
            Action::StartDragAt(d) => {
                self.set_focus(Focus::Dial);
                self.drag = Some(Drag::Dial);
                self.dial.mode = DialMode::Angle;
                self.dial.set_angle(d);
                self.changed(now);
            }
            Action::EndDrag => self.drag = None,
            Action::HelpScroll(d) => {
                if let Some(Overlay::Help { scroll }) = &mut self.overlay {
                    *scroll = (*scroll as i32 + d).clamp(0, u16::MAX as i32) as u16;
                }
            }
            Action::OverlayMove(d) => {
                let n = self.preset_list().len() as i64;
                if let Some(Overlay::Presets { selected }) = &mut self.overlay {
                    if n > 0 {
                        *selected = (*selected as i64 + d as i64).rem_euclid(n) as usize;
                    }
                }
            }
            Action::OverlayAccept => self.overlay_accept(now),
            Action::OverlayDelete => self.delete_preset(now),
            Action::OverlayInput(input) => {
                if let Some(Overlay::Input { editor, .. }) = &mut self.overlay {
                    // One line only: Enter is handled as accept before it gets here.
                    if !matches!(input.key, Key::Enter) {
                        editor.input(input);
                    }
                }
            }
            Action::SavePresetAs => self.open_input(InputPurpose::PresetName),
        }
    }

    fn open_input(&mut self, purpose: InputPurpose) {
        let default = match purpose {
            InputPurpose::SaveSession | InputPurpose::OpenSession => self
                .paths
                .session
                .clone()
                .unwrap_or_else(|| PathBuf::from("dpa-session.json"))
                .display()
                .to_string(),
            InputPurpose::Export => "dpa-scores.jsonl".to_string(),
            InputPurpose::PresetName => String::new(),
        };
        let mut editor = TextArea::from([default]);
        editor.set_cursor_line_style(Style::default());
        editor.move_cursor(CursorMove::End);
        self.overlay = Some(Overlay::Input {
            purpose,
            editor: Box::new(editor),
        });
    }

    /// Paper presets first, then the user's own.
    pub fn preset_list(&self) -> Vec<(Preset, bool)> {
        paper_presets()
            .into_iter()
            .map(|p| (p, false))
            .chain(self.presets.list.iter().cloned().map(|p| (p, true)))
            .collect()
    }

    fn delete_preset(&mut self, now: Instant) {
        let Some(Overlay::Presets { selected }) = self.overlay else {
            return;
        };
        let builtin = paper_presets().len();
        if selected < builtin {
            self.set_flash(
                "the paper's presets are built in; only your own can be deleted".into(),
                false,
                now,
            );
            return;
        }
        let removed = self.presets.list.remove(selected - builtin);
        let saved = self.presets.save();
        self.overlay = Some(Overlay::Presets {
            selected: selected.saturating_sub(1),
        });
        match saved {
            Ok(()) => self.set_flash(format!("deleted preset {:?}", removed.name), false, now),
            Err(e) => self.set_flash(format!("{e:#}"), true, now),
        }
    }

    fn overlay_accept(&mut self, now: Instant) {
        match self.overlay.take() {
            Some(Overlay::Presets { selected }) => {
                if let Some((p, _)) = self.preset_list().get(selected) {
                    if self.dial.set_direction(&p.direction, &self.labels) {
                        self.set_flash(format!("direction: {}", p.name), false, now);
                        self.changed(now);
                    } else {
                        self.set_flash(
                            format!("preset {:?} does not fit this model's attributes", p.name),
                            true,
                            now,
                        );
                    }
                }
            }
            Some(Overlay::ConfirmDelete { slot }) => self.delete_candidate(slot, now),
            Some(Overlay::Input { purpose, editor }) => {
                let text = editor.lines().join("").trim().to_string();
                if text.is_empty() {
                    // Nothing typed: keep the box open.
                    self.overlay = Some(Overlay::Input { purpose, editor });
                    return;
                }
                self.input_accepted(purpose, text, now);
            }
            other => self.overlay = other,
        }
    }

    fn input_accepted(&mut self, purpose: InputPurpose, text: String, now: Instant) {
        let path = PathBuf::from(&text);
        match purpose {
            InputPurpose::SaveSession => match session::save(&path, &self.session()) {
                Ok(()) => {
                    self.paths.session = Some(path.clone());
                    self.set_flash(format!("saved {}", path.display()), false, now);
                }
                Err(e) => self.set_flash(format!("{e:#}"), true, now),
            },
            InputPurpose::OpenSession => match session::load(&path) {
                Ok(s) => {
                    self.apply_session(s);
                    self.paths.session = Some(path.clone());
                    self.rescore_at = Some(now);
                    self.changed(now);
                    self.set_flash(format!("opened {}", path.display()), false, now);
                }
                Err(e) => self.set_flash(format!("{e:#}"), true, now),
            },
            InputPurpose::Export => {
                let rows = self.export_rows();
                match session::export(&path, &rows) {
                    Ok(kind) => self.set_flash(
                        format!(
                            "exported {} candidates as {kind} to {}",
                            rows.len(),
                            path.display()
                        ),
                        false,
                        now,
                    ),
                    Err(e) => self.set_flash(format!("{e:#}"), true, now),
                }
            }
            InputPurpose::PresetName => {
                let direction = self.dial.direction(&self.labels);
                self.presets.upsert(Preset {
                    name: text.clone(),
                    direction,
                });
                match self.presets.save() {
                    Ok(()) => self.set_flash(format!("saved preset {text:?}"), false, now),
                    Err(e) => self.set_flash(format!("{e:#}"), true, now),
                }
                let selected = self
                    .preset_list()
                    .iter()
                    .position(|(p, _)| p.name == text)
                    .unwrap_or(0);
                self.overlay = Some(Overlay::Presets { selected });
            }
        }
    }

    fn delete_candidate(&mut self, slot: u64, now: Instant) {
        let Some(i) = self.candidates.iter().position(|c| c.slot == slot) else {
            return;
        };
        let name = self.candidates.remove(i).name;
        self.scorer.forget(slot);
        if self.candidates.is_empty() {
            self.add_candidate("");
        }
        self.selected = self.selected.min(self.candidates.len() - 1);
        if i < self.selected {
            self.selected -= 1;
        }
        self.apply_focus_styles();
        self.set_flash(format!("deleted candidate {name}"), false, now);
        self.changed(now);
    }

    /// Sends every candidate whose shown scores do not match its text to the engine, the
    /// selected one first. Without `force`, texts whose scoring failed are not retried and
    /// a request already covering the same texts is not repeated.
    fn request_scores(&mut self, force: bool, now: Instant) {
        if self.model != ModelState::Ready {
            if force {
                let why = match &self.model {
                    ModelState::Failed { .. } => "the model is not loaded (see the panel)",
                    _ => "the model is still loading; scoring starts when it is ready",
                };
                self.set_flash(why.into(), false, now);
            }
            return;
        }
        let prompt = self.prompt_text();
        let mut order: Vec<usize> = (0..self.candidates.len()).collect();
        order.sort_by_key(|&i| i != self.selected);
        let mut items = Vec::new();
        for i in order {
            let c = &self.candidates[i];
            let text = c.text();
            if text.trim().is_empty() {
                continue;
            }
            let is_current = |p: &str, r: &str| p == prompt && r == text;
            if c.result
                .as_ref()
                .is_some_and(|o| is_current(&o.prompt, &o.response))
            {
                continue;
            }
            if !force
                && c.failure
                    .as_ref()
                    .is_some_and(|f| is_current(&f.prompt, &f.response))
            {
                continue;
            }
            items.push(ScoreItem {
                slot: c.slot,
                prompt: prompt.clone(),
                response: text,
            });
        }
        if items.is_empty() {
            if force {
                self.set_flash(
                    "every candidate is already scored for its current text".into(),
                    false,
                    now,
                );
            }
            return;
        }
        if !force {
            if let Some(f) = &self.inflight {
                if items.iter().all(|i| f.items.contains(i)) {
                    return;
                }
            }
        }
        let id = self.scorer.score(items.clone());
        self.inflight = Some(Inflight {
            id,
            items,
            computing: None,
            answered: 0,
        });
    }

    fn engine_event(&mut self, event: EngineEvent, now: Instant) {
        match event {
            EngineEvent::Progress(stage) => self.model = ModelState::Loading(stage),
            EngineEvent::Ready { info, warnings } => {
                self.labels = info.labels.clone();
                self.dial.fit(&self.labels);
                self.info = Some(info);
                if let Some(w) = warnings.first() {
                    self.set_flash(w.clone(), true, now);
                }
                self.model_warnings = warnings;
                self.model = ModelState::Ready;
                // Scores restored from a file for another label set cannot be shown.
                let n = self.labels.len();
                for c in &mut self.candidates {
                    if c.result
                        .as_ref()
                        .is_some_and(|o| o.scored.scores.len() != n)
                    {
                        c.result = None;
                        c.previous = None;
                    }
                }
                self.request_scores(false, now);
            }
            EngineEvent::LoadFailed { error } => {
                self.model = ModelState::Failed { error };
                self.inflight = None;
            }
            EngineEvent::Started { request, items } => {
                if let Some(f) = self.inflight.as_mut().filter(|f| f.id == request) {
                    f.computing = Some(items);
                }
            }
            EngineEvent::Scored {
                request,
                item,
                result,
                cached,
                elapsed,
            } => {
                if let Some(f) = self.inflight.as_mut().filter(|f| f.id == request) {
                    f.answered += 1;
                }
                if result.is_ok() {
                    self.latency = Some(Latency { elapsed, cached });
                }
                self.apply_result(request, item, result, cached);
            }
            EngineEvent::Finished { request, .. } | EngineEvent::Superseded { request } => {
                if self.inflight.as_ref().is_some_and(|f| f.id == request) {
                    self.inflight = None;
                }
            }
        }
    }

    /// Files one result with its candidate. Results are kept by the text they answer, so a
    /// result for text that has since changed is shown as stale, never as fresh.
    fn apply_result(
        &mut self,
        request: RequestId,
        item: ScoreItem,
        result: Result<Scored, String>,
        cached: bool,
    ) {
        let prompt = self.prompt_text();
        let Some(c) = self.candidates.iter_mut().find(|c| c.slot == item.slot) else {
            return; // The candidate was deleted meanwhile.
        };
        let is_current = item.prompt == prompt && item.response == c.text();
        match result {
            Ok(scored) => {
                if let Some(old) = &c.result {
                    let old_current = old.prompt == prompt && old.response == c.text();
                    // Never let an older answer for other text displace newer scores.
                    if !is_current && (old_current || old.request > request) {
                        return;
                    }
                    let same_text = old.prompt == item.prompt && old.response == item.response;
                    if !same_text {
                        c.previous = Some(old.scored.scores.clone());
                    }
                }
                if is_current {
                    c.failure = None;
                }
                c.result = Some(Outcome {
                    prompt: item.prompt,
                    response: item.response,
                    request,
                    scored,
                    cached,
                });
            }
            Err(message) => {
                if is_current {
                    c.failure = Some(Failure {
                        prompt: item.prompt,
                        response: item.response,
                        message,
                    });
                }
            }
        }
    }

    /// The state worth keeping, as a session file.
    pub fn session(&self) -> Session {
        let prompt = self.prompt_text();
        Session {
            version: session::VERSION,
            model: self.model_name.clone(),
            labels: self.labels.clone(),
            prompt,
            candidates: self
                .candidates
                .iter()
                .map(|c| session::SavedCandidate {
                    name: c.name.clone(),
                    response: c.text(),
                    scores: c.result.as_ref().map(|o| session::SavedScores {
                        prompt: o.prompt.clone(),
                        response: o.response.clone(),
                        values: o.scored.scores.clone(),
                        tokens: o.scored.tokens,
                        truncated: o.scored.truncated,
                    }),
                })
                .collect(),
            selected: self.selected,
            direction: self.dial.direction(&self.labels),
        }
    }

    /// Replaces the texts, scores and direction with a session's. Scores are kept only when
    /// they come from the same model and attributes.
    pub fn apply_session(&mut self, s: Session) {
        let responses: Vec<String> = s.candidates.iter().map(|c| c.response.clone()).collect();
        self.set_texts(&s.prompt, &responses);
        let same_model = s.model == self.model_name && s.labels == self.labels;
        for (c, saved) in self.candidates.iter_mut().zip(&s.candidates) {
            if !saved.name.is_empty() {
                c.name = saved.name.clone();
            }
            if let (true, Some(sc)) = (same_model, &saved.scores) {
                c.result = Some(Outcome {
                    prompt: sc.prompt.clone(),
                    response: sc.response.clone(),
                    request: 0,
                    scored: Scored {
                        tokens: sc.tokens,
                        truncated: sc.truncated,
                        scores: sc.values.clone(),
                        warnings: Vec::new(),
                    },
                    cached: true,
                });
            }
        }
        // Names must stay unique even if the file repeats one.
        let mut seen = std::collections::HashSet::new();
        let mut dup = Vec::new();
        for (i, c) in self.candidates.iter().enumerate() {
            if !seen.insert(c.name.clone()) {
                dup.push(i);
            }
        }
        for i in dup {
            let used: Vec<String> = self.candidates.iter().map(|c| c.name.clone()).collect();
            if let Some(n) = (0..).map(candidate_name).find(|n| !used.contains(n)) {
                self.candidates[i].name = n;
            }
        }
        self.selected = s.selected.min(self.candidates.len() - 1);
        self.dial.set_direction(&s.direction, &self.labels);
        self.apply_focus_styles();
    }

    /// One row per candidate for export, ranked under the current direction.
    pub fn export_rows(&self) -> Vec<session::ExportRow> {
        let views = self.candidate_views();
        let rewards: Vec<Option<f64>> = views.iter().map(|v| v.reward).collect();
        let order = preference::ranking(&rewards);
        let prompt = self.prompt_text();
        let direction = self.dial.direction(&self.labels).describe();
        order
            .iter()
            .enumerate()
            .map(|(rank, &i)| {
                let v = &views[i];
                session::ExportRow {
                    candidate: v.name.clone(),
                    rank: v.reward.map(|_| rank + 1),
                    prompt: prompt.clone(),
                    response: self.candidates[i].text(),
                    fresh: v.freshness == Freshness::Fresh,
                    tokens: v.tokens,
                    labels: self.labels.clone(),
                    scores: v.scores.clone(),
                    weighted: v.reward,
                    direction: direction.clone(),
                }
            })
            .collect()
    }
}

#[cfg(test)]
#[path = "app_tests.rs"]
pub(crate) mod tests;
