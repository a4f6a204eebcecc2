//! One resolution of a hub model: the listing, which files to fetch, the cache check of what
//! is there, and each download with its retries, verification and publication.
//! Only `hub::fetch` and `hub::fetch_tokenizer` call this.

use std::collections::BTreeSet;
use std::io::IsTerminal;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use super::cache::RepoCache;
use super::checkpoint::{
    checkpoint_files, plan_weights, shard_names, WeightPlan, CONFIG, PT_INDEX, PT_SINGLE, REQUIRED,
    ST_INDEX, ST_SINGLE, TOKENIZER,
};
use super::download::{metadata, Failure};
use super::http::Hub;
use super::listing::InfoFailure;
use super::names::{is_plain_relative, shown};
use super::verify::check_file;
use super::{DownloadProgress, HubError, HubOptions, Located};
use crate::model::template::{CHAT_TEMPLATE_FILE, TOKENIZER_CONFIG_FILE};

/// Says what is happening: in the log, and on stderr when no terminal UI can be there.
pub(super) fn notify(message: &str) {
    tracing::warn!("{message}");
    if !std::io::stderr().is_terminal() {
        eprintln!("dpa-explorer: {message}");
    }
}

pub(super) struct Session<'a> {
    pub opts: &'a HubOptions,
    pub repo: &'a str,
    pub revision: &'a str,
    pub progress: &'a dyn Fn(DownloadProgress),
    /// Whether the weights are fetched and required too; without them, config and tokenizer
    /// only (the model runs elsewhere).
    pub weights: bool,
}

