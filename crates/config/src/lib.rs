//! autosync-config (being built).
