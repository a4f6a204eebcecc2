//! The model layer's errors: each names the file, tensor or value at fault, in words a user
//! can act on.

use std::path::{Path, PathBuf};

/// The load options a [`ModelError::Setting`] can be about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Setting {
    /// The longest input, in tokens.
    MaxTokens,
    /// How weights are held and products computed.
    DType,
}

/// Everything that can go wrong between a model directory and a score.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    // The io error is part of the message, not a `source`: chained error printers would show
    // it twice.
    #[error("{}: {error}", path.display())]
    Io {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("missing {what} ({})", path.display())]
    MissingFile { path: PathBuf, what: String },
    #[error("{} is {kind}, not a file ({what})", path.display())]
    NotAFile {
        path: PathBuf,
        what: String,
        kind: String,
    },
    #[error("bad config {}: {message}", path.display())]
    Config { path: PathBuf, message: String },
    #[error("bad checkpoint {}: {message}", path.display())]
    Checkpoint { path: PathBuf, message: String },
    #[error("config.json does not match the checkpoint: {0}")]
    ConfigMismatch(String),
    #[error("the checkpoint has no tensor `{name}` (expected shape {expected:?}){}", hint_unknown(.unknown))]
    MissingTensor {
        name: String,
        expected: Vec<usize>,
        unknown: Vec<String>,
    },
    #[error("tensor `{name}` has shape {found:?} in the checkpoint, but config.json implies {expected:?}")]
    ShapeMismatch {
        name: String,
        expected: Vec<usize>,
        found: Vec<usize>,
    },
    #[error("bad tokenizer {}: {message}", path.display())]
    Tokenizer { path: PathBuf, message: String },
    #[error("{0}")]
    Input(String),
    /// A load option the caller set is out of range; the caller knows what the user calls it.
    #[error("{message}")]
    Setting { setting: Setting, message: String },
    #[error("{0}")]
    Device(String),
    #[error("cancelled")]
    Cancelled,
    /// Weights kept in the cache file changed on disk after they were written.
    #[error("the weights kept in {} are damaged: tensor `{tensor}` fails its checksum", path.display())]
    DamagedCache { path: PathBuf, tensor: String },
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
}

fn hint_unknown(unknown: &[String]) -> String {
    if unknown.is_empty() {
        String::new()
    } else {
        let shown: Vec<&str> = unknown.iter().take(8).map(|s| s.as_str()).collect();
        let more = if unknown.len() > 8 {
            format!(" and {} more", unknown.len() - 8)
        } else {
            String::new()
        };
        format!(
            "; tensors the port does not know: {}{more}",
            shown.join(", ")
        )
    }
}

impl ModelError {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Self {
        ModelError::Io {
            path: path.to_path_buf(),
            error: source,
        }
    }
}
