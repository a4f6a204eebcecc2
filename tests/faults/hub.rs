//! Faults: hub.
