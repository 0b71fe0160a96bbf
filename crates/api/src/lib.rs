//! autosync-api (being built).
