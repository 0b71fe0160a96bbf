//! Reading a connector's settings (the MA's `connector` table) into a typed
//! config, reporting every problem at once: one [`SettingError`] per key, with
//! a help text, and "did you mean ..." for unknown keys.

use autosync_connector::{
    BuildContext, ChangeDetection, ConnectorError, ConnectorErrorKind, SettingError, Shape,
};
use autosync_model::ObjectTypeDef;
use autosync_model::suggest;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use std::path::{Path, PathBuf};

/// The settings map as the factory receives it.
pub type Settings = Map<String, Value>;

/// One setting a connector knows, with the help shown when it is wrong.
#[derive(Clone, Copy, Debug)]
pub struct KeyHelp {
    pub key: &'static str,
    pub help: &'static str,
}

/// The shape of a `connector` table whose keys are `keys` (what
/// [`parse`] accepts), all plain values but those in `tables`.
pub fn shape(keys: &[KeyHelp], tables: Vec<(&str, Shape)>) -> Vec<(String, Shape)> {
    keys.iter()
        .map(|k| {
            let shape = tables
                .iter()
                .find(|(name, _)| *name == k.key)
                .map_or(Shape::Leaf, |(_, s)| s.clone());
            (k.key.to_owned(), shape)
        })
        .collect()
}

/// Deserialize `settings` into `T` (a `deny_unknown_fields` struct whose
/// fields are `keys`, of which `required` must be present), collecting one
/// error per bad key instead of stopping at the first.
pub fn parse<T: DeserializeOwned>(
    settings: &Settings,
    keys: &[KeyHelp],
    required: &[&str],
) -> Result<T, Vec<SettingError>> {
    let mut errors = Vec::new();
    for key in required {
        if !settings.contains_key(*key) {
            errors.push(error(key, &format!("`{key}` is required"), help(keys, key)));
        }
    }
    let mut known = Settings::new();
    for (key, value) in settings {
        if key == "type" {
            continue; // the connector type itself, when a caller leaves it in
        }
        match keys.iter().find(|k| k.key == key) {
            Some(_) => {
                known.insert(key.clone(), value.clone());
            }
            None => errors.push(unknown_key(key, keys)),
        }
    }
    // Each key alone: type errors name their key; "missing field" errors
    // are about the other keys.
    for (key, value) in &known {
        let single: Settings = [(key.clone(), value.clone())].into_iter().collect();
        if let Err(e) = serde_json::from_value::<T>(Value::Object(single)) {
            let text = e.to_string();
            if !text.starts_with("missing field") {
                errors.push(error(key, &clean(&text), help(keys, key)));
            }
        }
    }
    match serde_json::from_value::<T>(Value::Object(known)) {
        Ok(v) if errors.is_empty() => Ok(v),
        Ok(_) => Err(errors),
        Err(e) => {
            let text = e.to_string();
            let missing = text
                .strip_prefix("missing field `")
                .and_then(|t| t.split('`').next());
            match missing {
                Some(field) if errors.iter().any(|e| e.key == field) => {}
                Some(field) => errors.push(error(
                    field,
                    &format!("`{field}` is required"),
                    help(keys, field),
                )),
                None if errors.is_empty() => errors.push(error("", &clean(&text), None)),
                None => {}
            }
            Err(errors)
        }
    }
}

/// Drop serde_json's "at line 0 column 0" tail, meaningless for a map.
fn clean(text: &str) -> String {
    text.split(" at line ").next().unwrap_or(text).to_owned()
}

fn help(keys: &[KeyHelp], key: &str) -> Option<String> {
    keys.iter()
        .find(|k| k.key == key)
        .map(|k| k.help.to_owned())
}

/// A setting error.
pub fn error(key: &str, message: &str, help: Option<String>) -> SettingError {
    SettingError {
        key: key.to_owned(),
        message: message.to_owned(),
        help,
    }
}

fn unknown_key(key: &str, keys: &[KeyHelp]) -> SettingError {
    let known: Vec<&str> = keys.iter().map(|k| k.key).collect();
    let help = match suggest::did_you_mean(key, known.iter().copied()) {
        Some(did_you_mean) => format!("{did_you_mean} Known settings: {}", known.join(", ")),
        None => format!("known settings: {}", known.join(", ")),
    };
    error(key, &format!("unknown setting `{key}`"), Some(help))
}

/// A path setting resolved against the configuration file's folder.
pub fn resolve(ctx: &BuildContext, path: &Path) -> PathBuf {
    if path.is_absolute() {
        path.to_owned()
    } else {
        ctx.base_dir.join(path)
    }
}

