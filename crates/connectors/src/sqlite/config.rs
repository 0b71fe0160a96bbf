//! Settings of the SQLite connector and their validation.

use super::types::ColumnType;
use crate::settings::{self, KeyHelp, ObjectTypes, Settings, error};
use autosync_connector::{BuildContext, SettingError};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// The `connector` table of a `type = "sqlite"` MA.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SqliteConfig {
    /// The database file (relative to the configuration file's folder).
    pub path: PathBuf,
    /// The table holding the objects.
    pub table: String,
    /// The column holding the anchor (default: the object type's anchor).
    #[serde(default)]
    pub anchor_column: Option<String>,
    /// The columns read and written (default: every column but the delta one).
    #[serde(default)]
    pub columns: Option<Vec<String>>,
    /// How a delta import finds changes (default: no delta support).
    #[serde(default)]
    pub delta: Option<DeltaConfig>,
    /// Objects per import batch (default 5000).
    #[serde(default)]
    pub batch_size: Option<usize>,
    /// Column holding each row's object type.
    #[serde(default)]
    pub object_type_column: Option<String>,
    /// How long to wait for a locked database, in milliseconds (default 5000).
    #[serde(default)]
    pub busy_timeout_ms: Option<u64>,
    /// Create the database file and the table (anchor column as primary key,
    /// then `columns`) when they do not exist. Default false: a missing
    /// database is a server that is down.
    #[serde(default)]
    pub create_table: bool,
    /// Column types that the table's declared types do not say (e.g.
    /// `{ enabled = "boolean", tags = "json" }`); also the types
    /// `create_table` declares.
    #[serde(default)]
    pub column_types: BTreeMap<String, ColumnType>,
    /// Multi-valued attributes held in child tables, one row per value
    /// (e.g. `{ members = { table = "group_members", key = "group_id",
    /// value = "member" } }`).
    #[serde(default)]
    pub child_tables: BTreeMap<String, ChildTable>,
}

/// Where a multi-valued attribute's values are: a child table with one row
/// per value.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChildTable {
    /// The child table, e.g. `"group_members"`.
    pub table: String,
    /// Its column holding the parent's anchor, e.g. `"group_id"`.
    pub key: String,
    /// Its column holding one value, e.g. `"member"`.
    pub value: String,
}

/// How a delta import finds changes.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum DeltaConfig {
    /// A change-tracking column (e.g. `updated_at`): rows whose value is
    /// greater than the watermark. Deletes cannot be seen this way.
    Column { column: String },
    /// A changelog table filled by triggers: rows after the last sequence.
    Changelog {
        table: String,
        sequence_column: String,
        /// The changed row's anchor (default: the main table's anchor column).
        #[serde(default)]
        anchor_column: Option<String>,
        /// The operation (`I`/`U`/`D`); informational, the row's current
        /// state decides (a missing row is a delete).
        #[serde(default)]
        operation_column: Option<String>,
        /// The column naming the attribute of `child_tables` whose value
        /// changed (a child table's triggers write e.g. `'members'`); NULL
        /// or empty: the main row changed. Goes with `value_column`.
        #[serde(default)]
        attribute_column: Option<String>,
        /// The column holding the value that changed (the child row's
        /// value); goes with `attribute_column`.
        #[serde(default)]
        value_column: Option<String>,
    },
}

pub const KEYS: &[KeyHelp] = &[
    KeyHelp {
        key: "path",
        help: "the SQLite database file, e.g. path = \"data/hr.db\" (relative to the configuration file)",
    },
    KeyHelp {
        key: "table",
        help: "the table holding the objects, e.g. table = \"users\"",
    },
    KeyHelp {
        key: "anchor_column",
        help: "the column holding the anchor (default: the object type's anchor attribute)",
    },
    KeyHelp {
        key: "columns",
        help: "the columns read and written, e.g. columns = [\"id\", \"name\"] (default: all)",
    },
    KeyHelp {
        key: "delta",
        help: "delta = { kind = \"column\", column = \"updated_at\" } or delta = { kind = \"changelog\", table = \"users_changelog\", sequence_column = \"seq\", anchor_column = \"id\" }; a changelog's attribute_column and value_column (both or neither) name one changed value of a child table, e.g. attribute_column = \"attr\", value_column = \"value\"",
    },
    KeyHelp {
        key: "batch_size",
        help: "objects per import batch, 1 to 1000000 (default 5000)",
    },
    KeyHelp {
        key: "object_type_column",
        help: "the column naming each row's object type (needed with several object types)",
    },
    KeyHelp {
        key: "busy_timeout_ms",
        help: "milliseconds to wait for a locked database (default 5000)",
    },
    KeyHelp {
        key: "create_table",
        help: "create_table = true creates the database and the table (from `columns`) when missing",
    },
    KeyHelp {
        key: "column_types",
        help: "types the table's declared types do not give, e.g. column_types = { enabled = \"boolean\", tags = \"json\" } (text, integer, real, boolean, binary, json)",
    },
    KeyHelp {
        key: "child_tables",
        help: "multi-valued attributes kept in child tables, one row per value, e.g. child_tables = { members = { table = \"group_members\", key = \"group_id\", value = \"member\" } }",
    },
];

