//! The explorer's state: texts, candidates, the dial, overlays and what is in flight. Read by
//! `view` and `keys`; changed only by the reducer (`reducer`, `scoring`, `persist`), which
//! returns the I/O it wants done as effects instead of doing it.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use crossterm::event::{KeyEvent, MouseEvent};
use ratatui::style::{Modifier, Style};
use ratatui_textarea::{CursorMove, TextArea, WrapMode};

use crate::engine::{EngineEvent, RequestId, ScoreItem};
use crate::model::{ModelInfo, DPA_LABELS};
use crate::preference::{self, Direction, PreferenceError};
use crate::scoring::Point;
use crate::scoring::Scored;

pub use super::action::Action;
use super::effects::Effect;
use super::presets::UserPresets;
use super::session::Export;
use super::state::*;

/// How long typing must pause before the text is rescored.
pub const DEBOUNCE: Duration = Duration::from_millis(400);
/// How long after the last change the autosave is written.
pub const AUTOSAVE_DELAY: Duration = Duration::from_millis(300);
/// How long a message stays in the status line.
pub const FLASH_FOR: Duration = Duration::from_secs(6);
/// How often the spinner moves while something runs in the background.
pub const SPIN_EVERY: Duration = Duration::from_millis(120);

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

/// A result the engine sent for one candidate.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// The candidate's revision these scores were computed for; fresh only while it is the
    /// candidate's revision.
    pub revision: u64,
    /// The text that was scored, as export and the session file write it.
    pub prompt: String,
    pub response: String,
    pub request: RequestId,
    pub scored: Scored,
    pub cached: bool,
}

/// A failure to score one text.
#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    /// The revision whose scoring failed.
    pub revision: u64,
    pub message: String,
}

/// The prefix scores the engine sent for one candidate, or why there are none.
#[derive(Debug, Clone, PartialEq)]
pub struct TrajectoryOutcome {
    /// The candidate's revision it was computed for; shown only while it is current.
    pub revision: u64,
    /// The response whose prefixes were scored.
    pub response: String,
    pub result: Result<Vec<Point>, String>,
}

/// A trajectory request sent (`id` 0 until the scorer took it) and not yet answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrajectoryInflight {
    pub id: RequestId,
    pub slot: u64,
    pub revision: u64,
    /// The response sent, which the answer's byte offsets index.
    pub response: String,
}

/// One candidate response with its own editor and scores.
#[derive(Debug)]
pub struct Candidate {
    /// Stable id, sent with every score request for this candidate.
    pub slot: u64,
    /// Stable short name (A, B, …).
    pub name: String,
    pub editor: TextArea<'static>,
    /// Bumped whenever this response or the prompt changes; results carry the revision they
    /// were computed for.
    pub revision: u64,
    /// The newest result received, which may belong to an older text (then it shows stale).
    pub result: Option<Outcome>,
    /// The scores the newest result replaced, for the movement markers.
    pub previous: Option<Vec<f32>>,
    pub failure: Option<Failure>,
    /// The newest prefix scores received (for the trajectory view).
    pub trajectory: Option<TrajectoryOutcome>,
}

impl Candidate {
    pub fn text(&self) -> String {
        self.editor.lines().join("\n")
    }
}

/// A request sent and not yet finished.
#[derive(Debug, Clone)]
pub struct Inflight {
    pub id: RequestId,
    pub items: Vec<ScoreItem>,
    /// The revision of each item's candidate when it was sent, in item order.
    pub revisions: Vec<u64>,
    /// When it was sent, for the latency of the whole batch.
    pub since: Instant,
    /// Items the engine had to compute (cache hits excluded), once it said so.
    pub computing: Option<usize>,
    pub answered: usize,
    /// Input tokens of the answers that were computed, not taken from the cache.
    pub computed_tokens: usize,
}

/// What a one-line input box is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputPurpose {
    SaveSession,
    OpenSession,
    Export,
    ExportTrajectory,
    PresetName,
}

