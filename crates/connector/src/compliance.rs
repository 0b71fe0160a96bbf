//! The compliance suite (being built).
