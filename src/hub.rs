//! Where a model comes from: a local directory or a Hugging Face Hub repository.
//!
//! Hub models are downloaded with hf-hub into the standard cache (`$HF_HOME/hub`, the
//! `blobs/` + `snapshots/<commit>/` + `refs/<revision>` layout that huggingface_hub and
//! transformers share), so a model fetched by either is found by the other. Downloads are
//! chunked and resumable, report progress, are retried when the connection drops and checked
//! against their SHA-256 where the hub gives one. Only the files the model layer reads are
//! fetched: never remote code such as `modeling_*.py`.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::io::Read;
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hf_hub::api::tokio::{Api, ApiBuilder, ApiError, Progress};
use hf_hub::{Cache, Repo, RepoType};
use sha2::{Digest, Sha256};

use crate::model::{ModelError, ModelFiles};

/// The model the app loads when none is named.
pub const DEFAULT_MODEL: &str = "RLHFlow/RewardModel-Mistral-7B-for-DPA-v1";

/// The public hub.
pub const DEFAULT_ENDPOINT: &str = "https://huggingface.co";

const CONFIG: &str = "config.json";
const TOKENIZER: &str = "tokenizer.json";
const ST_INDEX: &str = "model.safetensors.index.json";
const ST_SINGLE: &str = "model.safetensors";
const PT_INDEX: &str = "pytorch_model.bin.index.json";
const PT_SINGLE: &str = "pytorch_model.bin";

#[derive(Debug, thiserror::Error)]
pub enum HubError {
    #[error("{0}")]
    Model(#[from] ModelError),
    /// `--model`/`--revision` name nothing usable.
    #[error("{0}")]
    Source(String),
    #[error("repository `{repo}` was not found on {endpoint}: check the name{}", if *.has_token {
        "; if it is private, check that HF_TOKEN belongs to an account that can read it"
    } else {
        "; if it is private, set HF_TOKEN"
    })]
    RepoNotFound {
        repo: String,
        endpoint: String,
        has_token: bool,
    },
    #[error("revision `{revision}` was not found in `{repo}` (a branch, tag or commit of the repository)")]
    RevisionNotFound { repo: String, revision: String },
    #[error("`{repo}` is gated: accept its conditions at {endpoint}/{repo}, then {}", if *.has_token {
        "check that HF_TOKEN belongs to that account (the current token has no access)"
    } else {
        "set HF_TOKEN to an access token of that account"
    })]
    Gated {
        repo: String,
        endpoint: String,
        has_token: bool,
    },
    /// The hub was not used (offline, or unreachable) and the cache lacks files.
    #[error("{why}, and the cache has no complete copy of {model}: {missing} (cache: {}){hint}", cache.display())]
    NotCached {
        why: String,
        /// `` `owner/name` at revision `rev` ``
        model: String,
        missing: String,
        cache: PathBuf,
        hint: &'static str,
    },
    /// The repository lacks a file the model needs.
    #[error("`{repo}` at revision `{revision}` has no {what}")]
    MissingInRepo {
        repo: String,
        revision: String,
        what: String,
    },
    #[error("downloading {file} from `{repo}` failed: {message}")]
    Download {
        repo: String,
        file: String,
        message: String,
    },
    #[error("{0}")]
    Other(String),
}

/// A model named on the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModelSource {
    Local(PathBuf),
    Hub { repo: String, revision: String },
}

impl ModelSource {
    /// An existing directory is local; `name` or `owner/name` is a hub repository (at
    /// `revision`, default `main`). Anything that looks like a path but is not a directory is
    /// refused rather than sent to the hub.
    pub fn parse(model: &str, revision: Option<&str>) -> Result<Self, HubError> {
        if let Some(rev) = revision {
            check_revision(rev)?;
        }
        let path = expand_home(model);
        if path.is_dir() {
            if let Some(rev) = revision {
                return Err(HubError::Source(format!(
                    "--revision {rev} applies to hub models, but {model} is a local directory"
                )));
            }
            return Ok(ModelSource::Local(path));
        }
        if looks_like_path(model) {
            return Err(HubError::Source(if path.exists() {
                format!("not a model directory: {model} is a file (give the directory that holds config.json)")
            } else {
                format!("no such model directory: {model}")
            }));
        }
        if !is_repo_id(model) {
            return Err(HubError::Source(format!(
                "`{model}` is neither a model directory nor a hub repository id \
                 (`name` or `owner/name`, with letters, digits, `-`, `_` and `.`)"
            )));
        }
        Ok(ModelSource::Hub {
            repo: model.to_string(),
            revision: revision.unwrap_or("main").to_string(),
        })
    }
}

fn expand_home(s: &str) -> PathBuf {
    match (s.strip_prefix("~/"), home_dir()) {
        (Some(rest), Some(home)) => home.join(rest),
        _ if s == "~" => home_dir().unwrap_or_else(|| PathBuf::from(s)),
        _ => PathBuf::from(s),
    }
}

