//! Reuse of keys and values across forward passes.
//!
//! An input that starts with the same tokens as one scored before continues from that input's
//! cache, and inputs scored together compute their common start once (the template and the
//! prompt that candidates share). Reuse is exact: the keys and values of a position depend only
//! on the tokens up to it, and the sliding-window mask is placed by absolute position, so
//! continuing a cached prefix gives what a full pass gives, up to the order of float sums.
//!
//! [`score`] plans the work as a token trie over the inputs and the stored caches (see
//! [`plan`]), runs it, and keeps the new caches in a [`KvStore`] under a byte budget.

use std::collections::BTreeMap;

use super::mistral::{KvCache, Mistral};
use super::ModelError;

/// Who a stored cache belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Owner {
    /// The last input scored for a candidate slot.
    Slot(u64),
    /// A prefix shared by inputs scored together.
    Prefix,
}

struct Entry {
    owner: Owner,
    ids: Vec<u32>,
    cache: KvCache,
    bytes: usize,
    used: u64,
}

/// Caches of earlier inputs and shared prefixes, least recently used out first once their
/// bytes pass the budget.
pub struct KvStore {
    entries: Vec<Entry>,
    budget: usize,
    max_prefixes: usize,
    clock: u64,
}

/// The default byte budget: about a dozen 300-token inputs of a 7B in f32.
pub const DEFAULT_KV_BUDGET: usize = 1 << 30;

impl KvStore {
    pub fn new(budget_bytes: usize) -> Self {
        Self {
            entries: Vec::new(),
            budget: budget_bytes,
            max_prefixes: 8,
            clock: 0,
        }
    }

    /// Bytes held by the stored keys and values.
    pub fn bytes(&self) -> usize {
        self.entries.iter().map(|e| e.bytes).sum()
    }

    pub fn budget(&self) -> usize {
        self.budget
    }

    /// How many caches are stored.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The slots whose last input is cached.
    pub fn slots(&self) -> Vec<u64> {
        self.entries
            .iter()
            .filter_map(|e| match e.owner {
                Owner::Slot(s) => Some(s),
                Owner::Prefix => None,
            })
            .collect()
    }

    /// The token ids whose cache is kept for `slot`.
    pub fn slot_ids(&self, slot: u64) -> Option<&[u32]> {
        self.entries
            .iter()
            .find(|e| e.owner == Owner::Slot(slot))
            .map(|e| e.ids.as_slice())
    }

    /// Drops the cache of a slot that no longer exists.
    pub fn forget_slot(&mut self, slot: u64) {
        self.entries.retain(|e| e.owner != Owner::Slot(slot));
    }

    pub fn clear(&mut self) {
        self.entries.clear();
    }

    fn tick(&mut self) -> u64 {
        self.clock += 1;
        self.clock
    }

    fn insert(&mut self, owner: Owner, ids: Vec<u32>, cache: KvCache) {
        let bytes = cache.bytes();
        if bytes > self.budget {
            return;
        }
        let used = self.tick();
        match owner {
            Owner::Slot(_) => self.entries.retain(|e| e.owner != owner),
            Owner::Prefix => {
                // The same prefix computed again (after an eviction race) replaces the old one.
                self.entries
                    .retain(|e| !(e.owner == Owner::Prefix && e.ids == ids));
                let prefixes = self
                    .entries
                    .iter()
                    .filter(|e| e.owner == Owner::Prefix)
                    .count();
                if prefixes >= self.max_prefixes {
                    self.evict_one(|e| e.owner == Owner::Prefix);
                }
            }
        }
        self.entries.push(Entry {
            owner,
            ids,
            cache,
            bytes,
            used,
        });
        while self.bytes() > self.budget {
            self.evict_one(|_| true);
        }
    }

    fn evict_one(&mut self, which: impl Fn(&Entry) -> bool) {
        if let Some(k) = self
            .entries
            .iter()
            .enumerate()
            .filter(|(_, e)| which(e))
            .min_by_key(|(_, e)| e.used)
            .map(|(k, _)| k)
        {
            self.entries.remove(k);
        }
    }
}

