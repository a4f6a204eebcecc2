//! Which files of a repository make a checkpoint: config, tokenizer and the weights (an index
//! and its shards, or one file), chosen as the weight loader chooses on disk.
//!
//! This is the hub's copy of the rule; `model::files` is to hold the shared one, and these
//! functions are the single spot to replace with calls to it. Only `hub` calls them.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use super::names::is_plain_relative;

pub(super) const CONFIG: &str = "config.json";
pub(super) const TOKENIZER: &str = "tokenizer.json";
pub(super) const ST_INDEX: &str = "model.safetensors.index.json";
pub(super) const ST_SINGLE: &str = "model.safetensors";
pub(super) const PT_INDEX: &str = "pytorch_model.bin.index.json";
pub(super) const PT_SINGLE: &str = "pytorch_model.bin";

/// A shard index larger than this is not one (the 7B model's is 24 kB).
const MAX_INDEX_BYTES: u64 = 64 << 20;

/// How the weights of a repository are stored, chosen as `WeightFiles::find` chooses on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WeightPlan {
    /// A shard index; the shards are named inside it.
    Index(String),
    Single(String),
}

/// Picks the weight files among a repository's file names: safetensors before PyTorch
/// pickles, an index before a single file.
pub fn plan_weights<'a>(names: impl IntoIterator<Item = &'a str>) -> Option<WeightPlan> {
    let names: BTreeSet<&str> = names.into_iter().collect();
    if names.contains(ST_INDEX) {
        Some(WeightPlan::Index(ST_INDEX.into()))
    } else if names.contains(ST_SINGLE) {
        Some(WeightPlan::Single(ST_SINGLE.into()))
    } else if names.contains(PT_INDEX) {
        Some(WeightPlan::Index(PT_INDEX.into()))
    } else if names.contains(PT_SINGLE) {
        Some(WeightPlan::Single(PT_SINGLE.into()))
    } else {
        None
    }
}

#[derive(serde::Deserialize)]
struct ShardIndex {
    weight_map: BTreeMap<String, String>,
}

/// The shard files a shard index names, each once, in name order. Each becomes a path in the
/// cache, so one that is not a plain relative path is refused.
pub(super) fn shard_names(index: &Path) -> Result<Vec<String>, String> {
    let len = std::fs::metadata(index).map_err(|e| e.to_string())?.len();
    if len > MAX_INDEX_BYTES {
        return Err(format!(
            "it is {len} bytes, more than a shard index can be ({MAX_INDEX_BYTES})"
        ));
    }
    let text = std::fs::read_to_string(index).map_err(|e| e.to_string())?;
    let parsed: ShardIndex =
        serde_json::from_str(&text).map_err(|e| format!("not a valid shard index: {e}"))?;
    let names: BTreeSet<String> = parsed.weight_map.into_values().collect();
    for n in &names {
        if !is_plain_relative(n) {
            let shown: String = n.chars().take(200).collect();
            return Err(format!(
                "it names a shard outside the repository: {shown:?}"
            ));
        }
    }
    Ok(names.into_iter().collect())
}

/// The files of the checkpoint in `dir` that are there, and what it lacks (by file name,
/// or a description when the weights cannot be told).
pub(super) fn checkpoint_files(dir: &Path) -> (Vec<String>, Vec<String>) {
    let mut present = Vec::new();
    let mut missing = Vec::new();
    let note = |name: &str, present: &mut Vec<String>, missing: &mut Vec<String>| {
        if dir.join(name).is_file() {
            present.push(name.to_string());
        } else {
            missing.push(name.to_string());
        }
    };
    note(CONFIG, &mut present, &mut missing);
    note(TOKENIZER, &mut present, &mut missing);
    let weights = [ST_INDEX, ST_SINGLE, PT_INDEX, PT_SINGLE]
        .into_iter()
        .find(|n| dir.join(n).is_file());
    match weights {
        Some(index) if index.ends_with(".index.json") => {
            present.push(index.to_string());
            match shard_names(&dir.join(index)) {
                Ok(shards) => {
                    for s in shards {
                        note(&s, &mut present, &mut missing);
                    }
                }
                Err(e) => missing.push(format!("a readable {index} ({e})")),
            }
        }
        Some(single) => present.push(single.to_string()),
        None => missing.push(format!(
            "the weights ({ST_SINGLE}, or {ST_INDEX} with its shards)"
        )),
    }
    (present, missing)
}

/// What a model directory lacks, by file name; empty when it is complete.
pub fn missing_files(dir: &Path) -> Vec<String> {
    checkpoint_files(dir).1
}
