//! The scoring pipeline: prompt/response pairs in, [`Scored`] results out. It owns the model
//! card's template, tokenisation with BOS and left truncation ([`InputEncoder`]), the checks on
//! what comes back (never a non-finite score), and the warnings each result carries. Both the
//! explorer's engine and `score` go through [`Pipeline`].
//!
//! Behind it, a [`Backend`] turns token ids into rows of scores: [`local::LocalBackend`] (the
//! candle model, reusing cached keys and values across inputs and edits) or a remote server.
//! Test stand-ins implement the same trait ([`fake::FakeBackend`]).

mod error;
#[doc(hidden)]
pub mod fake;
pub mod local;
pub mod remote;
pub mod trajectory;

pub use error::{LoadError, ScoreError};
pub use local::LocalBackend;
pub use trajectory::{boundaries, Every, Point};

use crate::model::reuse::DEFAULT_KV_BUDGET;
use crate::model::{Encoded, InputEncoder, ModelInfo, RewardModel};

/// The scores of one input, with what the user should know about how it was read.
#[derive(Debug, Clone, PartialEq)]
pub struct Scored {
    pub tokens: usize,
    pub truncated: bool,
    /// One per attribute (the model's labels).
    pub scores: Vec<f32>,
    pub warnings: Vec<String>,
    /// A gating model's own prompt-dependent weighting (ArmoRM).
    pub gating: Option<Gating>,
}

/// What a gating model (ArmoRM) adds to its attribute scores: the weights its gating network
/// gives each objective for this prompt, those weights through the model's reward transform
/// (the direction it scores along: `score = scores · coefficients`), and its final score.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Gating {
    pub weights: Vec<f32>,
    pub coefficients: Vec<f32>,
    pub score: f32,
}

impl Gating {
    /// Splits a gating head's output row (rewards, weights, coefficients, score) for `n`
    /// attributes; `None` when the row is not that long.
    pub fn split(row: &[f32], n: usize) -> Option<(Vec<f32>, Gating)> {
        if row.len() != 3 * n + 1 {
            return None;
        }
        Some((
            row[..n].to_vec(),
            Gating {
                weights: row[n..2 * n].to_vec(),
                coefficients: row[2 * n..3 * n].to_vec(),
                score: row[3 * n],
            },
        ))
    }

    /// Whether these are outputs for `n` attributes, every number finite.
    pub fn is_valid(&self, n: usize) -> bool {
        self.weights.len() == n
            && self.coefficients.len() == n
            && self
                .weights
                .iter()
                .chain(&self.coefficients)
                .chain([&self.score])
                .all(|v| v.is_finite())
    }
}

/// One input the backend scores: its ids, and the candidate it belongs to (whose previous
/// input a backend may reuse work from), if any.
#[derive(Debug, Clone, Copy)]
pub struct Job<'a> {
    pub ids: &'a [u32],
    pub slot: Option<u64>,
}

/// Scores each of `inputs` as a job of its own through `backend` (rows in input order).
pub fn score_each<B: Backend + ?Sized>(
    backend: &mut B,
    inputs: &[&[u32]],
    stop: &dyn Fn() -> bool,
) -> Result<Vec<Vec<f32>>, ScoreError> {
    let jobs: Vec<Job> = inputs.iter().map(|ids| Job { ids, slot: None }).collect();
    let mut rows: Vec<Option<Result<Vec<f32>, ScoreError>>> = vec![None; inputs.len()];
    backend.score(&jobs, stop, &mut |j, row| rows[j] = Some(row))?;
    rows.into_iter()
        .map(|r| r.unwrap_or_else(|| Err(ScoreError::Model("an input was not scored".into()))))
        .collect()
}

/// An input made into the model's ids, and the candidate it belongs to.
#[derive(Debug, Clone)]
pub struct Prepared {
    pub encoded: Encoded,
    pub slot: Option<u64>,
}

