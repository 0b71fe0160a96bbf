//! What the service refuses to run on is what `autosync check` refuses: at
//! start (`autosync run`), on every reload and in `check` itself, a loaded
//! configuration goes through [`validate`]. Loading already checked the
//! file against itself; this adds the controller's sections
//! ([`controller_config`]) and what each connector says of its system's
//! schema ([`check_schemas`]: a CSV header, a table's columns, a
//! directory's subschema; never a full read, so start stays fast). A name a
//! rule reads that a known schema lacks refuses the file: an import flow
//! reading a misspelt column would blank its attribute on every object, and
//! the next export would remove it everywhere. A schema that cannot be read
//! now (a file not written yet, a directory down) is only a warning: what
//! is not known to be wrong does not stop a service.

use crate::config::{ControllerConfig, controller_config};
use autosync_config::{ConfigError, Diagnostic, Loaded, SchemaCheck, check_schemas};
use autosync_connector::Registry;

/// A configuration the service can run on, with what its check found.
#[derive(Debug)]
pub struct Validated {
    /// The controller's typed configuration.
    pub config: ControllerConfig,
    /// What each connector said of its system; its diagnostics are
    /// warnings only.
    pub schemas: SchemaCheck,
}

impl Validated {
    /// The warnings of the schema check (a source that cannot be read now,
    /// a name only a script reads).
    pub fn warnings(&self) -> impl Iterator<Item = &Diagnostic> {
        self.schemas.diagnostics.iter().filter(|d| !d.is_error())
    }

    /// Logs each warning at WARN: the service goes on, the operator is told
    /// what could not be checked.
    pub fn log_warnings(&self) {
        for w in self.warnings() {
            tracing::warn!("{w}");
        }
    }
}

/// Checks `loaded` as `autosync check` does: its controller sections, then
/// the names its rules read against each connector's schema. The errors
/// are located in the file (file, line, key, a suggestion).
pub fn validate(loaded: &Loaded, registry: &Registry) -> Result<Validated, ConfigError> {
    let config = controller_config(loaded, registry).map_err(|d| loaded.error(d))?;
    let schemas = check_schemas(loaded, registry);
    if schemas.has_errors() {
        let errors = schemas.diagnostics.iter().filter(|d| d.is_error());
        return Err(loaded.error(errors.cloned().collect()));
    }
    Ok(Validated { config, schemas })
}
