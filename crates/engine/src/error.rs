//! The engine's own errors: only what prevents a run from being recorded at
//! all (an unknown MA or run profile, rules that do not compile, a failing
//! store). Everything else ends up in the run record's status.

use autosync_store::StoreError;

/// Why the engine could not start or record a run.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("{}", autosync_model::suggest::unknown_ma(.name, .known.iter().map(String::as_str)))]
    UnknownMa {
        name: String,
        suggestion: Option<String>,
        known: Vec<String>,
    },

    #[error("{}", autosync_model::suggest::unknown_profile(.ma, .profile, .known.iter().map(String::as_str)))]
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
