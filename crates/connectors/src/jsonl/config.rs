//! Settings of the JSON Lines connector and their validation.

use crate::settings::{self, KeyHelp, ObjectTypes, Settings, error};
use autosync_connector::{BuildContext, SettingError};
use serde::Deserialize;
use std::path::PathBuf;

/// The `connector` table of a `type = "jsonl"` MA.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JsonlConfig {
    /// The JSON Lines file (relative to the configuration file's folder).
    pub path: PathBuf,
    /// Objects per import batch (default 5000).
    #[serde(default)]
    pub batch_size: Option<usize>,
    /// Attribute holding each object's type.
    #[serde(default)]
    pub object_type_column: Option<String>,
}

pub const KEYS: &[KeyHelp] = &[
    KeyHelp {
        key: "path",
        help: "the JSON Lines file, e.g. path = \"data/users.jsonl\" (relative to the configuration file)",
    },
    KeyHelp {
        key: "batch_size",
        help: "objects per import batch, 1 to 1000000 (default 5000)",
    },
    KeyHelp {
        key: "object_type_column",
        help: "the attribute naming each object's type (needed with several object types)",
    },
];

/// The validated settings, with the path resolved.
#[derive(Clone, Debug)]
pub struct JsonlSettings {
    pub path: PathBuf,
    pub batch_size: usize,
    pub types: ObjectTypes,
}

impl JsonlSettings {
    /// Parse and check everything; one error per problem.
    pub fn from_settings(
        map: &Settings,
        ctx: &BuildContext,
    ) -> Result<JsonlSettings, Vec<SettingError>> {
        let config: JsonlConfig = settings::parse(map, KEYS, &["path"])?;
        let mut errors = Vec::new();
        if config.path.as_os_str().is_empty() {
            errors.push(error("path", "`path` is empty", Some(KEYS[0].help.into())));
        }
        errors.extend(settings::check_batch_size(config.batch_size));
        errors.extend(settings::check_object_types(
            ctx,
            config.object_type_column.as_deref(),
        ));
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(JsonlSettings {
            path: settings::resolve(ctx, &config.path),
            batch_size: config
                .batch_size
                .unwrap_or(crate::csv::config::DEFAULT_BATCH_SIZE),
            types: ObjectTypes::new(ctx, config.object_type_column),
        })
    }
}