fn looks_like_path(s: &str) -> bool {
    s.starts_with(['/', '.', '~'])
        || s.ends_with('/')
        || s.contains('\\')
        || s.matches('/').count() > 1
}

/// The hub's rule for repository ids: one or two parts of `[A-Za-z0-9._-]`, not starting or
/// ending with `-` or `.`, without `--` or `..`.
pub fn is_repo_id(s: &str) -> bool {
    let parts: Vec<&str> = s.split('/').collect();
    parts.len() <= 2
        && parts.iter().all(|p| {
            !p.is_empty()
                && p.len() <= 96
                && p.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
                && !p.starts_with(['-', '.'])
                && !p.ends_with(['-', '.'])
                && !p.contains("--")
                && !p.contains("..")
        })
}

/// A revision becomes a path under `refs/` in the cache, so it must not climb out of it.
fn check_revision(rev: &str) -> Result<(), HubError> {
    let ok = !rev.is_empty()
        && !rev
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == '\\')
        && rev
            .split('/')
            .all(|p| !p.is_empty() && p != "." && p != "..");
    if ok {
        Ok(())
    } else {
        Err(HubError::Source(format!(
            "`{rev}` is not a valid revision (a branch, tag or commit)"
        )))
    }
}

/// Hub settings, normally from the environment (the variables huggingface_hub reads).
#[derive(Clone)]
pub struct HubOptions {
    /// `HF_ENDPOINT`, without a trailing `/`.
    pub endpoint: String,
    /// The hub cache: `HF_HUB_CACHE`, else `$HF_HOME/hub`.
    pub cache_dir: PathBuf,
    /// `HF_TOKEN`, else the token file `huggingface-cli login` writes.
    pub token: Option<String>,
    /// `HF_HUB_OFFLINE`: use the cache only.
    pub offline: bool,
    /// Bytes per ranged request; a download resumes from the last whole chunk.
    pub chunk_size: usize,
    /// Chunks in flight at once.
    pub parallel: usize,
    /// Further attempts at a file after a dropped connection or a server error.
    pub retries: usize,
    /// Wait before the first retry; doubled for each further one.
    pub retry_delay: Duration,
    /// A download that receives nothing for this long is abandoned (and retried).
    pub stall_timeout: Duration,
    /// Limit for the repository listing request.
    pub request_timeout: Duration,
}

impl std::fmt::Debug for HubOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HubOptions")
            .field("endpoint", &self.endpoint)
            .field("cache_dir", &self.cache_dir)
            .field("token", &self.token.as_ref().map(|_| "<set>"))
            .field("offline", &self.offline)
            .field("chunk_size", &self.chunk_size)
            .field("parallel", &self.parallel)
            .field("retries", &self.retries)
            .field("retry_delay", &self.retry_delay)
            .field("stall_timeout", &self.stall_timeout)
            .field("request_timeout", &self.request_timeout)
            .finish()
    }
}

impl Default for HubOptions {
    /// The public hub and the default cache, no token, online; the environment is not read.
    fn default() -> Self {
        Self::with_cache(default_hf_home(None, home_dir()).join("hub"))
    }
}

impl HubOptions {
    /// The public hub with the given cache directory, no token, online.
    pub fn with_cache(cache_dir: PathBuf) -> Self {
        Self {
            endpoint: DEFAULT_ENDPOINT.to_string(),
            cache_dir,
            token: None,
            offline: false,
            chunk_size: 10_000_000,
            parallel: 4,
            retries: 3,
            retry_delay: Duration::from_secs(1),
            stall_timeout: Duration::from_secs(60),
            request_timeout: Duration::from_secs(30),
        }
    }

    pub fn from_env() -> Self {
        Self::from_vars(|k| std::env::var(k).ok(), home_dir())
    }

    /// [`HubOptions::from_env`] over any variable lookup (empty values count as unset).
    pub fn from_vars(var: impl Fn(&str) -> Option<String>, home: Option<PathBuf>) -> Self {
        let var = |k: &str| var(k).filter(|v| !v.trim().is_empty());
        let expand = |v: String| match (v.strip_prefix("~/"), &home) {
            (Some(rest), Some(h)) => h.join(rest),
            _ => PathBuf::from(v),
        };
        let hf_home = match var("HF_HOME") {
            Some(h) => expand(h),
            None => default_hf_home(var("XDG_CACHE_HOME").map(expand), home.clone()),
        };
        let cache_dir = var("HF_HUB_CACHE")
            .or_else(|| var("HUGGINGFACE_HUB_CACHE"))
            .map(expand)
            .unwrap_or_else(|| hf_home.join("hub"));
        let token = var("HF_TOKEN")
            .or_else(|| var("HUGGING_FACE_HUB_TOKEN"))
            .or_else(|| {
                let path = var("HF_TOKEN_PATH")
                    .map(expand)
                    .unwrap_or_else(|| hf_home.join("token"));
                std::fs::read_to_string(path).ok()
            })
            .map(|t| t.trim().to_string())
            .filter(|t| !t.is_empty());
        let offline = var("HF_HUB_OFFLINE").is_some_and(|v| {
            matches!(
                v.trim().to_ascii_lowercase().as_str(),
                "1" | "true" | "yes" | "on"
            )
        });
        let mut opts = Self::with_cache(cache_dir);
        if let Some(endpoint) = var("HF_ENDPOINT") {
            opts.endpoint = endpoint.trim().trim_end_matches('/').to_string();
        }
        opts.token = token;
        opts.offline = offline;
        opts
    }

