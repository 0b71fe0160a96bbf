//! autosync-config: the TOML configuration file in, a validated
//! [`SystemDef`] out, or every problem found, each naming file, line,
//! column and key, with a suggestion.
//!
//! The pipeline: read the file; parse it keeping the span of every key and
//! value; substitute `${ENV}` in string values and `X_file` secrets in
//! `connector`/`smtp` tables (spans unchanged, so line numbers stay right);
//! report unknown keys (with "did you mean"); read the document into the
//! `autosync_model` definitions; resolve relative paths against the file's
//! folder; check everything that refers to something else (MAs, object
//! types, metaverse types and attributes, connector settings, expressions,
//! precedence, flow loops, names read from the metaverse). Nothing here
//! starts or connects to anything.
//!
//! [`check_schemas`] is a step of its own: it asks each MA's connector for
//! the schema of its system (reading a CSV header or a table's columns,
//! changing nothing) and checks every name the MA's rules read from the
//! connector space against it.
//!
//! [`locate_store`] reads only the `[store]` table, for the commands that
//! talk to the running service and its store while the rest of the file
//! does not load.
//!
//! The file format is documented in the book: docs/src/reference/configuration.md.

mod cs_reads;
mod decode;
pub mod diagnostic;
mod document;
mod interpolate;
pub mod keys;
mod locate;
mod schema;
mod schemas;
pub mod scrub;
mod validate;

pub use diagnostic::{ConfigError, Diagnostic, Location, PathSegment, Severity, parse_key_path};
pub use interpolate::{EnvLookup, PATH_KEYS, SECRET_TABLES};
pub use locate::locate_store;
pub use miette::SourceSpan;
pub use schemas::{SchemaCheck, check_schemas};
pub use validate::STORE_KINDS;

use autosync_connector::Registry;
use autosync_model::SystemDef;
use document::Problem;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A configuration that passed validation. Its `Debug` form leaves out the
/// connector settings, which may hold secrets.
#[derive(Clone)]
pub struct Loaded {
    /// The definitions, with relative paths resolved and `base_dir` set.
    pub system: SystemDef,
    /// Problems that do not stop the configuration from working.
    pub warnings: Vec<Diagnostic>,
    /// The file's text, as read (before substitutions: no secret in it
    /// beyond what the file itself holds).
    pub source: String,
    /// The file, as given.
    pub path: PathBuf,
}

impl std::fmt::Debug for Loaded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mas: Vec<(&str, &str)> = self
            .system
            .mas
            .iter()
            .map(|m| (m.name.as_str(), m.connector.kind.as_str()))
            .collect();
        f.debug_struct("Loaded")
            .field("path", &self.path)
            .field("base_dir", &self.system.base_dir)
            .field("store", &self.system.store)
            .field(
                "metaverse_types",
                &self.system.metaverse.keys().collect::<Vec<_>>(),
            )
            .field("mas", &mas)
            .field("warnings", &self.warnings.len())
            .finish_non_exhaustive()
    }
}

impl Loaded {
    /// Where the value at `key_path` is in the file (e.g. for the controller
    /// to report a bad `controller.triggers[0].cron`). A secret read from a
    /// file (`password`) is found at its `password_file` key.
    pub fn span_of(&self, key_path: &[PathSegment]) -> Option<SourceSpan> {
        let root = document::parse(&self.source).ok()?;
        if let Some(found) = document::lookup(&root, key_path) {
            return Some(document::to_span(found.value));
        }
        let (last, parent) = key_path.split_last()?;
        let PathSegment::Key(key) = last else {
            return None;
        };
        let mut alt = parent.to_vec();
        alt.push(PathSegment::Key(format!("{key}_file")));
        document::lookup(&root, &alt).map(|f| document::to_span(f.value))
    }

    /// The value at `key_path` as the file writes it: before `${ENV}`
    /// interpolation and `X_file` substitution, so `${NAME}` references and
    /// `X_file` keys stay as they are and no value they stand for is in it
    /// (a key read from a file is found under its `X_file` name only).
    /// `None` when the file has no value there.
    ///
    /// Use it to *show* configuration (`autosync discover` proposes the
    /// user's own settings back to them); [`Loaded::system`] holds the
    /// values to *run* with.
    pub fn written(&self, key_path: &[PathSegment]) -> Option<serde_json::Value> {
        use serde::de::{Deserialize as _, IntoDeserializer as _};
        let root = document::parse(&self.source).ok()?;
        let value = document::spanned_at(&root, key_path)?;
        serde_json::Value::deserialize(value.clone().into_deserializer()).ok()
    }

    /// An error diagnostic about the value at `key_path`, with the key
    /// rendered readably (`ma "hr" > controller > triggers[0]`) and its span.
    pub fn diagnostic_at(
        &self,
        key_path: &[PathSegment],
        message: impl Into<String>,
    ) -> Diagnostic {
        let key = match document::parse(&self.source) {
            Ok(root) => document::render_key(&root, key_path),
            Err(_) => String::new(),
        };
        Diagnostic::error(key, message).with_span(self.span_of(key_path))
    }