/// One input to score: its token ids, and the candidate slot whose cache it may reuse and
/// replace.
#[derive(Debug, Clone, Copy)]
pub struct Job<'a> {
    pub ids: &'a [u32],
    pub slot: Option<u64>,
}

/// How [`score`] plans its passes.
#[derive(Debug, Clone)]
pub struct ReuseOptions {
    /// Tokens fed for every input however much of it is cached: the template's tail. At least
    /// one, since the scores come from the last position.
    pub min_fed: usize,
    /// Most inputs in one forward pass.
    pub max_batch: usize,
    /// What one more forward pass costs, counted in tokens fed (it reads all the weights once).
    /// A prefix is computed on its own only when sharing it saves more than this, and inputs
    /// share a padded pass only while their padding costs less.
    pub pass_cost: usize,
    /// Keep each slot's cache for its next input.
    pub keep_slots: bool,
}

impl Default for ReuseOptions {
    fn default() -> Self {
        Self {
            min_fed: 1,
            max_batch: 8,
            pass_cost: 32,
            keep_slots: true,
        }
    }
}

/// What a call to [`score`] computed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReuseStats {
    /// Tokens in the inputs, all together.
    pub tokens: usize,
    /// Tokens fed to the model (shared prefixes once), padding not included.
    pub computed: usize,
    /// Padding fed to line up a batch.
    pub padding: usize,
    /// Forward passes run.
    pub passes: usize,
    /// Bytes held by the store afterwards.
    pub stored_bytes: usize,
}

/// Where a pass starts: nothing, a stored cache, or the output of an earlier prefix step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Source {
    Empty,
    Stored(usize),
    Step(usize),
}

/// One forward pass of a plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Extends the first `from_len` positions of `from` with `jobs[job].ids[from_len..len]`,
    /// giving a prefix cache that later steps continue.
    Prefix {
        from: Source,
        from_len: usize,
        job: usize,
        len: usize,
    },
    /// Scores `jobs` in one right-padded pass, each continuing the first `from_len` positions
    /// of `from`.
    Batch {
        from: Source,
        from_len: usize,
        jobs: Vec<usize>,
    },
}

fn lcp(a: &[u32], b: &[u32]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

struct Planner<'a> {
    jobs: &'a [Job<'a>],
    /// Positions of each job that may come from a cache (its length less the tail).
    caps: Vec<usize>,
    stored: &'a [&'a [u32]],
    opts: &'a ReuseOptions,
    steps: Vec<Step>,
    /// Each leaf job with the cache it continues.
    leaves: Vec<(usize, Source, usize)>,
}

