//! autosync-controller (being built).
