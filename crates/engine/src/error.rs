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

    /// The message carries the store's (no `source`, so that a chain
    /// printed with `{:#}` says it once).
    #[error("store: {0}")]
    Store(StoreError),
}

impl From<StoreError> for EngineError {
    fn from(e: StoreError) -> Self {
        EngineError::Store(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use autosync_store::StoreErrorKind;

    /// Printed as a chain (`anyhow`'s `{:#}`: each error, then its
    /// sources), the store's message appears once.
    #[test]
    fn a_store_error_is_said_once_in_the_error_chain() {
        let e = EngineError::from(StoreError::new(StoreErrorKind::Busy, "database is locked"));
        let mut chain = vec![e.to_string()];
        let mut source = std::error::Error::source(&e);
        while let Some(s) = source {
            chain.push(s.to_string());
            source = s.source();
        }
        let printed = chain.join(": ");
        assert_eq!(
            printed.matches("database is locked").count(),
            1,
            "{printed}"
        );
    }
}
