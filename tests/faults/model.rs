//! Faults: model.