impl Planner<'_> {
    fn ids(&self, j: usize) -> &[u32] {
        self.jobs[j].ids
    }

    /// The stored cache sharing the longest start with `ids[..limit]`.
    fn best_stored(&self, ids: &[u32], limit: usize) -> (Source, usize) {
        self.stored
            .iter()
            .enumerate()
            .map(|(k, s)| (k, lcp(s, &ids[..limit])))
            .filter(|&(_, l)| l > 0)
            // Longest first; among equals the most recently stored.
            .max_by_key(|&(k, l)| (l, k))
            .map_or((Source::Empty, 0), |(k, l)| (Source::Stored(k), l))
    }

    /// Walks the trie node holding `members` (which all share at least `base.1` tokens with
    /// `base`'s cache): computes the node's common prefix once when that pays, then splits the
    /// members by their next token.
    fn node(&mut self, mut members: Vec<usize>, mut base: (Source, usize)) {
        let first = members[0];
        if members.len() == 1 {
            self.leaves.push((first, base.0, base.1));
            return;
        }
        let common = members
            .iter()
            .map(|&j| lcp(self.ids(first), self.ids(j)).min(self.caps[j]))
            .min()
            .unwrap_or(0);
        let saved = (members.len() - 1) * common.saturating_sub(base.1);
        if common > base.1 && saved > self.opts.pass_cost {
            let stored = self.best_stored(self.ids(first), common);
            let from = if stored.1 > base.1 { stored } else { base };
            base = if from.1 == common {
                from
            } else {
                self.steps.push(Step::Prefix {
                    from: from.0,
                    from_len: from.1,
                    job: first,
                    len: common,
                });
                (Source::Step(self.steps.len() - 1), common)
            };
        }
        // Members that end at the common prefix are leaves here; the rest branch on their next
        // token (ordered, so that plans do not depend on hashing).
        let mut branches: BTreeMap<u32, Vec<usize>> = BTreeMap::new();
        members.retain(|&j| {
            if self.caps[j] > common {
                branches.entry(self.ids(j)[common]).or_default().push(j);
                false
            } else {
                true
            }
        });
        for j in members {
            self.leaves.push((j, base.0, base.1));
        }
        for (_, group) in branches {
            self.node(group, base);
        }
    }

    /// Turns the leaves into batches: each continues its node's prefix, or its own stored cache
    /// where that holds enough more to be worth a pass of its own.
    fn batches(&mut self) {
        let leaves = std::mem::take(&mut self.leaves);
        let mut groups: BTreeMap<(Source, usize), Vec<usize>> = BTreeMap::new();
        for &(j, src, len) in &leaves {
            let stored = self.best_stored(self.ids(j), self.caps[j]);
            let key = if stored.1 > len + self.opts.pass_cost {
                stored
            } else {
                (src, len)
            };
            groups.entry(key).or_default().push(j);
        }
        // An input alone in its pass takes whatever cache holds the most of it.
        let mut regrouped: BTreeMap<(Source, usize), Vec<usize>> = BTreeMap::new();
        for (key, jobs) in groups {
            let key = match jobs.as_slice() {
                &[j] => {
                    let stored = self.best_stored(self.ids(j), self.caps[j]);
                    if stored.1 > key.1 {
                        stored
                    } else {
                        key
                    }
                }
                _ => key,
            };
            regrouped.entry(key).or_default().extend(jobs);
        }
        for ((from, from_len), mut jobs) in regrouped {
            // Longest first; a new pass whenever the padding would cost more than the pass.
            jobs.sort_by_key(|&j| (std::cmp::Reverse(self.ids(j).len()), j));
            let mut chunk: Vec<usize> = Vec::new();
            for j in jobs {
                let longest = chunk.first().map_or(0, |&c| self.ids(c).len());
                let pad = longest.saturating_sub(self.ids(j).len());
                if !chunk.is_empty()
                    && (chunk.len() >= self.opts.max_batch.max(1) || pad > self.opts.pass_cost)
                {
                    self.steps.push(Step::Batch {
                        from,
                        from_len,
                        jobs: std::mem::take(&mut chunk),
                    });
                }
                chunk.push(j);
            }
            if !chunk.is_empty() {
                self.steps.push(Step::Batch {
                    from,
                    from_len,
                    jobs: chunk,
                });
            }
        }
    }
}

/// Plans the passes that score `jobs` (those listed in `todo`, each non-empty), given the ids
/// of the stored caches. Every job is fed at least `opts.min_fed` tokens.
pub fn plan(jobs: &[Job], todo: &[usize], stored: &[&[u32]], opts: &ReuseOptions) -> Vec<Step> {
    plan_within(jobs, todo, stored, opts, &|ids| ids.len())
}

/// [`plan`], where no more than `limit(ids)` first positions of an input come from a cache
/// (a head that reads rows before the tail needs them computed).
pub fn plan_within(
    jobs: &[Job],
    todo: &[usize],
    stored: &[&[u32]],
    opts: &ReuseOptions,
    limit: &dyn Fn(&[u32]) -> usize,
) -> Vec<Step> {
    let min_fed = opts.min_fed.max(1);
    let caps = jobs
        .iter()
        .map(|j| j.ids.len().saturating_sub(min_fed).min(limit(j.ids)))
        .collect();
    let mut p = Planner {
        jobs,
        caps,
        stored,
        opts,
        steps: Vec::new(),
        leaves: Vec::new(),
    };
    if !todo.is_empty() {
        p.node(todo.to_vec(), (Source::Empty, 0));
    }
    p.batches();
    p.steps
}

