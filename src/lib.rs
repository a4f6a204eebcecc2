//! dpa-explorer: explore the DPA multi-objective reward model from a terminal.
//!
//! Layers, bottom up: [`model`] (the reward model in candle), [`hub`] (where a model comes
//! from: a directory or the Hugging Face Hub), [`engine`] (the model on its own thread),
//! [`preference`] (directions and scales, pure functions), [`tui`] (the terminal explorer) and
//! [`cli`] (arguments and headless commands).

pub mod assets;
pub mod cli;
pub mod engine;
pub mod hub;
pub mod model;
pub mod preference;
pub mod scoring;
pub mod tui;

#[cfg(test)]
mod layer_tests;
