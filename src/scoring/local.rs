//! The local backend: the candle model, keeping the keys and values of each candidate's last
//! input, so that an edit recomputes only the tokens from the first changed one (and always
//! the template's tail), and inputs scored together compute their shared template and prompt
//! once (`model::reuse`).

use std::sync::Arc;
use std::time::Duration;

use crate::model::integrity::{Damage, Integrity};
use crate::model::reuse::{self, Job as ReuseJob};
use crate::model::{KvStore, ModelError, ModelInfo, ReuseOptions, ReuseStats, RewardModel};

use super::{Backend, Job, ScoreError};

/// The reward model with a per-slot key/value cache.
pub struct LocalBackend {
    model: Arc<RewardModel>,
    store: KvStore,
    options: ReuseOptions,
    last: ReuseStats,
}

impl LocalBackend {
    /// Keeps at most `budget_bytes` of cached keys and values (least recently used out first).
    /// The model may be shared with other backends (each keeps its own cache).
    pub fn new(model: impl Into<Arc<RewardModel>>, budget_bytes: usize) -> Self {
        let model = model.into();
        let options = ReuseOptions {
            min_fed: model.encoder().tail_tokens(),
            ..ReuseOptions::default()
        };
        Self {
            model,
            store: KvStore::new(budget_bytes),
            options,
            last: ReuseStats::default(),
        }
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

    /// Replaces a model whose weights failed their check by one loaded again, checking first;
    /// the keys and values computed with the damaged weights go with it. `Err` after a model
    /// that was already loaded that way: its file changed under it.
    fn replace_damaged(&mut self, damage: Damage, repaired: &mut bool) -> Result<(), ScoreError> {
        let damaged = ModelError::DamagedCache {
            path: damage.path,
            tensor: damage.tensor,
        };
        if std::mem::replace(repaired, true) {
            return Err(damaged.into());
        }
        tracing::warn!("{damaged}; loading the model again, checking the file first");
        self.model = Arc::new(self.model.reload_checked()?);
        self.store.clear();
        Ok(())
    }
}

/// Why results computed by a pass are not handed on.
#[derive(Debug, PartialEq)]
enum Withheld {
    Damaged(Damage),
    Cancelled,
}

/// Waits for the model's weight check, asking `stop` as it waits (on a cold page cache the
/// check reads gigabytes from disk, and the user may have moved on).
fn await_check(integrity: &Integrity, stop: &dyn Fn() -> bool) -> Result<(), Withheld> {
    loop {
        match integrity.wait_for(Duration::from_millis(50)) {
            Some(Ok(())) => return Ok(()),
            Some(Err(damage)) => return Err(Withheld::Damaged(damage)),
            None if stop() => return Err(Withheld::Cancelled),
            None => {}
        }
    }
}

impl Backend for LocalBackend {
    fn info(&self) -> ModelInfo {
        self.model.info().clone()
    }

    fn warnings(&self) -> Vec<String> {
        self.model.warnings().to_vec()
    }

    fn score(
        &mut self,
        jobs: &[Job<'_>],
        stop: &dyn Fn() -> bool,
        done: &mut dyn FnMut(usize, Result<Vec<f32>, ScoreError>),
    ) -> Result<(), ScoreError> {
        // What the model cannot take is the input's fault, told apart from a failed pass.
        let context = self.model.info().context;
        let mut todo = Vec::with_capacity(jobs.len());
        for (j, job) in jobs.iter().enumerate() {
            if job.ids.is_empty() {
                done(
                    j,
                    Err(ScoreError::Input("cannot score an empty input".into())),
                );
            } else if job.ids.len() > context {
                done(
                    j,
                    Err(ScoreError::Input(format!(
                        "{} tokens exceed the model's context of {context} positions",
                        job.ids.len()
                    ))),
                );
            } else {
                todo.push(j);
            }
        }
        let reuse_jobs: Vec<ReuseJob> = todo
            .iter()
            .map(|&j| ReuseJob {
                ids: jobs[j].ids,
                slot: jobs[j].slot,
            })
            .collect();
        let mut repaired = false;
        let stats = loop {
            // No result leaves before the weights it came from have passed their check.
            let model = self.model.clone();
            let mut gate = None;
            let stats = reuse::score(
                model.decoder(),
                &mut self.store,
                &reuse_jobs,
                &self.options,
                stop,
                &mut |k, row| {
                    if gate
                        .get_or_insert_with(|| await_check(model.integrity(), stop))
                        .is_ok()
                    {
                        done(todo[k], row.map_err(ScoreError::Model));
                    }
                },
            )?;
            match gate {
                Some(Err(Withheld::Cancelled)) => return Err(ScoreError::Cancelled),
                Some(Err(Withheld::Damaged(d))) => self.replace_damaged(d, &mut repaired)?,
                _ => break stats,
            }
        };
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

    /// One cached pass over `full`, then only each input's own last tokens.
    fn continuations(
        &mut self,
        full: &[u32],
        inputs: &[&[u32]],
        stop: &dyn Fn() -> bool,
    ) -> Result<Vec<Vec<f32>>, ScoreError> {
        if self.model.decoder().has_gating() {
            // The gating reads the prompt's end, which a continuation does not compute: each
            // prefix is scored as an input, sharing the template and prompt through the cache.
            return super::score_each(self, inputs, stop);
        }
        let mut repaired = false;
        loop {
            let rows = self.model.continuations(full, inputs, stop)?;
            match await_check(self.model.integrity(), stop) {
                Ok(()) => return Ok(rows),
                Err(Withheld::Cancelled) => return Err(ScoreError::Cancelled),
                Err(Withheld::Damaged(d)) => self.replace_damaged(d, &mut repaired)?,
            }
        }
    }

    fn trajectory_note(&self) -> Option<String> {
        self.model.decoder().has_gating().then(|| {
            "this model's gating reads the prompt, so each prefix is scored as a whole input \
             after the prompt (about one response-length pass per point)"
                .to_string()
        })
    }

    fn set_batch(&mut self, inputs: usize) {
        self.options.max_batch = inputs.max(1);
    }

    fn cache_bytes(&self) -> usize {
        self.store.bytes()
    }

    fn forget(&mut self, slot: u64) {
        self.store.forget_slot(slot);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    #[test]
    fn results_wait_for_the_check_and_a_stop_ends_the_wait() {
        assert_eq!(
            await_check(&Integrity::with_outcome(Some(Ok(()))), &|| true),
            Ok(())
        );
        let damage = Damage {
            path: "cache.gguf".into(),
            tensor: "t".into(),
        };
        assert_eq!(
            await_check(&Integrity::with_outcome(Some(Err(damage.clone()))), &|| {
                false
            }),
            Err(Withheld::Damaged(damage))
        );
        // A check that never ends: the wait lasts until the third time `stop` is asked.
        let asked = Cell::new(0);
        let stop = || {
            asked.set(asked.get() + 1);
            asked.get() == 3
        };
        let waited = std::time::Instant::now();
        assert_eq!(
            await_check(&Integrity::with_outcome(None), &stop),
            Err(Withheld::Cancelled)
        );
        assert_eq!(asked.get(), 3);
        assert!(
            waited.elapsed() >= Duration::from_millis(100),
            "it waited between asks"
        );
    }
}
