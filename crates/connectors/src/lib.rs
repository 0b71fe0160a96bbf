//! autosync-connectors (being built).