/// One prompt/response pair to score.
#[derive(Debug, Clone, Copy)]
pub struct Input<'a> {
    pub prompt: &'a str,
    pub response: &'a str,
    /// The candidate this pair belongs to (the explorer's slots; `None` for `score`).
    pub slot: Option<u64>,
}

/// Whatever turns token ids into scores: the local model or a server.
pub trait Backend: Send + std::any::Any {
    /// The model: its labels, where and how it computes.
    fn info(&self) -> ModelInfo;
    /// What the user should see beside every result (e.g. a mode's measured accuracy).
    fn warnings(&self) -> Vec<String>;
    /// Scores `jobs`, calling `done(j, row)` as each finishes, in any order (one row of scores
    /// per job, one score per label). A failure of one job is its own `done` error; `Err` is
    /// for the whole call, and `Err(ScoreError::Cancelled)` when `stop()` turned true.
    fn score(
        &mut self,
        jobs: &[Job<'_>],
        stop: &dyn Fn() -> bool,
        done: &mut dyn FnMut(usize, Result<Vec<f32>, ScoreError>),
    ) -> Result<(), ScoreError>;
    /// The scores of `inputs`, each of which continues a prefix of `full` (a response's
    /// prefixes, see [`trajectory`]); every row equals scoring that input alone. By default
    /// each input is scored on its own.
    fn continuations(
        &mut self,
        full: &[u32],
        inputs: &[&[u32]],
        stop: &dyn Fn() -> bool,
    ) -> Result<Vec<Vec<f32>>, ScoreError> {
        let _ = full;
        score_each(self, inputs, stop)
    }
    /// What a trajectory costs here, when the user should know (e.g. one request per prefix).
    fn trajectory_note(&self) -> Option<String> {
        None
    }
    /// Most inputs per forward pass or request.
    fn set_batch(&mut self, _inputs: usize) {}
    /// Batches that can be worked on at once (requests in flight on all servers); a caller
    /// hands over at least a few times this many to keep them all busy.
    fn parallelism(&self) -> usize {
        1
    }
    /// Bytes the backend keeps between requests (cached keys and values).
    fn cache_bytes(&self) -> usize {
        0
    }
    /// Drops what the backend keeps for a slot that no longer exists.
    fn forget(&mut self, _slot: u64) {}
}

/// The pipeline: an encoder for the model's input and the backend that scores it.
pub struct Pipeline {
    encoder: InputEncoder,
    backend: Box<dyn Backend>,
    /// Notes about how the model was obtained (e.g. a cached copy used offline).
    notes: Vec<String>,
}

impl std::fmt::Debug for Pipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pipeline")
            .field("encoder", &self.encoder)
            .field("info", &self.backend.info())
            .finish()
    }
}

impl Pipeline {
    pub fn new(encoder: InputEncoder, backend: Box<dyn Backend>) -> Self {
        Self {
            encoder,
            backend,
            notes: Vec::new(),
        }
    }

    /// The local model, keeping up to [`DEFAULT_KV_BUDGET`] of cached keys and values.
    pub fn local(model: impl Into<std::sync::Arc<RewardModel>>) -> Self {
        let model = model.into();
        let encoder = model.encoder().clone();
        Self::new(
            encoder,
            Box::new(LocalBackend::new(model, DEFAULT_KV_BUDGET)),
        )
    }

    /// Adds a note shown with the model's warnings.
    pub fn with_note(mut self, note: Option<String>) -> Self {
        self.notes.extend(note);
        self
    }

    pub fn info(&self) -> ModelInfo {
        self.backend.info()
    }

    /// The notes and the backend's warnings.
    pub fn warnings(&self) -> Vec<String> {
        let mut w = self.notes.clone();
        w.extend(self.backend.warnings());
        w
    }

    pub fn encoder(&self) -> &InputEncoder {
        &self.encoder
    }

    pub fn backend(&self) -> &dyn Backend {
        self.backend.as_ref()
    }

