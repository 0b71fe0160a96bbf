//! The engine's own errors: only what prevents a run from being recorded at
//! all (an unknown MA or run profile, rules that do not compile, a failing
//! store). Everything else ends up in the run record's status.

use autosync_store::StoreError;

/// Why the engine could not start or record a run.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("unknown management agent `{name}`{}; the management agents are: {}", did_you_mean(.suggestion), .known.join(", "))]
    UnknownMa {
        name: String,
        suggestion: Option<String>,
        known: Vec<String>,
    },

    #[error("management agent `{ma}` has no run profile `{profile}`{}; its run profiles are: {}", did_you_mean(.suggestion), .known.join(", "))]
    UnknownProfile {
        ma: String,
        profile: String,
        suggestion: Option<String>,
        known: Vec<String>,
    },

    /// A rule of the configuration cannot be used (an expression that does
    /// not compile, a type that does not exist, ...).
    #[error("management agent `{ma}`, {rule}: {message}")]
    Rules {
        ma: String,
        rule: String,
        message: String,
    },

    #[error("store: {0}")]
    Store(#[from] StoreError),
}

fn did_you_mean(suggestion: &Option<String>) -> String {
    match suggestion {
        Some(s) => format!(" (did you mean `{s}`?)"),
        None => String::new(),
    }
}
