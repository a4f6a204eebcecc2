//! Effects: the I/O the reducer asks for (scoring, saving, opening, exporting, autosave),
//! as data, and the scorer that carries out the scoring ones. `perform` carries them out.

use std::path::PathBuf;

use crate::engine::{RequestId, ScoreItem};

use super::session::{Export, Session};

/// I/O the reducer asks for. Each is carried out by `perform::perform`, which files the outcome
/// with the state (so every effect is testable with a stand-in scorer and a temp dir).
#[derive(Debug, Clone)]
pub enum Effect {
    /// Send these texts for scoring; `revisions` (in item order) is what the answers belong to.
    Score {
        items: Vec<ScoreItem>,
        revisions: Vec<u64>,
    },
    /// Send this candidate's text for its prefix scores; the answer belongs to `revision`.
    Trajectory {
        slot: u64,
        revision: u64,
        prompt: String,
        response: String,
    },
    /// The candidate of this slot is gone.
    Forget(u64),
    /// Load the model again (after a failed load).
    Reload,
    /// Save the session under `path`; never creates directories.
    Save { path: PathBuf, session: Session },
    /// Open the session file at `path`, replacing the texts.
    Open { path: PathBuf },
    /// Write `export` to `path`; a file already there is replaced only with `replace` (else
    /// the user is asked first).
    Export {
        path: PathBuf,
        export: Export,
        replace: bool,
    },
    /// Write the autosave file.
    Autosave { path: PathBuf, session: Session },
    /// Write the user's presets; `done` is the message on success.
    SavePresets { done: String },
    /// Keeps the measured scoring rates for the next start's estimate.
    SaveRates,
}

/// Whatever scores text for the explorer: the engine, or a stand-in in tests.
pub trait Scorer {
    /// Asks for `items` to be scored; supersedes every earlier request.
    fn score(&mut self, items: Vec<ScoreItem>) -> RequestId;
    /// Asks for the prefix scores of `response`, cut after every word; supersedes every
    /// earlier request. A scorer without trajectories never answers (the view keeps
    /// saying it is computing).
    fn trajectory(&mut self, _slot: u64, _prompt: String, _response: String) -> RequestId {
        0
    }
    /// The candidate of `slot` is gone: whatever is kept for it can go.
    fn forget(&mut self, _slot: u64) {}
    /// Loads the model again after a failed load; false when this scorer cannot.
    fn reload(&mut self) -> bool {
        false
    }
}

impl Scorer for crate::engine::Engine {
    fn score(&mut self, items: Vec<ScoreItem>) -> RequestId {
        crate::engine::Engine::score(self, items)
    }

    fn trajectory(&mut self, slot: u64, prompt: String, response: String) -> RequestId {
        let every = crate::scoring::Every::Word;
        crate::engine::Engine::trajectory(self, slot, prompt, response, every)
    }

    fn forget(&mut self, slot: u64) {
        crate::engine::Engine::forget(self, slot)
    }
}