    pub fn backend_mut(&mut self) -> &mut dyn Backend {
        self.backend.as_mut()
    }

    /// The backend as what it is (e.g. the local one's reuse statistics).
    pub fn backend_as<T: Backend>(&self) -> Option<&T> {
        let any: &dyn std::any::Any = self.backend.as_ref();
        any.downcast_ref()
    }

    pub fn backend_as_mut<T: Backend>(&mut self) -> Option<&mut T> {
        let any: &mut dyn std::any::Any = self.backend.as_mut();
        any.downcast_mut()
    }

    /// The local model with nothing kept between calls: every call computes from scratch
    /// (a reference, and what benchmarks of whole passes need).
    pub fn local_uncached(model: impl Into<std::sync::Arc<RewardModel>>) -> Self {
        let model = model.into();
        let encoder = model.encoder().clone();
        Self::new(encoder, Box::new(LocalBackend::new(model, 0)))
    }

    /// The background check of the local model's kept weights, while it is under way (no
    /// score is handed on before it ends).
    pub fn weight_check(&self) -> Option<crate::model::integrity::Integrity> {
        let local = self.backend_as::<LocalBackend>()?;
        let check = local.model().integrity();
        (!check.is_done()).then(|| check.clone())
    }

    /// Most inputs per forward pass or request.
    pub fn set_batch(&mut self, inputs: usize) {
        self.backend.set_batch(inputs.max(1));
    }

