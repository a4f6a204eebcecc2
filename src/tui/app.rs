//! The explorer as the event loop and the tests drive it: the state ([`Explorer`]) with a
//! scorer. An event becomes an action (`keys`), the reducer applies it and returns effects,
//! and `perform` carries them out. Used by `tui::run`, the tests and the benches.

use std::time::Instant;

use crossterm::event::KeyEventKind;

use super::effects::Effect;
use super::keys;
use super::perform;

pub use super::effects::Scorer;
pub use super::explorer::*;
pub use super::state::*;

/// The state and whatever scores for it.
pub struct App {
    pub state: Explorer,
    scorer: Box<dyn Scorer>,
}

impl std::ops::Deref for App {
    type Target = Explorer;
    fn deref(&self) -> &Explorer {
        &self.state
    }
}

impl std::ops::DerefMut for App {
    fn deref_mut(&mut self) -> &mut Explorer {
        &mut self.state
    }
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.state.fmt(f)
    }
}

impl App {
    pub fn new(config: AppConfig, scorer: Box<dyn Scorer>) -> Self {
        App {
            state: Explorer::new(config),
            scorer,
        }
    }

    /// Applies one event and carries out the effects it asks for. `now` is passed in so
    /// tests control time.
    pub fn handle(&mut self, event: Event, now: Instant) {
        let effects = match event {
            Event::Key(key) if key.kind == KeyEventKind::Release => return,
            Event::Key(key) => {
                let action = keys::key_action(&self.state, key);
                self.state.apply(action, now)
            }
            Event::Mouse(m) => {
                let action = keys::mouse_action(&self.state, m);
                self.state.apply(action, now)
            }
            other => self.state.event(other, now),
        };
        self.perform(effects, now);
    }

    /// Applies an action and carries out its effects.
    pub fn apply(&mut self, action: Action, now: Instant) {
        let effects = self.state.apply(action, now);
        self.perform(effects, now);
    }

    /// Carries out effects, and any that their outcomes ask for in turn.
    pub fn perform(&mut self, mut effects: Vec<Effect>, now: Instant) {
        while !effects.is_empty() {
            for e in effects {
                perform::perform(&mut self.state, self.scorer.as_mut(), e, now);
            }
            effects = std::mem::take(&mut self.state.effects);
        }
    }

    /// Where the explorer starts from (session file, autosave or demo samples).
    pub fn restore_start(&mut self, now: Instant) {
        perform::restore_start(&mut self.state, now);
    }

    /// Writes the autosave file now, if there is one.
    pub fn autosave(&mut self, now: Instant) {
        let effects = self.state.autosave().into_iter().collect();
        self.perform(effects, now);
    }

    /// Replaces the scorer (the model is loaded again with a new engine).
    pub fn set_scorer(&mut self, scorer: Box<dyn Scorer>) {
        self.scorer = scorer;
    }
}

#[cfg(test)]
#[path = "app_tests.rs"]
pub(crate) mod tests;

#[cfg(test)]
#[path = "reducer_tests.rs"]
mod reducer_tests;

#[cfg(test)]
#[path = "export_tests.rs"]
mod export_tests;

#[cfg(test)]
#[path = "direction_tests.rs"]
mod direction_tests;

#[cfg(test)]
#[path = "load_tests.rs"]
mod load_tests;
