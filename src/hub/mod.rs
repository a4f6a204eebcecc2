//! Where a model comes from: a local directory or a Hugging Face Hub repository.
//!
//! Hub models are downloaded into the standard cache (`$HF_HOME/hub`, the `blobs/` +
//! `snapshots/<commit>/` + `refs/<revision>` layout that huggingface_hub and transformers
//! share), so a model fetched by either is found by the other. The hub is not trusted: every
//! value it sends that becomes a path or a size is checked (`names`), the token goes to its
//! own origin only (`http`), and every file is checked against the size and hash it gave
//! before it enters a snapshot (`verify`, `cache`). Downloads are chunked and resumable,
//! report progress and are retried within a bounded wait (`download`, `session`). Only the
//! files the model layer reads are fetched (`checkpoint`): never remote code.
//!
//! Why not the `hf-hub` crate: both 0.4 and its 1.x rewrite join the server's ETag, commit
//! and file names into cache paths without checking them, and 0.4 sends the token wherever a
//! redirect points. Owning this layer (reqwest, and the cache layout above) is what keeps
//! every write inside `HF_HUB_CACHE`.
//!
//! Callers: the CLI and the engine, through [`fetch`], [`resolve`] and [`HubOptions`]; a model
//! scored elsewhere (its weights on a remote server) through [`fetch_tokenizer`], which fetches
//! only config and tokenizer.

mod cache;
mod checkpoint;
mod download;
mod env;
mod http;
mod listing;
mod names;
mod session;
mod verify;

use std::path::{Path, PathBuf};

pub use cache::cached_snapshot;
pub use checkpoint::{missing_files, plan_weights, WeightPlan};
pub use env::{HubOptions, DEFAULT_TIMEOUT_S};

use crate::model::{files::require_file, ModelError, ModelFiles};
use env::home_dir;

/// The model the app loads when none is named.
pub const DEFAULT_MODEL: &str = "RLHFlow/RewardModel-Mistral-7B-for-DPA-v1";