    /// The cache folder of one model repository (`models--owner--name`).
    pub fn repo_cache_dir(&self, repo: &str) -> PathBuf {
        self.cache_dir
            .join(Repo::new(repo.to_string(), RepoType::Model).folder_name())
    }
}

fn home_dir() -> Option<PathBuf> {
    directories::BaseDirs::new().map(|d| d.home_dir().to_path_buf())
}

fn default_hf_home(xdg_cache: Option<PathBuf>, home: Option<PathBuf>) -> PathBuf {
    xdg_cache
        .or_else(|| home.map(|h| h.join(".cache")))
        .unwrap_or_else(std::env::temp_dir)
        .join("huggingface")
}

/// Progress of a download: `bytes` of `total` of `file`, the `index`-th (from 0) of `files`.
/// Files already in the cache are reported once, complete.
#[derive(Debug, Clone, PartialEq)]
pub struct DownloadProgress {
    pub file: String,
    pub index: usize,
    pub files: usize,
    pub bytes: u64,
    pub total: u64,
}

/// A model's files and how they were obtained.
#[derive(Debug, Clone, PartialEq)]
pub struct Resolved {
    pub files: ModelFiles,
    /// The hub commit the files belong to (hub models only).
    pub commit: Option<String>,
    /// Files fetched from the hub by this call.
    pub downloaded: Vec<String>,
    /// Set when the hub could not be reached and the cached copy was used: says so and why.
    pub note: Option<String>,
}

/// The local files of a model, downloading what is missing. Blocks; call it from a plain
/// thread, not from inside an async runtime.
pub fn resolve(
    source: &ModelSource,
    opts: &HubOptions,
    progress: &dyn Fn(DownloadProgress),
) -> Result<ModelFiles, HubError> {
    let resolved = fetch(source, opts, progress)?;
    if let Some(note) = &resolved.note {
        tracing::warn!("{note}");
    }
    Ok(resolved.files)
}

/// Like [`resolve`], with what happened on the way.
pub fn fetch(
    source: &ModelSource,
    opts: &HubOptions,
    progress: &dyn Fn(DownloadProgress),
) -> Result<Resolved, HubError> {
    match source {
        ModelSource::Local(dir) => Ok(Resolved {
            files: ModelFiles::from_dir(dir)?,
            commit: None,
            downloaded: Vec::new(),
            note: None,
        }),
        ModelSource::Hub { repo, revision } => {
            check_revision(revision)?;
            Session {
                opts,
                repo,
                revision,
                progress,
            }
            .fetch()
        }
    }
}

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

/// The shard files a shard index names, each once, in name order.
fn shard_names(index: &Path) -> Result<Vec<String>, String> {
    let text = std::fs::read_to_string(index).map_err(|e| e.to_string())?;
    let parsed: ShardIndex =
        serde_json::from_str(&text).map_err(|e| format!("not a valid shard index: {e}"))?;
    let names: BTreeSet<String> = parsed.weight_map.into_values().collect();
    for n in &names {
        if !is_plain_relative(n) {
            return Err(format!("it names a shard outside the repository: {n:?}"));
        }
    }
    Ok(names.into_iter().collect())
}

/// A path inside a repository: relative, no `..`, nothing odd. File names become cache paths.
fn is_plain_relative(name: &str) -> bool {
    !name.is_empty()
        && !name.contains('\\')
        && Path::new(name)
            .components()
            .all(|c| matches!(c, Component::Normal(_)))
}

fn is_commit(s: &str) -> bool {
    (7..=64).contains(&s.len()) && s.chars().all(|c| c.is_ascii_hexdigit())
}

/// The snapshot a revision points to in a repository's cache folder: `refs/<revision>`, or the
/// revision itself when it is a commit with a snapshot.
pub fn cached_snapshot(repo_dir: &Path, revision: &str) -> Option<(String, PathBuf)> {
    if let Ok(commit) = std::fs::read_to_string(repo_dir.join("refs").join(revision)) {
        let commit = commit.trim();
        let dir = repo_dir.join("snapshots").join(commit);
        if is_commit(commit) && dir.is_dir() {
            return Some((commit.to_string(), dir));
        }
    }
    let dir = repo_dir.join("snapshots").join(revision);
    (is_commit(revision) && dir.is_dir()).then(|| (revision.to_string(), dir))
}

