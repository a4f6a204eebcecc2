//! The model's part of a response's trajectory (see `scoring::trajectory`): inputs that each
//! continue a prefix of one whole input, scored against that input's cached keys and values.
//!
//! One pass over the whole input keeps its keys and values; every input that starts as the
//! whole input does (the usual case: all but the last few tokens) then feeds only its own
//! remaining tokens against them, many inputs in one pass ([`Mistral::forward_continuations`]).
//! An input that starts differently (left truncation moves with the length) feeds all of its
//! tokens: exact either way.

use super::mistral::Mistral;
use super::{ModelError, RewardModel};

/// Most tokens fed in one pass of continuations (bounds the mask: tokens × context).
const TOKENS_PER_PASS: usize = 512;

impl RewardModel {
    /// The scores of each of `inputs`, every one equal to scoring it alone, computed against
    /// one cached pass over `full` (whose own scores are those of any input equal to it).
    pub fn continuations(
        &self,
        full: &[u32],
        inputs: &[&[u32]],
        should_stop: &dyn Fn() -> bool,
    ) -> Result<Vec<Vec<f32>>, ModelError> {
        if full.is_empty() || inputs.iter().any(|i| i.is_empty()) {
            return Err(ModelError::Input(
                "cannot score an empty token sequence".into(),
            ));
        }
        continuations(self.decoder(), full, inputs, should_stop)
    }
}

/// Scores every input of `inputs` against one cached pass over `full`.
fn continuations(
    model: &Mistral,
    full: &[u32],
    inputs: &[&[u32]],
    should_stop: &dyn Fn() -> bool,
) -> Result<Vec<Vec<f32>>, ModelError> {
    let out = model.forward(None, &[full], true, should_stop)?;
    let whole = out.logits.to_vec2::<f32>()?.remove(0);
    let cache = out
        .caches
        .and_then(|mut c| c.pop())
        .ok_or_else(|| ModelError::Input("the full pass kept no cache".into()))?;
    // Each input continues the cache after what it shares with the whole input; at least its
    // last token is fed, since the scores come from there.
    let tails: Vec<(usize, &[u32])> = inputs
        .iter()
        .map(|e| {
            let shared = e
                .iter()
                .zip(full)
                .take_while(|(a, b)| a == b)
                .count()
                .min(e.len().saturating_sub(1));
            (shared, &e[shared..])
        })
        .collect();
    let mut rows: Vec<Option<Vec<f32>>> = vec![None; inputs.len()];
    let mut batch: Vec<usize> = Vec::new();
    let mut fed = 0;
    let flush = |batch: &mut Vec<usize>, rows: &mut Vec<Option<Vec<f32>>>| {
        if batch.is_empty() {
            return Ok::<(), ModelError>(());
        }
        let part: Vec<(usize, &[u32])> = batch.iter().map(|&i| tails[i]).collect();
        // No continuation sees the cache past the latest start: attend over that much only.
        let upto = part.iter().map(|&(start, _)| start).max().unwrap_or(0);
        let got = model
            .forward_continuations(&cache.truncate(upto)?, &part, should_stop)?
            .to_vec2::<f32>()?;
        for (&i, r) in batch.iter().zip(got) {
            rows[i] = Some(r);
        }
        batch.clear();
        Ok(())
    };
    for (i, e) in inputs.iter().enumerate() {
        if *e == full {
            rows[i] = Some(whole.clone());
            continue;
        }
        let n = tails[i].1.len();
        if fed + n > TOKENS_PER_PASS && !batch.is_empty() {
            flush(&mut batch, &mut rows)?;
            fed = 0;
        }
        batch.push(i);
        fed += n;
    }
    flush(&mut batch, &mut rows)?;
    Ok(rows.into_iter().map(|r| r.unwrap_or_default()).collect())
}