    /// Scores `inputs` (an `Err` is passed on as that input's result), calling `done(i,
    /// result)` as each finishes, in any order. Each input is answered exactly once, also when
    /// the backend fails as a whole; `Err(ScoreError::Cancelled)` when `stop()` turned true
    /// (the inputs not yet answered then stay unanswered).
    pub fn score(
        &mut self,
        inputs: &[Result<Input<'_>, ScoreError>],
        stop: &dyn Fn() -> bool,
        done: &mut dyn FnMut(usize, Result<Scored, ScoreError>),
    ) -> Result<(), ScoreError> {
        let prepared: Vec<Result<Prepared, ScoreError>> = inputs
            .iter()
            .map(|input| {
                let input = input.as_ref().map_err(Clone::clone)?;
                Ok(Prepared {
                    encoded: self.encoder.encode(input.prompt, input.response)?,
                    slot: input.slot,
                })
            })
            .collect();
        self.score_prepared(prepared, stop, done)
    }

    /// As [`Pipeline::score`], for inputs already made into ids with [`Pipeline::encoder`]
    /// (e.g. on another thread, while the backend works on earlier ones).
    pub fn score_prepared(
        &mut self,
        inputs: Vec<Result<Prepared, ScoreError>>,
        stop: &dyn Fn() -> bool,
        done: &mut dyn FnMut(usize, Result<Scored, ScoreError>),
    ) -> Result<(), ScoreError> {
        let mut encoded: Vec<(usize, Encoded, Option<u64>)> = Vec::with_capacity(inputs.len());
        for (i, input) in inputs.into_iter().enumerate() {
            match input {
                Err(e) => done(i, Err(e)),
                Ok(p) => encoded.push((i, p.encoded, p.slot)),
            }
        }
        let jobs: Vec<Job> = encoded
            .iter()
            .map(|(_, e, slot)| Job {
                ids: &e.ids,
                slot: *slot,
            })
            .collect();
        let info = self.backend.info();
        let warnings = self.warnings();
        let max_tokens = self.encoder.max_tokens();
        let mut answered = vec![false; jobs.len()];
        let outcome = self.backend.score(&jobs, stop, &mut |j, row| {
            let Some((i, e, _)) = encoded.get(j) else {
                return;
            };
            if std::mem::replace(&mut answered[j], true) {
                return;
            }
            let result = row.and_then(|row| {
                let n = info.labels.len();
                let (scores, gating) = match info.gating {
                    false if row.len() == n => (row, None),
                    true => Gating::split(&row, n)
                        .map(|(s, g)| (s, Some(g)))
                        .ok_or_else(|| {
                            ScoreError::Model(format!(
                                "the backend gave {} values for a gating model of {n} attributes",
                                row.len()
                            ))
                        })?,
                    false => {
                        return Err(ScoreError::Model(format!(
                            "the backend gave {} scores for the model's {n} attributes",
                            row.len()
                        )))
                    }
                };
                finite(&scores, &info.labels)?;
                if gating.as_ref().is_some_and(|g| !g.is_valid(n)) {
                    return Err(ScoreError::NonFinite("the gating weights or score".into()));
                }
                let mut w = warnings.clone();
                w.extend(input_warnings(e, max_tokens));
                Ok(Scored {
                    tokens: e.ids.len(),
                    truncated: e.truncated(),
                    scores,
                    warnings: w,
                    gating,
                })
            });
            done(*i, result);
        });
        match outcome {
            Err(ScoreError::Cancelled) => Err(ScoreError::Cancelled),
            other => {
                let failure = other.err().unwrap_or_else(|| {
                    ScoreError::Model("the backend left an input unanswered".into())
                });
                for ((i, _, _), _) in encoded.iter().zip(&answered).filter(|(_, a)| !**a) {
                    done(*i, Err(failure.clone()));
                }
                Ok(())
            }
        }
    }

    /// Scores prompt/response pairs; one result per pair, in order.
    pub fn score_pairs(&mut self, pairs: &[(&str, &str)]) -> Vec<Result<Scored, ScoreError>> {
        let inputs: Vec<Result<Input, ScoreError>> = pairs
            .iter()
            .map(|&(prompt, response)| {
                Ok(Input {
                    prompt,
                    response,
                    slot: None,
                })
            })
            .collect();
        let mut out: Vec<Option<Result<Scored, ScoreError>>> = vec![None; pairs.len()];
        let _ = self.score(&inputs, &|| false, &mut |i, r| out[i] = Some(r));
        out.into_iter()
            .map(|r| r.unwrap_or(Err(ScoreError::Cancelled)))
            .collect()
    }

    /// The scores of `response`'s prefixes cut `every` word, sentence or token, the whole
    /// response last; each equals scoring that prefix as the response on its own.
    pub fn trajectory(
        &mut self,
        prompt: &str,
        response: &str,
        every: Every,
        stop: &dyn Fn() -> bool,
    ) -> Result<Vec<Point>, ScoreError> {
        trajectory::trajectory(
            &self.encoder,
            self.backend.as_mut(),
            (prompt, response),
            every,
            stop,
        )
    }
}

/// What the user should know about how one input was read.
pub fn input_warnings(e: &Encoded, max_tokens: usize) -> Vec<String> {
    let mut w = Vec::new();
    if e.truncated() {
        w.push(format!(
            "input has {}{} tokens; only the last {} were scored (truncated from the left, as in training)",
            if e.full_len_exact { "" } else { "over " },
            e.full_len,
            max_tokens
        ));
    }
    if !e.control_tokens.is_empty() {
        w.push(format!(
            "the text contains {}, read as control token(s) as transformers does",
            e.control_tokens.join(" ")
        ));
    }
    w
}

/// A row with a NaN or infinite score is an error naming the attributes: such a number is
/// never shown, written or cached as a score.
fn finite(scores: &[f32], labels: &[String]) -> Result<(), ScoreError> {
    let bad: Vec<String> = scores
        .iter()
        .enumerate()
        .filter(|(_, v)| !v.is_finite())
        .map(|(i, v)| match labels.get(i) {
            Some(l) => format!("{l} = {v}"),
            None => format!("#{i} = {v}"),
        })
        .collect();
    if bad.is_empty() {
        return Ok(());
    }
    tracing::error!(?scores, "non-finite scores");
    Err(ScoreError::NonFinite(bad.join(", ")))
}
