//! The view-model: what the widgets draw, and nothing that changes it. Widgets and the view
//! depend on this module only; the reducer (`reducer`, `scoring`, `persist`) fills it in.

use std::time::{Duration, Instant};

use crate::engine::LoadStage;
use crate::preference::{
    self, angle_of, raw_weights, weights_direction, wrap_degrees, Direction, PreferenceError,
};

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
    /// The selected candidate's prefix scores: where in the response R moves.
    Trajectory,
}

/// How the dial sets the direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DialMode {
    /// v = (cos θ, sin θ) over the dial's plane (helpfulness × verbosity by default).
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
    /// The plane's axes (x, y) by attribute name, when the user chose them; `None` is the
    /// model's default plane. The angle turns in this plane; in weights mode it is the plane
    /// the charts draw.
    pub axes: Option<(String, String)>,
}

/// One of the dial plane's two axes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Axis {
    X,
    Y,
}

impl Dial {
    pub fn new(direction: &Direction, labels: &[String]) -> Self {
        let mut d = Dial {
            mode: DialMode::Angle,
            degrees: 0.0,
            weights: default_weights(labels, 0.0, None),
            cursor: 0,
            axes: None,
        };
        d.set_direction(direction, labels);
        d
    }

    /// The direction as it would be saved or exported.
    pub fn direction(&self, labels: &[String]) -> Direction {
        match self.mode {
            DialMode::Angle => Direction::Angle {
                degrees: self.degrees,
                axes: self.axes.clone(),
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

    /// The plane's attributes (x, y) among `labels`.
    pub fn plane(&self, labels: &[String]) -> Result<(usize, usize), PreferenceError> {
        Direction::Angle {
            degrees: self.degrees,
            axes: self.axes.clone(),
        }
        .plane(labels)
    }

    /// Puts attribute `index` on one axis; the other axis takes the old one's place when
    /// they would be the same attribute. False when there is no such attribute.
    pub fn set_axis(&mut self, axis: Axis, index: usize, labels: &[String]) -> bool {
        let Ok((x, y)) = self.plane(labels) else {
            return false;
        };
        if index >= labels.len() {
            return false;
        }
        let (x, y) = match axis {
            Axis::X if index == y => (index, x),
            Axis::X => (index, y),
            Axis::Y if index == x => (y, index),
            Axis::Y => (x, index),
        };
        let chosen = (labels[x].clone(), labels[y].clone());
        let default = preference::plane(labels)
            .ok()
            .map(|(dx, dy)| (labels[dx].clone(), labels[dy].clone()));
        self.axes = (Some(&chosen) != default.as_ref()).then_some(chosen);
        true
    }

    /// Moves one axis to the next (`step` 1) or previous (−1) attribute, passing over the
    /// other axis's.
    pub fn step_axis(&mut self, axis: Axis, step: i32, labels: &[String]) -> bool {
        let (Ok((x, y)), n) = (self.plane(labels), labels.len() as i64) else {
            return false;
        };
        let (from, other) = match axis {
            Axis::X => (x, y),
            Axis::Y => (y, x),
        };
        let mut i = from as i64;
        loop {
            i = (i + step as i64).rem_euclid(n);
            if i as usize != other {
                break;
            }
        }
        self.set_axis(axis, i as usize, labels)
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
            Direction::Angle { degrees, axes }
                if degrees.is_finite() && direction.plane(labels).is_ok() =>
            {
                self.mode = DialMode::Angle;
                self.degrees = wrap_degrees(*degrees);
                self.axes = axes.clone();
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
    /// part in the dial's plane. A round trip without changes in between gives back the
    /// exact angle and every weight (the weights are kept while the angle is shown).
    pub fn toggle_mode(&mut self, labels: &[String]) {
        let plane = self.plane(labels);
        let from_angle = default_weights(labels, self.degrees, self.axes.as_ref());
        // Whether the weights' part in the plane is still what the angle gives.
        let agrees = match plane {
            Ok((x, y)) => {
                self.weights.len() == labels.len()
                    && self.weights[x] == from_angle[x]
                    && self.weights[y] == from_angle[y]
            }
            _ => self.weights == from_angle,
        };
        match self.mode {
            DialMode::Angle => {
                if !agrees {
                    self.weights = from_angle;
                }
                self.mode = DialMode::Weights;
            }
            DialMode::Weights => {
                if !agrees {
                    if let Ok((x, y)) = plane {
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
    pub(crate) fn fit(&mut self, labels: &[String]) {
        if self.weights.len() != labels.len() {
            self.weights = default_weights(labels, self.degrees, self.axes.as_ref());
            self.cursor = 0;
        }
    }
}

/// (cos θ, sin θ) on the plane's axes (helpfulness and verbosity by default), zero elsewhere.
pub(crate) fn default_weights(
    labels: &[String],
    degrees: f64,
    axes: Option<&(String, String)>,
) -> Vec<f64> {
    let rounded = |x: f64| (x * 100.0).round() / 100.0;
    Direction::Angle {
        degrees,
        axes: axes.cloned(),
    }
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

/// How a candidate's shown scores relate to its current text (by revision).
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
    /// A gating model's (ArmoRM's) R under its own prompt-dependent direction (its gating
    /// weights through its reward transform): the model's own score.
    pub model_reward: Option<f64>,
    /// That direction: the gating weights through the reward transform, one coefficient per
    /// attribute (not of unit length: R under it is the model's score).
    pub model_direction: Option<Vec<f64>>,
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

/// How long the last scoring took, from sending it to its last answer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Latency {
    pub elapsed: Duration,
    pub cached: bool,
}

/// The kept weights' background check, while it runs: bytes checked and to check, and what is
/// left at the rate it has read so far (a cold disk can make a first score wait on it).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WeightCheck {
    pub checked: u64,
    pub total: u64,
    /// When it was first reported and how far it had got then: the rate is measured from there.
    first: (Instant, u64),
    /// Known once it has run long enough to have a rate.
    pub left: Option<Duration>,
}

impl WeightCheck {
    /// How long a check must have been seen before its rate is trusted for an estimate.
    const RATE_AFTER: Duration = Duration::from_millis(1000);

    /// The check as reported at `now`, after `previous` (the same check's last report).
    pub fn update(previous: Option<Self>, checked: u64, total: u64, now: Instant) -> Self {
        let first = previous.map_or((now, checked), |p| p.first);
        let seen = now.saturating_duration_since(first.0);
        let done = checked.saturating_sub(first.1);
        let left = (seen >= Self::RATE_AFTER && done > 0)
            .then(|| {
                let rate = done as f64 / seen.as_secs_f64();
                Duration::try_from_secs_f64(total.saturating_sub(checked) as f64 / rate).ok()
            })
            .flatten();
        Self {
            checked,
            total,
            first,
            left,
        }
    }
}

/// A message in the status line until `until`.
#[derive(Debug, Clone, PartialEq)]
pub struct Flash {
    pub text: String,
    pub error: bool,
    pub until: Instant,
}

/// What a mouse drag is moving.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Drag {
    Dial,
}

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

/// The R a candidate shows: its own for fresh and stale results (stale ones drawn as such);
/// none for empty or unscored text, whose old result belongs to no text on screen.
pub fn shown_reward(c: &CandidateView) -> Option<f64> {
    match c.freshness {
        Freshness::Fresh | Freshness::Stale | Freshness::Failed(_) => c.reward,
        Freshness::Empty | Freshness::Unscored => None,
    }
}

/// Where a candidate stands in the ranking: only fresh results compete.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Tier {
    /// R belongs to the current text.
    Fresh,
    /// R belongs to text that has since changed (or whose rescoring failed).
    Stale,
    /// No R for this text: empty, not scored yet, or no direction.
    None,
}

pub fn tier(c: &CandidateView) -> Tier {
    match (&c.freshness, c.reward) {
        (Freshness::Fresh, Some(_)) => Tier::Fresh,
        (Freshness::Stale | Freshness::Failed(_), Some(_)) => Tier::Stale,
        _ => Tier::None,
    }
}

/// Ranks candidates: fresh ones by R, then stale ones by their old R, then the rest; ties
/// keep list order.
pub fn order(candidates: &[CandidateView]) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..candidates.len()).collect();
    idx.sort_by(|&a, &b| {
        let (ca, cb) = (&candidates[a], &candidates[b]);
        tier(ca)
            .cmp(&tier(cb))
            .then_with(|| match (shown_reward(ca), shown_reward(cb)) {
                (Some(x), Some(y)) => y.total_cmp(&x),
                _ => std::cmp::Ordering::Equal,
            })
    });
    idx
}

/// The line the trajectory view opens with, so nobody reads a point as a word's own credit.
pub const TRAJECTORY_LABEL: &str =
    "prefix scores: the model's score of the response cut here — not per-word credit";

/// What the trajectory view shows for the selected candidate.
#[derive(Debug, Clone, PartialEq)]
pub enum TrajectoryShown {
    /// No trajectory to draw, and why (empty, stale, not scored, failed, computing).
    Note {
        text: String,
        busy: bool,
    },
    Ready(TrajectoryView),
}

/// The prefix scores of one response under the current direction.
#[derive(Debug, Clone, PartialEq)]
pub struct TrajectoryView {
    pub name: String,
    pub index: usize,
    /// R of each prefix, in order (the last is the whole response).
    pub rewards: Vec<f64>,
    /// Each attribute's short name and its score for each prefix.
    pub attributes: Vec<(String, Vec<f32>)>,
    /// The biggest changes of R between consecutive prefixes, largest first.
    pub rises: Vec<Move>,
    pub drops: Vec<Move>,
    /// The response in pieces (each ending at a cut, with the space before it), with the
    /// change of R the piece caused (none for the first).
    pub pieces: Vec<(String, Option<f64>)>,
}

/// A change of R between two consecutive prefixes and the text that made it.
#[derive(Debug, Clone, PartialEq)]
pub struct Move {
    pub delta: f64,
    pub text: String,
}

/// How many rises (and drops) the view lists at most.
pub const MOVES_SHOWN: usize = 2;

/// The trajectory view of `response` from its prefix scores (`(end, scores)` per prefix) under
/// the unit direction `unit`. R comes from [`preference::reward`] only.
pub fn trajectory_view(
    name: &str,
    index: usize,
    response: &str,
    points: &[(usize, Vec<f32>)],
    unit: &[f64],
    labels: &[String],
) -> Option<TrajectoryView> {
    let rewards: Vec<f64> = points
        .iter()
        .map(|(_, s)| preference::reward(unit, s))
        .collect::<Option<_>>()?;
    let attributes = labels
        .iter()
        .enumerate()
        .map(|(k, l)| {
            let values: Option<Vec<f32>> = points.iter().map(|(_, s)| s.get(k).copied()).collect();
            // Two datasets share names (helpfulness): say which when a name repeats.
            let short = preference::short_name(l);
            let repeated = labels
                .iter()
                .filter(|o| preference::short_name(o) == short)
                .count()
                > 1;
            let name = if repeated {
                preference::qualified_name(l)
            } else {
                short.to_string()
            };
            values.map(|v| (name, v))
        })
        .collect::<Option<Vec<_>>>()?;
    let mut pieces = Vec::with_capacity(points.len());
    let mut moves = Vec::new();
    let mut start = 0;
    for (i, (end, _)) in points.iter().enumerate() {
        let piece = response.get(start..*end)?.to_string();
        let delta = (i > 0).then(|| rewards[i] - rewards[i - 1]);
        if let Some(d) = delta {
            moves.push(Move {
                delta: d,
                text: piece.split_whitespace().collect::<Vec<_>>().join(" "),
            });
        }
        pieces.push((piece, delta));
        start = *end;
    }
    let mut rises: Vec<Move> = moves.iter().filter(|m| m.delta > 0.0).cloned().collect();
    let mut drops: Vec<Move> = moves.into_iter().filter(|m| m.delta < 0.0).collect();
    rises.sort_by(|a, b| b.delta.total_cmp(&a.delta));
    drops.sort_by(|a, b| a.delta.total_cmp(&b.delta));
    rises.truncate(MOVES_SHOWN);
    drops.truncate(MOVES_SHOWN);
    Some(TrajectoryView {
        name: name.to_string(),
        index,
        rewards,
        attributes,
        rises,
        drops,
        pieces,
    })
}
