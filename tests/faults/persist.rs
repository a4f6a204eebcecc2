//! Faults: persist.