/// The `path` setting as the configuration writes it (relative paths stay
/// relative: messages read like the file), else the resolved path.
pub fn written_path(settings: &Settings, resolved: &Path) -> String {
    match settings.get("path") {
        Some(Value::String(p)) if !p.is_empty() => p.clone(),
        _ => resolved.display().to_string(),
    }
}

/// Checks on the MA's object types every connector shares: at least one,
/// and a type column when there are several.
pub fn check_object_types(
    ctx: &BuildContext,
    object_type_column: Option<&str>,
) -> Vec<SettingError> {
    let mut errors = Vec::new();
    if ctx.object_types.is_empty() {
        errors.push(error(
            "object_types",
            &format!("MA `{}` has no object type", ctx.ma),
            Some("add object_types = [{ name = \"person\", anchor = \"id\" }] to the MA".into()),
        ));
    }
    if ctx.object_types.len() > 1 && object_type_column.is_none() {
        errors.push(error(
            "object_type_column",
            "`object_type_column` is required when the MA has several object types",
            Some("name the column that holds each row's object type".into()),
        ));
    }
    if matches!(object_type_column, Some("")) {
        errors.push(error(
            "object_type_column",
            "`object_type_column` is empty",
            None,
        ));
    }
    errors
}

/// A batch size check (1 ..= 1,000,000).
pub fn check_batch_size(batch_size: Option<usize>) -> Vec<SettingError> {
    match batch_size {
        Some(n) if n == 0 || n > 1_000_000 => vec![error(
            "batch_size",
            &format!("batch_size {n} is out of range"),
            Some("use a number between 1 and 1000000 (default 5000)".into()),
        )],
        _ => Vec::new(),
    }
}

/// The configuration error `build` returns when settings do not validate.
/// What a connector of type `kind` offers to notice changes (`detect`, from
/// its checked settings); settings that do not check offer nothing and say
/// why.
pub fn change_detection<S>(
    kind: &str,
    ctx: &BuildContext,
    parsed: Result<S, Vec<SettingError>>,
    detect: impl FnOnce(&S) -> ChangeDetection,
) -> ChangeDetection {
    match parsed {
        Ok(s) => detect(&s),
        Err(e) => ChangeDetection::none(format!(
            "{kind} connector: {}",
            into_connector_error(&ctx.ma, &e).message
        )),
    }
}

pub fn into_connector_error(ma: &str, errors: &[SettingError]) -> ConnectorError {
    let text: Vec<String> = errors
        .iter()
        .map(|e| match &e.help {
            Some(h) => format!("`{}`: {} ({h})", e.key, e.message),
            None => format!("`{}`: {}", e.key, e.message),
        })
        .collect();
    ConnectorError::new(
        ConnectorErrorKind::Configuration,
        format!("MA `{ma}`: invalid connector settings: {}", text.join("; ")),
    )
}

/// How rows map to object types: every row one type, or a column names it.
#[derive(Clone, Debug)]
pub struct ObjectTypes {
    pub types: Vec<ObjectTypeDef>,
    /// The column holding each row's object type.
    pub type_column: Option<String>,
}

impl ObjectTypes {
    pub fn new(ctx: &BuildContext, type_column: Option<String>) -> Self {
        ObjectTypes {
            types: ctx.object_types.clone(),
            type_column,
        }
    }

    /// The type named by a row (or the only type). Err: error type and detail.
    pub fn for_row(&self, value: Option<&str>) -> Result<&ObjectTypeDef, (&'static str, String)> {
        match (&self.type_column, value) {
            (None, _) => self.types.first().ok_or((
                "unknown-object-type",
                "the MA has no object type".to_owned(),
            )),
            (Some(col), None | Some("")) => {
                Err(("missing-object-type", format!("no value in column `{col}`")))
            }
            (Some(col), Some(v)) => self.get(v).ok_or_else(|| {
                let known: Vec<&str> = self.types.iter().map(|t| t.name.as_str()).collect();
                (
                    "unknown-object-type",
                    format!(
                        "`{v}` in column `{col}` is not an object type of this MA ({})",
                        known.join(", ")
                    ),
                )
            }),
        }
    }

    pub fn get(&self, name: &str) -> Option<&ObjectTypeDef> {
        self.types.iter().find(|t| t.name == name)
    }

    /// The DN attribute of a type, when it is not the anchor.
    pub fn dn_attr(t: &ObjectTypeDef) -> Option<&str> {
        t.dn.as_deref().filter(|d| *d != t.anchor)
    }
}
