//! autosync-bench (being built).
