//! The fault suite: hostile hubs, crafted checkpoints, bad input files and broken persistence.
//! Every case asserts what the user sees (the refusal, the exit code, what is kept on disk) and
//! that nothing panics, aborts or writes outside its place. `docs/faults.md` lists the cases.

#[path = "../common/mod.rs"]
mod common;
#[path = "../hub_server/mod.rs"]
#[allow(dead_code)] // Shared with tests/hub.rs; each target uses part of it.
mod hub_server;

mod cli;
mod hub;
mod model;
mod persist;
mod quant;
