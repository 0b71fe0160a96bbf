//! Test data: a registry whose factories check settings like the file
//! connectors do, and a valid configuration to start from.

use autosync_config::{ConfigError, EnvLookup, Loaded, load_str_with_env};
use autosync_connector::{
    BuildContext, Connector, ConnectorError, ConnectorErrorKind, ConnectorFactory, Registry,
    SettingError,
};
use serde_json::{Map, Value};
use std::path::Path;

/// Checks `path` (required string), `delimiter` (one character) and
/// `password` (non-empty when given), allows `table`; rejects any other key.
struct FileFactory(&'static str);

impl ConnectorFactory for FileFactory {
    fn kind(&self) -> &'static str {
        self.0
    }

    fn validate(
        &self,
        settings: &Map<String, Value>,
        _ctx: &BuildContext,
    ) -> Result<(), Vec<SettingError>> {
        let mut errors = Vec::new();
        let mut error = |key: &str, message: &str, help: Option<&str>| {
            errors.push(SettingError {
                key: key.to_owned(),
                message: message.to_owned(),
                help: help.map(str::to_owned),
            })
        };
        match settings.get("path") {
            Some(Value::String(p)) if !p.is_empty() => {}
            Some(_) => error("path", "`path` must be a non-empty string", None),
            None => error(
                "path",
                "missing setting `path`: the file to read",
                Some("e.g. `path = \"data/hr.csv\"`"),
            ),
        }
        if let Some(d) = settings.get("delimiter")
            && !matches!(d, Value::String(s) if s.chars().count() == 1)
        {
            {
                error(
                    "delimiter",
                    "the delimiter must be a single character",
                    Some("e.g. `delimiter = \";\"`"),
                );
            }
        }
        if let Some(Value::String(p)) = settings.get("password")
            && p.is_empty()
        {
            {
                error("password", "the password is empty", None);
            }
        }
        for key in settings.keys() {
            if !["path", "delimiter", "password", "table"].contains(&key.as_str()) {
                error(
                    key,
                    "unknown setting",
                    Some("settings are `path`, `delimiter`, `password`, `table`"),
                );
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }

    fn build(
        &self,
        _settings: &Map<String, Value>,
        _ctx: &BuildContext,
    ) -> Result<Box<dyn Connector>, ConnectorError> {
        Err(ConnectorError::new(
            ConnectorErrorKind::Configuration,
            "test factories build nothing",
        ))
    }
}

pub fn registry() -> Registry {
    let mut r = Registry::new();
    for kind in ["csv", "jsonl", "sqlite"] {
        r.register(Box::new(FileFactory(kind)));
    }
    r
}

fn test_env(name: &str) -> Option<String> {
    match name {
        "HR_FILE" => Some("data/hr.csv".into()),
        "SECRET_THRESHOLD" => Some("hunter2-threshold".into()),
        _ => None,
    }
}

pub const ENV: EnvLookup<'static> = &test_env;

/// Loads `text` as if it were `config.toml` in the current folder.
pub fn load(text: &str) -> Result<Loaded, ConfigError> {
    load_str_with_env(text, Path::new("config.toml"), &registry(), ENV)
}

/// Loads `text` and returns the plain-text rendering of its errors.
pub fn errors(text: &str) -> String {
    match load(text) {
        // Shows up in the snapshot (and fails it) if a bad file is accepted.
        Ok(_) => "UNEXPECTED: the configuration loaded without error".to_owned(),
        Err(e) => e.to_string(),
    }
}

/// A valid configuration: an HR CSV source and a directory target.
pub const VALID: &str = r#"[store]
path = "state/autosync.db"

[metaverse.person]
attributes = ["employeeId", "displayName", "email"]
precedence = { email = ["directory", "hr"] }

[[ma]]
name = "hr"
connector = { type = "csv", path = "data/hr.csv" }
object_types = [{ name = "person", anchor = "employee_id" }]
join = [{ on = [{ cs = "employee_id", mv = "employeeId" }] }]
projection = [{ mv_type = "person" }]
import_flows = [
  { mv = "employeeId", from = "employee_id" },
  { mv = "displayName", expr = 'first_name + " " + last_name' },
  { mv = "email", expr = "lower(email)" },
]
run_profiles = { full-import = ["full-import"], delta-sync = ["delta-sync"] }

[[ma]]
name = "directory"
connector = { type = "jsonl", path = "data/directory.jsonl" }
object_types = [{ name = "user", anchor = "uid" }]
join = [{ on = [{ cs = "employeeNumber", mv = "employeeId" }] }]
import_flows = [{ mv = "email", from = "mail" }]
export_flows = [
  { cs = "employeeNumber", from = "employeeId" },
  { cs = "cn", from = "displayName" },
]
provisioning = [{ anchor = "employeeId", dn = '"uid=" + employeeId' }]
export_deletion_threshold = 200
"#;
