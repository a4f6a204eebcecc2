//! Scoring requests and results: what to send, and how an answer is filed with the revision
//! of the text it was computed for. No I/O; requests leave as effects.

use std::time::Instant;

use crate::engine::{EngineEvent, LoadStage, RequestId, ScoreItem};
use crate::scoring::Scored;

use super::effects::Effect;
use super::explorer::*;
use super::state::*;

impl Explorer {
    /// Sends every candidate whose shown scores are not for its current revision to the
    /// engine, the selected one first. Without `force`, revisions whose scoring failed are
    /// not retried and a request already covering the same revisions is not repeated.
    pub(crate) fn request_scores(&mut self, force: bool, now: Instant) {
        if self.model != ModelState::Ready {
            if force {
                let why = match &self.model {
                    ModelState::Failed { .. } => "the model is not loaded (F5 tries again)",
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
        let mut revisions = Vec::new();
        for i in order {
            let c = &self.candidates[i];
            let text = c.text();
            if text.trim().is_empty() {
                continue;
            }
            if c.result.as_ref().is_some_and(|o| o.revision == c.revision) {
                continue;
            }
            if !force && c.failure.as_ref().is_some_and(|f| f.revision == c.revision) {
                continue;
            }
            items.push(ScoreItem {
                slot: c.slot,
                prompt: prompt.clone(),
                response: text,
            });
            revisions.push(c.revision);
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
                let sent: Vec<(u64, u64)> = f
                    .items
                    .iter()
                    .map(|i| i.slot)
                    .zip(f.revisions.iter().copied())
                    .collect();
                if items
                    .iter()
                    .zip(&revisions)
                    .all(|(i, r)| sent.contains(&(i.slot, *r)))
                {
                    return;
                }
            }
        }
        self.effects.push(Effect::Score { items, revisions });
    }

    /// The scorer took a request under `id`.
    pub(crate) fn score_sent(
        &mut self,
        id: RequestId,
        items: Vec<ScoreItem>,
        revisions: Vec<u64>,
        now: Instant,
    ) {
        let tagged = items
            .iter()
            .map(|i| i.slot)
            .zip(revisions.iter().copied())
            .collect();
        // Answers to a superseded request can still arrive; a few requests back is plenty.
        const KEEP: usize = 8;
        if self.sent.len() >= KEEP {
            self.sent.remove(0);
        }
        self.sent.push((id, tagged));
        self.inflight = Some(Inflight {
            id,
            items,
            revisions,
            since: now,
            computing: None,
            answered: 0,
            computed_tokens: 0,
        });
    }

    /// Asks for the selected candidate's prefix scores when the trajectory view shows, its
    /// score is fresh, no scoring is in flight (a trajectory request would supersede it) and
    /// there is no trajectory for its revision yet (nor one on its way).
    pub(crate) fn request_trajectory(&mut self) {
        let elsewhere = super::layout::is_wide(self.size);
        if super::widgets::tabs::shown(self.view, elsewhere) != View::Trajectory
            || self.model != ModelState::Ready
            || self.inflight.is_some()
            || self.overlay.is_some()
        {
            return;
        }
        let Some(c) = self.candidates.get(self.selected) else {
            return;
        };
        let revision = c.revision;
        let fresh = c.result.as_ref().is_some_and(|o| o.revision == revision);
        let have = c
            .trajectory
            .as_ref()
            .is_some_and(|t| t.revision == revision);
        let asked = self
            .trajectory_inflight
            .as_ref()
            .is_some_and(|f| f.slot == c.slot && f.revision == revision);
        let response = c.text();
        if !fresh || have || asked || response.trim().is_empty() {
            return;
        }
        let slot = c.slot;
        self.trajectory_inflight = Some(TrajectoryInflight {
            id: 0,
            slot,
            revision,
            response: response.clone(),
        });
        self.effects.push(Effect::Trajectory {
            slot,
            revision,
            prompt: self.prompt_text(),
            response,
        });
    }

    /// The scorer took a trajectory request under `id`.
    pub(crate) fn trajectory_sent(&mut self, id: RequestId, slot: u64, revision: u64) {
        if let Some(f) = self
            .trajectory_inflight
            .as_mut()
            .filter(|f| f.slot == slot && f.revision == revision)
        {
            f.id = id;
        }
    }

    /// Files prefix scores with their candidate under the revision they were asked for; an
    /// answer to any request but the one in flight belongs to no revision we can vouch for.
    fn apply_trajectory(
        &mut self,
        request: RequestId,
        slot: u64,
        result: Result<Vec<crate::scoring::Point>, String>,
    ) {
        let Some(f) = self
            .trajectory_inflight
            .take_if(|f| f.id == request && f.slot == slot)
        else {
            return;
        };
        let Some(c) = self.candidates.iter_mut().find(|c| c.slot == slot) else {
            return;
        };
        c.trajectory = Some(TrajectoryOutcome {
            revision: f.revision,
            response: f.response,
            result,
        });
    }

    /// The model is being loaded again after a failure.
    pub(crate) fn reloading(&mut self, now: Instant) {
        self.model = ModelState::Starting;
        self.set_flash("loading the model again…".into(), false, now);
    }

    pub(crate) fn engine_event(&mut self, event: EngineEvent, now: Instant) {
        match event {
            EngineEvent::Progress(stage) => {
                if let LoadStage::Layers { layer, layers, .. } = stage {
                    // The remaining layers at the pace of those done so far.
                    match self.load_started {
                        Some(t0) if layer > 0 && layer <= layers => {
                            let per = now.saturating_duration_since(t0) / layer as u32;
                            self.load_eta = Some(per * (layers - layer) as u32);
                        }
                        _ => {
                            self.load_started = Some(now);
                            self.load_eta = None;
                        }
                    }
                }
                self.model = ModelState::Loading(stage);
            }
            EngineEvent::Ready { info, warnings } => {
                self.first_score_pending = true;
                self.load_started = None;
                self.load_eta = None;
                // The direction by attribute name, carried over to the model's own labels.
                let wanted = self
                    .pending_direction
                    .take()
                    .unwrap_or_else(|| self.dial.direction(&self.labels));
                self.labels = info.labels.clone();
                self.dial.fit(&self.labels);
                self.info = Some(info);
                self.model = ModelState::Ready;
                if !self.dial.set_direction(&wanted, &self.labels) {
                    let why = wanted.resolve(&self.labels).err();
                    let why = why.map(|e| format!(" ({e})")).unwrap_or_default();
                    self.set_flash(
                        format!(
                            "the direction {} does not fit this model{why}",
                            wanted.describe()
                        ),
                        true,
                        now,
                    );
                }
                if let (Some((x, y)), Err(e)) = (&self.dial.axes, self.dial.plane(&self.labels)) {
                    self.set_flash(
                        format!("the dial's axes {x} × {y} do not fit this model ({e}); using its default plane"),
                        true,
                        now,
                    );
                    self.dial.axes = None;
                }
                if let Some(w) = warnings.first() {
                    self.set_flash(w.clone(), true, now);
                }
                self.model_warnings = warnings;
                // A note for this load follows as its own event.
                self.trajectory_note = None;
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
            EngineEvent::TrajectoryNote(note) => self.trajectory_note = Some(note),
            EngineEvent::WeightCheck {
                checked,
                total,
                done,
            } => {
                self.weight_check =
                    (!done).then(|| WeightCheck::update(self.weight_check, checked, total, now))
            }
            EngineEvent::LoadFailed { error } => {
                self.model = ModelState::Failed {
                    error: error.to_string(),
                };
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
                ..
            } => {
                if let Some(f) = self.inflight.as_mut().filter(|f| f.id == request) {
                    f.answered += 1;
                    if let (Ok(s), false) = (&result, cached) {
                        f.computed_tokens += s.tokens;
                    }
                }
                self.apply_result(request, item, result.map_err(|e| e.to_string()), cached);
            }
            EngineEvent::Finished { request, elapsed } => {
                if let Some(f) = self.inflight.take_if(|f| f.id == request) {
                    // The whole batch as the user waited for it, not the last item alone.
                    self.latency = Some(Latency {
                        elapsed: now.saturating_duration_since(f.since).max(elapsed),
                        cached: f.computing.unwrap_or(0) == 0,
                    });
                    // The first scoring after a load times the next start's first score.
                    if self.first_score_pending && f.computed_tokens > 0 {
                        self.first_score_pending = false;
                        let key = self.rate_key();
                        let unix = std::time::SystemTime::now()
                            .duration_since(std::time::UNIX_EPOCH)
                            .map_or(0, |d| d.as_secs());
                        if self.rates.record(&key, f.computed_tokens, elapsed, unix) {
                            self.effects.push(Effect::SaveRates);
                        }
                    }
                }
            }
            EngineEvent::Trajectory {
                request,
                slot,
                result,
            } => self.apply_trajectory(request, slot, result.map_err(|e| e.to_string())),
            EngineEvent::Superseded { request } => {
                if self.inflight.as_ref().is_some_and(|f| f.id == request) {
                    self.inflight = None;
                }
                if self
                    .trajectory_inflight
                    .as_ref()
                    .is_some_and(|f| f.id == request)
                {
                    self.trajectory_inflight = None;
                }
            }
        }
    }

    /// The revision `slot` had when `request` was sent, if it is still known.
    fn sent_revision(&self, request: RequestId, slot: u64) -> Option<u64> {
        let (_, tagged) = self.sent.iter().find(|(id, _)| *id == request)?;
        tagged.iter().find(|(s, _)| *s == slot).map(|(_, r)| *r)
    }

    /// Files one result with its candidate under the revision it was computed for: a result
    /// for a revision that has since changed shows as stale, never as fresh, and never
    /// displaces a result for a newer revision.
    pub(crate) fn apply_result(
        &mut self,
        request: RequestId,
        item: ScoreItem,
        result: Result<Scored, String>,
        cached: bool,
    ) {
        // An answer whose request is forgotten belongs to no revision we can vouch for.
        let revision = self.sent_revision(request, item.slot).unwrap_or(0);
        let Some(c) = self.candidates.iter_mut().find(|c| c.slot == item.slot) else {
            return; // The candidate was deleted meanwhile.
        };
        let is_current = revision == c.revision;
        match result {
            Ok(scored) => {
                if let Some(old) = &c.result {
                    if old.revision > revision {
                        return;
                    }
                    if old.revision != revision {
                        c.previous = Some(old.scored.scores.clone());
                    }
                }
                if is_current {
                    c.failure = None;
                }
                c.result = Some(Outcome {
                    revision,
                    prompt: item.prompt,
                    response: item.response,
                    request,
                    scored,
                    cached,
                });
            }
            Err(message) => {
                if is_current {
                    c.failure = Some(Failure { revision, message });
                }
            }
        }
    }

    /// The model, device and mode as the user asked for them: what a measured rate is for.
    pub(crate) fn rate_key(&self) -> String {
        super::rates::key(
            &self.model_name,
            &self.requested_device,
            &self.requested_dtype,
        )
    }

    /// How long the first score of the texts on screen should take, from this machine's
    /// measured rate with this model and mode; or that it will be measured.
    pub fn first_score_estimate(&self) -> String {
        let texts: Vec<String> = self
            .candidates
            .iter()
            .map(|c| c.text())
            .filter(|t| !t.trim().is_empty())
            .collect();
        let Some(rate) = self.rates.get(&self.rate_key()) else {
            return "The first score is timed, and the next start says how long it takes.".into();
        };
        if texts.is_empty() {
            return format!(
                "Scoring runs at about {:.0} tokens/s here with this model (measured before).",
                rate.tokens_per_s
            );
        }
        let chars = self.prompt_text().chars().count() * texts.len()
            + texts.iter().map(|t| t.chars().count()).sum::<usize>();
        let (time, tokens) = super::rates::first_score(rate, chars, texts.len());
        format!(
            "First score: about {} (≈{tokens} tokens at {:.0} tokens/s, as measured here before).",
            super::widgets::status::fmt_duration(time),
            rate.tokens_per_s
        )
    }
}