/// The public hub.
pub const DEFAULT_ENDPOINT: &str = "https://huggingface.co";

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
    /// A cached file is not what its blob name says (or not a blob of the cache).
    #[error("the cached {} is unusable: {problem}; {remedy}", file.display())]
    CorruptCache {
        file: PathBuf,
        problem: String,
        remedy: String,
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

/// The config and tokenizer of a model whose weights are not needed here, and how they were
/// obtained (as in [`Resolved`]).
#[derive(Debug, Clone, PartialEq)]
pub struct TokenizerFiles {
    pub config: PathBuf,
    pub tokenizer: PathBuf,
    pub templates: crate::model::TemplateFiles,
    pub commit: Option<String>,
    pub downloaded: Vec<String>,
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
    let found = locate(source, opts, progress, true)?;
    Ok(Resolved {
        files: ModelFiles::from_dir(&found.dir)?,
        commit: found.commit,
        downloaded: found.downloaded,
        note: found.note,
    })
}

/// Like [`fetch`], but only `config.json` and `tokenizer.json` are fetched and required: the
/// weights are neither downloaded nor looked for, here or in the cache. Blocks as `fetch` does.
pub fn fetch_tokenizer(
    source: &ModelSource,
    opts: &HubOptions,
    progress: &dyn Fn(DownloadProgress),
) -> Result<TokenizerFiles, HubError> {
    let found = locate(source, opts, progress, false)?;
    let [config, tokenizer] = tokenizer_files(&found.dir)?;
    Ok(TokenizerFiles {
        config,
        tokenizer,
        templates: crate::model::TemplateFiles::in_dir(&found.dir),
        commit: found.commit,
        downloaded: found.downloaded,
        note: found.note,
    })
}

/// Config and tokenizer of the model in `dir`, checked as `ModelFiles::from_dir` checks them
/// (which would also demand the weights).
fn tokenizer_files(dir: &Path) -> Result<[PathBuf; 2], ModelError> {
    if !dir.is_dir() {
        return Err(ModelError::MissingFile {
            path: dir.to_path_buf(),
            what: "model directory".into(),
        });
    }
    let [config, tokenizer] =
        checkpoint::REQUIRED.map(|(name, what)| require_file(&dir.join(name), what));
    Ok([config?, tokenizer?])
}

/// The directory that holds the model's files (a local one as given, or the hub snapshot
/// made complete), before they are picked out of it.
struct Located {
    dir: PathBuf,
    commit: Option<String>,
    downloaded: Vec<String>,
    note: Option<String>,
}

/// Where `source`'s files are; a hub model's are fetched, with the weights only when `weights`.
fn locate(
    source: &ModelSource,
    opts: &HubOptions,
    progress: &dyn Fn(DownloadProgress),
    weights: bool,
) -> Result<Located, HubError> {
    match source {
        ModelSource::Local(dir) => Ok(Located {
            dir: dir.clone(),
            commit: None,
            downloaded: Vec::new(),
            note: None,
        }),
        ModelSource::Hub { repo, revision } => {
            check_revision(revision)?;
            if !is_repo_id(repo) {
                return Err(HubError::Source(format!(
                    "`{repo}` is not a hub repository id (`name` or `owner/name`)"
                )));
            }
            session::Session {
                opts,
                repo,
                revision,
                progress,
                weights,
            }
            .fetch()
        }
    }
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
            "../no-such-dpa-model",
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

    #[test]
    fn tokenizer_files_need_a_directory_with_both_files_and_no_weights() {
        let dir = tempfile::tempdir().unwrap();
        let e = tokenizer_files(dir.path()).unwrap_err().to_string();
        assert!(e.starts_with("missing config.json ("), "{e}");
        std::fs::write(dir.path().join("config.json"), "{}").unwrap();
        let e = tokenizer_files(dir.path()).unwrap_err().to_string();
        assert!(
            e.starts_with("missing tokenizer.json (the fast tokenizer file) ("),
            "{e}"
        );
        std::fs::create_dir(dir.path().join("tokenizer.json")).unwrap();
        let e = tokenizer_files(dir.path()).unwrap_err().to_string();
        assert!(e.contains("not a file"), "{e}");
        std::fs::remove_dir(dir.path().join("tokenizer.json")).unwrap();
        std::fs::write(dir.path().join("tokenizer.json"), "{}").unwrap();
        assert_eq!(
            tokenizer_files(dir.path()).unwrap(),
            [
                dir.path().join("config.json"),
                dir.path().join("tokenizer.json")
            ]
        );
        let e = tokenizer_files(&dir.path().join("config.json"))
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("missing model directory ("), "{e}");
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
            Some(WeightPlan::Index("model.safetensors.index.json".into()))
        );
        assert_eq!(
            plan(&["pytorch_model.bin", "model.safetensors"]),
            Some(WeightPlan::Single("model.safetensors".into()))
        );
        assert_eq!(
            plan(&["pytorch_model.bin", "pytorch_model.bin.index.json"]),
            Some(WeightPlan::Index("pytorch_model.bin.index.json".into()))
        );
        assert_eq!(
            plan(&["pytorch_model.bin", "modeling_custom.py"]),
            Some(WeightPlan::Single("pytorch_model.bin".into()))
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
        assert_eq!(
            checkpoint::checkpoint_files(&snap, false),
            (vec![], vec!["config.json".into(), "tokenizer.json".into()])
        );
        std::fs::write(snap.join("config.json"), "{}").unwrap();
        std::fs::write(snap.join("tokenizer.json"), "{}").unwrap();
        // Without the weights, config and tokenizer are the whole of it.
        assert_eq!(
            checkpoint::checkpoint_files(&snap, false),
            (vec!["config.json".into(), "tokenizer.json".into()], vec![])
        );
        std::fs::write(
            snap.join("model.safetensors.index.json"),
            r#"{"weight_map": {"a": "s-1.safetensors", "b": "s-2.safetensors", "c": "s-1.safetensors"}}"#,
        )
        .unwrap();
        std::fs::write(snap.join("s-1.safetensors"), "").unwrap();
        assert_eq!(missing_files(&snap), ["s-2.safetensors"]);
        std::fs::write(snap.join("s-2.safetensors"), "").unwrap();
        assert!(missing_files(&snap).is_empty());
        std::fs::write(
            snap.join("model.safetensors.index.json"),
            r#"{"weight_map": {"a": "../x"}}"#,
        )
        .unwrap();
        assert!(missing_files(&snap)[0].contains("outside the model directory"));
    }
}