    /// A [`ConfigError`] for this file from diagnostics made by another crate
    /// (e.g. with [`Loaded::diagnostic_at`]).
    pub fn error(&self, diagnostics: Vec<Diagnostic>) -> ConfigError {
        ConfigError::new(&self.path, Some(Arc::new(self.source.clone())), diagnostics)
    }
}

/// Reads and validates the configuration file at `path`, taking `${ENV}`
/// values from the process environment.
pub fn load(path: &Path, registry: &Registry) -> Result<Loaded, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        let d = Diagnostic::error("", format!("cannot read the configuration file: {e}"))
            .with_help(match e.kind() {
                std::io::ErrorKind::NotFound => {
                    "check the path, or pass the file with `--config PATH`"
                }
                std::io::ErrorKind::PermissionDenied => {
                    "the service's user needs permission to read it"
                }
                _ => "check that the file is readable text (UTF-8)",
            });
        ConfigError::new(path, None, vec![d])
    })?;
    load_str(&text, path, registry)
}

/// Validates configuration text; `path` names the file in messages and its
/// folder is the base for relative paths.
pub fn load_str(text: &str, path: &Path, registry: &Registry) -> Result<Loaded, ConfigError> {
    load_str_with_env(text, path, registry, &|name| std::env::var(name).ok())
}

/// [`load`] for a command that only reads the store (`history`, `cs`,
/// `mv`, `status`): a connector setting whose `${ENV}` is not set (a
/// directory's URL and password, kept in the service's environment) is a
/// warning, not an error: such a command never connects. Everything else
/// is checked as [`load`] checks it.
pub fn load_to_read(path: &Path, registry: &Registry) -> Result<Loaded, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        ConfigError::new(
            path,
            None,
            vec![Diagnostic::error(
                "",
                format!("cannot read the configuration file: {e}"),
            )],
        )
    })?;
    load_inner(
        &text,
        path,
        registry,
        &|name| std::env::var(name).ok(),
        true,
    )
}

/// [`load_str`] with environment variables from `env` (tests, or a service
/// that keeps its own environment).
pub fn load_str_with_env(
    text: &str,
    path: &Path,
    registry: &Registry,
    env: EnvLookup<'_>,
) -> Result<Loaded, ConfigError> {
    load_inner(text, path, registry, env, false)
}

/// Whether `path` is inside an MA's `connector` table.
fn in_connector(path: &[PathSegment]) -> bool {
    matches!(path, [PathSegment::Key(ma), PathSegment::Index(_), PathSegment::Key(c), ..] if ma == "ma" && c == "connector")
}

fn load_inner(
    text: &str,
    path: &Path,
    registry: &Registry,
    env: EnvLookup<'_>,
    to_read: bool,
) -> Result<Loaded, ConfigError> {
    let source = Arc::new(text.to_owned());
    let fail =
        |diagnostics: Vec<Diagnostic>| ConfigError::new(path, Some(source.clone()), diagnostics);
    let base_dir = base_dir_of(path);

    let mut root = document::parse(text).map_err(fail)?;
    let mut problems: Vec<Problem> = interpolate::apply(&mut root, env, &base_dir);
    if to_read {
        for p in problems.iter_mut().filter(|p| in_connector(&p.path)) {
            p.warning = true;
            p.help = Some(
                "this command only reads the store and never connects; the service needs it set"
                    .into(),
            );
        }
    }
    // A value whose `${VAR}` could not be replaced is reported as such:
    // what a check then says of the text left there (`${LDAP_URL}` is not
    // a URL) would only mislead.
    let uninterpolated: std::collections::HashSet<Vec<PathSegment>> =
        problems.iter().map(|p| p.path.clone()).collect();
    let unknown = schema::unknown_keys(&root);
    for p in &unknown {
        document::remove(&mut root, &p.path);
    }
    problems.extend(unknown);

    let decoded = decode::decode(&root, text);
    let mut system = decoded.system.clone();
    problems.extend(decoded.problems.iter().cloned());
    problems.extend(
        validate::validate(&decoded, &root, text, registry, &base_dir)
            .into_iter()
            .filter(|p| !uninterpolated.contains(&p.path)),
    );

    let diagnostics: Vec<Diagnostic> = problems
        .into_iter()
        .map(|p| p.into_diagnostic(&root))
        .collect();
    if diagnostics.iter().any(Diagnostic::is_error) {
        // Warnings wait until the errors are fixed: some are only echoes of
        // an error (a misspelt attribute nothing flows into).
        return Err(fail(
            diagnostics
                .into_iter()
                .filter(Diagnostic::is_error)
                .collect(),
        ));
    }

    if system.store.path.is_relative() {
        system.store.path = base_dir.join(&system.store.path);
    }
    system.base_dir = base_dir;
    let warnings = diagnostics
        .into_iter()
        .map(|d| d.locate(path, text))
        .collect();
    Ok(Loaded {
        system,
        warnings,
        source: text.to_owned(),
        path: path.to_path_buf(),
    })
}

/// The configuration file's folder, absolute (canonical when it exists), so
/// a configuration folder works wherever it is copied.
fn base_dir_of(path: &Path) -> PathBuf {
    let folder = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    match folder.canonicalize() {
        Ok(p) => p,
        Err(_) => std::env::current_dir()
            .map(|cwd| cwd.join(&folder))
            .unwrap_or(folder),
    }
}
