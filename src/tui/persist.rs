//! The state as a session file and as export rows, and filing the outcome of save, open and
//! export effects. No I/O: the files are read and written by `effects`.

use std::path::PathBuf;
use std::time::Instant;

use crate::preference;
use crate::scoring::Scored;

use super::explorer::*;
use super::session::{self, Session};
use super::state::*;

impl Explorer {
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
                        gating: o.scored.gating.clone(),
                    }),
                })
                .collect(),
            selected: self.selected,
            direction: self.dial.direction(&self.labels),
            axes: self.dial.axes.clone(),
        }
    }

    /// Replaces the texts, scores and direction with a session's. Scores are kept only when
    /// they come from the same model and attributes.
    pub fn apply_session(&mut self, s: Session) {
        let responses: Vec<String> = s.candidates.iter().map(|c| c.response.clone()).collect();
        self.set_texts(&s.prompt, &responses);
        let same_model = s.model == self.model_name && s.labels == self.labels;
        let prompt = self.prompt_text();
        for (c, saved) in self.candidates.iter_mut().zip(&s.candidates) {
            if !saved.name.is_empty() {
                c.name = saved.name.clone();
            }
            if let (true, Some(sc)) = (same_model, &saved.scores) {
                // Saved scores are fresh only if they were for exactly the saved text.
                let for_this_text = sc.prompt == prompt && sc.response == c.text();
                c.result = Some(Outcome {
                    revision: if for_this_text { c.revision } else { 0 },
                    prompt: sc.prompt.clone(),
                    response: sc.response.clone(),
                    request: 0,
                    scored: Scored {
                        tokens: sc.tokens,
                        truncated: sc.truncated,
                        scores: sc.values.clone(),
                        warnings: Vec::new(),
                        // A file's numbers are checked like a model's: one per attribute,
                        // all finite, or none.
                        gating: sc.gating.clone().filter(|g| g.is_valid(self.labels.len())),
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
        if self.take_direction(&s.direction) {
            if s.axes.is_some() {
                self.dial.axes = s.axes;
            }
        } else if let Err(e) = s.direction.resolve(&self.labels) {
            self.set_flash(
                format!("the session's direction does not fit this model ({e}); kept the dial"),
                true,
                Instant::now(),
            );
        }
        self.apply_focus_styles();
    }

    /// One row per candidate for export, ranked under the current direction. A row has
    /// scores only when they are for the text it writes: stale and empty candidates are
    /// written with their current text and no scores.
    pub fn export_rows(&self) -> Vec<session::ExportRow> {
        let views = self.candidate_views();
        // Only scores for the text that is written rank; the rest follow, unranked.
        let rewards: Vec<Option<f64>> = views
            .iter()
            .map(|v| v.reward.filter(|_| v.freshness == Freshness::Fresh))
            .collect();
        let order = preference::ranking(&rewards);
        let prompt = self.prompt_text();
        let direction = self.dial.direction(&self.labels).describe();
        order
            .iter()
            .enumerate()
            .map(|(rank, &i)| {
                let v = &views[i];
                let c = &self.candidates[i];
                let fresh = v.freshness == Freshness::Fresh;
                let scored = c.result.as_ref().filter(|_| fresh);
                session::ExportRow {
                    candidate: v.name.clone(),
                    rank: rewards[i].map(|_| rank + 1),
                    prompt: scored.map_or_else(|| prompt.clone(), |o| o.prompt.clone()),
                    response: scored.map_or_else(|| c.text(), |o| o.response.clone()),
                    fresh,
                    tokens: scored.map(|o| o.scored.tokens),
                    labels: self.labels.clone(),
                    scores: scored.map(|o| o.scored.scores.clone()),
                    weighted: rewards[i],
                    direction: direction.clone(),
                }
            })
            .collect()
    }

    /// The selected candidate's prefix scores as the trajectory view shows them, for export:
    /// only for its current text, with R from [`preference::reward`] under the current
    /// direction; else why there is nothing to export.
    pub fn trajectory_export(&self) -> Result<session::TrajectoryExport, String> {
        let elsewhere = super::layout::is_wide(self.size);
        if super::widgets::tabs::shown(self.view, elsewhere) != View::Trajectory {
            return Err("the trajectory view is not shown (F3 or Alt-V shows it)".into());
        }
        let c = self.selected_candidate();
        let text = c.text();
        if text.trim().is_empty() {
            return Err(format!("candidate {} has no response text", c.name));
        }
        let computing = self
            .trajectory_inflight
            .as_ref()
            .is_some_and(|f| f.slot == c.slot && f.revision == c.revision);
        let points = match &c.trajectory {
            _ if computing => {
                return Err(format!("the trajectory of {} is still computing", c.name))
            }
            Some(t) if t.revision == c.revision && t.response == text => match &t.result {
                Ok(points) => points,
                Err(e) => return Err(format!("no trajectory of {}: {e}", c.name)),
            },
            Some(_) => {
                return Err(format!(
                    "the trajectory is for an earlier text of {}; it follows the new text's score",
                    c.name
                ))
            }
            None => return Err(format!("no trajectory of {} yet", c.name)),
        };
        if points.is_empty() {
            return Err(format!("no prefix scores for {}", c.name));
        }
        let unit = self
            .unit()
            .map_err(|e| format!("no direction ({e}): set one on the dial"))?;
        let mut rows = Vec::with_capacity(points.len());
        let mut start = 0;
        for p in points {
            let piece = text
                .get(start..p.end)
                .ok_or_else(|| format!("the prefix scores do not fit the text of {}", c.name))?;
            rows.push(session::TrajectoryRow {
                end: p.end,
                piece: piece.to_string(),
                scores: p.scores.clone(),
                weighted: preference::reward(&unit, &p.scores),
            });
            start = p.end;
        }
        Ok(session::TrajectoryExport {
            candidate: c.name.clone(),
            slot: c.slot,
            revision: c.revision,
            labels: self.labels.clone(),
            rows,
        })
    }

    /// A save effect finished.
    pub(crate) fn saved(&mut self, path: PathBuf, result: anyhow::Result<()>, now: Instant) {
        match result {
            Ok(()) => {
                self.set_flash(format!("saved {}", path.display()), false, now);
                self.paths.session = Some(path);
                self.unsaved = false;
            }
            Err(e) => self.set_flash(format!("not saved: {e:#}"), true, now),
        }
    }

    /// An open effect finished.
    pub(crate) fn opened(&mut self, path: PathBuf, result: anyhow::Result<Session>, now: Instant) {
        match result {
            Ok(s) => {
                self.apply_session(s);
                self.deleted = None;
                self.rescore_at = Some(now);
                self.changed(now);
                self.unsaved = false;
                self.set_flash(format!("opened {}", path.display()), false, now);
                self.paths.session = Some(path);
            }
            Err(e) => self.set_flash(format!("{e:#}"), true, now),
        }
    }

    /// An export effect finished; a file in the way is replaced only after a yes.
    pub(crate) fn exported(
        &mut self,
        path: PathBuf,
        export: session::Export,
        result: anyhow::Result<session::Written>,
        now: Instant,
    ) {
        match result {
            Ok(session::Written::As(kind)) => self.set_flash(
                format!("exported {} as {kind} to {}", export.what(), path.display()),
                false,
                now,
            ),
            Ok(session::Written::Exists) => {
                self.overlay = Some(Overlay::Confirm(Pending::Replace { path, export }))
            }
            Err(e) => self.set_flash(format!("not exported: {e:#}"), true, now),
        }
    }
}
