//! The backend for as-you-type rescoring: keeps the keys and values of each candidate's last
//! input, so that an edit recomputes only the tokens from the first changed one (and always
//! the template's tail), and candidates scored together compute their shared template and
//! prompt once.

use crate::model::reuse::{self, Job};
use crate::model::{
    Encoded, KvStore, ModelError, ModelInfo, ReuseOptions, ReuseStats, RewardModel, Scored,
};

use super::{Backend, ScoreItem};
use crate::model::trajectory::{Every, Point};

/// The reward model with a per-slot key/value cache.
pub struct IncrementalBackend {
    model: RewardModel,
    store: KvStore,
    options: ReuseOptions,
    last: ReuseStats,
    /// Notes about how the model was obtained (e.g. a cached copy used offline).
    notes: Vec<String>,
}

impl IncrementalBackend {
    /// Keeps at most `budget_bytes` of cached keys and values (least recently used out first).
    pub fn new(model: RewardModel, budget_bytes: usize) -> Self {
        let options = ReuseOptions {
            min_fed: model.encoder().tail_tokens(),
            ..ReuseOptions::default()
        };
        Self {
            model,
            store: KvStore::new(budget_bytes),
            options,
            last: ReuseStats::default(),
            notes: Vec::new(),
        }
    }

    /// Adds a note shown with the model's warnings when it is ready.
    pub fn with_note(mut self, note: Option<String>) -> Self {
        self.notes.extend(note);
        self
    }

    pub fn model(&self) -> &RewardModel {
        &self.model
    }

    pub fn options(&self) -> &ReuseOptions {
        &self.options
    }

    pub fn options_mut(&mut self) -> &mut ReuseOptions {
        &mut self.options
    }

    /// What the last call to `score` computed.
    pub fn last_stats(&self) -> &ReuseStats {
        &self.last
    }

    pub fn store(&self) -> &KvStore {
        &self.store
    }

    /// Drops every cached key and value.
    pub fn clear(&mut self) {
        self.store.clear();
    }
}

impl Backend for IncrementalBackend {
    fn info(&self) -> ModelInfo {
        self.model.info().clone()
    }

    fn trajectory(
        &mut self,
        prompt: &str,
        response: &str,
        every: Every,
        stop: &dyn Fn() -> bool,
    ) -> Result<Vec<Point>, ModelError> {
        self.model.trajectory(prompt, response, every, stop)
    }

    fn warnings(&self) -> Vec<String> {
        let mut w = self.notes.clone();
        w.extend_from_slice(self.model.warnings());
        w
    }

    fn cache_bytes(&self) -> usize {
        self.store.bytes()
    }

    fn forget(&mut self, slot: u64) {
        self.store.forget_slot(slot);
    }

    fn score(
        &mut self,
        items: &[ScoreItem],
        stop: &dyn Fn() -> bool,
        done: &mut dyn FnMut(usize, Result<Scored, String>),
    ) -> Result<(), ModelError> {
        let mut encoded: Vec<(usize, Encoded)> = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            match self.model.encode(&item.prompt, &item.response) {
                Ok(e) => encoded.push((i, e)),
                Err(e) => done(i, Err(e.to_string())),
            }
        }
        let jobs: Vec<Job> = encoded
            .iter()
            .map(|(i, e)| Job {
                ids: &e.ids,
                slot: Some(items[*i].slot),
            })
            .collect();
        let model = &self.model;
        let outcome = reuse::score(
            model.decoder(),
            &mut self.store,
            &jobs,
            &self.options,
            stop,
            &mut |j, result| {
                let (i, enc) = &encoded[j];
                done(*i, result.map(|row| model.scored(enc, row)));
            },
        );
        match outcome {
            Ok(stats) => {
                tracing::debug!(
                    tokens = stats.tokens,
                    computed = stats.computed,
                    padding = stats.padding,
                    passes = stats.passes,
                    cache_bytes = stats.stored_bytes,
                    "scored with reuse"
                );
                self.last = stats;
                Ok(())
            }
            Err(e) => Err(e),
        }
    }
}