impl InputPurpose {
    pub fn title(self) -> &'static str {
        match self {
            InputPurpose::SaveSession => "Save session as (JSON)",
            InputPurpose::OpenSession => "Open session file",
            InputPurpose::Export => "Export scores to (.jsonl or .csv)",
            InputPurpose::ExportTrajectory => "Export the trajectory to (.csv)",
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
    /// Replacing unsaved work: asks before doing it.
    Confirm(Pending),
}

/// An action that replaces unsaved work, waiting for a yes.
#[derive(Debug, Clone, PartialEq)]
pub enum Pending {
    /// Open this session file over the current texts.
    Open(PathBuf),
    /// Start over with empty texts.
    NewSession,
    /// Write this export over the file already at `path`.
    Replace { path: PathBuf, export: Export },
}

impl Pending {
    /// The confirmation box's title.
    pub fn title(&self) -> &'static str {
        match self {
            Pending::Open(_) | Pending::NewSession => " Unsaved changes ",
            Pending::Replace { .. } => " File exists ",
        }
    }

    /// What the confirmation box says will happen.
    pub fn question(&self) -> String {
        match self {
            Pending::Open(p) => format!(
                "Open {}? Your unsaved changes will be replaced.",
                p.display()
            ),
            Pending::NewSession => {
                "Start a new session? Your unsaved changes will be cleared.".to_string()
            }
            Pending::Replace { path, export } => format!(
                "{} exists. Replace it with {}?",
                path.display(),
                export.what()
            ),
        }
    }
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
    /// The dial's plane (x, y) by attribute name (`--axes`); `None` is the model's default.
    pub axes: Option<(String, String)>,
    /// The device and dtype asked for, shown until the model says what it got.
    pub device: String,
    pub dtype: String,
    pub paths: Paths,
}

/// Everything the explorer shows and keeps. Changed only through the reducer.
pub struct Explorer {
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
    /// A direction from the command line or a session that names attributes the model
    /// loading has and DPA's do not: taken on when the model is ready.
    pub(crate) pending_direction: Option<Direction>,
    pub scale: Scale,
    pub view: View,
    pub overlay: Option<Overlay>,
    pub inflight: Option<Inflight>,
    /// The trajectory request in flight, if any.
    pub trajectory_inflight: Option<TrajectoryInflight>,
    /// What a trajectory costs with this backend, when the user should know (remote scoring).
    pub trajectory_note: Option<String>,
    /// The kept weights' background check, while it runs.
    pub weight_check: Option<WeightCheck>,
    /// When the current text should be sent for scoring.
    pub rescore_at: Option<Instant>,
    pub latency: Option<Latency>,
    pub flash: Option<Flash>,
    /// The terminal size, for mouse hit-testing and layout choices.
    pub size: (u16, u16),
    pub drag: Option<Drag>,
    pub quit: bool,
    pub presets: UserPresets,
    /// How fast this machine scored with each model before (for the first score's estimate).
    pub rates: super::rates::RateBook,
    /// The first scoring after a load is still to be timed.
    pub(crate) first_score_pending: bool,
    /// When the current load's layers began to come in, and the time it should still take.
    pub(crate) load_started: Option<Instant>,
    pub load_eta: Option<Duration>,
    pub paths: Paths,
    /// When unsaved changes should be written to the autosave file.
    pub autosave_at: Option<Instant>,
    /// Advances while something runs in the background, for the spinner.
    pub spinner: u64,
    /// The revisions (per candidate, in item order) of recent requests, so a late answer
    /// is filed under the text it was computed for.
    pub(crate) sent: Vec<(RequestId, Vec<(u64, u64)>)>,
    pub(crate) next_slot: u64,
    pub(crate) next_revision: u64,
    /// What to do when the model cannot be loaded, shown first in its panel.
    pub load_hint: Vec<String>,
    /// Changes since the session was last saved or opened (shown in the title).
    pub unsaved: bool,
    /// The last deleted candidate, where it was and the prompt's revision then, for undo.
    pub deleted: Option<(usize, Candidate, u64)>,
    /// Bumped whenever the prompt changes.
    pub prompt_revision: u64,
    /// Effects asked for while applying an event, handed out by the reducer.
    pub(crate) effects: Vec<Effect>,
}

impl std::fmt::Debug for Explorer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Explorer")
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