/// Scores `jobs` reusing what `store` holds, calling `done(job, result)` as each finishes
/// (scores in f32, one per label). Keeps the new prefix caches and, with `keep_slots`, each
/// slot's cache in `store`, also when cancelled part way, so that the work done is not lost.
/// Returns `Err(Cancelled)` when `stop()` turned true.
pub fn score(
    model: &Mistral,
    store: &mut KvStore,
    jobs: &[Job],
    opts: &ReuseOptions,
    stop: &dyn Fn() -> bool,
    done: &mut dyn FnMut(usize, Result<Vec<f32>, String>),
) -> Result<ReuseStats, ModelError> {
    let context = model.config().max_position_embeddings;
    let mut stats = ReuseStats::default();
    let mut todo = Vec::with_capacity(jobs.len());
    for (i, job) in jobs.iter().enumerate() {
        stats.tokens += job.ids.len();
        if job.ids.is_empty() {
            done(i, Err("cannot score an empty token sequence".into()));
        } else if job.ids.len() > context {
            done(
                i,
                Err(format!(
                    "{} tokens exceed the model's context of {context} positions",
                    job.ids.len()
                )),
            );
        } else {
            todo.push(i);
        }
    }
    let stored_ids: Vec<&[u32]> = store.entries.iter().map(|e| e.ids.as_slice()).collect();
    let steps = plan_within(jobs, &todo, &stored_ids, opts, &|ids| {
        model.reuse_limit(ids)
    });
    let stored: Vec<KvCache> = store.entries.iter().map(|e| e.cache.clone()).collect();
    let now = store.tick();
    for step in &steps {
        if let Step::Prefix {
            from: Source::Stored(k),
            ..
        }
        | Step::Batch {
            from: Source::Stored(k),
            ..
        } = step
        {
            store.entries[*k].used = now;
        }
    }
    let mut fresh: Vec<(Owner, Vec<u32>, KvCache)> = Vec::new();
    let outcome = run(
        model, jobs, opts, &steps, &stored, stop, done, &mut fresh, &mut stats,
    );
    for (owner, ids, cache) in fresh {
        store.insert(owner, ids, cache);
    }
    stats.stored_bytes = store.bytes();
    outcome.map(|()| stats)
}

