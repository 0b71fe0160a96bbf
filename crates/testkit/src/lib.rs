//! autosync-testkit (being built).
