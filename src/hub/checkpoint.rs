//! Which files of a repository make a checkpoint: config, tokenizer and the weights (an index
//! and its shards, or one file), chosen as the weight loader chooses on disk. Without the
//! weights (a model served elsewhere), config and tokenizer alone.
//!
//! The rule itself lives in `model::files`, shared with the weight loader; this module applies
//! it to what the hub lists and to what is already cached. Only `hub` calls it.

use std::path::Path;

use crate::model::files::{self, MAX_INDEX_BYTES};
pub use crate::model::files::{
    plan as plan_weights, WeightPlan, CONFIG, PT_INDEX, PT_SINGLE, ST_INDEX, ST_SINGLE, TOKENIZER,
};

/// The files every fetch needs, with the words that name them in errors (as the model layer
/// names them).
pub(super) const REQUIRED: [(&str, &str); 2] = [
    (CONFIG, "config.json"),
    (TOKENIZER, "tokenizer.json (the fast tokenizer file)"),
];

/// The shard files a cached shard index names, each once, in name order. Each becomes a path
/// in the cache, so one that is not a plain relative path is refused.
pub(super) fn shard_names(index: &Path) -> Result<Vec<String>, String> {
    let bytes =
        files::read_small(index, MAX_INDEX_BYTES, "a shard index").map_err(|e| e.to_string())?;
    files::shard_names(&bytes)
}

/// The files of the checkpoint in `dir` that are there, and what it lacks (by file name,
/// or a description when the weights cannot be told); the weights only when `weights`.
pub(super) fn checkpoint_files(dir: &Path, weights: bool) -> (Vec<String>, Vec<String>) {
    let mut present = Vec::new();
    let mut missing = Vec::new();
    let note = |name: &str, present: &mut Vec<String>, missing: &mut Vec<String>| {
        if dir.join(name).is_file() {
            present.push(name.to_string());
        } else {
            missing.push(name.to_string());
        }
    };
    for (name, _) in REQUIRED {
        note(name, &mut present, &mut missing);
    }
    if !weights {
        return (present, missing);
    }
    // Which weight files count is the loader's rule, applied to the ones on disk.
    let on_disk = [ST_INDEX, ST_SINGLE, PT_INDEX, PT_SINGLE]
        .into_iter()
        .filter(|n| dir.join(n).is_file());
    match plan_weights(on_disk) {
        Some(WeightPlan::Index(index)) => {
            present.push(index.clone());
            match shard_names(&dir.join(&index)) {
                Ok(shards) => {
                    for s in shards {
                        note(&s, &mut present, &mut missing);
                    }
                }
                Err(e) => missing.push(format!("a readable {index} ({e})")),
            }
        }
        Some(WeightPlan::Single(single)) => present.push(single),
        None => missing.push(format!(
            "the weights ({ST_SINGLE}, or {ST_INDEX} with its shards)"
        )),
    }
    (present, missing)
}

/// What a model directory lacks, by file name; empty when it is complete.
pub fn missing_files(dir: &Path) -> Vec<String> {
    checkpoint_files(dir, true).1
}