#[allow(clippy::too_many_arguments)]
fn run(
    model: &Mistral,
    jobs: &[Job],
    opts: &ReuseOptions,
    steps: &[Step],
    stored: &[KvCache],
    stop: &dyn Fn() -> bool,
    done: &mut dyn FnMut(usize, Result<Vec<f32>, String>),
    fresh: &mut Vec<(Owner, Vec<u32>, KvCache)>,
    stats: &mut ReuseStats,
) -> Result<(), ModelError> {
    // The output of each prefix step, or why it failed (its dependents fail with it).
    let mut outputs: Vec<Option<Result<KvCache, String>>> = vec![None; steps.len()];
    let resolve = |outputs: &[Option<Result<KvCache, String>>],
                   from: Source,
                   len: usize|
     -> Result<Option<KvCache>, String> {
        let cache = match from {
            Source::Empty => return Ok(None),
            Source::Stored(k) => stored[k].clone(),
            Source::Step(s) => match &outputs[s] {
                Some(Ok(c)) => c.clone(),
                Some(Err(e)) => return Err(e.clone()),
                None => return Err("internal: a prefix was used before it was computed".into()),
            },
        };
        cache.truncate(len).map(Some).map_err(|e| e.to_string())
    };
    for (si, step) in steps.iter().enumerate() {
        match step {
            Step::Prefix {
                from,
                from_len,
                job,
                len,
            } => {
                let out = resolve(&outputs, *from, *from_len).and_then(|prefix| {
                    let ids = &jobs[*job].ids[*from_len..*len];
                    stats.passes += 1;
                    stats.computed += ids.len();
                    match model.prefill(prefix.as_ref(), ids, stop) {
                        Err(ModelError::Cancelled) => Ok(None),
                        Err(e) => Err(e.to_string()),
                        Ok(cache) => Ok(Some(cache)),
                    }
                });
                match out {
                    Ok(None) => return Err(ModelError::Cancelled),
                    Ok(Some(cache)) => {
                        fresh.push((
                            Owner::Prefix,
                            jobs[*job].ids[..*len].to_vec(),
                            cache.clone(),
                        ));
                        outputs[si] = Some(Ok(cache));
                    }
                    Err(e) => outputs[si] = Some(Err(e)),
                }
            }
            Step::Batch {
                from,
                from_len,
                jobs: members,
            } => {
                let prefix = match resolve(&outputs, *from, *from_len) {
                    Ok(p) => p,
                    Err(e) => {
                        for &j in members {
                            done(j, Err(e.clone()));
                        }
                        continue;
                    }
                };
                let seqs: Vec<&[u32]> =
                    members.iter().map(|&j| &jobs[j].ids[*from_len..]).collect();
                let longest = seqs.iter().map(|s| s.len()).max().unwrap_or(0);
                stats.passes += 1;
                stats.computed += seqs.iter().map(|s| s.len()).sum::<usize>();
                stats.padding += seqs.iter().map(|s| longest - s.len()).sum::<usize>();
                let keep = opts.keep_slots && members.iter().any(|&j| jobs[j].slot.is_some());
                let out = model
                    .forward(prefix.as_ref(), &seqs, keep, stop)
                    .and_then(|o| Ok((o.logits.to_vec2::<f32>()?, o.caches)));
                match out {
                    Err(ModelError::Cancelled) => return Err(ModelError::Cancelled),
                    Err(e) => {
                        let e = e.to_string();
                        for &j in members {
                            done(j, Err(e.clone()));
                        }
                    }
                    Ok((rows, caches)) => {
                        let mut caches = caches.map(|c| c.into_iter());
                        for (&j, row) in members.iter().zip(rows) {
                            let cache = caches.as_mut().and_then(|c| c.next());
                            if let (Some(slot), Some(cache)) = (jobs[j].slot, cache) {
                                fresh.push((Owner::Slot(slot), jobs[j].ids.to_vec(), cache));
                            }
                            done(j, Ok(row));
                        }
                    }
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(min_fed: usize, pass_cost: usize) -> ReuseOptions {
        ReuseOptions {
            min_fed,
            max_batch: 8,
            pass_cost,
            keep_slots: true,
        }
    }

    fn seq(prefix: &[u32], rest: &[u32]) -> Vec<u32> {
        prefix.iter().chain(rest).copied().collect()
    }

    fn jobs(ids: &[Vec<u32>]) -> Vec<Job<'_>> {
        ids.iter()
            .enumerate()
            .map(|(i, v)| Job {
                ids: v,
                slot: Some(i as u64),
            })
            .collect()
    }

    fn all(n: usize) -> Vec<usize> {
        (0..n).collect()
    }

    #[test]
    fn candidates_of_one_prompt_share_one_prefix_pass() {
        let prompt: Vec<u32> = (1..=200).collect();
        let ids: Vec<Vec<u32>> = (0..8u32)
            .map(|c| seq(&prompt, &[1000 + c, 7, 8, 9, 10]))
            .collect();
        let steps = plan(&jobs(&ids), &all(8), &[], &opts(4, 32));
        assert_eq!(
            steps,
            vec![
                Step::Prefix {
                    from: Source::Empty,
                    from_len: 0,
                    job: 0,
                    len: 200
                },
                Step::Batch {
                    from: Source::Step(0),
                    from_len: 200,
                    jobs: all(8)
                }
            ]
        );
    }

    #[test]
    fn the_tail_is_always_fed() {
        // Two inputs identical but for their last token: the shared part stops min_fed short.
        let a: Vec<u32> = (1..=100).collect();
        let mut b = a.clone();
        *b.last_mut().unwrap() = 999;
        let ids = vec![a, b];
        let steps = plan(&jobs(&ids), &all(2), &[], &opts(4, 8));
        assert!(
            matches!(steps[0], Step::Prefix { len: 96, .. }),
            "{steps:?}"
        );
        // An input that is a stored one's prefix still recomputes its last min_fed tokens.
        let stored: Vec<u32> = (1..=120).collect();
        let short: Vec<Vec<u32>> = vec![(1..=100).collect()];
        let steps = plan(&jobs(&short), &[0], &[&stored], &opts(4, 8));
        assert_eq!(
            steps,
            vec![Step::Batch {
                from: Source::Stored(0),
                from_len: 96,
                jobs: vec![0]
            }]
        );
    }

    #[test]
    fn an_edit_reuses_the_stored_start_of_the_input() {
        let old: Vec<u32> = (1..=300).collect();
        let other: Vec<u32> = (1..=50).collect();
        let mut new = old.clone();
        new[150] = 7777;
        let ids = vec![new];
        let steps = plan(&jobs(&ids), &[0], &[&other, &old], &opts(4, 32));
        assert_eq!(
            steps,
            vec![Step::Batch {
                from: Source::Stored(1),
                from_len: 150,
                jobs: vec![0]
            }]
        );
    }

    #[test]
    fn prompts_group_under_a_shared_template_head() {
        // Two prompts with three responses each, all under one 40-token head.
        let head: Vec<u32> = (1..=40).collect();
        let p1 = seq(&head, &(100..160).collect::<Vec<_>>());
        let p2 = seq(&head, &(200..260).collect::<Vec<_>>());
        let mut ids = Vec::new();
        for p in [&p1, &p2] {
            for r in 0..3u32 {
                ids.push(seq(p, &[5000 + r, 1, 2, 3, 4]));
            }
        }
        let steps = plan(&jobs(&ids), &all(6), &[], &opts(4, 32));
        assert_eq!(
            steps,
            vec![
                Step::Prefix {
                    from: Source::Empty,
                    from_len: 0,
                    job: 0,
                    len: 40
                },
                Step::Prefix {
                    from: Source::Step(0),
                    from_len: 40,
                    job: 0,
                    len: 100
                },
                Step::Prefix {
                    from: Source::Step(0),
                    from_len: 40,
                    job: 3,
                    len: 100
                },
                Step::Batch {
                    from: Source::Step(1),
                    from_len: 100,
                    jobs: vec![0, 1, 2]
                },
                Step::Batch {
                    from: Source::Step(2),
                    from_len: 100,
                    jobs: vec![3, 4, 5]
                },
            ]
        );
    }

    #[test]
    fn a_stored_prompt_prefix_is_continued_not_recomputed() {
        let prompt: Vec<u32> = (1..=200).collect();
        let old = seq(&prompt, &[42, 43, 44]);
        let ids: Vec<Vec<u32>> = (0..4u32).map(|c| seq(&prompt, &[900 + c, 5, 6])).collect();
        let steps = plan(&jobs(&ids), &all(4), &[&old], &opts(3, 32));
        assert_eq!(
            steps,
            vec![Step::Batch {
                from: Source::Stored(0),
                from_len: 200,
                jobs: all(4)
            }]
        );
    }

    #[test]
    fn padding_and_batch_size_split_passes() {
        let prompt: Vec<u32> = (1..=100).collect();
        let mut ids: Vec<Vec<u32>> = (0..3u32).map(|c| seq(&prompt, &[900 + c; 10])).collect();
        ids.push(seq(&prompt, &[999; 80]));
        let steps = plan(&jobs(&ids), &all(4), &[], &opts(1, 32));
        let batches: Vec<&Vec<usize>> = steps
            .iter()
            .filter_map(|s| match s {
                Step::Batch { jobs, .. } => Some(jobs),
                _ => None,
            })
            .collect();
        assert_eq!(batches, vec![&vec![3], &vec![0, 1, 2]]);
        let mut o = opts(1, 32);
        o.max_batch = 2;
        let ids: Vec<Vec<u32>> = (0..5u32).map(|c| seq(&prompt, &[900 + c; 4])).collect();
        let steps = plan(&jobs(&ids), &all(5), &[], &o);
        let sizes: Vec<usize> = steps
            .iter()
            .filter_map(|s| match s {
                Step::Batch { jobs, .. } => Some(jobs.len()),
                _ => None,
            })
            .collect();
        assert_eq!(sizes, vec![2, 2, 1]);
    }

    #[test]
    fn small_shared_starts_are_not_worth_a_pass() {
        let ids: Vec<Vec<u32>> = vec![seq(&[1, 2, 3], &[10; 50]), seq(&[1, 2, 3], &[20; 50])];
        let steps = plan(&jobs(&ids), &all(2), &[], &opts(1, 32));
        assert_eq!(
            steps,
            vec![Step::Batch {
                from: Source::Empty,
                from_len: 0,
                jobs: vec![0, 1]
            }]
        );
    }
}
