//! What can go wrong turning a pair into scores, by kind, so that the layers above can tell a
//! bad input from a broken model or an unreachable server without reading messages.

use crate::model::{ModelError, Setting};

/// Why one input (or a whole request) was not scored.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ScoreError {
    /// The text cannot become the model's input (the tokenizer failed, too long for the model).
    #[error("{0}")]
    Input(String),
    /// The model gave NaN or an infinity, which is never shown as a score.
    #[error("the model gave non-finite scores ({0}), never shown as scores; its weights or config may be broken")]
    NonFinite(String),
    /// The local model failed to compute.
    #[error("{0}")]
    Model(String),
    /// The server failed, was unreachable, or answered something unusable.
    #[error("{0}")]
    Remote(String),
    /// There is no model to score with (its load failed).
    #[error("the model is not loaded")]
    NotLoaded,
    /// Scoring panicked; the engine survived it.
    #[error("scoring panicked: {0}")]
    Panicked(String),
    /// A newer request came first.
    #[error("cancelled")]
    Cancelled,
}

impl From<ModelError> for ScoreError {
    fn from(e: ModelError) -> Self {
        match e {
            ModelError::Cancelled => ScoreError::Cancelled,
            ModelError::Input(m) => ScoreError::Input(m),
            other => ScoreError::Model(other.to_string()),
        }
    }
}

/// Why no backend could be made (the engine's load failure).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LoadError {
    /// The model's files could not be fetched or read, or the weights are unusable.
    #[error("{0}")]
    Model(String),
    /// The server could not be reached or serves something else.
    #[error("{0}")]
    Remote(String),
    /// A load option is out of range (the caller names the flag).
    #[error("{message}")]
    Setting { setting: Setting, message: String },
    /// The loader panicked; the engine survived it.
    #[error("the model loader panicked: {0}")]
    Panicked(String),
}

impl From<ModelError> for LoadError {
    fn from(e: ModelError) -> Self {
        match e {
            ModelError::Setting { setting, message } => LoadError::Setting { setting, message },
            other => LoadError::Model(other.to_string()),
        }
    }
}