/// What a model directory lacks, by file name; empty when it is complete.
pub fn missing_files(dir: &Path) -> Vec<String> {
    let mut missing = Vec::new();
    for name in [CONFIG, TOKENIZER] {
        if !dir.join(name).is_file() {
            missing.push(name.to_string());
        }
    }
    let index = [ST_INDEX, ST_SINGLE, PT_INDEX, PT_SINGLE]
        .into_iter()
        .find(|n| dir.join(n).is_file());
    match index {
        Some(index) if index.ends_with(".index.json") => match shard_names(&dir.join(index)) {
            Ok(shards) => missing.extend(shards.into_iter().filter(|s| !dir.join(s).is_file())),
            Err(e) => missing.push(format!("a readable {index} ({e})")),
        },
        Some(_) => {}
        None => missing.push(format!(
            "the weights ({ST_SINGLE}, or {ST_INDEX} with its shards)"
        )),
    }
    missing
}

/// Counts what hf-hub reports about one file's download.
#[derive(Clone, Default)]
struct Tracker {
    bytes: Arc<AtomicU64>,
    total: Arc<AtomicU64>,
}

impl Progress for Tracker {
    async fn init(&mut self, size: usize, _filename: &str) {
        self.total.store(size as u64, Ordering::Relaxed);
        self.bytes.store(0, Ordering::Relaxed);
    }
    async fn update(&mut self, size: usize) {
        self.bytes.fetch_add(size as u64, Ordering::Relaxed);
    }
    async fn finish(&mut self) {}
}

/// Why one download attempt failed.
enum Failure {
    /// The connection dropped, stalled or the server erred: try again (it resumes).
    Retry(String),
    Fatal(HubError),
}

/// Why the repository listing failed.
enum InfoFailure {
    /// No answer, or a server error: the cache may stand in.
    Unreachable(String),
    Fatal(HubError),
}

#[derive(serde::Deserialize)]
struct RepoInfo {
    sha: String,
    #[serde(default)]
    siblings: Vec<Sibling>,
}

#[derive(serde::Deserialize)]
struct Sibling {
    rfilename: String,
}

/// One resolution of a hub model.
struct Session<'a> {
    opts: &'a HubOptions,
    repo: &'a str,
    revision: &'a str,
    progress: &'a dyn Fn(DownloadProgress),
}