impl Explorer {
    pub fn new(config: AppConfig) -> Self {
        let labels: Vec<String> = DPA_LABELS.iter().map(|s| s.to_string()).collect();
        let dial = Dial::new(&Direction::default(), &labels);
        let presets = UserPresets::load(config.paths.presets.clone());
        let rates = super::rates::RateBook::load(
            super::rates::path_beside(config.paths.autosave.as_deref()).as_deref(),
        );
        let mut app = Explorer {
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
            pending_direction: None,
            scale: Scale::Raw,
            view: View::Ranking,
            overlay: None,
            inflight: None,
            trajectory_inflight: None,
            trajectory_note: None,
            weight_check: None,
            rescore_at: None,
            latency: None,
            flash: None,
            size: (0, 0),
            drag: None,
            quit: false,
            presets,
            rates,
            first_score_pending: false,
            load_started: None,
            load_eta: None,
            paths: config.paths,
            autosave_at: None,
            spinner: 0,
            sent: Vec::new(),
            load_hint: Vec::new(),
            unsaved: false,
            deleted: None,
            prompt_revision: 0,
            next_slot: 1,
            next_revision: 1,
            effects: Vec::new(),
        };
        if let Some(e) = app.presets.error.take() {
            app.set_flash(e, true, Instant::now());
        }
        app.take_direction(&config.direction);
        if config.axes.is_some() {
            app.dial.axes = config.axes;
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

    pub(crate) fn add_candidate(&mut self, text: &str) -> usize {
        let used: Vec<&str> = self.candidates.iter().map(|c| c.name.as_str()).collect();
        let name = (0..)
            .map(candidate_name)
            .find(|n| !used.contains(&n.as_str()))
            .unwrap_or_default();
        let slot = self.next_slot;
        self.next_slot += 1;
        let revision = self.new_revision();
        self.candidates.push(Candidate {
            slot,
            name,
            editor: new_editor(text, RESPONSE_PLACEHOLDER),
            revision,
            result: None,
            previous: None,
            failure: None,
            trajectory: None,
        });
        self.candidates.len() - 1
    }

    pub(crate) fn new_revision(&mut self) -> u64 {
        self.next_revision += 1;
        self.next_revision
    }

    /// The text of candidate `index` (or, for `None`, the prompt and so every candidate)
    /// changed: whatever was scored before is stale from now on.
    pub(crate) fn bump_revision(&mut self, index: Option<usize>) {
        match index {
            Some(i) => {
                let r = self.new_revision();
                if let Some(c) = self.candidates.get_mut(i) {
                    c.revision = r;
                }
            }
            None => {
                self.prompt_revision = self.new_revision();
                for i in 0..self.candidates.len() {
                    let r = self.new_revision();
                    self.candidates[i].revision = r;
                }
            }
        }
    }

    pub fn prompt_text(&self) -> String {
        self.prompt.lines().join("\n")
    }

    pub fn selected_candidate(&self) -> &Candidate {
        &self.candidates[self.selected]
    }

    /// Indices of the dial plane's attributes (x, y): helpfulness × verbosity unless the user
    /// chose others.
    pub fn plane_axes(&self) -> Option<(usize, usize)> {
        self.dial.plane(&self.labels).ok()
    }

    /// The names of the dial plane's axes, as the charts show them.
    pub fn plane_names(&self) -> Option<(String, String)> {
        preference::plane_names(&self.labels, self.plane_axes()?)
    }

    /// The unit direction over the labels, or why there is none.
    pub fn unit(&self) -> Result<Vec<f64>, PreferenceError> {
        self.dial.unit(&self.labels)
    }

    /// Everything the view shows about each candidate, in list order. Scores belong to the
    /// revision they were computed for: a candidate whose text changed since is stale, and
    /// an emptied one has no scores and no reward; neither is ever fresh.
    pub fn candidate_views(&self) -> Vec<CandidateView> {
        let unit = self.unit().ok();
        let inflight = self.inflight.as_ref();
        self.candidates
            .iter()
            .enumerate()
            .map(|(index, c)| {
                let text = c.text();
                let result = c.result.as_ref();
                let freshness = match (&c.failure, result) {
                    _ if text.trim().is_empty() => Freshness::Empty,
                    (Some(f), _) if f.revision == c.revision => {
                        Freshness::Failed(f.message.clone())
                    }
                    (_, Some(o)) if o.revision == c.revision => Freshness::Fresh,
                    (_, Some(_)) => Freshness::Stale,
                    (_, None) => Freshness::Unscored,
                };
                let fresh = freshness == Freshness::Fresh;
                // An emptied candidate shows nothing of its old text's scores; a stale one
                // keeps them (and their R) for the widgets to mark as stale and rank last.
                let scores = result
                    .filter(|_| freshness != Freshness::Empty)
                    .map(|o| o.scored.scores.clone());
                let reward = match (&unit, &scores) {
                    (Some(u), Some(s)) => preference::reward(u, s),
                    _ => None,
                };
                let scoring = !fresh
                    && inflight.is_some_and(|f| {
                        f.items
                            .iter()
                            .zip(&f.revisions)
                            .any(|(i, &r)| i.slot == c.slot && r == c.revision)
                    });
                let shown = result.filter(|_| freshness != Freshness::Empty);
                let model_direction = shown.and_then(|o| {
                    let g = o.scored.gating.as_ref()?;
                    Some(g.coefficients.iter().map(|&c| c as f64).collect::<Vec<_>>())
                });
                let model_reward = shown
                    .zip(model_direction.as_ref())
                    .and_then(|(o, w)| preference::reward(w, &o.scored.scores));
                CandidateView {
                    index,
                    name: c.name.clone(),
                    freshness,
                    scores,
                    previous: c.previous.clone(),
                    tokens: shown.map(|o| o.scored.tokens),
                    truncated: shown.is_some_and(|o| o.scored.truncated),
                    warnings: shown.map(|o| o.scored.warnings.clone()).unwrap_or_default(),
                    reward,
                    model_reward,
                    model_direction,
                    preview: text.lines().next().unwrap_or("").to_string(),
                    scoring,
                }
            })
            .collect()
    }

    /// What the trajectory view shows for the selected candidate: its prefix scores under
    /// the current direction when they belong to its current text, else why not.
    pub fn trajectory_shown(&self) -> TrajectoryShown {
        let note = |text: &str, busy: bool| TrajectoryShown::Note {
            text: text.to_string(),
            busy,
        };
        let Some(c) = self.candidates.get(self.selected) else {
            return note("no candidate", false);
        };
        if c.text().trim().is_empty() {
            return note(
                "no response text: type one to see where its reward moves",
                false,
            );
        }
        let busy = self
            .trajectory_inflight
            .as_ref()
            .is_some_and(|f| f.slot == c.slot && f.revision == c.revision);
        if busy {
            return note("computing the trajectory…", true);
        }
        match &c.trajectory {
            Some(t) if t.revision == c.revision => match &t.result {
                Ok(points) => {
                    let Ok(unit) = self.unit() else {
                        return note("no direction: set one on the dial", false);
                    };
                    let points: Vec<(usize, Vec<f32>)> =
                        points.iter().map(|p| (p.end, p.scores.clone())).collect();
                    match trajectory_view(
                        &c.name,
                        self.selected,
                        &t.response,
                        &points,
                        &unit,
                        &self.labels,
                    ) {
                        Some(v) if !v.rewards.is_empty() => TrajectoryShown::Ready(v),
                        _ => note("no prefix scores for this response", false),
                    }
                }
                Err(e) => note(&format!("no trajectory: {e}"), false),
            },
            _ => {
                let fresh = c.result.as_ref().is_some_and(|o| o.revision == c.revision);
                if fresh {
                    note("the trajectory follows once scoring is done…", true)
                } else if self.model != ModelState::Ready {
                    note("the trajectory follows once the model is ready", false)
                } else {
                    note(
                        "stale: the response changed; the trajectory follows its new score",
                        true,
                    )
                }
            }
        }
    }

    /// The next moment something is due (rescoring, autosave, a message to clear, the
    /// spinner), so the event loop can sleep until then.
    pub fn deadline(&self, now: Instant) -> Option<Instant> {
        let busy = self.inflight.is_some()
            || self.trajectory_inflight.is_some()
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

    pub(crate) fn editor_mut(&mut self, focus: Focus) -> &mut TextArea<'static> {
        match focus {
            Focus::Prompt => &mut self.prompt,
            _ => &mut self.candidates[self.selected].editor,
        }
    }

    /// Shows the text cursor only in the focused editor.
    pub(crate) fn apply_focus_styles(&mut self) {
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

    pub(crate) fn set_focus(&mut self, focus: Focus) {
        self.focus = focus;
        self.apply_focus_styles();
    }

    pub(crate) fn select(&mut self, index: usize) {
        if index < self.candidates.len() {
            self.selected = index;
            self.apply_focus_styles();
        }
    }
}
