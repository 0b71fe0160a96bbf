//! autosync-engine (being built).
