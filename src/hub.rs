//! Where a model comes from: a local directory or a Hugging Face Hub repository (downloaded
//! into the standard cache with progress and resume).

use std::path::PathBuf;

use crate::model::{ModelError, ModelFiles};

/// The model the app loads when none is named.
pub const DEFAULT_MODEL: &str = "RLHFlow/RewardModel-Mistral-7B-for-DPA-v1";

#[derive(Debug, thiserror::Error)]
pub enum HubError {
    #[error("{0}")]
    Model(#[from] ModelError),
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
    /// A directory that exists is local; `owner/name` is a hub repository.
    pub fn parse(model: &str, revision: Option<&str>) -> Result<Self, HubError> {
        let path = PathBuf::from(model);
        if path.is_dir() {
            return Ok(ModelSource::Local(path));
        }
        Ok(ModelSource::Hub {
            repo: model.to_string(),
            revision: revision.unwrap_or("main").to_string(),
        })
    }
}

/// Hub settings, normally from the environment.
#[derive(Debug, Clone, Default)]
pub struct HubOptions {}

impl HubOptions {
    pub fn from_env() -> Self {
        Self {}
    }
}

/// Progress of a download.
#[derive(Debug, Clone, PartialEq)]
pub struct DownloadProgress {
    pub file: String,
    pub index: usize,
    pub files: usize,
    pub bytes: u64,
    pub total: u64,
}

/// The local files of a model, downloading what is missing.
pub fn resolve(
    source: &ModelSource,
    _opts: &HubOptions,
    _progress: &dyn Fn(DownloadProgress),
) -> Result<ModelFiles, HubError> {
    match source {
        ModelSource::Local(dir) => Ok(ModelFiles::from_dir(dir)?),
        ModelSource::Hub { repo, .. } => Err(HubError::Other(format!(
            "hub download of {repo} is not implemented yet"
        ))),
    }
}