/// The validated settings, with the path resolved.
#[derive(Clone, Debug)]
pub struct SqliteSettings {
    pub path: PathBuf,
    pub table: String,
    pub anchor_column: String,
    pub columns: Option<Vec<String>>,
    pub delta: Option<DeltaConfig>,
    pub batch_size: usize,
    pub busy_timeout_ms: u64,
    pub create_table: bool,
    pub types: ObjectTypes,
    /// Column types given by `column_types` (for a child table's
    /// attribute: the type of its value column).
    pub column_types: BTreeMap<String, ColumnType>,
    /// Attribute -> the child table holding its values.
    pub child_tables: BTreeMap<String, ChildTable>,
}

impl SqliteSettings {
    /// Parse and check everything; one error per problem.
    pub fn from_settings(
        map: &Settings,
        ctx: &BuildContext,
    ) -> Result<SqliteSettings, Vec<SettingError>> {
        let config: SqliteConfig = settings::parse(map, KEYS, &["path", "table"])?;
        let mut errors = Vec::new();
        if config.path.as_os_str().is_empty() {
            errors.push(error("path", "`path` is empty", Some(KEYS[0].help.into())));
        }
        if config.table.is_empty() {
            errors.push(error(
                "table",
                "`table` is empty",
                Some(KEYS[1].help.into()),
            ));
        }
        let mut anchors: Vec<&str> = ctx.object_types.iter().map(|t| t.anchor.as_str()).collect();
        anchors.dedup();
        let anchor_column = match (&config.anchor_column, anchors.as_slice()) {
            (Some(a), _) => a.clone(),
            (None, [a]) => (*a).to_owned(),
            (None, _) => {
                errors.push(error(
                    "anchor_column",
                    "the object types have different anchors: say which column holds the anchor",
                    Some(KEYS[2].help.into()),
                ));
                String::new()
            }
        };
        if let Some(DeltaConfig::Column { column }) = &config.delta
            && column.is_empty()
        {
            errors.push(error(
                "delta",
                "`delta.column` is empty",
                Some(KEYS[4].help.into()),
            ));
        }
        errors.extend(check_changelog(config.delta.as_ref()));
        if config.create_table && config.columns.as_ref().is_none_or(|c| c.is_empty()) {
            errors.push(error(
                "create_table",
                "`create_table = true` needs the table's `columns` to create it",
                Some(KEYS[3].help.into()),
            ));
        }
        if config.column_types.contains_key(&anchor_column) {
            errors.push(error(
                "column_types",
                &format!("`{anchor_column}` is the anchor column: anchors are always text"),
                Some("remove it from column_types".into()),
            ));
        }
        errors.extend(check_child_tables(&config, &anchor_column, ctx));
        errors.extend(settings::check_batch_size(config.batch_size));
        errors.extend(settings::check_object_types(
            ctx,
            config.object_type_column.as_deref(),
        ));
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(SqliteSettings {
            path: settings::resolve(ctx, &config.path),
            table: config.table,
            anchor_column,
            columns: config.columns,
            delta: config.delta,
            batch_size: config
                .batch_size
                .unwrap_or(crate::csv::config::DEFAULT_BATCH_SIZE),
            busy_timeout_ms: config.busy_timeout_ms.unwrap_or(5000),
            create_table: config.create_table,
            types: ObjectTypes::new(ctx, config.object_type_column),
            column_types: config.column_types,
            child_tables: config.child_tables,
        })
    }
}