impl Session<'_> {
    pub(super) fn cache(&self) -> RepoCache {
        RepoCache {
            dir: self.opts.repo_cache_dir(self.repo),
        }
    }

    pub fn fetch(&self) -> Result<Located, HubError> {
        if self.opts.offline {
            return self.use_cache(
                "HF_HUB_OFFLINE is set".into(),
                "; unset HF_HUB_OFFLINE to download it",
                false,
            );
        }
        if tokio::runtime::Handle::try_current().is_ok() {
            return Err(HubError::Other(
                "hub downloads block: call hub::resolve from a plain thread, not from async code"
                    .into(),
            ));
        }
        let hub = Hub::new(self.opts).map_err(HubError::Other)?;
        let info = match self.info(&hub) {
            Ok(info) => info,
            Err(InfoFailure::Unreachable(why)) => {
                return self.use_cache(
                    format!("cannot reach {} ({why})", self.opts.endpoint),
                    "",
                    true,
                )
            }
            Err(InfoFailure::Fatal(e)) => return Err(e),
        };
        let commit = info.sha;
        let cache = self.cache();
        let snapshot = cache.snapshot(&commit);
        let names: BTreeSet<&str> = info.siblings.iter().map(|s| s.rfilename.as_str()).collect();
        for (name, what) in REQUIRED {
            if !names.contains(name) {
                return Err(self.missing_in_repo(what.into()));
            }
        }
        let mut downloaded = Vec::new();
        // The chat template lives in these when the model has one.
        let templates: Vec<String> = [TOKENIZER_CONFIG_FILE, CHAT_TEMPLATE_FILE]
            .into_iter()
            .filter(|n| names.contains(n))
            .map(String::from)
            .collect();
        let mut list = match plan_weights(names.iter().copied()) {
            // Whatever weights the repository has (or lacks) are not wanted.
            _ if !self.weights => vec![CONFIG.to_string(), TOKENIZER.to_string()],
            None => {
                return Err(self.missing_in_repo(format!(
                    "weights: none of {ST_SINGLE}, {ST_INDEX}, {PT_SINGLE} or {PT_INDEX} is there"
                )))
            }
            Some(WeightPlan::Single(w)) => vec![CONFIG.to_string(), TOKENIZER.to_string(), w],
            Some(WeightPlan::Index(index)) => {
                // The index names the shards, so it comes first; it is small, and reported
                // (as done) once the number of files is known.
                self.ensure(&hub, &commit, &index, None, &mut downloaded)?;
                let shards = shard_names(&snapshot.join(&index))
                    .map_err(|e| HubError::Other(format!("`{}`: bad {index}: {e}", self.repo)))?;
                if let Some(absent) = shards.iter().find(|s| !names.contains(s.as_str())) {
                    return Err(
                        self.missing_in_repo(format!("{absent}, a weight shard named by {index}"))
                    );
                }
                let mut list = vec![index, CONFIG.to_string(), TOKENIZER.to_string()];
                list.extend(shards);
                list
            }
        };
        // Small files first: the template files go after the tokenizer.
        let at = list
            .iter()
            .position(|n| n == TOKENIZER)
            .map_or(list.len(), |i| i + 1);
        list.splice(at..at, templates);
        for (i, name) in list.iter().enumerate() {
            self.ensure(&hub, &commit, name, Some((i, list.len())), &mut downloaded)?;
        }
        // Lets offline runs find this commit by the revision's name.
        cache.write_ref(self.revision, &commit).map_err(|e| {
            HubError::Other(format!(
                "writing the cache {}: {e}",
                self.opts.cache_dir.display()
            ))
        })?;
        tracing::info!(
            "{}@{} is commit {commit}; downloaded {} file(s) into {}",
            self.repo,
            self.revision,
            downloaded.len(),
            snapshot.display()
        );
        Ok(Located {
            dir: snapshot,
            commit: Some(commit),
            downloaded,
            note: None,
        })
    }

    pub(super) fn missing_in_repo(&self, what: String) -> HubError {
        HubError::MissingInRepo {
            repo: self.repo.into(),
            revision: self.revision.into(),
            what,
        }
    }

    /// The cached snapshot for the revision, complete for what is asked, without asking the
    /// hub; every file asked for is checked against its blob's hash (once per blob).
    fn use_cache(
        &self,
        why: String,
        hint: &'static str,
        fallback: bool,
    ) -> Result<Located, HubError> {
        let cache = self.cache();
        let not_cached = |missing: String| HubError::NotCached {
            why: why.clone(),
            model: format!("`{}` at revision `{}`", self.repo, self.revision),
            missing,
            cache: cache.dir.clone(),
            hint,
        };
        let Some((commit, snapshot)) = super::cache::cached_snapshot(&cache.dir, self.revision)
        else {
            return Err(not_cached("nothing is cached for this revision".into()));
        };
        let (present, missing) = checkpoint_files(&snapshot, self.weights);
        if !missing.is_empty() {
            return Err(not_cached(format!("missing {}", missing.join(", "))));
        }
        for name in &present {
            if let Err(problem) = cache.check_entry(&snapshot, name) {
                return Err(HubError::CorruptCache {
                    file: snapshot.join(name),
                    problem,
                    remedy: format!(
                        "delete it and its blob (or the folder {}), then run again {}",
                        cache.dir.display(),
                        if fallback {
                            format!("when {} can be reached", self.opts.endpoint)
                        } else {
                            "without HF_HUB_OFFLINE to download it again".to_string()
                        }
                    ),
                });
            }
        }
        let note = fallback.then(|| {
            format!(
                "{why}; using the cached copy of {} at revision {} (commit {commit})",
                self.repo, self.revision
            )
        });
        Ok(Located {
            dir: snapshot,
            commit: Some(commit),
            downloaded: Vec::new(),
            note,
        })
    }

    /// Makes `name` present, checked, in the snapshot of `commit`, downloading it (with
    /// retries) when it is not. `place` is its (index, count) in the list for progress;
    /// `None` reports nothing.
    fn ensure(
        &self,
        hub: &Hub,
        commit: &str,
        name: &str,
        place: Option<(usize, usize)>,
        downloaded: &mut Vec<String>,
    ) -> Result<(), HubError> {
        if !is_plain_relative(name) {
            return Err(HubError::Other(format!(
                "`{}` names a file outside the repository: {}",
                self.repo,
                shown(name)
            )));
        }
        let shown_so_far = AtomicU64::new(0);
        let report = |bytes: u64, total: u64| {
            if let Some((index, files)) = place {
                // Never backwards, even when a retry resumes behind a chunk already counted.
                let bytes = shown_so_far
                    .fetch_max(bytes.min(total), Ordering::Relaxed)
                    .max(bytes.min(total));
                (self.progress)(DownloadProgress {
                    file: name.to_string(),
                    index,
                    files,
                    bytes,
                    total,
                })
            }
        };
        let cache = self.cache();
        let snapshot = cache.snapshot(commit);
        let target = snapshot.join(name);
        match cache.check_entry(&snapshot, name) {
            Ok(()) => {
                let size = std::fs::metadata(&target).map(|m| m.len()).unwrap_or(0);
                report(size, size);
                return Ok(());
            }
            Err(problem) => {
                if std::fs::symlink_metadata(&target).is_ok() {
                    notify(&format!(
                        "the cached {name} of {} is unusable ({problem}); downloading it again",
                        self.repo
                    ));
                    if let super::cache::Entry::Blob(hash) = cache.entry(&snapshot, name) {
                        let _ = std::fs::remove_file(cache.blob(&hash));
                    }
                    if let Err(e) = std::fs::remove_file(&target) {
                        return Err(HubError::Other(format!(
                            "cannot replace the cached {}: {e}",
                            target.display()
                        )));
                    }
                }
            }
        }
        let meta = self.with_retries(name, &mut Instant::now(), |_| {
            let rt = runtime().map_err(Failure::Fatal)?;
            rt.block_on(metadata(
                hub,
                self.repo,
                self.revision,
                name,
                self.opts.request_timeout,
            ))
        })?;
        if meta.commit != commit {
            return Err(HubError::Other(format!(
                "`{}` changed while downloading ({name} came from commit {} instead of \
                 {commit}); run again",
                self.repo, meta.commit
            )));
        }
        let blob = cache.blob(&meta.hash);
        if blob.is_file() {
            // The same bytes are already cached (for another revision, say): link them once
            // they are checked.
            match check_file(&blob, &meta.hash, Some(meta.size)) {
                Ok(()) => {
                    super::verify::stamp(&cache.dir, &meta.hash, &blob);
                    cache
                        .link(&snapshot, name, &meta.hash)
                        .map_err(|e| self.cache_error(name, e))?;
                    report(meta.size, meta.size);
                    return Ok(());
                }
                Err(m) => {
                    notify(&format!(
                        "the cached blob {} is unusable ({m}); downloading it again",
                        blob.display()
                    ));
                    let _ = std::fs::remove_file(&blob);
                }
            }
        }
        self.download(hub, &cache, &snapshot, name, &meta, &report)?;
        downloaded.push(name.to_string());
        Ok(())
    }

    pub(super) fn cache_error(&self, name: &str, e: std::io::Error) -> HubError {
        HubError::Other(format!(
            "writing {name} into the cache {}: {e}",
            self.opts.cache_dir.display()
        ))
    }

    /// Runs `attempt` until it succeeds, fails for good, the retries are spent or the hub
    /// has been silent for `max_idle` in all; each retry is announced.
    pub(super) fn with_retries<T>(
        &self,
        name: &str,
        last_byte: &mut Instant,
        mut attempt: impl FnMut(&mut Instant) -> Result<T, Failure>,
    ) -> Result<T, HubError> {
        let mut tries = 0usize;
        loop {
            let why = match attempt(last_byte) {
                Ok(v) => return Ok(v),
                Err(Failure::Fatal(e)) => return Err(e),
                Err(Failure::Status(status, code)) => {
                    return Err(self.http_error(status, code.as_deref(), Some(name)))
                }
                Err(Failure::Retry(why)) => why,
            };
            let wait = self
                .opts
                .retry_delay
                .saturating_mul(2u32.saturating_pow(tries.min(16) as u32));
            let idle = last_byte.elapsed();
            let out_of_time = idle.saturating_add(wait) >= self.opts.max_idle;
            if tries >= self.opts.retries || out_of_time {
                let limit = if out_of_time && tries < self.opts.retries {
                    format!(
                        "; nothing received for {}s in all, the limit (DPA_HUB_TIMEOUT) is {}s",
                        idle.as_secs(),
                        self.opts.max_idle.as_secs()
                    )
                } else {
                    String::new()
                };
                return Err(HubError::Download {
                    repo: self.repo.into(),
                    file: name.into(),
                    message: format!(
                        "{why} (after {} attempt(s){limit}; run again to resume from what was saved)",
                        tries + 1
                    ),
                });
            }
            notify(&format!(
                "downloading {name} from {}: {why}; retrying in {wait:?} (attempt {} of {})",
                self.repo,
                tries + 2,
                self.opts.retries + 1
            ));
            std::thread::sleep(wait);
            tries += 1;
        }
    }
}

pub(super) fn runtime() -> Result<tokio::runtime::Runtime, HubError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| HubError::Other(format!("cannot start the download runtime: {e}")))
}
