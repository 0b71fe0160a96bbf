//! autosync-expr (being built).