impl Session<'_> {
    fn fetch(&self) -> Result<Resolved, HubError> {
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
        let info = match self.info() {
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
        let snapshot = self.repo_dir().join("snapshots").join(&commit);
        let names: BTreeSet<&str> = info.siblings.iter().map(|s| s.rfilename.as_str()).collect();
        for (name, what) in [
            (CONFIG, "config.json"),
            (TOKENIZER, "tokenizer.json (the fast tokenizer file)"),
        ] {
            if !names.contains(name) {
                return Err(self.missing_in_repo(what.into()));
            }
        }
        let mut downloaded = Vec::new();
        let list = match plan_weights(names.iter().copied()) {
            None => {
                return Err(self.missing_in_repo(format!(
                    "weights: none of {ST_SINGLE}, {ST_INDEX}, {PT_SINGLE} or {PT_INDEX} is there"
                )))
            }
            Some(WeightPlan::Single(w)) => vec![CONFIG.to_string(), TOKENIZER.to_string(), w],
            Some(WeightPlan::Index(index)) => {
                // The index names the shards, so it comes first; it is small, and reported
                // (as done) once the number of files is known.
                self.ensure(&snapshot, &index, None, &mut downloaded)?;
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
        for (i, name) in list.iter().enumerate() {
            self.ensure(&snapshot, name, Some((i, list.len())), &mut downloaded)?;
        }
        // Lets offline runs find this commit by the revision's name.
        Cache::new(self.opts.cache_dir.clone())
            .repo(self.hf_repo())
            .create_ref(&commit)
            .map_err(|e| {
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
        Ok(Resolved {
            files: ModelFiles::from_dir(&snapshot)?,
            commit: Some(commit),
            downloaded,
            note: None,
        })
    }

    fn repo_dir(&self) -> PathBuf {
        self.opts.repo_cache_dir(self.repo)
    }

    fn hf_repo(&self) -> Repo {
        Repo::with_revision(
            self.repo.to_string(),
            RepoType::Model,
            self.revision.to_string(),
        )
    }

    fn missing_in_repo(&self, what: String) -> HubError {
        HubError::MissingInRepo {
            repo: self.repo.into(),
            revision: self.revision.into(),
            what,
        }
    }

    /// The complete cached snapshot for the revision, without asking the hub.
    fn use_cache(
        &self,
        why: String,
        hint: &'static str,
        fallback: bool,
    ) -> Result<Resolved, HubError> {
        let repo_dir = self.repo_dir();
        let not_cached = |missing: String| HubError::NotCached {
            why: why.clone(),
            model: format!("`{}` at revision `{}`", self.repo, self.revision),
            missing,
            cache: repo_dir.clone(),
            hint,
        };
        let Some((commit, snapshot)) = cached_snapshot(&repo_dir, self.revision) else {
            return Err(not_cached("nothing is cached for this revision".into()));
        };
        let missing = missing_files(&snapshot);
        if !missing.is_empty() {
            return Err(not_cached(format!("missing {}", missing.join(", "))));
        }
        let note = fallback.then(|| {
            format!(
                "{why}; using the cached copy of {} at revision {} (commit {commit})",
                self.repo, self.revision
            )
        });
        Ok(Resolved {
            files: ModelFiles::from_dir(&snapshot)?,
            commit: Some(commit),
            downloaded: Vec::new(),
            note,
        })
    }

    fn api(&self) -> Result<Api, HubError> {
        ApiBuilder::from_cache(Cache::new(self.opts.cache_dir.clone()))
            .with_endpoint(self.opts.endpoint.clone())
            .with_token(self.opts.token.clone())
            .with_progress(false)
            .with_chunk_size(Some(self.opts.chunk_size.max(1)))
            .with_max_files(self.opts.parallel.max(1))
            .with_user_agent("dpa-explorer", env!("CARGO_PKG_VERSION"))
            .build()
            .map_err(|e| HubError::Other(format!("cannot set up the hub client: {e}")))
    }

    /// The repository's commit for the revision and its file list.
    fn info(&self) -> Result<RepoInfo, InfoFailure> {
        let rt = runtime().map_err(InfoFailure::Fatal)?;
        let api = self.api().map_err(InfoFailure::Fatal)?;
        let request = api
            .repo(self.hf_repo())
            .info_request()
            .timeout(self.opts.request_timeout);
        let (status, code, body) = rt.block_on(async {
            let response = request
                .send()
                .await
                .map_err(|e| InfoFailure::Unreachable(root_cause(&e)))?;
            let status = response.status().as_u16();
            let code = response
                .headers()
                .get("x-error-code")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            let body = response
                .bytes()
                .await
                .map_err(|e| InfoFailure::Unreachable(root_cause(&e)))?;
            Ok((status, code, body))
        })?;
        if status >= 500 {
            return Err(InfoFailure::Unreachable(format!(
                "server error HTTP {status}"
            )));
        }
        if !(200..300).contains(&status) {
            return Err(InfoFailure::Fatal(self.http_error(
                status,
                code.as_deref(),
                None,
            )));
        }
        let info: RepoInfo = serde_json::from_slice(&body).map_err(|e| {
            InfoFailure::Fatal(HubError::Other(format!(
                "{} did not answer like a Hugging Face hub for `{}`: {e}",
                self.opts.endpoint, self.repo
            )))
        })?;
        if !is_commit(&info.sha) {
            return Err(InfoFailure::Fatal(HubError::Other(format!(
                "{} gave `{}` as the commit of `{}`, which is not a commit hash",
                self.opts.endpoint, info.sha, self.repo
            ))));
        }
        Ok(info)
    }

    fn http_error(&self, status: u16, code: Option<&str>, file: Option<&str>) -> HubError {
        let has_token = self.opts.token.is_some();
        match (status, code, file) {
            (_, Some("GatedRepo"), _) | (403, _, _) => HubError::Gated {
                repo: self.repo.into(),
                endpoint: self.opts.endpoint.clone(),
                has_token,
            },
            (_, Some("RevisionNotFound"), _) => HubError::RevisionNotFound {
                repo: self.repo.into(),
                revision: self.revision.into(),
            },
            (404, Some("EntryNotFound"), Some(f)) | (404, None, Some(f)) => {
                self.missing_in_repo(f.to_string())
            }
            (401 | 404, _, _) => HubError::RepoNotFound {
                repo: self.repo.into(),
                endpoint: self.opts.endpoint.clone(),
                has_token,
            },
            _ => HubError::Other(format!(
                "{} answered HTTP {status} for `{}`{}",
                self.opts.endpoint,
                self.repo,
                file.map(|f| format!(" file {f}")).unwrap_or_default()
            )),
        }
    }

    /// Makes `name` present in the snapshot, downloading (and retrying) when it is not.
    /// `place` is its (index, count) in the list for progress; `None` reports nothing.
    fn ensure(
        &self,
        snapshot: &Path,
        name: &str,
        place: Option<(usize, usize)>,
        downloaded: &mut Vec<String>,
    ) -> Result<(), HubError> {
        let report = |bytes: u64, total: u64| {
            if let Some((index, files)) = place {
                (self.progress)(DownloadProgress {
                    file: name.to_string(),
                    index,
                    files,
                    bytes: bytes.min(total),
                    total,
                })
            }
        };
        let target = snapshot.join(name);
        if let Ok(meta) = std::fs::metadata(&target) {
            if meta.is_file() {
                report(meta.len(), meta.len());
                return Ok(());
            }
        }
        // A link whose blob was deleted would block the new link.
        if target.symlink_metadata().is_ok() {
            let _ = std::fs::remove_file(&target);
        }
        let mut attempt = 0;
        loop {
            let failure = match self.download_once(name, &report) {
                Ok(path) if path != target => {
                    return Err(HubError::Other(format!(
                        "`{}` changed while downloading ({name} came from another commit \
                         than {}); run again",
                        self.repo,
                        snapshot
                            .file_name()
                            .map(|s| s.to_string_lossy())
                            .unwrap_or_default()
                    )))
                }
                Ok(path) => match verify(&path) {
                    Ok(()) => {
                        let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
                        report(size, size);
                        downloaded.push(name.to_string());
                        return Ok(());
                    }
                    Err(why) => Failure::Retry(why),
                },
                Err(f) => f,
            };
            match failure {
                Failure::Fatal(e) => return Err(e),
                Failure::Retry(why) if attempt < self.opts.retries => {
                    let wait = self.opts.retry_delay * 2u32.saturating_pow(attempt as u32);
                    tracing::warn!(
                        "downloading {name} from {}: {why}; retrying in {wait:?} (attempt {} of {})",
                        self.repo,
                        attempt + 2,
                        self.opts.retries + 1
                    );
                    std::thread::sleep(wait);
                    attempt += 1;
                }
                Failure::Retry(why) => {
                    return Err(HubError::Download {
                        repo: self.repo.into(),
                        file: name.into(),
                        message: format!(
                            "{why} (after {} attempt(s); run again to resume from what was saved)",
                            attempt + 1
                        ),
                    })
                }
            }
        }
    }

    /// One try at downloading `name` into the cache. Its own runtime, so that when the try
    /// ends every request it started is cancelled with it.
    fn download_once(&self, name: &str, report: &dyn Fn(u64, u64)) -> Result<PathBuf, Failure> {
        let rt = runtime().map_err(Failure::Fatal)?;
        let api = self.api().map_err(Failure::Fatal)?;
        let repo = api.repo(self.hf_repo());
        let tracker = Tracker::default();
        let download = repo.download_with_progress(name, tracker.clone());
        let outcome = rt.block_on(watch(download, &tracker, report, self.opts.stall_timeout));
        match outcome {
            Some(Ok(path)) => Ok(path),
            Some(Err(e)) => Err(self.download_failure(e, name)),
            None => Err(Failure::Retry(format!(
                "nothing received for {:?}",
                self.opts.stall_timeout
            ))),
        }
    }

    fn download_failure(&self, e: ApiError, name: &str) -> Failure {
        match e {
            ApiError::RequestError(err) => match err.status() {
                Some(s) if s.is_server_error() => Failure::Retry(format!("server error {s}")),
                Some(s) => Failure::Fatal(self.http_error(s.as_u16(), None, Some(name))),
                None => Failure::Retry(root_cause(&err)),
            },
            ApiError::TooManyRetries(inner) => Failure::Retry(inner.to_string()),
            ApiError::MissingHeader(h) | ApiError::InvalidHeader(h) => {
                Failure::Fatal(HubError::Other(format!(
                    "{} did not answer like a Hugging Face hub for {name} (header {h} missing \
                     or invalid); check HF_ENDPOINT",
                    self.opts.endpoint
                )))
            }
            ApiError::IoError(io) => Failure::Fatal(HubError::Other(format!(
                "writing {name} into the cache {}: {io}",
                self.opts.cache_dir.display()
            ))),
            ApiError::LockAcquisition(lock) => Failure::Fatal(HubError::Other(format!(
                "another process is downloading {name} (lock {}); wait for it to finish",
                lock.display()
            ))),
            other => Failure::Fatal(HubError::Download {
                repo: self.repo.into(),
                file: name.into(),
                message: other.to_string(),
            }),
        }
    }
}

fn runtime() -> Result<tokio::runtime::Runtime, HubError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| HubError::Other(format!("cannot start the download runtime: {e}")))
}

/// Runs a download, reporting its progress every 100 ms; `None` when nothing arrived for
/// `stall` (the download is then dropped, with the requests it made).
async fn watch<T>(
    download: impl Future<Output = T>,
    tracker: &Tracker,
    report: &dyn Fn(u64, u64),
    stall: Duration,
) -> Option<T> {
    tokio::pin!(download);
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last = (u64::MAX, u64::MAX);
    let mut last_change = Instant::now();
    loop {
        tokio::select! {
            out = &mut download => return Some(out),
            _ = tick.tick() => {
                let now = (
                    tracker.bytes.load(Ordering::Relaxed),
                    tracker.total.load(Ordering::Relaxed),
                );
                if now != last {
                    last = now;
                    last_change = Instant::now();
                    if now.1 > 0 {
                        report(now.0, now.1);
                    }
                } else if last_change.elapsed() > stall {
                    return None;
                }
            }
        }
    }
}

/// Checks a downloaded file against its SHA-256 when the hub named one (the blob name is the
/// file's etag, which for large files is their SHA-256). A mismatch removes the file.
fn verify(pointer: &Path) -> Result<(), String> {
    let blob = match std::fs::read_link(pointer) {
        Ok(rel) => pointer.parent().unwrap_or(Path::new(".")).join(rel),
        Err(_) => pointer.to_path_buf(),
    };
    let etag = blob
        .file_name()
        .map(|s| s.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    if etag.len() != 64 || !etag.chars().all(|c| c.is_ascii_hexdigit()) {
        return Ok(());
    }
    let digest = sha256_file(&blob).map_err(|e| format!("reading {}: {e}", blob.display()))?;
    if digest == etag {
        return Ok(());
    }
    let _ = std::fs::remove_file(pointer);
    let _ = std::fs::remove_file(&blob);
    Err(format!(
        "the downloaded file is corrupt (SHA-256 {digest}, expected {etag})"
    ))
}

fn sha256_file(path: &Path) -> std::io::Result<String> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

/// The innermost cause of a transport error, which is the informative part
/// (`Connection refused`, `failed to lookup address`, `operation timed out`).
fn root_cause(e: &dyn std::error::Error) -> String {
    let mut deepest = e;
    while let Some(s) = deepest.source() {
        deepest = s;
    }
    deepest.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directories_are_local_and_ids_go_to_the_hub() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().to_str().unwrap();
        assert_eq!(
            ModelSource::parse(d, None).unwrap(),
            ModelSource::Local(dir.path().to_path_buf())
        );
        assert_eq!(
            ModelSource::parse("org/tiny", None).unwrap(),
            ModelSource::Hub {
                repo: "org/tiny".into(),
                revision: "main".into()
            }
        );
        assert_eq!(
            ModelSource::parse("gpt2", Some("v1.0")).unwrap(),
            ModelSource::Hub {
                repo: "gpt2".into(),
                revision: "v1.0".into()
            }
        );
        assert_eq!(
            ModelSource::parse(DEFAULT_MODEL, Some("refs/pr/1")).unwrap(),
            ModelSource::Hub {
                repo: DEFAULT_MODEL.into(),
                revision: "refs/pr/1".into()
            }
        );
    }

    #[test]
    fn paths_that_do_not_exist_are_refused_not_sent_to_the_hub() {
        for p in [
            "/no/such/model",
            "./model",
            "../model",
            "~/no-such-dpa-model",
            "a/b/c",
            "models/",
        ] {
            let e = ModelSource::parse(p, None).unwrap_err().to_string();
            assert_eq!(e, format!("no such model directory: {p}"));
        }
        let file = tempfile::NamedTempFile::new().unwrap();
        let f = file.path().to_str().unwrap();
        let e = ModelSource::parse(f, None).unwrap_err().to_string();
        assert!(e.contains("is a file"), "{e}");
    }

    #[test]
    fn malformed_ids_and_revisions_are_refused() {
        for id in [
            "org/my model",
            "org/-x",
            "a--b/c",
            "org/x..y",
            "org/",
            "x@y",
            "",
        ] {
            let e = ModelSource::parse(id, None).unwrap_err().to_string();
            assert!(
                e.contains("neither a model directory nor a hub repository id")
                    || e.contains("no such model directory"),
                "{id}: {e}"
            );
        }
        for rev in ["", "../../etc", "a b", "x/./y"] {
            let e = ModelSource::parse("org/x", Some(rev))
                .unwrap_err()
                .to_string();
            assert!(e.contains("not a valid revision"), "{rev}: {e}");
        }
        let dir = tempfile::tempdir().unwrap();
        let e = ModelSource::parse(dir.path().to_str().unwrap(), Some("v2"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("applies to hub models"), "{e}");
    }

    fn vars(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: BTreeMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn environment_is_read_as_huggingface_hub_reads_it() {
        let home = PathBuf::from("/home/u");
        let o = HubOptions::from_vars(vars(&[]), Some(home.clone()));
        assert_eq!(o.endpoint, DEFAULT_ENDPOINT);
        assert_eq!(o.cache_dir, home.join(".cache/huggingface/hub"));
        assert!(o.token.is_none());
        assert!(!o.offline);

        let o = HubOptions::from_vars(
            vars(&[("XDG_CACHE_HOME", "/xdg"), ("HF_HUB_OFFLINE", "0")]),
            Some(home.clone()),
        );
        assert_eq!(o.cache_dir, PathBuf::from("/xdg/huggingface/hub"));
        assert!(!o.offline);

        let o = HubOptions::from_vars(
            vars(&[
                ("HF_HOME", "~/hf"),
                ("HF_ENDPOINT", "http://127.0.0.1:9/"),
                ("HF_TOKEN", " hf_abc\n"),
                ("HF_HUB_OFFLINE", "True"),
            ]),
            Some(home.clone()),
        );
        assert_eq!(o.cache_dir, home.join("hf/hub"));
        assert_eq!(o.endpoint, "http://127.0.0.1:9");
        assert_eq!(o.token.as_deref(), Some("hf_abc"));
        assert!(o.offline);
        assert!(
            !format!("{o:?}").contains("hf_abc"),
            "token must not be logged"
        );

        let hf_home = tempfile::tempdir().unwrap();
        std::fs::write(hf_home.path().join("token"), "hf_from_file\n").unwrap();
        let h = hf_home.path().to_str().unwrap();
        let o = HubOptions::from_vars(
            vars(&[
                ("HF_HOME", h),
                ("HF_HUB_CACHE", "/elsewhere"),
                ("HF_HUB_OFFLINE", "yes"),
            ]),
            None,
        );
        assert_eq!(o.cache_dir, PathBuf::from("/elsewhere"));
        assert_eq!(o.token.as_deref(), Some("hf_from_file"));
        assert!(o.offline);
        let o = HubOptions::from_vars(vars(&[("HF_HOME", h), ("HF_TOKEN", "")]), None);
        assert_eq!(
            o.token.as_deref(),
            Some("hf_from_file"),
            "empty HF_TOKEN is unset"
        );
        assert_eq!(
            o.repo_cache_dir("org/tiny"),
            hf_home.path().join("hub/models--org--tiny")
        );
    }

    #[test]
    fn weights_are_chosen_as_on_disk() {
        let plan = |names: &[&str]| plan_weights(names.iter().copied());
        assert_eq!(
            plan(&[
                "pytorch_model.bin",
                "model.safetensors",
                "model.safetensors.index.json"
            ]),
            Some(WeightPlan::Index(ST_INDEX.into()))
        );
        assert_eq!(
            plan(&["pytorch_model.bin", "model.safetensors"]),
            Some(WeightPlan::Single(ST_SINGLE.into()))
        );
        assert_eq!(
            plan(&["pytorch_model.bin", "pytorch_model.bin.index.json"]),
            Some(WeightPlan::Index(PT_INDEX.into()))
        );
        assert_eq!(
            plan(&["pytorch_model.bin", "modeling_custom.py"]),
            Some(WeightPlan::Single(PT_SINGLE.into()))
        );
        assert_eq!(plan(&["config.json", "model.gguf"]), None);
    }

    #[test]
    fn cache_layout_is_followed_and_gaps_are_named() {
        let repo = tempfile::tempdir().unwrap();
        let commit = "0123456789abcdef0123456789abcdef01234567";
        assert!(cached_snapshot(repo.path(), "main").is_none());
        let snap = repo.path().join("snapshots").join(commit);
        std::fs::create_dir_all(&snap).unwrap();
        std::fs::create_dir_all(repo.path().join("refs")).unwrap();
        std::fs::write(repo.path().join("refs/main"), format!("{commit}\n")).unwrap();
        assert_eq!(
            cached_snapshot(repo.path(), "main"),
            Some((commit.to_string(), snap.clone()))
        );
        assert_eq!(
            cached_snapshot(repo.path(), commit),
            Some((commit.to_string(), snap.clone()))
        );
        assert!(cached_snapshot(repo.path(), "v2").is_none());

        assert_eq!(
            missing_files(&snap),
            [
                "config.json",
                "tokenizer.json",
                "the weights (model.safetensors, or model.safetensors.index.json with its shards)"
            ]
        );
        std::fs::write(snap.join(CONFIG), "{}").unwrap();
        std::fs::write(snap.join(TOKENIZER), "{}").unwrap();
        std::fs::write(
            snap.join(ST_INDEX),
            r#"{"weight_map": {"a": "s-1.safetensors", "b": "s-2.safetensors", "c": "s-1.safetensors"}}"#,
        )
        .unwrap();
        std::fs::write(snap.join("s-1.safetensors"), "").unwrap();
        assert_eq!(missing_files(&snap), ["s-2.safetensors"]);
        std::fs::write(snap.join("s-2.safetensors"), "").unwrap();
        assert!(missing_files(&snap).is_empty());
        std::fs::write(snap.join(ST_INDEX), r#"{"weight_map": {"a": "../x"}}"#).unwrap();
        assert!(missing_files(&snap)[0].contains("outside the repository"));
    }
}