/// What is wrong with a changelog's value-level columns: one of
/// `attribute_column` and `value_column` without the other, one left empty,
/// both the same column.
fn check_changelog(delta: Option<&DeltaConfig>) -> Vec<SettingError> {
    let Some(DeltaConfig::Changelog {
        attribute_column,
        value_column,
        ..
    }) = delta
    else {
        return Vec::new();
    };
    let help = || {
        KEYS.iter()
            .find(|k| k.key == "delta")
            .map(|k| k.help.to_owned())
    };
    let mut errors = Vec::new();
    match (attribute_column, value_column) {
        (Some(_), None) => errors.push(error(
            "delta",
            "`delta.attribute_column` is set without `delta.value_column`: a changelog row names a changed value of a child table with both (the attribute and the value); set both, or neither",
            help(),
        )),
        (None, Some(_)) => errors.push(error(
            "delta",
            "`delta.value_column` is set without `delta.attribute_column`: a changelog row names a changed value of a child table with both (the attribute and the value); set both, or neither",
            help(),
        )),
        (Some(a), Some(v)) => {
            for (key, c) in [("attribute_column", a), ("value_column", v)] {
                if c.is_empty() {
                    errors.push(error("delta", &format!("`delta.{key}` is empty"), help()));
                }
            }
            if a == v && !a.is_empty() {
                errors.push(error(
                    "delta",
                    &format!(
                        "`delta.attribute_column` and `delta.value_column` are both `{a}`: one column names the attribute, the other holds the value"
                    ),
                    help(),
                ));
            }
        }
        (None, None) => {}
    }
    errors
}

/// The `child_tables` help, for its errors.
fn child_help() -> Option<String> {
    KEYS.iter()
        .find(|k| k.key == "child_tables")
        .map(|k| k.help.to_owned())
}

/// What is wrong with `child_tables`, each problem at that key: a name or
/// column left empty, an attribute that is also a column (`columns`, the
/// anchor, the object type column) or an object type's DN, a
/// child table that is the main table, the changelog or another
/// attribute's child table, a key column that is the value column.
fn check_child_tables(
    config: &SqliteConfig,
    anchor_column: &str,
    ctx: &BuildContext,
) -> Vec<SettingError> {
    let mut errors = Vec::new();
    let mut push = |message: String| errors.push(error("child_tables", &message, child_help()));
    let changelog = match &config.delta {
        Some(DeltaConfig::Changelog { table, .. }) => Some(table.as_str()),
        _ => None,
    };
    let mut tables: BTreeMap<&str, &str> = BTreeMap::new();
    for (attr, child) in &config.child_tables {
        if attr.is_empty() {
            push("an attribute name in `child_tables` is empty".into());
            continue;
        }
        let mut empty = false;
        for (what, v) in [
            ("table", &child.table),
            ("key", &child.key),
            ("value", &child.value),
        ] {
            if v.is_empty() {
                push(format!("`child_tables.{attr}.{what}` is empty"));
                empty = true;
            }
        }
        if empty {
            continue;
        }
        if attr == anchor_column {
            push(format!(
                "`{attr}` is the anchor column: the anchor has one value, it cannot be in a child table"
            ));
        } else if config.columns.iter().flatten().any(|c| c == attr) {
            push(format!(
                "`{attr}` is in `columns` and in `child_tables`: an attribute is either a column of table `{}` or a child table; remove it from `columns`",
                config.table
            ));
        }
        if config.object_type_column.as_deref() == Some(attr.as_str()) {
            push(format!(
                "`{attr}` is the object_type_column: it cannot be in a child table"
            ));
        }
        for t in &ctx.object_types {
            if ObjectTypes::dn_attr(t) == Some(attr.as_str()) {
                push(format!(
                    "`{attr}` is the DN attribute of object type `{}`: the DN has one value, it cannot be in a child table",
                    t.name
                ));
            }
        }
        if child.table == config.table {
            push(format!(
                "`child_tables.{attr}.table` is `{}`, the table of the objects: a child table is another table",
                child.table
            ));
        }
        if changelog == Some(child.table.as_str()) {
            push(format!(
                "`child_tables.{attr}.table` is `{}`, the changelog table: a child table is another table",
                child.table
            ));
        }
        if child.key == child.value {
            push(format!(
                "`child_tables.{attr}` has `key` and `value` both `{}`: the key column holds the parent's anchor, the value column one value",
                child.key
            ));
        }
        if let Some(other) = tables.insert(&child.table, attr) {
            push(format!(
                "`{other}` and `{attr}` both use child table `{}`: each attribute needs a table of its own",
                child.table
            ));
        }
    }
    errors
}
